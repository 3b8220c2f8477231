//! The plugins Vigil knows: the built-ins plus every folder with a `plugin.toml` in the
//! plugins directory. Invalid manifests are kept as problems (so `vigil plugins doctor`
//! can show them) and never planned.

use std::path::Path;

use crate::format::Format;
use crate::manifest::{MANIFEST_FILE, ManifestErrors, Plugin, RawManifest, ValidateContext, read_capped, validate};
use crate::plan::{Candidate, PlanError, layer};

/// Plugin folders scanned at most.
const PLUGIN_FOLDERS_MAX: usize = 1_000;

/// An installed bundle to load: its folder, and whether it is enabled.
#[derive(Clone, Debug)]
pub struct InstalledFolder {
    pub folder: std::path::PathBuf,
    pub enabled: bool,
    pub approved: bool,
}

/// The loaded plugins and the manifests that failed to load.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    plugins: Vec<Plugin>,
    problems: Vec<ManifestErrors>,
    /// Installed plugins: (enabled, permissions approved). Built-ins and plugins-folder
    /// plugins are enabled by being there.
    installed: std::collections::HashMap<String, (bool, bool)>,
}

impl Registry {
    /// Loads the built-ins and the plugins under `dir` (which may not exist).
    pub fn load(dir: &Path, vigil_version: &str) -> Registry {
        Registry::load_with(dir, &[], vigil_version)
    }

    /// Loads the built-ins, the installed bundles, then the plugins under `dir`. An id
    /// already taken is a problem for the later one.
    pub fn load_with(dir: &Path, installed: &[InstalledFolder], vigil_version: &str) -> Registry {
        let mut registry = Registry { plugins: crate::builtin::manifests(vigil_version), ..Registry::default() };
        for bundle in installed {
            match load_folder(&bundle.folder, vigil_version) {
                Ok(plugin) if registry.get(&plugin.id).is_some() => registry.problems.push(ManifestErrors {
                    location: bundle.folder.join(MANIFEST_FILE).display().to_string(),
                    problems: vec![format!("id: {:?} is already taken by another plugin", plugin.id)],
                }),
                Ok(plugin) => {
                    registry.installed.insert(plugin.id.clone(), (bundle.enabled, bundle.approved));
                    registry.plugins.push(plugin);
                }
                Err(e) => registry.problems.push(e),
            }
        }
        let Ok(entries) = std::fs::read_dir(dir) else { return registry };
        let mut folders: Vec<_> =
            entries.flatten().map(|e| e.path()).filter(|p| p.join(MANIFEST_FILE).is_file()).collect();
        folders.sort();
        folders.truncate(PLUGIN_FOLDERS_MAX);
        for folder in folders {
            match load_folder(&folder, vigil_version) {
                Ok(plugin) if registry.get(&plugin.id).is_some() => registry.problems.push(ManifestErrors {
                    location: folder.join(MANIFEST_FILE).display().to_string(),
                    problems: vec![format!("id: {:?} is already taken by another plugin", plugin.id)],
                }),
                Ok(plugin) => registry.plugins.push(plugin),
                Err(e) => registry.problems.push(e),
            }
        }
        registry
    }

    pub fn plugins(&self) -> &[Plugin] {
        &self.plugins
    }

    pub fn problems(&self) -> &[ManifestErrors] {
        &self.problems
    }

    pub fn get(&self, id: &str) -> Option<&Plugin> {
        self.plugins.iter().find(|p| p.id == id)
    }

    /// Whether a plugin may run: built-ins and plugins-folder plugins always; installed
    /// ones once their permissions are approved and they are enabled.
    pub fn enabled(&self, id: &str) -> bool {
        self.installed.get(id).is_none_or(|(enabled, _)| *enabled)
    }

    /// For installed plugins: (enabled, permissions approved).
    pub fn install_state(&self, id: &str) -> Option<(bool, bool)> {
        self.installed.get(id).copied()
    }

    /// The planner's view of every plugin for an input of `format`.
    pub fn candidates(&self, format: Format) -> Vec<Candidate<'_>> {
        self.plugins
            .iter()
            .map(|p| Candidate {
                id: &p.id,
                version: &p.version,
                depends_on: &p.depends_on,
                applies: p.applies_to(format),
                enabled: self.enabled(&p.id),
            })
            .collect()
    }

    /// Structural problems across plugins: dependencies on unknown plugins, and a
    /// dependency cycle (with its path).
    pub fn graph_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for p in &self.plugins {
            for dep in &p.depends_on {
                if self.get(dep).is_none() {
                    problems.push(format!("{} depends on {dep:?}, which is not installed", p.id));
                }
            }
        }
        let ids: Vec<&str> = self.plugins.iter().map(|p| p.id.as_str()).collect();
        let deps = |id: &str| -> Vec<&str> {
            self.get(id).map(|p| p.depends_on.iter().map(String::as_str).collect()).unwrap_or_default()
        };
        if let Err(e @ PlanError::Cycle(_)) =
            layer(&ids, |id| deps(id).into_iter().filter_map(|d| ids.iter().copied().find(|i| *i == d)).collect())
        {
            problems.push(e.to_string());
        }
        problems
    }
}

/// Loads and validates the plugin in `folder`.
pub fn load_folder(folder: &Path, vigil_version: &str) -> Result<Plugin, ManifestErrors> {
    let path = folder.join(MANIFEST_FILE);
    let fail = |problem: String| ManifestErrors { location: path.display().to_string(), problems: vec![problem] };
    let text = read_capped(&path).map_err(fail)?;
    let raw: RawManifest = toml::from_str(&text).map_err(|e| fail(format!("not a valid manifest: {e}")))?;
    validate(raw, &ValidateContext { dir: Some(folder), inline_schemas: None, vigil_version })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_plugin(root: &Path, name: &str, manifest: &str) {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join(MANIFEST_FILE), manifest).expect("write");
    }

    fn manifest(id: &str, deps: &[&str]) -> String {
        let deps: Vec<String> = deps.iter().map(|d| format!("{d:?}")).collect();
        format!(
            "id = {id:?}\nname = \"n\"\nversion = \"1.0.0\"\ntype = \"analysis\"\nentrypoint = [\"true\"]\ndepends_on = [{}]\n",
            deps.join(", ")
        )
    }

    #[test]
    fn folders_load_beside_the_builtins_and_bad_ones_become_problems() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_plugin(dir.path(), "good", &manifest("ext.good", &["core.inspect"]));
        write_plugin(dir.path(), "bad", "id = \"ext.bad\"\n");
        write_plugin(dir.path(), "dup", &manifest("core.inspect", &[]));
        let registry = Registry::load(dir.path(), "0.1.0");
        assert!(registry.get("ext.good").is_some());
        assert_eq!(registry.problems().len(), 2, "{:?}", registry.problems());
        assert!(registry.graph_problems().is_empty());
    }

    #[test]
    fn cycles_and_missing_dependencies_are_graph_problems() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_plugin(dir.path(), "a", &manifest("ext.a", &["ext.b"]));
        write_plugin(dir.path(), "b", &manifest("ext.b", &["ext.a"]));
        write_plugin(dir.path(), "c", &manifest("ext.c", &["ext.missing"]));
        let problems = Registry::load(dir.path(), "0.1.0").graph_problems();
        assert!(problems.iter().any(|p| p.contains("ext.missing")), "{problems:?}");
        assert!(problems.iter().any(|p| p.starts_with("dependency cycle: ext.a → ext.b → ext.a")), "{problems:?}");
    }
}

//! Plugin manifests: the raw `plugin.toml`, its validation, and the validated [`Plugin`].
//!
//! A manifest names the plugin (id, name, version, type), how to start it (a command for
//! an external plugin, a name for a built-in), what it depends on and which inputs it
//! applies to, JSON Schemas for its config and its output, budgets, the permissions it
//! asks for, the oldest Vigil it works with, and a self-test fixture. Validation reports
//! every problem at once, each naming the field. Schemas are 2020-12 unless `$schema`
//! declares draft-07; other dialects, and schemas that fail their meta-schema or reach for
//! remote references, are refused.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use vigil_core::digest::{Sha256Digest, Sha256Hasher};

use crate::format::Format;

/// The manifest's file name inside a plugin folder.
pub const MANIFEST_FILE: &str = "plugin.toml";
/// Largest manifest or schema file read.
pub const MANIFEST_BYTES_MAX: u64 = 256 * 1024;
/// Longest plugin id.
pub const PLUGIN_ID_LEN_MAX: usize = 64;
/// Budget ceilings a manifest may ask for.
pub const TIME_LIMIT_MS_MAX: u64 = 6 * 60 * 60 * 1000;
pub const MEMORY_MB_MAX: u64 = 64 * 1024;
/// The digest of the source the built-ins are compiled from (see `build.rs`): part of
/// their code hash, so a build that could compute differently never reuses another
/// build's cached results.
const BUILTIN_SOURCE_SHA256: &str = env!("VIGIL_BUILTIN_SOURCE_SHA256");

pub use vigil_pack::PluginKind;
pub use vigil_pack::protocol::Budgets;

/// `plugin.toml` as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawManifest {
    pub id: String,
    pub name: String,
    pub version: String,
    #[serde(rename = "type")]
    pub kind: PluginKind,
    #[serde(default)]
    pub description: String,
    /// The command for an external plugin, run in the plugin's folder context:
    /// `["python3", "plugin.py"]`. Relative program paths are resolved in the plugin folder.
    pub entrypoint: Option<Vec<String>>,
    /// The name of a built-in plugin (only built-ins set this).
    pub builtin: Option<String>,
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Input formats the plugin applies to; empty means every input.
    #[serde(default)]
    pub input_formats: Vec<String>,
    /// The finding kinds the plugin may report (`duplicate_keys`, ...): what a known-issue
    /// declaration can expect of it. Optional; a plugin may report kinds it does not list.
    #[serde(default)]
    pub finding_kinds: Vec<String>,
    /// File names of the schemas, relative to the plugin folder.
    pub config_schema: Option<String>,
    pub output_schema: Option<String>,
    #[serde(default)]
    pub budgets: RawBudgets,
    #[serde(default)]
    pub permissions: Permissions,
    pub min_vigil_version: Option<String>,
    pub self_test: Option<RawSelfTest>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBudgets {
    pub time_limit_ms: Option<u64>,
    pub memory_mb: Option<u64>,
    pub row_limit: Option<u64>,
}

/// What a plugin may do beyond reading its input and writing its own output folder.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Permissions {
    #[serde(default)]
    pub network: bool,
    /// Extra readable paths, relative to the run folder.
    #[serde(default)]
    pub fs_read: Vec<String>,
    /// Extra writable paths, relative to the run folder.
    #[serde(default)]
    pub fs_write: Vec<String>,
    #[serde(default)]
    pub database_read: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSelfTest {
    /// An input file, relative to the plugin folder.
    pub fixture: String,
    #[serde(default)]
    pub config: Option<Value>,
}

/// How a plugin is started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Entrypoint {
    /// A built-in Rust plugin, run as `vigil __plugin NAME` inside the sandbox.
    Builtin(String),
    /// An external command; the first element is the program.
    Command(Vec<String>),
}

/// A compiled JSON Schema and the document it came from.
#[derive(Clone)]
pub struct Schema {
    pub document: Value,
    validator: std::sync::Arc<jsonschema::Validator>,
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schema").field("document", &self.document).finish_non_exhaustive()
    }
}

impl Schema {
    /// Checks the dialect and the meta-schema and compiles the schema.
    pub fn compile(document: Value) -> Result<Schema, String> {
        let draft = match document.get("$schema") {
            None => jsonschema::Draft::Draft202012,
            Some(Value::String(uri)) => dialect(uri).ok_or_else(|| {
                format!("unsupported JSON Schema dialect {uri:?}: use 2020-12 (the default) or draft-07")
            })?,
            Some(other) => return Err(format!("$schema must be a string, got {other}")),
        };
        if !document.is_object() && !document.is_boolean() {
            return Err("a schema must be a JSON object".to_owned());
        }
        jsonschema::meta::validate(&document).map_err(|e| format!("not a valid schema: {e}"))?;
        let validator =
            jsonschema::options().with_draft(draft).build(&document).map_err(|e| format!("cannot compile: {e}"))?;
        Ok(Schema { document, validator: std::sync::Arc::new(validator) })
    }

    /// Every way `instance` fails the schema, as `path: message` lines (at most 20).
    pub fn check(&self, instance: &Value) -> Result<(), Vec<String>> {
        let errors: Vec<String> = self
            .validator
            .iter_errors(instance)
            .take(20)
            .map(|e| {
                let path = e.instance_path().to_string();
                let at = if path.is_empty() { "(root)".to_owned() } else { path };
                format!("{at}: {e}")
            })
            .collect();
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    /// A schema that accepts any object.
    pub fn any_object() -> Schema {
        Schema::compile(serde_json::json!({ "type": "object" })).unwrap_or_else(|e| unreachable!("{e}"))
    }
}

fn dialect(uri: &str) -> Option<jsonschema::Draft> {
    let normalized = uri.trim_end_matches('#').trim_end_matches('/').replace("https://", "http://");
    match normalized.as_str() {
        "http://json-schema.org/draft/2020-12/schema" => Some(jsonschema::Draft::Draft202012),
        "http://json-schema.org/draft-07/schema" => Some(jsonschema::Draft::Draft7),
        _ => None,
    }
}

/// Where a plugin comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "kind", content = "path")]
pub enum Source {
    Builtin,
    Folder(PathBuf),
}

/// A validated plugin, ready to plan and run.
#[derive(Clone, Debug)]
pub struct Plugin {
    pub id: String,
    pub name: String,
    pub version: String,
    pub kind: PluginKind,
    pub description: String,
    pub entrypoint: Entrypoint,
    pub depends_on: Vec<String>,
    /// Empty: applies to every input.
    pub input_formats: Vec<Format>,
    /// The finding kinds it declares it may report.
    pub finding_kinds: Vec<String>,
    pub config_schema: Schema,
    pub output_schema: Schema,
    pub budgets: Budgets,
    pub permissions: Permissions,
    pub min_vigil_version: Option<String>,
    /// Fixture path (absolute) and config for the self-test.
    pub self_test: Option<(PathBuf, Value)>,
    pub source: Source,
    /// sha256 of the canonical manifest with its schemas.
    pub manifest_hash: Sha256Digest,
    /// sha256 over the plugin's files (path and content, in path order); for a built-in,
    /// over its name and the Vigil version it ships in.
    pub code_hash: Sha256Digest,
}

impl Plugin {
    /// Whether the plugin applies to an input of this format.
    pub fn applies_to(&self, format: Format) -> bool {
        self.input_formats.is_empty() || self.input_formats.contains(&format)
    }

    /// The identity that goes into fingerprints and cache keys.
    pub fn identity(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "version": self.version,
            "code_sha256": self.code_hash.to_string(),
            "manifest_sha256": self.manifest_hash.to_string(),
        })
    }

    /// The manifest as shown by `vigil plugins show` and the API.
    pub fn describe(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "type": self.kind,
            "description": self.description,
            "entrypoint": self.entrypoint,
            "depends_on": self.depends_on,
            "input_formats": self.input_formats,
            "config_schema": self.config_schema.document,
            "output_schema": self.output_schema.document,
            "budgets": self.budgets,
            "permissions": self.permissions,
            "min_vigil_version": self.min_vigil_version,
            "source": self.source,
            "manifest_sha256": self.manifest_hash.to_string(),
            "code_sha256": self.code_hash.to_string(),
        })
    }
}

/// Problems found in one manifest, each naming its field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestErrors {
    pub location: String,
    pub problems: Vec<String>,
}

impl std::fmt::Display for ManifestErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location, self.problems.join("; "))
    }
}

impl std::error::Error for ManifestErrors {}

/// Checks a plugin id: lowercase letters, digits, `.`, `_`, `-`; starts with a letter.
pub fn check_id(id: &str) -> Result<(), String> {
    let ok = id.len() <= PLUGIN_ID_LEN_MAX
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{id:?} is not a plugin id: 1 to {PLUGIN_ID_LEN_MAX} lowercase letters, digits, '.', '_' or '-', starting with a letter"
        ))
    }
}

/// `MAJOR.MINOR.PATCH` as numbers (a `-suffix` is ignored for ordering).
pub fn parse_version(text: &str) -> Option<(u64, u64, u64)> {
    let core = text.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    let version = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(version)
}

/// A path a manifest names, relative to the run or plugin folder: no absolute paths, no
/// `..`, nothing empty.
pub fn check_relative(path: &str) -> Result<PathBuf, String> {
    let p = Path::new(path);
    if path.is_empty() || p.is_absolute() {
        return Err(format!("{path:?} must be a relative path"));
    }
    if p.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
        return Err(format!("{path:?} must stay inside its folder (no '..')"));
    }
    Ok(p.to_owned())
}

/// Inputs to [`validate`] beyond the raw manifest.
#[derive(Debug)]
pub struct ValidateContext<'a> {
    /// The plugin's folder, or `None` for a built-in.
    pub dir: Option<&'a Path>,
    /// Schemas supplied inline (built-ins) instead of as files.
    pub inline_schemas: Option<(Value, Value)>,
    pub vigil_version: &'a str,
}

/// Validates a raw manifest, collecting every problem.
pub fn validate(raw: RawManifest, cx: &ValidateContext<'_>) -> Result<Plugin, ManifestErrors> {
    let location =
        cx.dir.map_or_else(|| format!("built-in {}", raw.id), |d| d.join(MANIFEST_FILE).display().to_string());
    let mut problems = Vec::new();
    if let Err(e) = check_id(&raw.id) {
        problems.push(format!("id: {e}"));
    }
    if raw.name.trim().is_empty() {
        problems.push("name: must not be empty".to_owned());
    }
    if parse_version(&raw.version).is_none() {
        problems.push(format!("version: {:?} is not MAJOR.MINOR.PATCH", raw.version));
    }
    for dep in &raw.depends_on {
        if let Err(e) = check_id(dep) {
            problems.push(format!("depends_on: {e}"));
        } else if *dep == raw.id {
            problems.push("depends_on: a plugin cannot depend on itself".to_owned());
        }
    }
    let mut input_formats = Vec::new();
    for f in &raw.input_formats {
        match f.parse::<Format>() {
            Ok(format) => input_formats.push(format),
            Err(e) => problems.push(format!("input_formats: {e}")),
        }
    }
    for kind in &raw.finding_kinds {
        if kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
            problems.push(format!("finding_kinds: {kind:?} must be lowercase letters, digits and underscores"));
        }
    }
    let entrypoint = match (&raw.entrypoint, &raw.builtin, cx.dir) {
        (Some(cmd), None, Some(_)) if !cmd.is_empty() && cmd.iter().all(|a| !a.is_empty()) => {
            Some(Entrypoint::Command(cmd.clone()))
        }
        (Some(_), None, Some(_)) => {
            problems.push("entrypoint: must be a non-empty command, e.g. [\"python3\", \"plugin.py\"]".to_owned());
            None
        }
        (None, Some(name), None) => Some(Entrypoint::Builtin(name.clone())),
        (_, Some(_), Some(_)) => {
            problems
                .push("builtin: only plugins shipped inside Vigil are built-in; give an entrypoint command".to_owned());
            None
        }
        _ => {
            problems.push("entrypoint: missing (the command that runs the plugin)".to_owned());
            None
        }
    };
    let budgets = Budgets {
        time_limit_ms: raw.budgets.time_limit_ms.unwrap_or(Budgets::default().time_limit_ms),
        memory_mb: raw.budgets.memory_mb.unwrap_or(Budgets::default().memory_mb),
        row_limit: raw.budgets.row_limit,
    };
    if !(1..=TIME_LIMIT_MS_MAX).contains(&budgets.time_limit_ms) {
        problems.push(format!("budgets.time_limit_ms: must be 1 to {TIME_LIMIT_MS_MAX}"));
    }
    if !(16..=MEMORY_MB_MAX).contains(&budgets.memory_mb) {
        problems.push(format!("budgets.memory_mb: must be 16 to {MEMORY_MB_MAX}"));
    }
    for (field, paths) in
        [("permissions.fs_read", &raw.permissions.fs_read), ("permissions.fs_write", &raw.permissions.fs_write)]
    {
        for path in paths {
            if let Err(e) = check_relative(path) {
                problems.push(format!("{field}: {e} (paths are relative to the run folder)"));
            }
        }
    }
    if let Some(min) = &raw.min_vigil_version {
        match (parse_version(min), parse_version(cx.vigil_version)) {
            (None, _) => problems.push(format!("min_vigil_version: {min:?} is not MAJOR.MINOR.PATCH")),
            (Some(needed), Some(have)) if needed > have => {
                problems.push(format!("min_vigil_version: needs Vigil {min} or newer, this is {}", cx.vigil_version))
            }
            _ => {}
        }
    }

    let mut schema_docs = BTreeMap::new();
    let (config_schema, output_schema) = match &cx.inline_schemas {
        Some((config, output)) => (Some(config.clone()), Some(output.clone())),
        None => (
            load_schema(cx.dir, "config_schema", raw.config_schema.as_deref(), &mut problems),
            load_schema(cx.dir, "output_schema", raw.output_schema.as_deref(), &mut problems),
        ),
    };
    let mut compile = |field: &str, doc: Option<Value>| -> Schema {
        let doc = doc.unwrap_or_else(|| serde_json::json!({ "type": "object" }));
        schema_docs.insert(field.to_owned(), doc.clone());
        Schema::compile(doc).unwrap_or_else(|e| {
            problems.push(format!("{field}: {e}"));
            Schema::any_object()
        })
    };
    let config_schema = compile("config_schema", config_schema);
    let output_schema = compile("output_schema", output_schema);

    let self_test = match (&raw.self_test, cx.dir) {
        (Some(test), Some(dir)) => match check_relative(&test.fixture) {
            Ok(rel) if dir.join(&rel).is_file() => {
                Some((dir.join(rel), test.config.clone().unwrap_or_else(|| serde_json::json!({}))))
            }
            Ok(rel) => {
                problems.push(format!("self_test.fixture: {} does not exist", dir.join(rel).display()));
                None
            }
            Err(e) => {
                problems.push(format!("self_test.fixture: {e}"));
                None
            }
        },
        _ => None,
    };

    let Some(entrypoint) = entrypoint else {
        return Err(ManifestErrors { location, problems });
    };
    if !problems.is_empty() {
        return Err(ManifestErrors { location, problems });
    }
    let canonical = serde_json::json!({
        "id": raw.id, "name": raw.name, "version": raw.version, "type": raw.kind,
        "entrypoint": entrypoint, "depends_on": raw.depends_on, "input_formats": input_formats,
        "finding_kinds": raw.finding_kinds,
        "budgets": budgets, "permissions": raw.permissions, "min_vigil_version": raw.min_vigil_version,
        "schemas": schema_docs,
    });
    let manifest_hash = Sha256Digest::of(canonical.to_string().as_bytes());
    let code_hash = match cx.dir {
        Some(dir) => hash_folder(dir).map_err(|e| ManifestErrors { location: location.clone(), problems: vec![e] })?,
        None => Sha256Digest::of(format!("builtin:{}:{}:{BUILTIN_SOURCE_SHA256}", raw.id, cx.vigil_version).as_bytes()),
    };
    Ok(Plugin {
        id: raw.id,
        name: raw.name,
        version: raw.version,
        kind: raw.kind,
        description: raw.description,
        entrypoint,
        depends_on: raw.depends_on,
        input_formats,
        finding_kinds: raw.finding_kinds,
        config_schema,
        output_schema,
        budgets,
        permissions: raw.permissions,
        min_vigil_version: raw.min_vigil_version,
        self_test,
        source: cx.dir.map_or(Source::Builtin, |d| Source::Folder(d.to_owned())),
        manifest_hash,
        code_hash,
    })
}

fn load_schema(dir: Option<&Path>, field: &str, name: Option<&str>, problems: &mut Vec<String>) -> Option<Value> {
    let (dir, name) = (dir?, name?);
    let rel = match check_relative(name) {
        Ok(rel) => rel,
        Err(e) => {
            problems.push(format!("{field}: {e}"));
            return None;
        }
    };
    let path = dir.join(rel);
    match read_capped(&path).and_then(|text| serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))) {
        Ok(doc) => Some(doc),
        Err(e) => {
            problems.push(format!("{field}: {}: {e}", path.display()));
            None
        }
    }
}

/// Reads a small text file, refusing anything over [`MANIFEST_BYTES_MAX`].
pub fn read_capped(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut text = String::new();
    file.take(MANIFEST_BYTES_MAX + 1).read_to_string(&mut text).map_err(|e| e.to_string())?;
    if text.len() as u64 > MANIFEST_BYTES_MAX {
        return Err(format!("larger than {MANIFEST_BYTES_MAX} bytes"));
    }
    Ok(text)
}

/// Files a plugin folder may hold before hashing it is refused.
const PLUGIN_FILES_MAX: usize = 10_000;

/// sha256 over every regular file under `dir` (relative path, NUL, length, content), in
/// path order. Symbolic links are hashed as their target text and never followed.
pub fn hash_folder(dir: &Path) -> Result<Sha256Digest, String> {
    let mut files = Vec::new();
    collect_files(dir, dir, &mut files)?;
    files.sort();
    let mut hasher = Sha256Hasher::new();
    for rel in files {
        let path = dir.join(&rel);
        let meta = std::fs::symlink_metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        hasher.update(rel.to_string_lossy().as_bytes());
        hasher.update(b"\0");
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            hasher.update(b"link:");
            hasher.update(target.to_string_lossy().as_bytes());
        } else {
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            hasher.update(&(bytes.len() as u64).to_le_bytes());
            hasher.update(&bytes);
        }
        hasher.update(b"\0");
    }
    Ok(hasher.finish())
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        let name = entry.file_name();
        // Interpreter caches change without the code changing.
        if name == "__pycache__" || name.to_string_lossy().ends_with(".pyc") {
            continue;
        }
        let kind = entry.file_type().map_err(|e| format!("{}: {e}", entry.path().display()))?;
        if kind.is_dir() {
            collect_files(root, &entry.path(), out)?;
        } else {
            out.push(entry.path().strip_prefix(root).unwrap_or(&entry.path()).to_owned());
        }
        if out.len() > PLUGIN_FILES_MAX {
            return Err(format!("{}: more than {PLUGIN_FILES_MAX} files", root.display()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw(toml_text: &str) -> RawManifest {
        toml::from_str(toml_text).expect("parses")
    }

    fn builtin_cx() -> ValidateContext<'static> {
        ValidateContext {
            dir: None,
            inline_schemas: Some((json!({"type": "object"}), json!({"type": "object"}))),
            vigil_version: "0.1.0",
        }
    }

    #[test]
    fn dialects() {
        assert!(Schema::compile(json!({"type": "object"})).is_ok());
        assert!(
            Schema::compile(json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"}))
                .is_ok()
        );
        assert!(
            Schema::compile(json!({"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"})).is_ok()
        );
        let err = Schema::compile(json!({"$schema": "http://json-schema.org/draft-04/schema#"})).expect_err("refused");
        assert!(err.contains("unsupported JSON Schema dialect"), "{err}");
        let err = Schema::compile(json!({"type": "no-such-type"})).expect_err("meta");
        assert!(err.contains("not a valid schema"), "{err}");
        // Draft-07 semantics: `items` as an array is tuple validation there.
        let tuple = Schema::compile(
            json!({"$schema": "http://json-schema.org/draft-07/schema#", "items": [{"type": "string"}]}),
        )
        .expect("07");
        assert!(tuple.check(&json!(["a", 1])).is_ok());
        assert!(tuple.check(&json!([1])).is_err());
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let manifest = raw(r#"
id = "Bad Id"
name = ""
version = "1.0"
type = "profile"
builtin = "x"
depends_on = ["Bad Id"]
input_formats = ["csv", "docx"]
min_vigil_version = "99.0.0"
[budgets]
time_limit_ms = 0
[permissions]
fs_write = ["../escape"]
"#);
        let err = validate(manifest, &builtin_cx()).expect_err("invalid");
        let text = err.problems.join("\n");
        for field in [
            "id:",
            "name:",
            "version:",
            "depends_on:",
            "input_formats:",
            "budgets.time_limit_ms:",
            "permissions.fs_write:",
            "min_vigil_version:",
        ] {
            assert!(text.contains(field), "missing {field} in:\n{text}");
        }
    }

    #[test]
    fn a_good_builtin_validates_and_hashes_stably() {
        let text = "id = \"core.x\"\nname = \"X\"\nversion = \"1.2.3\"\ntype = \"ingest\"\nbuiltin = \"x\"\n";
        let a = validate(raw(text), &builtin_cx()).expect("valid");
        let b = validate(raw(text), &builtin_cx()).expect("valid");
        assert_eq!(a.manifest_hash, b.manifest_hash);
        assert_eq!(a.entrypoint, Entrypoint::Builtin("x".into()));
        assert!(a.applies_to(Format::Csv));
        let bumped = validate(raw(&text.replace("1.2.3", "1.2.4")), &builtin_cx()).expect("valid");
        assert_ne!(a.manifest_hash, bumped.manifest_hash);
    }

    #[test]
    fn versions_and_paths() {
        assert_eq!(parse_version("1.2.3"), Some((1, 2, 3)));
        assert_eq!(parse_version("0.1.0-dev"), Some((0, 1, 0)));
        assert_eq!(parse_version("1.2"), None);
        assert!(check_relative("artifacts/x").is_ok());
        assert!(check_relative("/etc").is_err());
        assert!(check_relative("a/../../b").is_err());
    }
}

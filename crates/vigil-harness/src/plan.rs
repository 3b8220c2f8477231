//! Planning: which plugins run on an input, why, and in which order.
//!
//! Pure. Given the available plugins, the input's format and what the user asked for (a
//! named list of plugins, or nothing for the recommended set, minus deselections), it
//! returns a [`Plan`]: every selected plugin with the reason it was selected, grouped in
//! topological layers (a plugin runs only after everything it depends on), and every
//! plugin left out with the reason. Dependency cycles are reported with their path.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::format::Format;

/// What the planner needs to know about a plugin.
#[derive(Clone, Debug)]
pub struct Candidate<'a> {
    pub id: &'a str,
    pub version: &'a str,
    pub depends_on: &'a [String],
    pub applies: bool,
    pub enabled: bool,
}

/// One plugin in a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PlannedStep {
    pub plugin_id: String,
    pub version: String,
    /// 0 for plugins without dependencies; one more than the deepest dependency otherwise.
    pub layer: u32,
    pub depends_on: Vec<String>,
    pub reason: String,
}

/// A plugin left out of a plan, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Excluded {
    pub plugin_id: String,
    pub reason: String,
}

/// The plan for one run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Plan {
    pub format: Format,
    /// The pipeline asked for, or `None` for the recommended plan.
    pub pipeline: Option<Vec<String>>,
    pub steps: Vec<PlannedStep>,
    pub excluded: Vec<Excluded>,
}

impl Plan {
    /// Plugin ids by layer, in execution order.
    pub fn layers(&self) -> Vec<Vec<&str>> {
        let mut layers: BTreeMap<u32, Vec<&str>> = BTreeMap::new();
        for step in &self.steps {
            layers.entry(step.layer).or_default().push(&step.plugin_id);
        }
        layers.into_values().collect()
    }

    pub fn step(&self, id: &str) -> Option<&PlannedStep> {
        self.steps.iter().find(|s| s.plugin_id == id)
    }

    /// The ids of every plugin the plan runs.
    pub fn plugin_ids(&self) -> BTreeSet<&str> {
        self.steps.iter().map(|s| s.plugin_id.as_str()).collect()
    }
}

/// Why no plan could be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("unknown plugin {0:?} in the pipeline")]
    UnknownPlugin(String),
    #[error("plugin {plugin:?} depends on {missing:?}, which is not installed")]
    MissingDependency { plugin: String, missing: String },
    #[error("plugin {plugin:?} is disabled; enable it or leave it out of the pipeline")]
    Disabled { plugin: String },
    #[error("dependency cycle: {}", .0.join(" → "))]
    Cycle(Vec<String>),
    #[error("nothing to run: {0}")]
    Empty(String),
}

/// Makes the plan. `pipeline` names plugins to run (their dependencies come along);
/// `None` selects every enabled plugin that applies to the input. `deselect` removes
/// plugins, and with them everything that depends on them.
pub fn plan(
    candidates: &[Candidate<'_>],
    format: Format,
    pipeline: Option<&[String]>,
    deselect: &[String],
) -> Result<Plan, PlanError> {
    let by_id: BTreeMap<&str, &Candidate<'_>> = candidates.iter().map(|c| (c.id, c)).collect();
    let mut reasons: BTreeMap<&str, String> = BTreeMap::new();
    let mut excluded: BTreeMap<&str, String> = BTreeMap::new();

    match pipeline {
        Some(ids) => {
            for id in ids {
                let c = by_id.get(id.as_str()).ok_or_else(|| PlanError::UnknownPlugin(id.clone()))?;
                if !c.enabled {
                    return Err(PlanError::Disabled { plugin: id.clone() });
                }
                reasons.insert(c.id, "named in the pipeline".to_owned());
            }
        }
        None => {
            for c in candidates {
                if !c.enabled {
                    excluded.insert(c.id, "disabled".to_owned());
                } else if !c.applies {
                    excluded.insert(c.id, format!("does not apply to {format} input"));
                } else {
                    reasons.insert(c.id, format!("recommended for {format} input"));
                }
            }
        }
    }

    // Pull in dependencies, recording who needed them.
    let mut queue: Vec<&str> = reasons.keys().copied().collect();
    while let Some(id) = queue.pop() {
        let c = by_id[id];
        for dep in c.depends_on {
            let d = by_id
                .get(dep.as_str())
                .ok_or_else(|| PlanError::MissingDependency { plugin: id.to_owned(), missing: dep.clone() })?;
            if !d.enabled {
                return Err(PlanError::Disabled { plugin: dep.clone() });
            }
            if !reasons.contains_key(d.id) {
                reasons.insert(d.id, format!("required by {id}"));
                excluded.remove(d.id);
                queue.push(d.id);
            }
        }
    }

    // Deselection removes a plugin and, transitively, what depends on it.
    let mut removed: BTreeSet<&str> = BTreeSet::new();
    for id in deselect {
        if let Some(c) = by_id.get(id.as_str())
            && reasons.remove(c.id).is_some()
        {
            excluded.insert(c.id, "deselected".to_owned());
            removed.insert(c.id);
        }
    }
    loop {
        let dependents: Vec<(&str, &str)> = reasons
            .keys()
            .filter_map(|id| {
                by_id[id].depends_on.iter().find(|d| removed.contains(d.as_str())).map(|d| (*id, by_id[d.as_str()].id))
            })
            .collect();
        if dependents.is_empty() {
            break;
        }
        for (id, dep) in dependents {
            reasons.remove(id);
            excluded.insert(id, format!("depends on {dep}, which was deselected"));
            removed.insert(id);
        }
    }

    let selected: Vec<&str> = reasons.keys().copied().collect();
    if selected.is_empty() {
        return Err(PlanError::Empty(format!("no enabled plugin applies to {format} input")));
    }
    let layers = layer(&selected, |id| by_id[id].depends_on.iter().map(String::as_str).collect())?;
    let steps = selected
        .iter()
        .map(|id| {
            let c = by_id[id];
            PlannedStep {
                plugin_id: c.id.to_owned(),
                version: c.version.to_owned(),
                layer: layers[id],
                depends_on: c.depends_on.to_vec(),
                reason: reasons[id].clone(),
            }
        })
        .collect::<Vec<_>>();
    let mut steps = steps;
    steps.sort_by(|a, b| (a.layer, &a.plugin_id).cmp(&(b.layer, &b.plugin_id)));
    Ok(Plan {
        format,
        pipeline: pipeline.map(<[String]>::to_vec),
        steps,
        excluded: excluded.into_iter().map(|(id, reason)| Excluded { plugin_id: id.to_owned(), reason }).collect(),
    })
}

/// Assigns each node its layer (longest path from a root), or reports a cycle with its
/// path. `deps` gives a node's dependencies; those outside `nodes` are ignored.
pub fn layer<'a>(
    nodes: &[&'a str],
    deps: impl Fn(&'a str) -> Vec<&'a str>,
) -> Result<BTreeMap<&'a str, u32>, PlanError> {
    let set: BTreeSet<&str> = nodes.iter().copied().collect();
    let edges: BTreeMap<&str, Vec<&str>> =
        nodes.iter().map(|&n| (n, deps(n).into_iter().filter(|d| set.contains(d)).collect())).collect();
    let mut layers: BTreeMap<&str, u32> = BTreeMap::new();
    // Kahn's algorithm over "depends on" edges.
    let mut remaining: BTreeMap<&str, usize> = edges.iter().map(|(n, d)| (*n, d.len())).collect();
    let mut ready: Vec<&str> = remaining.iter().filter(|(_, d)| **d == 0).map(|(n, _)| *n).collect();
    while let Some(n) = ready.pop() {
        remaining.remove(n);
        let level = edges[n].iter().map(|d| layers[d] + 1).max().unwrap_or(0);
        layers.insert(n, level);
        for (m, ds) in &edges {
            if ds.contains(&n)
                && let Some(count) = remaining.get_mut(m)
            {
                *count -= 1;
                if *count == 0 {
                    ready.push(m);
                }
            }
        }
    }
    if let Some(&start) = remaining.keys().next() {
        return Err(PlanError::Cycle(find_cycle(start, &edges, &remaining)));
    }
    Ok(layers)
}

/// Follows unresolved dependencies from `start` until a node repeats: that loop is a cycle.
fn find_cycle<'a>(
    start: &'a str,
    edges: &BTreeMap<&'a str, Vec<&'a str>>,
    stuck: &BTreeMap<&'a str, usize>,
) -> Vec<String> {
    let mut path: Vec<&str> = vec![start];
    loop {
        let last = path[path.len() - 1];
        let Some(&next) = edges[last].iter().find(|d| stuck.contains_key(*d)) else {
            return path.iter().map(|s| (*s).to_owned()).collect();
        };
        if let Some(at) = path.iter().position(|p| *p == next) {
            let mut cycle: Vec<String> = path[at..].iter().map(|s| (*s).to_owned()).collect();
            cycle.push(next.to_owned());
            return cycle;
        }
        path.push(next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    struct Spec {
        id: &'static str,
        deps: Vec<String>,
        applies: bool,
        enabled: bool,
    }

    fn spec(id: &'static str, deps: &[&str]) -> Spec {
        Spec { id, deps: deps.iter().map(|d| (*d).to_owned()).collect(), applies: true, enabled: true }
    }

    fn candidates(specs: &[Spec]) -> Vec<Candidate<'_>> {
        specs
            .iter()
            .map(|s| Candidate {
                id: s.id,
                version: "1.0.0",
                depends_on: &s.deps,
                applies: s.applies,
                enabled: s.enabled,
            })
            .collect()
    }

    #[test]
    fn recommended_plan_layers_and_reasons() {
        let mut audio = spec("audio", &[]);
        audio.applies = false;
        let specs = [spec("ingest", &[]), spec("profile", &["ingest"]), spec("report", &["profile", "ingest"]), audio];
        let plan = plan(&candidates(&specs), Format::Csv, None, &[]).expect("plan");
        assert_eq!(plan.layers(), vec![vec!["ingest"], vec!["profile"], vec!["report"]]);
        assert_eq!(plan.step("profile").map(|s| s.reason.as_str()), Some("recommended for csv input"));
        assert_eq!(
            plan.excluded,
            vec![Excluded { plugin_id: "audio".into(), reason: "does not apply to csv input".into() }]
        );
    }

    #[test]
    fn named_pipelines_pull_in_dependencies() {
        let specs = [spec("ingest", &[]), spec("profile", &["ingest"]), spec("other", &[])];
        let plan = plan(&candidates(&specs), Format::Csv, Some(&["profile".to_owned()]), &[]).expect("plan");
        assert_eq!(plan.step("ingest").map(|s| s.reason.as_str()), Some("required by profile"));
        assert!(plan.step("other").is_none());
        let err = super::plan(&candidates(&specs), Format::Csv, Some(&["nope".to_owned()]), &[]).expect_err("unknown");
        assert_eq!(err, PlanError::UnknownPlugin("nope".into()));
    }

    #[test]
    fn deselecting_removes_dependents_too() {
        let specs = [
            spec("ingest", &[]),
            spec("profile", &["ingest"]),
            spec("outliers", &["profile"]),
            spec("pii", &["ingest"]),
        ];
        let plan = plan(&candidates(&specs), Format::Csv, None, &["profile".to_owned()]).expect("plan");
        assert_eq!(plan.layers(), vec![vec!["ingest"], vec!["pii"]]);
        let reason = |id: &str| plan.excluded.iter().find(|e| e.plugin_id == id).map(|e| e.reason.clone());
        assert_eq!(reason("profile").as_deref(), Some("deselected"));
        assert_eq!(reason("outliers").as_deref(), Some("depends on profile, which was deselected"));
    }

    #[test]
    fn cycles_are_reported_with_their_path() {
        let specs = [spec("a", &["b"]), spec("b", &["c"]), spec("c", &["a"]), spec("d", &[])];
        let err = plan(&candidates(&specs), Format::Csv, None, &[]).expect_err("cycle");
        let PlanError::Cycle(path) = &err else { panic!("{err:?}") };
        assert_eq!(path.first(), path.last());
        assert_eq!(path.len(), 4, "{path:?}");
        assert!(err.to_string().starts_with("dependency cycle: "), "{err}");
    }

    #[test]
    fn missing_and_disabled_dependencies_are_errors() {
        let specs = [spec("profile", &["ingest"])];
        assert!(matches!(plan(&candidates(&specs), Format::Csv, None, &[]), Err(PlanError::MissingDependency { .. })));
        let mut ingest = spec("ingest", &[]);
        ingest.enabled = false;
        let specs = [ingest, spec("profile", &["ingest"])];
        assert!(matches!(plan(&candidates(&specs), Format::Csv, None, &[]), Err(PlanError::Disabled { .. })));
    }

    proptest! {
        /// Any acyclic graph (edges only to lower indices) plans, and every plugin's layer
        /// is above all of its dependencies' layers.
        #[test]
        fn layers_respect_dependencies(edges in proptest::collection::vec(proptest::collection::vec(any::<prop::sample::Index>(), 0..4), 1..12)) {
            let ids: Vec<String> = (0..edges.len()).map(|i| format!("p{i:02}")).collect();
            let deps: Vec<Vec<String>> = edges.iter().enumerate().map(|(i, es)| {
                if i == 0 { return Vec::new(); }
                let mut d: Vec<String> = es.iter().map(|e| ids[e.index(i)].clone()).collect();
                d.sort();
                d.dedup();
                d
            }).collect();
            let cands: Vec<Candidate<'_>> = ids.iter().zip(&deps).map(|(id, d)| Candidate { id, version: "1.0.0", depends_on: d, applies: true, enabled: true }).collect();
            let plan = plan(&cands, Format::Csv, None, &[]).expect("acyclic graphs plan");
            prop_assert_eq!(plan.steps.len(), ids.len());
            for step in &plan.steps {
                for dep in &step.depends_on {
                    let dep_layer = plan.step(dep).map(|s| s.layer).unwrap_or(u32::MAX);
                    prop_assert!(dep_layer < step.layer);
                }
            }
        }
    }
}

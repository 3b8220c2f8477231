//! The replay file: an engine's recorded inputs (and decisions), one JSON object per line.
//!
//! A line is one of:
//! - `{"snapshot": <engine state>, "seq": N}`: start from this state (it must come first);
//! - `{"seq": N, "input": <input>, "decisions": [...]}`: an input as the server logged it,
//!   with the decisions it led to;
//! - `{"at_us": ..., "type": "observe", ...}`: a bare input (a hand-written scenario).
//!
//! [`Replayer`] feeds the inputs to a fresh engine (or the snapshot) and compares each
//! recomputed decision list with the recorded one, so `vigil immune replay` proves the
//! decisions follow from the inputs alone.

use serde::{Deserialize, Serialize};

use crate::engine::{Decision, Engine, EngineConfig, Stamped};

/// One line of a replay file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Line {
    Snapshot { snapshot: Box<Engine>, seq: i64 },
    Logged { seq: i64, input: Stamped, decisions: Vec<Decision> },
    Bare(Stamped),
}

/// Why a replay could not go on.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("line {line}: not a snapshot, a logged input or an input: {source}")]
    Parse { line: usize, source: serde_json::Error },
    #[error("line {line}: a snapshot may only start the file")]
    LateSnapshot { line: usize },
    #[error("line {line}: the engine refused the input: {source}")]
    Refused { line: usize, source: crate::engine::EngineError },
}

/// A recomputed decision list that differs from the recorded one.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Mismatch {
    pub line: usize,
    pub seq: Option<i64>,
    pub recorded: Vec<Decision>,
    pub replayed: Vec<Decision>,
}

/// What a replay found.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    pub inputs: u64,
    pub decisions: u64,
    /// Inputs that carried recorded decisions to compare with.
    pub compared: u64,
    pub mismatches: u64,
    /// The first few mismatches.
    pub first_mismatches: Vec<Mismatch>,
    pub started_from_snapshot: Option<i64>,
}

/// Mismatches kept in full.
const MISMATCHES_KEPT: usize = 5;

/// Feeds a replay file to an engine, line by line.
#[derive(Debug)]
pub struct Replayer {
    engine: Engine,
    summary: Summary,
    line: usize,
}

impl Replayer {
    /// Starts from a fresh engine with `config` (a snapshot line replaces it).
    pub fn new(config: EngineConfig) -> Self {
        Replayer { engine: Engine::new(config), summary: Summary::default(), line: 0 }
    }

    /// Applies one line; returns the decisions it recomputed. Blank lines are skipped.
    pub fn line(&mut self, text: &str) -> Result<Vec<Decision>, ReplayError> {
        self.line += 1;
        let line = self.line;
        if text.trim().is_empty() {
            return Ok(Vec::new());
        }
        let parsed: Line = serde_json::from_str(text).map_err(|source| ReplayError::Parse { line, source })?;
        let (seq, input, recorded) = match parsed {
            Line::Snapshot { snapshot, seq } => {
                if self.summary.inputs > 0 || self.summary.started_from_snapshot.is_some() {
                    return Err(ReplayError::LateSnapshot { line });
                }
                self.engine = *snapshot;
                self.summary.started_from_snapshot = Some(seq);
                return Ok(Vec::new());
            }
            Line::Logged { seq, input, decisions } => (Some(seq), input, Some(decisions)),
            Line::Bare(input) => (None, input, None),
        };
        let replayed = self.engine.apply(&input).map_err(|source| ReplayError::Refused { line, source })?;
        self.summary.inputs += 1;
        self.summary.decisions += replayed.len() as u64;
        if let Some(recorded) = recorded {
            self.summary.compared += 1;
            if recorded != replayed {
                self.summary.mismatches += 1;
                if self.summary.first_mismatches.len() < MISMATCHES_KEPT {
                    self.summary.first_mismatches.push(Mismatch { line, seq, recorded, replayed: replayed.clone() });
                }
            }
        }
        Ok(replayed)
    }

    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Input, Observation};

    fn observe(at_us: i64, latency_ms: f64) -> Stamped {
        Stamped {
            at_us,
            input: Input::Observe(Observation {
                agent_id: "a".into(),
                latency_ms,
                input_tokens: 100,
                ..Observation::default()
            }),
        }
    }

    #[test]
    fn logged_lines_are_compared_and_tampering_is_found() {
        let mut engine = Engine::new(EngineConfig::default());
        let mut lines = Vec::new();
        for i in 0..40 {
            let input = observe(i, if i == 39 { 90_000.0 } else { 500.0 + (i % 7) as f64 * 10.0 });
            let decisions = engine.apply(&input).expect("apply");
            lines.push(serde_json::to_string(&Line::Logged { seq: i + 1, input, decisions }).expect("json"));
        }
        let mut replayer = Replayer::new(EngineConfig::default());
        for l in &lines {
            replayer.line(l).expect("line");
        }
        let s = replayer.summary();
        assert_eq!((s.inputs, s.compared, s.mismatches), (40, 40, 0));
        assert!(s.decisions >= 2, "the spike decided something: {s:?}");
        assert_eq!(replayer.engine(), &engine);

        // Change one recorded latency: the decisions no longer follow.
        let tampered = lines[39].replace("90000.0", "500.0");
        let mut replayer = Replayer::new(EngineConfig::default());
        for l in lines[..39].iter().chain([&tampered]) {
            replayer.line(l).expect("line");
        }
        assert_eq!(replayer.summary().mismatches, 1);
        assert_eq!(replayer.summary().first_mismatches[0].line, 40);
    }

    #[test]
    fn snapshots_start_a_file_and_bare_inputs_are_accepted() {
        let mut engine = Engine::new(EngineConfig::default());
        for i in 0..30 {
            engine.apply(&observe(i, 500.0)).expect("apply");
        }
        let snapshot = serde_json::to_string(&serde_json::json!({ "snapshot": engine, "seq": 30 })).expect("json");
        let mut replayer = Replayer::new(EngineConfig::default());
        replayer.line(&snapshot).expect("snapshot");
        replayer.line("").expect("blank");
        let bare = serde_json::to_string(&observe(31, 500.0)).expect("json");
        replayer.line(&bare).expect("bare input");
        assert_eq!(replayer.summary().started_from_snapshot, Some(30));
        assert_eq!(replayer.engine().agent("a").map(|a| a.observations), Some(31));
        assert!(matches!(replayer.line(&snapshot), Err(ReplayError::LateSnapshot { line: 4 })));
        assert!(matches!(replayer.line("{\"nope\": 1}"), Err(ReplayError::Parse { line: 5, .. })));
    }
}

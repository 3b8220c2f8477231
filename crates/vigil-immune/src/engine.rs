//! The engine: every immune decision, as a pure function of timestamped inputs.
//!
//! [`Engine::apply`] takes one [`Stamped`] input (an observed call, the passing of time, an
//! executor's result, an operator's word) and returns the [`Decision`]s it led to. The
//! engine reads no clock and does no IO: time is the input's `at_us`, and acting on a
//! decision (refusing calls, running a healing action, writing the audit log) is the
//! caller's job, which reports back with another input. So a recorded stream of inputs
//! replays to exactly the same decisions, and the whole state serializes for snapshots.
//!
//! Per agent the engine keeps a baseline per [`Metric`], its call and token rhythm
//! ([`crate::rhythm`]), the lifecycle, the system-prompt hash and the current episode. The
//! path of an infection:
//!
//! 1. An anomalous observation makes a healthy agent *suspected* (calls still flow). A
//!    rate that surged against the agent's daily shape for `rhythm.sustain` buckets counts
//!    as an anomaly of the call that closed the bucket.
//! 2. `confirm_anomalies` anomalous observations among the last `confirm_window` (or one
//!    severe one) confirm it, unless correlation finds most of the fleet anomalous: then one
//!    fleet incident records an external cause and no agent is touched.
//! 3. A confirmed agent is *draining* for `drain_grace_us`, then *quarantined*; an incident
//!    opens with the ranked diagnosis.
//! 4. The next action on the diagnosis's ladder runs (or waits for approval when its
//!    severity is at least `approval_min_severity`): *healing*, then *probation* on success.
//! 5. Probation passes after `probation_calls` normal observations against the baseline
//!    (learned faster after healing, relearned from scratch after a reset); an anomaly
//!    sends the agent back to quarantine and the next action. An empty ladder is
//!    *exhausted*: a person has to step in.
//!
//! Anomalous observations never teach a baseline, so a sick agent cannot make its sickness
//! normal.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::baseline::{Baseline, BaselineConfig};
use crate::correlation::{CorrelationConfig, Correlator, Verdict};
use crate::diagnosis::{Diagnosis, Episode, Feedback, Hypothesis, diagnose};
use crate::healing::{Action, ImmuneMemory, next_action};
use crate::lifecycle::{Event, Lifecycle, State};
use crate::rhythm::{Rhythm, RhythmConfig};
use crate::sentinel::{self, Anomaly, Metric, SentinelConfig};

/// How the engine decides.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct EngineConfig {
    pub baseline: BaselineConfig,
    pub sentinel: SentinelConfig,
    pub correlation: CorrelationConfig,
    /// Per-agent call and token rates against their daily shape.
    pub rhythm: RhythmConfig,
    /// Anomalous observations among the last `confirm_window` that confirm a suspicion.
    pub confirm_anomalies: u32,
    pub confirm_window: u32,
    /// A deviation this large confirms at once (for what the agent itself sends and does:
    /// tokens, tool calls, cost; not latency, errors or retries, which a provider outage
    /// causes too).
    pub severe_deviation: f64,
    /// An injection signal at least this strong is an anomaly.
    pub injection_threshold: f64,
    /// An injection signal at least this strong confirms at once.
    pub severe_injection: f64,
    /// Consecutive normal observations that clear a suspicion.
    pub clear_after: u32,
    /// How long a confirmed agent drains before it is quarantined (microseconds).
    pub drain_grace_us: i64,
    /// Normal observations (against a warm baseline) that pass probation.
    pub probation_calls: u32,
    /// Healing actions at least this severe wait for a person's approval (5: never).
    pub approval_min_severity: u8,
    /// Samples learned faster after a healing action.
    pub accelerate_samples: u64,
    /// Closed incidents kept (the oldest go first).
    pub closed_incidents_max: usize,
    /// Transitions kept per agent.
    pub history_max: usize,
    /// A healthy agent unseen this long (microseconds) is forgotten, baselines and all; if
    /// it comes back it relearns. Bounds the state when callers invent agent ids.
    pub agent_idle_us: i64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            baseline: BaselineConfig::default(),
            sentinel: SentinelConfig::default(),
            correlation: CorrelationConfig::default(),
            rhythm: RhythmConfig::default(),
            confirm_anomalies: 2,
            confirm_window: 3,
            severe_deviation: 12.0,
            injection_threshold: 0.5,
            severe_injection: 0.8,
            clear_after: 5,
            drain_grace_us: 2_000_000,
            probation_calls: 10,
            approval_min_severity: 3,
            accelerate_samples: 50,
            closed_incidents_max: 1_000,
            history_max: 200,
            agent_idle_us: 7 * 24 * 3_600 * 1_000_000,
        }
    }
}

/// One model call, as the engine sees it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Observation {
    pub agent_id: String,
    pub latency_ms: f64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub tool_calls: u32,
    pub tool_names: Vec<String>,
    /// `None` when the call could not be priced.
    pub cost_usd: Option<f64>,
    pub retries: u32,
    pub error: bool,
    pub prompt_sha256: Option<String>,
    /// Strength of a prompt-injection signal in the call's input, 0 to 1.
    pub injection: f64,
    pub injection_patterns: Vec<String>,
    /// When the call started (microseconds since the epoch), when known. A call that
    /// started before an agent's probation neither judges nor teaches it: it was made
    /// before the cure.
    pub started_us: Option<i64>,
}

/// What can happen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Input {
    Observe(Observation),
    /// Time passed (drain deadlines fall due).
    Tick,
    /// An executor finished a healing action.
    ActionResult {
        action_id: String,
        ok: bool,
        detail: String,
    },
    Approve {
        approval_id: String,
        by: String,
    },
    Reject {
        approval_id: String,
        by: String,
    },
    /// Heal anyway after a rejection.
    HealNow {
        approval_id: String,
        by: String,
    },
    /// An operator's verdict on an incident's diagnosis.
    Feedback {
        incident_id: String,
        diagnosis: Diagnosis,
        confirmed: bool,
        by: String,
    },
    Quarantine {
        agent_id: String,
        by: String,
    },
    Release {
        agent_id: String,
        by: String,
    },
}

/// An input and when it happened (microseconds since the Unix epoch).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Stamped {
    pub at_us: i64,
    #[serde(flatten)]
    pub input: Input,
}

/// How an approval stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Rejected,
    /// Rejected, then healed anyway.
    HealedNow,
    /// The agent was released or quarantined by hand before anyone decided.
    Withdrawn,
}

/// A healing action waiting for (or given) a person's decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Approval {
    pub approval_id: String,
    pub incident_id: String,
    pub agent_id: String,
    pub action: Action,
    pub severity: u8,
    pub diagnosis: Diagnosis,
    pub status: ApprovalStatus,
    pub requested_at_us: i64,
    pub decided_at_us: Option<i64>,
    pub decided_by: Option<String>,
}

/// How an incident ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    Open,
    /// Probation passed.
    Healed,
    /// Every affected agent recovered on its own (fleet-wide external cause).
    Recovered,
    /// The ladder ran out.
    Exhausted,
    /// An operator released the agent.
    Released,
    /// Correlation found the cause outside the agent; the fleet incident carries on.
    External,
}

/// One healing attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Attempt {
    pub action_id: String,
    pub action: Action,
    pub started_at_us: i64,
    /// `None` while it runs or is on probation.
    pub cured: Option<bool>,
    pub detail: Option<String>,
}

/// An infection, from confirmation to its end, with its timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Incident {
    pub incident_id: String,
    /// The agents involved: one, or every agent a fleet-wide cause touched.
    pub agents: Vec<String>,
    pub verdict: Verdict,
    pub hypotheses: Vec<Hypothesis>,
    pub status: IncidentStatus,
    pub opened_at_us: i64,
    pub closed_at_us: Option<i64>,
    pub attempts: Vec<Attempt>,
    /// Operator verdicts: (diagnosis, confirmed, by).
    pub feedback: Vec<(Diagnosis, bool, String)>,
    /// Every decision about this incident, oldest first (capped).
    pub timeline: Vec<Decision>,
}

impl Incident {
    pub fn diagnosis(&self) -> Diagnosis {
        self.hypotheses.first().map_or(Diagnosis::Unknown, |h| h.diagnosis)
    }

    /// The diagnosis healing follows: the most likely one that has a ladder. An external
    /// cause ranked first for a quarantined agent (only part of the fleet was affected)
    /// must not leave it with nothing to try.
    pub fn healing_diagnosis(&self) -> Diagnosis {
        self.hypotheses
            .iter()
            .map(|h| h.diagnosis)
            .find(|d| !crate::healing::ladder(*d).is_empty())
            .unwrap_or(Diagnosis::Unknown)
    }
}

/// How a closed incident is summed up in its closing decision.
const TIMELINE_MAX: usize = 500;

/// What the engine decided.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum DecisionKind {
    Anomalies {
        agent_id: String,
        anomalies: Vec<Anomaly>,
    },
    Transition {
        agent_id: String,
        from: State,
        event: Event,
        to: State,
    },
    IncidentOpened {
        incident_id: String,
        agent_id: String,
        verdict: Verdict,
    },
    /// An agent joined an open fleet-wide incident.
    IncidentJoined {
        incident_id: String,
        agent_id: String,
    },
    Diagnosed {
        incident_id: String,
        hypotheses: Vec<Hypothesis>,
    },
    ApprovalRequested {
        approval_id: String,
        incident_id: String,
        agent_id: String,
        action: Action,
        severity: u8,
    },
    ApprovalDecided {
        approval_id: String,
        status: ApprovalStatus,
        by: String,
    },
    /// Run this action (the caller's executors do, and answer with [`Input::ActionResult`]).
    Execute {
        action_id: String,
        incident_id: String,
        agent_id: String,
        action: Action,
        diagnosis: Diagnosis,
    },
    ActionFinished {
        action_id: String,
        incident_id: String,
        agent_id: String,
        action: Action,
        ok: bool,
        detail: String,
    },
    /// Probation ended: the action cured the agent or did not.
    CureJudged {
        incident_id: String,
        agent_id: String,
        action: Action,
        cured: bool,
    },
    IncidentClosed {
        incident_id: String,
        status: IncidentStatus,
    },
    FeedbackRecorded {
        incident_id: String,
        diagnosis: Diagnosis,
        confirmed: bool,
        by: String,
    },
}

/// A decision and when it was made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Decision {
    pub at_us: i64,
    #[serde(flatten)]
    pub kind: DecisionKind,
}

/// An input the engine refuses (nothing changes).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("no approval {0:?}")]
    UnknownApproval(String),
    #[error("approval {id:?} is {status:?}; {wanted}")]
    ApprovalNotOpen { id: String, status: ApprovalStatus, wanted: &'static str },
    #[error("no incident {0:?}")]
    UnknownIncident(String),
    #[error("no healing action {0:?} is running")]
    UnknownAction(String),
    #[error("agent {agent:?} is {state:?} and cannot be {wanted}")]
    WrongState { agent: String, state: State, wanted: &'static str },
    #[error("an empty agent id")]
    EmptyAgent,
}

/// What the engine is waiting for from an agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Waiting {
    Nothing,
    Drain {
        until_us: i64,
    },
    Approval {
        approval_id: String,
    },
    Action {
        action_id: String,
        action: Action,
    },
    /// `since_us`: when probation began; calls that started earlier do not judge the cure.
    Probation {
        action: Action,
        normal: u32,
        since_us: i64,
    },
}

/// Calls remembered per agent for the windowed metrics (retries, errors).
const RECENT_CALLS: usize = 5;

/// Everything the engine knows about one agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct AgentState {
    pub lifecycle: Lifecycle,
    /// One per [`Metric`], in [`Metric::ALL`] order.
    pub baselines: Vec<Baseline>,
    pub prompt_sha256: Option<String>,
    pub observations: u64,
    pub anomalies: u64,
    pub last_seen_us: i64,
    pub incident_id: Option<String>,
    /// Actions that did not cure this agent in its current incident.
    pub failed: Vec<Action>,
    episode: Option<Episode>,
    /// (error, retries) of the last calls, newest last.
    recent: VecDeque<(bool, u32)>,
    /// Whether each of the last `confirm_window` observations was anomalous.
    flags: VecDeque<bool>,
    /// Calls and tokens per bucket, judged against the agent's daily shape.
    rhythm: Rhythm,
    normal_streak: u32,
    waiting: Waiting,
}

impl Default for AgentState {
    fn default() -> Self {
        AgentState {
            lifecycle: Lifecycle::default(),
            baselines: vec![Baseline::default(); Metric::ALL.len()],
            prompt_sha256: None,
            observations: 0,
            anomalies: 0,
            last_seen_us: 0,
            incident_id: None,
            failed: Vec::new(),
            episode: None,
            recent: VecDeque::with_capacity(RECENT_CALLS),
            flags: VecDeque::new(),
            rhythm: Rhythm::default(),
            normal_streak: 0,
            waiting: Waiting::Nothing,
        }
    }
}

impl AgentState {
    pub fn state(&self) -> State {
        self.lifecycle.state()
    }

    pub fn baseline(&self, metric: Metric) -> &Baseline {
        &self.baselines[metric.index()]
    }

    /// Normal observations so far in probation, if on probation.
    pub fn probation_progress(&self) -> Option<u32> {
        match self.waiting {
            Waiting::Probation { normal, .. } => Some(normal),
            _ => None,
        }
    }

    /// The approval this agent waits for, if any.
    pub fn pending_approval(&self) -> Option<&str> {
        match &self.waiting {
            Waiting::Approval { approval_id } => Some(approval_id),
            _ => None,
        }
    }
}

/// The immune system's whole state. Fields added later default when an older snapshot
/// is restored.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Engine {
    config: EngineConfig,
    now_us: i64,
    agents: BTreeMap<String, AgentState>,
    incidents: BTreeMap<String, Incident>,
    approvals: BTreeMap<String, Approval>,
    /// Running actions: action id → agent id.
    running: BTreeMap<String, String>,
    /// Draining agents and when they are due.
    draining: BTreeMap<String, i64>,
    /// The open fleet-wide incident, if any.
    fleet_incident: Option<String>,
    correlator: Correlator,
    memory: ImmuneMemory,
    feedback: Feedback,
    /// Counters behind the incident, approval and action ids.
    next_incident: u64,
    next_approval: u64,
    next_action: u64,
    observed: u64,
}

/// Operator verdicts kept per incident (the newest).
const FEEDBACK_MAX: usize = 100;
/// The observations between correlation prunes.
const PRUNE_EVERY: u64 = 4_096;

impl Engine {
    pub fn new(config: EngineConfig) -> Self {
        Engine { config, ..Engine::default() }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Replaces the configuration (after a restore: the log was made with the old one).
    pub fn set_config(&mut self, config: EngineConfig) {
        self.config = config;
    }

    pub fn now_us(&self) -> i64 {
        self.now_us
    }

    pub fn agent(&self, id: &str) -> Option<&AgentState> {
        self.agents.get(id)
    }

    pub fn agents(&self) -> impl Iterator<Item = (&str, &AgentState)> {
        self.agents.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn incident(&self, id: &str) -> Option<&Incident> {
        self.incidents.get(id)
    }

    /// Incidents, newest first.
    pub fn incidents(&self) -> impl Iterator<Item = &Incident> {
        self.incidents.values().rev()
    }

    pub fn approval(&self, id: &str) -> Option<&Approval> {
        self.approvals.get(id)
    }

    /// Approvals, newest first.
    pub fn approvals(&self) -> impl Iterator<Item = &Approval> {
        self.approvals.values().rev()
    }

    pub fn memory(&self) -> &ImmuneMemory {
        &self.memory
    }

    pub fn feedback(&self) -> &Feedback {
        &self.feedback
    }

    /// Healing actions started and not yet reported on: (action id, agent, action,
    /// incident, diagnosis). After a restart these are run again.
    pub fn running(&self) -> Vec<(String, String, Action, String, Diagnosis)> {
        self.running
            .iter()
            .filter_map(|(action_id, agent_id)| {
                let agent = self.agents.get(agent_id)?;
                let Waiting::Action { action, .. } = &agent.waiting else { return None };
                let incident_id = agent.incident_id.clone()?;
                let diagnosis =
                    self.incidents.get(&incident_id).map_or(Diagnosis::Unknown, Incident::healing_diagnosis);
                Some((action_id.clone(), agent_id.clone(), *action, incident_id, diagnosis))
            })
            .collect()
    }

    /// When the engine next needs a [`Input::Tick`], if it waits for time at all.
    pub fn next_deadline(&self) -> Option<i64> {
        self.draining.values().min().copied()
    }

    /// Applies one input. On an error nothing changed.
    pub fn apply(&mut self, input: &Stamped) -> Result<Vec<Decision>, EngineError> {
        self.validate(&input.input)?;
        self.now_us = self.now_us.max(input.at_us);
        let mut out = Out { at_us: self.now_us, decisions: Vec::new() };
        match &input.input {
            Input::Observe(observation) => self.observe(observation, &mut out),
            Input::Tick => self.tick(&mut out),
            Input::ActionResult { action_id, ok, detail } => self.action_result(action_id, *ok, detail, &mut out),
            Input::Approve { approval_id, by } => self.decide(approval_id, ApprovalStatus::Approved, by, &mut out),
            Input::Reject { approval_id, by } => self.decide(approval_id, ApprovalStatus::Rejected, by, &mut out),
            Input::HealNow { approval_id, by } => self.decide(approval_id, ApprovalStatus::HealedNow, by, &mut out),
            Input::Feedback { incident_id, diagnosis, confirmed, by } => {
                self.feedback.record(*diagnosis, *confirmed);
                if let Some(incident) = self.incidents.get_mut(incident_id) {
                    if incident.feedback.len() >= FEEDBACK_MAX {
                        incident.feedback.remove(0);
                    }
                    incident.feedback.push((*diagnosis, *confirmed, by.clone()));
                }
                out.push(DecisionKind::FeedbackRecorded {
                    incident_id: incident_id.clone(),
                    diagnosis: *diagnosis,
                    confirmed: *confirmed,
                    by: by.clone(),
                });
            }
            Input::Quarantine { agent_id, by } => self.operator_quarantine(agent_id, by, &mut out),
            Input::Release { agent_id, by } => self.operator_release(agent_id, by, &mut out),
        }
        self.file_timelines(&out.decisions);
        Ok(out.decisions)
    }

    /// Refuses what cannot be applied, before anything changes.
    fn validate(&self, input: &Input) -> Result<(), EngineError> {
        let approval = |id: &String, want: ApprovalStatus, wanted: &'static str| {
            let a = self.approvals.get(id).ok_or_else(|| EngineError::UnknownApproval(id.clone()))?;
            if a.status == want {
                Ok(())
            } else {
                Err(EngineError::ApprovalNotOpen { id: id.clone(), status: a.status, wanted })
            }
        };
        match input {
            Input::Observe(o) if o.agent_id.is_empty() => Err(EngineError::EmptyAgent),
            Input::Observe(_) | Input::Tick => Ok(()),
            Input::ActionResult { action_id, .. } => {
                if self.running.contains_key(action_id) {
                    Ok(())
                } else {
                    Err(EngineError::UnknownAction(action_id.clone()))
                }
            }
            Input::Approve { approval_id, .. } => {
                approval(approval_id, ApprovalStatus::Pending, "only a pending one is approved")?;
                self.approval_still_applies(approval_id)
            }
            Input::Reject { approval_id, .. } => {
                approval(approval_id, ApprovalStatus::Pending, "only a pending one is rejected")
            }
            Input::HealNow { approval_id, .. } => {
                approval(approval_id, ApprovalStatus::Rejected, "heal-now applies to a rejected one")?;
                self.approval_still_applies(approval_id)
            }
            Input::Feedback { incident_id, .. } => {
                if self.incidents.contains_key(incident_id) {
                    Ok(())
                } else {
                    Err(EngineError::UnknownIncident(incident_id.clone()))
                }
            }
            Input::Quarantine { agent_id, .. } => {
                let state = self.agents.get(agent_id).map_or(State::Healthy, AgentState::state);
                if agent_id.is_empty() {
                    Err(EngineError::EmptyAgent)
                } else if crate::lifecycle::next(state, Event::OperatorQuarantine).is_none() {
                    Err(EngineError::WrongState { agent: agent_id.clone(), state, wanted: "quarantined" })
                } else {
                    Ok(())
                }
            }
            Input::Release { agent_id, .. } => {
                let state = self.agents.get(agent_id).map_or(State::Healthy, AgentState::state);
                if crate::lifecycle::next(state, Event::OperatorRelease).is_none() {
                    Err(EngineError::WrongState { agent: agent_id.clone(), state, wanted: "released" })
                } else {
                    Ok(())
                }
            }
        }
    }

    /// An approval's action may start only while its agent is still quarantined in the same
    /// incident and waits for nothing else (not after a release and a new infection).
    fn approval_still_applies(&self, approval_id: &str) -> Result<(), EngineError> {
        let Some(approval) = self.approvals.get(approval_id) else {
            return Err(EngineError::UnknownApproval(approval_id.to_owned()));
        };
        let agent = self.agents.get(&approval.agent_id);
        let state = agent.map_or(State::Healthy, AgentState::state);
        let same_incident = agent.and_then(|a| a.incident_id.as_deref()) == Some(approval.incident_id.as_str());
        let free = agent.is_some_and(|a| match &a.waiting {
            Waiting::Nothing => true,
            Waiting::Approval { approval_id: waiting } => waiting == approval_id,
            _ => false,
        });
        if state == State::Quarantined && same_incident && free {
            Ok(())
        } else {
            Err(EngineError::WrongState {
                agent: approval.agent_id.clone(),
                state,
                wanted: "healed by this approval (it belongs to an earlier incident, or the agent moved on)",
            })
        }
    }

    fn observe(&mut self, o: &Observation, out: &mut Out) {
        let now = out.at_us;
        self.observed += 1;
        if self.observed.is_multiple_of(PRUNE_EVERY) {
            self.prune(now);
        }
        let config = &self.config;
        let agent = self.agents.entry(o.agent_id.clone()).or_default();
        agent.observations += 1;
        agent.last_seen_us = now;
        let state = agent.state();
        // Isolated agents' calls (reported by ingest while the gateway refuses them) neither
        // teach nor judge, and neither do calls begun before the cure.
        if !matches!(state, State::Healthy | State::Suspected | State::Probation) {
            return;
        }
        if let (Waiting::Probation { since_us, .. }, Some(started)) = (&agent.waiting, o.started_us)
            && started < *since_us
        {
            return;
        }
        if agent.recent.len() == RECENT_CALLS {
            agent.recent.pop_front();
        }
        agent.recent.push_back((o.error, o.retries));
        let surges = if config.rhythm.enabled {
            agent.rhythm.record(now, o.input_tokens.saturating_add(o.output_tokens), &config.rhythm)
        } else {
            Vec::new()
        };
        let values = [
            Some(o.latency_ms),
            Some(o.input_tokens as f64),
            Some(o.output_tokens as f64),
            Some(f64::from(o.tool_calls)),
            o.cost_usd,
            Some(agent.recent.iter().map(|r| f64::from(r.1)).sum()),
            Some(agent.recent.iter().filter(|r| r.0).count() as f64),
        ];
        let mut anomalies = Vec::new();
        for (metric, value) in Metric::ALL.into_iter().zip(values) {
            let Some(value) = value else { continue };
            let log = metric.log_scale();
            let sentinel = SentinelConfig {
                floor_absolute: metric.floor(),
                floor_relative: if log { 0.0 } else { config.sentinel.floor_relative },
                ..config.sentinel
            };
            let baseline = &agent.baselines[metric.index()];
            if let Some(Anomaly::Metric { mean, spread, deviation, .. }) =
                sentinel::check(metric, metric.judged(value), baseline, &config.baseline, &sentinel)
                && deviation > 0.0
                && value - if log { mean.exp() } else { mean } >= metric.min_excess()
            {
                let (mean, spread) = if log { (mean.exp(), spread.exp()) } else { (mean, spread) };
                anomalies.push(Anomaly::Metric { metric, value, mean, spread, deviation, multiplicative: log });
            }
        }
        if let Some(seen) = &o.prompt_sha256 {
            if let Some(changed) = sentinel::check_prompt(agent.prompt_sha256.as_deref(), Some(seen)) {
                anomalies.push(changed);
            }
            if agent.prompt_sha256.as_deref() != Some(seen) {
                agent.prompt_sha256 = Some(seen.clone());
            }
        }
        if o.injection >= config.injection_threshold {
            anomalies.push(Anomaly::Injection { score: o.injection, patterns: o.injection_patterns.clone() });
        }
        anomalies.extend(surges.iter().filter(|s| s.sustained(&config.rhythm)).map(|s| Anomaly::Rhythm(*s)));
        let anomalous = !anomalies.is_empty();
        if !anomalous {
            for (metric, value) in Metric::ALL.into_iter().zip(values) {
                if let Some(value) = value {
                    agent.baselines[metric.index()].update(metric.judged(value), &config.baseline);
                }
            }
        }
        let window = config.confirm_window.max(1) as usize;
        if agent.flags.len() == window {
            agent.flags.pop_front();
        }
        agent.flags.push_back(anomalous);
        if anomalous {
            agent.anomalies += 1;
            agent.normal_streak = 0;
            self.correlator.saw(&o.agent_id, now);
            for a in &anomalies {
                if let Anomaly::Metric { metric, .. } = a {
                    self.correlator.saw_symptom(&o.agent_id, *metric, now);
                }
            }
        } else {
            agent.normal_streak = agent.normal_streak.saturating_add(1);
            self.correlator.saw(&o.agent_id, now);
        }
        // Every surging bucket is a symptom, sustained or not yet: when a whole fleet's rate
        // rises together, the others have shown it by the time the first one confirms.
        for s in &surges {
            self.correlator.saw_symptom(&o.agent_id, s.rate, now);
        }
        if state == State::Healthy && !anomalous {
            return;
        }
        if anomalous || state == State::Suspected {
            let episode = agent.episode.get_or_insert_with(Episode::default);
            episode.observations += 1;
            if anomalous {
                episode.anomalous += 1;
                episode.note_tools(&o.tool_names);
            }
            for a in &anomalies {
                match a {
                    Anomaly::Metric { metric, deviation, .. } => episode.note_deviation(*metric, *deviation),
                    Anomaly::PromptChanged { .. } => episode.prompt_changed = true,
                    Anomaly::Injection { score, patterns } => episode.note_injection(*score, patterns),
                    Anomaly::Rhythm(surge) => episode.note_surge(surge),
                }
            }
        }
        // Latency, errors and retries are also what a provider outage looks like: however
        // large, they wait for a second anomaly (and so for the rest of the fleet to show
        // the same) before confirming. What an agent sends and does is its own.
        let severe = anomalies.iter().any(|a| match a {
            Anomaly::Metric { metric, deviation, .. } => {
                *deviation >= config.severe_deviation
                    && !matches!(metric, Metric::LatencyMs | Metric::Errors | Metric::Retries)
            }
            Anomaly::Injection { score, .. } => *score >= config.severe_injection,
            Anomaly::PromptChanged { .. } => false,
            // Sustained over several buckets already.
            Anomaly::Rhythm(_) => true,
        });
        let cleared = !anomalous && agent.normal_streak >= config.clear_after;
        if cleared && state == State::Suspected {
            agent.episode = None;
        }
        if anomalous {
            out.push(DecisionKind::Anomalies { agent_id: o.agent_id.clone(), anomalies });
        }
        match state {
            State::Healthy => {
                self.transition(&o.agent_id, Event::Anomaly, out);
                self.maybe_confirm(&o.agent_id, severe, out);
            }
            State::Suspected if anomalous => self.maybe_confirm(&o.agent_id, severe, out),
            State::Suspected if cleared => {
                self.transition(&o.agent_id, Event::Cleared, out);
                self.leave_fleet_incident(&o.agent_id, out);
            }
            State::Probation => self.probation_step(&o.agent_id, anomalous, out),
            _ => {}
        }
    }

    /// Confirms a suspicion when enough recent observations were anomalous (or one was
    /// severe), unless the fleet shares it.
    fn maybe_confirm(&mut self, id: &str, severe: bool, out: &mut Out) {
        let Some(agent) = self.agents.get(id) else { return };
        if agent.incident_id.is_some() {
            // Part of the fleet incident: an outage explains its latency and errors, never
            // an injection. Then it leaves the fleet incident and is judged on its own.
            let injected = agent.episode.as_ref().is_some_and(|e| e.injection >= self.config.injection_threshold);
            if !injected {
                return;
            }
            self.leave_fleet_incident(id, out);
        }
        let Some(agent) = self.agents.get(id) else { return };
        let recent = agent.flags.iter().filter(|f| **f).count() as u32;
        if !severe && recent < self.config.confirm_anomalies {
            return;
        }
        let symptoms = agent.episode.as_ref().map(Episode::symptoms).unwrap_or_default();
        let injected = agent.episode.as_ref().is_some_and(|e| e.injection >= self.config.injection_threshold);
        let verdict = match self.correlator.verdict(out.at_us, &symptoms, &self.config.correlation) {
            // An injected agent is its own case whatever else the fleet shows.
            Verdict::FleetWide { .. } if injected => Verdict::AgentSpecific,
            verdict => verdict,
        };
        if let Verdict::FleetWide { .. } = verdict {
            self.join_fleet_incident(id, verdict, out);
            return;
        }
        let episode = agent.episode.clone().unwrap_or_default();
        let hypotheses = diagnose(&episode, &verdict, self.config.sentinel.threshold, &self.feedback);
        let incident_id = self.open_incident(id, verdict, hypotheses, out);
        let until_us = out.at_us.saturating_add(self.config.drain_grace_us);
        if let Some(agent) = self.agents.get_mut(id) {
            agent.incident_id = Some(incident_id);
            agent.failed.clear();
            agent.waiting = Waiting::Drain { until_us };
        }
        self.draining.insert(id.to_owned(), until_us);
        self.transition(id, Event::Confirmed, out);
    }

    fn open_incident(
        &mut self,
        agent_id: &str,
        verdict: Verdict,
        hypotheses: Vec<Hypothesis>,
        out: &mut Out,
    ) -> String {
        self.next_incident += 1;
        let incident_id = format!("inc-{:010}", self.next_incident);
        out.push(DecisionKind::IncidentOpened {
            incident_id: incident_id.clone(),
            agent_id: agent_id.to_owned(),
            verdict: verdict.clone(),
        });
        out.push(DecisionKind::Diagnosed { incident_id: incident_id.clone(), hypotheses: hypotheses.clone() });
        self.incidents.insert(
            incident_id.clone(),
            Incident {
                incident_id: incident_id.clone(),
                agents: vec![agent_id.to_owned()],
                verdict,
                hypotheses,
                status: IncidentStatus::Open,
                opened_at_us: out.at_us,
                closed_at_us: None,
                attempts: Vec::new(),
                feedback: Vec::new(),
                timeline: Vec::new(),
            },
        );
        incident_id
    }

    /// A fleet-wide anomaly: one incident for all, an external cause, nobody healed.
    fn join_fleet_incident(&mut self, id: &str, verdict: Verdict, out: &mut Out) {
        let open = self
            .fleet_incident
            .clone()
            .filter(|f| self.incidents.get(f).is_some_and(|i| i.status == IncidentStatus::Open));
        let incident_id = match open {
            Some(incident_id) => {
                if let Some(incident) = self.incidents.get_mut(&incident_id) {
                    if !incident.agents.iter().any(|a| a == id) {
                        incident.agents.push(id.to_owned());
                    }
                    incident.verdict = verdict;
                }
                out.push(DecisionKind::IncidentJoined { incident_id: incident_id.clone(), agent_id: id.to_owned() });
                incident_id
            }
            None => {
                let episode = self.agents.get(id).and_then(|a| a.episode.clone()).unwrap_or_default();
                let hypotheses = diagnose(&episode, &verdict, self.config.sentinel.threshold, &self.feedback);
                let incident_id = self.open_incident(id, verdict, hypotheses, out);
                self.fleet_incident = Some(incident_id.clone());
                incident_id
            }
        };
        if let Some(agent) = self.agents.get_mut(id) {
            agent.incident_id = Some(incident_id);
        }
    }

    /// A suspected agent of the fleet incident is normal again; the last one closes it.
    fn leave_fleet_incident(&mut self, id: &str, out: &mut Out) {
        let Some(agent) = self.agents.get_mut(id) else { return };
        let Some(incident_id) = agent.incident_id.take() else { return };
        let still_affected = self.agents.values().any(|a| a.incident_id.as_deref() == Some(incident_id.as_str()));
        if !still_affected {
            self.close_incident(&incident_id, IncidentStatus::Recovered, out);
            if self.fleet_incident.as_deref() == Some(incident_id.as_str()) {
                self.fleet_incident = None;
            }
        }
    }

    fn tick(&mut self, out: &mut Out) {
        let due: Vec<String> =
            self.draining.iter().filter(|(_, until)| **until <= out.at_us).map(|(id, _)| id.clone()).collect();
        for id in due {
            self.draining.remove(&id);
            let Some(agent) = self.agents.get_mut(&id) else { continue };
            agent.waiting = Waiting::Nothing;
            // The rest of the fleet may have caught up while this agent drained: a fleet-wide
            // cause is not healed agent by agent.
            let symptoms = agent.episode.as_ref().map(Episode::symptoms).unwrap_or_default();
            let injected = agent.episode.as_ref().is_some_and(|e| e.injection >= self.config.injection_threshold);
            let verdict = self.correlator.verdict(out.at_us, &symptoms, &self.config.correlation);
            if let Verdict::FleetWide { .. } = verdict
                && !injected
                && let Some(own) = agent.incident_id.take()
            {
                self.transition(&id, Event::CauseExternal, out);
                self.close_incident(&own, IncidentStatus::External, out);
                self.join_fleet_incident(&id, verdict, out);
                continue;
            }
            self.transition(&id, Event::Drained, out);
            self.plan_next(&id, out);
        }
        self.prune(out.at_us);
    }

    /// Forgets correlation older than its window and healthy agents idle for
    /// `agent_idle_us`.
    fn prune(&mut self, now_us: i64) {
        self.correlator.prune(now_us, &self.config.correlation);
        let since = now_us.saturating_sub(self.config.agent_idle_us);
        self.agents.retain(|_, a| {
            a.last_seen_us >= since
                || a.state() != State::Healthy
                || a.incident_id.is_some()
                || !matches!(a.waiting, Waiting::Nothing)
        });
    }

    /// From quarantine: the next action on the ladder, its approval, or exhaustion.
    fn plan_next(&mut self, id: &str, out: &mut Out) {
        let Some(agent) = self.agents.get(id) else { return };
        let Some(incident) = agent.incident_id.as_ref().and_then(|i| self.incidents.get(i)) else { return };
        let diagnosis = incident.healing_diagnosis();
        let incident_id = incident.incident_id.clone();
        match next_action(diagnosis, &agent.failed, &self.memory) {
            None => {
                self.transition(id, Event::LadderExhausted, out);
                self.close_incident(&incident_id, IncidentStatus::Exhausted, out);
            }
            Some(action) if action.severity() >= self.config.approval_min_severity => {
                self.next_approval += 1;
                let approval_id = format!("apr-{:010}", self.next_approval);
                self.approvals.insert(
                    approval_id.clone(),
                    Approval {
                        approval_id: approval_id.clone(),
                        incident_id: incident_id.clone(),
                        agent_id: id.to_owned(),
                        action,
                        severity: action.severity(),
                        diagnosis,
                        status: ApprovalStatus::Pending,
                        requested_at_us: out.at_us,
                        decided_at_us: None,
                        decided_by: None,
                    },
                );
                if let Some(agent) = self.agents.get_mut(id) {
                    agent.waiting = Waiting::Approval { approval_id: approval_id.clone() };
                }
                out.push(DecisionKind::ApprovalRequested {
                    approval_id,
                    incident_id,
                    agent_id: id.to_owned(),
                    action,
                    severity: action.severity(),
                });
            }
            Some(action) => self.start_action(id, &incident_id, action, diagnosis, out),
        }
    }

    fn start_action(&mut self, id: &str, incident_id: &str, action: Action, diagnosis: Diagnosis, out: &mut Out) {
        self.next_action += 1;
        let action_id = format!("act-{:010}", self.next_action);
        self.running.insert(action_id.clone(), id.to_owned());
        if let Some(agent) = self.agents.get_mut(id) {
            agent.waiting = Waiting::Action { action_id: action_id.clone(), action };
        }
        if let Some(incident) = self.incidents.get_mut(incident_id) {
            incident.attempts.push(Attempt {
                action_id: action_id.clone(),
                action,
                started_at_us: out.at_us,
                cured: None,
                detail: None,
            });
        }
        self.transition(id, Event::HealStarted, out);
        out.push(DecisionKind::Execute {
            action_id,
            incident_id: incident_id.to_owned(),
            agent_id: id.to_owned(),
            action,
            diagnosis,
        });
    }

    fn action_result(&mut self, action_id: &str, ok: bool, detail: &str, out: &mut Out) {
        let Some(id) = self.running.remove(action_id) else { return };
        let Some(agent) = self.agents.get(&id) else { return };
        let Waiting::Action { action, .. } = agent.waiting.clone() else { return };
        let incident_id = agent.incident_id.clone().unwrap_or_default();
        if let Some(attempt) = self.attempt_mut(&incident_id, action_id) {
            attempt.detail = Some(detail.to_owned());
        }
        let Some(agent) = self.agents.get_mut(&id) else { return };
        out.push(DecisionKind::ActionFinished {
            action_id: action_id.to_owned(),
            incident_id: incident_id.clone(),
            agent_id: id.clone(),
            action,
            ok,
            detail: detail.to_owned(),
        });
        if ok {
            if action == Action::ResetAgent {
                agent.baselines.iter_mut().for_each(Baseline::reset);
                agent.prompt_sha256 = None;
            } else {
                let samples = self.config.accelerate_samples;
                agent.baselines.iter_mut().for_each(|b| b.accelerate(samples));
            }
            agent.waiting = Waiting::Probation { action, normal: 0, since_us: out.at_us };
            // Probation judges the calls after the cure only: errors and retries from before
            // it do not count against it.
            agent.flags.clear();
            agent.recent.clear();
            self.transition(&id, Event::HealApplied, out);
        } else {
            agent.waiting = Waiting::Nothing;
            agent.failed.push(action);
            let diagnosis = self.incidents.get(&incident_id).map_or(Diagnosis::Unknown, Incident::healing_diagnosis);
            self.memory.record(diagnosis, action, false);
            if let Some(attempt) = self.attempt_mut(&incident_id, action_id) {
                attempt.cured = Some(false);
            }
            self.transition(&id, Event::HealFailed, out);
            self.plan_next(&id, out);
        }
    }

    fn attempt_mut(&mut self, incident_id: &str, action_id: &str) -> Option<&mut Attempt> {
        self.incidents.get_mut(incident_id)?.attempts.iter_mut().find(|a| a.action_id == action_id)
    }

    fn probation_step(&mut self, id: &str, anomalous: bool, out: &mut Out) {
        let Some(agent) = self.agents.get_mut(id) else { return };
        let Waiting::Probation { action, normal, since_us } = agent.waiting.clone() else { return };
        let incident_id = agent.incident_id.clone().unwrap_or_default();
        let diagnosis = self.incidents.get(&incident_id).map_or(Diagnosis::Unknown, Incident::healing_diagnosis);
        if anomalous {
            agent.waiting = Waiting::Nothing;
            agent.failed.push(action);
            self.judge_cure(id, &incident_id, diagnosis, action, false, out);
            self.transition(id, Event::Anomaly, out);
            self.plan_next(id, out);
            return;
        }
        // Only observations judged against a warm baseline count: after a reset, the
        // agent first relearns its normal.
        let warm = agent.baselines.iter().all(|b| b.is_warm(&self.config.baseline) || b.samples == 0);
        let normal =
            if warm && agent.baseline(Metric::LatencyMs).is_warm(&self.config.baseline) { normal + 1 } else { normal };
        if normal < self.config.probation_calls {
            agent.waiting = Waiting::Probation { action, normal, since_us };
            return;
        }
        agent.waiting = Waiting::Nothing;
        agent.incident_id = None;
        agent.failed.clear();
        agent.episode = None;
        self.judge_cure(id, &incident_id, diagnosis, action, true, out);
        self.transition(id, Event::ProbationPassed, out);
        self.close_incident(&incident_id, IncidentStatus::Healed, out);
    }

    fn judge_cure(
        &mut self,
        id: &str,
        incident_id: &str,
        diagnosis: Diagnosis,
        action: Action,
        cured: bool,
        out: &mut Out,
    ) {
        self.memory.record(diagnosis, action, cured);
        if let Some(attempt) = self.incidents.get_mut(incident_id).and_then(|i| i.attempts.last_mut()) {
            attempt.cured = Some(cured);
        }
        out.push(DecisionKind::CureJudged {
            incident_id: incident_id.to_owned(),
            agent_id: id.to_owned(),
            action,
            cured,
        });
    }

    fn decide(&mut self, approval_id: &str, status: ApprovalStatus, by: &str, out: &mut Out) {
        let Some(approval) = self.approvals.get_mut(approval_id) else { return };
        approval.status = status;
        approval.decided_at_us = Some(out.at_us);
        approval.decided_by = Some(by.to_owned());
        let (id, incident_id, action, diagnosis) =
            (approval.agent_id.clone(), approval.incident_id.clone(), approval.action, approval.diagnosis);
        out.push(DecisionKind::ApprovalDecided { approval_id: approval_id.to_owned(), status, by: by.to_owned() });
        let quarantined = self.agents.get(&id).is_some_and(|a| a.state() == State::Quarantined);
        match status {
            ApprovalStatus::Approved | ApprovalStatus::HealedNow if quarantined => {
                self.start_action(&id, &incident_id, action, diagnosis, out);
            }
            ApprovalStatus::Rejected => {
                // The agent stays isolated until someone heals it now or releases it.
                if let Some(agent) = self.agents.get_mut(&id) {
                    agent.waiting = Waiting::Nothing;
                }
            }
            _ => {}
        }
    }

    fn operator_quarantine(&mut self, id: &str, by: &str, out: &mut Out) {
        self.withdraw(id, by, out);
        // An agent taken out of the fleet incident by hand no longer holds it open.
        if self.is_in_fleet_incident(id) {
            self.leave_fleet_incident(id, out);
        }
        self.transition(id, Event::OperatorQuarantine, out);
    }

    fn is_in_fleet_incident(&self, id: &str) -> bool {
        let own = self.agents.get(id).and_then(|a| a.incident_id.as_deref());
        own.is_some() && own == self.fleet_incident.as_deref()
    }

    fn operator_release(&mut self, id: &str, by: &str, out: &mut Out) {
        self.withdraw(id, by, out);
        if self.is_in_fleet_incident(id) {
            self.leave_fleet_incident(id, out);
        }
        let incident_id = self.agents.get_mut(id).and_then(|a| {
            a.failed.clear();
            a.episode = None;
            a.flags.clear();
            a.incident_id.take()
        });
        self.transition(id, Event::OperatorRelease, out);
        if let Some(incident_id) = incident_id
            && self.incidents.get(&incident_id).is_some_and(|i| i.status == IncidentStatus::Open)
        {
            self.close_incident(&incident_id, IncidentStatus::Released, out);
        }
    }

    /// An operator took over: whatever the engine waited for on this agent is void.
    fn withdraw(&mut self, id: &str, by: &str, out: &mut Out) {
        let agent = self.agents.entry(id.to_owned()).or_default();
        match std::mem::replace(&mut agent.waiting, Waiting::Nothing) {
            Waiting::Approval { approval_id } => {
                if let Some(approval) = self.approvals.get_mut(&approval_id) {
                    approval.status = ApprovalStatus::Withdrawn;
                    approval.decided_at_us = Some(out.at_us);
                    approval.decided_by = Some(by.to_owned());
                }
                out.push(DecisionKind::ApprovalDecided {
                    approval_id,
                    status: ApprovalStatus::Withdrawn,
                    by: by.to_owned(),
                });
            }
            Waiting::Action { action_id, .. } => {
                self.running.remove(&action_id);
            }
            Waiting::Drain { .. } => {
                self.draining.remove(id);
            }
            Waiting::Nothing | Waiting::Probation { .. } => {}
        }
    }

    fn close_incident(&mut self, incident_id: &str, status: IncidentStatus, out: &mut Out) {
        if let Some(incident) = self.incidents.get_mut(incident_id) {
            incident.status = status;
            incident.closed_at_us = Some(out.at_us);
        }
        out.push(DecisionKind::IncidentClosed { incident_id: incident_id.to_owned(), status });
        let closed: Vec<String> = self
            .incidents
            .values()
            .filter(|i| i.status != IncidentStatus::Open)
            .map(|i| i.incident_id.clone())
            .collect();
        if closed.len() > self.config.closed_incidents_max {
            for old in &closed[..closed.len() - self.config.closed_incidents_max] {
                self.incidents.remove(old);
                self.approvals.retain(|_, a| a.incident_id != *old);
            }
        }
    }

    fn transition(&mut self, id: &str, event: Event, out: &mut Out) {
        let history_max = self.config.history_max;
        let agent = self.agents.entry(id.to_owned()).or_default();
        let from = agent.state();
        // Every caller checks the state first; an illegal move here is a bug, and it
        // changes nothing.
        if let Ok(to) = agent.lifecycle.apply(event, out.at_us) {
            agent.lifecycle.trim_history(history_max);
            if to == State::Healthy {
                agent.normal_streak = 0;
            }
            out.push(DecisionKind::Transition { agent_id: id.to_owned(), from, event, to });
        } else {
            debug_assert!(false, "illegal transition {from:?} --{event:?}");
        }
    }

    /// Copies each decision into the timeline of the incident it concerns.
    fn file_timelines(&mut self, decisions: &[Decision]) {
        for d in decisions {
            let incident_id = match &d.kind {
                DecisionKind::IncidentOpened { incident_id, .. }
                | DecisionKind::IncidentJoined { incident_id, .. }
                | DecisionKind::Diagnosed { incident_id, .. }
                | DecisionKind::ApprovalRequested { incident_id, .. }
                | DecisionKind::Execute { incident_id, .. }
                | DecisionKind::ActionFinished { incident_id, .. }
                | DecisionKind::CureJudged { incident_id, .. }
                | DecisionKind::IncidentClosed { incident_id, .. }
                | DecisionKind::FeedbackRecorded { incident_id, .. } => Some(incident_id.clone()),
                DecisionKind::ApprovalDecided { approval_id, .. } => {
                    self.approvals.get(approval_id).map(|a| a.incident_id.clone())
                }
                DecisionKind::Transition { agent_id, .. } | DecisionKind::Anomalies { agent_id, .. } => {
                    self.agents.get(agent_id).and_then(|a| a.incident_id.clone())
                }
            };
            if let Some(incident) = incident_id.and_then(|i| self.incidents.get_mut(&i))
                && incident.timeline.len() < TIMELINE_MAX
            {
                incident.timeline.push(d.clone());
            }
        }
    }
}

/// Decisions being collected for one input.
struct Out {
    at_us: i64,
    decisions: Vec<Decision>,
}

impl Out {
    fn push(&mut self, kind: DecisionKind) {
        self.decisions.push(Decision { at_us: self.at_us, kind });
    }
}

#[cfg(test)]
mod tests;

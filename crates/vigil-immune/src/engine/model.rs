//! The engine's vocabulary: its configuration, what goes in (observations and operators'
//! inputs, stamped), what comes out (decisions), and what it keeps (agents, incidents,
//! approvals).

use super::*;

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
    pub agent_id: AgentId,
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
        incident_id: IncidentId,
        diagnosis: Diagnosis,
        confirmed: bool,
        by: String,
    },
    Quarantine {
        agent_id: AgentId,
        by: String,
    },
    Release {
        agent_id: AgentId,
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
    pub incident_id: IncidentId,
    pub agent_id: AgentId,
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
    pub incident_id: IncidentId,
    /// The agents involved: one, or every agent a fleet-wide cause touched.
    pub agents: Vec<AgentId>,
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
pub(super) const TIMELINE_MAX: usize = 500;

/// What the engine decided.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum DecisionKind {
    Anomalies {
        agent_id: AgentId,
        anomalies: Vec<Anomaly>,
    },
    Transition {
        agent_id: AgentId,
        from: State,
        event: Event,
        to: State,
    },
    IncidentOpened {
        incident_id: IncidentId,
        agent_id: AgentId,
        verdict: Verdict,
    },
    /// An agent joined an open fleet-wide incident.
    IncidentJoined {
        incident_id: IncidentId,
        agent_id: AgentId,
    },
    Diagnosed {
        incident_id: IncidentId,
        hypotheses: Vec<Hypothesis>,
    },
    ApprovalRequested {
        approval_id: String,
        incident_id: IncidentId,
        agent_id: AgentId,
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
        incident_id: IncidentId,
        agent_id: AgentId,
        action: Action,
        diagnosis: Diagnosis,
    },
    ActionFinished {
        action_id: String,
        incident_id: IncidentId,
        agent_id: AgentId,
        action: Action,
        ok: bool,
        detail: String,
    },
    /// Probation ended: the action cured the agent or did not.
    CureJudged {
        incident_id: IncidentId,
        agent_id: AgentId,
        action: Action,
        cured: bool,
    },
    IncidentClosed {
        incident_id: IncidentId,
        status: IncidentStatus,
    },
    FeedbackRecorded {
        incident_id: IncidentId,
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
    UnknownIncident(IncidentId),
    #[error("no healing action {0:?} is running")]
    UnknownAction(String),
    #[error("agent {agent:?} is {state:?} and cannot be {wanted}")]
    WrongState { agent: AgentId, state: State, wanted: &'static str },
    #[error("an empty agent id")]
    EmptyAgent,
}

/// What the engine is waiting for from an agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(super) enum Waiting {
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
pub(super) const RECENT_CALLS: usize = 5;

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
    pub incident_id: Option<IncidentId>,
    /// Actions that did not cure this agent in its current incident.
    pub failed: Vec<Action>,
    pub(super) episode: Option<Episode>,
    /// (error, retries) of the last calls, newest last.
    pub(super) recent: VecDeque<(bool, u32)>,
    /// Whether each of the last `confirm_window` observations was anomalous.
    pub(super) flags: VecDeque<bool>,
    /// Calls and tokens per bucket, judged against the agent's daily shape.
    pub(super) rhythm: Rhythm,
    pub(super) normal_streak: u32,
    pub(super) waiting: Waiting,
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

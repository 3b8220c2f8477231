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
pub use vigil_core::id::{AgentId, IncidentId};

use crate::baseline::{Baseline, BaselineConfig};
use crate::correlation::{CorrelationConfig, Correlator, Verdict};
use crate::diagnosis::{Diagnosis, Episode, Feedback, Hypothesis, diagnose};
use crate::healing::{Action, ImmuneMemory, next_action};
use crate::lifecycle::{Event, Lifecycle, State};
use crate::rhythm::{Rhythm, RhythmConfig};
use crate::sentinel::{self, Anomaly, Metric, SentinelConfig};

mod heal;
mod model;

pub use model::*;

/// The immune system's whole state. Fields added later default when an older snapshot
/// is restored.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Engine {
    config: EngineConfig,
    now_us: i64,
    agents: BTreeMap<AgentId, AgentState>,
    incidents: BTreeMap<IncidentId, Incident>,
    approvals: BTreeMap<String, Approval>,
    /// Running actions: action id → agent id.
    running: BTreeMap<String, AgentId>,
    /// Draining agents and when they are due.
    draining: BTreeMap<AgentId, i64>,
    /// The open fleet-wide incident, if any.
    fleet_incident: Option<IncidentId>,
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
    pub fn running(&self) -> Vec<(String, AgentId, Action, IncidentId, Diagnosis)> {
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
    fn maybe_confirm(&mut self, id: &AgentId, severe: bool, out: &mut Out) {
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
        agent_id: &AgentId,
        verdict: Verdict,
        hypotheses: Vec<Hypothesis>,
        out: &mut Out,
    ) -> IncidentId {
        self.next_incident += 1;
        let incident_id = IncidentId::new(format!("inc-{:010}", self.next_incident));
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
    fn join_fleet_incident(&mut self, id: &AgentId, verdict: Verdict, out: &mut Out) {
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
    fn leave_fleet_incident(&mut self, id: &AgentId, out: &mut Out) {
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
        let due: Vec<AgentId> =
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

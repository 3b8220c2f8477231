//! The engine's healing side: the next action of an incident's ladder, approvals, action
//! results, probation and its verdict, operators' quarantines and releases, and the
//! lifecycle transitions they make.

use super::*;

impl Engine {
    /// From quarantine: the next action on the ladder, its approval, or exhaustion.
    pub(super) fn plan_next(&mut self, id: &AgentId, out: &mut Out) {
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

    pub(super) fn start_action(
        &mut self,
        id: &AgentId,
        incident_id: &IncidentId,
        action: Action,
        diagnosis: Diagnosis,
        out: &mut Out,
    ) {
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

    pub(super) fn action_result(&mut self, action_id: &str, ok: bool, detail: &str, out: &mut Out) {
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

    pub(super) fn attempt_mut(&mut self, incident_id: &IncidentId, action_id: &str) -> Option<&mut Attempt> {
        self.incidents.get_mut(incident_id)?.attempts.iter_mut().find(|a| a.action_id == action_id)
    }

    pub(super) fn probation_step(&mut self, id: &AgentId, anomalous: bool, out: &mut Out) {
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

    pub(super) fn judge_cure(
        &mut self,
        id: &AgentId,
        incident_id: &IncidentId,
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

    pub(super) fn decide(&mut self, approval_id: &str, status: ApprovalStatus, by: &str, out: &mut Out) {
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

    pub(super) fn operator_quarantine(&mut self, id: &AgentId, by: &str, out: &mut Out) {
        self.withdraw(id, by, out);
        // An agent taken out of the fleet incident by hand no longer holds it open.
        if self.is_in_fleet_incident(id) {
            self.leave_fleet_incident(id, out);
        }
        self.transition(id, Event::OperatorQuarantine, out);
    }

    pub(super) fn is_in_fleet_incident(&self, id: &AgentId) -> bool {
        let own = self.agents.get(id).and_then(|a| a.incident_id.as_deref());
        own.is_some() && own == self.fleet_incident.as_deref()
    }

    pub(super) fn operator_release(&mut self, id: &AgentId, by: &str, out: &mut Out) {
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
    pub(super) fn withdraw(&mut self, id: &AgentId, by: &str, out: &mut Out) {
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

    pub(super) fn close_incident(&mut self, incident_id: &IncidentId, status: IncidentStatus, out: &mut Out) {
        if let Some(incident) = self.incidents.get_mut(incident_id) {
            incident.status = status;
            incident.closed_at_us = Some(out.at_us);
        }
        out.push(DecisionKind::IncidentClosed { incident_id: incident_id.to_owned(), status });
        let closed: Vec<IncidentId> = self
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

    pub(super) fn transition(&mut self, id: &AgentId, event: Event, out: &mut Out) {
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
}

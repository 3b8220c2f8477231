use proptest::prelude::*;

use super::*;

#[path = "../../benches/common/rng.rs"]
mod rng;
use rng::Rng;

fn healthy(agent: &str, rng: &mut Rng) -> Observation {
    Observation {
        agent_id: agent.into(),
        latency_ms: rng.around(800.0, 80.0),
        input_tokens: rng.around(1_200.0, 100.0) as u64,
        output_tokens: rng.around(300.0, 40.0) as u64,
        tool_calls: u32::from(rng.next() < 0.5),
        tool_names: vec!["search".into()],
        cost_usd: Some(rng.around(0.004, 0.0004)),
        prompt_sha256: Some("a".repeat(64)),
        ..Observation::default()
    }
}

struct Run {
    engine: Engine,
    at_us: i64,
    log: Vec<(Stamped, Vec<Decision>)>,
}

impl Run {
    fn new(config: EngineConfig) -> Self {
        Run { engine: Engine::new(config), at_us: 1_700_000_000_000_000, log: Vec::new() }
    }

    fn apply(&mut self, input: Input) -> Vec<Decision> {
        self.at_us += 100_000;
        let stamped = Stamped { at_us: self.at_us, input };
        let decisions = self.engine.apply(&stamped).expect("accepted");
        self.log.push((stamped, decisions.clone()));
        decisions
    }

    fn observe(&mut self, o: Observation) -> Vec<Decision> {
        self.apply(Input::Observe(o))
    }

    fn learn(&mut self, agent: &str, n: usize, rng: &mut Rng) {
        for _ in 0..n {
            let d = self.observe(healthy(agent, rng));
            assert!(d.is_empty(), "a healthy call decided {d:?}");
        }
    }

    /// A tick after the drain grace.
    fn drain(&mut self) -> Vec<Decision> {
        self.at_us += self.engine.config().drain_grace_us;
        self.apply(Input::Tick)
    }

    fn state(&self, agent: &str) -> State {
        self.engine.agent(agent).map_or(State::Healthy, AgentState::state)
    }
}

fn kinds(decisions: &[Decision]) -> Vec<&DecisionKind> {
    decisions.iter().map(|d| &d.kind).collect()
}

fn executed(decisions: &[Decision]) -> Option<(String, Action)> {
    decisions.iter().find_map(|d| match &d.kind {
        DecisionKind::Execute { action_id, action, .. } => Some((action_id.clone(), *action)),
        _ => None,
    })
}

fn requested(decisions: &[Decision]) -> Option<(String, Action)> {
    decisions.iter().find_map(|d| match &d.kind {
        DecisionKind::ApprovalRequested { approval_id, action, .. } => Some((approval_id.clone(), *action)),
        _ => None,
    })
}

/// A tool loop: severe (it confirms at once) when `calls` is large.
fn looping_with(agent: &str, calls: u32, rng: &mut Rng) -> Observation {
    Observation { tool_calls: calls, tool_names: vec!["search".into(); calls as usize], ..healthy(agent, rng) }
}

fn looping(agent: &str, rng: &mut Rng) -> Observation {
    looping_with(agent, 25, rng)
}

#[test]
fn healthy_agents_open_no_incidents() {
    let mut rng = Rng(7);
    let mut run = Run::new(EngineConfig::default());
    let mut suspicions = 0;
    for i in 0..10_000 {
        let agent = format!("agent-{}", i % 5);
        for d in run.observe(healthy(&agent, &mut rng)) {
            match d.kind {
                DecisionKind::Transition { to: State::Suspected, .. } => suspicions += 1,
                DecisionKind::Transition { to: State::Healthy, event: Event::Cleared, .. }
                | DecisionKind::Anomalies { .. } => {}
                other => panic!("call {i}: {other:?}"),
            }
        }
    }
    // A rare outlier may raise a suspicion; normal calls clear it, and none is confirmed.
    assert!(suspicions <= 5, "{suspicions} suspicions in 10k healthy calls");
    assert_eq!(run.engine.incidents().count(), 0);
    // Latency is learned on a log scale: its baseline is the geometric mean.
    let b = run.engine.agent("agent-0").map(|a| a.baseline(Metric::LatencyMs).mean.exp());
    assert!(b.is_some_and(|m| (m - 800.0).abs() < 40.0), "{b:?}");
}

#[test]
fn a_tool_loop_is_detected_diagnosed_healed_and_validated() {
    let mut rng = Rng(11);
    let mut run = Run::new(EngineConfig::default());
    run.learn("bot", 60, &mut rng);

    let first = run.observe(looping_with("bot", 8, &mut rng));
    assert!(matches!(
        kinds(&first)[..],
        [DecisionKind::Anomalies { .. }, DecisionKind::Transition { to: State::Suspected, .. }]
    ));
    assert_eq!(run.state("bot"), State::Suspected);
    let second = run.observe(looping_with("bot", 8, &mut rng));
    assert_eq!(run.state("bot"), State::Draining, "{second:?}");
    let Some(DecisionKind::Diagnosed { incident_id, hypotheses }) =
        second.iter().map(|d| &d.kind).find(|k| matches!(k, DecisionKind::Diagnosed { .. }))
    else {
        panic!("no diagnosis in {second:?}")
    };
    assert_eq!(hypotheses[0].diagnosis, Diagnosis::InfiniteLoop);
    assert!(hypotheses[0].evidence.iter().any(|e| e.contains("\"search\"")), "{hypotheses:?}");
    let incident_id = incident_id.clone();

    // Nothing happens before the grace is over.
    assert!(run.apply(Input::Tick).is_empty());
    let drained = run.drain();
    assert_eq!(run.state("bot"), State::Healing);
    let (action_id, action) = executed(&drained).expect("revoke tools needs no approval");
    assert_eq!(action, Action::RevokeTools);
    run.apply(Input::ActionResult { action_id, ok: true, detail: "tools revoked".into() });
    assert_eq!(run.state("bot"), State::Probation);

    let mut last = Vec::new();
    for _ in 0..run.engine.config().probation_calls {
        last = run.observe(healthy("bot", &mut rng));
    }
    assert_eq!(run.state("bot"), State::Healthy, "{last:?}");
    assert!(last.iter().any(|d| matches!(d.kind, DecisionKind::CureJudged { cured: true, .. })));
    let incident = run.engine.incident(&incident_id).expect("incident");
    assert_eq!(incident.status, IncidentStatus::Healed);
    assert_eq!(incident.attempts.len(), 1);
    assert!(incident.timeline.len() >= 8, "{:?}", incident.timeline);
    assert_eq!(run.engine.memory().get(Diagnosis::InfiniteLoop, Action::RevokeTools).successes, 1);
    let history: Vec<State> =
        run.engine.agent("bot").map(|a| a.lifecycle.history().iter().map(|t| t.to).collect()).unwrap_or_default();
    assert_eq!(
        history,
        [State::Suspected, State::Draining, State::Quarantined, State::Healing, State::Probation, State::Healthy]
    );
}

#[test]
fn severe_actions_wait_for_people_and_a_failed_cure_moves_down_the_ladder() {
    let mut rng = Rng(3);
    let mut run = Run::new(EngineConfig::default());
    run.learn("mem", 60, &mut rng);
    // Context blow-up: input tokens ten times over, severe enough to confirm at once.
    let bloated = |rng: &mut Rng| Observation { input_tokens: 15_000, ..healthy("mem", rng) };
    run.observe(bloated(&mut rng));
    assert_eq!(run.state("mem"), State::Draining);
    let drained = run.drain();
    assert_eq!(run.state("mem"), State::Quarantined);
    let (approval, action) = requested(&drained).expect("reset memory is severe");
    assert_eq!(action, Action::ResetMemory);
    assert!(executed(&drained).is_none());
    assert_eq!(run.engine.agent("mem").and_then(AgentState::pending_approval), Some(approval.as_str()));

    // Heal-now only applies to a rejected approval; a refused input changes nothing.
    let before = run.engine.clone();
    let refused = run.engine.apply(&Stamped {
        at_us: run.at_us,
        input: Input::HealNow { approval_id: approval.clone(), by: "ops".into() },
    });
    assert!(matches!(refused, Err(EngineError::ApprovalNotOpen { .. })), "{refused:?}");
    assert_eq!(run.engine, before);

    run.apply(Input::Reject { approval_id: approval.clone(), by: "ops".into() });
    assert_eq!(run.state("mem"), State::Quarantined);
    assert_eq!(run.engine.approval(&approval).map(|a| a.status), Some(ApprovalStatus::Rejected));
    let healed = run.apply(Input::HealNow { approval_id: approval.clone(), by: "lead".into() });
    let (action_id, _) = executed(&healed).expect("heal now runs the action");
    assert_eq!(run.state("mem"), State::Healing);
    let failed = run.apply(Input::ActionResult { action_id, ok: false, detail: "no control URL".into() });
    assert_eq!(run.state("mem"), State::Quarantined);
    let (approval, action) = requested(&failed).expect("the reset needs approval too");
    assert_eq!(action, Action::ResetAgent);
    let approved = run.apply(Input::Approve { approval_id: approval, by: "lead".into() });
    let (action_id, _) = executed(&approved).expect("approved");
    run.apply(Input::ActionResult { action_id, ok: true, detail: "restarted".into() });
    assert_eq!(run.state("mem"), State::Probation);
    // After a reset the baseline is relearned first; probation counts only after.
    let warmup = run.engine.config().baseline.warmup as usize;
    for _ in 0..warmup {
        run.observe(healthy("mem", &mut rng));
    }
    assert_eq!(run.state("mem"), State::Probation);
    for _ in 0..run.engine.config().probation_calls {
        run.observe(healthy("mem", &mut rng));
    }
    assert_eq!(run.state("mem"), State::Healthy);
    let memory = run.engine.memory();
    assert_eq!(
        memory.get(Diagnosis::MemoryCorruption, Action::ResetMemory),
        crate::healing::Record { attempts: 1, successes: 0 }
    );
    assert_eq!(
        memory.get(Diagnosis::MemoryCorruption, Action::ResetAgent),
        crate::healing::Record { attempts: 1, successes: 1 }
    );
}

#[test]
fn a_cure_that_does_not_hold_and_an_exhausted_ladder() {
    let mut rng = Rng(5);
    let config = EngineConfig { approval_min_severity: 5, ..EngineConfig::default() };
    let mut run = Run::new(config);
    run.learn("loop", 60, &mut rng);
    run.observe(looping("loop", &mut rng));
    run.observe(looping("loop", &mut rng));
    let mut decisions = run.drain();
    let mut tried = Vec::new();
    while let Some((action_id, action)) = executed(&decisions) {
        tried.push(action);
        run.apply(Input::ActionResult { action_id, ok: true, detail: String::new() });
        assert_eq!(run.state("loop"), State::Probation);
        // The loop is back at once: the cure did not hold.
        decisions = run.observe(looping("loop", &mut rng));
    }
    assert_eq!(tried, [Action::RevokeTools, Action::ResetMemory, Action::ResetAgent]);
    // After the reset the baseline is cold, so the loop is learned as normal for a while;
    // it takes a warm baseline to see it again.
    let mut n = 0;
    while run.state("loop") == State::Probation && n < 200 {
        decisions = run.observe(if n < 20 { healthy("loop", &mut rng) } else { looping("loop", &mut rng) });
        n += 1;
    }
    assert_eq!(run.state("loop"), State::Exhausted, "{decisions:?}");
    let incident = run.engine.incidents().next().expect("incident");
    assert_eq!(incident.status, IncidentStatus::Exhausted);
    assert!(incident.attempts.iter().all(|a| a.cured == Some(false)));
    // A person takes over.
    run.apply(Input::Release { agent_id: "loop".into(), by: "ops".into() });
    assert_eq!(run.state("loop"), State::Healthy);
}

#[test]
fn a_fleet_wide_outage_is_an_external_cause_and_nobody_is_healed() {
    let mut rng = Rng(9);
    let mut run = Run::new(EngineConfig::default());
    let agents: Vec<String> = (0..8).map(|i| format!("agent-{i}")).collect();
    for _ in 0..40 {
        for a in &agents {
            run.observe(healthy(a, &mut rng));
        }
    }
    let mut all = Vec::new();
    let slow = |a: &str, rng: &mut Rng| Observation { latency_ms: 30_000.0, error: true, ..healthy(a, rng) };
    // The first agent calls twice before anyone else: it is confirmed as a case of its own
    // and starts draining.
    for _ in 0..2 {
        all.extend(run.observe(slow("agent-0", &mut rng)));
    }
    assert_eq!(run.state("agent-0"), State::Draining);
    for _ in 0..3 {
        for a in &agents[1..] {
            all.extend(run.observe(slow(a, &mut rng)));
        }
    }
    all.extend(run.drain());
    assert!(executed(&all).is_none() && requested(&all).is_none(), "{all:?}");
    assert!(agents.iter().all(|a| run.state(a) == State::Suspected));
    let incidents: Vec<&Incident> = run.engine.incidents().collect();
    // Every agent ends up in the one fleet incident, the early one handed over at its drain.
    let fleet = incidents.iter().find(|i| i.diagnosis() == Diagnosis::ExternalCause).expect("fleet incident");
    assert_eq!(fleet.agents.len(), agents.len(), "{:?}", fleet.agents);
    let fleet_id = fleet.incident_id.clone();
    for _ in 0..10 {
        for a in &agents {
            all.extend(run.observe(healthy(a, &mut rng)));
        }
    }
    let fleet = run.engine.incident(&fleet_id).cloned().expect("fleet");
    assert_eq!(fleet.status, IncidentStatus::Recovered);
    assert_eq!(fleet.agents.len(), agents.len());
    assert!(agents.iter().all(|a| run.state(a) == State::Healthy));
    // Agents confirmed before the fleet caught up were handed over to the fleet incident.
    let handed: Vec<IncidentStatus> =
        run.engine.incidents().filter(|i| i.incident_id != fleet_id).map(|i| i.status).collect();
    assert_eq!(handed, [IncidentStatus::External]);
}

#[test]
fn injection_and_prompt_changes() {
    let mut rng = Rng(13);
    let mut run = Run::new(EngineConfig::default());
    run.learn("inj", 40, &mut rng);
    let hit = Observation {
        injection: 0.95,
        injection_patterns: vec!["ignore previous instructions".into()],
        ..healthy("inj", &mut rng)
    };
    let d = run.observe(hit);
    assert_eq!(run.state("inj"), State::Draining, "{d:?}");
    let top = run.engine.incidents().next().map(Incident::diagnosis);
    assert_eq!(top, Some(Diagnosis::PromptInjection));

    // A new prompt alone makes an agent suspected, not sick: normal calls clear it.
    run.learn("p", 40, &mut rng);
    let changed = Observation { prompt_sha256: Some("b".repeat(64)), ..healthy("p", &mut rng) };
    let d = run.observe(changed);
    assert!(
        matches!(&d[0].kind, DecisionKind::Anomalies { anomalies, .. } if matches!(anomalies[0], Anomaly::PromptChanged { .. }))
    );
    for _ in 0..run.engine.config().clear_after {
        run.observe(Observation { prompt_sha256: Some("b".repeat(64)), ..healthy("p", &mut rng) });
    }
    assert_eq!(run.state("p"), State::Healthy);
}

#[test]
fn operators_quarantine_release_and_give_feedback() {
    let mut rng = Rng(17);
    let mut run = Run::new(EngineConfig::default());
    run.learn("x", 30, &mut rng);
    run.apply(Input::Quarantine { agent_id: "x".into(), by: "ops".into() });
    assert_eq!(run.state("x"), State::Quarantined);
    let again = run
        .engine
        .apply(&Stamped { at_us: run.at_us, input: Input::Quarantine { agent_id: "x".into(), by: "ops".into() } });
    assert!(matches!(again, Err(EngineError::WrongState { .. })));
    // Calls reported while isolated teach nothing.
    let before = run.engine.agent("x").map(|a| a.baseline(Metric::LatencyMs).clone());
    run.observe(Observation { latency_ms: 90_000.0, ..healthy("x", &mut rng) });
    assert_eq!(run.engine.agent("x").map(|a| a.baseline(Metric::LatencyMs).clone()), before);
    run.apply(Input::Release { agent_id: "x".into(), by: "ops".into() });
    assert_eq!(run.state("x"), State::Healthy);

    run.observe(looping("x", &mut rng));
    run.observe(looping("x", &mut rng));
    let incident_id = run.engine.incidents().next().map(|i| i.incident_id.clone()).expect("incident");
    run.apply(Input::Feedback {
        incident_id: incident_id.clone(),
        diagnosis: Diagnosis::InfiniteLoop,
        confirmed: true,
        by: "ops".into(),
    });
    assert_eq!(run.engine.feedback().counts(Diagnosis::InfiniteLoop), (1, 0));
    let unknown = run.engine.apply(&Stamped {
        at_us: run.at_us,
        input: Input::Feedback {
            incident_id: "inc-9".into(),
            diagnosis: Diagnosis::Unknown,
            confirmed: false,
            by: "x".into(),
        },
    });
    assert_eq!(unknown, Err(EngineError::UnknownIncident("inc-9".into())));
    // Taking over mid-incident (quarantine, then release) closes it and voids the action.
    let healing = run.drain();
    let (action_id, _) = executed(&healing).expect("healing");
    run.apply(Input::Quarantine { agent_id: "x".into(), by: "ops".into() });
    let late = run.engine.apply(&Stamped {
        at_us: run.at_us,
        input: Input::ActionResult { action_id, ok: true, detail: String::new() },
    });
    assert!(matches!(late, Err(EngineError::UnknownAction(_))), "{late:?}");
    run.apply(Input::Release { agent_id: "x".into(), by: "ops".into() });
    assert_eq!(run.engine.incident(&incident_id).map(|i| i.status), Some(IncidentStatus::Released));
}

/// The same inputs give the same decisions, from the start or from a snapshot.
#[test]
fn replay_and_snapshots_reproduce_every_decision() {
    let mut rng = Rng(21);
    let mut run = Run::new(EngineConfig { approval_min_severity: 3, ..EngineConfig::default() });
    run.learn("a", 50, &mut rng);
    run.learn("b", 50, &mut rng);
    run.observe(looping("a", &mut rng));
    run.observe(Observation { input_tokens: 20_000, ..healthy("b", &mut rng) });
    run.observe(looping("a", &mut rng));
    let snapshot_at = run.log.len();
    let snapshot = serde_json::to_string(&run.engine).expect("serialize");
    let d = run.drain();
    if let Some((action_id, _)) = executed(&d) {
        run.apply(Input::ActionResult { action_id, ok: true, detail: String::new() });
    }
    if let Some((approval_id, _)) = requested(&d) {
        run.apply(Input::Approve { approval_id, by: "ops".into() });
    }
    for _ in 0..20 {
        run.observe(healthy("a", &mut rng));
    }
    assert!(run.log.iter().map(|(_, d)| d.len()).sum::<usize>() > 15);

    // Through NDJSON, as `vigil immune replay` reads it.
    let text: String = run.log.iter().map(|(s, _)| serde_json::to_string(s).expect("json") + "\n").collect();
    let mut replay = Engine::new(run.engine.config().clone());
    for (line, (_, expected)) in text.lines().zip(&run.log) {
        let input: Stamped = serde_json::from_str(line).expect("parse");
        assert_eq!(&replay.apply(&input).expect("apply"), expected);
    }
    assert_eq!(replay, run.engine);

    let mut restored: Engine = serde_json::from_str(&snapshot).expect("restore");
    for (input, expected) in &run.log[snapshot_at..] {
        assert_eq!(&restored.apply(input).expect("apply"), expected);
    }
    assert_eq!(restored, run.engine);
}

fn arbitrary_input(agents: usize) -> impl Strategy<Value = (u8, usize, f64, u8)> {
    (0u8..10, 0..agents, 0.0f64..1.0, 0u8..4)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever happens, the engine never panics, keeps its bookkeeping consistent, and a
    /// replay of what it accepted gives the same decisions.
    #[test]
    fn any_input_sequence_keeps_the_engine_consistent(steps in proptest::collection::vec(arbitrary_input(4), 1..400)) {
        let mut rng = Rng(99);
        let mut engine = Engine::new(EngineConfig { drain_grace_us: 300_000, ..EngineConfig::default() });
        let mut accepted = Vec::new();
        let mut at_us = 0;
        for (kind, agent, x, pick) in steps {
            at_us += 100_000;
            let agent = format!("agent-{agent}");
            let pending: Vec<String> = engine.approvals().map(|a| a.approval_id.clone()).collect();
            let running: Vec<String> = engine.running.keys().cloned().collect();
            let choose = |ids: &[String]| ids.get(usize::from(pick) % ids.len().max(1)).cloned().unwrap_or_default();
            let input = match kind {
                0..=3 => Input::Observe(healthy(&agent, &mut rng)),
                4 => Input::Observe(Observation { latency_ms: 1e3 + x * 1e5, tool_calls: (x * 40.0) as u32, error: x > 0.5, injection: x, ..healthy(&agent, &mut rng) }),
                5 => Input::Tick,
                6 => Input::ActionResult { action_id: choose(&running), ok: x > 0.3, detail: String::new() },
                7 => match pick { 0 => Input::Approve { approval_id: choose(&pending), by: "p".into() }, 1 => Input::Reject { approval_id: choose(&pending), by: "p".into() }, _ => Input::HealNow { approval_id: choose(&pending), by: "p".into() } },
                8 => Input::Quarantine { agent_id: agent.into(), by: "p".into() },
                _ => Input::Release { agent_id: agent.into(), by: "p".into() },
            };
            let stamped = Stamped { at_us, input };
            let before = engine.clone();
            match engine.apply(&stamped) {
                Ok(decisions) => accepted.push((stamped, decisions)),
                Err(_) => prop_assert_eq!(&engine, &before),
            }
            for (id, a) in engine.agents() {
                prop_assert_eq!(a.state() == State::Draining, engine.draining.contains_key(id));
                prop_assert_eq!(a.state() == State::Healing, engine.running.values().any(|r| r == id), "{} {:?}", id, a.state());
                if a.pending_approval().is_some() {
                    prop_assert_eq!(a.state(), State::Quarantined);
                }
            }
        }
        let mut replay = Engine::new(engine.config().clone());
        for (input, expected) in &accepted {
            prop_assert_eq!(&replay.apply(input).expect("accepted before"), expected);
        }
        prop_assert_eq!(replay, engine);
    }
}

#[test]
fn calls_begun_before_the_cure_do_not_judge_it() {
    let mut rng = Rng(29);
    let mut run = Run::new(EngineConfig::default());
    run.learn("slow", 40, &mut rng);
    run.observe(looping("slow", &mut rng));
    let d = run.drain();
    let (action_id, _) = executed(&d).expect("healing");
    let before_cure = run.at_us;
    run.apply(Input::ActionResult { action_id, ok: true, detail: String::new() });
    assert_eq!(run.state("slow"), State::Probation);
    // A loop call that was already in flight when the cure was applied finishes now.
    let in_flight = Observation { started_us: Some(before_cure), ..looping("slow", &mut rng) };
    assert!(run.observe(in_flight).is_empty());
    assert_eq!(run.state("slow"), State::Probation);
    // One begun after the cure does judge it.
    let after = Observation { started_us: Some(run.at_us + 1), ..looping("slow", &mut rng) };
    run.observe(after);
    assert_eq!(run.state("slow"), State::Quarantined);
}

/// Errors from before a cure do not fail its probation (a throttle for failing tools can
/// pass).
#[test]
fn errors_before_the_cure_do_not_fail_probation() {
    let mut rng = Rng(31);
    let mut run = Run::new(EngineConfig::default());
    run.learn("t", 40, &mut rng);
    for _ in 0..3 {
        run.observe(Observation { error: true, retries: 3, latency_ms: 9_000.0, ..healthy("t", &mut rng) });
    }
    let d = run.drain();
    let (action_id, action) = executed(&d).expect("a mild action");
    assert_eq!(action, Action::Throttle);
    run.apply(Input::ActionResult { action_id, ok: true, detail: String::new() });
    for _ in 0..run.engine.config().probation_calls {
        run.observe(healthy("t", &mut rng));
    }
    assert_eq!(run.state("t"), State::Healthy);
    assert_eq!(run.engine.memory().get(Diagnosis::ToolInstability, Action::Throttle).successes, 1);
}

/// A rejected approval of an earlier incident cannot heal the agent's next one.
#[test]
fn a_stale_approval_cannot_run_against_a_later_incident() {
    let mut rng = Rng(37);
    let mut run = Run::new(EngineConfig::default());
    run.learn("m", 40, &mut rng);
    let bloated = |rng: &mut Rng| Observation { input_tokens: 30_000, ..healthy("m", rng) };
    run.observe(bloated(&mut rng));
    let (old, _) = requested(&run.drain()).expect("approval");
    run.apply(Input::Reject { approval_id: old.clone(), by: "ops".into() });
    run.apply(Input::Release { agent_id: "m".into(), by: "ops".into() });
    run.learn("m", 5, &mut rng);
    run.observe(bloated(&mut rng));
    let (new, _) = requested(&run.drain()).expect("a new approval");
    let stale =
        run.engine.apply(&Stamped { at_us: run.at_us, input: Input::HealNow { approval_id: old, by: "x".into() } });
    assert!(matches!(stale, Err(EngineError::WrongState { .. })), "{stale:?}");
    assert_eq!(run.engine.approval(&new).map(|a| a.status), Some(ApprovalStatus::Pending));
}

/// The fleet incident survives one member's release, lets an injected member go to be
/// judged on its own, and never lists an agent twice.
#[test]
fn fleet_incident_membership() {
    let mut rng = Rng(41);
    let mut run = Run::new(EngineConfig::default());
    let agents: Vec<String> = (0..6).map(|i| format!("f-{i}")).collect();
    for _ in 0..30 {
        for a in &agents {
            run.observe(healthy(a, &mut rng));
        }
    }
    for _ in 0..3 {
        for a in &agents {
            run.observe(Observation { latency_ms: 20_000.0, error: true, ..healthy(a, &mut rng) });
        }
    }
    let fleet = run.engine.incidents().find(|i| i.diagnosis() == Diagnosis::ExternalCause).cloned().expect("fleet");
    assert_eq!(fleet.agents.len(), agents.len());
    run.apply(Input::Quarantine { agent_id: "f-0".into(), by: "ops".into() });
    run.apply(Input::Release { agent_id: "f-0".into(), by: "ops".into() });
    assert_eq!(run.engine.incident(&fleet.incident_id).map(|i| i.status), Some(IncidentStatus::Open));
    let hit = Observation { injection: 0.95, ..healthy("f-1", &mut rng) };
    run.observe(hit);
    assert_eq!(run.state("f-1"), State::Draining, "an injection is never excused by an outage");
    let own = run.engine.agent("f-1").and_then(|a| a.incident_id.clone()).expect("own incident");
    assert_ne!(own, fleet.incident_id);
    assert_eq!(run.engine.incident(&own).map(Incident::diagnosis), Some(Diagnosis::PromptInjection));
}

/// Healing follows the best diagnosis that has a ladder; idle healthy agents are forgotten.
#[test]
fn healing_never_starts_from_an_empty_ladder_and_idle_agents_go() {
    let incident = Incident {
        incident_id: "inc-1".into(),
        agents: vec!["a".into()],
        verdict: Verdict::PartialFleet { agents: 2, active: 2 },
        hypotheses: vec![
            Hypothesis { diagnosis: Diagnosis::ExternalCause, confidence: 0.6, evidence: vec![] },
            Hypothesis { diagnosis: Diagnosis::ToolInstability, confidence: 0.55, evidence: vec![] },
        ],
        status: IncidentStatus::Open,
        opened_at_us: 0,
        closed_at_us: None,
        attempts: vec![],
        feedback: vec![],
        timeline: vec![],
    };
    assert_eq!(incident.healing_diagnosis(), Diagnosis::ToolInstability);

    let mut rng = Rng(43);
    let config = EngineConfig { agent_idle_us: 60_000_000, ..EngineConfig::default() };
    let mut run = Run::new(config);
    run.learn("old", 5, &mut rng);
    run.at_us += 120_000_000;
    run.apply(Input::Tick);
    assert!(run.engine.agent("old").is_none());
}

/// A fast, steady agent (sub-millisecond calls, as against a local model or under a load
/// test) is not sick because one call took a millisecond longer.
#[test]
fn tiny_absolute_changes_are_not_anomalies() {
    let mut rng = Rng(47);
    let mut run = Run::new(EngineConfig::default());
    for _ in 0..200 {
        let fast = Observation { latency_ms: 0.3 + 0.01 * rng.next(), ..healthy("fast", &mut rng) };
        run.observe(fast);
    }
    for _ in 0..20 {
        let d = run.observe(Observation { latency_ms: 3.0, ..healthy("fast", &mut rng) });
        assert!(d.is_empty(), "{d:?}");
    }
    assert_eq!(run.state("fast"), State::Healthy);
    // A rise that matters still is one.
    run.observe(Observation { latency_ms: 900.0, ..healthy("fast", &mut rng) });
    assert_eq!(run.state("fast"), State::Suspected);
}

/// Four agents working office hours for three days (so their rhythm is learned and judged
/// for a day), then an hour in which `surge(agent)` multiplies each agent's calls. Returns
/// the engine and the decisions of that hour; the three days decide nothing.
fn rhythm_fleet(surge: impl Fn(usize) -> u32) -> (Engine, Vec<Decision>) {
    const MINUTE: i64 = 60_000_000;
    let mut rng = Rng(17);
    let mut engine = Engine::new(EngineConfig::default());
    let day0 = 1_700_000_000_000_000 / (24 * 60 * MINUTE) * (24 * 60 * MINUTE);
    let start = 3 * 24 * 60 + 10 * 60;
    let mut surged = Vec::new();
    for minute in 0..start + 60 {
        let hour = (minute / 60) % 24;
        let mut calls = Vec::new();
        for agent in 0..4 {
            let base = if (9..17).contains(&hour) { 8.0 } else { 1.5 };
            let mut n = (base * (0.7 + 0.6 * rng.next())).round() as i64;
            if minute >= start {
                n *= i64::from(surge(agent));
            }
            for k in 0..n {
                calls.push((day0 + minute * MINUTE + k * (MINUTE / n) + agent as i64 * 1_000, agent));
            }
        }
        calls.sort_unstable();
        for (at_us, agent) in calls {
            let input = Stamped { at_us, input: Input::Observe(healthy(&format!("agent-{agent}"), &mut rng)) };
            let decisions = engine.apply(&input).expect("accepted");
            if minute < start {
                let opened = decisions.iter().any(|d| matches!(d.kind, DecisionKind::IncidentOpened { .. }));
                assert!(!opened, "an ordinary day opened an incident at minute {minute}: {decisions:?}");
            } else {
                surged.extend(decisions);
            }
        }
        if minute >= start {
            let tick = Stamped { at_us: day0 + (minute + 1) * MINUTE - 1, input: Input::Tick };
            surged.extend(engine.apply(&tick).expect("tick"));
        }
    }
    (engine, surged)
}

#[test]
fn an_agent_calling_five_times_as_often_is_a_loop_even_when_each_call_is_ordinary() {
    let (engine, decisions) = rhythm_fleet(|agent| if agent == 0 { 5 } else { 1 });
    let incidents: Vec<&Incident> = engine.incidents().collect();
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    let incident = incidents[0];
    assert_eq!(incident.agents, ["agent-0"]);
    assert_eq!(incident.diagnosis(), Diagnosis::InfiniteLoop, "{:?}", incident.hypotheses);
    assert!(incident.hypotheses[0].evidence.iter().any(|e| e.starts_with("call_rate")), "{:?}", incident.hypotheses);
    // Caught within three five-minute buckets of the loop starting.
    assert!(incident.opened_at_us % (24 * 3_600_000_000) < (10 * 60 + 15) * 60_000_000, "{}", incident.opened_at_us);
    let explained = decisions.iter().any(|d| match &d.kind {
        DecisionKind::Anomalies { anomalies, .. } => {
            anomalies.iter().any(|a| matches!(a, Anomaly::Rhythm(_)) && a.explain().contains("per 5 min"))
        }
        _ => false,
    });
    assert!(explained, "{decisions:?}");
    assert_ne!(engine.agent("agent-0").map(AgentState::state), Some(State::Healthy));
    assert!((1..4).all(|i| engine.agent(&format!("agent-{i}")).map(AgentState::state) == Some(State::Healthy)));
}

#[test]
fn a_whole_fleet_busier_at_once_is_load_not_a_loop() {
    let (engine, _) = rhythm_fleet(|_| 4);
    let incidents: Vec<&Incident> = engine.incidents().collect();
    assert!(!incidents.is_empty(), "the surge is noticed");
    let fleet = incidents.iter().find(|i| i.diagnosis() == Diagnosis::ExternalCause).expect("one external incident");
    assert!(fleet.agents.len() >= 3, "{:?}", fleet.agents);
    assert!(
        incidents.iter().all(|i| i.diagnosis() == Diagnosis::ExternalCause || i.status == IncidentStatus::External),
        "{incidents:?}"
    );
    assert!(engine.approvals().next().is_none() && engine.running().is_empty(), "nobody is healed");
    for i in 0..4 {
        let state = engine.agent(&format!("agent-{i}")).map(AgentState::state);
        assert!(matches!(state, Some(State::Healthy | State::Suspected)), "agent-{i} is {state:?}");
    }
}

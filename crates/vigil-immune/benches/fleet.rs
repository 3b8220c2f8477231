//! Benchmark (not a test): the immune engine against a seeded synthetic fleet with labelled
//! injected faults, on the real path (`Engine::apply`, the same code the server runs).
//!
//! Agents call at their own pace with their own normal (latency, tokens, tools, cost). Faults
//! are injected into single agents — latency spike with failing tools, token blow-up, tool
//! loop, cost overrun, prompt injection — and one fleet-wide provider outage. A simulated
//! executor carries out healing actions: an action in the fault's cure set ends the fault,
//! any other leaves it running (so probation fails and the ladder moves on). Quarantined
//! agents make no calls, as the gateway would refuse them.
//!
//! Reported (JSON lines): detection precision, recall and F1 over faults; diagnosis top-1
//! accuracy; detection delay in the agent's calls; false positives per 10k healthy calls;
//! and the engine's throughput in observations per second.
//!
//! `scripts/bench-immune.sh` runs it; `FLEET_SEED`, `FLEET_AGENTS`, `FLEET_CALLS` vary it.

use std::collections::BTreeMap;
use std::time::Instant;

use vigil_immune::diagnosis::Diagnosis;
use vigil_immune::engine::{DecisionKind, Engine, EngineConfig, Input, Observation, Stamped};
use vigil_immune::simulation::Fault;

#[path = "common/rng.rs"]
mod rng;
use rng::Rng;

/// One agent's normal.
struct Profile {
    latency_ms: f64,
    input_tokens: f64,
    output_tokens: f64,
    tool_rate: f64,
    usd_per_token: f64,
    error_rate: f64,
    prompt: String,
}

/// A labelled fault and what became of it.
struct Injected {
    fault: Option<Fault>,
    agent: Option<usize>,
    /// The agent's (or, for the outage, the fleet's) call count when it started.
    start_calls: u64,
    detected_after: Option<u64>,
    diagnosis: Option<Diagnosis>,
    active: bool,
}

fn healthy(rng: &mut Rng, id: &str, p: &Profile) -> Observation {
    let tools = if rng.next() < p.tool_rate { 1 + u32::from(rng.next() < 0.3) } else { 0 };
    let input = rng.skewed(p.input_tokens, 0.12).round();
    let output = rng.skewed(p.output_tokens, 0.2).round();
    Observation {
        agent_id: id.into(),
        latency_ms: rng.skewed(p.latency_ms, 0.15),
        input_tokens: input as u64,
        output_tokens: output as u64,
        tool_calls: tools,
        tool_names: (0..tools).map(|i| ["search", "fetch"][i as usize % 2].to_owned()).collect(),
        cost_usd: Some((input + 3.0 * output) * p.usd_per_token),
        retries: u32::from(rng.next() < p.error_rate),
        error: rng.next() < p.error_rate,
        prompt_sha256: Some(p.prompt.clone()),
        injection: if rng.next() < 0.01 { 0.2 * rng.next() } else { 0.0 },
        injection_patterns: Vec::new(),
        started_us: None,
    }
}

fn sick(rng: &mut Rng, mut o: Observation, fault: Fault) -> Observation {
    match fault {
        Fault::LatencySpike => {
            o.latency_ms *= 6.0 + 4.0 * rng.next();
            o.error = rng.next() < 0.7;
            o.retries = 1 + rng.below(3) as u32;
        }
        Fault::TokenBlowUp => {
            let factor = 6.0 + 6.0 * rng.next();
            o.input_tokens = (o.input_tokens as f64 * factor) as u64;
            o.cost_usd = o.cost_usd.map(|c| c * factor * 0.8);
            o.latency_ms *= 1.5;
        }
        Fault::ToolLoop => {
            let n = 6 + rng.below(10) as u32;
            o.tool_calls = n;
            o.tool_names = vec!["search".to_owned(); n as usize];
        }
        Fault::CostOverrun => o.cost_usd = o.cost_usd.map(|c| c * (8.0 + 6.0 * rng.next())),
        Fault::PromptInjection => {
            o.injection = 0.85 + 0.15 * rng.next();
            o.injection_patterns = vec!["ignore previous instructions".to_owned()];
            o.tool_calls += 2;
            o.output_tokens *= 2;
        }
        // The fleet-wide outage is simulated by the caller, for every agent at once.
        Fault::ProviderOutage => {
            o.error = true;
            o.retries = 1;
        }
    }
    o
}

fn main() {
    let env = |name: &str, default: u64| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let seed = env("FLEET_SEED", 42);
    let agents = env("FLEET_AGENTS", 40) as usize;
    let calls = env("FLEET_CALLS", 200_000);
    let mut rng = Rng(seed.max(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);

    let profiles: Vec<Profile> = (0..agents)
        .map(|i| Profile {
            latency_ms: 300.0 + 1_700.0 * rng.next(),
            input_tokens: 400.0 + 3_000.0 * rng.next(),
            output_tokens: 80.0 + 600.0 * rng.next(),
            tool_rate: 0.6 * rng.next(),
            usd_per_token: 1e-7 * (1.0 + 20.0 * rng.next()),
            error_rate: 0.02 * rng.next(),
            prompt: format!("{:064x}", 0xabc0 + i),
        })
        .collect();
    let ids: Vec<String> = (0..agents).map(|i| format!("agent-{i:03}")).collect();
    let index: BTreeMap<&str, usize> = ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();

    let config = EngineConfig { approval_min_severity: 5, ..EngineConfig::default() };
    let mut engine = Engine::new(config);
    let mut now_us: i64 = 1_700_000_000_000_000;
    let mut agent_calls = vec![0u64; agents];
    // The fault each agent suffers (an index into `injected`), if any.
    let mut suffering: Vec<Option<usize>> = vec![None; agents];
    let mut injected: Vec<Injected> = Vec::new();
    let mut healthy_calls = 0u64;
    let mut false_positives = 0u64;
    let mut fleet_calls = 0u64;
    let mut outage: Option<usize> = None;
    let outage_at = calls / 2;
    let outage_len = (agents as u64) * 6;
    let mut observed = 0u64;
    let mut busy = std::time::Duration::ZERO;

    for step in 0..calls {
        now_us += 25_000;
        // The fleet-wide outage: every agent slow and failing for a while.
        if step == outage_at {
            injected.push(Injected {
                fault: None,
                agent: None,
                start_calls: fleet_calls,
                detected_after: None,
                diagnosis: None,
                active: true,
            });
            outage = Some(injected.len() - 1);
        }
        if step == outage_at + outage_len
            && let Some(o) = outage.take()
        {
            injected[o].active = false;
        }
        // Faults start now and then in a healthy agent, after the baselines warmed up.
        if step > 10_000 && step % 2_500 == 0 && outage.is_none() {
            let a = rng.below(agents);
            let state = engine.agent(&ids[a]).map(|s| s.state());
            if suffering[a].is_none() && state == Some(vigil_immune::lifecycle::State::Healthy) {
                let fault = Fault::OF_AN_AGENT[rng.below(Fault::OF_AN_AGENT.len())];
                injected.push(Injected {
                    fault: Some(fault),
                    agent: Some(a),
                    start_calls: agent_calls[a],
                    detected_after: None,
                    diagnosis: None,
                    active: true,
                });
                suffering[a] = Some(injected.len() - 1);
            }
        }

        let a = rng.below(agents);
        let id = &ids[a];
        let accepts = engine.agent(id).is_none_or(|s| s.state().accepts_calls());
        let mut decisions = Vec::new();
        if accepts {
            let base = healthy(&mut rng, id, &profiles[a]);
            let own = suffering[a].and_then(|f| injected[f].fault.filter(|_| injected[f].active));
            let observation = match (own, outage.is_some()) {
                (Some(fault), _) => sick(&mut rng, base, fault),
                (None, true) => {
                    Observation { latency_ms: base.latency_ms * 15.0, error: rng.next() < 0.8, retries: 2, ..base }
                }
                (None, false) => {
                    healthy_calls += 1;
                    base
                }
            };
            agent_calls[a] += 1;
            fleet_calls += 1;
            let started = Instant::now();
            decisions = engine.apply(&Stamped { at_us: now_us, input: Input::Observe(observation) }).expect("observe");
            busy += started.elapsed();
            observed += 1;
        }
        if engine.next_deadline().is_some_and(|d| d <= now_us) {
            decisions.extend(engine.apply(&Stamped { at_us: now_us, input: Input::Tick }).expect("tick"));
        }
        // Act on decisions: score detections, run healing actions in the simulation.
        let mut queue = decisions;
        while let Some(d) = queue.pop() {
            match d.kind {
                DecisionKind::IncidentOpened { incident_id, agent_id, .. }
                | DecisionKind::IncidentJoined { incident_id, agent_id } => {
                    let Some(&i) = index.get(agent_id.as_str()) else { continue };
                    let diagnosis = engine.incident(&incident_id).map(|x| x.diagnosis());
                    let target = match (suffering[i], outage) {
                        (Some(f), _) if injected[f].active => Some((f, agent_calls[i])),
                        (_, Some(o)) => Some((o, fleet_calls)),
                        _ => None,
                    };
                    match target {
                        Some((f, at)) => {
                            let fault = &mut injected[f];
                            // The first detection counts; a fleet incident's diagnosis is the
                            // external cause once correlation sees it.
                            if fault.detected_after.is_none() {
                                fault.detected_after = Some(at - fault.start_calls);
                            }
                            if fault.diagnosis != Some(Diagnosis::ExternalCause) {
                                fault.diagnosis = diagnosis;
                            }
                        }
                        None => {
                            false_positives += 1;
                            let inc = engine.incident(&incident_id);
                            eprintln!(
                                "false positive: {agent_id} at step {step} ({} after the outage began): {:?}",
                                step as i64 - outage_at as i64,
                                inc.map(|i| (i.diagnosis(), i.hypotheses[0].evidence.clone()))
                            );
                        }
                    }
                }
                DecisionKind::Execute { action_id, agent_id, action, .. } => {
                    let Some(&i) = index.get(agent_id.as_str()) else { continue };
                    if let Some(f) = suffering[i]
                        && injected[f].fault.is_some_and(|fault| fault.cured_by(action))
                    {
                        injected[f].active = false;
                        suffering[i] = None;
                    }
                    let result = Input::ActionResult { action_id, ok: true, detail: "simulated".into() };
                    queue.extend(engine.apply(&Stamped { at_us: now_us, input: result }).expect("result"));
                }
                DecisionKind::IncidentClosed { .. } => {}
                _ => {}
            }
        }
        // An agent the ladder could not cure is released by an operator after a while.
        if step % 1_000 == 0 {
            let exhausted: Vec<String> = engine
                .agents()
                .filter(|(_, s)| s.state() == vigil_immune::lifecycle::State::Exhausted)
                .map(|(id, _)| id.to_owned())
                .collect();
            for id in exhausted {
                if let Some(&i) = index.get(id.as_str())
                    && let Some(f) = suffering[i].take()
                {
                    injected[f].active = false;
                }
                engine
                    .apply(&Stamped {
                        at_us: now_us,
                        input: Input::Release { agent_id: id.into(), by: "bench".into() },
                    })
                    .ok();
            }
        }
    }

    let faults = injected.len() as f64;
    let detected: Vec<&Injected> = injected.iter().filter(|f| f.detected_after.is_some()).collect();
    let tp = detected.len() as f64;
    let precision = if tp + false_positives as f64 > 0.0 { tp / (tp + false_positives as f64) } else { 0.0 };
    let recall = if faults > 0.0 { tp / faults } else { 0.0 };
    let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
    let correct = detected
        .iter()
        .filter(|f| f.diagnosis == Some(f.fault.map_or(Diagnosis::ExternalCause, Fault::expected)))
        .count() as f64;
    let agent_delays: Vec<u64> =
        detected.iter().filter(|f| f.agent.is_some()).filter_map(|f| f.detected_after).collect();
    let mean_delay = agent_delays.iter().sum::<u64>() as f64 / agent_delays.len().max(1) as f64;
    let max_delay = agent_delays.iter().copied().max().unwrap_or(0);
    let fleet_delay = injected.iter().find(|f| f.agent.is_none()).and_then(|f| f.detected_after);
    println!(
        "{{\"bench\": \"fleet\", \"seed\": {seed}, \"agents\": {agents}, \"calls\": {calls}, \"faults\": {faults}, \
         \"detected\": {tp}, \"false_positives\": {false_positives}, \"precision\": {precision:.3}, \"recall\": {recall:.3}, \
         \"f1\": {f1:.3}, \"diagnosis_top1\": {:.3}, \"delay_mean_calls\": {mean_delay:.2}, \"delay_max_calls\": {max_delay}, \
         \"outage_delay_fleet_calls\": {}, \"healthy_calls\": {healthy_calls}, \"false_positives_per_10k\": {:.2}}}",
        if tp > 0.0 { correct / tp } else { 0.0 },
        fleet_delay.map_or("null".to_owned(), |d| d.to_string()),
        false_positives as f64 * 10_000.0 / healthy_calls.max(1) as f64,
    );
    for f in &injected {
        if f.detected_after.is_none() || f.diagnosis != Some(f.fault.map_or(Diagnosis::ExternalCause, Fault::expected))
        {
            eprintln!(
                "fault {:?} on {:?}: detected after {:?}, diagnosed {:?}",
                f.fault, f.agent, f.detected_after, f.diagnosis
            );
        }
    }
    println!(
        "{{\"bench\": \"engine_throughput\", \"observations\": {observed}, \"seconds\": {:.3}, \"per_second\": {:.0}}}",
        busy.as_secs_f64(),
        observed as f64 / busy.as_secs_f64().max(1e-9)
    );
}

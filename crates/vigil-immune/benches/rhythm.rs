//! Benchmark (not a test): the engine's rhythm detection (`vigil_immune::rhythm`, the
//! context detector on calls and tokens per bucket) on a seeded synthetic fleet over weeks,
//! on the real path (`Engine::apply`).
//!
//! Each agent has its own week: working hours, a busy rate, a night trickle, quieter (or
//! idle) weekends, some running around the clock; calls per minute are Poisson, and every
//! call is ordinary (drawn from the agent's own per-call normal). After the two days of
//! learning, runaways are injected now and then into single agents: the call rate times 3
//! to 8 for half an hour to three hours, each call still ordinary, so only the rhythm can
//! see them. Once, the whole fleet gets three times busier for an hour (load, which must be
//! recognised as an external cause, not healed). Some days an agent is much quieter than
//! usual (a holiday): drops are never surges. A healing action ends a runaway, as a throttle
//! or a quarantine would.
//!
//! Reported (one JSON line): recall, precision and diagnosis top-1 over runaways; detection
//! delay in minutes; incidents on healthy agents per agent-week, split into those the rhythm
//! raised and those the per-call sentinel raised; what the fleet-wide load became.
//!
//! `scripts/bench-immune.sh` runs it; `RHYTHM_SEED`, `RHYTHM_AGENTS`, `RHYTHM_DAYS` vary it.

use std::collections::BTreeMap;

use vigil_immune::diagnosis::Diagnosis;
use vigil_immune::engine::{DecisionKind, Engine, EngineConfig, Input, Observation, Stamped};
use vigil_immune::lifecycle::State;

#[path = "common/rng.rs"]
mod rng;
use rng::Rng;

/// An agent's week.
struct Profile {
    busy_per_minute: f64,
    night_share: f64,
    start_hour: f64,
    hours: f64,
    weekend_share: f64,
    around_the_clock: bool,
    latency_ms: f64,
    input_tokens: f64,
    output_tokens: f64,
}

impl Profile {
    fn rate(&self, minute: i64) -> f64 {
        if self.around_the_clock {
            return self.busy_per_minute;
        }
        let day = minute / 1_440;
        let hour = (minute % 1_440) as f64 / 60.0;
        let working = hour >= self.start_hour && hour < self.start_hour + self.hours;
        let rate = if working { self.busy_per_minute } else { self.busy_per_minute * self.night_share };
        if day % 7 >= 5 { rate * self.weekend_share } else { rate }
    }

    fn call(&self, rng: &mut Rng, id: &str) -> Observation {
        let skewed = |rng: &mut Rng, median: f64| median * (0.15 * rng.normal()).exp();
        let input = skewed(rng, self.input_tokens);
        let output = skewed(rng, self.output_tokens);
        Observation {
            agent_id: id.into(),
            latency_ms: skewed(rng, self.latency_ms),
            input_tokens: input as u64,
            output_tokens: output as u64,
            tool_calls: u32::from(rng.next() < 0.3),
            tool_names: vec!["search".into()],
            cost_usd: Some((input + 4.0 * output) * 2e-7),
            prompt_sha256: Some(format!("{:064x}", id.len())),
            ..Observation::default()
        }
    }
}

struct Runaway {
    agent: usize,
    /// The runaway's rate is above 1.5 times the agent's busiest normal rate: louder than
    /// anything it does normally. Quiet runaways (three times a night-time trickle) stay
    /// within its normal range; the rhythm leaves them alone by design.
    loud: bool,
    start_minute: i64,
    end_minute: i64,
    factor: f64,
    detected_minute: Option<i64>,
    diagnosis: Option<Diagnosis>,
}

const MINUTE: i64 = 60_000_000;
/// An agent's rate on its quiet day.
const HOLIDAY: f64 = 0.2;

fn main() {
    let env = |name: &str, default: u64| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let seed = env("RHYTHM_SEED", 1);
    let agents = env("RHYTHM_AGENTS", 20) as usize;
    let days = env("RHYTHM_DAYS", 14) as i64;
    let mut rng = Rng(seed.max(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);

    let profiles: Vec<Profile> = (0..agents)
        .map(|_| Profile {
            busy_per_minute: rng.between(2.0, 20.0),
            night_share: rng.between(0.02, 0.3),
            start_hour: rng.between(6.0, 10.0),
            hours: rng.between(7.0, 11.0),
            weekend_share: if rng.next() < 0.5 { rng.between(0.0, 0.3) } else { rng.between(0.6, 1.0) },
            around_the_clock: rng.next() < 0.2,
            latency_ms: rng.between(300.0, 2_000.0),
            input_tokens: rng.between(400.0, 3_000.0),
            output_tokens: rng.between(80.0, 600.0),
        })
        .collect();
    let ids: Vec<String> = (0..agents).map(|i| format!("agent-{i:03}")).collect();
    let index: BTreeMap<&str, usize> = ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();

    let mut engine = Engine::new(EngineConfig { approval_min_severity: 5, ..EngineConfig::default() });
    // Monday 00:00 UTC.
    let epoch_us: i64 = 1_700_438_400_000_000;
    let minutes = days * 1_440;
    // Fleet-wide load: three times busier for an hour at 11:00 on a weekday of week two.
    let load = (8 * 1_440 + 11 * 60, 8 * 1_440 + 12 * 60);
    let mut load_verdict: BTreeMap<&'static str, u32> = BTreeMap::new();
    // A quiet day per agent now and then.
    let holidays: Vec<i64> = (0..agents).map(|_| 2 + (rng.next() * (days - 2) as f64) as i64).collect();
    let mut runaways: Vec<Runaway> = Vec::new();
    let mut suffering: Vec<Option<usize>> = vec![None; agents];
    let mut false_rhythm = 0u32;
    let mut false_per_call = 0u32;
    let mut calls = 0u64;

    for minute in 0..minutes {
        // A runaway starts about twice a day, once the rhythms have learned two days.
        if minute > 2 * 1_440 + 60 && !(load.0 - 120..load.1 + 120).contains(&minute) && rng.next() < 2.0 / 1_440.0 {
            let a = (rng.next() * agents as f64) as usize % agents;
            let healthy = engine.agent(&ids[a]).is_none_or(|s| s.state() == State::Healthy);
            let rate = profiles[a].rate(minute) * if holidays[a] == minute / 1_440 { HOLIDAY } else { 1.0 };
            if suffering[a].is_none() && healthy && rate >= 1.0 {
                let factor = rng.between(3.0, 8.0);
                runaways.push(Runaway {
                    agent: a,
                    loud: factor * rate > 1.5 * profiles[a].busy_per_minute,
                    start_minute: minute,
                    end_minute: minute + rng.between(30.0, 180.0) as i64,
                    factor,
                    detected_minute: None,
                    diagnosis: None,
                });
                suffering[a] = Some(runaways.len() - 1);
            }
        }
        let mut due = Vec::new();
        for (a, profile) in profiles.iter().enumerate() {
            let mut rate = profile.rate(minute);
            if holidays[a] == minute / 1_440 {
                rate *= HOLIDAY;
            }
            if (load.0..load.1).contains(&minute) {
                rate *= 3.0;
            }
            if let Some(r) = suffering[a].map(|r| &runaways[r]) {
                if minute < r.end_minute {
                    rate *= r.factor;
                } else {
                    suffering[a] = None;
                }
            }
            let n = rng.poisson(rate);
            for _ in 0..n {
                due.push((epoch_us + minute * MINUTE + (rng.next() * MINUTE as f64) as i64, a));
            }
        }
        due.sort_unstable();
        due.push((epoch_us + (minute + 1) * MINUTE - 1, usize::MAX));
        for (at_us, a) in due {
            let input = if a == usize::MAX {
                Input::Tick
            } else if engine.agent(&ids[a]).is_none_or(|s| s.state().accepts_calls()) {
                calls += 1;
                Input::Observe(profiles[a].call(&mut rng, &ids[a]))
            } else {
                continue;
            };
            let mut queue = engine.apply(&Stamped { at_us, input }).expect("accepted");
            while let Some(d) = queue.pop() {
                match d.kind {
                    DecisionKind::IncidentOpened { incident_id, agent_id, .. }
                    | DecisionKind::IncidentJoined { incident_id, agent_id } => {
                        let Some(&i) = index.get(agent_id.as_str()) else { continue };
                        let Some(incident) = engine.incident(&incident_id) else { continue };
                        if (load.0..load.1 + 15).contains(&minute) {
                            *load_verdict.entry(incident.diagnosis().as_str()).or_default() += 1;
                            continue;
                        }
                        match suffering[i] {
                            Some(r) if runaways[r].detected_minute.is_none() => {
                                runaways[r].detected_minute = Some(minute);
                                runaways[r].diagnosis = Some(incident.diagnosis());
                            }
                            Some(_) => {}
                            None => {
                                let evidence = &incident.hypotheses[0].evidence;
                                let rhythm = evidence.iter().any(|e| e.contains("_rate "));
                                if rhythm {
                                    false_rhythm += 1;
                                } else {
                                    false_per_call += 1;
                                }
                                eprintln!(
                                    "false positive: {agent_id} on day {} at {:02}:{:02}: {:?} {evidence:?}",
                                    minute / 1_440,
                                    minute % 1_440 / 60,
                                    minute % 60,
                                    incident.diagnosis()
                                );
                            }
                        }
                    }
                    DecisionKind::Execute { action_id, agent_id, .. } => {
                        if let Some(&i) = index.get(agent_id.as_str())
                            && let Some(r) = suffering[i].take()
                        {
                            runaways[r].end_minute = runaways[r].end_minute.min(minute);
                        }
                        let result = Input::ActionResult { action_id, ok: true, detail: "simulated".into() };
                        queue.extend(engine.apply(&Stamped { at_us, input: result }).expect("result"));
                    }
                    _ => {}
                }
            }
        }
        // Exhausted agents are released by an operator at the top of the hour.
        if minute % 60 == 0 {
            let exhausted: Vec<String> =
                engine.agents().filter(|(_, s)| s.state() == State::Exhausted).map(|(id, _)| id.to_owned()).collect();
            for agent_id in exhausted {
                let at_us = epoch_us + minute * MINUTE;
                engine
                    .apply(&Stamped { at_us, input: Input::Release { agent_id: agent_id.into(), by: "bench".into() } })
                    .ok();
            }
        }
    }

    let loud: Vec<&Runaway> = runaways.iter().filter(|r| r.loud).collect();
    let loud_found = loud.iter().filter(|r| r.detected_minute.is_some()).count();
    let total = runaways.len() as f64;
    let detected: Vec<&Runaway> = runaways.iter().filter(|r| r.detected_minute.is_some()).collect();
    let delays: Vec<i64> = detected.iter().filter_map(|r| Some(r.detected_minute? - r.start_minute)).collect();
    let correct = detected.iter().filter(|r| r.diagnosis == Some(Diagnosis::InfiniteLoop)).count() as f64;
    let found = detected.len() as f64;
    let false_total = f64::from(false_rhythm + false_per_call);
    let agent_weeks = agents as f64 * days as f64 / 7.0;
    let missed: Vec<String> = runaways
        .iter()
        .filter(|r| r.detected_minute.is_none())
        .map(|r| {
            let kind = if r.loud { "LOUD" } else { "quiet" };
            let p = &profiles[r.agent];
            format!(
                "{kind} {}x{:.1} for {} min from day {} {:02}:{:02} (usual rate {:.1}/min, busy {:.1}/min)",
                ids[r.agent],
                r.factor,
                r.end_minute - r.start_minute,
                r.start_minute / 1_440,
                r.start_minute % 1_440 / 60,
                r.start_minute % 60,
                p.rate(r.start_minute),
                p.busy_per_minute
            )
        })
        .collect();
    if !missed.is_empty() {
        eprintln!("missed: {missed:?}");
    }
    println!(
        "{{\"bench\": \"rhythm\", \"seed\": {seed}, \"agents\": {agents}, \"days\": {days}, \"calls\": {calls}, \
         \"runaways\": {}, \"detected\": {}, \"recall\": {:.3}, \"loud\": {}, \"recall_loud\": {:.3}, \"precision\": {:.3}, \"diagnosis_top1\": {:.3}, \
         \"delay_mean_minutes\": {:.1}, \"delay_max_minutes\": {}, \"false_incidents_rhythm\": {false_rhythm}, \
         \"false_incidents_per_call\": {false_per_call}, \"false_per_agent_week\": {:.3}, \"fleet_load\": {:?}}}",
        runaways.len(),
        detected.len(),
        if total > 0.0 { found / total } else { 1.0 },
        loud.len(),
        if loud.is_empty() { 1.0 } else { loud_found as f64 / loud.len() as f64 },
        if found + false_total > 0.0 { found / (found + false_total) } else { 1.0 },
        if found > 0.0 { correct / found } else { 0.0 },
        if delays.is_empty() { 0.0 } else { delays.iter().sum::<i64>() as f64 / delays.len() as f64 },
        delays.iter().max().copied().unwrap_or(0),
        false_total / agent_weeks,
        load_verdict,
    );
}

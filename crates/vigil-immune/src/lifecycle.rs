//! An agent's lifecycle: a closed set of states and the only transitions between them.
//!
//! [`TRANSITIONS`] is the whole table (it is also in `docs/immune-lifecycle.md`); a
//! [`Lifecycle`] moves only along it, and an event that has no row from the current state
//! is refused with [`IllegalTransition`], leaving the state as it was. Every move is kept in
//! the history with the time the caller gives (the engine has no clock of its own).

use serde::{Deserialize, Serialize};

/// Where an agent stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Healthy,
    /// An anomaly was seen; calls still flow.
    Suspected,
    /// Confirmed: in-flight work finishes, new calls are refused.
    Draining,
    /// Isolated: every call is refused.
    Quarantined,
    /// A healing action is being applied.
    Healing,
    /// Healed and running again, watched against its baseline.
    Probation,
    /// Every action on the healing ladder was tried; a person has to step in.
    Exhausted,
}

/// What happens to an agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// The sentinel found an anomaly (in probation: the cure did not hold).
    Anomaly,
    /// A suspicion cleared: the following observations were normal.
    Cleared,
    /// Confirmed infection: stop taking new work.
    Confirmed,
    /// In-flight work finished.
    Drained,
    /// While it drained, correlation found most of the fleet anomalous too: the cause is
    /// outside the agent, which goes back to being watched.
    CauseExternal,
    /// A healing action started.
    HealStarted,
    /// The action was applied; probation begins.
    HealApplied,
    /// The action failed.
    HealFailed,
    /// Probation validated the cure against the baseline.
    ProbationPassed,
    /// Probation saw the problem again.
    ProbationFailed,
    /// No action is left on the ladder.
    LadderExhausted,
    /// An operator isolated the agent.
    OperatorQuarantine,
    /// An operator returned the agent to service.
    OperatorRelease,
}

/// Every legal transition: (from, event, to).
pub const TRANSITIONS: &[(State, Event, State)] = &[
    (State::Healthy, Event::Anomaly, State::Suspected),
    (State::Suspected, Event::Cleared, State::Healthy),
    (State::Suspected, Event::Confirmed, State::Draining),
    (State::Draining, Event::Drained, State::Quarantined),
    (State::Draining, Event::CauseExternal, State::Suspected),
    (State::Quarantined, Event::HealStarted, State::Healing),
    (State::Healing, Event::HealApplied, State::Probation),
    (State::Healing, Event::HealFailed, State::Quarantined),
    (State::Quarantined, Event::LadderExhausted, State::Exhausted),
    (State::Probation, Event::ProbationPassed, State::Healthy),
    (State::Probation, Event::ProbationFailed, State::Quarantined),
    (State::Probation, Event::Anomaly, State::Quarantined),
    (State::Healthy, Event::OperatorQuarantine, State::Quarantined),
    (State::Suspected, Event::OperatorQuarantine, State::Quarantined),
    (State::Draining, Event::OperatorQuarantine, State::Quarantined),
    (State::Healing, Event::OperatorQuarantine, State::Quarantined),
    (State::Probation, Event::OperatorQuarantine, State::Quarantined),
    (State::Quarantined, Event::OperatorRelease, State::Healthy),
    (State::Exhausted, Event::OperatorRelease, State::Healthy),
    (State::Exhausted, Event::OperatorQuarantine, State::Quarantined),
];

/// The state `event` leads to from `from`, if that is a legal transition.
pub fn next(from: State, event: Event) -> Option<State> {
    TRANSITIONS.iter().find(|(f, e, _)| *f == from && *e == event).map(|(_, _, to)| *to)
}

impl State {
    /// Whether the gateway lets this agent's new calls through.
    pub fn accepts_calls(self) -> bool {
        matches!(self, State::Healthy | State::Suspected | State::Probation)
    }
}

/// An event that has no transition from the current state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("an agent that is {state:?} cannot take {event:?}")]
pub struct IllegalTransition {
    pub state: State,
    pub event: Event,
}

/// One move, as kept in the history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Transition {
    /// Microseconds since the Unix epoch, as the caller saw it.
    pub at_us: i64,
    pub from: State,
    pub event: Event,
    pub to: State,
}

/// An agent's state and how it got there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Lifecycle {
    state: State,
    history: Vec<Transition>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle { state: State::Healthy, history: Vec::new() }
    }
}

impl Lifecycle {
    pub fn state(&self) -> State {
        self.state
    }

    pub fn history(&self) -> &[Transition] {
        &self.history
    }

    /// Keeps only the newest `max` transitions of the history.
    pub fn trim_history(&mut self, max: usize) {
        if self.history.len() > max {
            self.history.drain(..self.history.len() - max);
        }
    }

    /// Applies `event` at `at_us`, or refuses it and changes nothing.
    pub fn apply(&mut self, event: Event, at_us: i64) -> Result<State, IllegalTransition> {
        let to = next(self.state, event).ok_or(IllegalTransition { state: self.state, event })?;
        self.history.push(Transition { at_us, from: self.state, event, to });
        self.state = to;
        Ok(to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EVENTS: [Event; 13] = [
        Event::Anomaly,
        Event::Cleared,
        Event::Confirmed,
        Event::Drained,
        Event::CauseExternal,
        Event::HealStarted,
        Event::HealApplied,
        Event::HealFailed,
        Event::ProbationPassed,
        Event::ProbationFailed,
        Event::LadderExhausted,
        Event::OperatorQuarantine,
        Event::OperatorRelease,
    ];

    #[test]
    fn the_full_healing_path() {
        let mut life = Lifecycle::default();
        let path = [
            (Event::Anomaly, State::Suspected),
            (Event::Confirmed, State::Draining),
            (Event::Drained, State::Quarantined),
            (Event::HealStarted, State::Healing),
            (Event::HealApplied, State::Probation),
            (Event::ProbationPassed, State::Healthy),
        ];
        for (i, (event, expected)) in path.into_iter().enumerate() {
            assert_eq!(life.apply(event, i as i64), Ok(expected));
        }
        assert_eq!(life.history().len(), 6);
        assert_eq!(
            life.history()[2],
            Transition { at_us: 2, from: State::Draining, event: Event::Drained, to: State::Quarantined }
        );
    }

    #[test]
    fn illegal_events_change_nothing() {
        let mut life = Lifecycle::default();
        assert_eq!(
            life.apply(Event::HealApplied, 1),
            Err(IllegalTransition { state: State::Healthy, event: Event::HealApplied })
        );
        assert_eq!(life.state(), State::Healthy);
        assert!(life.history().is_empty());
    }

    #[test]
    fn the_table_is_a_function_and_only_isolating_states_refuse_calls() {
        for (i, a) in TRANSITIONS.iter().enumerate() {
            for b in &TRANSITIONS[i + 1..] {
                assert!(!(a.0 == b.0 && a.1 == b.1), "two rows for {:?} on {:?}", a.0, a.1);
            }
        }
        assert!(
            !State::Quarantined.accepts_calls()
                && !State::Draining.accepts_calls()
                && !State::Exhausted.accepts_calls()
        );
    }

    /// `docs/immune-lifecycle.md` lists exactly this table.
    #[test]
    fn the_documented_table_is_the_table() {
        let doc = include_str!("../../../docs/immune-lifecycle.md");
        let snake = |debug: String| {
            let mut out = String::new();
            for (i, c) in debug.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    out.push('_');
                }
                out.push(c.to_ascii_lowercase());
            }
            out
        };
        let rows: Vec<String> =
            doc.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| from")).map(str::to_owned).collect();
        let expected: Vec<String> = TRANSITIONS
            .iter()
            .map(|(f, e, t)| {
                format!("| {} | {} | {} |", snake(format!("{f:?}")), snake(format!("{e:?}")), snake(format!("{t:?}")))
            })
            .collect();
        assert_eq!(rows, expected);
    }

    proptest! {
        /// Whatever happens, the lifecycle only ever moves along the table, its history
        /// replays to its state, and an operator can always bring the agent back.
        #[test]
        fn any_event_sequence_stays_on_the_table(events in proptest::collection::vec(0usize..13, 0..200)) {
            let mut life = Lifecycle::default();
            for (t, &i) in events.iter().enumerate() {
                let before = life.state();
                match life.apply(EVENTS[i], t as i64) {
                    Ok(to) => prop_assert_eq!(next(before, EVENTS[i]), Some(to)),
                    Err(_) => prop_assert_eq!(life.state(), before),
                }
            }
            let mut replay = State::Healthy;
            for step in life.history() {
                prop_assert_eq!(step.from, replay);
                prop_assert_eq!(next(step.from, step.event), Some(step.to));
                replay = step.to;
            }
            prop_assert_eq!(replay, life.state());
            let mut rescue = life.clone();
            let _ = rescue.apply(Event::OperatorQuarantine, 0);
            let _ = rescue.apply(Event::OperatorRelease, 0);
            prop_assert_eq!(rescue.state(), State::Healthy);
        }
    }
}

//! Which budgets a call counts against, and on which counter.
//!
//! Every budget whose `match` the call satisfies applies, hard and soft alike (a child
//! and its parent both apply when both match). Each keeps one counter per subject its
//! `per` names: one for the whole tenant, or one per key, agent, feature or user (a call
//! without that fact counts on the subject [`NONE`]). A counter's window starts at the
//! beginning of the budget's calendar period (UTC) or the given number of hours back.
//! Counting and admitting is the services' business: this module only says where.

use vigil_core::time::{CalendarPeriod, Timestamp};

use crate::decide::Subject;
use crate::document::{Budget, Mode, Per, Period, PolicyDocument};

/// The subject of a tenant-wide counter.
pub const TENANT: &str = "*";
/// The subject of a call that lacks the fact a budget is kept per.
pub const NONE: &str = "(none)";

const MICROS_PER_HOUR: i64 = 3_600_000_000;

/// A budget a call counts against, and its counter.
#[derive(Clone, Debug, PartialEq)]
pub struct Applicable<'d> {
    pub budget: &'d Budget,
    /// The counter's subject: [`TENANT`], or the key, agent, feature or user.
    pub subject: String,
    /// The window's start.
    pub since: Timestamp,
    /// The window's end, for a calendar period (when a refused call may try again).
    pub until: Option<Timestamp>,
}

impl Applicable<'_> {
    pub fn hard(&self) -> bool {
        self.budget.mode == Mode::Hard
    }

    /// The limit in nano-dollars.
    pub fn limit_nanos(&self) -> i64 {
        usd_to_nanos(self.budget.limit_usd)
    }
}

/// Dollars as nano-dollars, rounded and saturating (a limit is validated non-negative and
/// finite).
pub fn usd_to_nanos(usd: f64) -> i64 {
    let nanos = (usd * 1e9).round();
    if nanos.is_nan() || nanos <= 0.0 {
        0
    } else if nanos >= i64::MAX as f64 {
        i64::MAX
    } else {
        nanos as i64
    }
}

/// Every budget of `doc` that a call of `subject` at `now` counts against, in document order.
pub fn applicable<'d>(doc: &'d PolicyDocument, subject: &Subject<'_>, now: Timestamp) -> Vec<Applicable<'d>> {
    doc.budgets
        .iter()
        .filter(|b| b.matches.matches(subject))
        .map(|budget| {
            let (since, until) = window(budget.period, now);
            Applicable { budget, subject: counter_subject(budget.per, subject), since, until }
        })
        .collect()
}

/// Whether any budget of `doc` applies to `subject`: the cheap test before admission.
pub fn any_applies(doc: &PolicyDocument, subject: &Subject<'_>) -> bool {
    doc.budgets.iter().any(|b| b.matches.matches(subject))
}

/// The subject of the counter a limit kept `per` something counts `subject` on: the
/// tenant's one counter ([`TENANT`]), or the key, agent, feature or user ([`NONE`] when the
/// call lacks it). Budgets and rate limits count alike.
pub fn counter_subject(per: Per, subject: &Subject<'_>) -> String {
    let fact = match per {
        Per::Tenant => return TENANT.to_owned(),
        Per::Key => subject.key,
        Per::Agent => subject.agent,
        Per::Feature => subject.feature,
        Per::User => subject.user,
    };
    fact.unwrap_or(NONE).to_owned()
}

/// A period's window holding `now`: its start, and its end when it has one.
pub fn window(period: Period, now: Timestamp) -> (Timestamp, Option<Timestamp>) {
    let calendar = match period {
        Period::Day => CalendarPeriod::Day,
        Period::Week => CalendarPeriod::Week,
        Period::Month => CalendarPeriod::Month,
        Period::RollingHours(hours) => return (now.plus_micros(-i64::from(hours) * MICROS_PER_HOUR), None),
    };
    let since = now.start_of(calendar);
    // The next period starts where one past this one's last day falls.
    let step = match calendar {
        CalendarPeriod::Day => 24,
        CalendarPeriod::Week => 7 * 24,
        CalendarPeriod::Month => 32 * 24,
    };
    let until = since.plus_micros(step * MICROS_PER_HOUR).start_of(calendar);
    (since, Some(until))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::parse;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).expect("a timestamp")
    }

    #[test]
    fn windows_are_calendar_periods_or_hours_back() {
        let now = at("2026-12-31T18:30:00Z");
        assert_eq!(window(Period::Day, now), (at("2026-12-31T00:00:00Z"), Some(at("2027-01-01T00:00:00Z"))));
        assert_eq!(window(Period::Week, now), (at("2026-12-28T00:00:00Z"), Some(at("2027-01-04T00:00:00Z"))));
        assert_eq!(window(Period::Month, now), (at("2026-12-01T00:00:00Z"), Some(at("2027-01-01T00:00:00Z"))));
        let feb = at("2027-02-10T00:00:00Z");
        assert_eq!(window(Period::Month, feb).1, Some(at("2027-03-01T00:00:00Z")));
        assert_eq!(window(Period::RollingHours(24), now), (at("2026-12-30T18:30:00Z"), None));
    }

    #[test]
    fn every_matching_budget_applies_on_its_own_counter() {
        let doc = parse(&serde_json::json!({
            "budgets": [
                { "id": "org", "period": "month", "limit_usd": 100 },
                { "id": "per-agent", "per": "agent", "period": "day", "limit_usd": 5, "parent": "org" },
                { "id": "per-user", "per": "user", "period": "day", "limit_usd": 1, "mode": "soft" },
                { "id": "o1-only", "match": { "models": ["o1*"] }, "period": "day", "limit_usd": 2 }
            ]
        }))
        .expect("valid");
        let subject = Subject { model: Some("gpt-4o"), agent: Some("bot"), ..Subject::default() };
        let found = applicable(&doc, &subject, at("2026-12-08T10:00:00Z"));
        let seen: Vec<(&str, &str, bool)> =
            found.iter().map(|a| (a.budget.id.as_str(), a.subject.as_str(), a.hard())).collect();
        assert_eq!(seen, [("org", TENANT, true), ("per-agent", "bot", true), ("per-user", NONE, false)]);
        assert_eq!(found[1].limit_nanos(), 5_000_000_000);
        assert!(any_applies(&doc, &subject));
        let empty = parse(&serde_json::json!({})).expect("valid");
        assert!(!any_applies(&empty, &subject));
    }

    #[test]
    fn dollars_become_nano_dollars_without_wrapping() {
        assert_eq!(usd_to_nanos(0.000_000_001), 1);
        assert_eq!(usd_to_nanos(2.5), 2_500_000_000);
        assert_eq!(usd_to_nanos(1e300), i64::MAX);
        assert_eq!(usd_to_nanos(-1.0), 0);
    }
}

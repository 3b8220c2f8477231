//! [`Timestamp`]: a UTC instant with microsecond precision, stored as an integer and shown as
//! RFC 3339.

use std::fmt;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A UTC instant, microseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an RFC 3339 timestamp (for example 2026-01-31T12:00:00Z): {0:?}")]
pub struct TimestampParseError(pub String);

impl Timestamp {
    /// Reads the system clock. The only clock read in this crate; pure code takes
    /// timestamps as arguments instead.
    pub fn now() -> Self {
        Self::from_offset(OffsetDateTime::now_utc())
    }

    pub const fn from_unix_micros(micros: i64) -> Self {
        Timestamp(micros)
    }

    pub const fn as_unix_micros(self) -> i64 {
        self.0
    }

    /// Parses an RFC 3339 timestamp whose UTC instant lies in years 0000 to 9999, the range
    /// RFC 3339 can write: `0000-01-01T00:30:00+01:00` is refused, since in UTC it falls in
    /// year -1 and could not be shown again.
    pub fn parse_rfc3339(s: &str) -> Result<Self, TimestampParseError> {
        OffsetDateTime::parse(s, &Rfc3339)
            .ok()
            .and_then(|t| t.checked_to_offset(time::UtcOffset::UTC))
            .filter(|t| (0..=9999).contains(&t.year()))
            .map(Self::from_offset)
            .ok_or_else(|| TimestampParseError(s.to_owned()))
    }

    fn from_offset(t: OffsetDateTime) -> Self {
        let micros = t.unix_timestamp_nanos() / 1_000;
        Timestamp(i64::try_from(micros).unwrap_or(i64::MAX))
    }

    /// The start of the UTC calendar period holding this instant: its day, its ISO week
    /// (from Monday) or its month.
    pub fn start_of(self, period: CalendarPeriod) -> Timestamp {
        let nanos = i128::from(self.0) * 1_000;
        let Ok(t) = OffsetDateTime::from_unix_timestamp_nanos(nanos) else { return self };
        let day = t.date();
        let first = match period {
            CalendarPeriod::Day => day,
            CalendarPeriod::Week => {
                let back = i64::from(day.weekday().number_days_from_monday());
                day.checked_sub(time::Duration::days(back)).unwrap_or(day)
            }
            CalendarPeriod::Month => day.replace_day(1).unwrap_or(day),
        };
        Self::from_offset(first.midnight().assume_utc())
    }

    /// This instant moved by `micros` (negative: earlier), saturating.
    pub const fn plus_micros(self, micros: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(micros))
    }

    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000;
        match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            Ok(t) => t.format(&Rfc3339).unwrap_or_else(|_| self.0.to_string()),
            Err(_) => self.0.to_string(),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Timestamp::parse_rfc3339(&s).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for Timestamp {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Timestamp".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "format": "date-time" })
    }
}

/// A calendar period, for [`Timestamp::start_of`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CalendarPeriod {
    Day,
    Week,
    Month,
}

/// Seconds to tell a caller to wait (`Retry-After`): rounded up, and at least 1.
pub fn retry_after_secs(wait: std::time::Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_at_least_a_second() {
        use std::time::Duration;
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1_001)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
    }

    #[test]
    fn calendar_periods_start_at_utc_midnight_monday_and_the_first() {
        let at = Timestamp::parse_rfc3339("2026-12-10T15:42:07.123456Z").expect("valid"); // a Thursday
        let start = |p| at.start_of(p).to_rfc3339();
        assert_eq!(start(CalendarPeriod::Day), "2026-12-10T00:00:00Z");
        assert_eq!(start(CalendarPeriod::Week), "2026-12-07T00:00:00Z");
        assert_eq!(start(CalendarPeriod::Month), "2026-12-01T00:00:00Z");
        let monday = Timestamp::parse_rfc3339("2026-12-07T00:00:00Z").expect("valid");
        assert_eq!(monday.start_of(CalendarPeriod::Week), monday);
        let new_year = Timestamp::parse_rfc3339("2027-01-01T00:00:00Z").expect("valid"); // a Friday
        assert_eq!(new_year.start_of(CalendarPeriod::Week).to_rfc3339(), "2026-12-28T00:00:00Z");
    }

    #[test]
    fn rfc3339_round_trip_keeps_micros() {
        let t = Timestamp::parse_rfc3339("2026-11-23T16:13:32.123456Z").expect("valid");
        assert_eq!(t.to_rfc3339(), "2026-11-23T16:13:32.123456Z");
        assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()), Ok(t));
    }

    #[test]
    fn rejects_garbage() {
        assert!(Timestamp::parse_rfc3339("yesterday").is_err());
    }

    #[test]
    fn rejects_instants_that_rfc3339_cannot_write_in_utc() {
        // Found by the `identifiers` fuzz target: the offset moves the instant into year -1.
        assert!(Timestamp::parse_rfc3339("0000-01-01T01:05:55+05:55").is_err());
        assert!(Timestamp::parse_rfc3339("9999-12-31T23:30:00-01:00").is_err());
        let earliest = Timestamp::parse_rfc3339("0000-01-01T05:55:00+05:55").expect("year 0 in UTC");
        assert_eq!(earliest.to_rfc3339(), "0000-01-01T00:00:00Z");
        let latest = Timestamp::parse_rfc3339("9999-12-31T23:59:59.999999Z").expect("year 9999");
        assert_eq!(Timestamp::parse_rfc3339(&latest.to_rfc3339()), Ok(latest));
    }
}

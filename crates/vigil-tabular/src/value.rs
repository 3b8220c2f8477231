//! Reading one cell: numbers with thousands separators, currency and percent strings,
//! booleans, dates and date-times in the formats business exports use.
//!
//! Each parser is strict (the whole trimmed cell must match) and allocation-free, because
//! type inference runs every parser over every cell. Ambiguities that only a column can
//! settle (is `,` a decimal or a thousands separator, is `03/04/2024` day-first) are
//! parameters here and decided per column in [`crate::infer`].

/// Cells that mean "no value", compared case-insensitively after trimming.
const MISSING: [&str; 9] = ["", "na", "n/a", "nan", "null", "none", "nil", "-", "#n/a"];

pub fn is_missing(cell: &str) -> bool {
    let t = trim(cell);
    t.len() <= 4 && MISSING.iter().any(|m| t.eq_ignore_ascii_case(m))
}

/// `str::trim`, with a fast path for the usual cell that has no space at either end (the
/// parsers run over every cell, and Unicode-aware trimming dominated them).
pub fn trim(cell: &str) -> &str {
    let bytes = cell.as_bytes();
    // `str::trim` also trims the vertical tab, which `is_ascii_whitespace` leaves out.
    let plain = |b: u8| b.is_ascii() && !b.is_ascii_whitespace() && b != 0x0B;
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) if plain(first) && plain(last) => cell,
        (None, _) | (_, None) => cell,
        _ => cell.trim(),
    }
}

/// Which character separates the fractional part.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecimalMark {
    /// `1,234.5`
    Point,
    /// `1.234,5`
    Comma,
}

impl DecimalMark {
    fn char(self) -> u8 {
        match self {
            DecimalMark::Point => b'.',
            DecimalMark::Comma => b',',
        }
    }

    fn grouping(self) -> u8 {
        match self {
            DecimalMark::Point => b',',
            DecimalMark::Comma => b'.',
        }
    }
}

/// A number read from a cell, with what it looked like.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Number {
    pub value: f64,
    /// It had a fractional part or an exponent.
    pub fractional: bool,
    /// It used thousands separators.
    pub grouped: bool,
    /// Leading zeros (`007`): an identifier or code rather than a quantity.
    pub leading_zero: bool,
}

/// A plain number: optional sign, digits with optional thousands separators (`,`/`.` per
/// `mark`, or a space or apostrophe, in groups of three), an optional fraction
/// and exponent.
pub fn parse_number(cell: &str, mark: DecimalMark) -> Option<Number> {
    let t = trim(cell).as_bytes();
    let (negative, body) = match t.first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let mut digits = 0usize;
    let mut group = 0usize;
    let mut grouped = false;
    let mut separator: Option<u8> = None;
    let mut i = 0;
    let mut mantissa: u64 = 0;
    let mut exact = true;
    let mut scale: i32 = 0;
    while i < body.len() {
        let c = body[i];
        if c.is_ascii_digit() {
            push_digit(&mut mantissa, &mut exact, &mut scale, c);
            digits += 1;
            group += 1;
            i += 1;
        } else if (c == mark.grouping() || c == b' ' || c == b'\'') && digits > 0 {
            // A thousands separator: the same one throughout, groups of three after it, and
            // the first group one to three digits.
            if separator.is_some_and(|s| s != c) || (grouped && group != 3) || (!grouped && group > 3) {
                return None;
            }
            separator = Some(c);
            grouped = true;
            group = 0;
            i += 1;
        } else {
            break;
        }
    }
    if digits == 0 || (grouped && group != 3) {
        return None;
    }
    let leading_zero = body.first() == Some(&b'0') && digits > 1 && body.get(1).is_some_and(u8::is_ascii_digit);
    let mut fractional = false;
    if i < body.len() && body[i] == mark.char() {
        i += 1;
        let start = i;
        while i < body.len() && body[i].is_ascii_digit() {
            push_digit(&mut mantissa, &mut exact, &mut scale, body[i]);
            scale -= 1;
            i += 1;
        }
        if i == start {
            return None;
        }
        fractional = true;
    }
    let mut exponent: i32 = 0;
    if i < body.len() && (body[i] == b'e' || body[i] == b'E') {
        i += 1;
        let negative_exp = match body.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let start = i;
        while i < body.len() && body[i].is_ascii_digit() {
            exponent = exponent.saturating_mul(10).saturating_add(i32::from(body[i] - b'0'));
            i += 1;
        }
        if i == start {
            return None;
        }
        if negative_exp {
            exponent = -exponent;
        }
        fractional = true;
    }
    if i != body.len() {
        return None;
    }
    let value = if exact && exponent == 0 && scale >= -18 && mantissa < (1 << 53) {
        // Exact for the cells exports contain: the same double as the decimal string.
        let m = mantissa as f64;
        if scale >= 0 { m * 10f64.powi(scale) } else { m / 10f64.powi(-scale) }
    } else {
        // Rare: rebuild a plain string and let the standard library round it correctly.
        let mut text = String::with_capacity(body.len());
        for &c in body {
            if c.is_ascii_digit() || c == b'e' || c == b'E' || c == b'-' || c == b'+' {
                text.push(char::from(c));
            } else if c == mark.char() {
                text.push('.');
            }
        }
        text.parse::<f64>().ok()?
    };
    if !value.is_finite() {
        return None;
    }
    Some(Number { value: if negative { -value } else { value }, fractional, grouped, leading_zero })
}

fn push_digit(mantissa: &mut u64, exact: &mut bool, scale: &mut i32, c: u8) {
    match mantissa.checked_mul(10).and_then(|m| m.checked_add(u64::from(c - b'0'))) {
        Some(m) if *exact => *mantissa = m,
        _ => {
            // Too many digits to be exact: keep the magnitude.
            *exact = false;
            *scale += 1;
        }
    }
}

/// An integer: a number without fraction or exponent that fits in an `i64`.
pub fn parse_integer(cell: &str, mark: DecimalMark) -> Option<i64> {
    let n = parse_number(cell, mark)?;
    if n.fractional || n.value.abs() >= 9.007_199_254_740_992e15 {
        // Beyond 2^53 an f64 is not exact: parse the digits themselves.
        if n.fractional {
            return None;
        }
        let digits: String = trim(cell).chars().filter(|c| c.is_ascii_digit() || *c == '-').collect();
        return digits.parse().ok();
    }
    Some(n.value as i64)
}

/// Currency symbols and codes recognised before or after an amount.
const CURRENCIES: [&str; 14] = ["US$", "$", "€", "£", "¥", "₹", "USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "INR"];

/// An amount with a currency symbol or code (`$1,234.50`, `-€12`, `1.234,50 €`, `USD 12`,
/// `(1,234.00)` in accounting notation with a symbol): the value and the symbol.
pub fn parse_currency(cell: &str, mark: DecimalMark) -> Option<(f64, &'static str)> {
    match parse_amount(cell, mark)? {
        (value, Some(symbol)) => Some((value, symbol)),
        (_, None) => None,
    }
}

/// An amount in a money column: with a currency symbol or code, or without, including
/// accounting negatives (`(12.00)`). The value and the symbol if there was one.
pub fn parse_amount(cell: &str, mark: DecimalMark) -> Option<(f64, Option<&'static str>)> {
    let mut t = trim(cell);
    let mut negative = false;
    let mut found: Option<&'static str> = None;
    // Parentheses, a minus sign and the symbol come in either order: `($12)`, `$(12)`,
    // `-$12`, `$-12`, `(12) USD`.
    for _ in 0..3 {
        if let Some(inner) = t.strip_prefix('(').and_then(|x| x.strip_suffix(')')) {
            negative = !negative;
            t = inner.trim();
        }
        if let Some(rest) = t.strip_prefix('-') {
            negative = !negative;
            t = rest.trim_start();
        }
        if found.is_none()
            && let Some((symbol, rest)) =
                CURRENCIES.iter().find_map(|s| Some((*s, t.strip_prefix(s).or_else(|| t.strip_suffix(s))?)))
        {
            found = Some(symbol);
            t = rest.trim();
        }
    }
    let n = parse_number(t, mark)?;
    Some((if negative { -n.value } else { n.value }, found))
}

/// A percentage (`12.5%`, `-3 %`): the fraction (0.125).
pub fn parse_percent(cell: &str, mark: DecimalMark) -> Option<f64> {
    let rest = trim(cell).strip_suffix('%')?;
    Some(parse_number(rest.trim_end(), mark)?.value / 100.0)
}

/// A boolean word: true/false, yes/no, y/n, t/f (any case). Not 0/1: those are integers.
pub fn parse_bool(cell: &str) -> Option<bool> {
    let t = trim(cell);
    const TRUE: [&str; 4] = ["true", "yes", "y", "t"];
    const FALSE: [&str; 4] = ["false", "no", "n", "f"];
    if TRUE.iter().any(|w| t.eq_ignore_ascii_case(w)) {
        Some(true)
    } else if FALSE.iter().any(|w| t.eq_ignore_ascii_case(w)) {
        Some(false)
    } else {
        None
    }
}

/// The order of day and month in a slashed or dotted date.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DateOrder {
    /// 2024-03-31, 2024/03/31
    YearMonthDay,
    /// 31/03/2024, 31.03.2024
    DayMonthYear,
    /// 03/31/2024
    MonthDayYear,
}

/// A calendar date and optional time of day, as read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTime {
    /// Days since 1970-01-01.
    pub days: i64,
    /// Nanoseconds since midnight (UTC when an offset was given), `None` for a date alone.
    pub nanos: Option<i64>,
    /// Separator between the date's parts (`-`, `/`, `.`).
    pub separator: u8,
    /// A two-digit year (expanded to 1970–2069).
    pub short_year: bool,
}

/// A date (`2024-03-31`, `31/03/2024`, `03/31/24`, `31.03.2024`, `31-Mar-2024`) or a
/// date-time (`2024-03-31T14:05:09.123Z`, `2024-03-31 14:05`, with an optional offset),
/// with day and month in `order` for the numeric forms other than year-first.
pub fn parse_datetime(cell: &str, order: DateOrder) -> Option<DateTime> {
    let t = trim(cell);
    let (date, time) = match memchr::memchr2(b'T', b' ', t.as_bytes()) {
        Some(i) => (&t[..i], Some(t[i + 1..].trim_start())),
        None => (t, None),
    };
    let (days, separator, short_year) = parse_date(date, order)?;
    let nanos = match time {
        Some(time) => Some(parse_time(time)?),
        None => None,
    };
    let (days, nanos) = match nanos {
        Some(n) => (days + n.div_euclid(NANOS_PER_DAY), Some(n.rem_euclid(NANOS_PER_DAY))),
        None => (days, None),
    };
    Some(DateTime { days, nanos, separator, short_year })
}

const NANOS_PER_DAY: i64 = 86_400_000_000_000;
/// Microseconds in a day: date-times are stored in microseconds (as PostgreSQL does),
/// which spans every four-digit year.
pub const MICROS_PER_DAY: i64 = 86_400_000_000;

impl DateTime {
    /// Microseconds since 1970-01-01T00:00:00 (sub-microsecond digits truncated).
    pub fn micros(&self) -> i64 {
        self.days * MICROS_PER_DAY + self.nanos.unwrap_or(0) / 1000
    }
}

const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];

/// Days since 1970-01-01, the separator, and whether the year had two digits.
type DateReading = (i64, u8, bool);

fn parse_date(date: &str, order: DateOrder) -> Option<DateReading> {
    match year_first_date(date) {
        Some(reading) => reading,
        None => parse_any_date(date, order),
    }
}

/// The usual shape, `2024-03-31` (or with `/` or `.`), read without splitting: what
/// [`parse_any_date`] makes of it, in a fraction of the time. `None` for other shapes.
fn year_first_date(date: &str) -> Option<Option<DateReading>> {
    let &[y0, y1, y2, y3, s, m0, m1, t, d0, d1] = date.as_bytes() else { return None };
    if s != t || !matches!(s, b'-' | b'/' | b'.') {
        return None;
    }
    let digits = |ds: &[u8]| ds.iter().try_fold(0i64, |n, &d| d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0')));
    let (year, month, day) = (digits(&[y0, y1, y2, y3])?, digits(&[m0, m1])?, digits(&[d0, d1])?);
    let valid = (1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month);
    Some(valid.then(|| (days_from_civil(year, month, day), s, false)))
}

fn parse_any_date(date: &str, order: DateOrder) -> Option<DateReading> {
    let separator = *date.as_bytes().iter().find(|c| matches!(c, b'-' | b'/' | b'.'))?;
    let mut parts = date.split(char::from(separator));
    let (a, b, c) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let num = |s: &str, max_len: usize| -> Option<i64> {
        (!s.is_empty() && s.len() <= max_len && s.bytes().all(|c| c.is_ascii_digit())).then(|| s.parse().ok())?
    };
    let month_name = |s: &str| {
        let prefix = s.get(..3).filter(|_| s.len() <= 9 && s.is_ascii())?;
        MONTHS.iter().position(|m| prefix.eq_ignore_ascii_case(m))
    };
    let (year, month, day, year_text) = if a.len() == 4 {
        (num(a, 4)?, num(b, 2)?, num(c, 2)?, a)
    } else if let Some(m) = month_name(b) {
        (num(c, 4)?, m as i64 + 1, num(a, 2)?, c)
    } else {
        let (x, y, year) = (num(a, 2)?, num(b, 2)?, num(c, 4)?);
        match order {
            DateOrder::MonthDayYear => (year, x, y, c),
            _ => (year, y, x, c),
        }
    };
    let short_year = year_text.len() == 2;
    let year = match year_text.len() {
        2 if year < 70 => 2000 + year,
        2 => 1900 + year,
        4 => year,
        _ => return None,
    };
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    Some((days_from_civil(year, month, day), separator, short_year))
}

fn parse_time(time: &str) -> Option<i64> {
    // Offset: Z, +hh:mm, -hh:mm, +hhmm.
    let (clock, offset_minutes) = if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        (clock, 0)
    } else if let Some(i) = time.rfind(['+', '-']).filter(|&i| i >= 5) {
        let o = time[i + 1..].replace(':', "");
        if o.len() != 4 || !o.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let minutes = o[..2].parse::<i64>().ok()? * 60 + o[2..].parse::<i64>().ok()?;
        (&time[..i], if &time[i..=i] == "-" { -minutes } else { minutes })
    } else {
        (time, 0)
    };
    let mut parts = clock.split(':');
    let two = |s: Option<&str>| -> Option<i64> {
        let s = s?;
        (s.len() == 2 && s.bytes().all(|c| c.is_ascii_digit())).then(|| s.parse().ok())?
    };
    let hours = two(parts.next())?;
    let minutes = two(parts.next())?;
    let (seconds, fraction) = match parts.next() {
        None => (0, 0),
        Some(s) => {
            let (whole, frac) = s.split_once(['.', ',']).unwrap_or((s, ""));
            let whole = two(Some(whole))?;
            if frac.len() > 9 || !frac.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let nanos = if frac.is_empty() { 0 } else { frac.parse::<i64>().ok()? * 10i64.pow(9 - frac.len() as u32) };
            (whole, nanos)
        }
    };
    if parts.next().is_some() || hours > 23 || minutes > 59 || seconds > 60 {
        return None;
    }
    Some(((hours * 60 + minutes - offset_minutes) * 60 + seconds) * 1_000_000_000 + fraction)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number: (year, month, day).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// `YYYY-MM-DD`.
pub fn format_date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// A date-time in microseconds as `YYYY-MM-DDTHH:MM:SS` (to the second).
pub fn format_instant(micros: i64) -> String {
    let days = micros.div_euclid(MICROS_PER_DAY);
    let secs = micros.rem_euclid(MICROS_PER_DAY) / 1_000_000;
    format!("{}T{:02}:{:02}:{:02}", format_date(days), secs / 3600, secs / 60 % 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const POINT: DecimalMark = DecimalMark::Point;
    const COMMA: DecimalMark = DecimalMark::Comma;

    #[test]
    fn numbers_in_export_shapes() {
        let v = |s, m| parse_number(s, m).map(|n| n.value);
        assert_eq!(v("1,234.50", POINT), Some(1234.5));
        assert_eq!(v("1.234,50", COMMA), Some(1234.5));
        assert_eq!(v("-12", POINT), Some(-12.0));
        assert_eq!(v("1 234 567", POINT), Some(1_234_567.0));
        assert_eq!(v("1'234.5", POINT), Some(1234.5));
        assert_eq!(v("2.5e3", POINT), Some(2500.0));
        assert_eq!(v("0.1", POINT), Some(0.1));
        assert_eq!(v("  42  ", POINT), Some(42.0));
        for bad in ["", "-", "1,23", "12,34,567", "1.2.3", "abc", "1e", "1.", ".", "1,234,56", "1,,234"] {
            assert_eq!(v(bad, POINT), None, "{bad:?}");
        }
        assert!(parse_number("007", POINT).is_some_and(|n| n.leading_zero));
        assert!(parse_number("0.5", POINT).is_some_and(|n| !n.leading_zero && n.fractional));
        assert_eq!(parse_integer("9007199254740993", POINT), Some(9_007_199_254_740_993));
        assert_eq!(parse_integer("1,000", POINT), Some(1000));
        assert_eq!(parse_integer("1.5", POINT), None);
    }

    #[test]
    fn currency_percent_bool_missing() {
        assert_eq!(parse_currency("$1,234.50", POINT), Some((1234.5, "$")));
        assert_eq!(parse_currency("1.234,50 €", COMMA), Some((1234.5, "€")));
        assert_eq!(parse_currency("(1,000.00) USD", POINT), Some((-1000.0, "USD")));
        assert_eq!(parse_currency("-£3", POINT), Some((-3.0, "£")));
        assert_eq!(parse_currency("12", POINT), None);
        assert_eq!(parse_percent("12.5%", POINT), Some(0.125));
        assert_eq!(parse_percent("12.5", POINT), None);
        assert_eq!(parse_bool("Yes"), Some(true));
        assert_eq!(parse_bool("F"), Some(false));
        assert_eq!(parse_bool("1"), None);
        assert!(is_missing(" N/A ") && is_missing("") && is_missing("null") && !is_missing("0"));
    }

    #[test]
    fn dates_and_times() {
        let d = |s, o| parse_datetime(s, o).map(|x| (format_date(x.days), x.nanos));
        let ymd = DateOrder::YearMonthDay;
        assert_eq!(d("2024-03-31", ymd), Some(("2024-03-31".into(), None)));
        assert_eq!(d("31/03/2024", DateOrder::DayMonthYear), Some(("2024-03-31".into(), None)));
        assert_eq!(d("03/31/2024", DateOrder::MonthDayYear), Some(("2024-03-31".into(), None)));
        assert_eq!(d("31.03.24", DateOrder::DayMonthYear), Some(("2024-03-31".into(), None)));
        assert_eq!(d("31-Mar-2024", ymd), Some(("2024-03-31".into(), None)));
        assert_eq!(d("2024-02-30", ymd), None);
        assert_eq!(d("2023-02-29", ymd), None);
        assert_eq!(d("2024-02-29", ymd), Some(("2024-02-29".into(), None)));
        assert_eq!(d("2024-03-31T14:05:09.5Z", ymd), Some(("2024-03-31".into(), Some(50_709_500_000_000))));
        assert_eq!(d("2024-03-31 23:30-01:00", ymd), Some(("2024-04-01".into(), Some(1_800_000_000_000))));
        assert_eq!(d("2024-03-31 25:00", ymd), None);
        assert_eq!(d("13/13/2024", DateOrder::DayMonthYear), None);
        assert_eq!(d("hello", ymd), None);
    }

    proptest! {
        #[test]
        fn the_year_first_shortcut_reads_as_the_general_reader(
            date in "[0-9]{4}[-/.][0-9]{2}[-/.][0-9]{2}|[0-9]{4}-[01][0-9]-[0-3][0-9]|[0-9 ]{4}-[0-9a]{2}-[0-9]{2}",
        ) {
            if let Some(quick) = year_first_date(&date) {
                for order in [DateOrder::YearMonthDay, DateOrder::DayMonthYear, DateOrder::MonthDayYear] {
                    prop_assert_eq!(quick, parse_any_date(&date, order), "{}", date);
                }
            }
        }

        #[test]
        fn days_round_trip(days in -1_000_000i64..1_000_000) {
            let (y, m, d) = civil_from_days(days);
            prop_assert_eq!(days_from_civil(y, m, d), days);
            prop_assert_eq!(parse_datetime(&format_date(days), DateOrder::YearMonthDay).map(|x| x.days), (0..=9999).contains(&y).then_some(days));
        }

        #[test]
        fn plain_decimals_parse_as_the_standard_library_does(x in -1e12f64..1e12, places in 0usize..7) {
            let text = format!("{x:.places$}");
            let ours = parse_number(&text, POINT).map(|n| n.value);
            prop_assert_eq!(ours, text.parse::<f64>().ok());
        }

        #[test]
        fn grouping_does_not_change_the_value(n in 0u64..1_000_000_000_000) {
            let plain = n.to_string();
            let mut grouped = String::new();
            for (i, c) in plain.chars().enumerate() {
                if i > 0 && (plain.len() - i) % 3 == 0 {
                    grouped.push(',');
                }
                grouped.push(c);
            }
            prop_assert_eq!(parse_integer(&grouped, POINT), Some(n as i64));
        }

        #[test]
        fn parsers_never_panic(s in "\\PC{0,40}") {
            for mark in [POINT, COMMA] {
                let _ = parse_number(&s, mark);
                let _ = parse_integer(&s, mark);
                let _ = parse_currency(&s, mark);
                let _ = parse_percent(&s, mark);
            }
            for order in [DateOrder::YearMonthDay, DateOrder::DayMonthYear, DateOrder::MonthDayYear] {
                let _ = parse_datetime(&s, order);
            }
            let _ = parse_bool(&s);
        }
    }
}

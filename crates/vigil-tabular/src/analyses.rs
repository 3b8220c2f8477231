//! Analyses of a typed table, each finding measured and evidenced (its column, the rows or
//! value counts behind it): outliers by IQR fences and by robust z-score, Benford's
//! first-digit test on amount columns, volume by period with spikes and empty periods,
//! referential checks between columns a user names, and personal data found in cells.
//!
//! Personal data never leaves this module unredacted: a finding carries the kind, counts,
//! and [`pii::redact`]ed examples only.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::pii::{self, PiiKind};
use crate::profile::quantile;
use crate::table::{Column, Role, Values};
use crate::value::{MICROS_PER_DAY, civil_from_days, days_from_civil, format_date, format_instant};

/// Examples kept per finding.
const EXAMPLES: usize = 10;
/// The robust z-score beyond which a value is an outlier (Iglewicz and Hoaglin).
pub const ROBUST_Z_THRESHOLD: f64 = 3.5;
/// Tukey's fences: 1.5 interquartile ranges beyond the quartiles.
pub const IQR_FENCE: f64 = 1.5;

/// Every analysis of a table.
#[derive(Clone, Debug, Serialize)]
pub struct Analyses {
    pub outliers: Vec<Outliers>,
    pub benford: Vec<Benford>,
    pub volume: Vec<Volume>,
    /// The referential checks a user named with this table's column as the child (the
    /// caller adds them: the parent may be another table's column).
    pub references: Vec<Referential>,
    pub personal_data: Vec<PiiFinding>,
}

/// Runs every analysis that applies to `columns`. Referential checks are the caller's
/// ([`referential`]), since only a user knows which column refers to which.
pub fn analyse(columns: &[Column]) -> Analyses {
    let measured = |c: &&Column| c.kind.value.is_numeric() && matches!(c.role.value, Role::Amount | Role::Measure);
    Analyses {
        outliers: columns.iter().filter(measured).filter_map(outliers).collect(),
        benford: columns.iter().filter(|c| c.role.value == Role::Amount).filter_map(benford).collect(),
        // Rows per period of a personal date (a birth date) would show people's dates.
        volume: columns.iter().filter(|c| c.role.value != Role::Pii).filter_map(volume).collect(),
        references: Vec::new(),
        personal_data: columns.iter().filter_map(personal_data).collect(),
    }
}

/// A value flagged as an outlier: its 1-based row, the value and how far out it is (in
/// interquartile ranges beyond the fence, or its robust z-score).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Flagged {
    pub row: usize,
    pub value: f64,
    pub score: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Outliers {
    pub column: String,
    /// Values considered (the present ones).
    pub values: usize,
    pub iqr: IqrOutliers,
    pub robust_z: RobustZ,
}

/// Values outside `[q1 - 1.5 IQR, q3 + 1.5 IQR]`.
#[derive(Clone, Debug, Serialize)]
pub struct IqrOutliers {
    pub q1: f64,
    pub q3: f64,
    pub lower_fence: f64,
    pub upper_fence: f64,
    pub below: usize,
    pub above: usize,
    /// The farthest out first.
    pub examples: Vec<Flagged>,
}

/// Values whose robust z-score `0.6745 (x - median) / MAD` exceeds the threshold in size.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RobustZ {
    Measured {
        median: f64,
        mad: f64,
        threshold: f64,
        flagged: usize,
        examples: Vec<Flagged>,
    },
    /// More than half the values are equal, so the median absolute deviation is 0 and
    /// every other value would be infinitely far out.
    NotApplicable {
        reason: String,
    },
}

/// Outliers in a numeric column; `None` when it has fewer than four values.
pub fn outliers(column: &Column) -> Option<Outliers> {
    let present: Vec<(usize, f64)> = (0..column.values.len()).filter_map(|r| Some((r, column.number(r)?))).collect();
    if present.len() < 4 {
        return None;
    }
    let mut sorted: Vec<f64> = present.iter().map(|p| p.1).collect();
    crate::radix::sort_floats(&mut sorted);
    let (q1, q3) = (quantile(&sorted, 0.25), quantile(&sorted, 0.75));
    let (median, mad) = median_and_mad(&sorted);
    let spread = q3 - q1;
    let (lower_fence, upper_fence) = (q1 - IQR_FENCE * spread, q3 + IQR_FENCE * spread);
    let beyond = |v: f64| {
        let distance = if v < lower_fence { lower_fence - v } else { v - upper_fence };
        if spread > 0.0 { distance / spread } else { distance }
    };
    let outside: Vec<Flagged> = present
        .iter()
        .filter(|(_, v)| *v < lower_fence || *v > upper_fence)
        .map(|&(row, value)| Flagged { row: row + 1, value, score: beyond(value) })
        .collect();
    let iqr = IqrOutliers {
        q1,
        q3,
        lower_fence,
        upper_fence,
        below: outside.iter().filter(|f| f.value < lower_fence).count(),
        above: outside.iter().filter(|f| f.value > upper_fence).count(),
        examples: farthest(outside),
    };
    let robust_z = if mad > 0.0 {
        let flagged: Vec<Flagged> = present
            .iter()
            .map(|&(row, value)| Flagged { row: row + 1, value, score: 0.6745 * (value - median) / mad })
            .filter(|f| f.score.abs() > ROBUST_Z_THRESHOLD)
            .collect();
        RobustZ::Measured {
            median,
            mad,
            threshold: ROBUST_Z_THRESHOLD,
            flagged: flagged.len(),
            examples: farthest(flagged),
        }
    } else {
        RobustZ::NotApplicable {
            reason: format!("the median absolute deviation is 0: more than half of the values equal {median}"),
        }
    };
    Some(Outliers { column: column.name.clone(), values: present.len(), iqr, robust_z })
}

/// The median of sorted values and their median absolute deviation from it (unscaled,
/// as `scipy.stats.median_abs_deviation`).
fn median_and_mad(sorted: &[f64]) -> (f64, f64) {
    let median = quantile(sorted, 0.5);
    let mut deviations: Vec<f64> = sorted.iter().map(|v| (v - median).abs()).collect();
    crate::radix::sort_floats(&mut deviations);
    (median, quantile(&deviations, 0.5))
}

/// The [`EXAMPLES`] farthest out, farthest first, ties by row.
fn farthest(mut flagged: Vec<Flagged>) -> Vec<Flagged> {
    flagged.sort_by(|a, b| b.score.abs().total_cmp(&a.score.abs()).then(a.row.cmp(&b.row)));
    flagged.truncate(EXAMPLES);
    flagged
}

/// Benford's first-digit test of one column.
#[derive(Clone, Debug, Serialize)]
pub struct Benford {
    pub column: String,
    /// Non-zero values tested.
    pub values: usize,
    /// Values with first digit 1..=9.
    pub observed: [usize; 9],
    /// Benford's proportions, log10(1 + 1/d).
    pub expected: [f64; 9],
    /// Pearson's chi-squared statistic against Benford's counts, 8 degrees of freedom.
    pub chi2: f64,
    pub p_value: f64,
    /// Mean absolute deviation of the proportions (Nigrini's conformity measure).
    pub mad: f64,
    /// Nigrini's reading of `mad`: close, acceptable, marginal or nonconformity.
    pub conformity: &'static str,
    /// Why the law may not apply to this column, if it may not.
    pub caveat: Option<String>,
}

/// Benford's proportion of first digit `d`.
pub fn benford_expected(d: usize) -> f64 {
    (1.0 + 1.0 / d as f64).log10()
}

/// The first significant digit of a non-zero finite number.
pub fn first_digit(v: f64) -> Option<usize> {
    let x = v.abs();
    if !x.is_finite() || x == 0.0 {
        return None;
    }
    let scaled = x * 10f64.powi(-(x.log10().floor() as i32));
    // Scaling is inexact near a digit boundary (0.3 may scale to 2.9999…): there, read the
    // digit from the shortest decimal text of the number, which is exact.
    let digit = if (scaled - scaled.round()).abs() < 1e-9 || !(1.0..10.0).contains(&scaled) {
        format!("{x:e}").bytes().next().map(|b| usize::from(b - b'0'))?
    } else {
        scaled as usize
    };
    (1..=9).contains(&digit).then_some(digit)
}

/// Benford's test of an amount column; `None` without non-zero values.
pub fn benford(column: &Column) -> Option<Benford> {
    let mut observed = [0usize; 9];
    let (mut smallest, mut largest) = (f64::INFINITY, 0.0f64);
    for row in 0..column.values.len() {
        let Some(v) = column.number(row) else { continue };
        if let Some(d) = first_digit(v) {
            observed[d - 1] += 1;
            (smallest, largest) = (smallest.min(v.abs()), largest.max(v.abs()));
        }
    }
    let n: usize = observed.iter().sum();
    if n == 0 {
        return None;
    }
    let expected: [f64; 9] = std::array::from_fn(|i| benford_expected(i + 1));
    let total = n as f64;
    let chi2: f64 = observed.iter().zip(&expected).map(|(&o, &p)| (o as f64 - total * p).powi(2) / (total * p)).sum();
    let mad = observed.iter().zip(&expected).map(|(&o, &p)| (o as f64 / total - p).abs()).sum::<f64>() / 9.0;
    let conformity = match mad {
        m if m <= 0.006 => "close",
        m if m <= 0.012 => "acceptable",
        m if m <= 0.015 => "marginal",
        _ => "nonconformity",
    };
    let caveat = if n < 100 {
        Some(format!("only {n} values: the test has little power below a few hundred"))
    } else if largest < smallest * 100.0 {
        Some(format!(
            "values span less than two orders of magnitude ({smallest} to {largest}): Benford's law is not expected to hold"
        ))
    } else {
        None
    };
    Some(Benford {
        column: column.name.clone(),
        values: n,
        observed,
        expected,
        chi2,
        p_value: chi2_sf_8(chi2),
        mad,
        conformity,
        caveat,
    })
}

/// The chi-squared survival function with 8 degrees of freedom: for an even number of
/// degrees the regularised upper incomplete gamma function has the closed form
/// `e^-y (1 + y + y^2/2 + y^3/6)` with `y = x / 2`.
pub fn chi2_sf_8(x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let y = x / 2.0;
    (-y).exp() * (1.0 + y + y * y / 2.0 + y * y * y / 6.0)
}

/// How rows spread over time in one date column.
#[derive(Clone, Debug, Serialize)]
pub struct Volume {
    pub column: String,
    pub period: Period,
    /// Every period from the first row's to the last's, empty ones included.
    pub periods: Vec<PeriodCount>,
    /// Periods whose row count has a robust z-score above the threshold (with more than
    /// half the periods equal, the MAD is 0 and the mean absolute deviation stands in,
    /// scaled by 1.2533 as for a normal distribution).
    pub spikes: Vec<PeriodCount>,
    /// Runs of empty periods between the first and the last.
    pub gaps: Vec<PeriodGap>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Day,
    /// Weeks from Monday.
    Week,
    Month,
}

impl Period {
    /// The period holding day `d` (days since 1970-01-01), numbered consecutively.
    fn index(self, d: i64) -> i64 {
        match self {
            Period::Day => d,
            // 1970-01-01 was a Thursday: week 0 starts on Monday 1969-12-29.
            Period::Week => (d + 3).div_euclid(7),
            Period::Month => {
                let (y, m, _) = civil_from_days(d);
                y * 12 + m - 1
            }
        }
    }

    /// The first day of period `i`.
    fn start(self, i: i64) -> String {
        match self {
            Period::Day => format_date(i),
            Period::Week => format_date(i * 7 - 3),
            Period::Month => format_date(days_from_civil(i.div_euclid(12), i.rem_euclid(12) + 1, 1)),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PeriodCount {
    /// The period's first day.
    pub start: String,
    pub rows: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PeriodGap {
    /// The first and last empty period's first day.
    pub from: String,
    pub to: String,
    pub periods: usize,
}

/// Volume by period of a date column: days up to a quarter's span, weeks up to two years,
/// months beyond, coarser while more than half the periods would be empty. `None` for
/// other columns or without values.
pub fn volume(column: &Column) -> Option<Volume> {
    let days: Vec<i64> = match &column.values {
        Values::Date(v) => (0..v.len()).filter(|&r| !column.validity.is_missing(r)).map(|r| v[r]).collect(),
        Values::DateTime(v) => {
            (0..v.len()).filter(|&r| !column.validity.is_missing(r)).map(|r| v[r].div_euclid(MICROS_PER_DAY)).collect()
        }
        _ => return None,
    };
    let (&first, &last) = (days.iter().min()?, days.iter().max()?);
    let mut period = match last - first {
        span if span <= 92 => Period::Day,
        span if span <= 731 => Period::Week,
        _ => Period::Month,
    };
    // Coarser periods while most are empty: weekly postings are counted by week, so the
    // posting days are not mistaken for spikes.
    let (lo, counts) = loop {
        let lo = period.index(first);
        let mut counts = vec![0usize; (period.index(last) - lo + 1) as usize];
        for &d in &days {
            counts[(period.index(d) - lo) as usize] += 1;
        }
        let empty = counts.iter().filter(|&&c| c == 0).count();
        match period {
            _ if empty * 2 <= counts.len() => break (lo, counts),
            Period::Day => period = Period::Week,
            Period::Week => period = Period::Month,
            Period::Month => break (lo, counts),
        }
    };
    let start = |i: i64| period.start(i);
    let periods: Vec<PeriodCount> =
        counts.iter().enumerate().map(|(i, &rows)| PeriodCount { start: start(lo + i as i64), rows }).collect();
    let mut sorted: Vec<f64> = counts.iter().map(|&c| c as f64).collect();
    sorted.sort_unstable_by(f64::total_cmp);
    let (median, mad) = median_and_mad(&sorted);
    let mean_deviation = sorted.iter().map(|c| (c - median).abs()).sum::<f64>() / sorted.len() as f64;
    let score = |rows: usize| {
        let excess = rows as f64 - median;
        if mad > 0.0 {
            0.6745 * excess / mad
        } else if mean_deviation > 0.0 {
            excess / (1.2533 * mean_deviation)
        } else {
            0.0
        }
    };
    let spikes = periods.iter().filter(|p| score(p.rows) > ROBUST_Z_THRESHOLD).cloned().collect();
    let mut gaps = Vec::new();
    let mut i = 0;
    while i < counts.len() {
        if counts[i] == 0 {
            let from = i;
            while i < counts.len() && counts[i] == 0 {
                i += 1;
            }
            gaps.push(PeriodGap { from: start(lo + from as i64), to: start(lo + i as i64 - 1), periods: i - from });
        } else {
            i += 1;
        }
    }
    Some(Volume { column: column.name.clone(), period, periods, spikes, gaps })
}

/// Child values that do not occur in the parent column.
#[derive(Clone, Debug, Serialize)]
pub struct Referential {
    pub child: String,
    pub parent: String,
    /// The table (sheet) the parent column is in, when it is not the child's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_table: Option<String>,
    /// Child rows with a value.
    pub rows: usize,
    /// Child rows whose value the parent lacks, and how many distinct such values.
    pub unmatched_rows: usize,
    pub unmatched_values: usize,
    /// The first unmatched values (as text) with their first rows, 1-based.
    pub examples: Vec<(String, Vec<usize>)>,
}

/// A cell as the text it compares by, so an integer key matches the same digits stored as
/// an identifier elsewhere.
fn key(column: &Column, row: usize) -> Option<Cow<'_, str>> {
    if column.validity.is_missing(row) {
        return None;
    }
    Some(match &column.values {
        Values::Text(s) => s.get(row).into(),
        Values::Integer(v) => v[row].to_string().into(),
        Values::Date(v) => format_date(v[row]).into(),
        Values::DateTime(v) => {
            let fraction = v[row].rem_euclid(1_000_000);
            let whole = format_instant(v[row]);
            if fraction > 0 { format!("{whole}.{fraction:06}") } else { whole }.into()
        }
        Values::Boolean(v) => v[row].to_string().into(),
        _ => column.number(row)?.to_string().into(),
    })
}

/// Checks that every value of `child` occurs in `parent` (an invoice's vendor among the
/// vendors).
pub fn referential(child: &Column, parent: &Column) -> Referential {
    let known: HashSet<Cow<'_, str>> = (0..parent.values.len()).filter_map(|r| key(parent, r)).collect();
    let mut rows = 0;
    let mut unmatched: HashMap<Cow<'_, str>, Vec<usize>> = HashMap::new();
    let mut order: Vec<Cow<'_, str>> = Vec::new();
    let mut unmatched_rows = 0;
    for row in 0..child.values.len() {
        let Some(k) = key(child, row) else { continue };
        rows += 1;
        if known.contains(&k) {
            continue;
        }
        unmatched_rows += 1;
        let first = unmatched.entry(k.clone()).or_insert_with(|| {
            order.push(k);
            Vec::new()
        });
        if first.len() < EXAMPLES {
            first.push(row + 1);
        }
    }
    // Personal data is shown by its shape only.
    let show = |k: &str| if child.role.value == Role::Pii { pii::redact_any(k) } else { pii::shown(k) };
    let examples = order.iter().take(EXAMPLES).map(|k| (show(k), unmatched[k].clone())).collect();
    Referential {
        child: child.name.clone(),
        parent: parent.name.clone(),
        parent_table: None,
        rows,
        unmatched_rows,
        unmatched_values: unmatched.len(),
        examples,
    }
}

/// Personal data found in a column's cells.
#[derive(Clone, Debug, Serialize)]
pub struct PiiFinding {
    pub column: String,
    /// The kind most cells hold.
    pub kind: PiiKind,
    /// Cells with a value, and those that validate as `kind`.
    pub values: usize,
    pub matching: usize,
    /// `matching / values`: how sure the column holds this kind of data.
    pub confidence: f64,
    /// Redacted examples with their 1-based rows.
    pub examples: Vec<(usize, String)>,
}

/// Personal data in a text or integer column (card numbers are often integers), if any
/// cell holds some.
pub fn personal_data(column: &Column) -> Option<PiiFinding> {
    if !matches!(column.values, Values::Text(_) | Values::Integer(_)) {
        return None;
    }
    let mut counts: HashMap<PiiKind, (usize, Vec<(usize, String)>)> = HashMap::new();
    let mut values = 0;
    for row in 0..column.values.len() {
        let Some(cell) = key(column, row) else { continue };
        values += 1;
        if let Some(kind) = pii::classify(&cell) {
            let (n, examples) = counts.entry(kind).or_default();
            *n += 1;
            if examples.len() < EXAMPLES {
                examples.push((row + 1, pii::redact(kind, &cell)));
            }
        }
    }
    let (kind, (matching, examples)) = counts.into_iter().max_by_key(|(k, (n, _))| (*n, std::cmp::Reverse(*k)))?;
    Some(PiiFinding {
        column: column.name.clone(),
        kind,
        values,
        matching,
        confidence: matching as f64 / values as f64,
        examples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sniff::Chosen;
    use crate::table::{Kind, Strings, Validity};
    use crate::value::DecimalMark;

    fn column(name: &str, role: Role, values: Values, missing: Vec<bool>) -> Column {
        let kind = match &values {
            Values::Float(_) => Kind::Decimal { decimal_mark: DecimalMark::Point, grouped: false },
            Values::Integer(_) => Kind::Integer { decimal_mark: DecimalMark::Point, grouped: false },
            Values::Date(_) => Kind::Date { order: crate::value::DateOrder::YearMonthDay, separator: '-' },
            _ => Kind::Text,
        };
        let validity = if missing.is_empty() { Validity::default() } else { Validity::from_missing(missing) };
        Column {
            name: name.into(),
            kind: Chosen { value: kind, evidence: String::new() },
            role: Chosen { value: role, evidence: String::new() },
            values,
            validity,
        }
    }

    fn text(values: &[&str]) -> Values {
        let mut s = Strings::default();
        values.iter().for_each(|v| s.push(v));
        Values::Text(s)
    }

    #[test]
    fn outliers_by_fences_and_robust_z() {
        let mut v: Vec<f64> = (1..=20).map(f64::from).collect();
        v.push(500.0);
        v.push(-300.0);
        let c = column("amount", Role::Amount, Values::Float(v), vec![]);
        let o = outliers(&c).expect("enough values");
        assert_eq!((o.values, o.iqr.below, o.iqr.above), (22, 1, 1));
        // The farthest out comes first: 500 is further above than -300 is below.
        assert_eq!(o.iqr.examples.iter().map(|f| f.row).collect::<Vec<_>>(), [21, 22]);
        let RobustZ::Measured { flagged, examples, .. } = &o.robust_z else { panic!("{:?}", o.robust_z) };
        assert_eq!((*flagged, examples[0].value), (2, 500.0));
        // A column mostly of one value has no MAD: said so, not divided by zero.
        let c = column("qty", Role::Measure, Values::Integer(vec![1, 1, 1, 1, 1, 9]), vec![]);
        assert!(matches!(outliers(&c).expect("values").robust_z, RobustZ::NotApplicable { .. }));
    }

    #[test]
    fn first_digits_are_exact_at_boundaries() {
        for (v, d) in [(0.3, 3), (1000.0, 1), (0.001, 1), (-7.5, 7), (9.999, 9), (1e-300, 1), (123_456_789.0, 1)] {
            assert_eq!(first_digit(v), Some(d), "{v}");
        }
        assert_eq!(first_digit(0.0), None);
        assert_eq!(first_digit(f64::NAN), None);
    }

    #[test]
    fn benford_fits_a_geometric_series_and_flags_uniform_amounts() {
        // 250 steps per power of ten over exactly eight: log-uniform, Benford's law itself.
        let geometric: Vec<f64> = (0..2000).map(|k| 10f64.powf(f64::from(k) / 250.0)).collect();
        let b = benford(&column("amount", Role::Amount, Values::Float(geometric), vec![])).expect("values");
        assert_eq!(b.values, 2000);
        assert_eq!(b.conformity, "close");
        assert!(b.p_value > 0.05, "{b:?}");
        assert!(b.caveat.is_none());
        // Amounts spread evenly over 100..1000: far too few 1s.
        let uniform: Vec<f64> = (0..2000).map(|k| 100.0 + f64::from(k) * 0.45).collect();
        let b = benford(&column("amount", Role::Amount, Values::Float(uniform), vec![])).expect("values");
        assert_eq!(b.conformity, "nonconformity");
        assert!(b.p_value < 1e-6);
        assert!(b.caveat.as_deref().is_some_and(|c| c.contains("two orders")), "{:?}", b.caveat);
    }

    #[test]
    fn chi2_survival_matches_known_values() {
        // scipy.stats.chi2.sf(x, 8)
        assert!((chi2_sf_8(15.507313055865453) - 0.05).abs() < 1e-12);
        assert!((chi2_sf_8(8.0) - 0.43347012036670896).abs() < 1e-12);
        assert_eq!(chi2_sf_8(0.0), 1.0);
    }

    #[test]
    fn volume_finds_spikes_and_empty_periods() {
        // Days 0..60 with two rows each, 30 rows on day 30, none on days 40..=44.
        let mut days: Vec<i64> = (0..60).filter(|d| !(40..45).contains(d)).flat_map(|d| [d, d]).collect();
        days.extend([30; 28]);
        let v = volume(&column("booked", Role::Date, Values::Date(days), vec![])).expect("dates");
        assert_eq!((v.period, v.periods.len()), (Period::Day, 60));
        assert_eq!(v.spikes, [PeriodCount { start: "1970-01-31".into(), rows: 30 }]);
        assert_eq!(v.gaps, [PeriodGap { from: "1970-02-10".into(), to: "1970-02-14".into(), periods: 5 }]);
        // Postings on one day a week: more than half the days are empty, and the posting
        // days are the pattern, not spikes.
        let weekly: Vec<i64> = (0..13).flat_map(|w| [w * 7; 5]).collect();
        let v = volume(&column("booked", Role::Date, Values::Date(weekly), vec![])).expect("dates");
        assert_eq!((v.period, v.periods.len(), v.spikes.len()), (Period::Week, 13, 0));
        // Two years and more: months, starting on the first.
        let v = volume(&column("d", Role::Date, Values::Date(vec![0, 800, 1000]), vec![])).expect("dates");
        assert_eq!((v.period, v.periods[0].start.as_str()), (Period::Month, "1970-01-01"));
    }

    #[test]
    fn referential_checks_compare_as_text_across_storage() {
        let vendors = column("vendor_id", Role::Id, text(&["V1", "V2", "42"]), vec![]);
        let invoices = column(
            "vendor",
            Role::Id,
            text(&["V1", "V9", "V9", "", "V2", "V7"]),
            vec![false, false, false, true, false, false],
        );
        let r = referential(&invoices, &vendors);
        assert_eq!((r.rows, r.unmatched_rows, r.unmatched_values), (5, 3, 2));
        assert_eq!(r.examples, [("V9".to_string(), vec![2, 3]), ("V7".to_string(), vec![6])]);
        // Date-times compare as ISO text, fractions of a second only when there are some.
        let at = column("at", Role::Date, Values::DateTime(vec![0, 1_500_000]), vec![]);
        let stamps = column("stamp", Role::Date, text(&["1970-01-01T00:00:00", "1970-01-01T00:00:01.500000"]), vec![]);
        assert_eq!(referential(&at, &stamps).unmatched_rows, 0);
        let numbers = column("n", Role::Id, Values::Integer(vec![42, 43]), vec![]);
        assert_eq!(referential(&numbers, &vendors).unmatched_rows, 1);
    }

    #[test]
    fn personal_data_is_counted_and_never_shown() {
        let c = column("contact", Role::Pii, text(&["ann@example.com", "bob@example.org", "n/a", "call me"]), vec![]);
        let f = personal_data(&c).expect("emails");
        assert_eq!((f.kind, f.values, f.matching), (PiiKind::Email, 4, 2));
        assert!((f.confidence - 0.5).abs() < 1e-12);
        let shown = serde_json::to_string(&f).expect("json");
        assert!(!shown.contains("ann@example.com") && !shown.contains("bob@example.org"), "{shown}");
        assert!(personal_data(&column("note", Role::Text, text(&["fine", "late"]), vec![])).is_none());
    }
}

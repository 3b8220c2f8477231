//! Profiling a typed table: per-column statistics and per-dataset structure (duplicate
//! rows and keys, missingness patterns, correlations).
//!
//! Everything is exact: the table is in memory, so distinct counts come from hashing or
//! sorting every value and quantiles from sorting, never from sketches. `exact: true` in
//! the output says so; a sketch with a stated error bound belongs here only if a table
//! stops fitting. Definitions follow pandas/numpy/scipy so a reference can check them:
//! standard deviation with one degree of freedom, quantiles by linear interpolation,
//! histogram bins like `numpy.histogram`, Spearman on average ranks, Pearson and Spearman
//! over pairwise-complete rows, Cramér's V without bias correction.

use std::collections::HashMap;
use std::hash::BuildHasher;

use serde::Serialize;

use crate::par;
use crate::table::{Column, Kind, Role, Values};
use crate::value::format_date;

/// A map with a fast, fixed-seed hash (the same results every run; keys are table
/// content, hashed millions of times).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

fn fast_map<K, V>(capacity: usize) -> FastMap<K, V> {
    FastMap::with_capacity_and_hasher(capacity, foldhash::fast::FixedState::default())
}

/// Bins in a numeric histogram.
pub const HISTOGRAM_BINS: usize = 20;
/// Most frequent values listed per column.
pub const TOP_VALUES: usize = 10;
/// Quantiles reported per numeric column.
pub const QUANTILES: [f64; 7] = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99];
/// Examples (row numbers, values) kept per finding.
const EXAMPLES: usize = 10;

#[derive(Clone, Debug, Serialize)]
pub struct Profile {
    pub rows: usize,
    pub columns: Vec<ColumnProfile>,
    pub duplicate_rows: DuplicateRows,
    pub duplicate_keys: Vec<DuplicateKeys>,
    pub missingness: Vec<MissingPattern>,
    pub correlations: Correlations,
    /// No statistic is approximate.
    pub exact: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct ColumnProfile {
    pub name: String,
    pub kind: &'static str,
    pub role: Role,
    /// Cells with a value.
    pub count: usize,
    pub missing: usize,
    pub distinct: usize,
    /// The most frequent values (as text) with their counts, most frequent first; ties in
    /// value order.
    pub top: Vec<(String, usize)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub numeric: Option<NumericStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lengths: Option<LengthStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dates: Option<DateStats>,
}

#[derive(Clone, Debug, Serialize)]
pub struct NumericStats {
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub median: f64,
    /// Sample standard deviation (n − 1); `None` for a single value.
    pub std: Option<f64>,
    /// `(q, value)` for each of [`QUANTILES`].
    pub quantiles: Vec<(f64, f64)>,
    pub zeros: usize,
    pub negatives: usize,
    pub histogram: Histogram,
}

/// Equal-width bins over [min, max]; the last bin includes max (as `numpy.histogram`).
#[derive(Clone, Debug, Serialize)]
pub struct Histogram {
    pub edges: Vec<f64>,
    pub counts: Vec<usize>,
}

/// String lengths in characters.
#[derive(Clone, Debug, Serialize)]
pub struct LengthStats {
    pub min: usize,
    pub max: usize,
    pub mean: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct DateStats {
    pub first: String,
    pub last: String,
    /// Days from first to last, inclusive.
    pub span_days: i64,
    /// Distinct days with at least one row.
    pub days_with_rows: usize,
    /// The longest runs of days without rows, longest first.
    pub gaps: Vec<DateGap>,
}

#[derive(Clone, Debug, Serialize)]
pub struct DateGap {
    /// The last day with rows before the gap and the first after it.
    pub after: String,
    pub before: String,
    pub missing_days: i64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct DuplicateRows {
    /// Rows equal in every column to an earlier row.
    pub count: usize,
    /// `(row, earlier row)`, 1-based data rows.
    pub examples: Vec<(usize, usize)>,
}

#[derive(Clone, Debug, Serialize)]
pub struct DuplicateKeys {
    pub column: String,
    /// Distinct values that occur more than once.
    pub values: usize,
    /// Rows holding a value an earlier row already had.
    pub rows: usize,
    /// `(value, rows)` for the first few, 1-based data rows.
    pub examples: Vec<(String, Vec<usize>)>,
}

/// Rows whose missing cells are exactly `columns`.
#[derive(Clone, Debug, Serialize)]
pub struct MissingPattern {
    pub columns: Vec<String>,
    pub rows: usize,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Correlations {
    /// Numeric columns, in order, for both matrices.
    pub numeric: Vec<String>,
    pub pearson: Vec<Vec<Option<f64>>>,
    pub spearman: Vec<Vec<Option<f64>>>,
    /// Category columns, in order, for the Cramér's V matrix.
    pub categorical: Vec<String>,
    pub cramers_v: Vec<Vec<Option<f64>>>,
}

/// Profiles every column and the table on up to `threads` threads.
pub fn profile(columns: &[Column], rows: usize, threads: usize) -> Profile {
    let profiles = par::map(columns, threads, column_profile);
    Profile {
        rows,
        duplicate_rows: duplicate_rows(columns, rows),
        duplicate_keys: columns.iter().filter(|c| c.role.value == Role::Id).filter_map(duplicate_keys).collect(),
        missingness: missingness(columns, rows),
        correlations: correlations(columns, threads),
        columns: profiles,
        exact: true,
    }
}

/// The present values of a column as `f64`, in row order.
fn present_numbers(column: &Column) -> Vec<f64> {
    (0..column.values.len()).filter_map(|row| column.number(row)).collect()
}

fn column_profile(column: &Column) -> ColumnProfile {
    let missing = column.validity.missing_count();
    let mut profile = ColumnProfile {
        name: column.name.clone(),
        kind: column.kind.value.name(),
        role: column.role.value,
        count: column.values.len() - missing,
        missing,
        distinct: 0,
        top: Vec::new(),
        numeric: None,
        lengths: None,
        dates: None,
    };
    match &column.values {
        Values::Empty(_) => {}
        Values::Text(strings) => {
            let mut counts: FastMap<&str, usize> = fast_map(0);
            let (mut min, mut max, mut total) = (usize::MAX, 0, 0usize);
            for (row, s) in strings.iter().enumerate() {
                if column.validity.is_missing(row) {
                    continue;
                }
                *counts.entry(s).or_default() += 1;
                let len = s.chars().count();
                (min, max, total) = (min.min(len), max.max(len), total + len);
            }
            profile.distinct = counts.len();
            profile.top = top(counts.into_iter().map(|(s, n)| (s.to_string(), n)).collect());
            if profile.count > 0 {
                profile.lengths = Some(LengthStats { min, max, mean: total as f64 / profile.count as f64 });
            }
        }
        Values::Boolean(v) => {
            let trues = (0..v.len()).filter(|&r| !column.validity.is_missing(r) && v[r]).count();
            let counts = vec![("true".to_string(), trues), ("false".to_string(), profile.count - trues)];
            profile.distinct = counts.iter().filter(|(_, n)| *n > 0).count();
            profile.top = top(counts.into_iter().filter(|(_, n)| *n > 0).collect());
        }
        Values::Date(_) | Values::DateTime(_) => {
            let mut values: Vec<i64> = (0..column.values.len())
                .filter(|&r| !column.validity.is_missing(r))
                .map(|r| match &column.values {
                    Values::Date(v) | Values::DateTime(v) => v[r],
                    _ => 0,
                })
                .collect();
            values.sort_unstable();
            let runs = runs(&values);
            profile.distinct = runs.len();
            let is_date = matches!(column.values, Values::Date(_));
            let show = |v: i64| if is_date { format_date(v) } else { format_instant(v) };
            profile.top = top(runs.iter().map(|&(v, n)| (show(v), n)).collect());
            let days: Vec<i64> = if is_date {
                runs.iter().map(|r| r.0).collect()
            } else {
                let mut d: Vec<i64> = runs.iter().map(|r| r.0.div_euclid(NANOS_PER_DAY)).collect();
                d.dedup();
                d
            };
            profile.dates = date_stats(&days);
        }
        Values::Integer(ints) => {
            // Distinct and top values on the integers themselves (exact beyond 2^53); the
            // conversion to f64 keeps the order.
            let mut exact: Vec<i64> =
                (0..ints.len()).filter(|&r| !column.validity.is_missing(r)).map(|r| ints[r]).collect();
            exact.sort_unstable();
            let runs = runs(&exact);
            profile.distinct = runs.len();
            profile.top = top(runs.iter().map(|&(v, n)| (v.to_string(), n)).collect());
            let values: Vec<f64> = exact.iter().map(|&v| v as f64).collect();
            profile.numeric = numeric_stats(&values);
        }
        Values::Float(_) => {
            let mut values = present_numbers(column);
            values.sort_unstable_by(f64::total_cmp);
            let runs = runs_f64(&values);
            profile.distinct = runs.len();
            profile.top = top(runs.iter().map(|&(v, n)| (format_number(v), n)).collect());
            profile.numeric = numeric_stats(&values);
        }
    }
    profile
}

const NANOS_PER_DAY: i64 = 86_400_000_000_000;

fn format_instant(nanos: i64) -> String {
    let days = nanos.div_euclid(NANOS_PER_DAY);
    let secs = nanos.rem_euclid(NANOS_PER_DAY) / 1_000_000_000;
    format!("{}T{:02}:{:02}:{:02}", format_date(days), secs / 3600, secs / 60 % 60, secs % 60)
}

/// Shortest text that reads back as the same double.
fn format_number(v: f64) -> String {
    format!("{v}")
}

/// Value and count of each run of equal values in sorted input.
fn runs<T: PartialEq + Copy>(sorted: &[T]) -> Vec<(T, usize)> {
    let mut out: Vec<(T, usize)> = Vec::new();
    for &v in sorted {
        match out.last_mut() {
            Some((last, n)) if *last == v => *n += 1,
            _ => out.push((v, 1)),
        }
    }
    out
}

fn runs_f64(sorted: &[f64]) -> Vec<(f64, usize)> {
    // -0.0 and 0.0 are one value.
    let normal: Vec<f64> = sorted.iter().map(|v| v + 0.0).collect();
    runs(&normal)
}

/// The most frequent first, ties in value order (the input's order must be by value or
/// is sorted here by text).
fn top(mut counts: Vec<(String, usize)>) -> Vec<(String, usize)> {
    let keep = TOP_VALUES.min(counts.len());
    let order = |a: &(String, usize), b: &(String, usize)| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0));
    if keep < counts.len() {
        counts.select_nth_unstable_by(keep, order);
        counts.truncate(keep);
    }
    counts.sort_unstable_by(order);
    counts
}

/// Linear-interpolation quantile of sorted values (pandas' and numpy's default).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = (below + 1).min(sorted.len() - 1);
    let fraction = position - below as f64;
    sorted[below] + (sorted[above] - sorted[below]) * fraction
}

fn numeric_stats(sorted: &[f64]) -> Option<NumericStats> {
    let (&min, &max) = (sorted.first()?, sorted.last()?);
    let n = sorted.len() as f64;
    let mean = pairwise_sum(sorted) / n;
    let deviations: Vec<f64> = sorted.iter().map(|v| (v - mean) * (v - mean)).collect();
    let std = (sorted.len() > 1).then(|| (pairwise_sum(&deviations) / (n - 1.0)).sqrt());
    Some(NumericStats {
        min,
        max,
        mean,
        median: quantile(sorted, 0.5),
        std,
        quantiles: QUANTILES.iter().map(|&q| (q, quantile(sorted, q))).collect(),
        zeros: sorted.iter().filter(|v| **v == 0.0).count(),
        negatives: sorted.iter().filter(|v| **v < 0.0).count(),
        histogram: histogram(sorted, min, max),
    })
}

/// Pairwise summation (as numpy): error grows with log n, not n.
pub fn pairwise_sum(values: &[f64]) -> f64 {
    if values.len() <= 128 {
        let mut lanes = [0.0; 8];
        let chunks = values.chunks_exact(8);
        let rest: f64 = chunks.remainder().iter().sum();
        for chunk in chunks {
            for (lane, v) in lanes.iter_mut().zip(chunk) {
                *lane += v;
            }
        }
        ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7])) + rest
    } else {
        let half = (values.len() / 2) / 8 * 8;
        pairwise_sum(&values[..half]) + pairwise_sum(&values[half..])
    }
}

fn histogram(sorted: &[f64], min: f64, max: f64) -> Histogram {
    let (lo, hi) = if min == max { (min - 0.5, max + 0.5) } else { (min, max) };
    let width = (hi - lo) / HISTOGRAM_BINS as f64;
    let edges: Vec<f64> = (0..=HISTOGRAM_BINS).map(|i| lo + width * i as f64).collect();
    let mut counts = vec![0; HISTOGRAM_BINS];
    for &v in sorted {
        let mut bin = (((v - lo) / width) as usize).min(HISTOGRAM_BINS - 1);
        // The computed bin can be one off at an edge; the edges decide.
        if bin > 0 && v < edges[bin] {
            bin -= 1;
        } else if bin + 1 < HISTOGRAM_BINS && v >= edges[bin + 1] {
            bin += 1;
        }
        counts[bin] += 1;
    }
    Histogram { edges, counts }
}

fn date_stats(days: &[i64]) -> Option<DateStats> {
    let (&first, &last) = (days.first()?, days.last()?);
    let mut gaps: Vec<DateGap> = days
        .windows(2)
        .filter(|w| w[1] - w[0] > 1)
        .map(|w| DateGap { after: format_date(w[0]), before: format_date(w[1]), missing_days: w[1] - w[0] - 1 })
        .collect();
    gaps.sort_by(|a, b| b.missing_days.cmp(&a.missing_days).then_with(|| a.after.cmp(&b.after)));
    gaps.truncate(EXAMPLES);
    Some(DateStats {
        first: format_date(first),
        last: format_date(last),
        span_days: last - first + 1,
        days_with_rows: days.len(),
        gaps,
    })
}

/// A hash of one cell, equal for equal typed values (missing cells included).
fn cell_hash(column: &Column, row: usize) -> u64 {
    use std::hash::Hasher;
    let mut h = foldhash::fast::FixedState::default().build_hasher();
    if column.validity.is_missing(row) {
        h.write_u8(0);
    } else {
        match &column.values {
            Values::Empty(_) => h.write_u8(0),
            Values::Boolean(v) => h.write_u8(1 + u8::from(v[row])),
            Values::Integer(v) | Values::Date(v) | Values::DateTime(v) => h.write_i64(v[row]),
            Values::Float(v) => h.write_u64((v[row] + 0.0).to_bits()),
            Values::Text(s) => h.write(s.get(row).as_bytes()),
        }
    }
    h.finish()
}

fn same_cell(column: &Column, a: usize, b: usize) -> bool {
    let (ma, mb) = (column.validity.is_missing(a), column.validity.is_missing(b));
    if ma || mb {
        return ma && mb;
    }
    match &column.values {
        Values::Empty(_) => true,
        Values::Boolean(v) => v[a] == v[b],
        Values::Integer(v) | Values::Date(v) | Values::DateTime(v) => v[a] == v[b],
        Values::Float(v) => v[a] == v[b],
        Values::Text(s) => s.get(a) == s.get(b),
    }
}

fn row_hashes(columns: &[Column], rows: usize) -> Vec<u64> {
    let mut hashes = vec![0u64; rows];
    for column in columns {
        for (row, h) in hashes.iter_mut().enumerate() {
            *h = (h.rotate_left(5) ^ cell_hash(column, row)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    hashes
}

fn duplicate_rows(columns: &[Column], rows: usize) -> DuplicateRows {
    let hashes = row_hashes(columns, rows);
    // The first row with each hash; rows whose hash matches a different row (a collision,
    // about one in 10^7 tables of a million rows) are kept aside and compared in full.
    let mut first: FastMap<u64, usize> = fast_map(rows);
    let mut colliding: FastMap<u64, Vec<usize>> = fast_map(0);
    let mut found = DuplicateRows::default();
    let same_row = |a: usize, b: usize| columns.iter().all(|c| same_cell(c, a, b));
    for (row, h) in hashes.into_iter().enumerate() {
        let earlier = match first.get(&h) {
            None => {
                first.insert(h, row);
                continue;
            }
            Some(&e) if same_row(e, row) => Some(e),
            Some(_) => {
                let others = colliding.entry(h).or_default();
                let e = others.iter().copied().find(|&e| same_row(e, row));
                if e.is_none() {
                    others.push(row);
                }
                e
            }
        };
        if let Some(e) = earlier {
            found.count += 1;
            if found.examples.len() < EXAMPLES {
                found.examples.push((row + 1, e + 1));
            }
        }
    }
    found
}

fn duplicate_keys(column: &Column) -> Option<DuplicateKeys> {
    let hashes: Vec<Option<u64>> = (0..column.values.len())
        .map(|row| (!column.validity.is_missing(row)).then(|| cell_hash(column, row)))
        .collect();
    let mut counts: FastMap<u64, u32> = fast_map(hashes.len());
    for h in hashes.iter().flatten() {
        *counts.entry(*h).or_default() += 1;
    }
    // Rows only for hashes seen more than once.
    let mut seen: FastMap<u64, Vec<usize>> = fast_map(0);
    for (row, h) in hashes.iter().enumerate() {
        if let Some(h) = h
            && counts[h] > 1
        {
            seen.entry(*h).or_default().push(row);
        }
    }
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for rows in seen.into_values().filter(|r| r.len() > 1) {
        // Split a hash bucket into groups of truly equal values.
        let mut pending = rows;
        while let Some(&head) = pending.first() {
            let (same, other): (Vec<usize>, Vec<usize>) =
                pending.into_iter().partition(|&r| same_cell(column, head, r));
            if same.len() > 1 {
                groups.push(same);
            }
            pending = other;
        }
    }
    if groups.is_empty() {
        return None;
    }
    groups.sort_unstable_by_key(|g| g[0]);
    let text = |row: usize| match &column.values {
        Values::Text(s) => s.get(row).to_string(),
        Values::Integer(v) => v[row].to_string(),
        _ => column.number(row).map(format_number).unwrap_or_default(),
    };
    Some(DuplicateKeys {
        column: column.name.clone(),
        values: groups.len(),
        rows: groups.iter().map(|g| g.len() - 1).sum(),
        examples: groups
            .iter()
            .take(EXAMPLES)
            .map(|g| (text(g[0]), g.iter().take(EXAMPLES).map(|r| r + 1).collect()))
            .collect(),
    })
}

fn missingness(columns: &[Column], rows: usize) -> Vec<MissingPattern> {
    let with_missing: Vec<&Column> = columns.iter().filter(|c| c.validity.missing_count() > 0).collect();
    if with_missing.is_empty() {
        return Vec::new();
    }
    // One bit per column with missing cells (in words of 64), built column by column.
    let words = with_missing.len().div_ceil(64);
    let mut keys = vec![0u64; rows * words];
    for (i, column) in with_missing.iter().enumerate() {
        for row in 0..rows {
            if column.validity.is_missing(row) {
                keys[row * words + i / 64] |= 1 << (i % 64);
            }
        }
    }
    let mut patterns: FastMap<&[u64], usize> = fast_map(0);
    for key in keys.chunks_exact(words) {
        if key.iter().any(|w| *w != 0) {
            *patterns.entry(key).or_default() += 1;
        }
    }
    let mut out: Vec<MissingPattern> = patterns
        .into_iter()
        .map(|(key, rows)| MissingPattern {
            columns: with_missing
                .iter()
                .enumerate()
                .filter(|(i, _)| key[i / 64] & (1 << (i % 64)) != 0)
                .map(|(_, c)| c.name.clone())
                .collect(),
            rows,
        })
        .collect();
    out.sort_by(|a, b| b.rows.cmp(&a.rows).then_with(|| a.columns.cmp(&b.columns)));
    out
}

fn correlations(columns: &[Column], threads: usize) -> Correlations {
    let numeric: Vec<&Column> = columns.iter().filter(|c| c.kind.value.is_numeric()).collect();
    // Each column sorted once; a pair's ranks come from walking that order over the rows
    // where both have a value, so no pair sorts again.
    let prepared: Vec<Ranked> = par::map(&numeric, threads, |c| {
        let values: Vec<Option<f64>> = (0..c.values.len()).map(|r| c.number(r)).collect();
        let mut order: Vec<u32> = (0..values.len() as u32).filter(|&r| values[r as usize].is_some()).collect();
        order.sort_unstable_by(|&a, &b| {
            values[a as usize].unwrap_or_default().total_cmp(&values[b as usize].unwrap_or_default())
        });
        let present: Vec<bool> = values.iter().map(Option::is_some).collect();
        let ranks = ranks_by_row(&values, &order, &present);
        Ranked { present: order.len(), values, order, ranks }
    });
    let pairs: Vec<(usize, usize)> = (0..numeric.len()).flat_map(|i| (i..numeric.len()).map(move |j| (i, j))).collect();
    let results = par::map(&pairs, threads, |&(i, j)| {
        let (x, y) = (&prepared[i], &prepared[j]);
        let both: Vec<bool> = x.values.iter().zip(&y.values).map(|(a, b)| a.is_some() && b.is_some()).collect();
        let pairs = both.iter().filter(|b| **b).count();
        let (xs, ys): (Vec<f64>, Vec<f64>) =
            x.values.iter().zip(&y.values).filter_map(|(a, b)| Some(((*a)?, (*b)?))).unzip();
        (pearson(&xs, &ys), pearson(&x.ranks_over(&both, pairs), &y.ranks_over(&both, pairs)))
    });
    let k = numeric.len();
    let mut pearson_m = vec![vec![None; k]; k];
    let mut spearman_m = vec![vec![None; k]; k];
    for (&(i, j), (p, s)) in pairs.iter().zip(results) {
        (pearson_m[i][j], pearson_m[j][i], spearman_m[i][j], spearman_m[j][i]) = (p, p, s, s);
    }

    let categorical: Vec<&Column> =
        columns.iter().filter(|c| matches!(c.kind.value, Kind::Category | Kind::Boolean)).collect();
    let codes: Vec<Vec<Option<u32>>> = categorical.iter().map(|c| category_codes(c)).collect();
    let c = categorical.len();
    let mut cramers = vec![vec![None; c]; c];
    for i in 0..c {
        for j in i..c {
            let v = cramers_v(&codes[i], &codes[j]);
            (cramers[i][j], cramers[j][i]) = (v, v);
        }
    }
    Correlations {
        numeric: numeric.iter().map(|c| c.name.clone()).collect(),
        pearson: pearson_m,
        spearman: spearman_m,
        categorical: categorical.iter().map(|c| c.name.clone()).collect(),
        cramers_v: cramers,
    }
}

/// Pearson's r; `None` with fewer than two pairs or a constant side.
pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() < 2 {
        return None;
    }
    let n = x.len() as f64;
    let (mx, my) = (pairwise_sum(x) / n, pairwise_sum(y) / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx == 0.0 || syy == 0.0 {
        return None;
    }
    Some((sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0))
}

/// A numeric column prepared for correlations: its values, the order of its present
/// rows, and their average ranks by row.
struct Ranked {
    values: Vec<Option<f64>>,
    order: Vec<u32>,
    ranks: Vec<f64>,
    present: usize,
}

impl Ranked {
    /// Average ranks over the rows in `keep` (`kept` of them), in row order.
    fn ranks_over(&self, keep: &[bool], kept: usize) -> Vec<f64> {
        let ranks = if kept == self.present { &self.ranks } else { &ranks_by_row(&self.values, &self.order, keep) };
        ranks.iter().zip(keep).filter(|(_, k)| **k).map(|(r, _)| *r).collect()
    }
}

/// Average ranks of `values` over the rows in `keep`, by row (NaN elsewhere), from the
/// column's sorted `order` of present rows.
fn ranks_by_row(values: &[Option<f64>], order: &[u32], keep: &[bool]) -> Vec<f64> {
    let kept: Vec<u32> = order.iter().copied().filter(|&r| keep[r as usize]).collect();
    let mut by_row = vec![f64::NAN; values.len()];
    let value = |k: usize| values[kept[k] as usize].unwrap_or_default();
    let mut i = 0;
    while i < kept.len() {
        let mut j = i + 1;
        while j < kept.len() && value(j) == value(i) {
            j += 1;
        }
        let rank = (i + j + 1) as f64 / 2.0;
        for &r in &kept[i..j] {
            by_row[r as usize] = rank;
        }
        i = j;
    }
    by_row
}

/// Dense codes for a category or boolean column, `None` where missing.
fn category_codes(column: &Column) -> Vec<Option<u32>> {
    let mut dictionary: FastMap<&str, u32> = fast_map(0);
    (0..column.values.len())
        .map(|row| {
            if column.validity.is_missing(row) {
                return None;
            }
            match &column.values {
                Values::Text(s) => {
                    let next = dictionary.len() as u32;
                    Some(*dictionary.entry(s.get(row)).or_insert(next))
                }
                Values::Boolean(v) => Some(u32::from(v[row])),
                _ => None,
            }
        })
        .collect()
}

/// Cramér's V of two category columns over rows where both have a value (no bias
/// correction, as `scipy.stats.contingency.association`); `None` when either side has a
/// single category.
pub fn cramers_v(a: &[Option<u32>], b: &[Option<u32>]) -> Option<f64> {
    let width = |codes: &[Option<u32>]| codes.iter().flatten().max().map_or(0, |m| *m as usize + 1);
    let (r, c) = (width(a), width(b));
    if r.checked_mul(c).is_none_or(|cells| cells > 16 << 20) {
        return None;
    }
    let mut table = vec![0u32; r * c];
    let (mut rows, mut cols) = (vec![0u32; r], vec![0u32; c]);
    let mut n = 0u64;
    for (x, y) in a.iter().zip(b) {
        let (Some(x), Some(y)) = (x, y) else { continue };
        let (x, y) = (*x as usize, *y as usize);
        table[x * c + y] += 1;
        rows[x] += 1;
        cols[y] += 1;
        n += 1;
    }
    let k = rows.iter().filter(|n| **n > 0).count().min(cols.iter().filter(|n| **n > 0).count());
    if k < 2 {
        return None;
    }
    let n = n as f64;
    // chi² = Σ (O−E)²/E over every cell, the empty ones included: Σ O²/E − n.
    let mut observed = 0.0;
    for (x, row) in table.chunks_exact(c).enumerate() {
        for (y, &o) in row.iter().enumerate() {
            if o > 0 {
                let o = f64::from(o);
                observed += o * o / (f64::from(rows[x]) * f64::from(cols[y]) / n);
            }
        }
    }
    let chi2 = (observed - n).max(0.0);
    Some((chi2 / (n * (k - 1) as f64)).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.5), 2.5);
        assert_eq!(quantile(&v, 0.25), 1.75);
        assert_eq!(quantile(&v, 1.0), 4.0);
        assert_eq!(quantile(&[7.0], 0.9), 7.0);
    }

    #[test]
    fn ranks_share_ties() {
        let values = [Some(10.0), Some(20.0), Some(10.0), Some(30.0)];
        assert_eq!(ranks_by_row(&values, &[0, 2, 1, 3], &[true; 4]), vec![1.5, 3.0, 1.5, 4.0]);
    }

    #[test]
    fn histogram_edges_decide_the_bin() {
        let v: Vec<f64> = (0..=100).map(f64::from).collect();
        let h = histogram(&v, 0.0, 100.0);
        assert_eq!(h.counts.iter().sum::<usize>(), 101);
        // [0,5) ... [95,100]: the last bin holds 95..=100.
        assert_eq!(h.counts[0], 5);
        assert_eq!(h.counts[19], 6);
    }

    #[test]
    fn cramers_v_is_one_for_a_function_and_zero_for_independence() {
        let a: Vec<Option<u32>> = (0..100).map(|i| Some(i % 4)).collect();
        let b: Vec<Option<u32>> = (0..100).map(|i| Some((i % 4) * 10)).collect();
        assert!((cramers_v(&a, &b).expect("v") - 1.0).abs() < 1e-12);
        let c: Vec<Option<u32>> = (0..100).map(|i| Some(i / 2 % 2)).collect();
        let d: Vec<Option<u32>> = (0..100).map(|i| Some(i % 2)).collect();
        assert!(cramers_v(&c, &d).expect("v").abs() < 1e-12);
    }
}

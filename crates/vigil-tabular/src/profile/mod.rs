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

use std::hash::BuildHasher;

use serde::Serialize;

use crate::FastMap;
use crate::par;
use crate::table::{Column, Kind, Role, Strings, Values};
use crate::value::{MICROS_PER_DAY, format_date, format_instant};

mod correlate;
pub use correlate::pearson;
use correlate::*;

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
    /// The most frequent values (as text; redacted for a personal-data column) with their
    /// counts, most frequent first; ties by their text.
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
    // Before the rankings below exist, to keep the peak of memory down.
    let ids: Vec<&Column> = columns.iter().filter(|c| c.role.value == Role::Id).collect();
    let duplicate_keys = par::map(&ids, threads, |c| duplicate_keys(c)).into_iter().flatten().collect();
    // Duplicate rows need one pass over the whole table: it runs beside the per-column
    // work rather than after it.
    let (duplicate_rows, (profiles, ranked)) = std::thread::scope(|s| {
        let duplicates = s.spawn(|| duplicate_rows(columns, rows));
        let per_column: (Vec<ColumnProfile>, Vec<Option<Ranked>>) =
            par::map(columns, threads, column_profile).into_iter().unzip();
        (duplicates.join().unwrap_or_else(|e| std::panic::resume_unwind(e)), per_column)
    });
    Profile {
        rows,
        duplicate_rows,
        duplicate_keys,
        missingness: missingness(columns, rows),
        correlations: correlations(columns, &ranked, threads),
        columns: profiles,
        exact: true,
    }
}

/// A column's statistics, and for numeric kinds the ranking its correlations use (both
/// come from the one sort of its values).
fn column_profile(column: &Column) -> (ColumnProfile, Option<Ranked>) {
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
    let mut ranked = None;
    profile_values(column, &mut profile, &mut ranked);
    // Personal data is listed by its shape only, also inside free text.
    for (value, _) in &mut profile.top {
        *value = if column.role.value == Role::Pii {
            crate::pii::redact_any(value)
        } else {
            crate::pii::scrub(value).into_owned()
        };
    }
    (profile, ranked)
}

fn profile_values(column: &Column, profile: &mut ColumnProfile, ranked: &mut Option<Ranked>) {
    match &column.values {
        Values::Empty(_) => {}
        Values::Text(strings) if strings.codes().is_some() => {
            let Some((codes, values)) = strings.codes() else { unreachable!("checked by the guard") };
            let mut counts = vec![0usize; values.len()];
            for &code in codes.iter().filter(|&&c| c != Strings::NONE) {
                counts[code as usize] += 1;
            }
            let (mut min, mut max, mut total) = (usize::MAX, 0, 0usize);
            let mut listed = Vec::with_capacity(counts.len());
            for (value, n) in values.zip(counts).filter(|(_, n)| *n > 0) {
                let len = value.chars().count();
                (min, max, total) = (min.min(len), max.max(len), total + len * n);
                listed.push((value.to_string(), n));
            }
            profile.distinct = listed.len();
            profile.top = top(listed);
            if profile.count > 0 {
                profile.lengths = Some(LengthStats { min, max, mean: total as f64 / profile.count as f64 });
            }
        }
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
            crate::radix::sort_by_key(&mut values, |&v| integer_key(v));
            let runs = runs(&values);
            profile.distinct = runs.len();
            let is_date = matches!(column.values, Values::Date(_));
            let show = |v: i64| if is_date { format_date(v) } else { format_instant(v) };
            profile.top = top(runs.iter().map(|&(v, n)| (show(v), n)).collect());
            let days: Vec<i64> = if is_date {
                runs.iter().map(|r| r.0).collect()
            } else {
                let mut d: Vec<i64> = runs.iter().map(|r| r.0.div_euclid(MICROS_PER_DAY)).collect();
                d.dedup();
                d
            };
            profile.dates = date_stats(&days);
        }
        Values::Integer(_) | Values::Float(_) => {
            let sorted = Sorted::new(column);
            let runs = runs(&sorted.keys);
            profile.distinct = runs.len();
            // Integers are listed exactly, beyond 2^53 too.
            let show = |key: u64| {
                if sorted.integers { decode_integer(key).to_string() } else { format_number(decode_float(key)) }
            };
            profile.top = top(runs.iter().map(|&(key, n)| (show(key), n)).collect());
            let values = sorted.values();
            profile.numeric = numeric_stats(&values);
            if column.kind.value.is_numeric() {
                *ranked = Some(Ranked::new(column, &sorted.rows, &values));
            }
        }
    }
}

/// A numeric column's present values in ascending order, as order-preserving keys, with
/// the row each came from (ties in row order).
struct Sorted {
    keys: Vec<u64>,
    rows: Vec<u32>,
    /// The keys are integers rather than doubles.
    integers: bool,
}

impl Sorted {
    fn new(column: &Column) -> Self {
        let validity = &column.validity;
        let present = |r: &usize| !validity.is_missing(*r);
        // Key and row packed in one integer, so the sort compares plain integers.
        let pack = |key: u64, row: usize| (u128::from(key) << 32) | row as u128;
        let (mut packed, integers): (Vec<u128>, bool) = match &column.values {
            Values::Integer(v) => ((0..v.len()).filter(present).map(|r| pack(integer_key(v[r]), r)).collect(), true),
            Values::Float(v) => ((0..v.len()).filter(present).map(|r| pack(float_key(v[r]), r)).collect(), false),
            _ => (Vec::new(), false),
        };
        // The rows go in ascending, and the sort is stable: ties stay in row order.
        crate::radix::sort_by_key(&mut packed, |p| (p >> 32) as u64);
        // Rows are counted in u32: a table of 2^32 rows exhausts memory long before.
        let keys = packed.iter().map(|p| (p >> 32) as u64).collect();
        let rows = packed.iter().map(|p| *p as u32).collect();
        Sorted { keys, rows, integers }
    }

    /// The values, ascending, as `f64`.
    fn values(&self) -> Vec<f64> {
        if self.integers {
            self.keys.iter().map(|&k| decode_integer(k) as f64).collect()
        } else {
            self.keys.iter().map(|&k| decode_float(k)).collect()
        }
    }
}

/// An `i64` as a `u64` that sorts the same way.
fn integer_key(v: i64) -> u64 {
    (v as u64) ^ (1 << 63)
}

fn decode_integer(key: u64) -> i64 {
    (key ^ (1 << 63)) as i64
}

/// A finite `f64` as a `u64` that sorts the same way (-0.0 and 0.0 are one key).
fn float_key(v: f64) -> u64 {
    let bits = (v + 0.0).to_bits();
    if bits >> 63 == 1 { !bits } else { bits | (1 << 63) }
}

fn decode_float(key: u64) -> f64 {
    f64::from_bits(if key >> 63 == 1 { key & !(1 << 63) } else { !key })
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
            Values::Text(s) => match s.codes() {
                Some((codes, _)) => h.write_u32(codes[row]),
                None => h.write(s.get(row).as_bytes()),
            },
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
        Values::Text(s) => match s.codes() {
            Some((codes, _)) => codes[a] == codes[b],
            None => s.get(a) == s.get(b),
        },
    }
}

fn duplicate_rows(columns: &[Column], rows: usize) -> DuplicateRows {
    // Each row's hash over every cell, packed with the row so one sort of plain integers
    // brings equal hashes together in row order.
    let mut packed: Vec<u128> = (0..rows as u128).collect();
    for column in columns {
        for (row, p) in packed.iter_mut().enumerate() {
            let h = (*p >> 32) as u64;
            let h = (h.rotate_left(5) ^ cell_hash(column, row)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            *p = (u128::from(h) << 32) | (*p & 0xFFFF_FFFF);
        }
    }
    // A comparison sort, in place: a radix sort's second buffer would raise the peak of
    // memory while the per-column work runs beside this.
    packed.sort_unstable();
    let same_row = |a: usize, b: usize| columns.iter().all(|c| same_cell(c, a, b));
    // `(row, earlier row)` for every row equal to an earlier one. Within a run of equal
    // hashes, each row is compared with the first row of each content seen so far (more
    // than one only when different rows collide, about once in 10^7 tables of 10^6 rows).
    let mut duplicates: Vec<(usize, usize)> = Vec::new();
    let mut firsts: Vec<usize> = Vec::new();
    for run in packed.chunk_by(|a, b| a >> 32 == b >> 32).filter(|run| run.len() > 1) {
        firsts.clear();
        for row in run.iter().map(|p| (*p & 0xFFFF_FFFF) as usize) {
            match firsts.iter().find(|&&first| same_row(first, row)) {
                Some(&first) => duplicates.push((row, first)),
                None => firsts.push(row),
            }
        }
    }
    let count = duplicates.len();
    if count > EXAMPLES {
        duplicates.select_nth_unstable(EXAMPLES);
        duplicates.truncate(EXAMPLES);
    }
    duplicates.sort_unstable();
    DuplicateRows { count, examples: duplicates.into_iter().map(|(row, first)| (row + 1, first + 1)).collect() }
}

fn duplicate_keys(column: &Column) -> Option<DuplicateKeys> {
    let rows = column.values.len();
    let present = |r: usize| !column.validity.is_missing(r);
    let grouped = match &column.values {
        Values::Text(s) => key_groups((0..rows).map(|r| present(r).then(|| s.get(r)))),
        Values::Integer(v) | Values::Date(v) | Values::DateTime(v) => {
            key_groups((0..rows).map(|r| present(r).then_some(v[r])))
        }
        Values::Float(v) => key_groups((0..rows).map(|r| present(r).then(|| float_key(v[r])))),
        Values::Boolean(v) => key_groups((0..rows).map(|r| present(r).then_some(v[r]))),
        Values::Empty(_) => return None,
    };
    let repeated: Vec<u32> = (0..grouped.sizes.len() as u32).filter(|&g| grouped.sizes[g as usize] > 1).collect();
    if repeated.is_empty() {
        return None;
    }
    // Groups are numbered in order of their first row, so the first repeated groups are
    // the earliest; one scan collects the rows of those.
    let shown = &repeated[..repeated.len().min(EXAMPLES)];
    let mut examples: Vec<Vec<usize>> = vec![Vec::new(); shown.len()];
    for (row, &g) in grouped.of_row.iter().enumerate() {
        if let Ok(i) = shown.binary_search(&g)
            && examples[i].len() < EXAMPLES
        {
            examples[i].push(row);
        }
    }
    let text = |row: usize| match &column.values {
        Values::Text(s) => crate::pii::scrub(s.get(row)).into_owned(),
        Values::Integer(v) => v[row].to_string(),
        _ => column.number(row).map(format_number).unwrap_or_default(),
    };
    Some(DuplicateKeys {
        column: column.name.clone(),
        values: repeated.len(),
        rows: repeated.iter().map(|&g| grouped.sizes[g as usize] as usize - 1).sum(),
        examples: examples.into_iter().map(|rows| (text(rows[0]), rows.iter().map(|r| r + 1).collect())).collect(),
    })
}

/// Rows grouped by equal keys.
struct KeyGroups {
    /// Each row's group (numbered in order of first appearance); `u32::MAX` where missing.
    of_row: Vec<u32>,
    /// Rows in each group.
    sizes: Vec<u32>,
}

fn key_groups<K: std::hash::Hash + Eq>(keys: impl Iterator<Item = Option<K>>) -> KeyGroups {
    let mut ids: FastMap<K, u32> = fast_map(0);
    let mut sizes: Vec<u32> = Vec::new();
    let of_row = keys
        .map(|key| {
            let Some(key) = key else { return u32::MAX };
            let next = sizes.len() as u32;
            let id = *ids.entry(key).or_insert(next);
            if id == next {
                sizes.push(0);
            }
            sizes[id as usize] += 1;
            id
        })
        .collect();
    KeyGroups { of_row, sizes }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::DecimalMark;

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
        // Values 10, 20, 10, 30 by row: sorted rows 0, 2, 1, 3 with rows 0 and 2 tied.
        let column = Column {
            name: "x".into(),
            kind: crate::Chosen {
                value: Kind::Decimal { decimal_mark: DecimalMark::Point, grouped: false },
                evidence: String::new(),
            },
            role: crate::Chosen { value: Role::Measure, evidence: String::new() },
            values: Values::Float(vec![10.0, 20.0, 10.0, 30.0]),
            validity: crate::table::Validity::default(),
        };
        let ranked = Ranked::new(&column, &[0, 2, 1, 3], &[10.0, 10.0, 20.0, 30.0]);
        assert_eq!(ranked.ranks2, vec![3, 6, 3, 8]);
        let whole = ranked.whole.expect("no cell is missing");
        assert_eq!((whole.values.mean, whole.values.squares), (17.5, 275.0));
        assert_eq!((whole.ranks.mean, whole.ranks.squares), (5.0, 18.0));
        // Without row 2, row 0 stands alone; row 3 is kept out and gets no rank.
        assert_eq!(ranked.ranks2_over(&[true, true, false, false]), vec![2, 4, 0, 0]);
        // Ties survive among kept rows, and missing rows (rank 0) stay out.
        let ranked = Ranked { ranks2: vec![0, 5, 5, 5, 2, 9, 9], whole: None };
        let keep = [true, true, true, false, true, true, true];
        // Kept ranks in order: row 4 (1st), rows 1 and 2 (2nd and 3rd), rows 5 and 6.
        assert_eq!(ranked.ranks2_over(&keep), vec![0, 5, 5, 0, 2, 9, 9]);
    }

    #[test]
    fn sort_keys_keep_the_order_of_values() {
        let floats = [f64::MIN, -1e300, -2.5, -0.0, 0.0, 1e-300, 3.0, f64::MAX];
        let keys: Vec<u64> = floats.iter().map(|&v| float_key(v)).collect();
        assert!(keys.windows(2).all(|w| w[0] <= w[1]), "{keys:?}");
        assert_eq!(float_key(-0.0), float_key(0.0));
        assert!(floats.iter().all(|&v| decode_float(float_key(v)) == v));
        let ints = [i64::MIN, -7, 0, 7, i64::MAX];
        assert!(ints.windows(2).all(|w| integer_key(w[0]) < integer_key(w[1])));
        assert!(ints.iter().all(|&v| decode_integer(integer_key(v)) == v));
    }

    #[test]
    fn pearson_over_kept_rows_only() {
        let x = [1.0, 2.0, 3.0, 100.0];
        let y = [2i64, 4, 6, -5];
        assert!((correlate(&x, &y, Some(&[true, true, true, false])).expect("r") - 1.0).abs() < 1e-12);
        assert!(correlate(&x, &y, None).expect("r") < 0.0);
        assert_eq!(correlate(&x, &y, Some(&[true, false, false, false])), None);
        assert_eq!(pearson(&[1.0, 1.0], &[2.0, 3.0]), None);
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
        let a: Vec<u32> = (0..100).map(|i| i % 4).collect();
        let b: Vec<u32> = (0..100).map(|i| (i % 4) * 10).collect();
        let v = |a: &[u32], b: &[u32]| cramers_v(a, code_width(a), b, code_width(b));
        assert!((v(&a, &b).expect("v") - 1.0).abs() < 1e-12);
        let c: Vec<u32> = (0..100).map(|i| i / 2 % 2).collect();
        let d: Vec<u32> = (0..100).map(|i| i % 2).collect();
        assert!(v(&c, &d).expect("v").abs() < 1e-12);
        // Missing cells (u32::MAX) are left out: what remains is a function again.
        let mut e = b.clone();
        e[3] = u32::MAX;
        assert!((v(&a, &e).expect("v") - 1.0).abs() < 1e-12);
        assert_eq!(v(&[1, 1, 1], &[0, 1, 2]), None);
    }
}

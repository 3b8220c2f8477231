//! Correlations between a table's columns: Pearson and Spearman between numbers (exact,
//! in lanes the compiler vectorises), Cramér's V between categories.

use super::*;

pub(super) fn correlations(columns: &[Column], ranked: &[Option<Ranked>], threads: usize) -> Correlations {
    let numeric: Vec<(&Column, &Ranked)> =
        columns.iter().zip(ranked).filter_map(|(c, r)| Some((c, r.as_ref()?))).collect();
    let pairs: Vec<(usize, usize)> = (0..numeric.len()).flat_map(|i| (i..numeric.len()).map(move |j| (i, j))).collect();
    let results = par::map(&pairs, threads, |&(i, j)| {
        let ((x, rx), (y, ry)) = (numeric[i], numeric[j]);
        // Over pairwise-complete rows, as pandas: with a cell missing on either side, the
        // means and ranks are those of the rows both have.
        let keep: Option<Vec<bool>> = match (x.validity.flags(), y.validity.flags()) {
            (None, None) => None,
            (a, b) => {
                let missing = |flags: Option<&[bool]>, r: usize| flags.is_some_and(|f| f[r]);
                Some((0..x.values.len()).map(|r| !missing(a, r) && !missing(b, r)).collect())
            }
        };
        let keep = keep.as_deref();
        macro_rules! on_values {
            ($f:expr) => {
                match (&x.values, &y.values) {
                    (Values::Float(a), Values::Float(b)) => $f(a, b),
                    (Values::Float(a), Values::Integer(b)) => $f(a, b),
                    (Values::Integer(a), Values::Float(b)) => $f(a, b),
                    (Values::Integer(a), Values::Integer(b)) => $f(a, b),
                    _ => None,
                }
            };
        }
        match (keep, rx.whole, ry.whole) {
            (None, Some(wx), Some(wy)) => (
                on_values!(|a, b| pearson_complete(a, b, wx.values, wy.values)),
                pearson_complete(&rx.ranks2, &ry.ranks2, wx.ranks, wy.ranks),
            ),
            _ => (
                on_values!(|a, b| correlate(a, b, keep)),
                match keep {
                    None => correlate(&rx.ranks2, &ry.ranks2, None),
                    Some(k) => correlate(&rx.ranks2_over(k), &ry.ranks2_over(k), keep),
                },
            ),
        }
    });
    let k = numeric.len();
    let mut pearson_m = vec![vec![None; k]; k];
    let mut spearman_m = vec![vec![None; k]; k];
    for (&(i, j), (p, s)) in pairs.iter().zip(results) {
        (pearson_m[i][j], pearson_m[j][i], spearman_m[i][j], spearman_m[j][i]) = (p, p, s, s);
    }

    let categorical: Vec<&Column> =
        columns.iter().filter(|c| matches!(c.kind.value, Kind::Category | Kind::Boolean)).collect();
    let coded: Vec<Coded<'_>> = par::map(&categorical, threads, |c| Coded::new(category_codes(c)));
    let pairs: Vec<(usize, usize)> = (0..coded.len()).flat_map(|i| (i + 1..coded.len()).map(move |j| (i, j))).collect();
    let results = par::map(&pairs, threads, |&(i, j)| {
        let (a, b) = (&coded[i], &coded[j]);
        cramers_v(&a.codes, a.width, &b.codes, b.width)
    });
    let c = categorical.len();
    let mut cramers = vec![vec![None; c]; c];
    for (i, a) in coded.iter().enumerate() {
        // A column against itself is a function of itself: V is 1 once it has two categories.
        cramers[i][i] = (a.present >= 2).then_some(1.0);
    }
    for (&(i, j), v) in pairs.iter().zip(results) {
        (cramers[i][j], cramers[j][i]) = (v, v);
    }
    Correlations {
        numeric: numeric.iter().map(|(c, _)| c.name.clone()).collect(),
        pearson: pearson_m,
        spearman: spearman_m,
        categorical: categorical.iter().map(|c| c.name.clone()).collect(),
        cramers_v: cramers,
    }
}

/// A number a correlation reads.
pub(super) trait Real: Copy {
    fn real(self) -> f64;
}

impl Real for f64 {
    fn real(self) -> f64 {
        self
    }
}

impl Real for i64 {
    fn real(self) -> f64 {
        self as f64
    }
}

impl Real for u32 {
    fn real(self) -> f64 {
        f64::from(self)
    }
}

/// Pearson's r of two columns in row order over the rows in `keep` (every row if `None`).
pub(super) fn correlate<X: Real, Y: Real>(x: &[X], y: &[Y], keep: Option<&[bool]>) -> Option<f64> {
    match keep {
        None => pearson_complete(x, y, Moments::of(x), Moments::of(y)),
        Some(keep) => {
            let pairs = x.iter().zip(y).map(|(a, b)| (a.real(), b.real()));
            pearson_of(pairs.zip(keep).filter(|(_, k)| **k).map(|(p, _)| p))
        }
    }
}

/// Lanes summed independently in the loops over whole columns, so they pipeline.
pub(super) const LANES: usize = 4;

/// A whole column's mean and centred sum of squares, computed once for all the
/// pairs it is in.
#[derive(Clone, Copy, Debug)]
pub(super) struct Moments {
    pub(super) mean: f64,
    pub(super) squares: f64,
}

impl Moments {
    fn of<X: Real>(x: &[X]) -> Self {
        let n = x.len();
        let [sum] = in_lanes(n, |i| [x[i].real()]);
        let mean = sum / n.max(1) as f64;
        let [squares] = in_lanes(n, |i| [(x[i].real() - mean) * (x[i].real() - mean)]);
        Moments { mean, squares }
    }
}

/// [`pearson_of`] over every row of two whole columns, from their [`Moments`]: the same
/// centred sums, the cross term summed in lanes.
pub(super) fn pearson_complete<X: Real, Y: Real>(x: &[X], y: &[Y], mx: Moments, my: Moments) -> Option<f64> {
    let n = x.len();
    if n < 2 || y.len() != n || mx.squares == 0.0 || my.squares == 0.0 {
        return None;
    }
    let [sxy] = in_lanes(n, |i| [(x[i].real() - mx.mean) * (y[i].real() - my.mean)]);
    Some((sxy / (mx.squares.sqrt() * my.squares.sqrt())).clamp(-1.0, 1.0))
}

/// `N` sums of `f(i)` over `0..n`, each accumulated in [`LANES`] independent lanes.
pub(super) fn in_lanes<const N: usize>(n: usize, f: impl Fn(usize) -> [f64; N]) -> [f64; N] {
    let mut acc = [[0.0; N]; LANES];
    let whole = n / LANES * LANES;
    for base in (0..whole).step_by(LANES) {
        for (lane, a) in acc.iter_mut().enumerate() {
            for (sum, v) in a.iter_mut().zip(f(base + lane)) {
                *sum += v;
            }
        }
    }
    let mut total = [0.0; N];
    for v in acc.into_iter().chain((whole..n).map(f)) {
        for (sum, v) in total.iter_mut().zip(v) {
            *sum += v;
        }
    }
    total
}

/// Pearson's r; `None` with fewer than two pairs or a constant side.
pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    correlate(x, y, None)
}

/// Pearson's r of `(x, y)` pairs: means first, then the centred sums (two passes, so no
/// cancellation between large sums).
pub(super) fn pearson_of(pairs: impl Iterator<Item = (f64, f64)> + Clone) -> Option<f64> {
    let (mut n, mut sum_x, mut sum_y) = (0usize, 0.0, 0.0);
    for (a, b) in pairs.clone() {
        (n, sum_x, sum_y) = (n + 1, sum_x + a, sum_y + b);
    }
    if n < 2 {
        return None;
    }
    let (mx, my) = (sum_x / n as f64, sum_y / n as f64);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in pairs {
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

/// A numeric column ranked for Spearman's correlation: twice each row's average rank
/// among the present values (so an integer, at least 2), 0 where missing.
pub(super) struct Ranked {
    pub(super) ranks2: Vec<u32>,
    /// For a column without missing cells: the moments of its values and of its ranks.
    pub(super) whole: Option<Whole>,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Whole {
    pub(super) values: Moments,
    pub(super) ranks: Moments,
}

impl Ranked {
    /// From the column, its present rows in ascending value `order`, and those `sorted`
    /// values.
    pub(super) fn new(column: &Column, order: &[u32], sorted: &[f64]) -> Self {
        let rows = column.values.len();
        let mut ranks2 = vec![0u32; rows];
        let mut start = 0;
        while start < order.len() {
            let mut end = start + 1;
            while end < order.len() && sorted[end] == sorted[start] {
                end += 1;
            }
            // Ranks start+1 ..= end average to (start + end + 1) / 2.
            let doubled = (start + end + 1) as u32;
            for &row in &order[start..end] {
                ranks2[row as usize] = doubled;
            }
            start = end;
        }
        let values = match &column.values {
            Values::Float(v) if column.validity.missing_count() == 0 => Some(Moments::of(v)),
            Values::Integer(v) if column.validity.missing_count() == 0 => Some(Moments::of(v)),
            _ => None,
        };
        let whole = values.map(|values| Whole { values, ranks: Moments::of(&ranks2) });
        Ranked { ranks2, whole }
    }

    /// Doubled average ranks among the rows in `keep` only, 0 elsewhere.
    pub(super) fn ranks2_over(&self, keep: &[bool]) -> Vec<u32> {
        rerank(&self.ranks2, keep)
    }
}

/// Doubled ranks among the rows in `keep`, from doubled ranks over a superset of them.
/// Ranking the kept rows by their full rank ranks them by value with the same ties, and
/// full ranks are small integers, so a counting pass does it in linear time.
pub(super) fn rerank(ranks2: &[u32], keep: &[bool]) -> Vec<u32> {
    let top = ranks2.iter().copied().max().unwrap_or(0) as usize;
    // below[v] ends as the number of kept rows whose rank is below v.
    let mut below = vec![0u32; top + 2];
    for (&r, _) in ranks2.iter().zip(keep).filter(|(r, k)| **k && **r > 0) {
        below[r as usize + 1] += 1;
    }
    for v in 1..below.len() {
        below[v] += below[v - 1];
    }
    ranks2
        .iter()
        .zip(keep)
        .map(|(&r, &k)| {
            if !k || r == 0 {
                return 0;
            }
            // `lower` rows rank below; `tied` share this rank: doubled, their mean rank is
            // 2 * lower + tied + 1.
            let (lower, upto) = (below[r as usize], below[r as usize + 1]);
            lower + upto + 1
        })
        .collect()
}

/// A category column's dense codes, with the table width they need and how many distinct
/// codes occur.
pub(super) struct Coded<'a> {
    pub(super) codes: std::borrow::Cow<'a, [u32]>,
    pub(super) width: usize,
    pub(super) present: usize,
}

impl<'a> Coded<'a> {
    fn new(codes: std::borrow::Cow<'a, [u32]>) -> Self {
        let width = code_width(&codes);
        let mut seen = vec![false; width];
        for &code in codes.iter().filter(|c| **c != u32::MAX) {
            seen[code as usize] = true;
        }
        let present = seen.iter().filter(|s| **s).count();
        Coded { codes, width, present }
    }
}

/// One more than the largest code (`u32::MAX`, missing, aside): the contingency table's
/// side for these codes.
pub(super) fn code_width(codes: &[u32]) -> usize {
    codes.iter().filter(|c| **c != u32::MAX).max().map_or(0, |m| *m as usize + 1)
}

/// Dense codes for a category or boolean column, `u32::MAX` where missing.
pub(super) fn category_codes(column: &Column) -> std::borrow::Cow<'_, [u32]> {
    if let Values::Text(s) = &column.values
        && let Some((codes, _)) = s.codes()
    {
        return codes.into();
    }
    let mut dictionary: FastMap<&str, u32> = fast_map(0);
    (0..column.values.len())
        .map(|row| {
            if column.validity.is_missing(row) {
                return u32::MAX;
            }
            match &column.values {
                Values::Text(s) => {
                    let next = dictionary.len() as u32;
                    *dictionary.entry(s.get(row)).or_insert(next)
                }
                Values::Boolean(v) => u32::from(v[row]),
                _ => u32::MAX,
            }
        })
        .collect::<Vec<u32>>()
        .into()
}

/// Cramér's V of two category columns (dense codes below `r` and `c`, `u32::MAX` for
/// missing) over rows where both have a value (no bias correction, as
/// `scipy.stats.contingency.association`); `None` when either side has a single category.
pub(crate) fn cramers_v(a: &[u32], r: usize, b: &[u32], c: usize) -> Option<f64> {
    if r.checked_mul(c).is_none_or(|cells| cells > 16 << 20) {
        return None;
    }
    let mut table = vec![0u32; r * c];
    let (mut rows, mut cols) = (vec![0u32; r], vec![0u32; c]);
    let mut n = 0u64;
    for (&x, &y) in a.iter().zip(b) {
        if x == u32::MAX || y == u32::MAX {
            continue;
        }
        let (x, y) = (x as usize, y as usize);
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

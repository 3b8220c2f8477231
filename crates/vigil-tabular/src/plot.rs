//! The report's plots, as self-contained SVG: histograms, the missingness map, correlation
//! matrices, the Benford chart and volume by period.
//!
//! Each plot is a pure function of the statistics (or, for the missingness map, the
//! validity of the columns), so the same table draws the same bytes. Every label is
//! escaped. Values are drawn only through the statistics given, so callers must not pass
//! a personal-data column's (its extremes are people's values). Every mark carries a
//! `<title>` with its exact value, so a reader can hover for the number behind the shape.

use std::fmt::Write as _;

use crate::analyses::{Benford, Volume};
use crate::profile::NumericStats;
use crate::table::Column;

/// Canvas size of single-series charts.
const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 320.0;
/// Room around the plotting area for the title and axis labels.
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 48.0;
const BOTTOM: f64 = 48.0;
/// Row bands of the missingness map: each band is a stretch of consecutive rows.
const MISSINGNESS_BANDS: usize = 100;
/// Columns drawn in the missingness map and the correlation matrices.
pub const MATRIX_COLUMNS_MAX: usize = 60;

const BAR: &str = "#4c78a8";
const HIGHLIGHT: &str = "#e45756";
const EXPECTED: &str = "#f58518";
const INK: &str = "#333";
/// Width of a label character, generously (sans-serif at 10 to 11 px).
const LABEL_CHAR: f64 = 7.0;
const GRID: &str = "#ddd";

/// A histogram of a numeric column's equal-width bins.
pub fn histogram(column: &str, stats: &NumericStats) -> String {
    let h = &stats.histogram;
    let mut svg = Svg::new(WIDTH, HEIGHT, &format!("Distribution of {column}"));
    svg.subtitle(&format!(
        "{} bins; mean {}, median {}",
        h.counts.len(),
        format_number(stats.mean),
        format_number(stats.median)
    ));
    let max = h.counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let (plot_w, plot_h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let bar_w = plot_w / h.counts.len().max(1) as f64;
    svg.y_axis(&(max as usize).to_string());
    for (i, &count) in h.counts.iter().enumerate() {
        let bar_h = count as f64 / max * plot_h;
        let tip = format!(
            "{} to {}: {count} values",
            format_number(h.edges[i]),
            format_number(h.edges.get(i + 1).copied().unwrap_or(stats.max))
        );
        svg.rect(LEFT + i as f64 * bar_w + 0.5, TOP + plot_h - bar_h, (bar_w - 1.0).max(0.5), bar_h, BAR, &tip);
    }
    svg.x_labels(&[
        (LEFT, format_number(stats.min)),
        (LEFT + plot_w / 2.0, format_number((stats.min + stats.max) / 2.0)),
        (LEFT + plot_w, format_number(stats.max)),
    ]);
    svg.finish()
}

/// Where values are missing: one column of cells per table column, one row per band of
/// consecutive rows, darker the more of the band is missing. Columns past
/// [`MATRIX_COLUMNS_MAX`] are left out (the title says so).
pub fn missingness(columns: &[Column], rows: usize) -> String {
    let shown = &columns[..columns.len().min(MATRIX_COLUMNS_MAX)];
    let bands = rows.clamp(1, MISSINGNESS_BANDS);
    let cell_w = ((WIDTH - LEFT - RIGHT) / shown.len().max(1) as f64).min(48.0);
    let map_h = 240.0;
    let cell_h = map_h / bands as f64;
    // Column names, with their share missing, are written downwards under the map.
    let labels: Vec<String> = shown
        .iter()
        .map(|c| {
            let missing = (0..rows).filter(|&r| c.validity.is_missing(r)).count();
            format!("{} ({})", truncate(&c.name, 24), format_share(missing, rows))
        })
        .collect();
    let label_room = 12.0 + LABEL_CHAR * labels.iter().map(|l| l.chars().count()).max().unwrap_or(0) as f64;
    let height = TOP + map_h + label_room;
    let title = if shown.len() < columns.len() {
        format!("Missing values by row band (first {} of {} columns)", shown.len(), columns.len())
    } else {
        "Missing values by row band".to_owned()
    };
    let mut svg = Svg::new(WIDTH, height, &title);
    for (c, column) in shown.iter().enumerate() {
        let x = LEFT + c as f64 * cell_w;
        let mut missing = vec![0usize; bands];
        let mut sizes = vec![0usize; bands];
        for row in 0..rows {
            let band = row * bands / rows;
            sizes[band] += 1;
            missing[band] += usize::from(column.validity.is_missing(row));
        }
        for (b, (&m, &n)) in missing.iter().zip(&sizes).enumerate() {
            let share = if n == 0 { 0.0 } else { m as f64 / n as f64 };
            let first = b * rows / bands + 1;
            let last = ((b + 1) * rows / bands).max(first);
            let tip = format!("{}: rows {first} to {last}, {m} of {n} missing", column.name);
            svg.rect(
                x,
                TOP + b as f64 * cell_h,
                cell_w - 1.0,
                cell_h,
                &shade(share, (238, 242, 247), (34, 34, 34)),
                &tip,
            );
        }
        svg.vertical_label(x + cell_w / 2.0 + 3.0, TOP + map_h + 6.0, &labels[c]);
    }
    svg.text(LEFT - 6.0, TOP + 10.0, "end", "row 1");
    svg.text(LEFT - 6.0, TOP + map_h, "end", &format!("row {rows}"));
    svg.finish()
}

/// A correlation matrix as a heat map: blue for negative, red for positive (or white to
/// red for a measure in [0, 1], like Cramér's V), grey where a pair has no value.
pub fn correlation(title: &str, names: &[String], matrix: &[Vec<Option<f64>>], signed: bool) -> String {
    let n = names.len().min(MATRIX_COLUMNS_MAX);
    let label_room =
        12.0 + LABEL_CHAR * names.iter().take(n).map(|s| s.chars().count().min(24)).max().unwrap_or(0) as f64;
    let cell = ((WIDTH - label_room - RIGHT) / n.max(1) as f64).min(40.0);
    let width = label_room + cell * n as f64 + RIGHT;
    let height = TOP + cell * n as f64 + label_room;
    let title =
        if n < names.len() { format!("{title} (first {n} of {} columns)", names.len()) } else { title.to_owned() };
    let mut svg = Svg::new(width.max(320.0), height, &title);
    for i in 0..n {
        for j in 0..n {
            let value = matrix.get(i).and_then(|r| r.get(j)).copied().flatten();
            let (fill, tip) = match value {
                Some(v) => {
                    let fill = match (signed, v < 0.0) {
                        (true, true) => shade(-v, (255, 255, 255), (44, 105, 176)),
                        _ => shade(v.abs(), (255, 255, 255), (200, 50, 45)),
                    };
                    (fill, format!("{} × {}: {v:.4}", names[i], names[j]))
                }
                None => ("#eee".to_owned(), format!("{} × {}: no value", names[i], names[j])),
            };
            svg.rect(label_room + j as f64 * cell, TOP + i as f64 * cell, cell - 1.0, cell - 1.0, &fill, &tip);
            if cell >= 28.0
                && let Some(v) = value
            {
                let ink = if v.abs() > 0.6 { "#fff" } else { INK };
                let _ = write!(
                    svg.body,
                    r#"<text x="{:.1}" y="{:.1}" font-size="9" text-anchor="middle" fill="{ink}">{v:.2}</text>"#,
                    label_room + j as f64 * cell + cell / 2.0,
                    TOP + i as f64 * cell + cell / 2.0 + 3.0
                );
            }
        }
        let name = truncate(&names[i], 24);
        svg.text(label_room - 4.0, TOP + i as f64 * cell + cell / 2.0 + 3.0, "end", &name);
        svg.vertical_label(label_room + i as f64 * cell + cell / 2.0 + 3.0, TOP + n as f64 * cell + 6.0, &name);
    }
    svg.finish()
}

/// Observed first-digit shares against Benford's law.
pub fn benford(b: &Benford) -> String {
    let mut svg = Svg::new(WIDTH, HEIGHT, &format!("First digits of {} against Benford's law", b.column));
    svg.subtitle(&format!(
        "{} values; chi² {:.2}, p = {}; MAD {:.4}: {}",
        b.values,
        b.chi2,
        format_p(b.p_value),
        b.mad,
        b.conformity
    ));
    let total = b.observed.iter().sum::<usize>().max(1) as f64;
    let observed: Vec<f64> = b.observed.iter().map(|&n| n as f64 / total).collect();
    let max = observed.iter().chain(&b.expected).copied().fold(0.0, f64::max).max(0.01);
    let (plot_w, plot_h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let slot = plot_w / 9.0;
    svg.y_axis(&format!("{:.0}%", max * 100.0));
    let mut line = String::new();
    for (d, ((share, count), expected)) in observed.iter().zip(&b.observed).zip(&b.expected).enumerate() {
        let x = LEFT + d as f64 * slot;
        let bar_h = share / max * plot_h;
        let tip = format!(
            "digit {}: {count} values ({:.2}%), Benford expects {:.2}%",
            d + 1,
            share * 100.0,
            expected * 100.0
        );
        svg.rect(x + slot * 0.15, TOP + plot_h - bar_h, slot * 0.7, bar_h, BAR, &tip);
        let _ = write!(line, "{:.1},{:.1} ", x + slot / 2.0, TOP + plot_h - expected / max * plot_h);
        svg.text(x + slot / 2.0, TOP + plot_h + 16.0, "middle", &(d + 1).to_string());
    }
    let _ = write!(
        svg.body,
        r#"<polyline points="{}" fill="none" stroke="{EXPECTED}" stroke-width="2"><title>Benford's expected shares</title></polyline>"#,
        line.trim_end()
    );
    svg.legend(&[(BAR, "observed"), (EXPECTED, "Benford")]);
    svg.finish()
}

/// Rows per period of a date column, spikes in red.
pub fn volume(v: &Volume) -> String {
    let period = match v.period {
        crate::analyses::Period::Day => "day",
        crate::analyses::Period::Week => "week",
        crate::analyses::Period::Month => "month",
    };
    let mut svg = Svg::new(WIDTH, HEIGHT, &format!("Rows per {period} by {}", v.column));
    svg.subtitle(&format!("{} periods, {} spikes, {} empty stretches", v.periods.len(), v.spikes.len(), v.gaps.len()));
    let max = v.periods.iter().map(|p| p.rows).max().unwrap_or(0).max(1) as f64;
    let (plot_w, plot_h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let slot = plot_w / v.periods.len().max(1) as f64;
    svg.y_axis(&(max as usize).to_string());
    for (i, p) in v.periods.iter().enumerate() {
        let spike = v.spikes.iter().any(|s| s.start == p.start);
        let bar_h = p.rows as f64 / max * plot_h;
        let tip = format!("{period} of {}: {} rows{}", p.start, p.rows, if spike { " (spike)" } else { "" });
        let fill = if spike { HIGHLIGHT } else { BAR };
        svg.rect(LEFT + i as f64 * slot, TOP + plot_h - bar_h, (slot * 0.85).max(0.3), bar_h, fill, &tip);
    }
    if let (Some(first), Some(last)) = (v.periods.first(), v.periods.last()) {
        svg.x_labels(&[(LEFT, first.start.clone()), (LEFT + plot_w, last.start.clone())]);
    }
    svg.legend(&[(BAR, "rows"), (HIGHLIGHT, "spike")]);
    svg.finish()
}

/// An SVG document being written.
struct Svg {
    width: f64,
    height: f64,
    body: String,
}

impl Svg {
    fn new(width: f64, height: f64, title: &str) -> Svg {
        let mut body = String::new();
        let _ = write!(
            body,
            r##"<title>{t}</title><rect width="100%" height="100%" fill="#fff"/><text x="{LEFT}" y="22" font-size="14" font-weight="bold" fill="{INK}">{t}</text>"##,
            t = escape(title)
        );
        Svg { width, height, body }
    }

    fn subtitle(&mut self, text: &str) {
        let _ = write!(self.body, r#"<text x="{LEFT}" y="36" font-size="11" fill="{INK}">{}</text>"#, escape(text));
    }

    fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str, tip: &str) {
        let _ = write!(
            self.body,
            r#"<rect x="{x:.2}" y="{y:.2}" width="{w:.2}" height="{h:.2}" fill="{fill}"><title>{}</title></rect>"#,
            escape(tip)
        );
    }

    fn text(&mut self, x: f64, y: f64, anchor: &str, text: &str) {
        let _ = write!(
            self.body,
            r#"<text x="{x:.1}" y="{y:.1}" font-size="11" text-anchor="{anchor}" fill="{INK}">{}</text>"#,
            escape(text)
        );
    }

    fn vertical_label(&mut self, x: f64, y: f64, text: &str) {
        let _ = write!(
            self.body,
            r#"<text transform="translate({x:.1},{y:.1}) rotate(90)" font-size="10" fill="{INK}">{}</text>"#,
            escape(text)
        );
    }

    /// The baseline (labelled 0) and a grid line at the top of the plotting area.
    fn y_axis(&mut self, top_label: &str) {
        let (base, right) = (self.height - BOTTOM, self.width - RIGHT);
        let _ = write!(
            self.body,
            r#"<line x1="{LEFT}" y1="{TOP}" x2="{right}" y2="{TOP}" stroke="{GRID}"/><line x1="{LEFT}" y1="{base}" x2="{right}" y2="{base}" stroke="{INK}"/>"#
        );
        self.text(LEFT - 6.0, TOP + 4.0, "end", top_label);
        self.text(LEFT - 6.0, base + 4.0, "end", "0");
    }

    fn x_labels(&mut self, labels: &[(f64, String)]) {
        let y = self.height - BOTTOM + 16.0;
        for (i, (x, label)) in labels.iter().enumerate() {
            let anchor = match i {
                0 => "start",
                _ if i == labels.len() - 1 => "end",
                _ => "middle",
            };
            self.text(*x, y, anchor, label);
        }
    }

    fn legend(&mut self, entries: &[(&str, &str)]) {
        let mut x = self.width - RIGHT - 90.0 * entries.len() as f64;
        for (color, label) in entries {
            let _ =
                write!(self.body, r#"<rect x="{x:.1}" y="{:.1}" width="10" height="10" fill="{color}"/>"#, TOP + 4.0);
            self.text(x + 14.0, TOP + 13.0, "start", label);
            x += 90.0;
        }
    }

    fn finish(self) -> String {
        format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" font-family="sans-serif">{}</svg>"#,
            self.body,
            w = self.width,
            h = self.height
        ) + "\n"
    }
}

/// Text made safe inside an SVG element or attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // XML 1.0 allows no other control characters.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// A colour `share` of the way from `from` to `to` (share clamped to [0, 1]).
fn shade(share: f64, from: (u8, u8, u8), to: (u8, u8, u8)) -> String {
    let s = if share.is_finite() { share.clamp(0.0, 1.0) } else { 0.0 };
    let mix = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * s).round() as u8;
    format!("#{:02x}{:02x}{:02x}", mix(from.0, to.0), mix(from.1, to.1), mix(from.2, to.2))
}

fn truncate(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars { text.to_owned() } else { text.chars().take(chars - 1).chain(['…']).collect() }
}

/// A number for an axis: four significant digits, scientific when very large or small.
pub fn format_number(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return if v.is_finite() { "0".to_owned() } else { v.to_string() };
    }
    let magnitude = v.abs().log10().floor();
    if !(-3.0..9.0).contains(&magnitude) {
        return format!("{v:.3e}");
    }
    let decimals = (3.0 - magnitude).clamp(0.0, 6.0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_owned() } else { s }
}

fn format_share(part: usize, whole: usize) -> String {
    if whole == 0 { "0%".to_owned() } else { format!("{:.1}%", part as f64 * 100.0 / whole as f64) }
}

fn format_p(p: f64) -> String {
    if p < 1e-4 { format!("{p:.1e}") } else { format!("{p:.4}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Histogram;
    use crate::sniff::Chosen;
    use crate::table::{Kind, Role, Validity, Values};

    fn stats(edges: Vec<f64>, counts: Vec<usize>) -> NumericStats {
        NumericStats {
            min: edges[0],
            max: *edges.last().expect("edges"),
            mean: 0.0,
            median: 0.0,
            std: None,
            quantiles: Vec::new(),
            zeros: 0,
            negatives: 0,
            histogram: Histogram { edges, counts },
        }
    }

    fn rects(svg: &str) -> Vec<&str> {
        svg.split("<rect ").skip(2).collect()
    }

    #[test]
    fn histogram_bars_are_proportional_and_carry_their_counts() {
        let svg = histogram("amount <EUR>", &stats(vec![0.0, 5.0, 10.0], vec![10, 5]));
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("Distribution of amount &lt;EUR&gt;"), "the name is escaped");
        let bars = rects(&svg);
        assert_eq!(bars.len(), 2);
        let height = |bar: &str| -> f64 {
            let start = bar.find("height=\"").expect("height") + 8;
            bar[start..].split('"').next().expect("value").parse().expect("number")
        };
        assert!((height(bars[0]) - 2.0 * height(bars[1])).abs() < 0.02, "{bars:?}");
        assert!(bars[0].contains("<title>0 to 5: 10 values</title>"), "{}", bars[0]);
        assert!(bars[1].contains("<title>5 to 10: 5 values</title>"), "{}", bars[1]);
    }

    #[test]
    fn the_missingness_map_counts_each_band() {
        let column = |name: &str, missing: Vec<bool>| Column {
            name: name.into(),
            kind: Chosen { value: Kind::Boolean, evidence: String::new() },
            role: Chosen { value: Role::Measure, evidence: String::new() },
            values: Values::Boolean(vec![false; missing.len()]),
            validity: Validity::from_missing(missing),
        };
        let columns = [column("full", vec![false; 4]), column("holes", vec![true, true, false, true])];
        let svg = missingness(&columns, 4);
        // Four rows make four bands of one row.
        assert!(svg.contains("<title>holes: rows 2 to 2, 1 of 1 missing</title>"), "{svg}");
        assert!(svg.contains("<title>holes: rows 3 to 3, 0 of 1 missing</title>"), "{svg}");
        assert!(svg.contains("<title>full: rows 1 to 1, 0 of 1 missing</title>"), "{svg}");
        assert!(svg.contains("holes (75.0%)"), "{svg}");
        assert!(svg.contains(r##"fill="#222222"><title>holes: rows 1 to 1"##), "a missing band is dark: {svg}");
    }

    #[test]
    fn correlation_cells_are_coloured_by_sign_and_strength() {
        let names = vec!["a".to_owned(), "b".to_owned()];
        let matrix = vec![vec![Some(1.0), Some(-1.0)], vec![Some(-1.0), None]];
        let svg = correlation("Pearson", &names, &matrix, true);
        assert!(svg.contains(r##"fill="#c8322d"><title>a × a: 1.0000"##), "{svg}");
        assert!(svg.contains(r##"fill="#2c69b0"><title>a × b: -1.0000"##), "{svg}");
        assert!(svg.contains("<title>b × b: no value</title>"), "{svg}");
    }

    #[test]
    fn escaping_covers_markup_and_control_characters() {
        assert_eq!(escape(r#"<a href="x">&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
        assert_eq!(escape("a\u{1}b\tc"), "a\u{FFFD}b\tc");
    }

    #[test]
    fn axis_numbers_keep_four_significant_digits() {
        assert_eq!(format_number(1234.5678), "1235");
        assert_eq!(format_number(12.345678), "12.35");
        assert_eq!(format_number(0.012345), "0.01235");
        assert_eq!(format_number(-2.5), "-2.5");
        assert_eq!(format_number(0.0), "0");
        assert_eq!(format_number(1.5e12), "1.500e12");
    }
}

//! Deciding what each column is (its [`Kind`] and [`Role`]) from every one of its values,
//! then reading it into typed storage.
//!
//! Inference sees the whole column, not a sample, so a type never turns out wrong on row
//! 900,001. It surveys the column with every reader in [`crate::value`] that is still
//! viable (a reader drops out at its first failure, so text columns cost almost nothing),
//! then settles what only the column can: the decimal mark, day/month order, and whether
//! strings are categories, identifiers or free text. Each choice carries its evidence,
//! quoting the value that decided it.

use std::collections::HashMap;

use crate::pii::{self, PiiKind};
use crate::read::RawColumn;
use crate::sniff::Chosen;
use crate::table::{Column, Kind, Role, Strings, Validity, Values};
use crate::value::{
    DateOrder, DecimalMark, MICROS_PER_DAY, is_missing, parse_amount, parse_bool, parse_datetime, parse_integer,
    parse_number, parse_percent, trim,
};

/// What is known about the file that helps settle a column's ambiguities.
#[derive(Clone, Copy, Debug)]
pub struct Context {
    /// A `;` delimiter is what spreadsheets write where `,` is the decimal mark.
    pub delimiter: u8,
}

const MARKS: [DecimalMark; 2] = [DecimalMark::Point, DecimalMark::Comma];
const ORDERS: [DateOrder; 3] = [DateOrder::YearMonthDay, DateOrder::DayMonthYear, DateOrder::MonthDayYear];

/// A reader that is still viable for the column, and the value that ruled it out if not.
#[derive(Clone, Debug, Default)]
struct Viable {
    failed_at: Option<(usize, String)>,
}

impl Viable {
    fn ok(&self) -> bool {
        self.failed_at.is_none()
    }

    fn fail(&mut self, row: usize, cell: &str) {
        if self.failed_at.is_none() {
            self.failed_at = Some((row, pii::shown(cell)));
        }
    }
}

/// One pass over a column with every reader, keeping the values the readers still in the
/// running produce, so the column is parsed once.
#[derive(Debug, Default)]
struct Survey {
    present: usize,
    /// The first row with a value.
    first_row: usize,
    /// One flag per row surveyed (true = missing).
    missing: Vec<bool>,
    boolean: Viable,
    /// Per decimal mark: a plain number.
    number: [Viable; 2],
    /// Per decimal mark: no fraction or exponent, fits an `i64`.
    integer: [Viable; 2],
    grouped: [bool; 2],
    /// A whole number beyond 2^53, which an `f64` does not hold exactly.
    big_integer: bool,
    /// A value with leading zeros (`007`), and the first one seen.
    leading_zero: Option<(usize, String)>,
    /// Per decimal mark: a currency amount or a plain number.
    currency: [Viable; 2],
    symbols: Vec<&'static str>,
    /// Per decimal mark: values with a currency symbol or code.
    with_symbol: [usize; 2],
    percent: [Viable; 2],
    /// Per date order.
    date: [Viable; 3],
    with_time: bool,
    separator: Option<u8>,
    /// Every date is year-first (so the order is not in question).
    year_first: bool,
    /// A value only one of day-first and month-first can read, with the order it needs.
    order_decider: Option<(usize, String)>,
    /// A value read as a number under one mark that the other reads differently.
    mark_decider: Option<(usize, String)>,
    /// Values kept while their reader is viable (a placeholder where missing): booleans,
    /// numbers or amounts per decimal mark, days per date order, microseconds into the day.
    booleans: Option<Vec<bool>>,
    numbers: [Option<Vec<f64>>; 2],
    days: [Option<Vec<i64>>; 3],
    micros: Option<Vec<i64>>,
}

/// Values an `f64` holds exactly as integers.
const EXACT_INTEGERS: f64 = 9_007_199_254_740_992.0;

impl Survey {
    fn new(rows: usize) -> Self {
        // Reserved, not touched: untouched pages cost no memory.
        fn keep<T>(rows: usize) -> Option<Vec<T>> {
            Some(Vec::with_capacity(rows))
        }
        Survey {
            year_first: true,
            missing: Vec::with_capacity(rows),
            booleans: keep(rows),
            numbers: [keep(rows), keep(rows)],
            days: [keep(rows), keep(rows), keep(rows)],
            micros: keep(rows),
            ..Survey::default()
        }
    }

    fn any_typed(&self) -> bool {
        self.boolean.ok()
            || self.number.iter().any(Viable::ok)
            || self.currency.iter().any(Viable::ok)
            || self.percent.iter().any(Viable::ok)
            || self.date.iter().any(Viable::ok)
    }

    /// A missing cell: placeholders in every kept column.
    fn skip(&mut self) {
        self.missing.push(true);
        if let Some(kept) = &mut self.booleans {
            kept.push(false);
        }
        for v in self.numbers.iter_mut().flatten() {
            v.push(0.0);
        }
        for v in self.days.iter_mut().flatten().chain(&mut self.micros) {
            v.push(0);
        }
    }

    fn look(&mut self, row: usize, cell: &str) {
        self.missing.push(false);
        self.present += 1;
        if self.present == 1 {
            self.first_row = row;
        }
        if self.boolean.ok() {
            match parse_bool(cell) {
                Some(b) => {
                    if let Some(kept) = &mut self.booleans {
                        kept.push(b);
                    }
                }
                None => {
                    self.boolean.fail(row, cell);
                    self.booleans = None;
                }
            }
        }
        self.look_number(row, cell);
        if self.date.iter().any(Viable::ok) {
            self.look_date(row, cell);
        }
    }

    fn look_number(&mut self, row: usize, cell: &str) {
        // A number without `,` or `.` reads the same under either mark.
        let ambiguous_mark = cell.bytes().any(|c| c == b',' || c == b'.');
        let mut numbers = [None, None];
        let mut parsed = [false; 2];
        for (m, mark) in MARKS.into_iter().enumerate() {
            if !self.number[m].ok() && !self.currency[m].ok() && !self.percent[m].ok() {
                continue;
            }
            let n = if m == 1 && parsed[0] && !ambiguous_mark { numbers[0] } else { parse_number(cell, mark) };
            numbers[m] = n;
            parsed[m] = true;
            let mut value = None;
            match n {
                Some(n) => {
                    value = Some(n.value);
                    self.grouped[m] |= n.grouped;
                    if n.leading_zero && self.leading_zero.is_none() {
                        self.leading_zero = Some((row, pii::shown(trim(cell))));
                    }
                    if self.integer[m].ok() {
                        if n.fractional {
                            self.integer[m].fail(row, cell);
                        } else if n.value.abs() >= EXACT_INTEGERS {
                            self.big_integer = true;
                            if parse_integer(cell, mark).is_none() {
                                self.integer[m].fail(row, cell);
                            }
                        }
                    }
                }
                None => {
                    self.number[m].fail(row, cell);
                    self.integer[m].fail(row, cell);
                }
            }
            if self.currency[m].ok() && n.is_none() {
                match parse_amount(cell, mark) {
                    Some((amount, symbol)) => {
                        value = Some(amount);
                        if let Some(symbol) = symbol {
                            self.with_symbol[m] += 1;
                            if !self.symbols.contains(&symbol) {
                                self.symbols.push(symbol);
                            }
                        }
                    }
                    None => self.currency[m].fail(row, cell),
                }
            }
            if self.percent[m].ok() && parse_percent(cell, mark).is_none() {
                self.percent[m].fail(row, cell);
            }
            // Plain numbers and amounts share the kept values (a percent column is read
            // again, it is rare).
            match value {
                Some(v) if self.number[m].ok() || self.currency[m].ok() => {
                    if let Some(kept) = &mut self.numbers[m] {
                        kept.push(v);
                    }
                }
                _ => self.numbers[m] = None,
            }
        }
        if let [Some(a), Some(b)] = numbers
            && a.value != b.value
            && self.mark_decider.is_none()
        {
            self.mark_decider = Some((row, pii::shown(trim(cell))));
        }
    }

    fn look_date(&mut self, row: usize, cell: &str) {
        let year_first = trim(cell).bytes().take(4).filter(u8::is_ascii_digit).count() == 4;
        self.year_first &= year_first;
        let mut read_by = [false; 3];
        // A year-first date reads the same in every order: it is parsed once.
        let mut year_first_reading = None;
        // Any reading: the time of day does not depend on the order.
        let mut reading = None;
        for (o, order) in ORDERS.into_iter().enumerate() {
            if !self.date[o].ok() {
                continue;
            }
            let parsed = match year_first_reading {
                Some(parsed) => parsed,
                None => parse_datetime(cell, order),
            };
            if year_first {
                year_first_reading = Some(parsed);
            }
            match parsed {
                Some(d) => {
                    read_by[o] = true;
                    reading.get_or_insert(d);
                    self.with_time |= d.nanos.is_some();
                    self.separator.get_or_insert(d.separator);
                    if let Some(kept) = &mut self.days[o] {
                        kept.push(d.days);
                    }
                }
                None => {
                    self.date[o].fail(row, cell);
                    self.days[o] = None;
                }
            }
        }
        if read_by[1] != read_by[2] && self.order_decider.is_none() {
            self.order_decider = Some((row, pii::shown(trim(cell))));
        }
        match (reading, &mut self.micros) {
            (Some(d), Some(kept)) => kept.push(d.nanos.unwrap_or(0) / 1000),
            (Some(_), None) => {}
            (None, _) => self.micros = None,
        }
    }

    /// The values of `kind` as kept while surveying, if they were.
    fn take_values(&mut self, kind: &Kind) -> Option<Values> {
        let mark = |m: DecimalMark| usize::from(m == DecimalMark::Comma);
        Some(match *kind {
            Kind::Boolean => Values::Boolean(self.booleans.take()?),
            Kind::Integer { decimal_mark, .. } if !self.big_integer => {
                // Whole numbers below 2^53: the f64 is the integer exactly.
                Values::Integer(self.numbers[mark(decimal_mark)].take()?.into_iter().map(|v| v as i64).collect())
            }
            Kind::Decimal { decimal_mark, .. } | Kind::Currency { decimal_mark, .. } => {
                Values::Float(self.numbers[mark(decimal_mark)].take()?)
            }
            Kind::Date { order, .. } => Values::Date(self.days[order as usize].take()?),
            Kind::DateTime { order, .. } => {
                let days = self.days[order as usize].take()?;
                let micros = self.micros.take()?;
                Values::DateTime(days.iter().zip(&micros).map(|(d, m)| d * MICROS_PER_DAY + m).collect())
            }
            _ => return None,
        })
    }
}

/// Reads raw columns into typed ones on up to `threads` threads, with the table's
/// [`data_hash`](crate::table::data_hash): each column is hashed by the worker that typed
/// it, while its values are still in that core's cache.
pub(crate) fn table(
    names: Vec<String>,
    chunks: Vec<Vec<RawColumn>>,
    rows: usize,
    context: Context,
    threads: usize,
) -> (Vec<Column>, String) {
    let (columns, hashes): (Vec<Column>, Vec<[u8; 32]>) =
        crate::par::map_owned(names.into_iter().zip(chunks).collect(), threads, |(name, chunks)| {
            let column = column(name, chunks, rows, context);
            let hash = column.content_hash();
            (column, hash)
        })
        .into_iter()
        .unzip();
    let data_hash = crate::table::data_hash_of(&columns, rows, hashes);
    (columns, data_hash)
}

/// Reads a raw column into a typed one, choosing its kind and role.
pub(crate) fn column(name: String, chunks: Vec<RawColumn>, rows: usize, context: Context) -> Column {
    let mut survey = Survey::new(rows);
    let mut row = 0;
    'chunks: for chunk in &chunks {
        for cell in chunk.iter() {
            row += 1;
            if is_missing(cell) {
                survey.skip();
            } else {
                survey.look(row, cell);
                if !survey.any_typed() {
                    break 'chunks;
                }
            }
        }
    }
    let (kind, values, validity) = match decide(&survey, context) {
        Some(kind) if !kind.value.is_text() => {
            let (values, validity) = match survey.take_values(&kind.value) {
                Some(values) if survey.missing.len() == rows => {
                    (values, Validity::from_missing(std::mem::take(&mut survey.missing)))
                }
                _ => convert(&kind.value, &chunks, rows),
            };
            (kind, values, validity)
        }
        Some(kind) => text(&chunks, rows, Some(kind)),
        None => {
            let (mut kind, values, validity) = text(&chunks, rows, None);
            // Numbers until one was not: say which.
            if let Some((row, cell)) = &survey.number[0].failed_at
                && *row > survey.first_row
            {
                kind.evidence.push_str(&format!("; {cell:?} (row {row}) is not a number"));
            }
            (kind, values, validity)
        }
    };
    drop(chunks);
    let role = role(&name, &kind.value, &values, &validity);
    // Evidence about a personal-data column quotes nothing of its values.
    let kind =
        if role.value == Role::Pii { Chosen { evidence: pii::redact_quoted(&kind.evidence), ..kind } } else { kind };
    Column { name, kind, role, values, validity }
}

/// The decimal mark under which a reader accepts every value (`viable` per mark), with
/// the evidence when the mark was in question.
fn mark_for(viable: [&Viable; 2], s: &Survey, context: Context) -> Option<(usize, String)> {
    match (viable[0].ok(), viable[1].ok()) {
        (true, false) => Some((0, String::new())),
        (false, true) => Some((1, format!("; ',' is the decimal mark: {}", decider(viable[0], "'.' as the mark")))),
        (true, true) => match &s.mark_decider {
            Some((row, cell)) if context.delimiter == b';' => Some((
                1,
                format!(
                    "; {cell:?} (row {row}) reads either way: ',' is the decimal mark as the file is ';'-delimited"
                ),
            )),
            Some((row, cell)) => Some((
                0,
                format!(
                    "; {cell:?} (row {row}) reads either way: '.' is the decimal mark as the file is not ';'-delimited"
                ),
            )),
            None => Some((0, String::new())),
        },
        (false, false) => None,
    }
}

fn decider(viable: &Viable, what: &str) -> String {
    match &viable.failed_at {
        Some((row, cell)) => format!("{cell:?} at row {row} does not read with {what}"),
        None => String::new(),
    }
}

/// The typed kind the survey supports, if any.
fn decide(s: &Survey, context: Context) -> Option<Chosen<Kind>> {
    let n = s.present;
    if n == 0 {
        return Some(Chosen { value: Kind::Empty, evidence: "every cell is missing".into() });
    }
    if s.boolean.ok() {
        return Some(Chosen { value: Kind::Boolean, evidence: format!("all {n} values are true/false words") });
    }
    if let Some((m, why)) = mark_for([&s.number[0], &s.number[1]], s, context) {
        let decimal_mark = MARKS[m];
        let grouped = s.grouped[m];
        if !s.integer[m].ok() {
            return Some(Chosen {
                value: Kind::Decimal { decimal_mark, grouped },
                evidence: format!("all {n} values are numbers, some with a fraction{why}"),
            });
        }
        if let Some((row, cell)) = &s.leading_zero {
            return Some(Chosen {
                value: Kind::Identifier,
                evidence: format!("whole numbers, but {cell:?} (row {row}) has leading zeros: codes, not quantities"),
            });
        }
        return Some(Chosen {
            value: Kind::Integer { decimal_mark, grouped },
            evidence: format!("all {n} values are whole numbers{why}"),
        });
    }
    if let Some((m, why)) = mark_for([&s.currency[0], &s.currency[1]], s, context)
        && s.with_symbol[m] > 0
    {
        let symbols: Vec<String> = s.symbols.iter().map(|x| (*x).to_string()).collect();
        return Some(Chosen {
            evidence: format!(
                "{} of {n} values are amounts with {}, the rest plain or accounting numbers{why}",
                s.with_symbol[m],
                symbols.join(" ")
            ),
            value: Kind::Currency { decimal_mark: MARKS[m], symbols },
        });
    }
    if let Some((m, why)) = mark_for([&s.percent[0], &s.percent[1]], s, context) {
        return Some(Chosen {
            value: Kind::Percent { decimal_mark: MARKS[m] },
            evidence: format!("all {n} values are percentages{why}"),
        });
    }
    // Year-first order reads any value a day-first order does, so the viable orders are
    // all three (nothing decides), year and day first, or month first alone.
    let viable: Vec<usize> = (0..3).filter(|&o| s.date[o].ok()).collect();
    if viable.is_empty() {
        return None;
    }
    let separator = char::from(s.separator.unwrap_or(b'-'));
    let decided_by = || s.order_decider.clone().unwrap_or_default();
    let (order, why) = if s.year_first {
        (DateOrder::YearMonthDay, "year first".to_string())
    } else if viable == [0, 1] {
        let (row, cell) = decided_by();
        (DateOrder::DayMonthYear, format!("day first: {cell:?} (row {row}) only reads day first"))
    } else if viable == [2] {
        let (row, cell) = decided_by();
        (DateOrder::MonthDayYear, format!("month first: {cell:?} (row {row}) only reads month first"))
    } else if separator == '.' || context.delimiter == b';' {
        (
            DateOrder::DayMonthYear,
            "day first: every value reads either way; dots or a ';' delimiter are European".to_string(),
        )
    } else {
        (
            DateOrder::MonthDayYear,
            "month first: every value reads either way; no sign of a day-first locale".to_string(),
        )
    };
    let (value, what) = if s.with_time {
        (Kind::DateTime { order, separator }, "dates with times")
    } else {
        (Kind::Date { order, separator }, "dates")
    };
    Some(Chosen { value, evidence: format!("all {n} values are {what}, {why}") })
}

/// Reads every cell of a typed column.
fn convert(kind: &Kind, chunks: &[RawColumn], rows: usize) -> (Values, Validity) {
    let mut missing = Vec::with_capacity(rows);
    let cells = || chunks.iter().flat_map(RawColumn::iter);
    macro_rules! read {
        ($variant:ident, $placeholder:expr, $parse:expr) => {{
            let mut out = Vec::with_capacity(rows);
            for cell in cells() {
                let value = if is_missing(cell) { None } else { $parse(cell) };
                missing.push(value.is_none());
                out.push(value.unwrap_or($placeholder));
            }
            Values::$variant(out)
        }};
    }
    let values = match *kind {
        Kind::Empty => {
            missing.resize(rows, true);
            Values::Empty(rows)
        }
        Kind::Boolean => read!(Boolean, false, parse_bool),
        Kind::Integer { decimal_mark, .. } => read!(Integer, 0, |c| parse_integer(c, decimal_mark)),
        Kind::Decimal { decimal_mark, .. } => read!(Float, 0.0, |c| parse_number(c, decimal_mark).map(|n| n.value)),
        Kind::Currency { decimal_mark, .. } => read!(Float, 0.0, |c| parse_amount(c, decimal_mark).map(|(v, _)| v)),
        Kind::Percent { decimal_mark } => read!(Float, 0.0, |c| parse_percent(c, decimal_mark)),
        Kind::Date { order, .. } => read!(Date, 0, |c| parse_datetime(c, order).map(|d| d.days)),
        Kind::DateTime { order, .. } => read!(DateTime, 0, |c| parse_datetime(c, order).map(|d| d.micros())),
        Kind::Category | Kind::Text | Kind::Identifier => unreachable!("text kinds are read by text()"),
    };
    (values, Validity::from_missing(missing))
}

/// A column no typed reader accepts, or codes that look like numbers: category,
/// identifier or free text (unless `decided` already).
fn text(chunks: &[RawColumn], rows: usize, decided: Option<Chosen<Kind>>) -> (Chosen<Kind>, Values, Validity) {
    let mut missing = Vec::with_capacity(rows);
    let mut distinct: crate::FastMap<&str, u32> = crate::FastMap::default();
    // Each distinct value once and a code per row, while there are few enough for a
    // category: a category column is stored that way.
    let mut coded = Some((Strings::default(), Vec::with_capacity(rows)));
    let (mut present, mut with_space, mut with_digit, mut total_len) = (0usize, 0usize, 0usize, 0usize);
    for cell in chunks.iter().flat_map(RawColumn::iter) {
        if is_missing(cell) {
            missing.push(true);
            if let Some((_, codes)) = &mut coded {
                codes.push(Strings::NONE);
            }
            continue;
        }
        missing.push(false);
        present += 1;
        let inner = trim(cell);
        if inner.is_ascii() {
            total_len += cell.len();
            with_space += usize::from(inner.bytes().any(|c| c.is_ascii_whitespace()));
        } else {
            total_len += cell.chars().count();
            with_space += usize::from(inner.contains(char::is_whitespace));
        }
        with_digit += usize::from(inner.bytes().any(|c| c.is_ascii_digit()));
        let next = distinct.len() as u32;
        let code = *distinct.entry(cell).or_insert(next);
        if let Some((values, codes)) = &mut coded {
            if code == next {
                values.push(cell);
            }
            codes.push(code);
            if values.len() > MAX_CATEGORIES {
                coded = None;
            }
        }
    }
    let d = distinct.len();
    let mean_len = total_len as f64 / present.max(1) as f64;
    let kind = if let Some(kind) = decided {
        kind
    } else if d * 100 >= present * 95 && present >= 2 && with_space == 0 && with_digit * 5 >= present * 4 {
        Chosen {
            value: Kind::Identifier,
            evidence: format!("{d} distinct codes in {present} cells, without spaces, {with_digit} with digits"),
        }
    } else if d <= MAX_CATEGORIES && d * 2 <= present && mean_len <= 60.0 {
        Chosen {
            value: Kind::Category,
            evidence: format!("{d} distinct values over {present} cells (mean length {mean_len:.1})"),
        }
    } else {
        Chosen {
            value: Kind::Text,
            evidence: format!(
                "{d} distinct values over {present} cells, mean length {mean_len:.1}, {with_space} with spaces"
            ),
        }
    };
    let strings = match coded {
        Some((values, codes)) if kind.value == Kind::Category => Strings::coded(values, codes),
        _ => {
            drop((coded, distinct));
            let bytes: usize = chunks.iter().map(|c| c.bytes.len()).sum();
            let mut strings = Strings::with_capacity(rows, bytes);
            for (cell, missing) in chunks.iter().flat_map(RawColumn::iter).zip(&missing) {
                strings.push(if *missing { "" } else { cell });
            }
            strings
        }
    };
    (kind, Values::Text(strings), Validity::from_missing(missing))
}

/// The most distinct values a category column has.
const MAX_CATEGORIES: usize = 1000;

/// Words in column names that say what a column is for.
const ID_WORDS: [&str; 8] = ["id", "key", "no", "nr", "number", "num", "code", "ref"];
const AMOUNT_WORDS: [&str; 22] = [
    "amount",
    "amt",
    "price",
    "total",
    "cost",
    "value",
    "balance",
    "revenue",
    "sales",
    "tax",
    "discount",
    "fee",
    "paid",
    "net",
    "gross",
    "debit",
    "credit",
    "charge",
    "payment",
    "qty",
    "quantity",
    "extendedprice",
];
const PII_WORDS: [&str; 8] = ["email", "mail", "phone", "mobile", "iban", "ssn", "passport", "birth"];

/// The words of a column name: `o_orderKey` and `Order ID` both give `order`, `key`/`id`.
fn name_words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if !c.is_alphanumeric() {
            prev_lower = false;
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            continue;
        }
        if c.is_uppercase() && prev_lower && !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        prev_lower = c.is_lowercase();
        word.extend(c.to_lowercase());
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// A name word, or its ending (`orderkey`, `custkey`), from `list`.
fn named(words: &[String], list: &[&str]) -> Option<String> {
    words.iter().find_map(|w| {
        list.iter().find(|l| w == *l || (l.len() >= 3 && w.len() > l.len() && w.ends_with(*l))).map(|_| w.clone())
    })
}

/// Personal data in a column: the most common kind among a sample of its values, if it
/// is most of them.
fn pii_in(values: &Values, validity: &Validity) -> Option<(PiiKind, usize, usize)> {
    // Card numbers without spaces read as integers.
    let cell = |row: usize| -> Option<std::borrow::Cow<'_, str>> {
        match values {
            Values::Text(strings) => Some(strings.get(row).into()),
            Values::Integer(v) => Some(v[row].to_string().into()),
            _ => None,
        }
    };
    if !matches!(values, Values::Text(_) | Values::Integer(_)) {
        return None;
    }
    let mut counts: HashMap<PiiKind, usize> = HashMap::new();
    let mut sampled = 0;
    let step = (values.len() / 2000).max(1);
    for row in (0..values.len()).step_by(step) {
        if validity.is_missing(row) {
            continue;
        }
        sampled += 1;
        if let Some(kind) = cell(row).and_then(|c| pii::classify(&c)) {
            *counts.entry(kind).or_default() += 1;
        }
    }
    let (kind, hits) = counts.into_iter().max_by_key(|(k, n)| (*n, std::cmp::Reverse(*k)))?;
    (hits * 2 >= sampled).then_some((kind, hits, sampled))
}

fn role(name: &str, kind: &Kind, values: &Values, validity: &Validity) -> Chosen<Role> {
    let words = name_words(name);
    let chosen = |value, evidence: String| Chosen { value, evidence };
    if let Some((pii, hits, sampled)) = pii_in(values, validity) {
        return chosen(Role::Pii, format!("{hits} of {sampled} sampled values are {}s", pii.name()));
    }
    if let Some(word) = named(&words, &PII_WORDS) {
        return chosen(Role::Pii, format!("the name says {word:?}"));
    }
    match kind {
        Kind::Empty => chosen(Role::None, "no values".into()),
        Kind::Identifier => chosen(Role::Id, "identifier values".into()),
        Kind::Date { .. } | Kind::DateTime { .. } => chosen(Role::Date, "date values".into()),
        Kind::Boolean | Kind::Category => chosen(Role::Category, "few distinct values".into()),
        Kind::Text => chosen(Role::Text, "free text".into()),
        Kind::Currency { .. } => chosen(Role::Amount, "currency amounts".into()),
        Kind::Integer { .. } | Kind::Decimal { .. } | Kind::Percent { .. } => {
            if matches!(kind, Kind::Integer { .. })
                && let Some(word) = named(&words, &ID_WORDS)
            {
                chosen(Role::Id, format!("whole numbers and the name says {word:?}"))
            } else if !matches!(kind, Kind::Percent { .. })
                && let Some(word) = named(&words, &AMOUNT_WORDS)
            {
                chosen(Role::Amount, format!("numbers and the name says {word:?}"))
            } else {
                chosen(Role::Measure, "numbers without a more specific name".into())
            }
        }
    }
}

#[cfg(test)]
mod tests;

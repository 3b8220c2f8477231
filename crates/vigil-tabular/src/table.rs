//! A typed table held in columns: what ingest produces and every analysis reads.
//!
//! Values are stored by their storage type ([`Values`]) with a separate record of which
//! cells are missing ([`Validity`]); what a column *means* (currency, percent, a date in
//! day-first order, an identifier) is its [`Kind`], chosen by [`crate::infer`] with the
//! evidence for the choice.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::sniff::Chosen;
use crate::value::{DateOrder, DecimalMark};

/// Which cells of a column hold a value. `None` in `missing` means none is missing, the
/// common case, so complete columns cost nothing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Validity {
    missing: Option<Vec<bool>>,
    count: usize,
}

impl Validity {
    /// Builds from one flag per row (true = missing).
    pub fn from_missing(flags: Vec<bool>) -> Self {
        let count = flags.iter().filter(|m| **m).count();
        Validity { missing: (count > 0).then_some(flags), count }
    }

    pub fn is_missing(&self, row: usize) -> bool {
        self.missing.as_ref().is_some_and(|m| m[row])
    }

    /// How many cells are missing.
    pub fn missing_count(&self) -> usize {
        self.count
    }

    /// One flag per row (true = missing), or `None` when no cell is missing.
    pub fn flags(&self) -> Option<&[bool]> {
        self.missing.as_deref()
    }
}

/// A column of strings in one buffer: row `i` is `bytes[end(i-1)..end(i)]`; or, for a
/// column of few distinct values (a category), each value once and a code per row.
///
/// Ends are kept in 32 bits (half the memory of `usize` on the columns that dominate a
/// table's size); the rare column past 4 GiB records the rows where the offset wrapped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Strings {
    bytes: String,
    ends: Vec<u32>,
    /// Rows whose end passed another multiple of 2^32 bytes.
    wraps: Vec<usize>,
    /// When coded: the strings above are the distinct values and row `i` holds value
    /// `codes[i]` ([`Strings::NONE`] for a missing cell, read as "").
    codes: Option<Vec<u32>>,
}

impl Strings {
    /// The code of a missing cell in a coded column.
    pub const NONE: u32 = u32::MAX;

    pub fn with_capacity(rows: usize, bytes: usize) -> Self {
        Strings { bytes: String::with_capacity(bytes), ends: Vec::with_capacity(rows), ..Strings::default() }
    }

    /// A coded column: `values` once each, and per row the index of its value.
    pub fn coded(values: Strings, codes: Vec<u32>) -> Self {
        Strings { codes: Some(codes), ..values }
    }

    /// Appends a row (to a column that is not coded).
    pub fn push(&mut self, value: &str) {
        debug_assert!(self.codes.is_none(), "push onto a coded column");
        self.bytes.push_str(value);
        let end = self.bytes.len();
        while end >> 32 > self.wraps.len() {
            self.wraps.push(self.ends.len());
        }
        self.ends.push(end as u32);
    }

    pub fn len(&self) -> usize {
        self.codes.as_ref().map_or(self.ends.len(), Vec::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn end(&self, i: usize) -> usize {
        let high = if self.wraps.is_empty() { 0 } else { self.wraps.partition_point(|&r| r <= i) };
        (high << 32) | self.ends[i] as usize
    }

    /// The `i`-th stored string: a row's, or a coded column's `i`-th distinct value.
    fn stored(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.end(i - 1) };
        &self.bytes[start..self.end(i)]
    }

    pub fn get(&self, row: usize) -> &str {
        match &self.codes {
            None => self.stored(row),
            Some(codes) if codes[row] == Self::NONE => "",
            Some(codes) => self.stored(codes[row] as usize),
        }
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// The parts a snapshot stores: the text, the ends, the wrap points and the codes.
    pub(crate) fn parts(&self) -> (&str, &[u32], &[usize], Option<&[u32]>) {
        (&self.bytes, &self.ends, &self.wraps, self.codes.as_deref())
    }

    /// Puts parts back together, refusing any that would not make a column: ends must
    /// rise, stay within the text and fall on character boundaries; wraps must be where
    /// the 32-bit ends wrapped; codes must index the strings (or be [`Strings::NONE`]).
    pub(crate) fn from_parts(
        bytes: String,
        ends: Vec<u32>,
        wraps: Vec<usize>,
        codes: Option<Vec<u32>>,
    ) -> Result<Strings, &'static str> {
        if wraps.windows(2).any(|w| w[0] > w[1]) || wraps.last().is_some_and(|&w| w > ends.len()) {
            return Err("wrap points out of order");
        }
        let strings = Strings { bytes, ends, wraps, codes: None };
        let mut previous = 0;
        for i in 0..strings.ends.len() {
            let end = strings.end(i);
            if end < previous || end > strings.bytes.len() || !strings.bytes.is_char_boundary(end) {
                return Err("string ends out of order, past the text or inside a character");
            }
            previous = end;
        }
        if previous != strings.bytes.len() {
            return Err("text after the last string");
        }
        let stored = strings.ends.len();
        if let Some(codes) = &codes
            && codes.iter().any(|&c| c != Strings::NONE && c as usize >= stored)
        {
            return Err("a code past the distinct values");
        }
        Ok(Strings { codes, ..strings })
    }

    /// For a coded column, the code of each row and the distinct values they index.
    pub fn codes(&self) -> Option<(&[u32], impl ExactSizeIterator<Item = &str> + '_)> {
        let codes = self.codes.as_deref()?;
        Some((codes, (0..self.ends.len()).map(|i| self.stored(i))))
    }
}

/// A column's values by storage type; a missing cell holds a placeholder (0, false, "").
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    /// Every cell is missing.
    Empty(usize),
    Boolean(Vec<bool>),
    Integer(Vec<i64>),
    /// Decimals, currency amounts and percentages (as fractions).
    Float(Vec<f64>),
    /// Days since 1970-01-01.
    Date(Vec<i64>),
    /// Microseconds since 1970-01-01T00:00:00 (UTC when the source gave an offset).
    DateTime(Vec<i64>),
    Text(Strings),
}

impl Values {
    pub fn len(&self) -> usize {
        match self {
            Values::Empty(n) => *n,
            Values::Boolean(v) => v.len(),
            Values::Integer(v) => v.len(),
            Values::Float(v) => v.len(),
            Values::Date(v) | Values::DateTime(v) => v.len(),
            Values::Text(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a column means, with the format it was read in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Kind {
    /// No cell has a value.
    Empty,
    Boolean,
    Integer {
        decimal_mark: DecimalMark,
        grouped: bool,
    },
    Decimal {
        decimal_mark: DecimalMark,
        grouped: bool,
    },
    /// Amounts with a currency symbol or code; `symbols` lists those seen.
    Currency {
        decimal_mark: DecimalMark,
        symbols: Vec<String>,
    },
    /// Percent strings, stored as fractions (`12.5%` is 0.125).
    Percent {
        decimal_mark: DecimalMark,
    },
    Date {
        order: DateOrder,
        separator: char,
    },
    DateTime {
        order: DateOrder,
        separator: char,
    },
    /// Few distinct values, each repeated.
    Category,
    /// Free text.
    Text,
    /// Codes that name a thing (order numbers, zip codes with leading zeros): unique or
    /// nearly, compared as strings, never summed.
    Identifier,
}

impl Kind {
    /// The name used in reports and in the canonical hash (the format is not part of it).
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Empty => "empty",
            Kind::Boolean => "boolean",
            Kind::Integer { .. } => "integer",
            Kind::Decimal { .. } => "decimal",
            Kind::Currency { .. } => "currency",
            Kind::Percent { .. } => "percent",
            Kind::Date { .. } => "date",
            Kind::DateTime { .. } => "datetime",
            Kind::Category => "category",
            Kind::Text => "text",
            Kind::Identifier => "identifier",
        }
    }

    /// Stored as strings.
    pub fn is_text(&self) -> bool {
        matches!(self, Kind::Category | Kind::Text | Kind::Identifier)
    }

    /// A quantity that can be summed or averaged.
    pub fn is_numeric(&self) -> bool {
        matches!(self, Kind::Integer { .. } | Kind::Decimal { .. } | Kind::Currency { .. } | Kind::Percent { .. })
    }
}

/// What a column is for in an analysis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Names a row or refers to another table's row.
    Id,
    /// Money or a quantity worth totalling.
    Amount,
    /// When something happened.
    Date,
    /// A grouping.
    Category,
    /// Words.
    Text,
    /// Personal data: never shown unredacted.
    Pii,
    /// A measurement without a more specific role.
    Measure,
    /// Nothing to analyse (an empty column).
    None,
}

/// One column of a table.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    pub name: String,
    pub kind: Chosen<Kind>,
    pub role: Chosen<Role>,
    pub values: Values,
    pub validity: Validity,
}

impl Column {
    /// The column's values as `f64` (integers, decimals, currency, percent, booleans as
    /// 0/1, dates as days), `None` for a missing cell or a text column.
    pub fn number(&self, row: usize) -> Option<f64> {
        if self.validity.is_missing(row) {
            return None;
        }
        match &self.values {
            Values::Boolean(v) => Some(f64::from(u8::from(v[row]))),
            Values::Integer(v) => Some(v[row] as f64),
            Values::Float(v) => Some(v[row]),
            Values::Date(v) | Values::DateTime(v) => Some(v[row] as f64),
            Values::Empty(_) | Values::Text(_) => None,
        }
    }

    /// The canonical hash of this column's typed content: kind name, then each cell.
    pub(crate) fn content_hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.kind.value.name().as_bytes());
        h.update([0]);
        let rows = self.values.len();
        // Missing cells are one tag byte; present ones a tag and their canonical bytes.
        let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
        for row in 0..rows {
            if self.validity.is_missing(row) {
                buf.push(0);
            } else {
                buf.push(1);
                match &self.values {
                    Values::Empty(_) => {}
                    Values::Boolean(v) => buf.push(u8::from(v[row])),
                    Values::Integer(v) => buf.extend_from_slice(&v[row].to_le_bytes()),
                    // +0.0 and -0.0 are the same amount.
                    Values::Float(v) => buf.extend_from_slice(&(v[row] + 0.0).to_bits().to_le_bytes()),
                    Values::Date(v) | Values::DateTime(v) => buf.extend_from_slice(&v[row].to_le_bytes()),
                    Values::Text(s) => {
                        let t = s.get(row);
                        buf.extend_from_slice(&(t.len() as u64).to_le_bytes());
                        buf.extend_from_slice(t.as_bytes());
                    }
                }
            }
            if buf.len() >= 60 * 1024 {
                h.update(&buf);
                buf.clear();
            }
        }
        h.update(&buf);
        h.finalize().into()
    }
}

/// The canonical content hash of a table: column names, kinds and typed values, in order.
/// It does not depend on how the file was written (line endings, quoting, delimiter,
/// encoding, number or date format), only on what it says.
pub fn data_hash(columns: &[Column], rows: usize, threads: usize) -> String {
    data_hash_of(columns, rows, crate::par::map(columns, threads, Column::content_hash))
}

/// [`data_hash`] from each column's [`Column::content_hash`], already computed.
pub(crate) fn data_hash_of(columns: &[Column], rows: usize, hashes: Vec<[u8; 32]>) -> String {
    let mut h = Sha256::new();
    h.update(b"vigil-table-v1\0");
    h.update((columns.len() as u64).to_le_bytes());
    h.update((rows as u64).to_le_bytes());
    for (column, hash) in columns.iter().zip(hashes) {
        h.update((column.name.len() as u64).to_le_bytes());
        h.update(column.name.as_bytes());
        h.update(hash);
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// The canonical content hash of several named tables (the sheets of a workbook), from
/// each one's [`data_hash`], in their order: what a dataset version made of more than one
/// table records. Renaming, reordering, adding or dropping a table changes it.
pub fn tables_hash<'a>(tables: impl ExactSizeIterator<Item = (&'a str, &'a str)>) -> String {
    let mut h = Sha256::new();
    h.update(b"vigil-tables-v1\0");
    h.update((tables.len() as u64).to_le_bytes());
    for (name, hash) in tables {
        for part in [name, hash] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_hash_covers_every_name_hash_and_the_order() {
        let of = |tables: &[(&str, &str)]| tables_hash(tables.iter().copied());
        let book = of(&[("Orders", "sha256:aa"), ("Vendors", "sha256:bb")]);
        assert!(book.starts_with("sha256:") && book.len() == 7 + 64, "{book}");
        assert_eq!(book, of(&[("Orders", "sha256:aa"), ("Vendors", "sha256:bb")]));
        for other in [
            of(&[("Vendors", "sha256:bb"), ("Orders", "sha256:aa")]),
            of(&[("Orders", "sha256:aa"), ("Vendor", "sha256:bb")]),
            of(&[("Orders", "sha256:aa"), ("Vendors", "sha256:bc")]),
            of(&[("Orders", "sha256:aa")]),
            // Lengths are hashed, so parts cannot slide into each other.
            of(&[("Orderssha256:a", "a"), ("Vendors", "sha256:bb")]),
        ] {
            assert_ne!(book, other);
        }
    }

    fn text_column(values: Strings, missing: Vec<bool>) -> Column {
        Column {
            name: "status".into(),
            kind: Chosen { value: Kind::Category, evidence: String::new() },
            role: Chosen { value: Role::Category, evidence: String::new() },
            values: Values::Text(values),
            validity: Validity::from_missing(missing),
        }
    }

    #[test]
    fn coded_strings_read_and_hash_as_plain_ones() {
        let rows = ["open", "paid", "", "open", "void"];
        let mut plain = Strings::default();
        rows.iter().for_each(|r| plain.push(r));
        let mut distinct = Strings::default();
        ["open", "paid", "void"].iter().for_each(|r| distinct.push(r));
        let coded = Strings::coded(distinct, vec![0, 1, Strings::NONE, 0, 2]);
        assert_eq!(coded.len(), 5);
        assert_eq!(coded.iter().collect::<Vec<_>>(), rows);
        let (codes, values) = coded.codes().expect("coded");
        assert_eq!((codes.len(), values.collect::<Vec<_>>()), (5, vec!["open", "paid", "void"]));
        assert!(plain.codes().is_none());
        let missing = vec![false, false, true, false, false];
        let hash = |s: Strings| data_hash(&[text_column(s, missing.clone())], 5, 1);
        assert_eq!(hash(plain), hash(coded));
    }
}

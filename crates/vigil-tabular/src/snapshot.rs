//! A typed table saved to a file and read back: the ingest writes one so the steps after
//! it in the same run (profile, analyses) start from the typed columns instead of parsing
//! the input again.
//!
//! It is a private hand-over between two processes of one Vigil version, not an exchange
//! format: a magic and version open it, a JSON header gives each column's name, kind, role
//! and storage, and the values follow as little-endian arrays. Reading trusts nothing: every
//! length is checked against what is left of the file before anything is allocated, text
//! must be UTF-8 cut at character boundaries, codes must index distinct values, numbers
//! must be finite and dates within the years ingest reads (0 to 9999), and the caller
//! compares the table's canonical hash with the one the ingest reported.
//!
//! The hash covers names, kinds and values, not roles or evidence: the caller compares
//! those with the schema the ingest reported (its response, which the run records), so a
//! snapshot whose roles were changed is passed over like a damaged one.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::sniff::Chosen;
use crate::table::{Column, Kind, Role, Strings, Validity, Values};

const MAGIC: &[u8; 12] = b"vigil-table\0";
const VERSION: u32 = 1;
/// The largest header accepted (names, kinds and evidence of every column).
const HEADER_BYTES_MAX: u64 = 64 << 20;
/// The most columns accepted: as many as ingest reads.
const COLUMNS_MAX: usize = 16_384;
/// Days since 1970-01-01 of the first and last days ingest reads (years 0 to 9999), with a
/// day's margin each side for a time zone offset.
const DAYS: std::ops::RangeInclusive<i64> = -719_529..=2_932_897;
const MICROS_PER_DAY: i64 = 86_400_000_000;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot read or write the snapshot: {0}")]
    Io(#[from] io::Error),
    #[error("not a table snapshot of this version")]
    Foreign,
    #[error("the snapshot is damaged: {0}")]
    Damaged(String),
    #[error("a table of {0} rows without columns is not snapshotted")]
    RowsWithoutColumns(usize),
}

fn damaged(what: impl Into<String>) -> SnapshotError {
    SnapshotError::Damaged(what.into())
}

#[derive(Serialize, Deserialize)]
struct Header {
    rows: u64,
    columns: Vec<ColumnHeader>,
}

#[derive(Serialize, Deserialize)]
struct ColumnHeader {
    name: String,
    kind: Chosen<Kind>,
    role: Chosen<Role>,
    storage: Storage,
    /// Whether a flag per row for missing cells follows.
    flags: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Storage {
    Empty,
    Boolean,
    Integer,
    Float,
    Date,
    DateTime,
    /// `stored` strings in `bytes` bytes, `wraps` wrap points, codes per row if `coded`.
    Text {
        bytes: u64,
        stored: u64,
        wraps: u64,
        coded: bool,
    },
}

/// The size in bytes of the values of a snapshot of `columns` (the header aside), so a
/// writer can decline before writing more than it may.
pub fn values_size(columns: &[Column], rows: usize) -> u64 {
    let rows = rows as u64;
    columns
        .iter()
        .map(|c| {
            let flags = if c.validity.flags().is_some() { rows } else { 0 };
            flags
                + match &c.values {
                    Values::Empty(_) => 0,
                    Values::Boolean(_) => rows,
                    Values::Integer(_) | Values::Float(_) | Values::Date(_) | Values::DateTime(_) => rows * 8,
                    Values::Text(s) => {
                        let (bytes, ends, wraps, codes) = s.parts();
                        bytes.len() as u64
                            + ends.len() as u64 * 4
                            + wraps.len() as u64 * 8
                            + codes.map_or(0, |_| rows * 4)
                    }
                }
        })
        .sum()
}

/// Writes `columns` (all `rows` long) to `path`.
pub fn write(path: &Path, columns: &[Column], rows: usize) -> Result<(), SnapshotError> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    write_to(&mut out, columns, rows)?;
    out.flush()?;
    Ok(())
}

/// Writes `columns` (all `rows` long) to `out`. Never what [`read_from`] would refuse: rows
/// without columns (an object with no keys, `{}`, is such a row) take no bytes, so the
/// reader cannot bound their count by the file's size and refuses them; the writer refuses
/// them first, and a reader of such a table reads its input again.
pub fn write_to(mut out: impl Write, columns: &[Column], rows: usize) -> Result<(), SnapshotError> {
    if columns.is_empty() && rows > 0 {
        return Err(SnapshotError::RowsWithoutColumns(rows));
    }
    let header = Header {
        rows: rows as u64,
        columns: columns
            .iter()
            .map(|c| ColumnHeader {
                name: c.name.clone(),
                kind: c.kind.clone(),
                role: c.role.clone(),
                storage: match &c.values {
                    Values::Empty(_) => Storage::Empty,
                    Values::Boolean(_) => Storage::Boolean,
                    Values::Integer(_) => Storage::Integer,
                    Values::Float(_) => Storage::Float,
                    Values::Date(_) => Storage::Date,
                    Values::DateTime(_) => Storage::DateTime,
                    Values::Text(s) => {
                        let (bytes, ends, wraps, codes) = s.parts();
                        Storage::Text {
                            bytes: bytes.len() as u64,
                            stored: ends.len() as u64,
                            wraps: wraps.len() as u64,
                            coded: codes.is_some(),
                        }
                    }
                },
                flags: c.validity.flags().is_some(),
            })
            .collect(),
    };
    let header = serde_json::to_vec(&header).map_err(|e| damaged(e.to_string()))?;
    out.write_all(MAGIC)?;
    out.write_all(&VERSION.to_le_bytes())?;
    out.write_all(&(header.len() as u64).to_le_bytes())?;
    out.write_all(&header)?;
    for c in columns {
        if let Some(flags) = c.validity.flags() {
            write_array(&mut out, flags, |f| [u8::from(*f)])?;
        }
        match &c.values {
            Values::Empty(_) => {}
            Values::Boolean(v) => write_array(&mut out, v, |b| [u8::from(*b)])?,
            Values::Integer(v) | Values::Date(v) | Values::DateTime(v) => {
                write_array(&mut out, v, |x| x.to_le_bytes())?
            }
            Values::Float(v) => write_array(&mut out, v, |x| x.to_bits().to_le_bytes())?,
            Values::Text(s) => {
                let (bytes, ends, wraps, codes) = s.parts();
                out.write_all(bytes.as_bytes())?;
                write_array(&mut out, ends, |e| e.to_le_bytes())?;
                write_array(&mut out, wraps, |w| (*w as u64).to_le_bytes())?;
                if let Some(codes) = codes {
                    write_array(&mut out, codes, |c| c.to_le_bytes())?;
                }
            }
        }
    }
    Ok(())
}

fn write_array<T, const N: usize>(out: &mut impl Write, items: &[T], bytes: impl Fn(&T) -> [u8; N]) -> io::Result<()> {
    let mut buf = Vec::with_capacity(64 * 1024);
    for chunk in items.chunks(64 * 1024 / N) {
        buf.clear();
        for item in chunk {
            buf.extend_from_slice(&bytes(item));
        }
        out.write_all(&buf)?;
    }
    Ok(())
}

/// Reads a snapshot: the columns and the number of rows.
pub fn read(path: &Path) -> Result<(Vec<Column>, usize), SnapshotError> {
    let file = File::open(path)?;
    let size = file.metadata()?.len();
    read_from(BufReader::with_capacity(1 << 20, file), size)
}

/// Reads a snapshot of `size` bytes from `input`.
pub fn read_from(input: impl Read, size: u64) -> Result<(Vec<Column>, usize), SnapshotError> {
    let mut input = Bounded { inner: input, left: size };
    let mut magic = [0u8; 12];
    let mut version = [0u8; 4];
    if input.read_exact(&mut magic).is_err() || input.read_exact(&mut version).is_err() {
        return Err(SnapshotError::Foreign);
    }
    if &magic != MAGIC || u32::from_le_bytes(version) != VERSION {
        return Err(SnapshotError::Foreign);
    }
    let header_len = input.u64()?;
    if header_len > HEADER_BYTES_MAX {
        return Err(damaged(format!("a header of {header_len} bytes")));
    }
    let header: Header =
        serde_json::from_slice(&input.bytes(header_len, 1)?).map_err(|e| damaged(format!("header: {e}")))?;
    let rows = header.rows;
    if header.columns.len() > COLUMNS_MAX {
        return Err(damaged(format!("{} columns, more than {COLUMNS_MAX}", header.columns.len())));
    }
    // Every row takes at least a byte in every column (a value, a code or a flag), so a
    // table claiming more rows than the file has bytes is not one.
    if rows > size || (header.columns.is_empty() && rows > 0) {
        return Err(damaged(format!("{rows} rows in {} columns and {size} bytes", header.columns.len())));
    }
    let mut columns = Vec::with_capacity(header.columns.len().min(16_384));
    for c in header.columns {
        let name = c.name;
        let bad = |what: &str| damaged(format!("column {name:?}: {what}"));
        if !stores(&c.kind.value, &c.storage) {
            return Err(bad("its kind is not what its values are stored as"));
        }
        let validity = if c.flags {
            let flags = input.bytes(rows, 1)?;
            if flags.iter().any(|&f| f > 1) {
                return Err(bad("a missing-cell flag that is neither 0 nor 1"));
            }
            Validity::from_missing(flags.into_iter().map(|f| f == 1).collect())
        } else {
            Validity::default()
        };
        let values = match c.storage {
            Storage::Empty => Values::Empty(usize::try_from(rows).map_err(|_| bad("too many rows"))?),
            Storage::Boolean => {
                let v = input.bytes(rows, 1)?;
                if v.iter().any(|&b| b > 1) {
                    return Err(bad("a boolean that is neither 0 nor 1"));
                }
                Values::Boolean(v.into_iter().map(|b| b == 1).collect())
            }
            Storage::Integer => Values::Integer(input.array(rows, i64::from_le_bytes)?),
            Storage::Date => Values::Date(input.array(rows, i64::from_le_bytes)?),
            Storage::DateTime => Values::DateTime(input.array(rows, i64::from_le_bytes)?),
            Storage::Float => Values::Float(input.array(rows, |b| f64::from_bits(u64::from_le_bytes(b)))?),
            Storage::Text { bytes, stored, wraps, coded } => {
                let text = String::from_utf8(input.bytes(bytes, 1)?).map_err(|_| bad("text that is not UTF-8"))?;
                let ends = input.array(stored, u32::from_le_bytes)?;
                let wraps = input.array(wraps, u64::from_le_bytes)?;
                let wraps =
                    wraps.into_iter().map(usize::try_from).collect::<Result<_, _>>().map_err(|_| bad("wraps"))?;
                let codes = if coded { Some(input.array(rows, u32::from_le_bytes)?) } else { None };
                let strings = Strings::from_parts(text, ends, wraps, codes).map_err(&bad)?;
                if !coded && strings.len() as u64 != rows {
                    return Err(bad("fewer or more strings than rows"));
                }
                Values::Text(strings)
            }
        };
        if !placeholders_in_missing_cells(&values, &validity) {
            return Err(bad("a missing cell that holds a value"));
        }
        if !within_range(&values) {
            return Err(bad("a value ingest never reads (not finite, or a date outside years 0 to 9999)"));
        }
        if let Values::Text(s) = &values
            && let Some((_, distinct)) = s.codes()
        {
            let mut seen = std::collections::HashSet::new();
            if !distinct.into_iter().all(|v| seen.insert(v)) {
                return Err(bad("a value coded twice"));
            }
        }
        if matches!(values, Values::Empty(_)) && validity.missing_count() as u64 != rows {
            return Err(bad("an empty column whose cells are not all missing"));
        }
        columns.push(Column { name, kind: c.kind, role: c.role, values, validity });
    }
    if input.left != 0 {
        return Err(damaged(format!("{} bytes after the last column", input.left)));
    }
    Ok((columns, usize::try_from(rows).map_err(|_| damaged("too many rows"))?))
}

/// Whether every number is finite and every date within the years ingest reads.
fn within_range(values: &Values) -> bool {
    let micros = (DAYS.start() * MICROS_PER_DAY)..=((DAYS.end() + 1) * MICROS_PER_DAY - 1);
    match values {
        Values::Float(v) => v.iter().all(|x| x.is_finite()),
        Values::Date(v) => v.iter().all(|d| DAYS.contains(d)),
        Values::DateTime(v) => v.iter().all(|t| micros.contains(t)),
        Values::Empty(_) | Values::Boolean(_) | Values::Integer(_) | Values::Text(_) => true,
    }
}

/// Whether `storage` is how ingest stores a column of `kind`.
fn stores(kind: &Kind, storage: &Storage) -> bool {
    match kind {
        Kind::Empty => matches!(storage, Storage::Empty),
        Kind::Boolean => matches!(storage, Storage::Boolean),
        Kind::Integer { .. } => matches!(storage, Storage::Integer),
        Kind::Decimal { .. } | Kind::Currency { .. } | Kind::Percent { .. } => matches!(storage, Storage::Float),
        Kind::Date { .. } => matches!(storage, Storage::Date),
        Kind::DateTime { .. } => matches!(storage, Storage::DateTime),
        Kind::Category | Kind::Text | Kind::Identifier => matches!(storage, Storage::Text { .. }),
    }
}

/// Whether every missing cell holds its placeholder (0, false, "" or no code), as ingest
/// leaves it: the canonical hash does not cover those cells, so this is their check.
fn placeholders_in_missing_cells(values: &Values, validity: &Validity) -> bool {
    let Some(flags) = validity.flags() else { return true };
    let missing = || flags.iter().enumerate().filter(|(_, m)| **m).map(|(row, _)| row);
    match values {
        Values::Empty(_) => true,
        Values::Boolean(v) => missing().all(|row| !v[row]),
        Values::Integer(v) | Values::Date(v) | Values::DateTime(v) => missing().all(|row| v[row] == 0),
        Values::Float(v) => missing().all(|row| v[row].to_bits() == 0),
        Values::Text(s) => match s.codes() {
            Some((codes, _)) => missing().all(|row| codes[row] == Strings::NONE),
            None => missing().all(|row| s.get(row).is_empty()),
        },
    }
}

/// A reader that knows how much of the file is left, so no length read from it can make
/// an allocation larger than the file.
struct Bounded<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Bounded<R> {
    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), SnapshotError> {
        if (buf.len() as u64) > self.left {
            return Err(damaged("it ends early"));
        }
        self.inner.read_exact(buf).map_err(|_| damaged("it ends early"))?;
        self.left -= buf.len() as u64;
        Ok(())
    }

    fn u64(&mut self) -> Result<u64, SnapshotError> {
        let mut b = [0u8; 8];
        self.read_exact(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// `count` items of `width` bytes, as raw bytes.
    fn bytes(&mut self, count: u64, width: u64) -> Result<Vec<u8>, SnapshotError> {
        let len = count.checked_mul(width).filter(|&n| n <= self.left).ok_or_else(|| damaged("it ends early"))?;
        let mut buf = vec![0u8; usize::try_from(len).map_err(|_| damaged("too large"))?];
        self.read_exact(&mut buf)?;
        Ok(buf)
    }

    fn array<T, const N: usize>(&mut self, count: u64, from: impl Fn([u8; N]) -> T) -> Result<Vec<T>, SnapshotError> {
        let raw = self.bytes(count, N as u64)?;
        Ok(raw.chunks_exact(N).map(|c| from(c.try_into().unwrap_or([0; N]))).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{IngestOptions, ingest_delimited};
    use crate::table::data_hash;

    fn dataset() -> crate::Dataset {
        let csv = "id,amount,day,at,paid,status,note,empty\n\
                   A1,\"1,200.50\",2024-01-31,2024-01-31 10:00:00,true,open,héllo,\n\
                   A2,-3,2024-02-29,2024-02-29 23:59:59,false,closed,,\n\
                   A3,,,,,open,\"multi\nline\",\n";
        ingest_delimited(csv.as_bytes(), &IngestOptions::default()).expect("ingest")
    }

    /// Found by the fuzz target `tabular_snapshot` (`}{}`: the JSON `{}` is one row of no
    /// columns): the writer wrote what the reader refuses. Now neither takes such rows, and
    /// an empty table still round-trips.
    #[test]
    fn rows_without_columns_are_refused_by_the_writer_as_by_the_reader() {
        let mut out = Vec::new();
        assert!(matches!(write_to(&mut out, &[], 1), Err(SnapshotError::RowsWithoutColumns(1))));
        assert!(out.is_empty(), "nothing is written");
        write_to(&mut out, &[], 0).expect("an empty table");
        assert_eq!(read_from(&out[..], out.len() as u64).expect("reads").1, 0);
    }

    #[test]
    fn a_table_reads_back_as_written() {
        let data = dataset();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("table.snapshot");
        write(&path, &data.columns, data.rows).expect("write");
        let (columns, rows) = read(&path).expect("read");
        assert_eq!((columns.as_slice(), rows), (data.columns.as_slice(), data.rows));
        assert_eq!(data_hash(&columns, rows, 1), data.data_hash);
        let kinds: Vec<&str> = columns.iter().map(|c| c.kind.value.name()).collect();
        assert!(kinds.contains(&"date") && kinds.contains(&"datetime") && kinds.contains(&"boolean"), "{kinds:?}");
        assert!(columns.iter().any(|c| c.validity.missing_count() > 0));
    }

    #[test]
    fn dates_are_accepted_within_the_years_ingest_reads() {
        use crate::value::days_from_civil;
        assert_eq!((*DAYS.start(), *DAYS.end()), (days_from_civil(0, 1, 1) - 1, days_from_civil(9999, 12, 31) + 1));
        assert!(within_range(&Values::Date(vec![*DAYS.start(), 0, *DAYS.end()])));
        assert!(!within_range(&Values::Date(vec![i64::MAX])));
        assert!(!within_range(&Values::DateTime(vec![(DAYS.end() + 1) * MICROS_PER_DAY])));
        assert!(!within_range(&Values::Float(vec![1.0, f64::NAN])));
    }

    #[test]
    fn the_size_is_known_before_writing() {
        let data = dataset();
        let mut out = Vec::new();
        write_to(&mut out, &data.columns, data.rows).expect("write");
        let header = u64::from_le_bytes(out[16..24].try_into().expect("8"));
        assert_eq!(values_size(&data.columns, data.rows), out.len() as u64 - 24 - header);
    }

    #[test]
    fn damaged_or_foreign_files_are_refused_never_trusted() {
        let data = dataset();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("table.snapshot");
        write(&path, &data.columns, data.rows).expect("write");
        let good = std::fs::read(&path).expect("bytes");
        let header_end = 24 + u64::from_le_bytes(good[16..24].try_into().expect("8")) as usize;

        std::fs::write(&path, b"id,amount\n1,2\n").expect("write");
        assert!(matches!(read(&path), Err(SnapshotError::Foreign)));
        // Every truncation is refused.
        for cut in [10, 20, header_end - 1, header_end + 3, good.len() - 1] {
            std::fs::write(&path, &good[..cut]).expect("write");
            assert!(read(&path).is_err(), "cut at {cut}");
        }
        // Trailing bytes, and a header claiming more rows than the file holds.
        std::fs::write(&path, [good.as_slice(), b"x"].concat()).expect("write");
        assert!(matches!(read(&path), Err(SnapshotError::Damaged(_))));
        let text = String::from_utf8_lossy(&good[24..header_end]).replace("\"rows\":3", "\"rows\":300000000000");
        let mut huge = good[..16].to_vec();
        huge.extend_from_slice(&(text.len() as u64).to_le_bytes());
        huge.extend_from_slice(text.as_bytes());
        huge.extend_from_slice(&good[header_end..]);
        std::fs::write(&path, &huge).expect("write");
        assert!(matches!(read(&path), Err(SnapshotError::Damaged(_))), "no allocation past the file");
        // Flipping any byte of the values is refused or changes the canonical hash (a
        // missing cell's placeholder, which the hash does not cover, is checked apart).
        for at in header_end..good.len() {
            let mut bad = good.clone();
            bad[at] ^= 0x41;
            std::fs::write(&path, &bad).expect("write");
            if let Ok((columns, rows)) = read(&path) {
                assert_ne!(data_hash(&columns, rows, 1), data.data_hash, "byte {at}");
            }
        }
    }
}

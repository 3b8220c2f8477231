//! JSON tables: an array of objects, or one object per line (NDJSON / JSON Lines), read
//! as a stream into the same raw text columns delimited files give, so inference, the
//! canonical hash and everything after are shared.
//!
//! Each record is parsed on its own and dropped once its cells are copied out; the file
//! is never held whole. Columns are the union of the records' keys in order of first
//! appearance (a record without a key has a missing cell there); nested objects are
//! flattened to dotted names (`customer.id`), arrays kept as their JSON text. A line of
//! JSON Lines that does not parse, or a record that is not an object, is counted and
//! reported with its line number and left out; a syntax error inside an array cannot be
//! resynchronised and stops the read with its line and column.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt::{self, Write as _};
use std::io::{self, BufRead, BufReader, Read};
use std::ops::Range;
use std::rc::Rc;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::read::{LongRecord, Problems, RawColumn, RawTable, ReadOptions};
use crate::{FastMap, IngestError, par};

/// How the JSON holds its records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JsonLayout {
    /// `[{...}, {...}]`
    Array,
    /// One object per line.
    Lines,
}

/// A record left out of the table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Malformed {
    /// 1-based line of the record (for an array element, the line where it ends).
    pub line: u64,
    pub reason: String,
}

/// The layout of JSON text starting `sample` (after any byte-order mark), if it is JSON:
/// an array, or lines whose first parses as an object.
pub fn detect_layout(sample: &str) -> Option<JsonLayout> {
    let start = sample.trim_start_matches('\u{feff}').trim_start();
    // `[` then a record or the end: a CSV header like `[Date],[Amount]` is not JSON.
    if let Some(rest) = start.strip_prefix('[')
        && (rest.trim_start().starts_with(['{', ']']) || rest.trim().is_empty())
    {
        return Some(JsonLayout::Array);
    }
    let first = start.lines().next()?;
    let mut parsed = Parsed::default();
    let object =
        first.starts_with('{') && parse_line(first, &ColumnIndex::default(), &mut parsed).is_ok_and(|r| r.is_ok());
    object.then_some(JsonLayout::Lines)
}

/// Reads JSON records from UTF-8 text into raw columns.
pub(crate) fn read_json(input: impl Read, layout: JsonLayout, options: &ReadOptions) -> Result<RawTable, IngestError> {
    let mut builder = Builder::new(options.max_examples, options.max_columns);
    let mut reader = BufReader::with_capacity(1 << 16, input);
    skip_bom(&mut reader).map_err(IngestError::Read)?;
    match layout {
        JsonLayout::Lines => read_lines(&mut reader, &mut builder, options)?,
        JsonLayout::Array => {
            let position = Rc::new(Position::default());
            let counting = Counting { inner: reader, position: position.clone(), cap: options.max_record_bytes as u64 };
            let mut de = serde_json::Deserializer::from_reader(counting);
            let records = Records { builder: &mut builder, position: &position, parsed: Parsed::default() };
            if let Err(e) = de.deserialize_seq(records).and_then(|()| de.end()) {
                if let Some(stopped) = builder.failed.take() {
                    return Err(stopped);
                }
                return Err(if position.over_cap.get() {
                    IngestError::RecordTooLong { cap: options.max_record_bytes, line: position.lines.get() + 1 }
                } else {
                    json_error(&e)
                });
            }
        }
    }
    Ok(builder.finish())
}

fn json_error(e: &serde_json::Error) -> IngestError {
    match e.classify() {
        serde_json::error::Category::Io => IngestError::Read(io::Error::other(e.to_string())),
        serde_json::error::Category::Eof if e.line() == 1 && e.column() == 0 => IngestError::Empty,
        _ => IngestError::Json { line: e.line() as u64, column: e.column() as u64, message: e.to_string() },
    }
}

fn skip_bom(reader: &mut impl BufRead) -> io::Result<()> {
    if reader.fill_buf()?.starts_with("\u{feff}".as_bytes()) {
        reader.consume(3);
    }
    Ok(())
}

/// Where the array reader is: lines passed, and bytes since the current element began.
#[derive(Debug, Default)]
struct Position {
    lines: Cell<u64>,
    since_element: Cell<u64>,
    over_cap: Cell<bool>,
}

/// A reader that keeps [`Position`] (serde_json reads through it a byte at a time, so the
/// count is exact) and refuses to let one element grow past the record cap.
struct Counting<R> {
    inner: R,
    position: Rc<Position>,
    cap: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let p = &self.position;
        p.lines.set(p.lines.get() + memchr::memchr_iter(b'\n', &buf[..n]).count() as u64);
        p.since_element.set(p.since_element.get() + n as u64);
        if p.since_element.get() > self.cap {
            p.over_cap.set(true);
            return Err(io::Error::other("a record is longer than the cap"));
        }
        Ok(n)
    }
}

/// Lines read but not parsed yet: their text one after the other, and each line's number
/// and span.
#[derive(Debug, Default)]
struct Batch {
    text: Vec<u8>,
    lines: Vec<(u64, Range<usize>)>,
}

impl Batch {
    /// Whether it holds about `limit` bytes, each line weighing its text and [`LINE_WEIGHT`].
    fn is_full(&self, limit: usize) -> bool {
        self.text.len() + self.lines.len() * LINE_WEIGHT >= limit
    }
}

/// What a run of consecutive lines parsed into, every record's cells in one [`Parsed`].
#[derive(Debug, Default)]
struct Run {
    parsed: Parsed,
    lines: Vec<(u64, Outcome)>,
}

#[derive(Debug)]
enum Outcome {
    /// A record: its next this many cells.
    Record(usize),
    Malformed(String),
    Blank,
}

/// What a batched line costs beside its text (its entry, and its outcome once parsed), so
/// blank or tiny lines fill a batch too.
const LINE_WEIGHT: usize = 64;
/// The largest batch, whatever the block size asked for.
const BATCH_MAX_BYTES: usize = 64 << 20;

/// One line at a time, never holding more than the record cap of one. Lines gather into
/// batches of about `block_bytes` (text plus [`LINE_WEIGHT`] per line), each parsed on up
/// to `threads` threads (a run of lines each) and added to the table in order, so the
/// result does not depend on either.
fn read_lines(reader: &mut impl BufRead, builder: &mut Builder, options: &ReadOptions) -> Result<(), IngestError> {
    let limit = options.block_bytes.min(BATCH_MAX_BYTES);
    let mut line = Vec::new();
    let mut batch = Batch::default();
    let mut number = 0u64;
    loop {
        line.clear();
        number += 1;
        let (read, too_long) = match read_capped_line(reader, &mut line, options.max_record_bytes) {
            Ok(read) => read,
            Err(e) => {
                // What was read before the failure is judged first, as line by line it was.
                add_batch(&batch, builder, options.threads)?;
                return Err(IngestError::Read(e));
            }
        };
        if read == 0 {
            return add_batch(&batch, builder, options.threads);
        }
        if too_long {
            builder.problems.too_long.add(LongRecord { line: number, bytes: read }, builder.max_examples);
            continue;
        }
        let start = batch.text.len();
        batch.text.extend_from_slice(&line);
        batch.lines.push((number, start..batch.text.len()));
        if batch.is_full(limit) {
            add_batch(&batch, builder, options.threads)?;
            batch.text.clear();
            batch.lines.clear();
        }
    }
}

/// Parses a batch's lines in runs, in parallel, then adds them to the table in order.
fn add_batch(batch: &Batch, builder: &mut Builder, threads: usize) -> Result<(), IngestError> {
    let threads = threads.max(1);
    let runs: Vec<&[(u64, Range<usize>)]> = batch.lines.chunks(batch.lines.len().div_ceil(threads).max(1)).collect();
    let index = &builder.index;
    let parsed = par::map(&runs, threads, |lines| parse_run(&batch.text, lines, index));
    for run in parsed {
        let mut cells = run.parsed.cells.into_iter();
        for (number, outcome) in run.lines {
            match outcome {
                Outcome::Record(n) => builder.record(&run.parsed.text, cells.by_ref().take(n), number)?,
                Outcome::Malformed(reason) => builder.malformed(number, reason),
                Outcome::Blank => builder.problems.blank_lines += 1,
            }
        }
    }
    Ok(())
}

/// Parses consecutive lines of `text`. New keys stay names until their record is added.
fn parse_run(text: &[u8], lines: &[(u64, Range<usize>)], index: &ColumnIndex) -> Run {
    let mut run = Run::default();
    for (number, span) in lines {
        let outcome = match std::str::from_utf8(&text[span.clone()]) {
            Err(e) => Outcome::Malformed(format!("not UTF-8 at byte {}", e.valid_up_to())),
            Ok(line) if line.trim().is_empty() => Outcome::Blank,
            Ok(line) => {
                let mark = run.parsed.mark();
                match parse_line(line.trim(), index, &mut run.parsed) {
                    Ok(Ok(())) => Outcome::Record(run.parsed.cells.len() - mark.1),
                    Ok(Err(what)) => {
                        run.parsed.truncate(mark);
                        Outcome::Malformed(not_a_record(what))
                    }
                    Err(e) => {
                        run.parsed.truncate(mark);
                        // A data error is the reader's refusal of well-formed JSON.
                        Outcome::Malformed(if e.is_data() {
                            format!("left out: {e}")
                        } else {
                            format!("not JSON: {e}")
                        })
                    }
                }
            }
        };
        run.lines.push((*number, outcome));
    }
    run
}

fn not_a_record(what: &str) -> String {
    format!("{what} where a record (an object) belongs")
}

/// One JSON Lines record appended to `parsed`, or what it was instead of an object (what
/// it appended before it failed is the caller's to drop).
fn parse_line(text: &str, index: &ColumnIndex, parsed: &mut Parsed) -> Result<Record, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let record = RecordSeed { index, parsed }.deserialize(&mut de)?;
    de.end()?;
    Ok(record)
}

/// Appends the next line (without its ending) to `line`, holding at most the cap and a
/// CRLF; past that the rest of the line is skipped unread into memory. Returns the bytes
/// the line took (ending included) and whether its content, without the ending, was over
/// the cap.
fn read_capped_line(reader: &mut impl BufRead, line: &mut Vec<u8>, cap: usize) -> io::Result<(u64, bool)> {
    let mut total = 0u64;
    // The last two bytes passed, to measure the content without a CRLF or LF ending.
    let mut tail = [0u8; 2];
    let mut ended = false;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        let (take, done) = match memchr::memchr(b'\n', buf) {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if total + take as u64 <= cap as u64 + 2 {
            line.extend_from_slice(&buf[..take]);
        } else {
            line.clear();
        }
        for &b in &buf[..take] {
            tail = [tail[1], b];
        }
        total += take as u64;
        reader.consume(take);
        if done {
            ended = true;
            break;
        }
    }
    let ending = match (ended, tail) {
        (true, [b'\r', b'\n']) if total >= 2 => 2,
        (true, _) => 1,
        (false, _) => 0,
    };
    if line.len() as u64 == total {
        line.truncate(line.len() - ending as usize);
    }
    Ok((total, total - ending > cap as u64))
}

/// The elements of a top-level array, each handed to the builder as it is parsed.
struct Records<'a> {
    builder: &'a mut Builder,
    position: &'a Position,
    parsed: Parsed,
}

impl<'de> Visitor<'de> for Records<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        loop {
            self.parsed.truncate((0, 0));
            let seed = RecordSeed { index: &self.builder.index, parsed: &mut self.parsed };
            let Some(record) = seq.next_element_seed(seed)? else { break };
            let line = self.position.lines.get() + 1;
            match record {
                Ok(()) => {
                    let Parsed { text, cells, .. } = &mut self.parsed;
                    if let Err(e) = self.builder.record(text, cells.drain(..), line) {
                        self.builder.failed = Some(e);
                        return Err(de::Error::custom("stopped"));
                    }
                }
                Err(what) => self.builder.malformed(line, not_a_record(what)),
            }
            self.position.since_element.set(0);
        }
        Ok(())
    }
}

/// Column names to their columns.
type ColumnIndex = FastMap<String, usize>;

/// The cells of the record being read, before it is known to be whole: each names a
/// column the table already has, or a new one (added only once the record parsed), and
/// where its text lies in `text`, one buffer for the record instead of a string per cell.
#[derive(Debug, Default)]
struct Parsed {
    text: String,
    cells: Vec<(Key, Range<usize>)>,
    /// Bytes of dotted names made for the record being read (see [`NESTED_NAMES_MAX`]).
    nested_names: usize,
}

/// Most bytes of dotted column names one record may flatten to. Each nested key's name
/// repeats its parents', so a long key over many nested ones would otherwise cost memory
/// quadratic in the record's size.
const NESTED_NAMES_MAX: usize = 1 << 20;

impl Parsed {
    /// Where the text and the cells end now.
    fn mark(&self) -> (usize, usize) {
        (self.text.len(), self.cells.len())
    }

    /// Drops what was added after `mark`.
    fn truncate(&mut self, (text, cells): (usize, usize)) {
        self.text.truncate(text);
        self.cells.truncate(cells);
    }
}

#[derive(Debug)]
enum Key {
    Known(usize),
    New(String),
}

/// Reads one record's cells into a [`Parsed`], in document order, nested objects flattened
/// to dotted names; anything but an object gives what it was instead.
struct RecordSeed<'a> {
    index: &'a ColumnIndex,
    parsed: &'a mut Parsed,
}

/// `Ok` when the value was a record (its cells are in the [`Parsed`]), else what it was.
type Record = Result<(), &'static str>;

impl<'de> DeserializeSeed<'de> for RecordSeed<'_> {
    type Value = Record;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Record, D::Error> {
        self.parsed.nested_names = 0;
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RecordSeed<'_> {
    type Value = Record;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a record")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Record, M::Error> {
        while let Some(name) = map.next_key_seed(Name)? {
            map.next_value_seed(CellSeed { name, index: self.index, parsed: self.parsed })?;
        }
        Ok(Ok(()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Record, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Err("an array"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Record, E> {
        Ok(Err("null"))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Record, E> {
        Ok(Err("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Record, E> {
        Ok(Err("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Record, E> {
        Ok(Err("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Record, E> {
        Ok(Err("a number"))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Record, E> {
        Ok(Err("a string"))
    }
}

/// A key, borrowed from the text when it can be (no escapes, read from a string).
struct Name;

impl<'de> DeserializeSeed<'de> for Name {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Name {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v))
    }
}

/// One value of a record under `name`: a scalar becomes one cell (null an empty one),
/// an object its flattened cells, an array one cell of its JSON text.
struct CellSeed<'a, 'n> {
    name: Cow<'n, str>,
    index: &'a ColumnIndex,
    parsed: &'a mut Parsed,
}

impl<'de> DeserializeSeed<'de> for CellSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl CellSeed<'_, '_> {
    /// Adds the cell whose text `write` appends.
    fn cell(self, write: impl FnOnce(&mut String)) {
        let start = self.parsed.text.len();
        write(&mut self.parsed.text);
        let key = match self.index.get(&*self.name) {
            Some(&column) => Key::Known(column),
            None => Key::New(self.name.into_owned()),
        };
        self.parsed.cells.push((key, start..self.parsed.text.len()));
    }
}

impl<'de> Visitor<'de> for CellSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.cell(|_| {});
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.cell(|text| text.push_str(if v { "true" } else { "false" }));
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.cell(|text| {
            let _ = write!(text, "{v}");
        });
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.cell(|text| {
            let _ = write!(text, "{v}");
        });
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        // JSON's shortest form: `1.0` stays a decimal, `1e300` stays short.
        self.cell(|text| {
            if let Some(n) = serde_json::Number::from_f64(v) {
                let _ = write!(text, "{n}");
            }
        });
        Ok(())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.cell(|text| text.push_str(v));
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        let value = Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        self.cell(|text| {
            let _ = write!(text, "{value}");
        });
        Ok(())
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        let mut empty = true;
        while let Some(key) = map.next_key_seed(Name)? {
            empty = false;
            let name = format!("{}.{key}", self.name);
            self.parsed.nested_names += name.len();
            if self.parsed.nested_names > NESTED_NAMES_MAX {
                return Err(de::Error::custom(format!(
                    "its nested keys flatten to over {} MiB of column names",
                    NESTED_NAMES_MAX >> 20
                )));
            }
            map.next_value_seed(CellSeed { name: Cow::Owned(name), index: self.index, parsed: self.parsed })?;
        }
        if empty {
            self.cell(|text| text.push_str("{}"));
        }
        Ok(())
    }
}

/// Bytes a column chunk holds at most, so its offsets fit in `u32`.
const CHUNK_BYTES: usize = 1 << 30;

/// Raw columns built record by record.
struct Builder {
    names: Vec<String>,
    index: ColumnIndex,
    /// Per column, its chunks; every column has `rows` cells at a record's end.
    columns: Vec<Vec<RawColumn>>,
    rows: usize,
    problems: Problems,
    max_examples: usize,
    max_columns: usize,
    /// The line of the record being added.
    line: u64,
    /// Cells of the record being added: column, and span in its [`Parsed`] text.
    cells: Vec<(usize, Range<usize>)>,
    renamed: Vec<(String, String)>,
    /// Why the array reader stopped, when the builder stopped it.
    failed: Option<IngestError>,
}

impl Builder {
    fn new(max_examples: usize, max_columns: usize) -> Self {
        Builder {
            max_columns,
            line: 0,
            names: Vec::new(),
            index: ColumnIndex::default(),
            columns: Vec::new(),
            rows: 0,
            problems: Problems::default(),
            max_examples,
            cells: Vec::new(),
            renamed: Vec::new(),
            failed: None,
        }
    }

    fn malformed(&mut self, line: u64, reason: String) {
        self.problems.malformed.add(Malformed { line, reason }, self.max_examples);
    }

    /// Adds a record: its `cells`, spans of `text`.
    fn record(
        &mut self,
        text: &str,
        record: impl Iterator<Item = (Key, Range<usize>)>,
        line: u64,
    ) -> Result<(), IngestError> {
        self.line = line;
        let mut cells = std::mem::take(&mut self.cells);
        cells.clear();
        for (key, span) in record {
            let column = match key {
                Key::Known(column) => column,
                Key::New(name) => self.column(&name)?,
            };
            cells.push((column, span));
        }
        // A name given twice (`{"a.b": 1, "a": {"b": 2}}`): the last wins, as in an object.
        cells.sort_by_key(|(c, _)| *c);
        cells.dedup_by(|later, earlier| {
            if later.0 == earlier.0 {
                std::mem::swap(later, earlier);
                true
            } else {
                false
            }
        });
        let mut next = cells.iter().peekable();
        for (c, chunks) in self.columns.iter_mut().enumerate() {
            let cell = next.next_if(|(i, _)| *i == c).map_or("", |(_, span)| &text[span.clone()]);
            push(chunks, cell);
        }
        self.rows += 1;
        self.cells = cells;
        Ok(())
    }

    /// The column for `name`, added (with a missing cell for every earlier row) if new.
    fn column(&mut self, name: &str) -> Result<usize, IngestError> {
        if let Some(&c) = self.index.get(name) {
            return Ok(c);
        }
        let c = self.names.len();
        if c >= self.max_columns {
            return Err(IngestError::TooManyColumns { limit: self.max_columns, line: self.line });
        }
        // An empty key, or one a renamed column already shows, gets a fresh name.
        let shown = if name.is_empty() || self.names.iter().any(|n| n == name) {
            let mut k = c + 1;
            let base = if name.is_empty() { "column".to_string() } else { name.to_string() };
            let mut given = format!("{base}_{k}");
            while self.names.contains(&given) || self.index.contains_key(&given) {
                k += 1;
                given = format!("{base}_{k}");
            }
            self.renamed.push((name.to_string(), given.clone()));
            given
        } else {
            name.to_string()
        };
        self.index.insert(name.to_string(), c);
        self.names.push(shown);
        let mut chunks = vec![RawColumn::default()];
        for _ in 0..self.rows {
            push(&mut chunks, "");
        }
        self.columns.push(chunks);
        Ok(c)
    }

    fn finish(self) -> RawTable {
        RawTable {
            names: self.names,
            columns: self.columns,
            rows: self.rows,
            problems: self.problems,
            renamed: self.renamed,
        }
    }
}

/// Appends a cell to a column's last chunk, starting a new chunk before offsets would
/// pass `u32`.
pub(crate) fn push(chunks: &mut Vec<RawColumn>, cell: &str) {
    if chunks.last().is_none_or(|c| c.bytes.len() + cell.len() > CHUNK_BYTES) {
        chunks.push(RawColumn::default());
    }
    if let Some(chunk) = chunks.last_mut() {
        chunk.bytes.extend_from_slice(cell.as_bytes());
        chunk.ends.push(chunk.bytes.len() as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_lines_fill_a_batch_too() {
        let mut batch = Batch::default();
        for number in 0..1024 {
            batch.lines.push((number, 0..0));
        }
        assert!(batch.is_full(64 << 10), "1,024 empty lines weigh 64 KiB");
        assert!(!Batch::default().is_full(1));
    }

    #[test]
    fn a_long_key_over_many_nested_ones_is_left_out() {
        let inner: Vec<String> = (0..2_000).map(|i| format!("\"k{i}\": {i}")).collect();
        let long = "x".repeat(4 << 10);
        let text = format!("{{\"{long}\": {{{}}}}}\n{{\"a\": {{\"b\": 1}}}}\n", inner.join(", "));
        let read = read_json(text.as_bytes(), JsonLayout::Lines, &ReadOptions::default()).expect("read");
        assert_eq!((read.rows, read.names.as_slice()), (1, &["a.b".to_owned()][..]));
        let left_out = &read.problems.malformed.examples[0];
        assert_eq!(left_out.line, 1);
        assert!(left_out.reason.contains("flatten to over 1 MiB"), "{}", left_out.reason);
    }

    #[test]
    fn many_small_batches_read_as_one() {
        let mut text = "\n".repeat(200_000);
        text.push_str("{\"a\": 1}\nnot json\n\r\n{\"a\": 2, \"b\": \"x\"}\n");
        let read = |block_bytes, threads| {
            let options = ReadOptions { block_bytes, threads, ..ReadOptions::default() };
            read_json(text.as_bytes(), JsonLayout::Lines, &options).expect("read")
        };
        let (whole, cut) = (read(1 << 20, 1), read(4 << 10, 2));
        assert_eq!((whole.rows, cut.rows), (2, 2));
        assert_eq!(whole.problems, cut.problems);
        assert_eq!(whole.problems.blank_lines, 200_001);
        assert_eq!(whole.problems.malformed.count, 1);
        assert_eq!(whole.names, cut.names);
    }
}

//! Reading a delimited file into raw columns, in parallel, in one pass over a stream.
//!
//! The calling thread reads blocks and cuts them at record boundaries with a small state
//! machine that follows the CSV quoting rules exactly as the `csv-core` tokenizer does
//! (a quote opens a quoted field only at the start of a field, where the `\r`s that open a
//! line are skipped as a blank line's; `""` inside one is a quote), so a newline inside a
//! quoted field never splits a chunk. Worker threads tokenize the chunks into per-chunk
//! raw columns: a chunk without a quote character is cut at its delimiters and newlines
//! directly, one with quotes by `csv-core`, and both read a quote-free chunk alike (a
//! property test holds them to it). Nothing is held twice: a block becomes raw columns and
//! is dropped.
//!
//! Rows whose field count differs from the header's are not part of the table: they are
//! counted and reported with their line numbers. A record longer than the cap is skipped
//! without being held (a 2 GB line costs one block of memory), and reported the same way.

use std::io::Read;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;

use serde::Serialize;

use crate::IngestError;

mod tokenize;
pub(crate) use tokenize::column_names;
use tokenize::*;

/// How to read a delimited file.
#[derive(Clone, Debug)]
pub struct ReadOptions {
    pub delimiter: u8,
    pub quote: u8,
    pub header: bool,
    /// The longest record accepted, in bytes; longer ones are skipped and reported.
    pub max_record_bytes: usize,
    /// Worker threads tokenizing chunks.
    pub threads: usize,
    /// Bytes read per block (a chunk is at least this, cut at a record boundary).
    pub block_bytes: usize,
    /// Line numbers kept per kind of problem (all are counted).
    pub max_examples: usize,
    /// The most columns a table may have (a header or JSON keys past it are refused).
    pub max_columns: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            delimiter: b',',
            quote: b'"',
            header: true,
            max_record_bytes: 16 << 20,
            threads: crate::par::default_threads(),
            block_bytes: 4 << 20,
            max_examples: 20,
            max_columns: 16_384,
        }
    }
}

/// Rows that are not in the table, and why.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Problems {
    /// Rows with more or fewer fields than the header.
    pub ragged: Counted<RaggedRow>,
    /// Records longer than the cap, skipped.
    pub too_long: Counted<LongRecord>,
    /// Lines holding bytes that are not UTF-8 (each such byte became U+FFFD).
    pub invalid_utf8: Counted<u64>,
    /// Empty lines, skipped.
    pub blank_lines: u64,
    /// JSON records that do not parse or are not objects, left out.
    pub malformed: Counted<crate::json::Malformed>,
    /// Spreadsheet cells holding an error (`#DIV/0!`, `#N/A`), read as missing; their rows.
    pub invalid_cells: Counted<u64>,
}

impl Problems {
    /// Rows left out of the table.
    pub fn rows_left_out(&self) -> u64 {
        self.ragged.count + self.too_long.count + self.malformed.count
    }

    fn absorb(&mut self, other: Problems, line_offset: u64, max_examples: usize) {
        self.ragged.absorb(other.ragged, max_examples, |r| RaggedRow { line: r.line + line_offset, ..r });
        self.too_long.absorb(other.too_long, max_examples, |r| LongRecord { line: r.line + line_offset, ..r });
        self.invalid_utf8.absorb(other.invalid_utf8, max_examples, |l| l + line_offset);
        self.blank_lines += other.blank_lines;
    }
}

/// A count with the first few examples.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Counted<T> {
    pub count: u64,
    pub examples: Vec<T>,
}

impl<T> Default for Counted<T> {
    fn default() -> Self {
        Counted { count: 0, examples: Vec::new() }
    }
}

impl<T> Counted<T> {
    pub(crate) fn add(&mut self, example: T, max_examples: usize) {
        self.count += 1;
        if self.examples.len() < max_examples {
            self.examples.push(example);
        }
    }

    fn absorb(&mut self, other: Counted<T>, max_examples: usize, shift: impl Fn(T) -> T) {
        self.count += other.count;
        let room = max_examples.saturating_sub(self.examples.len());
        self.examples.extend(other.examples.into_iter().take(room).map(shift));
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RaggedRow {
    /// 1-based line of the file where the row starts.
    pub line: u64,
    pub fields: usize,
    pub expected: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LongRecord {
    pub line: u64,
    /// Bytes skipped (the record and its line ending).
    pub bytes: u64,
}

/// One column of one chunk, as text: field `i` is `bytes[ends[i-1]..ends[i]]`.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct RawColumn {
    pub bytes: Vec<u8>,
    pub ends: Vec<u32>,
}

impl RawColumn {
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        // Chunks are valid UTF-8 (invalid bytes were replaced) and fields are cut at ASCII
        // delimiters, so the column's text is checked once, not field by field.
        let text = std::str::from_utf8(&self.bytes);
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let end = end as usize;
            let field = match &text {
                Ok(text) => text.get(start..end),
                Err(_) => self.bytes.get(start..end).and_then(|f| std::str::from_utf8(f).ok()),
            };
            start = end;
            field.unwrap_or_default()
        })
    }
}

/// A table as text, in column-major chunks of rows.
#[derive(Debug)]
pub(crate) struct RawTable {
    pub names: Vec<String>,
    /// `columns[c][k]` is column `c` of chunk `k`.
    pub columns: Vec<Vec<RawColumn>>,
    pub rows: usize,
    pub problems: Problems,
    /// Header names that were empty or repeated, and what they became.
    pub renamed: Vec<(String, String)>,
}

/// The quoting state of the boundary scanner, mirroring the tokenizers'.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scan {
    /// The start of a line. `\r`s here are skipped as part of a blank line (see
    /// `skip_blank_lines`), so a quote after them still opens a quoted field.
    StartRecord,
    /// After a delimiter.
    StartField,
    InField,
    InQuoted,
    /// A quote inside a quoted field: the end of it, or the first of `""`.
    QuoteInQuoted,
}

/// Cuts a stream at record boundaries.
struct Splitter {
    delimiter: u8,
    quote: u8,
    state: Scan,
}

impl Splitter {
    /// Advances over `bytes`; the index just past the last record-ending `\n`.
    fn scan(&mut self, bytes: &[u8]) -> Option<usize> {
        let quoted = matches!(self.state, Scan::InQuoted | Scan::QuoteInQuoted);
        if !quoted && memchr::memchr(self.quote, bytes).is_none() {
            // No quotes: every newline ends a record, and what follows the last one (no
            // quote, no newline) decides the state.
            let last = memchr::memrchr(b'\n', bytes);
            if last.is_some() {
                self.state = Scan::StartRecord;
            }
            self.others(&bytes[last.map_or(0, |i| i + 1)..]);
            return last.map(|i| i + 1);
        }
        let mut last = None;
        let mut next = 0;
        for i in memchr::memchr3_iter(self.quote, self.delimiter, b'\n', bytes) {
            self.others(&bytes[next..i]);
            next = i + 1;
            let b = bytes[i];
            self.state = match (self.state, b) {
                (Scan::InQuoted, q) if q == self.quote => Scan::QuoteInQuoted,
                (Scan::InQuoted, _) => Scan::InQuoted,
                (Scan::QuoteInQuoted, q) if q == self.quote => Scan::InQuoted,
                (Scan::StartRecord | Scan::StartField, q) if q == self.quote => Scan::InQuoted,
                (Scan::InField, q) if q == self.quote => Scan::InField,
                (_, b'\n') => {
                    last = Some(i + 1);
                    Scan::StartRecord
                }
                (_, _) => Scan::StartField,
            };
        }
        self.others(&bytes[next..]);
        last
    }

    /// A run of bytes holding no quote and no newline. Inside a quoted field it changes
    /// nothing; outside one its last byte (the `\r`s that open a line skipped) decides
    /// whether a field is just starting or under way.
    fn others(&mut self, run: &[u8]) {
        if self.state == Scan::InQuoted {
            return;
        }
        if let Some(&b) = self.skip_line_start(run).last() {
            self.state = if b == self.delimiter { Scan::StartField } else { Scan::InField };
        }
    }

    /// `run` without the `\r`s that open it at the start of a line, which are skipped.
    fn skip_line_start<'b>(&self, run: &'b [u8]) -> &'b [u8] {
        if self.state != Scan::StartRecord {
            return run;
        }
        let skipped = run.iter().position(|&b| b != b'\r').unwrap_or(run.len());
        &run[skipped..]
    }
}

/// A piece of the input, in order, once read.
enum Piece {
    /// Whole records, tokenized by a worker.
    Records(Chunk),
    /// A record over the cap, skipped: its newlines and size.
    TooLong { newlines: u64, bytes: u64 },
}

/// What a worker made of one chunk of records.
struct Chunk {
    columns: Vec<RawColumn>,
    rows: usize,
    /// Newlines in the chunk (so the next one's line numbers can be known).
    newlines: u64,
    problems: Problems,
}

/// Reads `input` (UTF-8) into raw columns.
pub(crate) fn read_delimited(mut input: impl Read, options: &ReadOptions) -> Result<RawTable, IngestError> {
    let mut splitter = Splitter { delimiter: options.delimiter, quote: options.quote, state: Scan::StartRecord };
    let mut buf = Vec::new();
    let mut eof;
    // Blank lines before the first record are not part of the table.
    let mut line_base = 1;
    let first_end = loop {
        let scanned = buf.len();
        eof = fill(&mut input, &mut buf, options.block_bytes)?;
        if scanned == 0 {
            let blank = buf.iter().position(|b| !matches!(b, b'\r' | b'\n')).unwrap_or(buf.len());
            line_base += memchr::memchr_iter(b'\n', &buf[..blank]).count() as u64;
            buf.drain(..blank);
            if buf.is_empty() && !eof {
                continue;
            }
        }
        let from = scanned.min(buf.len());
        if let Some(end) = first_boundary(&mut splitter, &buf[from..]) {
            break from + end;
        }
        if eof {
            break buf.len();
        }
        if buf.len() - line_ending_len(&buf) > options.max_record_bytes {
            return Err(IngestError::FirstRecordTooLong { cap: options.max_record_bytes });
        }
    };
    // However the blocks fell, a first record over the cap is refused.
    if first_end - line_ending_len(&buf[..first_end]) > options.max_record_bytes {
        return Err(IngestError::FirstRecordTooLong { cap: options.max_record_bytes });
    }
    // The first record fixes the number of columns (and their names, if a header).
    let first = tokenize_one(&buf[..first_end], options);
    if first.is_empty() {
        return Err(IngestError::Empty);
    }
    let expected = first.len();
    if expected > options.max_columns {
        return Err(IngestError::TooManyColumns { limit: options.max_columns, line: line_base });
    }
    let (names, renamed) = if options.header {
        column_names(first)
    } else {
        ((1..=expected).map(|i| format!("column_{i}")).collect(), Vec::new())
    };
    if options.header {
        line_base += memchr::memchr_iter(b'\n', &buf[..first_end]).count() as u64;
        buf.drain(..first_end);
    }
    // Scan again from the start of what is left, which is a record boundary.
    splitter.state = Scan::StartRecord;

    let threads = options.threads.max(1);
    let (to_workers, from_reader) = mpsc::sync_channel::<(usize, Vec<u8>)>(threads * 2);
    let from_reader = Arc::new(Mutex::new(from_reader));
    let (to_collector, done) = mpsc::channel::<(usize, Piece)>();
    let mut skipped: Vec<(usize, Piece)> = Vec::new();

    thread::scope(|s| {
        for _ in 0..threads {
            let from_reader = Arc::clone(&from_reader);
            let to_collector = to_collector.clone();
            s.spawn(move || {
                loop {
                    let next = from_reader.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok((index, bytes)) = next else { return };
                    let chunk = tokenize(bytes, expected, options);
                    if to_collector.send((index, Piece::Records(chunk))).is_err() {
                        return;
                    }
                }
            });
        }
        drop(to_collector);
        let result = split(&mut input, &mut splitter, buf, eof, options, |index, piece| match piece {
            Ok(bytes) => to_workers.send((index, bytes)).map_err(|_| IngestError::WorkerGone),
            Err(skip) => {
                skipped.push((index, skip));
                Ok(())
            }
        });
        drop(to_workers);
        result
    })?;

    let mut pieces = skipped;
    pieces.extend(done);
    pieces.sort_unstable_by_key(|(i, _)| *i);
    let mut problems = Problems::default();
    let mut columns: Vec<Vec<RawColumn>> = (0..expected).map(|_| Vec::with_capacity(pieces.len())).collect();
    let mut rows = 0;
    let mut line = line_base;
    for (_, piece) in pieces {
        match piece {
            Piece::Records(chunk) => {
                problems.absorb(chunk.problems, line - 1, options.max_examples);
                rows += chunk.rows;
                line += chunk.newlines;
                for (all, column) in columns.iter_mut().zip(chunk.columns) {
                    all.push(column);
                }
            }
            Piece::TooLong { newlines, bytes } => {
                problems.too_long.add(LongRecord { line, bytes }, options.max_examples);
                line += newlines;
            }
        }
    }
    Ok(RawTable { names, columns, rows, problems, renamed })
}

/// Cuts the input after `buf` into chunks of whole records of at least a block, handing
/// each (or a skipped over-long record) to `emit` with its index.
fn split(
    input: &mut impl Read,
    splitter: &mut Splitter,
    mut buf: Vec<u8>,
    mut eof: bool,
    options: &ReadOptions,
    mut emit: impl FnMut(usize, Result<Vec<u8>, Piece>) -> Result<(), IngestError>,
) -> Result<(), IngestError> {
    let mut index = 0;
    let mut scanned = 0;
    // The end of the last whole record in `buf[..scanned]`.
    let mut boundary = None;
    loop {
        if let Some(end) = splitter.scan(&buf[scanned..]) {
            boundary = Some(scanned + end);
        }
        scanned = buf.len();
        if eof {
            if !buf.is_empty() {
                emit(index, Ok(buf))?;
            }
            return Ok(());
        }
        match boundary {
            Some(end) if buf.len() >= options.block_bytes => {
                let tail = buf.split_off(end);
                emit(index, Ok(std::mem::replace(&mut buf, tail)))?;
                index += 1;
                scanned = buf.len();
                boundary = None;
            }
            None if buf.len() - line_ending_len(&buf) > options.max_record_bytes => {
                // One record longer than the cap: skip to its end without holding it.
                let (newlines, bytes, rest, at_eof) = skip_record(input, splitter, &buf, options)?;
                emit(index, Err(Piece::TooLong { newlines, bytes }))?;
                index += 1;
                buf = rest;
                scanned = 0;
                eof = at_eof;
                continue;
            }
            _ => {}
        }
        eof = fill(input, &mut buf, options.block_bytes)?;
    }
}

/// The length of the line ending `bytes` ends with, which does not count towards a
/// record's length: `\r\n`, `\n`, or a lone `\r` (which ends only the last record of the
/// file). Every reader of the cap uses it, on a whole record or on the part of one read so
/// far; a part can only grow past the cap as the record does, so whether a record is over
/// the cap does not depend on where the blocks fell.
fn line_ending_len(bytes: &[u8]) -> usize {
    if bytes.ends_with(b"\r\n") { 2 } else { usize::from(bytes.ends_with(b"\n") || bytes.ends_with(b"\r")) }
}

/// Reads until `buf` has grown by `block` bytes or the input ends; true at the end.
fn fill(input: &mut impl Read, buf: &mut Vec<u8>, block: usize) -> Result<bool, IngestError> {
    let start = buf.len();
    buf.resize(start + block, 0);
    let mut filled = start;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => {
                buf.truncate(filled);
                return Ok(true);
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                buf.truncate(filled);
                return Err(IngestError::Read(e));
            }
        }
    }
    Ok(false)
}

/// Skips a record that has outgrown the cap: `start` is its beginning, the rest is read
/// and dropped a block at a time until its line ending. Returns its newlines (the ending
/// included), its size, the bytes after it, and whether the input ended.
fn skip_record(
    input: &mut impl Read,
    splitter: &mut Splitter,
    start: &[u8],
    options: &ReadOptions,
) -> Result<(u64, u64, Vec<u8>, bool), IngestError> {
    // `start` was scanned already and holds no boundary.
    let mut newlines = memchr::memchr_iter(b'\n', start).count() as u64;
    let mut bytes = start.len() as u64;
    let mut block = Vec::with_capacity(options.block_bytes);
    loop {
        block.clear();
        let eof = fill(input, &mut block, options.block_bytes)?;
        if let Some(end) = first_boundary(splitter, &block) {
            newlines += memchr::memchr_iter(b'\n', &block[..end]).count() as u64;
            bytes += end as u64;
            return Ok((newlines, bytes, block.split_off(end), eof));
        }
        newlines += memchr::memchr_iter(b'\n', &block).count() as u64;
        bytes += block.len() as u64;
        if eof {
            return Ok((newlines, bytes, Vec::new(), true));
        }
    }
}

/// The end of the first record ending in `bytes`, leaving the scanner at the start of
/// the next record.
fn first_boundary(splitter: &mut Splitter, bytes: &[u8]) -> Option<usize> {
    let mut from = 0;
    for i in memchr::memchr_iter(b'\n', bytes) {
        if splitter.scan(&bytes[from..=i]).is_some() {
            return Some(i + 1);
        }
        from = i + 1;
    }
    splitter.scan(&bytes[from..]);
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A chunk's records as each tokenizer reads them: columns, rows, problems and the
    /// lines left out.
    fn both(bytes: &[u8], expected: usize, max_record_bytes: usize) -> [(Vec<RawColumn>, usize, Problems); 2] {
        let options = ReadOptions { max_record_bytes, max_examples: 100, ..ReadOptions::default() };
        let mut growth = Growth::default();
        let bytes = valid_utf8(bytes.to_vec(), &mut Vec::new(), &mut growth);
        let mut plain = Records::new(expected, bytes.len(), &options);
        plain_records(&bytes, &growth, &mut plain);
        let mut quoted = Records::new(expected, bytes.len(), &options);
        quoted_records(&bytes, &growth, &mut quoted);
        assert_eq!(plain.skipped_lines, quoted.skipped_lines);
        [plain, quoted].map(|r| (r.columns, r.rows, r.problems))
    }

    proptest! {
        /// Without quotes the fast tokenizer reads exactly what `csv-core` reads: fields,
        /// blank lines, ragged rows and records over the cap with their lines, CRs, a
        /// byte-order mark and invalid UTF-8 included.
        #[test]
        fn unquoted_chunks_read_as_csv_core_reads_them(
            pieces in prop::collection::vec(
                prop::sample::select(vec![&b"a"[..], b"42", b",", b",", b"\n", b"\n", b"\r", b"\r\n", b" ", b"\t",
                    "é".as_bytes(), "\u{feff}".as_bytes(), b"\xff", b"\xe2\x82"]),
                0..80,
            ),
            expected in 1usize..4,
            cap in prop::sample::select(vec![4usize, 12, 1 << 20]),
        ) {
            let bytes = pieces.concat();
            let [plain, quoted] = both(&bytes, expected, cap);
            prop_assert_eq!(plain, quoted);
        }
    }

    #[test]
    fn an_unquoted_chunk_reads_its_fields_lines_and_problems() {
        let [plain, quoted] = both(b"a,b\r\n\r\n1,2\n3\n \n4,5,6\nx,y", 2, 1 << 20);
        assert_eq!(plain, quoted);
        let (columns, rows, problems) = plain;
        assert_eq!((rows, problems.blank_lines, problems.ragged.examples.len()), (3, 2, 2));
        assert_eq!(columns[1], RawColumn { bytes: b"b2y".to_vec(), ends: vec![1, 2, 3] });
        assert_eq!(problems.ragged.examples[0], RaggedRow { line: 4, fields: 1, expected: 2 });
    }
}

//! Ingest: from a file to a typed [`Dataset`] with its canonical hash and every problem
//! found on the way.
//!
//! Delimited text goes through [`sniff`](crate::sniff) (encoding, dialect), the parallel
//! reader ([`read`](crate::read)) and per-column inference ([`infer`](crate::infer)),
//! with columns typed in parallel and each raw column freed once typed.

use std::fs::File;
use std::io::{self, Cursor, Read};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::infer::{self, Context};
use crate::json::{self, JsonLayout};
use crate::read::{self, Problems, ReadOptions};
use crate::sniff::{self, Chosen, DecodingReader, Dialect, Encoding};
use crate::table::Column;

/// Why a file could not be read as a table.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("cannot open {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("reading the input failed: {0}")]
    Read(#[source] io::Error),
    #[error("the file is empty: it has no header and no rows")]
    Empty,
    #[error("this is not a text table: {0}")]
    Binary(String),
    #[error("the first record is longer than the {cap}-byte record cap (is this really a delimited file?)")]
    FirstRecordTooLong { cap: usize },
    #[error("a reader thread stopped before the input was read")]
    WorkerGone,
    #[error("the JSON is malformed at line {line}, column {column}: {message}")]
    Json { line: u64, column: u64, message: String },
    #[error("a JSON record ending near line {line} is longer than the {cap}-byte record cap")]
    RecordTooLong { cap: usize, line: u64 },
    #[error("more than {limit} columns (by line {line}): is this really a table?")]
    TooManyColumns { limit: usize, line: u64 },
}

/// How to ingest; every choice left `None` is detected from the file.
#[derive(Clone, Debug, Default)]
pub struct IngestOptions {
    /// Delimited text or JSON; detected from the content when not given.
    pub format: Option<InputFormat>,
    pub encoding: Option<Encoding>,
    pub delimiter: Option<u8>,
    pub header: Option<bool>,
    /// Record cap, threads, block size, examples kept.
    pub read: ReadOptions,
}

/// A kind of text table [`ingest`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputFormat {
    Delimited,
    Json,
}

/// How a file's table was laid out.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Format {
    /// CSV, TSV and the like, with the dialect found.
    Delimited(Dialect),
    /// JSON records: an array of objects or one per line.
    Json { layout: JsonLayout },
    /// A sheet of an XLSX workbook.
    Xlsx { sheet: String },
}

/// A table read from a file, typed, with how it was read and what was wrong with it.
#[derive(Debug)]
pub struct Dataset {
    pub encoding: Chosen<Encoding>,
    pub format: Chosen<Format>,
    pub rows: usize,
    pub columns: Vec<Column>,
    /// Rows not in the table and lines with problems, with line numbers.
    pub problems: Problems,
    /// Header names that were empty or repeated, and the names they were given.
    pub renamed: Vec<(String, String)>,
    /// The canonical hash of the typed content (see [`data_hash`]).
    pub data_hash: String,
}

impl Dataset {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Row and column counts, kinds and roles with evidence, and problems: what a dataset
    /// version records.
    pub fn summary(&self) -> Summary<'_> {
        Summary {
            rows: self.rows,
            columns: self.columns.len(),
            data_hash: &self.data_hash,
            encoding: &self.encoding,
            format: &self.format,
            schema: self.columns.iter().map(ColumnSummary::of).collect(),
            problems: &self.problems,
            renamed: &self.renamed,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Summary<'a> {
    pub rows: usize,
    pub columns: usize,
    pub data_hash: &'a str,
    pub encoding: &'a Chosen<Encoding>,
    pub format: &'a Chosen<Format>,
    pub schema: Vec<ColumnSummary<'a>>,
    pub problems: &'a Problems,
    pub renamed: &'a [(String, String)],
}

#[derive(Debug, Serialize)]
pub struct ColumnSummary<'a> {
    pub name: &'a str,
    pub kind: &'a Chosen<crate::table::Kind>,
    pub role: &'a Chosen<crate::table::Role>,
    pub missing: usize,
}

impl<'a> ColumnSummary<'a> {
    pub fn of(column: &'a Column) -> Self {
        ColumnSummary {
            name: &column.name,
            kind: &column.kind,
            role: &column.role,
            missing: column.validity.missing_count(),
        }
    }
}

/// Bytes of the file's start used to detect its encoding and dialect.
const SNIFF_BYTES: usize = 64 * 1024;

/// Ingests a text table file: delimited (CSV, TSV, TXT) or JSON (an array of records or
/// JSON Lines), told apart by content unless `options.format` says.
pub fn ingest_path(path: &Path, options: &IngestOptions) -> Result<Dataset, IngestError> {
    let file = File::open(path).map_err(|source| IngestError::Open { path: path.to_owned(), source })?;
    ingest(file, options)
}

/// Ingests delimited text from a stream (whatever its content looks like).
pub fn ingest_delimited(input: impl Read, options: &IngestOptions) -> Result<Dataset, IngestError> {
    ingest(input, &IngestOptions { format: Some(InputFormat::Delimited), ..options.clone() })
}

/// Ingests a text table from a stream, as [`ingest_path`].
pub fn ingest(mut input: impl Read, options: &IngestOptions) -> Result<Dataset, IngestError> {
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    (&mut input).take(SNIFF_BYTES as u64).read_to_end(&mut head).map_err(IngestError::Read)?;
    if head.is_empty() {
        return Err(IngestError::Empty);
    }
    let encoding = match options.encoding {
        Some(value) => Chosen { value, evidence: "given".into() },
        None => sniff::detect_encoding(&head),
    };
    let mut sample = String::new();
    DecodingReader::new(Cursor::new(&head), encoding.value)
        .read_to_string(&mut sample)
        .or_else(|_| {
            // Invalid UTF-8 in the sample: sniff on what it says, the reader counts it.
            sample = String::from_utf8_lossy(&head).into_owned();
            Ok::<_, io::Error>(0)
        })
        .map_err(IngestError::Read)?;
    refuse_binary(&head, &sample)?;
    let read_options = options.read.clone();
    let layout = match options.format {
        Some(InputFormat::Delimited) => None,
        Some(InputFormat::Json) => Some(json::detect_layout(&sample).unwrap_or(JsonLayout::Lines)),
        None => json::detect_layout(&sample),
    };
    let whole = Cursor::new(head).chain(input);
    let (format, raw, context) = if let Some(layout) = layout {
        let raw = as_utf8(whole, encoding.value, |text| json::read_json(text, layout, &read_options))?;
        let evidence = match (options.format, layout) {
            (Some(_), _) => "given".to_string(),
            (None, JsonLayout::Array) => "the text starts with '['".to_string(),
            (None, JsonLayout::Lines) => "the first line is a JSON object".to_string(),
        };
        (Chosen { value: Format::Json { layout }, evidence }, raw, Context { delimiter: b',' })
    } else {
        let mut dialect = sniff::detect_dialect(&sample);
        if let Some(d) = options.delimiter {
            dialect.delimiter = Chosen { value: char::from(d), evidence: "given".into() };
        }
        if let Some(h) = options.header {
            dialect.header = Chosen { value: h, evidence: "given".into() };
        }
        let read_options = ReadOptions {
            delimiter: u8::try_from(dialect.delimiter.value).unwrap_or(b','),
            quote: u8::try_from(dialect.quote).unwrap_or(b'"'),
            header: dialect.header.value,
            ..read_options
        };
        let raw = as_utf8(whole, encoding.value, |text| read::read_delimited(text, &read_options))?;
        let evidence = if options.format.is_some() { "given" } else { "not JSON" };
        let context = Context { delimiter: read_options.delimiter };
        (Chosen { value: Format::Delimited(dialect), evidence: evidence.into() }, raw, context)
    };
    let rows = raw.rows;
    let threads = options.read.threads;
    let (columns, data_hash) = infer::table(raw.names, raw.columns, rows, context, threads);
    Ok(Dataset { encoding, format, rows, columns, problems: raw.problems, renamed: raw.renamed, data_hash })
}

/// Runs `read` over `input` as UTF-8 text: the bytes themselves when that is the encoding,
/// else decoded on the way.
fn as_utf8<T>(input: impl Read, encoding: Encoding, read: impl FnOnce(&mut dyn Read) -> T) -> T {
    match encoding {
        Encoding::Utf8 => read(&mut { input }),
        other => read(&mut DecodingReader::new(input, other)),
    }
}

/// Stops binary files (archives, images, executables) before they are read as text.
fn refuse_binary(head: &[u8], sample: &str) -> Result<(), IngestError> {
    const MAGIC: [(&[u8], &str); 5] = [
        (b"PK\x03\x04", "a ZIP archive (an XLSX workbook is one; read it as XLSX)"),
        (b"\x1f\x8b", "a gzip stream"),
        (b"%PDF", "a PDF document"),
        (b"\x89PNG", "a PNG image"),
        (b"\x7fELF", "an executable"),
    ];
    if let Some((_, what)) = MAGIC.iter().find(|(magic, _)| head.starts_with(magic)) {
        return Err(IngestError::Binary(format!("it starts like {what}")));
    }
    let chars = sample.chars().count().max(1);
    let control = sample.chars().filter(|c| c.is_control() && !matches!(c, '\t' | '\r' | '\n')).count();
    if sample.contains('\0') || control * 20 > chars {
        return Err(IngestError::Binary(format!(
            "{control} of the first {chars} characters are control characters{}",
            if sample.contains('\0') { ", including NUL" } else { "" }
        )));
    }
    Ok(())
}

//! XLSX workbooks: every sheet (or the ones asked for) as tables, through the same
//! inference and canonical hash as delimited text.
//!
//! A workbook is a ZIP archive, so before anything is parsed its directory is checked
//! against [`XlsxLimits`] (entries, declared sizes, compression ratio), and every entry is
//! then inflated once, counting, to prove the declared sizes true: an archive that lies
//! about them (a zip bomb) stops at the cap, never in memory. Cells stream from the sheet
//! XML (calamine's cell reader) into the raw columns the delimited reader fills, written
//! as the text a CSV export of the same sheet holds (numbers in their shortest form, dates
//! as ISO dates), so a sheet and its CSV export are the same dataset version.

use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;

use calamine::{DataRef, Reader, Xlsx};

use crate::infer::{self, Context};
use crate::ingest::{Dataset, Format, IngestError};
use crate::json::push;
use crate::read::{Problems, RawColumn, ReadOptions, column_names};
use crate::sniff::{Chosen, Encoding};
use crate::value::DecimalMark;

/// Caps on what a workbook may unpack to.
#[derive(Clone, Debug)]
pub struct XlsxLimits {
    pub max_entries: usize,
    /// Uncompressed bytes of all entries together.
    pub max_total_bytes: u64,
    /// Uncompressed bytes over compressed bytes, for entries over 1 MiB unpacked.
    pub max_ratio: u64,
    /// Cells of one sheet's table, empty ones included (rows × columns): a few cells far
    /// apart would otherwise fill billions.
    pub max_cells: u64,
}

impl Default for XlsxLimits {
    fn default() -> Self {
        XlsxLimits { max_entries: 10_000, max_total_bytes: 1 << 30, max_ratio: 200, max_cells: 100_000_000 }
    }
}

/// Which sheets to read and how.
#[derive(Clone, Debug, Default)]
pub struct XlsxOptions {
    /// Sheet names to read, in this order; every sheet when empty.
    pub sheets: Vec<String>,
    /// Whether the first row names the columns; detected when `None`.
    pub header: Option<bool>,
    pub limits: XlsxLimits,
    pub read: ReadOptions,
}

/// One sheet read as a table.
#[derive(Debug)]
pub struct Sheet {
    pub name: String,
    pub dataset: Dataset,
}

/// Why a workbook could not be read.
#[derive(Debug, thiserror::Error)]
pub enum XlsxError {
    #[error("cannot open {0}: {1}")]
    Open(String, std::io::Error),
    #[error("this is not an XLSX workbook: {0}")]
    NotXlsx(String),
    #[error("the workbook unpacks past a limit ({0}): is it a zip bomb?")]
    TooLarge(String),
    #[error("no sheet named {0:?} (the workbook has {1})")]
    NoSheet(String, String),
    #[error("sheet {sheet:?}: {message}")]
    Sheet { sheet: String, message: String },
    #[error(transparent)]
    Ingest(#[from] IngestError),
}

/// Reads the chosen sheets of the workbook at `path`.
pub fn ingest_xlsx(path: &Path, options: &XlsxOptions) -> Result<Vec<Sheet>, XlsxError> {
    let file = File::open(path).map(BufReader::new).map_err(|e| XlsxError::Open(path.display().to_string(), e));
    ingest_xlsx_from(file?, options)
}

/// Reads the chosen sheets of the workbook `input` (read from its start).
pub fn ingest_xlsx_from(mut input: impl Read + Seek, options: &XlsxOptions) -> Result<Vec<Sheet>, XlsxError> {
    check_archive(&mut input, &options.limits)?;
    input.rewind().map_err(|e| XlsxError::Open("the workbook".to_owned(), e))?;
    let mut workbook: Xlsx<_> = Xlsx::new(input).map_err(|e| XlsxError::NotXlsx(e.to_string()))?;
    let all: Vec<String> = workbook.sheet_names();
    let chosen: Vec<String> = if options.sheets.is_empty() { all.clone() } else { options.sheets.clone() };
    let mut sheets = Vec::with_capacity(chosen.len());
    for name in chosen {
        if !all.contains(&name) {
            return Err(XlsxError::NoSheet(name, format!("{all:?}")));
        }
        let dataset = read_sheet(&mut workbook, &name, options)?;
        sheets.push(Sheet { name, dataset });
    }
    Ok(sheets)
}

/// Checks the archive's directory against the limits, then inflates every entry,
/// counting, so no entry holds more than its directory entry says.
fn check_archive(reader: impl Read + Seek, limits: &XlsxLimits) -> Result<(), XlsxError> {
    let mut zip = zip::ZipArchive::new(reader).map_err(|e| XlsxError::NotXlsx(e.to_string()))?;
    if zip.len() > limits.max_entries {
        return Err(XlsxError::TooLarge(format!("{} entries, at most {}", zip.len(), limits.max_entries)));
    }
    let mut total = 0u64;
    for i in 0..zip.len() {
        let entry = zip.by_index_raw(i).map_err(|e| XlsxError::NotXlsx(e.to_string()))?;
        let (size, packed) = (entry.size(), entry.compressed_size().max(1));
        total = total.saturating_add(size);
        if total > limits.max_total_bytes {
            return Err(XlsxError::TooLarge(format!("more than {} bytes unpacked", limits.max_total_bytes)));
        }
        if size > 1 << 20 && size / packed > limits.max_ratio {
            return Err(XlsxError::TooLarge(format!(
                "{} packs {size} bytes into {packed} (ratio over {})",
                entry.name().unwrap_or_default(),
                limits.max_ratio
            )));
        }
    }
    let mut buffer = vec![0u8; 64 * 1024];
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| XlsxError::NotXlsx(e.to_string()))?;
        let (declared, name) = (entry.size(), entry.name().unwrap_or_default().into_owned());
        let mut seen = 0u64;
        loop {
            let n = entry.read(&mut buffer).map_err(|e| XlsxError::NotXlsx(format!("{name}: {e}")))?;
            if n == 0 {
                break;
            }
            seen += n as u64;
            if seen > declared {
                return Err(XlsxError::TooLarge(format!("{name} unpacks past the {declared} bytes it declares")));
            }
        }
    }
    Ok(())
}

/// Excel's own limits: 1,048,576 rows and 16,384 columns (0-based indexes below these).
const SHEET_ROWS: u32 = 1 << 20;
const SHEET_COLUMNS: u32 = 1 << 14;

/// One sheet's cells into raw columns, then typed like any table.
fn read_sheet<RS: Read + Seek>(
    workbook: &mut Xlsx<RS>,
    name: &str,
    options: &XlsxOptions,
) -> Result<Dataset, XlsxError> {
    let sheet_error = |message: String| XlsxError::Sheet { sheet: name.to_owned(), message };
    let failed = |e: calamine::XlsxError| sheet_error(e.to_string());
    let mut cells = workbook.worksheet_cells_reader(name).map_err(failed)?;
    let mut problems = Problems::default();
    let max_columns = options.read.max_columns.min(SHEET_COLUMNS as usize);
    let mut table = Table { header: options.header, max_cells: options.limits.max_cells, ..Table::default() };
    // Cells arrive row by row; a row's cells are kept until the next row starts. Cells
    // without a value (formatting only) make no row.
    let mut current: Option<(u32, Vec<(u32, String)>)> = None;
    let mut text = String::new();
    while let Some(cell) = cells.next_cell().map_err(failed)? {
        let (row, column) = cell.get_position();
        if row >= SHEET_ROWS || column >= SHEET_COLUMNS {
            return Err(sheet_error(format!(
                "a cell at row {}, column {} is past Excel's limits",
                u64::from(row) + 1,
                u64::from(column) + 1
            )));
        }
        text.clear();
        if !render(cell.get_value(), &mut text) {
            problems.invalid_cells.add(u64::from(row) + 1, options.read.max_examples);
        } else if text.is_empty() {
            continue;
        }
        if column as usize >= max_columns {
            return Err(IngestError::TooManyColumns { limit: max_columns, line: u64::from(row) + 1 }.into());
        }
        match &mut current {
            Some((at, row_cells)) if *at == row => row_cells.push((column, text.clone())),
            Some((at, _)) if *at > row => {
                return Err(sheet_error(format!("row {} comes after row {}: rows must be in order", row + 1, *at + 1)));
            }
            _ => {
                if let Some((at, row_cells)) = current.take() {
                    table.row(at, row_cells).map_err(sheet_error)?;
                }
                current = Some((row, vec![(column, text.clone())]));
            }
        }
    }
    if let Some((at, row_cells)) = current.take() {
        table.row(at, row_cells).map_err(sheet_error)?;
    }
    drop(cells);
    let header = table.header == Some(true);
    let first_row = table.first_index.map_or(1, |i| u64::from(i) + 1);
    let (names, data) = table.finish().map_err(sheet_error)?;
    let (names, renamed) = column_names(names);
    let row_count = data.first().map_or(0, |c: &Vec<RawColumn>| c.iter().map(|k| k.ends.len()).sum());
    let context = Context { delimiter: b',' };
    let threads = options.read.threads;
    let (columns, data_hash) = infer::table(names, data, row_count, context, threads);
    let evidence = if header {
        format!("sheet {name:?}: row {first_row} names the columns (text over the rows below)")
    } else {
        format!("sheet {name:?}: no header row (row {first_row} holds numbers), columns numbered")
    };
    Ok(Dataset {
        encoding: Chosen { value: Encoding::Utf8, evidence: "XLSX text is Unicode".into() },
        format: Chosen { value: Format::Xlsx { sheet: name.to_owned() }, evidence },
        rows: row_count,
        columns,
        problems,
        renamed,
        data_hash,
    })
}

/// A sheet's rows as raw columns (grown as columns appear, empty cells filled in), with
/// the header row's cells kept apart once the first row decides whether it is one.
#[derive(Default)]
struct Table {
    /// Whether the first row names the columns: given, or decided when it arrives (a row
    /// of text, no cell reading as a number, is a header).
    header: Option<bool>,
    /// The header row's cells.
    names: Vec<(u32, String)>,
    /// The sheet row (0-based) of the first row with a value.
    first_index: Option<u32>,
    columns: Vec<Vec<RawColumn>>,
    rows: usize,
    /// The sheet row (0-based) the next data row should have: rows skipped are empty.
    next: u32,
    /// The most cells (rows × columns, empty ones included) the table may hold.
    max_cells: u64,
}

impl Table {
    /// Adds sheet row `index` (rows arrive in order), its cells in any order.
    fn row(&mut self, index: u32, mut cells: Vec<(u32, String)>) -> Result<(), String> {
        cells.sort_by_key(|(c, _)| *c);
        if let Some(pair) = cells.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(format!("row {} holds column {} twice", u64::from(index) + 1, u64::from(pair[0].0) + 1));
        }
        if self.first_index.is_none() {
            self.first_index = Some(index);
            self.next = index;
            let is_text = || cells.iter().all(|(_, t)| crate::value::parse_number(t, DecimalMark::Point).is_none());
            if *self.header.get_or_insert_with(is_text) {
                self.names = cells;
                self.next = index.saturating_add(1);
                return Ok(());
            }
        }
        // Empty rows between are rows of missing cells, as a CSV export writes them.
        let width = self.columns.len().max(width_of(&cells));
        let rows = self.rows as u64 + u64::from(index.saturating_sub(self.next)) + 1;
        self.check(rows, width)?;
        for _ in self.next..index {
            self.push_row(&[]);
        }
        self.push_row(&cells);
        self.next = index.saturating_add(1);
        Ok(())
    }

    fn check(&self, rows: u64, width: usize) -> Result<(), String> {
        let cells = rows.saturating_mul(width as u64);
        if cells > self.max_cells {
            return Err(format!(
                "{rows} rows × {width} columns is {cells} cells, past the {}-cell limit (sparse cells far apart?)",
                self.max_cells
            ));
        }
        Ok(())
    }

    /// Adds columns, each with a missing cell for every row so far, up to `width`.
    fn widen(&mut self, width: usize) {
        while self.columns.len() < width {
            let mut column = Vec::new();
            for _ in 0..self.rows {
                push(&mut column, "");
            }
            self.columns.push(column);
        }
    }

    fn push_row(&mut self, cells: &[(u32, String)]) {
        self.widen(width_of(cells));
        let mut at = cells.iter().peekable();
        for (c, column) in self.columns.iter_mut().enumerate() {
            match at.peek() {
                Some((i, text)) if *i as usize == c => {
                    push(column, text);
                    at.next();
                }
                _ => push(column, ""),
            }
        }
        self.rows += 1;
    }

    /// Column names (from the header, or numbered) and the data columns, all as wide as
    /// the header or the widest row and as long as the table.
    fn finish(mut self) -> Result<(Vec<String>, Vec<Vec<RawColumn>>), String> {
        let width = self.columns.len().max(width_of(&self.names));
        self.check(self.rows as u64, width)?;
        self.widen(width);
        let names = if self.header == Some(true) {
            let mut names = vec![String::new(); width];
            for (c, text) in std::mem::take(&mut self.names) {
                names[c as usize] = text;
            }
            names
        } else {
            (0..width).map(|c| format!("column_{}", c + 1)).collect()
        };
        Ok((names, self.columns))
    }
}

/// Columns a row spans: one past its last cell's (cells sorted by column).
fn width_of(cells: &[(u32, String)]) -> usize {
    cells.last().map_or(0, |(c, _)| *c as usize + 1)
}

/// A cell as the text a CSV export holds; `false` for an error cell (`#DIV/0!`).
fn render(value: &DataRef<'_>, out: &mut String) -> bool {
    use std::fmt::Write as _;
    match value {
        DataRef::Empty => {}
        DataRef::Int(i) => {
            let _ = write!(out, "{i}");
        }
        DataRef::Float(f) => {
            let _ = write!(out, "{f}");
        }
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => out.push_str(s),
        DataRef::SharedString(s) => out.push_str(s),
        DataRef::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        DataRef::DateTime(d) if d.is_duration() => {
            let _ = write!(out, "{}", d.as_f64());
        }
        DataRef::DateTime(d) => {
            let (y, m, day, h, min, s, ms) = d.to_ymd_hms_milli();
            let _ = write!(out, "{y:04}-{m:02}-{day:02}");
            if (h, min, s, ms) != (0, 0, 0, 0) {
                let _ = write!(out, " {h:02}:{min:02}:{s:02}");
                if ms > 0 {
                    let _ = write!(out, ".{ms:03}");
                }
            }
        }
        DataRef::Error(_) => return false,
    }
    true
}

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
use crate::table::data_hash;

/// Caps on what a workbook may unpack to.
#[derive(Clone, Debug)]
pub struct XlsxLimits {
    pub max_entries: usize,
    /// Uncompressed bytes of all entries together.
    pub max_total_bytes: u64,
    /// Uncompressed bytes over compressed bytes, for entries over 1 MiB unpacked.
    pub max_ratio: u64,
}

impl Default for XlsxLimits {
    fn default() -> Self {
        XlsxLimits { max_entries: 10_000, max_total_bytes: 4 << 30, max_ratio: 1_000 }
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
    let open = || File::open(path).map(BufReader::new).map_err(|e| XlsxError::Open(path.display().to_string(), e));
    check_archive(open()?, &options.limits)?;
    let mut workbook: Xlsx<_> = Xlsx::new(open()?).map_err(|e| XlsxError::NotXlsx(e.to_string()))?;
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

/// One sheet's cells into raw columns, then typed like any table.
fn read_sheet<RS: Read + Seek>(
    workbook: &mut Xlsx<RS>,
    name: &str,
    options: &XlsxOptions,
) -> Result<Dataset, XlsxError> {
    let failed = |e: calamine::XlsxError| XlsxError::Sheet { sheet: name.to_owned(), message: e.to_string() };
    let mut cells = workbook.worksheet_cells_reader(name).map_err(failed)?;
    let mut row_cells: Vec<(u32, String)> = Vec::new();
    let mut problems = Problems::default();
    let max_columns = options.read.max_columns;
    let mut width = 0usize;
    // Cells arrive row by row; each row is kept until the next one starts.
    let mut table = Table::default();
    let mut current: Option<u32> = None;
    let mut text = String::new();
    while let Some(cell) = cells.next_cell().map_err(failed)? {
        let (row, column) = cell.get_position();
        if current != Some(row) {
            if let Some(done) = current {
                table.row(done, std::mem::take(&mut row_cells));
            }
            current = Some(row);
        }
        text.clear();
        if !render(cell.get_value(), &mut text) {
            problems.invalid_cells.add(u64::from(row) + 1, options.read.max_examples);
            continue;
        }
        if text.is_empty() {
            continue;
        }
        if column as usize >= max_columns {
            return Err(IngestError::TooManyColumns { limit: max_columns, line: u64::from(row) + 1 }.into());
        }
        width = width.max(column as usize + 1);
        row_cells.push((column, text.clone()));
    }
    if let Some(done) = current {
        table.row(done, row_cells);
    }
    drop(cells);
    let header = options.header.unwrap_or_else(|| table.header_likely());
    let (names, data, first_data_row) = table.finish(width, header);
    let (names, renamed) = column_names(names);
    let row_count = data.first().map_or(0, |c: &Vec<RawColumn>| c.iter().map(|k| k.ends.len()).sum());
    let context = Context { delimiter: b',' };
    let threads = options.read.threads;
    let columns = crate::par::map_owned(names.into_iter().zip(data).collect(), threads, |(name, chunks)| {
        infer::column(name, chunks, row_count, context)
    });
    let data_hash = data_hash(&columns, row_count, threads);
    let evidence = format!(
        "sheet {name:?}, {}",
        if header { format!("row {first_data_row} after a header row") } else { "no header row".to_owned() }
    );
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

/// Rows gathered before the header is known: the first row's cells, and the rest as
/// raw columns (grown as columns appear, empty cells filled in).
#[derive(Default)]
struct Table {
    first: Option<Vec<(u32, String)>>,
    first_is_text: bool,
    columns: Vec<Vec<RawColumn>>,
    rows: usize,
    /// The sheet row (0-based) the next data row should have: skipped rows are empty rows.
    next: Option<u32>,
}

impl Table {
    fn row(&mut self, index: u32, cells: Vec<(u32, String)>) {
        if self.first.is_none() {
            self.first_is_text = !cells.is_empty()
                && cells.iter().all(|(_, t)| crate::value::parse_number(t, crate::value::DecimalMark::Point).is_none());
            self.first = Some(cells);
            self.next = Some(index + 1);
            return;
        }
        // Empty rows between are rows of missing cells, as a CSV export writes them.
        let next = self.next.unwrap_or(index);
        for _ in next..index {
            self.push_row(&[]);
        }
        self.push_row(&cells);
        self.next = Some(index + 1);
    }

    fn push_row(&mut self, cells: &[(u32, String)]) {
        let width = cells.iter().map(|(c, _)| *c as usize + 1).max().unwrap_or(0);
        while self.columns.len() < width {
            let mut column = Vec::new();
            for _ in 0..self.rows {
                push(&mut column, "");
            }
            self.columns.push(column);
        }
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

    /// A first row of text over rows that are not all text reads as a header.
    fn header_likely(&self) -> bool {
        self.first_is_text
    }

    /// Column names (from the header or numbered) and the data columns, `width` wide.
    fn finish(mut self, width: usize, header: bool) -> (Vec<String>, Vec<Vec<RawColumn>>, usize) {
        let first = self.first.take().unwrap_or_default();
        let (names, first_data_row) = if header {
            let mut names = vec![String::new(); width];
            for (c, text) in first {
                names[c as usize] = text;
            }
            (names, 2)
        } else {
            // The first row is data: put it in front.
            let mut rest = std::mem::take(&mut self);
            self.push_row(&first);
            for (c, chunks) in rest.columns.iter_mut().enumerate() {
                while self.columns.len() <= c {
                    let mut column = Vec::new();
                    for _ in 0..self.rows {
                        push(&mut column, "");
                    }
                    self.columns.push(column);
                }
                for chunk in chunks.drain(..) {
                    for cell in chunk.iter() {
                        push(&mut self.columns[c], cell);
                    }
                }
            }
            self.rows += rest.rows;
            ((0..width).map(|c| format!("column_{}", c + 1)).collect(), 1)
        };
        let rows = self.rows;
        while self.columns.len() < width {
            let mut column = Vec::new();
            for _ in 0..rows {
                push(&mut column, "");
            }
            self.columns.push(column);
        }
        // Columns shorter than the table (cells appeared later) are padded.
        for column in &mut self.columns {
            let have: usize = column.iter().map(|k| k.ends.len()).sum();
            for _ in have..rows {
                push(column, "");
            }
        }
        (names, self.columns, first_data_row)
    }
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

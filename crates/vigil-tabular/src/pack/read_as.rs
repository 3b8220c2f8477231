//! How the input is read as tables: the ingest's settings ([`IngestSettings`]), what it
//! records so the plugins after it read the same tables again ([`ReadAs`]), and the one
//! loader both go through ([`load`]).

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use vigil_pack::Files;
use vigil_pack::protocol::DatasetVersion;

use crate::ingest::{Dataset, Format as TableFormat, IngestOptions, InputFormat};
use crate::read::ReadOptions;
use crate::sniff::Encoding;
use crate::table::tables_hash;
use crate::xlsx::{XlsxOptions, ingest_xlsx_from};

/// The longest record read unless the settings say otherwise.
const MAX_RECORD_BYTES_DEFAULT: u64 = 16 << 20;

/// The settings of `tabular.ingest`: how to read the input. What is not given is
/// detected from the content, with the evidence reported.
#[derive(Clone, Debug, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct IngestSettings {
    /// A text table's layout. Detected from the content when not given.
    pub format: Option<TextFormat>,
    /// A text table's encoding. Detected when not given.
    pub encoding: Option<EncodingSetting>,
    /// A delimited table's delimiter: one ASCII character other than a quote or a
    /// newline. Detected when not given.
    #[schemars(length(min = 1, max = 1))]
    pub delimiter: Option<String>,
    /// Whether the first row names the columns. Detected when not given.
    pub header: Option<bool>,
    /// The longest record read; a longer one is left out, counted and cited.
    #[schemars(range(min = 64, max = 1_073_741_824))]
    pub max_record_bytes: u64,
    /// XLSX: the sheets to read; those with rows are profiled and analysed (every sheet
    /// when omitted, or only `sheet` when that is given).
    #[schemars(extend("uniqueItems" = true))]
    pub sheets: Option<Vec<String>>,
    /// XLSX: the one sheet to profile and analyse (every sheet read that has rows when
    /// omitted).
    pub sheet: Option<String>,
}

impl Default for IngestSettings {
    fn default() -> Self {
        IngestSettings {
            format: None,
            encoding: None,
            delimiter: None,
            header: None,
            max_record_bytes: MAX_RECORD_BYTES_DEFAULT,
            sheets: None,
            sheet: None,
        }
    }
}

/// A text table's layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TextFormat {
    /// CSV, TSV or another delimiter.
    Delimited,
    /// An array of records, or JSON Lines.
    Json,
}

/// A text encoding, by the name settings use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum EncodingSetting {
    #[serde(rename = "utf-8")]
    Utf8,
    #[serde(rename = "utf-8-bom")]
    Utf8Bom,
    #[serde(rename = "utf-16le")]
    Utf16Le,
    #[serde(rename = "utf-16be")]
    Utf16Be,
    #[serde(rename = "latin-1")]
    Latin1,
}

impl From<EncodingSetting> for Encoding {
    fn from(e: EncodingSetting) -> Encoding {
        match e {
            EncodingSetting::Utf8 => Encoding::Utf8,
            EncodingSetting::Utf8Bom => Encoding::Utf8Bom,
            EncodingSetting::Utf16Le => Encoding::Utf16Le,
            EncodingSetting::Utf16Be => Encoding::Utf16Be,
            EncodingSetting::Latin1 => Encoding::Latin1,
        }
    }
}

impl From<Encoding> for EncodingSetting {
    fn from(e: Encoding) -> EncodingSetting {
        match e {
            Encoding::Utf8 => EncodingSetting::Utf8,
            Encoding::Utf8Bom => EncodingSetting::Utf8Bom,
            Encoding::Utf16Le => EncodingSetting::Utf16Le,
            Encoding::Utf16Be => EncodingSetting::Utf16Be,
            Encoding::Latin1 => EncodingSetting::Latin1,
        }
    }
}

/// The name of an encoding, as settings and summaries write it.
pub(super) fn encoding_name(e: Encoding) -> &'static str {
    match EncodingSetting::from(e) {
        EncodingSetting::Utf8 => "utf-8",
        EncodingSetting::Utf8Bom => "utf-8-bom",
        EncodingSetting::Utf16Le => "utf-16le",
        EncodingSetting::Utf16Be => "utf-16be",
        EncodingSetting::Latin1 => "latin-1",
    }
}

impl IngestSettings {
    /// The options that read a text table as these settings say.
    fn text_options(&self) -> Result<IngestOptions, String> {
        let format = self.format.map(|f| match f {
            TextFormat::Delimited => InputFormat::Delimited,
            TextFormat::Json => InputFormat::Json,
        });
        let delimiter = match self.delimiter.as_deref() {
            None => None,
            Some(d) => match d.as_bytes() {
                [b] if b.is_ascii() && !matches!(b, b'"' | b'\n' | b'\r') => Some(*b),
                _ => {
                    return Err(format!(
                        "the delimiter {d:?} must be one ASCII character other than a quote or newline"
                    ));
                }
            },
        };
        let cap = usize::try_from(self.max_record_bytes).map_err(|_| "max_record_bytes is too large".to_owned())?;
        Ok(IngestOptions {
            format,
            encoding: self.encoding.map(Encoding::from),
            delimiter,
            header: self.header,
            read: ReadOptions { max_record_bytes: cap, ..ReadOptions::default() },
        })
    }
}

/// How the ingest read the input: enough to read the same tables again. Recorded in its
/// response (`data.read_as`) for the plugins after it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "snake_case")]
pub enum ReadAs {
    Delimited(TextRead),
    Json(TextRead),
    /// A workbook: the sheets that became tables.
    Xlsx {
        sheets: Vec<String>,
        header: Option<bool>,
    },
}

/// How a text table was read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TextRead {
    pub encoding: EncodingSetting,
    pub delimiter: Option<String>,
    pub header: Option<bool>,
    pub max_record_bytes: u64,
}

impl ReadAs {
    /// How a text table was read. A workbook has no text settings: [`load`] records its
    /// sheets instead, so one here is a mistake, refused rather than recorded wrongly.
    fn of_text(dataset: &Dataset, max_record_bytes: u64) -> Result<ReadAs, String> {
        let read = |delimiter: Option<char>, header: Option<bool>| TextRead {
            encoding: dataset.encoding.value.into(),
            delimiter: delimiter.and_then(|c| u8::try_from(c).ok()).map(|b| char::from(b).to_string()),
            header,
            max_record_bytes,
        };
        Ok(match &dataset.format.value {
            TableFormat::Delimited(d) => ReadAs::Delimited(read(Some(d.delimiter.value), Some(d.header.value))),
            TableFormat::Json { .. } => ReadAs::Json(read(None, None)),
            TableFormat::Xlsx { sheet } => {
                return Err(format!("sheet {sheet:?} of a workbook cannot be read again as text"));
            }
        })
    }

    /// The settings that read the input this way again, and whether it is a workbook.
    pub fn settings(&self) -> (IngestSettings, bool) {
        let text = |format: TextFormat, read: &TextRead| IngestSettings {
            format: Some(format),
            encoding: Some(read.encoding),
            delimiter: read.delimiter.clone(),
            header: read.header,
            max_record_bytes: read.max_record_bytes,
            ..IngestSettings::default()
        };
        match self {
            ReadAs::Delimited(read) => (text(TextFormat::Delimited, read), false),
            ReadAs::Json(read) => (text(TextFormat::Json, read), false),
            ReadAs::Xlsx { sheets, header } => {
                (IngestSettings { sheets: Some(sheets.clone()), header: *header, ..IngestSettings::default() }, true)
            }
        }
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|e| unreachable!("a ReadAs is always JSON: {e}"))
    }
}

/// The input read as tables, ready to describe.
pub(super) struct Loaded {
    /// The tables to profile and analyse, each with the sheet it was read from (for a
    /// workbook), in the input's order.
    pub tables: Vec<(Option<String>, Dataset)>,
    /// How to read the same tables again.
    pub read_as: ReadAs,
    /// For a workbook: every sheet read (name, rows, columns, data_hash, whether it is
    /// one of `tables`).
    pub sheets: Vec<Value>,
}

/// Reads the input as `settings` say (the ingest's, or those its `read_as` gives): text or
/// JSON as one table; a workbook (`xlsx`) as one table per sheet with rows (or the one
/// `sheet` names; the first sheet when none has rows).
pub(super) fn load(files: &dyn Files, settings: &IngestSettings, xlsx: bool) -> Result<Loaded, String> {
    let input = files.input().map_err(|e| format!("cannot open the input: {e}"))?;
    if !xlsx {
        let options = settings.text_options()?;
        let dataset = crate::ingest(input, &options).map_err(|e| format!("cannot read the input as a table: {e}"))?;
        let read_as = ReadAs::of_text(&dataset, settings.max_record_bytes)?;
        return Ok(Loaded { tables: vec![(None, dataset)], read_as, sheets: Vec::new() });
    }
    let sheet = settings.sheet.as_deref();
    let mut sheets: Vec<String> = match &settings.sheets {
        Some(names) => names.clone(),
        None => sheet.map(str::to_owned).into_iter().collect(),
    };
    // A sheet named twice is one table, read once.
    let mut seen = HashSet::new();
    sheets.retain(|name| seen.insert(name.clone()));
    let options = XlsxOptions { sheets, header: settings.header, ..XlsxOptions::default() };
    let read = ingest_xlsx_from(input, &options).map_err(|e| format!("cannot read the workbook: {e}"))?;
    let mut chosen: Vec<bool> = match sheet {
        Some(name) if !read.iter().any(|s| s.name == name) => {
            return Err(format!("sheet {name:?} was not read: list it in `sheets`"));
        }
        Some(name) => read.iter().map(|s| s.name == name).collect(),
        None => read.iter().map(|s| s.dataset.rows > 0).collect(),
    };
    if !chosen.contains(&true) {
        *chosen.first_mut().ok_or_else(|| "the workbook has no sheets".to_owned())? = true;
    }
    let sheets = read
        .iter()
        .zip(&chosen)
        .map(|(s, chosen)| {
            json!({
                "name": s.name,
                "rows": s.dataset.rows,
                "columns": s.dataset.columns.len(),
                "data_hash": s.dataset.data_hash,
                "profiled": chosen,
            })
        })
        .collect();
    let tables: Vec<(Option<String>, Dataset)> =
        read.into_iter().zip(chosen).filter(|(_, chosen)| *chosen).map(|(s, _)| (Some(s.name), s.dataset)).collect();
    let names = tables.iter().filter_map(|(name, _)| name.clone()).collect();
    Ok(Loaded { tables, read_as: ReadAs::Xlsx { sheets: names, header: settings.header }, sheets })
}

/// The dataset version of the input's tables: the only one's, or for several their
/// combined hash ([`tables_hash`]) with the rows and columns of them all.
pub(super) fn dataset_version(tables: &[(Option<String>, Dataset)]) -> DatasetVersion {
    let hash = match tables {
        [(_, only)] => only.data_hash.clone(),
        _ => tables_hash(tables.iter().map(|(sheet, d)| (sheet.as_deref().unwrap_or(""), d.data_hash.as_str()))),
    };
    DatasetVersion {
        data_hash: hash,
        rows: tables.iter().map(|(_, d)| d.rows as u64).sum(),
        columns: tables.iter().map(|(_, d)| d.columns.len() as u64).sum(),
    }
}

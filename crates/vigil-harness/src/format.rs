//! What kind of input a file is, from its first bytes and its name.
//!
//! Content wins over the name: a `.csv` that starts with `PK\x03\x04` is a zip (probably a
//! spreadsheet saved under the wrong name). Text formats are told apart by their first
//! lines; the name only breaks ties between formats the content cannot distinguish.

use serde::{Deserialize, Serialize};

/// How many leading bytes [`detect`] looks at.
pub const SNIFF_BYTES: usize = 8 * 1024;

/// A detected input format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Csv,
    Tsv,
    Json,
    Ndjson,
    Text,
    Xlsx,
    Zip,
    Gzip,
    Parquet,
    Pdf,
    Wav,
    Flac,
    Mp3,
    Ogg,
    Empty,
    Binary,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Tsv => "tsv",
            Format::Json => "json",
            Format::Ndjson => "ndjson",
            Format::Text => "text",
            Format::Xlsx => "xlsx",
            Format::Zip => "zip",
            Format::Gzip => "gzip",
            Format::Parquet => "parquet",
            Format::Pdf => "pdf",
            Format::Wav => "wav",
            Format::Flac => "flac",
            Format::Mp3 => "mp3",
            Format::Ogg => "ogg",
            Format::Empty => "empty",
            Format::Binary => "binary",
        }
    }

    /// The broad kind a pipeline is recommended for.
    pub fn kind(self) -> InputKind {
        match self {
            Format::Csv | Format::Tsv | Format::Json | Format::Ndjson | Format::Xlsx | Format::Parquet => {
                InputKind::Table
            }
            Format::Wav | Format::Flac | Format::Mp3 | Format::Ogg => InputKind::Audio,
            Format::Text | Format::Pdf => InputKind::Document,
            Format::Zip | Format::Gzip | Format::Empty | Format::Binary => InputKind::Other,
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ALL.iter().copied().find(|f| f.as_str() == s).ok_or_else(|| format!("unknown format {s:?}"))
    }
}

const ALL: [Format; 16] = [
    Format::Csv,
    Format::Tsv,
    Format::Json,
    Format::Ndjson,
    Format::Text,
    Format::Xlsx,
    Format::Zip,
    Format::Gzip,
    Format::Parquet,
    Format::Pdf,
    Format::Wav,
    Format::Flac,
    Format::Mp3,
    Format::Ogg,
    Format::Empty,
    Format::Binary,
];

/// The broad kind of an input, which decides the recommended pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InputKind {
    Table,
    Audio,
    Document,
    Other,
}

impl InputKind {
    pub fn as_str(self) -> &'static str {
        match self {
            InputKind::Table => "table",
            InputKind::Audio => "audio",
            InputKind::Document => "document",
            InputKind::Other => "other",
        }
    }
}

/// Detects the format of a file from its first bytes (up to [`SNIFF_BYTES`]) and its name.
pub fn detect(head: &[u8], file_name: &str) -> Format {
    let ext = file_name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    if head.is_empty() {
        return Format::Empty;
    }
    let magic: &[(&[u8], Format)] = &[
        (b"PAR1", Format::Parquet),
        (b"%PDF-", Format::Pdf),
        (b"fLaC", Format::Flac),
        (b"OggS", Format::Ogg),
        (b"ID3", Format::Mp3),
        (b"\x1f\x8b", Format::Gzip),
    ];
    if let Some((_, format)) = magic.iter().find(|(m, _)| head.starts_with(m)) {
        return *format;
    }
    if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WAVE" {
        return Format::Wav;
    }
    if head.len() >= 2 && head[0] == 0xFF && head[1] & 0xE0 == 0xE0 && ext == "mp3" {
        return Format::Mp3;
    }
    if head.starts_with(b"PK\x03\x04") {
        // An Office Open XML workbook names its parts near the start of the archive.
        let is_workbook =
            ext == "xlsx" || contains(head, b"xl/") || contains(head, b"[Content_Types].xml") && ext != "zip";
        return if is_workbook { Format::Xlsx } else { Format::Zip };
    }
    let Some(text) = as_text(head) else { return Format::Binary };
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let lines: Vec<&str> = trimmed.lines().filter(|l| !l.trim().is_empty()).take(3).collect();
        let each_line_is_object =
            lines.len() > 1 && lines.iter().all(|l| l.trim_start().starts_with('{') && l.trim_end().ends_with('}'));
        return if ext == "ndjson" || ext == "jsonl" || each_line_is_object { Format::Ndjson } else { Format::Json };
    }
    match delimiter(&text) {
        Some(b'\t') => Format::Tsv,
        Some(_) => Format::Csv,
        None if ext == "csv" => Format::Csv,
        None if ext == "tsv" => Format::Tsv,
        None => Format::Text,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The head as text: UTF-8 (a cut-off last character allowed), UTF-16 with a BOM, or
/// Latin-1 when it has no control bytes. `None` for binary content.
fn as_text(head: &[u8]) -> Option<String> {
    if let Some(rest) = head.strip_prefix(b"\xEF\xBB\xBF") {
        return as_text(rest);
    }
    if head.starts_with(b"\xFF\xFE") || head.starts_with(b"\xFE\xFF") {
        let little = head[0] == 0xFF;
        let units: Vec<u16> = head[2..]
            .chunks_exact(2)
            .map(|c| if little { u16::from_le_bytes([c[0], c[1]]) } else { u16::from_be_bytes([c[0], c[1]]) })
            .collect();
        return Some(char::decode_utf16(units).map(|c| c.unwrap_or('\u{FFFD}')).collect());
    }
    let is_control = |b: u8| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0C);
    if head.iter().any(|&b| is_control(b)) {
        return None;
    }
    match std::str::from_utf8(head) {
        Ok(text) => Some(text.to_owned()),
        // A multi-byte character cut at the end of the sniffed bytes.
        Err(e) if e.error_len().is_none() => Some(String::from_utf8_lossy(&head[..e.valid_up_to()]).into_owned()),
        Err(_) => Some(head.iter().map(|&b| char::from(b)).collect()),
    }
}

/// The delimiter of a delimited table: the candidate that appears a consistent, non-zero
/// number of times (outside quotes) on each of the first complete lines.
fn delimiter(text: &str) -> Option<u8> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).take(20).collect();
    // The last sniffed line may be cut off.
    let complete = if lines.len() > 2 { &lines[..lines.len() - 1] } else { &lines[..] };
    if complete.is_empty() {
        return None;
    }
    [b',', b'\t', b';', b'|']
        .into_iter()
        .filter_map(|d| {
            let counts: Vec<usize> = complete.iter().map(|l| count_outside_quotes(l, d)).collect();
            let first = counts[0];
            (first > 0 && counts.iter().all(|&c| c == first)).then_some((d, first))
        })
        .max_by_key(|&(_, n)| n)
        .map(|(d, _)| d)
}

fn count_outside_quotes(line: &str, delimiter: u8) -> usize {
    let mut quoted = false;
    let mut count = 0;
    for b in line.bytes() {
        if b == b'"' {
            quoted = !quoted;
        } else if b == delimiter && !quoted {
            count += 1;
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_by_content() {
        assert_eq!(detect(b"id,amount\n1,2.5\n2,3\n", "orders.csv"), Format::Csv);
        assert_eq!(detect(b"id;amount\n1;2,5\n2;3\n", "orders.txt"), Format::Csv);
        assert_eq!(detect(b"id\tamount\n1\t2\n", "orders.csv"), Format::Tsv);
        assert_eq!(detect(b"\xEF\xBB\xBFid,amount\r\n1,2\r\n", "x"), Format::Csv);
        assert_eq!(detect(b"\"a,b\",c\n\"x,y\",z\n", "q"), Format::Csv);
        assert_eq!(detect(b"[{\"a\": 1}]", "data.json"), Format::Json);
        assert_eq!(detect(b"{\"a\": 1}\n{\"a\": 2}\n", "data.json"), Format::Ndjson);
        assert_eq!(detect(b"caf\xe9,prix\n1,2\n", "latin1.csv"), Format::Csv);
    }

    #[test]
    fn binary_formats_by_magic() {
        assert_eq!(detect(b"PK\x03\x04....[Content_Types].xml....xl/workbook.xml", "book.csv"), Format::Xlsx);
        assert_eq!(detect(b"PK\x03\x04....readme.txt", "a.zip"), Format::Zip);
        assert_eq!(detect(b"RIFF\x24\x00\x00\x00WAVEfmt ", "a.bin"), Format::Wav);
        assert_eq!(detect(b"PAR1\x15\x00", "t.parquet"), Format::Parquet);
        assert_eq!(detect(b"\x00\x01\x02\x03", "t.csv"), Format::Binary);
        assert_eq!(detect(b"", "t.csv"), Format::Empty);
    }

    #[test]
    fn prose_is_text() {
        assert_eq!(detect(b"Dear team,\nthe numbers are in.\n", "note.txt"), Format::Text);
        assert_eq!(Format::Text.kind(), InputKind::Document);
        assert_eq!("xlsx".parse::<Format>(), Ok(Format::Xlsx));
    }
}

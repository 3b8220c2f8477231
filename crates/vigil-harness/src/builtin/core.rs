//! The core pack: two plugins every input gets, whatever its format.
//!
//! - `core.inspect` (ingest): the input's identity: encoding, line endings, line count, a
//!   content hash independent of BOM and line endings (the dataset's `data_hash`), and
//!   findings for mixed line endings, a missing final newline, NUL bytes, invalid UTF-8.
//! - `core.text_profile` (profile): line-level checks of text and tables: blank, duplicate
//!   and over-long lines, trailing whitespace, and for delimited tables rows whose field
//!   count differs from the header's (ragged rows), each with the line numbers.
//!
//! It lives in the harness because it reads inputs by the harness's [`Format`]; otherwise
//! it is a pack like any other ([`vigil_pack`]).

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read};

use serde_json::{Value, json};
use vigil_core::digest::Sha256Hasher;
use vigil_pack::protocol::{
    Budgets, DatasetVersion, EVIDENCE_ROWS_MAX, Evidence, Finding, Request, Response, Severity,
};
use vigil_pack::{Builtin, Declaration, Files, NoSettings, Pack, Plugin, PluginKind};

use crate::format::Format;

/// The core pack.
pub const PACK: Pack = Pack { name: "core", plugins: &[Builtin::of::<Inspect>(), Builtin::of::<TextProfile>()] };

/// Longest line `core.text_profile` keeps in memory for duplicate detection.
const LINE_BYTES_KEPT_MAX: usize = 4096;

/// `core.inspect`.
#[derive(Debug)]
pub struct Inspect;

impl Plugin for Inspect {
    type Settings = NoSettings;

    const DECLARATION: Declaration = Declaration {
        id: "core.inspect",
        name: "Inspect input",
        version: "1.0.0",
        kind: PluginKind::Ingest,
        entry: "inspect",
        depends_on: &[],
        input_formats: &[],
        finding_kinds: &["empty_input", "mixed_line_endings", "missing_final_newline", "nul_bytes", "invalid_utf8"],
        description: "Encoding, line endings, line count and a canonical content hash of any input",
        budgets: Budgets { time_limit_ms: 600_000, memory_mb: 256, row_limit: None },
    };

    fn run(request: &Request, _: NoSettings, files: &dyn Files) -> Result<Response, String> {
        inspect(request, files)
    }
}

/// `core.text_profile`.
#[derive(Debug)]
pub struct TextProfile;

/// The settings of `core.text_profile`.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TextProfileSettings {
    /// Lines longer than this many bytes are reported as long.
    #[schemars(range(min = 1))]
    pub long_line_bytes: u64,
}

impl Default for TextProfileSettings {
    fn default() -> Self {
        TextProfileSettings { long_line_bytes: 10_000 }
    }
}

impl Plugin for TextProfile {
    type Settings = TextProfileSettings;

    const DECLARATION: Declaration = Declaration {
        id: "core.text_profile",
        name: "Text and table lines",
        version: "1.0.0",
        kind: PluginKind::Profile,
        entry: "text_profile",
        depends_on: &["core.inspect"],
        input_formats: &["csv", "tsv", "text", "json", "ndjson"],
        finding_kinds: &[
            "blank_lines",
            "duplicate_rows",
            "duplicate_lines",
            "trailing_whitespace",
            "long_lines",
            "ragged_rows",
        ],
        description: "Blank, duplicate, long and ragged lines, with line numbers",
        budgets: Budgets { time_limit_ms: 600_000, memory_mb: 1024, row_limit: None },
    };

    fn run(request: &Request, settings: TextProfileSettings, files: &dyn Files) -> Result<Response, String> {
        text_profile(request, &settings, files)
    }
}

fn rows_evidence(rows: &[u64], values: BTreeMap<String, Value>) -> Evidence {
    Evidence { columns: Vec::new(), rows: rows.iter().copied().take(EVIDENCE_ROWS_MAX).collect(), values }
}

/// Streaming facts about the bytes of an input.
#[derive(Debug, Default, PartialEq)]
struct ByteFacts {
    bytes: u64,
    lines: u64,
    crlf: Vec<u64>,
    crlf_count: u64,
    lf_count: u64,
    lf_lines: Vec<u64>,
    nul_lines: Vec<u64>,
    nul_count: u64,
    invalid_utf8_lines: Vec<u64>,
    invalid_utf8_count: u64,
    ends_with_newline: bool,
    bom: Option<&'static str>,
}

/// Line-level facts and the canonical hash of an input, read in pieces: memory stays at
/// the reader's buffer whatever the lines' lengths, and the result never depends on where
/// the pieces fall. The buffer must hold a byte-order mark (3 bytes).
fn scan_input(reader: &mut impl BufRead) -> Result<(ByteFacts, Sha256Hasher), String> {
    let mut facts = ByteFacts::default();
    // The canonical hash: BOM dropped, CRLF read as LF, a final newline implied.
    let mut canonical = Sha256Hasher::new();
    let start = reader.fill_buf().map_err(|e| format!("cannot read the input: {e}"))?;
    let bom = [(&b"\xEF\xBB\xBF"[..], "utf-8"), (b"\xFF\xFE", "utf-16le"), (b"\xFE\xFF", "utf-16be")]
        .into_iter()
        .find(|(bom, _)| start.starts_with(bom));
    if let Some((bytes, name)) = bom {
        facts.bom = Some(name);
        facts.bytes += bytes.len() as u64;
        reader.consume(bytes.len());
    }
    let check_utf8 = facts.bom.is_none_or(|b| b == "utf-8");
    let mut line = LineScan::default();
    scan_lines(reader, |piece| {
        match piece {
            // An empty part (a buffer ending right before the newline) changes nothing.
            Piece::Part([]) => {}
            Piece::Part(part) => {
                facts.bytes += part.len() as u64;
                // A CR that ended the previous piece was content after all.
                if std::mem::take(&mut line.pending_cr) {
                    line.content(b"\r", check_utf8, &mut canonical);
                }
                let (body, cr) = match part.strip_suffix(b"\r") {
                    Some(body) => (body, true),
                    None => (part, false),
                };
                line.content(body, check_utf8, &mut canonical);
                line.pending_cr = cr;
            }
            Piece::End { newline } => {
                facts.lines += 1;
                let number = facts.lines;
                facts.ends_with_newline = newline;
                if newline {
                    facts.bytes += 1;
                    if line.pending_cr {
                        facts.crlf_count += 1;
                        push_capped(&mut facts.crlf, number);
                    } else {
                        facts.lf_count += 1;
                        push_capped(&mut facts.lf_lines, number);
                    }
                } else if line.pending_cr {
                    line.content(b"\r", check_utf8, &mut canonical);
                }
                if line.nul {
                    facts.nul_count += 1;
                    push_capped(&mut facts.nul_lines, number);
                }
                if check_utf8 && (line.invalid_utf8 || !line.utf8_tail.is_empty()) {
                    facts.invalid_utf8_count += 1;
                    push_capped(&mut facts.invalid_utf8_lines, number);
                }
                canonical.update(b"\n");
                line = LineScan::default();
            }
        }
        Ok(())
    })?;
    Ok((facts, canonical))
}

fn inspect(request: &Request, files: &dyn Files) -> Result<Response, String> {
    let input = files.input().map_err(|e| format!("cannot open the input: {e}"))?;
    let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, input);
    let (facts, canonical) = scan_input(&mut reader)?;
    let format: Format = request.input.format.parse().unwrap_or(Format::Binary);
    let is_text = !matches!(
        format,
        Format::Binary
            | Format::Zip
            | Format::Gzip
            | Format::Xlsx
            | Format::Parquet
            | Format::Pdf
            | Format::Wav
            | Format::Flac
            | Format::Mp3
            | Format::Ogg
    );
    let data_hash = if is_text { canonical.finish().to_string() } else { request.input.sha256.clone() };

    let mut findings = Vec::new();
    if facts.bytes == 0 {
        findings.push(Finding::measured(
            "empty_input",
            "The input is empty".into(),
            Severity::High,
            Evidence { values: BTreeMap::from([("bytes".to_owned(), json!(0))]), ..Evidence::default() },
        ));
    }
    if is_text {
        if facts.crlf_count > 0 && facts.lf_count > 0 {
            let (minority, rows) =
                if facts.crlf_count <= facts.lf_count { ("CRLF", &facts.crlf) } else { ("LF", &facts.lf_lines) };
            findings.push(Finding::measured(
                "mixed_line_endings",
                format!("Mixed line endings: {} CRLF and {} LF lines", facts.crlf_count, facts.lf_count),
                Severity::Low,
                rows_evidence(
                    rows,
                    BTreeMap::from([
                        ("crlf_lines".to_owned(), json!(facts.crlf_count)),
                        ("lf_lines".to_owned(), json!(facts.lf_count)),
                        ("rows_cited".to_owned(), json!(format!("lines ending in {minority}"))),
                    ]),
                ),
            ));
        }
        if facts.bytes > 0 && !facts.ends_with_newline {
            findings.push(Finding::measured(
                "missing_final_newline",
                "The last line has no line ending".into(),
                Severity::Info,
                rows_evidence(&[facts.lines], BTreeMap::new()),
            ));
        }
        if facts.nul_count > 0 {
            findings.push(Finding::measured(
                "nul_bytes",
                format!("{} lines contain NUL bytes", facts.nul_count),
                Severity::Medium,
                rows_evidence(&facts.nul_lines, BTreeMap::from([("lines".to_owned(), json!(facts.nul_count))])),
            ));
        }
        if facts.invalid_utf8_count > 0 && facts.bom.is_some() {
            findings.push(Finding::measured(
                "invalid_utf8",
                format!("{} lines are not valid UTF-8", facts.invalid_utf8_count),
                Severity::Medium,
                rows_evidence(
                    &facts.invalid_utf8_lines,
                    BTreeMap::from([("lines".to_owned(), json!(facts.invalid_utf8_count))]),
                ),
            ));
        }
    }
    let encoding = match (facts.bom, facts.invalid_utf8_count) {
        (Some(bom), _) => format!("{bom} with BOM"),
        (None, 0) if is_text => "utf-8".to_owned(),
        (None, _) if is_text => "latin-1 (not valid UTF-8)".to_owned(),
        _ => "binary".to_owned(),
    };
    let line_ending = match (facts.crlf_count, facts.lf_count) {
        (0, 0) => "none",
        (_, 0) => "crlf",
        (0, _) => "lf",
        _ => "mixed",
    };
    let columns = if matches!(format, Format::Csv | Format::Tsv) { header_fields(files, format) } else { 0 };
    let rows = if matches!(format, Format::Csv | Format::Tsv) { facts.lines.saturating_sub(1) } else { facts.lines };
    let metrics = BTreeMap::from([
        ("bytes".to_owned(), json!(facts.bytes)),
        ("lines".to_owned(), json!(facts.lines)),
        ("encoding".to_owned(), json!(encoding)),
        ("line_ending".to_owned(), json!(line_ending)),
        ("format".to_owned(), json!(format)),
    ]);
    let mut response = Response::ok(
        format!(
            "{} input, {} bytes, {} lines, {encoding}, {line_ending} line endings",
            format, facts.bytes, facts.lines
        ),
        findings,
        metrics,
    );
    response.dataset = Some(DatasetVersion { data_hash, rows, columns });
    Ok(response)
}

fn push_capped(rows: &mut Vec<u64>, row: u64) {
    if rows.len() < EVIDENCE_ROWS_MAX {
        rows.push(row);
    }
}

/// Read buffer of the line scanners: also the most of a line held in memory at once.
const READ_BUFFER_BYTES: usize = 256 * 1024;

/// A piece of a line: some of its bytes (without the newline), or its end.
enum Piece<'a> {
    Part(&'a [u8]),
    End { newline: bool },
}

/// Feeds every line of `reader` to `on` as parts of at most the reader's buffer, then its
/// end, so no line is ever held whole: a 200 MB line costs what a short one does.
fn scan_lines(reader: &mut impl BufRead, mut on: impl FnMut(Piece<'_>) -> Result<(), String>) -> Result<(), String> {
    let mut mid_line = false;
    loop {
        let buf = reader.fill_buf().map_err(|e| format!("cannot read the input: {e}"))?;
        if buf.is_empty() {
            return if mid_line { on(Piece::End { newline: false }) } else { Ok(()) };
        }
        match buf.iter().position(|b| *b == b'\n') {
            Some(i) => {
                on(Piece::Part(&buf[..i]))?;
                on(Piece::End { newline: true })?;
                reader.consume(i + 1);
                mid_line = false;
            }
            None => {
                let n = buf.len();
                on(Piece::Part(buf))?;
                reader.consume(n);
                mid_line = true;
            }
        }
    }
}

/// What `core.inspect` learns about one line as its parts stream by.
#[derive(Default)]
struct LineScan {
    /// The last part ended in a CR, held back until it is known whether a newline follows.
    pending_cr: bool,
    nul: bool,
    invalid_utf8: bool,
    /// The start of a UTF-8 sequence cut by a part boundary (at most 3 bytes).
    utf8_tail: Vec<u8>,
}

impl LineScan {
    fn content(&mut self, bytes: &[u8], check_utf8: bool, canonical: &mut Sha256Hasher) {
        canonical.update(bytes);
        self.nul |= bytes.contains(&0);
        if !check_utf8 || self.invalid_utf8 || bytes.is_empty() {
            return;
        }
        let joined;
        let text = if self.utf8_tail.is_empty() {
            bytes
        } else {
            joined = [self.utf8_tail.as_slice(), bytes].concat();
            &joined
        };
        match std::str::from_utf8(text) {
            Ok(_) => self.utf8_tail.clear(),
            // Cut short at the end: the next part may complete it.
            Err(e) if e.error_len().is_none() => self.utf8_tail = text[e.valid_up_to()..].to_vec(),
            Err(_) => self.invalid_utf8 = true,
        }
    }
}

/// Delimiters a header line is sniffed for.
const SNIFFED_DELIMITERS: [u8; 4] = [b',', b'\t', b';', b'|'];

/// What `text.profile` learns about one line as its parts stream by: its length, how it
/// ends, its fields for each candidate delimiter, and (while short) its bytes.
struct LineShape {
    len: u64,
    /// CRs at the end so far (a line's trailing CRs are not content).
    trailing_crs: u64,
    /// The last byte that is not a CR.
    last: Option<u8>,
    blank: bool,
    quoted: bool,
    fields: [usize; SNIFFED_DELIMITERS.len()],
    /// The bytes, while the line is at most [`LINE_BYTES_KEPT_MAX`] long.
    kept: Option<Vec<u8>>,
}

impl Default for LineShape {
    fn default() -> Self {
        LineShape {
            len: 0,
            trailing_crs: 0,
            last: None,
            blank: true,
            quoted: false,
            fields: [1; SNIFFED_DELIMITERS.len()],
            kept: Some(Vec::new()),
        }
    }
}

impl LineShape {
    fn feed(&mut self, mut part: &[u8], first_line: bool) {
        if first_line && self.len == 0 {
            part = part.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(part);
        }
        self.len += part.len() as u64;
        self.blank &= part.iter().all(u8::is_ascii_whitespace);
        match part.iter().rposition(|b| *b != b'\r') {
            Some(i) => {
                self.last = Some(part[i]);
                self.trailing_crs = (part.len() - i - 1) as u64;
            }
            None => self.trailing_crs += part.len() as u64,
        }
        for &b in part {
            if b == b'"' {
                self.quoted = !self.quoted;
            } else if !self.quoted
                && let Some(k) = SNIFFED_DELIMITERS.iter().position(|d| *d == b)
            {
                self.fields[k] += 1;
            }
        }
        if let Some(kept) = &mut self.kept {
            if kept.len() + part.len() <= LINE_BYTES_KEPT_MAX + READ_BUFFER_BYTES {
                kept.extend_from_slice(part);
            } else {
                self.kept = None;
            }
        }
    }

    fn content_len(&self) -> u64 {
        self.len - self.trailing_crs
    }

    /// Fields on the line for `delimiter`, honouring double quotes.
    fn fields(&self, delimiter: u8) -> usize {
        SNIFFED_DELIMITERS.iter().position(|d| *d == delimiter).map_or(1, |k| self.fields[k])
    }

    /// The delimiter a header line uses: the one of `,` `\t` `;` `|` splitting it into the
    /// most fields outside quotes, if any splits it.
    fn sniffed_delimiter(&self) -> Option<u8> {
        SNIFFED_DELIMITERS
            .into_iter()
            .map(|d| (d, self.fields(d)))
            .filter(|(_, n)| *n > 1)
            .max_by_key(|(_, n)| *n)
            .map(|(d, _)| d)
    }

    /// The line's content, if it is short enough to compare with others.
    fn kept(&self) -> Option<&[u8]> {
        let len = usize::try_from(self.content_len()).ok().filter(|len| *len <= LINE_BYTES_KEPT_MAX)?;
        self.kept.as_deref().map(|kept| &kept[..len])
    }
}

fn delimiter_of(format: Format) -> u8 {
    if format == Format::Tsv { b'\t' } else { b',' }
}

fn header_fields(files: &dyn Files, format: Format) -> u64 {
    let Ok(input) = files.input() else { return 0 };
    let mut first = Vec::new();
    if BufReader::new(input).take(1 << 20).read_until(b'\n', &mut first).is_err() {
        return 0;
    }
    let mut header = LineShape::default();
    header.feed(&first, true);
    let delimiter = header.sniffed_delimiter().unwrap_or(delimiter_of(format));
    header.fields(delimiter) as u64
}

fn text_profile(request: &Request, settings: &TextProfileSettings, files: &dyn Files) -> Result<Response, String> {
    let long_line = settings.long_line_bytes;
    let format: Format = request.input.format.parse().unwrap_or(Format::Text);
    let delimited = matches!(format, Format::Csv | Format::Tsv);
    let input = files.input().map_err(|e| format!("cannot open the input: {e}"))?;
    let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, input);
    let mut number = 0u64;
    let (mut blank, mut trailing, mut long, mut ragged) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut blank_n, mut trailing_n, mut long_n, mut ragged_n, mut dup_n) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut dup_rows = Vec::new();
    let mut seen: HashMap<Vec<u8>, u64> = HashMap::new();
    let mut header: Option<(u8, usize)> = None;
    let mut longest = 0u64;
    let mut field_counts: BTreeMap<usize, u64> = BTreeMap::new();
    let mut line = LineShape::default();
    scan_lines(&mut reader, |piece| {
        let Piece::End { .. } = piece else {
            if let Piece::Part(part) = piece {
                line.feed(part, number == 0);
            }
            return Ok(());
        };
        number += 1;
        let shape = std::mem::take(&mut line);
        let content_len = shape.content_len();
        longest = longest.max(content_len);
        if shape.blank {
            blank_n += 1;
            push_capped(&mut blank, number);
            return Ok(());
        }
        if matches!(shape.last, Some(b' ' | b'\t')) {
            trailing_n += 1;
            push_capped(&mut trailing, number);
        }
        if content_len > long_line {
            long_n += 1;
            push_capped(&mut long, number);
        }
        if delimited {
            match header {
                None => {
                    let d = shape.sniffed_delimiter().unwrap_or(delimiter_of(format));
                    header = Some((d, shape.fields(d)));
                }
                Some((d, expected)) => {
                    let n = shape.fields(d);
                    *field_counts.entry(n).or_default() += 1;
                    if n != expected {
                        ragged_n += 1;
                        push_capped(&mut ragged, number);
                    }
                }
            }
        }
        if let Some(content) = shape.kept() {
            match seen.get(content) {
                Some(&earlier) => {
                    dup_n += 1;
                    if dup_rows.len() < EVIDENCE_ROWS_MAX {
                        dup_rows.push((earlier, number));
                    }
                }
                None => {
                    seen.insert(content.to_vec(), number);
                }
            }
        }
        Ok(())
    })?;

    let mut findings = Vec::new();
    // `affected_rows` is what known issues' `min_rows` compares.
    let count = |n: u64| BTreeMap::from([("lines".to_owned(), json!(n)), ("affected_rows".to_owned(), json!(n))]);
    if blank_n > 0 {
        findings.push(Finding::measured(
            "blank_lines",
            format!("{blank_n} blank lines"),
            Severity::Low,
            rows_evidence(&blank, count(blank_n)),
        ));
    }
    if dup_n > 0 {
        let rows: Vec<u64> = dup_rows.iter().map(|(_, later)| *later).collect();
        let pairs: Vec<Value> = dup_rows.iter().map(|(a, b)| json!([a, b])).collect();
        let mut values = count(dup_n);
        values.insert("first_seen_and_repeat".to_owned(), Value::Array(pairs));
        let what = if delimited { "rows" } else { "lines" };
        findings.push(Finding::measured(
            if delimited { "duplicate_rows" } else { "duplicate_lines" },
            format!("{dup_n} exact duplicate {what}"),
            Severity::Medium,
            rows_evidence(&rows, values),
        ));
    }
    if trailing_n > 0 {
        findings.push(Finding::measured(
            "trailing_whitespace",
            format!("{trailing_n} lines end in whitespace"),
            Severity::Info,
            rows_evidence(&trailing, count(trailing_n)),
        ));
    }
    if long_n > 0 {
        findings.push(Finding::measured(
            "long_lines",
            format!("{long_n} lines longer than {long_line} bytes"),
            Severity::Low,
            rows_evidence(&long, count(long_n)),
        ));
    }
    if let (true, Some((_, expected))) = (ragged_n > 0, header) {
        let mut values = count(ragged_n);
        values.insert("header_fields".to_owned(), json!(expected));
        values.insert(
            "rows_by_field_count".to_owned(),
            json!(field_counts.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>()),
        );
        findings.push(Finding::measured(
            "ragged_rows",
            format!("{ragged_n} rows do not have the header's {expected} fields"),
            Severity::High,
            rows_evidence(&ragged, values),
        ));
    }
    let metrics = BTreeMap::from([
        ("lines".to_owned(), json!(number)),
        ("blank_lines".to_owned(), json!(blank_n)),
        ("duplicate_lines".to_owned(), json!(dup_n)),
        ("longest_line_bytes".to_owned(), json!(longest)),
    ]);
    let summary = if findings.is_empty() {
        format!("{number} lines, no findings")
    } else {
        format!("{number} lines, {} findings", findings.len())
    };
    Ok(Response::ok(summary, findings, metrics))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Any mix of CR, LF, NUL, multibyte and invalid UTF-8, read through buffers of 4 to
        /// 17 bytes (so pieces end inside CRLFs and characters), gives the facts and hash a
        /// whole read gives.
        #[test]
        fn inspect_facts_never_depend_on_where_the_pieces_fall(
            pieces in proptest::collection::vec(proptest::sample::select(vec![
                &b"a"[..], b"\r", b"\n", b"\r\n", b"\0", "é".as_bytes(), "漢".as_bytes(), b"\xE6\xBC", b"\xFF",
                b"\xEF\xBB\xBF", b",", b"\"",
            ]), 0..60),
            capacity in 4usize..18,
        ) {
            let input: Vec<u8> = pieces.concat();
            let (whole, whole_hash) = scan_input(&mut BufReader::with_capacity(1 << 20, &input[..])).expect("scan");
            let (cut, cut_hash) = scan_input(&mut BufReader::with_capacity(capacity, &input[..])).expect("scan");
            proptest::prop_assert_eq!(whole, cut);
            proptest::prop_assert_eq!(whole_hash.finish(), cut_hash.finish());
        }
    }

    /// The old reader held a line whole; a long one now costs no more than a short one, and
    /// its facts are the same.
    #[test]
    fn a_long_line_is_scanned_in_pieces() {
        let mut input = b"id,text\r\n1,".to_vec();
        input.extend(std::iter::repeat_n(b'x', 3 << 20));
        input.extend_from_slice("é\r\n2,b".as_bytes());
        let (facts, _) = scan_input(&mut BufReader::with_capacity(64 * 1024, &input[..])).expect("scan");
        assert_eq!((facts.lines, facts.crlf_count, facts.lf_count, facts.invalid_utf8_count), (3, 2, 0, 0));
        assert_eq!((facts.bytes, facts.ends_with_newline), (input.len() as u64, false));
    }
    use vigil_pack::protocol::{InputRef, PROTOCOL_VERSION, PluginRef, RunContext, check_findings};
    use vigil_pack::testing::MemoryRun;

    /// A request for `content` as an input of `format`, with its files.
    fn request(content: &[u8], format: &str) -> (Request, vigil_pack::testing::MemoryFiles) {
        let files = MemoryRun::new(content).files("p", true);
        let request = Request {
            protocol: PROTOCOL_VERSION,
            run: RunContext { run_id: "r".into(), fingerprint: "f".into() },
            plugin: PluginRef { id: "p".into(), version: "1.0.0".into() },
            config: json!({}),
            input: InputRef {
                path: "input".into(),
                file_name: "x".into(),
                format: format.into(),
                sha256: "raw".into(),
                size_bytes: content.len() as u64,
            },
            dependencies: BTreeMap::new(),
            output_dir: "out".into(),
            scratch_dir: "scratch".into(),
            share_dir: None,
            seed: 1,
            budgets: Default::default(),
        };
        (request, files)
    }

    fn inspect_of(content: &[u8], format: &str) -> Response {
        let (request, files) = request(content, format);
        inspect(&request, &files).expect("inspect")
    }

    fn kinds(response: &Response) -> Vec<&str> {
        response.findings.iter().map(|f| f.kind.as_str()).collect()
    }

    #[test]
    fn data_hash_ignores_bom_and_line_endings() {
        let hash = |content: &[u8]| inspect_of(content, "csv").dataset.expect("dataset").data_hash;
        let lf = hash(b"id,amount\n1,2\n");
        assert_eq!(lf, hash(b"id,amount\r\n1,2\r\n"));
        assert_eq!(lf, hash(b"\xEF\xBB\xBFid,amount\n1,2"));
        assert_ne!(lf, hash(b"id,amount\n1,3\n"));
    }

    #[test]
    fn inspect_reports_line_level_facts_with_rows() {
        let response = inspect_of(b"a,b\r\n1,2\n3,4\n5,6", "csv");
        assert_eq!(kinds(&response), ["mixed_line_endings", "missing_final_newline"]);
        assert_eq!(response.findings[0].evidence.as_ref().map(|e| e.rows.clone()), Some(vec![1]));
        assert_eq!(response.dataset.as_ref().map(|d| (d.rows, d.columns)), Some((3, 2)));
        assert!(check_findings(&response.findings).is_ok());
    }

    #[test]
    fn text_profile_finds_ragged_duplicate_and_blank_rows() {
        let csv = b"id,name,amount\n1,\"Smith, J\",10\n2,Lee,20\n\n2,Lee,20\n3,Kim\n";
        let (request, files) = request(csv, "csv");
        let response = text_profile(&request, &TextProfileSettings::default(), &files).expect("profile");
        assert_eq!(kinds(&response), ["blank_lines", "duplicate_rows", "ragged_rows"]);
        let rows = |i: usize| response.findings[i].evidence.as_ref().map(|e| e.rows.clone()).unwrap_or_default();
        assert_eq!(rows(0), [4]);
        assert_eq!(rows(1), [5]);
        assert_eq!(rows(2), [6]);
        assert!(check_findings(&response.findings).is_ok());
    }
}

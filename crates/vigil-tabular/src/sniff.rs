//! Sniffing a delimited text file before reading it: its encoding, delimiter, quote and
//! whether the first row is a header, each with the evidence for the choice.
//!
//! Decoding streams ([`DecodingReader`]): UTF-16 and Latin-1 are turned into UTF-8 a buffer
//! at a time, so a file is never held twice. The dialect is chosen on a sample of the
//! decoded start of the file.

use std::io::{self, Read};

use serde::Serialize;

use crate::value::{DateOrder, DecimalMark, is_missing, parse_datetime, parse_number};

/// How a file's bytes are text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    Utf8,
    /// UTF-8 with a byte-order mark (Excel's "CSV UTF-8").
    Utf8Bom,
    Utf16Le,
    Utf16Be,
    /// ISO-8859-1: every byte is a character (what is left when nothing else fits).
    Latin1,
}

impl Encoding {
    fn bom(self) -> &'static [u8] {
        match self {
            Encoding::Utf8Bom => &[0xEF, 0xBB, 0xBF],
            Encoding::Utf16Le => &[0xFF, 0xFE],
            Encoding::Utf16Be => &[0xFE, 0xFF],
            // A mark on a file read as UTF-8 is dropped too.
            Encoding::Utf8 => &[0xEF, 0xBB, 0xBF],
            Encoding::Latin1 => &[],
        }
    }
}

/// A choice and why it was made.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Chosen<T> {
    pub value: T,
    pub evidence: String,
}

/// The encoding of a file from its first bytes.
pub fn detect_encoding(head: &[u8]) -> Chosen<Encoding> {
    let chosen = |value, evidence: &str| Chosen { value, evidence: evidence.to_owned() };
    if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return chosen(Encoding::Utf8Bom, "starts with the UTF-8 byte-order mark");
    }
    if head.starts_with(&[0xFF, 0xFE]) {
        return chosen(Encoding::Utf16Le, "starts with the UTF-16 little-endian byte-order mark");
    }
    if head.starts_with(&[0xFE, 0xFF]) {
        return chosen(Encoding::Utf16Be, "starts with the UTF-16 big-endian byte-order mark");
    }
    // UTF-16 without a mark: text in Latin scripts has a zero in every other byte.
    let pairs = head.len() / 2;
    if pairs >= 8 {
        let odd = head.chunks_exact(2).filter(|p| p[1] == 0 && p[0] != 0).count();
        let even = head.chunks_exact(2).filter(|p| p[0] == 0 && p[1] != 0).count();
        if odd * 10 >= pairs * 3 && even == 0 {
            return Chosen {
                value: Encoding::Utf16Le,
                evidence: format!("no byte-order mark; {odd} of the first {pairs} byte pairs end in a zero byte"),
            };
        }
        if even * 10 >= pairs * 3 && odd == 0 {
            return Chosen {
                value: Encoding::Utf16Be,
                evidence: format!("no byte-order mark; {even} of the first {pairs} byte pairs start with a zero byte"),
            };
        }
    }
    match std::str::from_utf8(head) {
        Ok(text) if text.is_ascii() => chosen(Encoding::Utf8, "the start of the file is plain ASCII"),
        Ok(_) => chosen(Encoding::Utf8, "the start of the file is valid UTF-8 with non-ASCII characters"),
        // Cut in the middle of a character at the end of the sample: still UTF-8.
        Err(e) if e.error_len().is_none() => chosen(Encoding::Utf8, "the start of the file is valid UTF-8"),
        Err(e) => Chosen {
            value: Encoding::Latin1,
            evidence: format!(
                "not UTF-8 (byte 0x{:02X} at offset {}); read as Latin-1",
                head[e.valid_up_to()],
                e.valid_up_to()
            ),
        },
    }
}

/// Reads `inner` as `encoding` and yields UTF-8 (without a byte-order mark). UTF-8 passes
/// through unchecked: invalid sequences are reported row by row by the reader.
#[derive(Debug)]
pub struct DecodingReader<R> {
    inner: R,
    encoding: Encoding,
    /// The file's first bytes until they can be compared with the byte-order mark (which
    /// is dropped when present); `None` once settled.
    head: Option<Vec<u8>>,
    raw: Vec<u8>,
    /// A trailing odd byte or lone high surrogate carried to the next read (UTF-16).
    carry: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
}

const CHUNK: usize = 64 * 1024;

impl<R: Read> DecodingReader<R> {
    pub fn new(inner: R, encoding: Encoding) -> Self {
        DecodingReader {
            inner,
            encoding,
            head: (!encoding.bom().is_empty()).then(Vec::new),
            raw: vec![0; CHUNK],
            carry: Vec::new(),
            out: Vec::with_capacity(CHUNK * 2),
            out_pos: 0,
        }
    }

    /// Decodes the next chunk into `out`; false at the end of the input.
    fn refill(&mut self) -> io::Result<bool> {
        self.out.clear();
        self.out_pos = 0;
        loop {
            let n = self.inner.read(&mut self.raw)?;
            let held;
            let bytes: &[u8] = match self.head.as_mut() {
                Some(head) => {
                    head.extend_from_slice(&self.raw[..n]);
                    let bom = self.encoding.bom();
                    if head.len() < bom.len() && n > 0 {
                        continue;
                    }
                    held = self.head.take().unwrap_or_default();
                    held.strip_prefix(bom).unwrap_or(&held)
                }
                None => &self.raw[..n],
            };
            match self.encoding {
                Encoding::Utf8 | Encoding::Utf8Bom => self.out.extend_from_slice(bytes),
                Encoding::Latin1 => {
                    for &b in bytes {
                        let mut buf = [0; 2];
                        self.out.extend_from_slice(char::from(b).encode_utf8(&mut buf).as_bytes());
                    }
                }
                Encoding::Utf16Le | Encoding::Utf16Be => {
                    let mut data = std::mem::take(&mut self.carry);
                    data.extend_from_slice(bytes);
                    let units: Vec<u16> = data
                        .chunks_exact(2)
                        .map(|p| {
                            if self.encoding == Encoding::Utf16Le {
                                u16::from_le_bytes([p[0], p[1]])
                            } else {
                                u16::from_be_bytes([p[0], p[1]])
                            }
                        })
                        .collect();
                    let mut whole = units.len();
                    // Keep a high surrogate at the end for its partner in the next chunk.
                    if n > 0 && units.last().is_some_and(|u| (0xD800..0xDC00).contains(u)) {
                        whole -= 1;
                    }
                    self.carry = data[whole * 2..].to_vec();
                    for c in char::decode_utf16(units[..whole].iter().copied()) {
                        let mut buf = [0; 4];
                        let c = c.unwrap_or(char::REPLACEMENT_CHARACTER);
                        self.out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    }
                    if n == 0 && !self.carry.is_empty() {
                        // An odd last byte: not a character.
                        self.carry.clear();
                        self.out.extend_from_slice(char::REPLACEMENT_CHARACTER.to_string().as_bytes());
                    }
                }
            }
            if n == 0 || !self.out.is_empty() {
                return Ok(!self.out.is_empty());
            }
        }
    }
}

impl<R: Read> Read for DecodingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.out_pos == self.out.len() && !self.refill()? {
            return Ok(0);
        }
        let n = buf.len().min(self.out.len() - self.out_pos);
        buf[..n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
        self.out_pos += n;
        Ok(n)
    }
}

/// How the rows of a delimited file are written.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Dialect {
    pub delimiter: Chosen<char>,
    pub quote: char,
    pub header: Chosen<bool>,
}

/// Delimiters tried, in order of preference when equally consistent.
const DELIMITERS: [char; 4] = [',', ';', '\t', '|'];

/// Chooses the dialect from a decoded sample of the file's start (a few dozen rows or
/// more; a cut-off last line is ignored).
pub fn detect_dialect(sample: &str) -> Dialect {
    let complete = match sample.rfind('\n') {
        Some(i) if i + 1 < sample.len() => &sample[..=i],
        _ => sample,
    };
    let mut best: Option<(f64, char, usize, usize, usize)> = None;
    for delimiter in DELIMITERS {
        let rows = split_rows(complete, delimiter, '"', 200);
        if rows.is_empty() {
            continue;
        }
        let mut counts: Vec<usize> = rows.iter().map(Vec::len).collect();
        counts.sort_unstable();
        let (mode, agree) = mode(&counts);
        if mode < 2 {
            continue;
        }
        // Consistent rows count most; among equally consistent, more columns.
        let score = agree as f64 / rows.len() as f64 + (mode as f64).ln() / 100.0;
        if best.is_none_or(|b| score > b.0) {
            best = Some((score, delimiter, mode, agree, rows.len()));
        }
    }
    let delimiter = match best {
        Some((_, d, columns, agree, rows)) => Chosen {
            value: d,
            evidence: format!("{agree} of the first {rows} rows have {columns} fields split on {}", show(d)),
        },
        None => Chosen { value: ',', evidence: "no delimiter splits the rows consistently: one column".into() },
    };
    let rows = split_rows(complete, delimiter.value, '"', 200);
    let header = detect_header(&rows);
    Dialect { delimiter, quote: '"', header }
}

fn show(delimiter: char) -> String {
    match delimiter {
        '\t' => "tabs".into(),
        c => format!("{c:?}"),
    }
}

fn mode(sorted: &[usize]) -> (usize, usize) {
    let mut best = (0, 0);
    let mut i = 0;
    while i < sorted.len() {
        let j = sorted[i..].iter().position(|c| *c != sorted[i]).map_or(sorted.len(), |k| i + k);
        if j - i > best.1 {
            best = (sorted[i], j - i);
        }
        i = j;
    }
    best
}

/// Splits up to `max` rows, honouring quotes (doubled quotes inside are literal).
fn split_rows(text: &str, delimiter: char, quote: char, max: usize) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            if c == quote {
                if chars.peek() == Some(&quote) {
                    field.push(quote);
                    chars.next();
                } else {
                    quoted = false;
                }
            } else {
                field.push(c);
            }
        } else if c == quote && field.is_empty() {
            quoted = true;
        } else if c == delimiter {
            row.push(std::mem::take(&mut field));
        } else if c == '\n' || c == '\r' {
            if c == '\r' && chars.peek() == Some(&'\n') {
                chars.next();
            }
            row.push(std::mem::take(&mut field));
            if !(row.len() == 1 && row[0].is_empty()) {
                rows.push(std::mem::take(&mut row));
                if rows.len() == max {
                    return rows;
                }
            }
            row.clear();
        } else {
            field.push(c);
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

/// Whether a cell reads as a value rather than a name.
fn is_value(cell: &str) -> bool {
    parse_number(cell, DecimalMark::Point).is_some()
        || parse_number(cell, DecimalMark::Comma).is_some()
        || parse_datetime(cell, DateOrder::DayMonthYear).is_some()
        || parse_datetime(cell, DateOrder::MonthDayYear).is_some()
}

/// A first row is a header when its cells are distinct non-empty names (not numbers or
/// dates) and either some column below it holds values or none of its names occur again in
/// their column.
fn detect_header(rows: &[Vec<String>]) -> Chosen<bool> {
    let no = |evidence: String| Chosen { value: false, evidence };
    let Some((first, rest)) = rows.split_first() else {
        return no("the file is empty".into());
    };
    if let Some(cell) = first.iter().find(|c| is_missing(c)) {
        return no(format!("the first row has an empty cell ({cell:?})"));
    }
    if let Some(cell) = first.iter().find(|c| is_value(c)) {
        return no(format!("the first row holds a value ({cell:?}), not a name"));
    }
    let mut names: Vec<&str> = first.iter().map(|c| c.trim()).collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return no("the first row repeats a name".into());
    }
    if rest.is_empty() {
        return Chosen { value: true, evidence: "a single row of names: a header without data".into() };
    }
    for (i, name) in first.iter().enumerate() {
        let cells: Vec<&str> =
            rest.iter().filter_map(|r| r.get(i)).map(String::as_str).filter(|c| !is_missing(c)).collect();
        let values = cells.iter().filter(|c| is_value(c)).count();
        if !cells.is_empty() && values * 10 >= cells.len() * 9 {
            return Chosen {
                value: true,
                evidence: format!(
                    "column {name:?} holds values below a name ({values} of {} sampled cells)",
                    cells.len()
                ),
            };
        }
    }
    let repeated = first.iter().enumerate().any(|(i, name)| rest.iter().any(|r| r.get(i) == Some(name)));
    if repeated {
        no("every column is text and a first-row cell recurs below it: data, not names".into())
    } else {
        Chosen { value: true, evidence: "every column is text and no first-row name recurs below it".into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode(bytes: &[u8]) -> (Encoding, String) {
        let encoding = detect_encoding(bytes).value;
        let mut text = String::new();
        DecodingReader::new(bytes, encoding).read_to_string(&mut text).expect("decodes");
        (encoding, text)
    }

    #[test]
    fn encodings_are_detected_and_decoded() {
        let text = "name;amount\nZoë;12,50\nJürgen;3\n";
        assert_eq!(decode(text.as_bytes()), (Encoding::Utf8, text.to_owned()));
        let bom = [&[0xEF, 0xBB, 0xBF][..], text.as_bytes()].concat();
        assert_eq!(decode(&bom), (Encoding::Utf8Bom, text.to_owned()));
        let latin1: Vec<u8> = text.chars().map(|c| c as u32 as u8).collect();
        assert_eq!(decode(&latin1), (Encoding::Latin1, text.to_owned()));
        let le: Vec<u8> = [0xFF, 0xFE].into_iter().chain(text.encode_utf16().flat_map(u16::to_le_bytes)).collect();
        assert_eq!(decode(&le), (Encoding::Utf16Le, text.to_owned()));
        let be: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
        assert_eq!(decode(&be), (Encoding::Utf16Be, text.to_owned()));
        assert!(detect_encoding(&latin1).evidence.contains("0xEB"), "{:?}", detect_encoding(&latin1));
    }

    #[test]
    fn dialects_and_headers() {
        let d = detect_dialect("id;name;amount\n1;\"Smith; John\";12,50\n2;Doe;3\n");
        assert_eq!((d.delimiter.value, d.header.value), (';', true), "{d:?}");
        let d = detect_dialect("a\tb\tc\n1\t2\t3\n4\t5\t6\n");
        assert_eq!((d.delimiter.value, d.header.value), ('\t', true), "{d:?}");
        let d = detect_dialect("1,2,3\r\n4,5,6\r\n");
        assert_eq!((d.delimiter.value, d.header.value), (',', false), "{d:?}");
        assert!(d.header.evidence.contains("holds a value"), "{d:?}");
        let d = detect_dialect("x,y\nx,b\n");
        assert!(!d.header.value, "{d:?}");
        let d = detect_dialect("just one column\nand another row\n");
        assert_eq!(d.delimiter.value, ',');
        // Commas inside quotes do not split; a cut-off last line is ignored.
        let d = detect_dialect("k|v\n\"a,b,c\"|1\n\"d,e\"|2\n\"f,g,h,i");
        assert_eq!(d.delimiter.value, '|', "{d:?}");
    }

    proptest! {
        #[test]
        fn utf16_decodes_in_any_chunking(text in "\\PC{0,300}", le in any::<bool>()) {
            let bytes: Vec<u8> = text
                .encode_utf16()
                .flat_map(|u| if le { u.to_le_bytes() } else { u.to_be_bytes() })
                .collect();
            let encoding = if le { Encoding::Utf16Le } else { Encoding::Utf16Be };
            // One byte at a time: surrogate pairs and code units split across reads.
            struct Trickle<'a>(&'a [u8]);
            impl Read for Trickle<'_> {
                fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                    let Some((first, rest)) = self.0.split_first() else { return Ok(0) };
                    buf[0] = *first;
                    self.0 = rest;
                    Ok(1)
                }
            }
            let mut out = String::new();
            DecodingReader::new(Trickle(&bytes), encoding).read_to_string(&mut out).expect("decodes");
            prop_assert_eq!(out, text);
        }

        #[test]
        fn sniffing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let encoding = detect_encoding(&bytes).value;
            let mut text = String::new();
            let _ = DecodingReader::new(&bytes[..], encoding).read_to_string(&mut text);
            let _ = detect_dialect(&text);
        }
    }
}

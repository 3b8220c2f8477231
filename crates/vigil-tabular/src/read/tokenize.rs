//! Tokenizing a chunk: cut at its delimiters and newlines directly when it holds no quote,
//! by `csv-core` otherwise, into per-chunk raw columns, with blank lines, ragged rows and
//! invalid UTF-8 counted by line.

use super::*;

/// The fields of the first record in `bytes`, as text (none for blank input).
pub(super) fn tokenize_one(bytes: &[u8], options: &ReadOptions) -> Vec<String> {
    let mut reader = csv_reader(options);
    // Room for every byte and every field: the tokenizer cannot run out.
    let mut out = vec![0; bytes.len() + 1];
    let mut ends = vec![0; bytes.len() + 1];
    let (mut input, mut out_len, mut fields) = (bytes, 0, 0);
    loop {
        let (result, n_in, n_out, n_ends) = reader.read_record(input, &mut out[out_len..], &mut ends[fields..]);
        input = &input[n_in..];
        out_len += n_out;
        fields += n_ends;
        // Empty input tells the tokenizer the data ended, so this loop ends.
        if !matches!(result, csv_core::ReadRecordResult::InputEmpty) {
            break;
        }
    }
    let mut start = 0;
    ends[..fields]
        .iter()
        .enumerate()
        .map(|(i, &end)| {
            let field = if i + 1 == fields { last_field(&out[start..end]) } else { &out[start..end] };
            start = end;
            String::from_utf8_lossy(field).into_owned()
        })
        .collect()
}

/// A tokenizer whose records end at `\n` only, as the block splitter's do (a lone `\r`
/// ending records too would let the two disagree on where a quoted field starts); the
/// `\r` of a CRLF ending is taken off the last field by [`last_field`].
pub(super) fn csv_reader(options: &ReadOptions) -> csv_core::Reader {
    csv_core::ReaderBuilder::new()
        .delimiter(options.delimiter)
        .quote(options.quote)
        .terminator(csv_core::Terminator::Any(b'\n'))
        .build()
}

/// A record's last field without the `\r` of a CRLF line ending.
pub(super) fn last_field(field: &[u8]) -> &[u8] {
    field.strip_suffix(b"\r").unwrap_or(field)
}

/// Header names, trimmed; an empty one becomes `column_N` and a repeated one gets a
/// suffix, so every column can be named.
pub(crate) fn column_names(header: Vec<String>) -> (Vec<String>, Vec<(String, String)>) {
    let mut names: Vec<String> = Vec::with_capacity(header.len());
    let mut renamed = Vec::new();
    for (i, raw) in header.into_iter().enumerate() {
        let trimmed = raw.trim();
        let mut name = if trimmed.is_empty() { format!("column_{}", i + 1) } else { trimmed.to_string() };
        let mut n = 2;
        while names.contains(&name) {
            name = format!("{trimmed}_{n}");
            n += 1;
        }
        if name != raw {
            renamed.push((raw, name.clone()));
        }
        names.push(name);
    }
    (names, renamed)
}

/// Tokenizes one chunk of whole records.
pub(super) fn tokenize(bytes: Vec<u8>, expected: usize, options: &ReadOptions) -> Chunk {
    let mut growth = Growth::default();
    let mut bad_lines = Vec::new();
    let bytes = valid_utf8(bytes, &mut bad_lines, &mut growth);
    let mut records = Records::new(expected, bytes.len(), options);
    // Most exports quote nothing: such a chunk is cut at its delimiters and newlines
    // directly, which is what `csv-core` would do with it, several times faster.
    if memchr::memchr(options.quote, &bytes).is_none() {
        plain_records(&bytes, &growth, &mut records);
    } else {
        quoted_records(&bytes, &growth, &mut records);
    }
    let Records { columns, rows, mut problems, skipped_lines, .. } = records;
    for line in bad_lines {
        if !skipped_lines.iter().any(|&(first, last)| (first..=last).contains(&line)) {
            problems.invalid_utf8.add(line, options.max_examples);
        }
    }
    let newlines = memchr::memchr_iter(b'\n', &bytes).count() as u64;
    Chunk { columns, rows, newlines, problems }
}

/// What a chunk's records became, whichever tokenizer cut them.
pub(super) struct Records<'o> {
    pub(super) options: &'o ReadOptions,
    pub(super) expected: usize,
    pub(super) columns: Vec<RawColumn>,
    pub(super) rows: usize,
    pub(super) problems: Problems,
    /// Lines of records left out as too long: what they hold is not reported (a reader
    /// that skips such a record unread, with other block sizes, never sees it).
    pub(super) skipped_lines: Vec<(u64, u64)>,
}

impl<'o> Records<'o> {
    pub(super) fn new(expected: usize, chunk_bytes: usize, options: &'o ReadOptions) -> Self {
        let columns = (0..expected)
            .map(|_| RawColumn {
                bytes: Vec::with_capacity(chunk_bytes / expected.max(1) + 16),
                ends: Vec::with_capacity(chunk_bytes / (expected.max(1) * 8)),
            })
            .collect();
        Records { options, expected, columns, rows: 0, problems: Problems::default(), skipped_lines: Vec::new() }
    }

    /// Leaves out the record at `record_start..end` of the chunk (from the start of its
    /// line through its line ending), starting on `record_line`, if it is over the cap.
    /// The cap is applied exactly here so it does not depend on where blocks fell.
    pub(super) fn over_cap(
        &mut self,
        bytes: &[u8],
        growth: &Growth,
        record_start: usize,
        end: usize,
        record_line: u64,
    ) -> bool {
        // In the file's bytes, before invalid UTF-8 was repaired.
        let raw = end - record_start - growth.within(record_start, end);
        if raw - line_ending_len(&bytes[..end]) <= self.options.max_record_bytes {
            return false;
        }
        self.problems.too_long.add(LongRecord { line: record_line, bytes: raw as u64 }, self.options.max_examples);
        let inner = memchr::memchr_iter(b'\n', &bytes[record_start..end]).count() as u64;
        let last = record_line + inner - u64::from(bytes[..end].ends_with(b"\n"));
        self.skipped_lines.push((record_line, last.max(record_line)));
        true
    }

    /// A record whose field count is not the table's: a blank line (one field of
    /// whitespace, `text`) or a ragged row.
    pub(super) fn left_out(&mut self, fields: usize, text: &[u8], record_line: u64) {
        if fields == 1 && text.iter().all(u8::is_ascii_whitespace) {
            self.problems.blank_lines += 1;
        } else {
            let ragged = RaggedRow { line: record_line, fields, expected: self.expected };
            self.problems.ragged.add(ragged, self.options.max_examples);
        }
    }
}

/// Skips the blank lines at `*pos`, a line start, counting them. Records end at `\n` (see
/// `csv_reader`), so every `\n` before the next record ends a line of nothing but `\r`s.
/// Returns where the record's line starts (a `\r` skipped before it included, as the block
/// splitter counts a record's length).
pub(super) fn skip_blank_lines(bytes: &[u8], pos: &mut usize, line: &mut u64, problems: &mut Problems) -> usize {
    let mut record_start = *pos;
    while *pos < bytes.len() && matches!(bytes[*pos], b'\n' | b'\r') {
        if bytes[*pos] == b'\n' {
            *line += 1;
            problems.blank_lines += 1;
            record_start = *pos + 1;
        }
        *pos += 1;
    }
    record_start
}

/// Records of a chunk without a quote character: each line is a record, each delimiter
/// ends a field, and the fields are copied straight from the chunk.
pub(super) fn plain_records(bytes: &[u8], growth: &Growth, records: &mut Records<'_>) {
    let delimiter = records.options.delimiter;
    let mut cuts: Vec<usize> = Vec::with_capacity(records.expected + 8);
    // Line numbers within the chunk, 1-based.
    let mut line: u64 = 1;
    let mut pos = 0;
    loop {
        let record_start = skip_blank_lines(bytes, &mut pos, &mut line, &mut records.problems);
        if pos == bytes.len() {
            return;
        }
        let record_line = line;
        let (text, end) = match memchr::memchr(b'\n', &bytes[pos..]) {
            Some(i) => {
                line += 1;
                (&bytes[pos..pos + i], pos + i + 1)
            }
            None => (&bytes[pos..], bytes.len()),
        };
        pos = end;
        if records.over_cap(bytes, growth, record_start, end, record_line) {
            continue;
        }
        cuts.clear();
        cuts.extend(memchr::memchr_iter(delimiter, text));
        let fields = cuts.len() + 1;
        if fields != records.expected {
            records.left_out(fields, text, record_line);
            continue;
        }
        let mut start = 0;
        for (column, &cut) in records.columns.iter_mut().zip(&cuts) {
            column.bytes.extend_from_slice(&text[start..cut]);
            column.ends.push(column.bytes.len() as u32);
            start = cut + 1;
        }
        if let Some(last) = records.columns.last_mut() {
            push_field(last, last_field(&text[start..]));
        }
        records.rows += 1;
    }
}

/// Records of a chunk that quotes, tokenized by `csv-core`.
pub(super) fn quoted_records(bytes: &[u8], growth: &Growth, records: &mut Records<'_>) {
    let expected = records.expected;
    let mut reader = csv_reader(records.options);
    let mut out = vec![0u8; 64 * 1024];
    let mut ends = vec![0usize; expected.max(1) + 8];
    // Line numbers within the chunk, 1-based.
    let mut line: u64 = 1;
    let mut pos = 0;
    let mut reader_line = reader.line();
    // csv-core drops a byte-order mark at the start of the first input it is given. A
    // chunk starts mid-file, where U+FEFF is data: the tokenizer is handed its first byte
    // alone, so it has read something before it could see a mark.
    let mut fresh = true;
    loop {
        let record_start = skip_blank_lines(bytes, &mut pos, &mut line, &mut records.problems);
        let record_line = line;
        let (mut out_len, mut fields) = (0, 0);
        let done = loop {
            let (result, n_in, n_out, n_ends) =
                reader.read_record(first_input(&bytes[pos..], &mut fresh), &mut out[out_len..], &mut ends[fields..]);
            pos += n_in;
            out_len += n_out;
            fields += n_ends;
            match result {
                // The next call passes what is left, and empty input means the end.
                csv_core::ReadRecordResult::InputEmpty => {}
                csv_core::ReadRecordResult::OutputFull => out.resize(out.len() * 2, 0),
                csv_core::ReadRecordResult::OutputEndsFull => ends.resize(ends.len() * 2, 0),
                csv_core::ReadRecordResult::Record => break false,
                csv_core::ReadRecordResult::End => break true,
            }
        };
        let now = reader.line();
        line += now - reader_line;
        reader_line = now;
        if done {
            return;
        }
        if records.over_cap(bytes, growth, record_start, pos, record_line) {
            continue;
        }
        if fields != expected {
            records.left_out(fields, &out[..out_len], record_line);
            continue;
        }
        let mut start = 0;
        for (i, (column, &end)) in records.columns.iter_mut().zip(&ends[..fields]).enumerate() {
            let field = &out[start..end];
            push_field(column, if i + 1 == fields { last_field(field) } else { field });
            start = end;
        }
        records.rows += 1;
    }
}

/// `input`, or only its first byte when it is the tokenizer's first input and starts
/// with a UTF-8 byte-order mark (which csv-core would otherwise drop).
pub(super) fn first_input<'a>(input: &'a [u8], fresh: &mut bool) -> &'a [u8] {
    let first = std::mem::replace(fresh, false);
    if first && input.starts_with("\u{feff}".as_bytes()) { &input[..1] } else { input }
}

/// Appends a field; a CRLF inside a quoted field becomes LF, so the same text saved with
/// either line ending reads the same.
pub(super) fn push_field(column: &mut RawColumn, field: &[u8]) {
    if memchr::memchr(b'\r', field).is_some() {
        let mut i = 0;
        while i < field.len() {
            if !(field[i] == b'\r' && field.get(i + 1) == Some(&b'\n')) {
                column.bytes.push(field[i]);
            }
            i += 1;
        }
    } else {
        column.bytes.extend_from_slice(field);
    }
    column.ends.push(column.bytes.len() as u32);
}

/// Where the UTF-8 repair of a chunk made it longer, so a record's length can be told in
/// the bytes of the file (the record cap must not depend on the repair).
#[derive(Debug, Default)]
pub(super) struct Growth {
    /// Offsets of replacement characters in the repaired chunk, ascending.
    pub(super) at: Vec<usize>,
    /// Bytes added up to and including each (U+FFFD is 3 bytes; it replaces 1 to 3).
    pub(super) added: Vec<usize>,
}

impl Growth {
    pub(super) fn add(&mut self, at: usize, extra: usize) {
        let total = self.added.last().copied().unwrap_or(0) + extra;
        self.at.push(at);
        self.added.push(total);
    }

    /// Bytes the repair added within `from..to` of the repaired chunk.
    pub(super) fn within(&self, from: usize, to: usize) -> usize {
        let upto = |k: usize| if k == 0 { 0 } else { self.added[k - 1] };
        upto(self.at.partition_point(|&o| o < to)) - upto(self.at.partition_point(|&o| o < from))
    }
}

/// The chunk as UTF-8: bytes that are not become U+FFFD; the lines (1-based, ascending)
/// that held some are listed.
pub(super) fn valid_utf8(bytes: Vec<u8>, bad_lines: &mut Vec<u64>, growth: &mut Growth) -> Vec<u8> {
    let Err(first) = std::str::from_utf8(&bytes) else { return bytes };
    let mut out = Vec::with_capacity(bytes.len() + 16);
    let mut rest = &bytes[..];
    let mut line = 1 + memchr::memchr_iter(b'\n', &bytes[..first.valid_up_to()]).count() as u64;
    let mut last_line = 0;
    loop {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                out.extend_from_slice(valid.as_bytes());
                return out;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                out.extend_from_slice(valid);
                if last_line != 0 {
                    line += memchr::memchr_iter(b'\n', valid).count() as u64;
                }
                if line != last_line {
                    bad_lines.push(line);
                    last_line = line;
                }
                let bad = e.error_len().unwrap_or(after.len());
                growth.add(out.len(), 3usize.saturating_sub(bad));
                out.extend_from_slice(char::REPLACEMENT_CHARACTER.encode_utf8(&mut [0; 4]).as_bytes());
                rest = &after[bad..];
            }
        }
    }
}

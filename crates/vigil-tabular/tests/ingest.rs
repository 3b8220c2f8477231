//! Ingest as a user meets it: files written by different tools and locales, broken files,
//! and the promise that the same table always hashes the same.

use std::io::Cursor;
use std::path::PathBuf;

use proptest::prelude::*;
use vigil_tabular::read::ReadOptions;
use vigil_tabular::sniff::Encoding;
use vigil_tabular::table::Kind;
use vigil_tabular::value::{DateOrder, DecimalMark};
use vigil_tabular::{Dataset, Format, IngestError, IngestOptions, Role, Values, ingest_delimited, ingest_path};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn ingest(bytes: &[u8]) -> Result<Dataset, IngestError> {
    ingest_delimited(Cursor::new(bytes.to_vec()), &IngestOptions::default())
}

/// Small blocks and several threads, so chunk boundaries fall everywhere.
fn ingest_chunked(bytes: &[u8], block: usize, threads: usize) -> Result<Dataset, IngestError> {
    let options = IngestOptions {
        read: ReadOptions { block_bytes: block, threads, ..ReadOptions::default() },
        ..IngestOptions::default()
    };
    ingest_delimited(Cursor::new(bytes.to_vec()), &options)
}

/// RFC 4180 fields of a small file (test helper; the crate's reader is what is tested).
fn parse(text: &str, delimiter: char) -> Vec<Vec<String>> {
    let mut rows = vec![];
    let mut row = vec![];
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, c) if c == delimiter => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

fn write(rows: &[Vec<String>], delimiter: char, quote_all: bool, newline: &str) -> String {
    let mut out = String::new();
    for row in rows {
        let fields: Vec<String> = row
            .iter()
            .map(|f| {
                if quote_all || f.contains([delimiter, '"', '\n', '\r']) {
                    format!("\"{}\"", f.replace('"', "\"\"").replace('\n', newline))
                } else {
                    f.clone()
                }
            })
            .collect();
        out.push_str(&fields.join(&delimiter.to_string()));
        out.push_str(newline);
    }
    out
}

fn orders() -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(fixture("orders.csv")).expect("fixture");
    parse(&text, ',')
}

#[test]
fn an_erp_export_is_typed_with_evidence() {
    let data = ingest_path(&fixture("orders.csv"), &IngestOptions::default()).expect("ingest");
    assert_eq!((data.rows, data.columns.len()), (60, 12));
    assert_eq!(data.problems.rows_left_out(), 0);
    let kind = |name: &str| data.column(name).map(|c| c.kind.value.clone()).expect(name);
    let role = |name: &str| data.column(name).map(|c| c.role.value).expect(name);
    assert_eq!(kind("order_id"), Kind::Identifier);
    assert_eq!(role("order_id"), Role::Id);
    assert_eq!(kind("order_date"), Kind::Date { order: DateOrder::YearMonthDay, separator: '-' });
    assert_eq!(role("customer_email"), Role::Pii);
    assert!(data.column("customer_email").is_some_and(|c| c.role.evidence.contains("email address")));
    assert_eq!(kind("vendor_id"), Kind::Category);
    assert_eq!(kind("quantity"), Kind::Integer { decimal_mark: DecimalMark::Point, grouped: false });
    assert_eq!(role("quantity"), Role::Amount);
    assert_eq!(kind("amount"), Kind::Decimal { decimal_mark: DecimalMark::Point, grouped: true });
    assert_eq!(role("amount"), Role::Amount);
    assert_eq!(kind("amount_usd"), Kind::Currency { decimal_mark: DecimalMark::Point, symbols: vec!["$".into()] });
    assert_eq!(kind("discount"), Kind::Percent { decimal_mark: DecimalMark::Point });
    assert_eq!(kind("status"), Kind::Category);
    assert_eq!(kind("shipped"), Kind::Boolean);
    assert_eq!(kind("zip"), Kind::Identifier);
    assert!(data.column("zip").is_some_and(|c| c.kind.evidence.contains("leading zeros")));
    assert_eq!(kind("note"), Kind::Category);

    let amount = data.column("amount").expect("amount");
    assert_eq!(amount.validity.missing_count(), 2);
    assert_eq!(data.column("quantity").map(|c| c.validity.missing_count()), Some(1));
    // Row 41 is a refund: -12.00 and ($12.00) in accounting notation.
    assert_eq!(amount.number(40), Some(-12.0));
    assert_eq!(data.column("amount_usd").and_then(|c| c.number(40)), Some(-12.0));
    assert_eq!(data.column("discount").and_then(|c| c.number(0)), Some(0.0));
    // A quoted note with a newline and doubled quotes is one cell.
    let Some(Values::Text(notes)) = data.column("note").map(|c| &c.values) else { panic!("note is text") };
    assert!(notes.iter().any(|n| n == "split delivery,\nsecond part later"));
    assert!(notes.iter().any(|n| n == "customer asked \"twice\", ok"));
    assert!(data.data_hash.starts_with("sha256:"));
}

#[test]
fn the_same_table_written_differently_hashes_the_same() {
    let rows = orders();
    let base = ingest(write(&rows, ',', false, "\n").as_bytes()).expect("LF");
    let variants: Vec<(&str, Vec<u8>)> = vec![
        ("CRLF", write(&rows, ',', false, "\r\n").into_bytes()),
        ("every field quoted", write(&rows, ',', true, "\n").into_bytes()),
        ("semicolons", write(&rows, ';', false, "\n").into_bytes()),
        ("tabs, CRLF", write(&rows, '\t', false, "\r\n").into_bytes()),
        ("UTF-8 BOM", [b"\xEF\xBB\xBF".as_slice(), write(&rows, ',', false, "\n").as_bytes()].concat()),
        ("UTF-16 LE", utf16le(&write(&rows, ',', false, "\r\n"), true)),
        ("UTF-16 LE without mark", utf16le(&write(&rows, ',', false, "\n"), false)),
        ("no final newline", write(&rows, ',', false, "\n").trim_end().as_bytes().to_vec()),
    ];
    for (what, bytes) in variants {
        let data = ingest(&bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(data.rows, 60, "{what}");
        assert_eq!(data.data_hash, base.data_hash, "{what}");
    }
    // Ingesting the same bytes twice, and in small chunks on several threads.
    let bytes = std::fs::read(fixture("orders.csv")).expect("fixture");
    assert_eq!(ingest(&bytes).expect("again").data_hash, base.data_hash);
    for block in [7, 64, 333] {
        assert_eq!(ingest_chunked(&bytes, block, 3).expect("chunked").data_hash, base.data_hash, "block {block}");
    }
    // A changed cell changes it.
    let mut changed = rows.clone();
    changed[5][5] = "999.99".into();
    assert_ne!(ingest(write(&changed, ',', false, "\n").as_bytes()).expect("changed").data_hash, base.data_hash);
}

fn utf16le(text: &str, bom: bool) -> Vec<u8> {
    let mut out = if bom { vec![0xFF, 0xFE] } else { vec![] };
    out.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    out
}

#[test]
fn european_exports_read_with_comma_decimals_and_day_first_dates() {
    let text = "Beleg;Datum;Betrag;Anteil;Kunde\n\
                1;31.03.2024;1.234,50;12,5%;Müller\n\
                2;01.04.2024;-7,25;5%;Özdemir\n\
                3;02.04.2024;1.000.000,00;0,5%;Ærø\n";
    let utf8 = ingest(text.as_bytes()).expect("utf-8");
    let latin1: Vec<u8> = text.chars().map(|c| u8::try_from(u32::from(c)).expect("latin-1")).collect();
    let data = ingest(&latin1).expect("latin-1");
    assert_eq!(data.encoding.value, Encoding::Latin1);
    assert_eq!(data.data_hash, utf8.data_hash);
    let Format::Delimited(dialect) = &data.format.value else { panic!("delimited, not {:?}", data.format) };
    assert_eq!(dialect.delimiter.value, ';');
    let betrag = data.column("Betrag").expect("Betrag");
    assert_eq!(betrag.kind.value, Kind::Decimal { decimal_mark: DecimalMark::Comma, grouped: true });
    assert_eq!((betrag.number(0), betrag.number(1), betrag.number(2)), (Some(1234.5), Some(-7.25), Some(1e6)));
    assert_eq!(data.column("Anteil").and_then(|c| c.number(0)), Some(0.125));
    let datum = data.column("Datum").expect("Datum");
    assert_eq!(datum.kind.value, Kind::Date { order: DateOrder::DayMonthYear, separator: '.' });
    assert!(datum.kind.evidence.contains("31.03.2024"), "{}", datum.kind.evidence);
    let Values::Text(names) = &data.column("Kunde").expect("Kunde").values else { panic!("text") };
    assert_eq!(names.get(2), "Ærø");
}

#[test]
fn ambiguous_columns_say_how_they_were_settled() {
    // Every date reads either way and no locale hint: month first, and it says so.
    let data = ingest(b"when,n\n03/04/2024,1\n05/06/2024,2\n").expect("ingest");
    let when = data.column("when").expect("when");
    assert_eq!(when.kind.value, Kind::Date { order: DateOrder::MonthDayYear, separator: '/' });
    assert!(when.kind.evidence.contains("either way"));
    // `1,234` could be 1234 or 1.234: in a comma-delimited file with quotes, it is 1234.
    let data = ingest(b"amount,n\n\"1,234\",1\n\"2,500\",2\n").expect("ingest");
    let amount = data.column("amount").expect("amount");
    assert_eq!(amount.number(0), Some(1234.0));
    assert!(amount.kind.evidence.contains("either way"), "{}", amount.kind.evidence);
    // A value only one order reads decides, and is quoted.
    let data = ingest(b"when\n03/04/2024\n12/31/2024\n").expect("ingest");
    let when = data.column("when").expect("when");
    assert_eq!(when.kind.value, Kind::Date { order: DateOrder::MonthDayYear, separator: '/' });
    assert!(when.kind.evidence.contains("12/31/2024"), "{}", when.kind.evidence);
}

#[test]
fn malformed_rows_are_counted_with_their_line_numbers() {
    let text = b"a,b,c\n1,2,3\n4,5\n\n6,7,8\n9,10,11,12\n\"x\ny\",1,2\n13,14,15\n";
    for block in [4, 1 << 20] {
        let data = ingest_chunked(text, block, 2).expect("ingest");
        assert_eq!(data.rows, 4, "block {block}");
        let ragged = &data.problems.ragged;
        assert_eq!(ragged.count, 2);
        let lines: Vec<(u64, usize)> = ragged.examples.iter().map(|r| (r.line, r.fields)).collect();
        assert_eq!(lines, vec![(3, 2), (6, 4)], "block {block}");
        assert_eq!(data.problems.blank_lines, 1);
    }
}

#[test]
fn invalid_utf8_is_replaced_and_reported_by_line() {
    // Past the sniffed start, so the file is taken for UTF-8.
    let mut bytes = b"name,n\n".to_vec();
    for i in 0..10_000 {
        bytes.extend_from_slice(format!("name{i},{i}\n").as_bytes());
    }
    bytes.extend_from_slice(b"g\xFFmma,3\nde\xC3lta,4\n");
    let data = ingest(&bytes).expect("ingest");
    assert_eq!(data.encoding.value, Encoding::Utf8);
    assert_eq!(data.rows, 10_002);
    assert_eq!(data.problems.invalid_utf8.count, 2);
    assert_eq!(data.problems.invalid_utf8.examples, vec![10_002, 10_003]);
    let Values::Text(names) = &data.column("name").expect("name").values else { panic!("text") };
    assert_eq!(names.get(10_000), "g\u{FFFD}mma");
    // Read as Latin-1 when the start already shows it is not UTF-8.
    let data = ingest(b"name,n\ng\xFFmma,3\n").expect("latin-1");
    assert_eq!(data.encoding.value, Encoding::Latin1);
    let Values::Text(names) = &data.column("name").expect("name").values else { panic!("text") };
    assert_eq!(names.get(0), "g\u{FF}mma");
}

#[test]
fn a_record_over_the_cap_is_skipped_without_being_held() {
    let mut bytes = b"id,text\n1,short\n2,".to_vec();
    bytes.extend(std::iter::repeat_n(b'x', 300_000));
    bytes.extend_from_slice(b"\n3,after\n");
    let options = IngestOptions {
        read: ReadOptions { max_record_bytes: 10_000, block_bytes: 4096, ..ReadOptions::default() },
        ..IngestOptions::default()
    };
    let data = ingest_delimited(Cursor::new(bytes), &options).expect("ingest");
    assert_eq!(data.rows, 2);
    assert_eq!(data.problems.too_long.count, 1);
    let long = &data.problems.too_long.examples[0];
    assert_eq!(long.line, 3);
    assert!(long.bytes > 300_000);
    let Values::Text(texts) = &data.column("text").expect("text").values else { panic!("text") };
    assert_eq!(texts.iter().collect::<Vec<_>>(), vec!["short", "after"]);
}

#[test]
fn broken_inputs_get_clear_errors() {
    assert!(matches!(ingest(b""), Err(IngestError::Empty)));
    assert!(matches!(ingest(b"\n\r\n\n"), Err(IngestError::Empty)));
    let zip = ingest(b"PK\x03\x04\x14\x00\x00\x00rest of an archive");
    assert!(matches!(&zip, Err(IngestError::Binary(why)) if why.contains("ZIP")), "{zip:?}");
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let err = ingest(&garbage).expect_err("garbage");
    assert!(err.to_string().contains("not a text table"), "{err}");

    // A header alone is a table without rows, not an error.
    let data = ingest(b"a,b,c\n").expect("header only");
    assert_eq!((data.rows, data.columns.len()), (0, 3));
    assert!(data.columns.iter().all(|c| c.kind.value == Kind::Empty));
    // Empty and repeated header names get usable ones.
    let options = IngestOptions { header: Some(true), ..IngestOptions::default() };
    let data = ingest_delimited(Cursor::new(b"x,,x\n1,2,3\n".to_vec()), &options).expect("names");
    let names: Vec<&str> = data.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["x", "column_2", "x_2"]);
    assert_eq!(data.renamed.len(), 2);
}

/// Fields that stress quoting: delimiters, quotes, newlines (LF and CRLF), spaces.
fn field() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-c ,\"\n]{0,6}").expect("regex").prop_map(|s| format!("v{s}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// However the file is cut into chunks, every row and cell comes back as written.
    #[test]
    fn chunking_never_changes_what_is_read(
        rows in proptest::collection::vec(proptest::collection::vec(field(), 3), 1..40),
        block in 1usize..200,
        threads in 1usize..4,
        crlf in any::<bool>(),
    ) {
        let header = vec!["a".to_string(), "b".into(), "c".into()];
        let all: Vec<Vec<String>> = std::iter::once(header).chain(rows.iter().cloned()).collect();
        let text = write(&all, ',', false, if crlf { "\r\n" } else { "\n" });
        let options = IngestOptions {
            header: Some(true),
            delimiter: Some(b','),
            read: ReadOptions { block_bytes: block, threads, ..ReadOptions::default() },
            ..IngestOptions::default()
        };
        let data = ingest_delimited(Cursor::new(text.clone().into_bytes()), &options).expect("ingest");
        prop_assert_eq!(data.rows, rows.len());
        prop_assert_eq!(data.problems.rows_left_out(), 0);
        for (c, column) in data.columns.iter().enumerate() {
            let Values::Text(cells) = &column.values else { panic!("text column") };
            let expected: Vec<&str> = rows.iter().map(|r| r[c].as_str()).collect();
            prop_assert_eq!(cells.iter().collect::<Vec<_>>(), expected);
        }
        let whole = ingest_delimited(Cursor::new(text.into_bytes()), &IngestOptions {
            header: Some(true),
            delimiter: Some(b','),
            ..IngestOptions::default()
        }).expect("ingest");
        prop_assert_eq!(whole.data_hash, data.data_hash);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any bytes made of quotes, delimiters, line endings (lone `\r`s included) and text,
    /// valid UTF-8 or not: the outcome is the same however the blocks fall and however
    /// many threads read them.
    #[test]
    fn the_outcome_never_depends_on_the_blocks(
        pieces in proptest::collection::vec(
            prop::sample::select(vec![&b"a"[..], b"1", b",", b"\"", b"\"", b"\n", b"\r", b"\r\n", b" ", "\u{e9}".as_bytes(), b"\xeb"]),
            0..60,
        ),
        block in 1usize..24,
        threads in 1usize..4,
        cap in prop::sample::select(vec![8usize, 1 << 20]),
    ) {
        let bytes = pieces.concat();
        let read = |block_bytes, threads| {
            let options = IngestOptions {
                read: ReadOptions { block_bytes, threads, max_record_bytes: cap, ..ReadOptions::default() },
                ..IngestOptions::default()
            };
            ingest_delimited(Cursor::new(bytes.clone()), &options)
                .map(|d| (d.rows, d.data_hash, d.problems, d.renamed))
                .map_err(|e| e.to_string())
        };
        prop_assert_eq!(read(block, threads), read(1 << 20, 1));
    }
}

/// Found by the fuzz target: a lone `\r` at the start of a line is skipped as part of a
/// blank line, so a quote after it opens a quoted field, and a newline inside that field
/// must not end a block.
#[test]
fn a_quote_after_a_lone_cr_opens_a_field_whatever_the_block_size() {
    let text = "name\n\r\"a\nb\"\nc\n";
    for block in [1, 3, 5, 7, 1 << 20] {
        let data = ingest_chunked(text.as_bytes(), block, 2).expect("ingest");
        let Values::Text(names) = &data.column("name").expect("name").values else { panic!("text") };
        assert_eq!(names.iter().collect::<Vec<_>>(), ["a\nb", "c"], "block {block}");
    }
}

#[test]
fn a_first_record_over_the_cap_is_refused_whatever_the_block_size() {
    let header = format!("{}\n1\n", "h".repeat(5000));
    for block in [7, 1 << 20] {
        let options = IngestOptions {
            read: ReadOptions { block_bytes: block, max_record_bytes: 4096, ..ReadOptions::default() },
            ..IngestOptions::default()
        };
        let result = ingest_delimited(Cursor::new(header.clone().into_bytes()), &options);
        assert!(matches!(result, Err(IngestError::FirstRecordTooLong { cap: 4096 })), "block {block}: {result:?}");
    }
}

#[test]
fn a_record_over_the_cap_is_left_out_whatever_the_block_size() {
    // A 20-byte record between short ones, a cap of 10, LF and CRLF endings; a record of
    // exactly the cap stays.
    for ending in ["\n", "\r\n"] {
        let text = ["a", "1", &"x".repeat(20), &"y".repeat(10), "2"].join(ending) + ending;
        let mut outcomes = Vec::new();
        for block in [3, 7, 1 << 20] {
            let options = IngestOptions {
                read: ReadOptions { block_bytes: block, max_record_bytes: 10, ..ReadOptions::default() },
                ..IngestOptions::default()
            };
            let data = ingest_delimited(Cursor::new(text.clone().into_bytes()), &options).expect("ingest");
            assert_eq!((data.rows, data.problems.too_long.count), (3, 1), "block {block} {ending:?}");
            assert_eq!(data.problems.too_long.examples[0].line, 3, "block {block} {ending:?}");
            outcomes.push((data.data_hash, data.problems));
        }
        assert!(outcomes.windows(2).all(|w| w[0] == w[1]), "{ending:?}: {outcomes:?}");
    }
}

#[test]
fn a_header_wider_than_the_column_limit_is_refused() {
    let options =
        IngestOptions { read: ReadOptions { max_columns: 3, ..ReadOptions::default() }, ..IngestOptions::default() };
    let result = ingest_delimited(Cursor::new(b"a,b,c,d\n1,2,3,4\n".to_vec()), &options);
    assert!(matches!(result, Err(IngestError::TooManyColumns { limit: 3, .. })), "{result:?}");
}

#[test]
fn personal_data_does_not_appear_in_evidence_or_top_values() {
    let text = "id,phone,email,note\n1,0612345678,ann@example.com,ok\n2,0698765432,bob@example.org,ok\n\
                3,0612345678,ann@example.com,call ann@example.com\n";
    let data = ingest(text.as_bytes()).expect("ingest");
    let profile = vigil_tabular::profile::profile(&data.columns, data.rows, 2);
    let shown = format!("{:?} {:?}", data.summary(), profile);
    for secret in ["0612345678", "0698765432", "ann@example.com", "bob@example.org"] {
        assert!(!shown.contains(secret), "{secret} shown in {shown}");
    }
    assert_eq!(data.column("phone").map(|c| c.role.value), Some(Role::Pii));
}

#[test]
fn a_byte_order_mark_inside_the_file_is_data_whatever_the_block_size() {
    // Found by the fuzz target: the tokenizer drops a mark at the start of its input, and
    // a block can start at a row that begins with U+FEFF.
    let text = "name\nann\n\u{feff}bob\n\u{feff}cy\n";
    for block in [1, 4, 9, 1 << 20] {
        let data = ingest_chunked(text.as_bytes(), block, 2).expect("ingest");
        let Values::Text(names) = &data.column("name").expect("name").values else { panic!("text") };
        assert_eq!(names.iter().collect::<Vec<_>>(), ["ann", "\u{feff}bob", "\u{feff}cy"], "block {block}");
    }
}

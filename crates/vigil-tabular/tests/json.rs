//! JSON tables as a user meets them: arrays of records and JSON Lines, nested objects,
//! ragged records, broken lines and oversized records.

use std::io::Cursor;

use vigil_tabular::json::JsonLayout;
use vigil_tabular::read::ReadOptions;
use vigil_tabular::table::Kind;
use vigil_tabular::{Dataset, Format, IngestError, IngestOptions, Values, ingest};

fn read(text: &str) -> Result<Dataset, IngestError> {
    ingest(Cursor::new(text.as_bytes().to_vec()), &IngestOptions::default())
}

fn layout(data: &Dataset) -> JsonLayout {
    match data.format.value {
        Format::Json { layout } => layout,
        ref other => panic!("not JSON: {other:?}"),
    }
}

#[test]
fn the_same_table_hashes_the_same_as_csv_json_array_and_json_lines() {
    let csv = "id,amount,paid,booked,status\n1,12.50,true,2024-03-01,open\n2,-3,false,2024-03-02,\n3,1000,true,,paid\n";
    let array = r#"[
        {"id": 1, "amount": 12.50, "paid": true, "booked": "2024-03-01", "status": "open"},
        {"id": 2, "amount": -3, "paid": false, "booked": "2024-03-02", "status": null},
        {"id": 3, "amount": 1000, "paid": true, "status": "paid"}
    ]"#;
    let lines = "{\"id\":1,\"amount\":12.5,\"paid\":true,\"booked\":\"2024-03-01\",\"status\":\"open\"}\r\n\
                 {\"id\":2,\"amount\":-3,\"paid\":false,\"booked\":\"2024-03-02\"}\n\
                 \n\
                 {\"id\":3,\"amount\":1000.0,\"paid\":true,\"booked\":null,\"status\":\"paid\"}";
    let csv = read(csv).expect("csv");
    let array = read(array).expect("array");
    let lines = read(lines).expect("lines");
    assert!(matches!(csv.format.value, Format::Delimited(_)));
    assert_eq!((layout(&array), layout(&lines)), (JsonLayout::Array, JsonLayout::Lines));
    assert_eq!(lines.problems.blank_lines, 1);
    for data in [&array, &lines] {
        assert_eq!((data.rows, data.columns.len()), (3, 5));
        let kinds: Vec<&str> = data.columns.iter().map(|c| c.kind.value.name()).collect();
        assert_eq!(kinds, ["integer", "decimal", "boolean", "date", "text"]);
        assert_eq!(data.data_hash, csv.data_hash, "{:?}", data.format);
    }
}

#[test]
fn nested_objects_flatten_and_keys_union_in_order_of_first_appearance() {
    let data = read(
        r#"[{"order": 7, "customer": {"id": "C-1", "address": {"city": "Köln"}}, "tags": ["a", "b"]},
            {"order": 8, "note": "late", "customer": {"id": "C-2"}},
            {"customer": {}, "order": 9}]"#,
    )
    .expect("ingest");
    let names: Vec<&str> = data.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["order", "customer.id", "customer.address.city", "tags", "note", "customer"]);
    let text = |name: &str, row: usize| match &data.column(name).expect(name).values {
        Values::Text(s) => s.get(row).to_string(),
        other => panic!("{name} is {other:?}"),
    };
    assert_eq!(text("customer.address.city", 0), "Köln");
    assert_eq!(text("tags", 0), r#"["a","b"]"#);
    assert_eq!(text("customer", 2), "{}");
    // Keys a record lacks are missing cells, before and after the key first appears.
    let note = data.column("note").expect("note");
    assert_eq!(note.validity.missing_count(), 2);
    assert!(note.validity.is_missing(0) && note.validity.is_missing(2));
    assert_eq!(data.column("order").and_then(|c| c.number(2)), Some(9.0));
}

#[test]
fn broken_json_lines_are_counted_with_line_numbers_and_the_rest_is_read() {
    let text = "{\"a\": 1}\n{\"a\": 2,\n[1, 2]\n\n\"text\"\n{\"a\": 3}\n";
    let data = read(text).expect("ingest");
    assert_eq!(data.rows, 2);
    assert_eq!(data.problems.malformed.count, 3);
    let lines: Vec<u64> = data.problems.malformed.examples.iter().map(|m| m.line).collect();
    assert_eq!(lines, [2, 3, 5]);
    assert!(data.problems.malformed.examples[1].reason.contains("an array where a record"));
    assert_eq!(data.problems.rows_left_out(), 3);
}

#[test]
fn array_elements_that_are_not_records_are_counted() {
    let data = read("[{\"a\": 1},\n 5,\n {\"a\": 2},\n null]").expect("ingest");
    assert_eq!((data.rows, data.problems.malformed.count), (2, 2));
    assert_eq!(data.problems.malformed.examples[0].line, 2);
    assert!(data.problems.malformed.examples[1].reason.starts_with("null"));
}

#[test]
fn a_syntax_error_in_an_array_names_its_place() {
    match read("[{\"a\": 1},\n {\"a\": 2,, }]") {
        Err(IngestError::Json { line, column, .. }) => assert_eq!((line, column), (2, 10)),
        other => panic!("expected a JSON error, got {other:?}"),
    }
    assert!(matches!(read("[{\"a\": 1}"), Err(IngestError::Json { .. })));
    assert!(matches!(read("[]"), Ok(d) if d.rows == 0 && d.columns.is_empty()));
}

#[test]
fn records_over_the_cap_are_refused_without_being_held() {
    let options = IngestOptions {
        read: ReadOptions { max_record_bytes: 1000, ..ReadOptions::default() },
        ..IngestOptions::default()
    };
    let big = "x".repeat(100_000);
    // JSON Lines: the long line is skipped and counted, the rest read.
    let lines = format!("{{\"a\": \"short\"}}\n{{\"a\": \"{big}\"}}\n{{\"a\": \"again\"}}\n");
    let data = ingest(Cursor::new(lines.into_bytes()), &options).expect("lines");
    assert_eq!((data.rows, data.problems.too_long.count), (2, 1));
    assert_eq!(data.problems.too_long.examples[0].line, 2);
    // An array cannot skip an element: the read stops with a clear error.
    let array = format!("[{{\"a\": \"short\"}},\n{{\"a\": \"{big}\"}}]");
    match ingest(Cursor::new(array.into_bytes()), &options) {
        Err(IngestError::RecordTooLong { cap, line }) => assert_eq!((cap, line), (1000, 2)),
        other => panic!("expected RecordTooLong, got {other:?}"),
    }
}

#[test]
fn json_in_utf16_with_a_mark_reads_like_utf8() {
    let text = "[{\"name\": \"Zoë\", \"n\": 1}, {\"name\": \"Ana\", \"n\": 2}]";
    let utf16: Vec<u8> = [0xFF, 0xFE].into_iter().chain(text.encode_utf16().flat_map(u16::to_le_bytes)).collect();
    let a = ingest(Cursor::new(utf16), &IngestOptions::default()).expect("utf-16");
    let b = read(text).expect("utf-8");
    assert_eq!(a.data_hash, b.data_hash);
    assert_eq!(a.column("n").map(|c| c.kind.value.clone()), b.column("n").map(|c| c.kind.value.clone()));
    assert!(matches!(a.column("n").map(|c| &c.kind.value), Some(Kind::Integer { .. })));
}

#[test]
fn keys_past_the_column_limit_stop_the_read_with_their_line() {
    let options =
        IngestOptions { read: ReadOptions { max_columns: 2, ..ReadOptions::default() }, ..IngestOptions::default() };
    let lines = "{\"a\": 1}\n{\"b\": 2}\n{\"c\": 3}\n";
    let result = ingest(Cursor::new(lines.as_bytes().to_vec()), &options);
    assert!(matches!(result, Err(IngestError::TooManyColumns { limit: 2, line: 3 })), "{result:?}");
    let array = "[{\"a\": 1, \"b\": 2},\n {\"c\": 3}]";
    let result = ingest(Cursor::new(array.as_bytes().to_vec()), &options);
    assert!(matches!(result, Err(IngestError::TooManyColumns { limit: 2, .. })), "{result:?}");
}

#[test]
fn column_names_stay_unique_and_bracketed_csv_is_not_json() {
    let data = read("[{\"\": 1, \"column_1\": 2}]").expect("ingest");
    let names: Vec<&str> = data.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["column_1", "column_1_2"]);
    let data = read("[Date],[Amount]\n2024-01-01,5\n").expect("csv");
    assert!(matches!(data.format.value, Format::Delimited(_)));
    assert_eq!(data.columns[0].name, "[Date]");
}

#[test]
fn a_json_line_of_exactly_the_cap_is_kept_with_either_ending() {
    let record = "{\"a\": \"xxxx\"}"; // 13 bytes
    for ending in ["\n", "\r\n"] {
        let options = IngestOptions {
            read: ReadOptions { max_record_bytes: 13, ..ReadOptions::default() },
            ..IngestOptions::default()
        };
        let text = format!("{record}{ending}{record}{ending}");
        let data = ingest(Cursor::new(text.into_bytes()), &options).expect("ingest");
        assert_eq!((data.rows, data.problems.too_long.count), (2, 0), "{ending:?}");
    }
}

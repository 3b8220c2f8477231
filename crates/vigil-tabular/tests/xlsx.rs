//! XLSX workbooks built here, cell by cell: sheets read as tables that hash like their CSV
//! exports, chosen sheets, headers, error cells, and archives that unpack past the caps.

#[path = "../src/testing.rs"]
mod workbook;

use vigil_tabular::xlsx::{XlsxError, XlsxLimits, XlsxOptions, ingest_xlsx};
use vigil_tabular::{IngestOptions, ingest_delimited};
use workbook::{boolean, date, number, row, text, workbook};

/// The orders sheet and its CSV export.
fn orders() -> (String, &'static [u8]) {
    let rows = [
        row(1, &[text("A1", "id"), text("B1", "amount"), text("C1", "day"), text("D1", "paid")]),
        row(2, &[number("A2", "1"), number("B2", "10.5"), date("C2", 45292), boolean("D2", true)]),
        row(3, &[number("A3", "2"), date("C3", 45293), boolean("D3", false)]),
        row(5, &[number("A5", "4"), number("B5", "-3.25"), date("C5", 45295), boolean("D5", true)]),
    ]
    .concat();
    (rows, b"id,amount,day,paid\n1,10.5,2024-01-01,true\n2,,2024-01-02,false\n,,,\n4,-3.25,2024-01-04,true\n")
}

fn write(dir: &tempfile::TempDir, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.path().join("book.xlsx");
    std::fs::write(&path, bytes).expect("write");
    path
}

#[test]
fn a_sheet_is_the_same_dataset_version_as_its_csv_export() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (rows, csv) = orders();
    let path = write(&dir, &workbook(&[("Orders", rows)]));
    let sheets = ingest_xlsx(&path, &XlsxOptions::default()).expect("read");
    assert_eq!(sheets.len(), 1);
    let sheet = &sheets[0].dataset;
    assert_eq!((sheets[0].name.as_str(), sheet.rows, sheet.columns.len()), ("Orders", 4, 4));
    let kinds: Vec<&str> = sheet.columns.iter().map(|c| c.kind.value.name()).collect();
    assert_eq!(kinds, ["integer", "decimal", "date", "boolean"]);
    let from_csv = ingest_delimited(csv, &IngestOptions::default()).expect("csv");
    assert_eq!(sheet.data_hash, from_csv.data_hash, "an empty row 4 is a row of missing cells, as in the CSV");
}

#[test]
fn every_sheet_or_the_chosen_ones_and_headers_are_detected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (orders, _) = orders();
    let raw =
        [row(1, &[number("A1", "7"), number("B1", "8")]), row(2, &[number("A2", "9"), number("B2", "10")])].concat();
    let path = write(&dir, &workbook(&[("Orders", orders), ("Raw", raw)]));
    let all = ingest_xlsx(&path, &XlsxOptions::default()).expect("all");
    assert_eq!(all.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["Orders", "Raw"]);
    let raw = &all[1].dataset;
    assert_eq!(raw.rows, 2, "a first row of numbers is data");
    assert_eq!(raw.columns[0].name, "column_1");

    let chosen =
        ingest_xlsx(&path, &XlsxOptions { sheets: vec!["Raw".into()], ..XlsxOptions::default() }).expect("one");
    assert_eq!(chosen.len(), 1);
    let missing = ingest_xlsx(&path, &XlsxOptions { sheets: vec!["Nope".into()], ..XlsxOptions::default() });
    assert!(matches!(missing, Err(XlsxError::NoSheet(ref name, _)) if name == "Nope"), "{missing:?}");
}

#[test]
fn error_cells_are_missing_and_counted_with_their_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rows = [
        row(1, &[text("A1", "ratio")]),
        row(2, &[number("A2", "0.5")]),
        row(3, &[r#"<c r="A3" t="e"><v>#DIV/0!</v></c>"#.to_owned()]),
    ]
    .concat();
    let path = write(&dir, &workbook(&[("S", rows)]));
    let sheet = &ingest_xlsx(&path, &XlsxOptions::default()).expect("read")[0].dataset;
    assert_eq!(sheet.problems.invalid_cells.count, 1);
    assert_eq!(sheet.problems.invalid_cells.examples, [3]);
    assert_eq!(sheet.columns[0].validity.missing_count(), 1);
    assert_eq!(sheet.columns[0].kind.value.name(), "decimal");
}

#[test]
fn archives_that_unpack_past_the_caps_are_refused_before_parsing() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 8 MiB of one repeated row compresses a thousandfold.
    let filler = row(1, &[text("A1", "x")]).repeat(8 << 20 >> 5);
    let path = write(&dir, &workbook(&[("Big", filler)]));
    let small = XlsxLimits { max_total_bytes: 4 << 20, ..XlsxLimits::default() };
    let err = ingest_xlsx(&path, &XlsxOptions { limits: small, ..XlsxOptions::default() }).expect_err("too large");
    assert!(matches!(err, XlsxError::TooLarge(_)), "{err}");
    let tight = XlsxLimits { max_ratio: 20, ..XlsxLimits::default() };
    let err = ingest_xlsx(&path, &XlsxOptions { limits: tight, ..XlsxOptions::default() }).expect_err("ratio");
    assert!(err.to_string().contains("ratio"), "{err}");

    let not_zip = write(&dir, b"id,amount\n1,2\n");
    assert!(matches!(ingest_xlsx(&not_zip, &XlsxOptions::default()), Err(XlsxError::NotXlsx(_))));
}

#[test]
fn cells_in_any_order_formatting_only_cells_and_sparse_sheets() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Row 1 is preceded by a formatted but empty row; cells within a row arrive out of
    // order; trailing formatted rows hold nothing.
    let rows = [
        r#"<row r="1"><c r="A1" s="1"/><c r="B1" s="1"/></row>"#.to_owned(),
        row(2, &[text("B2", "amount"), text("A2", "id")]),
        row(3, &[number("B3", "5"), number("A3", "1")]),
        r#"<row r="9"><c r="A9" s="1"/></row>"#.to_owned(),
    ]
    .concat();
    let path = write(&dir, &workbook(&[("S", rows)]));
    let sheet = &ingest_xlsx(&path, &XlsxOptions::default()).expect("read")[0].dataset;
    assert_eq!(sheet.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["id", "amount"]);
    assert_eq!(sheet.rows, 1, "formatting alone makes no row");
    assert!(sheet.format.evidence.contains("row 2 names the columns"), "{}", sheet.format.evidence);

    // Two cells far apart would make a table of billions of empty cells.
    let sparse = [row(1, &[text("A1", "a"), text("XFD1", "z")]), row(1_048_576, &[number("A1048576", "1")])].concat();
    let path = write(&dir, &workbook(&[("S", sparse)]));
    let err = ingest_xlsx(&path, &XlsxOptions::default()).expect_err("too many cells");
    assert!(err.to_string().contains("cell limit"), "{err}");

    let twice = [row(1, &[text("A1", "a")]), row(2, &[number("A2", "1"), number("A2", "2")])].concat();
    let path = write(&dir, &workbook(&[("S", twice)]));
    let err = ingest_xlsx(&path, &XlsxOptions::default()).expect_err("duplicate cell");
    assert!(err.to_string().contains("twice"), "{err}");
}

use super::*;
use crate::value::MICROS_PER_DAY;
use proptest::prelude::*;

fn raw(cells: &[&str]) -> Vec<RawColumn> {
    // Two chunks, so inference and reading cross a chunk boundary.
    let (a, b) = cells.split_at(cells.len() / 2);
    [a, b]
        .into_iter()
        .map(|part| {
            let mut column = RawColumn::default();
            for cell in part {
                column.bytes.extend_from_slice(cell.as_bytes());
                column.ends.push(column.bytes.len() as u32);
            }
            column
        })
        .collect()
}

fn infer(name: &str, cells: &[&str]) -> Column {
    column(name.into(), raw(cells), cells.len(), Context { delimiter: b',' })
}

#[test]
fn names_split_into_words() {
    assert_eq!(name_words("o_orderKey"), ["o", "order", "key"]);
    assert_eq!(name_words("Order ID"), ["order", "id"]);
    assert_eq!(named(&name_words("l_extendedprice"), &AMOUNT_WORDS).as_deref(), Some("extendedprice"));
    assert_eq!(named(&name_words("c_custkey"), &ID_WORDS).as_deref(), Some("custkey"));
    // "no" must be a whole word: "note" is not a number.
    assert_eq!(named(&name_words("note"), &ID_WORDS), None);
}

#[test]
fn kinds_come_from_every_value() {
    let c = infer("flag", &["yes", "", "No", "TRUE"]);
    assert_eq!((c.kind.value.clone(), c.validity.missing_count()), (Kind::Boolean, 1));
    // One fraction anywhere makes the whole column decimal.
    let mut cells = vec!["1"; 999];
    cells.push("2.5");
    let c = infer("x", &cells);
    assert_eq!(c.kind.value, Kind::Decimal { decimal_mark: DecimalMark::Point, grouped: false });
    assert_eq!(c.number(999), Some(2.5));
    // Amounts with symbols, some without: still currency, with both symbols listed.
    let c = infer("total", &["$10.00", "12.50", "€3", "(4.00)"]);
    assert_eq!(
        c.kind.value,
        Kind::Currency { decimal_mark: DecimalMark::Point, symbols: vec!["$".into(), "€".into()] }
    );
    assert_eq!(c.role.value, Role::Amount);
    assert!(c.kind.evidence.starts_with("2 of 4 values"), "{}", c.kind.evidence);
    // Date-times with offsets are UTC instants.
    let c = infer("at", &["2024-03-31T23:30:00+02:00", "2024-03-31 21:30:00Z"]);
    assert!(matches!(c.kind.value, Kind::DateTime { order: DateOrder::YearMonthDay, .. }));
    assert_eq!(c.number(0), c.number(1));
    // Text that is not a category or an identifier.
    let c = infer("comment", &["late again", "fine", "damaged box", "fine, thanks", "will call"]);
    assert_eq!((c.kind.value.clone(), c.role.value), (Kind::Text, Role::Text));
}

#[test]
fn a_value_that_breaks_a_type_is_quoted_in_the_evidence() {
    let c = infer("n", &["1", "2", "three", "4"]);
    assert_eq!(c.kind.value, Kind::Text);
    assert!(c.kind.evidence.contains("\"three\" (row 3) is not a number"), "{}", c.kind.evidence);
}

#[test]
fn identifiers_and_categories_are_told_apart() {
    let ids: Vec<String> = (0..50).map(|i| format!("INV-{i:05}")).collect();
    let c = infer("invoice", &ids.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!((c.kind.value.clone(), c.role.value), (Kind::Identifier, Role::Id));
    let statuses: Vec<&str> = (0..50).map(|i| ["open", "paid", "void"][i % 3]).collect();
    let c = infer("status", &statuses);
    assert_eq!((c.kind.value.clone(), c.role.value), (Kind::Category, Role::Category));
    // Whole numbers named like keys are ids, not amounts to total.
    let c = infer("o_custkey", &["12", "7", "12"]);
    assert_eq!(c.role.value, Role::Id);
}

#[test]
fn personal_data_is_a_role_whatever_the_type() {
    let cards = ["4111111111111111", "5555555555554444", "4012888888881881", "378282246310005"];
    let c = infer("pan", &cards);
    assert!(matches!(c.kind.value, Kind::Integer { .. }));
    assert_eq!(c.role.value, Role::Pii);
    assert!(c.role.evidence.contains("payment card"), "{}", c.role.evidence);
    let c = infer("contact", &["+49 30 1234567", "+44 20 7946 0958", "(555) 123-4567"]);
    assert_eq!(c.role.value, Role::Pii);
    // Order numbers are not cards: the Luhn check fails for most of them.
    let orders: Vec<String> = (0..40).map(|i| format!("{}", 4_111_111_111_111_000u64 + i * 7)).collect();
    let c = infer("order_no", &orders.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(c.role.value, Role::Id);
}

#[test]
fn date_times_span_every_four_digit_year() {
    let c = infer("valid_to", &["9999-12-31 23:59:59", "0001-01-01 00:00:00.5", "2024-02-29T12:00:00"]);
    assert!(matches!(c.kind.value, Kind::DateTime { .. }));
    let day = MICROS_PER_DAY as f64;
    assert_eq!(c.number(0), Some(2_932_896.0 * day + 86_399.0 * 1e6));
    assert_eq!(c.number(1), Some(-719_162.0 * day + 5e5));
}

/// Cells of one family of shapes (numbers, dates, booleans), so readers stay viable or
/// drop out at random rows, with the odd missing cell.
fn family() -> impl Strategy<Value = Vec<BoxedStrategy<String>>> {
    let missing = || prop::sample::select(vec!["", "NA", " n/a "]).prop_map(str::to_string).boxed();
    let integers = || (-99_999i64..99_999).prop_map(|n| n.to_string()).boxed();
    let point = vec![
        missing(),
        integers(),
        (-99_999i64..99_999, 0u32..100).prop_map(|(a, b)| format!("{a}.{b:02}")).boxed(),
        (1i64..999, 0u32..1000).prop_map(|(a, b)| format!("{a},{b:03}")).boxed(),
        (0u32..9999).prop_map(|n| format!("${n}.50")).boxed(),
        (0u32..9999).prop_map(|n| format!("({n}.00)")).boxed(),
        Just("9007199254740993".to_string()).boxed(),
        Just("007".to_string()).boxed(),
    ];
    let whole = vec![missing(), integers(), integers(), integers(), Just("9007199254740993".to_string()).boxed()];
    let plain = vec![
        missing(),
        integers(),
        integers(),
        (-99_999i64..99_999, 0u32..100).prop_map(|(a, b)| format!("{a}.{b:02}")).boxed(),
        Just("9007199254740993".to_string()).boxed(),
    ];
    let comma = vec![
        missing(),
        integers(),
        (-99_999i64..99_999, 0u32..100).prop_map(|(a, b)| format!("{a},{b:02}")).boxed(),
        (1i64..999, 0u32..1000).prop_map(|(a, b)| format!("{a}.{b:03}")).boxed(),
        (0u32..9999).prop_map(|n| format!("{n},00 €")).boxed(),
    ];
    let dates = vec![
        missing(),
        (1u32..29, 1u32..13, 1990u32..2030).prop_map(|(d, m, y)| format!("{d:02}/{m:02}/{y}")).boxed(),
        (1u32..29, 1u32..13, 1990u32..2030).prop_map(|(d, m, y)| format!("{m:02}/{d:02}/{y}")).boxed(),
        (1u32..29, 1u32..13, 1990u32..2030).prop_map(|(d, m, y)| format!("{y}-{m:02}-{d:02}")).boxed(),
        (1u32..29, 0u32..24).prop_map(|(d, h)| format!("2024-01-{d:02} {h:02}:30:00.25")).boxed(),
    ];
    let flags = vec![missing(), prop::sample::select(vec!["yes", "no", "TRUE", "f"]).prop_map(str::to_string).boxed()];
    let percents = vec![missing(), (0u32..1000).prop_map(|n| format!("{}.{}%", n / 10, n % 10)).boxed()];
    prop::sample::select(vec![whole, plain, point, comma, dates, flags, percents])
}

/// A column drawn from one family, with a foreign cell now and then.
fn column_cells() -> impl Strategy<Value = Vec<String>> {
    family()
        .prop_flat_map(|shapes| {
            let cell =
                prop::sample::select((0..shapes.len()).collect::<Vec<_>>()).prop_flat_map(move |i| shapes[i].clone());
            let foreign = prop::option::weighted(0.1, "[a-z]{1,6}");
            (prop::collection::vec(cell, 1..40), foreign, any::<prop::sample::Index>())
        })
        .prop_map(|(mut cells, foreign, at)| {
            if let Some(f) = foreign {
                let i = at.index(cells.len());
                cells[i] = f;
            }
            cells
        })
}

proptest! {
    /// The values kept while surveying are the values a second read of the chosen kind
    /// gives: the one-pass shortcut changes nothing.
    #[test]
    fn surveyed_values_equal_a_second_read(cells in column_cells(), delimiter in prop::sample::select(vec![b',', b';'])) {
        let refs: Vec<&str> = cells.iter().map(String::as_str).collect();
        let chunks = raw(&refs);
        let c = column("x".into(), raw(&refs), refs.len(), Context { delimiter });
        if !c.kind.value.is_text() {
            let (values, validity) = convert(&c.kind.value, &chunks, refs.len());
            prop_assert_eq!(&c.values, &values, "{:?} as {:?}", refs, c.kind.value);
            prop_assert_eq!(&c.validity, &validity);
        }
    }
}

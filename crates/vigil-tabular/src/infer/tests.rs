use super::*;

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

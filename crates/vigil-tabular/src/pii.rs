//! Recognising personal data in a cell (email addresses, phone numbers, IBANs, payment
//! card numbers) and redacting it for display.
//!
//! The checks are structural and validated where a check digit exists (IBAN mod 97, card
//! Luhn), so a column of order numbers is not mistaken for cards. Nothing here logs or
//! returns the value itself except [`redact`], which keeps only enough to recognise it.

use std::borrow::Cow;

use serde::Serialize;

/// A kind of personal data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    Email,
    Phone,
    Iban,
    Card,
}

impl PiiKind {
    pub fn name(self) -> &'static str {
        match self {
            PiiKind::Email => "email address",
            PiiKind::Phone => "phone number",
            PiiKind::Iban => "IBAN",
            PiiKind::Card => "payment card number",
        }
    }
}

/// The kind of personal data `cell` is, if it is one whole value of a kind.
pub fn classify(cell: &str) -> Option<PiiKind> {
    let t = cell.trim();
    if t.len() < 6 || t.len() > 254 {
        return None;
    }
    if is_email(t) {
        Some(PiiKind::Email)
    } else if is_iban(t) {
        Some(PiiKind::Iban)
    } else if is_card(t) {
        Some(PiiKind::Card)
    } else if is_phone(t) {
        Some(PiiKind::Phone)
    } else {
        None
    }
}

/// `local@domain.tld`: a plausible local part, a dotted domain with a letter TLD.
pub fn is_email(t: &str) -> bool {
    let Some((local, domain)) = t.split_once('@') else { return false };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local.bytes().all(|c| c.is_ascii_alphanumeric() || b".!#$%&'*+/=?^_`{|}~-".contains(&c))
        && !local.starts_with('.')
        && !local.ends_with('.');
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
                && !l.starts_with('-')
        })
        && labels.last().is_some_and(|tld| tld.len() >= 2 && tld.bytes().all(|c| c.is_ascii_alphabetic()));
    local_ok && domain_ok
}

/// An IBAN: country code, check digits, 11–30 alphanumerics (spaces allowed in groups of
/// four), valid by ISO 7064 mod 97.
pub fn is_iban(t: &str) -> bool {
    let compact: Vec<u8> = t.bytes().filter(|c| *c != b' ').collect();
    if !(15..=34).contains(&compact.len())
        || !compact[..2].iter().all(u8::is_ascii_uppercase)
        || !compact[2..4].iter().all(u8::is_ascii_digit)
        || !compact[4..].iter().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    {
        return false;
    }
    let mut remainder: u32 = 0;
    for &c in compact[4..].iter().chain(&compact[..4]) {
        let value = if c.is_ascii_digit() { u32::from(c - b'0') } else { u32::from(c - b'A') + 10 };
        remainder = if value >= 10 { (remainder * 100 + value) % 97 } else { (remainder * 10 + value) % 97 };
    }
    remainder == 1
}

/// A payment card number: 13–19 digits (spaces or dashes between groups), a known
/// issuer prefix, and a valid Luhn check digit.
pub fn is_card(t: &str) -> bool {
    if !t.bytes().all(|c| c.is_ascii_digit() || c == b' ' || c == b'-') {
        return false;
    }
    let digits: Vec<u8> = t.bytes().filter(u8::is_ascii_digit).map(|c| c - b'0').collect();
    if !(13..=19).contains(&digits.len()) || !matches!(digits[0], 2..=6) {
        return false;
    }
    luhn(&digits)
}

/// The Luhn check over digits (the last one being the check digit).
pub fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let twice = d * 2;
                if twice > 9 { twice - 9 } else { twice }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// A phone number as written by people: an optional `+` and country code, 8–15 digits,
/// grouped with spaces, dashes, dots or parentheses — but with at least one such mark or
/// a leading `+`, so a plain integer column is not taken for phones.
pub fn is_phone(t: &str) -> bool {
    let mut digits = 0;
    let mut marks = 0;
    for (i, c) in t.bytes().enumerate() {
        match c {
            b'0'..=b'9' => digits += 1,
            b'+' if i == 0 => marks += 1,
            b' ' | b'-' | b'.' | b'(' | b')' => marks += 1,
            _ => return false,
        }
    }
    // A date (2024-03-31) or a decimal (1234.5678) has the marks but not the shape.
    let dotted_decimal = t.bytes().filter(|c| *c == b'.').count() == 1 && !t.contains([' ', '-', '(']);
    (8..=15).contains(&digits) && marks > 0 && !dotted_decimal && !looks_like_date(t)
}

fn looks_like_date(t: &str) -> bool {
    let parts: Vec<&str> = t.split(['-', '/', '.']).collect();
    parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.len() <= 4 && p.bytes().all(|c| c.is_ascii_digit()))
}

/// A value safe to show: its kind and shape, not its content (`j***@e***.com`,
/// `**** **** **** 4242`).
pub fn redact(kind: PiiKind, value: &str) -> String {
    let t = value.trim();
    match kind {
        PiiKind::Email => {
            let (local, domain) = t.split_once('@').unwrap_or((t, ""));
            let tld = domain.rsplit_once('.').map_or("", |(_, tld)| tld);
            format!("{}***@{}***.{tld}", first_char(local), first_char(domain))
        }
        PiiKind::Card | PiiKind::Phone => {
            let digits: String = t.chars().filter(char::is_ascii_digit).collect();
            let keep = if kind == PiiKind::Card { 4 } else { 2 };
            let tail = &digits[digits.len().saturating_sub(keep)..];
            format!("{}{tail}", "*".repeat(digits.len().saturating_sub(keep)))
        }
        PiiKind::Iban => {
            let compact: String = t.chars().filter(|c| *c != ' ').collect();
            let country = compact.get(..2).unwrap_or("");
            format!("{country}{}", "*".repeat(compact.len().saturating_sub(2)))
        }
    }
}

/// Any value of a personal-data column, safe to show: redacted by its kind when it is
/// recognisable, otherwise reduced to its first character (`M***`).
pub fn redact_any(value: &str) -> String {
    match classify(value) {
        Some(kind) => redact(kind, value),
        None => format!("{}***", first_char(value.trim())),
    }
}

/// A value as it may appear in evidence: [`scrub`]bed, at most 40 characters.
pub fn shown(value: &str) -> String {
    scrub(value).chars().take(40).collect()
}

/// Text with the personal data it holds redacted: the whole value if it is some, else
/// each whitespace-separated word that is (an address inside a free-text note).
pub fn scrub(text: &str) -> Cow<'_, str> {
    if let Some(kind) = classify(text) {
        return redact(kind, text).into();
    }
    if !text.split_whitespace().any(|w| classify(w).is_some()) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let word_start = rest.find(|c: char| !c.is_whitespace()).unwrap_or(rest.len());
        out.push_str(&rest[..word_start]);
        rest = &rest[word_start..];
        let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let word = &rest[..word_end];
        match classify(word) {
            Some(kind) => out.push_str(&redact(kind, word)),
            None => out.push_str(word),
        }
        rest = &rest[word_end..];
    }
    out.into()
}

/// `text` with the content of every double-quoted span (as `{:?}` writes strings)
/// replaced by [`redact_any`]: evidence about a personal-data column, made safe.
pub fn redact_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('"') {
        out.push_str(&rest[..=open]);
        let after = &rest[open + 1..];
        // The closing quote is the first one not escaped by a backslash.
        let mut escaped = false;
        let close = after.char_indices().find_map(|(i, c)| {
            let end = c == '"' && !escaped;
            escaped = c == '\\' && !escaped;
            end.then_some(i)
        });
        let Some(close) = close else {
            out.push_str(&redact_any(after));
            return out;
        };
        out.push_str(&redact_any(&after[..close]));
        out.push('"');
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

fn first_char(s: &str) -> String {
    s.chars().next().map(String::from).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_is_recognised_and_look_alikes_are_not() {
        assert_eq!(classify("jane.doe+erp@example.co.uk"), Some(PiiKind::Email));
        assert_eq!(classify("GB82 WEST 1234 5698 7654 32"), Some(PiiKind::Iban));
        assert_eq!(classify("DE89370400440532013000"), Some(PiiKind::Iban));
        assert_eq!(classify("4111 1111 1111 1111"), Some(PiiKind::Card));
        assert_eq!(classify("5555-5555-5555-4444"), Some(PiiKind::Card));
        assert_eq!(classify("+44 20 7946 0958"), Some(PiiKind::Phone));
        assert_eq!(classify("(555) 123-4567"), Some(PiiKind::Phone));
        // Check digits wrong, plain numbers, dates, decimals, words.
        assert_eq!(classify("GB82 WEST 1234 5698 7654 33"), None);
        assert_eq!(classify("4111 1111 1111 1112"), None);
        assert_eq!(classify("1234567890123"), None);
        assert_eq!(classify("2024-03-31"), None);
        assert_eq!(classify("1234.5678"), None);
        assert_eq!(classify("not@an-address"), None);
        assert_eq!(classify("Clerk#000000951"), None);
    }

    #[test]
    fn redaction_keeps_the_shape_not_the_value() {
        assert_eq!(redact(PiiKind::Email, "jane.doe@example.com"), "j***@e***.com");
        assert_eq!(redact(PiiKind::Card, "4111 1111 1111 1111"), "************1111");
        assert_eq!(redact(PiiKind::Iban, "GB82 WEST 1234 5698 7654 32"), "GB********************");
        assert!(!redact(PiiKind::Phone, "+44 20 7946 0958").contains("7946"));
        assert_eq!(redact_any("Maria Schmidt"), "M***");
        assert_eq!(shown("late delivery"), "late delivery");
        assert_eq!(shown("ann@example.com"), "a***@e***.com");
        assert_eq!(scrub("call ann@example.com  today"), "call a***@e***.com  today");
        assert!(matches!(scrub("nothing here"), Cow::Borrowed("nothing here")));
        let evidence = r#"whole numbers, but "0612345678" (row 1) has leading zeros; "a\"b" too"#;
        let safe = redact_quoted(evidence);
        assert!(!safe.contains("0612345678") && safe.contains("(row 1) has leading zeros"), "{safe}");
        assert!(safe.ends_with("\" too"), "{safe}");
    }
}

//! Numbers as outside input writes them.

/// A float that is a whole number from 0 to `u64::MAX` (`42.0`, as Python's `json.dumps` or
/// a JavaScript client writes a count), as that integer; `None` for a fraction, a negative,
/// a value past `u64::MAX`, infinity or NaN.
pub fn whole_u64(f: f64) -> Option<u64> {
    // 2^64 as a float: the first value past u64::MAX. Every float from 2^53 up is whole.
    (f.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&f)).then_some(f as u64)
}

/// Writes every whole-number float in `value` (`5000.0`, as JavaScript and Python may send
/// an integer) as an integer, at any depth. A JSON Schema `integer` accepts such a float, so
/// documents the schema accepts (plugin settings, policies) must parse as integers too, and
/// `5000.0` and `5000` are then the same document. A fraction, and a whole float beyond 64
/// bits, stay as they are.
pub fn whole_numbers_as_integers(value: &mut serde_json::Value) {
    // 2^64 and -2^63 as floats: the first values past u64::MAX and i64::MIN's side.
    const U64_END: f64 = 18_446_744_073_709_551_616.0;
    const I64_START: f64 = -9_223_372_036_854_775_808.0;
    match value {
        serde_json::Value::Number(n) if n.is_f64() => {
            let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0) else { return };
            if (0.0..U64_END).contains(&f) {
                *value = serde_json::Value::from(f as u64);
            } else if (I64_START..0.0).contains(&f) {
                *value = serde_json::Value::from(f as i64);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(whole_numbers_as_integers),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(whole_numbers_as_integers),
        _ => {}
    }
}

/// Serde `deserialize_with`: a whole number that fits `T`, written as an integer or as a
/// whole float (`42.0`; JSON Schema counts both as an integer). A fraction, a negative or a
/// number past `T` is an error naming it.
pub fn whole<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    use serde::Deserialize;
    let number = serde_json::Number::deserialize(deserializer)?;
    number
        .as_u64()
        .or_else(|| number.as_f64().and_then(whole_u64))
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| serde::de::Error::custom(format!("{number} is not a whole number in range")))
}

/// [`whole`] for an optional field (absent or `null` is `None`).
pub fn whole_opt<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    use serde::Deserialize;
    #[derive(Deserialize)]
    struct Whole<T: TryFrom<u64>>(#[serde(deserialize_with = "whole")] T);
    Ok(Option::<Whole<T>>::deserialize(deserializer)?.map(|w| w.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_whole_numbers_in_range_convert() {
        assert_eq!(whole_u64(42.0), Some(42));
        assert_eq!(whole_u64(0.0), Some(0));
        assert_eq!(whole_u64(9.0e15), Some(9_000_000_000_000_000));
        assert_eq!(whole_u64(18_446_744_073_709_549_568.0), Some(18_446_744_073_709_549_568));
        for refused in [0.5, -1.0, 18_446_744_073_709_551_616.0, f64::INFINITY, f64::NAN] {
            assert_eq!(whole_u64(refused), None, "{refused}");
        }
    }
}

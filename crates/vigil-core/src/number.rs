//! Numbers as outside input writes them.

/// A float that is a whole number from 0 to `u64::MAX` (`42.0`, as Python's `json.dumps` or
/// a JavaScript client writes a count), as that integer; `None` for a fraction, a negative,
/// a value past `u64::MAX`, infinity or NaN.
pub fn whole_u64(f: f64) -> Option<u64> {
    // 2^64 as a float: the first value past u64::MAX. Every float from 2^53 up is whole.
    (f.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&f)).then_some(f as u64)
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

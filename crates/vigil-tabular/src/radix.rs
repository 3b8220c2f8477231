//! A stable least-significant-digit radix sort by a 64-bit key, for the profile's sorts of
//! a million values and more, where it takes a fraction of a comparison sort's time.
//!
//! Digits that are the same in every key (the high bytes of small integers, of dates, of
//! doubles of one sign and range) are skipped, so a column of small numbers is sorted in
//! one or two passes.

/// Below this many items a comparison sort is as fast and needs no second buffer.
const SMALL: usize = 256;

/// Sorts `items` by `key` ascending, keeping items with equal keys in their order.
pub(crate) fn sort_by_key<T: Copy>(items: &mut [T], key: impl Fn(&T) -> u64) {
    if items.len() < SMALL {
        items.sort_by_key(|item| key(item));
        return;
    }
    // Every digit's histogram in one pass.
    let mut counts = vec![[0usize; 256]; 8];
    for item in items.iter() {
        let k = key(item);
        for (digit, count) in counts.iter_mut().enumerate() {
            count[((k >> (digit * 8)) & 0xFF) as usize] += 1;
        }
    }
    let len = items.len();
    let mut scratch = items.to_vec();
    // Where the sorted data is: `items` or `scratch`.
    let mut in_scratch = false;
    for (digit, count) in counts.iter().enumerate() {
        if count.contains(&len) {
            continue;
        }
        let mut next = [0usize; 256];
        let mut total = 0;
        for (start, &n) in next.iter_mut().zip(count) {
            *start = total;
            total += n;
        }
        let shift = digit * 8;
        let (from, to): (&[T], &mut [T]) = if in_scratch { (&scratch, items) } else { (items, &mut scratch) };
        for item in from {
            let bucket = ((key(item) >> shift) & 0xFF) as usize;
            to[next[bucket]] = *item;
            next[bucket] += 1;
        }
        in_scratch = !in_scratch;
    }
    if in_scratch {
        items.copy_from_slice(&scratch);
    }
}

/// Sorts doubles in `f64::total_cmp`'s order (the same bits wherever it puts them).
pub(crate) fn sort_floats(values: &mut [f64]) {
    sort_by_key(values, |&v| {
        // Negative numbers' bits count down as the numbers go up: flipped, they count up,
        // and below every positive number, whose sign bit is set.
        let bits = v.to_bits();
        if bits >> 63 == 1 { !bits } else { bits | (1 << 63) }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn sorts_like_a_stable_comparison_sort(
            keys in prop::collection::vec(prop_oneof![any::<u64>(), 0u64..4, (0u64..1000).prop_map(|k| k << 40)], 0..2000),
        ) {
            let items: Vec<(u64, usize)> = keys.iter().copied().zip(0..).collect();
            let mut expected = items.clone();
            expected.sort_by_key(|&(k, _)| k);
            let mut sorted = items;
            sort_by_key(&mut sorted, |&(k, _)| k);
            prop_assert_eq!(sorted, expected);
        }
    }

    proptest! {
        #[test]
        fn sorts_doubles_as_total_cmp_does(
            values in prop::collection::vec(prop_oneof![any::<f64>(), Just(0.0), Just(-0.0), -3.0f64..3.0], 0..1000),
        ) {
            let mut expected = values.clone();
            expected.sort_unstable_by(f64::total_cmp);
            let mut sorted = values;
            sort_floats(&mut sorted);
            prop_assert_eq!(sorted.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                expected.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
        }
    }

    #[test]
    fn sorts_packed_rows_as_the_integers_sort() {
        // Key above, row below: sorting by the key alone, stably, is sorting the integers.
        let mut packed: Vec<u128> = (0..100_000u128)
            .map(|row| (u128::from((row as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) % 977) << 32) | row)
            .collect();
        let mut expected = packed.clone();
        expected.sort_unstable();
        sort_by_key(&mut packed, |p| (p >> 32) as u64);
        assert_eq!(packed, expected);
    }
}

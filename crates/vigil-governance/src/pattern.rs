//! Reasoning about glob patterns (`*` any run, `?` one character; see
//! [`vigil_core::glob`]) rather than matching one name: whether every name one pattern
//! matches the other matches too ([`covers`]), and a name both match ([`common_name`]).
//! The static checks use them to say that a rule can never decide, or that an allow and a
//! deny meet, with a concrete name as the example.
//!
//! `covers` is sound: it never claims a containment that does not hold (a rule it calls
//! unreachable is), though it can miss a contrived one (`*?` covers `?*`, and it does not
//! see it). `common_name` finds a name whenever one exists. Patterns are short (validated to
//! at most [`PATTERN_CHARS_MAX`] characters), and both run in time proportional to the
//! product of the two lengths.

use std::collections::HashMap;

/// Longest pattern a policy may hold, in characters.
pub const PATTERN_CHARS_MAX: usize = 128;

/// Whether every name `inner` matches is also matched by `outer`.
pub fn covers(outer: &str, inner: &str) -> bool {
    let (o, i): (Vec<char>, Vec<char>) = (outer.chars().collect(), inner.chars().collect());
    let mut memo = HashMap::new();
    covers_at(&o, &i, 0, 0, &mut memo)
}

fn covers_at(o: &[char], i: &[char], a: usize, b: usize, memo: &mut HashMap<(usize, usize), bool>) -> bool {
    if let Some(&known) = memo.get(&(a, b)) {
        return known;
    }
    let result = match (o.get(a), i.get(b)) {
        // The inner pattern is done: it matches only the name ending here, which the rest
        // of the outer one must accept empty.
        (_, None) => o[a..].iter().all(|&c| c == '*'),
        (None, Some(_)) => false,
        // An outer star takes nothing, or whatever the inner pattern's next element is.
        (Some('*'), Some(_)) => covers_at(o, i, a + 1, b, memo) || covers_at(o, i, a, b + 1, memo),
        // Only an outer star can take the inner star's arbitrary run.
        (Some(_), Some('*')) => false,
        (Some('?'), Some(_)) => covers_at(o, i, a + 1, b + 1, memo),
        (Some(_), Some('?')) => false,
        (Some(x), Some(y)) => x == y && covers_at(o, i, a + 1, b + 1, memo),
    };
    memo.insert((a, b), result);
    result
}

/// A name both patterns match, if there is one, with `x` standing in where both sides
/// leave a character free.
pub fn common_name(left: &str, right: &str) -> Option<String> {
    let (l, r): (Vec<char>, Vec<char>) = (left.chars().collect(), right.chars().collect());
    let mut memo = HashMap::new();
    common_at(&l, &r, 0, 0, &mut memo)
}

fn common_at(
    l: &[char],
    r: &[char],
    a: usize,
    b: usize,
    memo: &mut HashMap<(usize, usize), Option<String>>,
) -> Option<String> {
    if let Some(known) = memo.get(&(a, b)) {
        return known.clone();
    }
    let prepend = |c: char, rest: Option<String>| rest.map(|rest| format!("{c}{rest}"));
    let result = match (l.get(a), r.get(b)) {
        (None, None) => Some(String::new()),
        (Some('*'), None) => common_at(l, r, a + 1, b, memo),
        (None, Some('*')) => common_at(l, r, a, b + 1, memo),
        (None, Some(_)) | (Some(_), None) => None,
        (Some('*'), Some(&c)) => common_at(l, r, a + 1, b, memo).or_else(|| match c {
            // Both stars: either may end first.
            '*' => common_at(l, r, a, b + 1, memo),
            '?' => prepend('x', common_at(l, r, a, b + 1, memo)),
            c => prepend(c, common_at(l, r, a, b + 1, memo)),
        }),
        (Some(&c), Some('*')) => common_at(l, r, a, b + 1, memo).or_else(|| match c {
            '?' => prepend('x', common_at(l, r, a + 1, b, memo)),
            c => prepend(c, common_at(l, r, a + 1, b, memo)),
        }),
        (Some('?'), Some('?')) => prepend('x', common_at(l, r, a + 1, b + 1, memo)),
        (Some('?'), Some(&c)) | (Some(&c), Some('?')) => prepend(c, common_at(l, r, a + 1, b + 1, memo)),
        (Some(x), Some(y)) if x == y => prepend(*x, common_at(l, r, a + 1, b + 1, memo)),
        (Some(_), Some(_)) => None,
    };
    memo.insert((a, b), result.clone());
    result
}

/// A name `pattern` matches: its stars empty, its `?` an `x`.
pub fn example_name(pattern: &str) -> String {
    pattern.chars().filter(|&c| c != '*').map(|c| if c == '?' { 'x' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use vigil_core::glob::glob_match;

    #[test]
    fn containment_examples() {
        assert!(covers("*", "gpt-4o"));
        assert!(covers("gpt-*", "gpt-4o*"));
        assert!(covers("gpt-*", "gpt-?"));
        assert!(covers("gpt-4o", "gpt-4o"));
        assert!(!covers("gpt-4o*", "gpt-*"));
        assert!(!covers("a?", "a*"), "a? does not match abc");
        assert!(!covers("gpt-4o", "gpt-4o*"));
        assert!(covers("*-mini", "gpt-*-mini"));
        assert!(!covers("*-mini", "gpt-*"));
    }

    #[test]
    fn common_name_examples() {
        assert_eq!(common_name("gpt-4*", "gpt-4o*").as_deref(), Some("gpt-4o"));
        assert_eq!(common_name("a*", "*b").as_deref(), Some("ab"));
        assert_eq!(common_name("*a", "*b"), None);
        assert_eq!(common_name("claude-*", "gpt-*"), None);
        assert_eq!(common_name("o?", "o3").as_deref(), Some("o3"));
        assert_eq!(common_name("*", "*").as_deref(), Some(""));
    }

    fn pattern() -> impl Strategy<Value = String> {
        proptest::string::string_regex("[ab*?]{0,6}").expect("regex")
    }

    fn name() -> impl Strategy<Value = String> {
        proptest::string::string_regex("[abx]{0,7}").expect("regex")
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// `covers` never claims more than holds: a name the inner pattern matches is
        /// matched by the outer one.
        #[test]
        fn covers_is_sound(outer in pattern(), inner in pattern(), name in name()) {
            if covers(&outer, &inner) && glob_match(&inner, &name) {
                prop_assert!(glob_match(&outer, &name), "{outer:?} covers {inner:?} yet misses {name:?}");
            }
        }

        /// A common name is matched by both, and when some name is matched by both one is
        /// found.
        #[test]
        fn common_name_is_right_and_complete(left in pattern(), right in pattern(), name in name()) {
            match common_name(&left, &right) {
                Some(found) => {
                    prop_assert!(glob_match(&left, &found) && glob_match(&right, &found), "{found:?}");
                }
                None => prop_assert!(!(glob_match(&left, &name) && glob_match(&right, &name)),
                    "{left:?} and {right:?} both match {name:?} but no common name was found"),
            }
        }

        #[test]
        fn an_example_name_matches_its_pattern(p in pattern()) {
            prop_assert!(glob_match(&p, &example_name(&p)));
        }
    }
}

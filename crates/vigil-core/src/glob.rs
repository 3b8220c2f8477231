//! Glob patterns over names (model names, for instance): `*` matches any run of
//! characters, `?` any single character; everything else matches itself.

/// Whether `text` matches `pattern`. Linear-time two-pointer match with backtracking to the
/// last `*`, so hostile patterns cannot blow up.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((star_p, star_t)) = star {
            pi = star_p + 1;
            ti = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn examples() {
        assert!(glob_match("gpt-4o*", "gpt-4o-mini"));
        assert!(glob_match("gpt-4o*", "gpt-4o"));
        assert!(!glob_match("gpt-4o*", "gpt-4.1"));
        assert!(glob_match("claude-*-4*", "claude-sonnet-4-5"));
        assert!(glob_match("*", ""));
        assert!(glob_match("o?", "o3"));
        assert!(!glob_match("o?", "o3-mini"));
        assert!(!glob_match("", "x"));
    }

    proptest! {
        #[test]
        fn literal_patterns_match_only_themselves(a in "[a-z0-9.-]{0,12}", b in "[a-z0-9.-]{0,12}") {
            prop_assert_eq!(glob_match(&a, &b), a == b);
        }

        #[test]
        fn star_suffix_is_prefix_test(prefix in "[a-z-]{0,8}", rest in "[a-z-]{0,8}") {
            let pattern = format!("{prefix}*");
            let text = format!("{prefix}{rest}");
            prop_assert!(glob_match(&pattern, &text));
        }
    }
}

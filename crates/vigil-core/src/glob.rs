//! Glob patterns over names (model names, for instance): `*` matches any run of
//! characters, `?` any single character; everything else matches itself.

/// Whether `text` matches `pattern`. A two-pointer match with backtracking to the last `*`,
/// so hostile patterns cannot blow up, over characters decoded in place: it allocates
/// nothing (the gateway matches every call's model against the price table).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    // Positions are byte offsets, always at character boundaries.
    let at = |s: &str, i: usize| s[i..].chars().next();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while let Some(tc) = at(text, ti) {
        match at(pattern, pi) {
            Some(pc) if pc == '?' || pc == tc => {
                pi += pc.len_utf8();
                ti += tc.len_utf8();
                continue;
            }
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
                continue;
            }
            _ => {}
        }
        // Let the last `*` take one more character, and try again after it.
        let Some((star_p, star_t)) = star else { return false };
        pi = star_p + 1;
        ti = star_t + at(text, star_t).map_or(1, char::len_utf8);
        star = Some((star_p, ti));
    }
    pattern[pi..].chars().all(|c| c == '*')
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

    /// The matcher over decoded characters, as first written: the reference for the one
    /// that decodes in place.
    fn reference(pattern: &str, text: &str) -> bool {
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

    #[test]
    fn multibyte_characters_are_one_character_each() {
        assert!(glob_match("mod?l-é*", "modèl-été"));
        assert!(glob_match("*ö", "ääö"));
        assert!(!glob_match("??", "ö"));
        assert!(glob_match("?", "ö"));
        assert!(glob_match("*?*", "日本"));
    }

    proptest! {
        #[test]
        fn matches_as_the_reference_does(pattern in "[ab*?é日]{0,8}", text in "[abé日*?]{0,10}") {
            prop_assert_eq!(glob_match(&pattern, &text), reference(&pattern, &text));
        }

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

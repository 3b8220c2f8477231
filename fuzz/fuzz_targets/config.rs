//! The configuration loader on arbitrary file text and environment: it must return a
//! `Config` or a list of problems, never panic.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use vigil_core::config::{Sources, load};

fuzz_target!(|data: &[u8]| {
    // Input layout: TOML text, a NUL byte, then `NAME=value` lines for the environment.
    let text = String::from_utf8_lossy(data);
    let (file, env_text) = text.split_once('\0').unwrap_or((&text, ""));
    let env: BTreeMap<String, String> = env_text
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let read_file = |path: &str| if path.len() % 2 == 0 { Ok(path.repeat(3)) } else { Err("denied".to_owned()) };
    if let Err(e) = load(&Sources { file: Some(("fuzz.toml", file)), env: &env, read_file: &read_file }) {
        assert!(!e.problems.is_empty(), "an error always names at least one problem");
    }
});

//! Outside text the immune system reads: the injection scan takes any string (a bounded
//! score, matched rules only when it is positive), and a replay file line is a snapshot, a
//! logged input, an input, or an error naming the line, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_immune::engine::EngineConfig;
use vigil_immune::injection::scan;
use vigil_immune::replay::Replayer;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let signal = scan(&text);
    assert!((0.0..=0.99).contains(&signal.score));
    assert_eq!(signal.score == 0.0, signal.matched.is_empty());
    let mut replayer = Replayer::new(EngineConfig::default());
    for line in text.lines().take(64) {
        let _ = replayer.line(line);
    }
});

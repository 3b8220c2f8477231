//! What the gateway reads of a metered call's body before sending it: the input token
//! ceiling never panics and never goes below the framing every request has; an output cap
//! written into a JSON object's own bytes leaves JSON that reads back with it, and bytes
//! that are not an object are left alone.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_gateway::bound::{input_token_ceiling, with_member};

fuzz_target!(|data: &[u8]| {
    let written = with_member(data, "max_completion_tokens", 77);
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    assert!(input_token_ceiling(&value) >= 16);
    if value.is_object() {
        let written = written.expect("an object takes a member");
        let read: serde_json::Value = serde_json::from_slice(&written).expect("still JSON");
        assert_eq!(read["max_completion_tokens"], 77);
    }
});

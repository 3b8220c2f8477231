//! Request body parsing: any bytes give a typed value, a 400 (syntax) or a 422 (shape).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_server::api::parse_json;
use vigil_server::handlers::keys::CreateKey;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = parse_json::<CreateKey>(data) {
        assert!(matches!(e.status.as_u16(), 400 | 422), "{}", e.status);
        assert!(!e.message.is_empty());
    }
    let _ = parse_json::<serde_json::Value>(data);
});

//! OTLP/HTTP trace exports: any bytes, as protobuf or as JSON, decode to an export or an
//! error, and any export maps to vitals without panicking; every vital is well formed and
//! every counted field within its bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_core::time::Timestamp;
use vigil_core::vitals::LATENCY_US_MAX;
use vigil_services::otlp::{Encoding, decode, to_vitals};

fuzz_target!(|data: &[u8]| {
    for encoding in [Encoding::Protobuf, Encoding::Json] {
        if let Ok(request) = decode(data, encoding) {
            let mapped = to_vitals(&request, Timestamp::from_unix_micros(1_700_000_000_000_000));
            for v in &mapped.vitals {
                assert!(!v.agent_id.is_empty() && v.agent_id.chars().count() <= 256);
                assert!(v.injection_score.is_none_or(|s| (0.0..=0.99).contains(&s)));
                if let Some(u) = v.usage {
                    assert!(u.cached_tokens <= u.input_tokens && u.reasoning_tokens <= u.output_tokens);
                    assert!(u.over_bounds().is_none(), "a stored count past its bound: {u:?}");
                }
                assert!(v.latency_us <= LATENCY_US_MAX);
                assert!(v.cost_nanos.is_none_or(|c| (0..=1_000_000_000_000_000).contains(&c)));
            }
            assert!(mapped.reasons.len() <= 5);
        }
    }
});

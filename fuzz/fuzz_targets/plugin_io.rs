//! What plugins hand Vigil: manifests (TOML), responses (JSON) and the first bytes of
//! inputs. No panics; a manifest that validates hashes the same twice; findings that pass
//! the discipline check have what it promises.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_harness::format::detect;
use vigil_harness::manifest::{RawManifest, ValidateContext, validate};
use vigil_harness::protocol::{MeasurementType, Response, check_findings};

fuzz_target!(|data: &[u8]| {
    let _ = detect(data, "input.csv");
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(raw) = toml::from_str::<RawManifest>(text) {
        let cx = || ValidateContext {
            dir: None,
            inline_schemas: Some((serde_json::json!({"type": "object"}), serde_json::json!({"type": "object"}))),
            vigil_version: "0.1.0",
        };
        if let Ok(a) = validate(raw.clone(), &cx()) {
            let b = validate(raw, &cx()).expect("validates twice");
            assert_eq!(a.manifest_hash, b.manifest_hash);
        }
    }
    if let Ok(response) = serde_json::from_str::<Response>(text) {
        if check_findings(&response.findings).is_ok() {
            for f in &response.findings {
                match f.measurement_type {
                    Some(MeasurementType::Measured) => assert!(f.evidence.as_ref().is_some_and(|e| !e.is_empty())),
                    Some(MeasurementType::Modeled) => assert!(!f.assumptions.is_empty()),
                    None => panic!("a finding without a measurement type passed"),
                }
            }
        }
    }
});

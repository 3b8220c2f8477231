//! Policy documents as an API caller sends them: `parse` returns a document or a non-empty
//! list of problems, never panics; the static checks and the decision function never panic
//! on a document it accepted, and every example a check gives decides without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_governance::{Domain, Known, Subject, check, decide, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    match parse(&value) {
        Ok(doc) => {
            let known = Known { models: vec!["gpt-4o".into(), "o3-mini".into()], agents: vec!["bot".into()] };
            for finding in check(&doc, &known) {
                if let Some(example) = &finding.example {
                    let _ = decide(&doc, Domain::ModelCalls, &example.subject());
                }
            }
            let _ = decide(&doc, Domain::ModelCalls, &Subject { model: Some("gpt-4o"), ..Subject::default() });
        }
        Err(problems) => assert!(!problems.is_empty(), "a refusal names at least one problem"),
    }
});

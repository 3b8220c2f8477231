//! What the gateway reads from outside: a provider's SSE byte stream (split at arbitrary
//! points) and a client's chat request. No panics; framing does not depend on how the
//! bytes were split.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_gateway::openai::{Answer, RequestFacts};
use vigil_gateway::sse::Scanner;

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let (whole, pieces) = (data, data.split_at(split));

    let mut one = Scanner::new();
    let mut two = Scanner::new();
    let (Ok(mut a), Ok(mut b)) = (one.push(whole), two.push(pieces.0)) else { return };
    match two.push(pieces.1) {
        Ok(more) => b.extend(more),
        Err(_) => return,
    }
    a.extend(one.finish());
    b.extend(two.finish());
    assert_eq!(a, b, "framing must not depend on chunk boundaries");

    let mut answer = Answer::default();
    for event in &a {
        if let Some(Ok(chunk)) = event.data.as_deref().map(serde_json::from_str::<serde_json::Value>) {
            answer.add_chunk(&chunk);
        }
    }
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = RequestFacts::from_chat_request(&value);
        let _ = Answer::from_completion(&value);
    }
});

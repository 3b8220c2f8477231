//! Everything parsed from headers and query strings: API keys, cursors, request ids,
//! timestamps, digests. No panics, and whatever parses round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_core::digest::Sha256Digest;
use vigil_core::id::{KeyId, PresentedKey, RequestId};
use vigil_core::page::{Cursor, PageRequest};
use vigil_core::time::Timestamp;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Some(key) = PresentedKey::parse(text) {
        assert_eq!(PresentedKey::format(key.id, key.secret), text);
    }
    if let Ok(id) = text.parse::<KeyId>() {
        assert_eq!(id.to_string(), text);
    }
    if let Ok(cursor) = Cursor::decode(text) {
        assert_eq!(Cursor::decode(&cursor.encode()), Ok(cursor));
    }
    if let Some(id) = RequestId::from_client(text) {
        assert_eq!(id.as_str(), text);
    }
    if let Ok(digest) = text.parse::<Sha256Digest>() {
        assert_eq!(digest.to_hex(), text);
    }
    if let Ok(t) = Timestamp::parse_rfc3339(text) {
        assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()), Ok(t));
    }
    let _ = PageRequest::new(Some(text), Some(text.len() as u64));
});

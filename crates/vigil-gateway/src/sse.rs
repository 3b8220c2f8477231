//! Incremental Server-Sent Events framing: bytes in, complete events out, each with its raw
//! bytes (to relay untouched) and its joined `data:` payload (to inspect).

use bytes::{Bytes, BytesMut};

/// Largest event accepted; a stream whose event grows past this is broken or hostile.
pub const SSE_EVENT_BYTES_MAX: usize = 8 * 1024 * 1024;

/// One complete event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The event exactly as received, terminator included.
    pub raw: Bytes,
    /// The `data:` lines joined with `\n`; `None` for events without data (comments).
    pub data: Option<String>,
}

/// Splits a byte stream into events at blank lines (`\n\n` or `\r\n\r\n`).
#[derive(Debug, Default)]
pub struct Scanner {
    buf: BytesMut,
    /// How much of `buf` is known to hold no terminator, so each byte is scanned once even
    /// when a large event arrives in many small chunks.
    scanned: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an SSE event exceeded {SSE_EVENT_BYTES_MAX} bytes")]
pub struct EventTooLarge;

impl Scanner {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes and returns every event they complete.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Event>, EventTooLarge> {
        self.buf.extend_from_slice(chunk);
        let mut events = Vec::new();
        // A terminator may straddle the old end: back up over its first two bytes.
        let mut from = self.scanned.saturating_sub(2);
        while let Some(end) = find_event_end(&self.buf[from..]).map(|e| e + from) {
            let raw = self.buf.split_to(end).freeze();
            events.push(Event { data: data_of(&raw), raw });
            from = 0;
        }
        self.scanned = self.buf.len();
        if self.buf.len() > SSE_EVENT_BYTES_MAX {
            return Err(EventTooLarge);
        }
        Ok(events)
    }

    /// What is left when the stream ends: a final event without its blank line.
    pub fn finish(&mut self) -> Option<Event> {
        if self.buf.iter().all(u8::is_ascii_whitespace) {
            self.buf.clear();
            self.scanned = 0;
            return None;
        }
        let raw = self.buf.split().freeze();
        self.scanned = 0;
        Some(Event { data: data_of(&raw), raw })
    }
}

/// Index just past the first event terminator.
fn find_event_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            // `\n\n` or `\n\r\n`
            if buf.get(i + 1) == Some(&b'\n') {
                return Some(i + 2);
            }
            if buf.get(i + 1) == Some(&b'\r') && buf.get(i + 2) == Some(&b'\n') {
                return Some(i + 3);
            }
        }
        i += 1;
    }
    None
}

fn data_of(raw: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let mut data: Option<String> = None;
    for line in text.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let value = match line.strip_prefix("data:") {
            Some(v) => v.strip_prefix(' ').unwrap_or(v),
            None => continue,
        };
        match &mut data {
            Some(d) => {
                d.push('\n');
                d.push_str(value);
            }
            None => data = Some(value.to_owned()),
        }
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn splits_events_across_chunks() {
        let mut s = Scanner::new();
        assert!(s.push(b"data: {\"a\":").expect("ok").is_empty());
        let events = s.push(b"1}\n\ndata: [DONE]\n\n: comment\n\n").expect("ok");
        let data: Vec<_> = events.iter().map(|e| e.data.clone()).collect();
        assert_eq!(data, [Some("{\"a\":1}".to_owned()), Some("[DONE]".to_owned()), None]);
        assert_eq!(events[0].raw, Bytes::from_static(b"data: {\"a\":1}\n\n"));
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn crlf_and_multiline_data() {
        let mut s = Scanner::new();
        let events = s.push(b"event: x\r\ndata: one\r\ndata: two\r\n\r\n").expect("ok");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data.as_deref(), Some("one\ntwo"));
    }

    #[test]
    fn unterminated_final_event_is_returned_at_finish() {
        let mut s = Scanner::new();
        assert!(s.push(b"data: tail").expect("ok").is_empty());
        assert_eq!(s.finish().and_then(|e| e.data), Some("tail".to_owned()));
    }

    proptest! {
        #[test]
        fn chunking_does_not_change_events(
            payloads in proptest::collection::vec("[a-z0-9{}:\" ]{0,20}", 1..8),
            cuts in proptest::collection::vec(0usize..400, 0..10),
        ) {
            let stream: String = payloads.iter().map(|p| format!("data: {p}\n\n")).collect();
            let bytes = stream.as_bytes();
            let mut whole = Scanner::new();
            let expected = whole.push(bytes).expect("ok");
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.sort_unstable();
            let mut pieces = Scanner::new();
            let mut got = Vec::new();
            let mut last = 0;
            for cut in cuts.into_iter().chain([bytes.len()]) {
                got.extend(pieces.push(&bytes[last..cut]).expect("ok"));
                last = cut;
            }
            prop_assert_eq!(got, expected.clone());
            prop_assert_eq!(expected.len(), payloads.len());
        }
    }
}

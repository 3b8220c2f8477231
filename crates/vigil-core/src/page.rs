//! Cursor pagination. A cursor is opaque to clients; inside it is the position after which
//! the next page starts. Limits are capped so no request can ask for an unbounded page.

use std::fmt;

/// Page size when the client names none.
pub const PAGE_LIMIT_DEFAULT: u32 = 50;
/// Largest page a client may ask for.
pub const PAGE_LIMIT_MAX: u32 = 500;

const CURSOR_PREFIX: &str = "c1.";

/// An opaque position in an ordered listing, encoding the last sequence number served.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Cursor(i64);

impl Cursor {
    pub const fn after(position: i64) -> Self {
        Cursor(position)
    }

    pub const fn position(self) -> i64 {
        self.0
    }

    pub fn encode(self) -> String {
        format!("{CURSOR_PREFIX}{:x}", self.0)
    }

    pub fn decode(text: &str) -> Result<Self, PageError> {
        text.strip_prefix(CURSOR_PREFIX)
            .filter(|hex| !hex.is_empty() && hex.len() <= 16)
            .and_then(|hex| u64::from_str_radix(hex, 16).ok())
            .and_then(|n| i64::try_from(n).ok())
            .map(Cursor)
            .ok_or(PageError::Cursor)
    }
}

impl fmt::Debug for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cursor({})", self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    #[error("cursor is not one this server issued; pass back `next_cursor` unchanged")]
    Cursor,
    #[error("limit must be between 1 and {PAGE_LIMIT_MAX}, got {0}")]
    Limit(u64),
}

/// A validated page request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest {
    pub after: Option<Cursor>,
    pub limit: u32,
}

impl PageRequest {
    /// Rows to fetch for this page: one more than it holds, to learn whether another follows.
    pub fn fetch_limit(self) -> u64 {
        u64::from(self.limit) + 1
    }

    /// Trims rows fetched with [`PageRequest::fetch_limit`] to the page, and returns the
    /// cursor for the next page (after the last row kept) when there is one.
    pub fn finish<T>(self, mut rows: Vec<T>, position: impl Fn(&T) -> i64) -> (Vec<T>, Option<Cursor>) {
        let limit = self.limit as usize;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = if more { rows.last().map(|row| Cursor::after(position(row))) } else { None };
        (rows, next)
    }

    /// The page after `cursor` (an empty one, as a form sends, is no cursor: the first page)
    /// of `limit` items, 1 to 500.
    pub fn new(cursor: Option<&str>, limit: Option<u64>) -> Result<Self, PageError> {
        let after = cursor.filter(|c| !c.is_empty()).map(Cursor::decode).transpose()?;
        let limit = match limit {
            None => PAGE_LIMIT_DEFAULT,
            Some(n @ 1..=500) => n as u32,
            Some(n) => return Err(PageError::Limit(n)),
        };
        Ok(PageRequest { after, limit })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_empty_cursor_is_the_first_page() {
        assert_eq!(PageRequest::new(Some(""), None).map(|p| p.after.is_none()), Ok(true));
        assert!(PageRequest::new(Some("x"), None).is_err());
    }

    #[test]
    fn limit_is_capped() {
        assert_eq!(PageRequest::new(None, None).map(|p| p.limit), Ok(PAGE_LIMIT_DEFAULT));
        assert_eq!(PageRequest::new(None, Some(0)), Err(PageError::Limit(0)));
        assert_eq!(PageRequest::new(None, Some(501)), Err(PageError::Limit(501)));
        assert_eq!(PageRequest::new(None, Some(500)).map(|p| p.limit), Ok(500));
    }

    #[test]
    fn finish_trims_the_extra_row_and_points_past_the_last_kept() {
        let page = PageRequest { after: None, limit: 2 };
        assert_eq!(page.fetch_limit(), 3);
        assert_eq!(page.finish(vec![9, 8, 7], |n| *n), (vec![9, 8], Some(Cursor::after(8))));
        assert_eq!(page.finish(vec![9, 8], |n| *n), (vec![9, 8], None), "no extra row: last page");
        assert_eq!(page.finish(Vec::<i64>::new(), |n| *n), (vec![], None));
    }

    #[test]
    fn foreign_cursors_are_refused() {
        for text in ["", "c1.", "12", "c1.zz", "c1.ffffffffffffffff", "c1.00000000000000001"] {
            assert_eq!(Cursor::decode(text), Err(PageError::Cursor), "{text:?}");
        }
    }

    proptest! {
        #[test]
        fn cursor_round_trips(n in 0i64..=i64::MAX) {
            prop_assert_eq!(Cursor::decode(&Cursor::after(n).encode()), Ok(Cursor::after(n)));
        }

        #[test]
        fn cursor_decode_never_panics(text in ".{0,40}") {
            let _ = Cursor::decode(&text);
        }
    }
}

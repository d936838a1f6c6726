//! Cursor pagination, the same for every list: `limit` (1 to 200, default 50) and an
//! opaque `cursor` that encodes the last id of the previous page. Ids are time-ordered, so
//! paging by id is stable under inserts.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::error::ApiError;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;
/// Longer than any cursor this API hands out (the base64 of an id).
pub const MAX_CURSOR_CHARS: usize = 200;

/// A validated page request.
#[derive(Clone, Debug)]
pub struct PageRequest {
    pub limit: i64,
    /// Rows come after this id in the list's order (below it, in a newest-first list).
    pub after: Option<String>,
}

impl PageRequest {
    /// Checks `limit` and decodes `cursor`; `is_id` says whether the decoded text is an id of
    /// the listed kind, so a cursor from another list is refused.
    pub fn parse(limit: Option<i64>, cursor: Option<&str>, is_id: impl Fn(&str) -> bool) -> Result<Self, ApiError> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::field(
                "limit",
                "range",
                format!("must be from 1 to {MAX_LIMIT}"),
            ));
        }
        let after = match cursor {
            None => None,
            Some(raw) if raw.len() > MAX_CURSOR_CHARS => {
                return Err(ApiError::field("cursor", "cursor", "is not a cursor this API returned"));
            }
            Some(raw) => {
                let text = URL_SAFE_NO_PAD.decode(raw).ok().and_then(|b| String::from_utf8(b).ok());
                match text {
                    Some(id) if is_id(&id) => Some(id),
                    _ => return Err(ApiError::field("cursor", "cursor", "is not a cursor this API returned")),
                }
            }
        };
        Ok(Self { limit, after })
    }

    /// How many rows to fetch: one more than the page, to learn whether another follows.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }

    /// Cuts the fetched rows to the page and returns the cursor of the next page, if any.
    pub fn finish<T>(&self, rows: &mut Vec<T>, id_of: impl Fn(&T) -> &str) -> Option<String> {
        if rows.len() as i64 <= self.limit {
            return None;
        }
        rows.truncate(self.limit as usize);
        rows.last().map(|row| URL_SAFE_NO_PAD.encode(id_of(row)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_request_round_trips_its_cursor() {
        let first = PageRequest::parse(Some(2), None, |_| true).unwrap();
        let mut rows = vec!["usr_a", "usr_b", "usr_c"];
        let cursor = first.finish(&mut rows, |r| r).unwrap();
        assert_eq!(rows, vec!["usr_a", "usr_b"]);
        let next = PageRequest::parse(Some(2), Some(&cursor), |id| id.starts_with("usr_")).unwrap();
        assert_eq!(next.after.as_deref(), Some("usr_b"));
    }

    #[test]
    fn bad_limits_and_foreign_cursors_are_refused() {
        assert!(PageRequest::parse(Some(0), None, |_| true).is_err());
        assert!(PageRequest::parse(Some(201), None, |_| true).is_err());
        assert!(PageRequest::parse(None, Some("!!"), |_| true).is_err());
        assert!(PageRequest::parse(None, Some(&"A".repeat(201)), |_| true).is_err());
        let foreign = URL_SAFE_NO_PAD.encode("inv_x");
        assert!(PageRequest::parse(None, Some(&foreign), |id| id.starts_with("usr_")).is_err());
    }
}

//! Abuse throttling kept in the database, so that every instance serving one database shares
//! the same counts (no Redis). A limit allows `max` events per fixed window per subject: the
//! window starts at the subject's first counted event and lasts `window`; when it has ended,
//! the next event starts a new one. Subjects (login identifiers, addresses, emails,
//! organizations) are stored only as SHA-256 digests.
//!
//! [`take`] checks and counts in one atomic step, so a concurrent burst can never get more
//! than `max` events through; [`check`] and [`count`] split the two for limits that count
//! only failures (a login from an address). Whether a refusal becomes a 429 is
//! `auth::policy::within_limit`.

use chrono::NaiveDateTime;
use diesel::Connection;
use sha2::{Digest, Sha256};
use std::time::Duration;

use crate::db::models::RateLimitRow;
use crate::db::repo::rate_limits;
use crate::db::{is_unique_violation, DbConnection, DbError};

/// What is counted. The name is stored; keep it stable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bucket {
    /// Failed logins naming one identifier (normalized email or username).
    LoginAccount,
    /// Failed logins from one client address.
    LoginAddress,
    /// Password reset requests for one email address.
    ResetEmail,
    /// Password reset requests from one client address.
    ResetAddress,
    /// Sign-ups from one client address.
    SignupAddress,
    /// Invitation emails sent by one organization.
    InviteOrganization,
}

impl Bucket {
    pub const ALL: [Self; 6] = [
        Self::LoginAccount,
        Self::LoginAddress,
        Self::ResetEmail,
        Self::ResetAddress,
        Self::SignupAddress,
        Self::InviteOrganization,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoginAccount => "login.account",
            Self::LoginAddress => "login.address",
            Self::ResetEmail => "password_reset.email",
            Self::ResetAddress => "password_reset.address",
            Self::SignupAddress => "signup.address",
            Self::InviteOrganization => "invite.organization",
        }
    }
}

/// At most `max` events per `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    pub max: u32,
    pub window: Duration,
}

impl Limit {
    /// `N/DURATION` (e.g. `10/15m`), or `off` for no limit.
    pub fn parse(raw: &str) -> Result<Option<Self>, String> {
        let raw = raw.trim();
        if raw.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let expected = || "expected N/DURATION (e.g. 10/15m) or off".to_string();
        let (max, window) = raw.split_once('/').ok_or_else(expected)?;
        let max: u32 = max.trim().parse().map_err(|_| expected())?;
        let window = humantime::parse_duration(window.trim()).map_err(|_| expected())?;
        if max == 0 || max > i32::MAX as u32 || window < Duration::from_secs(1) {
            return Err("the count must be at least 1 and the window at least 1s".into());
        }
        Ok(Some(Self { max, window }))
    }

    fn ends(self, now: NaiveDateTime) -> NaiveDateTime {
        let window = chrono::Duration::from_std(self.window).unwrap_or(chrono::Duration::days(3650));
        now.checked_add_signed(window).unwrap_or(NaiveDateTime::MAX)
    }
}

/// An event refused: the window is full until `retry_after_secs` from now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Throttled {
    pub bucket: Bucket,
    pub retry_after_secs: u64,
}

/// Allowed, or refused until the window ends.
pub type Verdict = Result<(), Throttled>;

/// The stored form of a subject: a digest, so no identifier or address is kept in clear.
fn subject_key(subject: &str) -> String {
    let digest = Sha256::digest(subject.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn throttled(bucket: Bucket, row: &RateLimitRow, now: NaiveDateTime) -> Throttled {
    let left = (row.window_end - now).num_milliseconds().max(0) as u64;
    Throttled {
        bucket,
        retry_after_secs: left.div_ceil(1000).max(1),
    }
}

/// Counts one event when the subject's window has room for it; refuses it (counting
/// nothing) when it is full. One short sequence inside the caller's transaction: an atomic
/// UPDATE, and only when there is no window yet, an INSERT in a savepoint that a concurrent
/// first event may beat (a unique violation), after which the UPDATE is tried once more.
pub fn take(
    conn: &mut DbConnection,
    bucket: Bucket,
    limit: Option<Limit>,
    subject: &str,
    now: NaiveDateTime,
) -> Result<Verdict, DbError> {
    let Some(limit) = limit else { return Ok(Ok(())) };
    counted(conn, bucket, limit, limit.max as i32, subject, now)
}

/// Counts one event whatever the window holds (a failure, after the fact).
pub fn count(
    conn: &mut DbConnection,
    bucket: Bucket,
    limit: Option<Limit>,
    subject: &str,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    let Some(limit) = limit else { return Ok(()) };
    counted(conn, bucket, limit, i32::MAX, subject, now).map(|_| ())
}

/// Whether the subject's window is full, without counting anything.
pub fn check(
    conn: &mut DbConnection,
    bucket: Bucket,
    limit: Option<Limit>,
    subject: &str,
    now: NaiveDateTime,
) -> Result<Verdict, DbError> {
    let Some(limit) = limit else { return Ok(Ok(())) };
    Ok(match rate_limits::find(conn, bucket.as_str(), &subject_key(subject))? {
        Some(row) if row.window_end > now && row.hits >= limit.max as i32 => Err(throttled(bucket, &row, now)),
        _ => Ok(()),
    })
}

/// How many events the subject's live window holds (0 when it has none).
pub fn hits(conn: &mut DbConnection, bucket: Bucket, subject: &str, now: NaiveDateTime) -> Result<u32, DbError> {
    Ok(match rate_limits::find(conn, bucket.as_str(), &subject_key(subject))? {
        Some(row) if row.window_end > now => row.hits.max(0) as u32,
        _ => 0,
    })
}

/// Forgets the subject's window.
pub fn clear(conn: &mut DbConnection, bucket: Bucket, subject: &str) -> Result<(), DbError> {
    Ok(rate_limits::clear(conn, bucket.as_str(), &subject_key(subject))?)
}

fn counted(
    conn: &mut DbConnection,
    bucket: Bucket,
    limit: Limit,
    max: i32,
    subject: &str,
    now: NaiveDateTime,
) -> Result<Verdict, DbError> {
    let key = subject_key(subject);
    let name = bucket.as_str();
    let end = limit.ends(now);
    // Each round either decides or lost a race to a concurrent writer of the same window;
    // three lost rounds in a row do not happen in practice, and fail loudly if they do.
    for _ in 0..3 {
        if rate_limits::count_one(conn, name, &key, max, now, end)? {
            return Ok(Ok(()));
        }
        if let Some(row) = rate_limits::find(conn, name, &key)? {
            if row.window_end > now && row.hits >= max {
                return Ok(Err(throttled(bucket, &row, now)));
            }
            // The window changed between the two statements; count again.
            continue;
        }
        let first = RateLimitRow {
            bucket: name.to_string(),
            subject: key.clone(),
            hits: 1,
            window_start: now,
            window_end: end,
        };
        // A savepoint, so that losing the race leaves the caller's transaction usable.
        match conn.transaction(|c| rate_limits::open(c, first)) {
            Ok(()) => return Ok(Ok(())),
            Err(e) if is_unique_violation(&e) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(DbError::Query(diesel::result::Error::RollbackTransaction))
}

/// Deletes the windows that have ended (housekeeping).
pub fn purge(conn: &mut DbConnection, now: NaiveDateTime) -> Result<usize, DbError> {
    Ok(rate_limits::purge_ended(conn, now)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_count_and_window() {
        assert_eq!(
            Limit::parse("10/15m"),
            Ok(Some(Limit {
                max: 10,
                window: Duration::from_secs(900)
            }))
        );
        assert_eq!(Limit::parse(" off "), Ok(None));
        for bad in ["10", "0/1m", "x/1m", "10/soon", "10/0s", ""] {
            assert!(Limit::parse(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn subjects_are_stored_as_digests() {
        let key = subject_key("ada@example.com");
        assert_eq!(key.len(), 64);
        assert!(!key.contains("ada"));
        assert_ne!(key, subject_key("bob@example.com"));
    }
}

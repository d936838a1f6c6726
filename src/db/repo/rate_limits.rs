//! Rate-limit windows shared by every instance on the database (`rate_limits`). Each
//! function is one statement; [`crate::rate_limit`] composes them into a check.

use chrono::NaiveDateTime;
use diesel::dsl::case_when;
use diesel::prelude::*;
use diesel::sql_types::{Integer, Timestamp};

use super::RepoResult;
use crate::db::models::RateLimitRow;
use crate::db::schema::rate_limits;
use crate::db::DbConnection;

/// Counts one event in an existing window, in one statement: a window that has ended starts
/// again at `now` (until `new_end`) with this event, a live one counts it only while it holds
/// fewer than `max`. False when no row was changed: there is no window yet, or it is full.
///
/// On PostgreSQL the UPDATE waits for a concurrent one on the same row and re-checks its
/// condition on the row as that one left it, so concurrent events are never lost and never
/// push a window past `max`; on SQLite writers are serialized anyway.
pub fn count_one(
    conn: &mut DbConnection,
    bucket: &str,
    subject: &str,
    max: i32,
    now: NaiveDateTime,
    new_end: NaiveDateTime,
) -> RepoResult<bool> {
    use rate_limits::{hits, window_end, window_start};
    let ended = || window_end.le(now);
    let changed = diesel::update(
        rate_limits::table
            .find((bucket, subject))
            .filter(ended().or(hits.lt(max))),
    )
    .set((
        hits.eq(case_when(ended(), 1.into_sql::<Integer>()).otherwise(hits + 1)),
        window_start.eq(case_when(ended(), now.into_sql::<Timestamp>()).otherwise(window_start)),
        window_end.eq(case_when(ended(), new_end.into_sql::<Timestamp>()).otherwise(window_end)),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}

/// Opens a window holding its first event. A unique violation means a concurrent request
/// opened it first.
pub fn open(conn: &mut DbConnection, row: RateLimitRow) -> RepoResult<()> {
    diesel::insert_into(rate_limits::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn find(conn: &mut DbConnection, bucket: &str, subject: &str) -> RepoResult<Option<RateLimitRow>> {
    rate_limits::table
        .find((bucket, subject))
        .select(RateLimitRow::as_select())
        .get_result(conn)
        .optional()
}

/// Forgets a window (a successful login clears its account's failures).
pub fn clear(conn: &mut DbConnection, bucket: &str, subject: &str) -> RepoResult<()> {
    diesel::delete(rate_limits::table.find((bucket, subject)))
        .execute(conn)
        .map(|_| ())
}

/// Deletes the windows that have ended.
pub fn purge_ended(conn: &mut DbConnection, now: NaiveDateTime) -> RepoResult<usize> {
    diesel::delete(rate_limits::table.filter(rate_limits::window_end.le(now))).execute(conn)
}

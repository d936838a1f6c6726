//! Kept responses of idempotent POSTs (`Idempotency-Key`). The primary key (caller, key)
//! lets exactly one of several concurrent first requests claim a key.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::RepoResult;
use crate::db::models::IdempotencyRow;
use crate::db::schema::idempotency_keys;
use crate::db::DbConnection;

pub fn find(conn: &mut DbConnection, scope: &str, key: &str) -> RepoResult<Option<IdempotencyRow>> {
    idempotency_keys::table
        .find((scope, key))
        .select(IdempotencyRow::as_select())
        .get_result(conn)
        .optional()
}

/// Claims a key for a request now being served; a unique violation means someone has it.
pub fn claim(conn: &mut DbConnection, row: IdempotencyRow) -> RepoResult<()> {
    diesel::insert_into(idempotency_keys::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// Frees a key: its first request failed on the server's side, so a retry may run again;
/// or its record expired.
pub fn release(conn: &mut DbConnection, scope: &str, key: &str) -> RepoResult<()> {
    diesel::delete(idempotency_keys::table.find((scope, key)))
        .execute(conn)
        .map(|_| ())
}

/// What the first request answered.
pub struct Kept<'a> {
    pub status: i32,
    pub content_type: Option<&'a str>,
    pub location: Option<&'a str>,
    pub body: &'a str,
}

pub fn keep(conn: &mut DbConnection, scope: &str, key: &str, kept: Kept<'_>) -> RepoResult<()> {
    diesel::update(idempotency_keys::table.find((scope, key)))
        .set((
            idempotency_keys::status.eq(Some(kept.status)),
            idempotency_keys::content_type.eq(kept.content_type),
            idempotency_keys::location.eq(kept.location),
            idempotency_keys::body.eq(Some(kept.body)),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Forgets records past their expiry.
pub fn purge_expired(conn: &mut DbConnection, now: NaiveDateTime) -> RepoResult<usize> {
    diesel::delete(idempotency_keys::table.filter(idempotency_keys::expires_at.le(now))).execute(conn)
}

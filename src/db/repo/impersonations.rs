//! Impersonation sessions (R9): one row per "log in as", kept as history after it ends.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::RepoResult;
use crate::db::models::{ImpersonationRow, NewImpersonation, UserRow};
use crate::db::schema::{impersonations, sessions, users};
use crate::db::DbConnection;
use crate::ids::{AccountId, ImpersonationId, SessionId, UserId};

pub fn insert(conn: &mut DbConnection, row: NewImpersonation) -> RepoResult<()> {
    diesel::insert_into(impersonations::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn find(conn: &mut DbConnection, id: &ImpersonationId) -> RepoResult<Option<ImpersonationRow>> {
    impersonations::table
        .find(id.as_str())
        .select(ImpersonationRow::as_select())
        .get_result(conn)
        .optional()
}

/// The impersonation a session belongs to, if it is one.
pub fn for_session(conn: &mut DbConnection, session: &SessionId) -> RepoResult<Option<ImpersonationRow>> {
    impersonations::table
        .filter(impersonations::session_id.eq(session.as_str()))
        .select(ImpersonationRow::as_select())
        .get_result(conn)
        .optional()
}

/// Marks a running impersonation ended; `false` when it had ended already.
pub fn end(conn: &mut DbConnection, id: &ImpersonationId, by: &UserId, now: NaiveDateTime) -> RepoResult<bool> {
    let n = diesel::update(
        impersonations::table
            .find(id.as_str())
            .filter(impersonations::ended_at.is_null()),
    )
    .set((
        impersonations::ended_at.eq(Some(now)),
        impersonations::ended_by.eq(Some(by.as_str())),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Which impersonations a list shows: those of one organization, or those of one target
/// anywhere; optionally narrowed to one actor, one target, running or not.
#[derive(Debug, Default)]
pub struct ListFilter {
    pub root: Option<AccountId>,
    pub actor: Option<UserId>,
    pub target: Option<UserId>,
    /// `Some(true)`: running only; `Some(false)`: ended or expired only.
    pub active: Option<bool>,
    pub now: Option<NaiveDateTime>,
    /// Keyset: only rows with an id before this one (newest first).
    pub before: Option<String>,
    pub limit: i64,
}

/// One page, newest first.
pub fn list(conn: &mut DbConnection, filter: &ListFilter) -> RepoResult<Vec<ImpersonationRow>> {
    let mut query = impersonations::table
        .select(ImpersonationRow::as_select())
        .into_boxed::<crate::db::MultiBackend>();
    if let Some(root) = &filter.root {
        query = query.filter(impersonations::root_account_id.eq(root.to_string()));
    }
    if let Some(actor) = &filter.actor {
        query = query.filter(impersonations::actor_user_id.eq(actor.to_string()));
    }
    if let Some(target) = &filter.target {
        query = query.filter(impersonations::target_user_id.eq(target.to_string()));
    }
    if let (Some(active), Some(now)) = (filter.active, filter.now) {
        // A session revoked by other means (a password change, an archive) ends it too.
        let revoked = sessions::table
            .filter(sessions::revoked_at.is_not_null())
            .select(sessions::id);
        query = if active {
            query
                .filter(impersonations::ended_at.is_null())
                .filter(impersonations::expires_at.gt(now))
                .filter(impersonations::session_id.ne_all(revoked))
        } else {
            query.filter(
                impersonations::ended_at
                    .is_not_null()
                    .or(impersonations::expires_at.le(now))
                    .or(impersonations::session_id.eq_any(revoked)),
            )
        };
    }
    if let Some(before) = &filter.before {
        query = query.filter(impersonations::id.lt(before.clone()));
    }
    query.order(impersonations::id.desc()).limit(filter.limit).load(conn)
}

/// The users named by a page of impersonations (actors and targets), for the views.
pub fn people(conn: &mut DbConnection, rows: &[ImpersonationRow]) -> RepoResult<Vec<UserRow>> {
    let mut ids: Vec<&str> = rows
        .iter()
        .flat_map(|r| [r.actor_user_id.as_str(), r.target_user_id.as_str()])
        .collect();
    ids.sort_unstable();
    ids.dedup();
    users::table
        .filter(users::id.eq_any(ids))
        .select(UserRow::as_select())
        .load(conn)
}

/// Marks ended every running impersonation the user takes part in (as actor or target) in
/// an organization; their sessions are revoked by the caller.
pub fn end_involving(
    conn: &mut DbConnection,
    user: &UserId,
    root: &AccountId,
    by: &UserId,
    now: NaiveDateTime,
) -> RepoResult<usize> {
    diesel::update(
        impersonations::table
            .filter(impersonations::root_account_id.eq(root.as_str()))
            .filter(
                impersonations::actor_user_id
                    .eq(user.as_str())
                    .or(impersonations::target_user_id.eq(user.as_str())),
            )
            .filter(impersonations::ended_at.is_null()),
    )
    .set((
        impersonations::ended_at.eq(Some(now)),
        impersonations::ended_by.eq(Some(by.as_str())),
    ))
    .execute(conn)
}

/// When the sessions of these impersonations were revoked, for those that were.
pub fn revoked_sessions(
    conn: &mut DbConnection,
    rows: &[ImpersonationRow],
) -> RepoResult<Vec<(String, NaiveDateTime)>> {
    let ids: Vec<&str> = rows.iter().map(|r| r.session_id.as_str()).collect();
    let found: Vec<(String, Option<NaiveDateTime>)> = sessions::table
        .filter(sessions::id.eq_any(ids))
        .filter(sessions::revoked_at.is_not_null())
        .select((sessions::id, sessions::revoked_at))
        .load(conn)?;
    Ok(found.into_iter().filter_map(|(id, at)| at.map(|at| (id, at))).collect())
}

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::RepoResult;
use crate::db::models::{NewRefreshToken, NewSession, RefreshTokenRow, SessionRow, UserRow};
use crate::db::schema::{refresh_tokens, sessions, users};
use crate::db::DbConnection;
use crate::domain::{Delegation, RevokeReason};
use crate::ids::{SessionId, UserId};

pub fn insert(conn: &mut DbConnection, session: NewSession) -> RepoResult<()> {
    diesel::insert_into(sessions::table)
        .values(session)
        .execute(conn)
        .map(|_| ())
}

pub fn find(conn: &mut DbConnection, id: &SessionId) -> RepoResult<Option<SessionRow>> {
    sessions::table
        .find(id.as_str())
        .select(SessionRow::as_select())
        .get_result(conn)
        .optional()
}

/// Ends one session (and with it every refresh token of its family).
pub fn revoke(conn: &mut DbConnection, id: &SessionId, reason: RevokeReason, now: NaiveDateTime) -> RepoResult<bool> {
    let n = diesel::update(sessions::table.find(id.as_str()).filter(sessions::revoked_at.is_null()))
        .set((
            sessions::revoked_at.eq(Some(now)),
            sessions::revoked_reason.eq(Some(reason.as_str())),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

/// Ends every live session in which the user is the effective user, except `keep`.
pub fn revoke_all_for_user(
    conn: &mut DbConnection,
    user: &UserId,
    keep: Option<&SessionId>,
    reason: RevokeReason,
    now: NaiveDateTime,
) -> RepoResult<usize> {
    let keep = keep.map(|s| s.as_str().to_string()).unwrap_or_default();
    diesel::update(
        sessions::table
            .filter(sessions::user_id.eq(user.as_str()))
            .filter(sessions::revoked_at.is_null())
            .filter(sessions::id.ne(keep)),
    )
    .set((
        sessions::revoked_at.eq(Some(now)),
        sessions::revoked_reason.eq(Some(reason.as_str())),
    ))
    .execute(conn)
}

/// Ends every live session in which `actor` acts as `user` in the given way (removing a
/// caretaker ends all of theirs at once).
pub fn revoke_delegated(
    conn: &mut DbConnection,
    user: &UserId,
    actor: &UserId,
    delegation: Delegation,
    reason: RevokeReason,
    now: NaiveDateTime,
) -> RepoResult<usize> {
    diesel::update(
        sessions::table
            .filter(sessions::user_id.eq(user.as_str()))
            .filter(sessions::actor_user_id.eq(actor.as_str()))
            .filter(sessions::delegation.eq(delegation.as_str()))
            .filter(sessions::revoked_at.is_null()),
    )
    .set((
        sessions::revoked_at.eq(Some(now)),
        sessions::revoked_reason.eq(Some(reason.as_str())),
    ))
    .execute(conn)
}

pub fn insert_refresh_token(conn: &mut DbConnection, token: NewRefreshToken) -> RepoResult<()> {
    diesel::insert_into(refresh_tokens::table)
        .values(token)
        .execute(conn)
        .map(|_| ())
}

/// A refresh token by the digest of its secret, with its session and the session's user, in
/// one query (a rotation runs on every refresh, so its round trips count).
pub fn find_refresh_token(
    conn: &mut DbConnection,
    token_hash: &str,
) -> RepoResult<Option<(RefreshTokenRow, SessionRow, UserRow)>> {
    refresh_tokens::table
        .inner_join(sessions::table.on(sessions::id.eq(refresh_tokens::session_id)))
        .inner_join(users::table.on(users::id.eq(sessions::user_id)))
        .filter(refresh_tokens::token_hash.eq(token_hash))
        .select((
            RefreshTokenRow::as_select(),
            SessionRow::as_select(),
            UserRow::as_select(),
        ))
        .get_result(conn)
        .optional()
}

/// Spends a refresh token. Exactly one caller can spend it: `false` means it was already
/// spent (a reuse, or a lost race with a concurrent refresh).
pub fn spend_refresh_token(conn: &mut DbConnection, token: &RefreshTokenRow, now: NaiveDateTime) -> RepoResult<bool> {
    let n = diesel::update(
        refresh_tokens::table
            .find(token.id.as_str())
            .filter(refresh_tokens::used_at.is_null()),
    )
    .set(refresh_tokens::used_at.eq(Some(now)))
    .execute(conn)?;
    Ok(n == 1)
}

/// Slides a session's end forward (on refresh).
pub fn extend(conn: &mut DbConnection, id: &SessionId, expires_at: NaiveDateTime) -> RepoResult<()> {
    diesel::update(sessions::table.find(id.as_str()))
        .set(sessions::expires_at.eq(expires_at))
        .execute(conn)
        .map(|_| ())
}

/// Points a session at another root account (R5: switching needs no new password).
pub fn rescope(conn: &mut DbConnection, id: &SessionId, account: &crate::ids::AccountId) -> RepoResult<()> {
    diesel::update(sessions::table.find(id.as_str()))
        .set(sessions::account_id.eq(Some(account.as_str())))
        .execute(conn)
        .map(|_| ())
}

/// Ends every live session the user takes part in, as its user or as its real actor; with
/// `root`, only the sessions scoped to that organization.
pub fn revoke_involving(
    conn: &mut DbConnection,
    user: &UserId,
    root: Option<&crate::ids::AccountId>,
    reason: RevokeReason,
    now: NaiveDateTime,
) -> RepoResult<usize> {
    let mut query = diesel::update(sessions::table)
        .filter(
            sessions::user_id
                .eq(user.as_str())
                .or(sessions::actor_user_id.eq(user.as_str())),
        )
        .filter(sessions::revoked_at.is_null())
        .into_boxed();
    if let Some(root) = root {
        query = query.filter(sessions::account_id.eq(root.as_str()));
    }
    query
        .set((
            sessions::revoked_at.eq(Some(now)),
            sessions::revoked_reason.eq(Some(reason.as_str())),
        ))
        .execute(conn)
}

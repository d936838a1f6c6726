use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::RepoResult;
use crate::db::models::{InviteRow, NewInvite, RoleRow};
use crate::db::schema::{accounts, invite_roles, invites, roles};
use crate::db::DbConnection;
use crate::domain::InviteStatus;
use crate::ids::{AccountId, InviteId, RoleId, UserId};

pub fn insert(conn: &mut DbConnection, invite: NewInvite, role_ids: &[RoleId]) -> RepoResult<InviteId> {
    let id = invite.id.clone();
    diesel::insert_into(invites::table).values(invite).execute(conn)?;
    for role in role_ids {
        diesel::insert_into(invite_roles::table)
            .values((
                invite_roles::invite_id.eq(id.as_str()),
                invite_roles::role_id.eq(role.as_str()),
            ))
            .execute(conn)?;
    }
    Ok(id)
}

/// An invite of this root account; another tenant's invite is `None`, like a missing one.
pub fn find_in(conn: &mut DbConnection, root: &AccountId, id: &InviteId) -> RepoResult<Option<InviteRow>> {
    invites::table
        .find(id.as_str())
        .filter(invites::root_account_id.eq(root.as_str()))
        .select(InviteRow::as_select())
        .get_result(conn)
        .optional()
}

pub fn find_by_token_hash(conn: &mut DbConnection, token_hash: &str) -> RepoResult<Option<InviteRow>> {
    invites::table
        .filter(invites::token_hash.eq(token_hash))
        .select(InviteRow::as_select())
        .get_result(conn)
        .optional()
}

pub fn roles_of(conn: &mut DbConnection, invite: &InviteId) -> RepoResult<Vec<RoleRow>> {
    invite_roles::table
        .inner_join(roles::table)
        .filter(invite_roles::invite_id.eq(invite.as_str()))
        .order(roles::name.asc())
        .select(RoleRow::as_select())
        .load(conn)
}

pub fn roles_of_many(conn: &mut DbConnection, ids: &[String]) -> RepoResult<Vec<(String, RoleRow)>> {
    invite_roles::table
        .inner_join(roles::table)
        .filter(invite_roles::invite_id.eq_any(ids))
        .order(roles::name.asc())
        .select((invite_roles::invite_id, RoleRow::as_select()))
        .load(conn)
}

/// The pending, unexpired invite for an email in this root account, if any.
pub fn live_for_email(
    conn: &mut DbConnection,
    root: &AccountId,
    email_normalized: &str,
    now: NaiveDateTime,
) -> RepoResult<Option<InviteRow>> {
    invites::table
        .filter(invites::root_account_id.eq(root.as_str()))
        .filter(invites::email_normalized.eq(email_normalized))
        .filter(invites::status.eq(InviteStatus::Pending.as_str()))
        .filter(invites::expires_at.gt(now))
        .select(InviteRow::as_select())
        .get_result(conn)
        .optional()
}

/// Gives the invite a new token and a new expiry; the old link stops working. Only a
/// pending (possibly expired) invite rotates; `false` otherwise.
pub fn rotate(
    conn: &mut DbConnection,
    id: &InviteId,
    token_hash: &str,
    expires_at: NaiveDateTime,
    now: NaiveDateTime,
) -> RepoResult<bool> {
    let n = diesel::update(
        invites::table
            .find(id.as_str())
            .filter(invites::status.eq(InviteStatus::Pending.as_str())),
    )
    .set((
        invites::token_hash.eq(token_hash),
        invites::expires_at.eq(expires_at),
        invites::updated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Revokes a pending invite; `false` when it was no longer pending.
pub fn revoke(conn: &mut DbConnection, id: &InviteId, by: &UserId, now: NaiveDateTime) -> RepoResult<bool> {
    let n = diesel::update(
        invites::table
            .find(id.as_str())
            .filter(invites::status.eq(InviteStatus::Pending.as_str())),
    )
    .set((
        invites::status.eq(InviteStatus::Revoked.as_str()),
        invites::revoked_at.eq(Some(now)),
        invites::revoked_by.eq(Some(by.as_str())),
        invites::updated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Marks the invite accepted, if and only if it is still pending, unexpired and carries
/// this token. Exactly one of any number of concurrent accepts gets `true`.
pub fn accept(
    conn: &mut DbConnection,
    invite: &InviteRow,
    token_hash: &str,
    user: &UserId,
    now: NaiveDateTime,
) -> RepoResult<bool> {
    let n = diesel::update(
        invites::table
            .find(invite.id.as_str())
            .filter(invites::status.eq(InviteStatus::Pending.as_str()))
            .filter(invites::token_hash.eq(token_hash))
            .filter(invites::expires_at.gt(now)),
    )
    .set((
        invites::status.eq(InviteStatus::Accepted.as_str()),
        invites::accepted_at.eq(Some(now)),
        invites::accepted_user_id.eq(Some(user.as_str())),
        invites::updated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// What an invite list is narrowed to.
pub struct InviteFilter {
    /// Only invites to nodes at or below this path (the caller's reach).
    pub within_path: String,
    pub state: Option<InviteStatus>,
    pub after: Option<String>,
    pub limit: i64,
}

/// One page of the root account's invites, oldest first.
pub fn page(
    conn: &mut DbConnection,
    root: &AccountId,
    filter: &InviteFilter,
    now: NaiveDateTime,
) -> RepoResult<Vec<InviteRow>> {
    let mut query = invites::table
        .inner_join(accounts::table.on(accounts::id.eq(invites::account_id)))
        .filter(invites::root_account_id.eq(root.as_str()))
        .filter(super::accounts::at_or_below(&filter.within_path))
        .select(InviteRow::as_select())
        .into_boxed::<crate::db::MultiBackend>();
    query = match filter.state {
        None => query,
        Some(InviteStatus::Pending) => query
            .filter(invites::status.eq(InviteStatus::Pending.as_str()))
            .filter(invites::expires_at.gt(now)),
        Some(InviteStatus::Expired) => query
            .filter(invites::status.eq(InviteStatus::Pending.as_str()))
            .filter(invites::expires_at.le(now)),
        Some(other) => query.filter(invites::status.eq(other.as_str())),
    };
    if let Some(after) = &filter.after {
        query = query.filter(invites::id.gt(after.clone()));
    }
    query.order(invites::id.asc()).limit(filter.limit).load(conn)
}

/// Pending invitations that have expired and whose expiry was not announced yet (or was
/// announced for an earlier expiry, before a resend), oldest expiry first.
pub fn due_for_expiry_notice(conn: &mut DbConnection, now: NaiveDateTime, limit: i64) -> RepoResult<Vec<InviteRow>> {
    invites::table
        .filter(invites::status.eq(InviteStatus::Pending.as_str()))
        .filter(invites::expires_at.le(now))
        .filter(
            invites::expiry_announced_at
                .is_null()
                .or(invites::expiry_announced_at.lt(invites::expires_at.nullable())),
        )
        .order((invites::expires_at.asc(), invites::id.asc()))
        .limit(limit)
        .select(InviteRow::as_select())
        .load(conn)
}

/// Marks an invitation's expiry as announced; `false` when another instance already did.
pub fn mark_expiry_announced(conn: &mut DbConnection, invite: &InviteRow, now: NaiveDateTime) -> RepoResult<bool> {
    let changed = diesel::update(
        invites::table
            .find(invite.id.as_str())
            .filter(invites::status.eq(InviteStatus::Pending.as_str()))
            .filter(invites::expires_at.eq(invite.expires_at))
            .filter(
                invites::expiry_announced_at
                    .is_null()
                    .or(invites::expiry_announced_at.lt(invites::expires_at.nullable())),
            ),
    )
    .set(invites::expiry_announced_at.eq(now))
    .execute(conn)?;
    Ok(changed == 1)
}

//! API keys and the roles they hold.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::RepoResult;
use crate::db::models::{ApiKeyRow, RoleRow};
use crate::db::schema::{api_key_roles, api_keys, roles};
use crate::db::DbConnection;
use crate::ids::{AccountId, ApiKeyId, RoleId, UserId};

/// Stores a new key with its roles.
pub fn insert(conn: &mut DbConnection, row: &ApiKeyRow, role_ids: &[RoleId]) -> RepoResult<()> {
    diesel::insert_into(api_keys::table).values(row.clone()).execute(conn)?;
    // One row at a time: a multi-row insert is not available through the multi-backend
    // connection.
    for role in role_ids {
        diesel::insert_into(api_key_roles::table)
            .values((
                api_key_roles::api_key_id.eq(row.id.as_str()),
                api_key_roles::role_id.eq(role.as_str()),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// A key of an organization.
pub fn find(conn: &mut DbConnection, root: &AccountId, id: &ApiKeyId) -> RepoResult<Option<ApiKeyRow>> {
    api_keys::table
        .filter(api_keys::root_account_id.eq(root.as_str()))
        .filter(api_keys::id.eq(id.as_str()))
        .select(ApiKeyRow::as_select())
        .get_result(conn)
        .optional()
}

/// A key by id, whatever its organization (an exchanged access token names its key).
pub fn by_id(conn: &mut DbConnection, id: &str) -> RepoResult<Option<ApiKeyRow>> {
    api_keys::table
        .filter(api_keys::id.eq(id))
        .select(ApiKeyRow::as_select())
        .get_result(conn)
        .optional()
}

/// The key whose current secret, or previous secret still in its grace period, has this
/// digest.
pub fn by_secret_hash(conn: &mut DbConnection, hash: &str, now: NaiveDateTime) -> RepoResult<Option<ApiKeyRow>> {
    let current = api_keys::table
        .filter(api_keys::secret_hash.eq(hash))
        .select(ApiKeyRow::as_select())
        .get_result(conn)
        .optional()?;
    if current.is_some() {
        return Ok(current);
    }
    api_keys::table
        .filter(api_keys::previous_secret_hash.eq(hash))
        .filter(api_keys::previous_valid_until.gt(now))
        .select(ApiKeyRow::as_select())
        .get_result(conn)
        .optional()
}

/// The key a person created with this Idempotency-Key, if any.
pub fn by_idempotency_key(
    conn: &mut DbConnection,
    root: &AccountId,
    creator: &UserId,
    key: &str,
) -> RepoResult<Option<ApiKeyRow>> {
    api_keys::table
        .filter(api_keys::root_account_id.eq(root.as_str()))
        .filter(api_keys::created_by.eq(creator.as_str()))
        .filter(api_keys::idempotency_key.eq(key))
        .select(ApiKeyRow::as_select())
        .get_result(conn)
        .optional()
}

/// Lets an Idempotency-Key older than its 24 hours be used again.
pub fn forget_idempotency_key(conn: &mut DbConnection, key: &ApiKeyId) -> RepoResult<()> {
    diesel::update(api_keys::table.find(key.as_str()))
        .set((
            api_keys::idempotency_key.eq(None::<String>),
            api_keys::request_fingerprint.eq(None::<String>),
        ))
        .execute(conn)
        .map(|_| ())
}

/// An organization's keys, oldest first, revoked ones included.
pub fn list(conn: &mut DbConnection, root: &AccountId) -> RepoResult<Vec<ApiKeyRow>> {
    api_keys::table
        .filter(api_keys::root_account_id.eq(root.as_str()))
        .order(api_keys::id.asc())
        .select(ApiKeyRow::as_select())
        .load(conn)
}

/// The roles a key holds, by name.
pub fn roles_of(conn: &mut DbConnection, key: &ApiKeyId) -> RepoResult<Vec<RoleRow>> {
    api_key_roles::table
        .inner_join(roles::table)
        .filter(api_key_roles::api_key_id.eq(key.as_str()))
        .order(roles::name.asc())
        .select(RoleRow::as_select())
        .load(conn)
}

/// The roles of several keys, as (key id, role) pairs.
pub fn roles_of_many(conn: &mut DbConnection, keys: &[String]) -> RepoResult<Vec<(String, RoleRow)>> {
    api_key_roles::table
        .inner_join(roles::table)
        .filter(api_key_roles::api_key_id.eq_any(keys))
        .order(roles::name.asc())
        .select((api_key_roles::api_key_id, RoleRow::as_select()))
        .load(conn)
}

/// Replaces a key's secret; the previous one keeps working until `previous_valid_until`
/// (or stops at once when that is `None`).
pub fn replace_secret(
    conn: &mut DbConnection,
    key: &ApiKeyRow,
    prefix: &str,
    hash: &str,
    previous_valid_until: Option<NaiveDateTime>,
    now: NaiveDateTime,
) -> RepoResult<()> {
    let previous = previous_valid_until.map(|_| key.secret_hash.clone());
    diesel::update(api_keys::table.find(key.id.as_str()))
        .set((
            api_keys::secret_prefix.eq(prefix),
            api_keys::secret_hash.eq(hash),
            api_keys::secret_issued_at.eq(now),
            api_keys::previous_secret_hash.eq(previous),
            api_keys::previous_valid_until.eq(previous_valid_until),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Revokes a key at once; `false` when it was already revoked.
pub fn revoke(conn: &mut DbConnection, key: &ApiKeyId, by: Option<&UserId>, now: NaiveDateTime) -> RepoResult<bool> {
    let changed = diesel::update(
        api_keys::table
            .filter(api_keys::id.eq(key.as_str()))
            .filter(api_keys::revoked_at.is_null()),
    )
    .set((
        api_keys::revoked_at.eq(now),
        api_keys::revoked_by.eq(by.map(|u| u.as_str())),
        api_keys::previous_secret_hash.eq(None::<String>),
        api_keys::previous_valid_until.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}

/// Notes that a key was used, at most once a minute per key, so that a busy integration
/// does not write on every request.
pub fn touch(conn: &mut DbConnection, key: &ApiKeyId, now: NaiveDateTime) -> RepoResult<()> {
    let stale = now - chrono::Duration::seconds(60);
    diesel::update(
        api_keys::table
            .filter(api_keys::id.eq(key.as_str()))
            .filter(api_keys::last_used_at.is_null().or(api_keys::last_used_at.lt(stale))),
    )
    .set(api_keys::last_used_at.eq(now))
    .execute(conn)
    .map(|_| ())
}

/// How many usable keys (neither revoked nor expired) hold a role.
pub fn count_live_holding(conn: &mut DbConnection, role: &RoleId, now: NaiveDateTime) -> RepoResult<i64> {
    api_key_roles::table
        .inner_join(api_keys::table)
        .filter(api_key_roles::role_id.eq(role.as_str()))
        .filter(api_keys::revoked_at.is_null())
        .filter(api_keys::expires_at.is_null().or(api_keys::expires_at.gt(now)))
        .count()
        .get_result(conn)
}

/// Lets go of a role held only by dead keys, before the role is deleted.
pub fn forget_role(conn: &mut DbConnection, role: &RoleId) -> RepoResult<()> {
    diesel::delete(api_key_roles::table.filter(api_key_roles::role_id.eq(role.as_str())))
        .execute(conn)
        .map(|_| ())
}

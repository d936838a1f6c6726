use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::RepoResult;
use crate::db::models::{AccountRow, NewAccount};
use crate::db::schema::accounts;
use crate::db::DbConnection;
use crate::domain::{AccountKind, AccountStatus};
use crate::ids::AccountId;

/// Creates a root account (an organization).
pub fn insert_root(conn: &mut DbConnection, name: &str, now: NaiveDateTime) -> RepoResult<AccountRow> {
    let id = AccountId::generate();
    diesel::insert_into(accounts::table)
        .values(NewAccount {
            root_id: id.clone(),
            parent_id: None,
            path: format!("/{id}/"),
            depth: 0,
            kind: AccountKind::Organization,
            name,
            address: None,
            phone: None,
            status: AccountStatus::Active,
            lock_version: 0,
            created_at: now,
            updated_at: now,
            id: id.clone(),
        })
        .execute(conn)?;
    find(conn, &id)?.ok_or(diesel::result::Error::NotFound)
}

pub fn find(conn: &mut DbConnection, id: &AccountId) -> RepoResult<Option<AccountRow>> {
    accounts::table
        .find(id.as_str())
        .select(AccountRow::as_select())
        .first(conn)
        .optional()
}

pub fn find_many(conn: &mut DbConnection, ids: &[String]) -> RepoResult<Vec<AccountRow>> {
    accounts::table
        .filter(accounts::id.eq_any(ids))
        .select(AccountRow::as_select())
        .load(conn)
}

/// Takes the tenant's write lock for the rest of the transaction: on PostgreSQL a row lock
/// on the root account, on SQLite the database write lock (already held by `BEGIN
/// IMMEDIATE`). Writers that check an invariant of the whole tenant (the last owner, one
/// pending invite per email) call this first, so that two of them cannot both pass the
/// check and then both write.
pub fn lock_tenant(conn: &mut DbConnection, root: &AccountId) -> RepoResult<bool> {
    let updated = diesel::update(accounts::table.find(root.as_str()))
        .set(accounts::lock_version.eq(accounts::lock_version + 1))
        .execute(conn)?;
    Ok(updated == 1)
}

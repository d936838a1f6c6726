use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::RepoResult;
use crate::db::models::{AccountRow, BillingProfileRow, NewAccount};
use crate::db::schema::{accounts, billing_profiles};
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

/// Creates a sub-account under `parent`.
pub fn insert_child(
    conn: &mut DbConnection,
    parent: &AccountRow,
    kind: AccountKind,
    name: &str,
    address: Option<&str>,
    phone: Option<&str>,
    now: NaiveDateTime,
) -> RepoResult<AccountRow> {
    let id = AccountId::generate();
    diesel::insert_into(accounts::table)
        .values(NewAccount {
            root_id: parent.root_id.clone(),
            parent_id: Some(parent.id.as_str()),
            path: format!("{}{id}/", parent.path),
            depth: parent.depth + 1,
            kind,
            name,
            address,
            phone,
            status: AccountStatus::Active,
            lock_version: 0,
            created_at: now,
            updated_at: now,
            id: id.clone(),
        })
        .execute(conn)?;
    find(conn, &id)?.ok_or(diesel::result::Error::NotFound)
}

/// Nodes at or below the node whose materialized path is `path` (R2: a node's path is a
/// prefix of every path in its subtree). The one place that spells this condition.
pub fn at_or_below(path: &str) -> diesel::dsl::Escape<diesel::dsl::Like<accounts::path, String>> {
    accounts::path
        .like(format!("{}%", super::escape_like(path)))
        .escape('\\')
}

/// The node and every node below it, shallowest first.
pub fn subtree(conn: &mut DbConnection, node: &AccountRow) -> RepoResult<Vec<AccountRow>> {
    accounts::table
        .filter(accounts::root_id.eq(node.root_id.as_str()))
        .filter(at_or_below(&node.path))
        .order((accounts::depth.asc(), accounts::name.asc(), accounts::id.asc()))
        .select(AccountRow::as_select())
        .load(conn)
}

/// Changes of a node's profile; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = accounts)]
pub struct AccountChanges {
    pub name: Option<String>,
    pub address: Option<Option<String>>,
    pub phone: Option<Option<String>>,
    pub updated_at: Option<NaiveDateTime>,
}

pub fn update_profile(conn: &mut DbConnection, id: &AccountId, changes: AccountChanges) -> RepoResult<()> {
    diesel::update(accounts::table.find(id.as_str()))
        .set(changes)
        .execute(conn)
        .map(|_| ())
}

/// Closes a node and its whole subtree: they stop granting access; their data stays.
pub fn close_subtree(conn: &mut DbConnection, node: &AccountRow, now: NaiveDateTime) -> RepoResult<usize> {
    diesel::update(
        accounts::table
            .filter(accounts::root_id.eq(node.root_id.as_str()))
            .filter(at_or_below(&node.path))
            .filter(accounts::status.eq(AccountStatus::Active.as_str())),
    )
    .set((
        accounts::status.eq(AccountStatus::Closed.as_str()),
        accounts::closed_at.eq(Some(now)),
        accounts::updated_at.eq(now),
    ))
    .execute(conn)
}

pub fn insert_billing_profile(conn: &mut DbConnection, profile: BillingProfileRow) -> RepoResult<()> {
    diesel::insert_into(billing_profiles::table)
        .values(profile)
        .execute(conn)
        .map(|_| ())
}

pub fn billing_profile(conn: &mut DbConnection, root: &AccountId) -> RepoResult<Option<BillingProfileRow>> {
    billing_profiles::table
        .find(root.as_str())
        .select(BillingProfileRow::as_select())
        .get_result(conn)
        .optional()
}

pub fn save_billing_profile(conn: &mut DbConnection, profile: &BillingProfileRow) -> RepoResult<()> {
    diesel::update(billing_profiles::table.find(&profile.account_id))
        .set((
            billing_profiles::billing_email.eq(&profile.billing_email),
            billing_profiles::plan.eq(&profile.plan),
            billing_profiles::seat_price_cents.eq(profile.seat_price_cents),
            billing_profiles::currency.eq(&profile.currency),
            billing_profiles::cycle_start.eq(&profile.cycle_start),
            billing_profiles::updated_at.eq(profile.updated_at),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn find(conn: &mut DbConnection, id: &AccountId) -> RepoResult<Option<AccountRow>> {
    accounts::table
        .find(id.as_str())
        .select(AccountRow::as_select())
        .get_result(conn)
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

/// Re-parents `node` (and so its whole subtree) under `new_parent`: rewrites the path and
/// depth of every node of the subtree. The caller has checked that `new_parent` is not in
/// the subtree.
pub fn move_subtree(
    conn: &mut DbConnection,
    node: &AccountRow,
    new_parent: &AccountRow,
    now: NaiveDateTime,
) -> RepoResult<()> {
    let old_prefix = node.path.clone();
    let new_prefix = format!("{}{}/", new_parent.path, node.id);
    let depth_shift = new_parent.depth + 1 - node.depth;
    for row in subtree(conn, node)? {
        let suffix = row.path.strip_prefix(&old_prefix).unwrap_or_default();
        diesel::update(accounts::table.find(row.id.as_str()))
            .set((
                accounts::path.eq(format!("{new_prefix}{suffix}")),
                accounts::depth.eq(row.depth + depth_shift),
                accounts::updated_at.eq(now),
            ))
            .execute(conn)?;
    }
    diesel::update(accounts::table.find(node.id.as_str()))
        .set(accounts::parent_id.eq(Some(new_parent.id.as_str())))
        .execute(conn)
        .map(|_| ())
}

/// Every node of an organization, the root included, shallowest first: the tree as stored,
/// whatever the nodes' paths say.
pub fn of_organization(conn: &mut DbConnection, root: &AccountId) -> RepoResult<Vec<AccountRow>> {
    accounts::table
        .filter(accounts::root_id.eq(root.as_str()))
        .order((accounts::depth.asc(), accounts::id.asc()))
        .select(AccountRow::as_select())
        .load(conn)
}

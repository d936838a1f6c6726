use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::RepoResult;
use crate::db::models::{AccountRow, MembershipRow, NewMembership, RoleRow};
use crate::db::schema::{accounts, membership_roles, memberships, roles};
use crate::db::DbConnection;
use crate::domain::{AccountStatus, MembershipStatus};
use crate::ids::{AccountId, MembershipId, RoleId, UserId};

pub fn insert(conn: &mut DbConnection, membership: NewMembership, role_ids: &[RoleId]) -> RepoResult<MembershipId> {
    let id = membership.id.clone();
    diesel::insert_into(memberships::table)
        .values(membership)
        .execute(conn)?;
    // One statement per row: batch inserts are not available through MultiConnection.
    for role in role_ids {
        diesel::insert_into(membership_roles::table)
            .values((
                membership_roles::membership_id.eq(id.as_str()),
                membership_roles::role_id.eq(role.as_str()),
            ))
            .execute(conn)?;
    }
    Ok(id)
}

/// New membership row with fresh id and timestamps.
pub fn new_active(user: &UserId, node: &AccountRow, now: NaiveDateTime) -> NewMembership {
    NewMembership {
        id: MembershipId::generate(),
        user_id: user.clone(),
        root_account_id: node.root_id.clone(),
        account_id: node.id.clone(),
        status: MembershipStatus::Active,
        created_at: now,
        updated_at: now,
    }
}

/// The user's memberships that allow logging in: active, in an active root account.
pub fn usable_for_user(conn: &mut DbConnection, user: &UserId) -> RepoResult<Vec<(MembershipRow, AccountRow)>> {
    memberships::table
        .inner_join(accounts::table.on(accounts::id.eq(memberships::root_account_id)))
        .filter(memberships::user_id.eq(user.as_str()))
        .filter(memberships::status.eq(MembershipStatus::Active.as_str()))
        .filter(accounts::status.eq(AccountStatus::Active.as_str()))
        .order(accounts::name.asc())
        .select((MembershipRow::as_select(), AccountRow::as_select()))
        .load(conn)
}

pub fn find_for_user_in(conn: &mut DbConnection, user: &UserId, root: &AccountId) -> RepoResult<Option<MembershipRow>> {
    memberships::table
        .filter(memberships::user_id.eq(user.as_str()))
        .filter(memberships::root_account_id.eq(root.as_str()))
        .select(MembershipRow::as_select())
        .first(conn)
        .optional()
}

pub fn roles_of(conn: &mut DbConnection, membership: &MembershipId) -> RepoResult<Vec<RoleRow>> {
    membership_roles::table
        .inner_join(roles::table)
        .filter(membership_roles::membership_id.eq(membership.as_str()))
        .order(roles::name.asc())
        .select(RoleRow::as_select())
        .load(conn)
}

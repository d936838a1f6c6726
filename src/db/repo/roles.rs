use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::RepoResult;
use crate::db::models::{NewRole, RoleRow};
use crate::db::schema::{membership_roles, role_permissions, roles};
use crate::db::DbConnection;
use crate::domain::permissions::{BuiltinRole, PermissionSet};
use crate::ids::{AccountId, RoleId};

/// Creates the built-in roles of a new root account.
pub fn insert_builtins(conn: &mut DbConnection, root: &AccountId, now: NaiveDateTime) -> RepoResult<Vec<RoleRow>> {
    for role in BuiltinRole::ALL {
        diesel::insert_into(roles::table)
            .values(NewRole {
                id: RoleId::generate(),
                root_account_id: root.clone(),
                builtin_key: Some(role.key()),
                name: role.display_name(),
                description: role.description(),
                created_at: now,
                updated_at: now,
            })
            .execute(conn)?;
    }
    roles::table
        .filter(roles::root_account_id.eq(root.as_str()))
        .select(RoleRow::as_select())
        .load(conn)
}

pub fn find_builtin(conn: &mut DbConnection, root: &AccountId, role: BuiltinRole) -> RepoResult<Option<RoleRow>> {
    roles::table
        .filter(roles::root_account_id.eq(root.as_str()))
        .filter(roles::builtin_key.eq(role.key()))
        .select(RoleRow::as_select())
        .get_result(conn)
        .optional()
}

/// The permission names stored for custom roles, as `(role id, permission)` pairs, in one
/// query however many roles are named. Built-in roles store none: the catalog defines them.
pub fn permission_names(conn: &mut DbConnection, roles: &[RoleId]) -> RepoResult<Vec<(String, String)>> {
    let ids: Vec<&str> = roles.iter().map(RoleId::as_str).collect();
    role_permissions::table
        .filter(role_permissions::role_id.eq_any(ids))
        .select((role_permissions::role_id, role_permissions::permission))
        .load(conn)
}

/// How many memberships hold each of `roles`, as `(role id, count)` pairs, in one query; a
/// role no membership holds has no pair.
pub fn member_counts(conn: &mut DbConnection, roles: &[RoleId]) -> RepoResult<Vec<(String, i64)>> {
    let ids: Vec<&str> = roles.iter().map(RoleId::as_str).collect();
    membership_roles::table
        .filter(membership_roles::role_id.eq_any(ids))
        .group_by(membership_roles::role_id)
        .select((membership_roles::role_id, diesel::dsl::count_star()))
        .load(conn)
}

pub fn list_for_root(conn: &mut DbConnection, root: &AccountId) -> RepoResult<Vec<RoleRow>> {
    roles::table
        .filter(roles::root_account_id.eq(root.as_str()))
        .order((roles::builtin_key.is_null().asc(), roles::name.asc()))
        .select(RoleRow::as_select())
        .load(conn)
}

/// A role of this root account; a role of another one is `None`, as if it did not exist.
pub fn find_in(conn: &mut DbConnection, root: &AccountId, id: &RoleId) -> RepoResult<Option<RoleRow>> {
    roles::table
        .find(id.as_str())
        .filter(roles::root_account_id.eq(root.as_str()))
        .select(RoleRow::as_select())
        .get_result(conn)
        .optional()
}

/// The roles of this root account among `ids`, in one query; ids of other root accounts
/// are left out, as if they did not exist.
pub fn find_many_in(conn: &mut DbConnection, root: &AccountId, ids: &[RoleId]) -> RepoResult<Vec<RoleRow>> {
    let ids: Vec<&str> = ids.iter().map(RoleId::as_str).collect();
    roles::table
        .filter(roles::id.eq_any(ids))
        .filter(roles::root_account_id.eq(root.as_str()))
        .select(RoleRow::as_select())
        .load(conn)
}

pub fn name_taken(conn: &mut DbConnection, root: &AccountId, name: &str, except: Option<&RoleId>) -> RepoResult<bool> {
    let except = except.map(|r| r.as_str().to_string()).unwrap_or_default();
    diesel::select(diesel::dsl::exists(
        roles::table
            .filter(roles::root_account_id.eq(root.as_str()))
            .filter(roles::name.eq(name))
            .filter(roles::id.ne(except)),
    ))
    .get_result(conn)
}

pub fn insert_custom(
    conn: &mut DbConnection,
    root: &AccountId,
    name: &str,
    description: &str,
    permissions: &PermissionSet,
    now: NaiveDateTime,
) -> RepoResult<RoleId> {
    let id = RoleId::generate();
    diesel::insert_into(roles::table)
        .values(NewRole {
            id: id.clone(),
            root_account_id: root.clone(),
            builtin_key: None,
            name,
            description,
            created_at: now,
            updated_at: now,
        })
        .execute(conn)?;
    set_permissions(conn, &id, permissions)?;
    Ok(id)
}

pub fn set_permissions(conn: &mut DbConnection, role: &RoleId, permissions: &PermissionSet) -> RepoResult<()> {
    diesel::delete(role_permissions::table.filter(role_permissions::role_id.eq(role.as_str()))).execute(conn)?;
    for p in permissions {
        diesel::insert_into(role_permissions::table)
            .values((
                role_permissions::role_id.eq(role.as_str()),
                role_permissions::permission.eq(p.as_str()),
            ))
            .execute(conn)?;
    }
    Ok(())
}

pub fn rename(
    conn: &mut DbConnection,
    role: &RoleId,
    name: &str,
    description: &str,
    now: NaiveDateTime,
) -> RepoResult<()> {
    diesel::update(roles::table.find(role.as_str()))
        .set((
            roles::name.eq(name),
            roles::description.eq(description),
            roles::updated_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Sets (or clears) the identity provider's id for a role.
pub fn set_external_id(
    conn: &mut DbConnection,
    role: &RoleId,
    external_id: Option<&str>,
    now: NaiveDateTime,
) -> RepoResult<()> {
    diesel::update(roles::table.find(role.as_str()))
        .set((roles::external_id.eq(external_id), roles::updated_at.eq(now)))
        .execute(conn)
        .map(|_| ())
}

pub fn delete(conn: &mut DbConnection, role: &RoleId) -> RepoResult<()> {
    diesel::delete(role_permissions::table.filter(role_permissions::role_id.eq(role.as_str()))).execute(conn)?;
    diesel::delete(roles::table.find(role.as_str()))
        .execute(conn)
        .map(|_| ())
}

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::RepoResult;
use crate::auth::permissions::{BuiltinRole, Permission, PermissionSet};
use crate::db::models::{NewRole, RoleRow};
use crate::db::schema::{role_permissions, roles};
use crate::db::DbConnection;
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
        .first(conn)
        .optional()
}

/// The permissions a set of roles grants together: built-in roles from the catalog,
/// custom roles from their rows.
pub fn permissions_of(conn: &mut DbConnection, roles: &[RoleRow]) -> RepoResult<PermissionSet> {
    let mut set = PermissionSet::new();
    let mut custom = Vec::new();
    for role in roles {
        match role.builtin_key.as_deref().and_then(BuiltinRole::parse) {
            Some(builtin) => set.extend(builtin.permissions()),
            None => custom.push(role.id.as_str().to_string()),
        }
    }
    if !custom.is_empty() {
        let names: Vec<String> = role_permissions::table
            .filter(role_permissions::role_id.eq_any(&custom))
            .select(role_permissions::permission)
            .load(conn)?;
        set.extend(names.iter().filter_map(|n| Permission::parse(n)));
    }
    Ok(set)
}

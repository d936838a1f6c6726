//! Roles: the built-in ones and the custom ones an organization defines, and what a set of
//! roles permits.

use std::collections::HashMap;

use serde_json::json;

use crate::auth::extract::Principal;
use crate::auth::policy;
use crate::db::models::RoleRow;
use crate::db::repo::audit::{self, AuditEntry};
use crate::db::repo::roles;
use crate::db::DbConnection;
use crate::domain::permissions::{Permission, PermissionSet};
use crate::domain::AuditAction;
use crate::error::{ApiError, ProblemKind};
use crate::ids::{AccountId, RoleId};
use crate::service::Tx;

/// A role as the API shows it: the row, what it permits, and how many memberships hold it.
pub struct RoleDetails {
    pub role: RoleRow,
    pub permissions: PermissionSet,
    pub member_count: i64,
}

/// A custom role to create; parsed, so every field is valid.
pub struct NewRole {
    pub name: String,
    /// Already trimmed; empty when none was given.
    pub description: String,
    pub permissions: PermissionSet,
    /// The identity provider's id for the role (SCIM's group `externalId`).
    pub external_id: Option<String>,
}

/// Changes to a custom role; `None` leaves a field as it is.
pub struct RoleChanges {
    pub name: Option<String>,
    /// Already trimmed.
    pub description: Option<String>,
    /// The complete new set, replacing the old one.
    pub permissions: Option<PermissionSet>,
    /// `Some(None)` clears it.
    pub external_id: Option<Option<String>>,
}

/// The permission catalog: every permission a role can hold.
pub fn catalog() -> &'static [Permission] {
    Permission::ALL
}

/// The permissions a set of roles grants together (their union): built-in roles from the
/// catalog, custom roles from what is stored for them, read in at most one query.
pub fn permissions_of(conn: &mut DbConnection, roles: &[RoleRow]) -> Result<PermissionSet, ApiError> {
    let custom: Vec<RoleId> = roles
        .iter()
        .filter(|r| r.builtin.is_none())
        .map(|r| r.id.clone())
        .collect();
    let stored = if custom.is_empty() {
        Vec::new()
    } else {
        roles::permission_names(conn, &custom)?
    };
    Ok(permissions_from(roles, &stored))
}

/// The union of `roles`' permissions, given the custom roles' stored `(role id, name)`
/// pairs (already read, e.g. in the principal's one query). A stored name this version does
/// not know grants nothing.
pub fn permissions_from(roles: &[RoleRow], stored: &[(String, String)]) -> PermissionSet {
    let mut set = PermissionSet::new();
    for role in roles {
        match role.builtin {
            Some(builtin) => set.extend(builtin.permissions()),
            None => set.extend(
                stored
                    .iter()
                    .filter(|(id, _)| id == role.id.as_str())
                    .filter_map(|(_, name)| Permission::parse(name)),
            ),
        }
    }
    set
}

/// Each role's own permissions, in the order of `roles`, with the custom ones read in at
/// most one query. A stored name this version does not know grants nothing.
fn permissions_each(conn: &mut DbConnection, roles: &[RoleRow]) -> Result<Vec<PermissionSet>, ApiError> {
    let custom: Vec<RoleId> = roles
        .iter()
        .filter(|r| r.builtin.is_none())
        .map(|r| r.id.clone())
        .collect();
    let mut stored: HashMap<String, PermissionSet> = HashMap::new();
    if !custom.is_empty() {
        for (role_id, name) in roles::permission_names(conn, &custom)? {
            if let Some(permission) = Permission::parse(&name) {
                stored.entry(role_id).or_default().insert(permission);
            }
        }
    }
    Ok(roles
        .iter()
        .map(|role| match role.builtin {
            Some(builtin) => builtin.permissions(),
            None => stored.get(role.id.as_str()).cloned().unwrap_or_default(),
        })
        .collect())
}

/// The details of many roles in a constant number of queries (their permissions, then how
/// many memberships hold each), in the order given.
fn details(conn: &mut DbConnection, rows: Vec<RoleRow>) -> Result<Vec<RoleDetails>, ApiError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let permissions = permissions_each(conn, &rows)?;
    let ids: Vec<RoleId> = rows.iter().map(|r| r.id.clone()).collect();
    let counts: HashMap<String, i64> = roles::member_counts(conn, &ids)?.into_iter().collect();
    // Three queries in all for any number of roles: the rows (the caller's), the custom
    // ones' permissions, the counts.
    Ok(rows
        .into_iter()
        .zip(permissions)
        .map(|(role, permissions)| RoleDetails {
            member_count: counts.get(role.id.as_str()).copied().unwrap_or(0),
            role,
            permissions,
        })
        .collect())
}

fn details_of(conn: &mut DbConnection, role: RoleRow) -> Result<RoleDetails, ApiError> {
    details(conn, vec![role])?
        .pop()
        .ok_or_else(|| ApiError::internal("a role's details went missing"))
}

/// How many memberships hold a role.
fn holders(conn: &mut DbConnection, role: &RoleId) -> Result<i64, ApiError> {
    let counts = roles::member_counts(conn, std::slice::from_ref(role))?;
    Ok(counts.first().map_or(0, |(_, n)| *n))
}

/// A role of the organization `root`; one of another organization answers 404 (R1).
fn find(conn: &mut DbConnection, root: &AccountId, id: &RoleId) -> Result<RoleRow, ApiError> {
    roles::find_in(conn, root, id)?.ok_or_else(|| ApiError::not_found("role"))
}

/// Resolves role ids of the caller's organization with their permissions; any id that is
/// not one of its roles is a field error, never a hint about other tenants. The same role
/// named twice counts once.
/// The roles one owner (a membership, an invitation, an API key) holds, out of the
/// (owner id, role) pairs a `roles_of_many` query read for a page of owners.
pub fn held_by(held: &[(String, RoleRow)], owner: &str) -> Vec<RoleRow> {
    held.iter()
        .filter(|(id, _)| id == owner)
        .map(|(_, role)| role.clone())
        .collect()
}

pub fn resolve(
    conn: &mut DbConnection,
    root: &AccountId,
    raw: &[String],
) -> Result<Vec<(RoleRow, PermissionSet)>, ApiError> {
    if raw.is_empty() {
        return Err(ApiError::field("role_ids", "required", "must name at least one role"));
    }
    let parsed: Vec<Option<RoleId>> = raw.iter().map(|value| RoleId::parse(value)).collect();
    let wanted: Vec<RoleId> = parsed.iter().flatten().cloned().collect();
    let mut found: HashMap<String, RoleRow> = roles::find_many_in(conn, root, &wanted)?
        .into_iter()
        .map(|role| (role.id.to_string(), role))
        .collect();
    let mut chosen: Vec<RoleRow> = Vec::new();
    for (index, (value, id)) in raw.iter().zip(&parsed).enumerate() {
        let known = id.as_ref().is_some_and(|id| found.contains_key(id.as_str()));
        let repeated = id.as_ref().is_some_and(|id| chosen.iter().any(|r| &r.id == id));
        if !known && !repeated {
            return Err(ApiError::field(
                &format!("role_ids[{index}]"),
                "unknown",
                format!("{value} is not a role of this account"),
            ));
        }
        if let Some(role) = id.as_ref().and_then(|id| found.remove(id.as_str())) {
            chosen.push(role);
        }
    }
    let permissions = permissions_each(conn, &chosen)?;
    Ok(chosen.into_iter().zip(permissions).collect())
}

/// The organization's roles, built-in first, then by name.
pub fn list(tx: &mut Tx<'_>, caller: &Principal) -> Result<Vec<RoleDetails>, ApiError> {
    let root = &policy::tenant(caller)?.root;
    let rows = roles::list_for_root(tx.conn, root)?;
    details(tx.conn, rows)
}

/// One role of the caller's organization; any member may read it.
pub fn get(tx: &mut Tx<'_>, caller: &Principal, id: &RoleId) -> Result<RoleDetails, ApiError> {
    let root = &policy::tenant(caller)?.root;
    let role = find(tx.conn, root, id)?;
    details_of(tx.conn, role)
}

fn name_taken(name: &str) -> ApiError {
    ApiError::new(
        ProblemKind::RoleNameTaken,
        format!("A role named {name} already exists."),
    )
}

/// Creates a custom role. Needs `roles.manage` over the organization and every permission
/// the role grants (R4); its name must be free.
pub fn create(tx: &mut Tx<'_>, caller: &Principal, cmd: NewRole) -> Result<RoleDetails, ApiError> {
    let caller = tx.lock_tenant(caller)?;
    let tenant = policy::require_role_management(&caller)?;
    policy::require_permissions_held(tenant, &cmd.permissions)?;
    if roles::name_taken(tx.conn, &tenant.root, &cmd.name, None)? {
        return Err(name_taken(&cmd.name));
    }
    let id = roles::insert_custom(
        tx.conn,
        &tenant.root,
        &cmd.name,
        &cmd.description,
        &cmd.permissions,
        tx.now,
    )?;
    if let Some(external_id) = &cmd.external_id {
        roles::set_external_id(tx.conn, &id, Some(external_id.as_str()), tx.now)?;
    }
    let details = json!({ "name": cmd.name, "permissions": names(&cmd.permissions) });
    record(tx, &caller, AuditAction::RoleCreated, &id, details)?;
    let role = find(tx.conn, &tenant.root, &id)?;
    details_of(tx.conn, role)
}

/// Takes the organization's lock and returns the caller as they are now (R15) with the
/// custom role `id` they mean to change: a role of another organization answers 404 to
/// everyone (R1), before managing roles is checked; a built-in role is refused.
fn custom_role_to_manage(
    tx: &mut Tx<'_>,
    caller: &Principal,
    id: &RoleId,
    refusal: &str,
) -> Result<(Principal, RoleRow), ApiError> {
    let caller = tx.lock_tenant(caller)?;
    let root = policy::tenant(&caller)?.root.clone();
    let role = find(tx.conn, &root, id)?;
    policy::require_role_management(&caller)?;
    let permissions = permissions_of(tx.conn, std::slice::from_ref(&role))?;
    tx.check_version(&crate::service::versions::of_role(&role, &permissions))?;
    if role.builtin.is_some() {
        return Err(ApiError::new(ProblemKind::BuiltinRole, refusal));
    }
    Ok((caller, role))
}

/// Renames a custom role, changes its description or replaces its permissions. Built-in
/// roles cannot change; the author must hold every permission given (R4).
pub fn update(tx: &mut Tx<'_>, caller: &Principal, id: &RoleId, cmd: RoleChanges) -> Result<RoleDetails, ApiError> {
    let refusal = "Built-in roles cannot be changed; create a custom role instead.";
    let (caller, role) = custom_role_to_manage(tx, caller, id, refusal)?;
    let tenant = policy::tenant(&caller)?;
    if let Some(set) = &cmd.permissions {
        policy::require_permissions_held(tenant, set)?;
    }
    let name = cmd.name.unwrap_or_else(|| role.name.clone());
    if roles::name_taken(tx.conn, &tenant.root, &name, Some(&role.id))? {
        return Err(name_taken(&name));
    }
    let description = cmd.description.unwrap_or_else(|| role.description.clone());
    roles::rename(tx.conn, &role.id, &name, &description, tx.now)?;
    if let Some(set) = &cmd.permissions {
        roles::set_permissions(tx.conn, &role.id, set)?;
    }
    if let Some(external_id) = &cmd.external_id {
        roles::set_external_id(tx.conn, &role.id, external_id.as_deref(), tx.now)?;
    }
    let details = json!({ "name": name, "permissions": cmd.permissions.as_ref().map(names) });
    record(tx, &caller, AuditAction::RoleUpdated, &role.id, details)?;
    let role = find(tx.conn, &tenant.root, &role.id)?;
    details_of(tx.conn, role)
}

/// Deletes a custom role. Built-in roles cannot be deleted, nor a role any membership
/// still holds.
pub fn delete(tx: &mut Tx<'_>, caller: &Principal, id: &RoleId) -> Result<(), ApiError> {
    let refusal = "Built-in roles cannot be deleted.";
    let (caller, role) = custom_role_to_manage(tx, caller, id, refusal)?;
    let held = holders(tx.conn, &role.id)?;
    if held > 0 {
        let noun = if held == 1 {
            "membership holds"
        } else {
            "memberships hold"
        };
        return Err(ApiError::new(
            ProblemKind::RoleInUse,
            format!(
                "The role {} is in use: {held} {noun} it. Give them other roles first.",
                role.name
            ),
        ));
    }
    let keys = crate::db::repo::api_keys::count_live_holding(tx.conn, &role.id, tx.now)?;
    if keys > 0 {
        let noun = if keys == 1 { "API key holds" } else { "API keys hold" };
        return Err(ApiError::new(
            ProblemKind::RoleInUse,
            format!("The role {} is in use: {keys} {noun} it. Revoke them first.", role.name),
        ));
    }
    // Revoked and expired keys let go of it; they keep their history in the audit trail.
    crate::db::repo::api_keys::forget_role(tx.conn, &role.id)?;
    roles::delete(tx.conn, &role.id)?;
    record(
        tx,
        &caller,
        AuditAction::RoleDeleted,
        &role.id,
        json!({ "name": role.name }),
    )
}

fn names(set: &PermissionSet) -> Vec<&'static str> {
    set.iter().map(|p| p.as_str()).collect()
}

/// Writes the audit event of a change to a role, in the change's transaction (R13).
fn record(
    tx: &mut Tx<'_>,
    caller: &Principal,
    action: AuditAction,
    role: &RoleId,
    details: serde_json::Value,
) -> Result<(), ApiError> {
    let entry = AuditEntry {
        action,
        target_type: "role",
        target_id: role.as_str(),
        details,
    };
    audit::record(tx.conn, &caller.audit(), entry, tx.now)?;
    Ok(())
}

//! Every allow/deny decision, in one place. Handlers ask; they never compare role names or
//! permissions themselves.

use crate::auth::extract::{Principal, TenantContext};
use crate::db::models::{AccountRow, RoleRow};
use crate::domain::permissions::{BuiltinRole, Permission, PermissionSet};
use crate::error::{ApiError, ProblemKind};

/// The caller's tenant, for any call that works inside an account. Refused when the token
/// has not picked an account yet, or when the user must first change their password.
pub fn tenant(principal: &Principal) -> Result<&TenantContext, ApiError> {
    if principal.user.must_change_password && !principal.is_delegated() {
        return Err(ApiError::new(
            ProblemKind::PasswordChangeRequired,
            "Change your password (POST /v1/me/password) before using the account.",
        ));
    }
    principal.tenant.as_ref().ok_or_else(|| {
        ApiError::forbidden("This token has not picked an account yet; call POST /v1/auth/switch-account.")
    })
}

/// The caller holds `permission` at their own node.
pub fn require(principal: &Principal, permission: Permission) -> Result<&TenantContext, ApiError> {
    let tenant = tenant(principal)?;
    if !tenant.permissions.contains(&permission) {
        return Err(ApiError::forbidden(format!(
            "This needs the permission {}.",
            permission.as_str()
        )));
    }
    Ok(tenant)
}

/// The caller holds `permission` over `target`: the target is in the caller's tenant (else
/// it answers 404, as if it did not exist: R1) and at or below the caller's node (R2).
pub fn require_on<'p>(
    principal: &'p Principal,
    permission: Permission,
    target: &AccountRow,
) -> Result<&'p TenantContext, ApiError> {
    let tenant = tenant(principal)?;
    if target.root_id != tenant.root {
        return Err(ApiError::not_found("account"));
    }
    if !target.path.starts_with(&tenant.node.path) {
        return Err(ApiError::forbidden(
            "That account is outside the part of the organization you can reach.",
        ));
    }
    if !tenant.permissions.contains(&permission) {
        return Err(ApiError::forbidden(format!(
            "This needs the permission {}.",
            permission.as_str()
        )));
    }
    Ok(tenant)
}

/// Things an acting-as token may never do (R8): start another delegation, change the
/// effective user's password, email or caretaker, read secrets.
pub fn forbid_delegated(principal: &Principal, what: &str) -> Result<(), ApiError> {
    if principal.is_delegated() {
        return Err(ApiError::forbidden(format!(
            "A session acting as another user cannot {what}."
        )));
    }
    Ok(())
}

/// The caller can see `target`: in their tenant (else 404, R1) and at or below their node
/// (else 403, R2). No particular permission is needed to see a node one belongs to.
pub fn require_visible<'p>(principal: &'p Principal, target: &AccountRow) -> Result<&'p TenantContext, ApiError> {
    let tenant = tenant(principal)?;
    if target.root_id != tenant.root {
        return Err(ApiError::not_found("account"));
    }
    if !target.path.starts_with(&tenant.node.path) {
        return Err(ApiError::forbidden(
            "That account is outside the part of the organization you can reach.",
        ));
    }
    Ok(tenant)
}

/// The caller may act with `permission` on a member whose membership sits at `node` and
/// who holds `roles`: the node is within reach (R1, R2), and only those who may manage
/// owners touch an owner (R4).
pub fn require_member<'p>(
    principal: &'p Principal,
    permission: Permission,
    node: &AccountRow,
    member_roles: &[RoleRow],
) -> Result<&'p TenantContext, ApiError> {
    let tenant = require_on(principal, permission, node)?;
    if holds_owner(member_roles) && !tenant.permissions.contains(&Permission::OwnersManage) {
        return Err(ApiError::forbidden("Only owners can change an owner."));
    }
    Ok(tenant)
}

/// Nobody grants what they do not hold themselves (R4): every permission of every role
/// must be the caller's, and the owner role needs `owners.manage`.
pub fn require_grantable(tenant: &TenantContext, roles: &[(RoleRow, PermissionSet)]) -> Result<(), ApiError> {
    for (role, permissions) in roles {
        if let Some(missing) = permissions.difference(&tenant.permissions).next() {
            return Err(ApiError::forbidden(format!(
                "You cannot grant the role {} because it includes {}, which you do not hold.",
                role.name,
                missing.as_str()
            )));
        }
        if role.builtin == Some(BuiltinRole::Owner) && !tenant.permissions.contains(&Permission::OwnersManage) {
            return Err(ApiError::forbidden("Only owners can make someone an owner."));
        }
    }
    Ok(())
}

/// A custom role may only hold permissions its author holds (R4).
pub fn require_permissions_held(tenant: &TenantContext, wanted: &PermissionSet) -> Result<(), ApiError> {
    match wanted.difference(&tenant.permissions).next() {
        Some(missing) => Err(ApiError::forbidden(format!(
            "You cannot give a role the permission {}, which you do not hold.",
            missing.as_str()
        ))),
        None => Ok(()),
    }
}

pub fn holds_owner(roles: &[RoleRow]) -> bool {
    roles.iter().any(|r| r.builtin == Some(BuiltinRole::Owner))
}

// ---- accounts: the tree, profiles, closing, billing ----

/// The caller may read or replace `account`'s billing profile: `account.billing` over it (R1,
/// R2), and only an organization (a root) has one: any other node answers 404.
pub fn require_billing<'p>(principal: &'p Principal, account: &AccountRow) -> Result<&'p TenantContext, ApiError> {
    let tenant = require_on(principal, Permission::AccountBilling, account)?;
    if account.parent_id.is_some() {
        return Err(ApiError::not_found("billing profile (only organizations have one)"));
    }
    Ok(tenant)
}

// ---- members: profiles, roles, place in the tree, ownership ----

// ---- invitations ----

// ---- sessions and the caller themself ----

// ---- roles ----

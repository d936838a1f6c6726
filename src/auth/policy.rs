//! Every allow/deny decision, in one place. Handlers ask; they never compare role names or
//! permissions themselves.

use crate::auth::extract::{Principal, TenantContext};
use crate::auth::permissions::Permission;
use crate::db::models::AccountRow;
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

//! Roles: the built-in ones and the custom ones an organization defines.

use crate::db::models::RoleRow;
use crate::db::repo::roles;
use crate::db::DbConnection;
use crate::domain::permissions::PermissionSet;
use crate::error::ApiError;
use crate::ids::{AccountId, RoleId};

/// Resolves role ids of the caller's organization with their permissions; any id that is
/// not one of its roles is a field error, never a hint about other tenants.
pub fn resolve(
    conn: &mut DbConnection,
    root: &AccountId,
    raw: &[String],
) -> Result<Vec<(RoleRow, PermissionSet)>, ApiError> {
    if raw.is_empty() {
        return Err(ApiError::field("role_ids", "required", "must name at least one role"));
    }
    let mut out: Vec<(RoleRow, PermissionSet)> = Vec::new();
    for (index, value) in raw.iter().enumerate() {
        let role = RoleId::parse(value)
            .map(|id| roles::find_in(conn, root, &id))
            .transpose()?
            .flatten()
            .ok_or_else(|| {
                ApiError::field(
                    &format!("role_ids[{index}]"),
                    "unknown",
                    format!("{value} is not a role of this account"),
                )
            })?;
        if out.iter().any(|(r, _)| r.id == role.id) {
            continue;
        }
        let permissions = roles::permissions_of(conn, std::slice::from_ref(&role))?;
        out.push((role, permissions));
    }
    Ok(out)
}

//! The permission catalog, and the roles of an organization: built-in and custom.

use actix_web::{delete, get, patch, post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use validator::Validate;

use crate::api::extract::Body;
use crate::api::views::utc;
use crate::auth::extract::Principal;
use crate::auth::policy;
use crate::db::models::RoleRow;
use crate::db::repo::audit::{self, AuditEntry};
use crate::db::repo::{memberships, roles};
use crate::db::DbConnection;
use crate::domain;
use crate::domain::permissions::{Permission, PermissionSet};
use crate::domain::AuditAction;
use crate::error::{field_error, ApiError, Problem, ProblemKind};
use crate::ids::{AccountId, RoleId};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct PermissionView {
    #[schema(example = "users.manage")]
    pub name: &'static str,
    pub description: &'static str,
}

/// The permission catalog.
#[utoipa::path(
    tag = "roles",
    operation_id = "listPermissions",
    responses((status = 200, description = "Every permission a role can hold", body = Vec<PermissionView>))
)]
#[get("/v1/permissions")]
pub async fn list_permissions() -> web::Json<Vec<PermissionView>> {
    web::Json(
        Permission::ALL
            .iter()
            .map(|p| PermissionView {
                name: p.as_str(),
                description: p.description(),
            })
            .collect(),
    )
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoleView {
    pub id: String,
    pub name: String,
    pub description: String,
    /// The built-in role this is (`owner`, `admin`, `standard`, `limited`, `guest`,
    /// `messaging_agent`, `viewer`); null for a custom role. Built-in roles cannot change.
    #[schema(required = true)]
    pub builtin: Option<String>,
    pub permissions: Vec<String>,
    /// How many memberships hold the role.
    pub member_count: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

fn role_view(conn: &mut DbConnection, role: &RoleRow) -> Result<RoleView, ApiError> {
    let permissions = roles::permissions_of(conn, std::slice::from_ref(role))?;
    Ok(RoleView {
        id: role.id.to_string(),
        name: role.name.clone(),
        description: role.description.clone(),
        builtin: role.builtin.map(|b| b.key().to_string()),
        permissions: permissions.iter().map(|p| p.as_str().to_string()).collect(),
        member_count: memberships::count_holding(conn, &role.id)?,
        created_at: utc(role.created_at),
        updated_at: utc(role.updated_at),
    })
}

fn load_role(conn: &mut DbConnection, root: &AccountId, raw: &str) -> Result<RoleRow, ApiError> {
    let missing = || ApiError::not_found("role");
    let id = RoleId::parse(raw).ok_or_else(missing)?;
    roles::find_in(conn, root, &id)?.ok_or_else(missing)
}

/// Roles belong to the whole organization, so managing them needs `roles.manage` with reach
/// over its root account (R2): a membership lower in the tree does not define them.
fn require_role_management(principal: &Principal) -> Result<&crate::auth::extract::TenantContext, ApiError> {
    let root = &policy::tenant(principal)?.account;
    policy::require_on(principal, Permission::RolesManage, root)
}

fn parse_permissions(raw: &[String]) -> Result<PermissionSet, ApiError> {
    let mut set = PermissionSet::new();
    let mut errors = Vec::new();
    for (index, name) in raw.iter().enumerate() {
        match Permission::parse(name) {
            Some(p) => {
                set.insert(p);
            }
            None => errors.push(crate::error::FieldError::new(
                &format!("permissions[{index}]"),
                "unknown",
                format!("{name} is not a permission; GET /v1/permissions lists them"),
            )),
        }
    }
    if errors.is_empty() {
        Ok(set)
    } else {
        Err(ApiError::validation(errors))
    }
}

/// The organization's roles, built-in first.
#[utoipa::path(
    tag = "roles",
    operation_id = "listRoles",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every role of the organization", body = Vec<RoleView>),
        (status = 403, description = "The password must be changed first, or the token has not picked an account yet", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/roles")]
pub async fn list_roles(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<web::Json<Vec<RoleView>>, ApiError> {
    let root = policy::tenant(&principal)?.root.clone();
    let list = state
        .db
        .read(move |conn| {
            let rows = roles::list_for_root(conn, &root)?;
            rows.iter().map(|r| role_view(conn, r)).collect()
        })
        .await?;
    Ok(web::Json(list))
}

/// Read one role.
#[utoipa::path(
    tag = "roles",
    operation_id = "getRole",
    security(("bearer" = [])),
    params(("role_id" = String, Path, description = "A role id (`rol_…`)", pattern = r"^rol_[0-9A-Za-z]{26}$")),
    responses(
        (status = 200, description = "The role", body = RoleView),
        (status = 403, description = "The password must be changed first, or the token has not picked an account yet", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such role in the caller's organization", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/roles/{role_id}")]
pub async fn get_role(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<web::Json<RoleView>, ApiError> {
    let root = policy::tenant(&principal)?.root.clone();
    let raw = path.into_inner();
    let view = state
        .db
        .read(move |conn| {
            let role = load_role(conn, &root, &raw)?;
            role_view(conn, &role)
        })
        .await?;
    Ok(web::Json(view))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRole {
    #[validate(custom(function = "domain::check_name"))]
    #[schema(example = "Front desk", min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: String,
    #[validate(length(max = 500))]
    #[schema(max_length = 500)]
    pub description: Option<String>,
    /// Permission names from `GET /v1/permissions`; each must be one the caller holds.
    pub permissions: Vec<String>,
}

/// Create a custom role. Needs `roles.manage` and every permission it grants (R4).
#[utoipa::path(
    tag = "roles",
    operation_id = "createRole",
    security(("bearer" = [])),
    request_body = CreateRole,
    responses(
        (status = 201, description = "Created", body = RoleView),
        (status = 403, description = "Needs roles.manage and every permission named", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A role with this name exists", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/roles")]
pub async fn create_role(
    state: web::Data<AppState>,
    principal: Principal,
    body: Body<CreateRole>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    body.validate()?;
    let name = domain::parse_name(&body.name).map_err(field_error("name"))?;
    let permissions = parse_permissions(&body.permissions)?;
    let st = state.clone();
    let view = state
        .db
        .write(move |conn| {
            let principal = principal.lock_tenant(conn)?;
            let tenant = require_role_management(&principal)?;
            policy::require_permissions_held(tenant, &permissions)?;
            if roles::name_taken(conn, &tenant.root, &name, None)? {
                return Err(ApiError::new(ProblemKind::RoleNameTaken, format!("A role named {name} already exists.")));
            }
            let now = st.clock.now();
            let description = body.description.as_deref().unwrap_or("").trim();
            let id = roles::insert_custom(conn, &tenant.root, &name, description, &permissions, now)?;
            audit::record(
                conn,
                &principal.audit(),
                AuditEntry {
                    action: AuditAction::RoleCreated,
                    target_type: "role",
                    target_id: id.as_str(),
                    details: json!({ "name": name, "permissions": permissions.iter().map(|p| p.as_str()).collect::<Vec<_>>() }),
                },
                now,
            )?;
            let role = load_role(conn, &tenant.root, id.as_str())?;
            role_view(conn, &role)
        })
        .await?;
    Ok(HttpResponse::Created().json(view))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRole {
    #[validate(custom(function = "domain::check_name"))]
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: Option<String>,
    #[validate(length(max = 500))]
    #[schema(max_length = 500)]
    pub description: Option<String>,
    /// The complete new set of permissions.
    pub permissions: Option<Vec<String>>,
}

/// Rename a custom role or change its permissions. Built-in roles cannot change.
#[utoipa::path(
    tag = "roles",
    operation_id = "updateRole",
    security(("bearer" = [])),
    params(("role_id" = String, Path, description = "A role id (`rol_…`)", pattern = r"^rol_[0-9A-Za-z]{26}$")),
    request_body = UpdateRole,
    responses(
        (status = 200, description = "Updated", body = RoleView),
        (status = 403, description = "Needs roles.manage and every permission named", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such role in the caller's organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A built-in role, or the name is taken", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/v1/roles/{role_id}")]
pub async fn update_role(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: Body<UpdateRole>,
) -> Result<web::Json<RoleView>, ApiError> {
    let body = body.into_inner();
    body.validate()?;
    let name = body
        .name
        .as_deref()
        .map(domain::parse_name)
        .transpose()
        .map_err(field_error("name"))?;
    let permissions = body.permissions.as_deref().map(parse_permissions).transpose()?;
    let raw = path.into_inner();
    let st = state.clone();
    let view = state
        .db
        .write(move |conn| {
            let principal = principal.lock_tenant(conn)?;
            let root = policy::tenant(&principal)?.root.clone();
            // The target first: a role of another organization answers 404 to everyone (R1).
            let role = load_role(conn, &root, &raw)?;
            let tenant = require_role_management(&principal)?;
            if role.builtin.is_some() {
                return Err(ApiError::new(
                    ProblemKind::BuiltinRole,
                    "Built-in roles cannot be changed; create a custom role instead.",
                ));
            }
            if let Some(set) = &permissions {
                policy::require_permissions_held(tenant, set)?;
            }
            let now = st.clock.now();
            let new_name = name.unwrap_or_else(|| role.name.clone());
            if roles::name_taken(conn, &tenant.root, &new_name, Some(&role.id))? {
                return Err(ApiError::new(
                    ProblemKind::RoleNameTaken,
                    format!("A role named {new_name} already exists."),
                ));
            }
            let description = body
                .description
                .as_deref()
                .map(str::trim)
                .unwrap_or(&role.description)
                .to_string();
            roles::rename(conn, &role.id, &new_name, &description, now)?;
            if let Some(set) = &permissions {
                roles::set_permissions(conn, &role.id, set)?;
            }
            audit::record(
                conn,
                &principal.audit(),
                AuditEntry {
                    action: AuditAction::RoleUpdated,
                    target_type: "role",
                    target_id: role.id.as_str(),
                    details: json!({
                        "name": new_name,
                        "permissions": permissions.as_ref().map(|s| s.iter().map(|p| p.as_str()).collect::<Vec<_>>()),
                    }),
                },
                now,
            )?;
            let role = load_role(conn, &tenant.root, role.id.as_str())?;
            role_view(conn, &role)
        })
        .await?;
    Ok(web::Json(view))
}

/// Delete a custom role. Refused while any membership holds it.
#[utoipa::path(
    tag = "roles",
    operation_id = "deleteRole",
    security(("bearer" = [])),
    params(("role_id" = String, Path, description = "A role id (`rol_…`)", pattern = r"^rol_[0-9A-Za-z]{26}$")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Needs roles.manage", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such role in the caller's organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A built-in role, or still held by memberships", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/roles/{role_id}")]
pub async fn delete_role(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let raw = path.into_inner();
    let st = state.clone();
    state
        .db
        .write(move |conn| {
            let principal = principal.lock_tenant(conn)?;
            let root = policy::tenant(&principal)?.root.clone();
            let role = load_role(conn, &root, &raw)?;
            require_role_management(&principal)?;
            if role.builtin.is_some() {
                return Err(ApiError::new(
                    ProblemKind::BuiltinRole,
                    "Built-in roles cannot be deleted.",
                ));
            }
            let held = memberships::count_holding(conn, &role.id)?;
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
            let now = st.clock.now();
            roles::delete(conn, &role.id)?;
            audit::record(
                conn,
                &principal.audit(),
                AuditEntry {
                    action: AuditAction::RoleDeleted,
                    target_type: "role",
                    target_id: role.id.as_str(),
                    details: json!({ "name": role.name }),
                },
                now,
            )?;
            Ok(())
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

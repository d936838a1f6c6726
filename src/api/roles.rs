//! The permission catalog, and the roles of an organization: built-in and custom.

use actix_web::{delete, get, patch, post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::{ValidationError, ValidationErrors};

use crate::api::extract::{Body, IfMatch};
use crate::api::views::{utc, versioned};
use crate::auth::extract::Principal;
use crate::domain;
use crate::domain::permissions::{Permission, PermissionSet};
use crate::error::{ApiError, FieldError, Problem};
use crate::ids::RoleId;
use crate::service::roles::{self, NewRole, RoleChanges, RoleDetails};
use crate::service::{self, versions};
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
        roles::catalog()
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

impl From<RoleDetails> for RoleView {
    fn from(details: RoleDetails) -> Self {
        let RoleDetails {
            role,
            permissions,
            member_count,
        } = details;
        RoleView {
            id: role.id.to_string(),
            builtin: role.builtin.map(|b| b.key().to_string()),
            permissions: permissions.iter().map(|p| p.as_str().to_string()).collect(),
            member_count,
            created_at: utc(role.created_at),
            updated_at: utc(role.updated_at),
            name: role.name,
            description: role.description,
        }
    }
}

fn parse_permissions(raw: &[String]) -> Result<PermissionSet, ApiError> {
    crate::api::extract::at_most("permissions", raw, 100)?;
    let mut set = PermissionSet::new();
    let mut errors = Vec::new();
    for (index, name) in raw.iter().enumerate() {
        match Permission::parse(name) {
            Some(p) => {
                set.insert(p);
            }
            None => errors.push(FieldError::new(
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

/// A description: at most 500 characters, stored trimmed.
fn parse_description(raw: &str) -> Result<String, ValidationError> {
    if raw.chars().count() > 500 {
        return Err(ValidationError::new("length").with_message("must be at most 500 characters long".into()));
    }
    Ok(raw.trim().to_string())
}

/// The name's and the description's errors in one response, as validation lists them (R14).
fn field_errors(fields: [(&'static str, Option<ValidationError>); 2]) -> ApiError {
    let mut errors = ValidationErrors::new();
    for (field, error) in fields {
        if let Some(error) = error {
            errors.add(field, error);
        }
    }
    errors.into()
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
    let list = service::read(&state, move |tx| roles::list(tx, &principal)).await?;
    Ok(web::Json(list.into_iter().map(RoleView::from).collect()))
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
    path: web::Path<RoleId>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let role = service::read(&state, move |tx| roles::get(tx, &principal, &id)).await?;
    Ok(versioned(
        versions::of_role(&role.role, &role.permissions),
        &RoleView::from(role),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRole {
    #[schema(example = "Front desk", min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: String,
    #[schema(max_length = 500)]
    pub description: Option<String>,
    /// Permission names from `GET /v1/permissions`; each must be one the caller holds.
    #[schema(max_items = 100)]
    pub permissions: Vec<String>,
}

impl CreateRole {
    /// Parses every field once; the permissions are checked after the name and description.
    fn command(self) -> Result<NewRole, ApiError> {
        let name = domain::parse_name(&self.name);
        let description = parse_description(self.description.as_deref().unwrap_or(""));
        match (name, description) {
            (Ok(name), Ok(description)) => Ok(NewRole {
                name,
                description,
                permissions: parse_permissions(&self.permissions)?,
                external_id: None,
            }),
            (name, description) => Err(field_errors([("name", name.err()), ("description", description.err())])),
        }
    }
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
    let cmd = body.into_inner().command()?;
    let role = service::write(&state, move |tx| roles::create(tx, &principal, cmd)).await?;
    Ok(HttpResponse::Created().json(RoleView::from(role)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRole {
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: Option<String>,
    #[schema(max_length = 500)]
    pub description: Option<String>,
    /// The complete new set of permissions.
    #[schema(max_items = 100)]
    pub permissions: Option<Vec<String>>,
}

impl UpdateRole {
    /// Parses every field given once; the permissions are checked after the name and description.
    fn command(self) -> Result<RoleChanges, ApiError> {
        let name = self.name.as_deref().map(domain::parse_name).transpose();
        let description = self.description.as_deref().map(parse_description).transpose();
        match (name, description) {
            (Ok(name), Ok(description)) => Ok(RoleChanges {
                name,
                description,
                permissions: self.permissions.as_deref().map(parse_permissions).transpose()?,
                external_id: None,
            }),
            (name, description) => Err(field_errors([("name", name.err()), ("description", description.err())])),
        }
    }
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
    path: web::Path<RoleId>,
    if_match: IfMatch,
    body: Body<UpdateRole>,
) -> Result<HttpResponse, ApiError> {
    let cmd = body.into_inner().command()?;
    let id = path.into_inner();
    let role = service::write_if(&state, if_match.0, move |tx| roles::update(tx, &principal, &id, cmd)).await?;
    Ok(versioned(
        versions::of_role(&role.role, &role.permissions),
        &RoleView::from(role),
    ))
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
    path: web::Path<RoleId>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    service::write_if(&state, if_match.0, move |tx| roles::delete(tx, &principal, &id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

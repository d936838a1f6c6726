//! Users inside an account: list, read, create with an initial password, edit, set roles,
//! move in the tree, and transfer ownership.

use actix_web::{get, patch, post, put, web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::api::extract::{Body, Query};
use crate::api::pagination::PageRequest;
use crate::api::views::MemberView;
use crate::auth::extract::Principal;
use crate::auth::policy;
use crate::db::models::{AccountRow, MembershipRow, RoleRow, UserRow};
use crate::db::repo::audit::{self, AuditEntry};
use crate::db::repo::memberships::{self, MemberFilter};
use crate::db::repo::{accounts, roles, users};
use crate::db::DbConnection;
use crate::domain::permissions::{BuiltinRole, Permission};
use crate::domain::AuditAction;
use crate::domain::{self, AccountStatus, Email, MembershipStatus, NewPassword, UserStatus, Username};
use crate::error::{field_error, ApiError, Problem, ProblemKind};
use crate::identity;
use crate::ids::{AccountId, RoleId, UserId};
use crate::service::{accounts as accounts_svc, roles as roles_svc};
use crate::state::AppState;

/// A member of the root account, with where they sit and what they hold.
pub struct Member {
    pub membership: MembershipRow,
    pub user: UserRow,
    pub node: AccountRow,
    pub roles: Vec<RoleRow>,
}

impl Member {
    pub fn view(&self) -> MemberView {
        MemberView::new(&self.membership, &self.user, &self.roles)
    }
}

/// Reads a member of `root` by the user id in a path. A user of another organization, an
/// unknown id and a malformed one all answer 404 (R1).
pub fn load_member(conn: &mut DbConnection, root: &AccountId, raw: &str) -> Result<Member, ApiError> {
    let missing = || ApiError::not_found("user");
    let id = UserId::parse(raw).ok_or_else(missing)?;
    let (membership, user) = memberships::find_member(conn, root, &id)?.ok_or_else(missing)?;
    let node = accounts::find(conn, &membership.account_id)?.ok_or_else(missing)?;
    let roles = memberships::roles_of(conn, &membership.id)?;
    Ok(Member {
        membership,
        user,
        node,
        roles,
    })
}

/// R3: refuses a change that would leave the organization without an active owner. Call
/// after `accounts::lock_tenant`, so that concurrent demotions are decided one at a time.
pub fn ensure_an_owner_remains(
    conn: &mut DbConnection,
    root: &AccountId,
    losing: &MembershipRow,
) -> Result<(), ApiError> {
    let owners = memberships::active_owner_memberships(conn, root)?;
    let others = owners.iter().filter(|id| id.as_str() != losing.id.as_str()).count();
    if others == 0 {
        return Err(ApiError::new(
            ProblemKind::LastOwner,
            "This is the organization's last active owner; make someone else an owner first.",
        ));
    }
    Ok(())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListUsersQuery {
    /// `active` or `deactivated` (the membership's status).
    pub status: Option<MembershipStatus>,
    /// Only users who hold this role (`rol_…`).
    pub role: Option<String>,
    /// Only users whose membership sits at or below this node (`acc_…`).
    pub node: Option<String>,
    /// Case-insensitive text in first or last name, email or username.
    pub q: Option<String>,
    /// The integrator's id.
    pub external_id: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberPage {
    pub items: Vec<MemberView>,
    /// Pass as `cursor` for the next page; null on the last page. Stable under inserts.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// List the users of the account, within the caller's reach.
///
/// Ordered by creation (user id); filters combine with AND.
#[utoipa::path(
    tag = "users",
    operation_id = "listUsers",
    security(("bearer" = [])),
    params(ListUsersQuery),
    responses(
        (status = 200, description = "One page of members", body = MemberPage),
        (status = 403, description = "Needs users.read", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A filter or the cursor is invalid", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/users")]
pub async fn list_users(
    state: web::Data<AppState>,
    principal: Principal,
    query: Query<ListUsersQuery>,
) -> Result<web::Json<MemberPage>, ApiError> {
    let query = query.into_inner();
    let tenant = policy::require(&principal, Permission::UsersRead)?.clone();
    let page_request = PageRequest::parse(query.limit, query.cursor.as_deref(), |id| UserId::parse(id).is_some())?;
    let text = query.q.map(|q| q.trim().to_string()).filter(|q| !q.is_empty());
    if text.as_ref().is_some_and(|t| t.chars().count() > 100) {
        return Err(ApiError::field("q", "length", "must be at most 100 characters long"));
    }
    let page = state
        .db
        .read(move |conn| {
            let mut filter = MemberFilter {
                within_paths: vec![tenant.node.path.clone()],
                status: query.status,
                user_status: None,
                role: None,
                text,
                external_id: query.external_id,
                after: page_request.after.clone(),
                limit: page_request.fetch(),
            };
            if let Some(raw) = &query.role {
                let unknown = || ApiError::field("role", "unknown", "is not a role of this account");
                let id = RoleId::parse(raw).ok_or_else(unknown)?;
                roles::find_in(conn, &tenant.root, &id)?.ok_or_else(unknown)?;
                filter.role = Some(id);
            }
            if let Some(raw) = &query.node {
                let unknown = || ApiError::field("node", "unknown", "is not an account within your reach");
                let node = AccountId::parse(raw)
                    .map(|id| accounts::find(conn, &id))
                    .transpose()?
                    .flatten()
                    .ok_or_else(unknown)?;
                if node.root_id != tenant.root {
                    return Err(unknown());
                }
                filter.within_paths.push(node.path);
            }
            let mut rows = memberships::page(conn, &tenant.root, &filter)?;
            let next_cursor = page_request.finish(&mut rows, |(_, u)| u.id.as_str());
            let ids: Vec<String> = rows.iter().map(|(m, _)| m.id.to_string()).collect();
            let held = memberships::roles_of_many(conn, &ids)?;
            let items = rows
                .iter()
                .map(|(m, u)| {
                    let mine: Vec<RoleRow> = held
                        .iter()
                        .filter(|(mid, _)| mid == m.id.as_str())
                        .map(|(_, r)| r.clone())
                        .collect();
                    MemberView::new(m, u, &mine)
                })
                .collect();
            Ok(MemberPage { items, next_cursor })
        })
        .await?;
    Ok(web::Json(page))
}

/// Read one user of the account.
#[utoipa::path(
    tag = "users",
    operation_id = "getUser",
    security(("bearer" = [])),
    params(("user_id" = String, Path, description = "A user id (`usr_…`)", pattern = r"^usr_[0-9A-Za-z]{26}$")),
    responses(
        (status = 200, description = "The member", body = MemberView),
        (status = 403, description = "Needs users.read over the user's place in the tree", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user in the caller's organization", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/users/{user_id}")]
pub async fn get_user(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<web::Json<MemberView>, ApiError> {
    let root = policy::tenant(&principal)?.root.clone();
    let raw = path.into_inner();
    let member = state.db.read(move |conn| load_member(conn, &root, &raw)).await?;
    if member.user.id != principal.user.id {
        policy::require_on(&principal, Permission::UsersRead, &member.node)?;
    }
    Ok(web::Json(member.view()))
}

#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesInput {
    /// The first page the user sees after logging in.
    #[validate(length(max = 100))]
    #[schema(max_length = 100)]
    pub default_landing_page: Option<String>,
    /// The contact profile tab shown first.
    #[validate(length(max = 100))]
    #[schema(max_length = 100)]
    pub default_contact_tab: Option<String>,
    pub show_calendar: Option<bool>,
    pub daily_email_reminders: Option<bool>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    #[validate(custom(function = "domain::check_email"))]
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    #[validate(custom(function = "domain::check_username"))]
    #[schema(min_length = 3, max_length = 64, pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    pub username: Option<String>,
    #[validate(custom(function = "domain::check_name"))]
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub first_name: String,
    #[validate(custom(function = "domain::check_name"))]
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub last_name: String,
    #[validate(length(max = 40))]
    #[schema(max_length = 40)]
    pub phone: Option<String>,
    /// The initial password; the user must change it at first login.
    #[validate(custom(function = "domain::check_new_password"))]
    #[schema(min_length = 10, max_length = 256, pattern = r"\S")]
    pub password: String,
    /// One or more roles of this account (`rol_…`).
    #[schema(min_items = 1)]
    pub role_ids: Vec<String>,
    /// The node the membership sits at; defaults to the caller's own node.
    pub account_id: Option<String>,
    /// The integrator's own id for this user, unique within the organization.
    #[validate(length(min = 1, max = 200))]
    #[schema(min_length = 1, max_length = 200)]
    pub external_id: Option<String>,
    #[validate(nested)]
    pub preferences: Option<PreferencesInput>,
}

/// Create a user directly, with an initial password they must change at first login.
#[utoipa::path(
    tag = "users",
    operation_id = "createUser",
    security(("bearer" = [])),
    request_body = CreateUser,
    responses(
        (status = 201, description = "Created", body = MemberView),
        (status = 403, description = "Needs users.manage at the node, and every permission of the granted roles", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such node (`account_id`) in the caller's organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The email, username or external id is taken (invite an existing user instead)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/users")]
pub async fn create_user(
    state: web::Data<AppState>,
    principal: Principal,
    body: Body<CreateUser>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    body.validate()?;
    let email = Email::parse(&body.email).map_err(field_error("email"))?;
    let username = body
        .username
        .as_deref()
        .map(Username::parse)
        .transpose()
        .map_err(field_error("username"))?;
    let first_name = domain::parse_name(&body.first_name).map_err(field_error("first_name"))?;
    let last_name = domain::parse_name(&body.last_name).map_err(field_error("last_name"))?;
    let password = NewPassword::parse(&body.password).map_err(field_error("password"))?;
    let tenant = policy::tenant(&principal)?.clone();
    // Check what can be checked before paying for a password hash.
    let (root, raw_roles, raw_node) = (tenant.root.clone(), body.role_ids.clone(), body.account_id.clone());
    let precheck = principal.clone();
    state
        .db
        .read(move |conn| {
            let node = match &raw_node {
                Some(raw) => accounts_svc::find(conn, raw)?,
                None => tenant.node.clone(),
            };
            let tenant = policy::require_on(&precheck, Permission::UsersManage, &node)?;
            let granted = roles_svc::resolve(conn, &root, &raw_roles)?;
            policy::require_grantable(tenant, &granted)
        })
        .await?;
    let hash = state.passwords.hash(password.expose().to_string()).await?;
    let st = state.clone();
    let created = state
        .db
        .write(move |conn| {
            let principal = principal.lock_tenant(conn)?;
            let tenant = policy::tenant(&principal)?;
            let node = match &body.account_id {
                Some(raw) => accounts_svc::find(conn, raw)?,
                None => tenant.node.clone(),
            };
            policy::require_on(&principal, Permission::UsersManage, &node)?;
            if node.status != AccountStatus::Active {
                return Err(ApiError::new(ProblemKind::AccountClosed, "That account is closed."));
            }
            let granted = roles_svc::resolve(conn, &tenant.root, &body.role_ids)?;
            policy::require_grantable(tenant, &granted)?;
            if users::email_taken(conn, email.normalized())? {
                return Err(ApiError::new(
                    ProblemKind::EmailTaken,
                    "A user with this email already exists; invite them instead.",
                ));
            }
            if let Some(name) = &username {
                if users::username_taken(conn, name.normalized())? {
                    return Err(ApiError::new(
                        ProblemKind::UsernameTaken,
                        "This username is taken; choose another.",
                    ));
                }
            }
            if let Some(ext) = &body.external_id {
                if memberships::external_id_taken(conn, &tenant.root, ext, None)? {
                    return Err(ApiError::new(
                        ProblemKind::ExternalIdTaken,
                        format!("Another user of this organization has the external id {ext}."),
                    ));
                }
            }
            let now = st.clock.now();
            let prefs = body.preferences.unwrap_or_default();
            let user_id = identity::insert_person(
                conn,
                identity::Person {
                    email: &email,
                    username: username.as_ref(),
                    first_name: &first_name,
                    last_name: &last_name,
                    phone: body.phone.as_deref().map(str::trim),
                    password_hash: &hash,
                    must_change_password: true,
                },
                now,
            )?;
            if prefs.show_calendar.is_some() || prefs.daily_email_reminders.is_some() {
                users::update_profile(
                    conn,
                    &user_id,
                    users::UserChanges {
                        show_calendar: prefs.show_calendar,
                        daily_email_reminders: prefs.daily_email_reminders,
                        ..Default::default()
                    },
                )?;
            }
            if prefs.default_landing_page.is_some() || prefs.default_contact_tab.is_some() {
                users::update_profile(
                    conn,
                    &user_id,
                    users::UserChanges {
                        default_landing_page: Some(prefs.default_landing_page),
                        default_contact_tab: Some(prefs.default_contact_tab),
                        ..Default::default()
                    },
                )?;
            }
            let mut membership = memberships::new_active(&user_id, &node, now);
            membership.external_id = body.external_id.clone();
            let role_ids: Vec<RoleId> = granted.iter().map(|(r, _)| r.id.clone()).collect();
            memberships::insert(conn, membership, &role_ids)?;
            audit::record(
                conn,
                &principal.audit(),
                AuditEntry {
                    action: AuditAction::UserCreated,
                    target_type: "user",
                    target_id: user_id.as_str(),
                    details: json!({ "account_id": node.id, "roles": role_ids }),
                },
                now,
            )?;
            load_member(conn, &tenant.root, user_id.as_str())
        })
        .await?;
    Ok(HttpResponse::Created().json(created.view()))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    #[validate(custom(function = "domain::check_name"))]
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub first_name: Option<String>,
    #[validate(custom(function = "domain::check_name"))]
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub last_name: Option<String>,
    /// Send null to clear.
    #[serde(default, deserialize_with = "crate::api::nullable")]
    #[validate(length(max = 40))]
    #[schema(max_length = 40)]
    pub phone: Option<Option<String>>,
    #[validate(custom(function = "domain::check_username"))]
    #[schema(min_length = 3, max_length = 64, pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    pub username: Option<String>,
    /// Send null to clear. Unique within the organization.
    #[serde(default, deserialize_with = "crate::api::nullable")]
    #[validate(length(min = 1, max = 200))]
    #[schema(min_length = 1, max_length = 200)]
    pub external_id: Option<Option<String>>,
    #[validate(nested)]
    pub preferences: Option<PreferencesInput>,
}

/// Edit a user's profile, preferences or external id.
///
/// Users may edit their own profile and preferences; editing someone else needs
/// `users.manage` over their place in the tree, and the external id always does.
#[utoipa::path(
    tag = "users",
    operation_id = "updateUser",
    security(("bearer" = [])),
    params(("user_id" = String, Path, description = "A user id (`usr_…`)", pattern = r"^usr_[0-9A-Za-z]{26}$")),
    request_body = UpdateUser,
    responses(
        (status = 200, description = "Updated", body = MemberView),
        (status = 403, description = "Needs users.manage", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user in the caller's organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The username or external id is taken", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/v1/users/{user_id}")]
pub async fn update_user(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: Body<UpdateUser>,
) -> Result<web::Json<MemberView>, ApiError> {
    let body = body.into_inner();
    body.validate()?;
    let first_name = body
        .first_name
        .as_deref()
        .map(domain::parse_name)
        .transpose()
        .map_err(field_error("first_name"))?;
    let last_name = body
        .last_name
        .as_deref()
        .map(domain::parse_name)
        .transpose()
        .map_err(field_error("last_name"))?;
    let username = body
        .username
        .as_deref()
        .map(Username::parse)
        .transpose()
        .map_err(field_error("username"))?;
    let raw = path.into_inner();
    let st = state.clone();
    let updated = state
        .db
        .write(move |conn| {
            let principal = principal.lock_tenant(conn)?;
            let tenant = policy::tenant(&principal)?;
            let member = load_member(conn, &tenant.root, &raw)?;
            let is_self = member.user.id == principal.user.id;
            if !is_self || body.external_id.is_some() {
                policy::require_member(&principal, Permission::UsersManage, &member.node, &member.roles)?;
            }
            let now = st.clock.now();
            if let Some(name) = &username {
                let taken = users::find_by_username(conn, name.normalized())?.is_some_and(|u| u.id != member.user.id);
                if taken {
                    return Err(ApiError::new(
                        ProblemKind::UsernameTaken,
                        "This username is taken; choose another.",
                    ));
                }
            }
            if let Some(Some(ext)) = &body.external_id {
                if memberships::external_id_taken(conn, &tenant.root, ext, Some(&member.membership.id))? {
                    return Err(ApiError::new(
                        ProblemKind::ExternalIdTaken,
                        format!("Another user of this organization has the external id {ext}."),
                    ));
                }
            }
            let prefs = body.preferences.unwrap_or_default();
            users::update_profile(
                conn,
                &member.user.id,
                users::UserChanges {
                    first_name,
                    last_name,
                    phone: body
                        .phone
                        .map(|p| p.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())),
                    username: username.as_ref().map(|u| Some(u.as_str().to_string())),
                    username_normalized: username.as_ref().map(|u| Some(u.normalized().to_string())),
                    default_landing_page: prefs.default_landing_page.map(Some),
                    default_contact_tab: prefs.default_contact_tab.map(Some),
                    show_calendar: prefs.show_calendar,
                    daily_email_reminders: prefs.daily_email_reminders,
                    updated_at: Some(now),
                },
            )?;
            if let Some(ext) = &body.external_id {
                memberships::set_external_id(conn, &member.membership.id, ext.as_deref(), now)?;
            }
            audit::record(
                conn,
                &principal.audit(),
                AuditEntry {
                    action: AuditAction::UserUpdated,
                    target_type: "user",
                    target_id: member.user.id.as_str(),
                    details: json!({}),
                },
                now,
            )?;
            load_member(conn, &tenant.root, member.user.id.as_str())
        })
        .await?;
    Ok(web::Json(updated.view()))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRoles {
    /// The complete new set of roles (`rol_…`), at least one.
    #[schema(min_items = 1)]
    pub role_ids: Vec<String>,
}

/// Replace the roles of a user's membership.
///
/// The caller must hold every permission of every role granted (R4); only owners change
/// owners; the last active owner cannot lose the owner role (R3).
#[utoipa::path(
    tag = "users",
    operation_id = "setUserRoles",
    security(("bearer" = [])),
    params(("user_id" = String, Path, description = "A user id (`usr_…`)", pattern = r"^usr_[0-9A-Za-z]{26}$")),
    request_body = SetRoles,
    responses(
        (status = 200, description = "The member with the new roles", body = MemberView),
        (status = 403, description = "Needs users.manage, the granted permissions, or owners.manage", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user in the caller's organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Would leave the organization without an owner", body = Problem, content_type = "application/problem+json"),
    )
)]
#[put("/v1/users/{user_id}/roles")]
pub async fn set_user_roles(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: Body<SetRoles>,
) -> Result<web::Json<MemberView>, ApiError> {
    let body = body.into_inner();
    body.validate()?;
    let raw = path.into_inner();
    let st = state.clone();
    let updated = state
        .db
        .write(move |conn| {
            let principal = principal.lock_tenant(conn)?;
            let tenant = policy::tenant(&principal)?;
            let member = load_member(conn, &tenant.root, &raw)?;
            policy::require_member(&principal, Permission::UsersManage, &member.node, &member.roles)?;
            let granted = roles_svc::resolve(conn, &tenant.root, &body.role_ids)?;
            policy::require_grantable(tenant, &granted)?;
            let new_roles: Vec<RoleRow> = granted.iter().map(|(r, _)| r.clone()).collect();
            if policy::holds_owner(&member.roles) && !policy::holds_owner(&new_roles) {
                ensure_an_owner_remains(conn, &tenant.root, &member.membership)?;
            }
            let now = st.clock.now();
            let ids: Vec<RoleId> = new_roles.iter().map(|r| r.id.clone()).collect();
            memberships::set_roles(conn, &member.membership.id, &ids, now)?;
            audit::record(
                conn,
                &principal.audit(),
                AuditEntry {
                    action: AuditAction::MembershipRolesChanged,
                    target_type: "user",
                    target_id: member.user.id.as_str(),
                    details: json!({
                        "from": member.roles.iter().map(|r| r.id.to_string()).collect::<Vec<_>>(),
                        "to": ids,
                    }),
                },
                now,
            )?;
            load_member(conn, &tenant.root, member.user.id.as_str())
        })
        .await?;
    Ok(web::Json(updated.view()))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveMembership {
    /// The node (`acc_…`) the membership moves to, in the same organization.
    #[validate(length(min = 1, max = 64))]
    #[schema(min_length = 1, max_length = 64)]
    pub account_id: String,
}

/// Move a user's membership to another node of the organization.
#[utoipa::path(
    tag = "users",
    operation_id = "moveUser",
    security(("bearer" = [])),
    params(("user_id" = String, Path, description = "A user id (`usr_…`)", pattern = r"^usr_[0-9A-Za-z]{26}$")),
    request_body = MoveMembership,
    responses(
        (status = 200, description = "Moved", body = MemberView),
        (status = 403, description = "Needs users.manage over both places", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user or account in the caller's organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The target node is closed", body = Problem, content_type = "application/problem+json"),
    )
)]
#[put("/v1/users/{user_id}/node")]
pub async fn move_user(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: Body<MoveMembership>,
) -> Result<web::Json<MemberView>, ApiError> {
    let body = body.into_inner();
    body.validate()?;
    let raw = path.into_inner();
    let st = state.clone();
    let moved = state
        .db
        .write(move |conn| {
            let principal = principal.lock_tenant(conn)?;
            let tenant = policy::tenant(&principal)?;
            let member = load_member(conn, &tenant.root, &raw)?;
            policy::require_member(&principal, Permission::UsersManage, &member.node, &member.roles)?;
            let target = accounts_svc::find(conn, &body.account_id)?;
            policy::require_on(&principal, Permission::UsersManage, &target)?;
            if target.status != AccountStatus::Active {
                return Err(ApiError::new(ProblemKind::AccountClosed, "That account is closed."));
            }
            let now = st.clock.now();
            memberships::move_to(conn, &member.membership.id, &target.id, now)?;
            audit::record(
                conn,
                &principal.audit(),
                AuditEntry {
                    action: AuditAction::MembershipMoved,
                    target_type: "user",
                    target_id: member.user.id.as_str(),
                    details: json!({ "from": member.node.id, "to": target.id }),
                },
                now,
            )?;
            load_member(conn, &tenant.root, member.user.id.as_str())
        })
        .await?;
    Ok(web::Json(moved.view()))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferOwnership {
    /// The member (`usr_…`) who becomes an owner in the caller's place.
    #[validate(length(min = 1, max = 64))]
    #[schema(min_length = 1, max_length = 64)]
    pub user_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OwnershipTransferred {
    /// The new owner.
    pub owner: MemberView,
    /// The caller, now an admin.
    pub previous_owner: MemberView,
}

/// Hand ownership of the organization to another active member.
///
/// The member becomes an owner; the caller becomes an admin. Needs `account.transfer`.
#[utoipa::path(
    tag = "users",
    operation_id = "transferOwnership",
    security(("bearer" = [])),
    request_body = TransferOwnership,
    responses(
        (status = 200, description = "Ownership transferred", body = OwnershipTransferred),
        (status = 403, description = "Needs account.transfer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user in the caller's organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The member is the caller or is not active", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/ownership/transfer")]
pub async fn transfer_ownership(
    state: web::Data<AppState>,
    principal: Principal,
    body: Body<TransferOwnership>,
) -> Result<web::Json<OwnershipTransferred>, ApiError> {
    let body = body.into_inner();
    body.validate()?;
    policy::forbid_delegated(&principal, "transfer ownership")?;
    let st = state.clone();
    let result = state
        .db
        .write(move |conn| {
            let principal = principal.lock_tenant(conn)?;
            let root = policy::tenant(&principal)?.root.clone();
            // The target first: a user of another organization answers 404 to everyone (R1).
            let target = load_member(conn, &root, &body.user_id)?;
            // Ownership is over the whole organization: it needs reach over the root (R2).
            let tenant = policy::tenant(&principal)?;
            let tenant = policy::require_on(&principal, Permission::AccountTransfer, &tenant.account)?;
            if target.user.id == principal.user.id {
                return Err(ApiError::new(ProblemKind::AlreadyOwner, "You are already the owner."));
            }
            if target.membership.status != MembershipStatus::Active || target.user.status != UserStatus::Active {
                return Err(ApiError::new(
                    ProblemKind::MemberNotActive,
                    "Ownership can only go to an active member.",
                ));
            }
            let owner = roles::find_builtin(conn, &tenant.root, BuiltinRole::Owner)?
                .ok_or_else(|| ApiError::internal("owner role missing"))?;
            let admin = roles::find_builtin(conn, &tenant.root, BuiltinRole::Admin)?
                .ok_or_else(|| ApiError::internal("admin role missing"))?;
            let now = st.clock.now();
            memberships::set_roles(conn, &target.membership.id, std::slice::from_ref(&owner.id), now)?;
            memberships::set_roles(conn, &tenant.membership.id, std::slice::from_ref(&admin.id), now)?;
            // The new owner reaches the whole organization.
            memberships::move_to(conn, &target.membership.id, &tenant.root, now)?;
            audit::record(
                conn,
                &principal.audit(),
                AuditEntry {
                    action: AuditAction::AccountOwnershipTransferred,
                    target_type: "account",
                    target_id: tenant.root.as_str(),
                    details: json!({ "from": principal.user.id, "to": target.user.id }),
                },
                now,
            )?;
            Ok(OwnershipTransferred {
                owner: load_member(conn, &tenant.root, target.user.id.as_str())?.view(),
                previous_owner: load_member(conn, &tenant.root, principal.user.id.as_str())?.view(),
            })
        })
        .await?;
    Ok(web::Json(result))
}

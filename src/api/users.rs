//! Users inside an account: list, read, create with an initial password, edit, set roles,
//! move in the tree, and transfer ownership. Each handler parses its request into a command
//! once and calls one function of `service::members`, where the rules are.

use actix_web::{get, patch, post, put, web, HttpResponse};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use utoipa::{IntoParams, ToSchema};
use validator::ValidationError;

use crate::api::extract::{at_most, not_empty, Body, IfMatch, Query};
use crate::api::pagination::PageRequest;
use crate::api::views::{versioned, MemberView};
use crate::api::MAX_ROLE_IDS;
use crate::auth::extract::Principal;
use crate::domain::{self, Email, MembershipStatus, NewPassword, Username};
use crate::error::{field_error, ApiError, FieldError, Problem};
use crate::ids::UserId;
use crate::service::members::{self, Member, MemberQuery, NewMember, Preferences, ProfileChanges};
use crate::service::{self, versions};
use crate::state::AppState;

fn view(member: &Member) -> MemberView {
    MemberView::new(&member.membership, &member.user, &member.roles)
}

/// Text of `min` to `max` characters, kept as given; worded like every length error.
fn sized(raw: &str, min: usize, max: usize) -> Result<String, ValidationError> {
    let n = raw.chars().count();
    if (min..=max).contains(&n) {
        return Ok(raw.to_string());
    }
    let message = if min == 0 {
        format!("must be at most {max} characters long")
    } else {
        format!("must be {min} to {max} characters long")
    };
    Err(ValidationError::new("length").with_message(Cow::Owned(message)))
}

/// An optional field, parsed when present.
fn optional<T>(
    field: &'static str,
    raw: Option<&str>,
    parse: impl Fn(&str) -> Result<T, ValidationError>,
) -> Result<Option<T>, ApiError> {
    raw.map(parse).transpose().map_err(field_error(field))
}

/// One problem naming every invalid field of a body at once, in field order (R14).
fn every_field(results: &[Option<&ApiError>]) -> Result<(), ApiError> {
    let mut errors: Vec<FieldError> = results
        .iter()
        .flatten()
        .flat_map(|e| e.errors().iter().cloned())
        .collect();
    if errors.is_empty() {
        return Ok(());
    }
    errors.sort_by(|a, b| a.field.cmp(&b.field));
    Err(ApiError::validation(errors))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListUsersQuery {
    /// `active` or `deactivated` (the membership's status).
    pub status: Option<MembershipStatus>,
    /// `true`: only archived users (R11); otherwise archived users are left out.
    pub archived: Option<bool>,
    /// Only users who hold this role (`rol_…`).
    pub role: Option<String>,
    /// Only users whose membership sits at or below this node (`acc_…`).
    pub node: Option<String>,
    /// Case-insensitive text in first or last name, email or username.
    #[param(max_length = 100)]
    pub q: Option<String>,
    /// The integrator's id.
    pub external_id: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl ListUsersQuery {
    /// The page asked for and the filters, checked; the filters' ids are resolved by the service.
    fn command(self) -> Result<(PageRequest, MemberQuery), ApiError> {
        let page = PageRequest::parse(self.limit, self.cursor.as_deref(), |id| UserId::parse(id).is_some())?;
        let text = self.q.map(|q| q.trim().to_string()).filter(|q| !q.is_empty());
        if text.as_ref().is_some_and(|t| t.chars().count() > 100) {
            return Err(ApiError::field("q", "length", "must be at most 100 characters long"));
        }
        let query = MemberQuery {
            status: self.status,
            archived: self.archived.unwrap_or(false),
            role: self.role,
            node: self.node,
            text,
            external_id: self.external_id,
            after: page.after.clone(),
            limit: page.fetch(),
        };
        Ok((page, query))
    }
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
    let (page, query) = query.into_inner().command()?;
    let mut rows = service::read(&state, move |tx| members::list(tx, &principal, query)).await?;
    let next_cursor = page.finish(&mut rows, |m| m.user.id.as_str());
    let items = rows
        .iter()
        .map(|m| MemberView::new(&m.membership, &m.user, &m.roles))
        .collect();
    Ok(web::Json(MemberPage { items, next_cursor }))
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
    path: web::Path<UserId>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let member = service::read(&state, move |tx| members::get(tx, &principal, &id)).await?;
    Ok(versioned(versions::of_member(&member), &view(&member)))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesInput {
    /// The first page the user sees after logging in.
    #[schema(max_length = 100)]
    pub default_landing_page: Option<String>,
    /// The contact profile tab shown first.
    #[schema(max_length = 100)]
    pub default_contact_tab: Option<String>,
    pub show_calendar: Option<bool>,
    pub daily_email_reminders: Option<bool>,
}

impl TryFrom<PreferencesInput> for Preferences {
    type Error = ApiError;

    fn try_from(p: PreferencesInput) -> Result<Self, ApiError> {
        let landing = optional(
            "preferences.default_landing_page",
            p.default_landing_page.as_deref(),
            |s| sized(s, 0, 100),
        );
        let tab = optional(
            "preferences.default_contact_tab",
            p.default_contact_tab.as_deref(),
            |s| sized(s, 0, 100),
        );
        every_field(&[landing.as_ref().err(), tab.as_ref().err()])?;
        Ok(Self {
            default_landing_page: landing?,
            default_contact_tab: tab?,
            show_calendar: p.show_calendar,
            daily_email_reminders: p.daily_email_reminders,
        })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    #[schema(min_length = 3, max_length = 64, pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    pub username: Option<String>,
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub first_name: String,
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub last_name: String,
    #[schema(max_length = 40)]
    pub phone: Option<String>,
    /// The initial password; the user must change it at first login.
    #[schema(min_length = 8, max_length = 256, pattern = r"\S")]
    pub password: String,
    /// One or more roles of this account (`rol_…`).
    #[schema(min_items = 1, max_items = 50)]
    pub role_ids: Vec<String>,
    /// The node the membership sits at; defaults to the caller's own node.
    pub account_id: Option<String>,
    /// The integrator's own id for this user, unique within the organization.
    #[schema(min_length = 1, max_length = 200)]
    pub external_id: Option<String>,
    pub preferences: Option<PreferencesInput>,
}

impl TryFrom<CreateUser> for NewMember {
    type Error = ApiError;

    fn try_from(b: CreateUser) -> Result<Self, ApiError> {
        let email = Email::parse(&b.email).map_err(field_error("email"));
        let username = optional("username", b.username.as_deref(), Username::parse);
        let first_name = domain::parse_name(&b.first_name).map_err(field_error("first_name"));
        let last_name = domain::parse_name(&b.last_name).map_err(field_error("last_name"));
        let phone = optional("phone", b.phone.as_deref(), |p| sized(p, 0, 40));
        let password = NewPassword::parse(&b.password).map_err(field_error("password"));
        let role_count = at_most("role_ids", &b.role_ids, MAX_ROLE_IDS);
        let external_id = optional("external_id", b.external_id.as_deref(), |e| sized(e, 1, 200));
        let preferences = Preferences::try_from(b.preferences.unwrap_or_default());
        every_field(&[
            email.as_ref().err(),
            username.as_ref().err(),
            first_name.as_ref().err(),
            last_name.as_ref().err(),
            phone.as_ref().err(),
            password.as_ref().err(),
            role_count.as_ref().err(),
            external_id.as_ref().err(),
            preferences.as_ref().err(),
        ])?;
        Ok(Self {
            email: email?,
            username: username?,
            first_name: first_name?,
            last_name: last_name?,
            // Trimmed, as given: an initial phone of spaces stays empty rather than absent.
            phone: phone?.map(|p| p.trim().to_string()),
            password: Some(password?),
            role_ids: b.role_ids,
            account_id: b.account_id,
            external_id: external_id?,
            preferences: preferences?,
            scim_user_name: None,
        })
    }
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
    let cmd = NewMember::try_from(body.into_inner())?;
    let member = members::create(&state, principal, cmd).await?;
    Ok(HttpResponse::Created().json(view(&member)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub first_name: Option<String>,
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub last_name: Option<String>,
    /// Send null to clear.
    #[serde(default, deserialize_with = "crate::api::nullable")]
    #[schema(max_length = 40)]
    pub phone: Option<Option<String>>,
    #[schema(min_length = 3, max_length = 64, pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    pub username: Option<String>,
    /// Send null to clear. Unique within the organization.
    #[serde(default, deserialize_with = "crate::api::nullable")]
    #[schema(min_length = 1, max_length = 200)]
    pub external_id: Option<Option<String>>,
    pub preferences: Option<PreferencesInput>,
}

impl TryFrom<UpdateUser> for ProfileChanges {
    type Error = ApiError;

    fn try_from(b: UpdateUser) -> Result<Self, ApiError> {
        let first_name = optional("first_name", b.first_name.as_deref(), domain::parse_name);
        let last_name = optional("last_name", b.last_name.as_deref(), domain::parse_name);
        let phone = b
            .phone
            .map(|p| optional("phone", p.as_deref(), |s| sized(s, 0, 40)))
            .transpose();
        let username = optional("username", b.username.as_deref(), Username::parse);
        let external_id = b
            .external_id
            .map(|e| optional("external_id", e.as_deref(), |s| sized(s, 1, 200)))
            .transpose();
        let preferences = Preferences::try_from(b.preferences.unwrap_or_default());
        every_field(&[
            first_name.as_ref().err(),
            last_name.as_ref().err(),
            phone.as_ref().err(),
            username.as_ref().err(),
            external_id.as_ref().err(),
            preferences.as_ref().err(),
        ])?;
        Ok(Self {
            first_name: first_name?,
            last_name: last_name?,
            // A phone of spaces clears it.
            phone: phone?.map(|p| p.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())),
            username: username?,
            external_id: external_id?,
            preferences: preferences?,
            ..ProfileChanges::default()
        })
    }
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
    path: web::Path<UserId>,
    if_match: IfMatch,
    body: Body<UpdateUser>,
) -> Result<HttpResponse, ApiError> {
    let cmd = ProfileChanges::try_from(body.into_inner())?;
    let id = path.into_inner();
    let member = service::write_if(&state, if_match.0, move |tx| members::update(tx, &principal, &id, cmd)).await?;
    Ok(versioned(versions::of_member(&member), &view(&member)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRoles {
    /// The complete new set of roles (`rol_…`), at least one.
    #[schema(min_items = 1, max_items = 50)]
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
    path: web::Path<UserId>,
    if_match: IfMatch,
    body: Body<SetRoles>,
) -> Result<HttpResponse, ApiError> {
    let role_ids = body.into_inner().role_ids;
    not_empty("role_ids", &role_ids, "role")?;
    at_most("role_ids", &role_ids, MAX_ROLE_IDS)?;
    let id = path.into_inner();
    let member = service::write_if(&state, if_match.0, move |tx| {
        members::set_roles(tx, &principal, &id, &role_ids)
    })
    .await?;
    Ok(versioned(versions::of_member(&member), &view(&member)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveMembership {
    /// The node (`acc_…`) the membership moves to, in the same organization.
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
    path: web::Path<UserId>,
    if_match: IfMatch,
    body: Body<MoveMembership>,
) -> Result<HttpResponse, ApiError> {
    let node = sized(&body.into_inner().account_id, 1, 64).map_err(field_error("account_id"))?;
    let id = path.into_inner();
    let member = service::write_if(&state, if_match.0, move |tx| {
        members::move_to(tx, &principal, &id, &node)
    })
    .await?;
    Ok(versioned(versions::of_member(&member), &view(&member)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferOwnership {
    /// The member (`usr_…`) who becomes an owner in the caller's place.
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
    let to = sized(&body.into_inner().user_id, 1, 64).map_err(field_error("user_id"))?;
    let done = service::write(&state, move |tx| members::transfer_ownership(tx, &principal, &to)).await?;
    Ok(web::Json(OwnershipTransferred {
        owner: view(&done.owner),
        previous_owner: view(&done.previous_owner),
    }))
}

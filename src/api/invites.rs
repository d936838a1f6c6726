//! Invitations (R6): invite, list, resend, copy link, revoke, and the public side —
//! preview and accept by token, exactly once. The rules live in `service::invites`.

use actix_web::http::header::AUTHORIZATION;
use actix_web::http::StatusCode;
use actix_web::{get, post, web, FromRequest, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::ValidationError;

use crate::api::extract::{at_most, Body, Query};
use crate::api::views::{utc, AccountSummary, MembershipView, RoleRef, TokenResponse};
use crate::api::MAX_ROLE_IDS;
use crate::auth::extract::Principal;
use crate::domain::{self, Email, InviteStatus, NewPassword, Username};
use crate::error::{field_error, ApiError, FieldError, Problem};
use crate::ids::InviteId;
use crate::request_id::RequestId;
use crate::service;
use crate::service::invites::{self, Acceptance, Invitation, InvitationFilter, Joined, LinkToken, NewInvitation};
use crate::state::AppState;

/// An invitation as its account's administrators see it. The token is never shown;
/// `registration_url` appears only right after it was (re)generated for copying.
#[derive(Debug, Serialize, ToSchema)]
pub struct InviteView {
    pub id: String,
    pub email: String,
    /// The node the membership will sit at.
    pub account_id: String,
    pub roles: Vec<RoleRef>,
    /// `pending`, `accepted`, `revoked` or `expired` (computed from `expires_at`).
    pub status: InviteStatus,
    /// The user (`usr_…`) who sent it.
    pub invited_by: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    #[schema(required = true)]
    pub accepted_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The user who accepted it.
    #[schema(required = true)]
    pub accepted_user_id: Option<String>,
    #[schema(required = true)]
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
    /// True when every granted role is `limited` or `guest`: such users see only records
    /// assigned to them, so assign their records after they register.
    pub requires_record_assignment: bool,
    /// The link to hand over, present only in the answer that generated it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub registration_url: Option<String>,
}

impl From<Invitation> for InviteView {
    fn from(found: Invitation) -> Self {
        let invite = found.invite;
        Self {
            id: invite.id.to_string(),
            email: invite.email,
            account_id: invite.account_id.to_string(),
            roles: found.roles.iter().map(RoleRef::from).collect(),
            status: found.status,
            invited_by: invite.invited_by.to_string(),
            expires_at: utc(invite.expires_at),
            created_at: utc(invite.created_at),
            accepted_at: invite.accepted_at.map(utc),
            accepted_user_id: invite.accepted_user_id,
            revoked_at: invite.revoked_at.map(utc),
            requires_record_assignment: found.requires_record_assignment,
            registration_url: found.registration_url,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInvite {
    #[schema(example = "grace@example.com", format = Email, max_length = 254)]
    pub email: String,
    /// One or more roles of this account (`rol_…`); never beyond the inviter's own permissions.
    #[schema(min_items = 1, max_items = 50)]
    pub role_ids: Vec<String>,
    /// The node the membership will sit at; defaults to the inviter's own node.
    pub account_id: Option<String>,
    /// Email the link (default), or only return it to copy ("copy link").
    #[serde(default = "default_true")]
    pub send_email: bool,
}

fn default_true() -> bool {
    true
}

impl CreateInvite {
    fn command(self) -> Result<NewInvitation, ApiError> {
        at_most("role_ids", &self.role_ids, MAX_ROLE_IDS)?;
        Ok(NewInvitation {
            email: Email::parse(&self.email).map_err(field_error("email"))?,
            role_ids: self.role_ids,
            account_id: self.account_id,
            send_email: self.send_email,
        })
    }
}

/// Invite someone by email.
///
/// One pending invitation per email per organization; inviting an existing member is a
/// conflict that names the member. With `send_email: false` the registration link is
/// returned instead of mailed.
#[utoipa::path(
    tag = "invites",
    operation_id = "createInvite",
    security(("bearer" = [])),
    request_body = CreateInvite,
    responses(
        (status = 201, description = "Invited", body = InviteView),
        (status = 403, description = "Needs users.invite at the node, and every permission of the granted roles", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such account in the caller's organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already a member, or already invited", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/invites")]
pub async fn create_invite(
    state: web::Data<AppState>,
    principal: Principal,
    body: Body<CreateInvite>,
) -> Result<HttpResponse, ApiError> {
    let cmd = body.into_inner().command()?;
    let created = service::write(&state, move |tx| invites::create(tx, &principal, cmd)).await?;
    Ok(HttpResponse::Created().json(InviteView::from(created)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListInvitesQuery {
    /// `pending`, `accepted`, `revoked` or `expired`.
    pub status: Option<InviteStatus>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvitePage {
    pub items: Vec<InviteView>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// List invitations within the caller's reach, oldest first.
#[utoipa::path(
    tag = "invites",
    operation_id = "listInvites",
    security(("bearer" = [])),
    params(ListInvitesQuery),
    responses(
        (status = 200, description = "One page of invitations", body = InvitePage),
        (status = 403, description = "Needs users.invite", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A filter or the cursor is invalid", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/invites")]
pub async fn list_invites(
    state: web::Data<AppState>,
    principal: Principal,
    query: Query<ListInvitesQuery>,
) -> Result<web::Json<InvitePage>, ApiError> {
    let query = query.into_inner();
    let filter = InvitationFilter {
        status: query.status,
        limit: query.limit,
        cursor: query.cursor,
    };
    let page = service::read(&state, move |tx| invites::list(tx, &principal, filter)).await?;
    Ok(web::Json(InvitePage {
        items: page.items.into_iter().map(InviteView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Read one invitation.
#[utoipa::path(
    tag = "invites",
    operation_id = "getInvite",
    security(("bearer" = [])),
    params(("invite_id" = String, Path, description = "An invitation id (`inv_…`)", pattern = r"^inv_[0-9A-Za-z]{26}$")),
    responses(
        (status = 200, description = "The invitation", body = InviteView),
        (status = 403, description = "Needs users.invite over the invitation's node", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such invitation in the caller's organization", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/invites/{invite_id}")]
pub async fn get_invite(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<InviteId>,
) -> Result<web::Json<InviteView>, ApiError> {
    let id = path.into_inner();
    let found = service::read(&state, move |tx| invites::get(tx, &principal, &id)).await?;
    Ok(web::Json(InviteView::from(found)))
}

/// Send the invitation again: a new link, the clock restarted, the old link dead.
#[utoipa::path(
    tag = "invites",
    operation_id = "resendInvite",
    security(("bearer" = [])),
    params(("invite_id" = String, Path, description = "An invitation id (`inv_…`)", pattern = r"^inv_[0-9A-Za-z]{26}$")),
    responses(
        (status = 200, description = "Sent again", body = InviteView),
        (status = 403, description = "Needs users.invite over the invitation's node", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such invitation in the caller's organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already accepted or revoked", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/invites/{invite_id}/resend")]
pub async fn resend_invite(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<InviteId>,
) -> Result<web::Json<InviteView>, ApiError> {
    let id = path.into_inner();
    let resent = service::write(&state, move |tx| invites::resend(tx, &principal, &id)).await?;
    Ok(web::Json(InviteView::from(resent)))
}

/// Get a fresh registration link to copy; the old link stops working and no email is sent.
///
/// Links are stored only as hashes, so an existing link can never be read back: this
/// rotates it and restarts the clock.
#[utoipa::path(
    tag = "invites",
    operation_id = "copyInviteLink",
    security(("bearer" = [])),
    params(("invite_id" = String, Path, description = "An invitation id (`inv_…`)", pattern = r"^inv_[0-9A-Za-z]{26}$")),
    responses(
        (status = 200, description = "The invitation with its new `registration_url`", body = InviteView),
        (status = 403, description = "Needs users.invite over the invitation's node", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such invitation in the caller's organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already accepted or revoked", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/invites/{invite_id}/link")]
pub async fn copy_invite_link(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<InviteId>,
) -> Result<web::Json<InviteView>, ApiError> {
    let id = path.into_inner();
    let copied = service::write(&state, move |tx| invites::copy_link(tx, &principal, &id)).await?;
    Ok(web::Json(InviteView::from(copied)))
}

/// Cancel a pending invitation; its link stops working.
#[utoipa::path(
    tag = "invites",
    operation_id = "revokeInvite",
    security(("bearer" = [])),
    params(("invite_id" = String, Path, description = "An invitation id (`inv_…`)", pattern = r"^inv_[0-9A-Za-z]{26}$")),
    responses(
        (status = 200, description = "Revoked", body = InviteView),
        (status = 403, description = "Needs users.invite over the invitation's node", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such invitation in the caller's organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already accepted or revoked", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/invites/{invite_id}/revoke")]
pub async fn revoke_invite(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<InviteId>,
) -> Result<web::Json<InviteView>, ApiError> {
    let id = path.into_inner();
    let revoked = service::write(&state, move |tx| invites::revoke(tx, &principal, &id)).await?;
    Ok(web::Json(InviteView::from(revoked)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitationToken {
    /// The token from the registration link.
    #[schema(min_length = 1, max_length = 256)]
    pub token: String,
}

impl InvitationToken {
    fn command(self) -> Result<LinkToken, ApiError> {
        LinkToken::parse(&self.token).map_err(field_error("token"))
    }
}

/// What the person holding a link may see before registering.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationPreview {
    /// The organization's name.
    pub account_name: String,
    pub inviter_name: String,
    pub email: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// See who invited you where, by the link's token (no authentication).
#[utoipa::path(
    tag = "invites",
    operation_id = "previewInvitation",
    request_body = InvitationToken,
    responses(
        (status = 200, description = "The invitation, briefly", body = InvitationPreview),
        (status = 404, description = "Unknown, used, revoked, replaced or expired link (indistinguishable)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/invitations/preview")]
pub async fn preview_invitation(
    state: web::Data<AppState>,
    body: Body<InvitationToken>,
) -> Result<web::Json<InvitationPreview>, ApiError> {
    let token = body.into_inner().command()?;
    let found = service::read(&state, move |tx| invites::preview(tx, &token)).await?;
    Ok(web::Json(InvitationPreview {
        account_name: found.account.name,
        inviter_name: format!("{} {}", found.inviter.first_name, found.inviter.last_name),
        email: found.invite.email,
        expires_at: utc(found.invite.expires_at),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitation {
    /// The token from the registration link.
    #[schema(min_length = 1, max_length = 256)]
    pub token: String,
    /// For a new person: required.
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub first_name: Option<String>,
    /// For a new person: required.
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub last_name: Option<String>,
    /// For a new person: optional login name.
    #[schema(min_length = 3, max_length = 64, pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    pub username: Option<String>,
    /// For a new person: required, 8 to 256 characters, not one of the most common passwords.
    #[schema(min_length = 8, max_length = 256, pattern = r"\S")]
    pub password: Option<String>,
}

impl AcceptInvitation {
    /// Every invalid field at once, in field order; a missing name or password is decided
    /// later, since an existing user sends the token alone.
    fn command(self) -> Result<Acceptance, ApiError> {
        let mut errors = Vec::new();
        let token = parsed(&mut errors, "token", Some(&self.token), LinkToken::parse);
        let first_name = parsed(
            &mut errors,
            "first_name",
            self.first_name.as_deref(),
            domain::parse_name,
        );
        let last_name = parsed(&mut errors, "last_name", self.last_name.as_deref(), domain::parse_name);
        let username = parsed(&mut errors, "username", self.username.as_deref(), Username::parse);
        let password = parsed(&mut errors, "password", self.password.as_deref(), NewPassword::parse);
        match token {
            Some(token) if errors.is_empty() => Ok(Acceptance {
                token,
                first_name,
                last_name,
                username,
                password,
            }),
            _ => {
                errors.sort_by(|a, b| a.field.cmp(&b.field));
                Err(ApiError::validation(errors))
            }
        }
    }
}

/// Parses a field that may be absent; an invalid one is added to `errors`.
fn parsed<T>(
    errors: &mut Vec<FieldError>,
    field: &'static str,
    raw: Option<&str>,
    parse: impl Fn(&str) -> Result<T, ValidationError>,
) -> Option<T> {
    match parse(raw?) {
        Ok(value) => Some(value),
        Err(e) => {
            errors.extend_from_slice(field_error(field)(e).errors());
            None
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AcceptedInvitation {
    /// The organization joined.
    pub account: AccountSummary,
    pub membership: MembershipView,
    /// For a person who just registered: their new session, scoped to the account.
    /// Absent for an existing user, who keeps their session and can switch accounts.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub session: Option<TokenResponse>,
    /// True when the granted roles see only assigned records: assign them now.
    pub requires_record_assignment: bool,
}

impl From<Joined> for AcceptedInvitation {
    fn from(joined: Joined) -> Self {
        Self {
            account: AccountSummary::from(&joined.account),
            membership: MembershipView::new(&joined.membership, &joined.roles),
            session: joined.session.map(TokenResponse::from),
            requires_record_assignment: joined.requires_record_assignment,
        }
    }
}

/// Accept an invitation.
///
/// A new person registers with the token, names and a password, and is logged in. A person
/// who already has a user logs in first and calls this with their access token and the
/// token alone; the invitation's email must be theirs. Exactly one accept succeeds, however
/// many race for the same token.
#[utoipa::path(
    tag = "invites",
    operation_id = "acceptInvitation",
    security((), ("bearer" = [])),
    request_body = AcceptInvitation,
    responses(
        (status = 201, description = "Registered and joined; logged in", body = AcceptedInvitation),
        (status = 200, description = "An existing user joined the account", body = AcceptedInvitation),
        (status = 401, description = "An access token was sent but is not valid", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The invitation is for another email address", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown, used, revoked, replaced or expired link (indistinguishable)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A user with this email exists (log in first), or already a member", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/invitations/accept")]
pub async fn accept_invitation(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Body<AcceptInvitation>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    let acceptance = body.into_inner().command()?;
    let (status, joined) = match bearer_principal(&req).await? {
        Some(principal) => (
            StatusCode::OK,
            service::write(&state, move |tx| {
                invites::accept_as_user(tx, &principal, acceptance.token)
            })
            .await?,
        ),
        None => (
            StatusCode::CREATED,
            invites::accept_as_new_person(&state, acceptance, request_id.0).await?,
        ),
    };
    Ok(HttpResponse::build(status).json(AcceptedInvitation::from(joined)))
}

/// The caller, when the request carries an access token: accepting works with or without one.
async fn bearer_principal(req: &HttpRequest) -> Result<Option<Principal>, ApiError> {
    if !req.headers().contains_key(AUTHORIZATION) {
        return Ok(None);
    }
    Principal::extract(req).await.map(Some)
}

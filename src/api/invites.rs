//! Invitations (R6): invite, list, resend, copy link, revoke, and the public side —
//! preview and accept by token, exactly once.

use actix_web::http::header::AUTHORIZATION;
use actix_web::{get, post, web, FromRequest, HttpRequest, HttpResponse};
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::api::extract::{Body, Query};
use crate::api::pagination::PageRequest;
use crate::api::views::TokenResponse;
use crate::api::views::{utc, AccountSummary, MembershipView, RoleRef};
use crate::auth::extract::Principal;
use crate::auth::policy;
use crate::auth::secrets;
use crate::db::models::{AccountRow, InviteRow, NewInvite, RoleRow, UserRow};
use crate::db::repo::audit::{self, AuditContext, AuditEntry};
use crate::db::repo::invites::{self, InviteFilter};
use crate::db::repo::notifications::{self, Outgoing};
use crate::db::repo::{accounts, memberships, users};
use crate::db::DbConnection;
use crate::domain::permissions::{BuiltinRole, Permission};
use crate::domain::AuditAction;
use crate::domain::NotificationKind;
use crate::domain::{self, AccountStatus, Email, InviteStatus, NewPassword, Username};
use crate::error::{field_error, ApiError, FieldError, Problem, ProblemKind};
use crate::identity::{self, to_chrono};
use crate::ids::{AccountId, InviteId, RoleId, UserId};
use crate::request_id::RequestId;
use crate::service::sessions::issue_tokens_with;
use crate::service::{accounts as accounts_svc, roles as roles_svc};
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

fn requires_assignment(roles: &[RoleRow]) -> bool {
    !roles.is_empty()
        && roles
            .iter()
            .all(|r| matches!(r.builtin, Some(BuiltinRole::Limited | BuiltinRole::Guest)))
}

fn view(invite: &InviteRow, roles: &[RoleRow], now: NaiveDateTime, registration_url: Option<String>) -> InviteView {
    InviteView {
        id: invite.id.to_string(),
        email: invite.email.clone(),
        account_id: invite.account_id.to_string(),
        roles: roles.iter().map(RoleRef::from).collect(),
        status: invite.state(now),
        invited_by: invite.invited_by.to_string(),
        expires_at: utc(invite.expires_at),
        created_at: utc(invite.created_at),
        accepted_at: invite.accepted_at.map(utc),
        accepted_user_id: invite.accepted_user_id.clone(),
        revoked_at: invite.revoked_at.map(utc),
        requires_record_assignment: requires_assignment(roles),
        registration_url,
    }
}

fn registration_url(state: &AppState, token: &str) -> String {
    format!("{}/accept-invite?token={token}", state.config.public_url)
}

/// Writes the invitation email to the outbox.
fn enqueue_invite_mail(
    conn: &mut DbConnection,
    state: &AppState,
    invite: &InviteRow,
    inviter: &UserRow,
    account: &AccountRow,
    link: &str,
    now: NaiveDateTime,
) -> Result<(), ApiError> {
    let days = state.config.invite_ttl.as_secs() / 86_400;
    notifications::enqueue(
        conn,
        Outgoing {
            kind: NotificationKind::Invite,
            account_id: Some(invite.root_account_id.to_string()),
            recipient_user_id: None,
            recipient_email: invite.email.clone(),
            on_behalf_of_user_id: None,
            subject: format!(
                "{} {} invited you to {}",
                inviter.first_name, inviter.last_name, account.name
            ),
            body: format!(
                "Hello,\n\n{} {} invited you to join {}. Register within {days} days with this link:\n{link}\n",
                inviter.first_name, inviter.last_name, account.name
            ),
            payload: json!({ "invite_id": invite.id, "link": link, "expires_at": utc(invite.expires_at) }),
        },
        now,
    )?;
    Ok(())
}

fn load_invite(conn: &mut DbConnection, principal: &Principal, raw: &str) -> Result<(InviteRow, AccountRow), ApiError> {
    let tenant = policy::tenant(principal)?;
    let missing = || ApiError::not_found("invitation");
    let id = InviteId::parse(raw).ok_or_else(missing)?;
    let invite = invites::find_in(conn, &tenant.root, &id)?.ok_or_else(missing)?;
    let node = accounts::find(conn, &invite.account_id)?.ok_or_else(missing)?;
    policy::require_on(principal, Permission::UsersInvite, &node)?;
    Ok((invite, node))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInvite {
    #[validate(custom(function = "domain::check_email"))]
    #[schema(example = "grace@example.com", format = Email, max_length = 254)]
    pub email: String,
    /// One or more roles of this account (`rol_…`); never beyond the inviter's own permissions.
    #[schema(min_items = 1)]
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
    let body = body.into_inner();
    body.validate()?;
    let email = Email::parse(&body.email).map_err(field_error("email"))?;
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
            policy::require_on(&principal, Permission::UsersInvite, &node)?;
            if node.status != AccountStatus::Active {
                return Err(ApiError::new(ProblemKind::AccountClosed, "That account is closed."));
            }
            let granted = roles_svc::resolve(conn, &tenant.root, &body.role_ids)?;
            policy::require_grantable(tenant, &granted)?;
            let now = st.clock.now();
            ensure_not_a_member(conn, &tenant.root, email.normalized())?;
            if let Some(pending) = invites::live_for_email(conn, &tenant.root, email.normalized(), now)? {
                return Err(ApiError::new(ProblemKind::InviteAlreadyPending, format!(
                    "{} already has a pending invitation ({}); resend it or copy its link instead.",
                    email.as_str(),
                    pending.id
                )));
            }
            let token = secrets::new_token();
            let role_ids: Vec<RoleId> = granted.iter().map(|(r, _)| r.id.clone()).collect();
            let id = invites::insert(
                conn,
                NewInvite {
                    id: InviteId::generate(),
                    root_account_id: tenant.root.clone(),
                    account_id: node.id.clone(),
                    email: email.as_str().to_string(),
                    email_normalized: email.normalized().to_string(),
                    invited_by: principal.user.id.clone(),
                    token_hash: secrets::hash_token(&token),
                    status: InviteStatus::Pending,
                    send_email: body.send_email,
                    expires_at: now + to_chrono(st.config.invite_ttl),
                    created_at: now,
                    updated_at: now,
                },
                &role_ids,
            )?;
            let invite = invites::find_in(conn, &tenant.root, &id)?.ok_or_else(|| ApiError::internal("new invite vanished"))?;
            let link = registration_url(&st, &token);
            if body.send_email {
                enqueue_invite_mail(conn, &st, &invite, &principal.user, &tenant.account, &link, now)?;
            }
            audit::record(
                conn,
                &principal.audit(),
                AuditEntry {
                    action: AuditAction::InviteCreated,
                    target_type: "invite",
                    target_id: id.as_str(),
                    details: json!({ "email": invite.email, "account_id": node.id, "roles": role_ids, "send_email": body.send_email }),
                },
                now,
            )?;
            let roles: Vec<RoleRow> = granted.into_iter().map(|(r, _)| r).collect();
            Ok(view(&invite, &roles, now, (!body.send_email).then_some(link)))
        })
        .await?;
    Ok(HttpResponse::Created().json(created))
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
    let tenant = policy::require(&principal, Permission::UsersInvite)?.clone();
    let page_request = PageRequest::parse(query.limit, query.cursor.as_deref(), |id| InviteId::parse(id).is_some())?;
    let st = state.clone();
    let page = state
        .db
        .read(move |conn| {
            let now = st.clock.now();
            let filter = InviteFilter {
                within_path: tenant.node.path.clone(),
                state: query.status,
                after: page_request.after.clone(),
                limit: page_request.fetch(),
            };
            let mut rows = invites::page(conn, &tenant.root, &filter, now)?;
            let next_cursor = page_request.finish(&mut rows, |i| i.id.as_str());
            let ids: Vec<String> = rows.iter().map(|i| i.id.to_string()).collect();
            let held = invites::roles_of_many(conn, &ids)?;
            let items = rows
                .iter()
                .map(|i| {
                    let roles: Vec<RoleRow> = held
                        .iter()
                        .filter(|(id, _)| id == i.id.as_str())
                        .map(|(_, r)| r.clone())
                        .collect();
                    view(i, &roles, now, None)
                })
                .collect();
            Ok::<_, ApiError>(InvitePage { items, next_cursor })
        })
        .await?;
    Ok(web::Json(page))
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
    path: web::Path<String>,
) -> Result<web::Json<InviteView>, ApiError> {
    let raw = path.into_inner();
    let st = state.clone();
    let found = state
        .db
        .read(move |conn| {
            let (invite, _) = load_invite(conn, &principal, &raw)?;
            let roles = invites::roles_of(conn, &invite.id)?;
            Ok::<_, ApiError>(view(&invite, &roles, st.clock.now(), None))
        })
        .await?;
    Ok(web::Json(found))
}

/// Inviting someone who is already a member is a conflict (R6), whatever their membership's
/// state.
fn ensure_not_a_member(conn: &mut DbConnection, root: &AccountId, email_normalized: &str) -> Result<(), ApiError> {
    if let Some(existing) = users::find_by_email(conn, email_normalized)? {
        if let Some(m) = memberships::find_for_user_in(conn, &existing.id, root)? {
            return Err(ApiError::new(
                ProblemKind::AlreadyMember,
                format!(
                    "{} is already a member of this organization ({}, membership {}).",
                    existing.email, existing.id, m.status
                ),
            ));
        }
    }
    Ok(())
}

/// Rotates the token and restarts the clock; with `send`, mails the new link.
async fn rotate(
    state: web::Data<AppState>,
    principal: Principal,
    raw: String,
    send: bool,
) -> Result<InviteView, ApiError> {
    let st = state.clone();
    state
        .db
        .write(move |conn| {
            let principal = principal.lock_tenant(conn)?;
            let root = policy::tenant(&principal)?.root.clone();
            let (invite, _) = load_invite(conn, &principal, &raw)?;
            let now = st.clock.now();
            match invite.state(now) {
                InviteStatus::Accepted => {
                    return Err(ApiError::new(
                        ProblemKind::InviteNotPending,
                        "This invitation was already accepted.",
                    ))
                }
                InviteStatus::Revoked => {
                    return Err(ApiError::new(
                        ProblemKind::InviteNotPending,
                        "This invitation was revoked; invite again instead.",
                    ))
                }
                InviteStatus::Pending | InviteStatus::Expired => {}
            }
            ensure_not_a_member(conn, &root, &invite.email_normalized)?;
            // One live invitation per address (R6): an expired one comes back to life only
            // when no newer invitation to the same address is pending.
            if let Some(other) = invites::live_for_email(conn, &root, &invite.email_normalized, now)? {
                if other.id != invite.id {
                    return Err(ApiError::new(
                        ProblemKind::InviteAlreadyPending,
                        format!(
                            "{} has a newer pending invitation ({}); resend or copy that one instead.",
                            invite.email, other.id
                        ),
                    ));
                }
            }
            let token = secrets::new_token();
            let expires_at = now + to_chrono(st.config.invite_ttl);
            if !invites::rotate(conn, &invite.id, &secrets::hash_token(&token), expires_at, now)? {
                return Err(ApiError::new(
                    ProblemKind::InviteNotPending,
                    "This invitation is no longer pending.",
                ));
            }
            let invite = invites::find_in(conn, &root, &invite.id)?.ok_or_else(|| ApiError::not_found("invitation"))?;
            let roles = invites::roles_of(conn, &invite.id)?;
            let link = registration_url(&st, &token);
            if send {
                let account = accounts::find(conn, &root)?.ok_or_else(|| ApiError::internal("root account missing"))?;
                enqueue_invite_mail(conn, &st, &invite, &principal.user, &account, &link, now)?;
            }
            audit::record(
                conn,
                &principal.audit(),
                AuditEntry {
                    action: if send {
                        AuditAction::InviteResent
                    } else {
                        AuditAction::InviteLinkCopied
                    },
                    target_type: "invite",
                    target_id: invite.id.as_str(),
                    details: json!({ "expires_at": utc(invite.expires_at) }),
                },
                now,
            )?;
            Ok(view(&invite, &roles, now, (!send).then_some(link)))
        })
        .await
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
    path: web::Path<String>,
) -> Result<web::Json<InviteView>, ApiError> {
    Ok(web::Json(rotate(state, principal, path.into_inner(), true).await?))
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
    path: web::Path<String>,
) -> Result<web::Json<InviteView>, ApiError> {
    Ok(web::Json(rotate(state, principal, path.into_inner(), false).await?))
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
    path: web::Path<String>,
) -> Result<web::Json<InviteView>, ApiError> {
    let raw = path.into_inner();
    let st = state.clone();
    let revoked = state
        .db
        .write(move |conn| {
            let principal = principal.lock_tenant(conn)?;
            let (invite, _) = load_invite(conn, &principal, &raw)?;
            let now = st.clock.now();
            if !invites::revoke(conn, &invite.id, &principal.user.id, now)? {
                return Err(ApiError::new(
                    ProblemKind::InviteNotPending,
                    format!("This invitation is already {}.", invite.state(now)),
                ));
            }
            audit::record(
                conn,
                &principal.audit(),
                AuditEntry {
                    action: AuditAction::InviteRevoked,
                    target_type: "invite",
                    target_id: invite.id.as_str(),
                    details: json!({}),
                },
                now,
            )?;
            let invite = invites::find_in(conn, &invite.root_account_id, &invite.id)?
                .ok_or_else(|| ApiError::not_found("invitation"))?;
            let roles = invites::roles_of(conn, &invite.id)?;
            Ok(view(&invite, &roles, now, None))
        })
        .await?;
    Ok(web::Json(revoked))
}

fn invalid_link() -> ApiError {
    ApiError::not_found("invitation: the link is not valid (it may have expired, been replaced or been used)")
}

/// Finds the live invitation behind a token; unknown, spent, revoked, rotated-away and
/// expired tokens all answer the same.
fn live_invite(conn: &mut DbConnection, token_hash: &str, now: NaiveDateTime) -> Result<InviteRow, ApiError> {
    invites::find_by_token_hash(conn, token_hash)?
        .filter(|i| i.state(now) == InviteStatus::Pending)
        .ok_or_else(invalid_link)
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitationToken {
    /// The token from the registration link.
    #[validate(length(min = 1, max = 256))]
    #[schema(min_length = 1, max_length = 256)]
    pub token: String,
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
    let body = body.into_inner();
    body.validate()?;
    let hash = secrets::hash_token(&body.token);
    let st = state.clone();
    let preview = state
        .db
        .read(move |conn| {
            let invite = live_invite(conn, &hash, st.clock.now())?;
            let account = accounts::find(conn, &invite.root_account_id)?.ok_or_else(invalid_link)?;
            let inviter = users::find(conn, &invite.invited_by)?.ok_or_else(invalid_link)?;
            Ok::<_, ApiError>(InvitationPreview {
                account_name: account.name,
                inviter_name: format!("{} {}", inviter.first_name, inviter.last_name),
                email: invite.email,
                expires_at: utc(invite.expires_at),
            })
        })
        .await?;
    Ok(web::Json(preview))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitation {
    /// The token from the registration link.
    #[validate(length(min = 1, max = 256))]
    #[schema(min_length = 1, max_length = 256)]
    pub token: String,
    /// For a new person: required.
    #[validate(custom(function = "domain::check_name"))]
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub first_name: Option<String>,
    /// For a new person: required.
    #[validate(custom(function = "domain::check_name"))]
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub last_name: Option<String>,
    /// For a new person: optional login name.
    #[validate(custom(function = "domain::check_username"))]
    #[schema(min_length = 3, max_length = 64, pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    pub username: Option<String>,
    /// For a new person: required, 10 to 256 characters.
    #[validate(custom(function = "domain::check_new_password"))]
    #[schema(min_length = 10, max_length = 256, pattern = r"\S")]
    pub password: Option<String>,
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
    let body = body.into_inner();
    body.validate()?;
    let principal = if req.headers().contains_key(AUTHORIZATION) {
        Some(Principal::extract(&req).await?)
    } else {
        None
    };
    match principal {
        Some(principal) => accept_as_existing_user(state, principal, body)
            .await
            .map(|a| HttpResponse::Ok().json(a)),
        None => accept_as_new_user(state, body, request_id)
            .await
            .map(|a| HttpResponse::Created().json(a)),
    }
}

/// Adds the membership the invitation grants, after the invite was marked accepted.
fn join(
    conn: &mut DbConnection,
    invite: &InviteRow,
    user: &UserId,
    now: NaiveDateTime,
) -> Result<(AccountRow, MembershipView, bool), ApiError> {
    let node = accounts::find(conn, &invite.account_id)?.ok_or_else(invalid_link)?;
    if node.status != AccountStatus::Active {
        return Err(ApiError::new(
            ProblemKind::AccountClosed,
            "The account this invitation is for has been closed.",
        ));
    }
    if memberships::find_for_user_in(conn, user, &invite.root_account_id)?.is_some() {
        return Err(ApiError::new(
            ProblemKind::AlreadyMember,
            "You are already a member of this organization.",
        ));
    }
    let roles = invites::roles_of(conn, &invite.id)?;
    let role_ids: Vec<RoleId> = roles.iter().map(|r| r.id.clone()).collect();
    let id = memberships::insert(conn, memberships::new_active(user, &node, now), &role_ids)?;
    let membership = memberships::find_for_user_in(conn, user, &invite.root_account_id)?
        .filter(|m| m.id == id)
        .ok_or_else(|| ApiError::internal("new membership vanished"))?;
    let root = accounts::find(conn, &invite.root_account_id)?.ok_or_else(invalid_link)?;
    Ok((
        root,
        MembershipView::new(&membership, &roles),
        requires_assignment(&roles),
    ))
}

async fn accept_as_existing_user(
    state: web::Data<AppState>,
    principal: Principal,
    body: AcceptInvitation,
) -> Result<AcceptedInvitation, ApiError> {
    policy::forbid_delegated(&principal, "accept invitations")?;
    let hash = secrets::hash_token(&body.token);
    let st = state.clone();
    state
        .db
        .write(move |conn| {
            let now = st.clock.now();
            let invite = live_invite(conn, &hash, now)?;
            if invite.email_normalized != principal.user.email_normalized {
                return Err(ApiError::forbidden(
                    "This invitation was sent to another email address.",
                ));
            }
            accounts::lock_tenant(conn, &invite.root_account_id)?;
            if !invites::accept(conn, &invite, &hash, &principal.user.id, now)? {
                return Err(invalid_link());
            }
            let (root, membership, requires_record_assignment) = join(conn, &invite, &principal.user.id, now)?;
            let mut ctx = principal.audit();
            ctx.account = Some(invite.root_account_id.to_string());
            audit::record(
                conn,
                &ctx,
                AuditEntry {
                    action: AuditAction::InviteAccepted,
                    target_type: "invite",
                    target_id: invite.id.as_str(),
                    details: json!({ "user_id": principal.user.id, "new_user": false }),
                },
                now,
            )?;
            Ok(AcceptedInvitation {
                account: AccountSummary::from(&root),
                membership,
                session: None,
                requires_record_assignment,
            })
        })
        .await
}

async fn accept_as_new_user(
    state: web::Data<AppState>,
    body: AcceptInvitation,
    request_id: RequestId,
) -> Result<AcceptedInvitation, ApiError> {
    let mut missing = Vec::new();
    for (field, value) in [
        ("first_name", &body.first_name),
        ("last_name", &body.last_name),
        ("password", &body.password),
    ] {
        if value.is_none() {
            missing.push(FieldError::new(
                field,
                "required",
                "is required to register (or log in first to accept as an existing user)",
            ));
        }
    }
    if !missing.is_empty() {
        return Err(ApiError::validation(missing));
    }
    let first_name =
        domain::parse_name(body.first_name.as_deref().unwrap_or_default()).map_err(field_error("first_name"))?;
    let last_name =
        domain::parse_name(body.last_name.as_deref().unwrap_or_default()).map_err(field_error("last_name"))?;
    let username = body
        .username
        .as_deref()
        .map(Username::parse)
        .transpose()
        .map_err(field_error("username"))?;
    let password = NewPassword::parse(body.password.as_deref().unwrap_or_default()).map_err(field_error("password"))?;
    let hash = secrets::hash_token(&body.token);

    // Refuse early (before paying for a hash) what is sure to fail.
    let (lookup, st) = (hash.clone(), state.clone());
    state
        .db
        .read(move |conn| {
            let invite = live_invite(conn, &lookup, st.clock.now())?;
            if users::email_taken(conn, &invite.email_normalized)? {
                return Err(ApiError::new(
                    ProblemKind::EmailTaken,
                    "A user with this email already exists: log in, then accept the invitation.",
                ));
            }
            Ok(())
        })
        .await?;
    let password_hash = state.passwords.hash(password.expose().to_string()).await?;
    let st = state.clone();
    state
        .db
        .write(move |conn| {
            let now = st.clock.now();
            let invite = live_invite(conn, &hash, now)?;
            accounts::lock_tenant(conn, &invite.root_account_id)?;
            let email = Email::parse(&invite.email).map_err(field_error("email"))?;
            identity::ensure_identity_free(conn, &email, username.as_ref())?;
            let user_id = identity::insert_person(
                conn,
                identity::Person {
                    email: &email,
                    username: username.as_ref(),
                    first_name: &first_name,
                    last_name: &last_name,
                    phone: None,
                    password_hash: &password_hash,
                    must_change_password: false,
                },
                now,
            )?;
            // Only one of any number of concurrent accepts gets past this line; the others
            // roll back the user they were creating.
            if !invites::accept(conn, &invite, &hash, &user_id, now)? {
                return Err(invalid_link());
            }
            let (root, membership, requires_record_assignment) = join(conn, &invite, &user_id, now)?;
            let ctx = AuditContext {
                actor: Some(user_id.to_string()),
                effective: Some(user_id.to_string()),
                account: Some(invite.root_account_id.to_string()),
                request_id: Some(request_id.0.clone()),
            };
            audit::record(
                conn,
                &ctx,
                AuditEntry {
                    action: AuditAction::UserCreated,
                    target_type: "user",
                    target_id: user_id.as_str(),
                    details: json!({ "via_invite": invite.id }),
                },
                now,
            )?;
            audit::record(
                conn,
                &ctx,
                AuditEntry {
                    action: AuditAction::InviteAccepted,
                    target_type: "invite",
                    target_id: invite.id.as_str(),
                    details: json!({ "user_id": user_id, "new_user": true }),
                },
                now,
            )?;
            let opened = identity::open_session(
                conn,
                &user_id,
                Some(&invite.root_account_id),
                st.config.refresh_token_ttl,
                now,
            )?;
            let user = users::find(conn, &user_id)?.ok_or_else(|| ApiError::internal("new user vanished"))?;
            let session = issue_tokens_with(
                conn,
                &st.tokens,
                now,
                &opened.session,
                Some(opened.refresh_token),
                &user,
            )
            .map(TokenResponse::from)?;
            Ok(AcceptedInvitation {
                account: AccountSummary::from(&root),
                membership,
                session: Some(session),
                requires_record_assignment,
            })
        })
        .await
}

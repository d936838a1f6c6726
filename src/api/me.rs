//! The caller: who they are, who is really acting, where, and with which permissions.

use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use crate::api::extract::Body;
use crate::api::views::{utc, AccountSummary, PersonRef, RoleRef, UserView};
use crate::auth::extract::{Principal, SessionCaller, TenantContext};
use crate::db::models::UserRow;
use crate::domain::{Delegation, ImpersonationMode, NewPassword};
use crate::error::{ApiError, Problem};
use crate::service;
use crate::service::sessions::{self, ChangePassword};
use crate::state::AppState;

/// The caller's place in the account.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyMembership {
    pub id: String,
    /// The node the membership sits at; it reaches that node's whole subtree.
    pub node: AccountSummary,
    pub roles: Vec<RoleRef>,
}

/// Present when the session acts as another user (R8): draw the banner from it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActingAs {
    pub kind: Delegation,
    /// The real person behind the requests (the token's `act.sub`).
    pub actor: PersonRef,
    pub since: DateTime<Utc>,
    /// When the acting-as session ends by itself.
    pub expires_at: DateTime<Utc>,
    /// For an impersonation: `read_only` or `full`; null for a caretaker.
    #[schema(required = true)]
    pub mode: Option<ImpersonationMode>,
    /// For an impersonation: its id (`imp_…`), to end it; null for a caretaker.
    #[schema(required = true)]
    pub impersonation_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MeResponse {
    /// The effective user (the token's `sub`).
    pub user: UserView,
    /// The account the token is scoped to; null until one is picked.
    #[schema(required = true)]
    pub account: Option<AccountSummary>,
    /// The caller's membership in that account; null until one is picked.
    #[schema(required = true)]
    pub membership: Option<MyMembership>,
    /// Effective permissions in this account: the union of the membership's roles.
    pub permissions: Vec<String>,
    /// Null unless someone is acting as this user.
    #[schema(required = true)]
    pub acting_as: Option<ActingAs>,
    pub session: SessionView,
}

/// Who am I, and who is really acting?
#[utoipa::path(
    tag = "me",
    operation_id = "getMe",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller", body = MeResponse))
)]
#[get("/v1/me")]
pub async fn get_me(state: web::Data<AppState>, principal: Principal) -> Result<web::Json<MeResponse>, ApiError> {
    let person = crate::auth::policy::require_person(&principal, "read /v1/me, which describes a person")?;
    // Only a delegated session needs a look-up: the real actor, for the banner (R8).
    let actor = match person.delegation {
        None => None,
        Some(_) => {
            let actor = person.actor_id.clone();
            Some(service::read(&state, move |tx| sessions::real_actor(tx, &actor)).await?)
        }
    };
    Ok(web::Json(MeResponse::new(person, principal.tenant.as_ref(), actor)))
}

impl MeResponse {
    fn new(principal: &SessionCaller, tenant: Option<&TenantContext>, actor: Option<UserRow>) -> Self {
        let acting_as = principal.delegation.zip(actor).map(|(kind, actor)| ActingAs {
            kind,
            actor: PersonRef::from(&actor),
            since: utc(principal.session.created_at),
            expires_at: utc(principal.session.expires_at),
            mode: principal.impersonation.as_ref().map(|i| i.mode),
            impersonation_id: principal.impersonation.as_ref().map(|i| i.id.to_string()),
        });
        Self {
            user: UserView::from(&principal.user),
            account: tenant.map(|t| AccountSummary::from(&t.account)),
            membership: tenant
                .and_then(|t| t.membership.as_ref().map(|m| (t, m)))
                .map(|(t, m)| MyMembership {
                    id: m.id.to_string(),
                    node: AccountSummary::from(&t.node),
                    roles: t.roles.iter().map(RoleRef::from).collect(),
                }),
            permissions: tenant
                .map(|t| t.permissions.iter().map(|p| p.as_str().to_string()).collect())
                .unwrap_or_default(),
            acting_as,
            session: SessionView {
                id: principal.session.id.to_string(),
                created_at: utc(principal.session.created_at),
                expires_at: utc(principal.session.expires_at),
            },
        }
    }
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    #[validate(length(min = 1, max = 1024))]
    #[schema(min_length = 1, max_length = 1024)]
    pub current_password: String,
    /// 8 to 256 characters, not one of the most common passwords.
    #[schema(min_length = 8, max_length = 256, pattern = r"\S")]
    pub new_password: String,
}

impl ChangePasswordRequest {
    /// Checks the current password's length and parses the new one; one answer lists both.
    fn command(self) -> Result<ChangePassword, ApiError> {
        let mut errors = self.validate().err().unwrap_or_default();
        let new_password = NewPassword::parse(&self.new_password)
            .map_err(|e| errors.add("new_password", e))
            .ok();
        match new_password {
            Some(new_password) if errors.is_empty() => Ok(ChangePassword {
                current_password: self.current_password,
                new_password,
            }),
            _ => Err(errors.into()),
        }
    }
}

/// Change my password.
///
/// Needs the current password. Every other session of the user ends; this one stays.
/// A session acting as another user cannot do this (R8).
#[utoipa::path(
    tag = "me",
    operation_id = "changeMyPassword",
    security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "Password changed"),
        (status = 403, description = "The session acts as another user (R8)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/me/password")]
pub async fn change_password(
    state: web::Data<AppState>,
    principal: Principal,
    body: Body<ChangePasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let cmd = body.into_inner().command()?;
    let check = sessions::start_password_change(&principal, &cmd)?;
    // Outside any transaction: hashing runs on its own threads.
    let current_ok = state
        .passwords
        .verify(cmd.current_password, check.stored_hash())
        .await?;
    let approved = check.verified(current_ok)?;
    let new_hash = state.passwords.hash(cmd.new_password.expose().to_string()).await?;
    service::write(&state, move |tx| {
        sessions::change_password(tx, &principal, approved, &new_hash)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

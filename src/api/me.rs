//! The caller: who they are, who is really acting, where, and with which permissions.

use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use validator::Validate;

use crate::api::extract::Body;
use crate::api::views::{utc, AccountSummary, RoleRef, UserView};
use crate::auth::extract::Principal;
use crate::auth::policy;
use crate::db::repo::audit::{self, AuditEntry};
use crate::db::repo::{sessions, users};
use crate::domain::AuditAction;
use crate::domain::{self, Delegation, NewPassword, RevokeReason};
use crate::error::{field_error, ApiError, Problem};
use crate::service::sessions::notify_password_changed;
use crate::state::AppState;

/// The caller's place in the account.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyMembership {
    pub id: String,
    /// The node the membership sits at; it reaches that node's whole subtree.
    pub node: AccountSummary,
    pub roles: Vec<RoleRef>,
}

/// A person, briefly.
#[derive(Debug, Serialize, ToSchema)]
pub struct PersonRef {
    pub id: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
}

/// Present when the session acts as another user (R8): draw the banner from it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActingAs {
    pub kind: Delegation,
    /// The real person behind the requests (the token's `act.sub`).
    pub actor: PersonRef,
    pub since: DateTime<Utc>,
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
    let acting_as = match principal.delegation {
        None => None,
        Some(kind) => {
            let actor_id = principal.actor_id.clone();
            let actor = state
                .db
                .read(move |conn| Ok::<_, ApiError>(users::find(conn, &actor_id)?))
                .await?
                .ok_or_else(|| ApiError::unauthenticated("The session has ended; log in again."))?;
            Some(ActingAs {
                kind,
                actor: PersonRef {
                    id: actor.id.to_string(),
                    email: actor.email,
                    first_name: actor.first_name,
                    last_name: actor.last_name,
                },
                since: utc(principal.session.created_at),
            })
        }
    };
    let (account, membership, permissions) = match &principal.tenant {
        None => (None, None, Vec::new()),
        Some(t) => (
            Some(AccountSummary::from(&t.account)),
            Some(MyMembership {
                id: t.membership.id.to_string(),
                node: AccountSummary::from(&t.node),
                roles: t.roles.iter().map(RoleRef::from).collect(),
            }),
            t.permissions.iter().map(|p| p.as_str().to_string()).collect(),
        ),
    };
    Ok(web::Json(MeResponse {
        user: UserView::from(&principal.user),
        account,
        membership,
        permissions,
        acting_as,
        session: SessionView {
            id: principal.session.id.to_string(),
            created_at: utc(principal.session.created_at),
            expires_at: utc(principal.session.expires_at),
        },
    }))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    #[validate(length(min = 1, max = 1024))]
    #[schema(min_length = 1, max_length = 1024)]
    pub current_password: String,
    /// 10 to 256 characters.
    #[validate(custom(function = "domain::check_new_password"))]
    #[schema(min_length = 10, max_length = 256, pattern = r"\S")]
    pub new_password: String,
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
    let body = body.into_inner();
    body.validate()?;
    policy::forbid_delegated(&principal, "change the user's password")?;
    let new_password = NewPassword::parse(&body.new_password).map_err(field_error("new_password"))?;
    if body.current_password == body.new_password {
        return Err(ApiError::field(
            "new_password",
            "unchanged",
            "must differ from the current password",
        ));
    }
    let ok = state
        .passwords
        .verify(body.current_password, principal.user.password_hash.clone())
        .await?;
    if !ok {
        return Err(ApiError::field(
            "current_password",
            "mismatch",
            "is not your current password",
        ));
    }
    let new_hash = state.passwords.hash(new_password.expose().to_string()).await?;
    let st = state.clone();
    state
        .db
        .write(move |conn| {
            let now = st.clock.now();
            let user = &principal.user;
            users::set_password(conn, &user.id, &new_hash, now)?;
            let ended = sessions::revoke_all_for_user(
                conn,
                &user.id,
                Some(principal.session_id()),
                RevokeReason::PasswordChanged,
                now,
            )?;
            audit::record(
                conn,
                &principal.audit(),
                AuditEntry {
                    action: AuditAction::UserPasswordChanged,
                    target_type: "user",
                    target_id: user.id.as_str(),
                    details: json!({ "sessions_ended": ended }),
                },
                now,
            )?;
            notify_password_changed(conn, user, now)
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

//! Sign-up, login, token refresh, logout, account switching and password reset.

use actix_web::{post, web, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use validator::Validate;

use crate::api::extract::Body;
use crate::api::views::TokenResponse;
use crate::auth::extract::Principal;
use crate::auth::policy;
use crate::auth::secrets;
use crate::db::models::NewPasswordReset;
use crate::db::repo::audit::{self, AuditContext, AuditEntry};
use crate::db::repo::notifications::{self, Outgoing};
use crate::db::repo::{password_resets, sessions, users};
use crate::db::DbConnection;
use crate::domain::AuditAction;
use crate::domain::NotificationKind;
use crate::domain::{self, Email, NewPassword, RevokeReason, UserStatus, Username};
use crate::error::{field_error, ApiError, Problem, ProblemKind};
use crate::identity::{self, to_chrono, NewOrganization};
use crate::ids::{AccountId, PasswordResetId};
use crate::request_id::RequestId;
use crate::service::sessions::{self as sessions_svc, issue_tokens_with, notify_password_changed};
use crate::state::AppState;

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    /// The new organization's name.
    #[validate(custom(function = "domain::check_name"))]
    #[schema(example = "Acme Dental", min_length = 1, max_length = 100, pattern = r"\S")]
    pub organization_name: String,
    #[validate(custom(function = "domain::check_email"))]
    #[schema(example = "ada@example.com", format = Email, max_length = 254)]
    pub email: String,
    /// Optional login name: 3–64 letters, digits, `.`, `_`, `-`.
    #[validate(custom(function = "domain::check_username"))]
    #[schema(min_length = 3, max_length = 64, pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    pub username: Option<String>,
    #[validate(custom(function = "domain::check_name"))]
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub first_name: String,
    #[validate(custom(function = "domain::check_name"))]
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub last_name: String,
    /// 10 to 256 characters.
    #[validate(custom(function = "domain::check_new_password"))]
    #[schema(min_length = 10, max_length = 256, pattern = r"\S")]
    pub password: String,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The email address or the username.
    #[validate(length(min = 1, max = 254))]
    #[schema(example = "ada@example.com", min_length = 1, max_length = 254)]
    pub identifier: String,
    #[validate(length(min = 1, max = 1024))]
    #[schema(min_length = 1, max_length = 1024)]
    pub password: String,
    /// Pick this account at once, when the user belongs to several.
    pub account_id: Option<String>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    #[validate(length(min = 1, max = 256))]
    #[schema(min_length = 1, max_length = 256)]
    pub refresh_token: String,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchAccountRequest {
    /// A root account the user belongs to.
    #[validate(length(min = 1, max = 64))]
    #[schema(min_length = 1, max_length = 64)]
    pub account_id: String,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetRequest {
    #[validate(custom(function = "domain::check_email"))]
    #[schema(format = Email, max_length = 254)]
    pub email: String,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetConfirm {
    /// The token from the reset link.
    #[validate(length(min = 1, max = 256))]
    #[schema(min_length = 1, max_length = 256)]
    pub token: String,
    /// 10 to 256 characters.
    #[validate(custom(function = "domain::check_new_password"))]
    #[schema(min_length = 10, max_length = 256, pattern = r"\S")]
    pub new_password: String,
}

/// Sign up: a new organization and its owner.
///
/// Creates the root account, its built-in roles and its owner in one transaction, and logs
/// the owner in. Available only while open sign-up is on; otherwise an operator creates
/// the first owner with `steward create-owner`.
#[utoipa::path(
    tag = "auth",
    operation_id = "signUp",
    request_body = SignupRequest,
    responses(
        (status = 201, description = "Organization and owner created; the owner is logged in", body = TokenResponse),
        (status = 403, description = "Open sign-up is off", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The email or username is taken", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/auth/signup")]
pub async fn sign_up(
    state: web::Data<AppState>,
    body: Body<SignupRequest>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    if !state.config.open_signup {
        return Err(ApiError::new(
            ProblemKind::SignupClosed,
            "Sign-up is closed; ask an administrator for an invitation.",
        ));
    }
    let body = body.into_inner();
    body.validate()?;
    let email = Email::parse(&body.email).map_err(field_error("email"))?;
    let username = body
        .username
        .as_deref()
        .map(Username::parse)
        .transpose()
        .map_err(field_error("username"))?;
    let password_hash = state.passwords.hash(body.password).await?;
    let input = NewOrganization {
        organization_name: domain::parse_name(&body.organization_name).map_err(field_error("organization_name"))?,
        email,
        username,
        first_name: domain::parse_name(&body.first_name).map_err(field_error("first_name"))?,
        last_name: domain::parse_name(&body.last_name).map_err(field_error("last_name"))?,
        password_hash,
    };
    let st = state.clone();
    let response = state
        .db
        .write(move |conn| {
            let now = st.clock.now();
            let (user, account) = identity::create_organization(conn, &input, Some(request_id.0.clone()), now)?;
            let opened = identity::open_session(conn, &user.id, Some(&account.id), st.config.refresh_token_ttl, now)?;
            issue_tokens_with(
                conn,
                &st.tokens,
                now,
                &opened.session,
                Some(opened.refresh_token),
                &user,
            )
            .map(TokenResponse::from)
        })
        .await?;
    Ok(HttpResponse::Created().json(response))
}

/// Log in with an email or username and a password.
///
/// A user with one account gets a token scoped to it. A user with several gets the list
/// and a token that can only pick one (`/v1/auth/switch-account`), unless `account_id`
/// picks it now. An unknown user and a wrong password get the same answer in about the
/// same time.
#[utoipa::path(
    tag = "auth",
    operation_id = "logIn",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = TokenResponse),
        (status = 401, description = "Wrong identifier or password", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "No active account to log in to", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`account_id` is not an account of this user", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/auth/login")]
pub async fn log_in(
    state: web::Data<AppState>,
    body: Body<LoginRequest>,
    request_id: RequestId,
) -> Result<web::Json<TokenResponse>, ApiError> {
    let body = body.into_inner();
    body.validate()?;
    let identifier = body.identifier.trim().to_lowercase();
    let user = state
        .db
        .read(move |conn| {
            Ok::<_, ApiError>(if identifier.contains('@') {
                users::find_by_email(conn, &identifier)?
            } else {
                users::find_by_username(conn, &identifier)?
            })
        })
        .await?;
    let stored = user
        .as_ref()
        .filter(|u| u.status == UserStatus::Active)
        .and_then(|u| u.password_hash.clone());
    let password_ok = state.passwords.verify(body.password, stored).await?;
    let user = match user {
        Some(user) if password_ok => user,
        _ => return Err(ApiError::invalid_credentials()),
    };
    let wanted = match body.account_id.as_deref() {
        Some(raw) => Some(AccountId::parse(raw).ok_or_else(|| ApiError::not_found("account"))?),
        None => None,
    };
    let st = state.clone();
    let response = state
        .db
        .write(move |conn| {
            let now = st.clock.now();
            let choices = crate::service::caretakers::login_choices(conn, &user)?;
            let account = match (&wanted, choices.as_slice()) {
                (_, []) => return Err(ApiError::forbidden("You have no active account to log in to.")),
                (Some(id), _) => Some(
                    choices
                        .iter()
                        .find(|(_, a, _)| &a.id == id)
                        .ok_or_else(|| ApiError::not_found("account"))?
                        .1
                        .id
                        .clone(),
                ),
                (None, [(_, only, _)]) => Some(only.id.clone()),
                (None, _) => None,
            };
            let opened = identity::open_session(conn, &user.id, account.as_ref(), st.config.refresh_token_ttl, now)?;
            let ctx = AuditContext {
                actor: Some(user.id.to_string()),
                effective: Some(user.id.to_string()),
                account: account.as_ref().map(|a| a.to_string()),
                request_id: Some(request_id.0.clone()),
            };
            audit::record(
                conn,
                &ctx,
                AuditEntry {
                    action: AuditAction::AuthLogin,
                    target_type: "session",
                    target_id: opened.session.id.as_str(),
                    details: json!({}),
                },
                now,
            )?;
            issue_tokens_with(
                conn,
                &st.tokens,
                now,
                &opened.session,
                Some(opened.refresh_token),
                &user,
            )
            .map(TokenResponse::from)
        })
        .await?;
    Ok(web::Json(response))
}

enum RefreshOutcome {
    Rotated(Box<TokenResponse>),
    Reused,
    Invalid,
}

/// Exchange a refresh token for new tokens.
///
/// Every refresh token works once and is replaced by a new one. Presenting a spent token
/// again means it was stolen or replayed: the whole session (every token of its family)
/// is revoked.
#[utoipa::path(
    tag = "auth",
    operation_id = "refreshTokens",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New access and refresh tokens", body = TokenResponse),
        (status = 401, description = "Unknown, expired, spent or revoked refresh token", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/auth/refresh")]
pub async fn refresh(
    state: web::Data<AppState>,
    body: Body<RefreshRequest>,
    request_id: RequestId,
) -> Result<web::Json<TokenResponse>, ApiError> {
    let body = body.into_inner();
    body.validate()?;
    let hash = secrets::hash_token(&body.refresh_token);
    let st = state.clone();
    let outcome = state
        .db
        .write(move |conn| {
            let now = st.clock.now();
            let Some(token) = sessions::find_refresh_token(conn, &hash)? else {
                return Ok::<_, ApiError>(RefreshOutcome::Invalid);
            };
            let Some(session) = sessions::find(conn, &token.session_id)? else {
                return Ok(RefreshOutcome::Invalid);
            };
            if session.revoked_at.is_some() || session.expires_at <= now {
                return Ok(RefreshOutcome::Invalid);
            }
            let ctx = AuditContext {
                actor: Some(session.actor().unwrap_or_else(|| session.user_id.clone()).to_string()),
                effective: Some(session.user_id.to_string()),
                account: session.account_id.clone(),
                request_id: Some(request_id.0.clone()),
            };
            if !sessions::spend_refresh_token(conn, &token, now)? {
                sessions::revoke(conn, &session.id, RevokeReason::RefreshTokenReused, now)?;
                audit::record(
                    conn,
                    &ctx,
                    AuditEntry {
                        action: AuditAction::AuthRefreshTokenReused,
                        target_type: "session",
                        target_id: session.id.as_str(),
                        details: json!({ "revoked": true }),
                    },
                    now,
                )?;
                return Ok(RefreshOutcome::Reused);
            }
            if token.expires_at <= now {
                return Ok(RefreshOutcome::Invalid);
            }
            let Some(user) = users::find(conn, &session.user_id)?.filter(|u| u.status == UserStatus::Active) else {
                return Ok(RefreshOutcome::Invalid);
            };
            let choices = sessions_svc::account_choices(conn, &user)?;
            if let Some(acc) = &session.account_id {
                if !choices.iter().any(|(_, a, _)| a.id.as_str() == acc) {
                    return Ok(RefreshOutcome::Invalid);
                }
            }
            let expires_at = now + to_chrono(st.config.refresh_token_ttl);
            sessions::extend(conn, &session.id, expires_at)?;
            let next = identity::issue_refresh_token(conn, &session.id, st.config.refresh_token_ttl, now)?;
            let response =
                issue_tokens_with(conn, &st.tokens, now, &session, Some(next), &user).map(TokenResponse::from)?;
            Ok(RefreshOutcome::Rotated(Box::new(response)))
        })
        .await?;
    match outcome {
        RefreshOutcome::Rotated(response) => Ok(web::Json(*response)),
        RefreshOutcome::Reused => Err(ApiError::unauthenticated(
            "This refresh token was already used; the session has been ended for safety. Log in again.",
        )),
        RefreshOutcome::Invalid => Err(ApiError::unauthenticated(
            "The refresh token is not valid; log in again.",
        )),
    }
}

/// End the current session.
///
/// The session's access tokens stop working at once and its refresh tokens are revoked.
#[utoipa::path(
    tag = "auth",
    operation_id = "logOut",
    security(("bearer" = [])),
    responses((status = 204, description = "Logged out"))
)]
#[post("/v1/auth/logout")]
pub async fn log_out(state: web::Data<AppState>, principal: Principal) -> Result<HttpResponse, ApiError> {
    let st = state.clone();
    state
        .db
        .write(move |conn| {
            let now = st.clock.now();
            sessions::revoke(conn, principal.session_id(), RevokeReason::Logout, now)?;
            audit::record(
                conn,
                &principal.audit(),
                AuditEntry {
                    action: AuditAction::AuthLogout,
                    target_type: "session",
                    target_id: principal.session_id().as_str(),
                    details: json!({}),
                },
                now,
            )?;
            Ok::<_, ApiError>(())
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Pick or change the account the session works in, without a password (R5).
///
/// Returns a new access token scoped to the account; access tokens for the previous
/// account stop working, and the refresh token you hold stays valid.
#[utoipa::path(
    tag = "auth",
    operation_id = "switchAccount",
    security(("bearer" = [])),
    request_body = SwitchAccountRequest,
    responses(
        (status = 200, description = "The session now works in the chosen account", body = TokenResponse),
        (status = 403, description = "A delegated session cannot switch accounts", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not an account of this user", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/auth/switch-account")]
pub async fn switch_account(
    state: web::Data<AppState>,
    principal: Principal,
    body: Body<SwitchAccountRequest>,
) -> Result<web::Json<TokenResponse>, ApiError> {
    let body = body.into_inner();
    body.validate()?;
    policy::forbid_delegated(&principal, "switch accounts")?;
    let target = AccountId::parse(&body.account_id).ok_or_else(|| ApiError::not_found("account"))?;
    let st = state.clone();
    let response = state
        .db
        .write(move |conn| {
            let now = st.clock.now();
            let choices = sessions_svc::account_choices(conn, &principal.user)?;
            if !choices.iter().any(|(_, a, _)| a.id == target) {
                return Err(ApiError::not_found("account"));
            }
            sessions::rescope(conn, principal.session_id(), &target)?;
            let mut ctx = principal.audit();
            ctx.account = Some(target.to_string());
            audit::record(
                conn,
                &ctx,
                AuditEntry {
                    action: AuditAction::AuthAccountSwitched,
                    target_type: "session",
                    target_id: principal.session_id().as_str(),
                    details: json!({ "from": principal.session.account_id }),
                },
                now,
            )?;
            let session =
                sessions::find(conn, principal.session_id())?.ok_or_else(|| ApiError::internal("session vanished"))?;
            issue_tokens_with(conn, &st.tokens, now, &session, None, &principal.user).map(TokenResponse::from)
        })
        .await?;
    Ok(web::Json(response))
}

/// Ask for a password reset link.
///
/// Always answers 202, whether or not the address belongs to a user, so it cannot be used
/// to find out who has an account. When it does, a single-use link is emailed.
#[utoipa::path(
    tag = "auth",
    operation_id = "requestPasswordReset",
    request_body = PasswordResetRequest,
    responses((status = 202, description = "If the address belongs to a user, a reset link is on its way"))
)]
#[post("/v1/auth/password-reset")]
pub async fn request_password_reset(
    state: web::Data<AppState>,
    body: Body<PasswordResetRequest>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    body.validate()?;
    let email = Email::parse(&body.email).map_err(field_error("email"))?;
    // The work happens after the answer, so known and unknown addresses take the same time.
    let st = state.clone();
    actix_web::rt::spawn(async move {
        let db = st.db.clone();
        let result = db.write(move |conn| create_reset(conn, &st, &email, request_id)).await;
        if let Err(e) = result {
            log::error!("password reset request failed: {e:?}");
        }
    });
    Ok(HttpResponse::Accepted().finish())
}

fn create_reset(
    conn: &mut DbConnection,
    state: &AppState,
    email: &Email,
    request_id: RequestId,
) -> Result<(), ApiError> {
    let Some(user) = users::find_by_email(conn, email.normalized())? else {
        return Ok(());
    };
    if user.status != UserStatus::Active {
        return Ok(());
    }
    let now = state.clock.now();
    // Only the newest link works.
    password_resets::spend_all_for_user(conn, &user.id, None, now)?;
    let token = secrets::new_token();
    let id = PasswordResetId::generate();
    password_resets::insert(
        conn,
        NewPasswordReset {
            id: id.clone(),
            user_id: user.id.clone(),
            token_hash: secrets::hash_token(&token),
            created_at: now,
            expires_at: now + to_chrono(state.config.password_reset_ttl),
        },
    )?;
    let link = format!("{}/reset-password?token={token}", state.config.public_url);
    let minutes = state.config.password_reset_ttl.as_secs() / 60;
    notifications::enqueue(
        conn,
        Outgoing {
            kind: NotificationKind::PasswordReset,
            account_id: None,
            recipient_user_id: Some(user.id.to_string()),
            recipient_email: user.email.clone(),
            on_behalf_of_user_id: None,
            subject: "Reset your password".into(),
            body: format!(
                "Hello {},\n\nSomeone asked to reset your password. If it was you, open this link within {minutes} minutes:\n{link}\n\nIf it was not, ignore this message.",
                user.first_name
            ),
            payload: json!({ "link": link, "expires_at": (now + to_chrono(state.config.password_reset_ttl)).and_utc() }),
        },
        now,
    )?;
    let ctx = AuditContext {
        actor: Some(user.id.to_string()),
        effective: Some(user.id.to_string()),
        account: None,
        request_id: Some(request_id.0),
    };
    audit::record(
        conn,
        &ctx,
        AuditEntry {
            action: AuditAction::AuthPasswordResetRequested,
            target_type: "user",
            target_id: user.id.as_str(),
            details: json!({ "reset_id": id }),
        },
        now,
    )?;
    Ok(())
}

/// Set a new password with a reset link's token.
///
/// The token works once and expires; every session of the user ends.
#[utoipa::path(
    tag = "auth",
    operation_id = "confirmPasswordReset",
    request_body = PasswordResetConfirm,
    responses(
        (status = 204, description = "Password changed; log in with the new one"),
        (status = 400, description = "The link is unknown, spent or expired", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/auth/password-reset/confirm")]
pub async fn confirm_password_reset(
    state: web::Data<AppState>,
    body: Body<PasswordResetConfirm>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    body.validate()?;
    let new_password = NewPassword::parse(&body.new_password).map_err(field_error("new_password"))?;
    let invalid = || ApiError::invalid_token("The reset link is not valid or has expired; ask for a new one.");
    let hash = secrets::hash_token(&body.token);
    let lookup = hash.clone();
    let st = state.clone();
    let reset = state
        .db
        .read(move |conn| Ok::<_, ApiError>(password_resets::find_by_hash(conn, &lookup)?))
        .await?
        .filter(|r| r.used_at.is_none() && r.expires_at > st.clock.now())
        .ok_or_else(invalid)?;
    let password_hash = state.passwords.hash(new_password.expose().to_string()).await?;
    let st = state.clone();
    state
        .db
        .write(move |conn| {
            let now = st.clock.now();
            let user = users::find(conn, &reset.user_id)?
                .filter(|u| u.status == UserStatus::Active)
                .ok_or_else(invalid)?;
            if !password_resets::spend_all_for_user(conn, &user.id, Some(&hash), now)? {
                return Err(invalid());
            }
            users::set_password(conn, &user.id, &password_hash, now)?;
            sessions::revoke_all_for_user(conn, &user.id, None, RevokeReason::PasswordReset, now)?;
            let ctx = AuditContext {
                actor: Some(user.id.to_string()),
                effective: Some(user.id.to_string()),
                account: None,
                request_id: Some(request_id.0.clone()),
            };
            audit::record(
                conn,
                &ctx,
                AuditEntry {
                    action: AuditAction::AuthPasswordReset,
                    target_type: "user",
                    target_id: user.id.as_str(),
                    details: json!({}),
                },
                now,
            )?;
            notify_password_changed(conn, &user, now)?;
            Ok(())
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

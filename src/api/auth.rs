//! Sign-up, login, token refresh, logout, account switching and password reset.

use actix_web::{post, web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;
use validator::{Validate, ValidationError, ValidationErrors};

use crate::api::extract::Body;
use crate::api::views::TokenResponse;
use crate::auth::extract::Principal;
use crate::auth::policy;
use crate::client_addr::ClientAddr;
use crate::domain::{self, Email, NewPassword, Username};
use crate::error::{field_error, ApiError, Problem};
use crate::request_id::RequestId;
use crate::service;
use crate::service::sessions::{self, ConfirmReset, FailedLogin, LogIn, LoginIdentifier, NamedAccount, SignUp};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    /// The new organization's name.
    #[schema(example = "Acme Dental", min_length = 1, max_length = 100, pattern = r"\S")]
    pub organization_name: String,
    #[schema(example = "ada@example.com", format = Email, max_length = 254)]
    pub email: String,
    /// Optional login name: 3–64 letters, digits, `.`, `_`, `-`.
    #[schema(min_length = 3, max_length = 64, pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    pub username: Option<String>,
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub first_name: String,
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub last_name: String,
    /// 8 to 256 characters, not one of the most common passwords.
    #[schema(min_length = 8, max_length = 256, pattern = r"\S")]
    pub password: String,
}

impl SignupRequest {
    /// Parses every field once; one answer lists every invalid field.
    fn command(self) -> Result<SignUp, ApiError> {
        let mut errors = ValidationErrors::new();
        let e = &mut errors;
        let organization_name = parsed(e, "organization_name", domain::parse_name(&self.organization_name));
        let email = parsed(e, "email", Email::parse(&self.email));
        let username = parsed(e, "username", self.username.as_deref().map(Username::parse).transpose());
        let first_name = parsed(e, "first_name", domain::parse_name(&self.first_name));
        let last_name = parsed(e, "last_name", domain::parse_name(&self.last_name));
        let password = parsed(e, "password", NewPassword::parse(&self.password));
        match (organization_name, email, username, first_name, last_name, password) {
            (
                Some(organization_name),
                Some(email),
                Some(username),
                Some(first_name),
                Some(last_name),
                Some(password),
            ) => Ok(SignUp {
                organization_name,
                email,
                username,
                first_name,
                last_name,
                password,
            }),
            _ => Err(errors.into()),
        }
    }
}

/// A parsed value, or its error added to `errors` under `field`.
fn parsed<T>(errors: &mut ValidationErrors, field: &'static str, result: Result<T, ValidationError>) -> Option<T> {
    result.map_err(|e| errors.add(field, e)).ok()
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

impl LoginRequest {
    fn command(self) -> Result<LogIn, ApiError> {
        self.validate()?;
        Ok(LogIn {
            identifier: LoginIdentifier::parse(&self.identifier),
            password: self.password,
            account: self.account_id.as_deref().map(NamedAccount::parse),
        })
    }
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

impl SwitchAccountRequest {
    fn command(self) -> Result<NamedAccount, ApiError> {
        self.validate()?;
        Ok(NamedAccount::parse(&self.account_id))
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetRequest {
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
    /// 8 to 256 characters, not one of the most common passwords.
    #[schema(min_length = 8, max_length = 256, pattern = r"\S")]
    pub new_password: String,
}

impl PasswordResetConfirm {
    /// Checks the token's length and parses the new password; one answer lists both.
    fn command(self) -> Result<ConfirmReset, ApiError> {
        let mut errors = self.validate().err().unwrap_or_default();
        let new_password = parsed(&mut errors, "new_password", NewPassword::parse(&self.new_password));
        match new_password {
            Some(new_password) if errors.is_empty() => Ok(ConfirmReset {
                token: self.token,
                new_password,
            }),
            _ => Err(errors.into()),
        }
    }
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
    client: ClientAddr,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    // Decided before the fields are parsed and before any hashing work.
    policy::sign_up(&state.config)?;
    let cmd = body.into_inner().command()?;
    service::write(&state, move |tx| sessions::admit_sign_up(tx, &client)).await?;
    let password_hash = state.passwords.hash(cmd.password.expose().to_string()).await?;
    let issued = service::write(&state, move |tx| {
        sessions::sign_up(tx, cmd, password_hash, &request_id.0)
    })
    .await?;
    Ok(HttpResponse::Created().json(TokenResponse::from(issued)))
}

/// Log in with an email or username and a password.
///
/// A user with one account gets a token scoped to it. A user with several gets the list
/// and a token that can only pick one (`/v1/auth/switch-account`), unless `account_id`
/// picks it now. An unknown user and a wrong password get the same answer in about the
/// same time.
///
/// Repeated failures are throttled per identifier and per client address (429
/// `too-many-attempts`, with `Retry-After`), alike for identifiers nobody has.
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
    client: ClientAddr,
    request_id: RequestId,
) -> Result<web::Json<TokenResponse>, ApiError> {
    let LogIn {
        identifier,
        password,
        account,
    } = body.into_inner().command()?;
    let candidate = service::write(&state, move |tx| sessions::start_login(tx, &identifier, &client)).await?;
    // Outside any transaction: hashing runs on its own threads.
    let password_ok = state.passwords.verify(password, candidate.stored_hash()).await?;
    let user = match candidate.verified(password_ok) {
        Ok(user) => user,
        Err(failed) => return Err(refuse_login(&state, failed, request_id.0).await),
    };
    let unsigned = service::write(&state, move |tx| sessions::log_in(tx, user, account, &request_id.0)).await??;
    Ok(web::Json(unsigned.sign(&state.tokens)?.into()))
}

/// Audits a failed login and gives its one answer. The answer stays the same even if the
/// audit write fails (logged): a failed login changes nothing, and a different answer would
/// tell the caller more than "wrong identifier or password".
async fn refuse_login(state: &web::Data<AppState>, failed: FailedLogin, request_id: String) -> ApiError {
    let answer = failed.answer();
    let recorded = service::write(state, move |tx| sessions::record_failed_login(tx, failed, &request_id)).await;
    if let Err(e) = recorded {
        log::error!("could not audit a failed login: {e:?}");
    }
    answer
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
    // A refusal commits what it recorded (a spent token, a family revoked for reuse).
    let unsigned = service::write_statements(&state, move |tx| {
        sessions::refresh(tx, &body.refresh_token, &request_id.0)
    })
    .await??;
    Ok(web::Json(unsigned.sign(&state.tokens)?.into()))
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
    service::write(&state, move |tx| sessions::log_out(tx, &principal)).await?;
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
    let target = body.into_inner().command()?;
    let issued = service::write(&state, move |tx| sessions::switch_account(tx, &principal, target)).await?;
    Ok(web::Json(issued.into()))
}

/// Ask for a password reset link.
///
/// Answers 202 whether or not the address belongs to a user, so it cannot be used to find
/// out who has an account. When it does, a single-use link is emailed. Requests are limited
/// per email address and per client address (429 `too-many-attempts`, alike for addresses
/// nobody has).
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
    client: ClientAddr,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    let email = Email::parse(&body.into_inner().email).map_err(field_error("email"))?;
    let admitted = email.clone();
    service::write(&state, move |tx| sessions::admit_password_reset(tx, &admitted, &client)).await?;
    // The work happens after the answer, so known and unknown addresses take the same time.
    let st = state.clone();
    actix_web::rt::spawn(async move {
        let result = service::write(&st, move |tx| {
            sessions::request_password_reset(tx, &email, &request_id.0)
        })
        .await;
        if let Err(e) = result {
            log::error!("password reset request failed: {e:?}");
        }
    });
    Ok(HttpResponse::Accepted().finish())
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
    let ConfirmReset { token, new_password } = body.into_inner().command()?;
    let reset = service::read(&state, move |tx| sessions::pending_reset(tx, &token)).await?;
    let password_hash = state.passwords.hash(new_password.expose().to_string()).await?;
    service::write(&state, move |tx| {
        sessions::reset_password(tx, reset, &password_hash, &request_id.0)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

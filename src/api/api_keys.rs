//! API keys, and the OAuth 2.0 client-credentials grant that exchanges one for an access
//! token.

use actix_web::http::header;
use actix_web::{delete, get, post, web, HttpRequest, HttpResponse};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::extract::{Body, IdempotencyKey};
use crate::api::views::{utc, RoleRef};
use crate::auth::extract::Principal;
use crate::error::{ApiError, Problem, ProblemKind};
use crate::ids::ApiKeyId;
use crate::service;
use crate::service::api_keys::{self, IssuedKey, KeyWithRoles, NewKey};
use crate::state::AppState;

/// Whether a key can be used now.
#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ApiKeyState {
    Active,
    Expired,
    Revoked,
}

/// An API key (its secret is shown only when it is created or rotated).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    /// `key_…`: also the `client_id` of the client-credentials grant, and the actor that
    /// audit events name for what the key does.
    pub id: String,
    pub name: String,
    /// The first characters of the secret (`stk_` and 8 more), to tell keys apart.
    pub secret_prefix: String,
    pub state: ApiKeyState,
    /// The roles the key holds in the organization, over all of it.
    pub roles: Vec<RoleRef>,
    /// The user who created it.
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    #[schema(required = true)]
    pub expires_at: Option<DateTime<Utc>>,
    /// When the key was last used, to the minute.
    #[schema(required = true)]
    pub last_used_at: Option<DateTime<Utc>>,
    /// When the current secret was issued (at creation or the last rotation).
    pub secret_issued_at: DateTime<Utc>,
    /// After a rotation with a grace period: until when the previous secret still works.
    #[schema(required = true)]
    pub previous_secret_valid_until: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKeyView {
    fn new(found: &KeyWithRoles, now: chrono::NaiveDateTime) -> Self {
        let k = &found.key;
        let state = match (k.revoked_at, k.is_live(now)) {
            (Some(_), _) => ApiKeyState::Revoked,
            (None, true) => ApiKeyState::Active,
            (None, false) => ApiKeyState::Expired,
        };
        Self {
            id: k.id.to_string(),
            name: k.name.clone(),
            secret_prefix: k.secret_prefix.clone(),
            state,
            roles: found.roles.iter().map(RoleRef::from).collect(),
            created_by: k.created_by.clone(),
            created_at: utc(k.created_at),
            expires_at: k.expires_at.map(utc),
            last_used_at: k.last_used_at.map(utc),
            secret_issued_at: utc(k.secret_issued_at),
            previous_secret_valid_until: k.previous_valid_until.filter(|until| *until > now).map(utc),
            revoked_at: k.revoked_at.map(utc),
        }
    }
}

/// A key and its secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedApiKey {
    pub key: ApiKeyView,
    /// The secret (`stk_…`): send it as `Authorization: Bearer stk_…`, or exchange it at
    /// `POST /v1/oauth/token`. It is not shown again; Steward keeps only its hash.
    pub secret: String,
}

impl IssuedApiKey {
    fn new(issued: IssuedKey, now: chrono::NaiveDateTime) -> Self {
        Self {
            key: ApiKeyView::new(&issued.key, now),
            secret: issued.secret,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    pub items: Vec<ApiKeyView>,
}

/// Create an API key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// What the key is for, e.g. "HR sync".
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// Roles of the organization the key holds (`rol_…`): not the owner role, and nothing
    /// the creator does not hold.
    #[schema(min_items = 1, max_items = 20)]
    pub role_ids: Vec<String>,
    /// When the key stops working; never, when absent.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Rotate a key's secret.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateApiKey {
    /// How long the previous secret keeps working, 0 to 86400 seconds (default 0: it stops
    /// at once, with the access tokens exchanged for it).
    #[schema(minimum = 0, maximum = 86400)]
    pub grace_seconds: Option<i64>,
}

fn new_key(body: CreateApiKey, idempotency_key: Option<String>) -> Result<NewKey, ApiError> {
    let name = body.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::field("name", "length", "must be 1 to 100 characters long"));
    }
    if body.role_ids.len() > 20 {
        return Err(ApiError::field("role_ids", "length", "name at most 20 roles"));
    }
    Ok(NewKey {
        name,
        role_ids: body.role_ids,
        expires_at: body.expires_at.map(|t| t.naive_utc()),
        idempotency_key,
    })
}

/// Create an API key.
///
/// Needs `api_keys.manage` over the organization (owners and admins), from one's own
/// session: never with an API key, nor while acting as someone else. The key holds the roles
/// given (never the owner role, never more than the creator holds) over the whole
/// organization. The secret is in this response only.
///
/// A retry with the same `Idempotency-Key` and the same request within 24 hours creates
/// nothing: it answers with the key created the first time (`Idempotent-Replayed: true`) and
/// a new secret, since secrets are never kept; the first secret stops working.
#[utoipa::path(
    tag = "api-keys",
    operation_id = "createApiKey",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe (see above). 1 to 255 visible ASCII characters, kept per person.", min_length = 1, max_length = 255, pattern = r"^[\x21-\x7E]+$")),
    request_body = CreateApiKey,
    responses(
        (status = 201, description = "Created (or, on a retry, the key created the first time); the secret is shown this once", body = IssuedApiKey),
        (status = 409, description = "`conflict`: the key created with this Idempotency-Key was revoked since", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs api_keys.manage, a person's own session, and every permission the roles hold", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad name, unknown roles, the owner role, or an expiry in the past; `idempotency-key-reused`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/api-keys")]
pub async fn create_api_key(
    state: web::Data<AppState>,
    principal: Principal,
    retry: IdempotencyKey,
    body: Body<CreateApiKey>,
) -> Result<HttpResponse, ApiError> {
    let cmd = new_key(body.into_inner(), retry.0)?;
    let issued = service::write(&state, move |tx| api_keys::create(tx, &principal, cmd)).await?;
    let replayed = issued.replayed;
    let view = IssuedApiKey::new(issued, state.clock.now());
    let mut response = HttpResponse::Created();
    response.insert_header((header::LOCATION, format!("/v1/api-keys/{}", view.key.id)));
    if replayed {
        response.insert_header((crate::idempotency::REPLAYED, "true"));
    }
    Ok(response.json(view))
}

/// The organization's API keys, revoked and expired ones included, without secrets.
#[utoipa::path(
    tag = "api-keys",
    operation_id = "listApiKeys",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every key, oldest first", body = ApiKeyList),
        (status = 403, description = "Needs api_keys.manage and a person's own session", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/api-keys")]
pub async fn list_api_keys(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<web::Json<ApiKeyList>, ApiError> {
    let keys = service::read(&state, move |tx| api_keys::list(tx, &principal)).await?;
    let now = state.clock.now();
    Ok(web::Json(ApiKeyList {
        items: keys.iter().map(|k| ApiKeyView::new(k, now)).collect(),
    }))
}

/// One API key, without its secret.
#[utoipa::path(
    tag = "api-keys",
    operation_id = "getApiKey",
    security(("bearer" = [])),
    params(("key_id" = String, Path, description = "A key id (`key_…`)", pattern = r"^key_[0-9A-Za-z]{26}$")),
    responses(
        (status = 200, description = "The key", body = ApiKeyView),
        (status = 403, description = "Needs api_keys.manage and a person's own session", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such key in the caller's organization", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/api-keys/{key_id}")]
pub async fn get_api_key(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<ApiKeyId>,
) -> Result<web::Json<ApiKeyView>, ApiError> {
    let id = path.into_inner();
    let key = service::read(&state, move |tx| api_keys::get(tx, &principal, &id)).await?;
    Ok(web::Json(ApiKeyView::new(&key, state.clock.now())))
}

/// Rotate an API key's secret.
///
/// The new secret is in this response only. The previous secret, and the access tokens
/// exchanged for it, stop working at once, or after `grace_seconds` (at most a day).
#[utoipa::path(
    tag = "api-keys",
    operation_id = "rotateApiKey",
    security(("bearer" = [])),
    params(("key_id" = String, Path, description = "A key id (`key_…`)", pattern = r"^key_[0-9A-Za-z]{26}$")),
    request_body = RotateApiKey,
    responses(
        (status = 200, description = "Rotated; the new secret is shown this once", body = IssuedApiKey),
        (status = 403, description = "Needs api_keys.manage, a person's own session, and every permission the key holds", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such key in the caller's organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The key is revoked", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "grace_seconds out of range", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/api-keys/{key_id}/rotate")]
pub async fn rotate_api_key(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<ApiKeyId>,
    body: Body<RotateApiKey>,
) -> Result<web::Json<IssuedApiKey>, ApiError> {
    let (id, body) = (path.into_inner(), body.into_inner());
    let grace = body.grace_seconds.unwrap_or(0);
    let issued = service::write(&state, move |tx| api_keys::rotate(tx, &principal, &id, grace)).await?;
    Ok(web::Json(IssuedApiKey::new(issued, state.clock.now())))
}

/// Revoke an API key.
///
/// The key, and every access token exchanged for it, stops working with the next request.
/// The key stays listed as `revoked`.
#[utoipa::path(
    tag = "api-keys",
    operation_id = "revokeApiKey",
    security(("bearer" = [])),
    params(("key_id" = String, Path, description = "A key id (`key_…`)", pattern = r"^key_[0-9A-Za-z]{26}$")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "Needs api_keys.manage, a person's own session, and every permission the key holds", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such key in the caller's organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The key is already revoked", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/api-keys/{key_id}")]
pub async fn revoke_api_key(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<ApiKeyId>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    service::write(&state, move |tx| api_keys::revoke(tx, &principal, &id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The one grant this endpoint serves.
fn client_credentials_only() -> utoipa::openapi::Object {
    crate::api::views::text_choices("Must be `client_credentials`.", ["client_credentials"])
}

/// A client-credentials token request (RFC 6749 §4.4.2), form-encoded.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TokenRequest {
    /// Must be `client_credentials`.
    #[schema(schema_with = client_credentials_only)]
    pub grant_type: String,
    /// The key's id (`key_…`); optional when the secret is sent, or sent with HTTP Basic.
    pub client_id: Option<String>,
    /// The key's secret (`stk_…`), unless sent with HTTP Basic authentication.
    pub client_secret: Option<String>,
    /// Ignored: a key's access token carries the key's roles.
    pub scope: Option<String>,
}

/// An access token for an API key (RFC 6749 §4.4.3; no refresh token).
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientCredentialsToken {
    /// A JWT like a person's (EdDSA, `typ: at+jwt`), whose `sub`, `sid` and `client_id` are
    /// the key's id and `acc` its organization; it carries no `act`.
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until it expires (the access-token lifetime, or less when the key expires
    /// sooner).
    pub expires_in: u64,
}

/// The form of a token request (RFC 6749 §4.4.2: `application/x-www-form-urlencoded`).
fn token_request(req: &HttpRequest, body: &[u8]) -> Result<TokenRequest, ApiError> {
    let form_encoded = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    if !form_encoded {
        return Err(ApiError::new(
            ProblemKind::UnsupportedMediaType,
            "Send the token request as application/x-www-form-urlencoded (RFC 6749 §4.4.2).",
        )
        .with_oauth_error("invalid_request"));
    }
    serde_urlencoded::from_bytes(body).map_err(|e| {
        ApiError::malformed(format!("The token request is not a valid form: {e}.")).with_oauth_error("invalid_request")
    })
}

/// The client's id and secret: HTTP Basic (RFC 6749 §2.3.1) or the form's fields.
fn client_credentials(req: &HttpRequest, form: &TokenRequest) -> Result<(Option<String>, String), ApiError> {
    let invalid = |why: &str| {
        ApiError::new(
            ProblemKind::InvalidCredentials,
            format!("The client credentials are not valid: {why}."),
        )
        .with_oauth_error("invalid_client")
    };
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        let text = value.to_str().map_err(|_| invalid("unreadable Authorization header"))?;
        let encoded = text
            .strip_prefix("Basic ")
            .ok_or_else(|| invalid("use HTTP Basic or the form's client_secret"))?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| invalid("malformed HTTP Basic credentials"))?;
        let (id, secret) = decoded
            .split_once(':')
            .ok_or_else(|| invalid("malformed HTTP Basic credentials"))?;
        return Ok((Some(id.to_string()).filter(|id| !id.is_empty()), secret.to_string()));
    }
    let secret = form.client_secret.clone().ok_or_else(|| {
        ApiError::field("client_secret", "required", "send the key's secret, or use HTTP Basic")
            .with_oauth_error("invalid_request")
    })?;
    Ok((form.client_id.clone(), secret))
}

/// Exchange an API key for an access token.
///
/// The OAuth 2.0 client-credentials grant (RFC 6749 §4.4): send
/// `grant_type=client_credentials` form-encoded, with the key as HTTP Basic credentials
/// (`key_…` as user name, the secret as password) or as `client_id` / `client_secret`.
/// Errors are problem documents that also carry the OAuth `error` code.
#[utoipa::path(
    tag = "api-keys",
    operation_id = "exchangeClientCredentials",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "An access token for the key", body = ClientCredentialsToken),
        (status = 400, description = "A malformed form or not a client-credentials request (`invalid_request`, `unsupported_grant_type`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Unknown, revoked, expired or rotated key (`invalid_client`)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not form-encoded", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No secret sent (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/oauth/token")]
pub async fn exchange_client_credentials(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let form = token_request(&req, &body)?;
    if form.grant_type != "client_credentials" {
        return Err(ApiError::new(
            ProblemKind::UnsupportedGrantType,
            "Only grant_type=client_credentials is supported here.",
        )
        .with_oauth_error("unsupported_grant_type"));
    }
    let (client_id, secret) = client_credentials(&req, &form)?;
    let token = service::write(&state, move |tx| api_keys::exchange(tx, client_id.as_deref(), &secret)).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(ClientCredentialsToken {
            access_token: token.token,
            token_type: "Bearer",
            expires_in: token.expires_in,
        }))
}

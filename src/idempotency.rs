//! Safe retries: a POST that carries an `Idempotency-Key` is served once per caller and key
//! for 24 hours. A retry with the same body gets the first response again (marked
//! `Idempotent-Replayed: true`) without doing anything again; the same key with another
//! body is a 422 `idempotency-key-reused`; a retry while the first request still runs is a
//! 409 `idempotency-in-progress`. A first request that fails on the server's side (5xx)
//! or is throttled (429: "come back later") frees its key, so the retry runs for real.
//!
//! The caller is the verified token's real actor and effective user, so a retry after a
//! token refresh or a new login is still recognised, and nobody can replay another
//! person's response. Requests without a valid token pass through untouched (the handler
//! answers 401). The records live in the database, so they hold across instances and
//! restarts.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage, HttpResponse, ResponseError};
use chrono::{Duration, NaiveDateTime};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use crate::db::models::IdempotencyRow;
use crate::db::repo::idempotency::{self, Kept};
use crate::db::DbError;
use crate::error::{ApiError, ProblemKind};
use crate::state::AppState;

pub const HEADER: &str = "Idempotency-Key";
/// Set on a response that is a kept first response, not a new one.
pub const REPLAYED: &str = "Idempotent-Replayed";
/// How long a key and its response are kept.
const KEEP_FOR_HOURS: i64 = 24;

/// Creates whose response carries a bearer secret (an impersonation's access token, a
/// webhook endpoint's signing secret): their answers are never kept in the database, so
/// the header does nothing there (and the document does not offer it).
pub const NOT_KEPT: &[&str] = &[
    "/v1/impersonations",
    "/v1/webhooks",
    "/v1/api-keys",
    "/v1/api-keys/{key_id}/rotate",
];

/// What the key's record says about a request.
enum Claim {
    /// Nobody has used the key: this request is served, and its response kept.
    Fresh,
    Replay(IdempotencyRow),
    Reused,
    InProgress,
}

pub async fn middleware(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let raw = req.headers().get(HEADER).cloned();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let route = req.match_pattern().unwrap_or_else(|| req.path().to_string());
    let applies = req.method() == Method::POST && !NOT_KEPT.contains(&route.as_str());
    let (Some(raw), Some(state), true) = (raw, state, applies) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let Some(key) = sane_key(&raw) else {
        let problem = ApiError::field(HEADER, "format", "must be 1 to 255 visible ASCII characters");
        return Ok(req.into_response(problem.error_response()));
    };
    let now = state.clock.now();
    let Some(scope) = caller(&req, &state, now) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let body = match read_body(&mut req, state.config.max_body_bytes).await {
        Ok(body) => body,
        Err(problem) => return Ok(req.into_response(problem.error_response())),
    };
    let fingerprint = fingerprint(&req, &body);
    req.set_payload(Payload::from(body));

    match claim(&state, &scope, &key, &fingerprint, now).await? {
        Claim::Fresh => serve(req, next, state, scope, key).await,
        Claim::Replay(row) => Ok(req.into_response(replay(&row))),
        Claim::Reused => {
            let problem = ApiError::new(
                ProblemKind::IdempotencyKeyReused,
                "This Idempotency-Key was used for a different request; use a new key for a new request.",
            );
            Ok(req.into_response(problem.error_response()))
        }
        Claim::InProgress => {
            let problem = ApiError::new(
                ProblemKind::IdempotencyInProgress,
                "A request with this Idempotency-Key is still being served; retry in a moment.",
            );
            Ok(req.into_response(problem.error_response()))
        }
    }
}

/// The header's value when it is a usable key: 1 to 255 visible ASCII characters.
pub fn sane_key(raw: &header::HeaderValue) -> Option<String> {
    let key = raw.to_str().ok()?;
    let sane = (1..=255).contains(&key.len()) && key.bytes().all(|b| (0x21..=0x7e).contains(&b));
    sane.then(|| key.to_string())
}

/// The verified caller: "real actor>effective user" (or an API key's digest), or `None`
/// without a valid token.
fn caller(req: &ServiceRequest, state: &AppState, now: NaiveDateTime) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    // An API key is its own caller, named by the digest of its secret (the extractor checks
    // the key itself; a kept answer to a key that fails is a 401 anyway).
    if token.trim().starts_with(crate::auth::secrets::API_KEY_PREFIX) {
        return Some(format!("apikey:{}", crate::auth::secrets::hash_token(token.trim())));
    }
    let claims = state.tokens.verify(token.trim(), now).ok()?;
    let actor = claims.act.map(|a| a.sub).unwrap_or_else(|| claims.sub.clone());
    Some(format!("{actor}>{}", claims.sub))
}

async fn read_body(req: &mut ServiceRequest, limit: usize) -> Result<web::Bytes, ApiError> {
    let mut payload = req.take_payload();
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| ApiError::new(ProblemKind::MalformedBody, "The body could not be read."))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::new(
                ProblemKind::PayloadTooLarge,
                format!("The body is larger than {limit} bytes."),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The request as a retry must repeat it: method, path, query and body.
fn fingerprint(req: &ServiceRequest, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(req.method().as_str());
    hash.update(b" ");
    hash.update(req.path());
    hash.update(b"?");
    hash.update(req.query_string());
    hash.update(b"\n");
    hash.update(body);
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

async fn claim(
    state: &AppState,
    scope: &str,
    key: &str,
    fingerprint: &str,
    now: NaiveDateTime,
) -> Result<Claim, Error> {
    let (s, k) = (scope.to_string(), key.to_string());
    let found = state
        .db
        .write(move |conn| -> Result<Option<IdempotencyRow>, DbError> {
            match idempotency::find(conn, &s, &k)? {
                Some(row) if row.expires_at <= now => {
                    idempotency::release(conn, &s, &k)?;
                    Ok(None)
                }
                found => Ok(found),
            }
        })
        .await
        .map_err(ApiError::from)?;
    if let Some(row) = found {
        return Ok(match (row.fingerprint == fingerprint, row.status) {
            (false, _) => Claim::Reused,
            (true, None) => Claim::InProgress,
            (true, Some(_)) => Claim::Replay(row),
        });
    }
    let row = IdempotencyRow {
        scope: scope.to_string(),
        idem_key: key.to_string(),
        fingerprint: fingerprint.to_string(),
        status: None,
        content_type: None,
        location: None,
        body: None,
        created_at: now,
        expires_at: now + Duration::hours(KEEP_FOR_HOURS),
    };
    match state
        .db
        .write(move |conn| idempotency::claim(conn, row).map_err(DbError::from))
        .await
    {
        Ok(()) => Ok(Claim::Fresh),
        // Another first request claimed the key a moment ago.
        Err(e) if e.is_unique_violation() => Ok(Claim::InProgress),
        Err(e) => Err(ApiError::from(e).into()),
    }
}

fn replay(row: &IdempotencyRow) -> HttpResponse {
    let status = row
        .status
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let mut res = HttpResponse::build(status);
    if let Some(ct) = &row.content_type {
        res.insert_header((header::CONTENT_TYPE, ct.as_str()));
    }
    if let Some(location) = &row.location {
        res.insert_header((header::LOCATION, location.as_str()));
    }
    res.insert_header((REPLAYED, "true"));
    res.body(row.body.clone().unwrap_or_default())
}

/// Serves the first request and keeps its response; a server-side failure or a 429 frees
/// the key.
async fn serve(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
    state: web::Data<AppState>,
    scope: String,
    key: String,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let res = next.call(req).await;
    let res = match res {
        Ok(res) if !(res.status().is_server_error() || res.status() == StatusCode::TOO_MANY_REQUESTS) => res,
        other => {
            let (s, k) = (scope, key);
            let _ = state
                .db
                .write(move |conn| idempotency::release(conn, &s, &k).map_err(DbError::from))
                .await;
            return Ok(other?.map_into_boxed_body());
        }
    };
    let (request, response) = res.into_parts();
    let (head, body) = response.into_parts();
    let bytes = actix_web::body::to_bytes(body)
        .await
        .map_err(|_| ApiError::internal("could not read a response to keep it"))?;
    let text = String::from_utf8(bytes.to_vec()).unwrap_or_default();
    let status = i32::from(head.status().as_u16());
    let content_type = header_text(&head, header::CONTENT_TYPE);
    let location = header_text(&head, header::LOCATION);
    let kept = state
        .db
        .write(move |conn| {
            let kept = Kept {
                status,
                content_type: content_type.as_deref(),
                location: location.as_deref(),
                body: &text,
            };
            idempotency::keep(conn, &scope, &key, kept).map_err(DbError::from)
        })
        .await;
    if let Err(e) = kept {
        log::error!("could not keep the response to an idempotent request: {e}");
    }
    Ok(ServiceResponse::new(
        request,
        head.set_body(bytes).map_into_boxed_body(),
    ))
}

fn header_text(res: &HttpResponse<()>, name: header::HeaderName) -> Option<String> {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

//! SCIM's HTTP conventions (RFC 7644 §3): `application/scim+json`, error bodies with a
//! `scimType`, request bodies, list parameters, weak ETags and partial representations.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, Error, FromRequest, HttpRequest, HttpResponse, ResponseError};
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt;
use serde_json::{json, Map, Value};
use std::fmt;

use crate::api::extract::storable;
use crate::domain::scim::ERROR_SCHEMA;
use crate::domain::scim_filter::{normalize_attr, parse_filter};
use crate::error::{ApiError, ProblemKind};
use crate::service::scim::{ListRequest, MAX_RESULTS};
use crate::state::AppState;

pub const CONTENT_TYPE: &str = "application/scim+json";

/// Any failure of a SCIM request, rendered as a SCIM error (RFC 7644 §3.12).
pub struct ScimError(pub ApiError);

impl From<ApiError> for ScimError {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl fmt::Debug for ScimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for ScimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A problem kind's SCIM status and `scimType`: invalid input is a 400, a value taken by
/// another resource a 409 `uniqueness`, a built-in role a 400 `mutability`; the rest keep
/// their status.
fn scim_status(kind: ProblemKind) -> (StatusCode, Option<&'static str>) {
    use ProblemKind::*;
    match kind {
        ValidationFailed => (StatusCode::BAD_REQUEST, Some("invalidValue")),
        MalformedBody => (StatusCode::BAD_REQUEST, Some("invalidSyntax")),
        Conflict | EmailTaken | UsernameTaken | ExternalIdTaken | RoleNameTaken => {
            (StatusCode::CONFLICT, Some("uniqueness"))
        }
        BuiltinRole => (StatusCode::BAD_REQUEST, Some("mutability")),
        other => (other.status(), None),
    }
}

/// A SCIM error response with `status`, `scimType` and `detail`.
pub fn error_body(status: StatusCode, scim_type: Option<&str>, detail: &str) -> Value {
    let mut body = json!({ "schemas": [ERROR_SCHEMA], "status": status.as_u16().to_string(), "detail": detail });
    if let Some(t) = scim_type {
        body["scimType"] = t.into();
    }
    body
}

impl ResponseError for ScimError {
    fn status_code(&self) -> StatusCode {
        scim_status(self.0.kind()).0
    }

    fn error_response(&self) -> HttpResponse {
        if self.0.is_internal() {
            // Logged with its cause; the client sees only the 500.
            drop(self.0.error_response());
        }
        let (status, default_type) = scim_status(self.0.kind());
        let scim_type = self.0.scim_type().or(default_type);
        let mut response = HttpResponse::build(status);
        if self.0.kind() == ProblemKind::Unauthenticated {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        response
            .content_type(CONTENT_TYPE)
            .body(error_body(status, scim_type, self.0.detail()).to_string())
    }
}

/// Turns every error answer under `/scim/` that is not a SCIM error already (a problem from
/// authentication, an extractor, the idempotency layer, an unknown route) into one, keeping
/// its status and headers.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let scim = req.path().starts_with("/scim/");
    let res = next.call(req).await?.map_into_boxed_body();
    let is_scim_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(CONTENT_TYPE));
    if !scim || res.status().as_u16() < 400 || is_scim_json {
        return Ok(res);
    }
    let (req, res) = res.into_parts();
    let (head, body) = res.into_parts();
    let bytes = actix_web::body::to_bytes(body).await.unwrap_or_default();
    let problem: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let kind = problem["type"]
        .as_str()
        .and_then(|t| t.strip_prefix("urn:steward:problem:"))
        .and_then(|slug| ProblemKind::ALL.iter().copied().find(|k| k.slug() == slug));
    let (status, scim_type) = match kind {
        Some(kind) => scim_status(kind),
        None => (head.status(), None),
    };
    let detail = problem["detail"]
        .as_str()
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("Error"));
    let mut out = HttpResponse::build(status);
    for (name, value) in head.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.append_header((name.clone(), value.clone()));
        }
    }
    let out = out
        .content_type(CONTENT_TYPE)
        .body(error_body(status, scim_type, detail).to_string());
    Ok(ServiceResponse::new(req, out))
}

/// A SCIM request body: `application/scim+json` or `application/json` (or no type), at
/// most `STEWARD_MAX_BODY_BYTES`, a JSON object whose strings can all be stored.
pub struct ScimBody(pub Value);

fn json_type(req: &HttpRequest) -> bool {
    match req.headers().get(header::CONTENT_TYPE).map(|v| v.to_str()) {
        None => true,
        Some(Ok(v)) => {
            let essence = v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
            essence == CONTENT_TYPE || essence == "application/json"
        }
        Some(Err(_)) => false,
    }
}

fn unstorable(value: &Value) -> bool {
    match value {
        Value::String(s) => !storable(s),
        Value::Array(items) => items.iter().any(unstorable),
        Value::Object(map) => map.iter().any(|(k, v)| !storable(k) || unstorable(v)),
        _ => false,
    }
}

async fn read_body(mut payload: Payload, limit: usize) -> Result<Value, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| ApiError::malformed("The body could not be read."))?;
        if body.len() + chunk.len() > limit {
            let detail = format!("The body is larger than {limit} bytes.");
            return Err(ApiError::new(ProblemKind::PayloadTooLarge, detail));
        }
        body.extend_from_slice(&chunk);
    }
    let value: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::malformed(format!("The body is not valid JSON: {e}.")))?;
    if !value.is_object() {
        return Err(ApiError::malformed("The body must be a JSON object."));
    }
    if unstorable(&value) {
        return Err(ApiError::new(
            ProblemKind::ValidationFailed,
            "The body holds control characters (such as U+0000).",
        ));
    }
    Ok(value)
}

impl FromRequest for ScimBody {
    type Error = ScimError;
    type Future = LocalBoxFuture<'static, Result<Self, ScimError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<web::Data<AppState>>()
            .map_or(65536, |s| s.config.max_body_bytes);
        let typed = json_type(req);
        let payload = payload.take();
        Box::pin(async move {
            if !typed {
                let detail = "Send the body as application/scim+json (or application/json).";
                return Err(ScimError(ApiError::new(ProblemKind::UnsupportedMediaType, detail)));
            }
            read_body(payload, limit).await.map(ScimBody).map_err(ScimError)
        })
    }
}

/// The parameters of a list (RFC 7644 §3.4.2) and of a partial representation.
pub struct ListParams {
    pub request: ListRequest,
    pub projection: Projection,
}

fn integer(raw: Option<&String>, name: &str) -> Result<Option<i64>, ApiError> {
    raw.map(|v| v.trim().parse::<i64>())
        .transpose()
        .map_err(|_| crate::domain::scim::scim_error("invalidValue", format!("{name} must be an integer.")))
}

/// Reads `filter`, `startIndex` (1-based; below 1 counts as 1) and `count` (at most
/// [`MAX_RESULTS`], the default; below 0 counts as 0), besides the projection.
pub fn list_params(req: &HttpRequest) -> Result<ListParams, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string())
        .map_err(|e| crate::domain::scim::scim_error("invalidValue", format!("The query string is invalid: {e}.")))?;
    let param = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let filter = param("filter")
        .map(|f| {
            parse_filter(f).map_err(|e| {
                crate::domain::scim::scim_error("invalidFilter", format!("The filter cannot be read: {e}."))
            })
        })
        .transpose()?;
    let start_index = integer(param("startIndex"), "startIndex")?.unwrap_or(1).max(1);
    let count = integer(param("count"), "count")?
        .unwrap_or(MAX_RESULTS)
        .clamp(0, MAX_RESULTS);
    Ok(ListParams {
        request: ListRequest {
            filter,
            start_index,
            count,
        },
        projection: projection(&pairs),
    })
}

/// `attributes` or `excludedAttributes` (RFC 7644 §3.9): attribute paths, lower case.
pub struct Projection {
    only: Vec<String>,
    except: Vec<String>,
}

fn paths(pairs: &[(String, String)], name: &str) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k == name)
        .flat_map(|(_, v)| v.split(','))
        .map(|p| normalize_attr(p.trim()))
        .filter(|p| !p.is_empty())
        .collect()
}

fn projection(pairs: &[(String, String)]) -> Projection {
    Projection {
        only: paths(pairs, "attributes"),
        except: paths(pairs, "excludedAttributes"),
    }
}

/// The projection a single-resource request asks for.
pub fn projection_of(req: &HttpRequest) -> Projection {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    projection(&pairs)
}

/// Attributes a representation always has (`returned: always`).
const ALWAYS: &[&str] = &["id", "schemas"];

impl Projection {
    /// The resource with only the attributes asked for, or without those excluded.
    pub fn apply(&self, resource: Value) -> Value {
        let Value::Object(map) = resource else {
            return resource;
        };
        let kept: Map<String, Value> = map
            .into_iter()
            .filter_map(|(key, value)| self.keep(&key, value).map(|v| (key, v)))
            .collect();
        Value::Object(kept)
    }

    fn keep(&self, key: &str, value: Value) -> Option<Value> {
        let lower = key.to_ascii_lowercase();
        if ALWAYS.contains(&lower.as_str()) {
            return Some(value);
        }
        if self.except.contains(&lower) {
            return None;
        }
        if self.only.is_empty() || self.only.contains(&lower) {
            return Some(value);
        }
        // `name.givenName` keeps `name` with only that part.
        let prefix = format!("{lower}.");
        let subs: Vec<&str> = self.only.iter().filter_map(|p| p.strip_prefix(&prefix)).collect();
        match value {
            Value::Object(m) if !subs.is_empty() => Some(Value::Object(
                m.into_iter()
                    .filter(|(k, _)| subs.contains(&k.to_ascii_lowercase().as_str()))
                    .collect(),
            )),
            _ => None,
        }
    }
}

/// `If-Match` as sent, with SCIM's weak tags (`W/"…"`) read as the versions they carry.
pub fn strong_if_match(raw: Option<String>) -> Option<String> {
    raw.map(|v| {
        v.split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// A SCIM JSON response.
pub fn respond(status: StatusCode, body: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(CONTENT_TYPE)
        .body(body.to_string())
}

/// A single resource: its weak `ETag`, and its `Location` when it was just created.
pub fn resource(status: StatusCode, body: &Value, version: &str) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    response.insert_header((header::ETAG, format!("W/{version}")));
    if status == StatusCode::CREATED {
        if let Some(location) = body["meta"]["location"].as_str() {
            response.insert_header((header::LOCATION, location.to_string()));
        }
    }
    response.content_type(CONTENT_TYPE).body(body.to_string())
}

//! Cross-origin requests from browsers, for front ends served from another origin.
//!
//! Closed unless `STEWARD_CORS_ALLOWED_ORIGINS` names origins: then no response carries a
//! CORS header and every preflight is refused with a `cors-refused` problem. When origins
//! are named, `actix-cors` answers their preflights and marks their requests; a request
//! from any other origin is served as before but without CORS headers (so the browser
//! does not hand the answer to the page), and its preflight is refused the same way.
//! Tokens travel in `Authorization`, never in cookies, so credentials are not allowed.

use actix_cors::{Cors, CorsError};
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::Next;
use actix_web::{web, Error, ResponseError};

use crate::error::{ApiError, ProblemKind};
use crate::state::AppState;

/// Methods a cross-origin page may use.
const METHODS: [Method; 6] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

/// Request headers a cross-origin page may send.
pub const ALLOWED_HEADERS: [&str; 5] = [
    "authorization",
    "content-type",
    "if-match",
    "idempotency-key",
    "x-request-id",
];

/// Response headers a cross-origin page may read (beyond the CORS-safelisted ones).
pub const EXPOSED_HEADERS: [&str; 7] = [
    "etag",
    "location",
    "retry-after",
    "idempotent-replayed",
    "x-request-id",
    "allow",
    "www-authenticate",
];

/// How long a browser may keep a preflight's answer, in seconds.
const MAX_AGE_SECS: usize = 600;

/// The CORS middleware for the configured origins (`origins` checked by the config).
pub fn middleware(origins: &[String]) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods(METHODS)
        .allowed_headers(ALLOWED_HEADERS)
        .expose_headers(EXPOSED_HEADERS)
        .max_age(MAX_AGE_SECS)
        // Another origin's request is served without CORS headers, not refused: a
        // same-origin page (the Swagger UI) sends `Origin` on its POSTs too.
        .block_on_origin_mismatch(false);
    for origin in origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

/// Checks one configured origin: `http(s)://host[:port]`, exactly as a browser sends it.
pub fn parse_origin(raw: &str) -> Result<String, String> {
    let origin = raw.trim();
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or_else(|| format!("{origin:?} is not an http:// or https:// origin"))?;
    let sane = !rest.is_empty()
        && rest.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        && !rest.starts_with(':');
    if !sane || origin.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(format!(
            "{origin:?} is not an origin: scheme://host[:port] in lower case, no path, no trailing slash, no wildcard"
        ));
    }
    Ok(origin.to_string())
}

fn is_preflight(req: &ServiceRequest) -> bool {
    req.method() == Method::OPTIONS
        && req.headers().contains_key(header::ORIGIN)
        && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// Middleware around [`middleware`]: refuses preflights when CORS is closed, and turns the
/// plain-text refusals of `actix-cors` into problem documents.
pub async fn refusals(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let open = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|s| !s.config.cors_allowed_origins.is_empty());
    if !open && is_preflight(&req) {
        let problem = ApiError::new(
            ProblemKind::CorsRefused,
            "Cross-origin requests are not enabled on this server.",
        );
        return Ok(req.into_response(problem.error_response()));
    }
    let res = next.call(req).await?.map_into_boxed_body();
    let refusal = res
        .response()
        .error()
        .and_then(|e| e.as_error::<CorsError>())
        .map(|e| match e {
            CorsError::OriginNotAllowed => "This origin may not make cross-origin requests here.".to_string(),
            other => format!("The preflight was refused: {other}."),
        });
    match refusal {
        None => Ok(res),
        Some(detail) => {
            let (request, _) = res.into_parts();
            let problem = ApiError::new(ProblemKind::CorsRefused, detail);
            Ok(ServiceResponse::new(request, problem.error_response()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_exact_scheme_host_and_port() {
        assert_eq!(
            parse_origin(" https://app.example.com ").unwrap(),
            "https://app.example.com"
        );
        assert!(parse_origin("http://localhost:5173").is_ok());
        for bad in [
            "*",
            "app.example.com",
            "https://app.example.com/",
            "https://app.example.com/path",
            "https://*.example.com",
            "https://App.example.com",
            "ftp://x",
            "https://",
            "null",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad} should be refused");
        }
    }
}

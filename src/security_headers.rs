//! The headers every response carries, whatever answered it (a handler, a problem, the
//! 404 and 405 fallback, a refused CORS preflight, the Swagger UI):
//!
//! - `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`, `X-Frame-Options: DENY`;
//! - `Content-Security-Policy`: on the API, `default-src 'none'; frame-ancestors 'none'`
//!   (a JSON answer needs nothing loaded and is framed nowhere); under `/docs/`, a policy
//!   that lets the Swagger UI load its own scripts, styles and images and call the API,
//!   and nothing from elsewhere;
//! - `Cache-Control: no-store` on every response that does not set its own (only the JWK
//!   set does: it is public and cacheable). Most answers carry a bearer secret (tokens from
//!   login, refresh, sign-up, invite accept, switch and act-as; set-password links; webhook
//!   secrets) or per-user data, and a blanket rule cannot miss one that a list would;
//! - `Strict-Transport-Security` when `STEWARD_PUBLIC_URL` is https.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, Error};

use crate::state::AppState;

/// Where the Swagger UI is served.
const DOCS_PREFIX: &str = "/docs/";

pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// The Swagger UI's page loads its bundle, stylesheet and icons from its own path (no inline
/// scripts), sets inline styles, uses `data:` images for its icons, and fetches
/// `/openapi.json` and the operations it tries out from this origin.
pub const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// One year: the browser then refuses plain http to this host for that long.
pub const HSTS: &str = "max-age=31536000";

/// Middleware: sets the headers on the response, and on an error that an inner middleware
/// returned instead of a response.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let https = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|s| s.config.public_url.starts_with("https://"));
    let docs = req.path().starts_with(DOCS_PREFIX);
    match next.call(req).await {
        Ok(mut res) => {
            apply(res.headers_mut(), docs, https);
            Ok(res)
        }
        // The response actix makes from the error, outside every middleware, gets them too.
        Err(mut err) => {
            err.add_response_mapper(move |mut res| {
                apply(res.headers_mut(), docs, https);
                res
            });
            Err(err)
        }
    }
}

fn apply(headers: &mut HeaderMap, docs: bool, https: bool) {
    let set = |headers: &mut HeaderMap, name: HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        if docs { DOCS_CSP } else { API_CSP },
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, header::CACHE_CONTROL, "no-store");
    }
    if https {
        set(headers, header::STRICT_TRANSPORT_SECURITY, HSTS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_control_of_its_own_is_kept_and_others_get_no_store() {
        let mut own = HeaderMap::new();
        own.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
        apply(&mut own, false, false);
        assert_eq!(own.get(header::CACHE_CONTROL).unwrap(), "public, max-age=300");
        assert!(own.get(header::STRICT_TRANSPORT_SECURITY).is_none());

        let mut none = HeaderMap::new();
        apply(&mut none, true, true);
        assert_eq!(none.get(header::CACHE_CONTROL).unwrap(), "no-store");
        assert_eq!(none.get(header::CONTENT_SECURITY_POLICY).unwrap(), DOCS_CSP);
        assert_eq!(none.get(header::STRICT_TRANSPORT_SECURITY).unwrap(), HSTS);
    }
}

//! The request id: taken from `X-Request-Id` when the caller sends a sane one, made up
//! otherwise; echoed on every response, written in the access log and in audit events,
//! and shown in problem documents so that a support call can find the log line.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, FromRequest, HttpMessage, HttpRequest};
use std::future::{ready, Ready};
use std::time::Instant;

pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    static CURRENT: String;
}

/// The id of the request being served on this task, if any.
pub fn current() -> Option<String> {
    CURRENT.try_with(|id| id.clone()).ok()
}

/// The request id, as a handler argument.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

impl FromRequest for RequestId {
    type Error = Error;
    type Future = Ready<Result<Self, Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let id = req.extensions().get::<RequestId>().cloned();
        ready(Ok(id.unwrap_or_else(|| RequestId(generate()))))
    }
}

fn generate() -> String {
    ulid::Ulid::new().to_string().to_lowercase()
}

fn accept(value: &HeaderValue) -> Option<String> {
    let s = value.to_str().ok()?;
    let sane = !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    sane.then(|| s.to_string())
}

/// Middleware: assigns the id, runs the request inside it, and writes the access log line.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = req.headers().get(HEADER).and_then(accept).unwrap_or_else(generate);
    req.extensions_mut().insert(RequestId(id.clone()));
    let method = match req.extensions().get::<crate::routing::HeadRequest>() {
        Some(_) => actix_web::http::Method::HEAD,
        None => req.method().clone(),
    };
    let path = req.path().to_string();
    let peer = req.connection_info().realip_remote_addr().unwrap_or("-").to_string();
    let started = Instant::now();

    let mut res = CURRENT.scope(id.clone(), next.call(req)).await?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(HeaderName::from_static(HEADER), value);
    }
    log::info!(
        target: "steward::access",
        "{peer} \"{method} {path}\" {} {:.1}ms rid={id}",
        res.status().as_u16(),
        started.elapsed().as_secs_f64() * 1000.0,
    );
    Ok(res)
}

//! The request id: taken from `X-Request-Id` when the caller sends a sane one, made up
//! otherwise; echoed on every response, written in the access log and in audit events,
//! and shown in problem documents so that a support call can find the log line.
//!
//! While a request is served, its task knows its [`Scope`]: the id, and once the credential
//! is checked, who is calling (the real actor and the effective user). Log lines written on
//! that task carry them (see `logging`), the access log line included.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, FromRequest, HttpMessage, HttpRequest};
use std::future::{ready, Ready};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

pub const HEADER: &str = "x-request-id";

/// Who is calling, once the credential is known: the real actor (a user id, or an API key
/// id) and the effective user (the token's `sub`); they differ under a delegation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Caller {
    pub actor: Option<String>,
    pub effective_user: Option<String>,
}

/// The request being served on a task.
#[derive(Debug)]
pub struct Scope {
    pub id: String,
    caller: OnceLock<Caller>,
}

impl Scope {
    fn new(id: String) -> Self {
        Self {
            id,
            caller: OnceLock::new(),
        }
    }

    #[cfg(test)]
    pub fn for_test(id: &str, caller: Caller) -> Self {
        let scope = Self::new(id.to_string());
        let _ = scope.caller.set(caller);
        scope
    }

    /// Who is calling; empty until (or unless) a credential is checked.
    pub fn caller(&self) -> Caller {
        self.caller.get().cloned().unwrap_or_default()
    }
}

tokio::task_local! {
    static CURRENT: Arc<Scope>;
}

/// The id of the request being served on this task, if any.
pub fn current() -> Option<String> {
    CURRENT.try_with(|scope| scope.id.clone()).ok()
}

/// The request being served on this task, if any (for the log's request fields).
pub fn current_scope() -> Option<Arc<Scope>> {
    CURRENT.try_with(Arc::clone).ok()
}

/// Records who is calling, for the request's log lines; the first caller recorded stays.
pub fn set_caller(caller: Caller) {
    let _ = CURRENT.try_with(|scope| scope.caller.set(caller));
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
    let method = crate::routing::original_method(&req);
    let path = req.path().to_string();
    let peer = req.connection_info().realip_remote_addr().unwrap_or("-").to_string();
    let route = req.match_pattern();
    let started = Instant::now();

    let scope = Arc::new(Scope::new(id.clone()));
    let mut res = CURRENT.scope(scope.clone(), next.call(req)).await?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(HeaderName::from_static(HEADER), value);
    }
    // The access line is built only when it is written: with the log at warn (as under load
    // tests), a request pays nothing for it.
    if log::log_enabled!(target: "steward::access", log::Level::Info) {
        let status = res.status().as_u16();
        let millis = (started.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0;
        let route = route.as_deref().unwrap_or(crate::metrics::UNMATCHED);
        let caller = scope.caller();
        let who = match (&caller.actor, &caller.effective_user) {
            (Some(actor), Some(user)) if actor != user => format!(" actor={actor} as={user}"),
            (Some(actor), _) => format!(" actor={actor}"),
            _ => String::new(),
        };
        // Inside the scope again, so that the line carries the request's fields.
        CURRENT.sync_scope(scope, || {
            log::info!(
                target: "steward::access",
                method = method.as_str(), route, path = path.as_str(), status, duration_ms = millis, peer = peer.as_str();
                "{peer} \"{method} {path}\" {status} {millis:.1}ms rid={id}{who}",
            )
        });
    }
    Ok(res)
}

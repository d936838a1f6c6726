//! The HTTP surface: one module per resource, all registered in [`routes`].

pub mod auth;
pub mod health;
pub mod me;
pub mod views;

use actix_web::{web, HttpRequest, HttpResponse};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::ApiError;
use crate::state::AppState;

/// Every documented operation. The OpenAPI document is collected from exactly these.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(health::healthz)
        .service(health::readyz)
        .service(health::jwks)
        .service(auth::sign_up)
        .service(auth::log_in)
        .service(auth::refresh)
        .service(auth::log_out)
        .service(auth::switch_account)
        .service(auth::request_password_reset)
        .service(auth::confirm_password_reset)
        .service(me::get_me)
        .service(me::change_password);
}

/// `/openapi.json`: the document, byte for byte as committed in `openapi/openapi.json`.
pub async fn openapi_json(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(state.openapi_json.clone())
}

/// Anything no route took: 405 with `Allow` for a known path, 404 otherwise.
pub async fn fallback(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Err(match state.routes.allowed(req.path(), req.method()) {
        Some(allow) => ApiError::method_not_allowed(allow),
        None => ApiError::new(
            crate::error::ProblemKind::NotFound,
            format!("There is no route {}.", req.path()),
        ),
    })
}

//! Liveness, readiness and the public keys.

use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::keys::JwkSet;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthStatus {
    #[schema(example = "ok")]
    pub status: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReadyStatus {
    #[schema(example = "ok")]
    pub status: &'static str,
    /// `sqlite` or `postgres`.
    pub database: &'static str,
}

/// Is the process up?
#[utoipa::path(
    tag = "operations",
    operation_id = "getLiveness",
    responses((status = 200, description = "The process is up", body = HealthStatus))
)]
#[get("/healthz")]
pub async fn healthz() -> web::Json<HealthStatus> {
    web::Json(HealthStatus { status: "ok" })
}

/// Can it serve requests (is the database reachable)?
#[utoipa::path(
    tag = "operations",
    operation_id = "getReadiness",
    responses(
        (status = 200, description = "Ready", body = ReadyStatus),
        (status = 503, description = "`database-unavailable`: the database is not reachable (answered at once while it is known to be down)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> Result<web::Json<ReadyStatus>, ApiError> {
    state.db.ping().await.map_err(|e| {
        log::warn!("readiness check failed: {e}");
        ApiError::database_unavailable()
    })?;
    Ok(web::Json(ReadyStatus {
        status: "ok",
        database: state.db.backend(),
    }))
}

/// The public keys that verify Steward's access tokens (JWK set, RFC 7517).
///
/// Integrators verify tokens with these: pick the key whose `kid` the token's header names,
/// require `alg` EdDSA and `typ` at+jwt, and check `iss`, `aud` and `exp`.
#[utoipa::path(
    tag = "operations",
    operation_id = "getJwks",
    responses((status = 200, description = "The JWK set", body = JwkSet))
)]
#[get("/.well-known/jwks.json")]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(&state.tokens.keys().jwks)
}

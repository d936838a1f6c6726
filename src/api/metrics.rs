//! `/metrics`, for Prometheus: served only when `STEWARD_METRICS_TOKEN` is set, and only to
//! a scraper that presents it. Outside the OpenAPI document, like the document itself.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::auth::extract::bearer;
use crate::auth::policy;
use crate::error::ApiError;
use crate::metrics::Format;
use crate::service;
use crate::state::AppState;

/// Every metric, in the Prometheus text format (OpenMetrics when `Accept` prefers it).
pub async fn scrape(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    policy::may_scrape_metrics(state.config.metrics_token.as_ref(), bearer(&req))?;
    let snapshot = service::metrics::snapshot(&state).await;
    let format = Format::negotiate(req.headers());
    let body = state.metrics.render(&snapshot, format).map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, format.content_type()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body))
}

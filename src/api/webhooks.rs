//! Event webhooks: register endpoints, read and replay their deliveries.

use actix_web::{delete, get, patch, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::extract::{Body, Query};
use crate::api::pagination::PageRequest;
use crate::api::views::utc;
use crate::auth::extract::Principal;
use crate::db::models::{NotificationRow, WebhookEndpointRow};
use crate::domain::NotificationStatus;
use crate::error::{ApiError, Problem};
use crate::ids::{NotificationId, WebhookId};
use crate::service::webhooks::{self, EndpointChanges, NewEndpoint};
use crate::service::{self};
use crate::state::AppState;

/// A webhook endpoint (its secret is shown only when it is created).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    /// `whk_…`
    pub id: String,
    pub url: String,
    /// The event types it receives, or `["*"]` for all.
    pub events: Vec<String>,
    /// A disabled endpoint receives nothing new.
    pub enabled: bool,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&WebhookEndpointRow> for WebhookView {
    fn from(w: &WebhookEndpointRow) -> Self {
        Self {
            id: w.id.clone(),
            url: w.url.clone(),
            events: w.events().into_iter().map(str::to_string).collect(),
            enabled: w.enabled,
            created_by: w.created_by.clone(),
            created_at: utc(w.created_at),
            updated_at: utc(w.updated_at),
        }
    }
}

/// A new endpoint and its signing secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhook {
    pub endpoint: WebhookView,
    /// The Standard Webhooks secret (`whsec_…`) that signs every delivery: keep it to verify
    /// `webhook-signature`. It is not shown again.
    pub secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    pub items: Vec<WebhookView>,
}

/// Register an endpoint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// An `http(s)` URL whose host resolves to public addresses only.
    #[schema(min_length = 1, max_length = 2048)]
    pub url: String,
    /// Event types (`user.created`, `membership.deactivated`, `invite.sent`, …), or `["*"]`.
    #[schema(min_items = 1, max_items = 64)]
    pub events: Vec<String>,
}

/// Change an endpoint; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    #[schema(min_length = 1, max_length = 2048)]
    pub url: Option<String>,
    #[schema(min_items = 1, max_items = 64)]
    pub events: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

fn url_ok(url: &str) -> Result<String, ApiError> {
    if url.is_empty() || url.len() > 2048 {
        return Err(ApiError::field("url", "length", "must be 1 to 2048 characters long"));
    }
    Ok(url.to_string())
}

fn events_ok(events: Vec<String>) -> Result<Vec<String>, ApiError> {
    if events.is_empty() || events.len() > 64 {
        return Err(ApiError::field("events", "length", "name 1 to 64 event types"));
    }
    Ok(events)
}

/// One delivery of an event to an endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    /// `ntf_…`: also the `webhook-id` header, the same on every attempt and replay.
    pub id: String,
    /// The event type.
    pub event: String,
    pub status: NotificationStatus,
    pub attempts: i32,
    /// The HTTP status the endpoint answered last, if it answered.
    #[schema(required = true)]
    pub last_response_code: Option<i32>,
    #[schema(required = true)]
    pub last_error: Option<String>,
    pub next_attempt_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    #[schema(required = true)]
    pub delivered_at: Option<DateTime<Utc>>,
    /// The event as delivered (`type`, `timestamp`, `data`).
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

impl From<&NotificationRow> for DeliveryView {
    fn from(n: &NotificationRow) -> Self {
        Self {
            id: n.id.to_string(),
            event: n.subject.clone(),
            status: n.status,
            attempts: n.attempts,
            last_response_code: n.last_response_code,
            last_error: n.last_error.clone(),
            next_attempt_at: utc(n.next_attempt_at),
            created_at: utc(n.created_at),
            delivered_at: n.delivered_at.map(utc),
            payload: serde_json::from_str(&n.payload).unwrap_or_else(|_| serde_json::json!({})),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub items: Vec<DeliveryView>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Register a webhook endpoint.
///
/// Needs `webhooks.manage` over the organization (owners and admins). Every matching event
/// is then written to the outbox in the transaction of its cause and posted as JSON with the
/// Standard Webhooks headers, signed with the secret returned here (shown once), retried
/// with backoff. URLs that resolve to loopback, private or link-local addresses are refused.
#[utoipa::path(
    tag = "webhooks",
    operation_id = "createWebhook",
    security(("bearer" = [])),
    request_body = CreateWebhook,
    responses(
        (status = 201, description = "Registered; the secret is shown this once", body = CreatedWebhook),
        (status = 403, description = "Needs webhooks.manage over the organization; never while acting as someone", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad or non-public URL, or an unknown event type", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/webhooks")]
pub async fn create_webhook(
    state: web::Data<AppState>,
    principal: Principal,
    body: Body<CreateWebhook>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let cmd = NewEndpoint {
        url: url_ok(&body.url)?,
        events: events_ok(body.events)?,
    };
    let row = service::write(&state, move |tx| webhooks::create(tx, &principal, cmd)).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/v1/webhooks/{}", row.id)))
        .json(CreatedWebhook {
            endpoint: WebhookView::from(&row),
            secret: row.secret.clone(),
        }))
}

/// The organization's webhook endpoints.
#[utoipa::path(
    tag = "webhooks",
    operation_id = "listWebhooks",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every endpoint", body = WebhookList),
        (status = 403, description = "Needs webhooks.manage over the organization", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/webhooks")]
pub async fn list_webhooks(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<web::Json<WebhookList>, ApiError> {
    let rows = service::read(&state, move |tx| webhooks::list(tx, &principal)).await?;
    Ok(web::Json(WebhookList {
        items: rows.iter().map(WebhookView::from).collect(),
    }))
}

/// One webhook endpoint.
#[utoipa::path(
    tag = "webhooks",
    operation_id = "getWebhook",
    security(("bearer" = [])),
    params(("webhook_id" = String, Path, description = "An endpoint id (`whk_…`)", pattern = r"^whk_[0-9A-Za-z]{26}$")),
    responses(
        (status = 200, description = "The endpoint", body = WebhookView),
        (status = 403, description = "Needs webhooks.manage over the organization", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint in the caller's organization", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/webhooks/{webhook_id}")]
pub async fn get_webhook(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<WebhookId>,
) -> Result<web::Json<WebhookView>, ApiError> {
    let id = path.into_inner();
    let row = service::read(&state, move |tx| webhooks::get(tx, &principal, &id)).await?;
    Ok(web::Json(WebhookView::from(&row)))
}

/// Change an endpoint's URL or events, or disable and enable it.
#[utoipa::path(
    tag = "webhooks",
    operation_id = "updateWebhook",
    security(("bearer" = [])),
    params(("webhook_id" = String, Path, description = "An endpoint id (`whk_…`)", pattern = r"^whk_[0-9A-Za-z]{26}$")),
    request_body = UpdateWebhook,
    responses(
        (status = 200, description = "Changed", body = WebhookView),
        (status = 403, description = "Needs webhooks.manage over the organization", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint in the caller's organization", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/v1/webhooks/{webhook_id}")]
pub async fn update_webhook(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<WebhookId>,
    body: Body<UpdateWebhook>,
) -> Result<web::Json<WebhookView>, ApiError> {
    let (id, body) = (path.into_inner(), body.into_inner());
    let cmd = EndpointChanges {
        url: body.url.as_deref().map(url_ok).transpose()?,
        events: body.events.map(events_ok).transpose()?,
        enabled: body.enabled,
    };
    let row = service::write(&state, move |tx| webhooks::update(tx, &principal, &id, cmd)).await?;
    Ok(web::Json(WebhookView::from(&row)))
}

/// Remove an endpoint: its undelivered events are given up; its log stays.
#[utoipa::path(
    tag = "webhooks",
    operation_id = "deleteWebhook",
    security(("bearer" = [])),
    params(("webhook_id" = String, Path, description = "An endpoint id (`whk_…`)", pattern = r"^whk_[0-9A-Za-z]{26}$")),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Needs webhooks.manage over the organization", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint in the caller's organization", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/webhooks/{webhook_id}")]
pub async fn delete_webhook(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<WebhookId>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    service::write(&state, move |tx| webhooks::delete(tx, &principal, &id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// An endpoint's delivery log, newest first: attempts, status, the answer's code.
#[utoipa::path(
    tag = "webhooks",
    operation_id = "listWebhookDeliveries",
    security(("bearer" = [])),
    params(
        ("webhook_id" = String, Path, description = "An endpoint id (`whk_…`)", pattern = r"^whk_[0-9A-Za-z]{26}$"),
        DeliveriesQuery,
    ),
    responses(
        (status = 200, description = "One page", body = DeliveryPage),
        (status = 403, description = "Needs webhooks.manage over the organization", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint in the caller's organization", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The cursor or limit is invalid", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/webhooks/{webhook_id}/deliveries")]
pub async fn list_webhook_deliveries(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<WebhookId>,
    query: Query<DeliveriesQuery>,
) -> Result<web::Json<DeliveryPage>, ApiError> {
    let (id, q) = (path.into_inner(), query.into_inner());
    let page = PageRequest::parse(q.limit, q.cursor.as_deref(), |c| NotificationId::parse(c).is_some())?;
    let (rows, next_cursor) = service::read(&state, move |tx| webhooks::deliveries(tx, &principal, &id, &page)).await?;
    Ok(web::Json(DeliveryPage {
        items: rows.iter().map(DeliveryView::from).collect(),
        next_cursor,
    }))
}

/// Send a delivery again, now: a fresh round of attempts with the same `webhook-id`.
#[utoipa::path(
    tag = "webhooks",
    operation_id = "replayWebhookDelivery",
    security(("bearer" = [])),
    params(
        ("webhook_id" = String, Path, description = "An endpoint id (`whk_…`)", pattern = r"^whk_[0-9A-Za-z]{26}$"),
        ("delivery_id" = String, Path, description = "A delivery id (`ntf_…`)", pattern = r"^ntf_[0-9A-Za-z]{26}$"),
    ),
    responses(
        (status = 200, description = "Pending again", body = DeliveryView),
        (status = 403, description = "Needs webhooks.manage over the organization", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint or delivery", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/replay")]
pub async fn replay_webhook_delivery(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(WebhookId, NotificationId)>,
) -> Result<web::Json<DeliveryView>, ApiError> {
    let (id, delivery) = path.into_inner();
    let row = service::write(&state, move |tx| webhooks::replay(tx, &principal, &id, &delivery)).await?;
    Ok(web::Json(DeliveryView::from(&row)))
}

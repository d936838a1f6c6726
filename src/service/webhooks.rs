//! Event webhooks: an organization registers endpoints (a URL, the event types it wants, a
//! signing secret shown once); every change it would hear of is written to the outbox for
//! each endpoint in the change's own transaction (see `db::repo::audit::record`), and
//! delivered with retries, signed the Standard Webhooks way. Each endpoint keeps a log of
//! its deliveries, which can be read and replayed. Endpoint URLs must lead to public
//! addresses (`net_guard`).

use serde_json::json;

use crate::auth::extract::Principal;
use crate::auth::policy;
use crate::db::models::{NotificationRow, WebhookEndpointRow};
use crate::db::repo::audit::{self, AuditEntry};
use crate::db::repo::webhooks;
use crate::domain::page::PageRequest;
use crate::domain::AuditAction;
use crate::error::{ApiError, FieldError};
use crate::ids::{NotificationId, WebhookId};
use crate::notify::SigningSecret;
use crate::service::Tx;

/// An endpoint to register, as the handler parsed it.
pub struct NewEndpoint {
    pub url: String,
    pub events: Vec<String>,
}

/// Changes to an endpoint; `None` leaves a field as it is.
pub struct EndpointChanges {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

/// The events as stored: known event types (or `*`), each once, sorted.
fn event_list(events: &[String]) -> Result<String, ApiError> {
    let known = AuditAction::webhook_events();
    let mut list: Vec<&str> = Vec::new();
    for event in events {
        if event != "*" && !known.contains(&event.as_str()) {
            return Err(ApiError::validation(vec![FieldError::new(
                "events",
                "unknown_event",
                format!(
                    "{event} is not an event type; the types are * or one of {}",
                    known.join(", ")
                ),
            )]));
        }
        list.push(event);
    }
    list.sort_unstable();
    list.dedup();
    if list.is_empty() {
        return Err(ApiError::field(
            "events",
            "required",
            "name at least one event type, or *",
        ));
    }
    Ok(list.join(","))
}

fn checked_url(tx: &Tx<'_>, url: &str) -> Result<String, ApiError> {
    crate::net_guard::check_url_blocking(url, tx.config.webhook_allow_private)
        .map_err(|why| ApiError::field("url", "url", format!("the endpoint URL {why}")))?;
    Ok(url.to_string())
}

/// Registers an endpoint; the returned row carries its new secret (shown once).
pub fn create(tx: &mut Tx<'_>, caller: &Principal, cmd: NewEndpoint) -> Result<WebhookEndpointRow, ApiError> {
    let caller = tx.lock_tenant(caller)?;
    let root = policy::require_webhooks(&caller)?.root.to_string();
    let row = WebhookEndpointRow {
        id: WebhookId::generate().to_string(),
        root_account_id: root,
        url: checked_url(tx, &cmd.url)?,
        event_types: event_list(&cmd.events)?,
        secret: SigningSecret::generate(),
        enabled: true,
        created_by: caller.accountable_user().to_string(),
        created_at: tx.now,
        updated_at: tx.now,
    };
    webhooks::insert(tx.conn, row.clone())?;
    record(
        tx,
        &caller,
        AuditAction::WebhookCreated,
        &row,
        json!({ "url": row.url, "events": row.events() }),
    )?;
    Ok(row)
}

pub fn list(tx: &mut Tx<'_>, caller: &Principal) -> Result<Vec<WebhookEndpointRow>, ApiError> {
    let root = policy::require_webhooks(caller)?.root.to_string();
    Ok(webhooks::list(tx.conn, &root)?)
}

fn load(tx: &mut Tx<'_>, caller: &Principal, id: &WebhookId) -> Result<WebhookEndpointRow, ApiError> {
    let root = policy::require_webhooks(caller)?.root.to_string();
    webhooks::find(tx.conn, &root, id.as_str())?.ok_or_else(|| ApiError::not_found("webhook endpoint"))
}

pub fn get(tx: &mut Tx<'_>, caller: &Principal, id: &WebhookId) -> Result<WebhookEndpointRow, ApiError> {
    load(tx, caller, id)
}

pub fn update(
    tx: &mut Tx<'_>,
    caller: &Principal,
    id: &WebhookId,
    cmd: EndpointChanges,
) -> Result<WebhookEndpointRow, ApiError> {
    let caller = tx.lock_tenant(caller)?;
    let mut row = load(tx, &caller, id)?;
    if let Some(url) = &cmd.url {
        row.url = checked_url(tx, url)?;
    }
    if let Some(events) = &cmd.events {
        row.event_types = event_list(events)?;
    }
    if let Some(enabled) = cmd.enabled {
        row.enabled = enabled;
    }
    row.updated_at = tx.now;
    webhooks::update(tx.conn, &row)?;
    let details = json!({ "url": row.url, "events": row.events(), "enabled": row.enabled });
    record(tx, &caller, AuditAction::WebhookUpdated, &row, details)?;
    Ok(row)
}

/// Removes an endpoint; its undelivered events are given up, its log stays.
pub fn delete(tx: &mut Tx<'_>, caller: &Principal, id: &WebhookId) -> Result<(), ApiError> {
    let caller = tx.lock_tenant(caller)?;
    let row = load(tx, &caller, id)?;
    webhooks::delete(tx.conn, &row.id)?;
    record(
        tx,
        &caller,
        AuditAction::WebhookDeleted,
        &row,
        json!({ "url": row.url }),
    )
}

/// One page of an endpoint's deliveries, newest first.
pub fn deliveries(
    tx: &mut Tx<'_>,
    caller: &Principal,
    id: &WebhookId,
    page: &PageRequest,
) -> Result<(Vec<NotificationRow>, Option<String>), ApiError> {
    let row = load(tx, caller, id)?;
    let mut rows = webhooks::deliveries(tx.conn, &row.id, page.after.as_deref(), page.fetch())?;
    let next = page.finish(&mut rows, |r| r.id.as_str());
    Ok((rows, next))
}

/// Sends one delivery again, now, with a fresh round of attempts and the same `webhook-id`.
pub fn replay(
    tx: &mut Tx<'_>,
    caller: &Principal,
    id: &WebhookId,
    delivery: &NotificationId,
) -> Result<NotificationRow, ApiError> {
    let caller = tx.lock_tenant(caller)?;
    let row = load(tx, &caller, id)?;
    webhooks::delivery(tx.conn, &row.id, delivery)?.ok_or_else(|| ApiError::not_found("delivery"))?;
    webhooks::replay(tx.conn, delivery, tx.now)?;
    record(
        tx,
        &caller,
        AuditAction::WebhookDeliveryReplayed,
        &row,
        json!({ "delivery": delivery }),
    )?;
    webhooks::delivery(tx.conn, &row.id, delivery)?.ok_or_else(|| ApiError::internal("delivery vanished"))
}

fn record(
    tx: &mut Tx<'_>,
    caller: &Principal,
    action: AuditAction,
    row: &WebhookEndpointRow,
    details: serde_json::Value,
) -> Result<(), ApiError> {
    let entry = AuditEntry {
        action,
        target_type: "webhook",
        target_id: &row.id,
        details,
    };
    audit::record(tx.conn, &caller.audit(), entry, tx.now)?;
    Ok(())
}

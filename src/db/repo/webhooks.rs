//! Webhook endpoints, and the outbox rows that deliver events to them.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::notifications::{self, Outgoing};
use super::RepoResult;
use crate::db::models::{NotificationRow, WebhookEndpointRow};
use crate::db::schema::{notifications as outbox, webhook_endpoints};
use crate::db::DbConnection;
use crate::domain::{NotificationKind, NotificationStatus};
use crate::ids::NotificationId;

pub fn insert(conn: &mut DbConnection, row: WebhookEndpointRow) -> RepoResult<()> {
    diesel::insert_into(webhook_endpoints::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// An endpoint of an organization.
pub fn find(conn: &mut DbConnection, root: &str, id: &str) -> RepoResult<Option<WebhookEndpointRow>> {
    webhook_endpoints::table
        .filter(webhook_endpoints::root_account_id.eq(root))
        .filter(webhook_endpoints::id.eq(id))
        .select(WebhookEndpointRow::as_select())
        .get_result(conn)
        .optional()
}

/// Endpoints by id, whatever their organization (the delivery worker's look-up).
pub fn by_ids(conn: &mut DbConnection, ids: &[&str]) -> RepoResult<Vec<WebhookEndpointRow>> {
    webhook_endpoints::table
        .filter(webhook_endpoints::id.eq_any(ids))
        .select(WebhookEndpointRow::as_select())
        .load(conn)
}

pub fn list(conn: &mut DbConnection, root: &str) -> RepoResult<Vec<WebhookEndpointRow>> {
    webhook_endpoints::table
        .filter(webhook_endpoints::root_account_id.eq(root))
        .order(webhook_endpoints::id.asc())
        .select(WebhookEndpointRow::as_select())
        .load(conn)
}

/// Replaces what may change of an endpoint: its URL, events and whether it is enabled.
pub fn update(conn: &mut DbConnection, row: &WebhookEndpointRow) -> RepoResult<()> {
    diesel::update(webhook_endpoints::table.find(&row.id))
        .set((
            webhook_endpoints::url.eq(&row.url),
            webhook_endpoints::event_types.eq(&row.event_types),
            webhook_endpoints::enabled.eq(row.enabled),
            webhook_endpoints::updated_at.eq(row.updated_at),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Removes an endpoint; deliveries not made yet are given up (`dead`), the log stays.
pub fn delete(conn: &mut DbConnection, id: &str) -> RepoResult<()> {
    diesel::update(
        outbox::table
            .filter(outbox::webhook_endpoint_id.eq(id))
            .filter(outbox::status.eq(NotificationStatus::Pending.as_str())),
    )
    .set((
        outbox::status.eq(NotificationStatus::Dead.as_str()),
        outbox::last_error.eq(Some("the endpoint was deleted")),
    ))
    .execute(conn)?;
    diesel::delete(webhook_endpoints::table.find(id))
        .execute(conn)
        .map(|_| ())
}

/// Writes one delivery per enabled endpoint of the organization that wants `event`, in the
/// caller's transaction (the event's cause).
pub fn fan_out(
    conn: &mut DbConnection,
    root: &str,
    event: &str,
    payload: &serde_json::Value,
    now: NaiveDateTime,
) -> RepoResult<usize> {
    let endpoints: Vec<WebhookEndpointRow> = webhook_endpoints::table
        .filter(webhook_endpoints::root_account_id.eq(root))
        .filter(webhook_endpoints::enabled.eq(true))
        .select(WebhookEndpointRow::as_select())
        .load(conn)?;
    let mut queued = 0;
    for endpoint in endpoints.iter().filter(|e| e.wants(event)) {
        let message = Outgoing {
            kind: NotificationKind::Webhook,
            account_id: Some(root.to_string()),
            recipient_user_id: None,
            recipient_email: String::new(),
            on_behalf_of_user_id: None,
            subject: event.to_string(),
            body: String::new(),
            payload: payload.clone(),
        };
        notifications::enqueue_to_endpoint(conn, message, &endpoint.id, now)?;
        queued += 1;
    }
    Ok(queued)
}

/// One page of an endpoint's deliveries, newest first.
pub fn deliveries(
    conn: &mut DbConnection,
    endpoint: &str,
    before: Option<&str>,
    limit: i64,
) -> RepoResult<Vec<NotificationRow>> {
    let mut query = outbox::table
        .filter(outbox::webhook_endpoint_id.eq(endpoint))
        .select(NotificationRow::as_select())
        .into_boxed::<crate::db::MultiBackend>();
    if let Some(before) = before {
        query = query.filter(outbox::id.lt(before.to_string()));
    }
    query.order(outbox::id.desc()).limit(limit).load(conn)
}

pub fn delivery(conn: &mut DbConnection, endpoint: &str, id: &NotificationId) -> RepoResult<Option<NotificationRow>> {
    outbox::table
        .filter(outbox::webhook_endpoint_id.eq(endpoint))
        .filter(outbox::id.eq(id.as_str()))
        .select(NotificationRow::as_select())
        .get_result(conn)
        .optional()
}

/// Sends a delivery again: pending, due now, a fresh round of attempts. It keeps its id, so
/// the receiver sees the same `webhook-id` and can tell it is the same event.
pub fn replay(conn: &mut DbConnection, id: &NotificationId, now: NaiveDateTime) -> RepoResult<()> {
    diesel::update(outbox::table.find(id.as_str()))
        .set((
            outbox::status.eq(NotificationStatus::Pending.as_str()),
            outbox::attempts.eq(0),
            outbox::next_attempt_at.eq(now),
            outbox::locked_until.eq(None::<NaiveDateTime>),
            outbox::delivered_at.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)
        .map(|_| ())
}

/// The answer an endpoint gave on the last attempt.
pub fn set_response_code(conn: &mut DbConnection, id: &NotificationId, code: Option<i32>) -> RepoResult<()> {
    diesel::update(outbox::table.find(id.as_str()))
        .set(outbox::last_response_code.eq(code))
        .execute(conn)
        .map(|_| ())
}

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::RepoResult;
use crate::db::models::{NewNotification, NotificationRow, UserRow};
use crate::db::schema::notifications;
use crate::db::DbConnection;
use crate::domain::{NotificationKind, NotificationStatus};
use crate::ids::{ContactId, NotificationId};
use diesel::PgConnection;

/// A message to write to the outbox.
pub struct Outgoing {
    pub kind: NotificationKind,
    pub account_id: Option<String>,
    pub recipient_user_id: Option<String>,
    pub recipient_email: String,
    pub on_behalf_of_user_id: Option<String>,
    pub subject: String,
    pub body: String,
    pub payload: serde_json::Value,
}

impl Outgoing {
    /// A message to a user at their own address.
    pub fn to_user(
        kind: NotificationKind,
        account_id: Option<String>,
        user: &UserRow,
        (subject, body): (String, String),
        payload: serde_json::Value,
    ) -> Self {
        Self {
            kind,
            account_id,
            recipient_user_id: Some(user.id.to_string()),
            recipient_email: user.email.clone(),
            on_behalf_of_user_id: None,
            subject,
            body,
            payload,
        }
    }
}

/// Writes a message to the outbox. Call it inside the transaction of its cause, so that
/// the message exists exactly when the change does.
pub fn enqueue(conn: &mut DbConnection, msg: Outgoing, now: NaiveDateTime) -> RepoResult<NotificationId> {
    insert(conn, msg, (None, None), now)
}

/// Like [`enqueue`], for a message to a contact (R12): the row records the contact.
pub fn enqueue_to_contact(
    conn: &mut DbConnection,
    msg: Outgoing,
    contact: &ContactId,
    now: NaiveDateTime,
) -> RepoResult<NotificationId> {
    insert(conn, msg, (Some(contact.to_string()), None), now)
}

/// Like [`enqueue`], for an event delivery to a webhook endpoint.
pub fn enqueue_to_endpoint(
    conn: &mut DbConnection,
    msg: Outgoing,
    endpoint: &str,
    now: NaiveDateTime,
) -> RepoResult<NotificationId> {
    insert(conn, msg, (None, Some(endpoint.to_string())), now)
}

fn insert(
    conn: &mut DbConnection,
    msg: Outgoing,
    (contact_id, webhook_endpoint_id): (Option<String>, Option<String>),
    now: NaiveDateTime,
) -> RepoResult<NotificationId> {
    let id = NotificationId::generate();
    diesel::insert_into(notifications::table)
        .values(NewNotification {
            id: id.clone(),
            kind: msg.kind.to_string(),
            account_id: msg.account_id,
            recipient_user_id: msg.recipient_user_id,
            recipient_email: msg.recipient_email,
            on_behalf_of_user_id: msg.on_behalf_of_user_id,
            subject: msg.subject,
            body: msg.body,
            payload: msg.payload.to_string(),
            status: NotificationStatus::Pending,
            attempts: 0,
            next_attempt_at: now,
            created_at: now,
            contact_id,
            webhook_endpoint_id,
        })
        .execute(conn)?;
    Ok(id)
}

/// Whether a message is due for an attempt at `now`: pending, its time has come, and no
/// worker holds a lease on it (or the lease ran out: its worker crashed or hung).
#[diesel::dsl::auto_type(no_type_alias)]
fn due(now: NaiveDateTime) -> _ {
    let pending: &'static str = NotificationStatus::Pending.as_str();
    notifications::status
        .eq(pending)
        .and(notifications::next_attempt_at.le(now))
        .and(
            notifications::locked_until
                .is_null()
                .or(notifications::locked_until.le(now)),
        )
}

/// Leases up to `limit` due messages to this worker until `now + lease`; each returned row
/// carries its lease (`locked_until`), which the worker hands back with the outcome
/// ([`mark_delivered`], [`mark_failed`]). A message whose lease ran out is due again, so
/// delivery is at least once; two workers (in one process or several) never hold a lease
/// on the same message at once. On PostgreSQL one transaction selects the due rows
/// `FOR UPDATE SKIP LOCKED` (rows another worker is claiming are passed over, not waited
/// for) and leases them; on SQLite, where writers are serialized anyway, each row is
/// claimed by a conditional update.
pub fn claim_due(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    lease: Duration,
    limit: i64,
) -> RepoResult<Vec<NotificationRow>> {
    match conn {
        DbConnection::Postgres(pg) => claim_skipping_locked(pg, now, now + lease, limit),
        DbConnection::Sqlite(_) => claim_conditionally(conn, now, now + lease, limit),
    }
}

fn claim_skipping_locked(
    pg: &mut PgConnection,
    now: NaiveDateTime,
    until: NaiveDateTime,
    limit: i64,
) -> RepoResult<Vec<NotificationRow>> {
    pg.transaction(|pg| {
        let ids: Vec<String> = notifications::table
            .filter(due(now))
            .order(notifications::next_attempt_at.asc())
            .limit(limit)
            .select(notifications::id)
            .for_update()
            .skip_locked()
            .load(pg)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut claimed: Vec<NotificationRow> =
            diesel::update(notifications::table.filter(notifications::id.eq_any(&ids)))
                .set(notifications::locked_until.eq(Some(until)))
                .returning(NotificationRow::as_returning())
                .get_results(pg)?;
        claimed.sort_by_key(|m| m.next_attempt_at);
        Ok(claimed)
    })
}

fn claim_conditionally(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    until: NaiveDateTime,
    limit: i64,
) -> RepoResult<Vec<NotificationRow>> {
    let candidates: Vec<String> = notifications::table
        .filter(due(now))
        .order(notifications::next_attempt_at.asc())
        .limit(limit)
        .select(notifications::id)
        .load(conn)?;
    let mut claimed = Vec::with_capacity(candidates.len());
    for id in candidates {
        let n = diesel::update(notifications::table.find(&id).filter(due(now)))
            .set(notifications::locked_until.eq(Some(until)))
            .execute(conn)?;
        if n == 1 {
            if let Some(row) = notifications::table
                .find(&id)
                .select(NotificationRow::as_select())
                .get_result(conn)
                .optional()?
            {
                claimed.push(row);
            }
        }
    }
    Ok(claimed)
}

/// The rows of one message while `lease` (the `locked_until` its claim set) is still the
/// message's: a worker whose lease ran out and was taken over, or whose message was
/// replayed meanwhile, must not overwrite the newer outcome.
#[diesel::dsl::auto_type(no_type_alias)]
fn leased(id: String, lease: NaiveDateTime) -> _ {
    notifications::id.eq(id).and(notifications::locked_until.eq(lease))
}

/// Records a delivery; `false` (nothing written) when the lease was no longer this worker's.
pub fn mark_delivered(
    conn: &mut DbConnection,
    id: &NotificationId,
    lease: NaiveDateTime,
    now: NaiveDateTime,
) -> RepoResult<bool> {
    let n = diesel::update(notifications::table.filter(leased(id.to_string(), lease)))
        .set((
            notifications::status.eq(NotificationStatus::Delivered.as_str()),
            notifications::delivered_at.eq(Some(now)),
            notifications::locked_until.eq(None::<NaiveDateTime>),
            notifications::attempts.eq(notifications::attempts + 1),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

/// Records a failed attempt: retried at `retry_at`, or given up on (`dead`) when `None`;
/// `false` (nothing written) when the lease was no longer this worker's.
pub fn mark_failed(
    conn: &mut DbConnection,
    (id, lease): (&NotificationId, NaiveDateTime),
    error: &str,
    retry_at: Option<NaiveDateTime>,
    now: NaiveDateTime,
) -> RepoResult<bool> {
    let status = if retry_at.is_some() {
        NotificationStatus::Pending
    } else {
        NotificationStatus::Dead
    };
    let n = diesel::update(notifications::table.filter(leased(id.to_string(), lease)))
        .set((
            notifications::status.eq(status.as_str()),
            notifications::last_error.eq(Some(error)),
            notifications::locked_until.eq(None::<NaiveDateTime>),
            notifications::next_attempt_at.eq(retry_at.unwrap_or(now)),
            notifications::attempts.eq(notifications::attempts + 1),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

/// Messages recorded for one contact, newest first (used by tests and support tooling).
pub fn for_contact(conn: &mut DbConnection, contact: &ContactId) -> RepoResult<Vec<NotificationRow>> {
    notifications::table
        .filter(notifications::contact_id.eq(contact.as_str()))
        .order(notifications::id.desc())
        .select(NotificationRow::as_select())
        .load(conn)
}

/// Messages to one address, newest first (used by tests and support tooling).
pub fn for_recipient(conn: &mut DbConnection, email: &str) -> RepoResult<Vec<NotificationRow>> {
    notifications::table
        .filter(notifications::recipient_email.eq(email))
        .order(notifications::id.desc())
        .select(NotificationRow::as_select())
        .load(conn)
}

/// One page of an account's notifications, oldest first, after `after` (an id).
pub fn page_for_account(
    conn: &mut DbConnection,
    account: &str,
    status: Option<NotificationStatus>,
    after: Option<&str>,
    limit: i64,
) -> RepoResult<Vec<NotificationRow>> {
    // Event deliveries to webhook endpoints have their own log (`/v1/webhooks/{id}/deliveries`).
    let mut query = notifications::table
        .filter(notifications::account_id.eq(account))
        .filter(notifications::webhook_endpoint_id.is_null())
        .into_boxed();
    if let Some(status) = status {
        query = query.filter(notifications::status.eq(status.as_str()));
    }
    if let Some(after) = after {
        query = query.filter(notifications::id.gt(after));
    }
    query
        .order(notifications::id.asc())
        .limit(limit)
        .select(NotificationRow::as_select())
        .load(conn)
}

pub fn find_in_account(
    conn: &mut DbConnection,
    account: &str,
    id: &NotificationId,
) -> RepoResult<Option<NotificationRow>> {
    notifications::table
        .filter(notifications::account_id.eq(account))
        .filter(notifications::id.eq(id.as_str()))
        .select(NotificationRow::as_select())
        .get_result(conn)
        .optional()
}

/// Gives a dead message a new round of attempts, due now; `false` when it was not dead.
pub fn revive(conn: &mut DbConnection, id: &NotificationId, now: NaiveDateTime) -> RepoResult<bool> {
    let n = diesel::update(
        notifications::table
            .find(id.as_str())
            .filter(notifications::status.eq(NotificationStatus::Dead.as_str())),
    )
    .set((
        notifications::status.eq(NotificationStatus::Pending.as_str()),
        notifications::attempts.eq(0),
        notifications::next_attempt_at.eq(now),
        notifications::locked_until.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// How many messages wait in the outbox: pending and due now (leased ones included),
/// pending until a later retry, and dead.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutboxDepth {
    pub due: i64,
    pub scheduled: i64,
    pub dead: i64,
}

/// Counts the outbox by state: three counts over the `(status, next_attempt_at)` index,
/// whose cost does not depend on how many messages were delivered.
pub fn depth(conn: &mut DbConnection, now: NaiveDateTime) -> RepoResult<OutboxDepth> {
    let pending = || notifications::table.filter(notifications::status.eq(NotificationStatus::Pending.as_str()));
    let due = pending()
        .filter(notifications::next_attempt_at.le(now))
        .count()
        .get_result(conn)?;
    let scheduled = pending()
        .filter(notifications::next_attempt_at.gt(now))
        .count()
        .get_result(conn)?;
    let dead = notifications::table
        .filter(notifications::status.eq(NotificationStatus::Dead.as_str()))
        .count()
        .get_result(conn)?;
    Ok(OutboxDepth { due, scheduled, dead })
}

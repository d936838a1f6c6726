use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::RepoResult;
use crate::db::models::{AuditEventRow, NewAuditEvent};
use crate::db::schema::audit_events;
use crate::db::DbConnection;
use crate::domain::AuditAction;
use crate::ids::AuditEventId;

/// Who is acting, for whom, where, and in which request: the part of an audit event that
/// a request fixes once.
#[derive(Clone, Debug, Default)]
pub struct AuditContext {
    /// The real actor (the caretaker or impersonator when acting as someone else).
    pub actor: Option<String>,
    /// The user the change was made as.
    pub effective: Option<String>,
    /// The root account the change belongs to.
    pub account: Option<String>,
    pub request_id: Option<String>,
}

/// One audit event: what happened, to what, with extra details.
pub struct AuditEntry<'a> {
    pub action: AuditAction,
    pub target_type: &'a str,
    pub target_id: &'a str,
    pub details: serde_json::Value,
}

/// Appends an event. Call it inside the transaction of the change it records.
pub fn record(
    conn: &mut DbConnection,
    ctx: &AuditContext,
    entry: AuditEntry<'_>,
    now: NaiveDateTime,
) -> RepoResult<()> {
    let target = Some((entry.target_type, entry.target_id));
    insert(conn, ctx, entry.action, target, entry.details, now)
}

/// Appends an event about no particular target (e.g. a login that named no known user).
pub fn record_untargeted(
    conn: &mut DbConnection,
    ctx: &AuditContext,
    action: AuditAction,
    details: serde_json::Value,
    now: NaiveDateTime,
) -> RepoResult<()> {
    insert(conn, ctx, action, None, details, now)
}

fn insert(
    conn: &mut DbConnection,
    ctx: &AuditContext,
    action: AuditAction,
    target: Option<(&str, &str)>,
    details: serde_json::Value,
    now: NaiveDateTime,
) -> RepoResult<()> {
    diesel::insert_into(audit_events::table)
        .values(NewAuditEvent {
            id: AuditEventId::generate(),
            occurred_at: now,
            actor_user_id: ctx.actor.clone(),
            effective_user_id: ctx.effective.clone(),
            account_id: ctx.account.clone(),
            action: action.to_string(),
            target_type: target.map(|(kind, _)| kind.to_string()),
            target_id: target.map(|(_, id)| id.to_string()),
            request_id: ctx.request_id.clone(),
            details: details.to_string(),
        })
        .execute(conn)
        .map(|_| ())
}

/// Events about one target, oldest first.
pub fn for_target(conn: &mut DbConnection, target_id: &str) -> RepoResult<Vec<AuditEventRow>> {
    audit_events::table
        .filter(audit_events::target_id.eq(target_id))
        .order(audit_events::id.asc())
        .select(AuditEventRow::as_select())
        .load(conn)
}

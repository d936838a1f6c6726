use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::RepoResult;
use crate::db::models::{AuditEventRow, NewAuditEvent};
use crate::db::schema::audit_events;
use crate::db::DbConnection;
use crate::domain::AuditAction;
use crate::ids::{AccountId, ApiKeyId, AuditEventId, UserId};

/// Who is acting, for whom, where, and in which request: the part of an audit event that
/// a request fixes once.
#[derive(Clone, Debug, Default)]
pub struct AuditContext {
    /// The real actor (the caretaker or impersonator when acting as someone else).
    pub actor: Option<String>,
    /// The user the change was made as.
    pub effective: Option<String>,
    /// The API key that made the change, when a key did (then `actor` and `effective` are
    /// empty: a key acts as itself, never as a person).
    pub actor_api_key: Option<String>,
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
    let id = insert(conn, ctx, entry.action, target, entry.details.clone(), now)?;
    // Integrators hear of the change in the same transaction (event webhooks).
    if let (Some(account), Some(event)) = (&ctx.account, entry.action.webhook_event()) {
        let payload = serde_json::json!({
            "type": event,
            "timestamp": now.and_utc().to_rfc3339(),
            "data": {
                "audit_event_id": id,
                "account_id": account,
                "actor_user_id": ctx.actor,
                "effective_user_id": ctx.effective,
                "actor_api_key_id": ctx.actor_api_key,
                "target_type": entry.target_type,
                "target_id": entry.target_id,
                "details": entry.details,
            },
        });
        super::webhooks::fan_out(conn, account, event, &payload, now)?;
    }
    Ok(())
}

/// Appends an event about no particular target (e.g. a login that named no known user).
pub fn record_untargeted(
    conn: &mut DbConnection,
    ctx: &AuditContext,
    action: AuditAction,
    details: serde_json::Value,
    now: NaiveDateTime,
) -> RepoResult<()> {
    insert(conn, ctx, action, None, details, now).map(|_| ())
}

fn insert(
    conn: &mut DbConnection,
    ctx: &AuditContext,
    action: AuditAction,
    target: Option<(&str, &str)>,
    details: serde_json::Value,
    now: NaiveDateTime,
) -> RepoResult<AuditEventId> {
    let id = AuditEventId::generate();
    diesel::insert_into(audit_events::table)
        .values(NewAuditEvent {
            id: id.clone(),
            occurred_at: now,
            actor_user_id: ctx.actor.clone(),
            effective_user_id: ctx.effective.clone(),
            account_id: ctx.account.clone(),
            action: action.to_string(),
            target_type: target.map(|(kind, _)| kind.to_string()),
            target_id: target.map(|(_, id)| id.to_string()),
            request_id: ctx.request_id.clone(),
            details: details.to_string(),
            actor_api_key_id: ctx.actor_api_key.clone(),
        })
        .execute(conn)?;
    Ok(id)
}

/// Events about one target, oldest first.
pub fn for_target(conn: &mut DbConnection, target_id: &str) -> RepoResult<Vec<AuditEventRow>> {
    audit_events::table
        .filter(audit_events::target_id.eq(target_id))
        .order(audit_events::id.asc())
        .select(AuditEventRow::as_select())
        .load(conn)
}

/// What a read of an organization's audit log is narrowed to; every part is optional.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// The real actor.
    pub actor: Option<UserId>,
    /// The user the change was made as.
    pub effective_user: Option<UserId>,
    /// The API key that made the change.
    pub actor_api_key: Option<ApiKeyId>,
    pub action: Option<AuditAction>,
    pub target_id: Option<String>,
    /// Events at or after this time.
    pub since: Option<NaiveDateTime>,
    /// Events before this time.
    pub until: Option<NaiveDateTime>,
}

/// Up to `limit` events of one organization that pass `filter`, newest first (by id, which
/// is time-ordered), after (below) the id `before` when given: one keyset page.
pub fn page_for_account(
    conn: &mut DbConnection,
    account: &AccountId,
    filter: &AuditFilter,
    before: Option<&str>,
    limit: i64,
) -> RepoResult<Vec<AuditEventRow>> {
    let mut query = audit_events::table
        .filter(audit_events::account_id.eq(account.as_str()))
        .into_boxed();
    if let Some(key) = &filter.actor_api_key {
        query = query.filter(audit_events::actor_api_key_id.eq(key.as_str()));
    }
    if let Some(actor) = &filter.actor {
        query = query.filter(audit_events::actor_user_id.eq(actor.as_str()));
    }
    if let Some(effective) = &filter.effective_user {
        query = query.filter(audit_events::effective_user_id.eq(effective.as_str()));
    }
    if let Some(action) = filter.action {
        query = query.filter(audit_events::action.eq(action.as_str()));
    }
    if let Some(target) = &filter.target_id {
        query = query.filter(audit_events::target_id.eq(target));
    }
    if let Some(since) = filter.since {
        query = query.filter(audit_events::occurred_at.ge(since));
    }
    if let Some(until) = filter.until {
        query = query.filter(audit_events::occurred_at.lt(until));
    }
    if let Some(before) = before {
        query = query.filter(audit_events::id.lt(before));
    }
    query
        .order(audit_events::id.desc())
        .limit(limit)
        .select(AuditEventRow::as_select())
        .load(conn)
}

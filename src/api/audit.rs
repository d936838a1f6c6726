//! The audit log: an organization's events, read in pages or exported as JSON Lines. Both
//! show each event's real actor and effective user; nothing here changes or deletes events.

use std::sync::Arc;

use actix_web::web::Bytes;
use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::extract::Query;
use crate::api::pagination::PageRequest;
use crate::api::views::utc;
use crate::auth::extract::Principal;
use crate::db::models::AuditEventRow;
use crate::domain::AuditAction;
use crate::error::{ApiError, FieldError, Problem};
use crate::ids::{AccountId, ApiKeyId, AuditEventId, UserId};
use crate::service;
use crate::service::audit::{self, AuditFilter};
use crate::state::AppState;

/// The media type of the export: one JSON document per line.
pub const JSON_LINES: &str = "application/jsonl";

/// Events read per batch of an export: memory stays bounded by one batch.
const EXPORT_BATCH: i64 = 500;

/// One audit event: what happened, when, to what, who really did it and as whom.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventView {
    /// `aud_…`. Ids are time-ordered: lists and exports are ordered by them.
    pub id: String,
    pub occurred_at: DateTime<Utc>,
    /// What happened, e.g. `auth.login`, `auth.login_failed`, `auth.logout`,
    /// `user.updated`, `caretaker.assigned`, `delegation.started`.
    #[schema(example = "user.updated")]
    pub action: String,
    /// The **real actor**: the person who made the request. When someone acts as another
    /// user (a caretaker or an impersonator, R8) this is them, not the user they act as.
    /// Null when nobody was authenticated (a failed login), or when an API key acted.
    #[schema(required = true)]
    pub actor_user_id: Option<String>,
    /// The API key (`key_…`) that made the change, when a key did: a key acts as itself,
    /// so then both user ids are null.
    #[schema(required = true)]
    pub actor_api_key_id: Option<String>,
    /// The **effective user**: the user the change was made as (the token's `sub`). Equal to
    /// `actor_user_id` unless someone acted as another user. Null when nobody was
    /// authenticated (a failed login).
    #[schema(required = true)]
    pub effective_user_id: Option<String>,
    /// The organization (root account) the event belongs to.
    pub account_id: String,
    /// The kind of thing acted on: `user`, `account`, `session`, `role`, `invite`, …
    #[schema(required = true)]
    pub target_type: Option<String>,
    /// The id of the thing acted on.
    #[schema(required = true)]
    pub target_id: Option<String>,
    /// The `X-Request-Id` of the request that caused the event.
    #[schema(required = true)]
    pub request_id: Option<String>,
    /// Details particular to the action (a JSON object; its fields depend on the action).
    #[schema(value_type = Object)]
    pub details: serde_json::Map<String, serde_json::Value>,
}

impl From<&AuditEventRow> for AuditEventView {
    fn from(e: &AuditEventRow) -> Self {
        Self {
            id: e.id.to_string(),
            occurred_at: utc(e.occurred_at),
            action: e.action.clone(),
            actor_user_id: e.actor_user_id.clone(),
            actor_api_key_id: e.actor_api_key_id.clone(),
            effective_user_id: e.effective_user_id.clone(),
            // Listed per organization: the filter matched this very column.
            account_id: e.account_id.clone().unwrap_or_default(),
            target_type: e.target_type.clone(),
            target_id: e.target_id.clone(),
            request_id: e.request_id.clone(),
            // Every event is written with an object; an unreadable one shows as empty.
            details: serde_json::from_str(&e.details).unwrap_or_default(),
        }
    }
}

/// The `action` filter's values: every audit action.
fn audit_actions() -> utoipa::openapi::Object {
    crate::api::views::text_choices(
        "Only this action (e.g. `auth.login_failed`); an unknown action is refused.",
        AuditAction::ALL.iter().map(|a| a.as_str()),
    )
}

/// A query struct with the audit filters, plus `$extra` fields; and its parser.
macro_rules! audit_query {
    ($(#[$meta:meta])* $name:ident { $($extra:tt)* }) => {
        $(#[$meta])*
        #[derive(Debug, Deserialize, IntoParams)]
        #[into_params(parameter_in = Query)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// Only events whose real actor is this user (`usr_…`).
            #[param(pattern = "^usr_[0-9A-Za-z]{26}$")]
            pub actor: Option<String>,
            /// Only events made by this API key (`key_…`).
            #[param(pattern = "^key_[0-9A-Za-z]{26}$")]
            pub actor_api_key: Option<String>,
            /// Only events done as this user (`usr_…`), whoever really acted.
            #[param(pattern = "^usr_[0-9A-Za-z]{26}$")]
            pub effective_user: Option<String>,
            /// Only this action (e.g. `auth.login_failed`); its description is in `audit_actions`.
            #[param(schema_with = audit_actions)]
            pub action: Option<String>,
            /// Only events about this target id (e.g. a `usr_…` or `acc_…`).
            pub target: Option<String>,
            /// Only events at or after this time (RFC 3339).
            #[param(format = DateTime)]
            pub since: Option<String>,
            /// Only events before this time (RFC 3339); not before `since`.
            #[param(format = DateTime)]
            pub until: Option<String>,
            $($extra)*
        }

        impl $name {
            fn filter(&self) -> Result<AuditFilter, ApiError> {
                let mut check = FilterCheck::default();
                let user = "must be a user id (usr_…)";
                let filter = AuditFilter {
                    actor: check.field("actor", &self.actor, UserId::parse, "invalid", user),
                    effective_user: check.field("effective_user", &self.effective_user, UserId::parse, "invalid", user),
                    actor_api_key: check.field("actor_api_key", &self.actor_api_key, ApiKeyId::parse, "invalid", "must be an API key id (key_…)"),
                    action: check.field("action", &self.action, AuditAction::parse, "unknown_action", "is not an audit action"),
                    target_id: self.target.clone(),
                    since: check.field("since", &self.since, rfc3339, "date_time", "must be an RFC 3339 date-time"),
                    until: check.field("until", &self.until, rfc3339, "date_time", "must be an RFC 3339 date-time"),
                };
                check.finish(filter)
            }
        }
    };
}

fn rfc3339(raw: &str) -> Option<NaiveDateTime> {
    DateTime::parse_from_rfc3339(raw).ok().map(|t| t.naive_utc())
}

/// The problems found while parsing the filters, all reported at once.
#[derive(Default)]
struct FilterCheck(Vec<FieldError>);

impl FilterCheck {
    /// `raw` parsed, or None (and a field error when it was given but does not parse).
    fn field<T>(
        &mut self,
        field: &str,
        raw: &Option<String>,
        parse: impl Fn(&str) -> Option<T>,
        code: &str,
        message: &str,
    ) -> Option<T> {
        let raw = raw.as_deref()?;
        let parsed = parse(raw);
        if parsed.is_none() {
            self.0.push(FieldError::new(field, code, message));
        }
        parsed
    }

    /// The filter, or every problem found in it (a range ending before it starts included).
    fn finish(mut self, filter: AuditFilter) -> Result<AuditFilter, ApiError> {
        if let (Some(since), Some(until)) = (filter.since, filter.until) {
            if since > until {
                self.0
                    .push(FieldError::new("until", "range", "must not be before since"));
            }
        }
        if self.0.is_empty() {
            Ok(filter)
        } else {
            Err(ApiError::validation(self.0))
        }
    }
}

audit_query!(
    ListAuditEventsQuery {
        /// Page size, 1 to 200 (default 50).
        #[param(minimum = 1, maximum = 200)]
        pub limit: Option<i64>,
        /// `next_cursor` of the previous page.
        pub cursor: Option<String>,
    }
);

audit_query!(ExportAuditEventsQuery {});

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventPage {
    pub items: Vec<AuditEventView>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// The organization's audit log, newest first.
///
/// Needs `audit.read` over the organization (owners and admins); `account_id` must be the
/// organization (root account) itself. Each event names both the real actor and the
/// effective user. Events are append-only: no operation changes or deletes them.
#[utoipa::path(
    tag = "audit",
    operation_id = "listAuditEvents",
    security(("bearer" = [])),
    params(("account_id" = String, Path, description = "The organization's (root) account id (`acc_…`)", pattern = r"^acc_[0-9A-Za-z]{26}$"), ListAuditEventsQuery),
    responses(
        (status = 200, description = "One page, newest first", body = AuditEventPage),
        (status = 403, description = "Needs audit.read over the organization", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such organization in the caller's tenant (a sub-account has no log of its own)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A filter or the cursor is invalid", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/accounts/{account_id}/audit-events")]
pub async fn list_audit_events(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<AccountId>,
    query: Query<ListAuditEventsQuery>,
) -> Result<web::Json<AuditEventPage>, ApiError> {
    let (account, query) = (path.into_inner(), query.into_inner());
    let filter = query.filter()?;
    let page = PageRequest::parse(query.limit, query.cursor.as_deref(), |id| {
        AuditEventId::parse(id).is_some()
    })?;
    let (mut rows, page) = service::read(&state, move |tx| {
        Ok((audit::list(tx, &principal, &account, &filter, &page)?, page))
    })
    .await?;
    let next_cursor = page.finish(&mut rows, |e| e.id.as_str());
    Ok(web::Json(AuditEventPage {
        items: rows.iter().map(AuditEventView::from).collect(),
        next_cursor,
    }))
}

/// Export the organization's audit log as JSON Lines, newest first.
///
/// The same filters and permission as the list, without pages: every matching event that
/// exists when the export starts, one `AuditEventView` JSON object per line (each line is the
/// schema below), newest first. The body is streamed in batches, so an export of any size
/// is fine; should reading fail part-way, the connection is cut without the final chunk, so
/// a truncated export cannot pass for a complete one.
#[utoipa::path(
    tag = "audit",
    operation_id = "exportAuditEvents",
    security(("bearer" = [])),
    params(("account_id" = String, Path, description = "The organization's (root) account id (`acc_…`)", pattern = r"^acc_[0-9A-Za-z]{26}$"), ExportAuditEventsQuery),
    responses(
        (status = 200, description = "JSON Lines: one event per line, newest first (each line is an `AuditEventView`)", body = AuditEventView, content_type = "application/jsonl"),
        (status = 403, description = "Needs audit.read over the organization", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such organization in the caller's tenant (a sub-account has no log of its own)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A filter is invalid", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/accounts/{account_id}/audit-events/export")]
pub async fn export_audit_events(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<AccountId>,
    query: Query<ExportAuditEventsQuery>,
) -> Result<HttpResponse, ApiError> {
    let filter = query.into_inner().filter()?;
    let export = Arc::new(Export {
        principal,
        account: path.into_inner(),
        filter,
    });
    // The first batch is read before answering, so a refusal is still a problem document.
    let first = export.batch(&state, None).await?;
    let stream = futures_util::stream::try_unfold(Step::Ready(first), move |step| {
        let (state, export) = (state.clone(), export.clone());
        async move {
            let (lines, next) = match step {
                Step::Done => return Ok(None),
                Step::Ready(batch) => batch,
                Step::Fetch(before) => export.batch(&state, Some(before)).await.inspect_err(|e| {
                    log::error!("audit export stopped part-way: {e:?}");
                })?,
            };
            Ok::<_, ApiError>(Some((lines, next.map_or(Step::Done, Step::Fetch))))
        }
    });
    Ok(HttpResponse::Ok().content_type(JSON_LINES).streaming(stream))
}

/// One export under way: who asked, for which organization, with which filters.
struct Export {
    principal: Principal,
    account: AccountId,
    filter: AuditFilter,
}

/// Some lines of the export, and the id to continue below (None after the last batch).
type Batch = (Bytes, Option<String>);

enum Step {
    Ready(Batch),
    Fetch(String),
    Done,
}

impl Export {
    /// The next batch below `before`, read on the blocking pool and rendered as JSON Lines.
    async fn batch(self: &Arc<Self>, state: &web::Data<AppState>, before: Option<String>) -> Result<Batch, ApiError> {
        let page = PageRequest {
            limit: EXPORT_BATCH,
            after: before,
        };
        let export = self.clone();
        let (mut rows, page) = service::read(state, move |tx| {
            let rows = audit::list(tx, &export.principal, &export.account, &export.filter, &page)?;
            Ok((rows, page))
        })
        .await?;
        let more = page.finish(&mut rows, |e| e.id.as_str()).is_some();
        let mut lines = Vec::new();
        for row in &rows {
            serde_json::to_writer(&mut lines, &AuditEventView::from(row)).map_err(ApiError::internal)?;
            lines.push(b'\n');
        }
        let next = if more {
            rows.last().map(|e| e.id.to_string())
        } else {
            None
        };
        Ok((Bytes::from(lines), next))
    }
}

//! Notifications: the account's services post messages for users; owners and admins read
//! the outbox's delivery state and retry dead messages.

use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::extract::{Body, Query};
use crate::api::pagination::PageRequest;
use crate::api::views::utc;
use crate::auth::extract::Principal;
use crate::db::models::NotificationRow;
use crate::domain::NotificationStatus;
use crate::error::{ApiError, FieldError, Problem};
use crate::ids::{NotificationId, UserId};
use crate::service::{self, notifications};
use crate::state::AppState;

/// A notification and where its delivery stands. The body is not shown: it may carry a
/// one-time link meant for the recipient alone.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationView {
    /// `ntf_…`; also the `webhook-id` of every delivery attempt.
    pub id: String,
    /// What it is about: `invite`, `password_reset`, `password_changed`,
    /// `caretaker_assigned`, `caretaker_removed`, `message`.
    pub kind: String,
    pub status: NotificationStatus,
    pub recipient_email: String,
    #[schema(required = true)]
    pub recipient_user_id: Option<String>,
    /// The managed user a message was meant for, when it went to their caretaker (R7).
    #[schema(required = true)]
    pub on_behalf_of_user_id: Option<String>,
    pub subject: String,
    /// Delivery attempts so far.
    pub attempts: i32,
    /// Why the last attempt failed, if it did.
    #[schema(required = true)]
    pub last_error: Option<String>,
    /// When the next attempt is due (pending messages).
    pub next_attempt_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    #[schema(required = true)]
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<&NotificationRow> for NotificationView {
    fn from(n: &NotificationRow) -> Self {
        Self {
            id: n.id.to_string(),
            kind: n.kind.clone(),
            status: n.status,
            recipient_email: n.recipient_email.clone(),
            recipient_user_id: n.recipient_user_id.clone(),
            on_behalf_of_user_id: n.on_behalf_of_user_id.clone(),
            subject: n.subject.clone(),
            attempts: n.attempts,
            last_error: n.last_error.clone(),
            next_attempt_at: utc(n.next_attempt_at),
            created_at: utc(n.created_at),
            delivered_at: n.delivered_at.map(utc),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostNotification {
    /// 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200)]
    pub subject: String,
    /// 1 to 10,000 characters.
    #[schema(min_length = 1, max_length = 10000)]
    pub body: String,
    /// Structured details for the receiving system (any JSON object), delivered as `data`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub data: Option<serde_json::Map<String, serde_json::Value>>,
}

impl PostNotification {
    fn command(self) -> Result<notifications::NewMessage, ApiError> {
        let mut errors = Vec::new();
        let mut check = |field: &str, text: &str, max: usize| {
            let n = text.trim().chars().count();
            if n == 0 || text.chars().count() > max {
                errors.push(FieldError::new(
                    field,
                    "length",
                    format!("must be 1 to {max} characters long"),
                ));
            }
        };
        check("subject", &self.subject, 200);
        check("body", &self.body, 10_000);
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        Ok(notifications::NewMessage {
            subject: self.subject,
            body: self.body,
            data: serde_json::Value::Object(self.data.unwrap_or_default()),
        })
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListNotificationsQuery {
    /// `pending`, `delivered` or `dead`.
    pub status: Option<NotificationStatus>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationPage {
    pub items: Vec<NotificationView>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// Post a notification for a user.
///
/// For the account's own services (needs `notifications.send`), e.g. "text message
/// received". While a caretaker manages the user's account, the message goes to the
/// caretaker, its subject marked with the managed user's name and `on_behalf_of_user_id`
/// set (R7). Written to the outbox and delivered at least once.
#[utoipa::path(
    tag = "notifications",
    operation_id = "postUserNotification",
    security(("bearer" = [])),
    params(("user_id" = String, Path, description = "A user id (`usr_…`)", pattern = "^usr_[0-9A-Za-z]{26}$")),
    request_body = PostNotification,
    responses(
        (status = 202, description = "Written to the outbox", body = NotificationView),
        (status = 403, description = "Needs notifications.send over the user", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user in the caller's organization", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/users/{user_id}/notifications")]
pub async fn post_user_notification(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<UserId>,
    body: Body<PostNotification>,
) -> Result<HttpResponse, ApiError> {
    let (user, msg) = (path.into_inner(), body.into_inner().command()?);
    let row = service::write(&state, move |tx| {
        notifications::post_for_user(tx, &principal, &user, msg)
    })
    .await?;
    Ok(HttpResponse::Accepted().json(NotificationView::from(&row)))
}

/// The organization's notifications and their delivery state, oldest first.
///
/// Needs `notifications.manage` over the organization (owners and admins).
#[utoipa::path(
    tag = "notifications",
    operation_id = "listNotifications",
    security(("bearer" = [])),
    params(ListNotificationsQuery),
    responses(
        (status = 200, description = "One page", body = NotificationPage),
        (status = 403, description = "Needs notifications.manage over the organization", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A filter or the cursor is invalid", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/notifications")]
pub async fn list_notifications(
    state: web::Data<AppState>,
    principal: Principal,
    query: Query<ListNotificationsQuery>,
) -> Result<web::Json<NotificationPage>, ApiError> {
    let query = query.into_inner();
    let page = PageRequest::parse(query.limit, query.cursor.as_deref(), |id| {
        NotificationId::parse(id).is_some()
    })?;
    let status = query.status;
    let (mut rows, page) = service::read(&state, move |tx| {
        Ok((notifications::list(tx, &principal, status, &page)?, page))
    })
    .await?;
    let next_cursor = page.finish(&mut rows, |n| n.id.as_str());
    Ok(web::Json(NotificationPage {
        items: rows.iter().map(NotificationView::from).collect(),
        next_cursor,
    }))
}

/// Retry a dead notification: a new round of delivery attempts, due now.
#[utoipa::path(
    tag = "notifications",
    operation_id = "retryNotification",
    security(("bearer" = [])),
    params(("notification_id" = String, Path, description = "A notification id (`ntf_…`)", pattern = "^ntf_[0-9A-Za-z]{26}$")),
    responses(
        (status = 200, description = "Pending again", body = NotificationView),
        (status = 403, description = "Needs notifications.manage over the organization", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such notification in the caller's organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`notification-not-dead`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/notifications/{notification_id}/retry")]
pub async fn retry_notification(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<NotificationId>,
) -> Result<web::Json<NotificationView>, ApiError> {
    let id = path.into_inner();
    let row = service::write(&state, move |tx| notifications::retry(tx, &principal, &id)).await?;
    Ok(web::Json(NotificationView::from(&row)))
}

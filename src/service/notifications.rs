//! Notifications for people (R7, R13): the account's own services post a message for a
//! user; a message meant for a user whose account a caretaker manages goes to the caretaker,
//! marked as being for the managed user. Owners and admins read the outbox's delivery state
//! and give a dead message another round of attempts.

use serde_json::json;

use crate::auth::extract::Principal;
use crate::auth::policy;
use crate::db::models::{NotificationRow, UserRow};
use crate::db::repo::audit::{self, AuditEntry};
use crate::db::repo::notifications::{self, Outgoing};
use crate::db::repo::{caretakers, users};
use crate::db::DbConnection;
use crate::domain::page::PageRequest;
use crate::domain::permissions::Permission;
use crate::domain::{AuditAction, NotificationKind, NotificationStatus};
use crate::error::{ApiError, ProblemKind};
use crate::ids::{AccountId, NotificationId, UserId};
use crate::service::caretakers::full_name;
use crate::service::Tx;

/// A message the account's services want a user to get.
pub struct NewMessage {
    pub subject: String,
    pub body: String,
    pub data: serde_json::Value,
}

/// Who receives a message meant for `user` in an organization: the user, or their
/// caretaker while one manages the account (the second value names the managed user).
pub fn recipient_of(
    conn: &mut DbConnection,
    root: &AccountId,
    user: UserRow,
) -> Result<(UserRow, Option<UserRow>), ApiError> {
    match caretakers::live_for_managed(conn, root, &user.id)? {
        None => Ok((user, None)),
        Some(assignment) => {
            let caretaker = users::find(conn, &assignment.caretaker_user_id)?
                .ok_or_else(|| ApiError::internal("caretaker missing"))?;
            Ok((caretaker, Some(user)))
        }
    }
}

/// Posts a message for a member (needs `notifications.send` over them).
pub fn post_for_user(
    tx: &mut Tx<'_>,
    caller: &Principal,
    user: &UserId,
    msg: NewMessage,
) -> Result<NotificationRow, ApiError> {
    let caller = tx.lock_tenant(caller)?;
    let root = policy::tenant(&caller)?.root.clone();
    let member = crate::service::members::load(tx, &root, user)?;
    policy::require_on(&caller, Permission::NotificationsSend, &member.node)?;
    let (to, on_behalf_of) = recipient_of(tx.conn, &root, member.user)?;
    let subject = match &on_behalf_of {
        Some(managed) => format!("For {}: {}", full_name(managed), msg.subject),
        None => msg.subject,
    };
    let id = notifications::enqueue(
        tx.conn,
        Outgoing {
            kind: NotificationKind::Message,
            account_id: Some(root.to_string()),
            recipient_user_id: Some(to.id.to_string()),
            recipient_email: to.email.clone(),
            on_behalf_of_user_id: on_behalf_of.as_ref().map(|m| m.id.to_string()),
            subject,
            body: msg.body,
            payload: msg.data,
        },
        tx.now,
    )?;
    audit::record(
        tx.conn,
        &caller.audit(),
        AuditEntry {
            action: AuditAction::NotificationPosted,
            target_type: "user",
            target_id: user.as_str(),
            details: json!({ "notification": id, "delivered_to": to.id }),
        },
        tx.now,
    )?;
    notifications::find_in_account(tx.conn, root.as_str(), &id)?
        .ok_or_else(|| ApiError::internal("new notification vanished"))
}

/// One page of the organization's outbox (needs `notifications.manage` over the root).
pub fn list(
    tx: &mut Tx<'_>,
    caller: &Principal,
    status: Option<NotificationStatus>,
    page: &PageRequest,
) -> Result<Vec<NotificationRow>, ApiError> {
    let tenant = policy::require_on(
        caller,
        Permission::NotificationsManage,
        &policy::tenant(caller)?.account,
    )?;
    Ok(notifications::page_for_account(
        tx.conn,
        tenant.root.as_str(),
        status,
        page.after.as_deref(),
        page.fetch(),
    )?)
}

/// Gives a dead message a new round of attempts, due now.
pub fn retry(tx: &mut Tx<'_>, caller: &Principal, id: &NotificationId) -> Result<NotificationRow, ApiError> {
    let caller = tx.lock_tenant(caller)?;
    // The permission is organization-wide, so deciding it first reveals nothing about ids.
    policy::require_on(
        &caller,
        Permission::NotificationsManage,
        &policy::tenant(&caller)?.account,
    )?;
    let root = policy::tenant(&caller)?.root.clone();
    let found = notifications::find_in_account(tx.conn, root.as_str(), id)?
        .ok_or_else(|| ApiError::not_found("notification"))?;
    if !notifications::revive(tx.conn, &found.id, tx.now)? {
        return Err(ApiError::new(
            ProblemKind::NotificationNotDead,
            format!("This notification is {}; only a dead one is retried.", found.status),
        ));
    }
    audit::record(
        tx.conn,
        &caller.audit(),
        AuditEntry {
            action: AuditAction::NotificationRetried,
            target_type: "notification",
            target_id: found.id.as_str(),
            details: json!({ "attempts_before": found.attempts }),
        },
        tx.now,
    )?;
    notifications::find_in_account(tx.conn, root.as_str(), id)?
        .ok_or_else(|| ApiError::internal("notification vanished"))
}

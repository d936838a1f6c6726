//! The life cycle of a user in an organization (R3, R10, R11): deactivate and reactivate a
//! membership, archive a user (or remove them from an organization that is not their only
//! one), and restore an archived user.
//!
//! - Deactivation stops login to that organization and its tokens at once, and stops the
//!   seat; data, roles and caretaker assignments stay, and reactivation undoes it.
//! - Archiving revokes every session, destroys the password hash, ends the caretaker
//!   assignments and impersonations the user takes part in (telling those involved), and
//!   stops the seat. An archived user cannot log in, and login answers as for a wrong
//!   password, so nobody learns that the account exists.
//! - Restoring makes the user active again with no usable password, and hands out a
//!   one-time link (also sent to them) to set one; they keep their old roles.
//!
//! None of this may leave an organization without an active owner (R3).

use serde_json::json;

use crate::auth::extract::Principal;
use crate::auth::policy;
use crate::db::repo::notifications::{self, Outgoing};
use crate::db::repo::{impersonations, memberships, sessions, users};
use crate::domain::permissions::Permission;
use crate::domain::{AuditAction, MembershipStatus, NotificationKind, RevokeReason, SeatEndReason, UserStatus};
use crate::error::{ApiError, ProblemKind};
use crate::ids::{AccountId, UserId};
use crate::service::caretakers::{self, full_name};
use crate::service::members::{self, record, Member};
use crate::service::{messages, seats as seat_ledger, sessions as sessions_svc, Tx};

/// Takes the organization's lock, re-reads the caller (R15), loads the member and checks
/// the caller may manage them (owners only by those who manage owners, R4).
fn begin(tx: &mut Tx<'_>, caller: &Principal, user: &UserId) -> Result<(Principal, Member, AccountId), ApiError> {
    let caller = tx.lock_tenant(caller)?;
    let root = policy::tenant_root(&caller)?;
    let member = members::load(tx, &root, user)?;
    policy::require_member(&caller, Permission::UsersManage, &member.node, &member.roles)?;
    Ok((caller, member, root))
}

/// R3: an owner who stops being an active member must leave another active owner behind.
fn keep_an_owner(tx: &mut Tx<'_>, root: &AccountId, member: &Member) -> Result<(), ApiError> {
    if policy::holds_owner(&member.roles) {
        members::ensure_an_owner_remains(tx, root, &member.membership)?;
    }
    Ok(())
}

fn not_active(member: &Member) -> ApiError {
    ApiError::new(
        ProblemKind::MemberNotActive,
        format!("{} is not an active member.", full_name(&member.user)),
    )
}

/// Deactivates a membership (R10).
pub fn deactivate(tx: &mut Tx<'_>, caller: &Principal, user: &UserId) -> Result<Member, ApiError> {
    let (caller, member, root) = begin(tx, caller, user)?;
    if member.membership.status != MembershipStatus::Active || member.user.status != UserStatus::Active {
        return Err(not_active(&member));
    }
    keep_an_owner(tx, &root, &member)?;
    memberships::set_status(tx.conn, &member.membership.id, MembershipStatus::Deactivated, tx.now)?;
    leave_sessions(tx, &caller, &root, user, RevokeReason::MembershipDeactivated)?;
    seat_ledger::sync(tx.conn, &member.membership.id, SeatEndReason::Deactivated, tx.now)?;
    record(tx, &caller, AuditAction::MembershipDeactivated, user, json!({}))?;
    members::load(tx, &root, user)
}

/// Reactivates a deactivated membership: login works again and a new seat period opens.
pub fn reactivate(tx: &mut Tx<'_>, caller: &Principal, user: &UserId) -> Result<Member, ApiError> {
    let (caller, member, root) = begin(tx, caller, user)?;
    if member.user.status != UserStatus::Active {
        return Err(ApiError::new(
            ProblemKind::MemberNotActive,
            format!("{} is archived; restore them instead.", full_name(&member.user)),
        ));
    }
    if member.membership.status == MembershipStatus::Active {
        return Err(ApiError::new(
            ProblemKind::MemberAlreadyActive,
            format!("{} is already an active member.", full_name(&member.user)),
        ));
    }
    memberships::set_status(tx.conn, &member.membership.id, MembershipStatus::Active, tx.now)?;
    seat_ledger::sync(tx.conn, &member.membership.id, SeatEndReason::Deactivated, tx.now)?;
    record(tx, &caller, AuditAction::MembershipReactivated, user, json!({}))?;
    members::load(tx, &root, user)
}

/// What `DELETE /v1/users/{id}` did.
pub enum Removal {
    /// This organization was the user's only one: the user is archived.
    Archived(Member),
    /// The user belongs to other organizations: only this membership is gone.
    MembershipRemoved(Member),
}

/// Archives the user when this organization is their only one, else removes them from it.
pub fn remove(tx: &mut Tx<'_>, caller: &Principal, user: &UserId) -> Result<Removal, ApiError> {
    let (caller, member, root) = begin(tx, caller, user)?;
    tx.check_version(&crate::service::versions::of_member(&member))?;
    if member.user.status != UserStatus::Active {
        return Err(not_active(&member));
    }
    keep_an_owner(tx, &root, &member)?;
    caretakers::end_involving(tx, &caller, &root, user)?;
    if memberships::count_for_user(tx.conn, user)? > 1 {
        leave_sessions(tx, &caller, &root, user, RevokeReason::MembershipRemoved)?;
        memberships::delete(tx.conn, &member.membership.id)?;
        seat_ledger::sync(tx.conn, &member.membership.id, SeatEndReason::Removed, tx.now)?;
        let details = json!({ "membership": member.membership.id, "account_id": member.node.id });
        record(tx, &caller, AuditAction::MembershipRemoved, user, details)?;
        return Ok(Removal::MembershipRemoved(member));
    }
    users::archive(tx.conn, user, tx.now)?;
    impersonations::end_involving(tx.conn, user, &root, &caller.accountable_user(), tx.now)?;
    sessions::revoke_involving(tx.conn, user, None, RevokeReason::UserArchived, tx.now)?;
    crate::db::repo::password_resets::spend_all_for_user(tx.conn, user, None, tx.now)?;
    seat_ledger::sync(tx.conn, &member.membership.id, SeatEndReason::Archived, tx.now)?;
    record(tx, &caller, AuditAction::UserArchived, user, json!({}))?;
    Ok(Removal::Archived(members::load(tx, &root, user)?))
}

/// Ends the user's sessions in the organization, as themself or as the real actor, and the
/// impersonations they take part in there.
fn leave_sessions(
    tx: &mut Tx<'_>,
    caller: &Principal,
    root: &AccountId,
    user: &UserId,
    reason: RevokeReason,
) -> Result<(), ApiError> {
    impersonations::end_involving(tx.conn, user, root, &caller.accountable_user(), tx.now)?;
    sessions::revoke_involving(tx.conn, user, Some(root), reason, tx.now)?;
    Ok(())
}

/// A restored user and the one-time link that sets their password.
pub struct Restored {
    pub member: Member,
    pub set_password_url: String,
    pub expires_at: chrono::NaiveDateTime,
    /// The notice that carries the link to the user.
    pub notification_id: crate::ids::NotificationId,
}

/// Restores an archived user: active again, no usable password, a link to set one (R11).
pub fn restore(tx: &mut Tx<'_>, caller: &Principal, user: &UserId) -> Result<Restored, ApiError> {
    let (caller, member, root) = begin(tx, caller, user)?;
    if member.user.status != UserStatus::Archived {
        return Err(ApiError::new(
            ProblemKind::UserNotArchived,
            format!("{} is not archived.", full_name(&member.user)),
        ));
    }
    users::restore(tx.conn, user, tx.now)?;
    let (reset_id, link, expires_at) = sessions_svc::new_reset_link(tx, user)?;
    let organization = policy::tenant(&caller)?.account.name.clone();
    let minutes = tx.config.password_reset_ttl.as_secs() / 60;
    let text = messages::account_restored(&member.user.first_name, &organization, &link, minutes);
    let payload = json!({ "link": link, "expires_at": expires_at.and_utc() });
    let message = Outgoing::to_user(
        NotificationKind::AccountRestored,
        Some(root.to_string()),
        &member.user,
        text,
        payload,
    );
    let notification_id = notifications::enqueue(tx.conn, message, tx.now)?;
    seat_ledger::sync(tx.conn, &member.membership.id, SeatEndReason::Archived, tx.now)?;
    record(
        tx,
        &caller,
        AuditAction::UserRestored,
        user,
        json!({ "reset_id": reset_id }),
    )?;
    Ok(Restored {
        member: members::load(tx, &root, user)?,
        set_password_url: link,
        expires_at,
        notification_id,
    })
}

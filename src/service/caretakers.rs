//! Caretakers (R7, R8): someone manages a colleague's account while they are away.
//!
//! Owners and admins assign, replace and remove caretakers. While a user is managed, their
//! sessions are revoked and their login is refused naming the caretaker; the caretaker acts
//! as them with tokens whose `sub` is the managed user and whose `act.sub` is the caretaker,
//! switches between the users they manage and back to their own account without a password.
//! Removing the caretaker ends every acting-as session at once.

use serde_json::json;

use crate::auth::extract::Principal;
use crate::auth::policy;
use crate::db::models::{CaretakerAssignmentRow, NewCaretakerAssignment, UserRow};
use crate::db::repo::audit::{self, AuditEntry};
use crate::db::repo::notifications::{self, Outgoing};
use crate::db::repo::{caretakers, memberships, sessions, users};
use crate::db::DbConnection;
use crate::domain::permissions::Permission;
use crate::domain::{AuditAction, Delegation, MembershipStatus, NotificationKind, RevokeReason, UserStatus};
use crate::error::{ApiError, ProblemKind};
use crate::identity;
use crate::ids::{AccountId, CaretakerAssignmentId, UserId};
use crate::service::members::{self, Member};
use crate::service::messages;
use crate::service::sessions::{account_choices, issue_tokens, AccountChoice, IssuedTokens};
use crate::service::Tx;

/// A live assignment with both people.
pub struct Assignment {
    pub row: CaretakerAssignmentRow,
    pub managed: UserRow,
    pub caretaker: UserRow,
}

/// What every caretaker change starts with: the organization's lock, the caller re-read
/// under it (R15), and the managed user, loaded and authorized for the change.
fn begin_change(
    tx: &mut Tx<'_>,
    caller: &Principal,
    managed: &UserId,
) -> Result<(Principal, Member, AccountId), ApiError> {
    let caller = tx.lock_tenant(caller)?;
    policy::forbid_delegated(&caller, "change caretakers")?;
    let root = policy::tenant_root(&caller)?;
    let person = members::load(tx, &root, managed)?;
    policy::require_member(&caller, Permission::CaretakersManage, &person.node, &person.roles)?;
    Ok((caller, person, root))
}

/// R7: who may be managed, and by whom.
fn check_pair(conn: &mut DbConnection, root: &AccountId, managed: &Member, caretaker: &Member) -> Result<(), ApiError> {
    if managed.user.id == caretaker.user.id {
        return Err(ApiError::new(
            ProblemKind::CaretakerSelf,
            "A user cannot be their own caretaker.",
        ));
    }
    if policy::is_owner_or_admin(&managed.roles) {
        return Err(ApiError::new(
            ProblemKind::ManagedUserPrivileged,
            "Owners and admins cannot have a caretaker.",
        ));
    }
    if caretaker.user.status != UserStatus::Active || caretaker.membership.status != MembershipStatus::Active {
        return Err(ApiError::new(
            ProblemKind::CaretakerUnavailable,
            format!(
                "{} is not an active member and cannot be a caretaker.",
                full_name(&caretaker.user)
            ),
        ));
    }
    if caretakers::live_for_managed(conn, root, &caretaker.user.id)?.is_some() {
        return Err(ApiError::new(
            ProblemKind::CaretakerChain,
            format!(
                "{} is managed by a caretaker and cannot be one.",
                full_name(&caretaker.user)
            ),
        ));
    }
    if caretakers::is_caretaker(conn, root, &managed.user.id)? {
        return Err(ApiError::new(
            ProblemKind::CaretakerChain,
            format!(
                "{} is a caretaker of others and cannot be managed.",
                full_name(&managed.user)
            ),
        ));
    }
    Ok(())
}

pub fn full_name(user: &UserRow) -> String {
    format!("{} {}", user.first_name, user.last_name)
}

/// The live caretaker of a user (needs `users.read` over them).
pub fn get(tx: &mut Tx<'_>, caller: &Principal, managed: &UserId) -> Result<Assignment, ApiError> {
    let root = policy::tenant_root(caller)?;
    let person = members::load(tx, &root, managed)?;
    policy::require_on(caller, Permission::UsersRead, &person.node)?;
    let row = caretakers::live_for_managed(tx.conn, &root, managed)?.ok_or_else(|| {
        ApiError::new(
            ProblemKind::NoCaretaker,
            format!("{} has no caretaker.", full_name(&person.user)),
        )
    })?;
    let caretaker =
        users::find(tx.conn, &row.caretaker_user_id)?.ok_or_else(|| ApiError::internal("caretaker missing"))?;
    Ok(Assignment {
        row,
        managed: person.user,
        caretaker,
    })
}

/// Assigns a caretaker; a user who has one already must be given another by [`replace`].
pub fn assign(
    tx: &mut Tx<'_>,
    caller: &Principal,
    managed: &UserId,
    caretaker: &UserId,
) -> Result<Assignment, ApiError> {
    let (caller, person, root) = begin_change(tx, caller, managed)?;
    if let Some(existing) = caretakers::live_for_managed(tx.conn, &root, managed)? {
        return Err(ApiError::new(
            ProblemKind::CaretakerAlreadyAssigned,
            format!(
                "{} already has a caretaker ({}); replace them instead.",
                full_name(&person.user),
                existing.caretaker_user_id
            ),
        ));
    }
    let helper = members::load(tx, &root, caretaker)?;
    check_pair(tx.conn, &root, &person, &helper)?;
    let assignment = start(tx, &caller, &root, person, helper)?;
    record(tx, &caller, AuditAction::CaretakerAssigned, &assignment, json!({}))?;
    Ok(assignment)
}

/// Replaces a user's caretaker: the old one's acting-as sessions end at once.
pub fn replace(
    tx: &mut Tx<'_>,
    caller: &Principal,
    managed: &UserId,
    caretaker: &UserId,
) -> Result<Assignment, ApiError> {
    let (caller, person, root) = begin_change(tx, caller, managed)?;
    let previous = caretakers::live_for_managed(tx.conn, &root, managed)?.ok_or_else(|| {
        ApiError::new(
            ProblemKind::NoCaretaker,
            format!("{} has no caretaker to replace.", full_name(&person.user)),
        )
    })?;
    tx.check_version(&crate::service::versions::of_caretaker(&previous))?;
    let helper = members::load(tx, &root, caretaker)?;
    if previous.caretaker_user_id == helper.user.id {
        return Err(ApiError::new(
            ProblemKind::CaretakerAlreadyAssigned,
            format!("{} is already this user's caretaker.", full_name(&helper.user)),
        ));
    }
    check_pair(tx.conn, &root, &person, &helper)?;
    let old = end(tx, &caller, &previous)?;
    let assignment = start(tx, &caller, &root, person, helper)?;
    record(
        tx,
        &caller,
        AuditAction::CaretakerReplaced,
        &assignment,
        json!({ "previous_caretaker": old.id }),
    )?;
    Ok(assignment)
}

/// Ends a user's caretaker assignment: acting-as sessions stop working, login works again.
pub fn remove(tx: &mut Tx<'_>, caller: &Principal, managed: &UserId) -> Result<(), ApiError> {
    let (caller, person, root) = begin_change(tx, caller, managed)?;
    let row = caretakers::live_for_managed(tx.conn, &root, managed)?.ok_or_else(|| {
        ApiError::new(
            ProblemKind::NoCaretaker,
            format!("{} has no caretaker.", full_name(&person.user)),
        )
    })?;
    tx.check_version(&crate::service::versions::of_caretaker(&row))?;
    let caretaker = end(tx, &caller, &row)?;
    notify_managed(tx, &root, &person.user, &caretaker, false)?;
    record(
        tx,
        &caller,
        AuditAction::CaretakerRemoved,
        &Assignment {
            row,
            managed: person.user,
            caretaker,
        },
        json!({}),
    )
}

/// Ends every live assignment a user takes part in, managed or caretaker, in an
/// organization (they were archived or left it, R11); both people are told.
pub fn end_involving(tx: &mut Tx<'_>, caller: &Principal, root: &AccountId, user: &UserId) -> Result<usize, ApiError> {
    let rows = caretakers::live_involving(tx.conn, root, user)?;
    for row in &rows {
        let caretaker = end(tx, caller, row)?;
        let managed =
            users::find(tx.conn, &row.managed_user_id)?.ok_or_else(|| ApiError::internal("managed user missing"))?;
        notify_managed(tx, root, &managed, &caretaker, false)?;
        let assignment = Assignment {
            row: row.clone(),
            managed,
            caretaker,
        };
        record(
            tx,
            caller,
            AuditAction::CaretakerRemoved,
            &assignment,
            json!({ "because": "a member left" }),
        )?;
    }
    Ok(rows.len())
}

fn start(
    tx: &mut Tx<'_>,
    caller: &Principal,
    root: &AccountId,
    person: Member,
    helper: Member,
) -> Result<Assignment, ApiError> {
    let id = caretakers::insert(
        tx.conn,
        NewCaretakerAssignment {
            id: CaretakerAssignmentId::generate(),
            root_account_id: root.clone(),
            managed_user_id: person.user.id.clone(),
            caretaker_user_id: helper.user.id.clone(),
            assigned_by: caller.accountable_user(),
            assigned_at: tx.now,
        },
    )?;
    // The managed user's own sessions end now (R7); acting-as sessions of others are not theirs.
    sessions::revoke_all_for_user(tx.conn, &person.user.id, None, RevokeReason::CaretakerAssigned, tx.now)?;
    notify(tx, root, &helper.user, &person.user, true)?;
    notify_managed(tx, root, &person.user, &helper.user, true)?;
    let row = caretakers::live_for_managed(tx.conn, root, &person.user.id)?
        .filter(|r| r.id == id)
        .ok_or_else(|| ApiError::internal("new assignment vanished"))?;
    Ok(Assignment {
        row,
        managed: person.user,
        caretaker: helper.user,
    })
}

/// Ends an assignment and every acting-as session it allowed; tells the caretaker.
fn end(tx: &mut Tx<'_>, caller: &Principal, row: &CaretakerAssignmentRow) -> Result<UserRow, ApiError> {
    caretakers::end(tx.conn, &row.id, &caller.accountable_user(), tx.now)?;
    sessions::revoke_delegated(
        tx.conn,
        &row.managed_user_id,
        &row.caretaker_user_id,
        Delegation::Caretaker,
        RevokeReason::CaretakerRemoved,
        tx.now,
    )?;
    let caretaker =
        users::find(tx.conn, &row.caretaker_user_id)?.ok_or_else(|| ApiError::internal("caretaker missing"))?;
    let managed =
        users::find(tx.conn, &row.managed_user_id)?.ok_or_else(|| ApiError::internal("managed user missing"))?;
    notify(tx, &row.root_account_id, &caretaker, &managed, false)?;
    Ok(caretaker)
}

/// To the caretaker: you now manage (or no longer manage) this user.
fn notify(
    tx: &mut Tx<'_>,
    root: &AccountId,
    caretaker: &UserRow,
    managed: &UserRow,
    assigned: bool,
) -> Result<(), ApiError> {
    let (subject, body) = messages::caretaker_to_caretaker(caretaker, managed, assigned);
    enqueue(tx, root, caretaker, assigned, (subject, body), managed)
}

/// To the managed user themself (never rerouted): someone now manages your account.
fn notify_managed(
    tx: &mut Tx<'_>,
    root: &AccountId,
    managed: &UserRow,
    caretaker: &UserRow,
    assigned: bool,
) -> Result<(), ApiError> {
    let (subject, body) = messages::caretaker_to_managed(managed, caretaker, assigned);
    enqueue(tx, root, managed, assigned, (subject, body), caretaker)
}

/// Caretaker notices go to the person named, never rerouted to a caretaker.
fn enqueue(
    tx: &mut Tx<'_>,
    root: &AccountId,
    to: &UserRow,
    assigned: bool,
    text: (String, String),
    other: &UserRow,
) -> Result<(), ApiError> {
    let kind = if assigned {
        NotificationKind::CaretakerAssigned
    } else {
        NotificationKind::CaretakerRemoved
    };
    let payload = json!({ "other_user_id": other.id });
    let message = Outgoing::to_user(kind, Some(root.to_string()), to, text, payload);
    notifications::enqueue(tx.conn, message, tx.now)?;
    Ok(())
}

fn record(
    tx: &mut Tx<'_>,
    caller: &Principal,
    action: AuditAction,
    a: &Assignment,
    extra: serde_json::Value,
) -> Result<(), ApiError> {
    let mut details = json!({ "caretaker": a.caretaker.id, "assignment": a.row.id });
    if let (Some(map), serde_json::Value::Object(more)) = (details.as_object_mut(), extra) {
        map.extend(more);
    }
    audit::record(
        tx.conn,
        &caller.audit(),
        AuditEntry {
            action,
            target_type: "user",
            target_id: a.managed.id.as_str(),
            details,
        },
        tx.now,
    )?;
    Ok(())
}

/// The users the real actor manages in the caller's organization.
pub fn managed_users(tx: &mut Tx<'_>, caller: &Principal) -> Result<Vec<(CaretakerAssignmentRow, UserRow)>, ApiError> {
    let root = policy::tenant(caller)?.root.clone();
    let me = policy::require_person(caller, "manage anyone's account as a caretaker")?;
    Ok(caretakers::managed_by(tx.conn, &root, &me.actor_id)?)
}

/// Starts acting as a managed user, or switches to another one: the new session's `sub` is
/// the managed user and its actor the caretaker; a previous acting-as session ends, so
/// delegations never nest (R8).
pub fn act_as(tx: &mut Tx<'_>, caller: &Principal, managed: &UserId) -> Result<IssuedTokens, ApiError> {
    policy::may_start_caretaking(caller)?;
    let me = policy::require_person(caller, "start a delegation")?;
    let root = policy::tenant_root(caller)?;
    let assignment = caretakers::live_for_managed(tx.conn, &root, managed)?
        .filter(|a| a.caretaker_user_id == me.actor_id)
        .ok_or_else(|| ApiError::not_found("managed user"))?;
    let person = members::load(tx, &root, managed)?;
    if person.membership.status != MembershipStatus::Active || person.user.status != UserStatus::Active {
        return Err(ApiError::new(
            ProblemKind::MemberNotActive,
            format!("{} is not an active member.", full_name(&person.user)),
        ));
    }
    if caller.is_delegated() {
        sessions::revoke(tx.conn, &me.session.id, RevokeReason::DelegationSwitched, tx.now)?;
    }
    let ttl = tx.config.refresh_token_ttl;
    let acting = Some((&me.actor_id, Delegation::Caretaker));
    let opened = identity::open_session_as(tx.conn, &person.user.id, Some(&root), acting, ttl, tx.now)?;
    audit::record(
        tx.conn,
        &audit_ctx(caller, &person.user.id, &root),
        AuditEntry {
            action: AuditAction::DelegationStarted,
            target_type: "user",
            target_id: person.user.id.as_str(),
            details: json!({ "kind": Delegation::Caretaker, "assignment": assignment.id, "session": opened.session.id }),
        },
        tx.now,
    )?;
    issue_tokens(tx, &opened.session, Some(opened.refresh_token), &person.user)
}

/// Ends the acting-as session and hands the caretaker a session of their own again. An
/// impersonation just ends (`None`): its actor still holds the session they started it
/// from, and a read-only token must never turn into a full session of theirs.
pub fn back_to_own(tx: &mut Tx<'_>, caller: &Principal) -> Result<Option<IssuedTokens>, ApiError> {
    let me = policy::require_person(caller, "act as anyone")?;
    if me.delegation == Some(Delegation::Impersonation) {
        return crate::service::impersonations::end_own(tx, caller).map(|_| None);
    }
    if me.delegation != Some(Delegation::Caretaker) {
        return Err(ApiError::new(
            ProblemKind::Conflict,
            "This session is not acting as a managed user.",
        ));
    }
    let root = policy::tenant_root(caller)?;
    sessions::revoke(tx.conn, &me.session.id, RevokeReason::DelegationEnded, tx.now)?;
    let actor = users::find(tx.conn, &me.actor_id)?
        .filter(|u| u.status == UserStatus::Active)
        .ok_or_else(|| ApiError::unauthenticated("Your own account is no longer active; log in again."))?;
    let usable =
        memberships::find_for_user_in(tx.conn, &actor.id, &root)?.is_some_and(|m| m.status == MembershipStatus::Active);
    let account = usable.then_some(&root);
    let opened = identity::open_session(tx.conn, &actor.id, account, tx.config.refresh_token_ttl, tx.now)?;
    audit::record(
        tx.conn,
        &caller.audit(),
        AuditEntry {
            action: AuditAction::DelegationEnded,
            target_type: "user",
            target_id: me.user.id.as_str(),
            details: json!({ "kind": Delegation::Caretaker, "session": me.session.id }),
        },
        tx.now,
    )?;
    issue_tokens(tx, &opened.session, Some(opened.refresh_token), &actor).map(Some)
}

fn audit_ctx(caller: &Principal, effective: &UserId, root: &AccountId) -> crate::db::repo::audit::AuditContext {
    crate::db::repo::audit::AuditContext {
        effective: Some(effective.to_string()),
        account: Some(root.to_string()),
        ..caller.audit()
    }
}

/// The organizations a user may log in to or switch to (R5), less those where a caretaker
/// manages their account (R7). When that leaves none, the refusal names the caretaker.
pub fn login_choices(conn: &mut DbConnection, user: &UserRow) -> Result<Vec<AccountChoice>, ApiError> {
    let choices = account_choices(conn, user)?;
    let managed = caretakers::live_for_managed_anywhere(conn, &user.id)?;
    if managed.is_empty() {
        return Ok(choices);
    }
    let open: Vec<AccountChoice> = choices
        .into_iter()
        .filter(|(_, root, _)| !managed.iter().any(|a| a.root_account_id == root.id))
        .collect();
    if open.is_empty() {
        let caretaker = users::find(conn, &managed[0].caretaker_user_id)?;
        let name = caretaker
            .map(|c| format!("{} ({})", full_name(&c), c.email))
            .unwrap_or_else(|| "a caretaker".into());
        return Err(ApiError::new(
            ProblemKind::AccountManaged,
            format!("Your account is being managed by {name} while you are away; ask them or an admin to end it."),
        ));
    }
    Ok(open)
}

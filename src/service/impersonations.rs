//! Impersonation (R8, R9): a support person with `users.impersonate` "logs in as" a member
//! of the same organization to see the account as they do.
//!
//! It cannot escalate: the target must hold no permission the actor lacks, and the session
//! is read-only unless full mode was asked for and the actor may change the target. The
//! session has a bounded lifetime, one access token (`sub` the target, `act.sub` the actor)
//! and no refresh token; ending it, or its expiry, stops the token at once. Its start, every
//! request made under it (reads too) and its end are audited, and the target can list who
//! impersonated them.

use chrono::Duration;
use serde_json::json;

use crate::auth::extract::Principal;
use crate::auth::policy::{self, ImpersonationTarget};
use crate::db::models::{ImpersonationRow, NewImpersonation, SessionRow, UserRow};
use crate::db::repo::audit::{self, AuditContext, AuditEntry};
use crate::db::repo::impersonations::{self, ListFilter};
use crate::db::repo::{accounts, caretakers, sessions};
use crate::domain::page::PageRequest;
use crate::domain::{AuditAction, Delegation, ImpersonationMode, MembershipStatus, RevokeReason, UserStatus};
use crate::error::{ApiError, ProblemKind};
use crate::identity;
use crate::ids::{AccountId, ImpersonationId, UserId};
use crate::service::members;
use crate::service::Tx;

/// How long an impersonation lasts when the request does not say (R9).
pub const DEFAULT_MINUTES: u32 = 60;

/// A request to log in as someone, as the handler parsed it.
pub struct StartImpersonation {
    pub target: UserId,
    pub reason: String,
    pub mode: ImpersonationMode,
    /// `None`: the default, or the configured maximum if that is shorter.
    pub minutes: Option<u32>,
}

/// A started impersonation and the one access token of its session.
pub struct Started {
    pub impersonation: Listed,
    pub access_token: String,
    pub expires_in: u64,
}

/// An impersonation with the two people it names.
pub struct Listed {
    pub row: ImpersonationRow,
    /// When its session was revoked by other means (a password change, an archive).
    pub session_revoked_at: Option<chrono::NaiveDateTime>,
    pub actor: Option<UserRow>,
    pub target: Option<UserRow>,
}

/// Starts an impersonation. Decided on the caller's rights as they are under the
/// organization's lock (R15), so a concurrent demotion cannot slip through.
pub fn start(tx: &mut Tx<'_>, caller: &Principal, cmd: StartImpersonation) -> Result<Started, ApiError> {
    let minutes = lifetime(tx, cmd.minutes)?;
    let caller = tx.lock_tenant(caller)?;
    let root = policy::tenant_root(&caller)?;
    let person = members::load(tx, &root, &cmd.target)?;
    let tenant = policy::require_impersonate(&caller, &person.node)?;
    let permissions = crate::service::roles::permissions_of(tx.conn, &person.roles)?;
    let target = ImpersonationTarget {
        user: &person.user.id,
        active: person.membership.status == MembershipStatus::Active && person.user.status == UserStatus::Active,
        permissions: &permissions,
        managed_by_caretaker: caretakers::live_for_managed(tx.conn, &root, &person.user.id)?.is_some(),
    };
    policy::impersonation_target(&caller, tenant, &target)?;
    policy::impersonation_mode(&caller, cmd.mode, &person.node, &person.roles)?;
    let me = policy::require_person(&caller, "impersonate anyone")?;

    let expires_at = tx.now + Duration::minutes(i64::from(minutes));
    let acting = (&me.actor_id, Delegation::Impersonation);
    let session = identity::open_unrefreshable_session(tx.conn, &person.user.id, &root, acting, expires_at, tx.now)?;
    let id = ImpersonationId::generate();
    impersonations::insert(
        tx.conn,
        NewImpersonation {
            id: id.clone(),
            root_account_id: root.clone(),
            actor_user_id: me.actor_id.clone(),
            target_user_id: person.user.id.clone(),
            session_id: session.id.clone(),
            mode: cmd.mode,
            reason: cmd.reason,
            started_at: tx.now,
            expires_at,
        },
    )?;
    let row = impersonations::find(tx.conn, &id)?.ok_or_else(|| ApiError::internal("new impersonation vanished"))?;
    record(tx, &as_target(&caller, &row), AuditAction::ImpersonationStarted, &row)?;
    issue(tx, row, &session, &me.user, person.user)
}

fn issue(
    tx: &mut Tx<'_>,
    row: ImpersonationRow,
    session: &SessionRow,
    actor: &UserRow,
    target: UserRow,
) -> Result<Started, ApiError> {
    let signed = tx.tokens.issue_for_session_lifetime(session, tx.now)?;
    Ok(Started {
        impersonation: Listed {
            session_revoked_at: None,
            row,
            actor: Some(actor.clone()),
            target: Some(target),
        },
        access_token: signed.token,
        expires_in: signed.expires_in,
    })
}

/// The asked-for lifetime, within 1 minute and the configured maximum.
fn lifetime(tx: &Tx<'_>, asked: Option<u32>) -> Result<u32, ApiError> {
    let max = tx.config.impersonation_max_minutes;
    match asked {
        None => Ok(DEFAULT_MINUTES.min(max)),
        Some(m) if (1..=max).contains(&m) => Ok(m),
        Some(_) => Err(ApiError::field(
            "minutes",
            "range",
            format!("must be from 1 to {max} (the configured maximum)"),
        )),
    }
}

/// Ends an impersonation: its session is revoked, so its token stops working at once.
pub fn end(tx: &mut Tx<'_>, caller: &Principal, id: &ImpersonationId) -> Result<Listed, ApiError> {
    let row = impersonations::find(tx.conn, id)?.ok_or_else(|| ApiError::not_found("impersonation"))?;
    policy::may_end_impersonation(caller, &row)?;
    finish(tx, caller, row)
}

/// Ends the impersonation the caller's own session is (logout, or leaving it).
pub fn end_own(tx: &mut Tx<'_>, caller: &Principal) -> Result<(), ApiError> {
    let sid = &policy::require_person(caller, "end an impersonation of its own")?
        .session
        .id;
    let row = impersonations::for_session(tx.conn, sid)?
        .ok_or_else(|| ApiError::new(ProblemKind::Conflict, "This session is not an impersonation."))?;
    finish(tx, caller, row).map(|_| ())
}

fn finish(tx: &mut Tx<'_>, caller: &Principal, row: ImpersonationRow) -> Result<Listed, ApiError> {
    let revoked = !impersonations::revoked_sessions(tx.conn, std::slice::from_ref(&row))?.is_empty();
    if revoked
        || row.expires_at <= tx.now
        || !impersonations::end(tx.conn, &row.id, &caller.accountable_user(), tx.now)?
    {
        return Err(ApiError::new(
            ProblemKind::ImpersonationEnded,
            "This impersonation has already ended.",
        ));
    }
    sessions::revoke(tx.conn, &row.session_id, RevokeReason::DelegationEnded, tx.now)?;
    let row = impersonations::find(tx.conn, &row.id)?.ok_or_else(|| ApiError::internal("impersonation vanished"))?;
    let mut ctx = caller.audit();
    ctx.account = Some(row.root_account_id.to_string());
    record(tx, &ctx, AuditAction::ImpersonationEnded, &row)?;
    with_person(tx, row)
}

/// One impersonation, for its actor, its target, or a reader of the audit trail.
pub fn get(tx: &mut Tx<'_>, caller: &Principal, id: &ImpersonationId) -> Result<Listed, ApiError> {
    let row = impersonations::find(tx.conn, id)?.ok_or_else(|| ApiError::not_found("impersonation"))?;
    policy::may_read_impersonation(caller, &row)?;
    with_person(tx, row)
}

/// Narrows an organization's list of impersonations.
pub struct AccountFilter {
    pub actor: Option<UserId>,
    pub target: Option<UserId>,
    pub active: Option<bool>,
}

/// An organization's impersonations, newest first (`audit.read`).
pub fn list_for_account(
    tx: &mut Tx<'_>,
    caller: &Principal,
    account: &AccountId,
    filter: AccountFilter,
    page: &PageRequest,
) -> Result<(Vec<Listed>, Option<String>), ApiError> {
    let node = accounts::find(tx.conn, account)?.ok_or_else(|| ApiError::not_found("account"))?;
    let tenant = policy::require_impersonation_log(caller, &node)?;
    let filter = ListFilter {
        root: Some(tenant.root.clone()),
        actor: filter.actor,
        target: filter.target,
        active: filter.active,
        now: Some(tx.now),
        before: page.after.clone(),
        limit: page.fetch(),
    };
    list(tx, &filter, page)
}

/// Who impersonated the caller, and when, in any organization, newest first.
pub fn list_mine(
    tx: &mut Tx<'_>,
    caller: &Principal,
    page: &PageRequest,
) -> Result<(Vec<Listed>, Option<String>), ApiError> {
    let me = policy::require_person(caller, "be impersonated")?;
    let filter = ListFilter {
        target: Some(me.user.id.clone()),
        before: page.after.clone(),
        limit: page.fetch(),
        ..ListFilter::default()
    };
    list(tx, &filter, page)
}

fn list(tx: &mut Tx<'_>, filter: &ListFilter, page: &PageRequest) -> Result<(Vec<Listed>, Option<String>), ApiError> {
    let mut rows = impersonations::list(tx.conn, filter)?;
    let next = page.finish(&mut rows, |r| r.id.as_str());
    Ok((with_people(tx, rows)?, next))
}

fn with_person(tx: &mut Tx<'_>, row: ImpersonationRow) -> Result<Listed, ApiError> {
    with_people(tx, vec![row])?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::internal("an impersonation lost its people"))
}

fn with_people(tx: &mut Tx<'_>, rows: Vec<ImpersonationRow>) -> Result<Vec<Listed>, ApiError> {
    let people = impersonations::people(tx.conn, &rows)?;
    let revoked = impersonations::revoked_sessions(tx.conn, &rows)?;
    let find = |id: &UserId| people.iter().find(|u| u.id == *id).cloned();
    Ok(rows
        .into_iter()
        .map(|row| Listed {
            session_revoked_at: revoked
                .iter()
                .find(|(sid, _)| sid == row.session_id.as_str())
                .map(|(_, at)| *at),
            actor: find(&row.actor_user_id),
            target: find(&row.target_user_id),
            row,
        })
        .collect())
}

/// A request made under an impersonation token, as the audit trail records it.
pub struct ImpersonatedRequest {
    pub audit: AuditContext,
    pub impersonation: ImpersonationId,
    pub method: String,
    pub route: String,
    pub status: u16,
}

/// Records one request made under an impersonation token, reads included (R9).
pub fn record_request(tx: &mut Tx<'_>, request: ImpersonatedRequest) -> Result<(), ApiError> {
    audit::record(
        tx.conn,
        &request.audit,
        AuditEntry {
            action: AuditAction::ImpersonationRequest,
            target_type: "impersonation",
            target_id: request.impersonation.as_str(),
            details: json!({ "method": request.method, "route": request.route, "status": request.status }),
        },
        tx.now,
    )?;
    Ok(())
}

/// The start is made by the actor as themself, about the target, in the organization.
fn as_target(caller: &Principal, row: &ImpersonationRow) -> AuditContext {
    AuditContext {
        account: Some(row.root_account_id.to_string()),
        ..caller.audit()
    }
}

fn record(tx: &mut Tx<'_>, ctx: &AuditContext, action: AuditAction, row: &ImpersonationRow) -> Result<(), ApiError> {
    audit::record(
        tx.conn,
        ctx,
        AuditEntry {
            action,
            target_type: "user",
            target_id: row.target_user_id.as_str(),
            details: json!({
                "impersonation": row.id,
                "mode": row.mode,
                "reason": row.reason,
                "expires_at": row.expires_at.and_utc().to_rfc3339(),
                "session": row.session_id,
            }),
        },
        tx.now,
    )?;
    Ok(())
}

//! Every allow/deny decision, in one place. Handlers ask; they never compare role names or
//! permissions themselves.

use crate::auth::extract::{Principal, SessionCaller, TenantContext};
use crate::db::models::{AccountRow, RoleRow};
use crate::domain::permissions::{BuiltinRole, Permission, PermissionSet};
use crate::domain::Delegation;
use crate::error::{ApiError, ProblemKind};

/// The caller's tenant, for any call that works inside an account. Refused when the token
/// has not picked an account yet, or when the user must first change their password.
pub fn tenant(principal: &Principal) -> Result<&TenantContext, ApiError> {
    let must_change = principal
        .session_caller()
        .is_some_and(|c| c.user.must_change_password && c.delegation.is_none());
    if must_change {
        return Err(ApiError::new(
            ProblemKind::PasswordChangeRequired,
            "Change your password (POST /v1/me/password) before using the account.",
        ));
    }
    principal.tenant.as_ref().ok_or_else(|| {
        ApiError::forbidden("This token has not picked an account yet; call POST /v1/auth/switch-account.")
    })
}

/// The caller holds `permission` at their own node.
pub fn require(principal: &Principal, permission: Permission) -> Result<&TenantContext, ApiError> {
    let tenant = tenant(principal)?;
    if !tenant.permissions.contains(&permission) {
        return Err(ApiError::forbidden(format!(
            "This needs the permission {}.",
            permission.as_str()
        )));
    }
    Ok(tenant)
}

/// The caller holds `permission` over `target`: the target is in the caller's tenant (else
/// it answers 404, as if it did not exist: R1) and at or below the caller's node (R2).
pub fn require_on<'p>(
    principal: &'p Principal,
    permission: Permission,
    target: &AccountRow,
) -> Result<&'p TenantContext, ApiError> {
    let tenant = tenant(principal)?;
    if target.root_id != tenant.root {
        return Err(ApiError::not_found("account"));
    }
    if !target.path.starts_with(&tenant.node.path) {
        return Err(ApiError::forbidden(
            "That account is outside the part of the organization you can reach.",
        ));
    }
    if !tenant.permissions.contains(&permission) {
        return Err(ApiError::forbidden(format!(
            "This needs the permission {}.",
            permission.as_str()
        )));
    }
    Ok(tenant)
}

/// What only a person's own session may do, never an API key: anything about the person
/// themself (their password, sessions, accounts), starting a delegation (caretaking,
/// impersonation), and managing API keys.
pub fn require_person<'p>(principal: &'p Principal, what: &str) -> Result<&'p SessionCaller, ApiError> {
    principal.session_caller().ok_or_else(|| {
        ApiError::new(
            ProblemKind::ApiKeyForbidden,
            format!("An API key cannot {what}; this needs a person's session."),
        )
    })
}

/// Things an acting-as token may never do (R8): start another delegation, change the
/// effective user's password, email or caretaker, read secrets.
pub fn forbid_delegated(principal: &Principal, what: &str) -> Result<(), ApiError> {
    if principal.is_delegated() {
        return Err(ApiError::new(
            ProblemKind::ActingAsForbidden,
            format!("A session acting as another user cannot {what}."),
        ));
    }
    Ok(())
}

/// The caller can see `target`: in their tenant (else 404, R1) and at or below their node
/// (else 403, R2). No particular permission is needed to see a node one belongs to.
pub fn require_visible<'p>(principal: &'p Principal, target: &AccountRow) -> Result<&'p TenantContext, ApiError> {
    let tenant = tenant(principal)?;
    if target.root_id != tenant.root {
        return Err(ApiError::not_found("account"));
    }
    if !target.path.starts_with(&tenant.node.path) {
        return Err(ApiError::forbidden(
            "That account is outside the part of the organization you can reach.",
        ));
    }
    Ok(tenant)
}

/// The caller may act with `permission` on a member whose membership sits at `node` and
/// who holds `roles`: the node is within reach (R1, R2), and only those who may manage
/// owners touch an owner (R4).
pub fn require_member<'p>(
    principal: &'p Principal,
    permission: Permission,
    node: &AccountRow,
    member_roles: &[RoleRow],
) -> Result<&'p TenantContext, ApiError> {
    let tenant = require_on(principal, permission, node)?;
    if holds_owner(member_roles) && !tenant.permissions.contains(&Permission::OwnersManage) {
        return Err(ApiError::forbidden("Only owners can change an owner."));
    }
    Ok(tenant)
}

/// Nobody grants what they do not hold themselves (R4): every permission of every role
/// must be the caller's, and the owner role needs `owners.manage`.
pub fn require_grantable(tenant: &TenantContext, roles: &[(RoleRow, PermissionSet)]) -> Result<(), ApiError> {
    for (role, permissions) in roles {
        if let Some(missing) = permissions.difference(&tenant.permissions).next() {
            return Err(ApiError::forbidden(format!(
                "You cannot grant the role {} because it includes {}, which you do not hold.",
                role.name,
                missing.as_str()
            )));
        }
        if role.builtin == Some(BuiltinRole::Owner) && !tenant.permissions.contains(&Permission::OwnersManage) {
            return Err(ApiError::forbidden("Only owners can make someone an owner."));
        }
    }
    Ok(())
}

/// A custom role may only hold permissions its author holds (R4).
pub fn require_permissions_held(tenant: &TenantContext, wanted: &PermissionSet) -> Result<(), ApiError> {
    match wanted.difference(&tenant.permissions).next() {
        Some(missing) => Err(ApiError::forbidden(format!(
            "You cannot give a role the permission {}, which you do not hold.",
            missing.as_str()
        ))),
        None => Ok(()),
    }
}

pub fn holds_owner(roles: &[RoleRow]) -> bool {
    roles.iter().any(|r| r.builtin == Some(BuiltinRole::Owner))
}

// ---- accounts: the tree, profiles, closing, billing ----

/// The caller may read or replace `account`'s billing profile: `account.billing` over it (R1,
/// R2), and only an organization (a root) has one: any other node answers 404.
pub fn require_billing<'p>(principal: &'p Principal, account: &AccountRow) -> Result<&'p TenantContext, ApiError> {
    require_on_organization(principal, Permission::AccountBilling, account, "billing profile")
}

/// `permission` over `account` (R1, R2) for something only an organization (a root) has:
/// asked of any other node, `what` answers 404.
fn require_on_organization<'p>(
    principal: &'p Principal,
    permission: Permission,
    account: &AccountRow,
    what: &str,
) -> Result<&'p TenantContext, ApiError> {
    let tenant = require_on(principal, permission, account)?;
    if account.parent_id.is_some() {
        return Err(ApiError::not_found(&format!("{what} (only organizations have one)")));
    }
    Ok(tenant)
}

// ---- members: profiles, roles, place in the tree, ownership ----

/// The caller may read the member `user`, whose membership sits at `node`: anyone may read
/// themself; reading someone else needs `users.read` over their node (R1, R2).
pub fn require_read_member<'p>(
    principal: &'p Principal,
    user: &crate::ids::UserId,
    node: &AccountRow,
) -> Result<&'p TenantContext, ApiError> {
    if principal.user_id() == Some(user) {
        return tenant(principal);
    }
    require_on(principal, Permission::UsersRead, node)
}

/// The caller may edit the profile of the member `user` (at `node`, holding `member_roles`):
/// anyone may edit their own profile and preferences; someone else's, and any external id
/// (one's own included: it is the integrator's), needs `users.manage` over the member, and
/// `owners.manage` for an owner (R4).
pub fn require_edit_member<'p>(
    principal: &'p Principal,
    user: &crate::ids::UserId,
    node: &AccountRow,
    member_roles: &[RoleRow],
    sets_external_id: bool,
) -> Result<&'p TenantContext, ApiError> {
    if principal.user_id() == Some(user) && !sets_external_id {
        return tenant(principal);
    }
    require_member(principal, Permission::UsersManage, node, member_roles)
}

/// An administrator may change a member's email only when the user belongs to this
/// organization alone (`organizations`: how many they belong to): the address is their
/// login everywhere, and another organization's administrators must not change it. Never
/// from a session acting as someone else (R8).
pub fn require_change_email(principal: &Principal, organizations: i64) -> Result<(), ApiError> {
    forbid_delegated(principal, "change an email address")?;
    if organizations > 1 {
        return Err(ApiError::forbidden(
            "This user belongs to other organizations too, so their email address is theirs to change.",
        ));
    }
    Ok(())
}

/// A member list may be narrowed to a node of the caller's own organization only; any other
/// node reads as unknown (R1). The list is always cut to the caller's reach besides (R2).
pub fn may_list_within(tenant: &TenantContext, node: &AccountRow) -> bool {
    node.root_id == tenant.root
}

/// Ownership is over the whole organization: handing it on needs `account.transfer` with
/// reach over the root (R2), never a membership further down.
pub fn require_transfer_ownership(principal: &Principal) -> Result<&TenantContext, ApiError> {
    require_person(
        principal,
        "transfer ownership (it is handed from one person to another)",
    )?;
    let tenant = tenant(principal)?;
    require_on(principal, Permission::AccountTransfer, &tenant.account)
}

// ---- invitations ----

/// Only the person an invitation was sent to may accept it with their own login: its
/// address must be the caller's (compared case-insensitively).
pub fn require_invitee(principal: &Principal, invite: &crate::db::models::InviteRow) -> Result<(), ApiError> {
    let person = require_person(principal, "accept an invitation")?;
    if invite.email_normalized != person.user.email_normalized {
        return Err(ApiError::forbidden(
            "This invitation was sent to another email address.",
        ));
    }
    Ok(())
}

// ---- sessions and the caller themself ----

use crate::config::Config;
use crate::ids::AccountId;
use crate::service::sessions::AccountChoice;

/// An event a rate limit refused is a 429 `too-many-attempts` with `Retry-After`. The words
/// name what was limited, never whether an account exists: an identifier nobody has is
/// throttled exactly like a real one.
pub fn within_limit(verdict: crate::rate_limit::Verdict) -> Result<(), ApiError> {
    use crate::rate_limit::Bucket;
    let Err(throttled) = verdict else { return Ok(()) };
    let what = match throttled.bucket {
        Bucket::LoginAccount => "Too many failed logins for this identifier",
        Bucket::LoginAddress => "Too many failed logins from your network address",
        Bucket::ResetEmail => "Too many password reset requests for this email address",
        Bucket::ResetAddress => "Too many password reset requests from your network address",
        Bucket::SignupAddress => "Too many sign-ups from your network address",
        Bucket::InviteOrganization => "This organization has sent too many invitations for now",
    };
    let seconds = throttled.retry_after_secs;
    Err(ApiError::new(
        ProblemKind::TooManyAttempts,
        format!("{what}; try again in {seconds} seconds."),
    )
    .retry_after(seconds))
}

/// Anyone may sign up a new organization only while the operator keeps sign-up open;
/// otherwise the first owner comes from `steward create-owner`, the others by invitation.
pub fn sign_up(config: &Config) -> Result<(), ApiError> {
    if !config.open_signup {
        return Err(ApiError::new(
            ProblemKind::SignupClosed,
            "Sign-up is closed; ask an administrator for an invitation.",
        ));
    }
    Ok(())
}

/// A session may work only in one of its user's own accounts (R5); any other id answers
/// 404, as if it did not exist (R1).
pub fn own_account<'c>(choices: &'c [AccountChoice], id: &AccountId) -> Result<&'c AccountRow, ApiError> {
    choices
        .iter()
        .map(|(_, account, _)| account)
        .find(|account| &account.id == id)
        .ok_or_else(|| ApiError::not_found("account"))
}

/// The account a new login's session is scoped to (R5): the one asked for, if it is the
/// user's; else the only one; else none yet, and the user picks. A user with no active
/// account at all cannot log in.
pub fn login_account(choices: &[AccountChoice], wanted: Option<&AccountId>) -> Result<Option<AccountId>, ApiError> {
    match (wanted, choices) {
        (_, []) => Err(ApiError::forbidden("You have no active account to log in to.")),
        (Some(id), _) => own_account(choices, id).map(|account| Some(account.id.clone())),
        (None, [(_, only, _)]) => Ok(Some(only.id.clone())),
        (None, _) => Ok(None),
    }
}

// ---- roles ----

/// Roles belong to the whole organization, so managing them needs `roles.manage` with reach
/// over its root account (R2): a membership lower in the tree does not define them.
pub fn require_role_management(principal: &Principal) -> Result<&TenantContext, ApiError> {
    let root = &tenant(principal)?.account;
    require_on(principal, Permission::RolesManage, root)
}

// ---- caretakers and acting as another user ----

/// The root account of the caller's token.
pub fn tenant_root(principal: &Principal) -> Result<crate::ids::AccountId, ApiError> {
    Ok(tenant(principal)?.root.clone())
}

/// Owners and admins cannot have a caretaker (R7).
pub fn is_owner_or_admin(roles: &[RoleRow]) -> bool {
    roles
        .iter()
        .any(|r| matches!(r.builtin, Some(BuiltinRole::Owner | BuiltinRole::Admin)))
}

/// A caretaker may start acting as a managed user from their own session, or switch from
/// one acting-as session to another (the actor stays the caretaker); an impersonation
/// session can never start a delegation (R8: delegations do not nest).
pub fn may_start_caretaking(principal: &Principal) -> Result<(), ApiError> {
    require_person(principal, "start a delegation")?;
    match principal.delegation() {
        Some(Delegation::Impersonation) => Err(ApiError::new(
            ProblemKind::ActingAsForbidden,
            "A session acting as another user cannot start another delegation.",
        )),
        _ => Ok(()),
    }
}

// ---- impersonation ----

use crate::db::models::ImpersonationRow;
use crate::domain::ImpersonationMode;

/// The caller may start an impersonation of a member whose membership sits at `node`:
/// never from a session that already acts as someone else (R8: no nesting), and only with
/// `users.impersonate` reaching that node (R1, R2).
pub fn require_impersonate<'p>(principal: &'p Principal, node: &AccountRow) -> Result<&'p TenantContext, ApiError> {
    require_person(principal, "impersonate anyone")?;
    forbid_delegated(principal, "start another delegation")?;
    require_on(principal, Permission::UsersImpersonate, node)
}

/// What the service found out about the user to impersonate.
pub struct ImpersonationTarget<'a> {
    pub user: &'a crate::ids::UserId,
    pub active: bool,
    pub permissions: &'a PermissionSet,
    pub managed_by_caretaker: bool,
}

/// R9: the target is someone else, active, not managed by a caretaker, and holds no
/// permission the actor lacks — so an admin can never impersonate an owner, nor a custom
/// role a richer one.
pub fn impersonation_target(
    principal: &Principal,
    tenant: &TenantContext,
    target: &ImpersonationTarget<'_>,
) -> Result<(), ApiError> {
    if Some(target.user) == principal.session_caller().map(|p| &p.actor_id) {
        return Err(ApiError::new(
            ProblemKind::ImpersonationSelf,
            "You cannot impersonate yourself.",
        ));
    }
    if !target.active {
        return Err(ApiError::new(
            ProblemKind::MemberNotActive,
            "Only an active member can be impersonated.",
        ));
    }
    if let Some(missing) = target.permissions.difference(&tenant.permissions).next() {
        return Err(ApiError::new(
            ProblemKind::ImpersonationEscalation,
            format!(
                "This user holds the permission {}, which you do not; impersonating them would widen your rights.",
                missing.as_str()
            ),
        ));
    }
    if target.managed_by_caretaker {
        return Err(ApiError::new(
            ProblemKind::ImpersonationTargetManaged,
            "A caretaker manages this user's account while they are away; ask the caretaker instead.",
        ));
    }
    Ok(())
}

/// Full mode lets the session change things, so it needs what changing this member needs
/// besides: `users.manage` over them (and `owners.manage` for an owner, R4).
pub fn impersonation_mode(
    principal: &Principal,
    mode: ImpersonationMode,
    node: &AccountRow,
    member_roles: &[RoleRow],
) -> Result<(), ApiError> {
    if mode == ImpersonationMode::Full
        && require_member(principal, Permission::UsersManage, node, member_roles).is_err()
    {
        return Err(ApiError::new(
            ProblemKind::ImpersonationFullModeRefused,
            "Full mode needs users.manage over this user; start a read_only impersonation instead.",
        ));
    }
    Ok(())
}

/// An impersonation is visible to its actor, its target, and whoever may read the
/// organization's audit trail; to anyone else in another organization it does not exist.
pub fn may_read_impersonation(principal: &Principal, row: &ImpersonationRow) -> Result<(), ApiError> {
    let person = principal.session_caller();
    if person.is_some_and(|p| row.actor_user_id == p.actor_id || row.target_user_id == p.user.id) {
        return Ok(());
    }
    match tenant(principal) {
        Ok(t) if t.root == row.root_account_id => {
            require(principal, Permission::AuditRead)?;
            Ok(())
        }
        _ => Err(ApiError::not_found("impersonation")),
    }
}

/// An impersonation is ended by its actor (from any of their sessions, the impersonation's
/// own included) or by an owner of the organization.
pub fn may_end_impersonation(principal: &Principal, row: &ImpersonationRow) -> Result<(), ApiError> {
    if principal
        .session_caller()
        .is_some_and(|p| row.actor_user_id == p.actor_id)
    {
        return Ok(());
    }
    match tenant(principal) {
        Ok(t) if t.root == row.root_account_id && !principal.is_delegated() && holds_owner(&t.roles) => Ok(()),
        Ok(t) if t.root == row.root_account_id => Err(ApiError::forbidden(
            "Only the impersonator or an owner can end an impersonation.",
        )),
        _ => Err(ApiError::not_found("impersonation")),
    }
}

/// An organization's impersonations are read with `audit.read` over its root account; only
/// an organization has the list, any other node answers 404.
pub fn require_impersonation_log<'p>(
    principal: &'p Principal,
    account: &AccountRow,
) -> Result<&'p TenantContext, ApiError> {
    require_on_organization(principal, Permission::AuditRead, account, "impersonation list")
}

/// A running impersonation stays usable only while its actor may still impersonate and
/// still holds every permission the target holds now (a target promoted mid-session, or an
/// actor demoted, ends it).
pub fn impersonation_still_allowed(actor: &PermissionSet, target: &PermissionSet) -> bool {
    actor.contains(&Permission::UsersImpersonate) && target.difference(actor).next().is_none()
}

/// The requests a read-only impersonation may still make besides reads: those that end it.
const ENDS_AN_IMPERSONATION: &[(&str, &str)] = &[
    ("POST", "/v1/impersonations/{impersonation_id}/end"),
    ("DELETE", "/v1/me/acting-as"),
    ("POST", "/v1/auth/logout"),
];

/// A read-only impersonation refuses every state-changing request but those that end it (R9).
pub fn impersonation_allows(
    mode: ImpersonationMode,
    method: &actix_web::http::Method,
    route: Option<&str>,
) -> Result<(), ApiError> {
    if mode == ImpersonationMode::Full || method.is_safe() {
        return Ok(());
    }
    let ends_it = route.is_some_and(|r| ENDS_AN_IMPERSONATION.contains(&(method.as_str(), r)));
    if ends_it {
        return Ok(());
    }
    Err(ApiError::new(
        ProblemKind::ImpersonationReadOnly,
        "This impersonation is read-only: it can look, not change anything. End it and start one in full mode to make changes.",
    ))
}

// ---- the audit log ----

/// The caller may read `account`'s audit log (list or export): `audit.read` over it (R1: an
/// account of another organization answers 404; R2: a membership below the root does not
/// reach it, 403). Events belong to the organization, so only a root has a log: a
/// sub-account answers 404, like the billing profile.
pub fn require_audit_log<'p>(principal: &'p Principal, account: &AccountRow) -> Result<&'p TenantContext, ApiError> {
    require_on_organization(principal, Permission::AuditRead, account, "audit log")
}

// ---- contacts ----

use crate::db::models::ContactRow;

/// How much of the organization's contacts a caller sees (R2, R12).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContactScope {
    /// `contacts.read_all`: every contact at or below the caller's node.
    All,
    /// `contacts.read_assigned` alone: only the contacts assigned to the caller, within reach.
    AssignedOnly,
}

/// The caller's view of contacts; a caller with neither read permission sees none (403:
/// decided before any lookup, so it tells nothing about ids).
pub fn contact_scope(principal: &Principal) -> Result<(&TenantContext, ContactScope), ApiError> {
    let tenant = tenant(principal)?;
    if tenant.permissions.contains(&Permission::ContactsReadAll) {
        Ok((tenant, ContactScope::All))
    } else if tenant.permissions.contains(&Permission::ContactsReadAssigned) {
        Ok((tenant, ContactScope::AssignedOnly))
    } else {
        Err(ApiError::forbidden(
            "This needs the permission contacts.read_all or contacts.read_assigned.",
        ))
    }
}

/// The caller can see `contact`, which lives at `node`. A contact of another organization
/// (R1), outside the caller's subtree (R2), or, for a `contacts.read_assigned`-only caller,
/// not assigned to them (R12) answers 404, as if it did not exist.
pub fn require_contact_visible<'p>(
    principal: &'p Principal,
    contact: &ContactRow,
    node: &AccountRow,
) -> Result<(&'p TenantContext, ContactScope), ApiError> {
    if principal
        .tenant
        .as_ref()
        .is_some_and(|t| t.root != contact.root_account_id)
    {
        return Err(ApiError::not_found("contact"));
    }
    let (tenant, scope) = contact_scope(principal)?;
    let within = node.path.starts_with(&tenant.node.path);
    let mine = contact.assigned_user_id.is_some()
        && contact.assigned_user_id.as_deref() == principal.user_id().map(|u| u.as_str());
    if contact.root_account_id != tenant.root || !within || (scope == ContactScope::AssignedOnly && !mine) {
        return Err(ApiError::not_found("contact"));
    }
    Ok((tenant, scope))
}

/// The caller may change `contact`: they see it, and hold `contacts.write` (for a
/// `contacts.read_assigned`-only caller, seeing it means it is assigned to them).
pub fn require_contact_write<'p>(
    principal: &'p Principal,
    contact: &ContactRow,
    node: &AccountRow,
) -> Result<(&'p TenantContext, ContactScope), ApiError> {
    let seen = require_contact_visible(principal, contact, node)?;
    require(principal, Permission::ContactsWrite)?;
    Ok(seen)
}

/// The caller may delete `contact`: they see it, and hold `contacts.delete` (standard users
/// do not).
pub fn require_contact_delete(principal: &Principal, contact: &ContactRow, node: &AccountRow) -> Result<(), ApiError> {
    require_contact_visible(principal, contact, node)?;
    require(principal, Permission::ContactsDelete).map(|_| ())
}

/// The caller may create a contact at `node`: `contacts.write` over it (R1, R2).
pub fn require_contact_create<'p>(
    principal: &'p Principal,
    node: &AccountRow,
) -> Result<(&'p TenantContext, ContactScope), ApiError> {
    require_on(principal, Permission::ContactsWrite, node)?;
    contact_scope(principal)
}

/// Who a caller may assign a contact to: anyone (subject to [`contact_assignee`]) with
/// `contacts.read_all`; only themself with `contacts.read_assigned` alone, so that they never
/// give away (or leave unassigned) a contact they could then no longer see.
pub fn may_assign_contact(
    principal: &Principal,
    scope: ContactScope,
    to: Option<&crate::ids::UserId>,
) -> Result<(), ApiError> {
    if scope == ContactScope::AssignedOnly && (to.is_none() || to != principal.user_id()) {
        return Err(ApiError::forbidden(
            "With contacts.read_assigned alone you can only assign contacts to yourself.",
        ));
    }
    Ok(())
}

/// What the service found out about a user a contact would be assigned to.
pub struct ContactAssignee<'a> {
    /// An active user with an active membership in the organization.
    pub active: bool,
    /// The node their membership sits at.
    pub node: &'a AccountRow,
    pub permissions: &'a PermissionSet,
}

/// A contact at `contact_node` goes only to someone who can see it: an active member whose
/// node reaches it (R2) and who may read contacts (all of them, or those assigned to them).
pub fn contact_assignee(who: &ContactAssignee<'_>, contact_node: &AccountRow) -> Result<(), ApiError> {
    let reads = who.permissions.contains(&Permission::ContactsReadAll)
        || who.permissions.contains(&Permission::ContactsReadAssigned);
    let reason = if !who.active {
        "is not an active member"
    } else if !contact_node.path.starts_with(&who.node.path) {
        "cannot reach the account the contact is in"
    } else if !reads {
        "holds no permission to read contacts"
    } else {
        return Ok(());
    };
    Err(ApiError::new(
        ProblemKind::AssigneeUnavailable,
        format!("The contact cannot be assigned to this user: the user {reason}."),
    ))
}

/// A bulk reassign moves contacts of a whole subtree (`within`), so it needs
/// `contacts.write` over it and `contacts.read_all` (a `contacts.read_assigned`-only caller
/// cannot see the contacts of others, let alone move them).
pub fn require_contact_reassign<'p>(
    principal: &'p Principal,
    within: &AccountRow,
) -> Result<&'p TenantContext, ApiError> {
    let tenant = require_on(principal, Permission::ContactsWrite, within)?;
    require(principal, Permission::ContactsReadAll)?;
    Ok(tenant)
}

/// Notices to the contacts of `node`'s subtree need `notifications.send` over it (R1, R2).
pub fn require_contact_notice<'p>(principal: &'p Principal, node: &AccountRow) -> Result<&'p TenantContext, ApiError> {
    require_on(principal, Permission::NotificationsSend, node)
}

// ---- webhooks ----

/// Webhook endpoints belong to the organization: managing them needs `webhooks.manage` with
/// reach over its root (R2), and never from a session acting as someone else, since an
/// endpoint carries a signing secret (R8).
pub fn require_webhooks(principal: &Principal) -> Result<&TenantContext, ApiError> {
    forbid_delegated(principal, "manage webhook endpoints (they carry secrets)")?;
    let root = &tenant(principal)?.account;
    require_on(principal, Permission::WebhooksManage, root)
}

// ---- API keys ----

/// API keys belong to the organization: managing them needs `api_keys.manage` with reach
/// over its root (R2), from a person's own session: never from a key (a key cannot mint
/// keys) nor from a session acting as someone else (a key is a secret, R8).
pub fn require_api_keys(principal: &Principal) -> Result<&TenantContext, ApiError> {
    require_person(principal, "manage API keys")?;
    forbid_delegated(principal, "manage API keys")?;
    let root = &tenant(principal)?.account;
    require_on(principal, Permission::ApiKeysManage, root)
}

/// The roles a new key would hold: at least one, none of them the owner role (ownership is
/// a person's, R1), and nothing the creator does not hold themself (R4).
pub fn require_key_roles(tenant: &TenantContext, roles: &[(RoleRow, PermissionSet)]) -> Result<(), ApiError> {
    if roles.is_empty() {
        return Err(ApiError::field(
            "role_ids",
            "required",
            "give the key at least one role",
        ));
    }
    if roles.iter().any(|(role, _)| role.builtin == Some(BuiltinRole::Owner)) {
        return Err(ApiError::field(
            "role_ids",
            "owner_role",
            "an API key cannot hold the owner role; owners are people",
        ));
    }
    require_grantable(tenant, roles)
}

/// Rotating or revoking a key is managing what it can do: the caller must hold every
/// permission the key holds (R4), so that an admin cannot take over an owner's key.
pub fn require_manage_key(tenant: &TenantContext, key_permissions: &PermissionSet) -> Result<(), ApiError> {
    require_permissions_held(tenant, key_permissions)
}

// ---- SCIM provisioning ----

/// SCIM provisioning (`/scim/v2`) works on the whole organization: it needs
/// `scim.provision` with reach over the root account (R2). What each operation changes is
/// then decided by the service it goes through, on the permissions that change needs.
pub fn require_scim(principal: &Principal) -> Result<&TenantContext, ApiError> {
    let root = &tenant(principal)?.account;
    require_on(principal, Permission::ScimProvision, root)
}

/// A member keeps at least one role: SCIM cannot take the last one away (put them in
/// another group first).
pub fn keeps_a_role(remaining: usize) -> Result<(), ApiError> {
    if remaining == 0 {
        return Err(ApiError::new(
            ProblemKind::ValidationFailed,
            "A member holds at least one role; add them to another group before removing them from this one.",
        ));
    }
    Ok(())
}

// ---- operations ----

/// `/metrics` opens to the configured token only, compared in constant time (it exists only
/// while one is configured). The bearer is the `Authorization` header's, or its refusal.
pub fn may_scrape_metrics(
    configured: Option<&crate::config::MetricsToken>,
    bearer: Result<String, ApiError>,
) -> Result<(), ApiError> {
    let refused =
        || ApiError::unauthenticated("Send the metrics token: Authorization: Bearer <STEWARD_METRICS_TOKEN>.");
    let token = configured.ok_or_else(refused)?;
    let presented = bearer.map_err(|_| refused())?;
    if token.matches(&presented) {
        Ok(())
    } else {
        Err(refused())
    }
}

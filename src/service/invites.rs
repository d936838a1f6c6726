//! Invitations: invite, list, resend, copy link, revoke; preview and accept by token (R6).
//!
//! One live invitation per address and organization; nobody invites into a closed node, out
//! of their reach, or with a role they could not grant (R4); an existing member is a
//! conflict. Links are stored only as hashes: resending or copying rotates the token and
//! restarts the clock. Accepting creates the user (or adds an existing one) and the
//! membership exactly once, however many accepts race for the same token.

use actix_web::web;
use chrono::NaiveDateTime;
use serde_json::json;
use validator::ValidationError;

use crate::auth::extract::{Principal, TenantContext};
use crate::auth::{policy, secrets};
use crate::db::models::{AccountRow, InviteRow, MembershipRow, NewInvite, RoleRow, UserRow};
use crate::db::repo::audit::{self, AuditContext, AuditEntry};
use crate::db::repo::invites::{self, InviteFilter};
use crate::db::repo::notifications::{self, Outgoing};
use crate::db::repo::{accounts, memberships, users};
use crate::db::DbConnection;
use crate::domain::page::PageRequest;
use crate::domain::permissions::{BuiltinRole, Permission};
use crate::domain::{AccountStatus, AuditAction, Email, InviteStatus, NewPassword, NotificationKind, Username};
use crate::error::{field_error, ApiError, FieldError, ProblemKind};
use crate::identity::{self, to_chrono};
use crate::ids::{InviteId, RoleId, UserId};
use crate::rate_limit::{self, Bucket};
use crate::service::sessions::{issue_tokens, IssuedTokens};
use crate::service::{self, accounts as accounts_svc, messages, roles as roles_svc, Tx};
use crate::state::AppState;

// ---- commands ----

/// Invite someone by email.
pub struct NewInvitation {
    pub email: Email,
    /// The role ids as sent; each must be a role of the organization (else a field error).
    pub role_ids: Vec<String>,
    /// The node as sent; the inviter's own node when absent. Unknown or malformed: 404.
    pub account_id: Option<String>,
    /// Email the link, or only hand it back to copy.
    pub send_email: bool,
}

/// Which invitations to list: a state, and the page as sent (checked once the caller may list).
pub struct InvitationFilter {
    pub status: Option<InviteStatus>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// The token of a registration link. Only its hash is ever looked up, so it is hashed once,
/// when read.
#[derive(Clone)]
pub struct LinkToken {
    hash: String,
}

impl LinkToken {
    pub const MAX: usize = 256;

    /// 1 to 256 characters.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        if !(1..=Self::MAX).contains(&raw.chars().count()) {
            let message = format!("must be 1 to {} characters long", Self::MAX);
            return Err(ValidationError::new("length").with_message(message.into()));
        }
        Ok(Self {
            hash: secrets::hash_token(raw),
        })
    }
}

/// Accepting an invitation: the link's token and, for a person who registers with it, who
/// they are. An existing user needs the token alone.
pub struct Acceptance {
    pub token: LinkToken,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub username: Option<Username>,
    pub password: Option<NewPassword>,
}

/// What registering with an invitation needs.
struct Registration {
    token: LinkToken,
    first_name: String,
    last_name: String,
    username: Option<Username>,
    password: NewPassword,
}

impl Acceptance {
    /// A new person must give both names and a password; each missing one is named.
    fn registration(self) -> Result<Registration, ApiError> {
        match (self.first_name, self.last_name, self.password) {
            (Some(first_name), Some(last_name), Some(password)) => Ok(Registration {
                token: self.token,
                first_name,
                last_name,
                username: self.username,
                password,
            }),
            (first_name, last_name, password) => {
                let missing = [
                    ("first_name", first_name.is_none()),
                    ("last_name", last_name.is_none()),
                    ("password", password.is_none()),
                ];
                Err(ApiError::validation(
                    missing
                        .into_iter()
                        .filter(|(_, absent)| *absent)
                        .map(|(field, _)| {
                            FieldError::new(
                                field,
                                "required",
                                "is required to register (or log in first to accept as an existing user)",
                            )
                        })
                        .collect(),
                ))
            }
        }
    }
}

// ---- results ----

/// An invitation as its organization's administrators see it.
pub struct Invitation {
    pub invite: InviteRow,
    pub roles: Vec<RoleRow>,
    /// Its state now: a pending invitation past its expiry is expired.
    pub status: InviteStatus,
    /// Every granted role sees only records assigned to it (`limited`, `guest`).
    pub requires_record_assignment: bool,
    /// The registration link, only in the answer that generated it for copying.
    pub registration_url: Option<String>,
}

impl Invitation {
    fn new(invite: InviteRow, roles: Vec<RoleRow>, now: NaiveDateTime, registration_url: Option<String>) -> Self {
        Self {
            status: invite.state(now),
            requires_record_assignment: requires_assignment(&roles),
            invite,
            roles,
            registration_url,
        }
    }
}

/// One page of invitations.
pub struct InvitationPage {
    pub items: Vec<Invitation>,
    pub next_cursor: Option<String>,
}

/// What the holder of a link may see before registering.
pub struct Preview {
    pub invite: InviteRow,
    /// The organization.
    pub account: AccountRow,
    pub inviter: UserRow,
}

/// An accepted invitation: the organization joined and the new membership.
pub struct Joined {
    /// The organization (root account).
    pub account: AccountRow,
    pub membership: MembershipRow,
    pub roles: Vec<RoleRow>,
    pub requires_record_assignment: bool,
    /// For a person who just registered: their session, scoped to the organization.
    pub session: Option<IssuedTokens>,
}

// ---- administering invitations ----

/// Invites someone to a node within the caller's reach, with roles the caller may grant.
pub fn create(tx: &mut Tx<'_>, caller: &Principal, cmd: NewInvitation) -> Result<Invitation, ApiError> {
    let caller = tx.lock_tenant(caller)?;
    let tenant = policy::tenant(&caller)?;
    let node = match &cmd.account_id {
        Some(raw) => accounts_svc::find(tx.conn, raw)?,
        None => tenant.node.clone(),
    };
    policy::require_on(&caller, Permission::UsersInvite, &node)?;
    crate::service::accounts::ensure_open(&node)?;
    let granted = roles_svc::resolve(tx.conn, &tenant.root, &cmd.role_ids)?;
    policy::require_grantable(tenant, &granted)?;
    ensure_not_a_member(tx.conn, tenant, cmd.email.normalized())?;
    if let Some(pending) = invites::live_for_email(tx.conn, &tenant.root, cmd.email.normalized(), tx.now)? {
        return Err(ApiError::new(
            ProblemKind::InviteAlreadyPending,
            format!(
                "{} already has a pending invitation ({}); resend it or copy its link instead.",
                cmd.email.as_str(),
                pending.id
            ),
        ));
    }
    let roles: Vec<RoleRow> = granted.into_iter().map(|(role, _)| role).collect();
    let token = secrets::new_token();
    let invite = insert(tx, &caller, &node, &cmd, &token, &roles)?;
    let link = registration_url(tx, &token);
    if cmd.send_email {
        let inviter = inviter_of(tx, &caller)?;
        enqueue_invite_mail(tx, &invite, &inviter, &tenant.account, &link)?;
    }
    let role_ids: Vec<&RoleId> = roles.iter().map(|r| &r.id).collect();
    audit::record(
        tx.conn,
        &caller.audit(),
        AuditEntry {
            action: AuditAction::InviteCreated,
            target_type: "invite",
            target_id: invite.id.as_str(),
            details: json!({ "email": invite.email, "account_id": node.id, "roles": role_ids, "send_email": cmd.send_email }),
        },
        tx.now,
    )?;
    Ok(Invitation::new(
        invite,
        roles,
        tx.now,
        (!cmd.send_email).then_some(link),
    ))
}

/// Who the invitation mail says it is from: the person sending it, or for an API key the
/// person who created the key.
fn inviter_of(tx: &mut Tx<'_>, caller: &Principal) -> Result<UserRow, ApiError> {
    if let Some(person) = caller.session_caller() {
        return Ok(person.user.clone());
    }
    crate::db::repo::users::find(tx.conn, &caller.accountable_user())?
        .ok_or_else(|| ApiError::internal("an API key's creator is missing"))
}

/// Stores a new pending invitation and reads it back.
fn insert(
    tx: &mut Tx<'_>,
    caller: &Principal,
    node: &AccountRow,
    cmd: &NewInvitation,
    token: &str,
    roles: &[RoleRow],
) -> Result<InviteRow, ApiError> {
    let role_ids: Vec<RoleId> = roles.iter().map(|r| r.id.clone()).collect();
    let id = invites::insert(
        tx.conn,
        NewInvite {
            id: InviteId::generate(),
            root_account_id: node.root_id.clone(),
            account_id: node.id.clone(),
            email: cmd.email.as_str().to_string(),
            email_normalized: cmd.email.normalized().to_string(),
            invited_by: caller.accountable_user(),
            token_hash: secrets::hash_token(token),
            status: InviteStatus::Pending,
            send_email: cmd.send_email,
            expires_at: tx.now + to_chrono(tx.config.invite_ttl),
            created_at: tx.now,
            updated_at: tx.now,
        },
        &role_ids,
    )?;
    invites::find_in(tx.conn, &node.root_id, &id)?.ok_or_else(|| ApiError::internal("new invite vanished"))
}

/// The invitations within the caller's reach, oldest first.
pub fn list(tx: &mut Tx<'_>, caller: &Principal, filter: InvitationFilter) -> Result<InvitationPage, ApiError> {
    let tenant = policy::require(caller, Permission::UsersInvite)?;
    let page = PageRequest::parse(filter.limit, filter.cursor.as_deref(), |id| {
        InviteId::parse(id).is_some()
    })?;
    let query = InviteFilter {
        within_path: tenant.node.path.clone(),
        state: filter.status,
        after: page.after.clone(),
        limit: page.fetch(),
    };
    let mut rows = invites::page(tx.conn, &tenant.root, &query, tx.now)?;
    let next_cursor = page.finish(&mut rows, |i| i.id.as_str());
    let ids: Vec<String> = rows.iter().map(|i| i.id.to_string()).collect();
    let held = invites::roles_of_many(tx.conn, &ids)?;
    let items = rows
        .into_iter()
        .map(|invite| {
            let roles = roles_svc::held_by(&held, invite.id.as_str());
            Invitation::new(invite, roles, tx.now, None)
        })
        .collect();
    Ok(InvitationPage { items, next_cursor })
}

/// One invitation the caller may administer.
pub fn get(tx: &mut Tx<'_>, caller: &Principal, id: &InviteId) -> Result<Invitation, ApiError> {
    let invite = load_invite(tx.conn, caller, id)?;
    let roles = invites::roles_of(tx.conn, &invite.id)?;
    Ok(Invitation::new(invite, roles, tx.now, None))
}

/// Mails the invitation again with a new link; the old link stops working.
pub fn resend(tx: &mut Tx<'_>, caller: &Principal, id: &InviteId) -> Result<Invitation, ApiError> {
    rotate(tx, caller, id, true)
}

/// Hands back a new link to copy; the old link stops working and nothing is mailed.
pub fn copy_link(tx: &mut Tx<'_>, caller: &Principal, id: &InviteId) -> Result<Invitation, ApiError> {
    // The link is a secret meant for the invitee (R8: an acting-as session reads no secrets).
    policy::forbid_delegated(caller, "read an invitation's secret link")?;
    rotate(tx, caller, id, false)
}

/// Rotates the token and restarts the clock (R6); with `send`, mails the new link.
fn rotate(tx: &mut Tx<'_>, caller: &Principal, id: &InviteId, send: bool) -> Result<Invitation, ApiError> {
    let caller = tx.lock_tenant(caller)?;
    let tenant = policy::tenant(&caller)?;
    let invite = load_invite(tx.conn, &caller, id)?;
    ensure_rotatable(&invite, tx.now)?;
    ensure_not_a_member(tx.conn, tenant, &invite.email_normalized)?;
    // One live invitation per address (R6): an expired one comes back to life only when no
    // newer invitation to the same address is pending.
    if let Some(other) = invites::live_for_email(tx.conn, &tenant.root, &invite.email_normalized, tx.now)? {
        if other.id != invite.id {
            return Err(ApiError::new(
                ProblemKind::InviteAlreadyPending,
                format!(
                    "{} has a newer pending invitation ({}); resend or copy that one instead.",
                    invite.email, other.id
                ),
            ));
        }
    }
    let token = secrets::new_token();
    let expires_at = tx.now + to_chrono(tx.config.invite_ttl);
    if !invites::rotate(tx.conn, &invite.id, &secrets::hash_token(&token), expires_at, tx.now)? {
        return Err(ApiError::new(
            ProblemKind::InviteNotPending,
            "This invitation is no longer pending.",
        ));
    }
    let (invite, roles) = reload(tx.conn, &invite)?;
    let link = registration_url(tx, &token);
    if send {
        let inviter = inviter_of(tx, &caller)?;
        enqueue_invite_mail(tx, &invite, &inviter, &tenant.account, &link)?;
    }
    let action = if send {
        AuditAction::InviteResent
    } else {
        AuditAction::InviteLinkCopied
    };
    audit::record(
        tx.conn,
        &caller.audit(),
        AuditEntry {
            action,
            target_type: "invite",
            target_id: invite.id.as_str(),
            details: json!({ "expires_at": invite.expires_at.and_utc() }),
        },
        tx.now,
    )?;
    Ok(Invitation::new(invite, roles, tx.now, (!send).then_some(link)))
}

/// Only a pending invitation, expired or not, gets a new link.
fn ensure_rotatable(invite: &InviteRow, now: NaiveDateTime) -> Result<(), ApiError> {
    let detail = match invite.state(now) {
        InviteStatus::Pending | InviteStatus::Expired => return Ok(()),
        InviteStatus::Accepted => "This invitation was already accepted.",
        InviteStatus::Revoked => "This invitation was revoked; invite again instead.",
    };
    Err(ApiError::new(ProblemKind::InviteNotPending, detail))
}

/// Cancels a pending invitation; its link stops working.
pub fn revoke(tx: &mut Tx<'_>, caller: &Principal, id: &InviteId) -> Result<Invitation, ApiError> {
    let caller = tx.lock_tenant(caller)?;
    let invite = load_invite(tx.conn, &caller, id)?;
    if !invites::revoke(tx.conn, &invite.id, &caller.accountable_user(), tx.now)? {
        return Err(ApiError::new(
            ProblemKind::InviteNotPending,
            format!("This invitation is already {}.", invite.state(tx.now)),
        ));
    }
    audit::record(
        tx.conn,
        &caller.audit(),
        AuditEntry {
            action: AuditAction::InviteRevoked,
            target_type: "invite",
            target_id: invite.id.as_str(),
            details: json!({}),
        },
        tx.now,
    )?;
    let (invite, roles) = reload(tx.conn, &invite)?;
    Ok(Invitation::new(invite, roles, tx.now, None))
}

/// An invitation of the caller's organization at a node the caller may invite to. Another
/// tenant's invitation answers 404 like a missing one (R1).
fn load_invite(conn: &mut DbConnection, caller: &Principal, id: &InviteId) -> Result<InviteRow, ApiError> {
    let tenant = policy::tenant(caller)?;
    let missing = || ApiError::not_found("invitation");
    let invite = invites::find_in(conn, &tenant.root, id)?.ok_or_else(missing)?;
    let node = accounts::find(conn, &invite.account_id)?.ok_or_else(missing)?;
    policy::require_on(caller, Permission::UsersInvite, &node)?;
    Ok(invite)
}

/// The invitation as it is after a change, with its roles.
fn reload(conn: &mut DbConnection, invite: &InviteRow) -> Result<(InviteRow, Vec<RoleRow>), ApiError> {
    let invite = invites::find_in(conn, &invite.root_account_id, &invite.id)?
        .ok_or_else(|| ApiError::not_found("invitation"))?;
    let roles = invites::roles_of(conn, &invite.id)?;
    Ok((invite, roles))
}

/// Nobody is invited into a closed node.
/// Inviting someone who is already a member is a conflict (R6), whatever their membership's
/// state.
fn ensure_not_a_member(
    conn: &mut DbConnection,
    tenant: &TenantContext,
    email_normalized: &str,
) -> Result<(), ApiError> {
    let Some(existing) = users::find_by_email(conn, email_normalized)? else {
        return Ok(());
    };
    match memberships::find_for_user_in(conn, &existing.id, &tenant.root)? {
        Some(m) => Err(ApiError::new(
            ProblemKind::AlreadyMember,
            format!(
                "{} is already a member of this organization ({}, membership {}).",
                existing.email, existing.id, m.status
            ),
        )),
        None => Ok(()),
    }
}

/// True when every granted role is `limited` or `guest`: such users see only records
/// assigned to them, so their records must be assigned after they register.
fn requires_assignment(roles: &[RoleRow]) -> bool {
    !roles.is_empty()
        && roles
            .iter()
            .all(|r| matches!(r.builtin, Some(BuiltinRole::Limited | BuiltinRole::Guest)))
}

fn registration_url(tx: &Tx<'_>, token: &str) -> String {
    format!("{}/accept-invite?token={token}", tx.config.public_url)
}

/// Writes the invitation email to the outbox, in the transaction of its cause (R13). Every
/// invitation email counts against the organization's limit; past it the whole change is
/// refused (429) and nothing is written. A refused or failed change counts nothing.
fn enqueue_invite_mail(
    tx: &mut Tx<'_>,
    invite: &InviteRow,
    inviter: &UserRow,
    organization: &AccountRow,
    link: &str,
) -> Result<(), ApiError> {
    let limit = tx.config.limits.invites_per_organization;
    let organization_id = invite.root_account_id.as_str();
    let verdict = rate_limit::take(tx.conn, Bucket::InviteOrganization, limit, organization_id, tx.now)?;
    tx.within_limit(verdict)?;
    let valid_days = tx.config.invite_ttl.as_secs() / 86_400;
    notifications::enqueue(
        tx.conn,
        Outgoing {
            kind: NotificationKind::Invite,
            account_id: Some(invite.root_account_id.to_string()),
            recipient_user_id: None,
            recipient_email: invite.email.clone(),
            on_behalf_of_user_id: None,
            subject: messages::invitation_subject(inviter, organization),
            body: messages::invitation_body(inviter, organization, link, valid_days),
            payload: json!({ "invite_id": invite.id, "link": link, "expires_at": invite.expires_at.and_utc() }),
        },
        tx.now,
    )?;
    Ok(())
}

// ---- the invitee's side ----

/// Who invited the link's holder where. Unknown, used, revoked, replaced and expired links
/// all answer the same 404.
pub fn preview(tx: &mut Tx<'_>, token: &LinkToken) -> Result<Preview, ApiError> {
    let invite = live_invite(tx.conn, token, tx.now)?;
    let account = accounts::find(tx.conn, &invite.root_account_id)?.ok_or_else(invalid_link)?;
    let inviter = users::find(tx.conn, &invite.invited_by)?.ok_or_else(invalid_link)?;
    Ok(Preview {
        invite,
        account,
        inviter,
    })
}

/// A logged-in user accepts an invitation sent to their own address and joins its
/// organization; they keep their session.
pub fn accept_as_user(tx: &mut Tx<'_>, caller: &Principal, token: LinkToken) -> Result<Joined, ApiError> {
    let me = policy::require_person(caller, "accept invitations")?.user.id.clone();
    policy::forbid_delegated(caller, "accept invitations")?;
    let invite = live_invite(tx.conn, &token, tx.now)?;
    policy::require_invitee(caller, &invite)?;
    accounts::lock_tenant(tx.conn, &invite.root_account_id)?;
    let mut ctx = caller.audit();
    ctx.account = Some(invite.root_account_id.to_string());
    claim(tx, &invite, &token, &me, &ctx, false)
}

/// A new person registers with the link, joins the organization and is logged in to it.
/// What is sure to fail is refused before the password is hashed; then exactly one of any
/// number of concurrent accepts creates the user and the membership.
pub async fn accept_as_new_person(
    state: &web::Data<AppState>,
    acceptance: Acceptance,
    request_id: String,
) -> Result<Joined, ApiError> {
    let person = acceptance.registration()?;
    let token = person.token.clone();
    service::read(state, move |tx| ensure_registrable(tx, &token)).await?;
    let password_hash = state.passwords.hash(person.password.expose().to_string()).await?;
    service::write(state, move |tx| register(tx, &person, &password_hash, request_id)).await
}

/// The link is live and nobody has its address yet (else: log in, then accept).
fn ensure_registrable(tx: &mut Tx<'_>, token: &LinkToken) -> Result<(), ApiError> {
    let invite = live_invite(tx.conn, token, tx.now)?;
    if users::email_taken(tx.conn, &invite.email_normalized)? {
        return Err(ApiError::new(
            ProblemKind::EmailTaken,
            "A user with this email already exists: log in, then accept the invitation.",
        ));
    }
    Ok(())
}

fn register(
    tx: &mut Tx<'_>,
    person: &Registration,
    password_hash: &str,
    request_id: String,
) -> Result<Joined, ApiError> {
    let invite = live_invite(tx.conn, &person.token, tx.now)?;
    accounts::lock_tenant(tx.conn, &invite.root_account_id)?;
    let user_id = create_person(tx, &invite, person, password_hash)?;
    // The new user acts on their own behalf.
    let ctx = AuditContext {
        actor_api_key: None,
        actor: Some(user_id.to_string()),
        effective: Some(user_id.to_string()),
        account: Some(invite.root_account_id.to_string()),
        request_id: Some(request_id),
    };
    audit::record(
        tx.conn,
        &ctx,
        AuditEntry {
            action: AuditAction::UserCreated,
            target_type: "user",
            target_id: user_id.as_str(),
            details: json!({ "via_invite": invite.id }),
        },
        tx.now,
    )?;
    let mut joined = claim(tx, &invite, &person.token, &user_id, &ctx, true)?;
    let opened = identity::open_session(
        tx.conn,
        &user_id,
        Some(&invite.root_account_id),
        tx.config.refresh_token_ttl,
        tx.now,
    )?;
    let user = users::find(tx.conn, &user_id)?.ok_or_else(|| ApiError::internal("new user vanished"))?;
    joined.session = Some(issue_tokens(tx, &opened.session, Some(opened.refresh_token), &user)?);
    Ok(joined)
}

/// Creates the user the invitation's address and the registration describe.
fn create_person(
    tx: &mut Tx<'_>,
    invite: &InviteRow,
    person: &Registration,
    password_hash: &str,
) -> Result<UserId, ApiError> {
    let email = Email::parse(&invite.email).map_err(field_error("email"))?;
    identity::ensure_identity_free(tx.conn, &email, person.username.as_ref())?;
    identity::insert_person(
        tx.conn,
        identity::Person {
            email: &email,
            username: person.username.as_ref(),
            first_name: &person.first_name,
            last_name: &person.last_name,
            phone: None,
            password_hash: Some(password_hash),
            must_change_password: false,
        },
        tx.now,
    )
}

/// Marks the invitation accepted by `user`, adds the membership it grants and audits it.
/// Only one of any number of concurrent accepts gets past the first line; the others roll
/// back (with the user they were creating, for a new person).
fn claim(
    tx: &mut Tx<'_>,
    invite: &InviteRow,
    token: &LinkToken,
    user: &UserId,
    ctx: &AuditContext,
    new_user: bool,
) -> Result<Joined, ApiError> {
    if !invites::accept(tx.conn, invite, &token.hash, user, tx.now)? {
        return Err(invalid_link());
    }
    let joined = join(tx, invite, user)?;
    audit::record(
        tx.conn,
        ctx,
        AuditEntry {
            action: AuditAction::InviteAccepted,
            target_type: "invite",
            target_id: invite.id.as_str(),
            details: json!({ "user_id": user, "new_user": new_user }),
        },
        tx.now,
    )?;
    Ok(joined)
}

/// Adds the membership the invitation grants, once the invitation is marked accepted.
fn join(tx: &mut Tx<'_>, invite: &InviteRow, user: &UserId) -> Result<Joined, ApiError> {
    let node = accounts::find(tx.conn, &invite.account_id)?.ok_or_else(invalid_link)?;
    if node.status != AccountStatus::Active {
        // Worded for the invitee, who did not close it.
        return Err(ApiError::new(
            ProblemKind::AccountClosed,
            "The account this invitation is for has been closed.",
        ));
    }
    if memberships::find_for_user_in(tx.conn, user, &invite.root_account_id)?.is_some() {
        return Err(ApiError::new(
            ProblemKind::AlreadyMember,
            "You are already a member of this organization.",
        ));
    }
    let roles = invites::roles_of(tx.conn, &invite.id)?;
    let role_ids: Vec<RoleId> = roles.iter().map(|r| r.id.clone()).collect();
    let id = memberships::insert(tx.conn, memberships::new_active(user, &node, tx.now), &role_ids)?;
    crate::service::seats::sync(tx.conn, &id, crate::domain::SeatEndReason::RolesChanged, tx.now)?;
    let membership = memberships::find_for_user_in(tx.conn, user, &invite.root_account_id)?
        .filter(|m| m.id == id)
        .ok_or_else(|| ApiError::internal("new membership vanished"))?;
    let account = accounts::find(tx.conn, &invite.root_account_id)?.ok_or_else(invalid_link)?;
    Ok(Joined {
        account,
        membership,
        requires_record_assignment: requires_assignment(&roles),
        roles,
        session: None,
    })
}

fn invalid_link() -> ApiError {
    ApiError::not_found("invitation: the link is not valid (it may have expired, been replaced or been used)")
}

/// The live invitation behind a token; unknown, spent, revoked, rotated-away and expired
/// tokens all answer the same.
fn live_invite(conn: &mut DbConnection, token: &LinkToken, now: NaiveDateTime) -> Result<InviteRow, ApiError> {
    invites::find_by_token_hash(conn, &token.hash)?
        .filter(|i| i.state(now) == InviteStatus::Pending)
        .ok_or_else(invalid_link)
}

/// Announces invitations that ran out unanswered: one `invite.expired` audit event (and
/// webhook event) each, exactly once per expiry even with several instances sweeping. Runs
/// in its own transaction, without a caller. Returns how many were announced.
pub fn announce_expired(conn: &mut DbConnection, now: NaiveDateTime) -> Result<usize, ApiError> {
    let mut announced = 0;
    for invite in invites::due_for_expiry_notice(conn, now, 500)? {
        if !invites::mark_expiry_announced(conn, &invite, now)? {
            continue;
        }
        let ctx = AuditContext {
            account: Some(invite.root_account_id.to_string()),
            ..AuditContext::default()
        };
        let entry = AuditEntry {
            action: AuditAction::InviteExpired,
            target_type: "invite",
            target_id: invite.id.as_str(),
            details: json!({ "email": invite.email, "account_id": invite.account_id, "expired_at": invite.expires_at }),
        };
        audit::record(conn, &ctx, entry, now)?;
        announced += 1;
    }
    Ok(announced)
}

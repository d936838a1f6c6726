//! Members: the people of an organization — creating them, their profile, their roles, their
//! place in the tree, and ownership.
//!
//! Every write takes the organization's lock first and decides on the caller as re-read under
//! it (R15): eight concurrent ownership transfers by one owner make one new owner, and an
//! owner demoting themself while granting the owner role cannot have both go through.

use actix_web::web;
use serde_json::json;

use crate::auth::extract::{Principal, TenantContext};
use crate::auth::policy;
use crate::db::models::{AccountRow, MembershipRow, RoleRow, UserRow};
use crate::db::repo::audit::{self, AuditEntry};
use crate::db::repo::memberships::{self, MemberFilter};
use crate::db::repo::{accounts, roles, users};
use crate::domain::permissions::{BuiltinRole, Permission, PermissionSet};
use crate::domain::{AuditAction, Email, MembershipStatus, NewPassword, SeatEndReason, UserStatus, Username};
use crate::error::{ApiError, ProblemKind};
use crate::identity;
use crate::ids::{AccountId, MembershipId, RoleId, UserId};
use crate::service::{self, accounts as accounts_svc, roles as roles_svc, seats, versions, Tx};
use crate::state::AppState;

/// A member of the root account, with where they sit and what they hold.
pub struct Member {
    pub membership: MembershipRow,
    pub user: UserRow,
    pub node: AccountRow,
    pub roles: Vec<RoleRow>,
}

/// A member as a list shows them: no node row, only its id in the membership.
pub struct ListedMember {
    pub membership: MembershipRow,
    pub user: UserRow,
    pub roles: Vec<RoleRow>,
}

/// What a member list is narrowed to. `role` and `node` are ids as the client sent them.
#[derive(Debug, Default)]
pub struct MemberQuery {
    pub status: Option<MembershipStatus>,
    /// Archived users only; otherwise they are left out (R11).
    pub archived: bool,
    pub role: Option<String>,
    pub node: Option<String>,
    /// Trimmed, non-empty, at most 100 characters.
    pub text: Option<String>,
    pub external_id: Option<String>,
    /// Keyset: only users with an id after this one.
    pub after: Option<String>,
    /// How many rows to read.
    pub limit: i64,
}

/// What the user chose for their own screens; `None` leaves a choice as it is.
#[derive(Debug, Default)]
pub struct Preferences {
    pub default_landing_page: Option<String>,
    pub default_contact_tab: Option<String>,
    pub show_calendar: Option<bool>,
    pub daily_email_reminders: Option<bool>,
}

/// A user created directly, with an initial password they must change at first login.
#[derive(Debug)]
pub struct NewMember {
    pub email: Email,
    pub username: Option<Username>,
    pub first_name: String,
    pub last_name: String,
    pub phone: Option<String>,
    /// The initial password, which the user must change at first login; without one the
    /// user has no usable password until they set one through a reset link.
    pub password: Option<NewPassword>,
    /// Role ids as sent; resolved in the caller's organization.
    pub role_ids: Vec<String>,
    /// The node as sent; the caller's own node when absent.
    pub account_id: Option<String>,
    pub external_id: Option<String>,
    pub preferences: Preferences,
    /// The identity provider's SCIM `userName`, unique within the organization.
    pub scim_user_name: Option<String>,
}

/// Changes to a member's profile; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Debug, Default)]
pub struct ProfileChanges {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<Option<String>>,
    pub username: Option<Username>,
    pub external_id: Option<Option<String>>,
    pub preferences: Preferences,
    /// A new email address (see [`policy::require_change_email`]).
    pub email: Option<Email>,
    /// The identity provider's SCIM `userName`; `Some(None)` falls back to the email.
    pub scim_user_name: Option<Option<String>>,
}

/// Both sides of an ownership transfer, as they are afterwards.
pub struct Transferred {
    pub owner: Member,
    /// The caller, now an admin.
    pub previous_owner: Member,
}

/// Reads a member of `root`. A user of another organization answers 404 like an unknown id (R1).
pub fn load(tx: &mut Tx<'_>, root: &AccountId, id: &UserId) -> Result<Member, ApiError> {
    let missing = || ApiError::not_found("user");
    let (membership, user) = memberships::find_member(tx.conn, root, id)?.ok_or_else(missing)?;
    let node = accounts::find(tx.conn, &membership.account_id)?.ok_or_else(missing)?;
    let roles = memberships::roles_of(tx.conn, &membership.id)?;
    Ok(Member {
        membership,
        user,
        node,
        roles,
    })
}

/// Like [`load`], for a user id as a client sent it: a malformed one answers 404 too.
pub fn find(tx: &mut Tx<'_>, root: &AccountId, raw: &str) -> Result<Member, ApiError> {
    let id = UserId::parse(raw).ok_or_else(|| ApiError::not_found("user"))?;
    load(tx, root, &id)
}

/// R3: refuses a change that would leave the organization without an active owner. Call
/// after [`Tx::lock_tenant`], so that concurrent demotions are decided one at a time.
pub fn ensure_an_owner_remains(tx: &mut Tx<'_>, root: &AccountId, losing: &MembershipRow) -> Result<(), ApiError> {
    let owners = memberships::active_owner_memberships(tx.conn, root)?;
    let others = owners.iter().filter(|id| id.as_str() != losing.id.as_str()).count();
    if others == 0 {
        return Err(ApiError::new(
            ProblemKind::LastOwner,
            "This is the organization's last active owner; make someone else an owner first.",
        ));
    }
    Ok(())
}

/// One page (`query.limit` rows) of the members within the caller's reach; needs `users.read`.
pub fn list(tx: &mut Tx<'_>, caller: &Principal, query: MemberQuery) -> Result<Vec<ListedMember>, ApiError> {
    let tenant = policy::require(caller, Permission::UsersRead)?;
    let mut filter = MemberFilter {
        within_paths: vec![tenant.node.path.clone()],
        status: query.status,
        user_status: Some(if query.archived {
            UserStatus::Archived
        } else {
            UserStatus::Active
        }),
        role: None,
        text: query.text,
        external_id: query.external_id,
        after: query.after,
        limit: query.limit,
    };
    if let Some(raw) = &query.role {
        filter.role = Some(role_filter(tx, tenant, raw)?);
    }
    if let Some(raw) = &query.node {
        filter.within_paths.push(node_filter(tx, tenant, raw)?.path);
    }
    let rows = memberships::page(tx.conn, &tenant.root, &filter)?;
    let ids: Vec<String> = rows.iter().map(|(m, _)| m.id.to_string()).collect();
    let held = memberships::roles_of_many(tx.conn, &ids)?;
    Ok(rows
        .into_iter()
        .map(|(membership, user)| {
            let roles = roles_svc::held_by(&held, membership.id.as_str());
            ListedMember {
                membership,
                user,
                roles,
            }
        })
        .collect())
}

/// The `role` filter: a role of the caller's organization, else a field error.
fn role_filter(tx: &mut Tx<'_>, tenant: &TenantContext, raw: &str) -> Result<RoleId, ApiError> {
    let unknown = || ApiError::field("role", "unknown", "is not a role of this account");
    let id = RoleId::parse(raw).ok_or_else(unknown)?;
    roles::find_in(tx.conn, &tenant.root, &id)?.ok_or_else(unknown)?;
    Ok(id)
}

/// The `node` filter: a node the policy lets the caller narrow the list to, else a field error.
fn node_filter(tx: &mut Tx<'_>, tenant: &TenantContext, raw: &str) -> Result<AccountRow, ApiError> {
    let unknown = || ApiError::field("node", "unknown", "is not an account within your reach");
    let node = AccountId::parse(raw)
        .map(|id| accounts::find(tx.conn, &id))
        .transpose()?
        .flatten()
        .ok_or_else(unknown)?;
    if !policy::may_list_within(tenant, &node) {
        return Err(unknown());
    }
    Ok(node)
}

/// Reads one member: anyone reads themself; others need `users.read` over the member's node.
pub fn get(tx: &mut Tx<'_>, caller: &Principal, id: &UserId) -> Result<Member, ApiError> {
    let root = policy::tenant(caller)?.root.clone();
    let member = load(tx, &root, id)?;
    policy::require_read_member(caller, &member.user.id, &member.node)?;
    Ok(member)
}

/// Creates a member with an initial password. What can be checked is checked before the
/// password is hashed (outside any transaction: the hash is slow on purpose), and everything
/// again on the caller's rights under the lock, where the member is written (R15).
pub async fn create(state: &web::Data<AppState>, caller: Principal, cmd: NewMember) -> Result<Member, ApiError> {
    let (early, node, role_ids) = (caller.clone(), cmd.account_id.clone(), cmd.role_ids.clone());
    service::read(state, move |tx| {
        target_node(tx, &early, node.as_deref())?;
        grantable_roles(tx, &early, &role_ids).map(drop)
    })
    .await?;
    let hash = match &cmd.password {
        Some(password) => Some(state.passwords.hash(password.expose().to_string()).await?),
        None => None,
    };
    service::write(state, move |tx| insert(tx, &caller, cmd, hash.as_deref())).await
}

/// The node a new member goes to (the caller's own unless named), if the caller manages
/// users there.
fn target_node(tx: &mut Tx<'_>, caller: &Principal, raw: Option<&str>) -> Result<AccountRow, ApiError> {
    let node = match raw {
        Some(raw) => accounts_svc::find(tx.conn, raw)?,
        None => policy::tenant(caller)?.node.clone(),
    };
    policy::require_on(caller, Permission::UsersManage, &node)?;
    Ok(node)
}

/// The roles named, if the caller holds everything they grant (R4).
fn grantable_roles(
    tx: &mut Tx<'_>,
    caller: &Principal,
    raw: &[String],
) -> Result<Vec<(RoleRow, PermissionSet)>, ApiError> {
    let tenant = policy::tenant(caller)?;
    let granted = roles_svc::resolve(tx.conn, &tenant.root, raw)?;
    policy::require_grantable(tenant, &granted)?;
    Ok(granted)
}

/// Writes a new member, in the caller's transaction; `hash` is the initial password's.
pub fn insert(tx: &mut Tx<'_>, caller: &Principal, cmd: NewMember, hash: Option<&str>) -> Result<Member, ApiError> {
    let caller = tx.lock_tenant(caller)?;
    let root = policy::tenant(&caller)?.root.clone();
    let node = target_node(tx, &caller, cmd.account_id.as_deref())?;
    crate::service::accounts::ensure_open(&node)?;
    let granted = grantable_roles(tx, &caller, &cmd.role_ids)?;
    ensure_identity_free(tx, &cmd.email, cmd.username.as_ref())?;
    if let Some(ext) = &cmd.external_id {
        ensure_external_id_free(tx, &root, ext, None)?;
    }
    if let Some(name) = &cmd.scim_user_name {
        ensure_scim_user_name_free(tx, &root, name, None)?;
    }
    let user_id = identity::insert_person(
        tx.conn,
        identity::Person {
            email: &cmd.email,
            username: cmd.username.as_ref(),
            first_name: &cmd.first_name,
            last_name: &cmd.last_name,
            phone: cmd.phone.as_deref(),
            password_hash: hash,
            must_change_password: hash.is_some(),
        },
        tx.now,
    )?;
    if let Some(changes) = preference_changes(cmd.preferences) {
        users::update_profile(tx.conn, &user_id, changes)?;
    }
    let mut membership = memberships::new_active(&user_id, &node, tx.now);
    membership.external_id = cmd.external_id;
    membership.scim_user_name = cmd.scim_user_name;
    let role_ids: Vec<RoleId> = granted.iter().map(|(r, _)| r.id.clone()).collect();
    let membership = memberships::insert(tx.conn, membership, &role_ids)?;
    seats::sync(tx.conn, &membership, SeatEndReason::RolesChanged, tx.now)?;
    let details = json!({ "account_id": node.id, "roles": role_ids });
    record(tx, &caller, AuditAction::UserCreated, &user_id, details)?;
    load(tx, &root, &user_id)
}

/// A new user's email and username are nobody else's (else: invite them instead).
fn ensure_identity_free(tx: &mut Tx<'_>, email: &Email, username: Option<&Username>) -> Result<(), ApiError> {
    if users::email_taken(tx.conn, email.normalized())? {
        return Err(ApiError::new(
            ProblemKind::EmailTaken,
            "A user with this email already exists; invite them instead.",
        ));
    }
    match username {
        Some(name) if users::username_taken(tx.conn, name.normalized())? => Err(username_taken()),
        _ => Ok(()),
    }
}

fn username_taken() -> ApiError {
    ApiError::new(ProblemKind::UsernameTaken, "This username is taken; choose another.")
}

/// An external id is unique within the organization (`except`: the membership that keeps it).
fn ensure_external_id_free(
    tx: &mut Tx<'_>,
    root: &AccountId,
    external_id: &str,
    except: Option<&MembershipId>,
) -> Result<(), ApiError> {
    if memberships::external_id_taken(tx.conn, root, external_id, except)? {
        return Err(ApiError::new(
            ProblemKind::ExternalIdTaken,
            format!("Another user of this organization has the external id {external_id}."),
        ));
    }
    Ok(())
}

/// A SCIM `userName` answers for one member of the organization only, compared regardless
/// of case; a member without one answers to their email (`except`: the membership that keeps it).
fn ensure_scim_user_name_free(
    tx: &mut Tx<'_>,
    root: &AccountId,
    user_name: &str,
    except: Option<&MembershipId>,
) -> Result<(), ApiError> {
    if memberships::scim_user_name_taken(tx.conn, root, &user_name.to_lowercase(), except)? {
        return Err(ApiError::conflict(format!(
            "Another user of this organization has the userName {user_name}."
        )));
    }
    Ok(())
}

/// A new email address for a member: refused from a delegated session (R8), for a user who
/// also belongs to other organizations (it would change their login there too), and when
/// another user has it.
fn ensure_email_changeable(
    tx: &mut Tx<'_>,
    caller: &Principal,
    member: &Member,
    email: &Email,
) -> Result<(), ApiError> {
    let organizations = memberships::count_for_user(tx.conn, &member.user.id)?;
    policy::require_change_email(caller, organizations)?;
    let holder = users::find_by_email(tx.conn, email.normalized())?;
    if holder.is_some_and(|u| u.id != member.user.id) {
        return Err(ApiError::new(
            ProblemKind::EmailTaken,
            "Another user has this email address.",
        ));
    }
    Ok(())
}

/// A new user's chosen preferences, or `None` when they kept the defaults.
fn preference_changes(p: Preferences) -> Option<users::UserChanges> {
    let chosen = p.default_landing_page.is_some()
        || p.default_contact_tab.is_some()
        || p.show_calendar.is_some()
        || p.daily_email_reminders.is_some();
    chosen.then(|| users::UserChanges {
        default_landing_page: p.default_landing_page.map(Some),
        default_contact_tab: p.default_contact_tab.map(Some),
        show_calendar: p.show_calendar,
        daily_email_reminders: p.daily_email_reminders,
        ..Default::default()
    })
}

/// Writes the audit event of a change to the user `target`, in the change's transaction (R13).
pub fn record(
    tx: &mut Tx<'_>,
    caller: &Principal,
    action: AuditAction,
    target: &UserId,
    details: serde_json::Value,
) -> Result<(), ApiError> {
    let entry = AuditEntry {
        action,
        target_type: "user",
        target_id: target.as_str(),
        details,
    };
    audit::record(tx.conn, &caller.audit(), entry, tx.now)?;
    Ok(())
}

/// Edits a member's profile, preferences or external id (see [`policy::require_edit_member`]).
pub fn update(tx: &mut Tx<'_>, caller: &Principal, id: &UserId, cmd: ProfileChanges) -> Result<Member, ApiError> {
    let caller = tx.lock_tenant(caller)?;
    let root = policy::tenant(&caller)?.root.clone();
    let member = load(tx, &root, id)?;
    // The external id, the SCIM userName and the email are the integrator's to set.
    let managed_fields = cmd.external_id.is_some() || cmd.scim_user_name.is_some() || cmd.email.is_some();
    policy::require_edit_member(&caller, &member.user.id, &member.node, &member.roles, managed_fields)?;
    tx.check_version(&versions::of_member(&member))?;
    if let Some(name) = &cmd.username {
        let taken = users::find_by_username(tx.conn, name.normalized())?.is_some_and(|u| u.id != member.user.id);
        if taken {
            return Err(username_taken());
        }
    }
    if let Some(Some(ext)) = &cmd.external_id {
        ensure_external_id_free(tx, &root, ext, Some(&member.membership.id))?;
    }
    if let Some(Some(name)) = &cmd.scim_user_name {
        ensure_scim_user_name_free(tx, &root, name, Some(&member.membership.id))?;
    }
    let email = cmd.email.filter(|e| e.normalized() != member.user.email_normalized);
    if let Some(email) = &email {
        ensure_email_changeable(tx, &caller, &member, email)?;
    }
    let prefs = cmd.preferences;
    let changes = users::UserChanges {
        email: email.as_ref().map(|e| e.as_str().to_string()),
        email_normalized: email.as_ref().map(|e| e.normalized().to_string()),
        first_name: cmd.first_name,
        last_name: cmd.last_name,
        phone: cmd.phone,
        username: cmd.username.as_ref().map(|u| Some(u.as_str().to_string())),
        username_normalized: cmd.username.as_ref().map(|u| Some(u.normalized().to_string())),
        default_landing_page: prefs.default_landing_page.map(Some),
        default_contact_tab: prefs.default_contact_tab.map(Some),
        show_calendar: prefs.show_calendar,
        daily_email_reminders: prefs.daily_email_reminders,
        updated_at: Some(tx.now),
    };
    users::update_profile(tx.conn, &member.user.id, changes)?;
    if let Some(ext) = &cmd.external_id {
        memberships::set_external_id(tx.conn, &member.membership.id, ext.as_deref(), tx.now)?;
    }
    if let Some(name) = &cmd.scim_user_name {
        memberships::set_scim_user_name(tx.conn, &member.membership.id, name.as_deref(), tx.now)?;
    }
    let details = if email.is_some() {
        json!({ "email_changed": true })
    } else {
        json!({})
    };
    record(tx, &caller, AuditAction::UserUpdated, &member.user.id, details)?;
    load(tx, &root, &member.user.id)
}

/// Replaces a member's roles: the caller must hold all they grant (R4), only owners change
/// owners (R4), and the last active owner keeps the owner role (R3).
pub fn set_roles(tx: &mut Tx<'_>, caller: &Principal, id: &UserId, role_ids: &[String]) -> Result<Member, ApiError> {
    let caller = tx.lock_tenant(caller)?;
    let root = policy::tenant(&caller)?.root.clone();
    let member = load(tx, &root, id)?;
    policy::require_member(&caller, Permission::UsersManage, &member.node, &member.roles)?;
    tx.check_version(&versions::of_member(&member))?;
    let granted = grantable_roles(tx, &caller, role_ids)?;
    let new_roles: Vec<RoleRow> = granted.into_iter().map(|(r, _)| r).collect();
    if policy::holds_owner(&member.roles) && !policy::holds_owner(&new_roles) {
        ensure_an_owner_remains(tx, &root, &member.membership)?;
    }
    let ids: Vec<RoleId> = new_roles.iter().map(|r| r.id.clone()).collect();
    memberships::set_roles(tx.conn, &member.membership.id, &ids, tx.now)?;
    seats::sync(tx.conn, &member.membership.id, SeatEndReason::RolesChanged, tx.now)?;
    let details = json!({
        "from": member.roles.iter().map(|r| r.id.to_string()).collect::<Vec<_>>(),
        "to": ids,
    });
    record(
        tx,
        &caller,
        AuditAction::MembershipRolesChanged,
        &member.user.id,
        details,
    )?;
    load(tx, &root, &member.user.id)
}

/// Moves a member to another open node; the caller manages users at both places.
pub fn move_to(tx: &mut Tx<'_>, caller: &Principal, id: &UserId, raw_node: &str) -> Result<Member, ApiError> {
    let caller = tx.lock_tenant(caller)?;
    let root = policy::tenant(&caller)?.root.clone();
    let member = load(tx, &root, id)?;
    policy::require_member(&caller, Permission::UsersManage, &member.node, &member.roles)?;
    tx.check_version(&versions::of_member(&member))?;
    let target = accounts_svc::find(tx.conn, raw_node)?;
    policy::require_on(&caller, Permission::UsersManage, &target)?;
    crate::service::accounts::ensure_open(&target)?;
    memberships::move_to(tx.conn, &member.membership.id, &target.id, tx.now)?;
    let details = json!({ "from": member.node.id, "to": target.id });
    record(tx, &caller, AuditAction::MembershipMoved, &member.user.id, details)?;
    load(tx, &root, &member.user.id)
}

/// Hands ownership to another active member, who becomes an owner at the root; the caller
/// becomes an admin. Not from a delegated session (R8); decided under the lock, so that
/// concurrent transfers by one owner make exactly one new owner (R15).
pub fn transfer_ownership(tx: &mut Tx<'_>, caller: &Principal, raw_user: &str) -> Result<Transferred, ApiError> {
    policy::forbid_delegated(caller, "transfer ownership")?;
    let caller = tx.lock_tenant(caller)?;
    let root = policy::tenant(&caller)?.root.clone();
    // The target first: a user of another organization answers 404 to everyone (R1).
    let target = find(tx, &root, raw_user)?;
    let tenant = policy::require_transfer_ownership(&caller)?;
    let me = policy::require_person(&caller, "transfer ownership")?.user.id.clone();
    let my_membership = tenant
        .membership
        .as_ref()
        .ok_or_else(|| ApiError::internal("a person's tenant without a membership"))?;
    if target.user.id == me {
        return Err(ApiError::new(ProblemKind::AlreadyOwner, "You are already the owner."));
    }
    if target.membership.status != MembershipStatus::Active || target.user.status != UserStatus::Active {
        return Err(ApiError::new(
            ProblemKind::MemberNotActive,
            "Ownership can only go to an active member.",
        ));
    }
    let owner = builtin_role(tx, &root, BuiltinRole::Owner)?;
    let admin = builtin_role(tx, &root, BuiltinRole::Admin)?;
    memberships::set_roles(tx.conn, &target.membership.id, &[owner], tx.now)?;
    memberships::set_roles(tx.conn, &my_membership.id, &[admin], tx.now)?;
    seats::sync(tx.conn, &target.membership.id, SeatEndReason::RolesChanged, tx.now)?;
    // The new owner reaches the whole organization.
    memberships::move_to(tx.conn, &target.membership.id, &root, tx.now)?;
    let entry = AuditEntry {
        action: AuditAction::AccountOwnershipTransferred,
        target_type: "account",
        target_id: root.as_str(),
        details: json!({ "from": me, "to": target.user.id }),
    };
    audit::record(tx.conn, &caller.audit(), entry, tx.now)?;
    Ok(Transferred {
        owner: load(tx, &root, &target.user.id)?,
        previous_owner: load(tx, &root, &me)?,
    })
}

fn builtin_role(tx: &mut Tx<'_>, root: &AccountId, which: BuiltinRole) -> Result<RoleId, ApiError> {
    roles::find_builtin(tx.conn, root, which)?
        .map(|r| r.id)
        .ok_or_else(|| ApiError::internal(format!("built-in role {} missing", which.key())))
}

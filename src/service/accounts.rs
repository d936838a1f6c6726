//! Accounts: the organization tree, profiles, closing and billing.
//!
//! Every writer of the tree (create a child, update, close, move, billing) starts with
//! `tx.lock_tenant(caller)` and reads the nodes it works on only after it: on PostgreSQL a
//! concurrent move then cannot leave a new child with its parent's old path, and a close
//! cannot miss a node being moved below it. The organization's lock makes these writers take
//! turns, so each decides on the tree as the one before it left it.

use chrono::NaiveDate;
use serde_json::{json, Value};

use crate::auth::extract::{Principal, TenantContext};
use crate::auth::policy;
use crate::db::models::{AccountRow, BillingProfileRow, RoleRow};
use crate::db::repo::accounts::{self, AccountChanges};
use crate::db::repo::audit::{self, AuditEntry};
use crate::db::repo::memberships;
use crate::db::DbConnection;
use crate::domain::permissions::Permission;
use crate::domain::{AccountKind, AccountStatus, AuditAction};
use crate::error::{ApiError, ProblemKind};
use crate::ids::AccountId;
use crate::service::Tx;

/// Reads a node named in a path; unknown and malformed ids answer 404.
pub fn find(conn: &mut DbConnection, raw: &str) -> Result<AccountRow, ApiError> {
    let id = AccountId::parse(raw).ok_or_else(|| ApiError::not_found("account"))?;
    load(conn, &id)
}

/// Reads a node by its (well-formed) id; an unknown one answers 404.
pub fn load(conn: &mut DbConnection, id: &AccountId) -> Result<AccountRow, ApiError> {
    accounts::find(conn, id)?.ok_or_else(|| ApiError::not_found("account"))
}

/// Nothing new happens in a closed account: no children, nothing moved below it, no
/// second close. For every capability that puts something into a node.
pub fn ensure_open(account: &AccountRow) -> Result<(), ApiError> {
    if account.status != AccountStatus::Active {
        return Err(ApiError::new(
            ProblemKind::AccountClosed,
            format!("The account {} is closed.", account.id),
        ));
    }
    Ok(())
}

/// One of the caller's usable memberships: the organization, the node it sits at, its roles.
pub struct Reachable {
    pub root: AccountRow,
    pub node: AccountRow,
    pub roles: Vec<RoleRow>,
    /// The caller's token is scoped to this organization now.
    pub current: bool,
}

/// The accounts the caller can reach, with their roles there; any token, even one that has
/// not picked an account yet.
pub fn reachable(tx: &mut Tx<'_>, caller: &Principal) -> Result<Vec<Reachable>, ApiError> {
    let current = caller.tenant.as_ref().map(|t| &t.root);
    let mut out = Vec::new();
    let me = policy::require_person(caller, "list a person's accounts")?;
    for (membership, root) in memberships::usable_for_user(tx.conn, &me.user.id)? {
        let node = if membership.account_id == root.id {
            root.clone()
        } else {
            accounts::find(tx.conn, &membership.account_id)?.ok_or_else(|| ApiError::internal("node missing"))?
        };
        out.push(Reachable {
            current: current == Some(&root.id),
            roles: memberships::roles_of(tx.conn, &membership.id)?,
            root,
            node,
        });
    }
    Ok(out)
}

/// A node the caller can see (R1, R2).
pub fn get(tx: &mut Tx<'_>, caller: &Principal, id: &AccountId) -> Result<AccountRow, ApiError> {
    let account = load(tx.conn, id)?;
    policy::require_visible(caller, &account)?;
    Ok(account)
}

/// A node the caller can see and every node below it, the node itself first.
pub fn subtree(tx: &mut Tx<'_>, caller: &Principal, id: &AccountId) -> Result<Vec<AccountRow>, ApiError> {
    let account = get(tx, caller, id)?;
    Ok(accounts::subtree(tx.conn, &account)?)
}

/// A new sub-account, parsed: a group or a location, with a valid name.
pub struct NewChild {
    pub kind: AccountKind,
    pub name: String,
    pub address: Option<String>,
    pub phone: Option<String>,
}

/// Creates a sub-account below an open node the caller may update.
pub fn create_child(
    tx: &mut Tx<'_>,
    caller: &Principal,
    parent: &AccountId,
    cmd: NewChild,
) -> Result<AccountRow, ApiError> {
    let caller = tx.lock_tenant(caller)?;
    let parent = load(tx.conn, parent)?;
    policy::require_on(&caller, Permission::AccountUpdate, &parent)?;
    ensure_open(&parent)?;
    let child = accounts::insert_child(
        tx.conn,
        &parent,
        cmd.kind,
        &cmd.name,
        cmd.address.as_deref(),
        cmd.phone.as_deref(),
        tx.now,
    )?;
    let details = json!({ "parent_id": parent.id, "kind": child.kind, "name": child.name });
    record(tx, &caller, AuditAction::AccountCreated, &child.id, details)?;
    Ok(child)
}

/// Changes of a node's profile, parsed: `None` keeps a field, `Some(None)` clears it.
pub struct ProfileUpdate {
    pub name: Option<String>,
    pub address: Option<Option<String>>,
    pub phone: Option<Option<String>>,
}

/// Updates the profile of a node the caller may update.
pub fn update(tx: &mut Tx<'_>, caller: &Principal, id: &AccountId, cmd: ProfileUpdate) -> Result<AccountRow, ApiError> {
    let caller = tx.lock_tenant(caller)?;
    let account = load(tx.conn, id)?;
    policy::require_on(&caller, Permission::AccountUpdate, &account)?;
    tx.check_version(&crate::service::versions::of_account(&account))?;
    let changes = AccountChanges {
        name: cmd.name,
        address: cmd.address,
        phone: cmd.phone,
        updated_at: Some(tx.now),
    };
    accounts::update_profile(tx.conn, &account.id, changes)?;
    record(tx, &caller, AuditAction::AccountUpdated, &account.id, json!({}))?;
    load(tx.conn, &account.id)
}

/// Closes a sub-account and its whole subtree; their data stays.
pub fn close(tx: &mut Tx<'_>, caller: &Principal, id: &AccountId) -> Result<AccountRow, ApiError> {
    let caller = tx.lock_tenant(caller)?;
    let account = load(tx.conn, id)?;
    let tenant = policy::require_on(&caller, Permission::AccountUpdate, &account)?;
    ensure_rearrangeable(&account, tenant, Rearrange::Close)?;
    ensure_open(&account)?;
    let count = accounts::close_subtree(tx.conn, &account, tx.now)?;
    record(
        tx,
        &caller,
        AuditAction::AccountClosed,
        &account.id,
        json!({ "nodes_closed": count }),
    )?;
    load(tx.conn, &account.id)
}

/// Where to move a node: the new parent as named in the request (unknown: 404).
pub struct MoveTo {
    pub parent_id: String,
}

/// Moves a sub-account, with its subtree, under another open node of the organization that
/// is not in that subtree; the caller may update both.
pub fn move_node(tx: &mut Tx<'_>, caller: &Principal, id: &AccountId, cmd: MoveTo) -> Result<AccountRow, ApiError> {
    let caller = tx.lock_tenant(caller)?;
    let account = load(tx.conn, id)?;
    let tenant = policy::require_on(&caller, Permission::AccountUpdate, &account)?;
    tx.check_version(&crate::service::versions::of_account(&account))?;
    let parent = find(tx.conn, &cmd.parent_id)?;
    policy::require_on(&caller, Permission::AccountUpdate, &parent)?;
    ensure_rearrangeable(&account, tenant, Rearrange::Move)?;
    if parent.path.starts_with(&account.path) {
        return Err(ApiError::field(
            "parent_id",
            "cycle",
            "must not be the account itself or one of its descendants",
        ));
    }
    ensure_open(&parent)?;
    accounts::move_subtree(tx.conn, &account, &parent, tx.now)?;
    let details = json!({ "from": account.parent_id, "to": parent.id });
    record(tx, &caller, AuditAction::AccountMoved, &account.id, details)?;
    load(tx.conn, &account.id)
}

/// What is done to a node's place in the tree.
#[derive(Clone, Copy)]
enum Rearrange {
    Close,
    Move,
}

/// Roots stay where they are, and nobody closes or moves the node their own membership sits
/// at (they would cut off their own reach).
fn ensure_rearrangeable(account: &AccountRow, tenant: &TenantContext, what: Rearrange) -> Result<(), ApiError> {
    let (verb, done) = match what {
        Rearrange::Close => ("close", "closed"),
        Rearrange::Move => ("move", "moved"),
    };
    if account.parent_id.is_none() {
        return Err(ApiError::new(
            ProblemKind::RootAccount,
            format!("A root account cannot be {done}."),
        ));
    }
    if account.id == tenant.node.id {
        return Err(ApiError::new(
            ProblemKind::OwnNode,
            format!("You cannot {verb} the account your own membership is at."),
        ));
    }
    Ok(())
}

/// The billing profile of an organization the caller may bill.
pub fn billing(tx: &mut Tx<'_>, caller: &Principal, id: &AccountId) -> Result<BillingProfileRow, ApiError> {
    let account = load(tx.conn, id)?;
    policy::require_billing(caller, &account)?;
    accounts::billing_profile(tx.conn, &account.id)?.ok_or_else(|| ApiError::not_found("billing profile"))
}

/// A new billing profile, parsed.
pub struct BillingUpdate {
    pub billing_email: Option<String>,
    pub plan: String,
    pub seat_price_cents: i64,
    /// ISO 4217, three capital letters.
    pub currency: String,
    pub cycle_start: Option<NaiveDate>,
}

/// Replaces the billing profile of an organization the caller may bill.
pub fn update_billing(
    tx: &mut Tx<'_>,
    caller: &Principal,
    id: &AccountId,
    cmd: BillingUpdate,
) -> Result<BillingProfileRow, ApiError> {
    let caller = tx.lock_tenant(caller)?;
    let current = billing(tx, &caller, id)?;
    tx.check_version(&crate::service::versions::of_billing(&current))?;
    let next = BillingProfileRow {
        account_id: current.account_id,
        billing_email: cmd.billing_email,
        plan: cmd.plan,
        seat_price_cents: cmd.seat_price_cents,
        currency: cmd.currency,
        // Stored in its canonical form, so the profile always shows a full `YYYY-MM-DD` date.
        cycle_start: cmd.cycle_start.map(|d| d.format("%Y-%m-%d").to_string()),
        updated_at: tx.now,
    };
    accounts::save_billing_profile(tx.conn, &next)?;
    let details = json!({ "plan": next.plan, "seat_price_cents": next.seat_price_cents, "currency": next.currency });
    let target = AccountId::from(next.account_id.clone());
    record(tx, &caller, AuditAction::AccountBillingUpdated, &target, details)?;
    Ok(next)
}

/// The audit event of a change to a node, in the change's transaction (R13).
fn record(
    tx: &mut Tx<'_>,
    caller: &Principal,
    action: AuditAction,
    target: &AccountId,
    details: Value,
) -> Result<(), ApiError> {
    let entry = AuditEntry {
        action,
        target_type: "account",
        target_id: target.as_str(),
        details,
    };
    audit::record(tx.conn, &caller.audit(), entry, tx.now)?;
    Ok(())
}

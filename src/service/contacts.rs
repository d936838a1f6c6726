//! Contacts (R12): people in an account node who cannot log in, with the notices they
//! subscribe to and, optionally, the user they are assigned to.
//!
//! `contacts.read_all` sees every contact of the caller's subtree; `contacts.read_assigned`
//! alone only the contacts assigned to the caller; anything else answers 404. Every view
//! carries its assignee's state in the organization (active, deactivated, archived), so a
//! front end can flag contacts whose user is gone. Contacts move in bulk from one user to
//! another in one transaction, and receive notices by subscription; every change is audited
//! in the same transaction.

use serde_json::json;

use crate::auth::extract::Principal;
use crate::auth::policy::{self, ContactAssignee, ContactScope};
use crate::db::models::{AccountRow, ContactRow, MembershipRow, NewContact, Subscriptions, UserRow};
use crate::db::repo::accounts;
use crate::db::repo::audit::{self, AuditEntry};
use crate::db::repo::contacts::{self, ContactFields, ContactFilter};
use crate::db::repo::notifications::{self, Outgoing};
use crate::domain::page::PageRequest;
use crate::domain::{
    AssigneeState, AuditAction, ContactSubscription, Email, MembershipStatus, NotificationKind, UserStatus,
};
use crate::error::ApiError;
use crate::ids::{AccountId, ContactId, UserId};
use crate::service::{members, Tx};

pub use crate::db::repo::contacts::AssigneeIs;

/// A contact's fields as the handler parsed them.
pub struct ContactInput {
    pub name: String,
    pub email: Option<Email>,
    pub phone: Option<String>,
    pub company: Option<String>,
    pub subscriptions: Subscriptions,
}

/// A new contact. `assigned_user_id`: absent (`None`) assigns a `contacts.read_assigned`-only
/// caller's contact to themself and leaves anyone else's unassigned; `Some(None)`: unassigned.
pub struct CreateContact {
    pub account: AccountId,
    pub fields: ContactInput,
    pub assigned_user_id: Option<Option<UserId>>,
}

/// A change: `None` leaves a field as it is; `Some(None)` clears it.
#[derive(Default)]
pub struct ContactPatch {
    pub name: Option<String>,
    pub email: Option<Option<Email>>,
    pub phone: Option<Option<String>>,
    pub company: Option<Option<String>>,
    pub subscriptions: Option<Subscriptions>,
    pub assigned_user_id: Option<Option<UserId>>,
}

/// A contact with its assignee and the assignee's state in the contact's organization.
pub struct Listed {
    pub row: ContactRow,
    pub assignee: Option<(UserRow, AssigneeState)>,
}

/// Creates a contact at a node (`contacts.write` over it).
pub fn create(tx: &mut Tx<'_>, caller: &Principal, cmd: CreateContact) -> Result<Listed, ApiError> {
    let caller = tx.lock_tenant(caller)?;
    let node = accounts::find(tx.conn, &cmd.account)?.ok_or_else(|| ApiError::not_found("account"))?;
    let (_, scope) = policy::require_contact_create(&caller, &node)?;
    let assignee = match (cmd.assigned_user_id, scope) {
        (Some(chosen), _) => chosen,
        (None, ContactScope::AssignedOnly) => caller.user_id().cloned(),
        (None, ContactScope::All) => None,
    };
    check_assignee(tx, &caller, scope, &node, assignee.as_ref())?;
    let fields = cmd.fields;
    require_email_for_subscriptions(fields.email.as_ref(), &fields.subscriptions)?;
    let id = ContactId::generate();
    contacts::insert(
        tx.conn,
        NewContact {
            id: id.clone(),
            root_account_id: node.root_id.clone(),
            account_id: node.id.clone(),
            name: fields.name,
            email: fields.email.map(|e| e.as_str().to_string()),
            phone: fields.phone,
            company: fields.company,
            subscriptions: fields.subscriptions,
            assigned_user_id: assignee.map(String::from),
            created_at: tx.now,
            updated_at: tx.now,
        },
    )?;
    let listed = load(tx, &id)?;
    record(
        tx,
        &caller,
        AuditAction::ContactCreated,
        &listed.row,
        json!({ "account": node.id }),
    )?;
    Ok(listed)
}

/// One contact the caller can see.
pub fn get(tx: &mut Tx<'_>, caller: &Principal, id: &ContactId) -> Result<Listed, ApiError> {
    let (row, node) = contacts::find(tx.conn, id)?.ok_or_else(|| ApiError::not_found("contact"))?;
    policy::require_contact_visible(caller, &row, &node)?;
    with_assignee(tx, row)
}

/// Changes a contact (`contacts.write`, on a contact the caller can see).
pub fn update(tx: &mut Tx<'_>, caller: &Principal, id: &ContactId, patch: ContactPatch) -> Result<Listed, ApiError> {
    let caller = tx.lock_tenant(caller)?;
    let (row, node) = contacts::find(tx.conn, id)?.ok_or_else(|| ApiError::not_found("contact"))?;
    let (_, scope) = policy::require_contact_write(&caller, &row, &node)?;
    tx.check_version(&crate::service::versions::of_contact(&row))?;
    if let Some(assignee) = &patch.assigned_user_id {
        check_assignee(tx, &caller, scope, &node, assignee.as_ref())?;
    }
    let changed: Vec<&str> = [
        ("name", patch.name.is_some()),
        ("email", patch.email.is_some()),
        ("phone", patch.phone.is_some()),
        ("company", patch.company.is_some()),
        ("subscriptions", patch.subscriptions.is_some()),
        ("assigned_user_id", patch.assigned_user_id.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect();
    let fields = ContactFields {
        name: patch.name.unwrap_or_else(|| row.name.clone()),
        email: patch
            .email
            .map_or_else(|| row.email.clone(), |e| e.map(|e| e.as_str().to_string())),
        phone: patch.phone.unwrap_or_else(|| row.phone.clone()),
        company: patch.company.unwrap_or_else(|| row.company.clone()),
        subscriptions: patch.subscriptions.unwrap_or_else(|| row.subscriptions.clone()),
        assigned_user_id: patch.assigned_user_id.unwrap_or_else(|| row.assignee()),
    };
    require_email_for_subscriptions(fields.email.as_ref(), &fields.subscriptions)?;
    contacts::update(tx.conn, id, fields, tx.now)?;
    let listed = load(tx, id)?;
    record(
        tx,
        &caller,
        AuditAction::ContactUpdated,
        &listed.row,
        json!({ "changed": changed }),
    )?;
    Ok(listed)
}

/// Deletes a contact (`contacts.delete`, on a contact the caller can see).
pub fn delete(tx: &mut Tx<'_>, caller: &Principal, id: &ContactId) -> Result<(), ApiError> {
    let caller = tx.lock_tenant(caller)?;
    let (row, node) = contacts::find(tx.conn, id)?.ok_or_else(|| ApiError::not_found("contact"))?;
    policy::require_contact_delete(&caller, &row, &node)?;
    tx.check_version(&crate::service::versions::of_contact(&row))?;
    contacts::delete(tx.conn, id)?;
    record(
        tx,
        &caller,
        AuditAction::ContactDeleted,
        &row,
        json!({ "name": row.name }),
    )
}

/// Narrows a contact list. Ids are as the client sent them (checked here).
#[derive(Default)]
pub struct ContactQuery {
    pub account_id: Option<String>,
    pub assigned_to: Option<String>,
    pub assignee: Option<AssigneeIs>,
    pub subscription: Option<ContactSubscription>,
    pub text: Option<String>,
}

/// One page of the contacts the caller can see.
pub fn list(
    tx: &mut Tx<'_>,
    caller: &Principal,
    query: ContactQuery,
    page: &PageRequest,
) -> Result<(Vec<Listed>, Option<String>), ApiError> {
    let (tenant, scope) = policy::contact_scope(caller)?;
    let mut filter = ContactFilter::new(tenant.root.clone());
    filter.within_paths.push(tenant.node.path.clone());
    if scope == ContactScope::AssignedOnly {
        // An API key is assigned nothing: with contacts.read_assigned alone it sees none.
        let Some(me) = caller.user_id() else {
            return Ok((Vec::new(), None));
        };
        filter.assigned_to = Some(me.clone());
    }
    if let Some(raw) = &query.account_id {
        filter.within_paths.push(node_filter(tx, tenant, raw)?.path);
    }
    if let Some(raw) = &query.assigned_to {
        let user = UserId::parse(raw).ok_or_else(|| ApiError::field("assigned_to", "invalid", "is not a user id"))?;
        match &filter.assigned_to {
            Some(me) if *me != user => return Ok((Vec::new(), None)),
            _ => filter.assigned_to = Some(user),
        }
    }
    filter.assignee = query.assignee;
    filter.subscription = query.subscription;
    filter.text = query.text;
    filter.after = page.after.clone();
    filter.limit = Some(page.fetch());
    let mut rows: Vec<ContactRow> = contacts::list(tx.conn, &filter)?.into_iter().map(|(c, _)| c).collect();
    let next = page.finish(&mut rows, |r| r.id.as_str());
    Ok((with_assignees(tx, &tenant.root, rows)?, next))
}

/// The `account_id` filter: a node of the caller's organization within their reach.
fn node_filter(
    tx: &mut Tx<'_>,
    tenant: &crate::auth::extract::TenantContext,
    raw: &str,
) -> Result<AccountRow, ApiError> {
    let unknown = || ApiError::field("account_id", "unknown", "is not an account within your reach");
    let id = AccountId::parse(raw).ok_or_else(unknown)?;
    let node = accounts::find(tx.conn, &id)?.ok_or_else(unknown)?;
    if node.root_id != tenant.root || !node.path.starts_with(&tenant.node.path) {
        return Err(unknown());
    }
    Ok(node)
}

/// A bulk reassign, as the handler parsed it.
pub struct Reassign {
    pub from: UserId,
    pub to: UserId,
    /// Only contacts at or below this node.
    pub account: Option<AccountId>,
    /// Only these contacts (each must be one the caller can see).
    pub contact_ids: Option<Vec<ContactId>>,
}

/// Moves every contact (of the subtree, or of the list) assigned to `from` over to `to`, in
/// one transaction; returns how many moved. Needs `contacts.write` and `contacts.read_all`
/// over the subtree; `to` must be an active member who can see every contact moved.
pub fn reassign(tx: &mut Tx<'_>, caller: &Principal, cmd: Reassign) -> Result<usize, ApiError> {
    let caller = tx.lock_tenant(caller)?;
    let tenant = policy::tenant(&caller)?;
    let within = match &cmd.account {
        Some(id) => accounts::find(tx.conn, id)?.ok_or_else(|| ApiError::not_found("account"))?,
        None => tenant.node.clone(),
    };
    let tenant = policy::require_contact_reassign(&caller, &within)?;
    let mut filter = ContactFilter::new(tenant.root.clone());
    filter.within_paths = vec![tenant.node.path.clone(), within.path.clone()];
    if let Some(ids) = &cmd.contact_ids {
        let listed = ids.iter().map(|id| id.to_string()).collect::<Vec<_>>();
        filter.ids = Some(listed.clone());
        let found = contacts::list(tx.conn, &filter)?;
        if let Some(missing) = listed
            .iter()
            .find(|id| !found.iter().any(|(c, _)| c.id.as_str() == id.as_str()))
        {
            return Err(ApiError::not_found(&format!("contact {missing} within reach")));
        }
    }
    filter.assigned_to = Some(cmd.from.clone());
    let moving = contacts::list(tx.conn, &filter)?;
    let target = members::load(tx, &tenant.root, &cmd.to)?;
    let permissions = crate::service::roles::permissions_of(tx.conn, &target.roles)?;
    let who = ContactAssignee {
        active: is_active(&target.user, Some(&target.membership)),
        node: &target.node,
        permissions: &permissions,
    };
    // Refused even when nothing would move: an inactive user or one who cannot read contacts
    // is never a target (their own node is always within their reach).
    policy::contact_assignee(&who, &target.node)?;
    for (_, node) in &moving {
        policy::contact_assignee(&who, node)?;
    }
    let ids: Vec<String> = moving.iter().map(|(c, _)| c.id.to_string()).collect();
    let moved = contacts::reassign(tx.conn, &ids, &cmd.to, tx.now)?;
    audit::record(
        tx.conn,
        &caller.audit(),
        AuditEntry {
            action: AuditAction::ContactReassigned,
            target_type: "user",
            target_id: cmd.from.as_str(),
            details: json!({ "from": cmd.from, "to": cmd.to, "account": within.id, "moved": moved, "contacts": ids }),
        },
        tx.now,
    )?;
    Ok(moved)
}

/// A notice to every contact of a subtree subscribed to one kind of notice.
pub struct ContactNotice {
    pub account: AccountId,
    pub subscription: ContactSubscription,
    pub subject: String,
    pub body: String,
}

/// Writes one notification per contact at or below the node who subscribes to the notice
/// and has an email address, each recording its contact, in one transaction (R13); returns
/// how many were queued. Needs `notifications.send` over the node.
pub fn send_notice(tx: &mut Tx<'_>, caller: &Principal, cmd: ContactNotice) -> Result<usize, ApiError> {
    let caller = tx.lock_tenant(caller)?;
    let node = accounts::find(tx.conn, &cmd.account)?.ok_or_else(|| ApiError::not_found("account"))?;
    let tenant = policy::require_contact_notice(&caller, &node)?;
    let mut filter = ContactFilter::new(tenant.root.clone());
    filter.within_paths.push(node.path.clone());
    filter.subscription = Some(cmd.subscription);
    filter.with_email = true;
    let recipients = contacts::list(tx.conn, &filter)?;
    for (contact, _) in &recipients {
        let Some(email) = contact.email.clone() else { continue };
        let msg = Outgoing {
            kind: NotificationKind::ContactNotice,
            account_id: Some(tenant.root.to_string()),
            recipient_user_id: None,
            recipient_email: email,
            on_behalf_of_user_id: None,
            subject: cmd.subject.clone(),
            body: cmd.body.clone(),
            payload: json!({ "contact_id": contact.id, "subscription": cmd.subscription }),
        };
        notifications::enqueue_to_contact(tx.conn, msg, &contact.id, tx.now)?;
    }
    audit::record(
        tx.conn,
        &caller.audit(),
        AuditEntry {
            action: AuditAction::ContactNoticeSent,
            target_type: "account",
            target_id: node.id.as_str(),
            details: json!({ "subscription": cmd.subscription, "subject": cmd.subject, "queued": recipients.len() }),
        },
        tx.now,
    )?;
    Ok(recipients.len())
}

/// R12 and the validation rule that spans fields: a contact who subscribes to any notice
/// needs an address to receive it at.
fn require_email_for_subscriptions<E>(email: Option<&E>, subscriptions: &Subscriptions) -> Result<(), ApiError> {
    if email.is_none() && !subscriptions.is_empty() {
        return Err(ApiError::field(
            "email",
            "required_with_subscriptions",
            "is required while the contact subscribes to notices",
        ));
    }
    Ok(())
}

/// Who a contact at `node` may be assigned to: the caller's own limit (R12), then the
/// assignee's (an active member of the organization who can see the contact).
fn check_assignee(
    tx: &mut Tx<'_>,
    caller: &Principal,
    scope: ContactScope,
    node: &AccountRow,
    to: Option<&UserId>,
) -> Result<(), ApiError> {
    policy::may_assign_contact(caller, scope, to)?;
    let Some(to) = to else { return Ok(()) };
    let member = members::load(tx, &node.root_id, to)?;
    let permissions = crate::service::roles::permissions_of(tx.conn, &member.roles)?;
    let who = ContactAssignee {
        active: is_active(&member.user, Some(&member.membership)),
        node: &member.node,
        permissions: &permissions,
    };
    policy::contact_assignee(&who, node)
}

fn is_active(user: &UserRow, membership: Option<&MembershipRow>) -> bool {
    user.status == UserStatus::Active && membership.is_some_and(|m| m.status == MembershipStatus::Active)
}

/// Where an assignee stands in the contact's organization: archived (the user), else
/// active (with an active membership), else deactivated (or no longer a member).
fn assignee_state(user: &UserRow, membership: Option<&MembershipRow>) -> AssigneeState {
    if user.status == UserStatus::Archived {
        AssigneeState::Archived
    } else if is_active(user, membership) {
        AssigneeState::Active
    } else {
        AssigneeState::Deactivated
    }
}

fn load(tx: &mut Tx<'_>, id: &ContactId) -> Result<Listed, ApiError> {
    let (row, _) = contacts::find(tx.conn, id)?.ok_or_else(|| ApiError::internal("contact vanished"))?;
    with_assignee(tx, row)
}

fn with_assignee(tx: &mut Tx<'_>, row: ContactRow) -> Result<Listed, ApiError> {
    let root = row.root_account_id.clone();
    with_assignees(tx, &root, vec![row])?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::internal("a contact lost its view"))
}

fn with_assignees(tx: &mut Tx<'_>, root: &AccountId, rows: Vec<ContactRow>) -> Result<Vec<Listed>, ApiError> {
    let mut ids: Vec<String> = rows.iter().filter_map(|r| r.assigned_user_id.clone()).collect();
    ids.sort_unstable();
    ids.dedup();
    let people = contacts::assignees(tx.conn, root, &ids)?;
    rows.into_iter()
        .map(|row| {
            let assignee = match &row.assigned_user_id {
                None => None,
                Some(id) => {
                    let (user, membership) = people
                        .iter()
                        .find(|(u, _)| u.id.as_str() == id)
                        .ok_or_else(|| ApiError::internal("contact assigned to an unknown user"))?;
                    Some((user.clone(), assignee_state(user, membership.as_ref())))
                }
            };
            Ok(Listed { row, assignee })
        })
        .collect()
}

fn record(
    tx: &mut Tx<'_>,
    caller: &Principal,
    action: AuditAction,
    row: &ContactRow,
    details: serde_json::Value,
) -> Result<(), ApiError> {
    audit::record(
        tx.conn,
        &caller.audit(),
        AuditEntry {
            action,
            target_type: "contact",
            target_id: row.id.as_str(),
            details,
        },
        tx.now,
    )?;
    Ok(())
}

//! Contacts (R12): people in an account node who cannot log in.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::RepoResult;
use crate::db::models::{AccountRow, ContactRow, MembershipRow, NewContact, Subscriptions, UserRow};
use crate::db::schema::{accounts, contacts, memberships, users};
use crate::db::DbConnection;
use crate::domain::{ContactSubscription, MembershipStatus, UserStatus};
use crate::ids::{AccountId, ContactId, UserId};

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

pub fn insert(conn: &mut DbConnection, row: NewContact) -> RepoResult<()> {
    diesel::insert_into(contacts::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// A contact with the node it lives in.
pub fn find(conn: &mut DbConnection, id: &ContactId) -> RepoResult<Option<(ContactRow, AccountRow)>> {
    contacts::table
        .inner_join(accounts::table.on(accounts::id.eq(contacts::account_id)))
        .filter(contacts::id.eq(id.as_str()))
        .select((ContactRow::as_select(), AccountRow::as_select()))
        .get_result(conn)
        .optional()
}

/// Everything about a contact an edit may change.
pub struct ContactFields {
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company: Option<String>,
    pub subscriptions: Subscriptions,
    pub assigned_user_id: Option<UserId>,
}

pub fn update(conn: &mut DbConnection, id: &ContactId, fields: ContactFields, now: NaiveDateTime) -> RepoResult<()> {
    diesel::update(contacts::table.find(id.as_str()))
        .set((
            contacts::name.eq(fields.name),
            contacts::email.eq(fields.email),
            contacts::phone.eq(fields.phone),
            contacts::company.eq(fields.company),
            contacts::subscriptions.eq(String::from(fields.subscriptions)),
            contacts::assigned_user_id.eq(fields.assigned_user_id.map(String::from)),
            contacts::updated_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn delete(conn: &mut DbConnection, id: &ContactId) -> RepoResult<()> {
    diesel::delete(contacts::table.find(id.as_str()))
        .execute(conn)
        .map(|_| ())
}

/// Assigns the contacts `ids` to `to`; returns how many rows changed.
pub fn reassign(conn: &mut DbConnection, ids: &[String], to: &UserId, now: NaiveDateTime) -> RepoResult<usize> {
    diesel::update(contacts::table.filter(contacts::id.eq_any(ids)))
        .set((
            contacts::assigned_user_id.eq(Some(to.as_str())),
            contacts::updated_at.eq(now),
        ))
        .execute(conn)
}

/// Where a contact's assignee stands in the contact's organization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssigneeIs {
    /// An active user with an active membership.
    Active,
    /// Assigned, not archived, and without an active membership.
    Deactivated,
    Archived,
    /// Assigned to someone who is not active there, whatever the reason.
    NotActive,
    Unassigned,
}

/// What a contact list is narrowed to. Every part is optional but the organization.
#[derive(Debug)]
pub struct ContactFilter {
    pub root: AccountId,
    /// Only contacts at or below each of these node paths (the caller's reach, the filter).
    pub within_paths: Vec<String>,
    pub assigned_to: Option<UserId>,
    pub assignee: Option<AssigneeIs>,
    pub subscription: Option<ContactSubscription>,
    /// Only contacts with an email address.
    pub with_email: bool,
    /// Case-insensitive substring of the name or the email.
    pub text: Option<String>,
    /// Only these contacts.
    pub ids: Option<Vec<String>>,
    /// Keyset: only contacts with an id after this one.
    pub after: Option<String>,
    /// `None`: every match (reassign, notices).
    pub limit: Option<i64>,
}

impl ContactFilter {
    pub fn new(root: AccountId) -> Self {
        Self {
            root,
            within_paths: Vec::new(),
            assigned_to: None,
            assignee: None,
            subscription: None,
            with_email: false,
            text: None,
            ids: None,
            after: None,
            limit: None,
        }
    }
}

/// Contacts with their nodes, in id (creation) order.
pub fn list(conn: &mut DbConnection, filter: &ContactFilter) -> RepoResult<Vec<(ContactRow, AccountRow)>> {
    let mut query = contacts::table
        .inner_join(accounts::table.on(accounts::id.eq(contacts::account_id)))
        .filter(contacts::root_account_id.eq(filter.root.to_string()))
        .select((ContactRow::as_select(), AccountRow::as_select()))
        .into_boxed::<crate::db::MultiBackend>();
    for path in &filter.within_paths {
        query = query.filter(super::accounts::at_or_below(path));
    }
    if let Some(user) = &filter.assigned_to {
        query = query.filter(contacts::assigned_user_id.eq(user.to_string()));
    }
    if let Some(assignee) = filter.assignee {
        let active = memberships::table
            .inner_join(users::table)
            .filter(memberships::root_account_id.eq(filter.root.to_string()))
            .filter(memberships::status.eq(MembershipStatus::Active.as_str()))
            .filter(users::status.eq(UserStatus::Active.as_str()))
            .select(memberships::user_id);
        let archived = users::table
            .filter(users::status.eq(UserStatus::Archived.as_str()))
            .select(users::id);
        let assigned = contacts::assigned_user_id.assume_not_null();
        query = match assignee {
            AssigneeIs::Unassigned => query.filter(contacts::assigned_user_id.is_null()),
            AssigneeIs::Active => query.filter(assigned.eq_any(active)),
            AssigneeIs::Archived => query.filter(assigned.eq_any(archived)),
            AssigneeIs::NotActive => query
                .filter(contacts::assigned_user_id.is_not_null())
                .filter(diesel::dsl::not(assigned.eq_any(active))),
            AssigneeIs::Deactivated => query
                .filter(contacts::assigned_user_id.is_not_null())
                .filter(diesel::dsl::not(assigned.eq_any(active)))
                .filter(diesel::dsl::not(assigned.eq_any(archived))),
        };
    }
    if let Some(subscription) = filter.subscription {
        // Stored as names joined by commas: the name alone, first, last or in between.
        let name = super::escape_like(subscription.as_str());
        query = query.filter(
            contacts::subscriptions
                .eq(subscription.as_str())
                .or(contacts::subscriptions.like(format!("{name},%")).escape('\\'))
                .or(contacts::subscriptions.like(format!("%,{name}")).escape('\\'))
                .or(contacts::subscriptions.like(format!("%,{name},%")).escape('\\')),
        );
    }
    if filter.with_email {
        query = query.filter(contacts::email.is_not_null());
    }
    if let Some(text) = &filter.text {
        let pattern = format!("%{}%", super::escape_like(&text.to_lowercase()));
        query = query.filter(
            lower(contacts::name)
                .like(pattern.clone())
                .escape('\\')
                .or(lower(contacts::email.assume_not_null()).like(pattern).escape('\\')),
        );
    }
    if let Some(ids) = &filter.ids {
        query = query.filter(contacts::id.eq_any(ids.clone()));
    }
    if let Some(after) = &filter.after {
        query = query.filter(contacts::id.gt(after.clone()));
    }
    if let Some(limit) = filter.limit {
        query = query.limit(limit);
    }
    query.order(contacts::id.asc()).load(conn)
}

/// The users some contacts are assigned to, each with their membership in `root` (if any).
pub fn assignees(
    conn: &mut DbConnection,
    root: &AccountId,
    ids: &[String],
) -> RepoResult<Vec<(UserRow, Option<MembershipRow>)>> {
    let people: Vec<UserRow> = users::table
        .filter(users::id.eq_any(ids))
        .select(UserRow::as_select())
        .load(conn)?;
    let mut held: Vec<MembershipRow> = memberships::table
        .filter(memberships::root_account_id.eq(root.as_str()))
        .filter(memberships::user_id.eq_any(ids))
        .select(MembershipRow::as_select())
        .load(conn)?;
    Ok(people
        .into_iter()
        .map(|user| {
            let membership = held
                .iter()
                .position(|m| m.user_id == user.id)
                .map(|i| held.swap_remove(i));
            (user, membership)
        })
        .collect())
}

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::RepoResult;
use crate::db::models::{AccountRow, MembershipRow, NewMembership, RoleRow, UserRow};
use crate::db::schema::{accounts, membership_roles, memberships, roles, users};
use crate::db::DbConnection;
use crate::domain::permissions::BuiltinRole;
use crate::domain::{AccountStatus, MembershipStatus, UserStatus};
use crate::ids::{AccountId, MembershipId, RoleId, UserId};

pub fn insert(conn: &mut DbConnection, membership: NewMembership, role_ids: &[RoleId]) -> RepoResult<MembershipId> {
    let id = membership.id.clone();
    diesel::insert_into(memberships::table)
        .values(membership)
        .execute(conn)?;
    // One statement per row: batch inserts are not available through MultiConnection.
    for role in role_ids {
        diesel::insert_into(membership_roles::table)
            .values((
                membership_roles::membership_id.eq(id.as_str()),
                membership_roles::role_id.eq(role.as_str()),
            ))
            .execute(conn)?;
    }
    Ok(id)
}

/// Inserts many memberships without roles in one statement (an import); see
/// `users::insert_many` for why each backend's own connection runs it.
pub fn insert_many(conn: &mut DbConnection, memberships: Vec<NewMembership>) -> RepoResult<()> {
    let insert = diesel::insert_into(memberships::table).values(memberships);
    match conn {
        DbConnection::Sqlite(c) => insert.execute(c),
        DbConnection::Postgres(c) => insert.execute(c),
    }
    .map(|_| ())
}

/// New membership row with fresh id and timestamps.
pub fn new_active(user: &UserId, node: &AccountRow, now: NaiveDateTime) -> NewMembership {
    NewMembership {
        id: MembershipId::generate(),
        user_id: user.clone(),
        root_account_id: node.root_id.clone(),
        account_id: node.id.clone(),
        status: MembershipStatus::Active,
        created_at: now,
        updated_at: now,
        external_id: None,
        scim_user_name: None,
    }
}

/// The user's memberships that allow logging in: active, at an open node of an active root
/// account. Returns each with its root account.
pub fn usable_for_user(conn: &mut DbConnection, user: &UserId) -> RepoResult<Vec<(MembershipRow, AccountRow)>> {
    let node = diesel::alias!(accounts as node);
    memberships::table
        .inner_join(accounts::table.on(accounts::id.eq(memberships::root_account_id)))
        .inner_join(node.on(node.field(accounts::id).eq(memberships::account_id)))
        .filter(memberships::user_id.eq(user.as_str()))
        .filter(memberships::status.eq(MembershipStatus::Active.as_str()))
        .filter(accounts::status.eq(AccountStatus::Active.as_str()))
        .filter(node.field(accounts::status).eq(AccountStatus::Active.as_str()))
        .order(accounts::name.asc())
        .select((MembershipRow::as_select(), AccountRow::as_select()))
        .load(conn)
}

/// A usable membership with its organization and one of its roles (none for a membership
/// without roles): a row of [`usable_with_roles_for_user`], and of the refresh token look-up
/// (`sessions::find_refresh_token_with_memberships`), which reads the same rows.
pub type UsableMembershipRow = (MembershipRow, AccountRow, Option<RoleRow>);

/// Like [`usable_for_user`], with each membership's roles in the same query: a row for each
/// role (by name), or one without a role for a membership that has none. One round trip
/// fewer on every login and refresh.
pub fn usable_with_roles_for_user(conn: &mut DbConnection, user: &UserId) -> RepoResult<Vec<UsableMembershipRow>> {
    let node = diesel::alias!(accounts as node);
    memberships::table
        .inner_join(accounts::table.on(accounts::id.eq(memberships::root_account_id)))
        .inner_join(node.on(node.field(accounts::id).eq(memberships::account_id)))
        .left_join(membership_roles::table.on(membership_roles::membership_id.eq(memberships::id)))
        .left_join(roles::table.on(roles::id.eq(membership_roles::role_id)))
        .filter(memberships::user_id.eq(user.as_str()))
        .filter(memberships::status.eq(MembershipStatus::Active.as_str()))
        .filter(accounts::status.eq(AccountStatus::Active.as_str()))
        .filter(node.field(accounts::status).eq(AccountStatus::Active.as_str()))
        .order((accounts::name.asc(), memberships::id.asc(), roles::name.asc()))
        .select((
            MembershipRow::as_select(),
            AccountRow::as_select(),
            Option::<RoleRow>::as_select(),
        ))
        .load(conn)
}

pub fn find_for_user_in(conn: &mut DbConnection, user: &UserId, root: &AccountId) -> RepoResult<Option<MembershipRow>> {
    memberships::table
        .filter(memberships::user_id.eq(user.as_str()))
        .filter(memberships::root_account_id.eq(root.as_str()))
        .select(MembershipRow::as_select())
        .get_result(conn)
        .optional()
}

pub fn roles_of(conn: &mut DbConnection, membership: &MembershipId) -> RepoResult<Vec<RoleRow>> {
    membership_roles::table
        .inner_join(roles::table)
        .filter(membership_roles::membership_id.eq(membership.as_str()))
        .order(roles::name.asc())
        .select(RoleRow::as_select())
        .load(conn)
}

/// Replaces the roles of a membership.
pub fn set_roles(
    conn: &mut DbConnection,
    membership: &MembershipId,
    role_ids: &[RoleId],
    now: NaiveDateTime,
) -> RepoResult<()> {
    diesel::delete(membership_roles::table.filter(membership_roles::membership_id.eq(membership.as_str())))
        .execute(conn)?;
    for role in role_ids {
        diesel::insert_into(membership_roles::table)
            .values((
                membership_roles::membership_id.eq(membership.as_str()),
                membership_roles::role_id.eq(role.as_str()),
            ))
            .execute(conn)?;
    }
    touch(conn, membership, now)
}

fn touch(conn: &mut DbConnection, membership: &MembershipId, now: NaiveDateTime) -> RepoResult<()> {
    diesel::update(memberships::table.find(membership.as_str()))
        .set(memberships::updated_at.eq(now))
        .execute(conn)
        .map(|_| ())
}

/// Moves a membership to another node of the same root account.
pub fn move_to(
    conn: &mut DbConnection,
    membership: &MembershipId,
    node: &AccountId,
    now: NaiveDateTime,
) -> RepoResult<()> {
    diesel::update(memberships::table.find(membership.as_str()))
        .set((
            memberships::account_id.eq(node.as_str()),
            memberships::updated_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn set_external_id(
    conn: &mut DbConnection,
    membership: &MembershipId,
    external_id: Option<&str>,
    now: NaiveDateTime,
) -> RepoResult<()> {
    diesel::update(memberships::table.find(membership.as_str()))
        .set((
            memberships::external_id.eq(external_id),
            memberships::updated_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Active members of the root account holding the built-in owner role (R3 counts these).
pub fn active_owner_memberships(conn: &mut DbConnection, root: &AccountId) -> RepoResult<Vec<String>> {
    memberships::table
        .inner_join(membership_roles::table.inner_join(roles::table))
        .inner_join(users::table)
        .filter(memberships::root_account_id.eq(root.as_str()))
        .filter(memberships::status.eq(MembershipStatus::Active.as_str()))
        .filter(users::status.eq(UserStatus::Active.as_str()))
        .filter(roles::builtin_key.eq(BuiltinRole::Owner.key()))
        .select(memberships::id)
        .distinct()
        .load(conn)
}

/// A member of the root account: the membership and its user.
pub fn find_member(
    conn: &mut DbConnection,
    root: &AccountId,
    user: &UserId,
) -> RepoResult<Option<(MembershipRow, UserRow)>> {
    memberships::table
        .inner_join(users::table)
        .filter(memberships::root_account_id.eq(root.as_str()))
        .filter(memberships::user_id.eq(user.as_str()))
        .select((MembershipRow::as_select(), UserRow::as_select()))
        .get_result(conn)
        .optional()
}

pub fn external_id_taken(
    conn: &mut DbConnection,
    root: &AccountId,
    external_id: &str,
    except: Option<&MembershipId>,
) -> RepoResult<bool> {
    let except = except.map(|m| m.as_str().to_string()).unwrap_or_default();
    diesel::select(diesel::dsl::exists(
        memberships::table
            .filter(memberships::root_account_id.eq(root.as_str()))
            .filter(memberships::external_id.eq(external_id))
            .filter(memberships::id.ne(except)),
    ))
    .get_result(conn)
}

/// Roles of several memberships at once: (membership id, role).
pub fn roles_of_many(conn: &mut DbConnection, ids: &[String]) -> RepoResult<Vec<(String, RoleRow)>> {
    membership_roles::table
        .inner_join(roles::table)
        .filter(membership_roles::membership_id.eq_any(ids))
        .order(roles::name.asc())
        .select((membership_roles::membership_id, RoleRow::as_select()))
        .load(conn)
}

/// How many memberships hold a role.
pub fn count_holding(conn: &mut DbConnection, role: &RoleId) -> RepoResult<i64> {
    membership_roles::table
        .filter(membership_roles::role_id.eq(role.as_str()))
        .count()
        .get_result(conn)
}

/// What a member list is narrowed to.
#[derive(Debug, Default)]
pub struct MemberFilter {
    /// Only memberships at or below this node path (the caller's reach, or the `node` filter).
    pub within_paths: Vec<String>,
    pub status: Option<MembershipStatus>,
    pub user_status: Option<UserStatus>,
    pub role: Option<RoleId>,
    /// Case-insensitive substring of first or last name, email or username.
    pub text: Option<String>,
    pub external_id: Option<String>,
    /// Keyset: only users with an id after this one.
    pub after: Option<String>,
    pub limit: i64,
}

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

/// The query of [`page`]; `$sqlite` says whether it runs on SQLite.
macro_rules! member_page {
    ($sqlite:expr, $root:expr, $filter:expr) => {{
        let (root, filter, indexed_search): (&AccountId, &MemberFilter, bool) = ($root, $filter, $sqlite);
        let mut query = memberships::table
            .inner_join(users::table)
            .inner_join(accounts::table.on(accounts::id.eq(memberships::account_id)))
            .filter(memberships::root_account_id.eq(root.as_str()))
            .select((MembershipRow::as_select(), UserRow::as_select()))
            .into_boxed::<crate::db::MultiBackend>();
        for path in &filter.within_paths {
            query = query.filter(super::accounts::at_or_below(path));
        }
        if let Some(status) = filter.status {
            query = query.filter(memberships::status.eq(status.as_str()));
        }
        if let Some(status) = filter.user_status {
            query = query.filter(users::status.eq(status.as_str()));
        }
        if let Some(role) = &filter.role {
            let holders = membership_roles::table
                .filter(membership_roles::role_id.eq(role.as_str().to_string()))
                .select(membership_roles::membership_id);
            query = query.filter(memberships::id.eq_any(holders));
        }
        match &filter.text {
            // SQLite: the trigram index `users_search` finds the users holding the text (three
            // characters or more), so a rare name costs a few index reads, not the organization.
            Some(text) if indexed_search && text.chars().count() >= 3 => {
                let phrase = format!(
                    "{{first_name last_name email username}} : \"{}\"",
                    text.replace('"', "\"\"")
                );
                query = query.filter(
                    diesel::dsl::sql::<diesel::sql_types::Bool>(
                        "memberships.user_id IN (SELECT user_id FROM user_search_keys WHERE key IN \
                     (SELECT rowid FROM users_search WHERE users_search MATCH ",
                    )
                    .bind::<diesel::sql_types::Text, _>(phrase)
                    .sql("))"),
                );
            }
            // PostgreSQL (served by the pg_trgm index `users_search_idx`), and shorter text.
            Some(text) => {
                let pattern = format!("%{}%", super::escape_like(&text.to_lowercase()));
                query = query.filter(
                    lower(users::first_name)
                        .like(pattern.clone())
                        .escape('\\')
                        .or(lower(users::last_name).like(pattern.clone()).escape('\\'))
                        .or(users::email_normalized.like(pattern.clone()).escape('\\'))
                        .or(users::username_normalized.like(pattern).escape('\\')),
                );
            }
            None => {}
        }
        if let Some(external_id) = &filter.external_id {
            query = query.filter(memberships::external_id.eq(external_id.clone()));
        }
        if let Some(after) = &filter.after {
            query = query.filter(memberships::user_id.gt(after.clone()));
        }
        // The membership's own copy of the user id: `memberships_root_user_idx` serves the
        // organization, the order and the cursor, so no page sorts the organization.
        query.order(memberships::user_id.asc()).limit(filter.limit)
    }};
}

/// One page of the root account's members, ordered by user id (creation order).
pub fn page(
    conn: &mut DbConnection,
    root: &AccountId,
    filter: &MemberFilter,
) -> RepoResult<Vec<(MembershipRow, UserRow)>> {
    let sqlite = matches!(conn, DbConnection::Sqlite(_));
    member_page!(sqlite, root, filter).load(conn)
}

/// How SQLite runs [`page`] (the `detail` lines of `EXPLAIN QUERY PLAN`), so that a test
/// can hold the member list to its index; empty on PostgreSQL, whose plan depends on the
/// table statistics.
pub fn page_plan(conn: &mut DbConnection, root: &AccountId, filter: &MemberFilter) -> RepoResult<Vec<String>> {
    if !matches!(conn, DbConnection::Sqlite(_)) {
        return Ok(Vec::new());
    }
    let rows: Vec<(i32, i32, i32, String)> = super::QueryPlan(member_page!(true, root, filter)).load(conn)?;
    Ok(rows.into_iter().map(|(_, _, _, detail)| detail).collect())
}

/// Deactivates or reactivates a membership (R10); its roles and data stay.
pub fn set_status(
    conn: &mut DbConnection,
    id: &MembershipId,
    status: MembershipStatus,
    now: NaiveDateTime,
) -> RepoResult<()> {
    diesel::update(memberships::table.find(id.as_str()))
        .set((memberships::status.eq(status.as_str()), memberships::updated_at.eq(now)))
        .execute(conn)
        .map(|_| ())
}

/// Removes a membership and its roles (the user stays, a member elsewhere).
pub fn delete(conn: &mut DbConnection, id: &MembershipId) -> RepoResult<()> {
    diesel::delete(membership_roles::table.filter(membership_roles::membership_id.eq(id.as_str()))).execute(conn)?;
    diesel::delete(memberships::table.find(id.as_str()))
        .execute(conn)
        .map(|_| ())
}

/// How many organizations the user is a member of, whatever the memberships' state.
pub fn count_for_user(conn: &mut DbConnection, user: &UserId) -> RepoResult<i64> {
    memberships::table
        .filter(memberships::user_id.eq(user.as_str()))
        .count()
        .get_result(conn)
}

pub fn find(conn: &mut DbConnection, id: &MembershipId) -> RepoResult<Option<MembershipRow>> {
    memberships::table
        .find(id.as_str())
        .select(MembershipRow::as_select())
        .get_result(conn)
        .optional()
}

/// Sets (or clears) the identity provider's SCIM `userName` of a membership.
pub fn set_scim_user_name(
    conn: &mut DbConnection,
    membership: &MembershipId,
    user_name: Option<&str>,
    now: NaiveDateTime,
) -> RepoResult<()> {
    diesel::update(memberships::table.find(membership.as_str()))
        .set((
            memberships::scim_user_name.eq(user_name),
            memberships::updated_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

diesel::define_sql_function! {
    #[sql_name = "lower"]
    fn lower_nullable(x: diesel::sql_types::Nullable<diesel::sql_types::Text>) -> diesel::sql_types::Nullable<diesel::sql_types::Text>;
}

/// Whether another membership of the root account answers to the SCIM `userName`
/// `lowered` (already lower case): its own `userName`, or its user's email when it has none.
pub fn scim_user_name_taken(
    conn: &mut DbConnection,
    root: &AccountId,
    lowered: &str,
    except: Option<&MembershipId>,
) -> RepoResult<bool> {
    let except = except.map(|m| m.as_str().to_string()).unwrap_or_default();
    diesel::select(diesel::dsl::exists(
        memberships::table
            .inner_join(users::table)
            .filter(memberships::root_account_id.eq(root.as_str()))
            .filter(memberships::id.ne(except))
            .filter(
                lower_nullable(memberships::scim_user_name)
                    .eq(lowered)
                    .or(memberships::scim_user_name
                        .is_null()
                        .and(users::email_normalized.eq(lowered))),
            ),
    ))
    .get_result(conn)
}

/// A bound on when a member last changed (the later of its user's and its membership's
/// `updated_at`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangedBound {
    After,
    AtOrAfter,
    Before,
    AtOrBefore,
}

/// What a SCIM query of an organization's members is narrowed to; every condition must
/// hold. Archived users are never listed.
#[derive(Debug, Default)]
pub struct ScimMemberFilter {
    /// Lower case; matches the `userName`, or the email of a member without one.
    pub user_names: Vec<String>,
    pub external_ids: Vec<String>,
    pub user_ids: Vec<String>,
    /// Normalized emails.
    pub emails: Vec<String>,
    pub status: Option<MembershipStatus>,
    pub changed: Vec<(ChangedBound, NaiveDateTime)>,
}

macro_rules! scim_members {
    ($root:expr, $filter:expr) => {{
        let filter: &ScimMemberFilter = $filter;
        let mut query = memberships::table
            .inner_join(users::table)
            .filter(memberships::root_account_id.eq($root.as_str().to_string()))
            .filter(users::status.eq(UserStatus::Active.as_str()))
            .into_boxed::<crate::db::MultiBackend>();
        for name in &filter.user_names {
            query = query.filter(
                lower_nullable(memberships::scim_user_name)
                    .eq(name.clone())
                    .or(memberships::scim_user_name
                        .is_null()
                        .and(users::email_normalized.eq(name.clone()))),
            );
        }
        for external_id in &filter.external_ids {
            query = query.filter(memberships::external_id.eq(external_id.clone()));
        }
        for id in &filter.user_ids {
            query = query.filter(users::id.eq(id.clone()));
        }
        for email in &filter.emails {
            query = query.filter(users::email_normalized.eq(email.clone()));
        }
        if let Some(status) = filter.status {
            query = query.filter(memberships::status.eq(status.as_str()));
        }
        for (bound, at) in &filter.changed {
            let at = *at;
            query = match bound {
                ChangedBound::After => query.filter(users::updated_at.gt(at).or(memberships::updated_at.gt(at))),
                ChangedBound::AtOrAfter => query.filter(users::updated_at.ge(at).or(memberships::updated_at.ge(at))),
                ChangedBound::Before => query.filter(users::updated_at.lt(at).and(memberships::updated_at.lt(at))),
                ChangedBound::AtOrBefore => query.filter(users::updated_at.le(at).and(memberships::updated_at.le(at))),
            };
        }
        query
    }};
}

/// One page of the organization's members that match `filter`, by user id, skipping `offset`.
pub fn scim_page(
    conn: &mut DbConnection,
    root: &AccountId,
    filter: &ScimMemberFilter,
    offset: i64,
    limit: i64,
) -> RepoResult<Vec<(MembershipRow, UserRow)>> {
    scim_members!(root, filter)
        .select((MembershipRow::as_select(), UserRow::as_select()))
        .order(memberships::user_id.asc())
        .offset(offset)
        .limit(limit)
        .load(conn)
}

/// How many of the organization's members match `filter`.
pub fn scim_count(conn: &mut DbConnection, root: &AccountId, filter: &ScimMemberFilter) -> RepoResult<i64> {
    scim_members!(root, filter).count().get_result(conn)
}

/// The members of the organization (archived users left out) who hold any of `roles`:
/// (role id, membership, user), by user id.
pub fn holding_roles(
    conn: &mut DbConnection,
    root: &AccountId,
    roles: &[RoleId],
) -> RepoResult<Vec<(String, MembershipRow, UserRow)>> {
    let ids: Vec<&str> = roles.iter().map(RoleId::as_str).collect();
    membership_roles::table
        .inner_join(memberships::table.inner_join(users::table))
        .filter(memberships::root_account_id.eq(root.as_str()))
        .filter(users::status.eq(UserStatus::Active.as_str()))
        .filter(membership_roles::role_id.eq_any(ids))
        .order(memberships::user_id.asc())
        .select((
            membership_roles::role_id,
            MembershipRow::as_select(),
            UserRow::as_select(),
        ))
        .load(conn)
}

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::RepoResult;
use crate::db::models::{NewUser, UserRow};
use crate::db::schema::users;
use crate::db::DbConnection;
use crate::domain::UserStatus;
use crate::ids::UserId;

pub fn insert(conn: &mut DbConnection, user: NewUser<'_>) -> RepoResult<()> {
    diesel::insert_into(users::table).values(user).execute(conn).map(|_| ())
}

/// Inserts many users in one statement (an import). `MultiConnection` has no batch insert,
/// so each backend's own connection runs it; keep `users` under the backend's limit of bound
/// parameters (a thousand rows is well under both).
pub fn insert_many(conn: &mut DbConnection, users: Vec<NewUser<'_>>) -> RepoResult<()> {
    let insert = diesel::insert_into(users::table).values(users);
    match conn {
        DbConnection::Sqlite(c) => insert.execute(c),
        DbConnection::Postgres(c) => insert.execute(c),
    }
    .map(|_| ())
}

pub fn find(conn: &mut DbConnection, id: &UserId) -> RepoResult<Option<UserRow>> {
    users::table
        .find(id.as_str())
        .select(UserRow::as_select())
        .get_result(conn)
        .optional()
}

pub fn find_by_email(conn: &mut DbConnection, email_normalized: &str) -> RepoResult<Option<UserRow>> {
    users::table
        .filter(users::email_normalized.eq(email_normalized))
        .select(UserRow::as_select())
        .get_result(conn)
        .optional()
}

pub fn find_by_username(conn: &mut DbConnection, username_normalized: &str) -> RepoResult<Option<UserRow>> {
    users::table
        .filter(users::username_normalized.eq(username_normalized))
        .select(UserRow::as_select())
        .get_result(conn)
        .optional()
}

pub fn email_taken(conn: &mut DbConnection, email_normalized: &str) -> RepoResult<bool> {
    diesel::select(diesel::dsl::exists(
        users::table.filter(users::email_normalized.eq(email_normalized)),
    ))
    .get_result(conn)
}

pub fn username_taken(conn: &mut DbConnection, username_normalized: &str) -> RepoResult<bool> {
    diesel::select(diesel::dsl::exists(
        users::table.filter(users::username_normalized.eq(username_normalized)),
    ))
    .get_result(conn)
}

/// Replaces the password hash and clears the "must change" flag.
pub fn set_password(conn: &mut DbConnection, id: &UserId, hash: &str, now: NaiveDateTime) -> RepoResult<()> {
    diesel::update(users::table.find(id.as_str()))
        .set((
            users::password_hash.eq(Some(hash)),
            users::must_change_password.eq(false),
            users::updated_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Changes of a user's profile; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = users)]
pub struct UserChanges {
    pub email: Option<String>,
    pub email_normalized: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<Option<String>>,
    pub username: Option<Option<String>>,
    pub username_normalized: Option<Option<String>>,
    pub default_landing_page: Option<Option<String>>,
    pub default_contact_tab: Option<Option<String>>,
    pub show_calendar: Option<bool>,
    pub daily_email_reminders: Option<bool>,
    pub updated_at: Option<NaiveDateTime>,
}

pub fn update_profile(conn: &mut DbConnection, id: &UserId, changes: UserChanges) -> RepoResult<()> {
    diesel::update(users::table.find(id.as_str()))
        .set(changes)
        .execute(conn)
        .map(|_| ())
}

/// Archives a user (R11): they cannot log in, and their password hash is destroyed.
pub fn archive(conn: &mut DbConnection, id: &UserId, now: NaiveDateTime) -> RepoResult<()> {
    diesel::update(users::table.find(id.as_str()))
        .set((
            users::status.eq(UserStatus::Archived.as_str()),
            users::password_hash.eq(None::<String>),
            users::archived_at.eq(Some(now)),
            users::updated_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Makes an archived user active again with no usable password (R11): they set one with
/// the link the restore hands out.
pub fn restore(conn: &mut DbConnection, id: &UserId, now: NaiveDateTime) -> RepoResult<()> {
    diesel::update(users::table.find(id.as_str()))
        .set((
            users::status.eq(UserStatus::Active.as_str()),
            users::password_hash.eq(None::<String>),
            users::must_change_password.eq(false),
            users::archived_at.eq(None::<NaiveDateTime>),
            users::updated_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::RepoResult;
use crate::db::models::{NewPasswordReset, PasswordResetRow};
use crate::db::schema::password_reset_tokens;
use crate::db::DbConnection;
use crate::ids::UserId;

pub fn insert(conn: &mut DbConnection, reset: NewPasswordReset) -> RepoResult<()> {
    diesel::insert_into(password_reset_tokens::table)
        .values(reset)
        .execute(conn)
        .map(|_| ())
}

pub fn find_by_hash(conn: &mut DbConnection, token_hash: &str) -> RepoResult<Option<PasswordResetRow>> {
    password_reset_tokens::table
        .filter(password_reset_tokens::token_hash.eq(token_hash))
        .select(PasswordResetRow::as_select())
        .get_result(conn)
        .optional()
}

/// Spends every unspent reset link of the user; `true` when `token_hash` was among them
/// and unspent, so exactly one confirm can succeed.
pub fn spend_all_for_user(
    conn: &mut DbConnection,
    user: &UserId,
    token_hash: Option<&str>,
    now: NaiveDateTime,
) -> RepoResult<bool> {
    let mut spent_this = true;
    if let Some(hash) = token_hash {
        spent_this = diesel::update(
            password_reset_tokens::table
                .filter(password_reset_tokens::token_hash.eq(hash))
                .filter(password_reset_tokens::used_at.is_null()),
        )
        .set(password_reset_tokens::used_at.eq(Some(now)))
        .execute(conn)?
            == 1;
    }
    diesel::update(
        password_reset_tokens::table
            .filter(password_reset_tokens::user_id.eq(user.as_str()))
            .filter(password_reset_tokens::used_at.is_null()),
    )
    .set(password_reset_tokens::used_at.eq(Some(now)))
    .execute(conn)?;
    Ok(spent_this)
}

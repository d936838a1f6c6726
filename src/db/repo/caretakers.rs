//! Caretaker assignments (R7): at most one live assignment per managed user and
//! organization (a partial unique index holds it even under concurrent writers).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::RepoResult;
use crate::db::models::{CaretakerAssignmentRow, NewCaretakerAssignment, UserRow};
use crate::db::schema::{caretaker_assignments, users};
use crate::db::DbConnection;
use crate::ids::{AccountId, CaretakerAssignmentId, UserId};

pub fn insert(conn: &mut DbConnection, row: NewCaretakerAssignment) -> RepoResult<CaretakerAssignmentId> {
    let id = row.id.clone();
    diesel::insert_into(caretaker_assignments::table)
        .values(row)
        .execute(conn)?;
    Ok(id)
}

/// The live assignment of a managed user in an organization, if any.
pub fn live_for_managed(
    conn: &mut DbConnection,
    root: &AccountId,
    managed: &UserId,
) -> RepoResult<Option<CaretakerAssignmentRow>> {
    caretaker_assignments::table
        .filter(caretaker_assignments::root_account_id.eq(root.as_str()))
        .filter(caretaker_assignments::managed_user_id.eq(managed.as_str()))
        .filter(caretaker_assignments::removed_at.is_null())
        .select(CaretakerAssignmentRow::as_select())
        .get_result(conn)
        .optional()
}

/// Every live assignment of a managed user, in any organization (login checks these).
pub fn live_for_managed_anywhere(conn: &mut DbConnection, managed: &UserId) -> RepoResult<Vec<CaretakerAssignmentRow>> {
    caretaker_assignments::table
        .filter(caretaker_assignments::managed_user_id.eq(managed.as_str()))
        .filter(caretaker_assignments::removed_at.is_null())
        .select(CaretakerAssignmentRow::as_select())
        .load(conn)
}

/// The users a caretaker manages now in an organization, with their assignments.
pub fn managed_by(
    conn: &mut DbConnection,
    root: &AccountId,
    caretaker: &UserId,
) -> RepoResult<Vec<(CaretakerAssignmentRow, UserRow)>> {
    caretaker_assignments::table
        .inner_join(users::table.on(users::id.eq(caretaker_assignments::managed_user_id)))
        .filter(caretaker_assignments::root_account_id.eq(root.as_str()))
        .filter(caretaker_assignments::caretaker_user_id.eq(caretaker.as_str()))
        .filter(caretaker_assignments::removed_at.is_null())
        .order(caretaker_assignments::assigned_at.asc())
        .select((CaretakerAssignmentRow::as_select(), UserRow::as_select()))
        .load(conn)
}

/// Whether a user is a caretaker of anyone in an organization now.
pub fn is_caretaker(conn: &mut DbConnection, root: &AccountId, user: &UserId) -> RepoResult<bool> {
    let n: i64 = caretaker_assignments::table
        .filter(caretaker_assignments::root_account_id.eq(root.as_str()))
        .filter(caretaker_assignments::caretaker_user_id.eq(user.as_str()))
        .filter(caretaker_assignments::removed_at.is_null())
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// Ends a live assignment; `false` when it had already ended.
pub fn end(conn: &mut DbConnection, id: &CaretakerAssignmentId, by: &UserId, now: NaiveDateTime) -> RepoResult<bool> {
    let n = diesel::update(
        caretaker_assignments::table
            .find(id.as_str())
            .filter(caretaker_assignments::removed_at.is_null()),
    )
    .set((
        caretaker_assignments::removed_at.eq(Some(now)),
        caretaker_assignments::removed_by.eq(Some(by.as_str())),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// The live assignments a user takes part in, managed or caretaker, in an organization.
pub fn live_involving(
    conn: &mut DbConnection,
    root: &AccountId,
    user: &UserId,
) -> RepoResult<Vec<CaretakerAssignmentRow>> {
    caretaker_assignments::table
        .filter(caretaker_assignments::root_account_id.eq(root.as_str()))
        .filter(
            caretaker_assignments::managed_user_id
                .eq(user.as_str())
                .or(caretaker_assignments::caretaker_user_id.eq(user.as_str())),
        )
        .filter(caretaker_assignments::removed_at.is_null())
        .select(CaretakerAssignmentRow::as_select())
        .load(conn)
}

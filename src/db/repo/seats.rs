//! The seat ledger (R10): one row per billable period of a membership. A partial unique
//! index keeps at most one open period per membership.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::RepoResult;
use crate::db::models::{NewSeat, SeatRow};
use crate::db::schema::seat_ledger;
use crate::db::DbConnection;
use crate::domain::SeatEndReason;
use crate::ids::{AccountId, MembershipId, SeatId};

pub fn open_for(conn: &mut DbConnection, membership: &MembershipId) -> RepoResult<Option<SeatRow>> {
    seat_ledger::table
        .filter(seat_ledger::membership_id.eq(membership.as_str()))
        .filter(seat_ledger::ended_at.is_null())
        .select(SeatRow::as_select())
        .get_result(conn)
        .optional()
}

pub fn open(conn: &mut DbConnection, seat: NewSeat) -> RepoResult<()> {
    diesel::insert_into(seat_ledger::table)
        .values(seat)
        .execute(conn)
        .map(|_| ())
}

pub fn close(conn: &mut DbConnection, id: &SeatId, reason: SeatEndReason, now: NaiveDateTime) -> RepoResult<()> {
    diesel::update(
        seat_ledger::table
            .find(id.as_str())
            .filter(seat_ledger::ended_at.is_null()),
    )
    .set((
        seat_ledger::ended_at.eq(Some(now)),
        seat_ledger::end_reason.eq(Some(reason.as_str())),
    ))
    .execute(conn)
    .map(|_| ())
}

/// How many seats are billable now: the organization's open periods.
pub fn open_count(conn: &mut DbConnection, root: &AccountId) -> RepoResult<i64> {
    seat_ledger::table
        .filter(seat_ledger::root_account_id.eq(root.as_str()))
        .filter(seat_ledger::ended_at.is_null())
        .count()
        .get_result(conn)
}

/// Periods that were billable at some time in `[from, to)`: open ones, and those that
/// ended at or after `from` and started before `to`; newest first, one page.
pub fn overlapping(
    conn: &mut DbConnection,
    root: &AccountId,
    (from, to): (NaiveDateTime, NaiveDateTime),
    before: Option<&str>,
    limit: i64,
) -> RepoResult<Vec<SeatRow>> {
    let mut query = seat_ledger::table
        .filter(seat_ledger::root_account_id.eq(root.as_str()))
        .filter(seat_ledger::started_at.lt(to))
        .filter(seat_ledger::ended_at.is_null().or(seat_ledger::ended_at.ge(from)))
        .select(SeatRow::as_select())
        .into_boxed::<crate::db::MultiBackend>();
    if let Some(before) = before {
        query = query.filter(seat_ledger::id.lt(before.to_string()));
    }
    query.order(seat_ledger::id.desc()).limit(limit).load(conn)
}

/// Periods that ended in `[from, to)`, oldest end first: the seats closed early in a cycle.
pub fn closed_between(
    conn: &mut DbConnection,
    root: &AccountId,
    (from, to): (NaiveDateTime, NaiveDateTime),
) -> RepoResult<Vec<SeatRow>> {
    seat_ledger::table
        .filter(seat_ledger::root_account_id.eq(root.as_str()))
        .filter(seat_ledger::ended_at.ge(from))
        .filter(seat_ledger::ended_at.lt(to))
        .order(seat_ledger::ended_at.asc())
        .select(SeatRow::as_select())
        .load(conn)
}

/// When the membership's next billable period after `after` started, if one did.
pub fn next_start(
    conn: &mut DbConnection,
    membership: &MembershipId,
    after: NaiveDateTime,
) -> RepoResult<Option<NaiveDateTime>> {
    seat_ledger::table
        .filter(seat_ledger::membership_id.eq(membership.as_str()))
        .filter(seat_ledger::started_at.ge(after))
        .select(diesel::dsl::min(seat_ledger::started_at))
        .get_result(conn)
}

//! Billable seats (R10): the seat ledger records when each membership started and stopped
//! being billable, so that the unused part of a billing cycle can be credited.
//!
//! A membership is billable while it is active, its user is active, and it holds a role
//! other than `guest` (guests are never billable). Every change that can move one of those
//! calls [`sync`] in its own transaction, which opens or closes the membership's period.
//!
//! Cycles are monthly from the billing profile's `cycle_start` (the organization's creation
//! day when none is set). A seat closed before the cycle ends is credited the whole days
//! after the day it closed, up to the cycle's end or the day the same membership became
//! billable again: `credit = seat_price × unused_days ÷ days_in_cycle`, rounded half up to
//! the cent.

use chrono::{Datelike, Months, NaiveDate, NaiveDateTime};

use crate::auth::extract::Principal;
use crate::auth::policy;
use crate::db::models::{NewSeat, SeatRow};
use crate::db::repo::{accounts, memberships, seats, users};
use crate::db::DbConnection;
use crate::domain::page::PageRequest;
use crate::domain::{MembershipStatus, SeatEndReason, UserStatus};
use crate::error::ApiError;
use crate::ids::{AccountId, MembershipId, SeatId};
use crate::service::Tx;

/// Opens or closes the membership's billable period to match what it is now; `reason` is
/// recorded when a period closes. A removed membership closes its period (call before
/// deleting it, or after: both work).
pub fn sync(
    conn: &mut DbConnection,
    membership: &MembershipId,
    reason: SeatEndReason,
    now: NaiveDateTime,
) -> Result<(), ApiError> {
    let open = seats::open_for(conn, membership)?;
    let row = memberships::find(conn, membership)?;
    let billable = match &row {
        None => false,
        Some(m) => is_billable(conn, m)?,
    };
    match (billable, open, row) {
        (true, None, Some(m)) => seats::open(
            conn,
            NewSeat {
                id: SeatId::generate(),
                root_account_id: m.root_account_id,
                membership_id: m.id,
                user_id: m.user_id,
                started_at: now,
            },
        )?,
        (false, Some(seat), _) => seats::close(conn, &seat.id, reason, now)?,
        _ => {}
    }
    Ok(())
}

fn is_billable(conn: &mut DbConnection, m: &crate::db::models::MembershipRow) -> Result<bool, ApiError> {
    if m.status != MembershipStatus::Active {
        return Ok(false);
    }
    let user_active = users::find(conn, &m.user_id)?.is_some_and(|u| u.status == UserStatus::Active);
    let roles = memberships::roles_of(conn, &m.id)?;
    Ok(user_active && roles.iter().any(|r| r.builtin.is_none_or(|b| b.billable())))
}

/// The current billing cycle: `[start, end)`, monthly from the anchor day.
#[derive(Clone, Copy, Debug)]
pub struct Cycle {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl Cycle {
    /// The monthly cycle from `anchor` that contains `today`.
    pub fn containing(anchor: NaiveDate, today: NaiveDate) -> Cycle {
        let at = |k: i64| -> NaiveDate {
            let shifted = if k >= 0 {
                anchor.checked_add_months(Months::new(k as u32))
            } else {
                anchor.checked_sub_months(Months::new(k.unsigned_abs() as u32))
            };
            shifted.unwrap_or(anchor)
        };
        let months = |d: NaiveDate| i64::from(d.year_ce().1) * 12 + i64::from(d.month0());
        let mut k = months(today) - months(anchor);
        if at(k) > today {
            k -= 1;
        }
        Cycle {
            start: at(k),
            end: at(k + 1),
        }
    }

    pub fn days(&self) -> i64 {
        (self.end - self.start).num_days()
    }

    fn bounds(&self) -> (NaiveDateTime, NaiveDateTime) {
        (
            self.start.and_hms_opt(0, 0, 0).unwrap_or_default(),
            self.end.and_hms_opt(0, 0, 0).unwrap_or_default(),
        )
    }
}

/// A seat closed early in the current cycle, and what it is credited.
pub struct Credit {
    pub seat: SeatRow,
    pub unused_days: i64,
    pub credit_cents: i64,
}

/// What `GET /v1/accounts/{id}/seats` shows.
pub struct SeatSummary {
    pub billable_now: i64,
    pub cycle: Cycle,
    pub seat_price_cents: i64,
    pub currency: String,
    pub credits: Vec<Credit>,
    /// One page of the periods billable at some time in the cycle, newest first.
    pub ledger: Vec<SeatRow>,
    pub next_cursor: Option<String>,
}

/// Unused whole days after the day a seat closed: up to the cycle's end, or to the day the
/// same membership became billable again.
pub fn unused_days(cycle: &Cycle, ended: NaiveDate, next_start: Option<NaiveDate>) -> i64 {
    let stop = next_start.map_or(cycle.end, |d| d.min(cycle.end));
    ((stop - ended).num_days() - 1).max(0)
}

/// `price × days ÷ cycle_days`, rounded half up to the cent.
pub fn credit_cents(price: i64, days: i64, cycle_days: i64) -> i64 {
    if cycle_days <= 0 {
        return 0;
    }
    (price * days * 2 + cycle_days) / (cycle_days * 2)
}

/// The organization's seats now, the current cycle's credits and ledger (`account.billing`).
pub fn summary(
    tx: &mut Tx<'_>,
    caller: &Principal,
    account: &AccountId,
    page: &PageRequest,
) -> Result<SeatSummary, ApiError> {
    let node = accounts::find(tx.conn, account)?.ok_or_else(|| ApiError::not_found("account"))?;
    let root = policy::require_billing(caller, &node)?.root.clone();
    let profile = accounts::billing_profile(tx.conn, &root)?;
    let anchor = profile
        .as_ref()
        .and_then(|p| p.cycle_start.as_deref())
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .unwrap_or(node.created_at.date());
    let cycle = Cycle::containing(anchor, tx.now.date());
    let price = profile.as_ref().map_or(0, |p| p.seat_price_cents);
    let mut credits = Vec::new();
    for seat in seats::closed_between(tx.conn, &root, cycle.bounds())? {
        let Some(ended) = seat.ended_at else { continue };
        let next = seats::next_start(tx.conn, &seat.membership_id, ended)?;
        let unused = unused_days(&cycle, ended.date(), next.map(|n| n.date()));
        credits.push(Credit {
            credit_cents: credit_cents(price, unused, cycle.days()),
            unused_days: unused,
            seat,
        });
    }
    let mut ledger = seats::overlapping(tx.conn, &root, cycle.bounds(), page.after.as_deref(), page.fetch())?;
    let next_cursor = page.finish(&mut ledger, |s| s.id.as_str());
    Ok(SeatSummary {
        billable_now: seats::open_count(tx.conn, &root)?,
        cycle,
        seat_price_cents: price,
        currency: profile.map_or_else(|| "EUR".to_string(), |p| p.currency),
        credits,
        ledger,
        next_cursor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn the_cycle_is_the_month_from_the_anchor_that_holds_today() {
        let c = Cycle::containing(day("2026-01-15"), day("2026-03-20"));
        assert_eq!((c.start, c.end), (day("2026-03-15"), day("2026-04-15")));
        let c = Cycle::containing(day("2026-01-15"), day("2026-03-14"));
        assert_eq!((c.start, c.end), (day("2026-02-15"), day("2026-03-15")));
        let c = Cycle::containing(day("2026-03-15"), day("2026-03-15"));
        assert_eq!((c.start, c.end, c.days()), (day("2026-03-15"), day("2026-04-15"), 31));
        // An anchor on the 31st clamps to the end of shorter months.
        let c = Cycle::containing(day("2026-01-31"), day("2026-02-28"));
        assert_eq!((c.start, c.end), (day("2026-02-28"), day("2026-03-31")));
        // An anchor in the future: the cycle before it.
        let c = Cycle::containing(day("2026-05-10"), day("2026-04-01"));
        assert_eq!((c.start, c.end), (day("2026-03-10"), day("2026-04-10")));
    }

    #[test]
    fn a_seat_is_credited_the_whole_days_after_it_closed() {
        let c = Cycle {
            start: day("2026-04-01"),
            end: day("2026-05-01"),
        };
        assert_eq!(unused_days(&c, day("2026-04-10"), None), 20, "11th to 30th");
        assert_eq!(unused_days(&c, day("2026-04-30"), None), 0, "closed on the last day");
        assert_eq!(
            unused_days(&c, day("2026-04-10"), Some(day("2026-04-13"))),
            2,
            "back on the 13th"
        );
        assert_eq!(
            unused_days(&c, day("2026-04-10"), Some(day("2026-04-10"))),
            0,
            "back the same day"
        );
        assert_eq!(credit_cents(3000, 20, 30), 2000);
        assert_eq!(credit_cents(1000, 1, 30), 33, "33.33 rounds down");
        assert_eq!(credit_cents(1000, 1, 40), 25);
        assert_eq!(credit_cents(1001, 1, 2), 501, "500.5 rounds up");
    }
}

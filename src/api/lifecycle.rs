//! The life cycle of a user in an organization (R10, R11): deactivate, reactivate, delete
//! (archive), restore; and the organization's billable seats.

use actix_web::{delete, get, post, web};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::extract::{IfMatch, Query};
use crate::api::pagination::PageRequest;
use crate::api::views::{utc, MemberView};
use crate::auth::extract::Principal;
use crate::db::models::SeatRow;
use crate::domain::SeatEndReason;
use crate::error::{ApiError, Problem};
use crate::ids::{AccountId, SeatId, UserId};
use crate::service::lifecycle::{self, Removal};
use crate::service::members::Member;
use crate::service::seats::{self, SeatSummary};
use crate::service::{self};
use crate::state::AppState;

fn view(member: &Member) -> MemberView {
    MemberView::new(&member.membership, &member.user, &member.roles)
}

/// Deactivate a user's membership (R10).
///
/// Needs `users.manage` over the member (`owners.manage` for an owner). The user can no
/// longer log in to or use tokens scoped to this organization (sessions end at once); their
/// data, roles and caretaker assignments stay, and the seat stops being billed.
#[utoipa::path(
    tag = "users",
    operation_id = "deactivateUser",
    security(("bearer" = [])),
    params(("user_id" = String, Path, description = "A user id (`usr_…`)", pattern = r"^usr_[0-9A-Za-z]{26}$")),
    responses(
        (status = 200, description = "Deactivated", body = MemberView),
        (status = 403, description = "Needs users.manage over the member", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user in the caller's organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`last-owner`, or `member-not-active` (deactivated or archived already)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/users/{user_id}/deactivate")]
pub async fn deactivate_user(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<UserId>,
) -> Result<web::Json<MemberView>, ApiError> {
    let id = path.into_inner();
    let member = service::write(&state, move |tx| lifecycle::deactivate(tx, &principal, &id)).await?;
    Ok(web::Json(view(&member)))
}

/// Reactivate a deactivated membership: login works again and a new seat period opens.
#[utoipa::path(
    tag = "users",
    operation_id = "reactivateUser",
    security(("bearer" = [])),
    params(("user_id" = String, Path, description = "A user id (`usr_…`)", pattern = r"^usr_[0-9A-Za-z]{26}$")),
    responses(
        (status = 200, description = "Active again", body = MemberView),
        (status = 403, description = "Needs users.manage over the member", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user in the caller's organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`member-already-active`, or `member-not-active` for an archived user (restore them)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/users/{user_id}/reactivate")]
pub async fn reactivate_user(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<UserId>,
) -> Result<web::Json<MemberView>, ApiError> {
    let id = path.into_inner();
    let member = service::write(&state, move |tx| lifecycle::reactivate(tx, &principal, &id)).await?;
    Ok(web::Json(view(&member)))
}

/// What deleting a user did.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RemovalOutcome {
    /// This organization was the user's only one: the user is archived.
    Archived,
    /// The user belongs to other organizations: only their membership here is gone.
    MembershipRemoved,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RemovedUser {
    pub outcome: RemovalOutcome,
    /// The member as they were left (archived), or as they were before the removal.
    pub member: MemberView,
}

/// Delete a user: archive them, or remove them from this organization (R11).
///
/// Needs `users.manage` over the member. When this organization is the user's only one, the
/// user is archived: every session and refresh token ends, the password hash is destroyed,
/// caretaker assignments and impersonations involving them end (the people involved are
/// told), the seat stops, and they are listed under `GET /v1/users?archived=true`. Their
/// login then answers exactly as a wrong password does. Otherwise only the membership here
/// is removed. The last active owner cannot be deleted.
#[utoipa::path(
    tag = "users",
    operation_id = "deleteUser",
    security(("bearer" = [])),
    params(("user_id" = String, Path, description = "A user id (`usr_…`)", pattern = r"^usr_[0-9A-Za-z]{26}$")),
    responses(
        (status = 200, description = "Archived, or removed from the organization", body = RemovedUser),
        (status = 403, description = "Needs users.manage over the member", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user in the caller's organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`last-owner`, or `member-not-active` (archived already)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/users/{user_id}")]
pub async fn delete_user(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<UserId>,
    if_match: IfMatch,
) -> Result<web::Json<RemovedUser>, ApiError> {
    let id = path.into_inner();
    let removal = service::write_if(&state, if_match.0, move |tx| lifecycle::remove(tx, &principal, &id)).await?;
    Ok(web::Json(match removal {
        Removal::Archived(m) => RemovedUser {
            outcome: RemovalOutcome::Archived,
            member: view(&m),
        },
        Removal::MembershipRemoved(m) => RemovedUser {
            outcome: RemovalOutcome::MembershipRemoved,
            member: view(&m),
        },
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RestoredUser {
    pub member: MemberView,
    /// A one-time front-end link that sets the user's password (also sent to them). The
    /// restored user has no usable password until they use it.
    pub set_password_url: String,
    pub set_password_expires_at: DateTime<Utc>,
    /// The notice that carries the link (`ntf_…`).
    pub notification_id: String,
}

/// Restore an archived user (R11): active again with their old roles and no usable
/// password; the response carries a one-time set-password link, also sent to them.
#[utoipa::path(
    tag = "users",
    operation_id = "restoreUser",
    security(("bearer" = [])),
    params(("user_id" = String, Path, description = "A user id (`usr_…`)", pattern = r"^usr_[0-9A-Za-z]{26}$")),
    responses(
        (status = 200, description = "Restored", body = RestoredUser),
        (status = 403, description = "Needs users.manage over the member", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user in the caller's organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`user-not-archived`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/users/{user_id}/restore")]
pub async fn restore_user(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<UserId>,
) -> Result<web::Json<RestoredUser>, ApiError> {
    let id = path.into_inner();
    let restored = service::write(&state, move |tx| lifecycle::restore(tx, &principal, &id)).await?;
    Ok(web::Json(RestoredUser {
        member: view(&restored.member),
        set_password_url: restored.set_password_url,
        set_password_expires_at: utc(restored.expires_at),
        notification_id: restored.notification_id.to_string(),
    }))
}

/// One billable period of a membership.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeatPeriod {
    /// `sea_…`
    pub id: String,
    pub user_id: String,
    pub membership_id: String,
    pub started_at: DateTime<Utc>,
    /// Null while the seat is billable.
    #[schema(required = true)]
    pub ended_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub end_reason: Option<SeatEndReason>,
}

impl From<&SeatRow> for SeatPeriod {
    fn from(s: &SeatRow) -> Self {
        Self {
            id: s.id.to_string(),
            user_id: s.user_id.to_string(),
            membership_id: s.membership_id.to_string(),
            started_at: utc(s.started_at),
            ended_at: s.ended_at.map(utc),
            end_reason: s.end_reason(),
        }
    }
}

/// A seat closed before the cycle's end, and its credit.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeatCredit {
    pub seat: SeatPeriod,
    /// Whole days after the day it closed, to the cycle's end or the day it was billable again.
    pub unused_days: i64,
    /// `seat_price_cents × unused_days ÷ days`, rounded half up.
    pub credit_cents: i64,
}

/// The current billing cycle, monthly from the billing profile's `cycle_start`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BillingCycle {
    #[schema(value_type = String, format = Date)]
    pub start: NaiveDate,
    /// The next cycle's first day.
    #[schema(value_type = String, format = Date)]
    pub end: NaiveDate,
    pub days: i64,
    pub seat_price_cents: i64,
    pub currency: String,
    pub credits: Vec<SeatCredit>,
    /// The sum of the credits.
    pub credit_cents: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SeatsView {
    /// Billable seats now: active non-guest memberships of active users.
    pub billable_seats: i64,
    pub cycle: BillingCycle,
    /// Periods billable at some time in the current cycle, newest first (one page).
    pub ledger: Vec<SeatPeriod>,
    /// Pass as `cursor` for the ledger's next page; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

impl From<SeatSummary> for SeatsView {
    fn from(s: SeatSummary) -> Self {
        let credits: Vec<SeatCredit> = s
            .credits
            .iter()
            .map(|c| SeatCredit {
                seat: SeatPeriod::from(&c.seat),
                unused_days: c.unused_days,
                credit_cents: c.credit_cents,
            })
            .collect();
        Self {
            billable_seats: s.billable_now,
            cycle: BillingCycle {
                start: s.cycle.start,
                end: s.cycle.end,
                days: s.cycle.days(),
                seat_price_cents: s.seat_price_cents,
                currency: s.currency,
                credit_cents: credits.iter().map(|c| c.credit_cents).sum(),
                credits,
            },
            ledger: s.ledger.iter().map(SeatPeriod::from).collect(),
            next_cursor: s.next_cursor,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SeatsQuery {
    /// Ledger page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The organization's billable seats, and the current cycle's ledger and credits (R10).
///
/// Needs `account.billing` over the organization; `{account_id}` must be the organization
/// (root account): a sub-account answers 404.
#[utoipa::path(
    tag = "accounts",
    operation_id = "getSeats",
    security(("bearer" = [])),
    params(
        ("account_id" = String, Path, description = "The organization's id (`acc_…`)", pattern = r"^acc_[0-9A-Za-z]{26}$"),
        SeatsQuery,
    ),
    responses(
        (status = 200, description = "Seats, ledger and credits", body = SeatsView),
        (status = 403, description = "Needs account.billing over the organization", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not an organization of the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The cursor or limit is invalid", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/accounts/{account_id}/seats")]
pub async fn get_seats(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<AccountId>,
    query: Query<SeatsQuery>,
) -> Result<web::Json<SeatsView>, ApiError> {
    let (account, q) = (path.into_inner(), query.into_inner());
    let page = PageRequest::parse(q.limit, q.cursor.as_deref(), |id| SeatId::parse(id).is_some())?;
    let summary = service::read(&state, move |tx| seats::summary(tx, &principal, &account, &page)).await?;
    Ok(web::Json(SeatsView::from(summary)))
}

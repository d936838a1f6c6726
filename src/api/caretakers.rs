//! Caretakers (R7, R8): assign, replace, read and remove a user's caretaker; the users a
//! caretaker manages; acting as one of them and back.

use actix_web::{delete, get, post, put, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::extract::{Body, IfMatch};
use crate::api::views::{utc, versioned, PersonRef, TokenResponse};
use crate::auth::extract::Principal;
use crate::db::models::{CaretakerAssignmentRow, UserRow};
use crate::error::{ApiError, Problem};
use crate::ids::UserId;
use crate::service::{self, caretakers, versions};
use crate::state::AppState;

/// Who manages whose account, since when, assigned by whom.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaretakerAssignmentView {
    /// The assignment's id (`cta_…`).
    pub id: String,
    /// The user whose account is managed.
    pub managed_user: PersonRef,
    pub caretaker: PersonRef,
    /// The owner or admin who assigned it.
    pub assigned_by: String,
    pub assigned_at: DateTime<Utc>,
}

impl From<caretakers::Assignment> for CaretakerAssignmentView {
    fn from(a: caretakers::Assignment) -> Self {
        Self {
            id: a.row.id.to_string(),
            managed_user: PersonRef::from(&a.managed),
            caretaker: PersonRef::from(&a.caretaker),
            assigned_by: a.row.assigned_by.to_string(),
            assigned_at: utc(a.row.assigned_at),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetCaretaker {
    /// The member (`usr_…`) who will manage the account: any active member of the
    /// organization who is not managed themself.
    #[schema(value_type = String, pattern = "^usr_[0-9A-Za-z]{26}$")]
    pub caretaker_id: UserId,
}

/// A user the caller manages as their caretaker.
#[derive(Debug, Serialize, ToSchema)]
pub struct ManagedUser {
    pub user: PersonRef,
    /// The assignment's id (`cta_…`).
    pub assignment_id: String,
    pub since: DateTime<Utc>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActAs {
    /// A user (`usr_…`) the caller manages.
    #[schema(value_type = String, pattern = "^usr_[0-9A-Za-z]{26}$")]
    pub user_id: UserId,
}

/// Read a user's caretaker.
#[utoipa::path(
    tag = "caretakers",
    operation_id = "getCaretaker",
    security(("bearer" = [])),
    params(("user_id" = String, Path, description = "A user id (`usr_…`)", pattern = "^usr_[0-9A-Za-z]{26}$")),
    responses(
        (status = 200, description = "The live assignment", body = CaretakerAssignmentView),
        (status = 403, description = "Needs users.read over the user", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user in the caller's organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`no-caretaker`: the user has none", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/users/{user_id}/caretaker")]
pub async fn get_caretaker(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<UserId>,
) -> Result<HttpResponse, ApiError> {
    let managed = path.into_inner();
    let found = service::read(&state, move |tx| caretakers::get(tx, &principal, &managed)).await?;
    let etag = versions::of_caretaker(&found.row);
    Ok(versioned(etag, &CaretakerAssignmentView::from(found)))
}

/// Assign a caretaker to a user.
///
/// Needs `caretakers.manage` over the user (owners and admins). The user's sessions end at
/// once and their login is refused, naming the caretaker, until the assignment is removed;
/// both are notified. A user who already has a caretaker gets another one with `PUT`.
#[utoipa::path(
    tag = "caretakers",
    operation_id = "assignCaretaker",
    security(("bearer" = [])),
    params(("user_id" = String, Path, description = "The user whose account will be managed", pattern = "^usr_[0-9A-Za-z]{26}$")),
    request_body = SetCaretaker,
    responses(
        (status = 201, description = "Assigned", body = CaretakerAssignmentView),
        (status = 403, description = "Needs caretakers.manage; `acting-as-forbidden` from an acting-as session", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user or caretaker in the caller's organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`caretaker-already-assigned`, `caretaker-self`, `managed-user-privileged` (owners and admins), `caretaker-unavailable` (not an active member), `caretaker-chain`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/users/{user_id}/caretaker")]
pub async fn assign_caretaker(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<UserId>,
    body: Body<SetCaretaker>,
) -> Result<HttpResponse, ApiError> {
    let (managed, caretaker) = (path.into_inner(), body.into_inner().caretaker_id);
    let made = service::write(&state, move |tx| {
        caretakers::assign(tx, &principal, &managed, &caretaker)
    })
    .await?;
    Ok(HttpResponse::Created().json(CaretakerAssignmentView::from(made)))
}

/// Replace a user's caretaker.
///
/// The previous caretaker's acting-as sessions end at once; everyone involved is notified.
#[utoipa::path(
    tag = "caretakers",
    operation_id = "replaceCaretaker",
    security(("bearer" = [])),
    params(("user_id" = String, Path, description = "The managed user", pattern = "^usr_[0-9A-Za-z]{26}$")),
    request_body = SetCaretaker,
    responses(
        (status = 200, description = "Replaced", body = CaretakerAssignmentView),
        (status = 403, description = "Needs caretakers.manage; `acting-as-forbidden` from an acting-as session", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user or caretaker in the caller's organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`no-caretaker` to replace, or the new caretaker is refused as on assignment", body = Problem, content_type = "application/problem+json"),
    )
)]
#[put("/v1/users/{user_id}/caretaker")]
pub async fn replace_caretaker(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<UserId>,
    if_match: IfMatch,
    body: Body<SetCaretaker>,
) -> Result<HttpResponse, ApiError> {
    let (managed, caretaker) = (path.into_inner(), body.into_inner().caretaker_id);
    let made = service::write_if(&state, if_match.0, move |tx| {
        caretakers::replace(tx, &principal, &managed, &caretaker)
    })
    .await?;
    let etag = versions::of_caretaker(&made.row);
    Ok(versioned(etag, &CaretakerAssignmentView::from(made)))
}

/// Remove a user's caretaker.
///
/// Every session in which the caretaker acts as the user ends at once; the user can log in
/// again; both are notified.
#[utoipa::path(
    tag = "caretakers",
    operation_id = "removeCaretaker",
    security(("bearer" = [])),
    params(("user_id" = String, Path, description = "The managed user", pattern = "^usr_[0-9A-Za-z]{26}$")),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Needs caretakers.manage; `acting-as-forbidden` from an acting-as session", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user in the caller's organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`no-caretaker`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/users/{user_id}/caretaker")]
pub async fn remove_caretaker(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<UserId>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    let managed = path.into_inner();
    service::write_if(&state, if_match.0, move |tx| {
        caretakers::remove(tx, &principal, &managed)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The users I manage as their caretaker, in the current organization.
///
/// Under an acting-as token this still lists the real actor's (the caretaker's) users, so a
/// front end can offer switching between them.
#[utoipa::path(
    tag = "caretakers",
    operation_id = "listManagedUsers",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The managed users", body = Vec<ManagedUser>),
        (status = 403, description = "The token has not picked an account yet", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/me/managed-users")]
pub async fn list_managed_users(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<web::Json<Vec<ManagedUser>>, ApiError> {
    let list = service::read(&state, move |tx| caretakers::managed_users(tx, &principal)).await?;
    Ok(web::Json(list.iter().map(managed_user).collect()))
}

fn managed_user((row, user): &(CaretakerAssignmentRow, UserRow)) -> ManagedUser {
    ManagedUser {
        user: PersonRef::from(user),
        assignment_id: row.id.to_string(),
        since: utc(row.assigned_at),
    }
}

/// Act as a user I manage, or switch to another one.
///
/// Returns tokens whose `sub` is the managed user and whose `act.sub` (RFC 8693) is the
/// caretaker, scoped to the managed user's organization. From an acting-as session this is a
/// switch: that session ends, and `act` still names the caretaker (delegations never nest).
/// Refreshing the new tokens keeps `act`.
#[utoipa::path(
    tag = "caretakers",
    operation_id = "actAsManagedUser",
    security(("bearer" = [])),
    request_body = ActAs,
    responses(
        (status = 200, description = "Tokens acting as the managed user", body = TokenResponse),
        (status = 403, description = "`acting-as-forbidden` from an impersonation session", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not a user the caller manages", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`member-not-active`: the managed user's membership is not active", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/me/acting-as")]
pub async fn act_as(
    state: web::Data<AppState>,
    principal: Principal,
    body: Body<ActAs>,
) -> Result<web::Json<TokenResponse>, ApiError> {
    let managed = body.into_inner().user_id;
    let issued = service::write(&state, move |tx| caretakers::act_as(tx, &principal, &managed)).await?;
    Ok(web::Json(issued.into()))
}

/// Back to my own account: end acting as someone else.
///
/// A caretaker's acting-as session ends and the caretaker gets tokens of their own,
/// without a password (200). An impersonation ends (204): its token stops working, and the
/// impersonator goes on with the session they started it from.
#[utoipa::path(
    tag = "caretakers",
    operation_id = "stopActingAs",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Tokens of the caretaker's own session", body = TokenResponse),
        (status = 204, description = "The impersonation ended"),
        (status = 409, description = "The session is not acting as anyone; `impersonation-ended`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/me/acting-as")]
pub async fn stop_acting_as(state: web::Data<AppState>, principal: Principal) -> Result<HttpResponse, ApiError> {
    let issued = service::write(&state, move |tx| caretakers::back_to_own(tx, &principal)).await?;
    Ok(match issued {
        Some(tokens) => HttpResponse::Ok().json(TokenResponse::from(tokens)),
        None => HttpResponse::NoContent().finish(),
    })
}

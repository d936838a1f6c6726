//! Impersonation ("log in as", R9): start one, read and end it, list an organization's,
//! and let a user see who impersonated them.

use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::extract::{Body, Query};
use crate::api::pagination::PageRequest;
use crate::api::views::{utc, PersonRef};
use crate::auth::extract::Principal;
use crate::domain::{ImpersonationMode, ImpersonationState};
use crate::error::{ApiError, FieldError, Problem};
use crate::ids::{AccountId, ImpersonationId, UserId};
use crate::service::impersonations::{self, AccountFilter, Listed, StartImpersonation, Started};
use crate::service::{self};
use crate::state::AppState;

/// An impersonation: who logged in as whom, why, in which mode, from when to when.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImpersonationView {
    /// `imp_…`
    pub id: String,
    /// The organization (root account) it happened in.
    pub account_id: String,
    /// The real person behind the requests (the token's `act.sub`).
    pub actor: PersonRef,
    /// The user impersonated (the token's `sub`).
    pub target: PersonRef,
    pub mode: ImpersonationMode,
    pub reason: String,
    /// `active`, `ended` (by its actor or an owner) or `expired`.
    pub state: ImpersonationState,
    pub started_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    #[schema(required = true)]
    pub ended_at: Option<DateTime<Utc>>,
    /// Who ended it (the actor or an owner); null while it runs or after it expired.
    #[schema(required = true)]
    pub ended_by_user_id: Option<String>,
}

impl ImpersonationView {
    fn new(listed: &Listed, now: DateTime<Utc>) -> Result<Self, ApiError> {
        let person = |u: Option<&crate::db::models::UserRow>| {
            u.map(PersonRef::from)
                .ok_or_else(|| ApiError::internal("impersonation names an unknown user"))
        };
        let row = &listed.row;
        Ok(Self {
            id: row.id.to_string(),
            account_id: row.root_account_id.to_string(),
            actor: person(listed.actor.as_ref())?,
            target: person(listed.target.as_ref())?,
            mode: row.mode,
            reason: row.reason.clone(),
            state: row.state(now.naive_utc(), listed.session_revoked_at.is_some()),
            started_at: utc(row.started_at),
            expires_at: utc(row.expires_at),
            ended_at: row.ended_at.map(utc),
            ended_by_user_id: row.ended_by.clone(),
        })
    }
}

fn confirmation() -> utoipa::openapi::Object {
    crate::api::views::only_true("Must be `true`: the caller confirms they mean to act as this user.")
}

/// Start an impersonation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartImpersonationRequest {
    /// The user to log in as (`usr_…`).
    #[schema(value_type = String, pattern = "^usr_[0-9A-Za-z]{26}$")]
    pub user_id: UserId,
    /// Why: shown to the user and kept in the audit trail. 3 to 500 characters.
    #[schema(min_length = 3, max_length = 500)]
    pub reason: String,
    /// Must be `true`: the caller confirms they mean to act as this user.
    #[schema(schema_with = confirmation)]
    pub confirm: bool,
    /// `read_only` (the default) or `full`.
    #[serde(default)]
    pub mode: Option<ImpersonationMode>,
    /// Lifetime in minutes: default 60 (or the configured maximum, if shorter); at most
    /// the configured maximum (`STEWARD_IMPERSONATION_MAX_MINUTES`, default 240).
    #[serde(default)]
    #[schema(minimum = 1)]
    pub minutes: Option<u32>,
}

impl StartImpersonationRequest {
    fn command(self) -> Result<StartImpersonation, ApiError> {
        let mut errors = Vec::new();
        let reason = self.reason.trim().to_string();
        let n = reason.chars().count();
        if !(3..=500).contains(&n) {
            errors.push(FieldError::new("reason", "length", "must be 3 to 500 characters long"));
        }
        if !self.confirm {
            errors.push(FieldError::new(
                "confirm",
                "confirmation_required",
                "must be true: confirm that you mean to act as this user",
            ));
        }
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        Ok(StartImpersonation {
            target: self.user_id,
            reason,
            mode: self.mode.unwrap_or(ImpersonationMode::ReadOnly),
            minutes: self.minutes,
        })
    }
}

/// A started impersonation and the one access token of its session (no refresh token).
#[derive(Debug, Serialize, ToSchema)]
pub struct ImpersonationStarted {
    pub impersonation: ImpersonationView,
    /// `sub` is the impersonated user, `act.sub` the actor; valid until `expires_at`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the token and the impersonation end.
    pub expires_in: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImpersonationPage {
    pub items: Vec<ImpersonationView>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListImpersonationsQuery {
    /// Only those started by this user (`usr_…`).
    #[param(value_type = Option<String>, pattern = "^usr_[0-9A-Za-z]{26}$")]
    pub actor: Option<UserId>,
    /// Only those of this user (`usr_…`).
    #[param(value_type = Option<String>, pattern = "^usr_[0-9A-Za-z]{26}$")]
    pub target: Option<UserId>,
    /// `true`: running ones only; `false`: ended or expired ones only.
    pub active: Option<bool>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

fn page(limit: Option<i64>, cursor: Option<&str>) -> Result<PageRequest, ApiError> {
    PageRequest::parse(limit, cursor, |id| ImpersonationId::parse(id).is_some())
}

fn view_page(
    state: &AppState,
    (rows, next_cursor): (Vec<Listed>, Option<String>),
) -> Result<ImpersonationPage, ApiError> {
    let now = state.clock.now().and_utc();
    Ok(ImpersonationPage {
        items: rows
            .iter()
            .map(|l| ImpersonationView::new(l, now))
            .collect::<Result<_, _>>()?,
        next_cursor,
    })
}

/// Log in as another member of the organization ("impersonate"), for support.
///
/// Needs `users.impersonate` over the user. The user must be an active member, not the
/// caller, not managed by a caretaker, and hold no permission the caller lacks (so an
/// admin never impersonates an owner). `read_only` sessions refuse every change
/// (`impersonation-read-only`); `full` needs `users.manage` over the user too. Even in
/// full mode the session cannot change the user's password, email or caretaker, start
/// another delegation, or read secrets (R8). Every request made with the token is audited.
#[utoipa::path(
    tag = "impersonation",
    operation_id = "startImpersonation",
    security(("bearer" = [])),
    request_body = StartImpersonationRequest,
    responses(
        (status = 201, description = "Started; use `access_token` to act as the user", body = ImpersonationStarted,
            headers(("Location" = String, description = "The impersonation's URL"))),
        (status = 403, description = "Needs users.impersonate over the user; `impersonation-escalation` when the user holds a permission the caller lacks; `impersonation-full-mode-refused`; `acting-as-forbidden` from a session that already acts as someone", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user in the caller's organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`impersonation-self`, `member-not-active` or `impersonation-target-managed`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Missing reason or confirmation, or a lifetime out of range", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/impersonations")]
pub async fn start_impersonation(
    state: web::Data<AppState>,
    principal: Principal,
    body: Body<StartImpersonationRequest>,
) -> Result<HttpResponse, ApiError> {
    let cmd = body.into_inner().command()?;
    let started: Started = service::write(&state, move |tx| impersonations::start(tx, &principal, cmd)).await?;
    let view = ImpersonationView::new(&started.impersonation, state.clock.now().and_utc())?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/v1/impersonations/{}", view.id)))
        .json(ImpersonationStarted {
            impersonation: view,
            access_token: started.access_token,
            token_type: "Bearer".into(),
            expires_in: started.expires_in,
        }))
}

/// One impersonation: for its actor, its target, and readers of the audit trail (`audit.read`).
#[utoipa::path(
    tag = "impersonation",
    operation_id = "getImpersonation",
    security(("bearer" = [])),
    params(("impersonation_id" = String, Path, description = "An impersonation id (`imp_…`)", pattern = "^imp_[0-9A-Za-z]{26}$")),
    responses(
        (status = 200, description = "The impersonation", body = ImpersonationView),
        (status = 403, description = "Needs audit.read, unless the caller is its actor or target", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such impersonation in the caller's organization", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/impersonations/{impersonation_id}")]
pub async fn get_impersonation(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<ImpersonationId>,
) -> Result<web::Json<ImpersonationView>, ApiError> {
    let id = path.into_inner();
    let listed = service::read(&state, move |tx| impersonations::get(tx, &principal, &id)).await?;
    Ok(web::Json(ImpersonationView::new(&listed, state.clock.now().and_utc())?))
}

/// End an impersonation: its token stops working at once.
///
/// By its actor (from their own session or the impersonation's) or an owner.
#[utoipa::path(
    tag = "impersonation",
    operation_id = "endImpersonation",
    security(("bearer" = [])),
    params(("impersonation_id" = String, Path, description = "An impersonation id (`imp_…`)", pattern = "^imp_[0-9A-Za-z]{26}$")),
    responses(
        (status = 200, description = "Ended", body = ImpersonationView),
        (status = 403, description = "Only its actor or an owner ends it", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such impersonation in the caller's organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`impersonation-ended`: it had ended or expired already", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/impersonations/{impersonation_id}/end")]
pub async fn end_impersonation(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<ImpersonationId>,
) -> Result<web::Json<ImpersonationView>, ApiError> {
    let id = path.into_inner();
    let listed = service::write(&state, move |tx| impersonations::end(tx, &principal, &id)).await?;
    Ok(web::Json(ImpersonationView::new(&listed, state.clock.now().and_utc())?))
}

/// An organization's impersonations, running and past, newest first.
///
/// Needs `audit.read` over the organization; `{account_id}` must be the organization
/// (root account) itself.
#[utoipa::path(
    tag = "impersonation",
    operation_id = "listImpersonations",
    security(("bearer" = [])),
    params(
        ("account_id" = String, Path, description = "The organization's id (`acc_…`)", pattern = "^acc_[0-9A-Za-z]{26}$"),
        ListImpersonationsQuery,
    ),
    responses(
        (status = 200, description = "One page", body = ImpersonationPage),
        (status = 403, description = "Needs audit.read over the organization", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not an organization of the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A filter or the cursor is invalid", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/accounts/{account_id}/impersonations")]
pub async fn list_impersonations(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<AccountId>,
    query: Query<ListImpersonationsQuery>,
) -> Result<web::Json<ImpersonationPage>, ApiError> {
    let (account, q) = (path.into_inner(), query.into_inner());
    let page = page(q.limit, q.cursor.as_deref())?;
    let filter = AccountFilter {
        actor: q.actor,
        target: q.target,
        active: q.active,
    };
    let listed = service::read(&state, move |tx| {
        impersonations::list_for_account(tx, &principal, &account, filter, &page)
    })
    .await?;
    Ok(web::Json(view_page(&state, listed)?))
}

/// Who impersonated me, and when: every impersonation of the caller, newest first.
#[utoipa::path(
    tag = "me",
    operation_id = "listMyImpersonations",
    security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "One page", body = ImpersonationPage),
        (status = 422, description = "The cursor or limit is invalid", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/me/impersonations")]
pub async fn list_my_impersonations(
    state: web::Data<AppState>,
    principal: Principal,
    query: Query<PageQuery>,
) -> Result<web::Json<ImpersonationPage>, ApiError> {
    let q = query.into_inner();
    let page = page(q.limit, q.cursor.as_deref())?;
    let listed = service::read(&state, move |tx| impersonations::list_mine(tx, &principal, &page)).await?;
    Ok(web::Json(view_page(&state, listed)?))
}

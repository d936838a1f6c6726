//! Accounts: the organization tree (groups, locations), profiles, closing, billing.

use actix_web::{get, patch, post, put, web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use validator::Validate;

use crate::api::extract::Body;
use crate::api::views::{utc, AccountSummary, AccountView, RoleRef};
use crate::auth::extract::Principal;
use crate::auth::policy;
use crate::db::models::{AccountRow, BillingProfileRow};
use crate::db::repo::accounts::{self, AccountChanges};
use crate::db::repo::audit::{self, AuditEntry};
use crate::db::repo::memberships;
use crate::db::DbConnection;
use crate::domain::permissions::Permission;
use crate::domain::AuditAction;
use crate::domain::{self, AccountKind, AccountStatus};
use crate::error::{field_error, ApiError, Problem, ProblemKind};
use crate::service::accounts as accounts_svc;
use crate::state::AppState;

/// One of the caller's memberships.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReachableAccount {
    /// The organization (root account).
    pub account: AccountSummary,
    /// Where in it the membership sits; it reaches this node's subtree.
    pub node: AccountSummary,
    pub roles: Vec<RoleRef>,
    /// Whether the caller's token is scoped to this account now.
    pub current: bool,
}

/// The accounts I can reach, with my roles there.
///
/// Works with any access token, including one that has not picked an account yet.
#[utoipa::path(
    tag = "accounts",
    operation_id = "listMyAccounts",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller's active memberships", body = Vec<ReachableAccount>))
)]
#[get("/v1/accounts")]
pub async fn list_my_accounts(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<web::Json<Vec<ReachableAccount>>, ApiError> {
    let user = principal.user.id.clone();
    let current = principal.tenant.as_ref().map(|t| t.root.clone());
    let list = state
        .db
        .read(move |conn| {
            let mut out = Vec::new();
            for (membership, root) in memberships::usable_for_user(conn, &user)? {
                let node = if membership.account_id == root.id {
                    root.clone()
                } else {
                    accounts::find(conn, &membership.account_id)?.ok_or_else(|| ApiError::internal("node missing"))?
                };
                let roles = memberships::roles_of(conn, &membership.id)?;
                out.push(ReachableAccount {
                    current: current.as_ref() == Some(&root.id),
                    account: AccountSummary::from(&root),
                    node: AccountSummary::from(&node),
                    roles: roles.iter().map(RoleRef::from).collect(),
                });
            }
            Ok::<_, ApiError>(out)
        })
        .await?;
    Ok(web::Json(list))
}

/// Read an account node.
#[utoipa::path(
    tag = "accounts",
    operation_id = "getAccount",
    security(("bearer" = [])),
    params(("account_id" = String, Path, description = "An account id (`acc_…`)", pattern = r"^acc_[0-9A-Za-z]{26}$")),
    responses(
        (status = 200, description = "The node", body = AccountView),
        (status = 403, description = "The node is above the caller's place in the tree", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such account in the caller's organization", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/accounts/{account_id}")]
pub async fn get_account(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<web::Json<AccountView>, ApiError> {
    let raw = path.into_inner();
    let account = state.db.read(move |conn| accounts_svc::find(conn, &raw)).await?;
    policy::require_visible(&principal, &account)?;
    Ok(web::Json(AccountView::from(&account)))
}

/// A node and everything below it, for a front end's navigation.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountTree {
    pub account: AccountView,
    #[schema(no_recursion)]
    pub children: Vec<AccountTree>,
}

fn build_tree(rows: &[AccountRow], node: &AccountRow) -> AccountTree {
    let mut children: Vec<&AccountRow> = rows
        .iter()
        .filter(|r| r.parent_id.as_deref() == Some(node.id.as_str()))
        .collect();
    children.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    AccountTree {
        account: AccountView::from(node),
        children: children.into_iter().map(|c| build_tree(rows, c)).collect(),
    }
}

/// Read a node with its whole subtree.
#[utoipa::path(
    tag = "accounts",
    operation_id = "getAccountTree",
    security(("bearer" = [])),
    params(("account_id" = String, Path, description = "An account id (`acc_…`)", pattern = r"^acc_[0-9A-Za-z]{26}$")),
    responses(
        (status = 200, description = "The node and its descendants, nested", body = AccountTree),
        (status = 403, description = "The node is above the caller's place in the tree", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such account in the caller's organization", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/accounts/{account_id}/tree")]
pub async fn get_account_tree(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<web::Json<AccountTree>, ApiError> {
    let raw = path.into_inner();
    let account = state.db.read(move |conn| accounts_svc::find(conn, &raw)).await?;
    policy::require_visible(&principal, &account)?;
    let rows = state
        .db
        .read(move |conn| Ok::<_, ApiError>(accounts::subtree(conn, &account)?))
        .await?;
    let root = rows
        .first()
        .ok_or_else(|| ApiError::internal("subtree without its root"))?;
    Ok(web::Json(build_tree(&rows, root)))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSubAccount {
    #[validate(custom(function = "domain::check_name"))]
    #[schema(example = "North Region", min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: String,
    /// `group` or `location` (an `organization` is only ever a root).
    pub kind: AccountKind,
    #[validate(length(max = 500))]
    #[schema(max_length = 500)]
    pub address: Option<String>,
    #[validate(length(max = 40))]
    #[schema(max_length = 40)]
    pub phone: Option<String>,
}

/// Create a sub-account (group or location) below a node.
#[utoipa::path(
    tag = "accounts",
    operation_id = "createSubAccount",
    security(("bearer" = [])),
    params(("account_id" = String, Path, description = "The parent node", pattern = r"^acc_[0-9A-Za-z]{26}$")),
    request_body = CreateSubAccount,
    responses(
        (status = 201, description = "Created", body = AccountView),
        (status = 403, description = "Needs account.update at or above the parent", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such account in the caller's organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The parent is closed", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/accounts/{account_id}/children")]
pub async fn create_sub_account(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: Body<CreateSubAccount>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    body.validate()?;
    if body.kind == AccountKind::Organization {
        return Err(ApiError::field(
            "kind",
            "kind",
            "must be group or location; organizations are only roots",
        ));
    }
    let name = domain::parse_name(&body.name).map_err(field_error("name"))?;
    let raw = path.into_inner();
    let st = state.clone();
    let created = state
        .db
        .write(move |conn| {
            let principal = principal.lock_tenant(conn)?;
            let parent = accounts_svc::find(conn, &raw)?;
            policy::require_on(&principal, Permission::AccountUpdate, &parent)?;
            if parent.status != AccountStatus::Active {
                return Err(ApiError::new(
                    ProblemKind::AccountClosed,
                    "The parent account is closed.",
                ));
            }
            let now = st.clock.now();
            let child = accounts::insert_child(
                conn,
                &parent,
                body.kind,
                &name,
                body.address.as_deref().map(str::trim),
                body.phone.as_deref().map(str::trim),
                now,
            )?;
            audit::record(
                conn,
                &principal.audit(),
                AuditEntry {
                    action: AuditAction::AccountCreated,
                    target_type: "account",
                    target_id: child.id.as_str(),
                    details: json!({ "parent_id": parent.id, "kind": child.kind, "name": child.name }),
                },
                now,
            )?;
            Ok(child)
        })
        .await?;
    Ok(HttpResponse::Created().json(AccountView::from(&created)))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAccount {
    #[validate(custom(function = "domain::check_name"))]
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: Option<String>,
    /// Send null to clear.
    #[validate(length(max = 500))]
    #[serde(default, deserialize_with = "crate::api::nullable")]
    #[schema(max_length = 500)]
    pub address: Option<Option<String>>,
    /// Send null to clear.
    #[validate(length(max = 40))]
    #[serde(default, deserialize_with = "crate::api::nullable")]
    #[schema(max_length = 40)]
    pub phone: Option<Option<String>>,
}

/// Update a node's profile (name, address, phone).
#[utoipa::path(
    tag = "accounts",
    operation_id = "updateAccount",
    security(("bearer" = [])),
    params(("account_id" = String, Path, description = "An account id (`acc_…`)", pattern = r"^acc_[0-9A-Za-z]{26}$")),
    request_body = UpdateAccount,
    responses(
        (status = 200, description = "Updated", body = AccountView),
        (status = 403, description = "Needs account.update at or above the node", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such account in the caller's organization", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/v1/accounts/{account_id}")]
pub async fn update_account(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: Body<UpdateAccount>,
) -> Result<web::Json<AccountView>, ApiError> {
    let body = body.into_inner();
    body.validate()?;
    let name = body
        .name
        .as_deref()
        .map(domain::parse_name)
        .transpose()
        .map_err(field_error("name"))?;
    let raw = path.into_inner();
    let st = state.clone();
    let updated = state
        .db
        .write(move |conn| {
            let principal = principal.lock_tenant(conn)?;
            let account = accounts_svc::find(conn, &raw)?;
            policy::require_on(&principal, Permission::AccountUpdate, &account)?;
            let now = st.clock.now();
            let trimmed =
                |v: Option<Option<String>>| v.map(|o| o.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()));
            accounts::update_profile(
                conn,
                &account.id,
                AccountChanges {
                    name,
                    address: trimmed(body.address),
                    phone: trimmed(body.phone),
                    updated_at: Some(now),
                },
            )?;
            audit::record(
                conn,
                &principal.audit(),
                AuditEntry {
                    action: AuditAction::AccountUpdated,
                    target_type: "account",
                    target_id: account.id.as_str(),
                    details: json!({}),
                },
                now,
            )?;
            accounts::find(conn, &account.id)?.ok_or_else(|| ApiError::not_found("account"))
        })
        .await?;
    Ok(web::Json(AccountView::from(&updated)))
}

/// Close a sub-account and everything below it.
///
/// Memberships there stop granting access; all data is kept. Root accounts and the node
/// the caller's own membership sits at cannot be closed this way.
#[utoipa::path(
    tag = "accounts",
    operation_id = "closeAccount",
    security(("bearer" = [])),
    params(("account_id" = String, Path, description = "An account id (`acc_…`)", pattern = r"^acc_[0-9A-Za-z]{26}$")),
    responses(
        (status = 200, description = "Closed, with its subtree", body = AccountView),
        (status = 403, description = "Needs account.update at or above the node", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such account in the caller's organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A root account, the caller's own node, or already closed", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/accounts/{account_id}/close")]
pub async fn close_account(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<web::Json<AccountView>, ApiError> {
    let raw = path.into_inner();
    let st = state.clone();
    let closed = state
        .db
        .write(move |conn| {
            let principal = principal.lock_tenant(conn)?;
            let account = accounts_svc::find(conn, &raw)?;
            let tenant = policy::require_on(&principal, Permission::AccountUpdate, &account)?;
            if account.parent_id.is_none() {
                return Err(ApiError::new(
                    ProblemKind::RootAccount,
                    "A root account cannot be closed.",
                ));
            }
            if account.id == tenant.node.id {
                return Err(ApiError::new(
                    ProblemKind::OwnNode,
                    "You cannot close the account your own membership is at.",
                ));
            }
            if account.status == AccountStatus::Closed {
                return Err(ApiError::new(
                    ProblemKind::AccountClosed,
                    "The account is already closed.",
                ));
            }
            let now = st.clock.now();
            let count = accounts::close_subtree(conn, &account, now)?;
            audit::record(
                conn,
                &principal.audit(),
                AuditEntry {
                    action: AuditAction::AccountClosed,
                    target_type: "account",
                    target_id: account.id.as_str(),
                    details: json!({ "nodes_closed": count }),
                },
                now,
            )?;
            accounts::find(conn, &account.id)?.ok_or_else(|| ApiError::not_found("account"))
        })
        .await?;
    Ok(web::Json(AccountView::from(&closed)))
}

/// The billing profile of an organization ("Modify Master Account Profile").
#[derive(Debug, Serialize, ToSchema)]
pub struct BillingProfileView {
    pub account_id: String,
    #[schema(required = true)]
    pub billing_email: Option<String>,
    #[schema(example = "team")]
    pub plan: String,
    /// Price of one billable seat per cycle, in the currency's minor unit (cents).
    pub seat_price_cents: i64,
    /// ISO 4217 code.
    #[schema(example = "USD")]
    pub currency: String,
    /// ISO date the billing cycle is anchored on.
    #[schema(required = true)]
    #[schema(format = Date)]
    pub cycle_start: Option<String>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<&BillingProfileRow> for BillingProfileView {
    fn from(b: &BillingProfileRow) -> Self {
        Self {
            account_id: b.account_id.clone(),
            billing_email: b.billing_email.clone(),
            plan: b.plan.clone(),
            seat_price_cents: b.seat_price_cents,
            currency: b.currency.clone(),
            cycle_start: b.cycle_start.clone(),
            updated_at: utc(b.updated_at),
        }
    }
}

fn load_billing(conn: &mut DbConnection, principal: &Principal, raw: &str) -> Result<BillingProfileRow, ApiError> {
    let account = accounts_svc::find(conn, raw)?;
    policy::require_on(principal, Permission::AccountBilling, &account)?;
    if account.parent_id.is_some() {
        return Err(ApiError::not_found("billing profile (only organizations have one)"));
    }
    accounts::billing_profile(conn, &account.id)?.ok_or_else(|| ApiError::not_found("billing profile"))
}

/// Read the organization's billing profile. Needs `account.billing`.
#[utoipa::path(
    tag = "accounts",
    operation_id = "getBillingProfile",
    security(("bearer" = [])),
    params(("account_id" = String, Path, description = "A root account id (`acc_…`)", pattern = r"^acc_[0-9A-Za-z]{26}$")),
    responses(
        (status = 200, description = "The billing profile", body = BillingProfileView),
        (status = 403, description = "Needs account.billing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such organization in the caller's tenant", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/accounts/{account_id}/billing")]
pub async fn get_billing_profile(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<web::Json<BillingProfileView>, ApiError> {
    let raw = path.into_inner();
    let profile = state.db.read(move |conn| load_billing(conn, &principal, &raw)).await?;
    Ok(web::Json(BillingProfileView::from(&profile)))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBillingProfile {
    #[validate(custom(function = "domain::check_email"))]
    #[schema(format = Email, max_length = 254)]
    pub billing_email: Option<String>,
    #[validate(length(min = 1, max = 64))]
    #[schema(min_length = 1, max_length = 64)]
    pub plan: String,
    #[validate(range(min = 0, max = 100_000_000))]
    #[schema(minimum = 0, maximum = 100_000_000)]
    pub seat_price_cents: i64,
    /// ISO 4217 code, three capital letters.
    #[validate(length(equal = 3))]
    #[schema(min_length = 3, max_length = 3, pattern = r"^[A-Z]{3}$", example = "USD")]
    pub currency: String,
    /// ISO date, `YYYY-MM-DD`.
    #[schema(format = Date)]
    pub cycle_start: Option<String>,
}

/// Replace the organization's billing profile. Needs `account.billing`.
#[utoipa::path(
    tag = "accounts",
    operation_id = "updateBillingProfile",
    security(("bearer" = [])),
    params(("account_id" = String, Path, description = "A root account id (`acc_…`)", pattern = r"^acc_[0-9A-Za-z]{26}$")),
    request_body = UpdateBillingProfile,
    responses(
        (status = 200, description = "Saved", body = BillingProfileView),
        (status = 403, description = "Needs account.billing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such organization in the caller's tenant", body = Problem, content_type = "application/problem+json"),
    )
)]
#[put("/v1/accounts/{account_id}/billing")]
pub async fn update_billing_profile(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: Body<UpdateBillingProfile>,
) -> Result<web::Json<BillingProfileView>, ApiError> {
    let body = body.into_inner();
    body.validate()?;
    if !body.currency.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(ApiError::field(
            "currency",
            "currency",
            "must be three capital letters (ISO 4217)",
        ));
    }
    // Stored in its canonical form, so the profile always shows a full `YYYY-MM-DD` date.
    let cycle_start = match &body.cycle_start {
        Some(date) => Some(
            chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
                .map_err(|_| ApiError::field("cycle_start", "date", "must be a date, YYYY-MM-DD"))?
                .format("%Y-%m-%d")
                .to_string(),
        ),
        None => None,
    };
    let raw = path.into_inner();
    let st = state.clone();
    let saved = state
        .db
        .write(move |conn| {
            let principal = principal.lock_tenant(conn)?;
            let current = load_billing(conn, &principal, &raw)?;
            let now = st.clock.now();
            let next = BillingProfileRow {
                account_id: current.account_id.clone(),
                billing_email: body.billing_email.map(|e| e.trim().to_string()),
                plan: body.plan.trim().to_string(),
                seat_price_cents: body.seat_price_cents,
                currency: body.currency,
                cycle_start,
                updated_at: now,
            };
            accounts::save_billing_profile(conn, &next)?;
            audit::record(
                conn,
                &principal.audit(),
                AuditEntry {
                    action: AuditAction::AccountBillingUpdated,
                    target_type: "account",
                    target_id: &next.account_id,
                    details: json!({ "plan": next.plan, "seat_price_cents": next.seat_price_cents, "currency": next.currency }),
                },
                now,
            )?;
            Ok::<_, ApiError>(next)
        })
        .await?;
    Ok(web::Json(BillingProfileView::from(&saved)))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveAccount {
    /// The new parent (`acc_…`), in the same organization and not below the node itself.
    #[validate(length(min = 1, max = 64))]
    #[schema(min_length = 1, max_length = 64)]
    pub parent_id: String,
}

/// Move a sub-account, with its subtree, under another parent.
#[utoipa::path(
    tag = "accounts",
    operation_id = "moveAccount",
    security(("bearer" = [])),
    params(("account_id" = String, Path, description = "The sub-account to move (`acc_…`)", pattern = r"^acc_[0-9A-Za-z]{26}$")),
    request_body = MoveAccount,
    responses(
        (status = 200, description = "Moved", body = AccountView),
        (status = 403, description = "Needs account.update over the node and the new parent", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such account in the caller's organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A root account, the caller's own node, or a closed parent", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The new parent is the node itself or below it", body = Problem, content_type = "application/problem+json"),
    )
)]
#[put("/v1/accounts/{account_id}/parent")]
pub async fn move_account(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: Body<MoveAccount>,
) -> Result<web::Json<AccountView>, ApiError> {
    let body = body.into_inner();
    body.validate()?;
    let raw = path.into_inner();
    let st = state.clone();
    let moved = state
        .db
        .write(move |conn| {
            // Lock first: two concurrent moves must not each see the other's old paths.
            let principal = principal.lock_tenant(conn)?;
            let account = accounts_svc::find(conn, &raw)?;
            let tenant = policy::require_on(&principal, Permission::AccountUpdate, &account)?;
            let parent = accounts_svc::find(conn, &body.parent_id)?;
            policy::require_on(&principal, Permission::AccountUpdate, &parent)?;
            if account.parent_id.is_none() {
                return Err(ApiError::new(
                    ProblemKind::RootAccount,
                    "A root account cannot be moved.",
                ));
            }
            if account.id == tenant.node.id {
                return Err(ApiError::new(
                    ProblemKind::OwnNode,
                    "You cannot move the account your own membership is at.",
                ));
            }
            if parent.path.starts_with(&account.path) {
                return Err(ApiError::field(
                    "parent_id",
                    "cycle",
                    "must not be the account itself or one of its descendants",
                ));
            }
            if parent.status != AccountStatus::Active {
                return Err(ApiError::new(ProblemKind::AccountClosed, "The new parent is closed."));
            }
            let now = st.clock.now();
            accounts::move_subtree(conn, &account, &parent, now)?;
            audit::record(
                conn,
                &principal.audit(),
                AuditEntry {
                    action: AuditAction::AccountMoved,
                    target_type: "account",
                    target_id: account.id.as_str(),
                    details: json!({ "from": account.parent_id, "to": parent.id }),
                },
                now,
            )?;
            accounts::find(conn, &account.id)?.ok_or_else(|| ApiError::not_found("account"))
        })
        .await?;
    Ok(web::Json(AccountView::from(&moved)))
}

//! Accounts: the organization tree (groups, locations), profiles, closing, billing.

use actix_web::{get, patch, post, put, web, HttpResponse};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::ValidationError;

use crate::api::extract::{Body, IfMatch};
use crate::api::views::{utc, versioned, AccountSummary, AccountView, RoleRef};
use crate::auth::extract::Principal;
use crate::db::models::{AccountRow, BillingProfileRow};
use crate::domain::{self, AccountKind, Email};
use crate::error::{field_error, ApiError, FieldError, Problem};
use crate::ids::AccountId;
use crate::service::{self, accounts, versions};
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
    let list = service::read(&state, move |tx| accounts::reachable(tx, &principal)).await?;
    Ok(web::Json(list.iter().map(ReachableAccount::from).collect()))
}

impl From<&accounts::Reachable> for ReachableAccount {
    fn from(r: &accounts::Reachable) -> Self {
        Self {
            account: AccountSummary::from(&r.root),
            node: AccountSummary::from(&r.node),
            roles: r.roles.iter().map(RoleRef::from).collect(),
            current: r.current,
        }
    }
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
    path: web::Path<AccountId>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let account = service::read(&state, move |tx| accounts::get(tx, &principal, &id)).await?;
    Ok(versioned(versions::of_account(&account), &AccountView::from(&account)))
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
    path: web::Path<AccountId>,
) -> Result<web::Json<AccountTree>, ApiError> {
    let id = path.into_inner();
    let rows = service::read(&state, move |tx| accounts::subtree(tx, &principal, &id)).await?;
    let root = rows
        .first()
        .ok_or_else(|| ApiError::internal("subtree without its root"))?;
    Ok(web::Json(build_tree(&rows, root)))
}

/// Field errors gathered while a body is parsed, so that one answer names every bad field.
#[derive(Default)]
struct Fields(Vec<FieldError>);

impl Fields {
    fn check(&mut self, field: &str, ok: bool, code: &str, message: impl Into<String>) {
        if !ok {
            self.0.push(FieldError::new(field, code, message));
        }
    }

    /// Notes a domain parser's error under `field`.
    fn parsed<T>(&mut self, field: &str, parsed: &Result<T, ValidationError>) {
        if let Err(e) = parsed {
            let message = e
                .message
                .as_ref()
                .map_or_else(|| format!("is invalid ({})", e.code), |m| m.to_string());
            self.0.push(FieldError::new(field, &e.code, message));
        }
    }

    /// At most `max` characters, when there is a text at all.
    fn at_most(&mut self, field: &str, text: Option<&str>, max: usize) {
        let ok = text.is_none_or(|t| t.chars().count() <= max);
        self.check(field, ok, "length", format!("must be at most {max} characters long"));
    }

    /// Every error found, sorted by field; nothing when the body is valid.
    fn finish(mut self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            return Ok(());
        }
        self.0.sort_by(|a, b| a.field.cmp(&b.field));
        Err(ApiError::validation(self.0))
    }
}

/// The kinds a sub-account may have.
fn child_kinds() -> utoipa::openapi::Object {
    crate::api::views::text_choices(
        "`group` or `location` (an `organization` is only ever a root).",
        [AccountKind::Group, AccountKind::Location].map(AccountKind::as_str),
    )
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSubAccount {
    #[schema(example = "North Region", min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: String,
    /// `group` or `location` (an `organization` is only ever a root).
    #[schema(schema_with = child_kinds)]
    pub kind: AccountKind,
    #[schema(max_length = 500)]
    pub address: Option<String>,
    #[schema(max_length = 40)]
    pub phone: Option<String>,
}

impl CreateSubAccount {
    fn command(self) -> Result<accounts::NewChild, ApiError> {
        let mut fields = Fields::default();
        let name = domain::parse_name(&self.name);
        fields.parsed("name", &name);
        let message = "must be group or location; organizations are only roots";
        fields.check("kind", self.kind != AccountKind::Organization, "kind", message);
        fields.at_most("address", self.address.as_deref(), 500);
        fields.at_most("phone", self.phone.as_deref(), 40);
        fields.finish()?;
        Ok(accounts::NewChild {
            kind: self.kind,
            name: name.map_err(field_error("name"))?,
            address: self.address.map(|a| a.trim().to_string()),
            phone: self.phone.map(|p| p.trim().to_string()),
        })
    }
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
    path: web::Path<AccountId>,
    body: Body<CreateSubAccount>,
) -> Result<HttpResponse, ApiError> {
    let cmd = body.into_inner().command()?;
    let parent = path.into_inner();
    let created = service::write(&state, move |tx| accounts::create_child(tx, &principal, &parent, cmd)).await?;
    Ok(HttpResponse::Created().json(AccountView::from(&created)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAccount {
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: Option<String>,
    /// Send null to clear.
    #[serde(default, deserialize_with = "crate::api::nullable")]
    #[schema(max_length = 500)]
    pub address: Option<Option<String>>,
    /// Send null to clear.
    #[serde(default, deserialize_with = "crate::api::nullable")]
    #[schema(max_length = 40)]
    pub phone: Option<Option<String>>,
}

impl UpdateAccount {
    fn command(self) -> Result<accounts::ProfileUpdate, ApiError> {
        let mut fields = Fields::default();
        let name = self.name.as_deref().map(domain::parse_name).transpose();
        fields.parsed("name", &name);
        fields.at_most("address", self.address.as_ref().and_then(Option::as_deref), 500);
        fields.at_most("phone", self.phone.as_ref().and_then(Option::as_deref), 40);
        fields.finish()?;
        // A blank text clears the field, as null does.
        let cleared = |v: Option<Option<String>>| v.map(|o| o.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()));
        Ok(accounts::ProfileUpdate {
            name: name.map_err(field_error("name"))?,
            address: cleared(self.address),
            phone: cleared(self.phone),
        })
    }
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
    path: web::Path<AccountId>,
    if_match: IfMatch,
    body: Body<UpdateAccount>,
) -> Result<HttpResponse, ApiError> {
    let cmd = body.into_inner().command()?;
    let id = path.into_inner();
    let updated = service::write_if(&state, if_match.0, move |tx| accounts::update(tx, &principal, &id, cmd)).await?;
    Ok(versioned(versions::of_account(&updated), &AccountView::from(&updated)))
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
    path: web::Path<AccountId>,
) -> Result<web::Json<AccountView>, ApiError> {
    let id = path.into_inner();
    let closed = service::write(&state, move |tx| accounts::close(tx, &principal, &id)).await?;
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
    path: web::Path<AccountId>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let profile = service::read(&state, move |tx| accounts::billing(tx, &principal, &id)).await?;
    Ok(versioned(
        versions::of_billing(&profile),
        &BillingProfileView::from(&profile),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBillingProfile {
    #[schema(format = Email, max_length = 254)]
    pub billing_email: Option<String>,
    #[schema(min_length = 1, max_length = 64)]
    pub plan: String,
    #[schema(minimum = 0, maximum = 100_000_000)]
    pub seat_price_cents: i64,
    /// ISO 4217 code, three capital letters.
    #[schema(min_length = 3, max_length = 3, pattern = r"^[A-Z]{3}$", example = "USD")]
    pub currency: String,
    /// ISO date, `YYYY-MM-DD`.
    #[schema(format = Date)]
    pub cycle_start: Option<String>,
}

impl UpdateBillingProfile {
    fn command(self) -> Result<accounts::BillingUpdate, ApiError> {
        let mut fields = Fields::default();
        let email = self.billing_email.as_deref().map(Email::parse).transpose();
        fields.parsed("billing_email", &email);
        let plan_length = (1..=64).contains(&self.plan.chars().count());
        fields.check("plan", plan_length, "length", "must be 1 to 64 characters long");
        let price = (0..=100_000_000).contains(&self.seat_price_cents);
        fields.check("seat_price_cents", price, "range", "is out of range");
        let currency = parse_currency(&self.currency);
        fields.parsed("currency", &currency);
        let cycle_start = self.cycle_start.as_deref().map(parse_date).transpose();
        fields.parsed("cycle_start", &cycle_start);
        fields.finish()?;
        Ok(accounts::BillingUpdate {
            billing_email: email
                .map_err(field_error("billing_email"))?
                .map(|e| e.as_str().to_string()),
            plan: self.plan.trim().to_string(),
            seat_price_cents: self.seat_price_cents,
            currency: currency.map_err(field_error("currency"))?,
            cycle_start: cycle_start.map_err(field_error("cycle_start"))?,
        })
    }
}

/// An ISO 4217 code: three capital letters.
fn parse_currency(raw: &str) -> Result<String, ValidationError> {
    if raw.chars().count() != 3 {
        return Err(ValidationError::new("length").with_message("has the wrong length".into()));
    }
    if !raw.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(ValidationError::new("currency").with_message("must be three capital letters (ISO 4217)".into()));
    }
    Ok(raw.to_string())
}

/// An ISO date, `YYYY-MM-DD`.
fn parse_date(raw: &str) -> Result<NaiveDate, ValidationError> {
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| ValidationError::new("date").with_message("must be a date, YYYY-MM-DD".into()))
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
    path: web::Path<AccountId>,
    if_match: IfMatch,
    body: Body<UpdateBillingProfile>,
) -> Result<HttpResponse, ApiError> {
    let cmd = body.into_inner().command()?;
    let id = path.into_inner();
    let saved = service::write_if(&state, if_match.0, move |tx| {
        accounts::update_billing(tx, &principal, &id, cmd)
    })
    .await?;
    Ok(versioned(
        versions::of_billing(&saved),
        &BillingProfileView::from(&saved),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveAccount {
    /// The new parent (`acc_…`), in the same organization and not below the node itself.
    #[schema(min_length = 1, max_length = 64)]
    pub parent_id: String,
}

impl MoveAccount {
    fn command(self) -> Result<accounts::MoveTo, ApiError> {
        let mut fields = Fields::default();
        let length = (1..=64).contains(&self.parent_id.chars().count());
        fields.check("parent_id", length, "length", "must be 1 to 64 characters long");
        fields.finish()?;
        Ok(accounts::MoveTo {
            parent_id: self.parent_id,
        })
    }
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
    path: web::Path<AccountId>,
    if_match: IfMatch,
    body: Body<MoveAccount>,
) -> Result<HttpResponse, ApiError> {
    let cmd = body.into_inner().command()?;
    let id = path.into_inner();
    let moved = service::write_if(&state, if_match.0, move |tx| {
        accounts::move_node(tx, &principal, &id, cmd)
    })
    .await?;
    Ok(versioned(versions::of_account(&moved), &AccountView::from(&moved)))
}

//! Response shapes shared by several resources.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::models::{AccountRow, MembershipRow, RoleRow, UserRow};
use crate::domain::{AccountKind, AccountStatus, MembershipStatus, UserStatus};
use crate::service::sessions::IssuedTokens;

pub fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

/// A user as the API shows them. Never includes secrets.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    /// Stable public id; never changes.
    #[schema(example = "usr_01jd3k6x0n6qg8z7v2f4t9b1c5")]
    pub id: String,
    pub email: String,
    #[schema(required = true)]
    pub username: Option<String>,
    pub first_name: String,
    pub last_name: String,
    #[schema(required = true)]
    pub phone: Option<String>,
    pub status: UserStatus,
    /// The user must change their password before using any account.
    pub must_change_password: bool,
    pub preferences: PreferencesView,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What the user chose for their own screens.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreferencesView {
    #[schema(required = true)]
    pub default_landing_page: Option<String>,
    #[schema(required = true)]
    pub default_contact_tab: Option<String>,
    pub show_calendar: bool,
    pub daily_email_reminders: bool,
}

impl From<&UserRow> for UserView {
    fn from(u: &UserRow) -> Self {
        Self {
            id: u.id.to_string(),
            email: u.email.clone(),
            username: u.username.clone(),
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            phone: u.phone.clone(),
            status: u.status,
            must_change_password: u.must_change_password,
            preferences: PreferencesView {
                default_landing_page: u.default_landing_page.clone(),
                default_contact_tab: u.default_contact_tab.clone(),
                show_calendar: u.show_calendar,
                daily_email_reminders: u.daily_email_reminders,
            },
            created_at: utc(u.created_at),
            updated_at: utc(u.updated_at),
        }
    }
}

/// An account in a list or a token response.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountSummary {
    #[schema(example = "acc_01jd3k6x0n6qg8z7v2f4t9b1c5")]
    pub id: String,
    pub name: String,
    pub kind: AccountKind,
    /// The root account (organization) this node belongs to; equal to `id` for a root.
    pub root_id: String,
}

impl From<&AccountRow> for AccountSummary {
    fn from(a: &AccountRow) -> Self {
        Self {
            id: a.id.to_string(),
            name: a.name.clone(),
            kind: a.kind,
            root_id: a.root_id.to_string(),
        }
    }
}

/// A tenant node in full.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    pub id: String,
    pub root_id: String,
    /// Null for a root account.
    #[schema(required = true)]
    pub parent_id: Option<String>,
    pub kind: AccountKind,
    pub name: String,
    #[schema(required = true)]
    pub address: Option<String>,
    #[schema(required = true)]
    pub phone: Option<String>,
    pub status: AccountStatus,
    /// 0 for a root account.
    pub depth: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[schema(required = true)]
    pub closed_at: Option<DateTime<Utc>>,
}

impl From<&AccountRow> for AccountView {
    fn from(a: &AccountRow) -> Self {
        Self {
            id: a.id.to_string(),
            root_id: a.root_id.to_string(),
            parent_id: a.parent_id.clone(),
            kind: a.kind,
            name: a.name.clone(),
            address: a.address.clone(),
            phone: a.phone.clone(),
            status: a.status,
            depth: a.depth,
            created_at: utc(a.created_at),
            updated_at: utc(a.updated_at),
            closed_at: a.closed_at.map(utc),
        }
    }
}

/// A role held by a membership.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleRef {
    pub id: String,
    pub name: String,
    /// The built-in role this is (`owner`, `admin`, …); null for a custom role.
    #[schema(required = true)]
    pub builtin: Option<String>,
}

impl From<&RoleRow> for RoleRef {
    fn from(r: &RoleRow) -> Self {
        Self {
            id: r.id.to_string(),
            name: r.name.clone(),
            builtin: r.builtin.map(|b| b.key().to_string()),
        }
    }
}

/// A user's place in the root account.
#[derive(Debug, Serialize, ToSchema)]
pub struct MembershipView {
    pub id: String,
    /// The node the membership sits at; it reaches that node's whole subtree.
    pub account_id: String,
    pub status: MembershipStatus,
    pub roles: Vec<RoleRef>,
    /// The integrator's own id for this user, unique within the root account.
    #[schema(required = true)]
    pub external_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl MembershipView {
    pub fn new(m: &MembershipRow, roles: &[RoleRow]) -> Self {
        Self {
            id: m.id.to_string(),
            account_id: m.account_id.to_string(),
            status: m.status,
            roles: roles.iter().map(RoleRef::from).collect(),
            external_id: m.external_id.clone(),
            created_at: utc(m.created_at),
        }
    }
}

/// A user as a member of the caller's account.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    pub user: UserView,
    pub membership: MembershipView,
}

impl MemberView {
    pub fn new(m: &MembershipRow, u: &UserRow, roles: &[RoleRow]) -> Self {
        Self {
            user: UserView::from(u),
            membership: MembershipView::new(m, roles),
        }
    }
}

/// An account the user may pick, with their roles there.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountChoice {
    pub account: AccountSummary,
    /// Names of the user's roles in that account.
    pub roles: Vec<String>,
}

/// Tokens for a session.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// A JWT to send as `Authorization: Bearer …`: EdDSA, header `typ: at+jwt` and `kid`
    /// (verify with `/.well-known/jwks.json`); claims `iss`, `aud`, `sub` (the effective
    /// user), `acc` (the organization), `sid`, `jti`, `iat`, `exp`, and `act: {"sub": <real
    /// actor>}` (RFC 8693) when a caretaker or an impersonator acts as `sub`.
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Opaque; exchange it at `/v1/auth/refresh` for new tokens. Each one works once.
    /// Absent when the refresh token you hold stays valid (account switch).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub refresh_token: Option<String>,
    pub user: UserView,
    /// The account the access token is scoped to; null until one is picked.
    #[schema(required = true)]
    pub account: Option<AccountSummary>,
    /// True when the user belongs to several accounts and must pick one with
    /// `/v1/auth/switch-account`; until then the token can do nothing else.
    pub account_selection_required: bool,
    /// The accounts this user can pick.
    pub accounts: Vec<AccountChoice>,
}

impl From<IssuedTokens> for TokenResponse {
    fn from(issued: IssuedTokens) -> Self {
        Self {
            access_token: issued.access_token,
            token_type: "Bearer",
            expires_in: issued.expires_in,
            refresh_token: issued.refresh_token,
            user: UserView::from(&issued.user),
            account_selection_required: issued.account_selection_required,
            account: issued.account.as_ref().map(AccountSummary::from),
            accounts: issued
                .choices
                .iter()
                .map(|(_, a, roles)| AccountChoice {
                    account: AccountSummary::from(a),
                    roles: roles.clone(),
                })
                .collect(),
        }
    }
}

/// A person, briefly.
#[derive(Debug, Serialize, ToSchema)]
pub struct PersonRef {
    pub id: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
}

impl From<&UserRow> for PersonRef {
    fn from(u: &UserRow) -> Self {
        Self {
            id: u.id.to_string(),
            email: u.email.clone(),
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
        }
    }
}

/// A 200 JSON response carrying the resource's version as `ETag`, for `If-Match`.
pub fn versioned<T: Serialize>(etag: String, body: &T) -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok()
        .insert_header((actix_web::http::header::ETAG, etag))
        .json(body)
}

/// A string schema that takes exactly these values: for a field whose type has more values
/// than the request accepts (`schema_with` on the field, which then needs its description
/// here).
pub fn text_choices<'a>(description: &str, values: impl IntoIterator<Item = &'a str>) -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .description(Some(description))
        .enum_values(Some(values.into_iter().map(str::to_string)))
        .build()
}

/// A boolean that must be `true` (a confirmation).
pub fn only_true(description: &str) -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::Boolean)
        .description(Some(description))
        .enum_values(Some([true]))
        .build()
}

//! Response shapes shared by several resources.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::models::{AccountRow, UserRow};
use crate::domain::{AccountKind, UserStatus};

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
    pub username: Option<String>,
    pub first_name: String,
    pub last_name: String,
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
    pub default_landing_page: Option<String>,
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

//! Row structs. `*Row` is what a query reads; `New*` is what an insert writes. Ids and
//! enums are typed here and stored as text.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::*;
use crate::domain::permissions::BuiltinRole;
use crate::domain::{
    AccountKind, AccountStatus, ContactSubscription, Delegation, ImpersonationMode, ImpersonationState, InviteStatus,
    MembershipStatus, NotificationStatus, SeatEndReason, UserStatus,
};
use crate::ids::*;

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = accounts)]
pub struct AccountRow {
    #[diesel(deserialize_as = String)]
    pub id: AccountId,
    #[diesel(deserialize_as = String)]
    pub root_id: AccountId,
    pub parent_id: Option<String>,
    pub path: String,
    pub depth: i32,
    #[diesel(deserialize_as = String)]
    pub kind: AccountKind,
    pub name: String,
    pub address: Option<String>,
    pub phone: Option<String>,
    #[diesel(deserialize_as = String)]
    pub status: AccountStatus,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub closed_at: Option<NaiveDateTime>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = accounts)]
pub struct NewAccount<'a> {
    #[diesel(serialize_as = String)]
    pub id: AccountId,
    #[diesel(serialize_as = String)]
    pub root_id: AccountId,
    pub parent_id: Option<&'a str>,
    pub path: String,
    pub depth: i32,
    #[diesel(serialize_as = String)]
    pub kind: AccountKind,
    pub name: &'a str,
    pub address: Option<&'a str>,
    pub phone: Option<&'a str>,
    #[diesel(serialize_as = String)]
    pub status: AccountStatus,
    pub lock_version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserRow {
    #[diesel(deserialize_as = String)]
    pub id: UserId,
    pub email: String,
    pub email_normalized: String,
    pub username: Option<String>,
    pub username_normalized: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub phone: Option<String>,
    pub password_hash: Option<String>,
    pub must_change_password: bool,
    #[diesel(deserialize_as = String)]
    pub status: UserStatus,
    pub default_landing_page: Option<String>,
    pub default_contact_tab: Option<String>,
    pub show_calendar: bool,
    pub daily_email_reminders: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub archived_at: Option<NaiveDateTime>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    #[diesel(serialize_as = String)]
    pub id: UserId,
    pub email: &'a str,
    pub email_normalized: &'a str,
    pub username: Option<&'a str>,
    pub username_normalized: Option<&'a str>,
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub phone: Option<&'a str>,
    pub password_hash: Option<&'a str>,
    pub must_change_password: bool,
    #[diesel(serialize_as = String)]
    pub status: UserStatus,
    pub show_calendar: bool,
    pub daily_email_reminders: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = roles)]
pub struct RoleRow {
    #[diesel(deserialize_as = String)]
    pub id: RoleId,
    #[diesel(deserialize_as = String)]
    pub root_account_id: AccountId,
    /// Which built-in role this row is; `None` for a custom role.
    #[diesel(column_name = builtin_key, deserialize_as = BuiltinColumn)]
    pub builtin: Option<BuiltinRole>,
    pub name: String,
    pub description: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// The identity provider's id for the role as a SCIM group.
    pub external_id: Option<String>,
}

/// The `roles.builtin_key` column read as a [`BuiltinRole`]; a key this version does not
/// know is a deserialization error, never a custom role.
pub struct BuiltinColumn(Option<BuiltinRole>);

impl<DB> Queryable<diesel::sql_types::Nullable<diesel::sql_types::Text>, DB> for BuiltinColumn
where
    DB: diesel::backend::Backend,
    Option<String>: Queryable<diesel::sql_types::Nullable<diesel::sql_types::Text>, DB>,
{
    type Row = <Option<String> as Queryable<diesel::sql_types::Nullable<diesel::sql_types::Text>, DB>>::Row;

    fn build(row: Self::Row) -> diesel::deserialize::Result<Self> {
        let raw = <Option<String> as Queryable<diesel::sql_types::Nullable<diesel::sql_types::Text>, DB>>::build(row)?;
        match raw {
            None => Ok(Self(None)),
            Some(key) => BuiltinRole::parse(&key)
                .map(|role| Self(Some(role)))
                .ok_or_else(|| format!("unknown built-in role {key:?}").into()),
        }
    }
}

impl From<BuiltinColumn> for Option<BuiltinRole> {
    fn from(column: BuiltinColumn) -> Self {
        column.0
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = roles)]
pub struct NewRole<'a> {
    #[diesel(serialize_as = String)]
    pub id: RoleId,
    #[diesel(serialize_as = String)]
    pub root_account_id: AccountId,
    pub builtin_key: Option<&'a str>,
    pub name: &'a str,
    pub description: &'a str,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = memberships)]
pub struct MembershipRow {
    #[diesel(deserialize_as = String)]
    pub id: MembershipId,
    #[diesel(deserialize_as = String)]
    pub user_id: UserId,
    #[diesel(deserialize_as = String)]
    pub root_account_id: AccountId,
    #[diesel(deserialize_as = String)]
    pub account_id: AccountId,
    #[diesel(deserialize_as = String)]
    pub status: MembershipStatus,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub external_id: Option<String>,
    /// The identity provider's SCIM `userName`; `None` answers to the email.
    pub scim_user_name: Option<String>,
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = billing_profiles)]
pub struct BillingProfileRow {
    pub account_id: String,
    pub billing_email: Option<String>,
    pub plan: String,
    pub seat_price_cents: i64,
    pub currency: String,
    pub cycle_start: Option<String>,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = memberships)]
pub struct NewMembership {
    #[diesel(serialize_as = String)]
    pub id: MembershipId,
    #[diesel(serialize_as = String)]
    pub user_id: UserId,
    #[diesel(serialize_as = String)]
    pub root_account_id: AccountId,
    #[diesel(serialize_as = String)]
    pub account_id: AccountId,
    #[diesel(serialize_as = String)]
    pub status: MembershipStatus,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub external_id: Option<String>,
    /// The identity provider's SCIM `userName`; `None` answers to the email.
    pub scim_user_name: Option<String>,
}

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    #[diesel(deserialize_as = String)]
    pub id: SessionId,
    #[diesel(deserialize_as = String)]
    pub user_id: UserId,
    pub account_id: Option<String>,
    pub actor_user_id: Option<String>,
    pub delegation: Option<String>,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
    pub revoked_reason: Option<String>,
}

impl SessionRow {
    pub fn account(&self) -> Option<AccountId> {
        self.account_id.clone().map(AccountId::from)
    }

    pub fn actor(&self) -> Option<UserId> {
        self.actor_user_id.clone().map(UserId::from)
    }

    pub fn delegation(&self) -> Option<Delegation> {
        self.delegation.as_deref().and_then(Delegation::parse)
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = sessions)]
pub struct NewSession {
    #[diesel(serialize_as = String)]
    pub id: SessionId,
    #[diesel(serialize_as = String)]
    pub user_id: UserId,
    pub account_id: Option<String>,
    pub actor_user_id: Option<String>,
    pub delegation: Option<String>,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshTokenRow {
    #[diesel(deserialize_as = String)]
    pub id: RefreshTokenId,
    #[diesel(deserialize_as = String)]
    pub session_id: SessionId,
    pub token_hash: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct NewRefreshToken {
    #[diesel(serialize_as = String)]
    pub id: RefreshTokenId,
    #[diesel(serialize_as = String)]
    pub session_id: SessionId,
    pub token_hash: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = password_reset_tokens)]
pub struct PasswordResetRow {
    #[diesel(deserialize_as = String)]
    pub id: PasswordResetId,
    #[diesel(deserialize_as = String)]
    pub user_id: UserId,
    pub token_hash: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = password_reset_tokens)]
pub struct NewPasswordReset {
    #[diesel(serialize_as = String)]
    pub id: PasswordResetId,
    #[diesel(serialize_as = String)]
    pub user_id: UserId,
    pub token_hash: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = notifications)]
pub struct NotificationRow {
    #[diesel(deserialize_as = String)]
    pub id: NotificationId,
    pub kind: String,
    pub account_id: Option<String>,
    pub recipient_user_id: Option<String>,
    pub recipient_email: String,
    pub on_behalf_of_user_id: Option<String>,
    pub subject: String,
    pub body: String,
    pub payload: String,
    #[diesel(deserialize_as = String)]
    pub status: NotificationStatus,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub locked_until: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    pub delivered_at: Option<NaiveDateTime>,
    /// The contact a notice was for (R12), when it went to a contact.
    pub contact_id: Option<String>,
    /// The webhook endpoint a delivery goes to, when it is an event delivery.
    pub webhook_endpoint_id: Option<String>,
    /// The HTTP status the endpoint answered on the last attempt, if it answered.
    pub last_response_code: Option<i32>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = notifications)]
pub struct NewNotification {
    #[diesel(serialize_as = String)]
    pub id: NotificationId,
    pub kind: String,
    pub account_id: Option<String>,
    pub recipient_user_id: Option<String>,
    pub recipient_email: String,
    pub on_behalf_of_user_id: Option<String>,
    pub subject: String,
    pub body: String,
    pub payload: String,
    #[diesel(serialize_as = String)]
    pub status: NotificationStatus,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub contact_id: Option<String>,
    pub webhook_endpoint_id: Option<String>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = audit_events)]
pub struct NewAuditEvent {
    #[diesel(serialize_as = String)]
    pub id: AuditEventId,
    pub occurred_at: NaiveDateTime,
    pub actor_user_id: Option<String>,
    pub effective_user_id: Option<String>,
    pub account_id: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub request_id: Option<String>,
    pub details: String,
    pub actor_api_key_id: Option<String>,
}

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = audit_events)]
pub struct AuditEventRow {
    #[diesel(deserialize_as = String)]
    pub id: AuditEventId,
    pub occurred_at: NaiveDateTime,
    pub actor_user_id: Option<String>,
    pub effective_user_id: Option<String>,
    pub account_id: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub request_id: Option<String>,
    pub details: String,
    pub actor_api_key_id: Option<String>,
}

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = invites)]
pub struct InviteRow {
    #[diesel(deserialize_as = String)]
    pub id: InviteId,
    #[diesel(deserialize_as = String)]
    pub root_account_id: AccountId,
    #[diesel(deserialize_as = String)]
    pub account_id: AccountId,
    pub email: String,
    pub email_normalized: String,
    #[diesel(deserialize_as = String)]
    pub invited_by: UserId,
    pub token_hash: String,
    /// As stored: `pending`, `accepted` or `revoked`; see [`InviteRow::state`].
    #[diesel(deserialize_as = String)]
    pub status: InviteStatus,
    pub send_email: bool,
    pub expires_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub accepted_at: Option<NaiveDateTime>,
    pub accepted_user_id: Option<String>,
    pub revoked_at: Option<NaiveDateTime>,
    pub revoked_by: Option<String>,
}

impl InviteRow {
    /// The state a reader sees: a pending invite past its expiry is expired.
    pub fn state(&self, now: NaiveDateTime) -> InviteStatus {
        match self.status {
            InviteStatus::Pending if self.expires_at <= now => InviteStatus::Expired,
            other => other,
        }
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = invites)]
pub struct NewInvite {
    #[diesel(serialize_as = String)]
    pub id: InviteId,
    #[diesel(serialize_as = String)]
    pub root_account_id: AccountId,
    #[diesel(serialize_as = String)]
    pub account_id: AccountId,
    pub email: String,
    pub email_normalized: String,
    #[diesel(serialize_as = String)]
    pub invited_by: UserId,
    pub token_hash: String,
    #[diesel(serialize_as = String)]
    pub status: InviteStatus,
    pub send_email: bool,
    pub expires_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = caretaker_assignments)]
pub struct CaretakerAssignmentRow {
    #[diesel(deserialize_as = String)]
    pub id: CaretakerAssignmentId,
    #[diesel(deserialize_as = String)]
    pub root_account_id: AccountId,
    #[diesel(deserialize_as = String)]
    pub managed_user_id: UserId,
    #[diesel(deserialize_as = String)]
    pub caretaker_user_id: UserId,
    #[diesel(deserialize_as = String)]
    pub assigned_by: UserId,
    pub assigned_at: NaiveDateTime,
    pub removed_at: Option<NaiveDateTime>,
    pub removed_by: Option<String>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = caretaker_assignments)]
pub struct NewCaretakerAssignment {
    #[diesel(serialize_as = String)]
    pub id: CaretakerAssignmentId,
    #[diesel(serialize_as = String)]
    pub root_account_id: AccountId,
    #[diesel(serialize_as = String)]
    pub managed_user_id: UserId,
    #[diesel(serialize_as = String)]
    pub caretaker_user_id: UserId,
    #[diesel(serialize_as = String)]
    pub assigned_by: UserId,
    pub assigned_at: NaiveDateTime,
}

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = impersonations)]
pub struct ImpersonationRow {
    #[diesel(deserialize_as = String)]
    pub id: ImpersonationId,
    #[diesel(deserialize_as = String)]
    pub root_account_id: AccountId,
    #[diesel(deserialize_as = String)]
    pub actor_user_id: UserId,
    #[diesel(deserialize_as = String)]
    pub target_user_id: UserId,
    #[diesel(deserialize_as = String)]
    pub session_id: SessionId,
    #[diesel(deserialize_as = String)]
    pub mode: ImpersonationMode,
    pub reason: String,
    pub started_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub ended_at: Option<NaiveDateTime>,
    pub ended_by: Option<String>,
}

impl ImpersonationRow {
    /// Running, ended (by someone, or with its session), or past its expiry, as of `now`.
    pub fn state(&self, now: NaiveDateTime, session_revoked: bool) -> ImpersonationState {
        match self.ended_at {
            Some(_) => ImpersonationState::Ended,
            None if session_revoked => ImpersonationState::Ended,
            None if self.expires_at <= now => ImpersonationState::Expired,
            None => ImpersonationState::Active,
        }
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = impersonations)]
pub struct NewImpersonation {
    #[diesel(serialize_as = String)]
    pub id: ImpersonationId,
    #[diesel(serialize_as = String)]
    pub root_account_id: AccountId,
    #[diesel(serialize_as = String)]
    pub actor_user_id: UserId,
    #[diesel(serialize_as = String)]
    pub target_user_id: UserId,
    #[diesel(serialize_as = String)]
    pub session_id: SessionId,
    #[diesel(serialize_as = String)]
    pub mode: ImpersonationMode,
    pub reason: String,
    pub started_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = seat_ledger)]
pub struct SeatRow {
    #[diesel(deserialize_as = String)]
    pub id: SeatId,
    #[diesel(deserialize_as = String)]
    pub root_account_id: AccountId,
    #[diesel(deserialize_as = String)]
    pub membership_id: MembershipId,
    #[diesel(deserialize_as = String)]
    pub user_id: UserId,
    pub started_at: NaiveDateTime,
    pub ended_at: Option<NaiveDateTime>,
    pub end_reason: Option<String>,
}

impl SeatRow {
    pub fn end_reason(&self) -> Option<SeatEndReason> {
        self.end_reason.as_deref().and_then(SeatEndReason::parse)
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = seat_ledger)]
pub struct NewSeat {
    #[diesel(serialize_as = String)]
    pub id: SeatId,
    #[diesel(serialize_as = String)]
    pub root_account_id: AccountId,
    #[diesel(serialize_as = String)]
    pub membership_id: MembershipId,
    #[diesel(serialize_as = String)]
    pub user_id: UserId,
    pub started_at: NaiveDateTime,
}

/// A rate-limit window: how many events it counted for one bucket and subject.
#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = rate_limits)]
pub struct RateLimitRow {
    pub bucket: String,
    pub subject: String,
    pub hits: i32,
    pub window_start: NaiveDateTime,
    pub window_end: NaiveDateTime,
}

/// A kept response to an idempotent POST; `status` is `None` while the first request runs.
#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = idempotency_keys)]
pub struct IdempotencyRow {
    pub scope: String,
    pub idem_key: String,
    pub fingerprint: String,
    pub status: Option<i32>,
    pub content_type: Option<String>,
    pub location: Option<String>,
    pub body: Option<String>,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = contacts)]
pub struct ContactRow {
    #[diesel(deserialize_as = String)]
    pub id: ContactId,
    #[diesel(deserialize_as = String)]
    pub root_account_id: AccountId,
    #[diesel(deserialize_as = String)]
    pub account_id: AccountId,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company: Option<String>,
    #[diesel(deserialize_as = String)]
    pub subscriptions: Subscriptions,
    pub assigned_user_id: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl ContactRow {
    pub fn assignee(&self) -> Option<UserId> {
        self.assigned_user_id.clone().map(UserId::from)
    }
}

/// A contact's subscriptions, each once, in the order of [`ContactSubscription::ALL`];
/// stored as their names joined by commas (`''` for none).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subscriptions(Vec<ContactSubscription>);

impl Subscriptions {
    pub fn new(mut list: Vec<ContactSubscription>) -> Self {
        let rank = |s: &ContactSubscription| ContactSubscription::ALL.iter().position(|x| x == s);
        list.sort_by_key(rank);
        list.dedup();
        Self(list)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn list(&self) -> &[ContactSubscription] {
        &self.0
    }
}

/// Reading the column: a name this version does not know is an error, never dropped.
impl TryFrom<String> for Subscriptions {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        raw.split(',')
            .filter(|s| !s.is_empty())
            .map(|s| ContactSubscription::parse(s).ok_or_else(|| format!("unknown subscription {s:?}")))
            .collect::<Result<_, _>>()
            .map(Self::new)
    }
}

impl From<Subscriptions> for String {
    fn from(value: Subscriptions) -> String {
        value.0.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = contacts)]
pub struct NewContact {
    #[diesel(serialize_as = String)]
    pub id: ContactId,
    #[diesel(serialize_as = String)]
    pub root_account_id: AccountId,
    #[diesel(serialize_as = String)]
    pub account_id: AccountId,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company: Option<String>,
    #[diesel(serialize_as = String)]
    pub subscriptions: Subscriptions,
    pub assigned_user_id: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhook_endpoints)]
pub struct WebhookEndpointRow {
    pub id: String,
    pub root_account_id: String,
    pub url: String,
    /// Comma-separated event types, or `*`.
    pub event_types: String,
    pub secret: String,
    pub enabled: bool,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl WebhookEndpointRow {
    pub fn events(&self) -> Vec<&str> {
        self.event_types.split(',').filter(|e| !e.is_empty()).collect()
    }

    pub fn wants(&self, event: &str) -> bool {
        self.events().iter().any(|e| *e == "*" || *e == event)
    }
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_keys)]
pub struct ApiKeyRow {
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub id: ApiKeyId,
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub root_account_id: AccountId,
    pub name: String,
    pub secret_prefix: String,
    pub secret_hash: String,
    pub secret_issued_at: NaiveDateTime,
    pub previous_secret_hash: Option<String>,
    pub previous_valid_until: Option<NaiveDateTime>,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
    pub last_used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
    pub revoked_by: Option<String>,
    pub idempotency_key: Option<String>,
    pub request_fingerprint: Option<String>,
}

impl ApiKeyRow {
    /// Usable now: neither revoked nor expired.
    pub fn is_live(&self, now: NaiveDateTime) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| at > now)
    }
}

//! The identity flows that more than one entry point shares: creating an organization with
//! its owner (sign-up and `steward create-owner`) and opening a session.

use chrono::{Duration, NaiveDateTime};
use serde_json::json;

use crate::auth::secrets;
use crate::db::models::{
    AccountRow, BillingProfileRow, NewRefreshToken, NewSession, NewUser, RefreshTokenRow, SessionRow, UserRow,
};
use crate::db::repo::audit::{self, AuditContext, AuditEntry};
use crate::db::repo::{accounts, memberships, roles, sessions, users};
use crate::db::{is_unique_violation, DbConnection};
use crate::domain::permissions::BuiltinRole;
use crate::domain::{AuditAction, SeatEndReason};
use crate::domain::{Delegation, Email, UserStatus, Username};
use crate::error::{ApiError, ProblemKind};
use crate::ids::{AccountId, RefreshTokenId, SessionId, UserId};

/// What a new organization and its first owner need.
pub struct NewOrganization {
    pub organization_name: String,
    pub email: Email,
    pub username: Option<Username>,
    pub first_name: String,
    pub last_name: String,
    pub password_hash: String,
}

/// Creates the root account, its built-in roles, the owner and the owner's membership, and
/// audits it. Call inside one write transaction.
pub fn create_organization(
    conn: &mut DbConnection,
    input: &NewOrganization,
    request_id: Option<String>,
    now: NaiveDateTime,
) -> Result<(UserRow, AccountRow), ApiError> {
    ensure_identity_free(conn, &input.email, input.username.as_ref())?;
    let account = accounts::insert_root(conn, &input.organization_name, now)?;
    accounts::insert_billing_profile(
        conn,
        BillingProfileRow {
            account_id: account.id.to_string(),
            billing_email: Some(input.email.as_str().to_string()),
            plan: "free".into(),
            seat_price_cents: 0,
            currency: "USD".into(),
            cycle_start: Some(now.date().to_string()),
            updated_at: now,
        },
    )?;
    let builtin = roles::insert_builtins(conn, &account.id, now)?;
    let owner_role = builtin
        .iter()
        .find(|r| r.builtin == Some(BuiltinRole::Owner))
        .ok_or_else(|| ApiError::internal("built-in owner role missing"))?;

    let user_id = insert_person(
        conn,
        Person {
            email: &input.email,
            username: input.username.as_ref(),
            first_name: &input.first_name,
            last_name: &input.last_name,
            phone: None,
            password_hash: Some(&input.password_hash),
            must_change_password: false,
        },
        now,
    )?;
    let membership = memberships::insert(
        conn,
        memberships::new_active(&user_id, &account, now),
        std::slice::from_ref(&owner_role.id),
    )?;
    crate::service::seats::sync(conn, &membership, SeatEndReason::RolesChanged, now)?;

    let ctx = AuditContext {
        actor_api_key: None,
        actor: Some(user_id.to_string()),
        effective: Some(user_id.to_string()),
        account: Some(account.id.to_string()),
        request_id,
    };
    audit::record(
        conn,
        &ctx,
        AuditEntry {
            action: AuditAction::AccountCreated,
            target_type: "account",
            target_id: account.id.as_str(),
            details: json!({ "name": account.name }),
        },
        now,
    )?;
    audit::record(
        conn,
        &ctx,
        AuditEntry {
            action: AuditAction::UserCreated,
            target_type: "user",
            target_id: user_id.as_str(),
            details: json!({ "role": "owner" }),
        },
        now,
    )?;
    let user = users::find(conn, &user_id)?.ok_or_else(|| ApiError::internal("new user vanished"))?;
    Ok((user, account))
}

/// A person about to become a user.
pub struct Person<'a> {
    pub email: &'a Email,
    pub username: Option<&'a Username>,
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub phone: Option<&'a str>,
    /// `None`: no usable password yet (set through a reset link).
    pub password_hash: Option<&'a str>,
    /// Set for a user created by an administrator with an initial password.
    pub must_change_password: bool,
}

/// Inserts an active user with default preferences. A race with another insert of the same
/// email or username answers 409, like the checks before it.
pub fn insert_person(conn: &mut DbConnection, person: Person<'_>, now: NaiveDateTime) -> Result<UserId, ApiError> {
    let id = UserId::generate();
    let inserted = users::insert(
        conn,
        NewUser {
            id: id.clone(),
            email: person.email.as_str(),
            email_normalized: person.email.normalized(),
            username: person.username.map(Username::as_str),
            username_normalized: person.username.map(Username::normalized),
            first_name: person.first_name,
            last_name: person.last_name,
            phone: person.phone,
            password_hash: person.password_hash,
            must_change_password: person.must_change_password,
            status: UserStatus::Active,
            show_calendar: true,
            daily_email_reminders: false,
            created_at: now,
            updated_at: now,
        },
    );
    match inserted {
        Err(e) if is_unique_violation(&e) => {
            Err(ApiError::conflict("A user with this email or username already exists."))
        }
        other => other.map(|_| id).map_err(ApiError::from),
    }
}

/// Refuses an email or username that another user already has.
pub fn ensure_identity_free(
    conn: &mut DbConnection,
    email: &Email,
    username: Option<&Username>,
) -> Result<(), ApiError> {
    if users::email_taken(conn, email.normalized())? {
        return Err(ApiError::new(
            ProblemKind::EmailTaken,
            "A user with this email already exists; log in instead.",
        ));
    }
    if let Some(name) = username {
        if users::username_taken(conn, name.normalized())? {
            return Err(ApiError::new(
                ProblemKind::UsernameTaken,
                "This username is taken; choose another.",
            ));
        }
    }
    Ok(())
}

/// A new session and the first refresh token of its family. The plaintext refresh token is
/// returned once and stored only as a hash.
pub struct OpenedSession {
    pub session: SessionRow,
    pub refresh_token: String,
}

pub fn open_session(
    conn: &mut DbConnection,
    user: &UserId,
    account: Option<&AccountId>,
    refresh_ttl: std::time::Duration,
    now: NaiveDateTime,
) -> Result<OpenedSession, ApiError> {
    open_session_as(conn, user, account, None, refresh_ttl, now)
}

/// Like [`open_session`]; with `acting`, the real actor and the kind of delegation of a
/// session whose user is someone else (R8).
pub fn open_session_as(
    conn: &mut DbConnection,
    user: &UserId,
    account: Option<&AccountId>,
    acting: Option<(&UserId, Delegation)>,
    refresh_ttl: std::time::Duration,
    now: NaiveDateTime,
) -> Result<OpenedSession, ApiError> {
    let id = insert_session(conn, user, account, acting, now + to_chrono(refresh_ttl), now)?;
    let refresh_token = issue_refresh_token(conn, &id, refresh_ttl, now)?;
    let session = sessions::find(conn, &id)?.ok_or_else(|| ApiError::internal("new session vanished"))?;
    Ok(OpenedSession { session, refresh_token })
}

/// A session that ends at `expires_at` and can never be refreshed: it has no refresh token
/// (an impersonation, R9).
pub fn open_unrefreshable_session(
    conn: &mut DbConnection,
    user: &UserId,
    account: &AccountId,
    acting: (&UserId, Delegation),
    expires_at: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<SessionRow, ApiError> {
    let id = insert_session(conn, user, Some(account), Some(acting), expires_at, now)?;
    sessions::find(conn, &id)?.ok_or_else(|| ApiError::internal("new session vanished"))
}

fn insert_session(
    conn: &mut DbConnection,
    user: &UserId,
    account: Option<&AccountId>,
    acting: Option<(&UserId, Delegation)>,
    expires_at: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<SessionId, ApiError> {
    let id = SessionId::generate();
    let session = NewSession {
        id: id.clone(),
        user_id: user.clone(),
        account_id: account.map(|a| a.to_string()),
        actor_user_id: acting.map(|(actor, _)| actor.to_string()),
        delegation: acting.map(|(_, kind)| kind.as_str().to_string()),
        created_at: now,
        expires_at,
    };
    sessions::insert(conn, session)?;
    Ok(id)
}

/// Adds a refresh token to a session's family.
pub fn issue_refresh_token(
    conn: &mut DbConnection,
    session: &SessionId,
    refresh_ttl: std::time::Duration,
    now: NaiveDateTime,
) -> Result<String, ApiError> {
    let (token, row) = new_refresh_token(session, refresh_ttl, now);
    sessions::insert_refresh_token(conn, row)?;
    Ok(token)
}

/// Spends `spent` and hands its session a new refresh token, sliding the session's end to
/// the new token's; `None`, with nothing changed, when `spent` was spent already.
pub fn rotate_refresh_token(
    conn: &mut DbConnection,
    spent: &RefreshTokenRow,
    refresh_ttl: std::time::Duration,
    now: NaiveDateTime,
) -> Result<Option<String>, ApiError> {
    let (token, next) = new_refresh_token(&spent.session_id, refresh_ttl, now);
    let session_expires_at = next.expires_at;
    let rotated = sessions::rotate_refresh_token(conn, spent, session_expires_at, next, now)?;
    Ok(rotated.then_some(token))
}

/// A fresh refresh token's secret and the row that stores its digest.
fn new_refresh_token(
    session: &SessionId,
    refresh_ttl: std::time::Duration,
    now: NaiveDateTime,
) -> (String, NewRefreshToken) {
    let token = secrets::new_token();
    let row = NewRefreshToken {
        id: RefreshTokenId::generate(),
        session_id: session.clone(),
        token_hash: secrets::hash_token(&token),
        created_at: now,
        expires_at: now + to_chrono(refresh_ttl),
    };
    (token, row)
}

pub fn to_chrono(d: std::time::Duration) -> Duration {
    Duration::from_std(d).unwrap_or(Duration::MAX)
}

//! Sessions and the caller themself: signing up, logging in (R5), refreshing with rotation
//! and reuse detection, logging out, switching accounts, resetting and changing a password,
//! and who the caller really is (R8). Also what other capabilities share with these: the
//! accounts a user may pick, the tokens a session is handed, the password-changed notice.
//!
//! Password hashing runs on its own threads, never inside a transaction: a flow that checks
//! or sets a password reads what it needs in one call, lets the handler hash or verify, and
//! writes in a second call. The types that pass between the calls ([`LoginCandidate`],
//! [`VerifiedUser`], [`PendingReset`], [`PasswordCheck`]) carry the decision made so far.

use chrono::NaiveDateTime;
use serde_json::json;

use crate::auth::extract::Principal;
use crate::auth::policy;
use crate::auth::secrets;
use crate::auth::tokens::{SignedToken, Tokens};
use crate::client_addr::ClientAddr;
use crate::db::models::{AccountRow, MembershipRow, NewPasswordReset, PasswordResetRow, SessionRow, UserRow};
use crate::db::repo::audit::{self, AuditContext, AuditEntry};
use crate::db::repo::notifications::{self, Outgoing};
use crate::db::repo::{memberships, password_resets, sessions, users};
use crate::db::DbConnection;
use crate::domain::{AuditAction, Email, NewPassword, NotificationKind, RevokeReason, UserStatus, Username};
use crate::error::{ApiError, ProblemKind};
use crate::identity::{self, to_chrono, NewOrganization};
use crate::ids::{AccountId, PasswordResetId, UserId};
use crate::metrics::LoginFailure;
use crate::rate_limit::{self, Bucket};
use crate::service::{messages, Tx};

/// An organization a user can log in to: the membership, its root account, and the names
/// of the user's roles there.
pub type AccountChoice = (MembershipRow, AccountRow, Vec<String>);

/// The accounts a user can log in to, with their role names there.
pub fn account_choices(conn: &mut DbConnection, user: &UserRow) -> Result<Vec<AccountChoice>, ApiError> {
    let rows = memberships::usable_with_roles_for_user(conn, &user.id)?;
    Ok(choices_of(rows))
}

/// Folds the rows of usable memberships (a row for each role) into account choices.
fn choices_of(rows: Vec<memberships::UsableMembershipRow>) -> Vec<AccountChoice> {
    let mut choices: Vec<AccountChoice> = Vec::new();
    // A membership's rows are consecutive, its roles in name order.
    for (membership, root, role) in rows {
        if choices.last().is_none_or(|(last, _, _)| last.id != membership.id) {
            choices.push((membership, root, Vec::new()));
        }
        if let (Some(role), Some((_, _, names))) = (role, choices.last_mut()) {
            names.push(role.name);
        }
    }
    choices
}

/// What a session is handed: a signed access token, perhaps a refresh token, and the
/// accounts the user may pick.
pub struct IssuedTokens {
    pub access_token: String,
    pub expires_in: u64,
    pub refresh_token: Option<String>,
    pub user: UserRow,
    /// The account the access token is scoped to, if one is picked.
    pub account: Option<AccountRow>,
    /// The token has not picked an account yet (R5).
    pub account_selection_required: bool,
    pub choices: Vec<AccountChoice>,
}

/// Signs an access token for `session` and gathers what the response shows.
pub fn issue_tokens(
    tx: &mut Tx<'_>,
    session: &SessionRow,
    refresh_token: Option<String>,
    user: &UserRow,
) -> Result<IssuedTokens, ApiError> {
    let choices = account_choices(tx.conn, user)?;
    let signed = tx.tokens.issue(session, tx.now)?;
    issued(signed, session, refresh_token, user, choices)
}

/// Like [`issue_tokens`], for code that holds the parts of a transaction separately.
pub fn issue_tokens_with(
    conn: &mut DbConnection,
    tokens: &Tokens,
    now: NaiveDateTime,
    session: &SessionRow,
    refresh_token: Option<String>,
    user: &UserRow,
) -> Result<IssuedTokens, ApiError> {
    let choices = account_choices(conn, user)?;
    let signed = tokens.issue(session, now)?;
    issued(signed, session, refresh_token, user, choices)
}

/// A session's tokens before its access token is signed. Signing (Ed25519) needs nothing
/// from the database, so the busiest flows (login, refresh) sign after their transaction
/// has committed, outside SQLite's one write lock.
pub struct UnsignedTokens {
    session: SessionRow,
    now: NaiveDateTime,
    refresh_token: Option<String>,
    user: UserRow,
    choices: Vec<AccountChoice>,
}

impl UnsignedTokens {
    pub fn sign(self, tokens: &Tokens) -> Result<IssuedTokens, ApiError> {
        let signed = tokens.issue(&self.session, self.now)?;
        issued(signed, &self.session, self.refresh_token, &self.user, self.choices)
    }
}

fn issued(
    signed: SignedToken,
    session: &SessionRow,
    refresh_token: Option<String>,
    user: &UserRow,
    choices: Vec<AccountChoice>,
) -> Result<IssuedTokens, ApiError> {
    let account = session
        .account_id
        .as_deref()
        .and_then(|id| choices.iter().find(|(_, a, _)| a.id.as_str() == id))
        .map(|(_, a, _)| a.clone());
    Ok(IssuedTokens {
        access_token: signed.token,
        expires_in: signed.expires_in,
        refresh_token,
        user: user.clone(),
        account,
        account_selection_required: session.account_id.is_none(),
        choices,
    })
}

/// Tells the user their password changed, so that an unexpected change is noticed.
pub fn notify_password_changed(conn: &mut DbConnection, user: &UserRow, now: NaiveDateTime) -> Result<(), ApiError> {
    let text = messages::password_changed(&user.first_name);
    let message = Outgoing::to_user(NotificationKind::PasswordChanged, None, user, text, json!({}));
    notifications::enqueue(conn, message, now)?;
    Ok(())
}

/// The audit fields of a user acting for themself without a session yet (logging in,
/// resetting a password): they are both the actor and the effective user.
fn self_audit(user: &UserId, account: Option<String>, request_id: &str) -> AuditContext {
    AuditContext {
        actor_api_key: None,
        actor: Some(user.to_string()),
        effective: Some(user.to_string()),
        account,
        request_id: Some(request_id.to_string()),
    }
}

/// Audits a change to `target` (kind and id) in the caller's transaction (R13).
fn audit(
    tx: &mut Tx<'_>,
    ctx: &AuditContext,
    action: AuditAction,
    (target_type, target_id): (&str, &str),
    details: serde_json::Value,
) -> Result<(), ApiError> {
    let entry = AuditEntry {
        action,
        target_type,
        target_id,
        details,
    };
    Ok(audit::record(tx.conn, ctx, entry, tx.now)?)
}

// ---- sign-up ----

/// A new organization and its owner, as sign-up asks for them.
pub struct SignUp {
    pub organization_name: String,
    pub email: Email,
    pub username: Option<Username>,
    pub first_name: String,
    pub last_name: String,
    pub password: NewPassword,
}

/// Counts a sign-up against the client's address, before any hashing; refused (429) when
/// the address has signed up too often. Every attempt counts, a refused one included.
pub fn admit_sign_up(tx: &mut Tx<'_>, client: &ClientAddr) -> Result<(), ApiError> {
    let limit = tx.config.limits.signup_per_address;
    let verdict = rate_limit::take(tx.conn, Bucket::SignupAddress, limit, &client.subject(), tx.now)?;
    tx.within_limit(verdict)
}

/// Creates the organization, its built-in roles and its owner (hashed password given), and
/// logs the owner in. Whether sign-up is open at all is `policy::sign_up`, asked before
/// any hashing.
pub fn sign_up(
    tx: &mut Tx<'_>,
    cmd: SignUp,
    password_hash: String,
    request_id: &str,
) -> Result<IssuedTokens, ApiError> {
    let input = NewOrganization {
        organization_name: cmd.organization_name,
        email: cmd.email,
        username: cmd.username,
        first_name: cmd.first_name,
        last_name: cmd.last_name,
        password_hash,
    };
    let (user, account) = identity::create_organization(tx.conn, &input, Some(request_id.to_string()), tx.now)?;
    let opened = identity::open_session(
        tx.conn,
        &user.id,
        Some(&account.id),
        tx.config.refresh_token_ttl,
        tx.now,
    )?;
    issue_tokens(tx, &opened.session, Some(opened.refresh_token), &user)
}

// ---- login (R5) ----

/// An account a request names by id: a well-formed id, or text that names no account at
/// all, which answers like an unknown one (404, R1).
#[derive(Clone, Debug)]
pub enum NamedAccount {
    Id(AccountId),
    Malformed,
}

impl NamedAccount {
    pub fn parse(raw: &str) -> Self {
        AccountId::parse(raw).map_or(Self::Malformed, Self::Id)
    }

    fn id(&self) -> Result<&AccountId, ApiError> {
        match self {
            Self::Id(id) => Ok(id),
            Self::Malformed => Err(ApiError::not_found("account")),
        }
    }
}

/// Who a login names: an identifier with `@` is an email (a username cannot hold one),
/// anything else a username; both compared in lower case.
#[derive(Clone, Debug)]
pub enum LoginIdentifier {
    Email(String),
    Username(String),
}

impl LoginIdentifier {
    pub fn parse(raw: &str) -> Self {
        let normalized = raw.trim().to_lowercase();
        if normalized.contains('@') {
            Self::Email(normalized)
        } else {
            Self::Username(normalized)
        }
    }

    /// What the per-account limit counts under: the normalized identifier, whether or not
    /// anyone has it (an email holds `@`, a username cannot, so the two never meet).
    fn subject(&self) -> &str {
        match self {
            Self::Email(s) | Self::Username(s) => s,
        }
    }
}

/// A login: who, with which password, and perhaps which account at once.
pub struct LogIn {
    pub identifier: LoginIdentifier,
    pub password: String,
    pub account: Option<NamedAccount>,
}

/// The user a login names, read before the password is checked, and where the attempt
/// comes from.
pub struct LoginCandidate {
    user: Option<UserRow>,
    address: String,
}

/// A user whose password matched; only [`LoginCandidate::verified`] makes one.
pub struct VerifiedUser(UserRow);

impl LoginCandidate {
    /// The hash to check the password against. None for an unknown or archived user or one
    /// without a password: the check then burns the same time on the dummy hash and fails,
    /// so the answer does not tell who exists.
    pub fn stored_hash(&self) -> Option<String> {
        self.user
            .as_ref()
            .filter(|u| u.status == UserStatus::Active)
            .and_then(|u| u.password_hash.clone())
    }

    /// The user, if the password matched; otherwise the failed attempt, to be audited with
    /// [`record_failed_login`] and answered with [`FailedLogin::answer`].
    pub fn verified(self, password_ok: bool) -> Result<VerifiedUser, FailedLogin> {
        match self.user {
            Some(user) if password_ok => Ok(VerifiedUser(user)),
            other => Err(FailedLogin {
                user: other.map(Box::new),
                address: self.address,
            }),
        }
    }
}

/// A login refused: the user it named, if any (their password was wrong, or they cannot log
/// in with one at all), and the address it came from.
pub struct FailedLogin {
    user: Option<Box<UserRow>>,
    address: String,
}

impl FailedLogin {
    /// The one answer for a wrong identifier and a wrong password alike: it must not tell
    /// whether the account exists.
    pub fn answer(&self) -> ApiError {
        ApiError::invalid_credentials()
    }
}

/// Audits a failed login and counts it against the client's address (nothing else
/// changes; the identifier's count was taken when the attempt began). A known user gets one `auth.login_failed`
/// event in each organization they are an active member of (else one outside any), with no
/// actor: nobody was authenticated. An unknown identifier gets one event that names nothing
/// (no account, no target, no address): the work done, one small write, is the same either
/// way, so its timing does not tell who exists either.
pub fn record_failed_login(tx: &mut Tx<'_>, failed: FailedLogin, request_id: &str) -> Result<(), ApiError> {
    let ctx = |account: Option<String>| AuditContext {
        actor_api_key: None,
        account,
        request_id: Some(request_id.to_string()),
        ..AuditContext::default()
    };
    let limit = tx.config.limits.login_per_address;
    rate_limit::count(tx.conn, Bucket::LoginAddress, limit, &failed.address, tx.now)?;
    let Some(user) = failed.user else {
        tx.metrics.login_failed(LoginFailure::UnknownUser);
        let details = json!({ "reason": LoginFailure::UnknownUser.as_str() });
        audit::record_untargeted(tx.conn, &ctx(None), AuditAction::AuthLoginFailed, details, tx.now)?;
        return Ok(());
    };
    let failure = match (user.status, &user.password_hash) {
        (UserStatus::Active, Some(_)) => LoginFailure::WrongPassword,
        (UserStatus::Active, None) => LoginFailure::NoPassword,
        _ => LoginFailure::UserNotActive,
    };
    tx.metrics.login_failed(failure);
    let reason = failure.as_str();
    let mut roots: Vec<String> = memberships::usable_for_user(tx.conn, &user.id)?
        .into_iter()
        .map(|(_, root)| root.id.to_string())
        .collect();
    roots.sort();
    roots.dedup();
    let accounts: Vec<Option<String>> = if roots.is_empty() {
        vec![None]
    } else {
        roots.into_iter().map(Some).collect()
    };
    for account in accounts {
        let target = ("user", user.id.as_str());
        audit(
            tx,
            &ctx(account),
            AuditAction::AuthLoginFailed,
            target,
            json!({ "reason": reason }),
        )?;
    }
    Ok(())
}

/// First half of a login, before the password is checked: refused at once (429) while the
/// client's address has too many failed logins or the identifier too many attempts, known
/// user or not; otherwise the attempt is counted against the identifier in the same atomic
/// step (so a concurrent burst gets no more than the limit through; a success clears the
/// count again) and the user it names is read.
pub fn start_login(
    tx: &mut Tx<'_>,
    identifier: &LoginIdentifier,
    client: &ClientAddr,
) -> Result<LoginCandidate, ApiError> {
    let limits = &tx.config.limits;
    let (per_address, per_account) = (limits.login_per_address, limits.login_per_account);
    let address = client.subject();
    let verdict = rate_limit::check(tx.conn, Bucket::LoginAddress, per_address, &address, tx.now)?;
    login_within_limit(tx, verdict)?;
    let verdict = rate_limit::take(tx.conn, Bucket::LoginAccount, per_account, identifier.subject(), tx.now)?;
    login_within_limit(tx, verdict)?;
    let user = match identifier {
        LoginIdentifier::Email(email) => users::find_by_email(tx.conn, email)?,
        LoginIdentifier::Username(name) => users::find_by_username(tx.conn, name)?,
    };
    Ok(LoginCandidate { user, address })
}

/// A login a rate limit refuses is a failed login too (`throttled`).
fn login_within_limit(tx: &Tx<'_>, verdict: rate_limit::Verdict) -> Result<(), ApiError> {
    if verdict.is_err() {
        tx.metrics.login_failed(LoginFailure::Throttled);
    }
    tx.within_limit(verdict)
}

/// Counts a login refused after the right password, and gives its refusal.
fn login_refused(tx: &Tx<'_>, reason: LoginFailure, refusal: ApiError) -> ApiError {
    tx.metrics.login_failed(reason);
    refusal
}

/// Opens a session for a verified user (second half of a login), scoped to the account
/// asked for, to the only one, or to none yet when there are several to pick from (R5).
///
/// The right password clears the failures counted against the user's email and username,
/// and that commits even when the login is then refused (the inner error: no account to
/// pick, or not theirs), since nobody was guessing.
pub fn log_in(
    tx: &mut Tx<'_>,
    user: VerifiedUser,
    account: Option<NamedAccount>,
    request_id: &str,
) -> Result<Result<UnsignedTokens, ApiError>, ApiError> {
    let VerifiedUser(user) = user;
    rate_limit::clear(tx.conn, Bucket::LoginAccount, &user.email_normalized)?;
    if let Some(username) = &user.username_normalized {
        rate_limit::clear(tx.conn, Bucket::LoginAccount, username)?;
    }
    let wanted = match account.as_ref().map(NamedAccount::id).transpose() {
        Ok(wanted) => wanted,
        Err(refused) => return Ok(Err(login_refused(tx, LoginFailure::UnknownAccount, refused))),
    };
    // Organizations where a caretaker manages the user are closed to them (R7).
    let choices = match crate::service::caretakers::login_choices(tx.conn, &user) {
        Ok(choices) => choices,
        Err(e) if e.kind() == ProblemKind::AccountManaged => {
            return Err(login_refused(tx, LoginFailure::ManagedAccount, e))
        }
        Err(e) => return Err(e),
    };
    let account = match policy::login_account(&choices, wanted) {
        Ok(account) => account,
        Err(refused) if choices.is_empty() => return Ok(Err(login_refused(tx, LoginFailure::NoAccount, refused))),
        Err(refused) => return Ok(Err(login_refused(tx, LoginFailure::UnknownAccount, refused))),
    };
    let ttl = tx.config.refresh_token_ttl;
    let opened = identity::open_session(tx.conn, &user.id, account.as_ref(), ttl, tx.now)?;
    let ctx = self_audit(&user.id, account.map(|a| a.to_string()), request_id);
    audit(
        tx,
        &ctx,
        AuditAction::AuthLogin,
        ("session", opened.session.id.as_str()),
        json!({}),
    )?;
    Ok(Ok(UnsignedTokens {
        session: opened.session,
        now: tx.now,
        refresh_token: Some(opened.refresh_token),
        user,
        choices,
    }))
}

// ---- refresh: rotation and reuse detection ----

/// Exchanges a refresh token for new tokens. Every refresh token works once; presenting a
/// spent one again means it was stolen or replayed, and its whole family (the session) is
/// revoked.
///
/// The outer error is a failure of the transaction; the inner one a refusal, and what the
/// refusal records (a token spent, a family revoked for reuse) commits all the same.
///
/// Each change is one statement, or made [`Tx::atomically`]: it runs in
/// [`crate::service::write_statements`].
pub fn refresh(
    tx: &mut Tx<'_>,
    refresh_token: &str,
    request_id: &str,
) -> Result<Result<UnsignedTokens, ApiError>, ApiError> {
    let invalid = || {
        Err(ApiError::unauthenticated(
            "The refresh token is not valid; log in again.",
        ))
    };
    let hash = secrets::hash_token(refresh_token);
    let Some(sessions::FoundRefreshToken {
        token,
        mut session,
        user,
        usable_memberships,
    }) = sessions::find_refresh_token_with_memberships(tx.conn, &hash)?
    else {
        return Ok(invalid());
    };
    if !live(&session, tx.now) {
        return Ok(invalid());
    }
    // A token presented is spent, whether it is then refused or rotated: presented again, it
    // is a reuse.
    let usable = token.expires_at > tx.now && user.status == UserStatus::Active;
    let choices = if usable {
        choices_of(usable_memberships)
    } else {
        Vec::new()
    };
    let own_account = session
        .account()
        .is_none_or(|account| policy::own_account(&choices, &account).is_ok());
    if !(usable && own_account) {
        if !sessions::spend_refresh_token(tx.conn, &token, tx.now)? {
            return reused(tx, &session, request_id);
        }
        return Ok(invalid());
    }
    let ttl = tx.config.refresh_token_ttl;
    let Some(next) = identity::rotate_refresh_token(tx.conn, &token, ttl, tx.now)? else {
        return reused(tx, &session, request_id);
    };
    // Slid forward with the new token (see `identity::rotate_refresh_token`).
    session.expires_at = tx.now + to_chrono(ttl);
    Ok(Ok(UnsignedTokens {
        session,
        now: tx.now,
        refresh_token: Some(next),
        user,
        choices,
    }))
}

/// A spent refresh token presented again: its family is revoked.
fn reused(
    tx: &mut Tx<'_>,
    session: &SessionRow,
    request_id: &str,
) -> Result<Result<UnsignedTokens, ApiError>, ApiError> {
    tx.atomically(|tx| revoke_reused_family(tx, session, request_id))?;
    Ok(Err(ApiError::unauthenticated(
        "This refresh token was already used; the session has been ended for safety. Log in again.",
    )))
}

fn live(session: &SessionRow, now: NaiveDateTime) -> bool {
    session.revoked_at.is_none() && session.expires_at > now
}

fn revoke_reused_family(tx: &mut Tx<'_>, session: &SessionRow, request_id: &str) -> Result<(), ApiError> {
    sessions::revoke(tx.conn, &session.id, RevokeReason::RefreshTokenReused, tx.now)?;
    let ctx = AuditContext {
        actor_api_key: None,
        actor: Some(session.actor().unwrap_or_else(|| session.user_id.clone()).to_string()),
        effective: Some(session.user_id.to_string()),
        account: session.account_id.clone(),
        request_id: Some(request_id.to_string()),
    };
    let details = json!({ "revoked": true });
    audit(
        tx,
        &ctx,
        AuditAction::AuthRefreshTokenReused,
        ("session", session.id.as_str()),
        details,
    )
}

// ---- logout and switching accounts ----

/// Ends the caller's session: its access tokens stop working and its refresh tokens with it.
pub fn log_out(tx: &mut Tx<'_>, caller: &Principal) -> Result<(), ApiError> {
    let person = policy::require_person(caller, "log out (revoke the key instead)")?;
    if person.delegation == Some(crate::domain::Delegation::Impersonation) {
        crate::service::impersonations::end_own(tx, caller)?;
    }
    sessions::revoke(tx.conn, &person.session.id, RevokeReason::Logout, tx.now)?;
    let target = ("session", person.session.id.as_str());
    audit(tx, &caller.audit(), AuditAction::AuthLogout, target, json!({}))
}

/// Points the caller's session at another of their accounts, without a password (R5). A
/// delegated session cannot (R8). The refresh token the caller holds stays valid.
pub fn switch_account(tx: &mut Tx<'_>, caller: &Principal, target: NamedAccount) -> Result<IssuedTokens, ApiError> {
    let person = policy::require_person(caller, "switch accounts")?;
    policy::forbid_delegated(caller, "switch accounts")?;
    let target = target.id()?;
    let choices = crate::service::caretakers::login_choices(tx.conn, &person.user)?;
    policy::own_account(&choices, target)?;
    let sid = &person.session.id;
    sessions::rescope(tx.conn, sid, target)?;
    let mut ctx = caller.audit();
    ctx.account = Some(target.to_string());
    let details = json!({ "from": person.session.account_id });
    audit(
        tx,
        &ctx,
        AuditAction::AuthAccountSwitched,
        ("session", sid.as_str()),
        details,
    )?;
    let session = sessions::find(tx.conn, sid)?.ok_or_else(|| ApiError::internal("session vanished"))?;
    let signed = tx.tokens.issue(&session, tx.now)?;
    issued(signed, &session, None, &person.user, choices)
}

// ---- password reset ----

/// Counts a reset request against the client's address and the email address, whoever has
/// it; refused (429) when either has asked too often. Decided before the request is
/// answered, and the same work for a known and an unknown address.
pub fn admit_password_reset(tx: &mut Tx<'_>, email: &Email, client: &ClientAddr) -> Result<(), ApiError> {
    let limits = &tx.config.limits;
    let (per_address, per_email) = (limits.reset_per_address, limits.reset_per_email);
    let verdict = rate_limit::take(tx.conn, Bucket::ResetAddress, per_address, &client.subject(), tx.now)?;
    tx.within_limit(verdict)?;
    let verdict = rate_limit::take(tx.conn, Bucket::ResetEmail, per_email, email.normalized(), tx.now)?;
    tx.within_limit(verdict)
}

/// Mails a single-use reset link to an active user with this address; does nothing for any
/// other address. Run after the request is answered, so known and unknown addresses take
/// the same time.
pub fn request_password_reset(tx: &mut Tx<'_>, email: &Email, request_id: &str) -> Result<(), ApiError> {
    let Some(user) = users::find_by_email(tx.conn, email.normalized())?.filter(|u| u.status == UserStatus::Active)
    else {
        return Ok(());
    };
    let (id, link, expires_at) = new_reset_link(tx, &user.id)?;
    let minutes = tx.config.password_reset_ttl.as_secs() / 60;
    let text = messages::password_reset(&user.first_name, &link, minutes);
    let payload = json!({ "link": link, "expires_at": expires_at.and_utc() });
    let message = Outgoing::to_user(NotificationKind::PasswordReset, None, &user, text, payload);
    notifications::enqueue(tx.conn, message, tx.now)?;
    let ctx = self_audit(&user.id, None, request_id);
    let details = json!({ "reset_id": id });
    audit(
        tx,
        &ctx,
        AuditAction::AuthPasswordResetRequested,
        ("user", user.id.as_str()),
        details,
    )
}

/// A single-use link that sets the user's password, valid for the configured time; every
/// older link of theirs stops working. Returns its id, the link and its expiry.
pub fn new_reset_link(tx: &mut Tx<'_>, user: &UserId) -> Result<(PasswordResetId, String, NaiveDateTime), ApiError> {
    password_resets::spend_all_for_user(tx.conn, user, None, tx.now)?;
    let token = secrets::new_token();
    let id = PasswordResetId::generate();
    let expires_at = tx.now + to_chrono(tx.config.password_reset_ttl);
    let reset = NewPasswordReset {
        id: id.clone(),
        user_id: user.clone(),
        token_hash: secrets::hash_token(&token),
        created_at: tx.now,
        expires_at,
    };
    password_resets::insert(tx.conn, reset)?;
    let link = format!("{}/reset-password?token={token}", tx.config.public_url);
    Ok((id, link, expires_at))
}

/// Setting a new password with a reset link's token.
pub struct ConfirmReset {
    pub token: String,
    pub new_password: NewPassword,
}

/// A reset link found unspent and unexpired, before the new password is hashed.
pub struct PendingReset(PasswordResetRow);

fn invalid_reset() -> ApiError {
    ApiError::invalid_token("The reset link is not valid or has expired; ask for a new one.")
}

/// Finds the reset link a token belongs to, if it still works (first half of a confirm).
pub fn pending_reset(tx: &mut Tx<'_>, token: &str) -> Result<PendingReset, ApiError> {
    password_resets::find_by_hash(tx.conn, &secrets::hash_token(token))?
        .filter(|r| r.used_at.is_none() && r.expires_at > tx.now)
        .map(PendingReset)
        .ok_or_else(invalid_reset)
}

/// Sets the new (hashed) password, spends the link (only one confirm can succeed) and every
/// other link of the user, and ends every session of the user.
pub fn reset_password(
    tx: &mut Tx<'_>,
    reset: PendingReset,
    password_hash: &str,
    request_id: &str,
) -> Result<(), ApiError> {
    let PendingReset(reset) = reset;
    let user = users::find(tx.conn, &reset.user_id)?
        .filter(|u| u.status == UserStatus::Active)
        .ok_or_else(invalid_reset)?;
    if !password_resets::spend_all_for_user(tx.conn, &user.id, Some(&reset.token_hash), tx.now)? {
        return Err(invalid_reset());
    }
    users::set_password(tx.conn, &user.id, password_hash, tx.now)?;
    sessions::revoke_all_for_user(tx.conn, &user.id, None, RevokeReason::PasswordReset, tx.now)?;
    let ctx = self_audit(&user.id, None, request_id);
    audit(
        tx,
        &ctx,
        AuditAction::AuthPasswordReset,
        ("user", user.id.as_str()),
        json!({}),
    )?;
    notify_password_changed(tx.conn, &user, tx.now)
}

// ---- the caller themself ----

/// Changing one's own password: the current one, and the new one.
pub struct ChangePassword {
    pub current_password: String,
    pub new_password: NewPassword,
}

/// A password change allowed so far, before the current password is checked.
pub struct PasswordCheck(Option<String>);

/// A password change allowed in full; only [`PasswordCheck::verified`] makes one.
pub struct ApprovedChange(());

impl PasswordCheck {
    /// The hash to check the current password against.
    pub fn stored_hash(&self) -> Option<String> {
        self.0.clone()
    }

    /// The change, if the current password matched.
    pub fn verified(self, current_ok: bool) -> Result<ApprovedChange, ApiError> {
        if !current_ok {
            return Err(ApiError::field(
                "current_password",
                "mismatch",
                "is not your current password",
            ));
        }
        Ok(ApprovedChange(()))
    }
}

/// What is decided before any hashing (first half of a change): a session acting as
/// another user cannot change that user's password (R8), and the new password must differ.
pub fn start_password_change(caller: &Principal, cmd: &ChangePassword) -> Result<PasswordCheck, ApiError> {
    let person = policy::require_person(caller, "change a password")?;
    policy::forbid_delegated(caller, "change the user's password")?;
    if cmd.current_password == cmd.new_password.expose() {
        return Err(ApiError::field(
            "new_password",
            "unchanged",
            "must differ from the current password",
        ));
    }
    Ok(PasswordCheck(person.user.password_hash.clone()))
}

/// Sets the caller's new (hashed) password and ends every other session of theirs; this
/// one stays (second half of a change).
pub fn change_password(
    tx: &mut Tx<'_>,
    caller: &Principal,
    _approved: ApprovedChange,
    password_hash: &str,
) -> Result<(), ApiError> {
    let person = policy::require_person(caller, "change a password")?;
    let user = &person.user;
    users::set_password(tx.conn, &user.id, password_hash, tx.now)?;
    let reason = RevokeReason::PasswordChanged;
    let ended = sessions::revoke_all_for_user(tx.conn, &user.id, Some(&person.session.id), reason, tx.now)?;
    let details = json!({ "sessions_ended": ended });
    audit(
        tx,
        &caller.audit(),
        AuditAction::UserPasswordChanged,
        ("user", user.id.as_str()),
        details,
    )?;
    notify_password_changed(tx.conn, user, tx.now)
}

/// The real person behind a delegated session (R8), for the banner. Their disappearance
/// ends the session.
pub fn real_actor(tx: &mut Tx<'_>, actor: &UserId) -> Result<UserRow, ApiError> {
    users::find(tx.conn, actor)?.ok_or_else(|| ApiError::unauthenticated("The session has ended; log in again."))
}

//! API keys: machine credentials of an organization. Owners and admins create them with
//! roles (never more than they hold, R4, and never the owner role), see the secret once,
//! list them with their last use, rotate (optionally keeping the previous secret for a grace
//! period) and revoke them; revocation takes effect on the next request. A key
//! authenticates requests directly or is exchanged for a short-lived access token (OAuth 2.0
//! client-credentials grant). A key acts as itself: audit events name it as the actor.

use chrono::{Duration, NaiveDateTime};
use serde_json::json;

use crate::auth::extract::Principal;
use crate::auth::policy;
use crate::auth::secrets::{api_key_shown_part, hash_token, new_api_key};
use crate::auth::tokens::SignedToken;
use crate::db::models::{ApiKeyRow, RoleRow};
use crate::db::repo::api_keys;
use crate::db::repo::audit::{self, AuditContext, AuditEntry};
use crate::domain::AuditAction;
use crate::error::{ApiError, ProblemKind};
use crate::ids::ApiKeyId;
use crate::service::roles as roles_svc;
use crate::service::Tx;

/// The longest a rotated-out secret may keep working.
pub const MAX_GRACE: Duration = Duration::hours(24);

/// A key to create, as the handler parsed it.
pub struct NewKey {
    pub name: String,
    pub role_ids: Vec<String>,
    pub expires_at: Option<NaiveDateTime>,
    /// The request's `Idempotency-Key`, if it sent one.
    pub idempotency_key: Option<String>,
}

impl NewKey {
    /// What a retry must repeat: the name, the roles and the expiry.
    fn fingerprint(&self) -> String {
        let mut roles = self.role_ids.clone();
        roles.sort_unstable();
        hash_token(&json!([self.name, roles, self.expires_at]).to_string())
    }
}

/// A key and the roles it holds.
pub struct KeyWithRoles {
    pub key: ApiKeyRow,
    pub roles: Vec<RoleRow>,
}

/// A key with its new secret, shown this once.
pub struct IssuedKey {
    pub key: KeyWithRoles,
    pub secret: String,
    /// The answer to a retry (same `Idempotency-Key`, same request): the key created the
    /// first time, with a fresh secret.
    pub replayed: bool,
}

/// Creates a key; the secret is in the result and nowhere else.
pub fn create(tx: &mut Tx<'_>, caller: &Principal, cmd: NewKey) -> Result<IssuedKey, ApiError> {
    let caller = tx.lock_tenant(caller)?;
    let tenant = policy::require_api_keys(&caller)?;
    let granted = roles_svc::resolve(tx.conn, &tenant.root, &cmd.role_ids)?;
    policy::require_key_roles(tenant, &granted)?;
    let person = policy::require_person(&caller, "create API keys")?;
    let fingerprint = cmd.fingerprint();
    if let Some(retry) = &cmd.idempotency_key {
        if let Some(first) = api_keys::by_idempotency_key(tx.conn, &tenant.root, &person.user.id, retry)? {
            if first.created_at > tx.now - IDEMPOTENCY_WINDOW {
                return replay(tx, &caller, first, &fingerprint);
            }
            api_keys::forget_idempotency_key(tx.conn, &first.id)?;
        }
    }
    if cmd.expires_at.is_some_and(|at| at <= tx.now) {
        return Err(ApiError::field("expires_at", "past", "must be in the future"));
    }
    let secret = new_api_key();
    let row = ApiKeyRow {
        id: ApiKeyId::generate(),
        root_account_id: tenant.root.clone(),
        name: cmd.name,
        secret_prefix: api_key_shown_part(&secret),
        secret_hash: hash_token(&secret),
        secret_issued_at: tx.now,
        previous_secret_hash: None,
        previous_valid_until: None,
        created_by: person.user.id.to_string(),
        created_at: tx.now,
        expires_at: cmd.expires_at,
        last_used_at: None,
        revoked_at: None,
        revoked_by: None,
        idempotency_key: cmd.idempotency_key.clone(),
        request_fingerprint: Some(fingerprint),
    };
    let role_ids: Vec<_> = granted.iter().map(|(role, _)| role.id.clone()).collect();
    api_keys::insert(tx.conn, &row, &role_ids)?;
    let roles: Vec<RoleRow> = granted.into_iter().map(|(role, _)| role).collect();
    let names: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
    let details = json!({ "name": row.name, "roles": names, "expires_at": row.expires_at });
    record(tx, &caller.audit(), AuditAction::ApiKeyCreated, &row.id, details)?;
    Ok(IssuedKey {
        key: KeyWithRoles { key: row, roles },
        secret,
        replayed: false,
    })
}

/// How long a create's `Idempotency-Key` is honoured, as for every other create.
const IDEMPOTENCY_WINDOW: Duration = Duration::hours(24);

/// A retried create: the same key again. Its secret was never kept, so the retry gets a new
/// one and the first stops working (whoever lost the first answer never held it). A
/// different request with the same Idempotency-Key is refused, as everywhere.
fn replay(tx: &mut Tx<'_>, caller: &Principal, first: ApiKeyRow, fingerprint: &str) -> Result<IssuedKey, ApiError> {
    if first.request_fingerprint.as_deref() != Some(fingerprint) {
        return Err(ApiError::new(
            ProblemKind::IdempotencyKeyReused,
            "This Idempotency-Key was used for a different request; use a new key for a new request.",
        ));
    }
    if first.revoked_at.is_some() {
        return Err(ApiError::new(
            ProblemKind::Conflict,
            "The API key created with this Idempotency-Key has been revoked since.",
        ));
    }
    let secret = new_api_key();
    let prefix = api_key_shown_part(&secret);
    api_keys::replace_secret(tx.conn, &first, &prefix, &hash_token(&secret), None, tx.now)?;
    let details = json!({ "grace_seconds": 0, "idempotent_replay": true });
    record(tx, &caller.audit(), AuditAction::ApiKeyRotated, &first.id, details)?;
    let key = api_keys::find(tx.conn, &first.root_account_id, &first.id)?
        .ok_or_else(|| ApiError::internal("API key vanished"))?;
    let roles = api_keys::roles_of(tx.conn, &key.id)?;
    Ok(IssuedKey {
        key: KeyWithRoles { key, roles },
        secret,
        replayed: true,
    })
}

/// The organization's keys, revoked and expired ones included, oldest first.
pub fn list(tx: &mut Tx<'_>, caller: &Principal) -> Result<Vec<KeyWithRoles>, ApiError> {
    let root = policy::require_api_keys(caller)?.root.clone();
    let keys = api_keys::list(tx.conn, &root)?;
    let ids: Vec<String> = keys.iter().map(|k| k.id.to_string()).collect();
    let held = api_keys::roles_of_many(tx.conn, &ids)?;
    Ok(keys
        .into_iter()
        .map(|key| KeyWithRoles {
            roles: roles_svc::held_by(&held, key.id.as_str()),
            key,
        })
        .collect())
}

pub fn get(tx: &mut Tx<'_>, caller: &Principal, id: &ApiKeyId) -> Result<KeyWithRoles, ApiError> {
    load(tx, caller, id)
}

fn load(tx: &mut Tx<'_>, caller: &Principal, id: &ApiKeyId) -> Result<KeyWithRoles, ApiError> {
    let root = policy::require_api_keys(caller)?.root.clone();
    let key = api_keys::find(tx.conn, &root, id)?.ok_or_else(|| ApiError::not_found("API key"))?;
    let roles = api_keys::roles_of(tx.conn, &key.id)?;
    Ok(KeyWithRoles { key, roles })
}

/// A key the caller may rotate or revoke: theirs to manage (R4) and not revoked.
fn load_to_manage(tx: &mut Tx<'_>, caller: &Principal, id: &ApiKeyId) -> Result<KeyWithRoles, ApiError> {
    let found = load(tx, caller, id)?;
    let tenant = policy::require_api_keys(caller)?;
    let permissions = roles_svc::permissions_of(tx.conn, &found.roles)?;
    policy::require_manage_key(tenant, &permissions)?;
    if found.key.revoked_at.is_some() {
        return Err(ApiError::new(ProblemKind::Conflict, "The API key is revoked."));
    }
    Ok(found)
}

/// Gives a key a new secret. The previous secret, and access tokens exchanged with it, stop
/// working at once, or after `grace` (at most [`MAX_GRACE`]) so that an integration can
/// switch without downtime.
pub fn rotate(tx: &mut Tx<'_>, caller: &Principal, id: &ApiKeyId, grace_seconds: i64) -> Result<IssuedKey, ApiError> {
    let caller = tx.lock_tenant(caller)?;
    let found = load_to_manage(tx, &caller, id)?;
    if !(0..=MAX_GRACE.num_seconds()).contains(&grace_seconds) {
        return Err(ApiError::field("grace_seconds", "range", "must be 0 to 86400 seconds"));
    }
    let grace = Duration::seconds(grace_seconds);
    let secret = new_api_key();
    let previous_valid_until = (grace > Duration::zero()).then(|| tx.now + grace);
    let prefix = api_key_shown_part(&secret);
    api_keys::replace_secret(
        tx.conn,
        &found.key,
        &prefix,
        &hash_token(&secret),
        previous_valid_until,
        tx.now,
    )?;
    let details = json!({ "grace_seconds": grace.num_seconds() });
    record(tx, &caller.audit(), AuditAction::ApiKeyRotated, &found.key.id, details)?;
    let key = api_keys::find(tx.conn, &found.key.root_account_id, id)?
        .ok_or_else(|| ApiError::internal("API key vanished"))?;
    Ok(IssuedKey {
        key: KeyWithRoles {
            key,
            roles: found.roles,
        },
        secret,
        replayed: false,
    })
}

/// Revokes a key: it, and every access token exchanged for it, stops working at once.
pub fn revoke(tx: &mut Tx<'_>, caller: &Principal, id: &ApiKeyId) -> Result<(), ApiError> {
    let caller = tx.lock_tenant(caller)?;
    let found = load_to_manage(tx, &caller, id)?;
    api_keys::revoke(tx.conn, &found.key.id, caller.user_id(), tx.now)?;
    let details = json!({ "name": found.key.name });
    record(tx, &caller.audit(), AuditAction::ApiKeyRevoked, &found.key.id, details)
}

/// The client-credentials grant (RFC 6749 §4.4): a live key's secret, and the key's id when
/// the client names it, buy a short-lived access token. Every failure is the same
/// `invalid_client`, so that the answer tells nothing about which part was wrong.
pub fn exchange(tx: &mut Tx<'_>, client_id: Option<&str>, secret: &str) -> Result<SignedToken, ApiError> {
    let refuse = || {
        ApiError::new(ProblemKind::InvalidCredentials, "The client credentials are not valid.")
            .with_oauth_error("invalid_client")
    };
    let key = api_keys::by_secret_hash(tx.conn, &hash_token(secret), tx.now)?
        .filter(|k| k.is_live(tx.now))
        .ok_or_else(refuse)?;
    if client_id.is_some_and(|id| id != key.id.as_str()) {
        return Err(refuse());
    }
    let root = crate::db::repo::accounts::find(tx.conn, &key.root_account_id)?.ok_or_else(refuse)?;
    if root.status != crate::domain::AccountStatus::Active {
        return Err(refuse());
    }
    let token = tx.tokens.issue_for_api_key(&key, tx.now)?;
    let ctx = AuditContext {
        actor_api_key: Some(key.id.to_string()),
        account: Some(key.root_account_id.to_string()),
        request_id: crate::request_id::current(),
        ..AuditContext::default()
    };
    let details = json!({ "expires_in": token.expires_in });
    record(tx, &ctx, AuditAction::ApiKeyTokenIssued, &key.id, details)?;
    Ok(token)
}

fn record(
    tx: &mut Tx<'_>,
    ctx: &AuditContext,
    action: AuditAction,
    key: &ApiKeyId,
    details: serde_json::Value,
) -> Result<(), ApiError> {
    let entry = AuditEntry {
        action,
        target_type: "api_key",
        target_id: key.as_str(),
        details,
    };
    audit::record(tx.conn, ctx, entry, tx.now)?;
    Ok(())
}

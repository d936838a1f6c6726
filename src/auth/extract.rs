//! The request's principal: who is really acting, as whom, in which account, with which
//! permissions. Built once per request from the bearer token and the session it names.

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use std::future::Future;
use std::pin::Pin;

use crate::auth::secrets::{hash_token, API_KEY_PREFIX};
use crate::auth::tokens::AccessClaims;
use crate::db::models::{AccountRow, ApiKeyRow, ImpersonationRow, MembershipRow, RoleRow, SessionRow, UserRow};
use crate::db::repo::audit::AuditContext;
use crate::db::repo::principals::{self, MemberRights};
use crate::db::repo::{accounts, api_keys, impersonations};
use crate::db::DbConnection;
use crate::domain::permissions::PermissionSet;
use crate::domain::{AccountStatus, Delegation, MembershipStatus, UserStatus};
use crate::error::ApiError;
use crate::ids::{AccountId, SessionId, UserId};
use crate::request_id::RequestId;
use crate::state::AppState;

/// The caller's place in the account their token is scoped to.
#[derive(Clone, Debug)]
pub struct TenantContext {
    pub root: AccountId,
    /// The root account (organization) itself.
    pub account: AccountRow,
    /// The person's membership; `None` for an API key, which holds roles without one.
    pub membership: Option<MembershipRow>,
    /// The node the membership sits at; it reaches this node's whole subtree (R2). An API
    /// key sits at the root.
    pub node: AccountRow,
    pub roles: Vec<RoleRow>,
    pub permissions: PermissionSet,
}

/// A person's session behind the request.
#[derive(Clone, Debug)]
pub struct SessionCaller {
    pub claims: AccessClaims,
    pub session: SessionRow,
    /// The effective user: whom the request acts as (the token's `sub`).
    pub user: UserRow,
    /// The real actor: the same as `user.id` unless the session is delegated.
    pub actor_id: UserId,
    pub delegation: Option<Delegation>,
    /// The impersonation this session is, if it is one (R9): its mode and expiry.
    pub impersonation: Option<ImpersonationRow>,
}

/// How the request proved who it is.
#[derive(Clone, Debug)]
pub enum Credential {
    /// A person's access token, tied to a session.
    Session(Box<SessionCaller>),
    /// An API key, presented directly or exchanged for an access token. It acts as itself,
    /// never as a person.
    ApiKey(Box<ApiKeyRow>),
}

#[derive(Clone, Debug)]
pub struct Principal {
    pub credential: Credential,
    /// `None` on a token that can only pick an account (R5).
    pub tenant: Option<TenantContext>,
    pub request_id: String,
}

impl Principal {
    /// The person's session, or `None` when an API key is calling. Policy decides what a
    /// key may not do (`policy::require_person`).
    pub fn session_caller(&self) -> Option<&SessionCaller> {
        match &self.credential {
            Credential::Session(caller) => Some(caller),
            Credential::ApiKey(_) => None,
        }
    }

    pub fn api_key(&self) -> Option<&ApiKeyRow> {
        match &self.credential {
            Credential::ApiKey(key) => Some(key),
            Credential::Session(_) => None,
        }
    }

    /// The person answerable for a change, for the columns that name a user ("invited by",
    /// "assigned by"): the real actor, or for an API key the person who created it. The
    /// audit trail names the key itself.
    pub fn accountable_user(&self) -> UserId {
        match &self.credential {
            Credential::Session(caller) => caller.actor_id.clone(),
            Credential::ApiKey(key) => UserId::from(key.created_by.clone()),
        }
    }

    /// The effective user, when a person is calling.
    pub fn user_id(&self) -> Option<&UserId> {
        self.session_caller().map(|c| &c.user.id)
    }

    pub fn delegation(&self) -> Option<Delegation> {
        self.session_caller().and_then(|c| c.delegation)
    }

    pub fn is_delegated(&self) -> bool {
        self.delegation().is_some()
    }

    pub fn impersonation(&self) -> Option<&ImpersonationRow> {
        self.session_caller().and_then(|c| c.impersonation.as_ref())
    }

    /// Takes the organization's write lock and re-reads the caller's membership (or key),
    /// node, roles and permissions under it (R15). Every write that depends on the caller's
    /// own rights decides on the principal this returns, never on the one loaded before the
    /// lock: two concurrent requests can then never combine into more than one of them
    /// could do (for example two ownership transfers by one owner). Must run inside the
    /// write transaction.
    pub fn lock_tenant(&self, conn: &mut DbConnection) -> Result<Principal, ApiError> {
        let Some(current) = self.tenant.as_ref() else {
            return Ok(self.clone());
        };
        accounts::lock_tenant(conn, &current.root)?;
        let tenant = match &self.credential {
            Credential::Session(caller) => load_tenant(conn, &caller.user.id, current.root.clone())?,
            Credential::ApiKey(key) => {
                let key = api_keys::by_id(conn, key.id.as_str())?
                    .filter(|k| k.revoked_at.is_none())
                    .ok_or_else(key_refused)?;
                load_key_tenant(conn, &key)?
            }
        };
        Ok(Principal {
            tenant: Some(tenant),
            ..self.clone()
        })
    }

    /// Who is calling, for the log: the real actor (a person or a key) and the effective user.
    pub fn caller(&self) -> crate::request_id::Caller {
        match &self.credential {
            Credential::Session(caller) => crate::request_id::Caller {
                actor: Some(caller.actor_id.to_string()),
                effective_user: Some(caller.user.id.to_string()),
            },
            Credential::ApiKey(key) => crate::request_id::Caller {
                actor: Some(key.id.to_string()),
                effective_user: None,
            },
        }
    }

    /// The audit fields this request fixes: real actor (a person or a key), effective user,
    /// account, request.
    pub fn audit(&self) -> AuditContext {
        let account = self.tenant.as_ref().map(|t| t.root.to_string());
        let request_id = Some(self.request_id.clone());
        match &self.credential {
            Credential::Session(caller) => AuditContext {
                actor: Some(caller.actor_id.to_string()),
                effective: Some(caller.user.id.to_string()),
                actor_api_key: None,
                account,
                request_id,
            },
            Credential::ApiKey(key) => AuditContext {
                actor: None,
                effective: None,
                actor_api_key: Some(key.id.to_string()),
                account,
                request_id,
            },
        }
    }
}

fn key_refused() -> ApiError {
    ApiError::unauthenticated("The API key is not valid: unknown, revoked, expired or rotated.")
}

/// The bearer token of the `Authorization` header; a 401 problem when there is none.
pub fn bearer(req: &HttpRequest) -> Result<String, ApiError> {
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthenticated("Send an access token: Authorization: Bearer <token>."))?;
    let value = header
        .to_str()
        .map_err(|_| ApiError::unauthenticated("The Authorization header is not readable."))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| ApiError::unauthenticated("Use the Bearer scheme: Authorization: Bearer <token>."))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::unauthenticated(
            "Use the Bearer scheme: Authorization: Bearer <token>.",
        ));
    }
    Ok(token.trim().to_string())
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer(req);
        let request_id = req
            .extensions()
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default();
        let req = req.clone();
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal("application state missing"))?;
            let now = state.clock.now();
            let token = token?;
            let principal = if token.starts_with(API_KEY_PREFIX) {
                let digest = hash_token(&token);
                state
                    .db
                    .read(move |conn| load_key(conn, &digest, now, request_id))
                    .await?
            } else {
                let claims = state.tokens.verify(&token, now)?;
                let id = request_id.clone();
                let loaded = state
                    .principals
                    .get_or_load(&token, now, |started| {
                        state.db.read(move |conn| {
                            started.mark();
                            load(conn, claims, now, id)
                        })
                    })
                    .await?;
                Principal { request_id, ..loaded }
            };
            crate::request_id::set_caller(principal.caller());
            if let Some(impersonation) = principal.impersonation() {
                // Audited whatever its outcome, refusals included (R9).
                req.extensions_mut().insert(crate::request_audit::Impersonated {
                    audit: principal.audit(),
                    impersonation: impersonation.id.clone(),
                });
                crate::auth::policy::impersonation_allows(
                    impersonation.mode,
                    req.method(),
                    req.match_pattern().as_deref(),
                )?;
            }
            Ok(principal)
        })
    }
}

/// An API key presented directly: found by the digest of its secret, live, and its
/// organization active.
fn load_key(
    conn: &mut DbConnection,
    digest: &str,
    now: chrono::NaiveDateTime,
    request_id: String,
) -> Result<Principal, ApiError> {
    let key = api_keys::by_secret_hash(conn, digest, now)?
        .filter(|k| k.is_live(now))
        .ok_or_else(key_refused)?;
    key_principal(conn, key, now, request_id)
}

/// An access token exchanged for an API key: the key must still be live, and the token
/// must come from its current secret (or from the previous one while its grace lasts).
fn load_key_token(
    conn: &mut DbConnection,
    claims: &AccessClaims,
    now: chrono::NaiveDateTime,
    request_id: String,
) -> Result<Principal, ApiError> {
    let key = api_keys::by_id(conn, &claims.sid)?
        .filter(|k| k.is_live(now))
        .ok_or_else(key_refused)?;
    // `iat` has whole seconds: a token from the current secret has `iat` at or after the
    // second the secret was issued in.
    let from_current_secret = claims.iat >= key.secret_issued_at.and_utc().timestamp();
    let in_grace = key.previous_valid_until.is_some_and(|until| until > now);
    let consistent = claims.sub == key.id.as_str()
        && claims.client_id.as_deref() == Some(key.id.as_str())
        && claims.acc.as_deref() == Some(key.root_account_id.as_str())
        && claims.act.is_none();
    if !consistent || !(from_current_secret || in_grace) {
        return Err(key_refused());
    }
    key_principal(conn, key, now, request_id)
}

fn key_principal(
    conn: &mut DbConnection,
    key: ApiKeyRow,
    now: chrono::NaiveDateTime,
    request_id: String,
) -> Result<Principal, ApiError> {
    let tenant = load_key_tenant(conn, &key)?;
    api_keys::touch(conn, &key.id, now)?;
    Ok(Principal {
        credential: Credential::ApiKey(Box::new(key)),
        tenant: Some(tenant),
        request_id,
    })
}

/// A key's rights: the roles it holds, over its whole organization, while the organization
/// is active.
fn load_key_tenant(conn: &mut DbConnection, key: &ApiKeyRow) -> Result<TenantContext, ApiError> {
    let root = accounts::find(conn, &key.root_account_id)?.ok_or_else(key_refused)?;
    if root.status != AccountStatus::Active {
        return Err(key_refused());
    }
    let roles = api_keys::roles_of(conn, &key.id)?;
    let permissions = crate::service::roles::permissions_of(conn, &roles)?;
    Ok(TenantContext {
        root: key.root_account_id.clone(),
        account: root.clone(),
        membership: None,
        node: root,
        roles,
        permissions,
    })
}

/// Checks the session behind a verified token and loads what the policy needs.
fn load(
    conn: &mut DbConnection,
    claims: AccessClaims,
    now: chrono::NaiveDateTime,
    request_id: String,
) -> Result<Principal, ApiError> {
    if claims.client_id.is_some() {
        return load_key_token(conn, &claims, now, request_id);
    }
    let ended = || ApiError::unauthenticated("The session has ended; log in again.");
    let sid = SessionId::parse(&claims.sid).ok_or_else(ended)?;
    let found = principals::for_session(conn, &sid)?.ok_or_else(ended)?;
    let (session, user) = (found.session, found.user);
    let consistent = session.user_id.as_str() == claims.sub
        && session.account_id == claims.acc
        && session.actor_user_id == claims.act.as_ref().map(|a| a.sub.clone());
    if session.revoked_at.is_some() || session.expires_at <= now || !consistent {
        return Err(ended());
    }
    if user.status != UserStatus::Active {
        return Err(ended());
    }
    // A delegated session lives only while its real actor may still act (R8).
    if session.actor().is_some() && found.actor_status.as_deref() != Some(UserStatus::Active.as_str()) {
        return Err(ended());
    }
    let impersonation = match session.delegation() {
        Some(Delegation::Impersonation) => Some(impersonations::for_session(conn, &session.id)?.ok_or_else(ended)?),
        _ => None,
    };
    let tenant = match session.account() {
        None => None,
        Some(root) => Some(tenant_context(root, found.rights)?),
    };
    // An impersonation never outgrows its actor (R9), also when rights change while it runs:
    // the actor must still be an active member who may impersonate and holds every
    // permission the target holds now.
    if let (Some(imp), Some(target)) = (&impersonation, &tenant) {
        let actor = load_tenant(conn, &imp.actor_user_id, target.root.clone()).map_err(|_| ended())?;
        if !crate::auth::policy::impersonation_still_allowed(&actor.permissions, &target.permissions) {
            return Err(ended());
        }
    }
    Ok(Principal {
        credential: Credential::Session(Box::new(SessionCaller {
            impersonation,
            actor_id: session.actor().unwrap_or_else(|| user.id.clone()),
            delegation: session.delegation(),
            claims,
            session,
            user,
        })),
        tenant,
        request_id,
    })
}

fn load_tenant(conn: &mut DbConnection, user: &UserId, root: AccountId) -> Result<TenantContext, ApiError> {
    let rights = principals::for_member(conn, user, &root)?;
    tenant_context(root, rights)
}

/// The caller's place in `root`, checked: an active membership at an active node of an
/// active organization.
fn tenant_context(root: AccountId, rights: Option<MemberRights>) -> Result<TenantContext, ApiError> {
    let gone = || ApiError::unauthenticated("Your access to this account has ended; log in again.");
    let rights = rights.ok_or_else(gone)?;
    if rights.membership.status != MembershipStatus::Active
        || rights.root.status != AccountStatus::Active
        || rights.node.status != AccountStatus::Active
    {
        return Err(gone());
    }
    let permissions = crate::service::roles::permissions_from(&rights.roles, &rights.stored_permissions);
    Ok(TenantContext {
        root,
        account: rights.root,
        membership: Some(rights.membership),
        node: rights.node,
        roles: rights.roles,
        permissions,
    })
}

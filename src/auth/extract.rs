//! The request's principal: who is really acting, as whom, in which account, with which
//! permissions. Built once per request from the bearer token and the session it names.

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use diesel::prelude::*;
use std::future::Future;
use std::pin::Pin;

use crate::auth::tokens::AccessClaims;
use crate::db::models::{AccountRow, ImpersonationRow, MembershipRow, RoleRow, SessionRow, UserRow};
use crate::db::repo::audit::AuditContext;
use crate::db::repo::{accounts, impersonations, memberships};
use crate::db::schema::{sessions, users};
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
    pub membership: MembershipRow,
    /// The node the membership sits at; it reaches this node's whole subtree (R2).
    pub node: AccountRow,
    pub roles: Vec<RoleRow>,
    pub permissions: PermissionSet,
}

#[derive(Clone, Debug)]
pub struct Principal {
    pub claims: AccessClaims,
    pub session: SessionRow,
    /// The effective user: whom the request acts as (the token's `sub`).
    pub user: UserRow,
    /// The real actor: the same as `user.id` unless the session is delegated.
    pub actor_id: UserId,
    pub delegation: Option<Delegation>,
    /// The impersonation this session is, if it is one (R9): its mode and expiry.
    pub impersonation: Option<ImpersonationRow>,
    /// `None` on a token that can only pick an account (R5).
    pub tenant: Option<TenantContext>,
    pub request_id: String,
}

impl Principal {
    pub fn session_id(&self) -> &SessionId {
        &self.session.id
    }

    pub fn is_delegated(&self) -> bool {
        self.delegation.is_some()
    }

    /// Takes the organization's write lock and re-reads the caller's membership, node, roles
    /// and permissions under it (R15). Every write that depends on the caller's own rights
    /// decides on the principal this returns, never on the one loaded before the lock: two
    /// concurrent requests can then never combine into more than one of them could do (for
    /// example two ownership transfers by one owner). Must run inside the write transaction.
    pub fn lock_tenant(&self, conn: &mut DbConnection) -> Result<Principal, ApiError> {
        let Some(current) = self.tenant.as_ref() else {
            return Ok(self.clone());
        };
        accounts::lock_tenant(conn, &current.root)?;
        let tenant = load_tenant(conn, &self.user.id, current.root.clone())?;
        Ok(Principal {
            tenant: Some(tenant),
            ..self.clone()
        })
    }

    /// The audit fields this request fixes: real actor, effective user, account, request.
    pub fn audit(&self) -> AuditContext {
        AuditContext {
            actor: Some(self.actor_id.to_string()),
            effective: Some(self.user.id.to_string()),
            account: self.tenant.as_ref().map(|t| t.root.to_string()),
            request_id: Some(self.request_id.clone()),
        }
    }
}

fn bearer(req: &HttpRequest) -> Result<String, ApiError> {
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
            let claims = state.tokens.verify(&token?, now)?;
            let principal = state.db.read(move |conn| load(conn, claims, now, request_id)).await?;
            if let Some(impersonation) = &principal.impersonation {
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

/// Checks the session behind a verified token and loads what the policy needs.
fn load(
    conn: &mut DbConnection,
    claims: AccessClaims,
    now: chrono::NaiveDateTime,
    request_id: String,
) -> Result<Principal, ApiError> {
    let ended = || ApiError::unauthenticated("The session has ended; log in again.");
    let sid = SessionId::parse(&claims.sid).ok_or_else(ended)?;
    let (session, user): (SessionRow, UserRow) = sessions::table
        .inner_join(users::table)
        .filter(sessions::id.eq(sid.as_str()))
        .select((SessionRow::as_select(), UserRow::as_select()))
        .get_result(conn)
        .optional()?
        .ok_or_else(ended)?;
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
    if let Some(actor) = session.actor() {
        let actor_active = crate::db::repo::users::find(conn, &actor)?.is_some_and(|a| a.status == UserStatus::Active);
        if !actor_active {
            return Err(ended());
        }
    }
    let impersonation = match session.delegation() {
        Some(Delegation::Impersonation) => Some(impersonations::for_session(conn, &session.id)?.ok_or_else(ended)?),
        _ => None,
    };
    let tenant = match session.account() {
        None => None,
        Some(root) => Some(load_tenant(conn, &user.id, root)?),
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
        impersonation,
        actor_id: session.actor().unwrap_or_else(|| user.id.clone()),
        delegation: session.delegation(),
        claims,
        session,
        user,
        tenant,
        request_id,
    })
}

fn load_tenant(conn: &mut DbConnection, user: &UserId, root: AccountId) -> Result<TenantContext, ApiError> {
    let gone = || ApiError::unauthenticated("Your access to this account has ended; log in again.");
    let membership = memberships::find_for_user_in(conn, user, &root)?.ok_or_else(gone)?;
    if membership.status != MembershipStatus::Active {
        return Err(gone());
    }
    let node = accounts::find(conn, &membership.account_id)?.ok_or_else(gone)?;
    let root_row = if node.id == root {
        node.clone()
    } else {
        accounts::find(conn, &root)?.ok_or_else(gone)?
    };
    if root_row.status != AccountStatus::Active || node.status != AccountStatus::Active {
        return Err(gone());
    }
    let roles = memberships::roles_of(conn, &membership.id)?;
    let permissions = crate::service::roles::permissions_of(conn, &roles)?;
    Ok(TenantContext {
        root,
        account: root_row,
        membership,
        node,
        roles,
        permissions,
    })
}

//! The rules of each capability, in one place: handlers parse a request into a command and
//! call one function here; that function decides every rule (asking `auth::policy` for every
//! allow/deny), reads and writes through the repositories, and writes the audit event and any
//! notification in the same transaction as the change (R13). Nothing here knows HTTP.
//!
//! A service function takes a [`Tx`] (the connection and what the call may use besides it:
//! the time, the settings, the token issuer), the caller, and a typed command; it returns
//! domain rows or an [`ApiError`] whose kind is the rule that was broken.
//!
//! [`read`] runs a function on the blocking pool outside any transaction; [`write`] runs it
//! inside one write transaction (SQLite: `BEGIN IMMEDIATE`), so that everything it changes
//! commits together or not at all. A write that depends on the caller's rights starts with
//! [`Tx::lock_tenant`], which takes the organization's lock and re-reads those rights (R15).

pub mod accounts;
pub mod api_keys;
pub mod audit;
pub mod caretakers;
pub mod contacts;
pub mod impersonations;
pub mod invites;
pub mod lifecycle;
pub mod members;
pub mod messages;
pub mod metrics;
pub mod notifications;
pub mod roles;
pub mod scim;
pub mod seats;
pub mod sessions;
pub mod versions;
pub mod webhooks;

use actix_web::web;
use chrono::NaiveDateTime;

use crate::auth::extract::Principal;
use crate::auth::tokens::Tokens;
use crate::config::Config;
use crate::db::DbConnection;
use crate::error::{ApiError, ProblemKind};
use crate::metrics::Metrics;
use crate::state::AppState;

/// One service call's connection and surroundings.
pub struct Tx<'a> {
    pub conn: &'a mut DbConnection,
    /// The time the call happens at, read once from the (injectable) clock.
    pub now: NaiveDateTime,
    pub config: &'a Config,
    pub tokens: &'a Tokens,
    /// What operators watch: refusals and failures are counted as they are decided.
    pub metrics: &'a Metrics,
    /// The request's `If-Match`, for a write that honours it ([`write_if`]).
    precondition: Option<String>,
    precondition_checked: bool,
}

impl<'a> Tx<'a> {
    /// A call's context on `conn`: the one place a `Tx` is put together.
    fn on(
        conn: &'a mut DbConnection,
        now: NaiveDateTime,
        config: &'a Config,
        tokens: &'a Tokens,
        metrics: &'a Metrics,
        precondition: Option<String>,
    ) -> Self {
        Tx {
            conn,
            now,
            config,
            tokens,
            metrics,
            precondition,
            precondition_checked: false,
        }
    }

    /// Compares the request's `If-Match` with the resource's version as it is now, under the
    /// organization's lock, so that two editors can never lose each other's change: a stale
    /// version is a 412 and nothing is written. Without `If-Match` anything goes.
    pub fn check_version(&mut self, current: &str) -> Result<(), ApiError> {
        self.precondition_checked = true;
        match &self.precondition {
            Some(wanted) if !versions::matches(wanted, current) => Err(ApiError::new(
                ProblemKind::PreconditionFailed,
                format!("The resource changed since you read it (it is now {current}); read it again and reapply your change."),
            )),
            _ => Ok(()),
        }
    }

    /// Like [`Tx::check_version`], for a write made of other services' writes (SCIM): the
    /// version of the resource as a whole is compared once, first, and the services it then
    /// goes through see no `If-Match` of their own.
    pub fn check_version_once(&mut self, current: &str) -> Result<(), ApiError> {
        self.check_version(current)?;
        self.precondition = None;
        Ok(())
    }

    /// Whether a rate limit let the event through (else 429); a refusal is counted in the
    /// metrics, by limit.
    pub fn within_limit(&self, verdict: crate::rate_limit::Verdict) -> Result<(), ApiError> {
        if let Err(throttled) = &verdict {
            self.metrics.rate_limited(throttled.bucket);
        }
        crate::auth::policy::within_limit(verdict)
    }

    /// Runs `f` in a transaction of its own: a savepoint inside [`write`]'s transaction, the
    /// transaction itself in [`write_statements`], where there is none around it.
    pub fn atomically<T>(&mut self, f: impl FnOnce(&mut Tx<'_>) -> Result<T, ApiError>) -> Result<T, ApiError> {
        use diesel::Connection;
        let (now, config, tokens, metrics) = (self.now, self.config, self.tokens, self.metrics);
        self.conn
            .transaction(|conn| f(&mut Tx::on(conn, now, config, tokens, metrics, None)))
    }

    /// Takes the caller's organization lock and returns the caller as they are now (R15):
    /// their membership, node, roles and permissions re-read under the lock.
    pub fn lock_tenant(&mut self, caller: &Principal) -> Result<Principal, ApiError> {
        caller.lock_tenant(self.conn)
    }
}

/// Runs `f` on the blocking pool with a connection, outside any transaction.
pub async fn read<T, F>(state: &web::Data<AppState>, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&mut Tx<'_>) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    let st = state.clone();
    state.db.read(move |conn| in_tx(&st, conn, f)).await
}

/// Like [`write`], for a write that honours `If-Match`: `f` must call
/// [`Tx::check_version`] with the resource's version as it is under the lock.
pub async fn write_if<T, F>(state: &web::Data<AppState>, if_match: Option<String>, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&mut Tx<'_>) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    let st = state.clone();
    state
        .db
        .write(move |conn| {
            let mut tx = new_tx(&st, conn, if_match.clone());
            let out = f(&mut tx)?;
            if if_match.is_some() && !tx.precondition_checked {
                return Err(ApiError::internal("a write that honours If-Match did not check it"));
            }
            Ok(out)
        })
        .await
}

/// Runs `f` on the blocking pool inside one write transaction.
pub async fn write<T, F>(state: &web::Data<AppState>, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&mut Tx<'_>) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    let st = state.clone();
    state.db.write(move |conn| in_tx(&st, conn, f)).await
}

/// Runs `f` on the blocking pool for a change whose writes are each one statement: in one
/// write transaction on SQLite, as [`write`]; on PostgreSQL each statement commits by itself
/// (see `Db::write_statements`), and a change of several statements goes through
/// [`Tx::atomically`]. For the hottest flow only (refresh), whose every change is one
/// statement but its refusal's.
pub async fn write_statements<T, F>(state: &web::Data<AppState>, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&mut Tx<'_>) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    let st = state.clone();
    state.db.write_statements(move |conn| in_tx(&st, conn, f)).await
}

fn in_tx<T>(
    state: &AppState,
    conn: &mut DbConnection,
    f: impl FnOnce(&mut Tx<'_>) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    f(&mut new_tx(state, conn, None))
}

fn new_tx<'a>(state: &'a AppState, conn: &'a mut DbConnection, precondition: Option<String>) -> Tx<'a> {
    let now = state.clock.now();
    Tx::on(conn, now, &state.config, &state.tokens, &state.metrics, precondition)
}

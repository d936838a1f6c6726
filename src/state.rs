//! What every handler can reach: settings, storage, the clock, hashing, tokens and metrics.

use crate::auth::password::Passwords;
use crate::auth::principal_cache::PrincipalCache;
use crate::auth::tokens::Tokens;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::db::Db;
use crate::metrics::Metrics;
use crate::routing::KnownRoutes;

pub struct AppState {
    pub config: Config,
    pub db: Db,
    pub clock: SharedClock,
    pub passwords: Passwords,
    pub tokens: Tokens,
    /// The OpenAPI document, serialized once, served byte for byte at `/openapi.json`.
    pub openapi_json: String,
    pub routes: KnownRoutes,
    pub metrics: Metrics,
    /// Principals of recent access tokens, while the database has not changed.
    pub principals: PrincipalCache,
}

//! Principals loaded for access tokens, shared without ever being older than the request:
//!
//! - **Cached** (SQLite): a principal is kept with the database's [`PrincipalEpoch`] read
//!   before it was loaded, and handed out only while the epoch is unchanged, so no transaction
//!   of any connection or process that may have changed a principal committed in between: a
//!   logout, a deactivation or a change of rights takes effect at the very next request
//!   exactly as without the cache. Such a commit makes every entry stale (the whole map is
//!   dropped at the next look-up); commits of this process that write no principal table (a
//!   login's bookkeeping, audit events) keep the epoch (see `db::change_stamp`). Only SQLite
//!   has a stamp that can be read without a query (its WAL index, shared by every process on
//!   the file); on PostgreSQL nothing local tells that another instance committed, so nothing
//!   is kept there between requests.
//! - **Coalesced** (both): requests with the same token wait for a load that another request
//!   started for it instead of each running their own, if that load has not yet begun to query
//!   the database when they arrive (on SQLite: if the principal epoch is still the one it started in).
//!   Its result then reflects the database at or after their arrival, as their own load would.
//!
//! What passes with time rather than by a commit is checked at every use: the access token
//! (verified before the look-up) and the session's expiry. Principals of API keys are never
//! shared: using a key records its use.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::watch;

use crate::auth::extract::{Credential, Principal};
use crate::db::change_stamp::{ChangeStamps, PrincipalEpoch};
use crate::error::ApiError;

/// At most this many principals; when full, the map starts over.
const CAPACITY: usize = 4096;

pub struct PrincipalCache {
    stamps: Option<Arc<ChangeStamps>>,
    entries: Mutex<Entries>,
    /// Loads under way, by token (see the module's documentation).
    loading: Mutex<HashMap<String, Flight>>,
}

/// A load under way: the state it started in (on SQLite), whether it has begun to query, and
/// where its principal will appear.
struct Flight {
    epoch: Option<PrincipalEpoch>,
    started: LoadStart,
    result: watch::Receiver<Option<Principal>>,
}

/// Marks the moment a load begins to query the database: from then on, requests that arrive
/// may not wait for its result (it may predate them).
#[derive(Clone, Default)]
pub struct LoadStart(Arc<AtomicBool>);

impl LoadStart {
    /// Call right before the load's first query.
    pub fn mark(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn is_marked(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Default)]
struct Entries {
    /// The state every entry was loaded in.
    epoch: Option<PrincipalEpoch>,
    /// By access token.
    by_token: HashMap<String, Principal>,
}

impl PrincipalCache {
    /// A cache that keeps nothing (PostgreSQL, or a SQLite file whose stamp cannot be read).
    pub fn disabled() -> Self {
        Self {
            stamps: None,
            entries: Mutex::default(),
            loading: Mutex::default(),
        }
    }

    pub fn new(stamps: Arc<ChangeStamps>) -> Self {
        Self {
            stamps: Some(stamps),
            entries: Mutex::default(),
            loading: Mutex::default(),
        }
    }

    /// The database's principal epoch now, to be taken before a principal is loaded; `None`
    /// when nothing may be cached.
    pub fn epoch(&self) -> Option<PrincipalEpoch> {
        self.stamps.as_ref().and_then(|s| s.principal_epoch())
    }

    /// The principal for `token`: cached, or loaded by a concurrent request that may be
    /// shared, or else loaded by `load` (which must [`LoadStart::mark`] its start) and kept.
    pub async fn get_or_load<Fut>(
        &self,
        token: &str,
        now: chrono::NaiveDateTime,
        load: impl FnOnce(LoadStart) -> Fut,
    ) -> Result<Principal, ApiError>
    where
        Fut: Future<Output = Result<Principal, ApiError>>,
    {
        if let Some(cached) = self.get(token, now) {
            return Ok(cached);
        }
        let epoch = self.epoch();
        let joined = {
            let mut loading = self.loading.lock().unwrap_or_else(PoisonError::into_inner);
            match loading.get(token) {
                Some(flight) if flight.may_be_joined(epoch) => Err(flight.result.clone()),
                _ => {
                    let (sender, result) = watch::channel(None);
                    let started = LoadStart::default();
                    let flight = Flight {
                        epoch,
                        started: started.clone(),
                        result,
                    };
                    loading.insert(token.to_string(), flight);
                    Ok((sender, started))
                }
            }
        };
        match joined {
            Err(mut result) => {
                // Its principal, or nothing if it failed or its request went away: then this
                // request loads its own.
                let shared = match result.wait_for(Option::is_some).await {
                    Ok(shared) => shared.clone(),
                    Err(_) => None,
                };
                match shared {
                    Some(principal) if live(&principal, now) => Ok(principal),
                    _ => load(LoadStart::default()).await,
                }
            }
            Ok((sender, started)) => {
                let loaded = load(started.clone()).await;
                if let Ok(principal) = &loaded {
                    if let Some(epoch) = epoch {
                        self.put(token, epoch, principal);
                    }
                    sender.send_replace(Some(principal.clone()));
                }
                let mut loading = self.loading.lock().unwrap_or_else(PoisonError::into_inner);
                if loading
                    .get(token)
                    .is_some_and(|f| Arc::ptr_eq(&f.started.0, &started.0))
                {
                    loading.remove(token);
                }
                loaded
            }
        }
    }

    /// The principal cached for `token`, if the database has not changed since it was loaded
    /// and its session has not expired by `now`.
    pub fn get(&self, token: &str, now: chrono::NaiveDateTime) -> Option<Principal> {
        let epoch = self.epoch()?;
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.epoch != Some(epoch) {
            entries.by_token.clear();
            entries.epoch = Some(epoch);
            return None;
        }
        let principal = entries.by_token.get(token)?;
        live(principal, now).then(|| principal.clone())
    }

    /// Keeps `principal`, loaded for `token` after `epoch` was read, unless the database has
    /// moved on since (then it may already be stale).
    pub fn put(&self, token: &str, epoch: PrincipalEpoch, principal: &Principal) {
        if !matches!(principal.credential, Credential::Session(_)) {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.epoch != Some(epoch) {
            if self.epoch() != Some(epoch) {
                return;
            }
            entries.by_token.clear();
            entries.epoch = Some(epoch);
        }
        if entries.by_token.len() >= CAPACITY {
            entries.by_token.clear();
        }
        entries.by_token.insert(token.to_string(), principal.clone());
    }
}

impl Flight {
    /// Whether a request that finds the database at `epoch` may wait for this load: on
    /// SQLite while nothing has committed since it started, elsewhere while it has not begun
    /// to query. Never a load that failed or whose request went away.
    fn may_be_joined(&self, epoch: Option<PrincipalEpoch>) -> bool {
        let same_state = match (epoch, self.epoch) {
            (Some(now), Some(then)) => now == then,
            _ => !self.started.is_marked(),
        };
        same_state && self.result.has_changed().is_ok()
    }
}

/// Whether a cached session principal may still be used at `now`.
fn live(principal: &Principal, now: chrono::NaiveDateTime) -> bool {
    matches!(&principal.credential, Credential::Session(caller) if caller.session.expires_at > now)
}

//! Principals loaded for access tokens, kept while the database has not changed since: a
//! cached principal is handed out only when the database's [`ChangeStamp`] equals the one read
//! before it was loaded, so no transaction of any connection or process committed in between,
//! and a logout, a deactivation or a change of rights takes effect at the very next request
//! exactly as without the cache. Any commit makes every entry stale (the whole map is dropped
//! at the next look-up), so the cache pays off for bursts of reads, and costs a stamp read and
//! a map look-up otherwise.
//!
//! Only SQLite has a stamp that can be read without a query (its WAL index, shared by every
//! process on the file). On PostgreSQL nothing local tells that another instance committed,
//! so every request loads its principal there.
//!
//! What passes with time rather than by a commit is checked at every use: the access token
//! (verified before the look-up) and the session's expiry. Principals of API keys are never
//! cached: using a key records its use.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, PoisonError};
use tokio::sync::watch;

use crate::auth::extract::{Credential, Principal};
use crate::db::change_stamp::{ChangeStamp, ChangeStamps};
use crate::error::ApiError;

/// At most this many principals; when full, the map starts over.
const CAPACITY: usize = 4096;

pub struct PrincipalCache {
    stamps: Option<ChangeStamps>,
    entries: Mutex<Entries>,
    /// Loads under way, by token: concurrent requests with the same token in the same state
    /// wait for the one load instead of each running it (after a commit, every connection of
    /// a busy client misses at once).
    loading: Mutex<HashMap<String, Flight>>,
}

/// A load under way: the state it started in, and where its principal will appear.
struct Flight {
    stamp: ChangeStamp,
    result: watch::Receiver<Option<Principal>>,
}

#[derive(Default)]
struct Entries {
    /// The state every entry was loaded in.
    stamp: Option<ChangeStamp>,
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

    pub fn new(stamps: ChangeStamps) -> Self {
        Self {
            stamps: Some(stamps),
            entries: Mutex::default(),
            loading: Mutex::default(),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.stamps.is_some()
    }

    /// The database's stamp now, to be taken before a principal is loaded; `None` when
    /// nothing may be cached.
    pub fn stamp(&self) -> Option<ChangeStamp> {
        self.stamps.as_ref().and_then(ChangeStamps::current)
    }

    /// The principal for `token`: cached, or loaded by a concurrent request in the same state,
    /// or else loaded by `load` (and kept).
    pub async fn get_or_load<Fut>(
        &self,
        token: &str,
        now: chrono::NaiveDateTime,
        load: impl FnOnce() -> Fut,
    ) -> Result<Principal, ApiError>
    where
        Fut: Future<Output = Result<Principal, ApiError>>,
    {
        if let Some(cached) = self.get(token, now) {
            return Ok(cached);
        }
        let Some(stamp) = self.stamp() else {
            return load().await;
        };
        let joined = {
            let mut loading = self.loading.lock().unwrap_or_else(PoisonError::into_inner);
            match loading.get(token) {
                // A load that started in this very state and is still running (or done).
                Some(flight) if flight.stamp == stamp && flight.result.has_changed().is_ok() => {
                    Err(flight.result.clone())
                }
                _ => {
                    let (sender, result) = watch::channel(None);
                    loading.insert(token.to_string(), Flight { stamp, result });
                    Ok(sender)
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
                    _ => load().await,
                }
            }
            Ok(sender) => {
                let loaded = load().await;
                if let Ok(principal) = &loaded {
                    self.put(token, stamp, principal);
                    sender.send_replace(Some(principal.clone()));
                }
                let mut loading = self.loading.lock().unwrap_or_else(PoisonError::into_inner);
                if loading.get(token).is_some_and(|f| f.stamp == stamp) {
                    loading.remove(token);
                }
                loaded
            }
        }
    }

    /// The principal cached for `token`, if the database has not changed since it was loaded
    /// and its session has not expired by `now`.
    pub fn get(&self, token: &str, now: chrono::NaiveDateTime) -> Option<Principal> {
        let stamp = self.stamp()?;
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.stamp != Some(stamp) {
            entries.by_token.clear();
            entries.stamp = Some(stamp);
            return None;
        }
        let principal = entries.by_token.get(token)?;
        live(principal, now).then(|| principal.clone())
    }

    /// Keeps `principal`, loaded for `token` after `stamp` was read, unless the database has
    /// moved on since (then it may already be stale).
    pub fn put(&self, token: &str, stamp: ChangeStamp, principal: &Principal) {
        if !matches!(principal.credential, Credential::Session(_)) {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.stamp != Some(stamp) {
            if self.stamp() != Some(stamp) {
                return;
            }
            entries.by_token.clear();
            entries.stamp = Some(stamp);
        }
        if entries.by_token.len() >= CAPACITY {
            entries.by_token.clear();
        }
        entries.by_token.insert(token.to_string(), principal.clone());
    }
}

/// Whether a cached session principal may still be used at `now`.
fn live(principal: &Principal, now: chrono::NaiveDateTime) -> bool {
    matches!(&principal.credential, Credential::Session(caller) if caller.session.expires_at > now)
}

//! Periodic work that no request triggers: clean-up of records that only matter for a while
//! (kept responses of idempotent requests past their 24 hours, rate-limit windows that have
//! ended), and announcing invitations that ran out (`invite.expired`). Runs on every
//! instance; deletes are idempotent and each expiry is claimed by one instance, so several
//! instances on one database do no harm.

use crate::clock::SharedClock;
use crate::db::repo::idempotency;
use crate::db::{Db, DbError};
use crate::error::ApiError;
use crate::rate_limit;

/// What one round removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    /// Kept responses of idempotent requests past their 24 hours.
    pub idempotency_keys: usize,
    /// Rate-limit windows that have ended.
    pub rate_limits: usize,
}

/// Deletes what has expired, in one transaction.
pub async fn purge(db: &Db, clock: &SharedClock) -> Result<Purged, DbError> {
    let now = clock.now();
    db.write(move |conn| {
        Ok::<_, DbError>(Purged {
            idempotency_keys: idempotency::purge_expired(conn, now)?,
            rate_limits: rate_limit::purge(conn, now)?,
        })
    })
    .await
}

/// Deletes what has expired; returns how many kept idempotent responses went.
pub async fn run_once(db: &Db, clock: &SharedClock) -> Result<usize, DbError> {
    Ok(purge(db, clock).await?.idempotency_keys)
}

/// Announces the invitations that expired since the last sweep; returns how many.
pub async fn announce_expired_invites(db: &Db, clock: &SharedClock) -> Result<usize, ApiError> {
    let now = clock.now();
    db.write(move |conn| crate::service::invites::announce_expired(conn, now))
        .await
}

/// Cleans up every `interval` until the process ends.
pub fn spawn(db: Db, clock: SharedClock, interval: std::time::Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match purge(&db, &clock).await {
                Ok(Purged {
                    idempotency_keys: 0,
                    rate_limits: 0,
                }) => {}
                Ok(p) => log::info!(
                    "housekeeping: removed {} expired idempotency record(s), {} ended rate-limit window(s)",
                    p.idempotency_keys,
                    p.rate_limits
                ),
                Err(e) => log::warn!("housekeeping failed: {e}"),
            }
            match announce_expired_invites(&db, &clock).await {
                Ok(0) => {}
                Ok(n) => log::info!("housekeeping: announced {n} expired invitation(s)"),
                Err(e) => log::warn!("announcing expired invitations failed: {e}"),
            }
        }
    })
}

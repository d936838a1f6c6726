//! The notification outbox worker. Messages are written in the same transaction as their
//! cause (see `db::repo::notifications::enqueue`); this worker leases due messages, hands
//! each to a sink, and records the outcome. A failed delivery is retried with exponential
//! backoff and given up on (`dead`) after [`MAX_ATTEMPTS`]; a worker that crashes mid-way
//! loses only its lease, so every message is delivered at least once, even across restarts
//! and with several instances polling one database.

use chrono::Duration;
use std::sync::Arc;

use crate::clock::SharedClock;
use crate::db::models::NotificationRow;
use crate::db::repo::notifications;
use crate::db::Db;

pub const MAX_ATTEMPTS: i32 = 10;
const BATCH: i64 = 50;
const LEASE_SECS: i64 = 60;

/// Where messages go.
pub trait Sink: Send + Sync + 'static {
    fn deliver(&self, message: &NotificationRow) -> Result<(), String>;
}

/// Prints each message to the log. The default until a real delivery channel is set up;
/// note that it prints links (reset, invitation) into the log, which suits development only.
pub struct LogSink;

impl Sink for LogSink {
    fn deliver(&self, m: &NotificationRow) -> Result<(), String> {
        log::info!(
            target: "steward::notify",
            "{} to {}{}: {}\n{}",
            m.id,
            m.recipient_email,
            m.on_behalf_of_user_id.as_deref().map(|u| format!(" (for {u})")).unwrap_or_default(),
            m.subject,
            m.body
        );
        Ok(())
    }
}

/// Delay before the next attempt after `attempts` failures: 10 s doubling, at most an hour.
pub fn backoff(attempts: i32) -> Duration {
    let secs = 10i64.saturating_mul(1i64 << attempts.clamp(0, 20));
    Duration::seconds(secs.min(3600))
}

/// Delivers every due message once; returns how many were handled.
pub fn deliver_due(db: &Db, clock: &SharedClock, sink: &dyn Sink) -> Result<usize, String> {
    let mut conn = db.get().map_err(|e| e.to_string())?;
    let now = clock.now();
    let batch =
        notifications::claim_due(&mut conn, now, Duration::seconds(LEASE_SECS), BATCH).map_err(|e| e.to_string())?;
    for message in &batch {
        let now = clock.now();
        let result = match sink.deliver(message) {
            Ok(()) => notifications::mark_delivered(&mut conn, &message.id, now),
            Err(error) => {
                let attempts = message.attempts + 1;
                let retry_at = (attempts < MAX_ATTEMPTS).then(|| now + backoff(attempts));
                log::warn!("delivery of {} failed (attempt {attempts}): {error}", message.id);
                notifications::mark_failed(&mut conn, &message.id, &error, retry_at, now)
            }
        };
        result.map_err(|e| e.to_string())?;
    }
    Ok(batch.len())
}

/// Polls the outbox until the process ends.
pub fn spawn_worker(
    db: Db,
    clock: SharedClock,
    sink: Arc<dyn Sink>,
    interval: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let (db, clock, sink) = (db.clone(), clock.clone(), sink.clone());
            match tokio::task::spawn_blocking(move || deliver_due(&db, &clock, sink.as_ref())).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => log::warn!("outbox poll failed: {e}"),
                Err(e) => log::error!("outbox worker task failed: {e}"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(0), Duration::seconds(10));
        assert_eq!(backoff(1), Duration::seconds(20));
        assert_eq!(backoff(3), Duration::seconds(80));
        assert_eq!(backoff(30), Duration::seconds(3600));
    }
}

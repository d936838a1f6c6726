//! What a scrape of `/metrics` reads besides the counters: the pool, whether the database
//! is marked down, and the outbox's depth.

use actix_web::web;

use crate::db::repo::notifications;
use crate::metrics::Snapshot;
use crate::state::AppState;

/// The values read when scraped. The outbox is counted from the database (three index
/// counts); when the database cannot answer, the outbox is left out and the scrape still
/// succeeds, showing the database as unavailable.
pub async fn snapshot(state: &web::Data<AppState>) -> Snapshot {
    let outbox = super::read(state, |tx| Ok(notifications::depth(tx.conn, tx.now)?)).await;
    let outbox = match outbox {
        Ok(depth) => Some(depth),
        Err(e) => {
            log::warn!("metrics: could not count the outbox: {e}");
            None
        }
    };
    Snapshot {
        pool: state.db.pool_use(),
        database_available: !state.db.health().is_down(),
        outbox,
    }
}

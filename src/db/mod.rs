//! Storage: one diesel schema over SQLite (embedded default) and PostgreSQL (production),
//! an r2d2 pool, the embedded migrations of each backend, and the two ways handlers touch
//! the database: [`Db::read`] and [`Db::write`], both run on actix's blocking pool.

pub mod models;
pub mod repo;
pub mod schema;

use actix_web::web;
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use std::time::Duration;

use crate::config::DatabaseUrl;

pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// A connection to whichever backend the URL named.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

pub type DbPool = Pool<ConnectionManager<DbConnection>>;
pub type PooledDb = PooledConnection<ConnectionManager<DbConnection>>;

/// Start-up failures of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum DbSetupError {
    #[error("cannot open the database: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    #[error("cannot apply migrations: {0}")]
    Migrations(String),
}

/// What the storage layer can fail with at run time. The HTTP error type maps from this
/// (`impl From<DbError> for ApiError`), never the other way round.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A query failed (a unique violation included: see [`DbError::is_unique_violation`]).
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    /// No connection could be had in time: the database is down or the pool is exhausted.
    #[error("no database connection: {0}")]
    Unavailable(#[from] diesel::r2d2::PoolError),
    /// The blocking pool could not run the work (it was cancelled or panicked).
    #[error("the blocking pool failed: {0}")]
    Blocking(String),
}

impl DbError {
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, DbError::Query(e) if is_unique_violation(e))
    }
}

/// Per-connection settings for SQLite: foreign keys enforced, and a busy timeout so that
/// concurrent writers wait instead of failing. WAL mode is a property of the database file
/// and is set once, by [`Db::migrate`], rather than by every new connection at once.
#[derive(Debug)]
struct SqliteTuning;

impl CustomizeConnection<DbConnection, diesel::r2d2::Error> for SqliteTuning {
    fn on_acquire(&self, conn: &mut DbConnection) -> Result<(), diesel::r2d2::Error> {
        if let DbConnection::Sqlite(c) = conn {
            c.batch_execute("PRAGMA busy_timeout = 10000; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
                .map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

#[derive(Clone)]
pub struct Db {
    pool: DbPool,
    backend: &'static str,
}

impl Db {
    /// Opens the pool. Nothing is tried: the URL's scheme decides the backend.
    pub fn connect(url: &DatabaseUrl, pool_size: u32) -> Result<Self, DbSetupError> {
        let (raw, backend) = match url {
            DatabaseUrl::Sqlite(path) => (path.clone(), "sqlite"),
            DatabaseUrl::Postgres(url) => (url.clone(), "postgres"),
        };
        let pool = Pool::builder()
            .max_size(pool_size)
            .connection_timeout(Duration::from_secs(10))
            .connection_customizer(Box::new(SqliteTuning))
            .build(ConnectionManager::<DbConnection>::new(raw))?;
        Ok(Self { pool, backend })
    }

    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// Applies the embedded migrations of this backend that have not run yet.
    pub fn migrate(&self) -> Result<Vec<String>, DbSetupError> {
        let mut conn = self.pool.get()?;
        let migrations = match &mut *conn {
            DbConnection::Sqlite(c) => {
                // Readers do not block the writer, and the writer does not block readers.
                c.batch_execute("PRAGMA journal_mode = WAL;")
                    .map_err(|e| DbSetupError::Migrations(format!("cannot switch SQLite to WAL: {e}")))?;
                SQLITE_MIGRATIONS
            }
            DbConnection::Postgres(_) => POSTGRES_MIGRATIONS,
        };
        let applied = conn
            .run_pending_migrations(migrations)
            .map_err(|e| DbSetupError::Migrations(e.to_string()))?;
        Ok(applied.iter().map(|v| v.to_string()).collect())
    }

    /// A pooled connection for work already running off the async workers.
    pub fn get(&self) -> Result<PooledDb, diesel::r2d2::PoolError> {
        self.pool.get()
    }

    /// Whether the database answers a trivial query (the readiness check).
    pub async fn ping(&self) -> Result<(), DbError> {
        self.read(|conn| conn.batch_execute("SELECT 1").map_err(DbError::from))
            .await
    }

    /// Runs `f` on the blocking pool with a connection, outside any transaction.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let pool = self.pool.clone();
        web::block(move || {
            let mut conn = pool.get().map_err(DbError::from)?;
            f(&mut conn)
        })
        .await
        .map_err(|e| E::from(DbError::Blocking(e.to_string())))?
    }

    /// Runs `f` on the blocking pool inside one write transaction: everything it changes
    /// (rows, audit events, notifications) commits together or not at all.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let pool = self.pool.clone();
        web::block(move || {
            let mut conn = pool.get().map_err(DbError::from)?;
            write_transaction(&mut conn, f)
        })
        .await
        .map_err(|e| E::from(DbError::Blocking(e.to_string())))?
    }
}

/// A write transaction. On SQLite it begins `IMMEDIATE`, taking the write lock up front, so
/// that two writers queue on the busy timeout instead of one failing when it upgrades a
/// read lock. On PostgreSQL it is a plain transaction; code that must serialize with other
/// writers of the same tenant locks a row (see `repo::accounts::lock_tenant`).
pub fn write_transaction<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<DbError>,
{
    let begun = match conn {
        DbConnection::Sqlite(c) => AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE"),
        DbConnection::Postgres(c) => AnsiTransactionManager::begin_transaction(c),
    };
    begun.map_err(DbError::from)?;
    type Manager = <DbConnection as Connection>::TransactionManager;
    match f(conn) {
        Ok(value) => match Manager::commit_transaction(conn) {
            Ok(()) => Ok(value),
            Err(commit_err) => {
                if let Err(e) = Manager::rollback_transaction(conn) {
                    log::warn!("rollback after a failed commit failed too: {e}");
                }
                Err(DbError::from(commit_err).into())
            }
        },
        Err(err) => {
            if let Err(e) = Manager::rollback_transaction(conn) {
                log::warn!("rollback failed: {e}");
            }
            Err(err)
        }
    }
}

/// Whether a diesel error is a unique-constraint violation (a conflict, not a failure).
pub fn is_unique_violation(err: &diesel::result::Error) -> bool {
    matches!(
        err,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}

//! Storage: one diesel schema over SQLite (embedded default) and PostgreSQL (production),
//! an r2d2 pool, the embedded migrations of each backend, and the two ways handlers touch
//! the database: [`Db::read`] and [`Db::write`], both run on actix's blocking pool.

pub mod change_stamp;
pub mod models;
pub mod principal_writes;
pub mod repo;
pub mod schema;

use actix_web::web;
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::r2d2::{ConnectionManager, CustomizeConnection, ManageConnection, Pool, PooledConnection, R2D2Connection};
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::config::DatabaseUrl;
use change_stamp::ChangeStamps;
use principal_writes::PrincipalWrites;

pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// A connection to whichever backend the URL named.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

pub type DbPool = Pool<Manager>;
pub type PooledDb = PooledConnection<Manager>;

/// A pooled connection with what the pool must know about it beyond diesel's view: when it
/// last answered, and whether it must prove it still works before its next use.
pub struct TrackedConnection {
    conn: DbConnection,
    last_ok: Instant,
    suspect: bool,
    broken: bool,
}

impl std::ops::Deref for TrackedConnection {
    type Target = DbConnection;

    fn deref(&self) -> &DbConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for TrackedConnection {
    fn deref_mut(&mut self) -> &mut DbConnection {
        &mut self.conn
    }
}

impl TrackedConnection {
    /// Whether this connection must be pinged before it is handed out: after a failed use,
    /// or after it sat idle long enough for the server or a proxy to have dropped it.
    fn needs_check(&self) -> bool {
        self.suspect || self.last_ok.elapsed() >= IDLE_CHECK
    }

    /// Records a use; a failed one makes the connection suspect (it may be the connection
    /// that failed, not the query).
    fn used(&mut self, ok: bool) {
        if ok {
            self.last_ok = Instant::now();
        }
        self.suspect = !ok;
    }
}

/// r2d2's manager for [`TrackedConnection`]s. r2d2's own test on checkout (a `SELECT 1`
/// before every use) would cost every request a round trip; [`Db::checkout`] pings only a
/// connection that [`TrackedConnection::needs_check`], and a connection that fails its ping is
/// marked broken, so the pool closes it instead of taking it back.
pub struct Manager(ConnectionManager<DbConnection>);

impl ManageConnection for Manager {
    type Connection = TrackedConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<TrackedConnection, Self::Error> {
        Ok(TrackedConnection {
            conn: self.0.connect()?,
            last_ok: Instant::now(),
            suspect: false,
            broken: false,
        })
    }

    fn is_valid(&self, conn: &mut TrackedConnection) -> Result<(), Self::Error> {
        self.0.is_valid(&mut conn.conn)
    }

    fn has_broken(&self, conn: &mut TrackedConnection) -> bool {
        conn.broken || self.0.has_broken(&mut conn.conn)
    }
}

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
    /// The database was found unreachable a moment ago; not tried again yet (see [`Health`]).
    #[error("the database is unreachable")]
    Down,
    /// A connection could not be opened (SQLite's writing connection).
    #[error("cannot open a database connection: {0}")]
    Open(String),
    /// The blocking pool could not run the work (it was cancelled or panicked).
    #[error("the blocking pool failed: {0}")]
    Blocking(String),
}

impl DbError {
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, DbError::Query(e) if is_unique_violation(e))
    }

    /// The database could not be reached (no connection, or the connection was lost), as
    /// opposed to a query that failed: worth a 503 and a retry, not a 500.
    pub fn is_unavailable(&self) -> bool {
        match self {
            DbError::Unavailable(_) | DbError::Down | DbError::Open(_) => true,
            DbError::Query(diesel::result::Error::DatabaseError(kind, _)) => matches!(
                kind,
                diesel::result::DatabaseErrorKind::ClosedConnection
                    | diesel::result::DatabaseErrorKind::UnableToSendCommand
            ),
            _ => false,
        }
    }
}

/// Per-connection settings for SQLite: foreign keys enforced, and a busy timeout so that
/// concurrent writers wait instead of failing. WAL mode is a property of the database file
/// and is set once, by [`Db::migrate`], rather than by every new connection at once.
#[derive(Debug)]
struct SqliteTuning;

impl CustomizeConnection<TrackedConnection, diesel::r2d2::Error> for SqliteTuning {
    fn on_acquire(&self, conn: &mut TrackedConnection) -> Result<(), diesel::r2d2::Error> {
        if let DbConnection::Sqlite(c) = &mut conn.conn {
            c.batch_execute(SQLITE_SETTINGS)
                .map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

const SQLITE_SETTINGS: &str = "PRAGMA busy_timeout = 10000; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;";

/// The connection a SQLite database is written through, with the pool's settings, and its
/// watch on principal tables when its commits are to keep the principal epoch.
fn open_sqlite_writer(path: &str, stamps: Option<&Arc<ChangeStamps>>) -> Result<WriterConnection, DbError> {
    let mut conn = SqliteConnection::establish(path).map_err(|e| DbError::Open(e.to_string()))?;
    conn.batch_execute(SQLITE_SETTINGS)?;
    let quiet = match stamps {
        None => None,
        Some(stamps) => match PrincipalWrites::watch(&mut conn) {
            Ok(writes) => Some(QuietCommits {
                stamps: stamps.clone(),
                writes,
            }),
            Err(e) => {
                log::warn!("every commit invalidates cached principals: {e}");
                None
            }
        },
    };
    Ok(WriterConnection {
        conn: DbConnection::Sqlite(conn),
        quiet,
    })
}

/// The PostgreSQL advisory lock key that serializes migrations between instances (any
/// fixed 64-bit number no other code uses: the bytes of "stewardm").
pub const MIGRATION_LOCK: i64 = 0x7374_6577_6172_646d;

/// Puts a SQLite file in WAL mode (a no-op when it is already). Switching needs the file to
/// itself, and SQLite answers "database is locked" at once, without its busy handler, while
/// another process has it open: a second instance starting beside the first one did fail
/// here now and then. It is tried again for up to [`SETUP_TIMEOUT`].
fn switch_to_wal(conn: &mut SqliteConnection) -> Result<(), DbSetupError> {
    let deadline = Instant::now() + SETUP_TIMEOUT;
    loop {
        match conn.batch_execute("PRAGMA journal_mode = WAL;") {
            Ok(()) => return Ok(()),
            Err(e) if e.to_string().contains("locked") && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(DbSetupError::Migrations(format!("cannot switch SQLite to WAL: {e}"))),
        }
    }
}

/// A migration run that failed inside its transaction (rolled back as a whole).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct MigrationFailure(String);

impl From<DbError> for MigrationFailure {
    fn from(e: DbError) -> Self {
        Self(e.to_string())
    }
}

/// A pooled connection idle this long is pinged before it is used again.
const IDLE_CHECK: Duration = Duration::from_secs(2);

/// How long start-up and tools wait for a connection (requests wait `checkout_timeout`).
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// While the database is unreachable, one checkout per this interval tries it again...
const PROBE_INTERVAL: Duration = Duration::from_millis(500);

/// ...waiting at most this long (or the checkout timeout, if shorter), so that the request
/// that probes is answered about as fast as the others.
const PROBE_TIMEOUT: Duration = Duration::from_millis(300);

/// A circuit breaker in front of the pool. When a checkout fails because connections cannot
/// be made (not merely because all are busy), the database is marked down: from then on
/// checkouts fail at once instead of each waiting out the timeout, so requests do not pile
/// up, except one every [`PROBE_INTERVAL`], which tries for real and, when it gets a working
/// connection, marks the database up again. Nothing runs in the background.
pub struct Health {
    down: AtomicBool,
    /// Milliseconds since `epoch` before which no probe is tried.
    next_probe: AtomicU64,
    epoch: Instant,
}

impl Health {
    fn new() -> Self {
        Self {
            down: AtomicBool::new(false),
            next_probe: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Whether this checkout may try the database (it is up, or it is this one's turn to probe).
    fn may_try(&self) -> bool {
        if !self.is_down() {
            return true;
        }
        let now = self.now_ms();
        let due = self.next_probe.load(Ordering::Acquire);
        now >= due
            && self
                .next_probe
                .compare_exchange(
                    due,
                    now + PROBE_INTERVAL.as_millis() as u64,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
    }

    fn mark_down(&self) {
        let next = self.now_ms() + PROBE_INTERVAL.as_millis() as u64;
        self.next_probe.store(next, Ordering::Release);
        if !self.down.swap(true, Ordering::AcqRel) {
            log::error!("the database is unreachable; answering 503 until it is back");
        }
    }

    fn mark_up(&self) {
        if self.down.swap(false, Ordering::AcqRel) {
            log::info!("the database is reachable again");
        }
    }
}

/// The pool's connections at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolUse {
    pub in_use: u32,
    pub idle: u32,
    pub max: u32,
}

#[derive(Clone)]
pub struct Db {
    pool: DbPool,
    backend: &'static str,
    health: Arc<Health>,
    probe_timeout: Duration,
    /// On SQLite, the one connection this process writes through (`None` on PostgreSQL).
    /// SQLite takes one writer at a time: this process's writers queue on this lock, where the
    /// next one is woken the moment the last commits, instead of in SQLite's busy handler,
    /// which polls with sleeps of up to 100 ms (the p99 of concurrent writes was that sleep);
    /// the busy timeout still orders writers of other processes on the same file. One writing
    /// connection also keeps its page cache: SQLite drops a connection's cache whenever
    /// another connection has committed, so writes spread over the pool read their pages
    /// from the file again each time.
    sqlite_writer: Option<Arc<SqliteWriter>>,
}

/// SQLite's writing connection: opened from `path` at the first write, behind the lock that
/// orders this process's writers; with `stamps`, its commits that change no principal table
/// keep the principal epoch (see [`Db::keep_principal_epoch`]).
struct SqliteWriter {
    path: String,
    stamps: OnceLock<Arc<ChangeStamps>>,
    conn: Mutex<Option<WriterConnection>>,
}

struct WriterConnection {
    conn: DbConnection,
    quiet: Option<QuietCommits>,
}

/// What a writer needs to announce its quiet commits.
struct QuietCommits {
    stamps: Arc<ChangeStamps>,
    writes: PrincipalWrites,
}

impl Db {
    /// Opens the pool. Nothing is tried: the URL's scheme decides the backend. A request
    /// waits at most `checkout_timeout` for a connection; connections are made in the
    /// background, so a database that is not up yet does not stop the pool from opening
    /// (the first use, e.g. [`Db::migrate`], waits for it).
    pub fn connect(url: &DatabaseUrl, pool_size: u32, checkout_timeout: Duration) -> Result<Self, DbSetupError> {
        let (raw, backend) = match url {
            DatabaseUrl::Sqlite(path) => (path.clone(), "sqlite"),
            DatabaseUrl::Postgres(url) => (url.clone(), "postgres"),
        };
        let pool = Pool::builder()
            .max_size(pool_size)
            .connection_timeout(checkout_timeout)
            .test_on_check_out(false)
            .connection_customizer(Box::new(SqliteTuning))
            .build_unchecked(Manager(ConnectionManager::<DbConnection>::new(raw.clone())));
        Ok(Self {
            pool,
            backend,
            health: Arc::new(Health::new()),
            probe_timeout: PROBE_TIMEOUT.min(checkout_timeout),
            sqlite_writer: (backend == "sqlite").then(|| {
                Arc::new(SqliteWriter {
                    path: raw,
                    stamps: OnceLock::new(),
                    conn: Mutex::new(None),
                })
            }),
        })
    }

    /// From now on, this process's SQLite commits that write no table principals are read
    /// from keep `stamps`' principal epoch (see `change_stamp`). Call once, after the
    /// migrations: the writer watches the tables that exist when it opens (it is reopened).
    pub fn keep_principal_epoch(&self, stamps: Arc<ChangeStamps>) {
        if let Some(writer) = &self.sqlite_writer {
            if writer.stamps.set(stamps).is_ok() {
                *writer.conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
            }
        }
    }

    /// How many pooled connections are open, in use and idle, and the most there may be.
    pub fn pool_use(&self) -> PoolUse {
        let state = self.pool.state();
        PoolUse {
            in_use: state.connections.saturating_sub(state.idle_connections),
            idle: state.idle_connections,
            max: self.pool.max_size(),
        }
    }

    /// Whether the database was found unreachable and has not answered since.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// A connection for a request: at once an error while the database is known to be down
    /// (but for the periodic probe), else the pool's checkout with its short timeout. A
    /// connection that [`TrackedConnection::needs_check`] is pinged first; one that fails is
    /// closed and the next one tried, until the checkout's time is up.
    fn checkout(pool: &DbPool, health: &Health, probe_timeout: Duration) -> Result<PooledDb, DbError> {
        if !health.may_try() {
            return Err(DbError::Down);
        }
        let timeout = if health.is_down() {
            probe_timeout
        } else {
            pool.connection_timeout()
        };
        let deadline = Instant::now() + timeout;
        loop {
            let got = pool.get_timeout(deadline.saturating_duration_since(Instant::now()));
            let mut conn = match got {
                Ok(conn) => conn,
                Err(e) => {
                    // r2d2 says why only when making a connection failed; a bare timeout is a
                    // busy pool, which is no reason to stop trying.
                    if e.to_string().contains(": ") || health.is_down() {
                        health.mark_down();
                    }
                    return Err(DbError::Unavailable(e));
                }
            };
            // While the database is marked down, only a connection that answers brings it up.
            if !conn.needs_check() && !health.is_down() {
                return Ok(conn);
            }
            if conn.conn.ping().is_ok() {
                conn.used(true);
                health.mark_up();
                return Ok(conn);
            }
            conn.broken = true;
            if Instant::now() >= deadline {
                health.mark_down();
                return Err(DbError::Down);
            }
        }
    }

    /// Runs `f` with a connection checked out of the pool and records how the use went.
    fn with_connection<T, E>(
        pool: &DbPool,
        health: &Health,
        probe: Duration,
        f: impl FnOnce(&mut PooledDb) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<DbError>,
    {
        let mut conn = Self::checkout(pool, health, probe)?;
        let result = f(&mut conn);
        conn.used(result.is_ok());
        result
    }

    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// Applies the embedded migrations of this backend that have not run yet. Several
    /// instances may start at the same moment on one database: on PostgreSQL the migrating
    /// connection holds a session-level advisory lock ([`MIGRATION_LOCK`]) around the run, so
    /// the others wait, then find nothing left to apply; on SQLite the whole run is one
    /// `BEGIN IMMEDIATE` transaction, which takes the file's write lock up front (another
    /// process waits on the busy timeout). Every migration must therefore be transactional.
    pub fn migrate(&self) -> Result<Vec<String>, DbSetupError> {
        let mut conn = self.pool.get_timeout(SETUP_TIMEOUT)?;
        let failed = |e: &dyn std::fmt::Display| DbSetupError::Migrations(e.to_string());
        let applied = match &mut **conn {
            DbConnection::Sqlite(c) => {
                // Readers do not block the writer, and the writer does not block readers.
                switch_to_wal(c)?;
                write_transaction(&mut conn, |conn| {
                    conn.run_pending_migrations(SQLITE_MIGRATIONS)
                        .map(|applied| applied.iter().map(|v| v.to_string()).collect())
                        .map_err(|e| MigrationFailure(e.to_string()))
                })
                .map_err(|e| failed(&e))?
            }
            DbConnection::Postgres(c) => {
                c.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
                    .map_err(|e| failed(&e))?;
                let applied = conn
                    .run_pending_migrations(POSTGRES_MIGRATIONS)
                    .map(|applied| applied.iter().map(|v| v.to_string()).collect());
                // Released whatever the outcome; if even that fails, the error stops start-up
                // and the process's exit closes the connection, which releases it too.
                let unlocked = conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"));
                let applied = applied.map_err(|e| failed(&e))?;
                unlocked.map_err(|e| failed(&e))?;
                applied
            }
        };
        Ok(applied)
    }

    /// A pooled connection for work already running off the async workers.
    pub fn get(&self) -> Result<PooledDb, diesel::r2d2::PoolError> {
        self.pool.get_timeout(SETUP_TIMEOUT)
    }

    /// Whether the database answers a trivial query (the readiness check). While it is known
    /// to be down this fails at once, like any request.
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
        let (pool, health, probe) = (self.pool.clone(), self.health.clone(), self.probe_timeout);
        web::block(move || Self::with_connection(&pool, &health, probe, |conn| f(conn)))
            .await
            .map_err(|e| E::from(DbError::Blocking(e.to_string())))?
    }

    /// Runs `f` on the blocking pool for writes that are each one statement: on SQLite inside
    /// the writer's transaction, as [`Db::write`]; on PostgreSQL outside any, every statement
    /// committing by itself, which spares the round trips of `BEGIN` and `COMMIT` (a refresh
    /// reads twice and writes once). A change of several statements inside `f` must run in a
    /// transaction of its own (`Connection::transaction`: a savepoint on SQLite).
    pub async fn write_statements<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        if self.sqlite_writer.is_some() {
            return self.write(f).await;
        }
        self.read(f).await
    }

    /// Runs `f` on the blocking pool inside one write transaction: everything it changes
    /// (rows, audit events, notifications) commits together or not at all.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        if let Some(writer) = &self.sqlite_writer {
            let writer = writer.clone();
            return web::block(move || {
                let mut slot = writer.conn.lock().unwrap_or_else(|poisoned| {
                    // A writer panicked mid-transaction: its connection is not trusted again.
                    let mut slot = poisoned.into_inner();
                    *slot = None;
                    slot
                });
                let writing = match &mut *slot {
                    Some(writing) => writing,
                    empty => empty.insert(open_sqlite_writer(&writer.path, writer.stamps.get())?),
                };
                watched_write_transaction(&mut writing.conn, writing.quiet.as_ref(), f)
            })
            .await
            .map_err(|e| E::from(DbError::Blocking(e.to_string())))?;
        }
        let (pool, health, probe) = (self.pool.clone(), self.health.clone(), self.probe_timeout);
        web::block(move || Self::with_connection(&pool, &health, probe, |conn| write_transaction(conn, f)))
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
    watched_write_transaction(conn, None, f)
}

/// A write transaction that, with `quiet`, announces its commit quiet when it wrote no
/// principal table: after `BEGIN IMMEDIATE` and before `COMMIT` the write lock is this
/// connection's, so the next commit after the stamp it announces from is its own.
fn watched_write_transaction<T, E, F>(conn: &mut DbConnection, quiet: Option<&QuietCommits>, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<DbError>,
{
    let begun = match conn {
        DbConnection::Sqlite(c) => AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE"),
        DbConnection::Postgres(c) => AnsiTransactionManager::begin_transaction(c),
    };
    begun.map_err(DbError::from)?;
    if let Some(quiet) = quiet {
        quiet.writes.reset();
    }
    type Manager = <DbConnection as Connection>::TransactionManager;
    match f(conn) {
        Ok(value) => {
            let announced = quiet.filter(|q| q.writes.only_elsewhere() && q.stamps.announce_quiet_commit());
            match Manager::commit_transaction(conn) {
                Ok(()) => {
                    if let Some(quiet) = announced {
                        quiet.stamps.committed();
                    }
                    Ok(value)
                }
                Err(commit_err) => {
                    if let Some(quiet) = announced {
                        quiet.stamps.withdraw_quiet_commit();
                    }
                    if let Err(e) = Manager::rollback_transaction(conn) {
                        log::warn!("rollback after a failed commit failed too: {e}");
                    }
                    Err(DbError::from(commit_err).into())
                }
            }
        }
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

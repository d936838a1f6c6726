//! Whether a transaction of this process's SQLite writer changed a table that principals are
//! read from (`db::repo::principals`, `auth::extract`). When it did not, its commit keeps the
//! principal epoch (see `db::change_stamp`), and the principals cached for access tokens stay
//! valid through a login's bookkeeping, an audit event or a notification.
//!
//! The writer's connection gets a `TEMP` trigger on every table for every insert, update and
//! delete (cascades and triggers included), calling a function that records a write, and a
//! write to a principal table: to any table but the few listed in
//! [`NEVER_READ_BY_PRINCIPALS`]. A transaction is quiet when it wrote rows, none of them in a
//! principal table (one that wrote nothing commits nothing, and cannot be announced).
//! Temporary triggers live in the writer's connection only; nothing is added to the schema,
//! and other connections and processes are not slowed. A table added later is a principal
//! table unless it is added to that list. Virtual tables
//! (the member search's full-text index) cannot have triggers and are not watched: no
//! principal may be read from one.
//!
//! One exception, for logins: inserting a session changes no principal, since a principal is
//! found from its own session's id and a new row has a new id. That trigger still fires when a
//! row with the same id exists (an `INSERT OR REPLACE` would delete it without a delete
//! trigger).

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel::SqliteConnection;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

/// Tables no principal is read from: writing them leaves every principal as it was. Keep
/// this list short, and check `auth::extract` and `db::repo::principals` before adding one.
pub const NEVER_READ_BY_PRINCIPALS: &[&str] = &[
    "audit_events",
    "billing_profiles",
    "caretaker_assignments",
    "contacts",
    "idempotency_keys",
    "invite_roles",
    "invites",
    "notifications",
    "password_reset_tokens",
    "rate_limits",
    "refresh_tokens",
    "seat_ledger",
    "user_search_keys",
    "webhook_endpoints",
];

/// Tables every principal load reads; each must be watched, or nothing is announced quiet.
pub const READ_BY_PRINCIPALS: &[&str] = &[
    "accounts",
    "api_key_roles",
    "api_keys",
    "impersonations",
    "membership_roles",
    "memberships",
    "role_permissions",
    "roles",
    "sessions",
    "users",
];

diesel::define_sql_function! {
    /// Records a write, to a principal table when `principal` is 1 (registered on the
    /// writer's connection only).
    #[sql_name = "steward_write"]
    fn record_write(principal: diesel::sql_types::Integer) -> diesel::sql_types::Integer;
}

/// Bits of [`PrincipalWrites`]' flags.
const WROTE: u8 = 1;
const WROTE_PRINCIPALS: u8 = 2;

#[derive(QueryableByName)]
struct TableName {
    #[diesel(sql_type = Text)]
    name: String,
}

/// What one writer connection's transaction wrote so far: rows, rows of principal tables.
#[derive(Clone, Debug)]
pub struct PrincipalWrites(Arc<AtomicU8>);

impl PrincipalWrites {
    /// Installs the triggers on `conn`. Call after the migrations: tables created later on
    /// this connection's watch are not seen (an error here when a principal table is missing).
    pub fn watch(conn: &mut SqliteConnection) -> Result<Self, String> {
        let flags = Arc::new(AtomicU8::new(0));
        let recorded = flags.clone();
        record_write_utils::register_nondeterministic_impl(conn, move |principal: i32| {
            // Principal writes set their bit alone: the `BEFORE` trigger of a session insert
            // calls with 1 before any row is written (and the `AFTER` one with 0 once it is).
            let bits = if principal == 1 { WROTE_PRINCIPALS } else { WROTE };
            recorded.fetch_or(bits, Ordering::Relaxed);
            0
        })
        .map_err(|e| e.to_string())?;
        let tables: Vec<TableName> =
            // Ordinary tables only: virtual tables (the member search's FTS5 index) take no
            // triggers, and their shadow tables are written by the module alone.
            diesel::sql_query("SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table' AND name NOT LIKE 'sqlite_%'")
                .load(conn)
                .map_err(|e| e.to_string())?;
        let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
        if let Some(missing) = READ_BY_PRINCIPALS.iter().find(|t| !names.contains(t)) {
            return Err(format!("table {missing} does not exist yet"));
        }
        conn.batch_execute(&triggers(&names)).map_err(|e| e.to_string())?;
        Ok(Self(flags))
    }

    /// Forgets what was written (at the start of a transaction).
    pub fn reset(&self) {
        self.0.store(0, Ordering::Relaxed);
    }

    /// Whether rows were written since [`PrincipalWrites::reset`], none of a principal table.
    /// Rows that a failed statement wrote and took back count as written: the pages they
    /// dirtied are written at the commit all the same.
    pub fn only_elsewhere(&self) -> bool {
        self.0.load(Ordering::Relaxed) == WROTE
    }

    /// Whether a principal table was written since [`PrincipalWrites::reset`].
    pub fn principals(&self) -> bool {
        self.0.load(Ordering::Relaxed) & WROTE_PRINCIPALS != 0
    }
}

/// The `TEMP` triggers that watch `tables`. Each fires after a row is written, so that a
/// write it records has dirtied a page, which the commit then writes.
fn triggers(tables: &[&str]) -> String {
    let mut sql = String::new();
    let mut add = |name: String, when: &str, op: &str, table: &str, principal: &str| {
        sql.push_str(&format!(
            "CREATE TEMP TRIGGER IF NOT EXISTS \"{name}\" {when} {op} ON main.\"{table}\"{} \
             BEGIN SELECT steward_write({principal}); END;\n",
            if when == "BEFORE" {
                // Only a session inserted over an existing one's id: a `BEFORE` trigger fires
                // before anything is written, so it may record a principal write but never
                // a write as such (the insert may still fail and write nothing).
                " WHEN EXISTS (SELECT 1 FROM main.sessions WHERE id = NEW.id)"
            } else {
                ""
            }
        ));
    };
    for table in tables {
        for op in ["INSERT", "UPDATE", "DELETE"] {
            let name = format!("steward_watch_{table}_{}", op.to_lowercase());
            let principal = if *table == "sessions" && op == "INSERT" {
                // A new session is no principal's, unless it takes the id of an existing one
                // (seen before the insert: a replaced row fires no delete trigger).
                add(format!("{name}_replacing"), "BEFORE", op, table, "1");
                "0"
            } else if NEVER_READ_BY_PRINCIPALS.contains(table) {
                "0"
            } else {
                "1"
            };
            add(name, "AFTER", op, table, principal);
        }
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatabaseUrl;
    use crate::db::Db;
    use std::time::Duration;

    /// A migrated database file and a watched connection to it.
    fn watched() -> (tempfile::TempDir, SqliteConnection, PrincipalWrites) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("watched.db").display().to_string();
        let db = Db::connect(&DatabaseUrl::Sqlite(path.clone()), 1, Duration::from_secs(10)).expect("open");
        db.migrate().expect("migrate");
        let mut conn = SqliteConnection::establish(&path).expect("connect");
        let writes = PrincipalWrites::watch(&mut conn).expect("watch");
        (dir, conn, writes)
    }

    fn raises(conn: &mut SqliteConnection, writes: &PrincipalWrites, sql: &str) -> bool {
        writes.reset();
        conn.batch_execute(sql).expect(sql);
        writes.principals()
    }

    const USER: &str = "INSERT INTO users (id, email, email_normalized, first_name, last_name, \
        must_change_password, status, show_calendar, daily_email_reminders, created_at, updated_at) \
        VALUES ('usr_1', 'a@example.com', 'a@example.com', 'A', 'B', 0, 'active', 0, 0, \
        '2026-01-01 00:00:00', '2026-01-01 00:00:00');";
    const SESSION: &str = "INSERT INTO sessions (id, user_id, created_at, expires_at) \
        VALUES ('ses_1', 'usr_1', '2026-01-01 00:00:00', '2026-02-01 00:00:00');";

    #[test]
    fn writing_what_principals_read_raises_the_flag() {
        let (_dir, mut conn, writes) = watched();
        assert!(raises(&mut conn, &writes, USER), "a new user");
        assert!(!raises(&mut conn, &writes, SESSION), "a new session is no principal's");
        assert!(
            raises(
                &mut conn,
                &writes,
                "UPDATE sessions SET revoked_at = '2026-01-02 00:00:00' WHERE id = 'ses_1';"
            ),
            "a revoked session"
        );
        assert!(
            raises(&mut conn, &writes, "UPDATE users SET status = 'deactivated';"),
            "a deactivated user"
        );
        assert!(
            raises(
                &mut conn,
                &writes,
                "INSERT OR REPLACE INTO sessions (id, user_id, created_at, expires_at) \
                 VALUES ('ses_1', 'usr_1', '2026-01-01 00:00:00', '2026-03-01 00:00:00');"
            ),
            "a session replaced under the same id"
        );
        assert!(raises(&mut conn, &writes, "DELETE FROM sessions;"), "a deleted session");
    }

    #[test]
    fn bookkeeping_leaves_the_flag_down() {
        let (_dir, mut conn, writes) = watched();
        conn.batch_execute(USER).expect("a user");
        conn.batch_execute(SESSION).expect("a session");
        assert!(!raises(
            &mut conn,
            &writes,
            "INSERT INTO rate_limits (bucket, subject, hits, window_start, window_end) \
             VALUES ('login_account', 'a@example.com', 1, '2026-01-01 00:00:00', '2026-01-01 00:15:00');"
        ));
        assert!(!raises(
            &mut conn,
            &writes,
            "INSERT INTO refresh_tokens (id, session_id, token_hash, created_at, expires_at) \
             VALUES ('rtk_1', 'ses_1', 'x', '2026-01-01 00:00:00', '2026-02-01 00:00:00');"
        ));
        assert!(writes.only_elsewhere(), "rows were written");
        writes.reset();
        let duplicate = "INSERT INTO sessions (id, user_id, created_at, expires_at) \
            VALUES ('ses_1', 'usr_1', '2026-01-01 00:00:00', '2026-02-01 00:00:00');";
        assert!(conn.batch_execute(duplicate).is_err(), "the id is taken");
        assert!(
            writes.principals(),
            "a session over an existing id is a principal write, even refused"
        );
        assert!(!writes.only_elsewhere());
        assert!(!raises(&mut conn, &writes, "DELETE FROM rate_limits;"));
        assert!(!raises(&mut conn, &writes, "DELETE FROM rate_limits;"));
        assert!(!writes.only_elsewhere(), "no row was written: nothing to announce");
    }

    #[test]
    fn a_principal_table_missing_means_no_watch() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("empty.db").display().to_string();
        let mut conn = SqliteConnection::establish(&path).expect("connect");
        assert!(PrincipalWrites::watch(&mut conn).is_err());
    }

    #[test]
    fn no_table_is_both_read_and_never_read() {
        for table in READ_BY_PRINCIPALS {
            assert!(!NEVER_READ_BY_PRINCIPALS.contains(table), "{table}");
        }
    }
}

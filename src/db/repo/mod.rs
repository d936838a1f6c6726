//! The only code that builds queries. Every function takes a connection (inside or outside
//! a transaction, as the caller decides) and returns `Result`: a missing row is `Ok(None)`,
//! a database failure is an error, never a `None`.
//!
//! Lookups by a unique key use `.get_result(conn).optional()`, not `.first(conn)`: `first`
//! adds `LIMIT ?`, and SQLite re-prepares a statement whose LIMIT is a bound parameter every
//! time it runs, which cost 40 % of the CPU of an authenticated request (see the benchmark).

pub mod accounts;
pub mod api_keys;
pub mod audit;
pub mod caretakers;
pub mod contacts;
pub mod idempotency;
pub mod impersonations;
pub mod invites;
pub mod memberships;
pub mod notifications;
pub mod password_resets;
pub mod principals;
pub mod rate_limits;
pub mod roles;
pub mod seats;
pub mod sessions;
pub mod users;
pub mod webhooks;

pub type RepoResult<T> = Result<T, diesel::result::Error>;

/// Escapes `%`, `_` and `\` for a LIKE pattern used with `ESCAPE '\'`.
pub fn escape_like(raw: &str) -> String {
    raw.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// `EXPLAIN QUERY PLAN` of a query, on SQLite: rows of (id, parent, unused, detail).
pub struct QueryPlan<Q>(pub Q);

impl<Q> diesel::query_builder::QueryId for QueryPlan<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q> diesel::query_builder::Query for QueryPlan<Q> {
    type SqlType = (
        diesel::sql_types::Integer,
        diesel::sql_types::Integer,
        diesel::sql_types::Integer,
        diesel::sql_types::Text,
    );
}

impl<Q> diesel::query_builder::QueryFragment<crate::db::MultiBackend> for QueryPlan<Q>
where
    Q: diesel::query_builder::QueryFragment<crate::db::MultiBackend>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, crate::db::MultiBackend>,
    ) -> diesel::QueryResult<()> {
        out.push_sql("EXPLAIN QUERY PLAN ");
        self.0.walk_ast(out.reborrow())
    }
}

impl<Q> diesel::RunQueryDsl<crate::db::DbConnection> for QueryPlan<Q> {}

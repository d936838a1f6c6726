//! Principals are cached between requests (on SQLite, against the file's change stamp), yet a
//! change made by another connection, as another process or instance would make it, takes
//! effect at the very next request: the session revoked, the user archived, the roles
//! removed. Each change is written here through a connection of the test's own, beside the
//! server, never through the server.

use diesel::prelude::*;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;
use steward::db::schema::{membership_roles, sessions, users};
use steward::db::DbConnection;

/// A connection of the test's own to the database the server uses.
fn beside(app: &TestApp) -> DbConnection {
    match app.backend {
        Backend::Sqlite => {
            let path = app.database_url.trim_start_matches("sqlite://");
            let mut conn = diesel::SqliteConnection::establish(path).expect("a connection beside the server");
            // The server's outbox writes every 50 ms: wait for its turn rather than fail.
            diesel::connection::SimpleConnection::batch_execute(&mut conn, "PRAGMA busy_timeout = 10000;")
                .expect("set a busy timeout");
            DbConnection::Sqlite(conn)
        }
        Backend::Postgres => DbConnection::Postgres(
            diesel::PgConnection::establish(&app.database_url).expect("a connection beside the server"),
        ),
    }
}

/// Asks twice, so that the second answer may come from the cache.
async fn me_twice(app: &TestApp, token: &str) -> Value {
    let (status, first) = app.get("/v1/me", Some(token)).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (status, second) = app.get("/v1/me", Some(token)).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(first, second);
    second
}

#[tokio::test]
async fn a_session_revoked_by_another_connection_ends_at_the_next_request() {
    on_each_backend(|app| async move {
        let access = token(&app.sign_up("ada@example.com").await);
        me_twice(&app, &access).await;
        let now = chrono::Utc::now().naive_utc();
        let revoke = diesel::update(sessions::table).set(sessions::revoked_at.eq(Some(now)));
        RunQueryDsl::execute(revoke, &mut beside(&app)).expect("revoke beside the server");
        let (status, body) = app.get("/v1/me", Some(&access)).await;
        assert_problem(status, &body, 401, "unauthenticated");
    })
    .await;
}

#[tokio::test]
async fn a_user_archived_by_another_connection_is_refused_at_the_next_request() {
    on_each_backend(|app| async move {
        let access = token(&app.sign_up("ada@example.com").await);
        me_twice(&app, &access).await;
        let archive = diesel::update(users::table).set(users::status.eq("archived"));
        RunQueryDsl::execute(archive, &mut beside(&app)).expect("archive beside the server");
        let (status, body) = app.get("/v1/me", Some(&access)).await;
        assert_problem(status, &body, 401, "unauthenticated");
    })
    .await;
}

#[tokio::test]
async fn rights_changed_by_another_connection_apply_at_the_next_request() {
    on_each_backend(|app| async move {
        let owner = token(&app.sign_up("ada@example.com").await);
        let me = me_twice(&app, &owner).await;
        assert!(me["permissions"].as_array().is_some_and(|p| !p.is_empty()), "{me}");
        let unassign = diesel::delete(membership_roles::table);
        RunQueryDsl::execute(unassign, &mut beside(&app)).expect("remove the roles beside the server");
        let (status, me) = app.get("/v1/me", Some(&owner)).await;
        assert_eq!(status, StatusCode::OK, "{me}");
        assert_eq!(me["permissions"], serde_json::json!([]), "{me}");
        assert_eq!(me["membership"]["roles"], serde_json::json!([]), "{me}");
    })
    .await;
}

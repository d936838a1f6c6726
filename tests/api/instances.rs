//! Several instances on one PostgreSQL database (issue 14): two real server processes,
//! started at the same moment on a fresh database, sharing the signing key file. They
//! migrate it once between them (an advisory lock), deliver each notification once (the
//! outbox claims rows `FOR UPDATE SKIP LOCKED`), share rate limits, and a logout or a
//! revocation on one is refused by the other on the very next request. PostgreSQL only:
//! without TEST_DATABASE_URL these tests print a note and pass. Also: two processes
//! migrating one fresh SQLite file at once.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use reqwest::StatusCode;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::time::Duration;

use crate::delivery::{Receiver, SECRET};
use crate::helpers::*;
use crate::process::{credentials, ServerProcess};
use steward::db::models::NotificationRow;
use steward::db::schema::notifications;

/// A PostgreSQL database made for one test from TEST_DATABASE_URL, empty (not migrated),
/// dropped at the end.
struct FreshDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl FreshDatabase {
    /// `None` (after a printed note) when TEST_DATABASE_URL is not set.
    fn create(test: &str) -> Option<Self> {
        let Some(admin_url) = std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()) else {
            eprintln!("{test}: skipped, it needs PostgreSQL (set TEST_DATABASE_URL)");
            return None;
        };
        let name = format!("steward_test_{}", ulid::Ulid::new().to_string().to_lowercase());
        let mut admin = PgConnection::establish(&admin_url).expect("connect to TEST_DATABASE_URL");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create test database");
        let base = admin_url.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin_url);
        let url = format!("{base}/{name}");
        Some(Self { admin_url, name, url })
    }

    fn connect(&self) -> PgConnection {
        PgConnection::establish(&self.url).expect("connect to the test database")
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&self.admin_url) {
            if let Err(e) = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)) {
                eprintln!("could not drop test database {}: {e}", self.name);
            }
        }
    }
}

/// Two instances, `a` and `b`, on one database. Dropping it kills both, then drops the database.
struct Pair {
    a: ServerProcess,
    b: ServerProcess,
    db: FreshDatabase,
    _dir: tempfile::TempDir,
}

fn migration_count(backend: &str) -> usize {
    let dir = format!("{}/migrations/{backend}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_dir(dir).expect("migrations").count()
}

/// How many migrations a server's log says it applied (the line `applied N migration(s)`).
fn applied_in(log: &str) -> usize {
    log.lines()
        .find_map(|l| {
            let rest = l.split("applied ").nth(1)?;
            rest.split(' ').next()?.parse().ok()
        })
        .unwrap_or(0)
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Starts two instances at the same moment on a fresh database, so that both race to
/// migrate it; checks that both come up and the migrations were applied once.
async fn two_instances(test: &str, settings: &[(&str, &str)]) -> Option<Pair> {
    let db = FreshDatabase::create(test)?;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut all = vec![
        ("STEWARD_DATABASE_URL", db.url.as_str()),
        ("STEWARD_LOG", "warn,steward=info"),
        ("STEWARD_WORKERS", "2"),
        ("STEWARD_DATABASE_POOL_SIZE", "4"),
        // Bursts on a busy test machine wait for a connection rather than answer 503.
        ("STEWARD_DATABASE_TIMEOUT", "10s"),
        ("STEWARD_OUTBOX_POLL_INTERVAL", "20ms"),
    ];
    all.extend_from_slice(settings);
    // Neither is waited for before both run: they migrate the empty database together.
    let mut a = ServerProcess::spawn(dir.path(), "a", &all);
    let mut b = ServerProcess::spawn(dir.path(), "b", &all);
    a.ready().await;
    b.ready().await;

    let total = migration_count("postgres");
    let mut applied = [applied_in(&a.log()), applied_in(&b.log())];
    applied.sort();
    assert_eq!(
        applied,
        [0, total],
        "one instance applies every migration, the other none:\n--- a\n{}\n--- b\n{}",
        a.log(),
        b.log()
    );
    let recorded: Count = diesel::sql_query("SELECT count(*) AS n FROM __diesel_schema_migrations")
        .get_result(&mut db.connect())
        .expect("the migrations table");
    assert_eq!(recorded.n as usize, total);
    Some(Pair { a, b, db, _dir: dir })
}

#[tokio::test]
async fn each_notification_is_delivered_once_across_two_instances() {
    let receiver = Receiver::start(0).await;
    let settings = [
        ("STEWARD_NOTIFY_URL", receiver.url.as_str()),
        ("STEWARD_NOTIFY_SECRET", SECRET),
        ("STEWARD_LIMIT_INVITES_PER_ORGANIZATION", "1000/1h"),
    ];
    let Some(pair) = two_instances("notifications", &settings).await else {
        return;
    };
    let owner = token(&pair.a.sign_up("owner@example.com").await);
    let viewer = pair.b.builtin_role(&owner, "viewer").await;

    // 30 invitations, written through both instances at once.
    let invites = (0..30).map(|i| {
        let via = if i % 2 == 0 { &pair.a } else { &pair.b };
        let body = json!({ "email": format!("guest{i}@example.com"), "role_ids": [&viewer], "send_email": true });
        let owner = owner.clone();
        async move { via.post("/v1/invites", body, Some(&owner)).await }
    });
    for (status, body) in futures_util::future::join_all(invites).await {
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    let mut conn = pair.db.connect();
    let mut outbox = || -> Vec<NotificationRow> {
        notifications::table
            .select(NotificationRow::as_select())
            .load(&mut conn)
            .expect("the outbox")
    };
    let written = outbox();
    assert_eq!(written.len(), 30, "one invitation email each");
    for _ in 0..400 {
        if outbox().iter().all(|n| n.status.to_string() == "delivered") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // Both instances keep polling every 20 ms: give a duplicate every chance to show.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let received = receiver.received();
    let mut per_id: HashMap<&str, usize> = HashMap::new();
    for r in &received {
        assert!(r.signed_with(SECRET), "bad signature: {r:?}");
        *per_id.entry(r.id.as_str()).or_default() += 1;
    }
    let twice: Vec<_> = per_id.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    let expected: HashSet<&str> = written.iter().map(|n| n.id.as_str()).collect();
    let got: HashSet<&str> = per_id.keys().copied().collect();
    assert_eq!(got, expected, "every notification, and nothing else");
    for n in outbox() {
        assert_eq!(
            (n.status.to_string(), n.attempts),
            ("delivered".to_string(), 1),
            "{n:?}"
        );
    }
}

#[tokio::test]
async fn rate_limits_are_shared_by_the_instances() {
    let settings = [("STEWARD_LIMIT_LOGIN_PER_ACCOUNT", "4/15m")];
    let Some(pair) = two_instances("rate limits", &settings).await else {
        return;
    };
    pair.a.sign_up("ada@example.com").await;
    // Four failures, two on each instance: the limit is reached on both together.
    for via in [&pair.a, &pair.b, &pair.a, &pair.b] {
        let (status, body) = via
            .post("/v1/auth/login", credentials("ada@example.com", "wrong password"), None)
            .await;
        assert_problem(status, &body, 401, "invalid-credentials");
    }
    for via in [&pair.a, &pair.b] {
        let (status, body) = via
            .post("/v1/auth/login", credentials("ada@example.com", "wrong password"), None)
            .await;
        assert_problem(status, &body, 429, "too-many-attempts");
        let (status, body) = via
            .post("/v1/auth/login", credentials("ada@example.com", PASSWORD), None)
            .await;
        assert_problem(status, &body, 429, "too-many-attempts");
    }
}

#[tokio::test]
async fn a_logout_or_revocation_on_one_instance_is_refused_at_once_by_the_other() {
    let Some(pair) = two_instances("revocation", &[]).await else {
        return;
    };
    let (a, b) = (&pair.a, &pair.b);
    let signed_up = a.sign_up("owner@example.com").await;
    let owner = token(&signed_up);
    // A token issued by one instance works on the other (one key, one database).
    let (status, me) = b.get("/v1/me", Some(&owner)).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    let root = signed_up["account"]["id"].as_str().expect("account id").to_string();

    // Logout on A: B refuses the access token on the very next request, and the refresh token.
    let (status, session) = b
        .post("/v1/auth/login", credentials("owner@example.com", PASSWORD), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let access = token(&session);
    assert_eq!(b.get("/v1/me", Some(&access)).await.0, StatusCode::OK);
    assert_eq!(
        a.post("/v1/auth/logout", json!({}), Some(&access)).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(b.get("/v1/me", Some(&access)).await.0, StatusCode::UNAUTHORIZED);
    let refresh = json!({ "refresh_token": session["refresh_token"] });
    assert_eq!(
        b.post("/v1/auth/refresh", refresh, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        b.get("/v1/me", Some(&owner)).await.0,
        StatusCode::OK,
        "the other session lives"
    );

    // Deactivating a member on A stops their token on B at once.
    let standard = b.builtin_role(&owner, "standard").await;
    let (sam, sam_token) = a.member(&owner, "sam@example.com", &standard, &root).await;
    assert_eq!(b.get("/v1/me", Some(&sam_token)).await.0, StatusCode::OK);
    let (status, body) = a
        .post(&format!("/v1/users/{sam}/deactivate"), json!({}), Some(&owner))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(b.get("/v1/me", Some(&sam_token)).await.0, StatusCode::UNAUTHORIZED);

    // Ending an impersonation on A stops its token on B at once.
    let (kim, _) = a.member(&owner, "kim@example.com", &standard, &root).await;
    let start = json!({ "user_id": kim, "reason": "Ticket 4711: sees a blank dashboard", "confirm": true });
    let (status, started) = a.post("/v1/impersonations", start, Some(&owner)).await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let acting = token(&started);
    let id = started["impersonation"]["id"].as_str().expect("impersonation id");
    let (status, me) = b.get("/v1/me", Some(&acting)).await;
    assert_eq!(
        (status, me["user"]["id"].as_str()),
        (StatusCode::OK, Some(kim.as_str()))
    );
    let (status, body) = a
        .post(&format!("/v1/impersonations/{id}/end"), json!({}), Some(&owner))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(b.get("/v1/me", Some(&acting)).await.0, StatusCode::UNAUTHORIZED);
}

/// Two `steward migrate` processes on one fresh SQLite file at once: both succeed, and the
/// migrations are applied once (the whole run is one `BEGIN IMMEDIATE` transaction).
#[test]
fn two_processes_migrate_one_fresh_sqlite_file_at_once() {
    for round in 0..3 {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("steward.db").display());
        let spawn = || {
            Command::new(env!("CARGO_BIN_EXE_steward"))
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("STEWARD_DATABASE_URL", &url)
                .arg("migrate")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start steward migrate")
        };
        let (first, second) = (spawn(), spawn());
        let mut applied = Vec::new();
        for child in [first, second] {
            let out = child.wait_with_output().expect("steward migrate");
            let stdout = String::from_utf8_lossy(&out.stdout).to_string();
            assert!(
                out.status.success(),
                "round {round}: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            applied.push(applied_in(&stdout));
        }
        applied.sort();
        assert_eq!(applied, [0, migration_count("sqlite")], "round {round}");
    }
}

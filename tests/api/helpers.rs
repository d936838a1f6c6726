//! The test harness: the real server on port 0, talked to over HTTP as a front end would.
//! Each test gets its own database: a SQLite file in a temporary directory and, when
//! TEST_DATABASE_URL is set, a fresh PostgreSQL database that is dropped at the end.

use diesel::connection::SimpleConnection;
use diesel::Connection;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use steward::auth::keys::SigningKeys;
use steward::clock::ManualClock;
use steward::config::Config;
use steward::db::models::{AuditEventRow, NotificationRow};
use steward::db::repo;
use steward::state::AppState;

pub use crate::client::{link_token, InviteAction};
pub use crate::contract::SendChecked;

pub const PASSWORD: &str = "correct horse battery staple";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The backends every integration test runs on: SQLite always, PostgreSQL when
/// TEST_DATABASE_URL names one.
pub fn backends() -> Vec<Backend> {
    let mut list = vec![Backend::Sqlite];
    if std::env::var("TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        list.push(Backend::Postgres);
    }
    list
}

/// Runs `test` once per backend, each time against a fresh server and database.
pub async fn on_each_backend<F, Fut>(test: F)
where
    F: Fn(TestApp) -> Fut,
    Fut: Future<Output = ()>,
{
    on_each_backend_with(&[], test).await
}

/// Like [`on_each_backend`], with extra settings (e.g. `STEWARD_OPEN_SIGNUP=false`).
pub async fn on_each_backend_with<F, Fut>(settings: &[(&str, &str)], test: F)
where
    F: Fn(TestApp) -> Fut,
    Fut: Future<Output = ()>,
{
    for backend in backends() {
        let app = TestApp::spawn(backend, settings).await;
        test(app).await;
    }
}

pub struct KeyDir(#[allow(dead_code)] tempfile::TempDir);

enum Store {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

pub struct TestApp {
    pub backend: Backend,
    pub address: String,
    /// The database this app serves, for tools run beside it (the CLI tests).
    pub database_url: String,
    pub client: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub state: actix_web::web::Data<AppState>,
    /// The same signing key the server uses, so tests can forge near-valid tokens.
    pub keys: SigningKeys,
    _key_dir: KeyDir,
    server: actix_web::dev::ServerHandle,
    store: Store,
}

impl TestApp {
    pub async fn spawn(backend: Backend, settings: &[(&str, &str)]) -> Self {
        Self::spawn_routed(backend, settings, None).await
    }

    /// Like [`TestApp::spawn`]; on PostgreSQL the server reaches its database through
    /// `via` (HOST:PORT, e.g. a proxy the test controls) instead of TEST_DATABASE_URL's host.
    pub async fn spawn_routed(backend: Backend, settings: &[(&str, &str)], via: Option<&str>) -> Self {
        let (url, store) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("steward.db").display());
                (url, Store::Sqlite(dir))
            }
            Backend::Postgres => {
                let admin_url = std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL");
                let name = format!("steward_test_{}", ulid::Ulid::new().to_string().to_lowercase());
                let mut admin = diesel::PgConnection::establish(&admin_url).expect("connect to TEST_DATABASE_URL");
                admin
                    .batch_execute(&format!("CREATE DATABASE {name}"))
                    .expect("create test database");
                let base = admin_url.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin_url);
                let base = match (via, base.rsplit_once('@')) {
                    (Some(via), Some((user, _))) => format!("{user}@{via}"),
                    (Some(via), None) => format!("postgres://{via}"),
                    (None, _) => base.to_string(),
                };
                (format!("{base}/{name}"), Store::Postgres { admin_url, name })
            }
        };
        let mut vars: HashMap<String, String> = [
            ("STEWARD_DATABASE_URL", url.as_str()),
            ("STEWARD_BIND", "127.0.0.1:0"),
            ("STEWARD_WORKERS", "2"),
            ("STEWARD_DATABASE_POOL_SIZE", "8"),
            ("STEWARD_OUTBOX_POLL_INTERVAL", "50ms"),
            ("STEWARD_PUBLIC_URL", "https://app.example.test"),
            ("STEWARD_LOG", "warn"),
            // Every test talks from 127.0.0.1: limits per address and per organization are
            // generous here, and strict only in the tests of the limits themselves.
            ("STEWARD_LIMIT_LOGIN_PER_ADDRESS", "100000/15m"),
            ("STEWARD_LIMIT_PASSWORD_RESET_PER_ADDRESS", "100000/1h"),
            ("STEWARD_LIMIT_SIGNUP_PER_ADDRESS", "100000/1h"),
            ("STEWARD_LIMIT_INVITES_PER_ORGANIZATION", "100000/1h"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in settings {
            vars.insert(k.to_string(), v.to_string());
        }
        let config = Config::from_lookup(|k| vars.get(k).cloned()).expect("test config");
        let database_url = vars["STEWARD_DATABASE_URL"].clone();
        let clock = Arc::new(ManualClock::new());
        let key_dir = tempfile::tempdir().expect("temp dir");
        let key_path = key_dir.path().join("signing-key.pem");
        let (server_keys, _) = SigningKeys::load_or_generate(&key_path).expect("key");
        let (keys, _) = SigningKeys::load_or_generate(&key_path).expect("key");
        let app = steward::Application::build(config, clock.clone(), server_keys).expect("build app");
        let address = format!("http://127.0.0.1:{}", app.port());
        let state = app.state();
        let server = app.server_handle();
        tokio::spawn(app.run_until_stopped());
        Self {
            backend,
            address,
            database_url,
            client: reqwest::Client::new(),
            clock,
            state,
            keys,
            _key_dir: KeyDir(key_dir),
            server,
            store,
        }
    }

    /// The signing key file the server uses, for a process run beside it (the log tests).
    pub fn signing_key_file(&self) -> std::path::PathBuf {
        self._key_dir.0.path().join("signing-key.pem")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Sends a request with an optional JSON body and bearer token; returns status and body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        call_at(&self.client, method, self.url(path), body, token)
            .await
            .expect("request sent and answered")
    }

    pub async fn post(&self, path: &str, body: Value, token: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body), token).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::GET, path, None, token).await
    }

    /// Signs up a new organization; returns the token response.
    pub async fn sign_up(&self, email: &str) -> Value {
        let (status, body) = self
            .post(
                "/v1/auth/signup",
                json!({
                    "organization_name": "Acme",
                    "email": email,
                    "first_name": "Ada",
                    "last_name": "Lovelace",
                    "password": PASSWORD,
                }),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "sign-up failed: {body}");
        body
    }

    /// A new access token for a user, e.g. after moving the clock past the old one's expiry.
    pub async fn fresh_token(&self, identifier: &str, password: &str) -> String {
        let (status, body) = self.log_in(identifier, password).await;
        assert_eq!(status, StatusCode::OK, "log in as {identifier}: {body}");
        token(&body)
    }

    pub async fn log_in(&self, identifier: &str, password: &str) -> (StatusCode, Value) {
        self.post(
            "/v1/auth/login",
            json!({ "identifier": identifier, "password": password }),
            None,
        )
        .await
    }

    /// Messages in the outbox for an address, newest first.
    pub async fn notifications_to(&self, email: &str) -> Vec<NotificationRow> {
        let db = self.state.db.clone();
        let email = email.to_string();
        tokio::task::spawn_blocking(move || {
            let mut conn = db.get().expect("connection");
            repo::notifications::for_recipient(&mut conn, &email).expect("query")
        })
        .await
        .expect("join")
    }

    /// Waits (briefly) for a message of `kind` to reach the outbox, e.g. after a 202.
    pub async fn wait_for_notification(&self, email: &str, kind: &str) -> NotificationRow {
        for _ in 0..100 {
            if let Some(n) = self.notifications_to(email).await.into_iter().find(|n| n.kind == kind) {
                return n;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("no {kind} notification to {email}");
    }

    /// Audit events about one target, oldest first.
    pub async fn audit_actions(&self, target_id: &str) -> Vec<String> {
        self.audit_rows(target_id).await.into_iter().map(|e| e.action).collect()
    }

    /// The audit rows about one target, oldest first.
    pub async fn audit_rows(&self, target_id: &str) -> Vec<AuditEventRow> {
        let db = self.state.db.clone();
        let target = target_id.to_string();
        tokio::task::spawn_blocking(move || {
            let mut conn = db.get().expect("connection");
            repo::audit::for_target(&mut conn, &target).expect("query")
        })
        .await
        .expect("join")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stop accepting and drop the pool's hold on the database before removing it.
        // The command is sent at once; nothing needs to wait for the stop to finish.
        drop(self.server.stop(false));
        if let Store::Postgres { admin_url, name } = &self.store {
            match diesel::PgConnection::establish(admin_url) {
                Ok(mut admin) => {
                    if let Err(e) = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")) {
                        eprintln!("could not drop test database {name}: {e}");
                    }
                }
                Err(e) => eprintln!("could not drop test database {name}: {e}"),
            }
        }
    }
}

/// Sends a request with an optional JSON body and bearer token to `url` (checked against
/// the committed document); returns status and body, or `None` when no answer came (the
/// server is gone).
pub async fn call_at(
    client: &reqwest::Client,
    method: Method,
    url: String,
    body: Option<Value>,
    token: Option<&str>,
) -> Option<(StatusCode, Value)> {
    let mut req = client.request(method, url);
    if let Some(body) = body {
        req = req.json(&body);
    }
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send_checked().await.ok()?;
    let status = res.status();
    let text = res.text().await.ok()?;
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Some((status, value))
}

/// Asserts a problem response: status, content and `type`.
pub fn assert_problem(status: StatusCode, body: &Value, expected_status: u16, slug: &str) {
    assert_eq!(status.as_u16(), expected_status, "unexpected status, body: {body}");
    assert_eq!(
        body["type"],
        format!("urn:steward:problem:{slug}"),
        "unexpected problem: {body}"
    );
    assert_eq!(body["status"], expected_status);
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "incomplete problem: {body}"
    );
}

/// The user ids of a page of members (`GET /v1/users`).
pub fn member_ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("a page of members")
        .iter()
        .map(|m| m["user"]["id"].as_str().expect("user id").to_string())
        .collect()
}

pub fn token(body: &Value) -> String {
    body["access_token"].as_str().expect("access_token").to_string()
}

pub const MEMBER_PASSWORD: &str = "member passphrase 42";

/// An organization with a group below its root and a location below the group.
pub struct Org {
    pub owner_token: String,
    pub owner_id: String,
    pub root: String,
    pub group: String,
    pub location: String,
}

impl TestApp {
    pub async fn put(&self, path: &str, body: Value, token: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(body), token).await
    }

    pub async fn patch(&self, path: &str, body: Value, token: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(body), token).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, None, token).await
    }

    /// Signs up `email` and builds root → group → location.
    pub async fn org(&self, email: &str) -> Org {
        let body = self.sign_up(email).await;
        let owner_token = token(&body);
        let root = body["account"]["id"].as_str().unwrap().to_string();
        let group = self.sub_account(&owner_token, &root, "group", "North").await;
        let location = self.sub_account(&owner_token, &group, "location", "Harbour St").await;
        Org {
            owner_token,
            owner_id: body["user"]["id"].as_str().unwrap().to_string(),
            root,
            group,
            location,
        }
    }

    pub async fn sub_account(&self, token: &str, parent: &str, kind: &str, name: &str) -> String {
        let (status, body) = self
            .create_child(token, parent, json!({ "name": name, "kind": kind }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "create {kind}: {body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// The id of a built-in role (`owner`, `admin`, …) of the caller's organization.
    pub async fn role_id(&self, token: &str, builtin: &str) -> String {
        let (status, roles) = self.roles(token).await;
        assert_eq!(status, StatusCode::OK, "{roles}");
        roles
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["builtin"] == builtin)
            .and_then(|r| r["id"].as_str())
            .unwrap_or_else(|| panic!("no role {builtin}"))
            .to_string()
    }

    /// Creates a member with the given built-in roles at `node`, logs them in and sets their
    /// own password; returns (user id, access token).
    pub async fn member(&self, admin_token: &str, email: &str, roles: &[&str], node: &str) -> (String, String) {
        let mut role_ids = Vec::new();
        for r in roles {
            role_ids.push(self.role_id(admin_token, r).await);
        }
        self.member_with_role_ids(admin_token, email, &role_ids, node).await
    }

    /// Like [`TestApp::member`], with role ids (custom roles included).
    pub async fn member_with_role_ids(
        &self,
        admin_token: &str,
        email: &str,
        role_ids: &[String],
        node: &str,
    ) -> (String, String) {
        let (status, body) = self
            .post(
                "/v1/users",
                json!({
                    "email": email, "first_name": "Member", "last_name": email.split('@').next().unwrap(),
                    "password": PASSWORD, "role_ids": role_ids, "account_id": node,
                }),
                Some(admin_token),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "create member {email}: {body}");
        let user_id = body["user"]["id"].as_str().unwrap().to_string();
        let (status, login) = self.log_in(email, PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "{login}");
        let access = token(&login);
        let (status, body) = self
            .post(
                "/v1/me/password",
                json!({ "current_password": PASSWORD, "new_password": MEMBER_PASSWORD }),
                Some(&access),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        (user_id, access)
    }
}

/// The claims of a JWT, without checking it (the tokens tests check signatures).
pub fn jwt_claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

impl TestApp {
    /// Creates an API key holding the given built-in roles; returns (key id, secret).
    pub async fn api_key(&self, token: &str, name: &str, roles: &[&str]) -> (String, String) {
        let mut role_ids = Vec::new();
        for r in roles {
            role_ids.push(self.role_id(token, r).await);
        }
        let (status, body) = self
            .post(
                "/v1/api-keys",
                json!({ "name": name, "role_ids": role_ids }),
                Some(token),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "create API key: {body}");
        (
            body["key"]["id"].as_str().expect("key id").to_string(),
            body["secret"].as_str().expect("secret").to_string(),
        )
    }
}

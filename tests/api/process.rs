//! The compiled server as a separate process, for the tests that need what an in-process
//! server cannot give: a SIGKILL, a restart, several instances on one database.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::helpers::{call_at, SendChecked, MEMBER_PASSWORD, PASSWORD};

/// One `steward serve` process, killed (SIGKILL) when dropped. Its log goes to a file.
/// Requests go through its [`Remote`] (`server.post(…)` works through `Deref`).
pub struct ServerProcess {
    child: Child,
    log: PathBuf,
    pub remote: Remote,
}

/// The HTTP side of a server: its base URL and a client. Cheap to clone, so that
/// concurrent clients can keep talking while the process itself is killed.
#[derive(Clone)]
pub struct Remote {
    pub base: String,
    client: reqwest::Client,
}

impl std::ops::Deref for ServerProcess {
    type Target = Remote;

    fn deref(&self) -> &Remote {
        &self.remote
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("its address")
        .port()
}

impl ServerProcess {
    /// Starts the binary with only `settings` (and PATH) in its environment, its signing key
    /// at `dir/key.pem` and its log in `dir/{name}.log`; does not wait for it (see
    /// [`ServerProcess::ready`]).
    pub fn spawn(dir: &Path, name: &str, settings: &[(&str, &str)]) -> Self {
        let port = free_port();
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_steward"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("STEWARD_BIND", format!("127.0.0.1:{port}"))
            .env("STEWARD_SIGNING_KEY_FILE", dir.join("key.pem"))
            .env("STEWARD_LOG", "warn")
            .envs(settings.iter().copied())
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start the server");
        let remote = Remote {
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
        };
        Self { child, log, remote }
    }

    /// Starts the binary and waits until it answers.
    pub async fn start(dir: &Path, name: &str, settings: &[(&str, &str)]) -> Self {
        let mut server = Self::spawn(dir, name, settings);
        server.ready().await;
        server
    }

    /// Waits (up to 20 s) until the server answers `/healthz`; panics with its log if it
    /// exits or never answers.
    pub async fn ready(&mut self) {
        for _ in 0..400 {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the server exited ({status}):\n{}", self.log());
            }
            if let Ok(res) = self
                .remote
                .client
                .get(format!("{}/healthz", self.base))
                .send_checked()
                .await
            {
                if res.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the server did not start:\n{}", self.log());
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no graceful stop, nothing flushed, in-flight requests cut off.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Remote {
    /// A request to this server; `None` when no answer came (it is gone).
    pub async fn try_call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> Option<(StatusCode, Value)> {
        call_at(&self.client, method, format!("{}{path}", self.base), body, token).await
    }

    /// A request that must be answered.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        self.try_call(method, path, body, token)
            .await
            .unwrap_or_else(|| panic!("no answer from {} to {path}", self.base))
    }

    pub async fn post(&self, path: &str, body: Value, token: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body), token).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::GET, path, None, token).await
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A login body.
pub fn credentials(identifier: &str, password: &str) -> Value {
    json!({ "identifier": identifier, "password": password })
}

impl Remote {
    /// Signs up a new organization "Acme" with its owner; returns the token response.
    pub async fn sign_up(&self, email: &str) -> Value {
        let body = json!({
            "organization_name": "Acme", "email": email,
            "first_name": "Ada", "last_name": "Lovelace", "password": PASSWORD,
        });
        let (status, body) = self.post("/v1/auth/signup", body, None).await;
        assert_eq!(status, StatusCode::CREATED, "sign-up failed: {body}");
        body
    }

    /// The id of a built-in role of the caller's organization.
    pub async fn builtin_role(&self, token: &str, builtin: &str) -> String {
        let (_, roles) = self.get("/v1/roles", Some(token)).await;
        roles
            .as_array()
            .and_then(|r| r.iter().find(|r| r["builtin"] == builtin))
            .and_then(|r| r["id"].as_str())
            .unwrap_or_else(|| panic!("no role {builtin}: {roles}"))
            .to_string()
    }

    /// Creates a member with one role at `node`, logs them in and sets their own password
    /// ([`MEMBER_PASSWORD`]); returns (user id, access token).
    pub async fn member(&self, token: &str, email: &str, role: &str, node: &str) -> (String, String) {
        let body = json!({
            "email": email, "first_name": "Member", "last_name": "Person",
            "password": PASSWORD, "role_ids": [role], "account_id": node,
        });
        let (status, body) = self.post("/v1/users", body, Some(token)).await;
        assert_eq!(status, StatusCode::CREATED, "create member {email}: {body}");
        let id = body["user"]["id"].as_str().expect("user id").to_string();
        let (status, login) = self.post("/v1/auth/login", credentials(email, PASSWORD), None).await;
        assert_eq!(status, StatusCode::OK, "{login}");
        let access = login["access_token"].as_str().expect("access token").to_string();
        let change = json!({ "current_password": PASSWORD, "new_password": MEMBER_PASSWORD });
        let (status, body) = self.post("/v1/me/password", change, Some(&access)).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        (id, access)
    }
}

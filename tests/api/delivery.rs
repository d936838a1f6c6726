//! Notification delivery (R13): every message reaches the configured endpoint, signed the
//! Standard Webhooks way, at least once — through failures (retries with backoff), and
//! through a crash of the server between the commit and the delivery.

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::helpers::*;
use crate::process::ServerProcess;

pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: Vec<u8>,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// Checks the signature with the shared secret, independently of Steward's own code.
    fn signed_correctly(&self) -> bool {
        self.signed_with(SECRET)
    }

    /// Checks the signature with `secret` (`whsec_…`), independently of Steward's own code.
    pub fn signed_with(&self, secret: &str) -> bool {
        let key = base64::engine::general_purpose::STANDARD
            .decode(secret.trim_start_matches("whsec_"))
            .unwrap();
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
        mac.update(format!("{}.{}.", self.id, self.timestamp).as_bytes());
        mac.update(&self.body);
        let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        self.signature.split(' ').any(|s| s == format!("v1,{expected}"))
    }
}

/// A local HTTP endpoint that answers 500 to its first `failures` requests, then 204.
/// Shared with the notification tests.
pub struct Receiver {
    pub url: String,
    got: Arc<Mutex<Vec<Received>>>,
    server: actix_web::dev::ServerHandle,
}

impl Receiver {
    pub async fn start(failures: usize) -> Self {
        Self::failing_when(move |nth, _| nth <= failures).await
    }

    /// Answers 500 when `fail(nth request, body)` says so, 204 otherwise.
    pub async fn failing_when(fail: impl Fn(usize, &[u8]) -> bool + Send + Sync + 'static) -> Self {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let shared = got.clone();
        let fail = Arc::new(fail);
        let server = HttpServer::new(move || {
            let got = shared.clone();
            let fail = fail.clone();
            App::new().route(
                "/hook",
                web::post().to(move |req: HttpRequest, body: web::Bytes| {
                    let got = got.clone();
                    let fail = fail.clone();
                    async move {
                        let header = |name: &str| {
                            req.headers()
                                .get(name)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_string()
                        };
                        let mut list = got.lock().unwrap();
                        list.push(Received {
                            id: header("webhook-id"),
                            timestamp: header("webhook-timestamp"),
                            signature: header("webhook-signature"),
                            body: body.to_vec(),
                        });
                        if fail(list.len(), &body) {
                            HttpResponse::InternalServerError().finish()
                        } else {
                            HttpResponse::NoContent().finish()
                        }
                    }
                }),
            )
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap();
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            url: format!("http://127.0.0.1:{port}/hook"),
            got,
            server: handle,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits (up to `secs`) until at least `n` requests arrived.
    pub async fn wait_for(&self, n: usize, secs: u64) -> Vec<Received> {
        for _ in 0..secs * 20 {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {n} deliveries, got {:?}", self.received());
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        drop(self.server.stop(false));
    }
}

/// Waits until the outbox has recorded `attempts` attempts of the message; returns its state.
async fn after_attempts(app: &TestApp, email: &str, kind: &str, attempts: i32) -> (String, i32) {
    for _ in 0..400 {
        let n = app.wait_for_notification(email, kind).await;
        if n.attempts >= attempts {
            return (n.status.to_string(), n.attempts);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the outbox never recorded {attempts} attempts");
}

/// A failing endpoint gets the same message again, with backoff, until it takes it; each
/// attempt is signed, carries the same `webhook-id`, and the outbox records the outcome.
#[tokio::test]
async fn deliveries_are_signed_and_retried_until_the_endpoint_takes_them() {
    for backend in backends() {
        let receiver = Receiver::start(2).await;
        let settings = [
            ("STEWARD_NOTIFY_URL", receiver.url.as_str()),
            ("STEWARD_NOTIFY_SECRET", SECRET),
        ];
        let app = TestApp::spawn(backend, &settings).await;
        app.sign_up("ada@example.com").await;
        let (status, _) = app
            .post("/v1/auth/password-reset", json!({ "email": "ada@example.com" }), None)
            .await;
        assert_eq!(status.as_u16(), 202);

        let first = receiver.wait_for(1, 10).await;
        assert_eq!(
            after_attempts(&app, "ada@example.com", "password_reset", 1).await,
            ("pending".into(), 1)
        );
        // The next attempt is due 8 to 12 s later (10 s with ±20 % jitter): not before.
        app.clock.advance(chrono::Duration::seconds(7));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(receiver.received().len(), 1, "no retry before the backoff");
        app.clock.advance(chrono::Duration::seconds(6));
        receiver.wait_for(2, 10).await;
        after_attempts(&app, "ada@example.com", "password_reset", 2).await;
        app.clock.advance(chrono::Duration::seconds(50));
        let all = receiver.wait_for(3, 10).await;
        assert_eq!(
            after_attempts(&app, "ada@example.com", "password_reset", 3).await,
            ("delivered".into(), 3)
        );
        assert_eq!(receiver.received().len(), 3, "nothing after the delivery");

        for attempt in &all {
            assert!(attempt.signed_correctly(), "bad signature: {attempt:?}");
            assert_eq!(attempt.id, first[0].id, "one webhook-id for every attempt");
            assert!(attempt.id.starts_with("ntf_"));
        }
        let body = all[2].json();
        assert_eq!(body["id"], first[0].id.as_str());
        assert_eq!(body["type"], "password_reset");
        assert_eq!(body["recipient"]["email"], "ada@example.com");
        assert!(
            body["body"].as_str().unwrap().contains("reset-password?token="),
            "{body}"
        );
        assert!(body["on_behalf_of"].is_null());
    }
}

/// After the configured number of attempts a message is dead and no longer tried.
#[tokio::test]
async fn a_message_that_keeps_failing_goes_dead() {
    for backend in backends() {
        let receiver = Receiver::start(usize::MAX).await;
        let settings = [
            ("STEWARD_NOTIFY_URL", receiver.url.as_str()),
            ("STEWARD_NOTIFY_SECRET", SECRET),
            ("STEWARD_OUTBOX_MAX_ATTEMPTS", "2"),
        ];
        let app = TestApp::spawn(backend, &settings).await;
        app.sign_up("ada@example.com").await;
        app.post("/v1/auth/password-reset", json!({ "email": "ada@example.com" }), None)
            .await;
        receiver.wait_for(1, 10).await;
        after_attempts(&app, "ada@example.com", "password_reset", 1).await;
        app.clock.advance(chrono::Duration::seconds(13));
        receiver.wait_for(2, 10).await;
        assert_eq!(
            after_attempts(&app, "ada@example.com", "password_reset", 2).await,
            ("dead".into(), 2)
        );
        app.clock.advance(chrono::Duration::hours(2));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(receiver.received().len(), 2, "a dead message is not tried again");
    }
}

/// Starts the real binary on `database_url`, delivering to `receiver`; waits until it answers.
async fn start_server(database_url: &str, dir: &std::path::Path, receiver: &str, poll: &str) -> ServerProcess {
    let settings = [
        ("STEWARD_DATABASE_URL", database_url),
        ("STEWARD_NOTIFY_URL", receiver),
        ("STEWARD_NOTIFY_SECRET", SECRET),
        ("STEWARD_OUTBOX_POLL_INTERVAL", poll),
    ];
    ServerProcess::start(dir, &format!("steward-{poll}"), &settings).await
}

/// A notification committed before the server is killed (SIGKILL, no graceful stop) is
/// delivered after the restart.
#[tokio::test]
async fn a_message_committed_before_a_crash_is_delivered_after_the_restart() {
    // The in-process app only provides the database; its worker polls once, at start.
    on_each_backend_with(&[("STEWARD_OUTBOX_POLL_INTERVAL", "1h")], |app| async move {
        let receiver = Receiver::start(0).await;
        let dir = tempfile::tempdir().unwrap();
        // First life: the worker polls at start and then not for an hour.
        let mut first = start_server(&app.database_url, dir.path(), &receiver.url, "1h").await;
        let base = first.base.clone();
        let client = reqwest::Client::new();
        let signup = client
            .post(format!("{base}/v1/auth/signup"))
            .json(&json!({ "organization_name": "Acme", "email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace", "password": PASSWORD }))
            .send_checked()
            .await
            .unwrap();
        assert_eq!(signup.status().as_u16(), 201);
        let reset = client
            .post(format!("{base}/v1/auth/password-reset"))
            .json(&json!({ "email": "ada@example.com" }))
            .send_checked()
            .await
            .unwrap();
        assert_eq!(reset.status().as_u16(), 202);
        let committed = app.wait_for_notification("ada@example.com", "password_reset").await;
        assert_eq!(committed.status.to_string(), "pending");
        first.kill();
        assert!(receiver.received().is_empty(), "nothing was delivered before the crash");

        // Second life: the message goes out.
        let _second = start_server(&app.database_url, dir.path(), &receiver.url, "50ms").await;
        let got = receiver.wait_for(1, 20).await;
        assert_eq!(got[0].id, committed.id.as_str());
        assert!(got[0].signed_correctly());
        assert_eq!(got[0].json()["type"], "password_reset");
    })
    .await;
}

/// A worker whose lease ran out (it hung) cannot overwrite the outcome of the worker that
/// took the message over: outcomes are recorded only under the lease that claimed them.
#[tokio::test]
async fn an_outcome_is_recorded_only_under_the_lease_that_claimed_it() {
    use steward::db::repo::notifications as outbox;
    // The app's own worker polls once, at start, before the message exists.
    on_each_backend_with(&[("STEWARD_OUTBOX_POLL_INTERVAL", "1h")], |app| async move {
        app.sign_up("ada@example.com").await;
        app.post("/v1/auth/password-reset", json!({ "email": "ada@example.com" }), None)
            .await;
        let message = app.wait_for_notification("ada@example.com", "password_reset").await;
        let db = app.state.db.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = db.get().expect("connection");
            let lease = chrono::Duration::seconds(60);
            let t0 = message.next_attempt_at + chrono::Duration::seconds(1);
            let first = outbox::claim_due(&mut conn, t0, lease, 10).expect("claim");
            assert_eq!(first.len(), 1);
            assert!(
                outbox::claim_due(&mut conn, t0, lease, 10).expect("claim").is_empty(),
                "leased"
            );
            // The first worker hangs past its lease; a second one takes the message over.
            let t1 = t0 + chrono::Duration::seconds(61);
            let second = outbox::claim_due(&mut conn, t1, lease, 10).expect("claim");
            assert_eq!(second.len(), 1);
            let (old, new) = (first[0].locked_until.unwrap(), second[0].locked_until.unwrap());
            assert!(new > old);

            let late = outbox::mark_failed(&mut conn, (&message.id, old), "timed out", Some(t1), t1);
            assert!(!late.expect("mark"), "the stale lease records nothing");
            assert!(outbox::mark_delivered(&mut conn, &message.id, old, t1)
                .map(|held| !held)
                .expect("mark"));
            assert!(outbox::mark_delivered(&mut conn, &message.id, new, t1).expect("mark"));
            let row = outbox::for_recipient(&mut conn, "ada@example.com").expect("query");
            let row = row.iter().find(|n| n.id == message.id).expect("the message");
            assert_eq!((row.status.to_string(), row.attempts), ("delivered".to_string(), 1));
            assert_eq!(row.last_error, None);
        })
        .await
        .expect("join");
    })
    .await;
}

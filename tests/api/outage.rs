//! The database going away (PostgreSQL; SQLite is a file and cannot): requests answer 503
//! `database-unavailable` with `Retry-After` within a second instead of piling up behind
//! the pool's wait, `/readyz` fails, and when the database is back requests succeed again
//! without a restart, with nothing half-written. The server reaches PostgreSQL through a
//! TCP proxy in this test, which cuts every connection and refuses new ones on demand.

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

use crate::helpers::*;

/// Forwards 127.0.0.1:PORT to PostgreSQL until cut.
struct Proxy {
    address: String,
    cut: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let address = listener.local_addr().expect("proxy address").to_string();
        let cut = Arc::new(AtomicBool::new(false));
        let links: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (cut2, links2) = (cut.clone(), links.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                if cut2.load(Ordering::SeqCst) {
                    // Refused: closed at once, as a database that is not there.
                    drop(client);
                    continue;
                }
                let upstream = upstream.clone();
                let link = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                links2.lock().unwrap().push(link.abort_handle());
            }
        })
        .abort_handle();
        Self {
            address,
            cut,
            links,
            accept,
        }
    }

    /// Drops every open connection and refuses new ones.
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }
}

/// Host and port of TEST_DATABASE_URL.
fn upstream() -> Option<String> {
    let url = std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.is_empty())?;
    let rest = url.split_once("://")?.1;
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    Some(host.split('/').next()?.to_string())
}

/// A request, its answer, its `Retry-After` and how long it took.
async fn timed(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    token: Option<&str>,
) -> (StatusCode, Value, Option<String>, Duration) {
    let started = Instant::now();
    let mut req = app.client.request(method, app.url(path));
    if let Some(body) = body {
        req = req.json(&body);
    }
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send_checked().await.expect("request sent");
    let status = res.status();
    let retry_after = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let text = res.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, body, retry_after, started.elapsed())
}

fn assert_fast_503(answer: &(StatusCode, Value, Option<String>, Duration), what: &str) {
    let (status, body, retry_after, took) = answer;
    assert_problem(*status, body, 503, "database-unavailable");
    assert!(retry_after.is_some(), "{what}: no Retry-After");
    assert!(*took < Duration::from_secs(1), "{what} took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_database_answers_503_fast_and_comes_back_without_a_restart() {
    let Some(upstream) = upstream() else {
        eprintln!("skipped: needs TEST_DATABASE_URL (PostgreSQL)");
        return;
    };
    let proxy = Proxy::start(upstream).await;
    let app = TestApp::spawn_routed(Backend::Postgres, &[], Some(&proxy.address)).await;
    let access = token(&app.sign_up("ada@example.com").await);
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;
    assert_eq!(app.get("/v1/me", Some(&access)).await.0, StatusCode::OK);
    assert_eq!(app.get("/readyz", None).await.0, StatusCode::OK);

    proxy.cut();
    let first = timed(&app, get.clone(), "/v1/me", None, Some(&access)).await;
    assert_fast_503(&first, "the first request after the cut");
    // A burst does not pile up: every request is answered at once.
    let burst = (0..16).map(|_| timed(&app, get.clone(), "/v1/me", None, Some(&access)));
    for answer in futures_util::future::join_all(burst).await {
        assert_fast_503(&answer, "a request in a burst");
    }
    let signup = json!({ "organization_name": "Lost", "email": "bob@example.com", "first_name": "Bob",
                         "last_name": "Builder", "password": PASSWORD });
    assert_fast_503(
        &timed(&app, post.clone(), "/v1/auth/signup", Some(signup.clone()), None).await,
        "a sign-up",
    );
    let login = json!({ "identifier": "ada@example.com", "password": PASSWORD });
    assert_fast_503(
        &timed(&app, post.clone(), "/v1/auth/login", Some(login), None).await,
        "a login",
    );
    assert_fast_503(&timed(&app, get.clone(), "/readyz", None, None).await, "/readyz");
    // Still down a while later (the periodic probe fails fast too).
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_fast_503(&timed(&app, get.clone(), "/readyz", None, None).await, "/readyz later");

    proxy.restore();
    let back = Instant::now();
    loop {
        let (status, ..) = timed(&app, get.clone(), "/readyz", None, None).await;
        if status == StatusCode::OK {
            break;
        }
        assert!(back.elapsed() < Duration::from_secs(5), "not back after 5 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.get("/v1/me", Some(&access)).await.0, StatusCode::OK);
    // Nothing of the refused sign-up was written: the address is free, and it works now.
    let (status, body) = app.post("/v1/auth/signup", signup, None).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = app.log_in("ada@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
}

//! Abuse throttling kept in the database: failed logins per identifier and per client
//! address, password reset requests, sign-ups and invitation emails; 429
//! `too-many-attempts` with `Retry-After`, alike for accounts that exist and those that
//! do not; windows that end (the test clock moves, nobody sleeps); a trusted proxy header
//! and a spoofed one; exact counts under a concurrent burst.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

/// A login with optional extra headers; status, body and `Retry-After`.
async fn login_from(
    app: &TestApp,
    identifier: &str,
    password: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, Value, Option<u64>) {
    let mut req = app
        .client
        .post(app.url("/v1/auth/login"))
        .json(&json!({ "identifier": identifier, "password": password }));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send_checked().await.expect("request sent");
    read(res).await
}

async fn post_raw(app: &TestApp, path: &str, body: Value, token: Option<&str>) -> (StatusCode, Value, Option<u64>) {
    let mut req = app.client.post(app.url(path)).json(&body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    read(req.send_checked().await.expect("request sent")).await
}

async fn read(res: crate::contract::Response) -> (StatusCode, Value, Option<u64>) {
    let status = res.status();
    let retry_after = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().expect("ascii").parse::<u64>().expect("whole seconds"));
    let text = res.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, body, retry_after)
}

/// A 429 `too-many-attempts` whose `Retry-After` is within `1..=max_secs`.
fn assert_throttled(answer: &(StatusCode, Value, Option<u64>), max_secs: u64) {
    let (status, body, retry_after) = answer;
    assert_problem(*status, body, 429, "too-many-attempts");
    let secs = retry_after.unwrap_or_else(|| panic!("no Retry-After on {body}"));
    assert!(
        (1..=max_secs).contains(&secs),
        "Retry-After {secs} not in 1..={max_secs}"
    );
}

/// The problem's detail without its number of seconds, to compare two refusals.
fn worded(body: &Value) -> String {
    body["detail"]
        .as_str()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_ascii_digit())
        .collect()
}

const WRONG: &str = "not the password at all";

#[tokio::test]
async fn failed_logins_are_throttled_per_identifier_alike_for_unknown_ones() {
    let settings = [("STEWARD_LIMIT_LOGIN_PER_ACCOUNT", "3/15m")];
    on_each_backend_with(&settings, |app| async move {
        app.sign_up("ada@example.com").await;
        app.sign_up("bob@example.com").await;
        for identifier in ["ada@example.com", "nobody@example.com"] {
            for _ in 0..3 {
                let (status, body, _) = login_from(&app, identifier, WRONG, &[]).await;
                assert_problem(status, &body, 401, "invalid-credentials");
            }
        }
        let known = login_from(&app, "ADA@example.com ", WRONG, &[]).await;
        let unknown = login_from(&app, "nobody@example.com", WRONG, &[]).await;
        assert_throttled(&known, 900);
        assert_throttled(&unknown, 900);
        assert_eq!(
            worded(&known.1),
            worded(&unknown.1),
            "the answer does not tell who exists"
        );
        assert_eq!(known.1["title"], unknown.1["title"]);
        // Throttled means not tried: even the right password waits for the window.
        assert_throttled(&login_from(&app, "ada@example.com", PASSWORD, &[]).await, 900);
        // Another identifier from the same address is not affected.
        let (status, _, _) = login_from(&app, "bob@example.com", PASSWORD, &[]).await;
        assert_eq!(status, StatusCode::OK);
    })
    .await;
}

#[tokio::test]
async fn the_window_ends_and_a_success_clears_the_failures() {
    let settings = [("STEWARD_LIMIT_LOGIN_PER_ACCOUNT", "3/15m")];
    on_each_backend_with(&settings, |app| async move {
        let body = json!({ "organization_name": "Acme", "email": "ada@example.com", "username": "ada",
                           "first_name": "Ada", "last_name": "Lovelace", "password": PASSWORD });
        let (status, _, _) = post_raw(&app, "/v1/auth/signup", body, None).await;
        assert_eq!(status, StatusCode::CREATED);
        // Two failures by email, one by username; the right password clears both.
        for identifier in ["ada@example.com", "ada@example.com", "ADA"] {
            let (status, _, _) = login_from(&app, identifier, WRONG, &[]).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
        let (status, _, _) = login_from(&app, "ada@example.com", PASSWORD, &[]).await;
        assert_eq!(status, StatusCode::OK, "two failures are below the limit");
        for _ in 0..3 {
            let (status, _, _) = login_from(&app, "ada", WRONG, &[]).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "the success cleared the count");
        }
        assert_throttled(&login_from(&app, "ada", PASSWORD, &[]).await, 900);
        app.clock.advance(chrono::Duration::minutes(10));
        assert_throttled(&login_from(&app, "ada", PASSWORD, &[]).await, 300);
        app.clock
            .advance(chrono::Duration::minutes(5) + chrono::Duration::seconds(1));
        let (status, _, _) = login_from(&app, "ada", PASSWORD, &[]).await;
        assert_eq!(status, StatusCode::OK, "the window has ended: no long lock-out");
        // Housekeeping forgets windows once they end.
        for _ in 0..2 {
            login_from(&app, "someone@example.com", WRONG, &[]).await;
        }
        app.clock.advance(chrono::Duration::minutes(16));
        let clock: steward::clock::SharedClock = app.clock.clone();
        let purged = steward::housekeeping::purge(&app.state.db, &clock).await.unwrap();
        assert!(purged.rate_limits >= 1, "{purged:?}");
    })
    .await;
}

#[tokio::test]
async fn failures_per_address_count_across_identifiers_and_a_spoofed_header_is_ignored() {
    let settings = [
        ("STEWARD_LIMIT_LOGIN_PER_ADDRESS", "3/15m"),
        ("STEWARD_LIMIT_LOGIN_PER_ACCOUNT", "100/15m"),
    ];
    on_each_backend_with(&settings, |app| async move {
        app.sign_up("ada@example.com").await;
        // Successes do not count against the address.
        for _ in 0..4 {
            let (status, _, _) = login_from(&app, "ada@example.com", PASSWORD, &[]).await;
            assert_eq!(status, StatusCode::OK);
        }
        for who in ["a@example.com", "b@example.com", "ada@example.com"] {
            let (status, _, _) = login_from(&app, who, WRONG, &[]).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
        let refused = login_from(&app, "ada@example.com", PASSWORD, &[]).await;
        assert_throttled(&refused, 900);
        assert!(worded(&refused.1).contains("network address"), "{}", refused.1);
        // No proxy is trusted: a header naming another client changes nothing.
        let spoofed = [("X-Forwarded-For", "203.0.113.9"), ("Forwarded", "for=203.0.113.9")];
        assert_throttled(&login_from(&app, "c@example.com", WRONG, &spoofed).await, 900);
    })
    .await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_counted() {
    let settings = [
        ("STEWARD_LIMIT_LOGIN_PER_ADDRESS", "2/15m"),
        ("STEWARD_TRUSTED_PROXY_HEADER", "X-Forwarded-For"),
        ("STEWARD_TRUSTED_PROXIES", "127.0.0.1/32, 10.0.0.0/8"),
    ];
    on_each_backend_with(&settings, |app| async move {
        let a = [("X-Forwarded-For", "203.0.113.1")];
        for _ in 0..2 {
            let (status, _, _) = login_from(&app, "x@example.com", WRONG, &a).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
        assert_throttled(&login_from(&app, "y@example.com", WRONG, &a).await, 900);
        // Another client behind the same proxy has its own count.
        let b = [("X-Forwarded-For", "203.0.113.2")];
        let (status, _, _) = login_from(&app, "y@example.com", WRONG, &b).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        // Client A cannot escape by writing another address in front of the proxy's hop;
        // hops of trusted proxies (10.0.0.7) are skipped from the right.
        let a_spoofing = [("X-Forwarded-For", "198.51.100.50, 203.0.113.1, 10.0.0.7")];
        assert_throttled(&login_from(&app, "z@example.com", WRONG, &a_spoofing).await, 900);
        // The proxy itself, without the header, is a client of its own.
        let (status, _, _) = login_from(&app, "z@example.com", WRONG, &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    })
    .await;
}

#[tokio::test]
async fn password_reset_requests_are_limited_per_email_and_per_address() {
    let settings = [
        ("STEWARD_LIMIT_PASSWORD_RESET_PER_EMAIL", "2/1h"),
        ("STEWARD_LIMIT_PASSWORD_RESET_PER_ADDRESS", "5/1h"),
    ];
    on_each_backend_with(&settings, |app| async move {
        app.sign_up("ada@example.com").await;
        let reset = |email: &'static str| {
            let app = &app;
            async move { post_raw(app, "/v1/auth/password-reset", json!({ "email": email }), None).await }
        };
        for email in [
            "ada@example.com",
            "Ada@Example.com",
            "ghost@example.com",
            "ghost@example.com",
        ] {
            assert_eq!(reset(email).await.0, StatusCode::ACCEPTED, "{email}");
        }
        let known = reset("ada@example.com").await;
        let unknown = reset("ghost@example.com").await;
        assert_throttled(&known, 3600);
        assert_throttled(&unknown, 3600);
        assert_eq!(
            worded(&known.1),
            worded(&unknown.1),
            "the answer does not tell who exists"
        );
        // A refused request counted nothing: the address has used 4 of its 5.
        assert_eq!(reset("carol@example.com").await.0, StatusCode::ACCEPTED);
        let by_address = reset("dave@example.com").await;
        assert_throttled(&by_address, 3600);
        assert!(worded(&by_address.1).contains("network address"));
        app.clock.advance(chrono::Duration::minutes(61));
        assert_eq!(reset("ada@example.com").await.0, StatusCode::ACCEPTED);
        // Only the admitted requests mailed a link.
        let mut sent = 0;
        for _ in 0..100 {
            sent = app
                .notifications_to("ada@example.com")
                .await
                .iter()
                .filter(|n| n.kind == "password_reset")
                .count();
            if sent >= 3 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(sent, 3);
    })
    .await;
}

#[tokio::test]
async fn sign_ups_are_limited_per_address() {
    let settings = [("STEWARD_LIMIT_SIGNUP_PER_ADDRESS", "2/1h")];
    on_each_backend_with(&settings, |app| async move {
        app.sign_up("one@example.com").await;
        app.sign_up("two@example.com").await;
        let body = |email: &str| {
            json!({ "organization_name": "Acme", "email": email, "first_name": "Ada",
                    "last_name": "Lovelace", "password": PASSWORD })
        };
        let refused = post_raw(&app, "/v1/auth/signup", body("three@example.com"), None).await;
        assert_throttled(&refused, 3600);
        let (status, _) = app.log_in("three@example.com", PASSWORD).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "nothing was created");
        app.clock.advance(chrono::Duration::minutes(61));
        app.sign_up("three@example.com").await;
    })
    .await;
}

#[tokio::test]
async fn invitation_emails_are_limited_per_organization() {
    let settings = [("STEWARD_LIMIT_INVITES_PER_ORGANIZATION", "2/1h")];
    on_each_backend_with(&settings, |app| async move {
        let org = app.org("owner@example.com").await;
        let other = app.org("other@example.com").await;
        let viewer = [app.role_id(&org.owner_token, "viewer").await];
        let mut ids = Vec::new();
        for email in ["a@example.com", "b@example.com"] {
            let (status, body) = app.create_invite(&org.owner_token, email, &viewer, true).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            ids.push(body["id"].as_str().unwrap().to_string());
        }
        let body = json!({ "email": "c@example.com", "role_ids": viewer, "send_email": true });
        assert_throttled(&post_raw(&app, "/v1/invites", body, Some(&org.owner_token)).await, 3600);
        let resend = format!("/v1/invites/{}/resend", ids[0]);
        assert_throttled(&post_raw(&app, &resend, json!({}), Some(&org.owner_token)).await, 3600);
        // Nothing was written by the refusals; what sends no email is not limited.
        let (status, page) = app.get("/v1/invites", Some(&org.owner_token)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page["items"].as_array().unwrap().len(), 2, "{page}");
        assert_eq!(app.notifications_to("c@example.com").await.len(), 0);
        let (status, _) = app.copy_invite_link(&org.owner_token, &ids[0]).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = app
            .create_invite(&org.owner_token, "d@example.com", &viewer, false)
            .await;
        assert_eq!(status, StatusCode::CREATED);
        // Another organization has its own count.
        let other_viewer = [app.role_id(&other.owner_token, "viewer").await];
        let (status, _) = app
            .create_invite(&other.owner_token, "a@example.com", &other_viewer, true)
            .await;
        assert_eq!(status, StatusCode::CREATED);
        app.clock.advance(chrono::Duration::minutes(61));
        let owner = app.fresh_token("owner@example.com", PASSWORD).await;
        let (status, _) = app.resend_invite(&owner, &ids[1]).await;
        assert_eq!(status, StatusCode::OK);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_concurrent_burst_is_counted_exactly() {
    let settings = [
        ("STEWARD_LIMIT_LOGIN_PER_ACCOUNT", "5/15m"),
        ("STEWARD_LIMIT_LOGIN_PER_ADDRESS", "1000/15m"),
    ];
    on_each_backend_with(&settings, |app| async move {
        app.sign_up("ada@example.com").await;
        // 24 wrong passwords at once for one identifier: exactly 5 are tried.
        let burst = (0..24).map(|_| login_from(&app, "ada@example.com", WRONG, &[]));
        let answers = futures_util::future::join_all(burst).await;
        let tried = answers.iter().filter(|a| a.0 == StatusCode::UNAUTHORIZED).count();
        let throttled = answers.iter().filter(|a| a.0 == StatusCode::TOO_MANY_REQUESTS).count();
        assert_eq!(
            (tried, throttled),
            (5, 19),
            "{:?}",
            answers.iter().map(|a| a.0).collect::<Vec<_>>()
        );
        // Failures from one address, each under its own identifier, all counted.
        let app_ref = &app;
        let burst = (0..16).map(|i| async move {
            let who = format!("user{i}@example.com");
            login_from(app_ref, &who, WRONG, &[]).await
        });
        let answers = futures_util::future::join_all(burst).await;
        assert!(answers.iter().all(|a| a.0 == StatusCode::UNAUTHORIZED));
        let (db, now) = (app.state.db.clone(), steward::clock::Clock::now(&*app.clock));
        let counted = tokio::task::spawn_blocking(move || {
            let mut conn = db.get().expect("connection");
            use steward::rate_limit::{hits, Bucket};
            (
                hits(&mut conn, Bucket::LoginAccount, "ada@example.com", now).unwrap(),
                hits(&mut conn, Bucket::LoginAddress, "127.0.0.1", now).unwrap(),
            )
        })
        .await
        .unwrap();
        assert_eq!(counted, (5, 5 + 16), "no lost increments");
    })
    .await;
}

//! `/metrics` (issue 14): off unless a token is configured, then only for that token, in the
//! Prometheus text format, with what the server really did: requests by route template and
//! status, the pool, the outbox as it stands in the database, failed logins, rate-limit
//! refusals and password hashing.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::delivery::SECRET;
use crate::helpers::*;

const TOKEN: &str = "scrape-0123456789abcdef";

/// `GET /metrics` with an optional bearer token: status, content type, body.
async fn scrape(app: &TestApp, token: Option<&str>) -> (StatusCode, String, String) {
    let mut req = app.client.get(app.url("/metrics"));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send_checked().await.expect("request sent");
    let status = res.status();
    let content_type = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, content_type, res.text().await.unwrap())
}

/// The value of the sample `series` (name and labels exactly as exposed), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.parse().expect("a number"))
}

/// Scrapes until `series` has `value` (the outbox worker runs beside the test).
async fn scrape_until(app: &TestApp, series: &str, value: f64) -> String {
    let mut last = String::new();
    for _ in 0..200 {
        let (status, _, text) = scrape(app, Some(TOKEN)).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        if sample(&text, series) == Some(value) {
            return text;
        }
        last = text;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{series} never became {value}:\n{last}");
}

#[tokio::test]
async fn metrics_are_off_unless_a_token_is_configured() {
    on_each_backend(|app| async move {
        let (status, _, body) = scrape(&app, Some(TOKEN)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        let (status, body) = app.call(Method::POST, "/metrics", None, None).await;
        assert_problem(status, &body, 404, "not-found");
    })
    .await;
}

#[tokio::test]
async fn only_the_configured_token_opens_metrics() {
    on_each_backend_with(&[("STEWARD_METRICS_TOKEN", TOKEN)], |app| async move {
        let (status, body) = app.get("/metrics", None).await;
        assert_problem(status, &body, 401, "unauthenticated");
        let (status, body) = app.get("/metrics", Some("scrape-0123456789abcdeX")).await;
        assert_problem(status, &body, 401, "unauthenticated");
        let (status, body) = app.get("/metrics", Some(&format!("{TOKEN}0"))).await;
        assert_problem(status, &body, 401, "unauthenticated");
        let (status, body) = app.call(Method::POST, "/metrics", None, Some(TOKEN)).await;
        assert_problem(status, &body, 405, "method-not-allowed");

        let (status, content_type, text) = scrape(&app, Some(TOKEN)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
        assert!(text.contains("# TYPE steward_http_requests_total counter"), "{text}");

        // A scraper that prefers OpenMetrics gets it.
        let res = app
            .client
            .get(app.url("/metrics"))
            .bearer_auth(TOKEN)
            .header(
                "accept",
                "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
            )
            .send_checked()
            .await
            .unwrap();
        assert_eq!(
            res.headers()["content-type"],
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        );
        assert!(res.text().await.unwrap().ends_with("# EOF\n"));
    })
    .await;
}

#[tokio::test]
async fn metrics_show_requests_logins_hashing_and_the_pool() {
    let settings = [
        ("STEWARD_METRICS_TOKEN", TOKEN),
        ("STEWARD_LIMIT_LOGIN_PER_ACCOUNT", "3/15m"),
    ];
    on_each_backend_with(&settings, |app| async move {
        let org = app.org("owner@example.com").await;
        let (jane, _) = app
            .member(&org.owner_token, "jane@example.com", &["standard"], &org.root)
            .await;
        let (_, _, before) = scrape(&app, Some(TOKEN)).await;
        let (status, body) = app.get(&format!("/v1/users/{jane}"), Some(&org.owner_token)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, _) = app.get("/v1/nothing-here", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = app.log_in("owner@example.com", PASSWORD).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = app.log_in("nobody@example.com", PASSWORD).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        for expected in [401, 401, 401, 429] {
            let (status, _) = app.log_in("owner@example.com", "wrong horse battery staple").await;
            assert_eq!(status.as_u16(), expected);
        }

        let (_, _, text) = scrape(&app, Some(TOKEN)).await;
        let value = |series: &str| sample(&text, series).unwrap_or_else(|| panic!("no {series} in:\n{text}"));
        // What happened since `before` (a series first seen now was 0).
        let grew = |series: &str| value(series) - sample(&before, series).unwrap_or(0.0);
        let user_route = r#"method="GET",route="/v1/users/{user_id}",status="200""#;
        assert_eq!(grew(&format!("steward_http_requests_total{{{user_route}}}")), 1.0);
        assert_eq!(
            grew(&format!("steward_http_request_duration_seconds_count{{{user_route}}}")),
            1.0
        );
        assert_eq!(
            grew(&format!(
                "steward_http_request_duration_seconds_bucket{{{user_route},le=\"+Inf\"}}"
            )),
            1.0
        );
        assert!(value(&format!("steward_http_request_duration_seconds_sum{{{user_route}}}")) > 0.0);
        assert_eq!(
            grew(r#"steward_http_requests_total{method="GET",route="unmatched",status="404"}"#),
            1.0,
            "an unknown path is one fixed label, never the raw path"
        );
        assert!(!text.contains("nothing-here") && !text.contains(jane.as_str()));
        assert_eq!(
            grew(r#"steward_http_requests_total{method="POST",route="/v1/auth/login",status="429"}"#),
            1.0
        );
        assert_eq!(
            grew(r#"steward_http_requests_total{method="GET",route="/metrics",status="200"}"#),
            1.0,
            "the scrape before this one"
        );

        assert_eq!(grew(r#"steward_login_failures_total{reason="unknown_user"}"#), 1.0);
        assert_eq!(grew(r#"steward_login_failures_total{reason="wrong_password"}"#), 3.0);
        assert_eq!(grew(r#"steward_login_failures_total{reason="throttled"}"#), 1.0);
        assert_eq!(grew(r#"steward_rate_limited_total{limit="login.account"}"#), 1.0);

        // Five logins reached the hashing threads (the throttled one did not); sign-up and
        // the member's passwords were hashed before.
        assert_eq!(
            grew(r#"steward_password_hash_duration_seconds_count{operation="verify"}"#),
            5.0
        );
        assert!(value(r#"steward_password_hash_duration_seconds_count{operation="hash"}"#) >= 2.0);
        assert_eq!(value("steward_password_hashes_in_progress"), 0.0);
        assert_eq!(value("steward_password_hashes_waiting"), 0.0);
        assert_eq!(value("steward_password_hash_rejected_total"), 0.0);

        assert_eq!(value("steward_db_pool_max_connections"), 8.0);
        let open = value(r#"steward_db_pool_connections{state="in_use"}"#)
            + value(r#"steward_db_pool_connections{state="idle"}"#);
        assert!((1.0..=8.0).contains(&open), "{open}");
        assert_eq!(value("steward_db_available"), 1.0);
    })
    .await;
}

/// The outbox gauges are counted from the database; the delivery counters come from the
/// worker. The endpoint refuses every connection and a message gets two attempts: after the
/// first it waits for a retry (scheduled), after the second it is dead.
#[tokio::test]
async fn metrics_show_the_outbox_as_it_stands() {
    let settings = [
        ("STEWARD_METRICS_TOKEN", TOKEN),
        ("STEWARD_NOTIFY_URL", "http://127.0.0.1:9/refused"),
        ("STEWARD_NOTIFY_SECRET", SECRET),
        ("STEWARD_OUTBOX_MAX_ATTEMPTS", "2"),
    ];
    on_each_backend_with(&settings, |app| async move {
        app.sign_up("owner@example.com").await;
        let (status, _) = app
            .post("/v1/auth/password-reset", json!({ "email": "owner@example.com" }), None)
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        app.wait_for_notification("owner@example.com", "password_reset").await;
        let messages = app.notifications_to("owner@example.com").await.len() as f64;

        let text = scrape_until(&app, r#"steward_outbox_pending{state="scheduled"}"#, messages).await;
        assert_eq!(sample(&text, r#"steward_outbox_pending{state="due"}"#), Some(0.0));
        assert_eq!(sample(&text, "steward_outbox_dead"), Some(0.0));
        assert_eq!(
            sample(
                &text,
                r#"steward_outbox_deliveries_total{channel="notification",outcome="failed"}"#
            ),
            Some(messages)
        );

        // The retries come due, fail again, and the messages are dead.
        app.clock.advance(chrono::Duration::hours(2));
        let text = scrape_until(&app, "steward_outbox_dead", messages).await;
        assert_eq!(sample(&text, r#"steward_outbox_pending{state="scheduled"}"#), Some(0.0));
        assert_eq!(
            sample(
                &text,
                r#"steward_outbox_deliveries_total{channel="notification",outcome="dead"}"#
            ),
            Some(messages)
        );
        let dead = app
            .notifications_to("owner@example.com")
            .await
            .iter()
            .filter(|n| n.status.to_string() == "dead")
            .count() as f64;
        assert_eq!(dead, messages, "the gauge matches the database");
    })
    .await;
}

//! Safe retries (`Idempotency-Key`): the same request again gets the first response and
//! changes nothing more; another request under the same key is refused; keys are the
//! caller's own, and hold under concurrent retries.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::contract::SendChecked;
use crate::helpers::*;

struct Answer {
    status: StatusCode,
    replayed: bool,
    body: Value,
}

async fn post_with_key(app: &TestApp, token: &str, key: &str, path: &str, body: &Value) -> Answer {
    let res = app
        .client
        .post(app.url(path))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(body)
        .send_checked()
        .await
        .expect("request sent");
    let status = res.status();
    let replayed = res.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
    let body = res.json().await.unwrap_or(Value::Null);
    Answer { status, replayed, body }
}

async fn new_user(app: &TestApp, org: &Org, email: &str) -> Value {
    let viewer = app.role_id(&org.owner_token, "viewer").await;
    json!({ "email": email, "first_name": "Ida", "last_name": "Empotent", "password": PASSWORD,
            "role_ids": [viewer], "account_id": org.root })
}

async fn count_users(app: &TestApp, org: &Org) -> usize {
    let (_, page) = app.get("/v1/users?limit=200", Some(&org.owner_token)).await;
    member_ids(&page).len()
}

#[tokio::test]
async fn a_retry_gets_the_first_response_and_creates_nothing_more() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let body = new_user(&app, &org, "ida@example.com").await;
        let first = post_with_key(&app, &org.owner_token, "retry-1", "/v1/users", &body).await;
        assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
        assert!(!first.replayed);
        let again = post_with_key(&app, &org.owner_token, "retry-1", "/v1/users", &body).await;
        assert_eq!(again.status, StatusCode::CREATED);
        assert!(again.replayed, "marked as a replay");
        assert_eq!(again.body, first.body, "the very same response");
        assert_eq!(count_users(&app, &org).await, 2, "the owner and one new user");

        // Same key, another request: refused, nothing done.
        let other = new_user(&app, &org, "other@example.com").await;
        let reused = post_with_key(&app, &org.owner_token, "retry-1", "/v1/users", &other).await;
        assert_problem(reused.status, &reused.body, 422, "idempotency-key-reused");
        assert_eq!(count_users(&app, &org).await, 2);

        // A refusal is kept too: its retry answers the same without running again.
        let bad = json!({ "email": "not an email" });
        let refused = post_with_key(&app, &org.owner_token, "retry-2", "/v1/users", &bad).await;
        assert_eq!(refused.status.as_u16(), 422);
        let replayed = post_with_key(&app, &org.owner_token, "retry-2", "/v1/users", &bad).await;
        assert_eq!((replayed.status, replayed.replayed), (refused.status, true));

        // Another caller's key of the same name is theirs alone.
        let (_, admin) = app
            .member(&org.owner_token, "admin@example.com", &["admin"], &org.root)
            .await;
        let theirs = new_user(&app, &org, "theirs@example.com").await;
        let served = post_with_key(&app, &admin, "retry-1", "/v1/users", &theirs).await;
        assert_eq!(served.status, StatusCode::CREATED, "{}", served.body);
        assert!(!served.replayed);

        // After 24 hours the key is forgotten: the request runs again (and meets its rule).
        app.clock.advance(chrono::Duration::hours(25));
        let owner = app.fresh_token("owner@example.com", PASSWORD).await;
        let later = post_with_key(&app, &owner, "retry-1", "/v1/users", &body).await;
        assert_problem(later.status, &later.body, 409, "email-taken");
    })
    .await;
}

#[tokio::test]
async fn concurrent_retries_create_once() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let body = new_user(&app, &org, "ida@example.com").await;
        let tries = (0..6).map(|_| post_with_key(&app, &org.owner_token, "burst", "/v1/users", &body));
        let answers = futures_util::future::join_all(tries).await;
        let fresh = answers
            .iter()
            .filter(|a| a.status == StatusCode::CREATED && !a.replayed)
            .count();
        assert_eq!(fresh, 1, "exactly one request ran");
        for a in &answers {
            let ok = (a.status == StatusCode::CREATED
                && (a.replayed
                    || a.body
                        == answers
                            .iter()
                            .find(|x| !x.replayed && x.status == StatusCode::CREATED)
                            .unwrap()
                            .body))
                || (a.status == StatusCode::CONFLICT
                    && a.body["type"] == "urn:steward:problem:idempotency-in-progress");
            assert!(ok, "{} {}", a.status, a.body);
        }
        assert_eq!(count_users(&app, &org).await, 2);
    })
    .await;
}

#[tokio::test]
async fn a_malformed_key_is_refused() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let body = new_user(&app, &org, "ida@example.com").await;
        for key in ["has space", &"k".repeat(256)] {
            let answer = post_with_key(&app, &org.owner_token, key, "/v1/users", &body).await;
            assert_problem(answer.status, &answer.body, 422, "validation-failed");
            assert_eq!(answer.body["errors"][0]["field"], "Idempotency-Key");
        }
        assert_eq!(count_users(&app, &org).await, 1);
    })
    .await;
}

#[tokio::test]
async fn housekeeping_forgets_keys_past_their_day() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let body = new_user(&app, &org, "ida@example.com").await;
        let first = post_with_key(&app, &org.owner_token, "kept", "/v1/users", &body).await;
        assert_eq!(first.status, StatusCode::CREATED);
        let clock: steward::clock::SharedClock = app.clock.clone();
        assert_eq!(
            steward::housekeeping::run_once(&app.state.db, &clock).await.unwrap(),
            0,
            "still kept"
        );
        app.clock.advance(chrono::Duration::hours(25));
        assert_eq!(steward::housekeeping::run_once(&app.state.db, &clock).await.unwrap(), 1);
    })
    .await;
}

#[tokio::test]
async fn answers_that_carry_a_secret_are_never_kept() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (admin, _) = app
            .member(&org.owner_token, "admin@example.com", &["admin"], &org.root)
            .await;
        let body = json!({ "user_id": admin, "reason": "Ticket 1", "confirm": true });
        let first = post_with_key(&app, &org.owner_token, "imp", "/v1/impersonations", &body).await;
        let second = post_with_key(&app, &org.owner_token, "imp", "/v1/impersonations", &body).await;
        assert_eq!(
            (first.status, second.status),
            (StatusCode::CREATED, StatusCode::CREATED)
        );
        assert!(!second.replayed, "not a replay");
        assert_ne!(
            first.body["access_token"], second.body["access_token"],
            "two impersonations, two tokens"
        );
        let clock: steward::clock::SharedClock = app.clock.clone();
        app.clock.advance(chrono::Duration::hours(25));
        assert_eq!(
            steward::housekeeping::run_once(&app.state.db, &clock).await.unwrap(),
            0,
            "nothing was kept"
        );
    })
    .await;
}

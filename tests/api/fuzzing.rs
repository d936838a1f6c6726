//! Regressions found by the Schemathesis run (`tests/schemathesis/run.sh`): each was a request
//! the document forbids that the server took, or a valid one it refused.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::contract::SendChecked;
use crate::helpers::*;

/// A write with an `If-Match` header.
async fn send_if_match(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    tag: &str,
    body: Value,
) -> (StatusCode, Value) {
    let res = app
        .client
        .request(method, app.url(path))
        .bearer_auth(token)
        .header("If-Match", tag)
        .json(&body)
        .send_checked()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// An empty `If-Match` (the document says `minLength: 1`) names no version: it is malformed
/// input, a 422 that changes nothing, not a precondition that fails (412).
#[tokio::test]
async fn an_empty_if_match_is_refused_and_changes_nothing() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let path = format!("/v1/accounts/{}", org.root);
        let (status, body) = send_if_match(
            &app,
            Method::PATCH,
            &path,
            &org.owner_token,
            "",
            json!({ "name": "Renamed" }),
        )
        .await;
        assert_problem(status, &body, 422, "validation-failed");
        assert_eq!(body["errors"][0]["field"], "If-Match", "{body}");
        let (_, account) = app.get(&path, Some(&org.owner_token)).await;
        assert_ne!(account["name"], "Renamed", "{account}");
    })
    .await;
}

/// JSON Schema counts `60.0` as an integer, so a field documented as `integer` takes it;
/// `1.5` is still refused.
#[tokio::test]
async fn integers_written_with_a_zero_fraction_are_integers() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (key, _) = app.api_key(&org.owner_token, "CI", &["viewer"]).await;
        let path = format!("/v1/api-keys/{key}/rotate");
        let (status, body) = app
            .post(&path, json!({ "grace_seconds": 1.5 }), Some(&org.owner_token))
            .await;
        assert_problem(status, &body, 422, "validation-failed");
        let (status, body) = app
            .post(&path, json!({ "grace_seconds": 60.0 }), Some(&org.owner_token))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    })
    .await;
}

/// `/v1/contacts/reassign` is a path of its own: another method on it is a 405 naming `POST`,
/// not a lookup of a contact called `reassign`; and a path that cannot hold a contact id is
/// still a 404 for the methods a contact answers.
#[tokio::test]
async fn a_literal_path_is_not_taken_for_an_id() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let res = app
            .client
            .request(Method::PATCH, app.url("/v1/contacts/reassign"))
            .bearer_auth(&org.owner_token)
            .json(&json!({}))
            .send_checked()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(res.headers()["allow"], "POST");
        let (status, body) = app.get("/v1/contacts/reassign", Some(&org.owner_token)).await;
        assert_problem(status, &body, 405, "method-not-allowed");
        let (status, body) = app.get("/v1/contacts/not-a-contact", Some(&org.owner_token)).await;
        assert_problem(status, &body, 404, "not-found");
        let (status, body) = app.delete("/v1/contacts/not-a-contact", Some(&org.owner_token)).await;
        assert_problem(status, &body, 404, "not-found");
    })
    .await;
}

/// An empty `role_ids` (the document says `minItems: 1`) is bad input, refused before the
/// `If-Match` is compared: a 422 even with a stale version, not a 412.
#[tokio::test]
async fn an_empty_role_list_is_bad_input_before_any_precondition() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (user, _) = app
            .member(&org.owner_token, "sam@example.com", &["standard"], &org.root)
            .await;
        let path = format!("/v1/users/{user}/roles");
        let (status, body) = send_if_match(
            &app,
            Method::PUT,
            &path,
            &org.owner_token,
            "\"stale\"",
            json!({ "role_ids": [] }),
        )
        .await;
        assert_problem(status, &body, 422, "validation-failed");
        assert_eq!(body["errors"][0]["field"], "role_ids", "{body}");
    })
    .await;
}

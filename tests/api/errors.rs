//! Every failure answers an RFC 9457 problem, and bad input changes nothing (R14).

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

async fn raw(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, String, Value) {
    let res = app
        .client
        .request(method, app.url(path))
        .header("Content-Type", content_type)
        .body(body)
        .send_checked()
        .await
        .unwrap();
    let status = res.status();
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = res.json().await.unwrap_or(Value::Null);
    (status, ct, body)
}

#[tokio::test]
async fn malformed_json_is_a_400_problem() {
    on_each_backend(|app| async move {
        let (status, ct, body) = raw(
            &app,
            reqwest::Method::POST,
            "/v1/auth/login",
            "application/json",
            b"{\"identifier\": ".to_vec(),
        )
        .await;
        assert_eq!(ct, "application/problem+json");
        assert_problem(status, &body, 400, "malformed-body");
    })
    .await;
}

#[tokio::test]
async fn a_body_of_the_wrong_shape_is_a_422_problem() {
    on_each_backend(|app| async move {
        let (status, body) = app.post("/v1/auth/login", json!({ "identifier": 42 }), None).await;
        assert_problem(status, &body, 422, "validation-failed");
        let (status, body) = app.post("/v1/auth/login", json!({}), None).await;
        assert_problem(status, &body, 422, "validation-failed");
    })
    .await;
}

#[tokio::test]
async fn a_non_json_body_is_a_415_problem() {
    on_each_backend(|app| async move {
        let (status, _, body) = raw(
            &app,
            reqwest::Method::POST,
            "/v1/auth/login",
            "text/plain",
            b"identifier=ada".to_vec(),
        )
        .await;
        assert_problem(status, &body, 415, "unsupported-media-type");
    })
    .await;
}

#[tokio::test]
async fn an_oversized_body_is_a_413_problem_and_creates_nothing() {
    on_each_backend(|app| async move {
        let huge = "x".repeat(70 * 1024);
        let payload = json!({ "organization_name": huge, "email": "big@example.com", "first_name": "A", "last_name": "B", "password": PASSWORD });
        let (status, _, body) =
            raw(&app, reqwest::Method::POST, "/v1/auth/signup", "application/json", payload.to_string().into_bytes()).await;
        assert_problem(status, &body, 413, "payload-too-large");
        let (status, _) = app.log_in("big@example.com", PASSWORD).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    })
    .await;
}

#[tokio::test]
async fn validation_failures_list_every_bad_field_and_create_nothing() {
    on_each_backend(|app| async move {
        let (status, body) = app
            .post(
                "/v1/auth/signup",
                json!({
                    "organization_name": "",
                    "email": "not-an-email",
                    "username": "a@b",
                    "first_name": "x".repeat(101),
                    "last_name": "Lovelace",
                    "password": "short",
                }),
                None,
            )
            .await;
        assert_problem(status, &body, 422, "validation-failed");
        let mut fields: Vec<&str> = body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        fields.sort();
        assert_eq!(
            fields,
            vec!["email", "first_name", "organization_name", "password", "username"]
        );
        for e in body["errors"].as_array().unwrap() {
            assert!(e["code"].is_string() && e["message"].is_string(), "{e}");
        }
        let (status, _) = app.log_in("not-an-email", "short").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    })
    .await;
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405_problems() {
    on_each_backend(|app| async move {
        let (status, body) = app.get("/v1/nothing-here", None).await;
        assert_problem(status, &body, 404, "not-found");

        let res = app.client.delete(app.url("/v1/me")).send_checked().await.unwrap();
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(res.headers()["allow"], "GET, HEAD");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["type"], "urn:steward:problem:method-not-allowed");

        let (status, body) = app.get("/v1/auth/login", None).await;
        assert_problem(status, &body, 405, "method-not-allowed");
    })
    .await;
}

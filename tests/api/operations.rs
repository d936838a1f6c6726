//! What operators rely on: health, readiness, request ids.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn health_and_readiness_answer() {
    on_each_backend(|app| async move {
        let (status, body) = app.get("/healthz", None).await;
        assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("ok")));
        let (status, body) = app.get("/readyz", None).await;
        assert_eq!(status, StatusCode::OK);
        let expected = match app.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };
        assert_eq!(body["database"], expected);
    })
    .await;
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_problems_repeat_it() {
    on_each_backend(|app| async move {
        let res = app
            .client
            .get(app.url("/healthz"))
            .header("X-Request-Id", "trace-abc.123")
            .send_checked()
            .await
            .unwrap();
        assert_eq!(res.headers()["x-request-id"], "trace-abc.123", "a sane id is kept");

        let res = app
            .client
            .get(app.url("/healthz"))
            .header("X-Request-Id", "bad id with spaces")
            .send_checked()
            .await
            .unwrap();
        let generated = res.headers()["x-request-id"].to_str().unwrap().to_string();
        assert_ne!(generated, "bad id with spaces");
        assert_eq!(generated.len(), 26);

        let res = app.client.get(app.url("/v1/me")).send_checked().await.unwrap();
        let id = res.headers()["x-request-id"].to_str().unwrap().to_string();
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["request_id"], id);
    })
    .await;
}

#[tokio::test]
async fn the_docs_page_renders() {
    on_each_backend(|app| async move {
        let res = app.client.get(app.url("/docs/")).send_checked().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res.text().await.unwrap().contains("swagger"));
        let res = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(app.url("/docs"))
            .send_checked()
            .await
            .unwrap();
        assert!(res.status().is_redirection());
    })
    .await;
}

#[tokio::test]
async fn the_docs_never_call_an_outside_validator() {
    on_each_backend(|app| async move {
        let res = app
            .client
            .get(app.url("/docs/swagger-initializer.js"))
            .send_checked()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let js = res.text().await.unwrap();
        let compact: String = js.split_whitespace().collect();
        // Swagger UI treats "none" like null: no online validator, no badge image from it.
        assert!(
            compact.contains(r#""validatorUrl":"none""#) || compact.contains(r#""validatorUrl":null"#),
            "the Swagger UI config does not switch the online validator off:\n{js}"
        );
        assert!(!js.contains("validator.swagger.io"), "{js}");
    })
    .await;
}

//! Changing a password, and resetting a forgotten one.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

const NEW_PASSWORD: &str = "a brand new passphrase";

fn reset_token(link: &str) -> String {
    let after = link.split("token=").nth(1).expect("token in link");
    after.split_whitespace().next().expect("token").to_string()
}

#[tokio::test]
async fn changing_the_password_needs_the_current_one_and_ends_other_sessions() {
    on_each_backend(|app| async move {
        let first = app.sign_up("ada@example.com").await;
        let (_, second) = app.log_in("ada@example.com", PASSWORD).await;

        let (status, body) = app
            .post(
                "/v1/me/password",
                json!({ "current_password": "not my password", "new_password": NEW_PASSWORD }),
                Some(&token(&first)),
            )
            .await;
        assert_problem(status, &body, 422, "validation-failed");
        assert_eq!(body["errors"][0]["field"], "current_password");

        let (status, body) = app
            .post(
                "/v1/me/password",
                json!({ "current_password": PASSWORD, "new_password": "short" }),
                Some(&token(&first)),
            )
            .await;
        assert_problem(status, &body, 422, "validation-failed");
        assert_eq!(body["errors"][0]["field"], "new_password");
        let (status, _) = app.log_in("ada@example.com", PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "refused changes change nothing");

        let (status, body) = app
            .post(
                "/v1/me/password",
                json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD }),
                Some(&token(&first)),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

        let (status, _) = app.get("/v1/me", Some(&token(&first))).await;
        assert_eq!(status, StatusCode::OK, "the session that changed it stays");
        let (status, _) = app.get("/v1/me", Some(&token(&second))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "other sessions end");
        let (status, _) = app
            .post(
                "/v1/auth/refresh",
                json!({ "refresh_token": second["refresh_token"] }),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        let (status, _) = app.log_in("ada@example.com", PASSWORD).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "the old password is gone");
        let (status, _) = app.log_in("ada@example.com", NEW_PASSWORD).await;
        assert_eq!(status, StatusCode::OK);

        let kinds: Vec<String> = app
            .notifications_to("ada@example.com")
            .await
            .into_iter()
            .map(|n| n.kind)
            .collect();
        assert!(kinds.contains(&"password_changed".to_string()));
    })
    .await;
}

#[tokio::test]
async fn a_reset_request_always_answers_202_and_mails_only_known_users() {
    on_each_backend(|app| async move {
        app.sign_up("ada@example.com").await;
        let (known, _) = app
            .post("/v1/auth/password-reset", json!({ "email": "ADA@example.com" }), None)
            .await;
        let (unknown, _) = app
            .post(
                "/v1/auth/password-reset",
                json!({ "email": "nobody@example.com" }),
                None,
            )
            .await;
        assert_eq!(known, StatusCode::ACCEPTED);
        assert_eq!(unknown, StatusCode::ACCEPTED);

        let mail = app.wait_for_notification("ada@example.com", "password_reset").await;
        assert!(
            mail.body.contains("https://app.example.test/reset-password?token="),
            "{}",
            mail.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(app.notifications_to("nobody@example.com").await.is_empty());

        let (status, body) = app
            .post("/v1/auth/password-reset", json!({ "email": "not an email" }), None)
            .await;
        assert_problem(status, &body, 422, "validation-failed");
    })
    .await;
}

#[tokio::test]
async fn a_reset_link_sets_a_new_password_once_and_ends_every_session() {
    on_each_backend(|app| async move {
        let session = app.sign_up("ada@example.com").await;
        app.post("/v1/auth/password-reset", json!({ "email": "ada@example.com" }), None)
            .await;
        let mail = app.wait_for_notification("ada@example.com", "password_reset").await;
        let payload: serde_json::Value = serde_json::from_str(&mail.payload).unwrap();
        let token_value = reset_token(payload["link"].as_str().unwrap());

        let (status, body) = app
            .post(
                "/v1/auth/password-reset/confirm",
                json!({ "token": token_value, "new_password": "short" }),
                None,
            )
            .await;
        assert_problem(status, &body, 422, "validation-failed");

        let (status, body) = app
            .post(
                "/v1/auth/password-reset/confirm",
                json!({ "token": token_value, "new_password": NEW_PASSWORD }),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        let (status, _) = app.get("/v1/me", Some(&token(&session))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "sessions end on reset");
        let (status, _) = app.log_in("ada@example.com", NEW_PASSWORD).await;
        assert_eq!(status, StatusCode::OK);

        let (status, body) = app
            .post(
                "/v1/auth/password-reset/confirm",
                json!({ "token": token_value, "new_password": "yet another passphrase" }),
                None,
            )
            .await;
        assert_problem(status, &body, 400, "invalid-token");
        let (status, _) = app.log_in("ada@example.com", NEW_PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "a spent link changes nothing");
    })
    .await;
}

#[tokio::test]
async fn expired_superseded_and_unknown_reset_links_are_refused() {
    on_each_backend(|app| async move {
        app.sign_up("ada@example.com").await;
        app.post("/v1/auth/password-reset", json!({ "email": "ada@example.com" }), None)
            .await;
        let first = app.wait_for_notification("ada@example.com", "password_reset").await;
        let first_token = reset_token(&first.body);

        // A newer link supersedes the older one.
        app.post("/v1/auth/password-reset", json!({ "email": "ada@example.com" }), None)
            .await;
        let mut second = first.clone();
        for _ in 0..100 {
            let all = app.notifications_to("ada@example.com").await;
            if let Some(n) = all.into_iter().find(|n| n.kind == "password_reset" && n.id != first.id) {
                second = n;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_ne!(second.id, first.id, "a second link was sent");
        let (status, body) = app
            .post(
                "/v1/auth/password-reset/confirm",
                json!({ "token": first_token, "new_password": NEW_PASSWORD }),
                None,
            )
            .await;
        assert_problem(status, &body, 400, "invalid-token");

        // Links expire (1 hour by default).
        app.clock.advance(chrono::Duration::minutes(61));
        let (status, body) = app
            .post(
                "/v1/auth/password-reset/confirm",
                json!({ "token": reset_token(&second.body), "new_password": NEW_PASSWORD }),
                None,
            )
            .await;
        assert_problem(status, &body, 400, "invalid-token");

        let (status, body) = app
            .post(
                "/v1/auth/password-reset/confirm",
                json!({ "token": "made-up", "new_password": NEW_PASSWORD }),
                None,
            )
            .await;
        assert_problem(status, &body, 400, "invalid-token");
        let (status, _) = app.log_in("ada@example.com", PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "the password never changed");
    })
    .await;
}

#[tokio::test]
async fn a_new_password_must_differ_and_a_bad_confirm_lists_every_field() {
    on_each_backend(|app| async move {
        let ada = app.sign_up("ada@example.com").await;
        let (status, body) = app
            .post(
                "/v1/me/password",
                json!({ "current_password": PASSWORD, "new_password": PASSWORD }),
                Some(&token(&ada)),
            )
            .await;
        assert_problem(status, &body, 422, "validation-failed");
        assert_eq!(body["errors"][0]["field"], "new_password");
        assert_eq!(body["errors"][0]["code"], "unchanged");

        let (status, body) = app
            .post(
                "/v1/auth/password-reset/confirm",
                json!({ "token": "", "new_password": "short" }),
                None,
            )
            .await;
        assert_problem(status, &body, 422, "validation-failed");
        let fields: Vec<&str> = body["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        assert_eq!(fields, vec!["new_password", "token"]);
    })
    .await;
}

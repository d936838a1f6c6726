//! Sign-up, login, refresh rotation, logout and `/v1/me`.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn sign_up_creates_an_organization_and_its_owner_and_logs_them_in() {
    on_each_backend(|app| async move {
        let body = app.sign_up("ada@example.com").await;
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 900);
        assert!(body["refresh_token"].as_str().is_some_and(|t| t.len() >= 43));
        assert_eq!(body["account_selection_required"], false);
        assert_eq!(body["account"]["kind"], "organization");
        assert!(body["account"]["id"].as_str().unwrap().starts_with("acc_"));
        assert!(body["user"]["id"].as_str().unwrap().starts_with("usr_"));

        let (status, me) = app.get("/v1/me", Some(&token(&body))).await;
        assert_eq!(status, StatusCode::OK, "{me}");
        assert_eq!(me["user"]["email"], "ada@example.com");
        assert_eq!(me["account"]["id"], body["account"]["id"]);
        assert_eq!(me["acting_as"], serde_json::Value::Null);
        assert_eq!(me["membership"]["roles"][0]["builtin"], "owner");
        let permissions: Vec<&str> = me["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        assert!(permissions.contains(&"account.transfer") && permissions.contains(&"users.manage"));
        assert!(me["user"].get("password_hash").is_none());

        let account_id = body["account"]["id"].as_str().unwrap();
        assert_eq!(app.audit_actions(account_id).await, vec!["account.created"]);
    })
    .await;
}

#[tokio::test]
async fn sign_up_refuses_a_taken_email_whatever_its_case() {
    on_each_backend(|app| async move {
        app.sign_up("ada@example.com").await;
        let (status, body) = app
            .post(
                "/v1/auth/signup",
                json!({ "organization_name": "Other", "email": "ADA@Example.com", "first_name": "A", "last_name": "L", "password": PASSWORD }),
                None,
            )
            .await;
        assert_problem(status, &body, 409, "email-taken");
    })
    .await;
}

#[tokio::test]
async fn sign_up_is_refused_when_closed() {
    on_each_backend_with(&[("STEWARD_OPEN_SIGNUP", "false")], |app| async move {
        let (status, body) = app
            .post(
                "/v1/auth/signup",
                json!({ "organization_name": "Acme", "email": "ada@example.com", "first_name": "A", "last_name": "L", "password": PASSWORD }),
                None,
            )
            .await;
        assert_problem(status, &body, 403, "signup-closed");
        let (status, _) = app.log_in("ada@example.com", PASSWORD).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "nothing was created");
    })
    .await;
}

#[tokio::test]
async fn login_works_by_email_in_any_case_and_by_username() {
    on_each_backend(|app| async move {
        let (status, body) = app
            .post(
                "/v1/auth/signup",
                json!({ "organization_name": "Acme", "email": "grace@example.com", "username": "Grace.H", "first_name": "Grace", "last_name": "Hopper", "password": PASSWORD }),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");

        for identifier in ["grace@example.com", "GRACE@EXAMPLE.COM", "grace.h", "Grace.H"] {
            let (status, body) = app.log_in(identifier, PASSWORD).await;
            assert_eq!(status, StatusCode::OK, "login as {identifier}: {body}");
            assert_eq!(body["user"]["email"], "grace@example.com");
            assert_eq!(body["account_selection_required"], false);
            let (status, _) = app.get("/v1/me", Some(&token(&body))).await;
            assert_eq!(status, StatusCode::OK);
        }
    })
    .await;
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_answer() {
    on_each_backend(|app| async move {
        app.sign_up("ada@example.com").await;
        let (s1, wrong_password) = app.log_in("ada@example.com", "not the password at all").await;
        let (s2, unknown_user) = app.log_in("nobody@example.com", PASSWORD).await;
        let (s3, unknown_name) = app.log_in("nobody", PASSWORD).await;
        assert_problem(s1, &wrong_password, 401, "invalid-credentials");
        assert_problem(s2, &unknown_user, 401, "invalid-credentials");
        assert_problem(s3, &unknown_name, 401, "invalid-credentials");
        assert_eq!(wrong_password["detail"], unknown_user["detail"]);
        assert_eq!(wrong_password["detail"], unknown_name["detail"]);
    })
    .await;
}

#[tokio::test]
async fn an_account_id_at_login_is_looked_at_only_after_the_password() {
    on_each_backend(|app| async move {
        app.sign_up("ada@example.com").await;
        let login = |password: &'static str| {
            json!({ "identifier": "ada@example.com", "password": password, "account_id": "acc_not-an-id" })
        };
        let (status, body) = app.post("/v1/auth/login", login("not the password at all"), None).await;
        assert_problem(status, &body, 401, "invalid-credentials");
        let (status, body) = app.post("/v1/auth/login", login(PASSWORD), None).await;
        assert_problem(status, &body, 404, "not-found");
    })
    .await;
}

#[tokio::test]
async fn refresh_rotates_and_a_reused_token_revokes_the_whole_family() {
    on_each_backend(|app| async move {
        let first = app.sign_up("ada@example.com").await;
        let r1 = first["refresh_token"].as_str().unwrap().to_string();

        let (status, second) = app.post("/v1/auth/refresh", json!({ "refresh_token": r1 }), None).await;
        assert_eq!(status, StatusCode::OK, "{second}");
        let r2 = second["refresh_token"].as_str().unwrap().to_string();
        assert_ne!(r1, r2, "the refresh token is rotated");
        let (status, _) = app.get("/v1/me", Some(&token(&second))).await;
        assert_eq!(status, StatusCode::OK);

        // r1 is spent: presenting it again is a reuse.
        let (status, body) = app.post("/v1/auth/refresh", json!({ "refresh_token": r1 }), None).await;
        assert_problem(status, &body, 401, "unauthenticated");

        // The whole family is gone: the newest refresh token and the access tokens too.
        let (status, _) = app.post("/v1/auth/refresh", json!({ "refresh_token": r2 }), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = app.get("/v1/me", Some(&token(&second))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    })
    .await;
}

#[tokio::test]
async fn concurrent_refreshes_with_one_token_let_at_most_one_through() {
    on_each_backend(|app| async move {
        let first = app.sign_up("ada@example.com").await;
        let r1 = first["refresh_token"].as_str().unwrap().to_string();
        let calls = (0..8).map(|_| app.post("/v1/auth/refresh", json!({ "refresh_token": r1.clone() }), None));
        let results = futures_util::future::join_all(calls).await;
        let ok = results.iter().filter(|(s, _)| *s == StatusCode::OK).count();
        assert!(ok <= 1, "{ok} refreshes succeeded with one token");
        assert!(results
            .iter()
            .all(|(s, _)| *s == StatusCode::OK || *s == StatusCode::UNAUTHORIZED));
    })
    .await;
}

#[tokio::test]
async fn unknown_and_expired_refresh_tokens_are_refused() {
    on_each_backend(|app| async move {
        let (status, body) = app
            .post("/v1/auth/refresh", json!({ "refresh_token": "made-up" }), None)
            .await;
        assert_problem(status, &body, 401, "unauthenticated");

        let first = app.sign_up("ada@example.com").await;
        app.clock.advance(chrono::Duration::days(31));
        let (status, body) = app
            .post(
                "/v1/auth/refresh",
                json!({ "refresh_token": first["refresh_token"] }),
                None,
            )
            .await;
        assert_problem(status, &body, 401, "unauthenticated");
    })
    .await;
}

#[tokio::test]
async fn logout_ends_the_session_for_access_and_refresh_tokens() {
    on_each_backend(|app| async move {
        let body = app.sign_up("ada@example.com").await;
        let access = token(&body);
        let (status, _) = app.post("/v1/auth/logout", json!({}), Some(&access)).await;
        assert_eq!(status, StatusCode::NO_CONTENT);

        let (status, problem) = app.get("/v1/me", Some(&access)).await;
        assert_problem(status, &problem, 401, "unauthenticated");
        let (status, _) = app
            .post(
                "/v1/auth/refresh",
                json!({ "refresh_token": body["refresh_token"] }),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        // Another session of the same user is untouched.
        let (status, other) = app.log_in("ada@example.com", PASSWORD).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = app.get("/v1/me", Some(&token(&other))).await;
        assert_eq!(status, StatusCode::OK);
    })
    .await;
}

#[tokio::test]
async fn switching_to_an_account_the_user_is_not_in_answers_404() {
    on_each_backend(|app| async move {
        let ada = app.sign_up("ada@example.com").await;
        let bob = app.sign_up("bob@example.com").await;
        let (status, body) = app
            .post(
                "/v1/auth/switch-account",
                json!({ "account_id": bob["account"]["id"] }),
                Some(&token(&ada)),
            )
            .await;
        assert_problem(status, &body, 404, "not-found");
        let (status, body) = app
            .post(
                "/v1/auth/switch-account",
                json!({ "account_id": "acc_not-an-id" }),
                Some(&token(&ada)),
            )
            .await;
        assert_problem(status, &body, 404, "not-found");

        // Switching to one's own account works and re-issues a scoped token.
        let (status, body) = app
            .post(
                "/v1/auth/switch-account",
                json!({ "account_id": ada["account"]["id"] }),
                Some(&token(&ada)),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["account"]["id"], ada["account"]["id"]);
        assert!(body.get("refresh_token").is_none());
    })
    .await;
}

//! The new-password policy (ASVS 6.2): 8 to 256 characters, no composition rules, and not
//! one of the most common passwords, wherever a password is chosen.

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Stdio};

use crate::helpers::*;

/// On the shipped list (src/auth/common-passwords.txt), in another case.
const COMMON: &str = "PassWord123";

fn assert_too_common(status: StatusCode, body: &Value, field: &str) {
    assert_problem(status, body, 422, "password-too-common");
    assert_eq!(body["errors"][0]["field"], field, "{body}");
    assert_eq!(body["errors"][0]["code"], "too_common", "{body}");
}

fn signup(password: &str) -> Value {
    json!({
        "organization_name": "Acme", "email": "ada@example.com",
        "first_name": "Ada", "last_name": "Lovelace", "password": password,
    })
}

#[tokio::test]
async fn sign_up_takes_eight_to_256_characters_of_anything_but_a_common_password() {
    on_each_backend(|app| async move {
        let (status, body) = app.post("/v1/auth/signup", signup(COMMON), None).await;
        assert_too_common(status, &body, "password");
        let (status, body) = app.post("/v1/auth/signup", signup("qwertyuiop"), None).await;
        assert_too_common(status, &body, "password");
        for bad in ["seven77", &"x".repeat(257)] {
            let (status, body) = app.post("/v1/auth/signup", signup(bad), None).await;
            assert_problem(status, &body, 422, "validation-failed");
        }
        // With another invalid field, the answer lists both under validation-failed.
        let mut both = signup(COMMON);
        both["email"] = json!("not an email");
        let (status, body) = app.post("/v1/auth/signup", both, None).await;
        assert_problem(status, &body, 422, "validation-failed");
        assert_eq!(body["errors"].as_array().unwrap().len(), 2, "{body}");

        // Eight characters, no rules about what kind.
        let (status, body) = app.post("/v1/auth/signup", signup("zq8 lm2k"), None).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    })
    .await;
}

#[tokio::test]
async fn changing_resetting_and_accepting_refuse_a_common_password() {
    on_each_backend(|app| async move {
        let org = app.org("ada@example.com").await;

        let (status, body) = app
            .post(
                "/v1/me/password",
                json!({"current_password": PASSWORD, "new_password": COMMON}),
                Some(&org.owner_token),
            )
            .await;
        assert_too_common(status, &body, "new_password");

        app.post("/v1/auth/password-reset", json!({ "email": "ada@example.com" }), None)
            .await;
        let mail = app.wait_for_notification("ada@example.com", "password_reset").await;
        let payload: Value = serde_json::from_str(&mail.payload).unwrap();
        let reset = link_token(payload["link"].as_str().unwrap());
        let (status, body) = app
            .post(
                "/v1/auth/password-reset/confirm",
                json!({"token": reset, "new_password": "iloveyou1"}),
                None,
            )
            .await;
        assert_too_common(status, &body, "new_password");
        // The refused attempt spent nothing: the same link still sets a good password.
        let (status, body) = app
            .post(
                "/v1/auth/password-reset/confirm",
                json!({"token": reset, "new_password": MEMBER_PASSWORD}),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        let owner = app.fresh_token("ada@example.com", MEMBER_PASSWORD).await;

        let viewer = app.role_id(&owner, "viewer").await;
        let (status, invite) = app.create_invite(&owner, "grace@example.com", &[viewer], false).await;
        assert_eq!(status, StatusCode::CREATED, "{invite}");
        let invitation = link_token(invite["registration_url"].as_str().unwrap());
        let (status, body) = app
            .accept_invitation(
                json!({"token": invitation, "first_name": "Grace", "last_name": "Hopper", "password": "football1"}),
                None,
            )
            .await;
        assert_too_common(status, &body, "password");
        let (status, body) = app
            .accept_invitation(
                json!({"token": invitation, "first_name": "Grace", "last_name": "Hopper", "password": MEMBER_PASSWORD}),
                None,
            )
            .await;
        assert!(status.is_success(), "{body}");
    })
    .await;
}

#[tokio::test]
async fn create_owner_refuses_a_common_password() {
    on_each_backend_with(&[("STEWARD_OPEN_SIGNUP", "false")], |app| async move {
        let mut child = Command::new(env!("CARGO_BIN_EXE_steward"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("STEWARD_DATABASE_URL", &app.database_url)
            .args([
                "create-owner",
                "--organization",
                "Acme",
                "--email",
                "root@example.com",
                "--first-name",
                "Root",
                "--last-name",
                "Owner",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(b"baseball1\n").unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--password") && stderr.contains("common"), "{stderr}");
        let (status, _) = app.log_in("root@example.com", "baseball1").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "no owner was created");
    })
    .await;
}

//! API keys: machine credentials of an organization. Created by owners and admins with no
//! more than they hold, shown once, used directly or exchanged for an access token (OAuth 2.0
//! client credentials), named as the actor in the audit trail, rotated and revoked with
//! immediate effect, and never able to act as a person.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use steward::clock::Clock;

/// Posts a form to the token endpoint, with optional HTTP Basic credentials.
async fn token_request(app: &TestApp, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> (StatusCode, Value) {
    let mut req = app
        .client
        .post(app.url("/v1/oauth/token"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(form).expect("a form"));
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let res = req.send_checked().await.expect("sent");
    let status = res.status();
    (status, res.json().await.expect("JSON"))
}

async fn exchange(app: &TestApp, id: &str, secret: &str) -> String {
    let (status, body) = token_request(app, &[("grant_type", "client_credentials")], Some((id, secret))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().expect("access_token").to_string()
}

async fn find_key(app: &TestApp, token: &str, id: &str) -> Value {
    let (status, body) = app.get(&format!("/v1/api-keys/{id}"), Some(token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn a_key_works_directly_acts_as_itself_and_is_shown_once() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (status, made) = app
            .post(
                "/v1/api-keys",
                json!({ "name": "HR sync", "role_ids": [app.role_id(&org.owner_token, "admin").await] }),
                Some(&org.owner_token),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{made}");
        let id = made["key"]["id"].as_str().unwrap().to_string();
        let secret = made["secret"].as_str().unwrap().to_string();
        assert!(secret.starts_with("stk_") && secret.len() >= 40, "{secret}");
        assert_eq!(made["key"]["secret_prefix"], secret[..12]);
        assert_eq!(made["key"]["state"], "active");
        assert_eq!(made["key"]["created_by"], org.owner_id.as_str());

        // The key reads and writes with its roles, across the whole organization.
        let (status, users) = app.get("/v1/users", Some(&secret)).await;
        assert_eq!(status, StatusCode::OK, "{users}");
        let (status, created) = app
            .post(
                "/v1/users",
                json!({ "email": "ann@example.com", "first_name": "Ann", "last_name": "Lee", "password": PASSWORD,
                        "role_ids": [app.role_id(&org.owner_token, "standard").await], "account_id": org.location }),
                Some(&secret),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let ann = created["user"]["id"].as_str().unwrap().to_string();

        // The audit trail names the key, not a person, as the actor.
        let rows = app.audit_rows(&ann).await;
        let made_by = rows.iter().find(|r| r.action == "user.created").expect("user.created");
        assert_eq!(made_by.actor_api_key_id.as_deref(), Some(id.as_str()));
        assert_eq!(made_by.actor_user_id, None);
        assert_eq!(made_by.effective_user_id, None);

        // Listed without its secret, with its last use.
        let (status, list) = app.get("/v1/api-keys", Some(&org.owner_token)).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        let listed = &list["items"][0];
        assert_eq!(listed["id"], id.as_str());
        assert!(listed.get("secret").is_none(), "{listed}");
        assert!(!list.to_string().contains(&secret), "the secret never shows again");
        assert!(listed["last_used_at"].is_string(), "{listed}");
        assert_eq!(listed["roles"][0]["builtin"], "admin");

        // An Idempotency-Key retry by the key replays the first answer.
        let body = json!({ "email": "bo@example.com", "first_name": "Bo", "last_name": "Ek", "password": PASSWORD,
                           "role_ids": [app.role_id(&org.owner_token, "viewer").await], "account_id": org.root });
        let mut statuses = Vec::new();
        for _ in 0..2 {
            let res = app
                .client
                .post(app.url("/v1/users"))
                .bearer_auth(&secret)
                .header("Idempotency-Key", "bo-once")
                .json(&body)
                .send_checked()
                .await
                .unwrap();
            statuses.push((res.status(), res.headers().get("idempotent-replayed").is_some()));
        }
        assert_eq!(
            statuses,
            vec![(StatusCode::CREATED, false), (StatusCode::CREATED, true)]
        );
    })
    .await;
}

#[tokio::test]
async fn a_key_never_acts_as_a_person() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (_, secret) = app.api_key(&org.owner_token, "Ops", &["admin"]).await;
        let (viewer, _) = app
            .member(&org.owner_token, "val@example.com", &["viewer"], &org.root)
            .await;
        let viewer_role = app.role_id(&org.owner_token, "viewer").await;
        let refused: Vec<(reqwest::Method, String, Value)> = vec![
            // No keys minting keys.
            (
                reqwest::Method::POST,
                "/v1/api-keys".into(),
                json!({ "name": "child", "role_ids": [viewer_role] }),
            ),
            (reqwest::Method::GET, "/v1/api-keys".into(), Value::Null),
            // No passwords, no person's own pages.
            (
                reqwest::Method::POST,
                "/v1/me/password".into(),
                json!({ "current_password": "x", "new_password": "a long new passphrase" }),
            ),
            (reqwest::Method::GET, "/v1/me".into(), Value::Null),
            // No delegation.
            (
                reqwest::Method::POST,
                "/v1/impersonations".into(),
                json!({ "user_id": viewer, "reason": "Support ticket 1", "confirm": true }),
            ),
            (
                reqwest::Method::POST,
                "/v1/me/acting-as".into(),
                json!({ "user_id": viewer }),
            ),
        ];
        for (method, path, body) in refused {
            let body = (!body.is_null()).then_some(body);
            let (status, problem) = app.call(method.clone(), &path, body, Some(&secret)).await;
            assert_problem(status, &problem, 403, "api-key-forbidden");
        }
    })
    .await;
}

#[tokio::test]
async fn keys_never_hold_more_than_their_creator_nor_the_owner_role() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (_, admin) = app
            .member(&org.owner_token, "ada@example.com", &["admin"], &org.root)
            .await;
        let owner_role = app.role_id(&org.owner_token, "owner").await;
        let (status, body) = app
            .post(
                "/v1/api-keys",
                json!({ "name": "k", "role_ids": [owner_role] }),
                Some(&org.owner_token),
            )
            .await;
        assert_problem(status, &body, 422, "validation-failed");
        assert_eq!(body["errors"][0]["code"], "owner_role");

        // A custom role with account.transfer, made by the owner: the admin cannot hand it to a key.
        let (status, role) = app
            .create_role(&org.owner_token, "Transfer agent", &["account.transfer", "users.read"])
            .await;
        assert_eq!(status, StatusCode::CREATED, "{role}");
        let transfer = role["id"].as_str().unwrap();
        let (status, body) = app
            .post(
                "/v1/api-keys",
                json!({ "name": "k", "role_ids": [transfer] }),
                Some(&admin),
            )
            .await;
        assert_problem(status, &body, 403, "forbidden");

        // Nor may the admin revoke or rotate the owner's key that holds it.
        let (status, made) = app
            .post(
                "/v1/api-keys",
                json!({ "name": "owner's", "role_ids": [transfer] }),
                Some(&org.owner_token),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{made}");
        let key = made["key"]["id"].as_str().unwrap();
        let (status, body) = app.delete(&format!("/v1/api-keys/{key}"), Some(&admin)).await;
        assert_problem(status, &body, 403, "forbidden");
        let (status, body) = app
            .post(&format!("/v1/api-keys/{key}/rotate"), json!({}), Some(&admin))
            .await;
        assert_problem(status, &body, 403, "forbidden");

        // A role a live key holds cannot be deleted.
        let (status, body) = app
            .delete(&format!("/v1/roles/{transfer}"), Some(&org.owner_token))
            .await;
        assert_problem(status, &body, 409, "role-in-use");

        // Malformed input changes nothing.
        for bad in [
            json!({ "name": "", "role_ids": [transfer] }),
            json!({ "name": "k", "role_ids": [] }),
            json!({ "name": "k", "role_ids": ["rol_00000000000000000000000000"] }),
            json!({ "name": "k", "role_ids": [transfer], "expires_at": "2001-01-01T00:00:00Z" }),
            json!({ "name": "k", "role_ids": [transfer], "scopes": ["all"] }),
        ] {
            let (status, body) = app.post("/v1/api-keys", bad.clone(), Some(&org.owner_token)).await;
            assert!(
                status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::BAD_REQUEST,
                "{bad}: {status} {body}"
            );
        }
        let (_, list) = app.get("/v1/api-keys", Some(&org.owner_token)).await;
        assert_eq!(list["items"].as_array().unwrap().len(), 1);

        // A standard user may not manage keys at all; another organization's key is unknown.
        let (_, standard) = app
            .member(&org.owner_token, "sol@example.com", &["standard"], &org.root)
            .await;
        let (status, body) = app.get("/v1/api-keys", Some(&standard)).await;
        assert_problem(status, &body, 403, "forbidden");
        let other = app.org("other@example.com").await;
        let (status, body) = app.get(&format!("/v1/api-keys/{key}"), Some(&other.owner_token)).await;
        assert_problem(status, &body, 404, "not-found");
        let (status, body) = app
            .delete(&format!("/v1/api-keys/{key}"), Some(&other.owner_token))
            .await;
        assert_problem(status, &body, 404, "not-found");
    })
    .await;
}

#[tokio::test]
async fn keys_see_only_their_own_organization() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let other = app.org("other@example.com").await;
        let (_, secret) = app.api_key(&org.owner_token, "Sync", &["admin"]).await;
        let (status, body) = app.get(&format!("/v1/users/{}", other.owner_id), Some(&secret)).await;
        assert_problem(status, &body, 404, "not-found");
        let (status, body) = app.get(&format!("/v1/accounts/{}", other.root), Some(&secret)).await;
        assert_problem(status, &body, 404, "not-found");
        // A viewer key reads but does not write.
        let (_, viewer) = app.api_key(&org.owner_token, "Reader", &["viewer"]).await;
        let (status, _) = app.get("/v1/users", Some(&viewer)).await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = app
            .post(
                "/v1/users",
                json!({ "email": "x@example.com", "first_name": "X", "last_name": "Y", "password": PASSWORD,
                "role_ids": [app.role_id(&org.owner_token, "viewer").await], "account_id": org.root }),
                Some(&viewer),
            )
            .await;
        assert_problem(status, &body, 403, "forbidden");
        // A made-up key is refused like any bad credential.
        let (status, body) = app
            .get("/v1/users", Some("stk_not-a-real-key-at-all-0000000000000000000"))
            .await;
        assert_problem(status, &body, 401, "unauthenticated");
    })
    .await;
}

#[tokio::test]
async fn client_credentials_buy_a_short_lived_token_for_the_key() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (id, secret) = app.api_key(&org.owner_token, "Sync", &["admin"]).await;

        // HTTP Basic, and the form's fields: both work.
        let token = exchange(&app, &id, &secret).await;
        let (status, body) = token_request(
            &app,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
            ],
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["token_type"], "Bearer");
        assert!(
            body.get("refresh_token").is_none(),
            "no refresh token (RFC 6749 §4.4.3)"
        );
        let claims = jwt_claims(&token);
        assert_eq!(claims["sub"], id.as_str());
        assert_eq!(claims["client_id"], id.as_str());
        assert_eq!(claims["acc"], org.root.as_str());
        assert!(claims.get("act").is_none(), "a key acts as itself: {claims}");
        let (status, _) = app.get("/v1/users", Some(&token)).await;
        assert_eq!(status, StatusCode::OK);

        // Every kind of bad request has its OAuth error code.
        let (status, body) =
            token_request(&app, &[("grant_type", "client_credentials")], Some((&id, "stk_wrong"))).await;
        assert_problem(status, &body, 401, "invalid-credentials");
        assert_eq!(body["error"], "invalid_client");
        let other = app.api_key(&org.owner_token, "Other", &["viewer"]).await.0;
        let (status, body) =
            token_request(&app, &[("grant_type", "client_credentials")], Some((&other, &secret))).await;
        assert_eq!(
            (status.as_u16(), body["error"].as_str()),
            (401, Some("invalid_client")),
            "{body}"
        );
        let (status, body) = token_request(&app, &[("grant_type", "password")], Some((&id, &secret))).await;
        assert_problem(status, &body, 400, "unsupported-grant-type");
        assert_eq!(body["error"], "unsupported_grant_type");
        let (status, body) = token_request(&app, &[("grant_type", "client_credentials")], None).await;
        assert_eq!(
            (status.as_u16(), body["error"].as_str()),
            (422, Some("invalid_request")),
            "{body}"
        );
        let res = app
            .client
            .post(app.url("/v1/oauth/token"))
            .json(&json!({ "grant_type": "client_credentials", "client_secret": secret }))
            .send_checked()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let encoded = base64::engine::general_purpose::STANDARD.encode("no-colon-here");
        let res = app
            .client
            .post(app.url("/v1/oauth/token"))
            .header("Authorization", format!("Basic {encoded}"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send_checked()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    })
    .await;
}

#[tokio::test]
async fn rotation_and_revocation_take_effect_at_once() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (id, first) = app.api_key(&org.owner_token, "Sync", &["admin"]).await;
        let first_token = exchange(&app, &id, &first).await;
        app.clock.advance(chrono::Duration::seconds(2));

        // Rotation without grace: the old secret and its tokens stop at once.
        let (status, rotated) = app
            .post(&format!("/v1/api-keys/{id}/rotate"), json!({}), Some(&org.owner_token))
            .await;
        assert_eq!(status, StatusCode::OK, "{rotated}");
        let second = rotated["secret"].as_str().unwrap().to_string();
        assert_ne!(first, second);
        for old in [&first, &first_token] {
            let (status, body) = app.get("/v1/users", Some(old)).await;
            assert_problem(status, &body, 401, "unauthenticated");
        }
        let (status, _) = app.get("/v1/users", Some(&second)).await;
        assert_eq!(status, StatusCode::OK);
        let second_token = exchange(&app, &id, &second).await;

        // Rotation with a grace period: the previous secret works until it ends.
        app.clock.advance(chrono::Duration::seconds(2));
        let (status, rotated) = app
            .post(
                &format!("/v1/api-keys/{id}/rotate"),
                json!({ "grace_seconds": 60 }),
                Some(&org.owner_token),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{rotated}");
        assert!(rotated["key"]["previous_secret_valid_until"].is_string(), "{rotated}");
        let third = rotated["secret"].as_str().unwrap().to_string();
        for still in [&second, &second_token, &third] {
            let (status, _) = app.get("/v1/users", Some(still)).await;
            assert_eq!(status, StatusCode::OK);
        }
        app.clock.advance(chrono::Duration::seconds(61));
        let (status, _) = app.get("/v1/users", Some(&second)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = app.get("/v1/users", Some(&third)).await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = app
            .post(
                &format!("/v1/api-keys/{id}/rotate"),
                json!({ "grace_seconds": 90000 }),
                Some(&org.owner_token),
            )
            .await;
        assert_problem(status, &body, 422, "validation-failed");

        // Revocation: the key and its tokens stop with the next request.
        let third_token = exchange(&app, &id, &third).await;
        let (status, _) = app.delete(&format!("/v1/api-keys/{id}"), Some(&org.owner_token)).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        for dead in [&third, &third_token] {
            let (status, body) = app.get("/v1/users", Some(dead)).await;
            assert_problem(status, &body, 401, "unauthenticated");
        }
        let (status, body) = token_request(&app, &[("grant_type", "client_credentials")], Some((&id, &third))).await;
        assert_eq!((status.as_u16(), body["error"].as_str()), (401, Some("invalid_client")));
        assert_eq!(find_key(&app, &org.owner_token, &id).await["state"], "revoked");
        let (status, body) = app.delete(&format!("/v1/api-keys/{id}"), Some(&org.owner_token)).await;
        assert_problem(status, &body, 409, "conflict");
        let (status, body) = app
            .post(&format!("/v1/api-keys/{id}/rotate"), json!({}), Some(&org.owner_token))
            .await;
        assert_problem(status, &body, 409, "conflict");
        let actions = app.audit_actions(&id).await;
        for action in [
            "api_key.created",
            "api_key.rotated",
            "api_key.token_issued",
            "api_key.revoked",
        ] {
            assert!(actions.iter().any(|a| a == action), "{action} in {actions:?}");
        }
    })
    .await;
}

#[tokio::test]
async fn an_expired_key_stops_working() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let expires = (app.clock.now() + chrono::Duration::minutes(5)).and_utc().to_rfc3339();
        let (status, made) = app
            .post(
                "/v1/api-keys",
                json!({ "name": "Temp", "role_ids": [app.role_id(&org.owner_token, "viewer").await], "expires_at": expires }),
                Some(&org.owner_token),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{made}");
        let (id, secret) = (made["key"]["id"].as_str().unwrap(), made["secret"].as_str().unwrap());
        let (status, body) = token_request(&app, &[("grant_type", "client_credentials")], Some((id, secret))).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body["expires_in"].as_u64().unwrap() <= 300, "never outlives its key: {body}");
        app.clock.advance(chrono::Duration::minutes(6));
        let (status, body) = app.get("/v1/users", Some(secret)).await;
        assert_problem(status, &body, 401, "unauthenticated");
        let (status, _) = token_request(&app, &[("grant_type", "client_credentials")], Some((id, secret))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(find_key(&app, &org.owner_token, id).await["state"], "expired");
    })
    .await;
}

#[tokio::test]
async fn concurrent_rotations_and_revocations_leave_one_outcome() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (id, _) = app.api_key(&org.owner_token, "Sync", &["admin"]).await;
        // Four rotations at once: each succeeds in turn under the organization's lock, and
        // only the last secret issued works.
        let path = format!("/v1/api-keys/{id}/rotate");
        let rotations = (0..4).map(|_| app.post(&path, json!({}), Some(&org.owner_token)));
        let answers = futures_util::future::join_all(rotations).await;
        let secrets: Vec<String> = answers
            .iter()
            .map(|(status, body)| {
                assert_eq!(*status, StatusCode::OK, "{body}");
                body["secret"].as_str().unwrap().to_string()
            })
            .collect();
        let mut working = 0;
        for secret in &secrets {
            if app.get("/v1/roles", Some(secret)).await.0 == StatusCode::OK {
                working += 1;
            }
        }
        assert_eq!(working, 1, "exactly one secret is current");

        // Four revocations at once: one 204, the rest 409.
        let path = format!("/v1/api-keys/{id}");
        let revocations = (0..4).map(|_| app.delete(&path, Some(&org.owner_token)));
        let mut statuses: Vec<u16> = futures_util::future::join_all(revocations)
            .await
            .iter()
            .map(|(status, _)| status.as_u16())
            .collect();
        statuses.sort_unstable();
        assert_eq!(statuses, vec![204, 409, 409, 409]);
        let actions = app.audit_actions(&id).await;
        assert_eq!(actions.iter().filter(|a| *a == "api_key.revoked").count(), 1);
    })
    .await;
}

#[tokio::test]
async fn a_retried_create_finds_the_same_key_with_a_fresh_secret() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let body = json!({ "name": "HR sync", "role_ids": [app.role_id(&org.owner_token, "viewer").await] });
        let create = |retry: &'static str, body: Value| {
            app.client
                .post(app.url("/v1/api-keys"))
                .bearer_auth(&org.owner_token)
                .header("Idempotency-Key", retry)
                .json(&body)
                .send_checked()
        };
        let first = create("hr-sync-1", body.clone()).await.unwrap();
        assert_eq!(first.status(), StatusCode::CREATED);
        assert!(first.headers().get("idempotent-replayed").is_none());
        let first: Value = first.json().await.unwrap();
        let again = create("hr-sync-1", body.clone()).await.unwrap();
        assert_eq!(again.status(), StatusCode::CREATED);
        assert_eq!(again.headers()["idempotent-replayed"], "true");
        let again: Value = again.json().await.unwrap();
        assert_eq!(again["key"]["id"], first["key"]["id"], "the same key, not a second one");
        let (old, new) = (first["secret"].as_str().unwrap(), again["secret"].as_str().unwrap());
        assert_ne!(old, new, "secrets are never kept, so a retry gets a new one");
        assert_eq!(app.get("/v1/roles", Some(old)).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(app.get("/v1/roles", Some(new)).await.0, StatusCode::OK);

        // The same Idempotency-Key for another request is refused; nothing more is created.
        let other = json!({ "name": "Another", "role_ids": body["role_ids"] });
        let res = create("hr-sync-1", other).await.unwrap();
        let status = res.status();
        let problem: Value = res.json().await.unwrap();
        assert_problem(status, &problem, 422, "idempotency-key-reused");
        let (_, list) = app.get("/v1/api-keys", Some(&org.owner_token)).await;
        assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
        let res = app
            .client
            .post(app.url("/v1/api-keys"))
            .bearer_auth(&org.owner_token)
            .header("Idempotency-Key", "")
            .json(&body)
            .send_checked()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    })
    .await;
}

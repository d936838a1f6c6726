//! Concurrent edits (`ETag` / `If-Match`): two people editing one user or account can never
//! lose each other's change; a stale version is a 412 and changes nothing.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::contract::SendChecked;
use crate::helpers::*;

struct Answer {
    status: StatusCode,
    etag: Option<String>,
    body: Value,
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    if_match: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let mut req = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(tag) = if_match {
        req = req.header("If-Match", tag);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send_checked().await.expect("request sent");
    let status = res.status();
    let etag = res
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = res.json().await.unwrap_or(Value::Null);
    Answer { status, etag, body }
}

async fn read(app: &TestApp, path: &str, token: &str) -> Answer {
    let answer = send(app, Method::GET, path, token, None, None).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    answer
}

#[tokio::test]
async fn two_admins_editing_one_user_cannot_lose_each_others_change() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (_, ann) = app
            .member(&org.owner_token, "ann@example.com", &["admin"], &org.root)
            .await;
        let (_, bob) = app
            .member(&org.owner_token, "bob@example.com", &["admin"], &org.root)
            .await;
        let (sam, _) = app
            .member(&org.owner_token, "sam@example.com", &["standard"], &org.group)
            .await;
        let path = format!("/v1/users/{sam}");

        let seen = read(&app, &path, &ann).await.etag.expect("an ETag");
        assert_eq!(
            read(&app, &path, &bob).await.etag.as_deref(),
            Some(seen.as_str()),
            "one version for all readers"
        );

        let first = send(
            &app,
            Method::PATCH,
            &path,
            &ann,
            Some(&seen),
            Some(json!({ "phone": "+1 555 0100" })),
        )
        .await;
        assert_eq!(first.status, StatusCode::OK, "{}", first.body);
        let now = first.etag.expect("the new version");
        assert_ne!(now, seen);

        // Bob edits from the version he read: refused, nothing written.
        let stale = send(
            &app,
            Method::PATCH,
            &path,
            &bob,
            Some(&seen),
            Some(json!({ "phone": "+1 555 0199" })),
        )
        .await;
        assert_problem(stale.status, &stale.body, 412, "precondition-failed");
        assert_eq!(read(&app, &path, &bob).await.body["user"]["phone"], "+1 555 0100");
        // He reads again and applies his change on top.
        let fresh = read(&app, &path, &bob).await.etag.unwrap();
        let second = send(
            &app,
            Method::PATCH,
            &path,
            &bob,
            Some(&fresh),
            Some(json!({ "first_name": "Samuel" })),
        )
        .await;
        assert_eq!(second.status, StatusCode::OK, "{}", second.body);
        assert_eq!(second.body["user"]["phone"], "+1 555 0100", "Ann's change kept");

        // Every write of the member honours it: roles, place, deletion.
        let viewer = app.role_id(&org.owner_token, "viewer").await;
        let roles_path = format!("{path}/roles");
        let answer = send(
            &app,
            Method::PUT,
            &roles_path,
            &ann,
            Some(&seen),
            Some(json!({ "role_ids": [viewer] })),
        )
        .await;
        assert_problem(answer.status, &answer.body, 412, "precondition-failed");
        let node_path = format!("{path}/node");
        let answer = send(
            &app,
            Method::PUT,
            &node_path,
            &ann,
            Some(&seen),
            Some(json!({ "account_id": org.root })),
        )
        .await;
        assert_problem(answer.status, &answer.body, 412, "precondition-failed");
        let answer = send(&app, Method::DELETE, &path, &ann, Some(&seen), None).await;
        assert_problem(answer.status, &answer.body, 412, "precondition-failed");
        let current = read(&app, &path, &ann).await;
        assert_eq!(current.body["user"]["status"], "active", "nothing was deleted");

        // `*` and no If-Match at all both go ahead.
        let star = send(
            &app,
            Method::PUT,
            &roles_path,
            &ann,
            Some("*"),
            Some(json!({ "role_ids": [viewer] })),
        )
        .await;
        assert_eq!(star.status, StatusCode::OK, "{}", star.body);
        assert_ne!(star.etag, current.etag, "a role change is a new version");
        let plain = send(
            &app,
            Method::PATCH,
            &path,
            &ann,
            None,
            Some(json!({ "last_name": "Plain" })),
        )
        .await;
        assert_eq!(plain.status, StatusCode::OK);
    })
    .await;
}

#[tokio::test]
async fn concurrent_edits_from_one_version_let_exactly_one_through() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (_, ann) = app
            .member(&org.owner_token, "ann@example.com", &["admin"], &org.root)
            .await;
        let path = format!("/v1/accounts/{}", org.group);
        let seen = read(&app, &path, &ann).await.etag.expect("an ETag");
        let edits = (0..4).map(|i| {
            let token = if i % 2 == 0 {
                ann.clone()
            } else {
                org.owner_token.clone()
            };
            let (app, path, seen) = (&app, path.clone(), seen.clone());
            async move {
                send(
                    app,
                    Method::PATCH,
                    &path,
                    &token,
                    Some(&seen),
                    Some(json!({ "name": format!("North {i}") })),
                )
                .await
            }
        });
        let answers = futures_util::future::join_all(edits).await;
        let ok = answers.iter().filter(|a| a.status == StatusCode::OK).count();
        let stale = answers
            .iter()
            .filter(|a| a.status == StatusCode::PRECONDITION_FAILED)
            .count();
        assert_eq!(
            (ok, stale),
            (1, 3),
            "{:?}",
            answers.iter().map(|a| a.status).collect::<Vec<_>>()
        );

        // A move from a stale version is refused too.
        let answer = send(
            &app,
            Method::PUT,
            &format!("/v1/accounts/{}/parent", org.location),
            &org.owner_token,
            Some(&seen),
            Some(json!({ "parent_id": org.root })),
        )
        .await;
        assert_problem(answer.status, &answer.body, 412, "precondition-failed");
    })
    .await;
}

#[tokio::test]
async fn a_role_changes_and_goes_only_from_the_version_read() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (status, role) = app.create_role(&org.owner_token, "Support", &["users.read"]).await;
        assert_eq!(status, StatusCode::CREATED, "{role}");
        let path = format!("/v1/roles/{}", role["id"].as_str().unwrap());
        let seen = read(&app, &path, &org.owner_token).await.etag.expect("an ETag");

        let changed = send(
            &app,
            Method::PATCH,
            &path,
            &org.owner_token,
            Some(&seen),
            Some(json!({ "permissions": ["users.read", "users.invite"] })),
        )
        .await;
        assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
        assert_ne!(
            changed.etag.as_deref(),
            Some(seen.as_str()),
            "new permissions, new version"
        );
        let stale = send(
            &app,
            Method::PATCH,
            &path,
            &org.owner_token,
            Some(&seen),
            Some(json!({ "description": "late" })),
        )
        .await;
        assert_problem(stale.status, &stale.body, 412, "precondition-failed");
        let stale = send(&app, Method::DELETE, &path, &org.owner_token, Some(&seen), None).await;
        assert_problem(stale.status, &stale.body, 412, "precondition-failed");
        let current = changed.etag.unwrap();
        let gone = send(&app, Method::DELETE, &path, &org.owner_token, Some(&current), None).await;
        assert_eq!(gone.status, StatusCode::NO_CONTENT);
    })
    .await;
}

#[tokio::test]
async fn the_billing_profile_is_replaced_only_from_the_version_read() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let path = format!("/v1/accounts/{}/billing", org.root);
        let seen = read(&app, &path, &org.owner_token).await.etag.expect("an ETag");
        let profile = |price: i64| json!({ "billing_email": "billing@example.com", "plan": "team", "seat_price_cents": price, "currency": "EUR" });
        let first = send(&app, Method::PUT, &path, &org.owner_token, Some(&seen), Some(profile(1500))).await;
        assert_eq!(first.status, StatusCode::OK, "{}", first.body);
        let stale = send(&app, Method::PUT, &path, &org.owner_token, Some(&seen), Some(profile(900))).await;
        assert_problem(stale.status, &stale.body, 412, "precondition-failed");
        assert_eq!(read(&app, &path, &org.owner_token).await.body["seat_price_cents"], 1500);
    })
    .await;
}

#[tokio::test]
async fn a_caretaker_is_replaced_or_removed_only_from_the_version_read() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let owner = &org.owner_token;
        let (away, _) = app.member(owner, "away@example.com", &["standard"], &org.root).await;
        let (one, _) = app.member(owner, "one@example.com", &["standard"], &org.root).await;
        let (two, _) = app.member(owner, "two@example.com", &["standard"], &org.root).await;
        let (status, body) = app.assign_caretaker(owner, &away, &one).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let path = format!("/v1/users/{away}/caretaker");
        let seen = read(&app, &path, owner).await.etag.expect("an ETag");

        let replaced = send(
            &app,
            Method::PUT,
            &path,
            owner,
            Some(&seen),
            Some(json!({ "caretaker_id": two })),
        )
        .await;
        assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.body);
        let stale = send(&app, Method::DELETE, &path, owner, Some(&seen), None).await;
        assert_problem(stale.status, &stale.body, 412, "precondition-failed");
        assert_eq!(read(&app, &path, owner).await.body["caretaker"]["id"], two.as_str());
        let current = replaced.etag.unwrap();
        let removed = send(&app, Method::DELETE, &path, owner, Some(&current), None).await;
        assert_eq!(removed.status, StatusCode::NO_CONTENT);
    })
    .await;
}

#[tokio::test]
async fn a_contact_changes_and_goes_only_from_the_version_read() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (status, made) = app
            .post(
                &format!("/v1/accounts/{}/contacts", org.root),
                json!({ "name": "Grace" }),
                Some(&org.owner_token),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{made}");
        let path = format!("/v1/contacts/{}", made["id"].as_str().unwrap());
        let seen = read(&app, &path, &org.owner_token).await.etag.expect("an ETag");
        let changed = send(
            &app,
            Method::PATCH,
            &path,
            &org.owner_token,
            Some(&seen),
            Some(json!({ "company": "Navy" })),
        )
        .await;
        assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
        let stale = send(
            &app,
            Method::PATCH,
            &path,
            &org.owner_token,
            Some(&seen),
            Some(json!({ "company": "Army" })),
        )
        .await;
        assert_problem(stale.status, &stale.body, 412, "precondition-failed");
        let stale = send(&app, Method::DELETE, &path, &org.owner_token, Some(&seen), None).await;
        assert_problem(stale.status, &stale.body, 412, "precondition-failed");
        assert_eq!(read(&app, &path, &org.owner_token).await.body["company"], "Navy");
        let current = changed.etag.unwrap();
        let gone = send(&app, Method::DELETE, &path, &org.owner_token, Some(&current), None).await;
        assert_eq!(gone.status, StatusCode::NO_CONTENT);
    })
    .await;
}

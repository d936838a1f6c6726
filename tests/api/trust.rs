//! Defects an outside probe found (issue 7), each pinned by a test on both backends: a
//! privilege-escalation race, and input that was accepted although it should not have been.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

/// Creates a plain member (no login needed) and returns their user id.
async fn plain_member(app: &TestApp, owner: &str, email: &str) -> String {
    let viewer = app.role_id(owner, "viewer").await;
    let (status, body) = app
        .post(
            "/v1/users",
            json!({ "email": email, "first_name": "M", "last_name": "Ember", "password": PASSWORD, "role_ids": [viewer] }),
            Some(owner),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["user"]["id"].as_str().unwrap().to_string()
}

async fn owners(app: &TestApp, token: &str) -> Vec<String> {
    let owner_role = app.role_id(token, "owner").await;
    let (status, page) = app
        .get(&format!("/v1/users?role={owner_role}&limit=200"), Some(token))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    member_ids(&page)
}

/// R15: eight concurrent transfers by one owner to eight members make exactly one new owner.
/// The caller's right to transfer is re-read under the organization's lock, so the seven
/// requests decided after the first see that the caller is no longer an owner.
#[tokio::test]
async fn concurrent_ownership_transfers_make_exactly_one_new_owner() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let mut members = Vec::new();
        for i in 0..8 {
            members.push(plain_member(&app, &org.owner_token, &format!("m{i}@example.com")).await);
        }
        let calls = members.iter().map(|id| {
            app.post(
                "/v1/ownership/transfer",
                json!({ "user_id": id }),
                Some(&org.owner_token),
            )
        });
        let results = futures_util::future::join_all(calls).await;
        let won: Vec<&(StatusCode, Value)> = results.iter().filter(|(s, _)| *s == StatusCode::OK).collect();
        assert_eq!(won.len(), 1, "exactly one transfer succeeds: {results:?}");
        for (status, body) in results.iter().filter(|(s, _)| *s != StatusCode::OK) {
            assert_problem(*status, body, 403, "forbidden");
        }
        let new_owner = won[0].1["owner"]["user"]["id"].as_str().unwrap().to_string();
        // The caller, now an admin, still reads the member list.
        assert_eq!(
            owners(&app, &org.owner_token).await,
            vec![new_owner],
            "one owner, the new one"
        );
        let (_, me) = app.get("/v1/me", Some(&org.owner_token)).await;
        let roles: Vec<&str> = me["membership"]["roles"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["builtin"].as_str())
            .collect();
        assert_eq!(roles, vec!["admin"], "the caller is an admin now: {me}");
    })
    .await;
}

/// R4 + R15: an owner demoting themself while granting the owner role cannot let both go
/// through on stale rights.
#[tokio::test]
async fn a_demotion_racing_a_grant_is_decided_on_the_rights_at_commit() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        // A second owner, so the first may be demoted.
        let (_, second_token) = app
            .member(&org.owner_token, "second@example.com", &["owner"], &org.root)
            .await;
        let owner_role = app.role_id(&org.owner_token, "owner").await;
        let viewer_role = app.role_id(&org.owner_token, "viewer").await;
        let target = plain_member(&app, &org.owner_token, "target@example.com").await;
        let demote_path = format!("/v1/users/{}/roles", org.owner_id);
        let grant_path = format!("/v1/users/{target}/roles");
        for _ in 0..3 {
            let demote = app.put(
                &demote_path,
                json!({ "role_ids": [viewer_role] }),
                Some(&org.owner_token),
            );
            let grant = app.put(&grant_path, json!({ "role_ids": [owner_role] }), Some(&org.owner_token));
            let ((s1, b1), (s2, b2)) = futures_util::future::join(demote, grant).await;
            assert_eq!(s1, StatusCode::OK, "{b1}");
            // Either the grant ran first (and succeeded as an owner's), or after the demotion,
            // when the caller is a viewer and may not grant anything.
            let list = owners(&app, &second_token).await;
            if s2 == StatusCode::OK {
                assert!(list.contains(&target), "{b2}");
            } else {
                assert_problem(s2, &b2, 403, "forbidden");
                assert!(!list.contains(&target));
            }
            assert!(!list.contains(&org.owner_id));
            // Reset for the next round.
            for (who, role) in [(&org.owner_id, &owner_role), (&target, &viewer_role)] {
                let (status, body) = app
                    .put(
                        &format!("/v1/users/{who}/roles"),
                        json!({ "role_ids": [role] }),
                        Some(&second_token),
                    )
                    .await;
                assert_eq!(status, StatusCode::OK, "{body}");
            }
        }
    })
    .await;
}

/// A body that is a JSON array (or any non-object) is refused and changes nothing; before the
/// fix `["renamed", null, null]` renamed the account and cleared its address and phone.
#[tokio::test]
async fn bodies_must_be_json_objects() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let owner = &org.owner_token;
        let (status, body) = app
            .patch(
                &format!("/v1/accounts/{}", org.group),
                json!({ "address": "1 Quay", "phone": "+44 20 7946 0000" }),
                Some(owner),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (_, before) = app.get(&format!("/v1/accounts/{}", org.group), Some(owner)).await;
        let viewer = app.role_id(owner, "viewer").await;
        let member = plain_member(&app, owner, "m@example.com").await;
        let cases: Vec<(Method, String, Value)> = vec![
            (
                Method::PATCH,
                format!("/v1/accounts/{}", org.group),
                json!(["renamed", null, null]),
            ),
            (
                Method::POST,
                "/v1/auth/login".into(),
                json!(["owner@example.com", PASSWORD]),
            ),
            (Method::PUT, format!("/v1/users/{member}/roles"), json!([[viewer]])),
            (
                Method::PUT,
                format!("/v1/accounts/{}/billing", org.root),
                json!(["x@example.com", "pro", 100, "EUR", null]),
            ),
            (
                Method::POST,
                "/v1/users".into(),
                json!(["a@example.com", null, "A", "B", null, PASSWORD, [viewer]]),
            ),
            (Method::PATCH, format!("/v1/accounts/{}", org.group), json!("renamed")),
            (Method::PATCH, format!("/v1/accounts/{}", org.group), json!(null)),
            (Method::PATCH, format!("/v1/accounts/{}", org.group), json!(42)),
        ];
        for (method, path, body) in cases {
            let (status, problem) = app.call(method.clone(), &path, Some(body.clone()), Some(owner)).await;
            assert_problem(status, &problem, 422, "validation-failed");
            assert_eq!(
                problem["errors"][0]["field"], "body",
                "{method} {path} {body}: {problem}"
            );
            assert_eq!(problem["errors"][0]["code"], "type");
        }
        let (_, after) = app.get(&format!("/v1/accounts/{}", org.group), Some(owner)).await;
        assert_eq!(before, after, "nothing changed");
        let (status, _) = app.get(&format!("/v1/users/{member}"), Some(owner)).await;
        assert_eq!(status, StatusCode::OK);
    })
    .await;
}

/// A typo in a PATCH is not a silent success: every unknown field is named, nothing changes
/// (not even `updated_at`).
#[tokio::test]
async fn unknown_fields_are_named_and_change_nothing() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let owner = &org.owner_token;
        let (_, before) = app.get(&format!("/v1/accounts/{}", org.group), Some(owner)).await;
        app.clock.advance(chrono::Duration::seconds(5));
        let (status, problem) = app
            .patch(
                &format!("/v1/accounts/{}", org.group),
                json!({ "name": "Renamed", "nmae": "typo", "adress": "1 Quay" }),
                Some(owner),
            )
            .await;
        assert_problem(status, &problem, 422, "validation-failed");
        let mut named: Vec<(String, String)> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["field"].as_str().unwrap().into(), e["code"].as_str().unwrap().into()))
            .collect();
        named.sort();
        assert_eq!(
            named,
            vec![
                ("adress".into(), "unknown_field".into()),
                ("nmae".into(), "unknown_field".into())
            ]
        );
        let (_, after) = app.get(&format!("/v1/accounts/{}", org.group), Some(owner)).await;
        assert_eq!(before, after, "neither the name nor updated_at moved");

        // Nested objects too: a user's preferences.
        let (status, problem) = app
            .patch(
                &format!("/v1/users/{}", org.owner_id),
                json!({ "preferences": { "show_calender": true } }),
                Some(owner),
            )
            .await;
        assert_problem(status, &problem, 422, "validation-failed");
        assert_eq!(problem["errors"][0]["field"], "preferences.show_calender");
        assert_eq!(problem["errors"][0]["code"], "unknown_field");
    })
    .await;
}

/// U+0000 answered 500 on PostgreSQL in fourteen places; control characters are now refused
/// as 422 on both backends, and nothing is written.
#[tokio::test]
async fn control_characters_are_refused_everywhere_they_were_accepted() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let owner = &org.owner_token;
        let nul = "a\u{0}b";
        let viewer = app.role_id(owner, "viewer").await;
        let cases: Vec<(Method, String, Value, &str)> = vec![
            (Method::PATCH, format!("/v1/accounts/{}", org.group), json!({ "address": nul }), "address"),
            (Method::PATCH, format!("/v1/accounts/{}", org.group), json!({ "phone": nul }), "phone"),
            (Method::PATCH, format!("/v1/users/{}", org.owner_id), json!({ "phone": nul }), "phone"),
            (Method::PATCH, format!("/v1/users/{}", org.owner_id), json!({ "external_id": nul }), "external_id"),
            (
                Method::PATCH,
                format!("/v1/users/{}", org.owner_id),
                json!({ "preferences": { "default_landing_page": nul } }),
                "preferences.default_landing_page",
            ),
            (Method::POST, "/v1/roles".into(), json!({ "name": "R", "description": nul, "permissions": ["users.read"] }), "description"),
            (
                Method::PUT,
                format!("/v1/accounts/{}/billing", org.root),
                json!({ "plan": nul, "seat_price_cents": 100, "currency": "EUR" }),
                "plan",
            ),
            (
                Method::POST,
                format!("/v1/accounts/{}/children", org.root),
                json!({ "name": "G", "kind": "group", "address": nul }),
                "address",
            ),
            (Method::POST, "/v1/auth/login".into(), json!({ "identifier": nul, "password": PASSWORD }), "identifier"),
            (
                Method::POST,
                "/v1/users".into(),
                json!({ "email": "x@example.com", "first_name": "A\u{1b}", "last_name": "B", "password": PASSWORD, "role_ids": [viewer] }),
                "first_name",
            ),
        ];
        for (method, path, body, field) in cases {
            let (status, problem) = app.call(method.clone(), &path, Some(body), Some(owner)).await;
            assert_problem(status, &problem, 422, "validation-failed");
            assert_eq!(problem["errors"][0]["field"], field, "{method} {path}: {problem}");
            assert_eq!(problem["errors"][0]["code"], "control_character");
        }
        for query in ["q=a%00b", "external_id=a%00b"] {
            let (status, problem) = app.get(&format!("/v1/users?{query}"), Some(owner)).await;
            assert_problem(status, &problem, 422, "validation-failed");
            assert_eq!(problem["errors"][0]["code"], "control_character", "{query}: {problem}");
        }
        // Nothing was written: no new role, no new user, no new child, the group unchanged.
        let (_, roles) = app.get("/v1/roles", Some(owner)).await;
        assert!(roles.as_array().unwrap().iter().all(|r| r["name"] != "R"));
        let (_, found) = app.get("/v1/users?q=x%40example.com", Some(owner)).await;
        assert_eq!(found["items"].as_array().unwrap().len(), 0, "{found}");
        // Tabs and line breaks are ordinary text.
        let (status, body) = app
            .patch(
                &format!("/v1/accounts/{}", org.group),
                json!({ "address": "1 Quay\nHarbour\tSide" }),
                Some(owner),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["address"], "1 Quay\nHarbour\tSide");
    })
    .await;
}

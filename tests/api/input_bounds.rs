//! Every input has an upper bound: over it is a 422 problem naming the field, answered at
//! once, and nothing changes.

use reqwest::StatusCode;
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};

use crate::helpers::*;

fn field_codes(body: &Value) -> Vec<(String, String)> {
    body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    (
                        e["field"].as_str().unwrap_or("").to_string(),
                        e["code"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn assert_refused(status: StatusCode, body: &Value, field: &str, code: &str, what: &str) {
    assert_problem(status, body, 422, "validation-failed");
    assert!(
        field_codes(body).contains(&(field.to_string(), code.to_string())),
        "{what}: expected {field}/{code} in {body}"
    );
}

#[tokio::test]
async fn lists_strings_and_pages_over_their_bounds_are_refused() {
    on_each_backend(|app| async move {
        let org = app.org("ada@example.com").await;
        let t = Some(org.owner_token.as_str());
        let admin_role = app.role_id(&org.owner_token, "admin").await;
        let many_roles: Vec<String> = (0..51).map(|_| admin_role.clone()).collect();
        let many_contacts: Vec<String> = (0..1001).map(|i| format!("con_{:026}", i)).collect();

        // Bulk inputs.
        let (status, body) = app
            .post(
                "/v1/invites",
                json!({"email": "grace@example.com", "role_ids": many_roles}),
                t,
            )
            .await;
        assert_refused(status, &body, "role_ids", "items", "invite roles");
        let (status, body) = app
            .put(
                &format!("/v1/users/{}/roles", org.owner_id),
                json!({"role_ids": many_roles}),
                t,
            )
            .await;
        assert_refused(status, &body, "role_ids", "items", "member roles");
        let (status, body) = app
            .post(
                "/v1/users",
                json!({
                    "email": "sam@example.com", "first_name": "Sam", "last_name": "Doe",
                    "password": PASSWORD, "role_ids": many_roles,
                }),
                t,
            )
            .await;
        assert_refused(status, &body, "role_ids", "items", "new user roles");
        let permissions: Vec<&str> = (0..101).map(|_| "users.read").collect();
        let (status, body) = app
            .post("/v1/roles", json!({"name": "Many", "permissions": permissions}), t)
            .await;
        assert_refused(status, &body, "permissions", "items", "role permissions");
        let (status, body) = app
            .post(
                "/v1/contacts/reassign",
                json!({"from_user_id": org.owner_id, "to_user_id": org.owner_id, "contact_ids": many_contacts}),
                t,
            )
            .await;
        assert_refused(status, &body, "contact_ids", "items", "reassign");
        let events: Vec<String> = (0..65).map(|i| format!("user.event{i}")).collect();
        let (status, body) = app
            .post(
                "/v1/webhooks",
                json!({"url": "https://hooks.example.com/x", "events": events}),
                t,
            )
            .await;
        assert_problem(status, &body, 422, "validation-failed");

        // Text: any field of any body holds at most 10,000 characters, and its own limit
        // below that.
        let (status, body) = app
            .post(
                &format!("/v1/accounts/{}/contacts", org.root),
                json!({"name": "x".repeat(10_001)}),
                t,
            )
            .await;
        assert_refused(status, &body, "name", "length", "any string");
        let (status, body) = app
            .post(
                &format!("/v1/accounts/{}/contacts", org.root),
                json!({"name": "x".repeat(201)}),
                t,
            )
            .await;
        assert_problem(status, &body, 422, "validation-failed");

        // Pages and filters.
        for (path, field, code) in [
            ("/v1/users?limit=201".to_string(), "limit", "range"),
            ("/v1/contacts?limit=0".to_string(), "limit", "range"),
            (format!("/v1/users?cursor={}", "A".repeat(300)), "cursor", "cursor"),
            (format!("/v1/users?q={}", "a".repeat(101)), "q", "length"),
            (format!("/v1/contacts?q={}", "a".repeat(201)), "q", "length"),
            (
                format!("/v1/users?external_id={}", "e".repeat(1001)),
                "external_id",
                "length",
            ),
        ] {
            let (status, body) = app.get(&path, t).await;
            assert_refused(status, &body, field, code, &path);
        }

        let (status, roles) = app.get("/v1/roles", t).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            roles.as_array().unwrap().iter().all(|r| r["name"] != "Many"),
            "nothing was created"
        );
    })
    .await;
}

#[tokio::test]
async fn a_body_of_thousands_of_unknown_fields_is_answered_at_once() {
    on_each_backend(|app| async move {
        let mut body = Map::new();
        body.insert("identifier".into(), json!("ada@example.com"));
        body.insert("password".into(), json!(PASSWORD));
        // As many as fit the default 64 KiB body.
        for i in 0..3000 {
            body.insert(format!("extra{i:05}"), json!(i));
        }
        let started = Instant::now();
        let (status, problem) = app.post("/v1/auth/login", Value::Object(body), None).await;
        // Naming all 3,000 took a parse of the body per name: seconds even in a release
        // build. Now at most 20 are named; the bound is loose for a loaded debug build.
        let took = started.elapsed();
        assert!(took < Duration::from_secs(5), "took {took:?}");
        assert_problem(status, &problem, 422, "validation-failed");
        let reported = problem["errors"].as_array().unwrap().len();
        assert!((1..=21).contains(&reported), "{reported} errors reported");

        let items: Vec<u32> = (0..1001).collect();
        let (status, problem) = app
            .post(
                "/v1/auth/login",
                json!({"identifier": "ada@example.com", "password": PASSWORD, "extra": items}),
                None,
            )
            .await;
        assert_refused(status, &problem, "extra", "items", "a long list anywhere");
    })
    .await;
}

//! Members: the decisions that moved from the users handlers into `service::members` and the
//! policy, pinned on both backends — reading and editing oneself, every invalid field named
//! at once, malformed user ids in paths.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

fn fields(problem: &Value) -> Vec<(String, String)> {
    problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no field errors: {problem}"))
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().to_string(),
                e["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Anyone reads and edits their own profile without `users.read` or `users.manage`; nobody
/// sets their own external id (it is the integrator's) without `users.manage`.
#[tokio::test]
async fn members_read_and_edit_themselves_but_not_their_external_id() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (me, token) = app
            .member(&org.owner_token, "limited@example.com", &["limited"], &org.root)
            .await;
        let (status, body) = app.user(&token, &me).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, problem) = app.user(&token, &org.owner_id).await;
        assert_problem(status, &problem, 403, "forbidden");

        let (status, body) = app
            .update_user(
                &token,
                &me,
                json!({ "first_name": "  Lim ", "phone": "   ", "preferences": { "show_calendar": false } }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["user"]["first_name"], "Lim");
        assert_eq!(body["user"]["phone"], Value::Null, "a phone of spaces clears it");
        assert_eq!(body["user"]["preferences"]["show_calendar"], false);

        let (status, problem) = app.update_user(&token, &me, json!({ "external_id": "crm-1" })).await;
        assert_problem(status, &problem, 403, "forbidden");
        let (status, problem) = app
            .update_user(&token, &org.owner_id, json!({ "first_name": "Mallory" }))
            .await;
        assert_problem(status, &problem, 403, "forbidden");
        let (_, owner) = app.user(&org.owner_token, &org.owner_id).await;
        assert_ne!(owner["user"]["first_name"], "Mallory");
        let (status, body) = app
            .update_user(&org.owner_token, &me, json!({ "external_id": "crm-1" }))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["membership"]["external_id"], "crm-1");
    })
    .await;
}

/// A body with several invalid fields hears about all of them in one problem, in field
/// order, nested ones by their path; nothing is created or changed.
#[tokio::test]
async fn every_invalid_field_of_a_member_body_is_named_at_once() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let viewer = app.role_id(&org.owner_token, "viewer").await;
        let (status, problem) = app
            .post(
                "/v1/users",
                json!({
                    "email": "not-an-email", "username": "a@b", "first_name": " ", "last_name": "B",
                    "phone": "9".repeat(41), "password": "short", "role_ids": [viewer],
                    "external_id": "", "preferences": { "default_landing_page": "p".repeat(101) },
                }),
                Some(&org.owner_token),
            )
            .await;
        assert_problem(status, &problem, 422, "validation-failed");
        let got = fields(&problem);
        let names: Vec<&str> = got.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "email",
                "external_id",
                "first_name",
                "password",
                "phone",
                "preferences.default_landing_page",
                "username"
            ]
        );
        assert!(got.contains(&("phone".into(), "must be at most 40 characters long".into())));
        assert!(got.contains(&("external_id".into(), "must be 1 to 200 characters long".into())));
        assert!(got.contains(&(
            "preferences.default_landing_page".into(),
            "must be at most 100 characters long".into()
        )));
        assert_eq!(problem["detail"], "7 fields are invalid");

        let (member, _) = app
            .member(&org.owner_token, "m@example.com", &["viewer"], &org.root)
            .await;
        let (_, before) = app.user(&org.owner_token, &member).await;
        let (status, problem) = app
            .update_user(&org.owner_token, &member, json!({ "last_name": "", "external_id": "", "preferences": { "default_contact_tab": "t".repeat(101) } }))
            .await;
        assert_problem(status, &problem, 422, "validation-failed");
        let names: Vec<String> = fields(&problem).into_iter().map(|(f, _)| f).collect();
        assert_eq!(names, vec!["external_id", "last_name", "preferences.default_contact_tab"]);
        let (status, problem) = app
            .move_user(&org.owner_token, &member, "")
            .await;
        assert_problem(status, &problem, 422, "validation-failed");
        assert_eq!(problem["detail"], "account_id: must be 1 to 64 characters long");
        let (_, after) = app.user(&org.owner_token, &member).await;
        assert_eq!(before, after, "nothing changed");
    })
    .await;
}

/// A user id that cannot be one answers 404 on every member route, like an unknown one (R1).
#[tokio::test]
async fn a_malformed_user_id_in_a_path_is_not_found() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let viewer = app.role_id(&org.owner_token, "viewer").await;
        for id in ["usr_x", "acc_01jd3k6x0n6qg8z7v2f4t9b1c5", "nope"] {
            let (status, problem) = app.user(&org.owner_token, id).await;
            assert_problem(status, &problem, 404, "not-found");
            let (status, problem) = app
                .update_user(&org.owner_token, id, json!({ "first_name": "X" }))
                .await;
            assert_problem(status, &problem, 404, "not-found");
            let (status, problem) = app.set_roles(&org.owner_token, id, &[&viewer]).await;
            assert_problem(status, &problem, 404, "not-found");
            let (status, problem) = app.move_user(&org.owner_token, id, &org.group).await;
            assert_problem(status, &problem, 404, "not-found");
        }
        let (status, problem) = app.transfer_ownership(&org.owner_token, "usr_x").await;
        assert_problem(status, &problem, 404, "not-found");
    })
    .await;
}

/// The member list reads its page through `memberships_root_user_idx` (organization, user id)
/// and never sorts the organization: not on the first page, not after a cursor, not with a
/// search (SQLite's trigram index finds the users; the index serves the order).
#[tokio::test]
async fn the_member_list_is_served_by_its_index() {
    use steward::db::repo::memberships::{page_plan, MemberFilter};
    use steward::domain::UserStatus;
    use steward::ids::AccountId;
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let pages = [
            (None, None),
            (None, Some(org.owner_id.clone())),
            (Some("harbour".to_string()), None),
            (Some("ab".to_string()), Some(org.owner_id.clone())),
        ];
        for (text, after) in pages {
            let root = AccountId::from(org.root.clone());
            let filter = MemberFilter {
                within_paths: vec![format!("/{}/", org.root)],
                user_status: Some(UserStatus::Active),
                text,
                after,
                limit: 51,
                ..MemberFilter::default()
            };
            let plan = app
                .state
                .db
                .read(move |conn| page_plan(conn, &root, &filter).map_err(steward::db::DbError::from))
                .await
                .expect("plan");
            if app.backend == Backend::Postgres {
                assert!(plan.is_empty());
                continue;
            }
            let plan = plan.join("\n");
            assert!(plan.contains("memberships_root_user_idx"), "{plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{plan}");
            assert!(!plan.contains("SCAN memberships"), "{plan}");
        }
    })
    .await;
}

/// `q` keeps its meaning on both backends whichever way it is served: a case-insensitive
/// substring of first or last name, email or username; quotes and LIKE wildcards are plain
/// text; two characters still match.
#[tokio::test]
async fn searching_members_finds_substrings_of_names_and_emails() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (zoe, _) = app
            .member(&org.owner_token, "zoe.quartermain@example.com", &["viewer"], &org.root)
            .await;
        let found = |q: &str| {
            let url = format!("/v1/users?q={}", urlencode(q));
            let app = &app;
            let token = org.owner_token.clone();
            async move {
                let (status, page) = app.get(&url, Some(&token)).await;
                assert_eq!(status, StatusCode::OK, "{page}");
                member_ids(&page)
            }
        };
        assert_eq!(found("QUARTER").await, vec![zoe.clone()]);
        assert_eq!(found("rtermain@exa").await, vec![zoe.clone()]);
        assert_eq!(found("zo").await, vec![zoe.clone()]);
        assert!(found("quarter%").await.is_empty());
        assert!(found("\"quarter\"").await.is_empty());
        assert!(found("main quarter").await.is_empty());
    })
    .await;
}

fn urlencode(raw: &str) -> String {
    serde_urlencoded::to_string([("q", raw)]).unwrap()[2..].to_string()
}

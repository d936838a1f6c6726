//! The audit log's read side (R13): an organization's events, newest first, with the real
//! actor and the effective user; filters, pages, the JSON Lines export, failed logins, who
//! may read it, and the database refusing to change or delete an event.

use diesel::connection::SimpleConnection;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

fn items(page: &Value) -> Vec<Value> {
    page["items"].as_array().expect("a page of events").clone()
}

fn ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_string())
        .collect()
}

/// Every event of the organization that passes `query`, in one page.
async fn all(app: &TestApp, token: &str, account: &str, query: &str) -> Vec<Value> {
    let (status, page) = app.audit_events(token, account, &format!("limit=200&{query}")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page["next_cursor"].is_null(), "more than one page: {page}");
    items(&page)
}

fn actions(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["action"].as_str().expect("action")).collect()
}

/// An organization whose member `helper` took over the standard member `away` as caretaker
/// and, acting as them, changed their phone number: the owner, away and helper ids.
async fn delegated_change(app: &TestApp) -> (Org, String, String) {
    let org = app.org("owner@example.com").await;
    let (away, _) = app
        .member(&org.owner_token, "away@example.com", &["standard"], &org.root)
        .await;
    let (helper, helper_token) = app
        .member(&org.owner_token, "helper@example.com", &["standard"], &org.root)
        .await;
    let (status, body) = app.assign_caretaker(&org.owner_token, &away, &helper).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, acting) = app
        .post("/v1/me/acting-as", json!({ "user_id": away }), Some(&helper_token))
        .await;
    assert_eq!(status, StatusCode::OK, "{acting}");
    let (status, body) = app
        .update_user(&token(&acting), &away, json!({ "phone": "+1 555 0199" }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (org, away, helper)
}

#[tokio::test]
async fn the_log_lists_events_newest_first_with_the_real_actor_and_the_effective_user() {
    on_each_backend(|app| async move {
        let (org, away, helper) = delegated_change(&app).await;
        let events = all(&app, &org.owner_token, &org.root, "").await;
        let listed = ids(&events);
        let mut newest_first = listed.clone();
        newest_first.sort_by(|a, b| b.cmp(a));
        assert_eq!(listed, newest_first, "newest (highest id) first");
        assert!(events.iter().all(|e| e["account_id"] == org.root.as_str()));

        // The change made while acting as `away`: done by helper, as away.
        let change = events
            .iter()
            .find(|e| e["action"] == "user.updated" && e["target_id"] == away.as_str())
            .expect("the delegated change is in the log");
        assert_eq!(change["actor_user_id"], helper.as_str());
        assert_eq!(change["effective_user_id"], away.as_str());
        assert_eq!(change["target_type"], "user");
        assert!(change["request_id"].is_string() && change["details"].is_object());
        // The delegation itself, and the caretaker's assignment, are there too.
        let names = actions(&events);
        for action in ["delegation.started", "caretaker.assigned", "auth.login", "user.created"] {
            assert!(names.contains(&action), "{action} missing from {names:?}");
        }
        // The owner's own change names the owner twice.
        let assigned = events.iter().find(|e| e["action"] == "caretaker.assigned").unwrap();
        assert_eq!(assigned["actor_user_id"], org.owner_id.as_str());
        assert_eq!(assigned["effective_user_id"], org.owner_id.as_str());
    })
    .await;
}

#[tokio::test]
async fn each_filter_narrows_the_list() {
    on_each_backend(|app| async move {
        let (org, away, helper) = delegated_change(&app).await;
        let everything = all(&app, &org.owner_token, &org.root, "").await;

        let by_helper = all(&app, &org.owner_token, &org.root, &format!("actor={helper}")).await;
        assert!(!by_helper.is_empty() && by_helper.len() < everything.len());
        assert!(by_helper.iter().all(|e| e["actor_user_id"] == helper.as_str()));
        assert!(actions(&by_helper).contains(&"user.updated"));

        let as_away = all(&app, &org.owner_token, &org.root, &format!("effective_user={away}")).await;
        assert!(as_away.iter().all(|e| e["effective_user_id"] == away.as_str()));
        assert!(as_away.iter().any(|e| e["actor_user_id"] == helper.as_str()));
        assert!(as_away.len() < everything.len());

        let logins = all(&app, &org.owner_token, &org.root, "action=auth.login").await;
        assert!(!logins.is_empty() && logins.iter().all(|e| e["action"] == "auth.login"));

        let about_away = all(&app, &org.owner_token, &org.root, &format!("target={away}")).await;
        assert!(!about_away.is_empty() && about_away.iter().all(|e| e["target_id"] == away.as_str()));

        // A time range: one change now, one two minutes later.
        let (status, body) = app
            .update_account(&org.owner_token, &org.root, json!({ "phone": "+1 555 0100" }))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        app.clock.advance(chrono::Duration::minutes(2));
        let (status, body) = app
            .update_account(&org.owner_token, &org.root, json!({ "phone": "+1 555 0101" }))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let updates = all(&app, &org.owner_token, &org.root, "action=account.updated").await;
        assert_eq!(updates.len(), 2, "{updates:?}");
        let (later, earlier) = (&updates[0], &updates[1]);
        let at = later["occurred_at"].as_str().unwrap();
        let since = all(
            &app,
            &org.owner_token,
            &org.root,
            &format!("action=account.updated&since={at}"),
        )
        .await;
        assert_eq!(ids(&since), vec![later["id"].as_str().unwrap()]);
        let until = all(
            &app,
            &org.owner_token,
            &org.root,
            &format!("action=account.updated&until={at}"),
        )
        .await;
        assert_eq!(ids(&until), vec![earlier["id"].as_str().unwrap()]);
        let empty = all(&app, &org.owner_token, &org.root, &format!("since={at}&until={at}")).await;
        assert!(empty.is_empty(), "[since, until) is empty when they are equal");
    })
    .await;
}

#[tokio::test]
async fn pages_follow_each_other_without_duplicates_or_gaps() {
    on_each_backend(|app| async move {
        let (org, _, _) = delegated_change(&app).await;
        let everything = ids(&all(&app, &org.owner_token, &org.root, "").await);
        assert!(everything.len() > 6, "enough events for several pages");
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let query = match &cursor {
                Some(c) => format!("limit=3&cursor={c}"),
                None => "limit=3".to_string(),
            };
            let (status, page) = app.audit_events(&org.owner_token, &org.root, &query).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            let got = ids(&items(&page));
            assert!(got.len() <= 3);
            seen.extend(got);
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => break,
            }
        }
        assert_eq!(seen, everything);
        // A cursor from another list is refused.
        let (status, body) = app.audit_events(&org.owner_token, &org.root, "cursor=dXNyX3g").await;
        assert_problem(status, &body, 422, "validation-failed");
    })
    .await;
}

#[tokio::test]
async fn a_failed_login_is_audited_and_answered_as_before() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (member, _) = app
            .member(&org.owner_token, "jane@example.com", &["standard"], &org.root)
            .await;

        let (status, wrong) = app.log_in("jane@example.com", "not her password").await;
        assert_problem(status, &wrong, 401, "invalid-credentials");
        let (status, unknown) = app.log_in("nobody@example.com", "not her password").await;
        assert_problem(status, &unknown, 401, "invalid-credentials");
        // The same answer whether the account exists or not (only the request id differs).
        for field in ["type", "title", "status", "detail"] {
            assert_eq!(wrong[field], unknown[field], "{field}");
        }
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&wrong), keys(&unknown));

        let failed = all(&app, &org.owner_token, &org.root, "action=auth.login_failed").await;
        assert_eq!(failed.len(), 1, "{failed:?}");
        let event = &failed[0];
        assert_eq!(event["target_type"], "user");
        assert_eq!(event["target_id"], member.as_str());
        assert!(event["actor_user_id"].is_null() && event["effective_user_id"].is_null());
        assert_eq!(event["details"], json!({ "reason": "wrong_password" }));
        assert!(event["request_id"].is_string());
        // Nothing anywhere names the unknown address.
        let everything = all(&app, &org.owner_token, &org.root, "").await;
        assert!(!Value::from(everything).to_string().contains("nobody@example.com"));
    })
    .await;
}

#[tokio::test]
async fn bad_filters_are_refused_by_name() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        for (query, field) in [
            ("action=user.flew", Some("action")),
            ("since=2026-11-25T10:00:00Z&until=2026-11-25T09:00:00Z", Some("until")),
            ("since=yesterday", Some("since")),
            ("actor=acc_01jd3k6x0n6qg8z7v2f4t9b1c5", Some("actor")),
            ("limit=0", Some("limit")),
            ("colour=blue", None),
        ] {
            let (status, body) = app.audit_events(&org.owner_token, &org.root, query).await;
            assert_problem(status, &body, 422, "validation-failed");
            if let Some(field) = field {
                assert_eq!(body["errors"][0]["field"], field, "{query}: {body}");
            }
            let (status, _, text) = app.export_audit_events(&org.owner_token, &org.root, query).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {text}");
        }
        // Paging belongs to the list, not the export.
        let (status, _, text) = app.export_audit_events(&org.owner_token, &org.root, "limit=5").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    })
    .await;
}

#[tokio::test]
async fn only_readers_of_the_organization_see_its_log() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let other = app.org("other@example.com").await;
        let (_, standard) = app
            .member(&org.owner_token, "standard@example.com", &["standard"], &org.root)
            .await;
        let (_, admin) = app
            .member(&org.owner_token, "admin@example.com", &["admin"], &org.root)
            .await;

        let (status, body) = app.audit_events(&admin, &org.root, "").await;
        assert_eq!(status, StatusCode::OK, "admins hold audit.read: {body}");
        // A sub-account has no log of its own: 404, like its billing profile.
        let (status, body) = app.audit_events(&org.owner_token, &org.group, "").await;
        assert_problem(status, &body, 404, "not-found");
        // Another organization's log, or an account that does not exist: 404 (R1).
        let (status, body) = app.audit_events(&org.owner_token, &other.root, "").await;
        assert_problem(status, &body, 404, "not-found");
        let (status, body) = app
            .audit_events(&org.owner_token, "acc_01jd3k6x0n6qg8z7v2f4t9b1c5", "")
            .await;
        assert_problem(status, &body, 404, "not-found");
        // A member without audit.read: 403.
        let (status, body) = app.audit_events(&standard, &org.root, "").await;
        assert_problem(status, &body, 403, "forbidden");
        // The export answers alike.
        for (token, account, want) in [
            (&org.owner_token, &org.group, 404),
            (&org.owner_token, &other.root, 404),
            (&standard, &org.root, 403),
        ] {
            let (status, media_type, text) = app.export_audit_events(token, account, "").await;
            assert_eq!(status.as_u16(), want, "{text}");
            assert_eq!(media_type, "application/problem+json");
        }
    })
    .await;
}

#[tokio::test]
async fn the_export_streams_the_filtered_events_as_json_lines() {
    on_each_backend(|app| async move {
        let (org, away, _) = delegated_change(&app).await;
        for query in ["", &format!("effective_user={away}"), "action=auth.login"] {
            let listed = all(&app, &org.owner_token, &org.root, query).await;
            let (status, media_type, text) = app.export_audit_events(&org.owner_token, &org.root, query).await;
            assert_eq!(status, StatusCode::OK, "{text}");
            assert_eq!(media_type, "application/jsonl");
            let lines: Vec<Value> = text
                .lines()
                .map(|line| serde_json::from_str(line).expect("each line is JSON"))
                .collect();
            assert_eq!(lines, listed, "the export of {query:?} is the list, newest first");
        }
        // Nothing matches: an empty body.
        let (status, _, text) = app
            .export_audit_events(&org.owner_token, &org.root, "target=usr_01jd3k6x0n6qg8z7v2f4t9b1c5")
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(text, "");
    })
    .await;
}

#[tokio::test]
async fn the_export_reads_past_one_batch() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        // More events than one batch of the export (500), written straight to the store.
        let db = app.state.db.clone();
        let root = org.root.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = db.get().expect("connection");
            let ctx = steward::db::repo::audit::AuditContext {
                account: Some(root),
                ..Default::default()
            };
            let now = chrono::Utc::now().naive_utc();
            for n in 0..1100 {
                let entry = steward::db::repo::audit::AuditEntry {
                    action: steward::domain::AuditAction::AccountUpdated,
                    target_type: "account",
                    target_id: "bulk",
                    details: json!({ "n": n }),
                };
                steward::db::repo::audit::record(&mut conn, &ctx, entry, now).expect("insert");
            }
        })
        .await
        .expect("join");
        let (status, _, text) = app
            .export_audit_events(&org.owner_token, &org.root, "target=bulk")
            .await;
        assert_eq!(status, StatusCode::OK);
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("JSON")).collect();
        assert_eq!(lines.len(), 1100);
        let mut unique = ids(&lines);
        unique.dedup();
        assert_eq!(unique.len(), 1100, "no duplicates across batches");
    })
    .await;
}

#[tokio::test]
async fn the_database_refuses_to_change_or_delete_an_audit_event() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let before = all(&app, &org.owner_token, &org.root, "").await;
        let db = app.state.db.clone();
        let refused = tokio::task::spawn_blocking(move || {
            let mut conn = db.get().expect("connection");
            ["UPDATE audit_events SET action = 'forged'", "DELETE FROM audit_events"]
                .map(|sql| conn.batch_execute(sql).is_err())
        })
        .await
        .expect("join");
        assert_eq!(refused, [true, true], "UPDATE and DELETE must fail");
        assert_eq!(all(&app, &org.owner_token, &org.root, "").await, before);
    })
    .await;
}

//! Notifications for people: the account's services post them, caretakers receive those of
//! the users they manage (R7), owners read the outbox and retry dead messages.

use reqwest::StatusCode;
use serde_json::{json, Value};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::delivery::{Receiver, SECRET};
use crate::helpers::*;

async fn post_for(app: &TestApp, token: &str, user: &str, subject: &str) -> (StatusCode, Value) {
    app.post(
        &format!("/v1/users/{user}/notifications"),
        json!({ "subject": subject, "body": "From +1 555 0100: are you there?", "data": { "thread": "t-1" } }),
        Some(token),
    )
    .await
}

#[tokio::test]
async fn a_message_for_a_managed_user_goes_to_their_caretaker_marked_as_theirs() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (jane, _) = app
            .member(&org.owner_token, "jane@example.com", &["standard"], &org.root)
            .await;
        let (helper, _) = app
            .member(&org.owner_token, "helper@example.com", &["standard"], &org.root)
            .await;

        // Unmanaged: the message goes to the user.
        let (status, sent) = post_for(&app, &org.owner_token, &jane, "Text message received").await;
        assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
        assert_eq!(sent["recipient_email"], "jane@example.com");
        assert!(sent["on_behalf_of_user_id"].is_null());
        assert_eq!(sent["status"], "pending");

        // Managed: it goes to the caretaker, marked as being for Jane.
        let (status, body) = app
            .post(
                &format!("/v1/users/{jane}/caretaker"),
                json!({ "caretaker_id": helper }),
                Some(&org.owner_token),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, sent) = post_for(&app, &org.owner_token, &jane, "Text message received").await;
        assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
        assert_eq!(sent["recipient_email"], "helper@example.com");
        assert_eq!(sent["recipient_user_id"], helper.as_str());
        assert_eq!(sent["on_behalf_of_user_id"], jane.as_str());
        assert_eq!(sent["subject"], "For Member jane: Text message received");
        let row = app
            .notifications_to("helper@example.com")
            .await
            .into_iter()
            .find(|n| n.kind == "message")
            .expect("the caretaker's copy");
        assert_eq!(row.on_behalf_of_user_id.as_deref(), Some(jane.as_str()));
        assert!(row.payload.contains("t-1"), "{}", row.payload);
        assert!(app
            .audit_actions(&jane)
            .await
            .iter()
            .any(|a| a == "notification.posted"));
    })
    .await;
}

#[tokio::test]
async fn posting_needs_its_permission_and_a_well_formed_message() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (jane, jane_token) = app
            .member(&org.owner_token, "jane@example.com", &["standard"], &org.root)
            .await;
        let (status, body) = post_for(&app, &jane_token, &jane, "Hi").await;
        assert_problem(status, &body, 403, "forbidden");
        let (status, body) = app
            .post(
                &format!("/v1/users/{jane}/notifications"),
                json!({ "subject": " ", "body": "" }),
                Some(&org.owner_token),
            )
            .await;
        assert_problem(status, &body, 422, "validation-failed");
        assert_eq!(body["errors"].as_array().unwrap().len(), 2, "{body}");
        let other = app.org("other@example.com").await;
        let (status, body) = post_for(&app, &other.owner_token, &jane, "Hi").await;
        assert_problem(status, &body, 404, "not-found");
        assert!(app
            .notifications_to("jane@example.com")
            .await
            .iter()
            .all(|n| n.kind != "message"));
    })
    .await;
}

async fn wait_in_outbox(app: &TestApp, token: &str, id: &str, status: &str) -> Value {
    for _ in 0..200 {
        let (code, page) = app
            .get(&format!("/v1/notifications?status={status}"), Some(token))
            .await;
        assert_eq!(code, StatusCode::OK, "{page}");
        if let Some(found) = page["items"].as_array().unwrap().iter().find(|n| n["id"] == id) {
            return found.clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{id} never became {status}");
}

/// Owners read the outbox (no bodies: they may carry one-time links) and retry a dead one.
#[tokio::test]
async fn owners_read_the_outbox_and_retry_a_dead_message() {
    for backend in backends() {
        // The endpoint refuses the first delivery of the message titled "First" and takes
        // everything else; one attempt is all a message gets.
        let refused = Arc::new(AtomicBool::new(false));
        let receiver = Receiver::failing_when(move |_, body| {
            String::from_utf8_lossy(body).contains("\"subject\":\"First\"") && !refused.swap(true, Ordering::SeqCst)
        })
        .await;
        let settings = [
            ("STEWARD_NOTIFY_URL", receiver.url.as_str()),
            ("STEWARD_NOTIFY_SECRET", SECRET),
            ("STEWARD_OUTBOX_MAX_ATTEMPTS", "1"),
        ];
        let app = TestApp::spawn(backend, &settings).await;
        let org = app.org("owner@example.com").await;
        let (jane, jane_token) = app
            .member(&org.owner_token, "jane@example.com", &["standard"], &org.root)
            .await;
        let (_, first) = post_for(&app, &org.owner_token, &jane, "First").await;
        let first = first["id"].as_str().unwrap().to_string();
        let dead = wait_in_outbox(&app, &org.owner_token, &first, "dead").await;
        assert_eq!(dead["attempts"], 1, "{dead}");
        assert!(dead["last_error"].as_str().unwrap().contains("500"), "{dead}");
        assert!(dead.get("body").is_none(), "bodies are not listed");
        let (_, second) = post_for(&app, &org.owner_token, &jane, "Second").await;
        let second = second["id"].as_str().unwrap().to_string();
        wait_in_outbox(&app, &org.owner_token, &second, "delivered").await;

        let (status, body) = app.get("/v1/notifications", Some(&jane_token)).await;
        assert_problem(status, &body, 403, "forbidden");
        let (status, body) = app
            .post(
                &format!("/v1/notifications/{first}/retry"),
                json!({}),
                Some(&jane_token),
            )
            .await;
        assert_problem(status, &body, 403, "forbidden");

        let (status, retried) = app
            .post(
                &format!("/v1/notifications/{first}/retry"),
                json!({}),
                Some(&org.owner_token),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{retried}");
        assert_eq!(retried["status"], "pending");
        assert_eq!(retried["attempts"], 0);
        assert!(app
            .audit_actions(&first)
            .await
            .iter()
            .any(|a| a == "notification.retried"));
        wait_in_outbox(&app, &org.owner_token, &first, "delivered").await;
        // Only a dead message is retried; another organization's is not found.
        let (status, body) = app
            .post(
                &format!("/v1/notifications/{second}/retry"),
                json!({}),
                Some(&org.owner_token),
            )
            .await;
        assert_problem(status, &body, 409, "notification-not-dead");
        let other = app.org("other@example.com").await;
        let (status, body) = app
            .post(
                &format!("/v1/notifications/{first}/retry"),
                json!({}),
                Some(&other.owner_token),
            )
            .await;
        assert_problem(status, &body, 404, "not-found");
    }
}

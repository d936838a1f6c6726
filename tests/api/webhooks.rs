//! Event webhooks: registered endpoints get the organization's events, signed with their own
//! secret, through failures (retries with backoff), with a delivery log that can be replayed;
//! endpoints that lead to private addresses are refused.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::delivery::Receiver;
use crate::helpers::*;

const LOOPBACK_ALLOWED: &[(&str, &str)] = &[("STEWARD_WEBHOOK_ALLOW_PRIVATE", "true")];

async fn deliveries(app: &TestApp, token: &str, hook: &str) -> Vec<Value> {
    let (status, page) = app.get(&format!("/v1/webhooks/{hook}/deliveries"), Some(token)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn events_reach_an_endpoint_signed_through_a_failure_and_can_be_replayed() {
    on_each_backend_with(LOOPBACK_ALLOWED, |app| async move {
        let receiver = Receiver::start(1).await;
        let org = app.org("owner@example.com").await;
        let (status, made) = app
            .post(
                "/v1/webhooks",
                json!({ "url": receiver.url, "events": ["user.created", "membership.deactivated"] }),
                Some(&org.owner_token),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{made}");
        let hook = made["endpoint"]["id"].as_str().unwrap().to_string();
        let secret = made["secret"].as_str().unwrap().to_string();
        assert!(secret.starts_with("whsec_"));
        let (_, listed) = app.get(&format!("/v1/webhooks/{hook}"), Some(&org.owner_token)).await;
        assert!(listed.get("secret").is_none(), "the secret is shown once: {listed}");

        // A role created is not asked for; a user created is.
        let (status, _) = app.create_role(&org.owner_token, "Support", &["users.read"]).await;
        assert_eq!(status, StatusCode::CREATED);
        let (sam, _) = app
            .member(&org.owner_token, "sam@example.com", &["standard"], &org.root)
            .await;

        // The first attempt fails (500); after the backoff the second goes through.
        receiver.wait_for(1, 10).await;
        app.clock.advance(chrono::Duration::seconds(30));
        let got = receiver.wait_for(2, 10).await;
        assert_eq!(got[0].id, got[1].id, "one event, one webhook-id");
        assert!(got[1].signed_with(&secret), "signed with the endpoint's own secret");
        let event = got[1].json();
        assert_eq!(event["type"], "user.created");
        assert_eq!(event["data"]["target_id"], sam.as_str());
        assert_eq!(event["data"]["account_id"], org.root.as_str());
        assert_eq!(event["data"]["actor_user_id"], org.owner_id.as_str());

        // The log shows both attempts and the answer.
        let mut log = deliveries(&app, &org.owner_token, &hook).await;
        for _ in 0..40 {
            if log[0]["status"] == "delivered" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            log = deliveries(&app, &org.owner_token, &hook).await;
        }
        assert_eq!(log.len(), 1, "only the event asked for: {log:?}");
        assert_eq!(log[0]["status"], "delivered");
        assert_eq!(log[0]["attempts"], 2);
        assert_eq!(log[0]["last_response_code"], 204);
        assert_eq!(log[0]["event"], "user.created");

        // Replay: the same event again, with the same webhook-id.
        let id = log[0]["id"].as_str().unwrap();
        let (status, replayed) = app
            .post(
                &format!("/v1/webhooks/{hook}/deliveries/{id}/replay"),
                json!({}),
                Some(&org.owner_token),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{replayed}");
        assert_eq!(replayed["status"], "pending");
        let got = receiver.wait_for(3, 10).await;
        assert_eq!(got[2].id, got[0].id);

        // Disabled, it hears nothing new; deleted, it is gone.
        let (status, _) = app
            .patch(
                &format!("/v1/webhooks/{hook}"),
                json!({ "enabled": false }),
                Some(&org.owner_token),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = app
            .post(
                &format!("/v1/users/{sam}/deactivate"),
                json!({}),
                Some(&org.owner_token),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(deliveries(&app, &org.owner_token, &hook).await.len(), 1);
        let (status, _) = app
            .delete(&format!("/v1/webhooks/{hook}"), Some(&org.owner_token))
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = app.get(&format!("/v1/webhooks/{hook}"), Some(&org.owner_token)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    })
    .await;
}

#[tokio::test]
async fn endpoints_must_be_public_known_and_the_callers_to_manage() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let owner = &org.owner_token;
        for url in [
            "http://127.0.0.1:9/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/hook",
            "http://10.0.0.7/hook",
            "ftp://example.com/hook",
            "https://user:pw@example.com/hook",
        ] {
            let (status, body) = app
                .post("/v1/webhooks", json!({ "url": url, "events": ["*"] }), Some(owner))
                .await;
            assert_problem(status, &body, 422, "validation-failed");
            assert_eq!(body["errors"][0]["field"], "url", "{url}: {body}");
        }
        let (status, body) = app
            .post(
                "/v1/webhooks",
                json!({ "url": "https://93.184.216.34/hook", "events": ["user.exploded"] }),
                Some(owner),
            )
            .await;
        assert_problem(status, &body, 422, "validation-failed");
        assert_eq!(body["errors"][0]["field"], "events");
        let (status, list) = app.get("/v1/webhooks", Some(owner)).await;
        assert_eq!(
            (status, list["items"].clone()),
            (StatusCode::OK, json!([])),
            "nothing was registered"
        );

        let (_, standard) = app.member(owner, "sam@example.com", &["standard"], &org.root).await;
        let (status, body) = app.get("/v1/webhooks", Some(&standard)).await;
        assert_problem(status, &body, 403, "forbidden");
        let stranger = app.org("stranger@example.com").await;
        let (status, body) = app
            .get(
                "/v1/webhooks/whk_00000000000000000000000000",
                Some(&stranger.owner_token),
            )
            .await;
        assert_problem(status, &body, 404, "not-found");
    })
    .await;
}

#[tokio::test]
async fn an_invitation_that_runs_out_is_announced_once_per_expiry() {
    on_each_backend_with(LOOPBACK_ALLOWED, |app| async move {
        let org = app.org("owner@example.com").await;
        let (status, made) = app
            .post(
                "/v1/webhooks",
                json!({ "url": "http://127.0.0.1:9/hook", "events": ["invite.expired"] }),
                Some(&org.owner_token),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{made}");
        let hook = made["endpoint"]["id"].as_str().unwrap().to_string();
        let viewer = app.role_id(&org.owner_token, "viewer").await;
        let (status, invite) = app
            .create_invite(&org.owner_token, "late@example.com", &[viewer], true)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{invite}");
        let id = invite["id"].as_str().unwrap().to_string();
        let sweep = || steward::housekeeping::announce_expired_invites(&app.state.db, &app.state.clock);
        // An API key outlives the month the clock jumps; a person's token would not.
        let (_, key) = app.api_key(&org.owner_token, "Reader", &["admin"]).await;

        assert_eq!(sweep().await.unwrap(), 0, "nothing has expired yet");
        app.clock.advance(chrono::Duration::days(31));
        assert_eq!(sweep().await.unwrap(), 1);
        assert_eq!(sweep().await.unwrap(), 0, "announced once");
        let events = deliveries(&app, &key, &hook).await;
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0]["event"], "invite.expired");
        assert_eq!(events[0]["payload"]["data"]["target_id"], id.as_str());

        // Resent, it lives again; when it runs out again, that is a new announcement.
        let (status, resent) = app.resend_invite(&key, &id).await;
        assert_eq!(status, StatusCode::OK, "{resent}");
        assert_eq!(sweep().await.unwrap(), 0);
        app.clock.advance(chrono::Duration::days(31));
        assert_eq!(sweep().await.unwrap(), 1);
        assert_eq!(deliveries(&app, &key, &hook).await.len(), 2);
        let actions = app.audit_actions(&id).await;
        assert_eq!(
            actions.iter().filter(|a| *a == "invite.expired").count(),
            2,
            "{actions:?}"
        );
    })
    .await;
}

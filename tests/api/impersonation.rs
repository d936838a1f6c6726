//! Impersonation (R8, R9): "log in as" that cannot escalate, is read-only unless full mode is
//! allowed, ends at once, and leaves a record of every request made under it.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

fn id(body: &Value) -> String {
    body["impersonation"]["id"]
        .as_str()
        .expect("impersonation id")
        .to_string()
}

struct Team {
    org: Org,
    admin: (String, String),
    standard: (String, String),
}

async fn team(app: &TestApp) -> Team {
    let org = app.org("owner@example.com").await;
    let admin = app
        .member(&org.owner_token, "admin@example.com", &["admin"], &org.root)
        .await;
    let standard = app
        .member(&org.owner_token, "standard@example.com", &["standard"], &org.group)
        .await;
    Team { org, admin, standard }
}

#[tokio::test]
async fn an_owner_impersonates_an_admin_read_only_and_every_request_is_recorded() {
    on_each_backend(|app| async move {
        let t = team(&app).await;
        let (admin_id, admin_token) = &t.admin;

        let (status, started) = app.impersonate(&t.org.owner_token, admin_id, json!({})).await;
        assert_eq!(status, StatusCode::CREATED, "{started}");
        let imp = id(&started);
        assert!(imp.starts_with("imp_"));
        assert_eq!(started["impersonation"]["mode"], "read_only", "read-only by default");
        assert_eq!(started["impersonation"]["state"], "active");
        assert_eq!(started["impersonation"]["actor"]["id"], t.org.owner_id.as_str());
        assert_eq!(started["impersonation"]["target"]["id"], admin_id.as_str());
        assert!(started.get("refresh_token").is_none(), "no refresh token: {started}");
        assert_eq!(started["expires_in"], 3600, "60 minutes by default");
        let token = token(&started);
        let c = jwt_claims(&token);
        assert_eq!(c["sub"], admin_id.as_str());
        assert_eq!(c["act"]["sub"], t.org.owner_id.as_str());
        assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 3600);

        // The banner: who really acts, how, until when.
        let (status, me) = app.get("/v1/me", Some(&token)).await;
        assert_eq!(status, StatusCode::OK, "{me}");
        assert_eq!(me["user"]["id"], admin_id.as_str());
        assert_eq!(me["acting_as"]["kind"], "impersonation");
        assert_eq!(me["acting_as"]["mode"], "read_only");
        assert_eq!(me["acting_as"]["actor"]["id"], t.org.owner_id.as_str());
        assert_eq!(me["acting_as"]["impersonation_id"], imp.as_str());
        assert_eq!(me["acting_as"]["expires_at"], started["impersonation"]["expires_at"]);

        // Reads work; every change is refused and changes nothing.
        let (status, _) = app.get("/v1/users", Some(&token)).await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = app
            .update_user(&token, &t.standard.0, json!({ "phone": "+1 555 0199" }))
            .await;
        assert_problem(status, &body, 403, "impersonation-read-only");
        let (_, user) = app.user(&t.org.owner_token, &t.standard.0).await;
        assert!(user["user"]["phone"].is_null(), "nothing changed: {user}");
        let (status, body) = app
            .create_child(&token, &t.org.root, json!({ "name": "Sneaky", "kind": "group" }))
            .await;
        assert_problem(status, &body, 403, "impersonation-read-only");

        // Every request under the token is audited with both ids, the refusals too.
        let requests: Vec<_> = app
            .audit_rows(&imp)
            .await
            .into_iter()
            .filter(|e| e.action == "impersonation.request")
            .collect();
        assert_eq!(requests.len(), 4, "GET /v1/me, GET /v1/users, PATCH, POST");
        for e in &requests {
            assert_eq!(e.actor_user_id.as_deref(), Some(t.org.owner_id.as_str()));
            assert_eq!(e.effective_user_id.as_deref(), Some(admin_id.as_str()));
            assert_eq!(e.account_id.as_deref(), Some(t.org.root.as_str()));
            assert!(e.request_id.is_some());
        }
        let statuses: Vec<Value> = requests
            .iter()
            .map(|e| serde_json::from_str::<Value>(&e.details).unwrap()["status"].clone())
            .collect();
        assert_eq!(statuses, vec![json!(200), json!(200), json!(403), json!(403)]);
        assert!(
            requests[2].details.contains("/v1/users/{user_id}"),
            "{}",
            requests[2].details
        );

        // The organization's audit log shows them too, with both people.
        let query = format!("action=impersonation.request&effective_user={admin_id}");
        let (status, log) = app.audit_events(&t.org.owner_token, &t.org.root, &query).await;
        assert_eq!(status, StatusCode::OK, "{log}");
        let items = log["items"].as_array().unwrap();
        assert_eq!(items.len(), 4, "{log}");
        assert!(items.iter().all(|e| e["actor_user_id"] == t.org.owner_id.as_str()
            && e["effective_user_id"] == admin_id.as_str()
            && e["target_id"] == imp.as_str()));

        // The admin sees who impersonated them.
        let (status, mine) = app.get("/v1/me/impersonations", Some(admin_token)).await;
        assert_eq!(status, StatusCode::OK, "{mine}");
        assert_eq!(mine["items"][0]["id"], imp.as_str());
        assert_eq!(mine["items"][0]["actor"]["email"], "owner@example.com");
        assert_eq!(mine["items"][0]["reason"], "Ticket 4711: sees a blank dashboard");

        // The owner ends it: the token stops at once; ending twice is a conflict.
        let (status, ended) = app.end_impersonation(&t.org.owner_token, &imp).await;
        assert_eq!(status, StatusCode::OK, "{ended}");
        assert_eq!(ended["state"], "ended");
        assert_eq!(ended["ended_by_user_id"], t.org.owner_id.as_str());
        let (status, _) = app.get("/v1/me", Some(&token)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, body) = app.end_impersonation(&t.org.owner_token, &imp).await;
        assert_problem(status, &body, 409, "impersonation-ended");
        let actions = app.audit_actions(admin_id).await;
        assert!(actions.contains(&"impersonation.started".to_string()), "{actions:?}");
        assert!(actions.contains(&"impersonation.ended".to_string()), "{actions:?}");
    })
    .await;
}

#[tokio::test]
async fn nobody_impersonates_someone_who_holds_more_than_they_do() {
    on_each_backend(|app| async move {
        let t = team(&app).await;
        let owner = &t.org.owner_token;

        // An admin cannot impersonate the owner (R9: never an owner by an admin).
        let (status, body) = app.impersonate(&t.admin.1, &t.org.owner_id, json!({})).await;
        assert_problem(status, &body, 403, "impersonation-escalation");

        // A support role with fewer permissions: a poorer user yes, a richer one never.
        let (_, support) = app
            .create_role(owner, "Support", &["users.impersonate", "users.read"])
            .await;
        let (_, reader) = app.create_role(owner, "Reader", &["users.read"]).await;
        let support_role = support["id"].as_str().unwrap().to_string();
        let reader_role = reader["id"].as_str().unwrap().to_string();
        let (_, agent) = app
            .member_with_role_ids(owner, "agent@example.com", &[support_role], &t.org.root)
            .await;
        let (reader_id, _) = app
            .member_with_role_ids(owner, "reader@example.com", &[reader_role], &t.org.group)
            .await;
        let (status, body) = app.impersonate(&agent, &t.standard.0, json!({})).await;
        assert_problem(status, &body, 403, "impersonation-escalation");
        assert!(body["detail"].as_str().unwrap().contains("contacts."), "{body}");
        let (status, body) = app.impersonate(&agent, &t.admin.0, json!({})).await;
        assert_problem(status, &body, 403, "impersonation-escalation");
        let (status, body) = app.impersonate(&agent, &reader_id, json!({})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");

        // Full mode needs users.manage over the target, which the support role lacks.
        let (status, body) = app.impersonate(&agent, &reader_id, json!({ "mode": "full" })).await;
        assert_problem(status, &body, 403, "impersonation-full-mode-refused");

        // Without users.impersonate at all: a plain refusal.
        let (status, body) = app.impersonate(&t.standard.1, &reader_id, json!({})).await;
        assert_problem(status, &body, 403, "forbidden");

        // Rights that change mid-session end it: the target promoted past the actor...
        let (status, started) = app.impersonate(&t.admin.1, &t.standard.0, json!({})).await;
        assert_eq!(status, StatusCode::CREATED, "{started}");
        let acting = token(&started);
        let (status, _) = app.get("/v1/me", Some(&acting)).await;
        assert_eq!(status, StatusCode::OK);
        let owner_role = app.role_id(owner, "owner").await;
        let (status, body) = app.set_roles(owner, &t.standard.0, &[owner_role]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, _) = app.get("/v1/users", Some(&acting)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "never an owner's rights for an admin");

        // ...or the actor losing users.impersonate.
        let (status, started) = app.impersonate(&agent, &reader_id, json!({})).await;
        assert_eq!(status, StatusCode::CREATED, "{started}");
        let acting = token(&started);
        let (status, body) = app
            .update_role(
                owner,
                support["id"].as_str().unwrap(),
                json!({ "permissions": ["users.read"] }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, _) = app.get("/v1/me", Some(&acting)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    })
    .await;
}

#[tokio::test]
async fn starting_an_impersonation_refuses_bad_requests_and_wrong_targets() {
    on_each_backend(|app| async move {
        let t = team(&app).await;
        let owner = &t.org.owner_token;
        let other = app.org("stranger@example.com").await;

        let (status, body) = app.impersonate(owner, &t.org.owner_id, json!({})).await;
        assert_problem(status, &body, 409, "impersonation-self");
        let (status, body) = app.impersonate(owner, &other.owner_id, json!({})).await;
        assert_problem(status, &body, 404, "not-found");
        let (status, body) = app
            .impersonate(owner, "usr_00000000000000000000000000", json!({}))
            .await;
        assert_problem(status, &body, 404, "not-found");

        for (extra, field) in [
            (json!({ "confirm": false }), "confirm"),
            (json!({ "reason": "  " }), "reason"),
            (json!({ "minutes": 0 }), "minutes"),
            (json!({ "minutes": 241 }), "minutes"),
        ] {
            let (status, body) = app.impersonate(owner, &t.admin.0, extra.clone()).await;
            assert_problem(status, &body, 422, "validation-failed");
            assert_eq!(body["errors"][0]["field"], field, "{extra}: {body}");
        }
        let (status, body) = app.impersonate(owner, &t.admin.0, json!({ "mode": "god" })).await;
        assert_eq!(status.as_u16(), 422, "{body}");
        let (status, body) = app.impersonate(owner, &t.admin.0, json!({ "sudo": true })).await;
        assert_problem(status, &body, 422, "validation-failed");
        let (status, body) = app
            .post("/v1/impersonations", json!({ "user_id": t.admin.0 }), Some(owner))
            .await;
        assert_eq!(status.as_u16(), 422, "reason and confirm are required: {body}");

        // A user whose account a caretaker manages is the caretaker's to look after.
        let (helper_id, _) = app
            .member(owner, "helper@example.com", &["standard"], &t.org.root)
            .await;
        let (status, body) = app.assign_caretaker(owner, &t.standard.0, &helper_id).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = app.impersonate(owner, &t.standard.0, json!({})).await;
        assert_problem(status, &body, 409, "impersonation-target-managed");

        let (statuses, listed) = app.impersonations(owner, &t.org.root, "").await;
        assert_eq!(statuses, StatusCode::OK);
        assert_eq!(listed["items"], json!([]), "no refusal left anything behind");
    })
    .await;
}

#[tokio::test]
async fn full_mode_changes_things_but_never_what_an_acting_as_session_may_not() {
    on_each_backend(|app| async move {
        let t = team(&app).await;
        let (status, started) = app
            .impersonate(&t.org.owner_token, &t.admin.0, json!({ "mode": "full", "minutes": 15 }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{started}");
        assert_eq!(started["expires_in"], 900);
        let token = token(&started);

        // A change goes through, recorded as made by the owner acting as the admin.
        let (status, body) = app
            .update_user(&token, &t.standard.0, json!({ "phone": "+1 555 0142" }))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let events = app.audit_rows(&t.standard.0).await;
        let update = events
            .iter()
            .find(|e| e.action == "user.updated")
            .expect("user.updated");
        assert_eq!(update.actor_user_id.as_deref(), Some(t.org.owner_id.as_str()));
        assert_eq!(update.effective_user_id.as_deref(), Some(t.admin.0.as_str()));

        // R8: no password, no caretaker, no other delegation, no account switch, no secrets.
        let (status, body) = app
            .post(
                "/v1/me/password",
                json!({ "current_password": MEMBER_PASSWORD, "new_password": "a brand new passphrase" }),
                Some(&token),
            )
            .await;
        assert_problem(status, &body, 403, "acting-as-forbidden");
        let (status, body) = app.assign_caretaker(&token, &t.standard.0, &t.org.owner_id).await;
        assert_problem(status, &body, 403, "acting-as-forbidden");
        let (status, body) = app.impersonate(&token, &t.standard.0, json!({})).await;
        assert_problem(status, &body, 403, "acting-as-forbidden");
        let (status, body) = app
            .post("/v1/me/acting-as", json!({ "user_id": t.standard.0 }), Some(&token))
            .await;
        assert_problem(status, &body, 403, "acting-as-forbidden");
        let (status, body) = app
            .post(
                "/v1/auth/switch-account",
                json!({ "account_id": t.org.root }),
                Some(&token),
            )
            .await;
        assert_problem(status, &body, 403, "acting-as-forbidden");
        let viewer = app.role_id(&t.org.owner_token, "viewer").await;
        let (status, invite) = app
            .create_invite(&t.org.owner_token, "new@example.com", &[viewer], false)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{invite}");
        let (status, body) = app.copy_invite_link(&token, invite["id"].as_str().unwrap()).await;
        assert_problem(status, &body, 403, "acting-as-forbidden");
    })
    .await;
}

#[tokio::test]
async fn expiry_leaving_and_logging_out_end_an_impersonation_at_once() {
    on_each_backend(|app| async move {
        let t = team(&app).await;
        let owner = &t.org.owner_token;

        // Expiry: the token dies with the impersonation, whatever the access-token leeway.
        let (_, started) = app.impersonate(owner, &t.admin.0, json!({ "minutes": 5 })).await;
        let (first, token1) = (id(&started), token(&started));
        app.clock.advance(chrono::Duration::seconds(5 * 60 + 1));
        let (status, _) = app.get("/v1/me", Some(&token1)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (_, got) = app.impersonation(owner, &first).await;
        assert_eq!(got["state"], "expired");
        let (status, body) = app.end_impersonation(owner, &first).await;
        assert_problem(status, &body, 409, "impersonation-ended");

        // The impersonator leaves it from its own token (read-only may still end itself).
        let owner = app.fresh_token("owner@example.com", PASSWORD).await;
        let (_, started) = app.impersonate(&owner, &t.admin.0, json!({})).await;
        let (second, token2) = (id(&started), token(&started));
        let (status, body) = app.delete("/v1/me/acting-as", Some(&token2)).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        let (status, _) = app.get("/v1/me", Some(&token2)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (_, got) = app.impersonation(&owner, &second).await;
        assert_eq!(got["state"], "ended");
        let (status, _) = app.get("/v1/me", Some(&owner)).await;
        assert_eq!(status, StatusCode::OK, "the impersonator's own session goes on");

        // Logging out of it ends it too.
        let (_, started) = app.impersonate(&owner, &t.admin.0, json!({})).await;
        let (third, token3) = (id(&started), token(&started));
        let (status, _) = app.post("/v1/auth/logout", json!({}), Some(&token3)).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (_, got) = app.impersonation(&owner, &third).await;
        assert_eq!(got["state"], "ended");

        // The impersonator may end it from the impersonation token itself as well.
        let (_, started) = app.impersonate(&owner, &t.admin.0, json!({})).await;
        let (fourth, token4) = (id(&started), token(&started));
        let (status, body) = app.end_impersonation(&token4, &fourth).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, _) = app.get("/v1/me", Some(&token4)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    })
    .await;
}

#[tokio::test]
async fn owners_end_others_impersonations_and_only_auditors_list_them() {
    on_each_backend(|app| async move {
        let t = team(&app).await;
        let owner = &t.org.owner_token;
        let (admin_id, admin) = &t.admin;
        let stranger = app.org("stranger@example.com").await;

        let (_, one) = app.impersonate(admin, &t.standard.0, json!({})).await;
        let (_, two) = app.impersonate(owner, admin_id, json!({})).await;
        let (one, two) = (id(&one), id(&two));

        // Reading one: its actor, its target, an auditor; not a bystander, not a stranger.
        let (status, _) = app.impersonation(admin, &one).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = app.impersonation(&t.standard.1, &one).await;
        assert_eq!(status, StatusCode::OK, "the target reads it");
        let (bystander, bystander_token) = app
            .member(owner, "bystander@example.com", &["standard"], &t.org.root)
            .await;
        let _ = bystander;
        let (status, body) = app.impersonation(&bystander_token, &two).await;
        assert_problem(status, &body, 403, "forbidden");
        let (status, body) = app.impersonation(&stranger.owner_token, &one).await;
        assert_problem(status, &body, 404, "not-found");

        // Ending one: a bystander and a stranger cannot; an owner can end an admin's.
        let (status, body) = app.end_impersonation(&t.standard.1, &one).await;
        assert_problem(status, &body, 403, "forbidden");
        let (status, body) = app.end_impersonation(&stranger.owner_token, &one).await;
        assert_problem(status, &body, 404, "not-found");
        let (status, body) = app.end_impersonation(owner, &one).await;
        assert_eq!(status, StatusCode::OK, "{body}");

        // The organization's list: newest first, filtered, paged.
        let (status, page) = app.impersonations(owner, &t.org.root, "").await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let ids: Vec<&str> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec![two.as_str(), one.as_str()]);
        let (_, page) = app
            .impersonations(owner, &t.org.root, &format!("actor={admin_id}"))
            .await;
        assert_eq!(page["items"].as_array().unwrap().len(), 1);
        assert_eq!(page["items"][0]["id"], one.as_str());
        let (_, page) = app
            .impersonations(owner, &t.org.root, &format!("target={admin_id}"))
            .await;
        assert_eq!(page["items"][0]["id"], two.as_str());
        let (_, page) = app.impersonations(owner, &t.org.root, "active=true").await;
        assert_eq!(page["items"].as_array().unwrap().len(), 1);
        assert_eq!(page["items"][0]["id"], two.as_str());
        let (_, page) = app.impersonations(owner, &t.org.root, "active=false").await;
        assert_eq!(page["items"][0]["id"], one.as_str());
        let (_, first) = app.impersonations(owner, &t.org.root, "limit=1").await;
        assert_eq!(first["items"][0]["id"], two.as_str());
        let cursor = first["next_cursor"].as_str().expect("a second page");
        let (_, second) = app
            .impersonations(owner, &t.org.root, &format!("limit=1&cursor={cursor}"))
            .await;
        assert_eq!(second["items"][0]["id"], one.as_str());
        assert!(second["next_cursor"].is_null());

        // Refusals: wrong role, a sub-account, another tenant, bad filters.
        let (status, body) = app.impersonations(&t.standard.1, &t.org.root, "").await;
        assert_problem(status, &body, 403, "forbidden");
        let (status, body) = app.impersonations(owner, &t.org.group, "").await;
        assert_problem(status, &body, 404, "not-found");
        let (status, body) = app.impersonations(owner, &stranger.root, "").await;
        assert_problem(status, &body, 404, "not-found");
        let (status, body) = app.impersonations(owner, &t.org.root, "actor=bob").await;
        assert_eq!(status.as_u16(), 422, "{body}");
        let (status, body) = app.impersonations(owner, &t.org.root, "colour=red").await;
        assert_eq!(status.as_u16(), 422, "{body}");
    })
    .await;
}

#[tokio::test]
async fn an_impersonation_whose_session_ends_by_other_means_shows_as_ended() {
    on_each_backend(|app| async move {
        let t = team(&app).await;
        let (_, started) = app.impersonate(&t.org.owner_token, &t.admin.0, json!({})).await;
        let imp = id(&started);
        // The admin changes their password: every session of theirs ends, this one too.
        let (status, body) = app
            .post(
                "/v1/me/password",
                json!({ "current_password": MEMBER_PASSWORD, "new_password": "a fresh passphrase 7" }),
                Some(&t.admin.1),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        let (status, _) = app.get("/v1/me", Some(&token(&started))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (_, got) = app.impersonation(&t.org.owner_token, &imp).await;
        assert_eq!(got["state"], "ended", "{got}");
        let (_, running) = app.impersonations(&t.org.owner_token, &t.org.root, "active=true").await;
        assert_eq!(running["items"], json!([]));
        let (_, past) = app
            .impersonations(&t.org.owner_token, &t.org.root, "active=false")
            .await;
        assert_eq!(past["items"][0]["id"], imp.as_str());
        let (status, body) = app.end_impersonation(&t.org.owner_token, &imp).await;
        assert_problem(status, &body, 409, "impersonation-ended");
    })
    .await;
}

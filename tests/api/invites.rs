//! Invitations (R6): every state visible, links rotate, and acceptance happens exactly once.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

/// Invites by "copy link" and returns (invite id, link token).
async fn invite_link(app: &TestApp, org: &Org, email: &str, role: &str) -> (String, String) {
    let role = app.role_id(&org.owner_token, role).await;
    let (status, body) = app.create_invite(&org.owner_token, email, &[role], false).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (
        body["id"].as_str().unwrap().to_string(),
        link_token(body["registration_url"].as_str().unwrap()),
    )
}

fn register(token: &str) -> Value {
    json!({ "token": token, "first_name": "Grace", "last_name": "Hopper", "password": MEMBER_PASSWORD })
}

#[tokio::test]
async fn an_emailed_invitation_is_written_to_the_outbox_with_its_link() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let viewer = app.role_id(&org.owner_token, "viewer").await;
        let (status, body) = app
            .create_invite(&org.owner_token, "Grace@Example.com", &[viewer], true)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["status"], "pending");
        assert_eq!(body["email"], "Grace@Example.com");
        assert_eq!(body["invited_by"], org.owner_id.as_str());
        assert_eq!(body["account_id"], org.root.as_str());
        assert!(
            body.get("registration_url").is_none(),
            "an emailed link is not handed back"
        );
        assert_eq!(body["requires_record_assignment"], false);
        let expires = chrono::DateTime::parse_from_rfc3339(body["expires_at"].as_str().unwrap()).unwrap();
        let days = (expires.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_days();
        assert!((29..=30).contains(&days), "30 days by default, got {days}");

        let mail = app.wait_for_notification("Grace@Example.com", "invite").await;
        assert!(
            mail.body.contains("https://app.example.test/accept-invite?token="),
            "{}",
            mail.body
        );
        let (status, preview) = app.preview_invitation(&link_token(&mail.body)).await;
        assert_eq!(status, StatusCode::OK, "{preview}");
        assert_eq!(
            app.audit_actions(body["id"].as_str().unwrap()).await,
            vec!["invite.created"]
        );
    })
    .await;
}

#[tokio::test]
async fn copy_link_at_creation_returns_the_link_and_sends_nothing() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (_, token) = invite_link(&app, &org, "grace@example.com", "viewer").await;
        assert_eq!(token.len(), 43, "256-bit token");
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        assert!(app.notifications_to("grace@example.com").await.is_empty());
    })
    .await;
}

#[tokio::test]
async fn the_preview_shows_only_what_the_invitee_needs() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (_, token) = invite_link(&app, &org, "grace@example.com", "viewer").await;
        let (status, preview) = app.preview_invitation(&token).await;
        assert_eq!(status, StatusCode::OK);
        let mut keys: Vec<&str> = preview.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, vec!["account_name", "email", "expires_at", "inviter_name"]);
        assert_eq!(preview["account_name"], "Acme");
        assert_eq!(preview["inviter_name"], "Ada Lovelace");
        assert_eq!(preview["email"], "grace@example.com");
    })
    .await;
}

#[tokio::test]
async fn a_new_person_registers_once_and_is_logged_in() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (id, token) = invite_link(&app, &org, "grace@example.com", "standard").await;
        let (status, body) = app.accept_invitation(register(&token), None).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["account"]["id"], org.root.as_str());
        assert_eq!(body["membership"]["roles"][0]["builtin"], "standard");
        let access = token_of_session(&body);
        let (status, me) = app.get("/v1/me", Some(&access)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(me["user"]["email"], "grace@example.com");
        assert_eq!(me["account"]["id"], org.root.as_str());
        let (status, _) = app.log_in("grace@example.com", MEMBER_PASSWORD).await;
        assert_eq!(status, StatusCode::OK);

        let (_, read) = app.invite(&org.owner_token, &id).await;
        assert_eq!(read["status"], "accepted");
        assert_eq!(read["accepted_user_id"], me["user"]["id"]);
        let (status, problem) = app.accept_invitation(register(&token), None).await;
        assert_problem(status, &problem, 404, "not-found");
        let actions = app.audit_actions(&id).await;
        assert_eq!(actions, vec!["invite.created", "invite.accepted"]);
    })
    .await;
}

fn token_of_session(body: &Value) -> String {
    body["session"]["access_token"]
        .as_str()
        .expect("session token")
        .to_string()
}

#[tokio::test]
async fn registering_needs_names_and_a_good_password() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (_, token) = invite_link(&app, &org, "grace@example.com", "viewer").await;
        let (status, problem) = app.accept_invitation(json!({ "token": token }), None).await;
        assert_problem(status, &problem, 422, "validation-failed");
        assert_eq!(problem["errors"].as_array().unwrap().len(), 3);
        let (status, problem) = app
            .accept_invitation(
                json!({ "token": token, "first_name": "G", "last_name": "H", "password": "short" }),
                None,
            )
            .await;
        assert_problem(status, &problem, 422, "validation-failed");
        let (status, problem) = app
            .accept_invitation(
                json!({ "token": "", "first_name": " ", "username": "a", "password": "short" }),
                None,
            )
            .await;
        assert_problem(status, &problem, 422, "validation-failed");
        let fields: Vec<(&str, &str)> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["field"].as_str().unwrap(), e["code"].as_str().unwrap()))
            .collect();
        assert_eq!(
            fields,
            vec![
                ("first_name", "required"),
                ("password", "length"),
                ("token", "length"),
                ("username", "length")
            ],
            "every invalid field at once: {problem}"
        );
        let (status, _) = app.preview_invitation(&token).await;
        assert_eq!(status, StatusCode::OK, "the invite is still pending");
    })
    .await;
}

#[tokio::test]
async fn an_existing_user_logs_in_and_accepts_with_a_matching_email() {
    on_each_backend(|app| async move {
        let a = app.org("a@example.com").await;
        let b = app.org("b@example.com").await;
        let (_, grace) = app
            .member(&a.owner_token, "grace@example.com", &["viewer"], &a.root)
            .await;
        let (_, other) = app
            .member(&a.owner_token, "other@example.com", &["viewer"], &a.root)
            .await;
        let (id, token) = invite_link(&app, &b, "GRACE@example.com", "standard").await;

        let (status, problem) = app.accept_invitation(register(&token), None).await;
        assert_problem(status, &problem, 409, "email-taken");
        let (status, problem) = app.accept_invitation(json!({ "token": token }), Some(&other)).await;
        assert_problem(status, &problem, 403, "forbidden");
        let (status, problem) = app
            .accept_invitation(json!({ "token": token }), Some("not-a-token"))
            .await;
        assert_problem(status, &problem, 401, "unauthenticated");

        let (status, body) = app.accept_invitation(json!({ "token": token }), Some(&grace)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["account"]["id"], b.root.as_str());
        assert!(body.get("session").is_none());
        let (_, mine) = app.my_accounts(&grace).await;
        assert_eq!(mine.as_array().unwrap().len(), 2, "the account is added to their list");
        let (_, read) = app.invite(&b.owner_token, &id).await;
        assert_eq!(read["status"], "accepted");
    })
    .await;
}

#[tokio::test]
async fn exactly_one_of_many_concurrent_accepts_succeeds() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (id, token) = invite_link(&app, &org, "grace@example.com", "viewer").await;
        let body = register(&token);
        let attempts = (0..24).map(|_| app.accept_invitation(body.clone(), None));
        let results = futures_util::future::join_all(attempts).await;
        let created = results.iter().filter(|(s, _)| *s == StatusCode::CREATED).count();
        assert_eq!(created, 1, "{:?}", results.iter().map(|(s, _)| *s).collect::<Vec<_>>());
        for (status, body) in &results {
            assert!(
                *status == StatusCode::CREATED || *status == StatusCode::NOT_FOUND || *status == StatusCode::CONFLICT,
                "{status} {body}"
            );
        }
        let (_, users) = app.get("/v1/users?q=grace", Some(&org.owner_token)).await;
        assert_eq!(users["items"].as_array().unwrap().len(), 1, "one user, one membership");
        assert_eq!(
            app.audit_actions(&id)
                .await
                .iter()
                .filter(|a| *a == "invite.accepted")
                .count(),
            1
        );
    })
    .await;
}

#[tokio::test]
async fn resend_and_copy_link_rotate_the_token_and_restart_the_clock() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (id, first) = invite_link(&app, &org, "grace@example.com", "viewer").await;
        let (_, before) = app.invite(&org.owner_token, &id).await;

        app.clock.advance(chrono::Duration::days(10));
        let owner = app.fresh_token("owner@example.com", PASSWORD).await;
        let (status, resent) = app.resend_invite(&owner, &id).await;
        assert_eq!(status, StatusCode::OK, "{resent}");
        assert!(resent.get("registration_url").is_none());
        assert!(
            resent["expires_at"].as_str().unwrap() > before["expires_at"].as_str().unwrap(),
            "the clock restarts"
        );
        let (status, problem) = app.preview_invitation(&first).await;
        assert_problem(status, &problem, 404, "not-found");
        let mail = app.wait_for_notification("grace@example.com", "invite").await;
        let second = link_token(&mail.body);
        let (status, _) = app.preview_invitation(&second).await;
        assert_eq!(status, StatusCode::OK);

        let (status, copied) = app.copy_invite_link(&owner, &id).await;
        assert_eq!(status, StatusCode::OK, "{copied}");
        let third = link_token(copied["registration_url"].as_str().unwrap());
        let (status, _) = app.preview_invitation(&second).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "the emailed link died with the copy");
        let (status, _) = app.accept_invitation(register(&third), None).await;
        assert_eq!(status, StatusCode::CREATED);
        let actions = app.audit_actions(&id).await;
        assert_eq!(
            actions,
            vec![
                "invite.created",
                "invite.resent",
                "invite.link_copied",
                "invite.accepted"
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn invitations_expire_and_resending_revives_them() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (id, token) = invite_link(&app, &org, "grace@example.com", "viewer").await;
        app.clock.advance(chrono::Duration::days(31));
        let owner = app.fresh_token("owner@example.com", PASSWORD).await;
        let (_, read) = app.invite(&owner, &id).await;
        assert_eq!(read["status"], "expired");
        let (status, unknown) = app.preview_invitation("never-issued").await;
        let (status2, expired) = app.preview_invitation(&token).await;
        assert_eq!((status, status2), (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND));
        assert_eq!(unknown["detail"], expired["detail"], "expired and unknown look alike");
        let (status, _) = app.accept_invitation(register(&token), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        // Resending the expired one revives it with a new link and a new clock.
        let (status, revived) = app.copy_invite_link(&owner, &id).await;
        assert_eq!(status, StatusCode::OK, "{revived}");
        assert_eq!(revived["status"], "pending");
        let fresh = link_token(revived["registration_url"].as_str().unwrap());
        let (status, _) = app.preview_invitation(&fresh).await;
        assert_eq!(status, StatusCode::OK);
    })
    .await;
}

/// R6: one live invitation per address, whether it was created or revived.
#[tokio::test]
async fn an_expired_invitation_cannot_come_back_beside_a_newer_one() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (old_id, _) = invite_link(&app, &org, "grace@example.com", "viewer").await;
        app.clock.advance(chrono::Duration::days(31));
        let owner = app.fresh_token("owner@example.com", PASSWORD).await;
        let viewer = app.role_id(&owner, "viewer").await;
        let (status, newer) = app.create_invite(&owner, "grace@example.com", &[viewer], false).await;
        assert_eq!(status, StatusCode::CREATED, "{newer}");
        for action in [InviteAction::Link, InviteAction::Resend] {
            let (status, body) = app.invite_action(&owner, &old_id, action).await;
            assert_problem(status, &body, 409, "invite-already-pending");
            assert!(
                body["detail"].as_str().unwrap().contains(newer["id"].as_str().unwrap()),
                "{body}"
            );
        }
        let (_, old) = app.invite(&owner, &old_id).await;
        assert_eq!(old["status"], "expired", "the refused revival changed nothing");
        let (status, pending) = app.get("/v1/invites?status=pending", Some(&owner)).await;
        assert_eq!(status, StatusCode::OK, "{pending}");
        let ids: Vec<&str> = pending["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|i| i["id"].as_str())
            .collect();
        assert_eq!(ids, vec![newer["id"].as_str().unwrap()], "exactly one live invitation");
    })
    .await;
}

#[tokio::test]
async fn the_invite_lifetime_is_configurable() {
    on_each_backend_with(&[("STEWARD_INVITE_TTL", "2d")], |app| async move {
        let org = app.org("owner@example.com").await;
        let (id, _) = invite_link(&app, &org, "grace@example.com", "viewer").await;
        app.clock
            .advance(chrono::Duration::days(2) + chrono::Duration::minutes(1));
        let owner = app.fresh_token("owner@example.com", PASSWORD).await;
        let (_, read) = app.invite(&owner, &id).await;
        assert_eq!(read["status"], "expired");
    })
    .await;
}

#[tokio::test]
async fn revoked_invitations_stop_working_and_can_be_replaced() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (id, token) = invite_link(&app, &org, "grace@example.com", "viewer").await;
        let (status, body) = app.revoke_invite(&org.owner_token, &id).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "revoked");
        let (status, _) = app.accept_invitation(register(&token), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        for action in InviteAction::ALL {
            let (status, problem) = app.invite_action(&org.owner_token, &id, action).await;
            assert_problem(status, &problem, 409, "invite-not-pending");
        }
        let viewer = app.role_id(&org.owner_token, "viewer").await;
        let (status, _) = app
            .create_invite(&org.owner_token, "grace@example.com", &[viewer], false)
            .await;
        assert_eq!(status, StatusCode::CREATED, "re-inviting after revocation works");
    })
    .await;
}

#[tokio::test]
async fn duplicate_invites_and_invites_to_members_are_conflicts() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let viewer = app.role_id(&org.owner_token, "viewer").await;
        let (member, _) = app
            .member(&org.owner_token, "member@example.com", &["viewer"], &org.group)
            .await;
        let (status, problem) = app
            .create_invite(
                &org.owner_token,
                "MEMBER@example.com",
                std::slice::from_ref(&viewer),
                true,
            )
            .await;
        assert_problem(status, &problem, 409, "already-a-member");
        assert!(
            problem["detail"].as_str().unwrap().contains(&member),
            "names the member: {problem}"
        );

        let (status, first) = app
            .create_invite(
                &org.owner_token,
                "grace@example.com",
                std::slice::from_ref(&viewer),
                true,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{first}");
        let (status, problem) = app
            .create_invite(
                &org.owner_token,
                "Grace@example.com",
                std::slice::from_ref(&viewer),
                true,
            )
            .await;
        assert_problem(status, &problem, 409, "invite-already-pending");

        let (status, problem) = app
            .create_invite(&org.owner_token, "not-an-email", std::slice::from_ref(&viewer), true)
            .await;
        assert_problem(status, &problem, 422, "validation-failed");
        let (status, problem) = app
            .create_invite(&org.owner_token, "x@example.com", &[] as &[&str], true)
            .await;
        assert_problem(status, &problem, 422, "validation-failed");
        let (status, list) = app.get("/v1/invites", Some(&org.owner_token)).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert_eq!(
            list["items"].as_array().unwrap().len(),
            1,
            "refused invites left nothing behind"
        );
    })
    .await;
}

#[tokio::test]
async fn invites_never_escalate_and_stay_inside_the_tenant() {
    on_each_backend(|app| async move {
        let a = app.org("a@example.com").await;
        let b = app.org("b@example.com").await;
        let (_, admin) = app
            .member(&a.owner_token, "admin@example.com", &["admin"], &a.root)
            .await;
        let (_, standard) = app
            .member(&a.owner_token, "std@example.com", &["standard"], &a.root)
            .await;
        let owner = app.role_id(&a.owner_token, "owner").await;
        let viewer = app.role_id(&a.owner_token, "viewer").await;

        let (status, problem) = app.create_invite(&admin, "x@example.com", &[owner], true).await;
        assert_problem(status, &problem, 403, "forbidden");
        let (status, problem) = app
            .create_invite(&standard, "x@example.com", std::slice::from_ref(&viewer), true)
            .await;
        assert_problem(status, &problem, 403, "forbidden");
        let (status, _) = app.create_invite(&admin, "x@example.com", &[viewer], true).await;
        assert_eq!(status, StatusCode::CREATED, "admins invite with what they hold");

        let (b_invite, _) = invite_link(&app, &b, "y@example.com", "viewer").await;
        let (status, problem) = app.invite(&a.owner_token, &b_invite).await;
        assert_problem(status, &problem, 404, "not-found");
        for action in InviteAction::ALL {
            let (status, problem) = app.invite_action(&a.owner_token, &b_invite, action).await;
            assert_problem(status, &problem, 404, "not-found");
        }
        let (_, still) = app.invite(&b.owner_token, &b_invite).await;
        assert_eq!(still["status"], "pending", "nothing of b changed");
    })
    .await;
}

#[tokio::test]
async fn limited_and_guest_invites_say_records_must_be_assigned() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let limited = app.role_id(&org.owner_token, "limited").await;
        let guest = app.role_id(&org.owner_token, "guest").await;
        let standard = app.role_id(&org.owner_token, "standard").await;
        let (status, body) = app
            .create_invite(&org.owner_token, "l@example.com", &[limited.clone(), guest], false)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["requires_record_assignment"], true);
        let (status, body) = app
            .create_invite(&org.owner_token, "m@example.com", &[limited, standard], false)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["requires_record_assignment"], false);
        let (status, accepted) = app
            .accept_invitation(register(&link_token(body["registration_url"].as_str().unwrap())), None)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{accepted}");
        assert_eq!(accepted["requires_record_assignment"], false);
    })
    .await;
}

#[tokio::test]
async fn invites_are_listed_by_state_with_cursor_pages() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (accepted, t1) = invite_link(&app, &org, "one@example.com", "viewer").await;
        let (revoked, _) = invite_link(&app, &org, "two@example.com", "viewer").await;
        let (pending, _) = invite_link(&app, &org, "three@example.com", "viewer").await;
        let (status, body) = app.accept_invitation(register(&t1), None).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = app.revoke_invite(&org.owner_token, &revoked).await;
        assert_eq!(status, StatusCode::OK, "{body}");

        let ids = |v: &Value| -> Vec<String> {
            v["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_string())
                .collect()
        };
        let (status, all) = app.get("/v1/invites", Some(&org.owner_token)).await;
        assert_eq!(status, StatusCode::OK, "{all}");
        assert_eq!(ids(&all), vec![accepted.clone(), revoked.clone(), pending.clone()]);
        for (state, expected) in [("accepted", &accepted), ("revoked", &revoked), ("pending", &pending)] {
            let (status, list) = app
                .get(&format!("/v1/invites?status={state}"), Some(&org.owner_token))
                .await;
            assert_eq!(status, StatusCode::OK, "{state}: {list}");
            assert_eq!(ids(&list), vec![expected.clone()], "{state}");
        }
        app.clock.advance(chrono::Duration::days(31));
        let owner = app.fresh_token("owner@example.com", PASSWORD).await;
        let (status, expired) = app.get("/v1/invites?status=expired", Some(&owner)).await;
        assert_eq!(status, StatusCode::OK, "{expired}");
        assert_eq!(ids(&expired), vec![pending.clone()]);
        let (status, none_pending) = app.get("/v1/invites?status=pending", Some(&owner)).await;
        assert_eq!(status, StatusCode::OK, "{none_pending}");
        assert!(ids(&none_pending).is_empty());

        let (status, page1) = app.get("/v1/invites?limit=2", Some(&owner)).await;
        assert_eq!(status, StatusCode::OK, "{page1}");
        assert_eq!(ids(&page1), vec![accepted, revoked]);
        let (status, page2) = app
            .get(
                &format!("/v1/invites?limit=2&cursor={}", page1["next_cursor"].as_str().unwrap()),
                Some(&owner),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page2}");
        assert_eq!(ids(&page2), vec![pending]);
        assert_eq!(page2["next_cursor"], Value::Null);
        let (status, problem) = app.get("/v1/invites?status=lost", Some(&owner)).await;
        assert_problem(status, &problem, 422, "validation-failed");
    })
    .await;
}

/// A malformed invitation id is as unknown as another tenant's (R1): 404, never a 422 or 500.
#[tokio::test]
async fn malformed_invitation_ids_are_not_found() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        for id in ["inv_x", "usr_01jd3k6x0n6qg8z7v2f4t9b1c5", "not-an-id"] {
            let (status, problem) = app.invite(&org.owner_token, id).await;
            assert_problem(status, &problem, 404, "not-found");
            for action in InviteAction::ALL {
                let (status, problem) = app.invite_action(&org.owner_token, id, action).await;
                assert_problem(status, &problem, 404, "not-found");
            }
        }
    })
    .await;
}

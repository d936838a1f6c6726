//! The life cycle of a user (R3, R10, R11) and billable seats: deactivate → refused →
//! reactivate; archive → login refused → restore → set password → login; the seat ledger
//! and the credit for seats closed early, with the test's clock.

use chrono::NaiveDate;
use reqwest::StatusCode;
use serde_json::{json, Value};
use steward::clock::Clock;

use crate::helpers::*;

async fn deactivate(app: &TestApp, token: &str, user: &str) -> (StatusCode, Value) {
    app.post(&format!("/v1/users/{user}/deactivate"), json!({}), Some(token))
        .await
}

async fn reactivate(app: &TestApp, token: &str, user: &str) -> (StatusCode, Value) {
    app.post(&format!("/v1/users/{user}/reactivate"), json!({}), Some(token))
        .await
}

async fn restore(app: &TestApp, token: &str, user: &str) -> (StatusCode, Value) {
    app.post(&format!("/v1/users/{user}/restore"), json!({}), Some(token))
        .await
}

async fn seats(app: &TestApp, token: &str, account: &str) -> (StatusCode, Value) {
    app.get(&format!("/v1/accounts/{account}/seats"), Some(token)).await
}

#[tokio::test]
async fn a_deactivated_member_is_refused_at_once_and_comes_back_with_everything() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (id, token) = app
            .member(&org.owner_token, "sam@example.com", &["standard"], &org.group)
            .await;

        let (status, body) = deactivate(&app, &org.owner_token, &id).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["membership"]["status"], "deactivated");
        let (status, _) = app.get("/v1/me", Some(&token)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "its tokens stop at once");
        let (status, body) = app.log_in("sam@example.com", MEMBER_PASSWORD).await;
        assert_problem(status, &body, 403, "forbidden");
        let (_, kept) = app.user(&org.owner_token, &id).await;
        assert_eq!(
            kept["membership"]["roles"][0]["builtin"], "standard",
            "roles stay: {kept}"
        );
        assert_eq!(kept["membership"]["account_id"], org.group.as_str(), "place stays");
        let (status, body) = deactivate(&app, &org.owner_token, &id).await;
        assert_problem(status, &body, 409, "member-not-active");

        let (status, body) = reactivate(&app, &org.owner_token, &id).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["membership"]["status"], "active");
        let (status, _) = app.log_in("sam@example.com", MEMBER_PASSWORD).await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = reactivate(&app, &org.owner_token, &id).await;
        assert_problem(status, &body, 409, "member-already-active");
        let actions = app.audit_actions(&id).await;
        assert!(actions.contains(&"membership.deactivated".to_string()), "{actions:?}");
        assert!(actions.contains(&"membership.reactivated".to_string()), "{actions:?}");
    })
    .await;
}

#[tokio::test]
async fn the_life_cycle_refuses_the_wrong_caller_and_the_last_owner() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let other = app.org("stranger@example.com").await;
        let (admin_id, admin) = app
            .member(&org.owner_token, "admin@example.com", &["admin"], &org.root)
            .await;
        let (std_id, standard) = app
            .member(&org.owner_token, "sam@example.com", &["standard"], &org.root)
            .await;

        // R3: the only owner can be neither deactivated nor deleted, not even by themself.
        let (status, body) = deactivate(&app, &org.owner_token, &org.owner_id).await;
        assert_problem(status, &body, 409, "last-owner");
        let (status, body) = app
            .delete(&format!("/v1/users/{}", org.owner_id), Some(&org.owner_token))
            .await;
        assert_problem(status, &body, 409, "last-owner");
        // An admin does not touch an owner; a standard user touches nobody.
        let (status, body) = deactivate(&app, &admin, &org.owner_id).await;
        assert_problem(status, &body, 403, "forbidden");
        let (status, body) = deactivate(&app, &standard, &admin_id).await;
        assert_problem(status, &body, 403, "forbidden");
        let (status, body) = app.delete(&format!("/v1/users/{admin_id}"), Some(&standard)).await;
        assert_problem(status, &body, 403, "forbidden");
        // Another organization's member does not exist here (R1).
        for path in ["deactivate", "reactivate", "restore"] {
            let (status, body) = app
                .post(
                    &format!("/v1/users/{}/{path}", other.owner_id),
                    json!({}),
                    Some(&org.owner_token),
                )
                .await;
            assert_problem(status, &body, 404, "not-found");
        }
        let (status, body) = app
            .delete(&format!("/v1/users/{}", other.owner_id), Some(&org.owner_token))
            .await;
        assert_problem(status, &body, 404, "not-found");
        let (status, body) = restore(&app, &org.owner_token, &std_id).await;
        assert_problem(status, &body, 409, "user-not-archived");
        let (_, page) = app.get("/v1/users", Some(&org.owner_token)).await;
        assert_eq!(member_ids(&page).len(), 3, "nothing changed: {page}");
    })
    .await;
}

#[tokio::test]
async fn an_archived_user_cannot_log_in_and_a_restored_one_sets_a_password_and_keeps_their_roles() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (id, token) = app
            .member(&org.owner_token, "sam@example.com", &["standard"], &org.group)
            .await;
        let (helper_id, _) = app
            .member(&org.owner_token, "helper@example.com", &["standard"], &org.root)
            .await;
        let (status, body) = app.assign_caretaker(&org.owner_token, &id, &helper_id).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");

        let (status, body) = app.delete(&format!("/v1/users/{id}"), Some(&org.owner_token)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["outcome"], "archived");
        assert_eq!(body["member"]["user"]["status"], "archived");
        let (status, _) = app.get("/v1/me", Some(&token)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        // Login answers exactly as for an address nobody has.
        let (status, refused) = app.log_in("sam@example.com", MEMBER_PASSWORD).await;
        let (_, unknown) = app.log_in("nobody@example.com", MEMBER_PASSWORD).await;
        assert_problem(status, &refused, 401, "invalid-credentials");
        assert_eq!(refused["detail"], unknown["detail"]);
        // The caretaker assignment ended, and the caretaker was told.
        let (status, body) = app.caretaker(&org.owner_token, &id).await;
        assert_problem(status, &body, 409, "no-caretaker");
        app.wait_for_notification("helper@example.com", "caretaker_removed")
            .await;
        // Listed under archived users, not among the others.
        let (_, active) = app.get("/v1/users", Some(&org.owner_token)).await;
        assert!(!member_ids(&active).contains(&id));
        let (_, archived) = app.get("/v1/users?archived=true", Some(&org.owner_token)).await;
        assert_eq!(member_ids(&archived), vec![id.clone()]);
        let (status, body) = app.delete(&format!("/v1/users/{id}"), Some(&org.owner_token)).await;
        assert_problem(status, &body, 409, "member-not-active");

        // Restore: active, no usable password, a one-time link (also sent to them).
        let (status, restored) = restore(&app, &org.owner_token, &id).await;
        assert_eq!(status, StatusCode::OK, "{restored}");
        assert_eq!(restored["member"]["user"]["status"], "active");
        let link = restored["set_password_url"].as_str().unwrap();
        let notice = app.wait_for_notification("sam@example.com", "account_restored").await;
        assert!(notice.body.contains(link), "the notice carries the link");
        let (status, _) = app.log_in("sam@example.com", MEMBER_PASSWORD).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "the old password is gone");
        let (status, body) = app
            .post(
                "/v1/auth/password-reset/confirm",
                json!({ "token": link_token(link), "new_password": "back again and glad of it" }),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        let (status, login) = app.log_in("sam@example.com", "back again and glad of it").await;
        assert_eq!(status, StatusCode::OK, "{login}");
        let (_, me) = app.get("/v1/me", Some(&token_of(&login))).await;
        assert_eq!(me["membership"]["roles"][0]["builtin"], "standard", "old roles: {me}");
        let (status, body) = app
            .post(
                "/v1/auth/password-reset/confirm",
                json!({ "token": link_token(link), "new_password": "a second go at it" }),
                None,
            )
            .await;
        assert_eq!(status.as_u16(), 400, "the link works once: {body}");
        let actions = app.audit_actions(&id).await;
        assert!(actions.contains(&"user.archived".to_string()), "{actions:?}");
        assert!(actions.contains(&"user.restored".to_string()), "{actions:?}");
    })
    .await;
}

fn token_of(body: &Value) -> String {
    token(body)
}

#[tokio::test]
async fn deleting_a_member_of_two_organizations_removes_only_this_membership() {
    on_each_backend(|app| async move {
        let a = app.org("owner-a@example.com").await;
        let b = app.org("owner-b@example.com").await;
        let (id, token) = app
            .member(&a.owner_token, "sam@example.com", &["standard"], &a.root)
            .await;
        let viewer = app.role_id(&b.owner_token, "viewer").await;
        let (_, invite) = app
            .create_invite(&b.owner_token, "sam@example.com", &[viewer], false)
            .await;
        let link = link_token(invite["registration_url"].as_str().unwrap());
        let (status, body) = app.accept_invitation(json!({ "token": link }), Some(&token)).await;
        assert!(status.is_success(), "{body}");

        let (status, body) = app.delete(&format!("/v1/users/{id}"), Some(&a.owner_token)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["outcome"], "membership_removed");
        let (status, _) = app.user(&a.owner_token, &id).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "no longer a member of A");
        let (status, login) = app.log_in("sam@example.com", MEMBER_PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "still a member of B: {login}");
        assert_eq!(login["account"]["id"], b.root.as_str());
        let (status, _) = app.user(&b.owner_token, &id).await;
        assert_eq!(status, StatusCode::OK);
    })
    .await;
}

#[tokio::test]
async fn seats_follow_the_ledger_and_seats_closed_early_are_credited() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let today = app.clock.now().date();
        let (status, body) = app
            .update_billing(
                &org.owner_token,
                &org.root,
                json!({ "billing_email": "billing@example.com", "plan": "team", "seat_price_cents": 3000,
                        "currency": "EUR", "cycle_start": today.to_string() }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (sam, _) = app
            .member(&org.owner_token, "sam@example.com", &["standard"], &org.root)
            .await;
        let (guest, _) = app
            .member(&org.owner_token, "gus@example.com", &["guest"], &org.root)
            .await;

        let (status, view) = seats(&app, &org.owner_token, &org.root).await;
        assert_eq!(status, StatusCode::OK, "{view}");
        assert_eq!(
            view["billable_seats"], 2,
            "the owner and Sam; guests are never billable"
        );
        assert!(view["ledger"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["user_id"] != guest.as_str()));
        assert_eq!(view["cycle"]["start"], today.to_string());
        assert_eq!(view["cycle"]["credits"], json!([]));

        // Sam leaves on day 10 and is back on day 12: day 11 is credited, nothing else.
        app.clock.advance(chrono::Duration::days(10));
        let owner = app.fresh_token("owner@example.com", PASSWORD).await;
        let (status, _) = deactivate(&app, &owner, &sam).await;
        assert_eq!(status, StatusCode::OK);
        let (_, view) = seats(&app, &owner, &org.root).await;
        assert_eq!(view["billable_seats"], 1);
        let cycle_end = NaiveDate::parse_from_str(view["cycle"]["end"].as_str().unwrap(), "%Y-%m-%d").unwrap();
        let days = view["cycle"]["days"].as_i64().unwrap();
        assert_eq!(days, (cycle_end - today).num_days());
        let credit = &view["cycle"]["credits"][0];
        let closed = today + chrono::Duration::days(10);
        let unused = (cycle_end - closed).num_days() - 1;
        assert_eq!(credit["seat"]["user_id"], sam.as_str());
        assert_eq!(credit["seat"]["end_reason"], "deactivated");
        assert_eq!(credit["unused_days"], unused, "{credit}");
        assert_eq!(credit["credit_cents"], (3000 * unused * 2 + days) / (days * 2));

        app.clock.advance(chrono::Duration::days(2));
        let owner = app.fresh_token("owner@example.com", PASSWORD).await;
        let (status, _) = reactivate(&app, &owner, &sam).await;
        assert_eq!(status, StatusCode::OK);
        let (_, view) = seats(&app, &owner, &org.root).await;
        assert_eq!(view["billable_seats"], 2);
        assert_eq!(view["cycle"]["credits"][0]["unused_days"], 1, "{view}");
        assert_eq!(
            view["cycle"]["credits"][0]["credit_cents"],
            (3000 * 2 + days) / (days * 2)
        );
        assert_eq!(
            view["cycle"]["credit_cents"],
            view["cycle"]["credits"][0]["credit_cents"]
        );
        let sams: Vec<&Value> = view["ledger"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["user_id"] == sam.as_str())
            .collect();
        assert_eq!(sams.len(), 2, "two periods: {view}");
        assert!(sams[0]["ended_at"].is_null(), "newest first, open");

        // Becoming a guest stops the seat; archiving stops it too.
        let guest_role = app.role_id(&owner, "guest").await;
        let (status, body) = app.set_roles(&owner, &sam, &[guest_role]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (_, view) = seats(&app, &owner, &org.root).await;
        assert_eq!(view["billable_seats"], 1);
        assert_eq!(view["ledger"][0]["end_reason"], "roles_changed", "{view}");

        // Refusals: no billing permission, a sub-account, another organization.
        let (_, standard) = app.member(&owner, "std@example.com", &["standard"], &org.root).await;
        let (status, body) = seats(&app, &standard, &org.root).await;
        assert_problem(status, &body, 403, "forbidden");
        let (status, body) = seats(&app, &owner, &org.group).await;
        assert_problem(status, &body, 404, "not-found");
        let other = app.org("stranger@example.com").await;
        let (status, body) = seats(&app, &owner, &other.root).await;
        assert_problem(status, &body, 404, "not-found");
    })
    .await;
}

#[tokio::test]
async fn two_owners_deactivating_each_other_at_once_leave_one_owner() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (second, _) = app
            .member(&org.owner_token, "second@example.com", &["admin"], &org.root)
            .await;
        let owner_role = app.role_id(&org.owner_token, "owner").await;
        let (status, body) = app
            .set_roles(&org.owner_token, &second, std::slice::from_ref(&owner_role))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");

        for round in 0..3 {
            let first_token = app.fresh_token("owner@example.com", PASSWORD).await;
            let second_token = app.fresh_token("second@example.com", MEMBER_PASSWORD).await;
            let (a, b) = tokio::join!(
                deactivate(&app, &first_token, &second),
                deactivate(&app, &second_token, &org.owner_id),
            );
            let wins = [a.0, b.0].iter().filter(|s| **s == StatusCode::OK).count();
            assert_eq!(wins, 1, "round {round}: exactly one wins (R3, R15): {a:?} {b:?}");
            let (winner, loser) = if a.0 == StatusCode::OK {
                (&first_token, &second)
            } else {
                (&second_token, &org.owner_id)
            };
            let query = format!("/v1/users?status=active&role={owner_role}");
            let (_, owners) = app.get(&query, Some(winner)).await;
            assert_eq!(member_ids(&owners).len(), 1, "one active owner is left: {owners}");
            let (status, body) = reactivate(&app, winner, loser).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    })
    .await;
}

//! Caretakers (R7, R8): the whole life of an assignment, and every refusal.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

struct Team {
    org: Org,
    /// A standard user who will be away (the managed user).
    away: (String, String),
    /// A standard user who takes over (the caretaker).
    helper: (String, String),
    /// A second standard user, also managed by `helper` in the switching test.
    other: (String, String),
    admin: (String, String),
}

async fn team(app: &TestApp) -> Team {
    let org = app.org("owner@example.com").await;
    let away = app
        .member(&org.owner_token, "away@example.com", &["standard"], &org.root)
        .await;
    let helper = app
        .member(&org.owner_token, "helper@example.com", &["standard"], &org.root)
        .await;
    let other = app
        .member(&org.owner_token, "other@example.com", &["standard"], &org.group)
        .await;
    let admin = app
        .member(&org.owner_token, "admin@example.com", &["admin"], &org.root)
        .await;
    Team {
        org,
        away,
        helper,
        other,
        admin,
    }
}

async fn assign(app: &TestApp, token: &str, managed: &str, caretaker: &str) -> (StatusCode, Value) {
    app.assign_caretaker(token, managed, caretaker).await
}

async fn act_as(app: &TestApp, token: &str, managed: &str) -> (StatusCode, Value) {
    app.post("/v1/me/acting-as", json!({ "user_id": managed }), Some(token))
        .await
}

#[tokio::test]
async fn the_whole_life_of_a_caretaker_assignment() {
    on_each_backend(|app| async move {
        let t = team(&app).await;
        let (away_id, away_token) = &t.away;
        let (helper_id, helper_token) = &t.helper;

        // An admin assigns the caretaker; the managed user's session ends at once.
        let (status, made) = assign(&app, &t.admin.1, away_id, helper_id).await;
        assert_eq!(status, StatusCode::CREATED, "{made}");
        assert_eq!(made["managed_user"]["id"], away_id.as_str());
        assert_eq!(made["caretaker"]["id"], helper_id.as_str());
        assert_eq!(made["assigned_by"], t.admin.0.as_str());
        assert!(made["id"].as_str().unwrap().starts_with("cta_"));
        let (status, _) = app.get("/v1/me", Some(away_token)).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "the managed user's session was revoked"
        );
        for email in ["away@example.com", "helper@example.com"] {
            app.wait_for_notification(email, "caretaker_assigned").await;
        }
        let (_, read) = app.caretaker(&t.org.owner_token, away_id).await;
        assert_eq!(read["caretaker"]["email"], "helper@example.com");

        // Their login is refused, naming the caretaker; no token is issued.
        let (status, refused) = app.log_in("away@example.com", MEMBER_PASSWORD).await;
        assert_problem(status, &refused, 403, "account-managed");
        assert!(
            refused["detail"].as_str().unwrap().contains("helper@example.com"),
            "{refused}"
        );
        assert!(refused.get("access_token").is_none());

        // The caretaker lists the users they manage and acts as one.
        let (status, list) = app.get("/v1/me/managed-users", Some(helper_token)).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert_eq!(list[0]["user"]["id"], away_id.as_str());
        let (status, acting) = act_as(&app, helper_token, away_id).await;
        assert_eq!(status, StatusCode::OK, "{acting}");
        let acting_token = token(&acting);
        let c = jwt_claims(&acting_token);
        assert_eq!(c["sub"], away_id.as_str());
        assert_eq!(c["act"]["sub"], helper_id.as_str());
        assert_eq!(c["acc"], t.org.root.as_str());

        // The banner: /v1/me names the effective user, the real actor and the kind.
        let (status, me) = app.get("/v1/me", Some(&acting_token)).await;
        assert_eq!(status, StatusCode::OK, "{me}");
        assert_eq!(me["user"]["id"], away_id.as_str());
        assert_eq!(me["acting_as"]["kind"], "caretaker");
        assert_eq!(me["acting_as"]["actor"]["id"], helper_id.as_str());

        // R8: an acting-as token cannot change the managed user's password or caretaker.
        let (status, body) = app
            .post(
                "/v1/me/password",
                json!({ "current_password": MEMBER_PASSWORD, "new_password": "a brand new passphrase" }),
                Some(&acting_token),
            )
            .await;
        assert_problem(status, &body, 403, "acting-as-forbidden");
        let (status, body) = app.remove_caretaker(&acting_token, away_id).await;
        assert!(status == StatusCode::FORBIDDEN, "{body}");

        // Refreshing keeps `act`.
        let (status, refreshed) = app
            .post(
                "/v1/auth/refresh",
                json!({ "refresh_token": acting["refresh_token"] }),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{refreshed}");
        let refreshed_token = token(&refreshed);
        assert_eq!(jwt_claims(&refreshed_token)["act"]["sub"], helper_id.as_str());

        // Back to their own account without a password: the acting-as session ends.
        let (status, own) = app.delete("/v1/me/acting-as", Some(&refreshed_token)).await;
        assert_eq!(status, StatusCode::OK, "{own}");
        let own_token = token(&own);
        assert_eq!(jwt_claims(&own_token)["sub"], helper_id.as_str());
        assert!(jwt_claims(&own_token).get("act").is_none());
        let (status, _) = app.get("/v1/me", Some(&refreshed_token)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "the acting-as session ended");

        // Removing the caretaker ends every acting-as session and restores the login.
        let (_, again) = act_as(&app, &own_token, away_id).await;
        let again_token = token(&again);
        let (status, body) = app.remove_caretaker(&t.admin.1, away_id).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        let (status, _) = app.get("/v1/me", Some(&again_token)).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "acting-as tokens stop working at once"
        );
        for email in ["away@example.com", "helper@example.com"] {
            app.wait_for_notification(email, "caretaker_removed").await;
        }
        let (status, body) = app.log_in("away@example.com", MEMBER_PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = app.caretaker(&t.admin.1, away_id).await;
        assert_problem(status, &body, 409, "no-caretaker");
        let actions = app.audit_actions(away_id).await;
        for action in ["caretaker.assigned", "delegation.started", "caretaker.removed"] {
            assert!(actions.iter().any(|a| a == action), "{action} missing from {actions:?}");
        }
    })
    .await;
}

#[tokio::test]
async fn a_caretaker_switches_between_managed_users_and_act_always_names_them() {
    on_each_backend(|app| async move {
        let t = team(&app).await;
        let (helper_id, helper_token) = &t.helper;
        for managed in [&t.away.0, &t.other.0] {
            let (status, body) = assign(&app, &t.org.owner_token, managed, helper_id).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
        let (_, first) = act_as(&app, helper_token, &t.away.0).await;
        let first_token = token(&first);
        // Switching from the acting-as token: the new token's actor is still the caretaker.
        let (status, second) = act_as(&app, &first_token, &t.other.0).await;
        assert_eq!(status, StatusCode::OK, "{second}");
        let c = jwt_claims(&token(&second));
        assert_eq!(c["sub"], t.other.0.as_str());
        assert_eq!(c["act"]["sub"], helper_id.as_str(), "delegations never nest");
        let (status, _) = app.get("/v1/me", Some(&first_token)).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "a switch replaces the acting-as session"
        );
        // Not someone they manage: 404, like any unknown user.
        let (status, body) = act_as(&app, helper_token, &t.admin.0).await;
        assert_problem(status, &body, 404, "not-found");
    })
    .await;
}

#[tokio::test]
async fn caretaker_assignments_refuse_what_r7_forbids() {
    on_each_backend(|app| async move {
        let t = team(&app).await;
        let owner = &t.org.owner_token;
        let (away, helper, other, admin) = (&t.away.0, &t.helper.0, &t.other.0, &t.admin.0);

        let (status, body) = assign(&app, owner, admin, helper).await;
        assert_problem(status, &body, 409, "managed-user-privileged");
        let (status, body) = assign(&app, owner, &t.org.owner_id, helper).await;
        assert_problem(status, &body, 409, "managed-user-privileged");
        let (status, body) = assign(&app, owner, away, away).await;
        assert_problem(status, &body, 409, "caretaker-self");

        let (status, body) = assign(&app, owner, away, helper).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = assign(&app, owner, away, other).await;
        assert_problem(status, &body, 409, "caretaker-already-assigned");
        // A managed user cannot be a caretaker; a caretaker cannot be managed.
        let (status, body) = assign(&app, owner, other, away).await;
        assert_problem(status, &body, 409, "caretaker-chain");
        let (status, body) = assign(&app, owner, helper, other).await;
        assert_problem(status, &body, 409, "caretaker-chain");

        // Replacing is its own operation; the old caretaker's acting-as sessions end.
        let (_, acting) = act_as(&app, &t.helper.1, away).await;
        let acting_token = token(&acting);
        let (status, body) = app.replace_caretaker(owner, away, other).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["caretaker"]["id"], other.as_str());
        let (status, _) = app.get("/v1/me", Some(&acting_token)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, body) = app.replace_caretaker(owner, helper, other).await;
        assert_problem(status, &body, 409, "no-caretaker");

        // Only holders of caretakers.manage assign; a standard user cannot.
        let (status, body) = assign(&app, &t.helper.1, helper, away).await;
        assert_problem(status, &body, 403, "forbidden");
        // Malformed body ids are refused; unknown fields too.
        let (status, body) = app.assign_caretaker(owner, helper, "nope").await;
        assert_problem(status, &body, 422, "validation-failed");
        let (status, body) = app
            .post(
                &format!("/v1/users/{helper}/caretaker"),
                json!({ "caretaker_id": away, "extra": 1 }),
                Some(owner),
            )
            .await;
        assert_problem(status, &body, 422, "validation-failed");
    })
    .await;
}

/// R1: a caretaker or a managed user from another organization is simply not found.
#[tokio::test]
async fn caretakers_stay_inside_the_tenant() {
    on_each_backend(|app| async move {
        let t = team(&app).await;
        let b = app.org("other-owner@example.com").await;
        let (stranger, _) = app
            .member(&b.owner_token, "stranger@example.com", &["standard"], &b.root)
            .await;
        let (status, body) = assign(&app, &t.org.owner_token, &t.away.0, &stranger).await;
        assert_problem(status, &body, 404, "not-found");
        let (status, body) = assign(&app, &t.org.owner_token, &stranger, &t.helper.0).await;
        assert_problem(status, &body, 404, "not-found");
        let (status, body) = app.caretaker(&t.org.owner_token, &stranger).await;
        assert_problem(status, &body, 404, "not-found");
    })
    .await;
}

//! Tenancy: the organization tree, users in several accounts, roles, and the rules
//! R1 (isolation), R2 (reach down the tree), R3 (last owner), R4 (no escalation), R5 (pick an account).

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

fn ids(list: &Value) -> Vec<String> {
    member_ids(list)
}

#[tokio::test]
async fn an_owner_shapes_the_tree_and_reads_it_back_nested() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let second = app
            .sub_account(&org.owner_token, &org.root, "location", "Airport")
            .await;

        let (status, tree) = app.account_tree(&org.owner_token, &org.root).await;
        assert_eq!(status, StatusCode::OK, "{tree}");
        assert_eq!(tree["account"]["id"], org.root.as_str());
        let children = tree["children"].as_array().unwrap();
        assert_eq!(children.len(), 2);
        let north = children
            .iter()
            .find(|c| c["account"]["id"] == org.group.as_str())
            .unwrap();
        assert_eq!(north["children"][0]["account"]["id"], org.location.as_str());
        assert_eq!(north["children"][0]["account"]["depth"], 2);
        assert!(children.iter().any(|c| c["account"]["id"] == second.as_str()));

        let (status, body) = app
            .update_account(
                &org.owner_token,
                &org.group,
                json!({ "name": "North Region", "phone": "+1 555 0100" }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["name"], "North Region");
        assert_eq!(body["phone"], "+1 555 0100");
        let (_, body) = app
            .update_account(&org.owner_token, &org.group, json!({ "phone": null }))
            .await;
        assert_eq!(body["phone"], Value::Null, "null clears a field");
        assert_eq!(body["name"], "North Region", "absent fields stay");
        assert!(app
            .audit_actions(&org.group)
            .await
            .contains(&"account.updated".to_string()));
    })
    .await;
}

#[tokio::test]
async fn invalid_sub_accounts_are_refused_and_change_nothing() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        for (body, field) in [
            (json!({ "name": "", "kind": "group" }), Some("name")),
            (json!({ "name": "x".repeat(101), "kind": "group" }), Some("name")),
            (json!({ "name": "Ok", "kind": "organization" }), Some("kind")),
            (json!({ "name": "Ok", "kind": "galaxy" }), None),
            (
                json!({ "name": "Ok", "kind": "group", "phone": "1".repeat(41) }),
                Some("phone"),
            ),
        ] {
            let (status, problem) = app.create_child(&org.owner_token, &org.root, body.clone()).await;
            assert_problem(status, &problem, 422, "validation-failed");
            if let Some(field) = field {
                assert_eq!(problem["errors"][0]["field"], field, "{body}");
            }
        }
        let (_, tree) = app.account_tree(&org.owner_token, &org.root).await;
        assert_eq!(tree["children"].as_array().unwrap().len(), 1, "nothing was created");
    })
    .await;
}

#[tokio::test]
async fn a_node_cannot_move_under_its_own_descendant_but_can_move_elsewhere() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (status, problem) = app.move_account(&org.owner_token, &org.group, &org.location).await;
        assert_problem(status, &problem, 422, "validation-failed");
        let (status, problem) = app.move_account(&org.owner_token, &org.group, &org.group).await;
        assert_problem(status, &problem, 422, "validation-failed");
        let (_, group) = app.account(&org.owner_token, &org.group).await;
        assert_eq!(group["parent_id"], org.root.as_str(), "nothing moved");

        let south = app.sub_account(&org.owner_token, &org.root, "group", "South").await;
        let (status, moved) = app.move_account(&org.owner_token, &org.group, &south).await;
        assert_eq!(status, StatusCode::OK, "{moved}");
        assert_eq!(moved["depth"], 2);
        let (_, location) = app.account(&org.owner_token, &org.location).await;
        assert_eq!(location["depth"], 3, "the subtree moved along");
        let (_, tree) = app.account_tree(&org.owner_token, &south).await;
        assert_eq!(
            tree["children"][0]["children"][0]["account"]["id"],
            org.location.as_str()
        );
    })
    .await;
}

#[tokio::test]
async fn membership_reaches_down_the_tree_never_up() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (_, admin) = app
            .member(&org.owner_token, "admin@example.com", &["admin"], &org.group)
            .await;

        // Down: the group and the location below it.
        let (status, _) = app.account(&admin, &org.location).await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = app
            .create_child(&admin, &org.location, json!({ "name": "Desk", "kind": "location" }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");

        // Up: the root is out of reach.
        let (status, problem) = app.account(&admin, &org.root).await;
        assert_problem(status, &problem, 403, "forbidden");
        let (status, problem) = app
            .create_child(&admin, &org.root, json!({ "name": "Nope", "kind": "group" }))
            .await;
        assert_problem(status, &problem, 403, "forbidden");

        // Users above the admin's node are not listed.
        let (status, list) = app.get("/v1/users", Some(&admin)).await;
        assert_eq!(status, StatusCode::OK);
        let listed = ids(&list);
        assert!(!listed.contains(&org.owner_id), "the owner at the root is out of reach");
        let (status, _) = app.user(&admin, &org.owner_id).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    })
    .await;
}

#[tokio::test]
async fn another_organizations_objects_answer_404_as_if_they_did_not_exist() {
    on_each_backend(|app| async move {
        let a = app.org("a@example.com").await;
        let b = app.org("b@example.com").await;
        let b_role = app.role_id(&b.owner_token, "viewer").await;
        // Each path with the foreign id in it, and that id; the same path with an id of the
        // same kind that exists nowhere must read exactly alike (status, type and detail).
        for (path, foreign) in [
            (format!("/v1/accounts/{}", b.root), &b.root),
            (format!("/v1/accounts/{}/tree", b.group), &b.group),
            (format!("/v1/accounts/{}/tree", b.root), &b.root),
            (format!("/v1/accounts/{}/billing", b.root), &b.root),
            (format!("/v1/accounts/{}/billing", b.group), &b.group),
            (format!("/v1/users/{}", b.owner_id), &b.owner_id),
            (format!("/v1/roles/{b_role}"), &b_role),
        ] {
            let (status, problem) = app.get(&path, Some(&a.owner_token)).await;
            assert_problem(status, &problem, 404, "not-found");
            let (prefix, _) = foreign.split_once('_').unwrap();
            let unknown_path = path.replace(foreign.as_str(), &format!("{prefix}_00000000000000000000000000"));
            assert_ne!(unknown_path, path, "the id itself is replaced");
            let (status, unknown) = app.get(&unknown_path, Some(&a.owner_token)).await;
            assert_problem(status, &unknown, 404, "not-found");
            assert_eq!(
                problem["detail"], unknown["detail"],
                "a foreign id reads like an unknown one: {path}"
            );
        }
        // A malformed account id in a path is just as unknown.
        for path in [
            "/v1/accounts/acc_nope",
            "/v1/accounts/nope/tree",
            "/v1/accounts/acc_nope/billing",
        ] {
            let (status, problem) = app.get(path, Some(&a.owner_token)).await;
            assert_problem(status, &problem, 404, "not-found");
        }
        let (status, problem) = app
            .update_account(&a.owner_token, &b.root, json!({ "name": "Mine now" }))
            .await;
        assert_problem(status, &problem, 404, "not-found");
        let (status, problem) = app.set_roles(&a.owner_token, &b.owner_id, &[&b_role]).await;
        assert_problem(status, &problem, 404, "not-found");
        // A role of another organization cannot be granted here either.
        let (member, _) = app.member(&a.owner_token, "m@example.com", &["viewer"], &a.root).await;
        let (status, problem) = app.set_roles(&a.owner_token, &member, &[&b_role]).await;
        assert_problem(status, &problem, 422, "validation-failed");
        let (_, b_account) = app.account(&b.owner_token, &b.root).await;
        assert_eq!(b_account["name"], "Acme", "nothing of b changed");
    })
    .await;
}

#[tokio::test]
async fn users_are_listed_with_filters_and_stable_cursor_pages() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let viewer_role = app.role_id(&org.owner_token, "viewer").await;
        let mut created = Vec::new();
        for i in 0..5 {
            let node = if i % 2 == 0 { &org.group } else { &org.location };
            let (status, body) = app
                .post(
                    "/v1/users",
                    json!({
                        "email": format!("person{i}@example.com"), "first_name": format!("Person{i}"), "last_name": "Zed",
                        "password": PASSWORD, "role_ids": [viewer_role], "account_id": node, "external_id": format!("crm-{i}"),
                    }),
                    Some(&org.owner_token),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            assert_eq!(body["user"]["must_change_password"], true);
            created.push(body["user"]["id"].as_str().unwrap().to_string());
        }

        // Pages of two, in creation order, with an insert in the middle of paging.
        let (_, page1) = app.get("/v1/users?limit=2", Some(&org.owner_token)).await;
        assert_eq!(ids(&page1), vec![org.owner_id.clone(), created[0].clone()]);
        let cursor = page1["next_cursor"].as_str().unwrap().to_string();
        app.member(&org.owner_token, "late@example.com", &["viewer"], &org.root).await;
        let (_, page2) = app.get(&format!("/v1/users?limit=2&cursor={cursor}"), Some(&org.owner_token)).await;
        assert_eq!(ids(&page2), vec![created[1].clone(), created[2].clone()]);
        let (_, page3) =
            app.get(&format!("/v1/users?limit=3&cursor={}", page2["next_cursor"].as_str().unwrap()), Some(&org.owner_token)).await;
        assert_eq!(ids(&page3)[..2], [created[3].clone(), created[4].clone()]);
        assert_eq!(page3["items"].as_array().unwrap().len(), 3, "the late insert comes last");
        assert_eq!(page3["next_cursor"], Value::Null);

        // Filters.
        let (_, at_location) = app.get(&format!("/v1/users?node={}", org.location), Some(&org.owner_token)).await;
        assert_eq!(ids(&at_location), vec![created[1].clone(), created[3].clone()]);
        let (_, by_text) = app.get("/v1/users?q=PERSON3", Some(&org.owner_token)).await;
        assert_eq!(ids(&by_text), vec![created[3].clone()]);
        let (_, by_ext) = app.get("/v1/users?external_id=crm-4", Some(&org.owner_token)).await;
        assert_eq!(ids(&by_ext), vec![created[4].clone()]);
        let owner_role = app.role_id(&org.owner_token, "owner").await;
        let (_, owners) = app.get(&format!("/v1/users?role={owner_role}"), Some(&org.owner_token)).await;
        assert_eq!(ids(&owners), vec![org.owner_id.clone()]);
        let (_, active) = app.get("/v1/users?status=deactivated", Some(&org.owner_token)).await;
        assert!(ids(&active).is_empty());

        // Bad filters are problems.
        for bad in ["limit=0", "limit=500", "cursor=garbage", "status=asleep", "role=rol_nope", "node=acc_nope"] {
            let (status, problem) = app.get(&format!("/v1/users?{bad}"), Some(&org.owner_token)).await;
            assert_problem(status, &problem, 422, "validation-failed");
        }
    })
    .await;
}

#[tokio::test]
async fn a_created_user_must_change_the_initial_password_first() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let viewer = app.role_id(&org.owner_token, "viewer").await;
        let (status, body) = app
            .post(
                "/v1/users",
                json!({ "email": "new@example.com", "username": "newbie", "first_name": "New", "last_name": "Person",
                        "password": PASSWORD, "role_ids": [viewer],
                        "preferences": { "default_landing_page": "contacts", "daily_email_reminders": true } }),
                Some(&org.owner_token),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["user"]["preferences"]["default_landing_page"], "contacts");
        assert_eq!(body["user"]["preferences"]["daily_email_reminders"], true);
        assert_eq!(
            body["membership"]["account_id"],
            org.root.as_str(),
            "defaults to the creator's node"
        );

        let (status, login) = app.log_in("newbie", PASSWORD).await;
        assert_eq!(status, StatusCode::OK);
        let access = token(&login);
        let (status, me) = app.get("/v1/me", Some(&access)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(me["user"]["must_change_password"], true);
        let (status, problem) = app.get("/v1/users", Some(&access)).await;
        assert_problem(status, &problem, 403, "password-change-required");
        // Reading roles needs a usable account too (a 403 the document lists for both).
        let (status, problem) = app.roles(&access).await;
        assert_problem(status, &problem, 403, "password-change-required");
        let (status, problem) = app.role(&access, &viewer).await;
        assert_problem(status, &problem, 403, "password-change-required");

        let (status, _) = app
            .post(
                "/v1/me/password",
                json!({ "current_password": PASSWORD, "new_password": MEMBER_PASSWORD }),
                Some(&access),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = app.get("/v1/users", Some(&access)).await;
        assert_eq!(status, StatusCode::OK);
    })
    .await;
}

#[tokio::test]
async fn creating_a_user_refuses_taken_identities_and_bad_input() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let viewer = app.role_id(&org.owner_token, "viewer").await;
        let make = |email: &str, ext: &str| {
            json!({ "email": email, "first_name": "A", "last_name": "B", "password": PASSWORD, "role_ids": [viewer.clone()], "external_id": ext })
        };
        let (status, _) = app.post("/v1/users", make("one@example.com", "ext-1"), Some(&org.owner_token)).await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, problem) = app.post("/v1/users", make("ONE@example.com", "ext-2"), Some(&org.owner_token)).await;
        assert_problem(status, &problem, 409, "email-taken");
        let (status, problem) = app.post("/v1/users", make("two@example.com", "ext-1"), Some(&org.owner_token)).await;
        assert_problem(status, &problem, 409, "external-id-taken");
        assert!(problem["detail"].as_str().unwrap().contains("ext-1"));

        let (status, problem) = app
            .post(
                "/v1/users",
                json!({ "email": "bad", "first_name": "", "last_name": "B", "password": "short", "role_ids": [] }),
                Some(&org.owner_token),
            )
            .await;
        assert_problem(status, &problem, 422, "validation-failed");
        let (status, problem) = app
            .post(
                "/v1/users",
                json!({ "email": "three@example.com", "first_name": "A", "last_name": "B", "password": PASSWORD, "role_ids": ["rol_01jd3k6x0n6qg8z7v2f4t9b1c5"] }),
                Some(&org.owner_token),
            )
            .await;
        assert_problem(status, &problem, 422, "validation-failed");
        assert_eq!(problem["errors"][0]["field"], "role_ids[0]");
        let (status, _) = app.log_in("three@example.com", PASSWORD).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "nothing was created");
    })
    .await;
}

#[tokio::test]
async fn nobody_grants_what_they_do_not_hold_and_admins_do_not_touch_owners() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (admin_id, admin) = app
            .member(&org.owner_token, "admin@example.com", &["admin"], &org.root)
            .await;
        let (member, _) = app
            .member(&org.owner_token, "member@example.com", &["viewer"], &org.root)
            .await;
        let owner_role = app.role_id(&org.owner_token, "owner").await;
        let admin_role = app.role_id(&org.owner_token, "admin").await;

        let (status, problem) = app.set_roles(&admin, &member, &[&owner_role]).await;
        assert_problem(status, &problem, 403, "forbidden");
        let (status, problem) = app.set_roles(&admin, &org.owner_id, &[&admin_role]).await;
        assert_problem(status, &problem, 403, "forbidden");
        let (status, problem) = app.set_roles(&admin, &admin_id, &[&owner_role]).await;
        assert_problem(status, &problem, 403, "forbidden");

        // A custom role holding a permission the admin lacks cannot be granted by the admin.
        let (status, custom) = app
            .create_role(&org.owner_token, "Transferrer", &["account.transfer"])
            .await;
        assert_eq!(status, StatusCode::CREATED, "{custom}");
        let (status, problem) = app.set_roles(&admin, &member, &[custom["id"].as_str().unwrap()]).await;
        assert_problem(status, &problem, 403, "forbidden");
        assert!(problem["detail"].as_str().unwrap().contains("account.transfer"));
        // …nor created by the admin.
        let (status, problem) = app.create_role(&admin, "Sneaky", &["owners.manage"]).await;
        assert_problem(status, &problem, 403, "forbidden");

        // What the admin holds, the admin may grant, several roles at once.
        let standard = app.role_id(&org.owner_token, "standard").await;
        let agent = app.role_id(&org.owner_token, "messaging_agent").await;
        let (status, body) = app.set_roles(&admin, &member, &[&standard, &agent]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["membership"]["roles"].as_array().unwrap().len(), 2);
        let (_, read_back) = app.user(&admin, &member).await;
        assert_eq!(read_back["membership"]["roles"].as_array().unwrap().len(), 2);
    })
    .await;
}

#[tokio::test]
async fn the_last_owner_cannot_be_demoted() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let admin_role = app.role_id(&org.owner_token, "admin").await;
        let (status, problem) = app.set_roles(&org.owner_token, &org.owner_id, &[&admin_role]).await;
        assert_problem(status, &problem, 409, "last-owner");
        let (_, me) = app.get("/v1/me", Some(&org.owner_token)).await;
        assert_eq!(me["membership"]["roles"][0]["builtin"], "owner");
    })
    .await;
}

#[tokio::test]
async fn two_owners_demoting_each_other_at_once_leave_one_owner() {
    on_each_backend(|app| async move {
        for round in 0..3 {
            let org = app.org(&format!("owner{round}@example.com")).await;
            let (second_id, second) = app
                .member(
                    &org.owner_token,
                    &format!("second{round}@example.com"),
                    &["owner"],
                    &org.root,
                )
                .await;
            let admin_role = app.role_id(&org.owner_token, "admin").await;
            let demoted = [admin_role.as_str()];
            let first_demotes_second = app.set_roles(&org.owner_token, &second_id, &demoted);
            let second_demotes_first = app.set_roles(&second, &org.owner_id, &demoted);
            let ((s1, b1), (s2, b2)) = tokio::join!(first_demotes_second, second_demotes_first);
            let statuses = [s1, s2];
            assert_eq!(
                statuses.iter().filter(|s| **s == StatusCode::OK).count(),
                1,
                "exactly one demotion wins: {s1} {b1} / {s2} {b2}"
            );
            // The loser either hits the last-owner rule (409) or, if the winner committed
            // before the loser's request was authorized, is no longer an owner at all (403).
            assert!(
                statuses.contains(&StatusCode::CONFLICT) || statuses.contains(&StatusCode::FORBIDDEN),
                "{s1} {s2}"
            );
            let owner_role = app.role_id(&org.owner_token, "owner").await;
            let token = if s1 == StatusCode::OK {
                &org.owner_token
            } else {
                &second
            };
            let (_, owners) = app.get(&format!("/v1/users?role={owner_role}"), Some(token)).await;
            assert_eq!(owners["items"].as_array().unwrap().len(), 1, "one owner remains");
        }
    })
    .await;
}

#[tokio::test]
async fn ownership_can_be_transferred_by_the_owner_only() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (admin_id, admin) = app
            .member(&org.owner_token, "admin@example.com", &["admin"], &org.group)
            .await;
        let (status, problem) = app.transfer_ownership(&admin, &admin_id).await;
        assert_problem(status, &problem, 403, "forbidden");

        let (status, body) = app.transfer_ownership(&org.owner_token, &admin_id).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["owner"]["membership"]["roles"][0]["builtin"], "owner");
        assert_eq!(body["owner"]["membership"]["account_id"], org.root.as_str());
        assert_eq!(body["previous_owner"]["membership"]["roles"][0]["builtin"], "admin");
        let (_, me) = app.get("/v1/me", Some(&admin)).await;
        assert!(me["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("account.transfer")));
        assert!(app
            .audit_actions(&org.root)
            .await
            .contains(&"account.ownership_transferred".to_string()));
    })
    .await;
}

#[tokio::test]
async fn a_membership_moves_within_reach_only() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (admin_id, admin) = app
            .member(&org.owner_token, "admin@example.com", &["admin"], &org.group)
            .await;
        let (viewer, _) = app
            .member(&org.owner_token, "viewer@example.com", &["viewer"], &org.group)
            .await;
        let (status, body) = app.move_user(&admin, &viewer, &org.location).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["membership"]["account_id"], org.location.as_str());
        let (status, problem) = app.move_user(&admin, &viewer, &org.root).await;
        assert_problem(status, &problem, 403, "forbidden");
        let (status, problem) = app.move_user(&admin, &admin_id, "acc_nope").await;
        assert_problem(status, &problem, 404, "not-found");
    })
    .await;
}

#[tokio::test]
async fn closing_a_sub_account_ends_access_below_it_and_keeps_its_data() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (_, at_location) = app
            .member(&org.owner_token, "loc@example.com", &["standard"], &org.location)
            .await;
        let (status, _) = app.get("/v1/me", Some(&at_location)).await;
        assert_eq!(status, StatusCode::OK);

        let (status, body) = app.close_account(&org.owner_token, &org.group).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "closed");
        let (_, location) = app.account(&org.owner_token, &org.location).await;
        assert_eq!(location["status"], "closed", "the subtree closes too");
        assert_eq!(location["name"], "Harbour St", "data is kept");

        let (status, _) = app.get("/v1/me", Some(&at_location)).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "memberships below stop granting access"
        );
        let (status, problem) = app.log_in("loc@example.com", MEMBER_PASSWORD).await;
        assert_problem(status, &problem, 403, "forbidden");

        let (status, problem) = app.close_account(&org.owner_token, &org.root).await;
        assert_problem(status, &problem, 409, "root-account");
        let (status, problem) = app
            .create_child(
                &org.owner_token,
                &org.group,
                json!({ "name": "Late", "kind": "location" }),
            )
            .await;
        assert_problem(status, &problem, 409, "account-closed");
    })
    .await;
}

#[tokio::test]
async fn the_billing_profile_needs_account_billing() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (_, standard) = app.member(&org.owner_token, "std@example.com", &["standard"], &org.root).await;
        let (status, body) = app.billing(&org.owner_token, &org.root).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["billing_email"], "owner@example.com");

        let update = json!({ "billing_email": "billing@example.com", "plan": "team", "seat_price_cents": 1500, "currency": "EUR", "cycle_start": "2026-12-01" });
        let (status, problem) = app.update_billing(&standard, &org.root, update.clone()).await;
        assert_problem(status, &problem, 403, "forbidden");
        let (status, problem) = app.billing(&standard, &org.root).await;
        assert_problem(status, &problem, 403, "forbidden");

        let (status, body) = app.update_billing(&org.owner_token, &org.root, update).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["seat_price_cents"], 1500);
        for (field, bad) in [("currency", json!("eur")), ("cycle_start", json!("tomorrow")), ("seat_price_cents", json!(-1))] {
            let mut update = json!({ "plan": "team", "seat_price_cents": 1500, "currency": "EUR" });
            update[field] = bad;
            let (status, problem) = app.update_billing(&org.owner_token, &org.root, update).await;
            assert_problem(status, &problem, 422, "validation-failed");
        }
        let (_, body) = app.billing(&org.owner_token, &org.root).await;
        assert_eq!(body["currency"], "EUR", "refused updates changed nothing");
        let (status, problem) = app.billing(&org.owner_token, &org.group).await;
        assert_problem(status, &problem, 404, "not-found");
    })
    .await;
}

#[tokio::test]
async fn custom_roles_can_be_created_changed_and_deleted_when_unused() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (status, role) = app
            .create_role(&org.owner_token, "Front desk", &["contacts.read_all", "messages.send"])
            .await;
        assert_eq!(status, StatusCode::CREATED, "{role}");
        assert_eq!(role["builtin"], Value::Null);
        let role_id = role["id"].as_str().unwrap().to_string();

        let (status, problem) = app.create_role(&org.owner_token, "Front desk", &[]).await;
        assert_problem(status, &problem, 409, "role-name-taken");
        let (status, problem) = app.create_role(&org.owner_token, "Typo", &["contacts.fly"]).await;
        assert_problem(status, &problem, 422, "validation-failed");
        assert_eq!(problem["errors"][0]["field"], "permissions[0]");

        let (status, role) = app
            .update_role(
                &org.owner_token,
                &role_id,
                json!({ "name": "Reception", "permissions": ["contacts.read_all"] }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{role}");
        assert_eq!(role["name"], "Reception");
        assert_eq!(role["permissions"], json!(["contacts.read_all"]));

        let (user, member_token) = app
            .member(&org.owner_token, "desk@example.com", &["viewer"], &org.root)
            .await;
        let (status, _) = app.set_roles(&org.owner_token, &user, &[&role_id]).await;
        assert_eq!(status, StatusCode::OK);
        let (_, me) = app.get("/v1/me", Some(&member_token)).await;
        assert_eq!(
            me["permissions"],
            json!(["contacts.read_all"]),
            "custom permissions apply"
        );

        let (status, problem) = app.delete_role(&org.owner_token, &role_id).await;
        assert_problem(status, &problem, 409, "role-in-use");
        assert!(
            problem["detail"].as_str().unwrap().contains("1 membership"),
            "{problem}"
        );

        let viewer = app.role_id(&org.owner_token, "viewer").await;
        let (status, body) = app.set_roles(&org.owner_token, &user, &[&viewer]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, _) = app.delete_role(&org.owner_token, &role_id).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = app.role(&org.owner_token, &role_id).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    })
    .await;
}

#[tokio::test]
async fn the_role_list_shows_each_roles_permissions_and_holders() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let mut custom = Vec::new();
        for (name, permissions) in [
            ("Front desk", vec!["contacts.read_all", "messages.send"]),
            ("Auditor", vec!["audit.read"]),
            ("Empty", vec![]),
        ] {
            let (status, role) = app.create_role(&org.owner_token, name, &permissions).await;
            assert_eq!(status, StatusCode::CREATED, "{role}");
            assert_eq!(role["member_count"], 0);
            custom.push(role["id"].as_str().unwrap().to_string());
        }
        let (user, _) = app
            .member(&org.owner_token, "desk@example.com", &["viewer"], &org.root)
            .await;
        let viewer = app.role_id(&org.owner_token, "viewer").await;
        // The same role named twice counts once.
        let (status, body) = app
            .set_roles(
                &org.owner_token,
                &user,
                &[
                    &custom[0],
                    &viewer,
                    &custom[0].to_uppercase().replace("ROL_", "rol_"),
                    &custom[1],
                ],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");

        let (status, roles) = app.roles(&org.owner_token).await;
        assert_eq!(status, StatusCode::OK, "{roles}");
        let find = |id: &str| {
            roles
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["id"] == id)
                .cloned()
                .unwrap_or_else(|| panic!("{id} missing from {roles}"))
        };
        let desk = find(&custom[0]);
        assert_eq!(desk["permissions"], json!(["contacts.read_all", "messages.send"]));
        assert_eq!(desk["member_count"], 1);
        assert_eq!(find(&custom[1])["permissions"], json!(["audit.read"]));
        assert_eq!(find(&custom[1])["member_count"], 1);
        assert_eq!(find(&custom[2])["permissions"], json!([]));
        assert_eq!(find(&custom[2])["member_count"], 0);
        assert_eq!(find(&viewer)["member_count"], 1);
        let owner = app.role_id(&org.owner_token, "owner").await;
        assert_eq!(find(&owner)["member_count"], 1);
        assert!(find(&owner)["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("roles.manage")));
        let (status, one) = app.role(&org.owner_token, &custom[0]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(one, desk);
    })
    .await;
}

#[tokio::test]
async fn malformed_role_ids_and_fields_are_refused_before_anything_changes() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (status, problem) = app.role(&org.owner_token, "rol_nope").await;
        assert_problem(status, &problem, 404, "not-found");
        let (status, problem) = app
            .update_role(&org.owner_token, "rol_nope", json!({ "name": "X" }))
            .await;
        assert_problem(status, &problem, 404, "not-found");
        let (status, problem) = app.delete_role(&org.owner_token, "nope").await;
        assert_problem(status, &problem, 404, "not-found");

        // The name and the description are reported together.
        let (status, problem) = app
            .post(
                "/v1/roles",
                json!({ "name": "  ", "description": "d".repeat(501), "permissions": ["contacts.fly"] }),
                Some(&org.owner_token),
            )
            .await;
        assert_problem(status, &problem, 422, "validation-failed");
        let fields: Vec<&str> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, ["description", "name"], "{problem}");
        let (_, roles) = app.roles(&org.owner_token).await;
        assert_eq!(roles.as_array().unwrap().len(), 7);
    })
    .await;
}

#[tokio::test]
async fn built_in_roles_cannot_be_edited_or_deleted() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (_, roles) = app.roles(&org.owner_token).await;
        let builtins: Vec<&str> = roles
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["builtin"].as_str())
            .collect();
        assert_eq!(builtins.len(), 7);
        for key in [
            "owner",
            "admin",
            "standard",
            "limited",
            "guest",
            "messaging_agent",
            "viewer",
        ] {
            assert!(builtins.contains(&key), "{key} missing");
        }
        let viewer = app.role_id(&org.owner_token, "viewer").await;
        let (status, problem) = app
            .update_role(&org.owner_token, &viewer, json!({ "name": "Watcher" }))
            .await;
        assert_problem(status, &problem, 409, "builtin-role");
        let (status, problem) = app.delete_role(&org.owner_token, &viewer).await;
        assert_problem(status, &problem, 409, "builtin-role");

        let (status, catalog) = app.get("/v1/permissions", None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(catalog
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "account.billing"));
    })
    .await;
}

#[tokio::test]
async fn a_user_in_several_organizations_picks_one_and_switches_without_a_password() {
    on_each_backend(|app| async move {
        let a = app.org("a@example.com").await;
        let b = app.org("b@example.com").await;
        let (_, in_a) = app.member(&a.owner_token, "both@example.com", &["viewer"], &a.root).await;
        // Into b through the API: b invites the address by link, the user accepts logged in.
        let standard = app.role_id(&b.owner_token, "standard").await;
        let (status, invite) = app
            .create_invite(&b.owner_token, "both@example.com", &[&standard], false)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{invite}");
        let link = link_token(invite["registration_url"].as_str().expect("a copy-link invite"));
        let (status, accepted) = app.accept_invitation(json!({ "token": link }), Some(&in_a)).await;
        assert_eq!(status, StatusCode::OK, "{accepted}");
        assert_eq!(accepted["account"]["id"], b.root.as_str());

        let (status, login) = app.log_in("both@example.com", MEMBER_PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "{login}");
        assert_eq!(login["account_selection_required"], true);
        assert_eq!(login["account"], Value::Null);
        assert_eq!(login["accounts"].as_array().unwrap().len(), 2);
        let picker = token(&login);
        let (status, me) = app.get("/v1/me", Some(&picker)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(me["account"], Value::Null);
        assert_eq!(me["permissions"], json!([]));
        let (status, problem) = app.get("/v1/users", Some(&picker)).await;
        assert_problem(status, &problem, 403, "forbidden");
        let (status, mine) = app.my_accounts(&picker).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(mine.as_array().unwrap().len(), 2);

        let (status, switched) = app.post("/v1/auth/switch-account", json!({ "account_id": b.root }), Some(&picker)).await;
        assert_eq!(status, StatusCode::OK, "{switched}");
        let in_b = token(&switched);
        let (_, me) = app.get("/v1/me", Some(&in_b)).await;
        assert_eq!(me["account"]["id"], b.root.as_str());
        assert!(me["permissions"].as_array().unwrap().contains(&json!("contacts.write")), "standard in b");
        let (status, _) = app.get("/v1/me", Some(&picker)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "the token for the old scope stops working");

        let (status, switched) = app.post("/v1/auth/switch-account", json!({ "account_id": a.root }), Some(&in_b)).await;
        assert_eq!(status, StatusCode::OK);
        let (_, me) = app.get("/v1/me", Some(&token(&switched))).await;
        assert_eq!(me["account"]["id"], a.root.as_str());

        // Picking at login.
        let (status, direct) = app
            .post("/v1/auth/login", json!({ "identifier": "both@example.com", "password": MEMBER_PASSWORD, "account_id": b.root }), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(direct["account"]["id"], b.root.as_str());
        let (status, problem) = app
            .post("/v1/auth/login", json!({ "identifier": "both@example.com", "password": MEMBER_PASSWORD, "account_id": "acc_01jd3k6x0n6qg8z7v2f4t9b1c5" }), None)
            .await;
        assert_problem(status, &problem, 404, "not-found");
    })
    .await;
}

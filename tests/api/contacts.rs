//! Contacts (R12): visibility per role, validation, the assignee's state, bulk reassign and
//! notices by subscription, on both backends.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use steward::db::repo;

fn id(body: &Value) -> String {
    body["id"].as_str().expect("an id").to_string()
}

/// The ids of a page of contacts, sorted.
fn ids(page: &Value) -> Vec<String> {
    let mut ids: Vec<String> = page["items"]
        .as_array()
        .expect("a page of contacts")
        .iter()
        .map(|c| c["id"].as_str().expect("contact id").to_string())
        .collect();
    ids.sort();
    ids
}

fn sorted(list: &[&String]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// Creates a contact as `token` at `account`; `extra` adds fields to a plain name.
async fn contact(app: &TestApp, token: &str, account: &str, name: &str, extra: Value) -> String {
    let mut body = json!({ "name": name });
    if let (Some(map), Value::Object(more)) = (body.as_object_mut(), extra) {
        map.extend(more);
    }
    let (status, created) = app.create_contact(token, account, body).await;
    assert_eq!(status, StatusCode::CREATED, "create contact {name}: {created}");
    id(&created)
}

/// Deactivates the user's membership (`POST /v1/users/{id}/deactivate`) or archives them
/// (`DELETE /v1/users/{id}`), as an owner would.
async fn leave(app: &TestApp, owner: &str, user: &str, archive: bool) {
    let (status, body) = if archive {
        app.delete(&format!("/v1/users/{user}"), Some(owner)).await
    } else {
        app.post(&format!("/v1/users/{user}/deactivate"), json!({}), Some(owner))
            .await
    };
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn each_role_sees_and_changes_only_the_contacts_it_should() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let owner = &org.owner_token;
        let south = app.sub_account(owner, &org.root, "group", "South").await;
        let (_, admin) = app.member(owner, "admin@example.com", &["admin"], &org.root).await;
        let (_, standard) = app
            .member(owner, "standard@example.com", &["standard"], &org.group)
            .await;
        let (limited_id, limited) = app.member(owner, "limited@example.com", &["limited"], &org.group).await;
        let (guest_id, guest) = app.member(owner, "guest@example.com", &["guest"], &org.group).await;
        let (_, viewer) = app.member(owner, "viewer@example.com", &["viewer"], &org.group).await;
        let (_, agent) = app
            .member(owner, "agent@example.com", &["messaging_agent"], &org.group)
            .await;

        let at_root = contact(&app, owner, &org.root, "At the root", json!({})).await;
        let at_south = contact(&app, owner, &south, "In the sibling", json!({})).await;
        let at_location = contact(&app, owner, &org.location, "At the location", json!({})).await;
        let for_limited = contact(
            &app,
            owner,
            &org.group,
            "Limited's",
            json!({ "assigned_user_id": limited_id }),
        )
        .await;
        let for_guest = contact(
            &app,
            owner,
            &org.group,
            "Guest's",
            json!({ "assigned_user_id": guest_id }),
        )
        .await;

        let everything = sorted(&[&at_root, &at_south, &at_location, &for_limited, &for_guest]);
        let subtree = sorted(&[&at_location, &for_limited, &for_guest]);
        for (who, token, expected) in [
            ("owner", owner, &everything),
            ("admin at the root", &admin, &everything),
            ("standard at the group", &standard, &subtree),
            ("viewer at the group", &viewer, &subtree),
            ("limited", &limited, &vec![for_limited.clone()]),
            ("guest", &guest, &vec![for_guest.clone()]),
        ] {
            let (status, page) = app.contacts(token, "").await;
            assert_eq!(status, StatusCode::OK, "{who}: {page}");
            assert_eq!(&ids(&page), expected, "{who} lists");
        }
        let (status, body) = app.contacts(&agent, "").await;
        assert_problem(status, &body, 403, "forbidden");
        let (status, body) = app.contact(&agent, &for_limited).await;
        assert_problem(status, &body, 403, "forbidden");

        // A member at the group does not see the root's or a sibling's contacts: 404 as if they
        // did not exist (R2); limited and guest users see nothing not assigned to them.
        for (token, hidden) in [
            (&standard, &at_root),
            (&standard, &at_south),
            (&viewer, &at_root),
            (&limited, &at_location),
            (&limited, &for_guest),
            (&guest, &for_limited),
        ] {
            let (status, body) = app.contact(token, hidden).await;
            assert_problem(status, &body, 404, "not-found");
            let (status, body) = app.update_contact(token, hidden, json!({ "company": "X" })).await;
            assert_problem(status, &body, 404, "not-found");
        }
        let (status, seen) = app.contact(&limited, &for_limited).await;
        assert_eq!(status, StatusCode::OK, "{seen}");
        assert_eq!(seen["assignee"]["id"], limited_id.as_str());
        assert_eq!(seen["assignee"]["state"], "active");

        // Writing: standard and limited (on their own) may; viewer and guest may not.
        let (status, body) = app
            .update_contact(&standard, &at_location, json!({ "company": "Acme" }))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["company"], "Acme");
        let (status, body) = app
            .update_contact(&limited, &for_limited, json!({ "phone": "+1 555 0100" }))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        for (token, target) in [(&viewer, &at_location), (&guest, &for_guest)] {
            let (status, body) = app.update_contact(token, target, json!({ "company": "X" })).await;
            assert_problem(status, &body, 403, "forbidden");
        }
        // A limited user keeps their contacts: they cannot give them away or unassign them,
        // and what they create is theirs.
        for assignee in [json!(null), json!(guest_id)] {
            let (status, body) = app
                .update_contact(&limited, &for_limited, json!({ "assigned_user_id": assignee }))
                .await;
            assert_problem(status, &body, 403, "forbidden");
        }
        let (status, created) = app
            .create_contact(&limited, &org.group, json!({ "name": "Mine" }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(created["assignee"]["id"], limited_id.as_str());
        let (status, body) = app
            .create_contact(
                &limited,
                &org.group,
                json!({ "name": "Not mine", "assigned_user_id": null }),
            )
            .await;
        assert_problem(status, &body, 403, "forbidden");
        let (status, body) = app.create_contact(&guest, &org.group, json!({ "name": "Nope" })).await;
        assert_problem(status, &body, 403, "forbidden");
        let (status, body) = app
            .create_contact(&standard, &org.root, json!({ "name": "Above" }))
            .await;
        assert_problem(status, &body, 403, "forbidden");

        // Deleting: owners and admins only; standard users cannot (PRODUCT.md).
        for token in [&standard, &limited, &viewer] {
            let (status, body) = app.delete_contact(token, &for_limited).await;
            assert_problem(status, &body, 403, "forbidden");
        }
        let (status, body) = app.delete_contact(&admin, &at_south).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        let (status, body) = app.contact(owner, &at_south).await;
        assert_problem(status, &body, 404, "not-found");
        assert_eq!(
            app.audit_actions(&at_south).await,
            vec!["contact.created", "contact.deleted"]
        );
        assert_eq!(
            app.audit_actions(&at_location).await,
            vec!["contact.created", "contact.updated"]
        );

        // Another organization sees none of it: 404, never 403 (R1).
        let other = app.org("other@example.com").await;
        let (status, body) = app.contact(&other.owner_token, &for_limited).await;
        assert_problem(status, &body, 404, "not-found");
        let (status, body) = app.delete_contact(&other.owner_token, &for_limited).await;
        assert_problem(status, &body, 404, "not-found");
        let (status, body) = app
            .create_contact(&other.owner_token, &org.group, json!({ "name": "Intruder" }))
            .await;
        assert_problem(status, &body, 404, "not-found");
        let (status, page) = app.contacts(&other.owner_token, "").await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(ids(&page).is_empty(), "{page}");
    })
    .await;
}

#[tokio::test]
async fn bad_contact_input_is_refused_and_changes_nothing() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let owner = &org.owner_token;
        let fields = |body: &Value| -> Vec<(String, String)> {
            body["errors"]
                .as_array()
                .map(|errors| {
                    errors
                        .iter()
                        .map(|e| (e["field"].as_str().unwrap().to_string(), e["code"].as_str().unwrap().to_string()))
                        .collect()
                })
                .unwrap_or_default()
        };
        for (body, field, code) in [
            (json!({ "name": "A", "subscriptions": ["invoices"] }), "email", "required_with_subscriptions"),
            (json!({ "name": "A", "email": "not an email" }), "email", "email"),
            (json!({ "name": "A", "phone": "call me" }), "phone", "phone"),
            (json!({ "name": "A", "phone": "12" }), "phone", "length"),
            (json!({ "name": "" }), "name", "length"),
            (json!({ "name": "n".repeat(201) }), "name", "length"),
            (json!({ "name": "A", "company": "c".repeat(201) }), "company", "length"),
            (json!({ "name": "A", "email": "a@example.com", "subscriptions": ["invoices", "gossip"] }), "subscriptions[1]", "invalid"),
            (json!({ "name": "A", "nickname": "Al" }), "nickname", "unknown_field"),
            (json!({ "name": "A\u{0}B" }), "name", "control_character"),
        ] {
            let (status, problem) = app.create_contact(owner, &org.group, body.clone()).await;
            assert_problem(status, &problem, 422, "validation-failed");
            assert!(
                fields(&problem).contains(&(field.to_string(), code.to_string())),
                "{body} should fail on {field} ({code}): {problem}"
            );
        }
        let (status, page) = app.contacts(owner, "").await;
        assert_eq!(status, StatusCode::OK);
        assert!(ids(&page).is_empty(), "bad input created nothing: {page}");

        let subscribed = contact(
            &app,
            owner,
            &org.group,
            "Grace",
            json!({ "email": "grace@example.com", "phone": "+44 (0)20 7946-0000", "subscriptions": ["service_notices", "invoices", "invoices"] }),
        )
        .await;
        let (_, seen) = app.contact(owner, &subscribed).await;
        assert_eq!(seen["subscriptions"], json!(["invoices", "service_notices"]), "each once, in order");
        let (status, problem) = app.update_contact(owner, &subscribed, json!({ "email": null })).await;
        assert_problem(status, &problem, 422, "validation-failed");
        assert_eq!(fields(&problem), vec![("email".to_string(), "required_with_subscriptions".to_string())]);
        let (status, problem) = app.update_contact(owner, &subscribed, json!({ "phone": "x" })).await;
        assert_problem(status, &problem, 422, "validation-failed");
        let (_, unchanged) = app.contact(owner, &subscribed).await;
        assert_eq!(unchanged, seen, "refused changes change nothing");

        // Absent leaves a field as it is; null clears it.
        let (status, changed) = app
            .update_contact(owner, &subscribed, json!({ "subscriptions": null, "email": null, "phone": null }))
            .await;
        assert_eq!(status, StatusCode::OK, "{changed}");
        assert_eq!(changed["subscriptions"], json!([]));
        assert_eq!(changed["email"], Value::Null);
        assert_eq!(changed["phone"], Value::Null);
        assert_eq!(changed["name"], "Grace");

        // Ids: malformed and unknown answer 404 alike; a malformed filter is a 422.
        for bad in ["con_nope", "usr_00000000000000000000000000", "con_00000000000000000000000000"] {
            let (status, body) = app.contact(owner, bad).await;
            assert_problem(status, &body, 404, "not-found");
        }
        let (status, body) = app.contacts(owner, "assignee_state=gone").await;
        assert_problem(status, &body, 422, "validation-failed");
        let (status, body) = app.contacts(owner, "q=a%00b").await;
        assert_problem(status, &body, 422, "validation-failed");
        let (status, body) = app.contacts(owner, "account_id=acc_00000000000000000000000000").await;
        assert_problem(status, &body, 422, "validation-failed");

        // `q` matches name or email, case-insensitively, with LIKE's wildcards taken literally.
        contact(&app, owner, &org.group, "100% Ada_Lovelace", json!({})).await;
        for (q, expected) in [("grace", 1), ("%25", 1), ("ADA_", 1), ("_", 1), ("nobody", 0)] {
            let (status, page) = app.contacts(owner, &format!("q={q}")).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            assert_eq!(ids(&page).len(), expected, "q={q}: {page}");
        }
    })
    .await;
}

#[tokio::test]
async fn every_contact_shows_whether_its_assignee_is_still_active() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let owner = &org.owner_token;
        let (active, _) = app.member(owner, "active@example.com", &["standard"], &org.group).await;
        let (away, _) = app.member(owner, "away@example.com", &["limited"], &org.group).await;
        let (gone, _) = app.member(owner, "gone@example.com", &["standard"], &org.group).await;
        let c_active = contact(&app, owner, &org.group, "A", json!({ "assigned_user_id": active })).await;
        let c_away = contact(&app, owner, &org.group, "B", json!({ "assigned_user_id": away })).await;
        let c_gone = contact(&app, owner, &org.location, "C", json!({ "assigned_user_id": gone })).await;
        let c_nobody = contact(&app, owner, &org.group, "D", json!({})).await;

        leave(&app, owner, &away, false).await;
        leave(&app, owner, &gone, true).await;

        for (contact, state) in [(&c_active, "active"), (&c_away, "deactivated"), (&c_gone, "archived")] {
            let (status, seen) = app.contact(owner, contact).await;
            assert_eq!(status, StatusCode::OK, "{seen}");
            assert_eq!(seen["assignee"]["state"], state, "{seen}");
        }
        let (_, seen) = app.contact(owner, &c_nobody).await;
        assert_eq!(seen["assignee"], Value::Null);

        let queries: Vec<(String, Vec<String>)> = vec![
            ("assignee_not_active=true".into(), sorted(&[&c_away, &c_gone])),
            (
                "assignee_not_active=false".into(),
                sorted(&[&c_active, &c_away, &c_gone, &c_nobody]),
            ),
            ("assignee_state=deactivated".into(), vec![c_away.clone()]),
            ("assignee_state=archived".into(), vec![c_gone.clone()]),
            ("assignee_state=active".into(), vec![c_active.clone()]),
            ("assignee_state=unassigned".into(), vec![c_nobody.clone()]),
            (format!("assigned_to={gone}"), vec![c_gone.clone()]),
            (format!("account_id={}", org.location), vec![c_gone.clone()]),
            (
                format!("assignee_not_active=true&account_id={}", org.location),
                vec![c_gone.clone()],
            ),
        ];
        for (query, expected) in queries {
            let (status, page) = app.contacts(owner, &query).await;
            assert_eq!(status, StatusCode::OK, "{query}: {page}");
            assert_eq!(ids(&page), expected, "{query}");
        }
        let (status, body) = app
            .contacts(owner, "assignee_not_active=true&assignee_state=archived")
            .await;
        assert_problem(status, &body, 422, "validation-failed");

        // Nobody inactive is given a contact.
        for user in [&away, &gone] {
            let (status, body) = app
                .create_contact(owner, &org.group, json!({ "name": "E", "assigned_user_id": user }))
                .await;
            assert_problem(status, &body, 409, "assignee-unavailable");
        }
        // Nor someone who cannot see the contact's node, or a user of another organization.
        let (south_member, _) = app
            .member(owner, "south@example.com", &["standard"], &org.location)
            .await;
        let (status, body) = app
            .update_contact(owner, &c_nobody, json!({ "assigned_user_id": south_member }))
            .await;
        assert_problem(status, &body, 409, "assignee-unavailable");
        let other = app.org("other@example.com").await;
        let (status, body) = app
            .update_contact(owner, &c_nobody, json!({ "assigned_user_id": other.owner_id }))
            .await;
        assert_problem(status, &body, 404, "not-found");
    })
    .await;
}

#[tokio::test]
async fn reassign_moves_only_the_chosen_contacts_all_at_once() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let owner = &org.owner_token;
        let (from, _) = app.member(owner, "from@example.com", &["standard"], &org.root).await;
        let (to, _) = app.member(owner, "to@example.com", &["standard"], &org.root).await;
        let (bystander, _) = app.member(owner, "by@example.com", &["standard"], &org.root).await;
        let (_, standard) = app.member(owner, "standard@example.com", &["standard"], &org.group).await;
        let (_, limited) = app.member(owner, "limited@example.com", &["limited"], &org.group).await;
        let assigned = |user: &str| json!({ "assigned_user_id": user });
        let g1 = contact(&app, owner, &org.group, "G1", assigned(&from)).await;
        let l1 = contact(&app, owner, &org.location, "L1", assigned(&from)).await;
        let r1 = contact(&app, owner, &org.root, "R1", assigned(&from)).await;
        let other = contact(&app, owner, &org.group, "Other", assigned(&bystander)).await;
        let assignee_of = |id: String| {
            let app = &app;
            async move { app.contact(owner, &id).await.1["assignee"]["id"].as_str().unwrap_or("").to_string() }
        };

        // A bad id among the chosen ones: 404, and nothing moves (one transaction).
        let (status, body) = app
            .reassign_contacts(
                owner,
                json!({ "from_user_id": from, "to_user_id": to, "contact_ids": [g1, "con_00000000000000000000000000"] }),
            )
            .await;
        assert_problem(status, &body, 404, "not-found");
        assert_eq!(assignee_of(g1.clone()).await, from);

        // Only the chosen ones that belong to `from`.
        let (status, body) = app
            .reassign_contacts(owner, json!({ "from_user_id": from, "to_user_id": to, "contact_ids": [g1, other] }))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["moved"], 1);
        assert_eq!(assignee_of(g1.clone()).await, to);
        assert_eq!(assignee_of(other.clone()).await, bystander);

        // Only a subtree: a standard user at the group moves what they reach.
        let (status, body) = app
            .reassign_contacts(&standard, json!({ "from_user_id": from, "to_user_id": to }))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["moved"], 1, "only L1 is within the group and still from's");
        assert_eq!(assignee_of(l1.clone()).await, to);
        assert_eq!(assignee_of(r1.clone()).await, from);
        let (status, body) = app
            .reassign_contacts(owner, json!({ "from_user_id": from, "to_user_id": to, "account_id": org.root }))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["moved"], 1);
        assert_eq!(assignee_of(r1.clone()).await, to);
        let reassigned = app.audit_rows(&from).await;
        let reassigned: Vec<_> = reassigned.iter().filter(|e| e.action == "contact.reassigned").collect();
        assert_eq!(reassigned.len(), 3, "audited once per reassign");
        let details: Value = serde_json::from_str(&reassigned[2].details).unwrap();
        assert_eq!(details["moved"], 1);

        // Refusals: a limited user, a target who is not active, a user of another organization,
        // the same user twice, a node above the caller.
        let (status, body) = app
            .reassign_contacts(&limited, json!({ "from_user_id": to, "to_user_id": from }))
            .await;
        assert_problem(status, &body, 403, "forbidden");
        let (status, body) = app
            .reassign_contacts(&standard, json!({ "from_user_id": to, "to_user_id": from, "account_id": org.root }))
            .await;
        assert_problem(status, &body, 403, "forbidden");
        leave(&app, owner, &bystander, false).await;
        let (status, body) = app
            .reassign_contacts(owner, json!({ "from_user_id": to, "to_user_id": bystander }))
            .await;
        assert_problem(status, &body, 409, "assignee-unavailable");
        assert_eq!(assignee_of(g1.clone()).await, to, "nothing moved");
        let stranger = app.org("other@example.com").await;
        let (status, body) = app
            .reassign_contacts(owner, json!({ "from_user_id": to, "to_user_id": stranger.owner_id }))
            .await;
        assert_problem(status, &body, 404, "not-found");
        let (status, body) = app
            .reassign_contacts(owner, json!({ "from_user_id": to, "to_user_id": to }))
            .await;
        assert_problem(status, &body, 422, "validation-failed");
    })
    .await;
}

#[tokio::test]
async fn notices_go_to_the_subscribed_contacts_of_the_subtree() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let owner = &org.owner_token;
        let subscribed = |email: &str, list: Value| json!({ "email": email, "subscriptions": list });
        let g = contact(
            &app,
            owner,
            &org.group,
            "G",
            subscribed("g@example.com", json!(["invoices", "product_updates"])),
        )
        .await;
        let l = contact(
            &app,
            owner,
            &org.location,
            "L",
            subscribed("l@example.com", json!(["invoices"])),
        )
        .await;
        let updates_only = contact(
            &app,
            owner,
            &org.group,
            "U",
            subscribed("u@example.com", json!(["product_updates"])),
        )
        .await;
        let no_email = contact(&app, owner, &org.group, "N", json!({})).await;
        let above = contact(
            &app,
            owner,
            &org.root,
            "R",
            subscribed("r@example.com", json!(["invoices"])),
        )
        .await;

        let notice = json!({ "subscription": "invoices", "subject": "Your invoice", "body": "It is ready." });
        let (status, body) = app.send_contact_notice(owner, &org.group, notice.clone()).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body["queued"], 2);
        for (contact, email) in [(&g, "g@example.com"), (&l, "l@example.com")] {
            let rows = app.notifications_to(email).await;
            assert_eq!(rows.len(), 1, "{email}");
            assert_eq!(rows[0].kind, "contact_notice");
            assert_eq!(rows[0].contact_id.as_deref(), Some(contact.as_str()));
            assert_eq!(rows[0].recipient_user_id, None);
            assert_eq!(rows[0].subject, "Your invoice");
        }
        for (contact, email) in [(&updates_only, "u@example.com"), (&above, "r@example.com")] {
            assert!(app.notifications_to(email).await.is_empty(), "{email} gets nothing");
            assert!(for_contact(&app, contact).await.is_empty());
        }
        assert!(for_contact(&app, &no_email).await.is_empty());
        let events = app.audit_rows(&org.group).await;
        assert!(events.iter().any(|e| e.action == "contact_notice.sent"), "audited");

        // Refusals: no notifications.send, another organization's node, an unknown subscription.
        let (_, standard) = app
            .member(owner, "standard@example.com", &["standard"], &org.group)
            .await;
        let (status, body) = app.send_contact_notice(&standard, &org.group, notice.clone()).await;
        assert_problem(status, &body, 403, "forbidden");
        let other = app.org("other@example.com").await;
        let (status, body) = app.send_contact_notice(&other.owner_token, &org.group, notice).await;
        assert_problem(status, &body, 404, "not-found");
        let (status, body) = app
            .send_contact_notice(
                owner,
                &org.group,
                json!({ "subscription": "gossip", "subject": "S", "body": "B" }),
            )
            .await;
        assert_problem(status, &body, 422, "validation-failed");
        assert_eq!(body["errors"][0]["field"], "subscription");
        assert_eq!(
            app.notifications_to("g@example.com").await.len(),
            1,
            "refusals queue nothing"
        );
    })
    .await;
}

/// The notifications recorded for one contact.
async fn for_contact(app: &TestApp, contact: &str) -> Vec<steward::db::models::NotificationRow> {
    let db = app.state.db.clone();
    let contact = steward::ids::ContactId::parse(contact).expect("contact id");
    tokio::task::spawn_blocking(move || {
        let mut conn = db.get().expect("connection");
        repo::notifications::for_contact(&mut conn, &contact).expect("query")
    })
    .await
    .expect("join")
}

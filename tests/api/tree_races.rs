//! Concurrent writers of the organization tree, on both backends. Every writer (create a
//! child, update, close, move, billing) takes the organization's lock before it reads the
//! nodes it works on, so on PostgreSQL, where requests really run side by side, a move cannot
//! leave a new child with its parent's old path, and a close cannot miss a node being moved
//! below it. Each race is repeated for several rounds; after each, the tree as stored is
//! checked node by node against its parent chain, and the tree the API shows is checked too.

use futures_util::future::{join, join_all};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;

use steward::db::models::AccountRow;
use steward::db::repo;
use steward::domain::AccountStatus;
use steward::ids::AccountId;

use crate::helpers::*;

const ROUNDS: usize = 5;

/// Every node of the organization as stored, read through the repository.
async fn stored(app: &TestApp, root: &str) -> Vec<AccountRow> {
    let db = app.state.db.clone();
    let root = AccountId::from(root.to_string());
    tokio::task::spawn_blocking(move || {
        let mut conn = db.get().expect("connection");
        repo::accounts::of_organization(&mut conn, &root).expect("query")
    })
    .await
    .expect("join")
}

/// The stored tree's invariants, one line per broken node: a root's path is `/root/` at depth
/// 0; any other node's path is its parent's path and its own id, one level deeper; nothing
/// active sits below a closed node.
fn broken_nodes(nodes: &[AccountRow]) -> Vec<String> {
    let by_id: HashMap<&str, &AccountRow> = nodes.iter().map(|n| (n.id.as_str(), n)).collect();
    let mut broken = Vec::new();
    for node in nodes {
        let (path, depth) = match node.parent_id.as_deref() {
            None => (format!("/{}/", node.id), 0),
            Some(parent_id) => {
                let Some(parent) = by_id.get(parent_id) else {
                    broken.push(format!("{}: parent {parent_id} is not in the organization", node.id));
                    continue;
                };
                if parent.status == AccountStatus::Closed && node.status == AccountStatus::Active {
                    broken.push(format!("{}: active below the closed {parent_id}", node.id));
                }
                (format!("{}{}/", parent.path, node.id), parent.depth + 1)
            }
        };
        if node.path != path || node.depth != depth {
            broken.push(format!(
                "{}: path {} at depth {}, its parent chain says {path} at depth {depth}",
                node.id, node.path, node.depth
            ));
        }
    }
    broken
}

/// The same invariants as the API shows them: every child names its parent, sits one level
/// deeper, and is closed when its parent is.
fn broken_in_view(tree: &Value, out: &mut Vec<String>) {
    let node = &tree["account"];
    for child in tree["children"].as_array().into_iter().flatten() {
        let account = &child["account"];
        if account["parent_id"] != node["id"] {
            out.push(format!(
                "{} is shown below {} but names {}",
                account["id"], node["id"], account["parent_id"]
            ));
        }
        if account["depth"].as_i64() != node["depth"].as_i64().map(|d| d + 1) {
            out.push(format!(
                "{} at depth {} below {} at depth {}",
                account["id"], account["depth"], node["id"], node["depth"]
            ));
        }
        if node["status"] == "closed" && account["status"] == "active" {
            out.push(format!("{} is active below the closed {}", account["id"], node["id"]));
        }
        broken_in_view(child, out);
    }
}

/// Checks the stored tree and the tree the API shows; returns the shown tree.
async fn assert_tree_consistent(app: &TestApp, org: &Org, round: usize) -> Value {
    let broken = broken_nodes(&stored(app, &org.root).await);
    assert!(
        broken.is_empty(),
        "round {round}, {:?}: the stored tree is broken:\n{}",
        app.backend,
        broken.join("\n")
    );
    let (status, tree) = app
        .get(&format!("/v1/accounts/{}/tree", org.root), Some(&org.owner_token))
        .await;
    assert_eq!(status, StatusCode::OK, "{tree}");
    let mut broken = Vec::new();
    broken_in_view(&tree, &mut broken);
    assert!(
        broken.is_empty(),
        "round {round}, {:?}: the tree shown is broken:\n{}",
        app.backend,
        broken.join("\n")
    );
    tree
}

/// A call whose path is built by the caller, so that many can be sent at once.
async fn send(app: &TestApp, method: Method, path: String, body: Value, token: &str) -> (StatusCode, Value) {
    app.call(method, &path, Some(body), Some(token)).await
}

fn find<'t>(tree: &'t Value, id: &str) -> Option<&'t Value> {
    if tree["account"]["id"] == id {
        return Some(tree);
    }
    tree["children"].as_array()?.iter().find_map(|c| find(c, id))
}

/// The ids of a node's children in the tree shown.
fn children(tree: &Value, id: &str) -> Vec<String> {
    find(tree, id)
        .and_then(|n| n["children"].as_array())
        .map(|list| {
            list.iter()
                .map(|c| c["account"]["id"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Many children created under X and under X's child while X moves (with its subtree) under
/// a node two levels deeper elsewhere: every new child ends up with X's new path and depth.
#[tokio::test]
async fn children_created_while_their_parent_moves_follow_it() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let token = org.owner_token.as_str();
        for round in 0..ROUNDS {
            let x = app.sub_account(token, &org.root, "group", &format!("X{round}")).await;
            let x1 = app.sub_account(token, &x, "location", &format!("X{round}.1")).await;
            let y = app
                .sub_account(token, &org.location, "location", &format!("Y{round}"))
                .await;

            let create = |parent: &str, name: String| {
                let path = format!("/v1/accounts/{parent}/children");
                send(
                    &app,
                    Method::POST,
                    path,
                    json!({ "name": name, "kind": "location" }),
                    token,
                )
            };
            let mut calls: Vec<_> = (0..12).map(|i| create(&x, format!("C{round}.{i}"))).collect();
            calls.extend((0..4).map(|i| create(&x1, format!("D{round}.{i}"))));
            let moving = send(
                &app,
                Method::PUT,
                format!("/v1/accounts/{x}/parent"),
                json!({ "parent_id": y }),
                token,
            );
            let (results, (move_status, moved)) = join(join_all(calls), moving).await;

            assert_eq!(move_status, StatusCode::OK, "round {round}: {moved}");
            assert_eq!(moved["depth"], 4, "X now sits below root → North → Harbour St → Y");
            let created: Vec<String> = results
                .iter()
                .map(|(status, body)| {
                    assert_eq!(*status, StatusCode::CREATED, "round {round}: {body}");
                    body["id"].as_str().unwrap().to_string()
                })
                .collect();

            let tree = assert_tree_consistent(&app, &org, round).await;
            let below_x = children(&tree, &x);
            let below_x1 = children(&tree, &x1);
            assert!(children(&tree, &y).contains(&x), "round {round}: X moved under Y");
            assert_eq!(
                below_x.len(),
                13,
                "round {round}: X1 and the twelve new children stay below X"
            );
            assert_eq!(below_x1.len(), 4, "round {round}: four new children below X1");
            for id in &created {
                let depth = find(&tree, id).map(|n| n["account"]["depth"].clone());
                let expected = if below_x.contains(id) { 5 } else { 6 };
                assert_eq!(depth, Some(json!(expected)), "round {round}: {id} follows its parent");
            }
        }
    })
    .await;
}

/// X closes while other nodes (each with a child) are moved under X's child and new children
/// are created there: whatever the order the writers took, nothing active is left below a
/// closed node; a move or create decided after the close is refused as account-closed.
#[tokio::test]
async fn a_close_racing_moves_under_it_leaves_nothing_active_below() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let token = org.owner_token.as_str();
        for round in 0..ROUNDS {
            let x = app.sub_account(token, &org.root, "group", &format!("X{round}")).await;
            let x1 = app.sub_account(token, &x, "group", &format!("X{round}.1")).await;
            let mut movers = Vec::new();
            for i in 0..4 {
                let z = app
                    .sub_account(token, &org.group, "group", &format!("Z{round}.{i}"))
                    .await;
                app.sub_account(token, &z, "location", &format!("Z{round}.{i}.1")).await;
                movers.push(z);
            }

            let moves = movers.iter().map(|z| {
                let path = format!("/v1/accounts/{z}/parent");
                send(&app, Method::PUT, path, json!({ "parent_id": x1 }), token)
            });
            let creates = (0..4).map(|i| {
                let body = json!({ "name": format!("New{round}.{i}"), "kind": "location" });
                send(&app, Method::POST, format!("/v1/accounts/{x1}/children"), body, token)
            });
            let closing = send(&app, Method::POST, format!("/v1/accounts/{x}/close"), json!({}), token);
            let ((moved, created), (close_status, closed)) =
                join(join(join_all(moves), join_all(creates)), closing).await;

            assert_eq!(close_status, StatusCode::OK, "round {round}: {closed}");
            assert_eq!(closed["status"], "closed");
            for (status, body) in moved.iter().chain(created.iter()) {
                if !status.is_success() {
                    assert_problem(*status, body, 409, "account-closed");
                }
            }
            let tree = assert_tree_consistent(&app, &org, round).await;
            for (z, (status, _)) in movers.iter().zip(&moved) {
                let node = &find(&tree, z).expect("the node is still in the tree")["account"];
                if status.is_success() {
                    assert_eq!(node["parent_id"], x1.as_str(), "round {round}: moved before the close");
                    assert_eq!(node["status"], "closed", "round {round}: closed with X");
                } else {
                    assert_eq!(
                        node["parent_id"],
                        org.group.as_str(),
                        "round {round}: a refused move moves nothing"
                    );
                    assert_eq!(node["status"], "active", "round {round}: a refused move closes nothing");
                }
            }
        }
    })
    .await;
}

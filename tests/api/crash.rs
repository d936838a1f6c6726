//! Crash safety (issue 14): concurrent clients write through the real server, which is
//! killed with SIGKILL in the middle of it and restarted on the same database. Whatever a
//! client saw succeed is there after the restart, and the invariants hold: every root
//! account keeps an active owner (R3), no invitation is accepted twice (R6), no
//! notification is lost (R13: each is delivered after the restart), and every committed
//! change has its audit event. On SQLite and on PostgreSQL.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use futures_util::FutureExt;
use steward::db::schema::{
    accounts, audit_events, invites, membership_roles, memberships, notifications, roles, users,
};

use crate::delivery::{Receiver, SECRET};
use crate::helpers::*;
use crate::process::{Remote, ServerProcess};

/// How long the clients write before the kill.
const LOAD: Duration = Duration::from_millis(1500);

/// What the clients saw succeed (2xx) before the kill.
#[derive(Default)]
struct Seen {
    invites_created: Vec<String>,
    invites_accepted: Vec<String>,
    /// (audit action, target user id) of each role change, deactivation and reactivation.
    changes: Vec<(&'static str, String)>,
}

impl Seen {
    fn merge(mut self, other: Seen) -> Seen {
        self.invites_created.extend(other.invites_created);
        self.invites_accepted.extend(other.invites_accepted);
        self.changes.extend(other.changes);
        self
    }
}

/// One client: sends until the server stops answering (it was killed) or the time is up.
struct Client {
    remote: Remote,
    token: String,
    until: Instant,
}

impl Client {
    /// `Some(status, body)` while the server answers and there is time left. A refusal or
    /// a 503 (no connection in time, under this load) is an answer; a 500 is a bug.
    async fn send(&self, method: Method, path: &str, body: Value) -> Option<(StatusCode, Value)> {
        self.send_as(Some(&self.token), method, path, body).await
    }

    async fn send_as(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Value,
    ) -> Option<(StatusCode, Value)> {
        if Instant::now() > self.until {
            return None;
        }
        let answer = self.remote.try_call(method, path, Some(body), token).await;
        if let Some((status, body)) = &answer {
            assert_ne!(*status, StatusCode::INTERNAL_SERVER_ERROR, "{path}: {body}");
        }
        answer
    }

    /// Invites, copies the link and accepts it (twice at once: one acceptance at most).
    async fn invite_and_accept(self, role: String, n: usize) -> Seen {
        let mut seen = Seen::default();
        for i in 0.. {
            let invite = json!({ "email": format!("w{n}-{i}@example.com"), "role_ids": [&role], "send_email": true });
            let Some((status, created)) = self.send(Method::POST, "/v1/invites", invite).await else {
                break;
            };
            if status != StatusCode::CREATED {
                continue;
            }
            let id = created["id"].as_str().expect("invite id").to_string();
            seen.invites_created.push(id.clone());
            let Some((status, link)) = self
                .send(Method::POST, &format!("/v1/invites/{id}/link"), json!({}))
                .await
            else {
                break;
            };
            if status != StatusCode::OK {
                continue;
            }
            let token = link_token(link["registration_url"].as_str().expect("link"));
            let accept = json!({ "token": token, "first_name": "W", "last_name": "X", "password": MEMBER_PASSWORD });
            let (first, second) = tokio::join!(
                self.send_as(None, Method::POST, "/v1/invitations/accept", accept.clone()),
                self.send_as(None, Method::POST, "/v1/invitations/accept", accept)
            );
            let accepted = [&first, &second]
                .iter()
                .filter(|r| r.as_ref().is_some_and(|(s, _)| s.is_success()))
                .count();
            assert!(accepted <= 1, "accepted twice: {first:?} {second:?}");
            if accepted == 1 {
                seen.invites_accepted.push(id);
            }
            if first.is_none() || second.is_none() {
                break;
            }
        }
        seen
    }

    /// Sets each user's roles to each of `role_sets` in turn.
    async fn change_roles(self, targets: Vec<String>, role_sets: Vec<Vec<String>>) -> Seen {
        let mut seen = Seen::default();
        for step in 0.. {
            let user = &targets[step % targets.len()];
            let roles = &role_sets[step % role_sets.len()];
            let path = format!("/v1/users/{user}/roles");
            let Some((status, _)) = self.send(Method::PUT, &path, json!({ "role_ids": roles })).await else {
                break;
            };
            // An owner demoted by the other owner meanwhile is refused (403), and the last
            // owner cannot be demoted (409): both are the rules working, not failures.
            if status.is_success() {
                seen.changes.push(("membership.roles_changed", user.clone()));
            }
        }
        seen
    }

    /// Deactivates and reactivates each user in turn.
    async fn toggle(self, targets: Vec<String>) -> Seen {
        let mut seen = Seen::default();
        for step in 0.. {
            let user = &targets[(step / 2) % targets.len()];
            let (verb, action) = if step % 2 == 0 {
                ("deactivate", "membership.deactivated")
            } else {
                ("reactivate", "membership.reactivated")
            };
            let path = format!("/v1/users/{user}/{verb}");
            let Some((status, _)) = self.send(Method::POST, &path, json!({})).await else {
                break;
            };
            if status.is_success() {
                seen.changes.push((action, user.clone()));
            }
        }
        seen
    }
}

#[tokio::test]
async fn a_sigkill_under_load_loses_nothing_that_was_committed() {
    // The in-process app only provides the database (and reads it); its worker polls once, at start.
    on_each_backend_with(&[("STEWARD_OUTBOX_POLL_INTERVAL", "1h")], |app| async move {
        let receiver = Receiver::start(0).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let settings = [
            ("STEWARD_DATABASE_URL", app.database_url.as_str()),
            ("STEWARD_NOTIFY_URL", receiver.url.as_str()),
            ("STEWARD_NOTIFY_SECRET", SECRET),
            ("STEWARD_OUTBOX_POLL_INTERVAL", "50ms"),
            ("STEWARD_WORKERS", "2"),
            ("STEWARD_DATABASE_TIMEOUT", "10s"),
            ("STEWARD_LIMIT_INVITES_PER_ORGANIZATION", "100000/1h"),
        ];
        let mut first = ServerProcess::start(dir.path(), "first", &settings).await;

        // Two owners, three members whose roles change, two who are deactivated and back.
        let signed_up = first.sign_up("owner@example.com").await;
        let (owner1, root) = (
            token(&signed_up),
            signed_up["account"]["id"].as_str().unwrap().to_string(),
        );
        let owner1_id = signed_up["user"]["id"].as_str().unwrap().to_string();
        let role = |name: &'static str| first.builtin_role(&owner1, name);
        let (owner, admin, standard, viewer) = (
            role("owner").await,
            role("admin").await,
            role("standard").await,
            role("viewer").await,
        );
        let (owner2_id, owner2) = first.member(&owner1, "owner2@example.com", &owner, &root).await;
        let mut members = Vec::new();
        for i in 0..5 {
            members.push(
                first
                    .member(&owner1, &format!("m{i}@example.com"), &standard, &root)
                    .await
                    .0,
            );
        }

        let until = Instant::now() + Duration::from_secs(10);
        let client = |token: &str| Client {
            remote: first.remote.clone(),
            token: token.to_string(),
            until,
        };
        let owner_sets = vec![vec![admin.clone()], vec![owner.clone()]];
        let member_sets = vec![
            vec![viewer.clone()],
            vec![standard.clone(), viewer.clone()],
            vec![standard.clone()],
        ];
        let load = futures_util::future::join_all([
            client(&owner1).invite_and_accept(standard.clone(), 1).boxed_local(),
            client(&owner2).invite_and_accept(viewer.clone(), 2).boxed_local(),
            client(&owner1)
                .change_roles(members[..3].to_vec(), member_sets)
                .boxed_local(),
            client(&owner1).toggle(members[3..].to_vec()).boxed_local(),
            // R3 under fire: each owner keeps demoting the other and promoting them back.
            client(&owner1)
                .change_roles(vec![owner2_id.clone()], owner_sets.clone())
                .boxed_local(),
            client(&owner2)
                .change_roles(vec![owner1_id.clone()], owner_sets)
                .boxed_local(),
        ]);
        let kill = async {
            tokio::time::sleep(LOAD).await;
            first.kill();
        };
        let (seen, ()) = tokio::join!(load, kill);
        let seen = seen.into_iter().fold(Seen::default(), Seen::merge);
        eprintln!(
            "{:?} before the kill: {} invitations, {} accepted, {} other changes",
            app.backend,
            seen.invites_created.len(),
            seen.invites_accepted.len(),
            seen.changes.len()
        );
        assert!(
            !seen.invites_accepted.is_empty() && !seen.changes.is_empty(),
            "the load did some work before the kill"
        );

        // Second life, on the same database and key.
        let _second = ServerProcess::start(dir.path(), "second", &settings).await;
        let db = app.state.db.clone();
        let snapshot = tokio::task::spawn_blocking(move || Snapshot::load(&mut db.get().expect("connection")))
            .await
            .expect("join");

        snapshot.every_root_has_an_active_owner();
        snapshot.no_invitation_is_accepted_twice(&seen);
        snapshot.every_change_is_audited(&seen);
        // Every invitation has its email, and every message in the outbox is delivered.
        let mailed: HashSet<String> = snapshot.invite_mails.iter().cloned().collect();
        for invite in &snapshot.invites {
            assert!(mailed.contains(&invite.0), "no email for {}", invite.0);
        }
        let want: HashSet<String> = snapshot.notification_ids.iter().cloned().collect();
        for _ in 0..400 {
            let got: HashSet<String> = receiver.received().into_iter().map(|r| r.id).collect();
            if want.is_subset(&got) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let got: HashSet<String> = receiver.received().into_iter().map(|r| r.id).collect();
        panic!("lost notifications: {:?}", want.difference(&got).collect::<Vec<_>>());
    })
    .await;
}

/// The database after the restart, read directly.
struct Snapshot {
    /// (id, status, accepted user, organization)
    invites: Vec<(String, String, Option<String>, String)>,
    /// The invite id of each invitation email in the outbox.
    invite_mails: Vec<String>,
    /// Every notification (not event deliveries to webhook endpoints).
    notification_ids: Vec<String>,
    /// (id, user, organization, status)
    memberships: Vec<(String, String, String, String)>,
    /// membership id → role ids
    roles_of: HashMap<String, Vec<String>>,
    owner_roles: HashSet<String>,
    active_users: HashSet<String>,
    roots: Vec<String>,
    /// (action, target id)
    audit: Vec<(String, Option<String>)>,
}

impl Snapshot {
    fn load(conn: &mut steward::db::DbConnection) -> Self {
        let mails: Vec<(String, String)> = notifications::table
            .filter(notifications::webhook_endpoint_id.is_null())
            .select((notifications::id, notifications::payload))
            .load(conn)
            .expect("notifications");
        let mut roles_of: HashMap<String, Vec<String>> = HashMap::new();
        for (membership, role) in membership_roles::table
            .select((membership_roles::membership_id, membership_roles::role_id))
            .load::<(String, String)>(conn)
            .expect("membership roles")
        {
            roles_of.entry(membership).or_default().push(role);
        }
        Self {
            invites: invites::table
                .select((
                    invites::id,
                    invites::status,
                    invites::accepted_user_id,
                    invites::root_account_id,
                ))
                .load(conn)
                .expect("invites"),
            invite_mails: mails
                .iter()
                .filter_map(|(_, payload)| {
                    let payload: Value = serde_json::from_str(payload).ok()?;
                    Some(payload["invite_id"].as_str()?.to_string())
                })
                .collect(),
            notification_ids: mails.into_iter().map(|(id, _)| id).collect(),
            memberships: memberships::table
                .select((
                    memberships::id,
                    memberships::user_id,
                    memberships::root_account_id,
                    memberships::status,
                ))
                .load(conn)
                .expect("memberships"),
            roles_of,
            owner_roles: roles::table
                .filter(roles::builtin_key.eq("owner"))
                .select(roles::id)
                .load::<String>(conn)
                .expect("roles")
                .into_iter()
                .collect(),
            active_users: users::table
                .filter(users::status.eq("active"))
                .select(users::id)
                .load::<String>(conn)
                .expect("users")
                .into_iter()
                .collect(),
            roots: accounts::table
                .filter(accounts::parent_id.is_null())
                .select(accounts::id)
                .load(conn)
                .expect("accounts"),
            audit: audit_events::table
                .select((audit_events::action, audit_events::target_id))
                .load(conn)
                .expect("audit events"),
        }
    }

    /// R3: every root account has an active owner who is an active user.
    fn every_root_has_an_active_owner(&self) {
        assert!(!self.roots.is_empty());
        for root in &self.roots {
            let owners = self
                .memberships
                .iter()
                .filter(|(id, user, org, status)| {
                    org == root
                        && status == "active"
                        && self.active_users.contains(user)
                        && self
                            .roles_of
                            .get(id)
                            .is_some_and(|r| r.iter().any(|r| self.owner_roles.contains(r)))
                })
                .count();
            assert!(owners >= 1, "{root} has no active owner");
        }
    }

    /// R6: one membership per (user, organization); each accepted invitation made exactly
    /// one, and every acceptance a client saw is there.
    fn no_invitation_is_accepted_twice(&self, seen: &Seen) {
        let mut per_user: HashMap<(&str, &str), usize> = HashMap::new();
        for (_, user, org, _) in &self.memberships {
            *per_user.entry((user.as_str(), org.as_str())).or_default() += 1;
        }
        assert!(
            per_user.values().all(|n| *n == 1),
            "a duplicate membership: {per_user:?}"
        );
        let by_id: HashMap<&str, _> = self.invites.iter().map(|i| (i.0.as_str(), i)).collect();
        for (id, status, user, org) in &self.invites {
            if status == "accepted" {
                let user = user.as_deref().expect("an accepted invitation names its user");
                assert_eq!(per_user.get(&(user, org.as_str())), Some(&1), "{id}");
            }
        }
        for id in &seen.invites_created {
            assert!(by_id.contains_key(id.as_str()), "invitation {id} was lost");
        }
        for id in &seen.invites_accepted {
            assert_eq!(by_id[id.as_str()].1, "accepted", "acceptance of {id} was lost");
        }
    }

    /// R13: every invitation has one `invite.created`, every accepted one one `invite.accepted`,
    /// and every change a client saw succeed has its event.
    fn every_change_is_audited(&self, seen: &Seen) {
        let mut events: HashMap<(&str, &str), usize> = HashMap::new();
        for (action, target) in &self.audit {
            if let Some(target) = target {
                *events.entry((action.as_str(), target.as_str())).or_default() += 1;
            }
        }
        for (id, status, _, _) in &self.invites {
            assert_eq!(events.get(&("invite.created", id.as_str())), Some(&1), "{id}");
            let accepted = usize::from(status == "accepted");
            let audited = events.get(&("invite.accepted", id.as_str())).copied().unwrap_or(0);
            assert_eq!(audited, accepted, "invite.accepted of {id}");
        }
        let mut saw: HashMap<(&str, &str), usize> = HashMap::new();
        for (action, user) in &seen.changes {
            *saw.entry((action, user.as_str())).or_default() += 1;
        }
        for (key, n) in saw {
            let audited = events.get(&key).copied().unwrap_or(0);
            assert!(audited >= n, "{key:?}: {n} seen, {audited} audited");
        }
    }
}

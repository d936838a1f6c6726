//! Typed helpers for the endpoints the tests call most: each builds its own path from its
//! arguments, so a test says what it does (`app.set_roles(token, &user, &[role])`) instead
//! of how the URL is spelled. Every helper goes through [`TestApp::call`], so each response
//! is still checked against the committed document, and returns `(StatusCode, Value)`
//! without asserting anything: the tests decide what they expect.
//!
//! Ids are taken as `&str` on purpose: the tests also send malformed and foreign ids.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::contract::SendChecked;
use crate::helpers::TestApp;

/// An action on one invitation (`POST /v1/invites/{id}/{action}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InviteAction {
    /// Rotates the token and emails the new link.
    Resend,
    /// Rotates the token and hands the new link back ("copy link").
    Link,
    Revoke,
}

impl InviteAction {
    pub const ALL: [InviteAction; 3] = [InviteAction::Resend, InviteAction::Link, InviteAction::Revoke];

    fn segment(self) -> &'static str {
        match self {
            InviteAction::Resend => "resend",
            InviteAction::Link => "link",
            InviteAction::Revoke => "revoke",
        }
    }
}

fn role_ids(roles: &[impl AsRef<str>]) -> Vec<&str> {
    roles.iter().map(AsRef::as_ref).collect()
}

impl TestApp {
    // Accounts.

    /// `GET /v1/accounts`: the caller's accounts.
    pub async fn my_accounts(&self, token: &str) -> (StatusCode, Value) {
        self.get("/v1/accounts", Some(token)).await
    }

    /// `GET /v1/accounts/{id}`.
    pub async fn account(&self, token: &str, id: &str) -> (StatusCode, Value) {
        self.get(&format!("/v1/accounts/{id}"), Some(token)).await
    }

    /// `PATCH /v1/accounts/{id}`.
    pub async fn update_account(&self, token: &str, id: &str, body: Value) -> (StatusCode, Value) {
        self.patch(&format!("/v1/accounts/{id}"), body, Some(token)).await
    }

    /// `GET /v1/accounts/{id}/tree`.
    pub async fn account_tree(&self, token: &str, id: &str) -> (StatusCode, Value) {
        self.get(&format!("/v1/accounts/{id}/tree"), Some(token)).await
    }

    /// `POST /v1/accounts/{parent}/children` with a raw body (see also `sub_account`).
    pub async fn create_child(&self, token: &str, parent: &str, body: Value) -> (StatusCode, Value) {
        self.post(&format!("/v1/accounts/{parent}/children"), body, Some(token))
            .await
    }

    /// `PUT /v1/accounts/{id}/parent`.
    pub async fn move_account(&self, token: &str, id: &str, parent_id: &str) -> (StatusCode, Value) {
        self.put(
            &format!("/v1/accounts/{id}/parent"),
            json!({ "parent_id": parent_id }),
            Some(token),
        )
        .await
    }

    /// `POST /v1/accounts/{id}/close`.
    pub async fn close_account(&self, token: &str, id: &str) -> (StatusCode, Value) {
        self.post(&format!("/v1/accounts/{id}/close"), json!({}), Some(token))
            .await
    }

    /// `GET /v1/accounts/{id}/billing`.
    pub async fn billing(&self, token: &str, id: &str) -> (StatusCode, Value) {
        self.get(&format!("/v1/accounts/{id}/billing"), Some(token)).await
    }

    /// `PUT /v1/accounts/{id}/billing`.
    pub async fn update_billing(&self, token: &str, id: &str, body: Value) -> (StatusCode, Value) {
        self.put(&format!("/v1/accounts/{id}/billing"), body, Some(token)).await
    }

    // Users (members).

    /// `GET /v1/users/{id}`.
    pub async fn user(&self, token: &str, id: &str) -> (StatusCode, Value) {
        self.get(&format!("/v1/users/{id}"), Some(token)).await
    }

    /// `PATCH /v1/users/{id}`.
    pub async fn update_user(&self, token: &str, id: &str, body: Value) -> (StatusCode, Value) {
        self.patch(&format!("/v1/users/{id}"), body, Some(token)).await
    }

    /// `PUT /v1/users/{id}/roles`: replaces the member's roles.
    pub async fn set_roles(&self, token: &str, user: &str, roles: &[impl AsRef<str>]) -> (StatusCode, Value) {
        self.put(
            &format!("/v1/users/{user}/roles"),
            json!({ "role_ids": role_ids(roles) }),
            Some(token),
        )
        .await
    }

    /// `PUT /v1/users/{id}/node`: moves the membership to another account.
    pub async fn move_user(&self, token: &str, user: &str, account_id: &str) -> (StatusCode, Value) {
        self.put(
            &format!("/v1/users/{user}/node"),
            json!({ "account_id": account_id }),
            Some(token),
        )
        .await
    }

    /// `POST /v1/ownership/transfer`.
    pub async fn transfer_ownership(&self, token: &str, user: &str) -> (StatusCode, Value) {
        self.post("/v1/ownership/transfer", json!({ "user_id": user }), Some(token))
            .await
    }

    /// `GET /v1/users/{id}/caretaker`.
    pub async fn caretaker(&self, token: &str, user: &str) -> (StatusCode, Value) {
        self.get(&format!("/v1/users/{user}/caretaker"), Some(token)).await
    }

    /// `POST /v1/users/{id}/caretaker`: assigns a caretaker to a user who has none.
    pub async fn assign_caretaker(&self, token: &str, user: &str, caretaker: &str) -> (StatusCode, Value) {
        self.post(
            &format!("/v1/users/{user}/caretaker"),
            json!({ "caretaker_id": caretaker }),
            Some(token),
        )
        .await
    }

    /// `PUT /v1/users/{id}/caretaker`: hands the user over to another caretaker.
    pub async fn replace_caretaker(&self, token: &str, user: &str, caretaker: &str) -> (StatusCode, Value) {
        self.put(
            &format!("/v1/users/{user}/caretaker"),
            json!({ "caretaker_id": caretaker }),
            Some(token),
        )
        .await
    }

    /// `DELETE /v1/users/{id}/caretaker`.
    pub async fn remove_caretaker(&self, token: &str, user: &str) -> (StatusCode, Value) {
        self.delete(&format!("/v1/users/{user}/caretaker"), Some(token)).await
    }

    // Roles.

    /// `GET /v1/roles`.
    pub async fn roles(&self, token: &str) -> (StatusCode, Value) {
        self.get("/v1/roles", Some(token)).await
    }

    /// `GET /v1/roles/{id}`.
    pub async fn role(&self, token: &str, id: &str) -> (StatusCode, Value) {
        self.get(&format!("/v1/roles/{id}"), Some(token)).await
    }

    /// `POST /v1/roles` with a name and permissions.
    pub async fn create_role(&self, token: &str, name: &str, permissions: &[&str]) -> (StatusCode, Value) {
        self.post(
            "/v1/roles",
            json!({ "name": name, "permissions": permissions }),
            Some(token),
        )
        .await
    }

    /// `PATCH /v1/roles/{id}`.
    pub async fn update_role(&self, token: &str, id: &str, body: Value) -> (StatusCode, Value) {
        self.patch(&format!("/v1/roles/{id}"), body, Some(token)).await
    }

    /// `DELETE /v1/roles/{id}`.
    pub async fn delete_role(&self, token: &str, id: &str) -> (StatusCode, Value) {
        self.delete(&format!("/v1/roles/{id}"), Some(token)).await
    }

    // Invitations.

    /// `POST /v1/invites`. With `send_email: false` the answer carries `registration_url`.
    pub async fn create_invite(
        &self,
        token: &str,
        email: &str,
        roles: &[impl AsRef<str>],
        send_email: bool,
    ) -> (StatusCode, Value) {
        self.post(
            "/v1/invites",
            json!({ "email": email, "role_ids": role_ids(roles), "send_email": send_email }),
            Some(token),
        )
        .await
    }

    /// `GET /v1/invites/{id}`.
    pub async fn invite(&self, token: &str, id: &str) -> (StatusCode, Value) {
        self.get(&format!("/v1/invites/{id}"), Some(token)).await
    }

    /// `POST /v1/invites/{id}/{action}`.
    pub async fn invite_action(&self, token: &str, id: &str, action: InviteAction) -> (StatusCode, Value) {
        self.post(
            &format!("/v1/invites/{id}/{}", action.segment()),
            json!({}),
            Some(token),
        )
        .await
    }

    /// `POST /v1/invites/{id}/resend`.
    pub async fn resend_invite(&self, token: &str, id: &str) -> (StatusCode, Value) {
        self.invite_action(token, id, InviteAction::Resend).await
    }

    /// `POST /v1/invites/{id}/link`.
    pub async fn copy_invite_link(&self, token: &str, id: &str) -> (StatusCode, Value) {
        self.invite_action(token, id, InviteAction::Link).await
    }

    /// `POST /v1/invites/{id}/revoke`.
    pub async fn revoke_invite(&self, token: &str, id: &str) -> (StatusCode, Value) {
        self.invite_action(token, id, InviteAction::Revoke).await
    }

    /// `POST /v1/invitations/preview` (no bearer token: the invitee has none).
    pub async fn preview_invitation(&self, link_token: &str) -> (StatusCode, Value) {
        self.post("/v1/invitations/preview", json!({ "token": link_token }), None)
            .await
    }

    /// `POST /v1/invitations/accept`: a new person registers with `body` and no bearer token;
    /// an existing user sends `{"token": …}` with their own.
    pub async fn accept_invitation(&self, body: Value, bearer: Option<&str>) -> (StatusCode, Value) {
        self.post("/v1/invitations/accept", body, bearer).await
    }

    // Impersonation.

    /// `POST /v1/impersonations` with a reason and the confirmation; `extra` adds or
    /// overrides fields (`mode`, `minutes`, …).
    pub async fn impersonate(&self, token: &str, user: &str, extra: Value) -> (StatusCode, Value) {
        let mut body = json!({ "user_id": user, "reason": "Ticket 4711: sees a blank dashboard", "confirm": true });
        if let (Some(map), Value::Object(more)) = (body.as_object_mut(), extra) {
            map.extend(more);
        }
        self.post("/v1/impersonations", body, Some(token)).await
    }

    /// `GET /v1/impersonations/{id}`.
    pub async fn impersonation(&self, token: &str, id: &str) -> (StatusCode, Value) {
        self.get(&format!("/v1/impersonations/{id}"), Some(token)).await
    }

    /// `POST /v1/impersonations/{id}/end`.
    pub async fn end_impersonation(&self, token: &str, id: &str) -> (StatusCode, Value) {
        let path = format!("/v1/impersonations/{id}/end");
        self.call(reqwest::Method::POST, &path, None, Some(token)).await
    }

    /// `GET /v1/accounts/{account}/impersonations?{query}`.
    pub async fn impersonations(&self, token: &str, account: &str, query: &str) -> (StatusCode, Value) {
        self.get(&format!("/v1/accounts/{account}/impersonations?{query}"), Some(token))
            .await
    }
}

/// The link token at the end of an invitation URL or email (`…?token=…`).
pub fn link_token(url: &str) -> String {
    let after = url.split("token=").nth(1).expect("token in link");
    after.split_whitespace().next().expect("token").to_string()
}

impl TestApp {
    /// `GET /v1/accounts/{id}/audit-events?{query}` (`query` already encoded, may be empty).
    pub async fn audit_events(&self, token: &str, account: &str, query: &str) -> (StatusCode, Value) {
        self.get(&format!("/v1/accounts/{account}/audit-events?{query}"), Some(token))
            .await
    }

    /// `GET /v1/accounts/{id}/audit-events/export?{query}`: the status, the media type and the
    /// body as text (JSON Lines on success, a problem otherwise).
    pub async fn export_audit_events(&self, token: &str, account: &str, query: &str) -> (StatusCode, String, String) {
        let res = self
            .client
            .get(self.url(&format!("/v1/accounts/{account}/audit-events/export?{query}")))
            .bearer_auth(token)
            .send_checked()
            .await
            .expect("request sent");
        let media_type = res
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        (res.status(), media_type, res.text().await.expect("body read"))
    }
}

impl TestApp {
    // Contacts.

    /// `POST /v1/accounts/{account}/contacts`.
    pub async fn create_contact(&self, token: &str, account: &str, body: Value) -> (StatusCode, Value) {
        self.post(&format!("/v1/accounts/{account}/contacts"), body, Some(token))
            .await
    }

    /// `GET /v1/contacts?{query}` (`query` already encoded, may be empty).
    pub async fn contacts(&self, token: &str, query: &str) -> (StatusCode, Value) {
        self.get(&format!("/v1/contacts?{query}"), Some(token)).await
    }

    /// `GET /v1/contacts/{id}`.
    pub async fn contact(&self, token: &str, id: &str) -> (StatusCode, Value) {
        self.get(&format!("/v1/contacts/{id}"), Some(token)).await
    }

    /// `PATCH /v1/contacts/{id}`.
    pub async fn update_contact(&self, token: &str, id: &str, body: Value) -> (StatusCode, Value) {
        self.patch(&format!("/v1/contacts/{id}"), body, Some(token)).await
    }

    /// `DELETE /v1/contacts/{id}`.
    pub async fn delete_contact(&self, token: &str, id: &str) -> (StatusCode, Value) {
        self.delete(&format!("/v1/contacts/{id}"), Some(token)).await
    }

    /// `POST /v1/contacts/reassign`.
    pub async fn reassign_contacts(&self, token: &str, body: Value) -> (StatusCode, Value) {
        self.post("/v1/contacts/reassign", body, Some(token)).await
    }

    /// `POST /v1/accounts/{account}/contact-notices`.
    pub async fn send_contact_notice(&self, token: &str, account: &str, body: Value) -> (StatusCode, Value) {
        self.post(&format!("/v1/accounts/{account}/contact-notices"), body, Some(token))
            .await
    }
}

//! The authorization matrix: every operation of the API × every built-in role × every place
//! a target can be, checked against two tables that are the spec:
//!
//! - [`OPERATIONS`]: one row per operationId of the OpenAPI document — the request, what it
//!   needs (a permission, any member of the tenant, or nothing tenant-scoped: exempt, with the
//!   reason), what it targets, and its success status;
//! - [`HOLDS`]: which built-in role holds which permission, written from PRODUCT.md ("Roles and
//!   permissions"), not from `src/auth/permissions.rs`.
//!
//! Set-up (once per backend): organization A = root R → group G → location L, one member at G
//! per built-in role holding only that role (the callers), and organization B for foreign
//! targets. Each check sends one request as one caller against a target at one position and
//! expects:
//!
//! | position        | target node   | expected                                                    |
//! | --------------- | ------------- | ----------------------------------------------------------- |
//! | `Foreign`       | B's root      | 404 `not-found`, whatever the role (R1: never 403)          |
//! | `Parent`        | R             | 403 `forbidden`, whatever the role (R2: reach is down only) |
//! | `Same`, `Child` | G, L          | the row's success status if the role may, else 403          |
//! | `Tenant`        | (not a node)  | the row's success status if the role may, else 403          |
//!
//! Contacts are the exception to the `Parent` line: a contact outside the caller's view answers
//! 404 as if it did not exist (R12), so rows that target a contact follow `expected_for_contact`.
//!
//! Node-scoped rows are checked at `Same`, `Child`, `Parent` and `Foreign`; rows that are not
//! (roles, the user and invitation lists, ownership) at `Tenant`, plus `Foreign` when they name
//! a target. A row may name positions where an allowed call meets a rule of its own (`unless`,
//! e.g. nobody closes their own node: 409), and an operation on the root account itself
//! (`Scope::Root`, ownership transfer) is refused to every caller at G. All mismatches, on every
//! backend, are collected and reported together, each with the operation, role, position,
//! expected and actual status and the response body.
//!
//! Adding an operation: add one line to [`OPERATIONS`] (and, if it needs a permission no row
//! used before, a line to [`HOLDS`]); `authz_matrix_has_a_row_for_every_operation` names any
//! operation of the OpenAPI document without a row, and any row without an operation.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use crate::helpers::*;

use Need::*;
use Position::*;
use Target::*;

// ---------------------------------------------------------------------------------------------
// The operations
// ---------------------------------------------------------------------------------------------

/// What a caller needs to be allowed an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Need {
    /// Not tenant-scoped (public, or about the caller's own login): not part of the matrix.
    Exempt(&'static str),
    /// Any active member of the tenant, whatever their roles.
    AnyMember,
    /// This permission (a name from `GET /v1/permissions`), held at or above the target node.
    Perm(&'static str),
    /// Every one of these permissions, held at or above the target node.
    All(&'static [&'static str]),
}

/// What `{account_id}`, `{user_id}`, `{role_id}`, `{invite_id}` and `{contact_id}` in the path, and `$account`
/// and `$user` in the body, name at each position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// Nothing: the operation has no target.
    Nothing,
    /// The node at the position (G, L, R or B's root).
    Node,
    /// A node the call closes or moves. At `Child`, a fresh sub-account of G, one per check;
    /// elsewhere the node itself (G is the caller's own node, R a root, B's root foreign), which
    /// an allowed call cannot destroy.
    FreshNode,
    /// A member with the `viewer` role whose membership sits at the position's node, created by
    /// that organization's owner and shared by every check.
    Member,
    /// Like `Member`, for calls that change the member: a fresh one is made for each check
    /// whose caller may succeed (one refused must leave the shared member untouched).
    FreshMember,
    /// A custom role of A (of B at `Foreign`), shared by every check.
    Role,
    /// A fresh custom role of A (of B at `Foreign`) per check.
    FreshRole,
    /// A pending invitation to the position's node, sent by that organization's owner; shared.
    Invite,
    /// Like `Invite`, a fresh one per check, for calls that end it.
    FreshInvite,
    /// An unassigned contact at the position's node, made by that organization's owner;
    /// shared. Contacts answer 404 outside the caller's view (R12), so these rows are judged
    /// by [`expected_for_contact`], not by the node rule.
    Contact,
    /// Like `Contact`, a fresh one per check whose caller may succeed, for calls that delete it.
    FreshContact,
}

/// Where the target is, seen from the caller (a member at G).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Position {
    /// The caller's own node, G.
    Same,
    /// Below the caller's node: L.
    Child,
    /// Above the caller's node: R.
    Parent,
    /// In another organization: B (its root, its member, its role).
    Foreign,
    /// Not a node: the caller's own organization (a member target sits at G).
    Tenant,
}

/// How far the operation reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    /// It acts on the target's node: allowed at or below the caller's node only (R2).
    Node,
    /// It acts on the organization as a whole, not on a node of it; checked per role only.
    Tenant,
    /// It acts on the organization's root account itself, so only a membership at the root
    /// reaches it (R2); for the callers at G that is always above.
    Root,
}

struct Row {
    /// The operationId in openapi/openapi.json.
    op: &'static str,
    method: &'static str,
    /// The path exactly as in the OpenAPI document.
    path: &'static str,
    /// A JSON body; `$account`, `$user`, `$location`, `$viewer_role`, `$limited_role` and `$n`
    /// (a number unique within the run) are filled in.
    body: Option<&'static str>,
    need: Need,
    target: Target,
    scope: Scope,
    /// The status of an allowed call.
    ok: u16,
    /// Positions where an allowed call meets a rule of its own instead: status and problem type.
    unless: &'static [(Position, u16, &'static str)],
    /// A successful call demotes the caller (ownership transfer); the runner restores the role.
    demotes_caller: bool,
}

const fn exempt(op: &'static str, method: &'static str, path: &'static str, why: &'static str) -> Row {
    Row {
        op,
        method,
        path,
        body: None,
        need: Exempt(why),
        target: Nothing,
        scope: Scope::Tenant,
        ok: 0,
        unless: &[],
        demotes_caller: false,
    }
}

const fn op(op: &'static str, method: &'static str, path: &'static str, need: Need, target: Target, ok: u16) -> Row {
    let scope = match target {
        Node | FreshNode | Member | FreshMember | Invite | FreshInvite | Contact | FreshContact => Scope::Node,
        Nothing | Role | FreshRole => Scope::Tenant,
    };
    Row {
        op,
        method,
        path,
        body: None,
        need,
        target,
        scope,
        ok,
        unless: &[],
        demotes_caller: false,
    }
}

impl Row {
    const fn body(mut self, body: &'static str) -> Self {
        self.body = Some(body);
        self
    }

    const fn scope(mut self, scope: Scope) -> Self {
        self.scope = scope;
        self
    }

    const fn unless(mut self, unless: &'static [(Position, u16, &'static str)]) -> Self {
        self.unless = unless;
        self
    }

    const fn demotes_caller(mut self) -> Self {
        self.demotes_caller = true;
        self
    }

    fn positions(&self) -> &'static [Position] {
        match (self.need, self.scope, self.target) {
            (Exempt(_), _, _) => &[],
            (_, Scope::Node, _) => &[Same, Child, Parent, Foreign],
            (_, _, Nothing) => &[Tenant],
            (_, _, _) => &[Tenant, Foreign],
        }
    }
}

/// One row per operation of the OpenAPI document.
#[rustfmt::skip]
const OPERATIONS: &[Row] = &[
    // ── public, or about the caller's own login: not tenant-scoped ──────────────────────────
    exempt("getLiveness",           "GET",   "/healthz",                          "public: liveness probe"),
    exempt("getReadiness",          "GET",   "/readyz",                           "public: readiness probe"),
    exempt("getJwks",               "GET",   "/.well-known/jwks.json",            "public: the keys that verify access tokens"),
    exempt("listPermissions",       "GET",   "/v1/permissions",                   "public: the fixed permission catalog"),
    exempt("signUp",                "POST",  "/v1/auth/signup",                   "public: creates a new organization"),
    exempt("logIn",                 "POST",  "/v1/auth/login",                    "public: authenticated by the password (R5)"),
    exempt("refreshTokens",         "POST",  "/v1/auth/refresh",                  "authenticated by the refresh token itself"),
    exempt("requestPasswordReset",  "POST",  "/v1/auth/password-reset",           "public: answers alike for every address"),
    exempt("confirmPasswordReset",  "POST",  "/v1/auth/password-reset/confirm",   "authenticated by the reset token"),
    exempt("logOut",                "POST",  "/v1/auth/logout",                   "the caller's own session"),
    exempt("switchAccount",         "POST",  "/v1/auth/switch-account",           "the caller's own memberships (R5)"),
    exempt("getMe",                 "GET",   "/v1/me",                            "the caller themself, with any valid token"),
    exempt("changeMyPassword",      "POST",  "/v1/me/password",                   "the caller's own password"),
    exempt("listMyAccounts",        "GET",   "/v1/accounts",                      "the caller's own memberships, before picking an account"),

    // ── accounts: the tree ──────────────────────────────────────────────────────────────────
    //  operation                method    path                                   needs                      target        allowed
    op("getAccount",            "GET",    "/v1/accounts/{account_id}",            AnyMember,                 Node,         200),
    op("getAccountTree",        "GET",    "/v1/accounts/{account_id}/tree",       AnyMember,                 Node,         200),
    op("createSubAccount",      "POST",   "/v1/accounts/{account_id}/children",   Perm("account.update"),    Node,         201)
        .body(r#"{ "name": "Annex $n", "kind": "location" }"#),
    op("updateAccount",         "PATCH",  "/v1/accounts/{account_id}",            Perm("account.update"),    Node,         200)
        .body(r#"{ "phone": "+1 555 0100" }"#),
    // Nobody closes or moves the node their own membership sits at: 409 at `Same`.
    op("closeAccount",          "POST",   "/v1/accounts/{account_id}/close",      Perm("account.update"),    FreshNode,    200)
        .unless(&[(Same, 409, "own-node")]),
    op("moveAccount",           "PUT",    "/v1/accounts/{account_id}/parent",     Perm("account.update"),    FreshNode,    200)
        .body(r#"{ "parent_id": "$location" }"#)
        .unless(&[(Same, 409, "own-node")]),
    // Only organizations (roots) have a billing profile: an allowed caller asking for one of a
    // sub-account gets 404. A member at G never reaches R's, so none of the callers succeeds.
    op("getBillingProfile",     "GET",    "/v1/accounts/{account_id}/billing",    Perm("account.billing"),   Node,         200)
        .unless(&[(Same, 404, "not-found"), (Child, 404, "not-found")]),
    op("updateBillingProfile",  "PUT",    "/v1/accounts/{account_id}/billing",    Perm("account.billing"),   Node,         200)
        .body(r#"{ "billing_email": "billing@example.com", "plan": "team", "seat_price_cents": 1500, "currency": "EUR" }"#)
        .unless(&[(Same, 404, "not-found"), (Child, 404, "not-found")]),

    // ── users ───────────────────────────────────────────────────────────────────────────────
    // The list is limited to the caller's subtree rather than refused: checked per role.
    op("listUsers",             "GET",    "/v1/users",                            Perm("users.read"),        Nothing,      200),
    // The target is the node in `account_id`; granting `viewer` passes R4 for whoever may manage users.
    op("createUser",            "POST",   "/v1/users",                            Perm("users.manage"),      Node,         201)
        .body(r#"{ "email": "new.$n@example.com", "first_name": "New", "last_name": "User", "password": "correct horse battery staple", "role_ids": ["$viewer_role"], "account_id": "$account" }"#),
    op("getUser",               "GET",    "/v1/users/{user_id}",                  Perm("users.read"),        Member,       200),
    op("updateUser",            "PATCH",  "/v1/users/{user_id}",                  Perm("users.manage"),      Member,       200)
        .body(r#"{ "phone": "+1 555 0101" }"#),
    op("setUserRoles",          "PUT",    "/v1/users/{user_id}/roles",            Perm("users.manage"),      FreshMember,  200)
        .body(r#"{ "role_ids": ["$limited_role"] }"#),
    op("moveUser",              "PUT",    "/v1/users/{user_id}/node",             Perm("users.manage"),      FreshMember,  200)
        .body(r#"{ "account_id": "$location" }"#),
    // Ownership is the organization's: handing it over acts on the root account, which a
    // membership at G does not reach (R2) — so even the owner at G must be refused. The target
    // is a fresh member at G (B's member at `Foreign`); a successful call demotes the caller to
    // admin, and the runner gives the role back.
    op("transferOwnership",     "POST",   "/v1/ownership/transfer",               Perm("account.transfer"),  FreshMember,  200)
        .body(r#"{ "user_id": "$user" }"#)
        .scope(Scope::Root)
        .demotes_caller(),

    // The life cycle (R10, R11): a fresh member is active, so reactivating it or restoring it
    // meets a rule of its own for every caller who may.
    op("deactivateUser",        "POST",   "/v1/users/{user_id}/deactivate",       Perm("users.manage"),      FreshMember,  200),
    op("reactivateUser",        "POST",   "/v1/users/{user_id}/reactivate",       Perm("users.manage"),      FreshMember,  409),
    op("deleteUser",            "DELETE", "/v1/users/{user_id}",                  Perm("users.manage"),      FreshMember,  200),
    op("restoreUser",           "POST",   "/v1/users/{user_id}/restore",          Perm("users.manage"),      FreshMember,  409),
    // Only organizations (roots) have seats: an allowed caller naming a sub-account gets 404.
    op("getSeats",              "GET",    "/v1/accounts/{account_id}/seats",      Perm("account.billing"),   Node,         200)
        .unless(&[(Same, 404, "not-found"), (Child, 404, "not-found")]),

    // ── roles: defined for the whole organization, so managing them needs reach over the root ─
    op("listRoles",             "GET",    "/v1/roles",                            AnyMember,                 Nothing,      200),
    op("getRole",               "GET",    "/v1/roles/{role_id}",                  AnyMember,                 Role,         200),
    op("createRole",            "POST",   "/v1/roles",                            Perm("roles.manage"),      Nothing,      201)
        .body(r#"{ "name": "Custom $n", "permissions": ["messages.read"] }"#)
        .scope(Scope::Root),
    op("updateRole",            "PATCH",  "/v1/roles/{role_id}",                  Perm("roles.manage"),      Role,         200)
        .body(r#"{ "description": "Checked by the authorization matrix" }"#)
        .scope(Scope::Root),
    op("deleteRole",            "DELETE", "/v1/roles/{role_id}",                  Perm("roles.manage"),      FreshRole,    204)
        .scope(Scope::Root),

    // ── invitations ─────────────────────────────────────────────────────────────────────────
    exempt("previewInvitation",     "POST",  "/v1/invitations/preview",           "public: authenticated by the link's token"),
    exempt("acceptInvitation",      "POST",  "/v1/invitations/accept",            "authenticated by the link's token (and the invitee's own login)"),
    // The list is limited to the caller's subtree rather than refused: checked per role.
    op("listInvites",           "GET",    "/v1/invites",                          Perm("users.invite"),      Nothing,      200),
    // The target is the node in `account_id`; granting `viewer` passes R4 for whoever may invite.
    op("createInvite",          "POST",   "/v1/invites",                          Perm("users.invite"),      Node,         201)
        .body(r#"{ "email": "invitee.$n@example.com", "role_ids": ["$viewer_role"], "account_id": "$account", "send_email": false }"#),
    op("getInvite",             "GET",    "/v1/invites/{invite_id}",              Perm("users.invite"),      Invite,       200),
    // Resending and copying the link rotate the token; the invitation stays pending.
    op("resendInvite",          "POST",   "/v1/invites/{invite_id}/resend",       Perm("users.invite"),      Invite,       200),
    op("copyInviteLink",        "POST",   "/v1/invites/{invite_id}/link",         Perm("users.invite"),      Invite,       200),
    op("revokeInvite",          "POST",   "/v1/invites/{invite_id}/revoke",       Perm("users.invite"),      FreshInvite,  200),

    // ── caretakers ──────────────────────────────────────────────────────────────────────────
    // The shared members have no caretaker: an allowed reader meets the `no-caretaker` rule.
    op("getCaretaker",          "GET",    "/v1/users/{user_id}/caretaker",        Perm("users.read"),        Member,       409),
    // `$helper` (a viewer of A at G) takes on a fresh member per allowed check.
    op("assignCaretaker",       "POST",   "/v1/users/{user_id}/caretaker",        Perm("caretakers.manage"), FreshMember,  201)
        .body(r#"{ "caretaker_id": "$helper" }"#),
    // A fresh member has no caretaker to replace or remove: allowed callers meet `no-caretaker`.
    op("replaceCaretaker",      "PUT",    "/v1/users/{user_id}/caretaker",        Perm("caretakers.manage"), FreshMember,  409)
        .body(r#"{ "caretaker_id": "$helper" }"#),
    op("removeCaretaker",       "DELETE", "/v1/users/{user_id}/caretaker",        Perm("caretakers.manage"), FreshMember,  409),
    op("listManagedUsers",      "GET",    "/v1/me/managed-users",                 AnyMember,                 Nothing,      200),
    exempt("actAsManagedUser",      "POST",  "/v1/me/acting-as",                  "the caller's own caretaker assignments (404 for anyone else's)"),
    exempt("stopActingAs",          "DELETE","/v1/me/acting-as",                  "the caller's own acting-as session"),

    // ── impersonation ───────────────────────────────────────────────────────────────────────
    // The shared viewer holds nothing an owner or admin lacks, so an allowed caller succeeds.
    op("startImpersonation",    "POST",   "/v1/impersonations",                   Perm("users.impersonate"), Member,       201)
        .body(r#"{ "user_id": "$user", "reason": "Authorization matrix check", "confirm": true }"#),
    exempt("getImpersonation",      "GET",   "/v1/impersonations/{impersonation_id}", "its actor, its target or audit.read; checked in tests/api/impersonation.rs"),
    exempt("endImpersonation",      "POST",  "/v1/impersonations/{impersonation_id}/end", "its actor or an owner; checked in tests/api/impersonation.rs"),
    // Only organizations (roots) have the list: an allowed caller naming a sub-account gets 404.
    op("listImpersonations",    "GET",    "/v1/accounts/{account_id}/impersonations", Perm("audit.read"),  Node,         200)
        .unless(&[(Same, 404, "not-found"), (Child, 404, "not-found")]),
    exempt("listMyImpersonations",  "GET",   "/v1/me/impersonations",             "the caller themself: who impersonated them"),

    // ── webhooks: the organization's, so managing them needs reach over the root ────────────
    op("createWebhook",         "POST",   "/v1/webhooks",                         Perm("webhooks.manage"),   Nothing,      201)
        .body(r#"{ "url": "https://93.184.216.34/hook", "events": ["*"] }"#)
        .scope(Scope::Root),
    op("listWebhooks",          "GET",    "/v1/webhooks",                         Perm("webhooks.manage"),   Nothing,      200)
        .scope(Scope::Root),
    // No shared endpoint exists: a well-formed id that names nothing (404 for whoever may look).
    op("getWebhook",            "GET",    "/v1/webhooks/{webhook_id}",            Perm("webhooks.manage"),   Nothing,      404)
        .scope(Scope::Root),
    op("updateWebhook",         "PATCH",  "/v1/webhooks/{webhook_id}",            Perm("webhooks.manage"),   Nothing,      404)
        .body(r#"{ "enabled": false }"#)
        .scope(Scope::Root),
    op("deleteWebhook",         "DELETE", "/v1/webhooks/{webhook_id}",            Perm("webhooks.manage"),   Nothing,      404)
        .scope(Scope::Root),
    op("listWebhookDeliveries", "GET",    "/v1/webhooks/{webhook_id}/deliveries", Perm("webhooks.manage"),   Nothing,      404)
        .scope(Scope::Root),
    op("replayWebhookDelivery", "POST",   "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/replay", Perm("webhooks.manage"), Nothing, 404)
        .scope(Scope::Root),

    // ── API keys: the organization's, managed from a person's own session with reach over the root ──
    op("createApiKey",          "POST",   "/v1/api-keys",                         Perm("api_keys.manage"),   Nothing,      201)
        .body(r#"{ "name": "matrix $n", "role_ids": ["$viewer_role"] }"#)
        .scope(Scope::Root),
    op("listApiKeys",           "GET",    "/v1/api-keys",                         Perm("api_keys.manage"),   Nothing,      200)
        .scope(Scope::Root),
    op("getApiKey",             "GET",    "/v1/api-keys/{key_id}",                Perm("api_keys.manage"),   Nothing,      404)
        .scope(Scope::Root),
    op("rotateApiKey",          "POST",   "/v1/api-keys/{key_id}/rotate",         Perm("api_keys.manage"),   Nothing,      404)
        .body(r#"{}"#)
        .scope(Scope::Root),
    op("revokeApiKey",          "DELETE", "/v1/api-keys/{key_id}",                Perm("api_keys.manage"),   Nothing,      404)
        .scope(Scope::Root),
    exempt("exchangeClientCredentials", "POST", "/v1/oauth/token",               "public: the API key is the credential; checked in tests/api/api_keys.rs"),

    // ── notifications ───────────────────────────────────────────────────────────────────────
    op("postUserNotification",  "POST",   "/v1/users/{user_id}/notifications",    Perm("notifications.send"), Member,      202)
        .body(r#"{ "subject": "Text message received", "body": "From +1 555 0100: hello" }"#),
    // The outbox is the organization's: reading it or retrying needs reach over the root.
    op("listNotifications",     "GET",    "/v1/notifications",                    Perm("notifications.manage"), Nothing,   200)
        .scope(Scope::Root),
    op("retryNotification",     "POST",   "/v1/notifications/{notification_id}/retry", Perm("notifications.manage"), Nothing, 404)
        .scope(Scope::Root),

    // ── contacts (R12): a contact outside the caller's view answers 404 (see
    //    `expected_for_contact`); the list is cut to the caller's view rather than refused ─────
    // A caller with contacts.read_assigned alone creates contacts assigned to themself.
    op("createContact",         "POST",   "/v1/accounts/{account_id}/contacts",   Perm("contacts.write"),    Node,         201)
        .body(r#"{ "name": "Contact $n", "company": "Matrix" }"#),
    op("listContacts",          "GET",    "/v1/contacts",                         Perm("contacts.read_assigned"), Nothing, 200),
    op("getContact",            "GET",    "/v1/contacts/{contact_id}",            Perm("contacts.read_assigned"), Contact, 200),
    op("updateContact",         "PATCH",  "/v1/contacts/{contact_id}",            Perm("contacts.write"),    Contact,      200)
        .body(r#"{ "company": "Checked $n" }"#),
    op("deleteContact",         "DELETE", "/v1/contacts/{contact_id}",            Perm("contacts.delete"),   FreshContact, 204),
    // Moving the contacts of a subtree needs write and read_all over it; nobody's contacts
    // (a well-formed id that names no one) go to `$helper`, an active viewer at G: 0 moved.
    op("reassignContacts",      "POST",   "/v1/contacts/reassign",                All(&["contacts.write", "contacts.read_all"]), Node, 200)
        .body(r#"{ "from_user_id": "usr_00000000000000000000000000", "to_user_id": "$helper", "account_id": "$account" }"#),
    op("sendContactNotice",     "POST",   "/v1/accounts/{account_id}/contact-notices", Perm("notifications.send"), Node,   202)
        .body(r#"{ "subscription": "invoices", "subject": "Invoice $n", "body": "Checked by the authorization matrix" }"#),

    // ── the audit log: the organization's own, so like the billing profile an allowed caller
    //    asking for a sub-account's gets 404, and a member at G never reaches R's ──────────────
    op("listAuditEvents",       "GET",    "/v1/accounts/{account_id}/audit-events",        Perm("audit.read"), Node, 200)
        .unless(&[(Same, 404, "not-found"), (Child, 404, "not-found")]),
    op("exportAuditEvents",     "GET",    "/v1/accounts/{account_id}/audit-events/export", Perm("audit.read"), Node, 200)
        .unless(&[(Same, 404, "not-found"), (Child, 404, "not-found")]),
];

// ---------------------------------------------------------------------------------------------
// The built-in roles (PRODUCT.md, "Roles and permissions")
// ---------------------------------------------------------------------------------------------

/// The built-in roles, in the column order of [`HOLDS`].
#[rustfmt::skip]
const ROLES: [&str; 7] = ["owner", "admin", "standard", "limited", "guest", "messaging_agent", "viewer"];

const Y: bool = true;
const N: bool = false;

/// Which built-in role holds which permission, for the permissions the rows use. From
/// PRODUCT.md: owner "everything, including billing and ownership transfer"; admin "everything
/// but ownership transfer and managing owners" (and "owners and admins can define custom
/// roles"); standard "all contacts and data; no user management, no settings" (reading the
/// users is data, not management); limited "only contacts assigned to them"; guest "one
/// assigned record"; messaging_agent "read and send messages"; viewer "read only, no
/// messaging, no settings".
#[rustfmt::skip]
const HOLDS: &[(&str, [bool; 7])] = &[
    //                     owner admin standard limited guest messaging viewer
    ("account.update",   [ Y,    Y,    N,       N,      N,    N,        N ]),
    ("account.billing",  [ Y,    Y,    N,       N,      N,    N,        N ]),
    ("account.transfer", [ Y,    N,    N,       N,      N,    N,        N ]),
    ("users.read",       [ Y,    Y,    Y,       N,      N,    N,        Y ]),
    ("users.manage",     [ Y,    Y,    N,       N,      N,    N,        N ]),
    ("roles.manage",     [ Y,    Y,    N,       N,      N,    N,        N ]),
    ("users.invite",     [ Y,    Y,    N,       N,      N,    N,        N ]),
    ("caretakers.manage",[ Y,    Y,    N,       N,      N,    N,        N ]),
    ("notifications.send",   [ Y, Y,   N,       N,      N,    N,        N ]),
    ("notifications.manage", [ Y, Y,   N,       N,      N,    N,        N ]),
    ("users.impersonate",[ Y,    Y,    N,       N,      N,    N,        N ]),
    ("audit.read",       [ Y,    Y,    N,       N,      N,    N,        N ]),
    ("webhooks.manage",  [ Y,    Y,    N,       N,      N,    N,        N ]),
    ("api_keys.manage",  [ Y,    Y,    N,       N,      N,    N,        N ]),
    // SCIM provisioning is user management and settings (issue 12).
    ("scim.provision",   [ Y,    Y,    N,       N,      N,    N,        N ]),
    // "all contacts" (standard), "only contacts assigned to them" (limited), "one assigned
    // record" (guest), "read only" (viewer); standard "cannot delete contacts".
    ("contacts.read_all",      [ Y, Y, Y,       N,      N,    N,        Y ]),
    ("contacts.read_assigned", [ Y, Y, Y,       Y,      Y,    N,        Y ]),
    ("contacts.write",         [ Y, Y, Y,       Y,      N,    N,        N ]),
    ("contacts.delete",        [ Y, Y, N,       N,      N,    N,        N ]),
];

fn holds(role: &str, permission: &str) -> bool {
    let column = ROLES
        .iter()
        .position(|r| *r == role)
        .unwrap_or_else(|| panic!("{role} is not a built-in role"));
    HOLDS
        .iter()
        .find(|(p, _)| *p == permission)
        .map(|(_, by_role)| by_role[column])
        .unwrap_or_else(|| panic!("{permission} has no line in HOLDS"))
}

fn may(need: Need, role: &str) -> bool {
    match need {
        Exempt(_) | AnyMember => true,
        Perm(p) => holds(role, p),
        All(list) => list.iter().all(|p| holds(role, p)),
    }
}

const FORBIDDEN: (u16, Option<&str>) = (403, Some("forbidden"));
const NOT_FOUND: (u16, Option<&str>) = (404, Some("not-found"));

/// A contact is seen by `contacts.read_all` at or below the caller's node, and by
/// `contacts.read_assigned` alone only when assigned to the caller (the matrix's contacts are
/// unassigned); outside that view it answers 404 as if it did not exist (R12), whatever else
/// the caller may do. A caller who reads no contacts at all is refused first (403), which
/// tells nothing about ids; another organization's contact is 404 for everyone (R1).
fn expected_for_contact(row: &Row, role: &str, position: Position) -> (u16, Option<&'static str>) {
    let reads_any = holds(role, "contacts.read_all") || holds(role, "contacts.read_assigned");
    match position {
        Foreign => NOT_FOUND,
        _ if !reads_any => FORBIDDEN,
        Parent => NOT_FOUND,
        _ if !holds(role, "contacts.read_all") => NOT_FOUND,
        _ if !may(row.need, role) => FORBIDDEN,
        _ => (row.ok, None),
    }
}

/// The status and problem type the spec expects for one check.
fn expected(row: &Row, role: &str, position: Position) -> (u16, Option<&'static str>) {
    if matches!(row.target, Contact | FreshContact) {
        return expected_for_contact(row, role, position);
    }
    match position {
        Foreign => NOT_FOUND,
        Parent => FORBIDDEN,
        Same | Child | Tenant => {
            if row.scope == Scope::Root || !may(row.need, role) {
                return FORBIDDEN;
            }
            match row.unless.iter().find(|(p, _, _)| *p == position) {
                Some((_, status, slug)) => (*status, Some(*slug)),
                None => (row.ok, None),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

struct Caller {
    role: &'static str,
    user_id: String,
    token: String,
}

struct Fixture {
    a: Org,
    b: Org,
    /// One member at G per built-in role, holding that role only.
    callers: Vec<Caller>,
    /// Shared viewer members at G, L and R, and at B's root (`Foreign`).
    members: HashMap<Position, String>,
    /// A custom role of A and one of B.
    role_a: String,
    role_b: String,
    /// Shared pending invitations to G, L, R and B's root.
    invites: HashMap<Position, String>,
    /// Shared unassigned contacts at G, L, R and B's root.
    contacts: HashMap<Position, String>,
    /// The ids of A's built-in roles, by key.
    a_roles: HashMap<&'static str, String>,
    b_viewer_role: String,
    /// A viewer of A at G who serves as the caretaker in caretaker checks (`$helper`).
    helper: String,
    /// Numbers names and emails so that they never collide.
    n: usize,
}

impl Fixture {
    async fn build(app: &TestApp) -> Self {
        let a = app.org("owner.a@example.com").await;
        let b = app.org("owner.b@example.com").await;
        let mut callers = Vec::new();
        for role in ROLES {
            let email = format!("{role}.at.group@example.com");
            let (user_id, token) = app.member(&a.owner_token, &email, &[role], &a.group).await;
            callers.push(Caller { role, user_id, token });
        }
        let mut a_roles = HashMap::new();
        for role in ROLES {
            a_roles.insert(role, app.role_id(&a.owner_token, role).await);
        }
        let mut fx = Self {
            a_roles,
            b_viewer_role: app.role_id(&b.owner_token, "viewer").await,
            a,
            b,
            callers,
            members: HashMap::new(),
            role_a: String::new(),
            role_b: String::new(),
            invites: HashMap::new(),
            contacts: HashMap::new(),
            helper: String::new(),
            n: 0,
        };
        fx.helper = fx.new_member(app, Same).await;
        for position in [Same, Child, Parent, Foreign] {
            let member = fx.new_member(app, position).await;
            fx.members.insert(position, member);
            let invite = fx.new_invite(app, position).await;
            fx.invites.insert(position, invite);
            let contact = fx.new_contact(app, position).await;
            fx.contacts.insert(position, contact);
        }
        fx.role_a = fx.new_role(app, Tenant).await;
        fx.role_b = fx.new_role(app, Foreign).await;
        fx
    }

    fn next(&mut self) -> usize {
        self.n += 1;
        self.n
    }

    /// The node at a position.
    fn node(&self, position: Position) -> &str {
        match position {
            Same | Tenant => &self.a.group,
            Child => &self.a.location,
            Parent => &self.a.root,
            Foreign => &self.b.root,
        }
    }

    /// The token of the owner of the organization a position is in.
    fn owner_of(&self, position: Position) -> &str {
        match position {
            Foreign => &self.b.owner_token,
            _ => &self.a.owner_token,
        }
    }

    /// A new `viewer` member at the position's node, made by its organization's owner without
    /// logging them in (one password hash).
    async fn new_member(&mut self, app: &TestApp, position: Position) -> String {
        let n = self.next();
        let role = match position {
            Foreign => &self.b_viewer_role,
            _ => &self.a_roles["viewer"],
        };
        let (status, body) = app
            .post(
                "/v1/users",
                json!({
                    "email": format!("target.{n}@example.com"), "first_name": "Target", "last_name": format!("No {n}"),
                    "password": PASSWORD, "role_ids": [role], "account_id": self.node(position),
                }),
                Some(self.owner_of(position)),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "create target member: {body}");
        body["user"]["id"].as_str().unwrap().to_string()
    }

    /// A new custom role (no permissions) of the position's organization.
    async fn new_role(&mut self, app: &TestApp, position: Position) -> String {
        let n = self.next();
        let (status, body) = app
            .post(
                "/v1/roles",
                json!({ "name": format!("Target role {n}"), "permissions": [] }),
                Some(self.owner_of(position)),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "create target role: {body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// A new pending invitation (role `viewer`) to the position's node, by its organization's owner.
    async fn new_invite(&mut self, app: &TestApp, position: Position) -> String {
        let n = self.next();
        let role = match position {
            Foreign => &self.b_viewer_role,
            _ => &self.a_roles["viewer"],
        };
        let (status, body) = app
            .post(
                "/v1/invites",
                json!({
                    "email": format!("invited.{n}@example.com"), "role_ids": [role],
                    "account_id": self.node(position), "send_email": false,
                }),
                Some(self.owner_of(position)),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "create target invitation: {body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// A new unassigned contact at the position's node, by its organization's owner.
    async fn new_contact(&mut self, app: &TestApp, position: Position) -> String {
        let n = self.next();
        let (status, body) = app
            .create_contact(
                self.owner_of(position),
                self.node(position),
                json!({ "name": format!("Target contact {n}"), "email": format!("contact.{n}@example.com"), "subscriptions": ["invoices"] }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "create target contact: {body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// What the row's placeholders name for this check.
    async fn target(&mut self, app: &TestApp, row: &Row, role: &str, position: Position) -> Ids {
        let mut account = self.node(position).to_string();
        let mut user = String::new();
        let mut custom_role = String::new();
        let mut invite = String::new();
        let mut contact = String::new();
        match row.target {
            Nothing | Node => {}
            FreshNode => {
                if position == Child {
                    let n = self.next();
                    account = app
                        .sub_account(&self.a.owner_token, &self.a.group, "location", &format!("Fresh {n}"))
                        .await;
                }
            }
            Member => user = self.members[&self.member_position(position)].clone(),
            FreshMember => {
                user = if position != Foreign && may(row.need, role) {
                    self.new_member(app, self.member_position(position)).await
                } else {
                    self.members[&self.member_position(position)].clone()
                }
            }
            Role => {
                custom_role = match position {
                    Foreign => self.role_b.clone(),
                    _ => self.role_a.clone(),
                }
            }
            FreshRole => custom_role = self.new_role(app, position).await,
            Invite => invite = self.invites[&self.member_position(position)].clone(),
            FreshInvite => invite = self.new_invite(app, self.member_position(position)).await,
            Contact => contact = self.contacts[&self.member_position(position)].clone(),
            FreshContact => {
                contact = if position != Foreign && may(row.need, role) {
                    self.new_contact(app, self.member_position(position)).await
                } else {
                    self.contacts[&self.member_position(position)].clone()
                }
            }
        }
        Ids {
            account,
            user,
            role: custom_role,
            invite,
            contact,
        }
    }

    fn member_position(&self, position: Position) -> Position {
        match position {
            Tenant => Same,
            other => other,
        }
    }
}

/// The ids a check's placeholders stand for.
struct Ids {
    account: String,
    user: String,
    role: String,
    invite: String,
    contact: String,
}

fn fill(template: &str, ids: &Ids, fx: &Fixture, n: usize) -> String {
    template
        .replace("{account_id}", &ids.account)
        .replace("{user_id}", &ids.user)
        .replace("{role_id}", &ids.role)
        .replace("{invite_id}", &ids.invite)
        .replace("{contact_id}", &ids.contact)
        // No shared notification exists: a well-formed id that names nothing.
        .replace("{notification_id}", "ntf_00000000000000000000000000")
        .replace("{delivery_id}", "ntf_00000000000000000000000000")
        .replace("{webhook_id}", "whk_00000000000000000000000000")
        .replace("{key_id}", "key_00000000000000000000000000")
        .replace("$account", &ids.account)
        .replace("$user", &ids.user)
        .replace("$location", &fx.a.location)
        .replace("$helper", &fx.helper)
        .replace("$viewer_role", &fx.a_roles["viewer"])
        .replace("$limited_role", &fx.a_roles["limited"])
        .replace("$n", &n.to_string())
}

fn describe(status: u16, slug: Option<&str>) -> String {
    match slug {
        Some(slug) => format!("{status} {slug}"),
        None => status.to_string(),
    }
}

/// Sends one request; returns a description of the mismatch, if any.
async fn check(app: &TestApp, fx: &mut Fixture, row: &Row, caller: usize, position: Position) -> Option<String> {
    let role = fx.callers[caller].role;
    let (want, want_slug) = expected(row, role, position);
    let ids = fx.target(app, row, role, position).await;
    let n = fx.next();
    let path = fill(row.path, &ids, fx, n);
    let body = row.body.map(|b| {
        let text = fill(b, &ids, fx, n);
        serde_json::from_str::<Value>(&text)
            .unwrap_or_else(|e| panic!("{}: the body is not JSON ({e}): {text}", row.op))
    });
    let method = Method::from_bytes(row.method.as_bytes()).expect("method");
    let caller = &fx.callers[caller];
    let (status, response) = app.call(method, &path, body, Some(&caller.token)).await;

    let mut trouble = None;
    if row.demotes_caller && status.is_success() {
        // Give the caller their role back so the checks that follow see the fixture intact.
        let (restored, answer) = app
            .put(
                &format!("/v1/users/{}/roles", caller.user_id),
                json!({ "role_ids": [fx.a_roles[role]] }),
                Some(&fx.a.owner_token),
            )
            .await;
        if restored != StatusCode::OK {
            trouble = Some(format!(
                " (the call demoted the caller, who could not be restored as {role}: {restored} {answer})"
            ));
        }
    }
    let got_slug = response["type"]
        .as_str()
        .and_then(|t| t.strip_prefix("urn:steward:problem:"));
    let matches = status.as_u16() == want && (want_slug.is_none() || got_slug == want_slug);
    if matches && trouble.is_none() {
        return None;
    }
    Some(format!(
        "{} as {role} on {position:?} target ({} {path}): expected {}, got {}: {response}{}",
        row.op,
        row.method,
        describe(want, want_slug),
        describe(status.as_u16(), got_slug),
        trouble.unwrap_or_default(),
    ))
}

#[tokio::test]
async fn authz_matrix_holds_on_every_backend() {
    // Every backend runs to the end; the mismatches of all of them are reported at once.
    let reports = Arc::new(Mutex::new(Vec::new()));
    on_each_backend(|app| {
        let reports = reports.clone();
        async move {
            let mut fx = Fixture::build(&app).await;
            let mut mismatches = Vec::new();
            let mut checks = 0;
            for row in OPERATIONS {
                for caller in 0..fx.callers.len() {
                    for &position in row.positions() {
                        checks += 1;
                        if let Some(mismatch) = check(&app, &mut fx, row, caller, position).await {
                            mismatches.push(mismatch);
                        }
                    }
                }
            }
            if !mismatches.is_empty() {
                reports.lock().unwrap().push(format!(
                    "on {:?}, {} of {checks} checks failed:\n  {}",
                    app.backend,
                    mismatches.len(),
                    mismatches.join("\n  ")
                ));
            }
        }
    })
    .await;
    let reports = reports.lock().unwrap();
    assert!(reports.is_empty(), "authorization matrix: {}", reports.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// The tables themselves
// ---------------------------------------------------------------------------------------------

/// Every operation of the OpenAPI document has exactly one row, with its method and path, and
/// every row names an operation that exists.
#[test]
fn authz_matrix_has_a_row_for_every_operation() {
    let doc = serde_json::to_value(steward::openapi::document()).expect("document");
    let mut documented: BTreeMap<String, (String, String)> = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            if let Some(id) = operation.get("operationId").and_then(Value::as_str) {
                documented.insert(id.to_string(), (method.to_uppercase(), path.clone()));
            }
        }
    }
    let mut problems = Vec::new();
    for (id, (method, path)) in &documented {
        let rows: Vec<&Row> = OPERATIONS.iter().filter(|r| r.op == id).collect();
        match rows.as_slice() {
            [] => problems.push(format!("{id} ({method} {path}) has no row in OPERATIONS")),
            [row] if (row.method, row.path) != (method.as_str(), path.as_str()) => problems.push(format!(
                "{id}: the row says {} {}, the document {method} {path}",
                row.method, row.path
            )),
            [_] => {}
            _ => problems.push(format!("{id} has {} rows in OPERATIONS", rows.len())),
        }
    }
    for row in OPERATIONS {
        if !documented.contains_key(row.op) {
            problems.push(format!(
                "the row {} names an operation the OpenAPI document does not have",
                row.op
            ));
        }
        let needed: &[&str] = match &row.need {
            Perm(p) => std::slice::from_ref(p),
            All(list) => list,
            Exempt(_) | AnyMember => &[],
        };
        for p in needed {
            if !HOLDS.iter().any(|(held, _)| held == p) {
                problems.push(format!("{}: {p} has no line in HOLDS", row.op));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "the authorization matrix is incomplete:\n  {}",
        problems.join("\n  ")
    );
}

/// The role table of PRODUCT.md, as written in [`HOLDS`], is the code's catalog too.
#[test]
fn authz_matrix_roles_agree_with_the_catalog() {
    use steward::domain::permissions::{BuiltinRole, Permission};
    let mut problems = Vec::new();
    for (permission, by_role) in HOLDS {
        let parsed = Permission::parse(permission);
        let Some(parsed) = parsed else {
            problems.push(format!("{permission} is not in the catalog"));
            continue;
        };
        for (column, role) in ROLES.iter().enumerate() {
            let builtin = BuiltinRole::parse(role).unwrap_or_else(|| panic!("{role} is not built in"));
            let in_code = builtin.permissions().contains(&parsed);
            if in_code != by_role[column] {
                problems.push(format!(
                    "{role} {} {permission} in PRODUCT.md but {} it in src/auth/permissions.rs",
                    if by_role[column] { "holds" } else { "lacks" },
                    if in_code { "holds" } else { "lacks" },
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

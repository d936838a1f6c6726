// The invite flow, driven through openapi-fetch with the types that openapi-typescript
// generated from the committed openapi/openapi.json (tests/clients/run.sh writes them to
// schema.d.ts next to a copy of this file, type-checks it with `tsc --noEmit` in strict
// mode, then runs it with tsx).
//
// Paths, bodies and answers are all typed by the spec: a path, a field or an enum value
// the spec does not have fails the type check; a wire value that differs fails at run time.
//
// Usage: tsx flow.ts BASE_URL

import { randomBytes } from "node:crypto";

import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

type Schemas = components["schemas"];

// Fresh people on every run, so that the flow can run again against the same server.
const RUN = randomBytes(4).toString("hex");
const OWNER_EMAIL = `ada.typescript.${RUN}@example.com`;
const OWNER_PASSWORD = "correct horse battery staple";
const ORG_NAME = "Acme Dental (TypeScript)";
const INVITEE_EMAIL = `grace.typescript.${RUN}@example.com`;
const INVITEE_PASSWORD = "a brand new long password";

function fail(step: string, message: string): never {
  console.log(`FAIL [${step}] ${message}`);
  process.exit(1);
}

function check(step: string, condition: boolean, message: string): void {
  if (!condition) fail(step, message);
}

function present<T>(step: string, value: T | null | undefined, what: string): T {
  if (value === null || value === undefined) fail(step, `${what} is missing or null`);
  return value;
}

/** The documented body of a documented status, or a failure naming what came instead. */
function expectStatus<T>(
  step: string,
  result: { data?: T; error?: unknown; response: Response },
  status: number,
): T {
  const { data, error, response } = result;
  if (response.status !== status || data === undefined) {
    fail(step, `expected ${status}, got ${response.status}: ${JSON.stringify(error ?? data)}`);
  }
  console.log(`ok   [${step}] ${response.status}`);
  return data;
}

/** A documented error status with the spec's Problem body. */
function expectProblem(
  step: string,
  result: { data?: unknown; error?: Schemas["Problem"]; response: Response },
  status: number,
  kind: string,
): Schemas["Problem"] {
  const { data, error, response } = result;
  if (response.status !== status || error === undefined) {
    fail(step, `expected ${status} problem, got ${response.status}: ${JSON.stringify(error ?? data)}`);
  }
  check(step, error.status === status, `problem.status is ${error.status}`);
  check(step, error.type === `urn:steward:problem:${kind}`, `problem.type is ${error.type}`);
  check(
    step,
    (response.headers.get("content-type") ?? "").startsWith("application/problem+json"),
    `content-type is ${response.headers.get("content-type")}`,
  );
  console.log(`ok   [${step}] ${response.status} Problem ${kind}`);
  return error;
}

const show = (value: unknown): string => JSON.stringify(value);

function builtinRoles(membership: Schemas["MyMembership"]): string[] {
  return membership.roles.map((r) => r.builtin ?? `custom:${r.name}`).sort();
}

async function main(baseUrl: string): Promise<void> {
  const anon = createClient<paths>({ baseUrl });
  const as = (token: string) =>
    createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${token}` } });

  // 1. Sign up: a new organization and its owner, logged in at once.
  let step = "signUp";
  const signup = expectStatus(
    step,
    await anon.POST("/v1/auth/signup", {
      body: {
        organization_name: ORG_NAME,
        email: OWNER_EMAIL,
        first_name: "Ada",
        last_name: "Lovelace",
        password: OWNER_PASSWORD,
      },
    }),
    201,
  );
  const org: Schemas["AccountSummary"] = present(step, signup.account, "account");
  check(step, org.kind === "organization", `account.kind is ${show(org.kind)}`);
  check(step, org.name === ORG_NAME && org.root_id === org.id, `account is ${show(org)}`);
  check(step, signup.user.email === OWNER_EMAIL, `user.email is ${show(signup.user.email)}`);
  check(step, signup.user.status === "active", `user.status is ${show(signup.user.status)}`);
  check(step, signup.token_type === "Bearer", `token_type is ${show(signup.token_type)}`);
  check(step, signup.account_selection_required === false, "account_selection_required");
  present(step, signup.refresh_token, "refresh_token");
  const ownerId = signup.user.id;
  console.log(`     organization ${org.id}, owner ${ownerId}`);

  // 2. Log in by email (a wrong password first: a documented 401 problem).
  step = "logIn (wrong password)";
  expectProblem(
    step,
    await anon.POST("/v1/auth/login", { body: { identifier: OWNER_EMAIL, password: "not the password" } }),
    401,
    "invalid-credentials",
  );
  step = "logIn (owner)";
  const login = expectStatus(
    step,
    await anon.POST("/v1/auth/login", {
      body: { identifier: OWNER_EMAIL, password: OWNER_PASSWORD },
    }),
    200,
  );
  check(step, login.user.id === ownerId, `user.id is ${show(login.user.id)}`);
  check(step, present(step, login.account, "account").id === org.id, "account is not the organization");
  check(
    step,
    show(login.accounts.map((a) => a.account.id)) === show([org.id]),
    `accounts are ${show(login.accounts)}`,
  );
  const owner = as(login.access_token);

  // 3. Who am I?
  step = "getMe (owner)";
  const me = expectStatus(step, await owner.GET("/v1/me"), 200);
  check(step, me.user.id === ownerId, `user.id is ${show(me.user.id)}`);
  const meAccount = present(step, me.account, "account");
  check(step, meAccount.id === org.id && meAccount.kind === "organization", `account is ${show(meAccount)}`);
  const membership = present(step, me.membership, "membership");
  check(step, show(builtinRoles(membership)) === show(["owner"]), `roles are ${show(membership.roles)}`);
  check(step, membership.node.id === org.id, `membership.node is ${show(membership.node)}`);
  check(step, me.permissions.includes("users.invite"), `permissions are ${show(me.permissions)}`);
  check(step, me.acting_as === null || me.acting_as === undefined, `acting_as is ${show(me.acting_as)}`);
  console.log(`     roles ${show(builtinRoles(membership))}, ${me.permissions.length} permissions`);

  // 4. A sub-account below the organization.
  step = "createSubAccount";
  const sub = expectStatus(
    step,
    await owner.POST("/v1/accounts/{account_id}/children", {
      params: { path: { account_id: org.id } },
      body: { name: "North Region", kind: "group" },
    }),
    201,
  );
  check(step, sub.kind === "group", `kind is ${show(sub.kind)}`);
  check(step, sub.status === "active", `status is ${show(sub.status)}`);
  check(
    step,
    sub.parent_id === org.id && sub.root_id === org.id && sub.depth === 1,
    `parent_id ${show(sub.parent_id)}, root_id ${show(sub.root_id)}, depth ${show(sub.depth)}`,
  );
  check(step, sub.name === "North Region", `name is ${show(sub.name)}`);
  console.log(`     sub-account ${sub.id}`);

  // 5. The organization's roles, to invite someone as `standard`.
  step = "listRoles";
  const roles = expectStatus(step, await owner.GET("/v1/roles"), 200);
  const builtins = roles.flatMap((r) => (r.builtin ? [r.builtin] : [])).sort();
  for (const expected of ["admin", "guest", "limited", "owner", "standard", "viewer"]) {
    check(step, builtins.includes(expected), `built-in role ${expected} missing from ${show(builtins)}`);
  }
  const standard = present(step, roles.find((r) => r.builtin === "standard"), "the standard role");

  // 6. Invite someone into the sub-account, without email (copy-link flow).
  step = "createInvite";
  const invite = expectStatus(
    step,
    await owner.POST("/v1/invites", {
      body: { email: INVITEE_EMAIL, role_ids: [standard.id], account_id: sub.id, send_email: false },
    }),
    201,
  );
  check(step, invite.status === "pending", `status is ${show(invite.status)}`);
  check(step, invite.email === INVITEE_EMAIL, `email is ${show(invite.email)}`);
  check(step, invite.account_id === sub.id, `account_id is ${show(invite.account_id)}`);
  check(step, invite.invited_by === ownerId, `invited_by is ${show(invite.invited_by)}`);
  check(
    step,
    show(invite.roles.map((r) => [r.id, r.builtin, r.name])) === show([[standard.id, "standard", "Standard"]]),
    `roles are ${show(invite.roles)}`,
  );
  check(step, invite.requires_record_assignment === false, "requires_record_assignment");
  const firstUrl = present(step, invite.registration_url, "registration_url (send_email: false)");
  console.log(`     invite ${invite.id}`);

  // 7. A fresh link to copy; its token is in the query string.
  step = "copyInviteLink";
  const linked = expectStatus(
    step,
    await owner.POST("/v1/invites/{invite_id}/link", { params: { path: { invite_id: invite.id } } }),
    200,
  );
  check(step, linked.id === invite.id && linked.status === "pending", `invite is ${show(linked)}`);
  const url = new URL(present(step, linked.registration_url, "registration_url"));
  const token = present(step, url.searchParams.get("token"), "token in the link");
  check(step, token.length > 20, `token is ${show(token)}`);
  check(step, url.href !== firstUrl, "the link was not replaced");
  console.log(`     link ${url.pathname}?token=…`);

  step = "previewInvitation (replaced link)";
  const oldToken = present(step, new URL(firstUrl).searchParams.get("token"), "token in the first link");
  expectProblem(step, await anon.POST("/v1/invitations/preview", { body: { token: oldToken } }), 404, "not-found");

  // 8. The invitee previews the invitation (no authentication).
  step = "previewInvitation";
  const preview = expectStatus(step, await anon.POST("/v1/invitations/preview", { body: { token } }), 200);
  check(step, preview.account_name === ORG_NAME, `account_name is ${show(preview.account_name)}`);
  check(step, preview.email === INVITEE_EMAIL, `email is ${show(preview.email)}`);
  check(step, preview.inviter_name === "Ada Lovelace", `inviter_name is ${show(preview.inviter_name)}`);

  // 9. ... and accepts it as a new person, with names and a password.
  step = "acceptInvitation";
  const accepted = expectStatus(
    step,
    await anon.POST("/v1/invitations/accept", {
      body: { token, first_name: "Grace", last_name: "Hopper", password: INVITEE_PASSWORD },
    }),
    201,
  );
  check(step, accepted.account.id === org.id, `account is ${show(accepted.account)}`);
  check(step, accepted.membership.status === "active", `membership.status is ${show(accepted.membership.status)}`);
  check(step, accepted.membership.account_id === sub.id, `membership.account_id is ${show(accepted.membership.account_id)}`);
  check(
    step,
    show(accepted.membership.roles.map((r) => [r.builtin, r.name])) === show([["standard", "Standard"]]),
    `membership.roles are ${show(accepted.membership.roles)}`,
  );
  const session = present(step, accepted.session, "session");
  check(step, session.user.email === INVITEE_EMAIL, `session.user.email is ${show(session.user.email)}`);
  check(step, present(step, session.account, "session.account").id === org.id, `session.account is ${show(session.account)}`);
  const inviteeId = session.user.id;
  console.log(`     new user ${inviteeId}`);

  step = "acceptInvitation (again)";
  expectProblem(
    step,
    await anon.POST("/v1/invitations/accept", {
      body: { token, first_name: "Grace", last_name: "Hopper", password: INVITEE_PASSWORD },
    }),
    404,
    "not-found",
  );

  // 10. The new user logs in with their own password and reads /v1/me.
  step = "logIn (invitee)";
  const login2 = expectStatus(
    step,
    await anon.POST("/v1/auth/login", { body: { identifier: INVITEE_EMAIL, password: INVITEE_PASSWORD } }),
    200,
  );
  check(step, login2.user.id === inviteeId, `user.id is ${show(login2.user.id)}`);
  check(step, login2.account_selection_required === false, "account_selection_required");
  const invitee = as(login2.access_token);

  step = "getMe (invitee)";
  const me2 = expectStatus(step, await invitee.GET("/v1/me"), 200);
  check(step, me2.user.id === inviteeId, `user.id is ${show(me2.user.id)}`);
  check(step, me2.user.first_name === "Grace" && me2.user.last_name === "Hopper", `user is ${show(me2.user)}`);
  check(step, me2.user.must_change_password === false, "must_change_password");
  check(step, present(step, me2.account, "account").id === org.id, `account is ${show(me2.account)}`);
  const membership2 = present(step, me2.membership, "membership");
  check(
    step,
    membership2.node.id === sub.id && membership2.node.kind === "group",
    `membership.node is ${show(membership2.node)}`,
  );
  check(step, show(builtinRoles(membership2)) === show(["standard"]), `roles are ${show(membership2.roles)}`);
  check(step, !me2.permissions.includes("users.invite"), `a standard user may invite: ${show(me2.permissions)}`);
  console.log(
    `     roles ${show(builtinRoles(membership2))} at ${membership2.node.id}, ${me2.permissions.length} permissions`,
  );

  // 11. A retried create with an Idempotency-Key creates once.
  step = "createSubAccount (idempotent retry)";
  const key = `retry-${RUN}`;
  const once = await owner.POST("/v1/accounts/{account_id}/children", {
    params: { path: { account_id: org.id }, header: { "Idempotency-Key": key } },
    body: { name: "South Region", kind: "group" },
  });
  const twice = await owner.POST("/v1/accounts/{account_id}/children", {
    params: { path: { account_id: org.id }, header: { "Idempotency-Key": key } },
    body: { name: "South Region", kind: "group" },
  });
  const first = expectStatus(step, once, 201);
  const again = expectStatus(step, twice, 201);
  check(step, first.id === again.id, `two ids: ${first.id} and ${again.id}`);
  check(step, twice.response.headers.get("idempotent-replayed") === "true", "not marked as a replay");

  // 12. Concurrent edits: a stale If-Match is refused, the current one goes through.
  step = "getUser (ETag)";
  const read = await owner.GET("/v1/users/{user_id}", { params: { path: { user_id: inviteeId } } });
  expectStatus(step, read, 200);
  const etag = present(step, read.response.headers.get("etag"), "ETag");
  step = "updateUser (current If-Match)";
  const updated = await owner.PATCH("/v1/users/{user_id}", {
    params: { path: { user_id: inviteeId }, header: { "If-Match": etag } },
    body: { phone: "+1 555 0100" },
  });
  check(step, expectStatus(step, updated, 200).user.phone === "+1 555 0100", "phone not set");
  step = "updateUser (stale If-Match)";
  expectProblem(
    step,
    await owner.PATCH("/v1/users/{user_id}", {
      params: { path: { user_id: inviteeId }, header: { "If-Match": etag } },
      body: { phone: "+1 555 0199" },
    }),
    412,
    "precondition-failed",
  );

  // 13. Support logs in as the new user, read-only, and ends it.
  step = "startImpersonation";
  const started = expectStatus(
    step,
    await owner.POST("/v1/impersonations", {
      body: { user_id: inviteeId, reason: "Checking what Grace sees", confirm: true },
    }),
    201,
  );
  check(step, started.impersonation.mode === "read_only", `mode is ${show(started.impersonation.mode)}`);
  check(step, started.impersonation.state === "active", `state is ${show(started.impersonation.state)}`);
  const support = as(started.access_token);
  step = "getMe (impersonation)";
  const seen = expectStatus(step, await support.GET("/v1/me"), 200);
  const acting = present(step, seen.acting_as, "acting_as");
  check(step, seen.user.id === inviteeId, `user is ${show(seen.user.id)}`);
  check(step, acting.kind === "impersonation" && acting.actor.id === ownerId, `acting_as is ${show(acting)}`);
  check(step, acting.mode === "read_only", `mode is ${show(acting.mode)}`);
  step = "updateUser (read-only impersonation)";
  expectProblem(
    step,
    await support.PATCH("/v1/users/{user_id}", {
      params: { path: { user_id: inviteeId } },
      body: { first_name: "Not Grace" },
    }),
    403,
    "impersonation-read-only",
  );
  step = "endImpersonation";
  const ended = expectStatus(
    step,
    await owner.POST("/v1/impersonations/{impersonation_id}/end", {
      params: { path: { impersonation_id: started.impersonation.id } },
    }),
    200,
  );
  check(step, ended.state === "ended", `state is ${show(ended.state)}`);

  // 14. Deactivate and reactivate the new user's membership.
  step = "deactivateUser";
  const off = expectStatus(
    step,
    await owner.POST("/v1/users/{user_id}/deactivate", { params: { path: { user_id: inviteeId } } }),
    200,
  );
  check(step, off.membership.status === "deactivated", `status is ${show(off.membership.status)}`);
  step = "reactivateUser";
  const on = expectStatus(
    step,
    await owner.POST("/v1/users/{user_id}/reactivate", { params: { path: { user_id: inviteeId } } }),
    200,
  );
  check(step, on.membership.status === "active", `status is ${show(on.membership.status)}`);

  // 15. An integration's API key, exchanged with HTTP Basic for an access token (a
  // form-encoded client-credentials request), used both ways, then revoked.
  step = "createApiKey";
  const viewer = present(step, roles.find((r) => r.builtin === "viewer"), "the viewer role");
  const issued = expectStatus(
    step,
    await owner.POST("/v1/api-keys", { body: { name: "TypeScript flow", role_ids: [viewer.id] } }),
    201,
  );
  check(step, issued.secret.startsWith("stk_"), "the secret has no stk_ prefix");
  check(step, issued.key.state === "active", `state is ${show(issued.key.state)}`);
  step = "exchangeClientCredentials";
  const basic = Buffer.from(`${issued.key.id}:${issued.secret}`).toString("base64");
  const exchanged = expectStatus(
    step,
    await anon.POST("/v1/oauth/token", {
      body: { grant_type: "client_credentials" },
      headers: { Authorization: `Basic ${basic}`, "Content-Type": "application/x-www-form-urlencoded" },
      bodySerializer: (body) => new URLSearchParams(body as Record<string, string>).toString(),
    }),
    200,
  );
  check(step, exchanged.token_type === "Bearer", `token_type is ${show(exchanged.token_type)}`);
  for (const [label, credential] of [
    ["exchanged token", exchanged.access_token],
    ["key itself", issued.secret],
  ] as const) {
    step = `listRoles (${label})`;
    const seen = expectStatus(step, await as(credential).GET("/v1/roles"), 200);
    check(step, seen.length === roles.length, `${seen.length} roles`);
    step = `getMe (${label})`;
    expectProblem(step, await as(credential).GET("/v1/me"), 403, "api-key-forbidden");
  }
  step = "revokeApiKey";
  const revoked = await owner.DELETE("/v1/api-keys/{key_id}", { params: { path: { key_id: issued.key.id } } });
  check(step, revoked.response.status === 204, `got ${revoked.response.status}`);

  console.log("typescript flow: all steps passed");
}

const baseUrl = process.argv[2];
if (!baseUrl) {
  console.error("usage: tsx flow.ts BASE_URL");
  process.exit(2);
}
await main(baseUrl);

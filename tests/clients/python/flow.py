"""The invite flow, driven through the Python client that openapi-python-client generated
from the committed openapi/openapi.json (tests/clients/run.sh generates and installs it).

Only the generated functions and models are used. Every answer must carry the documented
status and parse into the documented model; on top of that, `check_wire` fails when the
wire sent a field the spec does not list (it lands in `additional_properties`) or an object
the generated parser could not read (a nullable `oneOf` falls back to the raw dict).

Usage: python flow.py BASE_URL     (type-checked by run.sh with `mypy --strict`)
"""

from __future__ import annotations

import secrets
import sys
from typing import Any, NoReturn, TypeVar, cast
from urllib.parse import parse_qs, urlsplit

import attrs

from steward_client import AuthenticatedClient, Client
from steward_client.api.accounts import create_sub_account
from steward_client.api.api_keys import create_api_key, exchange_client_credentials, revoke_api_key
from steward_client.api.auth import log_in, sign_up
from steward_client.api.invites import (
    accept_invitation,
    copy_invite_link,
    create_invite,
    preview_invitation,
)
from steward_client.api.impersonation import end_impersonation, start_impersonation
from steward_client.api.me import get_me
from steward_client.api.roles import list_roles
from steward_client.api.users import deactivate_user, reactivate_user
from steward_client.models import (
    AcceptInvitation,
    AcceptedInvitation,
    AccountKind,
    AccountStatus,
    AccountSummary,
    AccountView,
    ApiKeyState,
    ClientCredentialsToken,
    CreateApiKey,
    CreateInvite,
    CreateSubAccount,
    CreateSubAccountKind,
    Delegation,
    ImpersonationMode,
    ImpersonationStarted,
    ImpersonationState,
    ImpersonationView,
    InvitationPreview,
    InvitationToken,
    InviteStatus,
    InviteView,
    IssuedApiKey,
    LoginRequest,
    MeResponse,
    MemberView,
    MembershipStatus,
    MyMembership,
    Problem,
    RoleView,
    SignupRequest,
    StartImpersonationRequest,
    TokenRequest,
    TokenRequestGrantType,
    TokenResponse,
    UserStatus,
)
from steward_client.types import Response, Unset

T = TypeVar("T")

# Fresh people on every run, so that the flow can run again against the same server.
RUN = secrets.token_hex(4)
OWNER_EMAIL = f"ada.python.{RUN}@example.com"
OWNER_PASSWORD = "correct horse battery staple"
ORG_NAME = "Acme Dental (Python)"
INVITEE_EMAIL = f"grace.python.{RUN}@example.com"
INVITEE_PASSWORD = "a brand new long password"


def fail(step: str, message: str) -> NoReturn:
    print(f"FAIL [{step}] {message}", flush=True)
    raise SystemExit(1)


def check(step: str, condition: bool, message: str) -> None:
    if not condition:
        fail(step, message)


def check_wire(step: str, value: object, path: str = "$") -> None:
    """Fails on fields the spec does not list and on objects the client left unparsed."""
    if isinstance(value, dict):
        fail(step, f"{path}: the generated client could not parse this object into its model: {value!r}")
    if isinstance(value, list):
        for i, item in enumerate(value):
            check_wire(step, item, f"{path}[{i}]")
        return
    if attrs.has(type(value)):
        extra = getattr(value, "additional_properties", {})
        if extra:
            fail(step, f"{path} ({type(value).__name__}): undocumented fields on the wire: {sorted(extra)}")
        for field in attrs.fields(cast(Any, type(value))):
            if field.name != "additional_properties":
                check_wire(step, getattr(value, field.name), f"{path}.{field.name}")


def expect(step: str, response: Response[Any], status: int, model: type[T]) -> T:
    parsed = response.parsed
    if response.status_code != status or not isinstance(parsed, model):
        detail = response.content.decode("utf-8", "replace")[:500]
        fail(step, f"expected {status} {model.__name__}, got {int(response.status_code)} "
                   f"{type(parsed).__name__}: {detail}")
    check_wire(step, parsed)
    print(f"ok   [{step}] {int(response.status_code)} {model.__name__}", flush=True)
    return parsed


def expect_problem(step: str, response: Response[Any], status: int, kind: str) -> Problem:
    """A documented error status whose body parses as the spec's Problem."""
    problem = expect(step, response, status, Problem)
    check(step, problem.status == status, f"problem.status is {problem.status!r}")
    check(step, problem.type_ == f"urn:steward:problem:{kind}", f"problem.type is {problem.type_!r}")
    content_type = response.headers.get("content-type", "")
    check(step, content_type.startswith("application/problem+json"), f"content-type is {content_type!r}")
    return problem


def present(step: str, value: T | None | Unset, what: str) -> T:
    if value is None or isinstance(value, Unset):
        fail(step, f"{what} is missing or null")
    return value


def role_names(step: str, membership: MyMembership) -> list[str]:
    return sorted(present(step, r.builtin, f"roles[{r.name}].builtin") for r in membership.roles)


def main(base_url: str) -> None:
    anon = Client(base_url=base_url, raise_on_unexpected_status=True)

    # 1. Sign up: a new organization and its owner, logged in at once.
    step = "signUp"
    signup = expect(step, sign_up.sync_detailed(client=anon, body=SignupRequest(
        organization_name=ORG_NAME, email=OWNER_EMAIL, first_name="Ada",
        last_name="Lovelace", password=OWNER_PASSWORD)), 201, TokenResponse)
    org = present(step, signup.account, "account")
    check(step, org.kind == AccountKind.ORGANIZATION, f"account.kind is {org.kind!r}")
    check(step, org.name == ORG_NAME and org.root_id == org.id, f"account is {org!r}")
    check(step, signup.user.email == OWNER_EMAIL, f"user.email is {signup.user.email!r}")
    check(step, signup.user.status == UserStatus.ACTIVE, f"user.status is {signup.user.status!r}")
    check(step, signup.token_type == "Bearer", f"token_type is {signup.token_type!r}")
    check(step, not signup.account_selection_required, "account_selection_required")
    present(step, signup.refresh_token, "refresh_token")
    owner_id = signup.user.id
    print(f"     organization {org.id}, owner {owner_id}")

    # 2. Log in by email (a wrong password first: a documented 401 problem).
    step = "logIn (wrong password)"
    expect_problem(step, log_in.sync_detailed(client=anon, body=LoginRequest(
        identifier=OWNER_EMAIL, password="not the password")), 401, "invalid-credentials")
    step = "logIn (owner)"
    login = expect(step, log_in.sync_detailed(client=anon, body=LoginRequest(
        identifier=OWNER_EMAIL, password=OWNER_PASSWORD)), 200, TokenResponse)
    check(step, login.user.id == owner_id, f"user.id is {login.user.id!r}")
    check(step, present(step, login.account, "account").id == org.id, "account is not the organization")
    check(step, [a.account.id for a in login.accounts] == [org.id], f"accounts are {login.accounts!r}")
    owner = AuthenticatedClient(base_url=base_url, token=login.access_token,
                                raise_on_unexpected_status=True)

    # 3. Who am I?
    step = "getMe (owner)"
    me = expect(step, get_me.sync_detailed(client=owner), 200, MeResponse)
    check(step, me.user.id == owner_id, f"user.id is {me.user.id!r}")
    me_account = present(step, me.account, "account")
    check(step, me_account.id == org.id and me_account.kind == AccountKind.ORGANIZATION,
          f"account is {me_account!r}")
    membership = present(step, me.membership, "membership")
    check(step, role_names(step, membership) == ["owner"], f"roles are {membership.roles!r}")
    check(step, membership.node.id == org.id, f"membership.node is {membership.node!r}")
    check(step, "users.invite" in me.permissions, f"permissions are {me.permissions!r}")
    check(step, me.acting_as is None or isinstance(me.acting_as, Unset), f"acting_as is {me.acting_as!r}")
    print(f"     roles {role_names(step, membership)}, {len(me.permissions)} permissions")

    # 4. A sub-account below the organization.
    step = "createSubAccount"
    sub = expect(step, create_sub_account.sync_detailed(org.id, client=owner, body=CreateSubAccount(
        name="North Region", kind=CreateSubAccountKind.GROUP)), 201, AccountView)
    check(step, sub.kind == AccountKind.GROUP, f"kind is {sub.kind!r}")
    check(step, sub.status == AccountStatus.ACTIVE, f"status is {sub.status!r}")
    check(step, sub.parent_id == org.id and sub.root_id == org.id and sub.depth == 1,
          f"parent_id {sub.parent_id!r}, root_id {sub.root_id!r}, depth {sub.depth!r}")
    check(step, sub.name == "North Region", f"name is {sub.name!r}")
    print(f"     sub-account {sub.id}")

    # 5. The organization's roles, to invite someone as `standard`.
    step = "listRoles"
    roles_response = list_roles.sync_detailed(client=owner)
    roles = roles_response.parsed
    if roles_response.status_code != 200 or not isinstance(roles, list):
        fail(step, f"got {int(roles_response.status_code)}: {roles_response.content[:500]!r}")
    check_wire(step, roles)
    print(f"ok   [{step}] 200 list[RoleView] ({len(roles)} roles)")
    builtins = sorted(r.builtin for r in roles if isinstance(r, RoleView) and isinstance(r.builtin, str))
    for expected in ["admin", "guest", "limited", "owner", "standard", "viewer"]:
        check(step, expected in builtins, f"built-in role {expected!r} missing from {builtins!r}")
    standard = next(r for r in roles if r.builtin == "standard")

    # 6. Invite someone into the sub-account, without email (copy-link flow).
    step = "createInvite"
    invite = expect(step, create_invite.sync_detailed(client=owner, body=CreateInvite(
        email=INVITEE_EMAIL, role_ids=[standard.id], account_id=sub.id, send_email=False)),
        201, InviteView)
    check(step, invite.status == InviteStatus.PENDING, f"status is {invite.status!r}")
    check(step, invite.email == INVITEE_EMAIL, f"email is {invite.email!r}")
    check(step, invite.account_id == sub.id, f"account_id is {invite.account_id!r}")
    check(step, invite.invited_by == owner_id, f"invited_by is {invite.invited_by!r}")
    check(step, [(r.id, r.builtin, r.name) for r in invite.roles] == [(standard.id, "standard", "Standard")],
          f"roles are {invite.roles!r}")
    check(step, invite.requires_record_assignment is False, "requires_record_assignment")
    first_url = present(step, invite.registration_url, "registration_url (send_email: false)")
    print(f"     invite {invite.id}")

    # 7. A fresh link to copy; its token is in the query string.
    step = "copyInviteLink"
    linked = expect(step, copy_invite_link.sync_detailed(invite.id, client=owner), 200, InviteView)
    check(step, linked.id == invite.id and linked.status == InviteStatus.PENDING, f"invite is {linked!r}")
    url = present(step, linked.registration_url, "registration_url")
    tokens = parse_qs(urlsplit(url).query).get("token", [])
    check(step, len(tokens) == 1 and len(tokens[0]) > 20, f"no token in {url!r}")
    token = tokens[0]
    check(step, url != first_url, "the link was not replaced")
    print(f"     link {urlsplit(url).path}?token=…")

    step = "previewInvitation (replaced link)"
    old_token = parse_qs(urlsplit(first_url).query)["token"][0]
    expect_problem(step, preview_invitation.sync_detailed(client=anon, body=InvitationToken(token=old_token)),
                   404, "not-found")

    # 8. The invitee previews the invitation (no authentication).
    step = "previewInvitation"
    preview = expect(step, preview_invitation.sync_detailed(client=anon, body=InvitationToken(token=token)),
                     200, InvitationPreview)
    check(step, preview.account_name == ORG_NAME, f"account_name is {preview.account_name!r}")
    check(step, preview.email == INVITEE_EMAIL, f"email is {preview.email!r}")
    check(step, preview.inviter_name == "Ada Lovelace", f"inviter_name is {preview.inviter_name!r}")

    # 9. ... and accepts it as a new person, with names and a password.
    step = "acceptInvitation"
    # The spec says `security: [{}, {bearer: []}]` (anonymous allowed), but
    # openapi-python-client 0.29.1 types `client` as AuthenticatedClient whenever the list
    # is non-empty (openapi-generators/openapi-python-client#1372), so the anonymous
    # client needs this one ignore. The request itself is exactly what the spec describes.
    accepted = expect(step, accept_invitation.sync_detailed(
        client=anon,  # type: ignore[arg-type]
        body=AcceptInvitation(token=token, first_name="Grace", last_name="Hopper",
                              password=INVITEE_PASSWORD)), 201, AcceptedInvitation)
    check(step, accepted.account.id == org.id, f"account is {accepted.account!r}")
    check(step, accepted.membership.status == MembershipStatus.ACTIVE,
          f"membership.status is {accepted.membership.status!r}")
    check(step, accepted.membership.account_id == sub.id,
          f"membership.account_id is {accepted.membership.account_id!r}")
    check(step, [(r.builtin, r.name) for r in accepted.membership.roles] == [("standard", "Standard")],
          f"membership.roles are {accepted.membership.roles!r}")
    session = present(step, accepted.session, "session")
    check(step, session.user.email == INVITEE_EMAIL, f"session.user.email is {session.user.email!r}")
    invitee_id = session.user.id
    check(step, present(step, session.account, "session.account").id == org.id,
          f"session.account is {session.account!r}")
    print(f"     new user {invitee_id}")

    step = "acceptInvitation (again)"
    expect_problem(step, accept_invitation.sync_detailed(
        client=anon,  # type: ignore[arg-type]  # as above
        body=AcceptInvitation(token=token, first_name="Grace", last_name="Hopper",
                              password=INVITEE_PASSWORD)), 404, "not-found")

    # 10. The new user logs in with their own password and reads /v1/me.
    step = "logIn (invitee)"
    login2 = expect(step, log_in.sync_detailed(client=anon, body=LoginRequest(
        identifier=INVITEE_EMAIL, password=INVITEE_PASSWORD)), 200, TokenResponse)
    check(step, login2.user.id == invitee_id, f"user.id is {login2.user.id!r}")
    check(step, not login2.account_selection_required, "account_selection_required")
    invitee = AuthenticatedClient(base_url=base_url, token=login2.access_token,
                                  raise_on_unexpected_status=True)

    step = "getMe (invitee)"
    me2 = expect(step, get_me.sync_detailed(client=invitee), 200, MeResponse)
    check(step, me2.user.id == invitee_id, f"user.id is {me2.user.id!r}")
    check(step, (me2.user.first_name, me2.user.last_name) == ("Grace", "Hopper"), f"user is {me2.user!r}")
    check(step, me2.user.must_change_password is False, "must_change_password")
    account2: AccountSummary = present(step, me2.account, "account")
    check(step, account2.id == org.id, f"account is {account2!r}")
    membership2 = present(step, me2.membership, "membership")
    check(step, membership2.node.id == sub.id and membership2.node.kind == AccountKind.GROUP,
          f"membership.node is {membership2.node!r}")
    check(step, role_names(step, membership2) == ["standard"], f"roles are {membership2.roles!r}")
    check(step, "users.invite" not in me2.permissions, f"a standard user may invite: {me2.permissions!r}")
    print(f"     roles {role_names(step, membership2)} at {membership2.node.id}, "
          f"{len(me2.permissions)} permissions")

    # 11. Support logs in as the new user, read-only, and ends it.
    step = "startImpersonation"
    started = expect(step, start_impersonation.sync_detailed(client=owner, body=StartImpersonationRequest(
        user_id=invitee_id, reason="Checking what Grace sees", confirm=True)), 201, ImpersonationStarted)
    check(step, started.impersonation.mode == ImpersonationMode.READ_ONLY,
          f"mode is {started.impersonation.mode!r}")
    support = AuthenticatedClient(base_url=base_url, token=started.access_token,
                                  raise_on_unexpected_status=True)
    step = "getMe (impersonation)"
    seen = expect(step, get_me.sync_detailed(client=support), 200, MeResponse)
    acting = present(step, seen.acting_as, "acting_as")
    check(step, seen.user.id == invitee_id, f"user is {seen.user.id!r}")
    check(step, acting.kind == Delegation.IMPERSONATION and acting.actor.id == signup.user.id,
          f"acting_as is {acting!r}")
    check(step, acting.mode == ImpersonationMode.READ_ONLY, f"mode is {acting.mode!r}")
    step = "deactivateUser (read-only impersonation)"
    expect_problem(step, deactivate_user.sync_detailed(invitee_id, client=support), 403,
                   "impersonation-read-only")
    step = "endImpersonation"
    ended = expect(step, end_impersonation.sync_detailed(started.impersonation.id, client=owner), 200,
                   ImpersonationView)
    check(step, ended.state == ImpersonationState.ENDED, f"state is {ended.state!r}")

    # 12. Deactivate and reactivate the new user's membership.
    step = "deactivateUser"
    off = expect(step, deactivate_user.sync_detailed(invitee_id, client=owner), 200, MemberView)
    check(step, off.membership.status == MembershipStatus.DEACTIVATED, f"status is {off.membership.status!r}")
    step = "reactivateUser"
    on = expect(step, reactivate_user.sync_detailed(invitee_id, client=owner), 200, MemberView)
    check(step, on.membership.status == MembershipStatus.ACTIVE, f"status is {on.membership.status!r}")

    # 13. An integration's API key: created, exchanged for a token (a form-encoded
    # client-credentials request), used both ways, refused where only a person may go, revoked.
    step = "createApiKey"
    viewer = next(r for r in roles if r.builtin == "viewer")
    issued = expect(step, create_api_key.sync_detailed(client=owner, body=CreateApiKey(
        name="Python flow", role_ids=[viewer.id])), 201, IssuedApiKey)
    check(step, issued.secret.startswith("stk_"), "the secret has no stk_ prefix")
    check(step, issued.key.state == ApiKeyState.ACTIVE, f"state is {issued.key.state!r}")
    step = "exchangeClientCredentials"
    exchanged = expect(step, exchange_client_credentials.sync_detailed(client=anon, body=TokenRequest(
        grant_type=TokenRequestGrantType.CLIENT_CREDENTIALS, client_id=issued.key.id, client_secret=issued.secret)),
        200, ClientCredentialsToken)
    for label, credential in [("exchanged token", exchanged.access_token), ("key itself", issued.secret)]:
        step = f"listRoles ({label})"
        machine = AuthenticatedClient(base_url=base_url, token=credential, raise_on_unexpected_status=True)
        listed = list_roles.sync_detailed(client=machine)
        check(step, listed.status_code == 200 and isinstance(listed.parsed, list),
              f"got {int(listed.status_code)}: {listed.content[:300]!r}")
        step = f"getMe ({label})"
        expect_problem(step, get_me.sync_detailed(client=machine), 403, "api-key-forbidden")
    step = "revokeApiKey"
    revoked = revoke_api_key.sync_detailed(issued.key.id, client=owner)
    check(step, revoked.status_code == 204, f"got {int(revoked.status_code)}")
    step = "exchangeClientCredentials (revoked)"
    expect_problem(step, exchange_client_credentials.sync_detailed(client=anon, body=TokenRequest(
        grant_type=TokenRequestGrantType.CLIENT_CREDENTIALS, client_id=issued.key.id, client_secret=issued.secret)),
        401, "invalid-credentials")

    print("python flow: all steps passed", flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: flow.py BASE_URL", file=sys.stderr)
        raise SystemExit(2)
    main(sys.argv[1])

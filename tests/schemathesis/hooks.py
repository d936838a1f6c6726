"""Schemathesis hooks for tests/schemathesis/run.sh (loaded through SCHEMATHESIS_HOOKS).

Every request is sent with a real owner's access token. The fuzzer may end that token's life on
purpose (it logs out, archives or deactivates the caller, closes the account, hands ownership
away): schemathesis then sees a 401, asks `get` again and replays the request once. `get` logs
the same owner in again, and when that owner can no longer log in, signs up a new organization,
so the run goes on with a working token and every operation stays in.

Settings, from the environment: STEWARD_FUZZ_BASE (the server's base URL), STEWARD_FUZZ_TOKEN
and STEWARD_FUZZ_EMAIL (the first owner, signed up by run.sh) and STEWARD_FUZZ_PASSWORD (the
password of every owner).
"""

import itertools
import os

import requests

import schemathesis

BASE = os.environ["STEWARD_FUZZ_BASE"]
PASSWORD = os.environ["STEWARD_FUZZ_PASSWORD"]
TIMEOUT = 30


@schemathesis.auth()
class OwnerToken:
    """An organization owner's access token, replaced when it stops working."""

    def __init__(self) -> None:
        self.serial = itertools.count(2)
        self.email = os.environ["STEWARD_FUZZ_EMAIL"]
        self.first = os.environ["STEWARD_FUZZ_TOKEN"]

    def get(self, case, ctx):
        if self.first:
            token, self.first = self.first, ""
            return token
        if self.email:
            r = requests.post(
                f"{BASE}/v1/auth/login",
                json={"identifier": self.email, "password": PASSWORD},
                timeout=TIMEOUT,
            )
            if r.status_code == 200 and "access_token" in r.json():
                return r.json()["access_token"]
        return self.sign_up()

    def sign_up(self) -> str:
        n = next(self.serial)
        self.email = f"fuzz-owner-{n}@example.com"
        r = requests.post(
            f"{BASE}/v1/auth/signup",
            json={
                "organization_name": f"Fuzz organization {n}",
                "email": self.email,
                "first_name": "Fuzz",
                "last_name": f"Owner {n}",
                "password": PASSWORD,
            },
            timeout=TIMEOUT,
        )
        r.raise_for_status()
        return r.json()["access_token"]

    def set(self, case, data, ctx):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"

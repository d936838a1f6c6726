#!/usr/bin/env bash
# SCIM compliance: runs scim2-tester (the python-scim project's RFC 7643/7644 checker, pinned in
# tests/scim/requirements.txt) against a live server:
#   1. installs the pinned checker into a virtualenv under $CARGO_TARGET_DIR/scim;
#   2. builds Steward and serves it on a fresh SQLite database, on a free port;
#   3. signs up an organization and creates an API key (admin role) as the SCIM credential;
#   4. runs tests/scim/check.py: discovery, create, read, list, attribute projection, replace,
#      delete and PATCH add/replace/remove of every attribute, for Users and Groups;
#   5. stops the server.
# Exits non-zero when any check fails.
#
# Usage: bash tests/scim/run.sh
#   STEWARD_BIN=path   use this server binary instead of `cargo build`
#   KEEP_TMP=1         keep the temporary directory (server log)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../lib/serve.sh
source "$HERE/../lib/serve.sh"
TOOLS="$TARGET/scim"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/steward-scim.XXXXXX")"
trap 'rc=$?; finish_server "$TMP" "$rc"; exit "$rc"' EXIT
trap 'exit 130' INT TERM

say "checker (under $TOOLS)"
VENV="$TOOLS/venv"
PY="$VENV/bin/python"
tool_venv "$VENV" "$HERE/requirements.txt"
echo "scim2-tester $("$PY" -c 'import importlib.metadata as m; print(m.version("scim2-tester"))')"

say "server"
serve "$TMP"

say "credential"
# The SCIM credential, as an identity provider holds it: an API key of a new organization
# with the admin role (scim.provision, users.manage, roles.manage), created by its owner.
OWNER="$(curl -fsS "$BASE/v1/auth/signup" -H 'content-type: application/json' -d '{
  "organization_name": "SCIM compliance", "email": "scim-owner@example.com",
  "first_name": "Scim", "last_name": "Owner", "password": "correct horse battery staple"}' \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')"
ADMIN_ROLE="$(curl -fsS "$BASE/v1/roles" -H "authorization: Bearer $OWNER" \
  | python3 -c 'import json, sys; print(next(r["id"] for r in json.load(sys.stdin) if r["builtin"] == "admin"))')"
TOKEN="$(curl -fsS "$BASE/v1/api-keys" -H "authorization: Bearer $OWNER" -H 'content-type: application/json' \
  -d "{\"name\": \"SCIM compliance\", \"role_ids\": [\"$ADMIN_ROLE\"]}" \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["secret"])')"
echo "signed up; API key created"

say "scim2-tester"
"$PY" "$HERE/check.py" "$BASE" "$TOKEN"

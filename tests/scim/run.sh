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
ROOT="$(cd "$HERE/../.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
mkdir -p "$TARGET" && TARGET="$(cd "$TARGET" && pwd)"
TOOLS="$TARGET/scim"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/steward-scim.XXXXXX")"
SERVER_PID=""

say() { printf '\n== %s\n' "$*"; }

cleanup() {
  local rc=$?
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" && wait "$SERVER_PID" || true
  fi
  if [[ $rc -ne 0 && -f "$TMP/server.log" ]]; then
    echo "-- last lines of the server log ($TMP/server.log):"
    tail -n 40 "$TMP/server.log" || true
  fi
  if [[ -n "${KEEP_TMP:-}" || $rc -ne 0 ]]; then echo "-- kept $TMP"; else rm -rf "$TMP"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "checker (under $TOOLS)"
command -v python3 >/dev/null || { echo "python3 is required" >&2; exit 1; }
VENV="$TOOLS/venv"
PY="$VENV/bin/python"
want="$(sha256sum "$HERE/requirements.txt" | cut -d' ' -f1)"
if [[ ! -x "$PY" || "$(cat "$VENV/.stamp" 2>/dev/null)" != "$want" ]]; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$PY" -m pip install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
  echo "$want" > "$VENV/.stamp"
fi
echo "scim2-tester $("$PY" -c 'import importlib.metadata as m; print(m.version("scim2-tester"))')"

say "server"
if [[ -n "${STEWARD_BIN:-}" ]]; then
  BIN="$(realpath "$STEWARD_BIN")"
else
  cargo build --quiet --manifest-path "$ROOT/Cargo.toml" --bin steward
  BIN="$TARGET/debug/steward"
fi
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"
(
  cd "$TMP"
  exec env STEWARD_DATABASE_URL="sqlite://$TMP/steward.db" STEWARD_BIND="127.0.0.1:$PORT" \
    STEWARD_SIGNING_KEY_FILE="$TMP/key.pem" STEWARD_LOG="${STEWARD_LOG:-warn}" "$BIN" serve
) > "$TMP/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 300); do
  if curl -fsS "$BASE/healthz" > /dev/null 2>&1; then break; fi
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "the server exited during start-up" >&2; exit 1; }
  sleep 0.2
done
curl -fsS "$BASE/healthz" > /dev/null || { echo "the server did not answer /healthz within 60 s" >&2; exit 1; }
echo "serving $BASE (pid $SERVER_PID) from $BIN"

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

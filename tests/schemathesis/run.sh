#!/usr/bin/env bash
# Property-based API testing: runs Schemathesis (pinned in tests/schemathesis/requirements.txt)
# against a live server and its own /openapi.json:
#   1. installs the pinned Schemathesis into a virtualenv under $CARGO_TARGET_DIR/schemathesis;
#   2. builds Steward and serves it on a fresh SQLite database, on a free port, with the rate
#      limits off (a deployment setting; the spec still documents their 429);
#   3. signs up an organization: its owner's access token authenticates every request, and
#      tests/schemathesis/hooks.py logs in again (or signs up anew) when the fuzzer ends it;
#   4. runs every check (among them response_schema_conformance, negative_data_rejection and
#      ignored_auth) through the examples, coverage, fuzzing and stateful phases, on every
#      operation, with a fixed seed and bounded examples, under an outer time limit;
#   5. stops the server.
# Exits non-zero on any failure. Reports (JUnit, and a pytest file reproducing failures) are
# written to the temporary directory, kept when the run fails.
#
# Usage: bash tests/schemathesis/run.sh
#   STEWARD_BIN=path        use this server binary instead of `cargo build`
#   KEEP_TMP=1              keep the temporary directory (server log, reports)
#   FUZZ_SEED=N             another seed (default: the fixed one CI uses)
#   FUZZ_MAX_EXAMPLES=N     test cases per operation and phase (default 40)
#   FUZZ_TIME_LIMIT=SECONDS the outer limit (default 600)
#   FUZZ_POSTGRES=postgres://USER@HOST:PORT   serve on a fresh database of this PostgreSQL server
#                           instead of SQLite (created with createdb, dropped at the end)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../lib/serve.sh
source "$HERE/../lib/serve.sh"
TOOLS="$TARGET/schemathesis"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/steward-schemathesis.XXXXXX")"
trap 'rc=$?; finish_server "$TMP" "$rc"; exit "$rc"' EXIT
trap 'exit 130' INT TERM

say "schemathesis (under $TOOLS)"
VENV="$TOOLS/venv"
tool_venv "$VENV" "$HERE/requirements.txt"
"$VENV/bin/schemathesis" --version

say "server"
DATABASE=()
if [[ -n "${FUZZ_POSTGRES:-}" ]]; then
  FUZZ_DB="steward_fuzz_$$"
  createdb --maintenance-db="$FUZZ_POSTGRES/postgres" "$FUZZ_DB"
  trap 'rc=$?; finish_server "$TMP" "$rc"; dropdb --maintenance-db="$FUZZ_POSTGRES/postgres" --if-exists "$FUZZ_DB" || true; exit "$rc"' EXIT
  DATABASE=(STEWARD_DATABASE_URL="$FUZZ_POSTGRES/$FUZZ_DB")
  echo "database $FUZZ_DB on $FUZZ_POSTGRES"
fi
serve "$TMP" "${DATABASE[@]}" STEWARD_WORKERS=2 \
  STEWARD_LIMIT_LOGIN_PER_ACCOUNT=off STEWARD_LIMIT_LOGIN_PER_ADDRESS=off \
  STEWARD_LIMIT_PASSWORD_RESET_PER_EMAIL=off STEWARD_LIMIT_PASSWORD_RESET_PER_ADDRESS=off \
  STEWARD_LIMIT_SIGNUP_PER_ADDRESS=off STEWARD_LIMIT_INVITES_PER_ORGANIZATION=off

say "credential"
export STEWARD_FUZZ_BASE="$BASE"
export STEWARD_FUZZ_EMAIL="fuzz-owner-1@example.com"
export STEWARD_FUZZ_PASSWORD="correct horse battery staple"
STEWARD_FUZZ_TOKEN="$(curl -fsS "$BASE/v1/auth/signup" -H 'content-type: application/json' -d "{
  \"organization_name\": \"Fuzz organization 1\", \"email\": \"$STEWARD_FUZZ_EMAIL\",
  \"first_name\": \"Fuzz\", \"last_name\": \"Owner 1\", \"password\": \"$STEWARD_FUZZ_PASSWORD\"}" \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')"
export STEWARD_FUZZ_TOKEN
echo "signed up $STEWARD_FUZZ_EMAIL, the owner of a new organization"

say "schemathesis run"
set +e
(
  cd "$TMP"
  SCHEMATHESIS_HOOKS=hooks PYTHONPATH="$HERE" timeout --signal=INT --kill-after=30 \
    "${FUZZ_TIME_LIMIT:-600}" "$VENV/bin/schemathesis" --config-file "$HERE/schemathesis.toml" run "$BASE/openapi.json" \
    --checks all \
    --phases examples,coverage,fuzzing,stateful \
    --seed "${FUZZ_SEED:-20261206}" \
    --max-examples "${FUZZ_MAX_EXAMPLES:-40}" \
    --workers 1 \
    --request-timeout 30 \
    --generation-database none \
    --no-color \
    --report junit,pytest --report-dir "$TMP/reports"
)
rc=$?
set -e
if [[ $rc -eq 124 || $rc -eq 130 ]]; then
  echo "schemathesis did not finish within ${FUZZ_TIME_LIMIT:-600} s" >&2
fi

say "stop"
stop_server
echo "the server stopped cleanly"
exit "$rc"

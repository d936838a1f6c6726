#!/usr/bin/env bash
# Proves openapi/openapi.json by generating clients from it and driving a real server with them:
#   1. installs the pinned generators (PyPI: tests/clients/requirements.txt into a virtualenv;
#      npm: tests/clients/typescript/package-lock.json) under $CARGO_TARGET_DIR/clients;
#   2. builds Steward and serves it on SQLite in a temporary directory, on a free port;
#   3. generates a Python client with openapi-python-client (no hand edits), installs it,
#      type-checks tests/clients/python/flow.py with mypy --strict and runs it;
#   4. generates TypeScript types with openapi-typescript, type-checks
#      tests/clients/typescript/flow.ts with tsc --noEmit (strict) and runs it with tsx;
#   5. stops the server.
# Exits non-zero on any failure. Generated code lives in a temporary directory only.
#
# Usage: bash tests/clients/run.sh
#   STEWARD_BIN=path   use this server binary instead of `cargo build`
#   KEEP_TMP=1         keep the temporary directory (server log, generated code)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SPEC="$ROOT/openapi/openapi.json"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
mkdir -p "$TARGET" && TARGET="$(cd "$TARGET" && pwd)"   # cargo reads a relative one from here
TOOLS="$TARGET/clients"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/steward-clients.XXXXXX")"
SERVER_PID=""

say() { printf '\n== %s\n' "$*"; }

stop_server() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID"
    local rc=0
    wait "$SERVER_PID" || rc=$?
    SERVER_PID=""
    return "$rc"
  fi
  SERVER_PID=""
}

cleanup() {
  local rc=$?
  stop_server || true
  if [[ $rc -ne 0 && -f "$TMP/server.log" ]]; then
    echo "-- last lines of the server log ($TMP/server.log):"
    tail -n 40 "$TMP/server.log" || true
  fi
  if [[ -n "${KEEP_TMP:-}" || $rc -ne 0 ]]; then
    echo "-- kept $TMP"
  else
    rm -rf "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stamp_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

# ---------------------------------------------------------------- 1. tools
say "tools (under $TOOLS)"
mkdir -p "$TOOLS"
command -v python3 >/dev/null || { echo "python3 is required" >&2; exit 1; }
command -v node >/dev/null && command -v npm >/dev/null || { echo "node and npm are required" >&2; exit 1; }

VENV="$TOOLS/venv"
PY="$VENV/bin/python"
want="$(stamp_of "$HERE/requirements.txt")"
if [[ ! -x "$PY" || "$(cat "$VENV/.stamp" 2>/dev/null)" != "$want" ]]; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$PY" -m pip install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
  echo "$want" > "$VENV/.stamp"
fi
echo "openapi-python-client $("$VENV/bin/openapi-python-client" --version | awk '{print $NF}'), $("$VENV/bin/mypy" --version | awk '{print $1, $2}')"

NODE_TOOLS="$TOOLS/typescript"
NM="$NODE_TOOLS/node_modules"
want="$(stamp_of "$HERE/typescript/package.json" "$HERE/typescript/package-lock.json")"
if [[ ! -d "$NM" || "$(cat "$NODE_TOOLS/.stamp" 2>/dev/null)" != "$want" ]]; then
  rm -rf "$NODE_TOOLS"
  mkdir -p "$NODE_TOOLS"
  cp "$HERE/typescript/package.json" "$HERE/typescript/package-lock.json" "$NODE_TOOLS/"
  (cd "$NODE_TOOLS" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" > "$NODE_TOOLS/.stamp"
fi
echo "node $(node --version), openapi-typescript $(node -p "require('$NM/openapi-typescript/package.json').version"), tsc $("$NM/.bin/tsc" --version | awk '{print $NF}')"

# ---------------------------------------------------------------- 2. server
say "server"
if [[ -n "${STEWARD_BIN:-}" ]]; then
  BIN="$(realpath "$STEWARD_BIN")"
else
  cargo build --quiet --manifest-path "$ROOT/Cargo.toml" --bin steward
  BIN="$TARGET/debug/steward"
fi
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"
# The temporary directory is the working directory, so no .env of the checkout is read.
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

# The clients are generated from the committed document: it must be the one the server serves.
curl -fsS "$BASE/openapi.json" > "$TMP/served.json"
if ! python3 - "$SPEC" "$TMP/served.json" <<'EOF'
import json, sys

def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"{path}: not a JSON document ({e})")

def diff(a, b, at, out):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            p = f"{at}/{k.replace('~', '~0').replace('/', '~1')}"
            if k not in a or k not in b:
                out.append(f"{p}: only in the {'served' if k not in a else 'committed'} document")
            else:
                diff(a[k], b[k], p, out)
    elif a != b:
        out.append(f"{at}: committed {json.dumps(a)[:80]} / served {json.dumps(b)[:80]}")

out = []
diff(load(sys.argv[1]), load(sys.argv[2]), "#", out)
for line in out[:20]:
    print("  " + line, file=sys.stderr)
sys.exit(1 if out else 0)
EOF
then
  echo "openapi/openapi.json differs from the document this server serves at /openapi.json (above);" >&2
  echo "regenerate it: cargo run -q -- openapi > openapi/openapi.json" >&2
  exit 1
fi
echo "served /openapi.json equals openapi/openapi.json"

# ---------------------------------------------------------------- 3. Python
python_flow() {
  say "Python client (openapi-python-client)"
  local out="$TMP/python/steward-client"
  mkdir -p "$TMP/python"
  "$VENV/bin/openapi-python-client" generate --path "$SPEC" --config "$HERE/python/config.yml" \
    --meta setup --output-path "$out" --fail-on-warning
  "$PY" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$out"
  "$PY" -m pip check --disable-pip-version-check > /dev/null
  "$VENV/bin/mypy" --strict --cache-dir "$TMP/python/.mypy_cache" "$HERE/python/flow.py"
  "$PY" "$HERE/python/flow.py" "$BASE"
}

# ---------------------------------------------------------------- 4. TypeScript
typescript_flow() {
  say "TypeScript client (openapi-typescript + openapi-fetch)"
  local dir="$TMP/typescript"
  mkdir -p "$dir"
  cp "$HERE/typescript/flow.ts" "$HERE/typescript/tsconfig.json" "$HERE/typescript/package.json" "$dir/"
  ln -s "$NM" "$dir/node_modules"
  "$NM/.bin/openapi-typescript" "$SPEC" --output "$dir/schema.d.ts"
  (cd "$dir" && "$NM/.bin/tsc" --noEmit -p .)
  echo "tsc --noEmit (strict): no errors"
  (cd "$dir" && "$NM/.bin/tsx" flow.ts "$BASE")
}

passed=0
failed=0
failures=()
for part in python typescript; do
  set +e
  ( set -e; "${part}_flow" )
  rc=$?
  set -e
  if [[ $rc -eq 0 ]]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    failures+=("$part")
  fi
done

# ---------------------------------------------------------------- 5. stop
say "stop"
stop_server
echo "the server stopped cleanly"

echo
if [[ $failed -gt 0 ]]; then
  echo "failed: ${failures[*]}"
fi
echo "generated clients: $passed passed, $failed failed"
[[ $failed -eq 0 ]]

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
# shellcheck source=../lib/serve.sh
source "$HERE/../lib/serve.sh"
SPEC="$ROOT/openapi/openapi.json"
TOOLS="$TARGET/clients"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/steward-clients.XXXXXX")"
trap 'rc=$?; finish_server "$TMP" "$rc"; exit "$rc"' EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- 1. tools
say "tools (under $TOOLS)"
mkdir -p "$TOOLS"
command -v node >/dev/null && command -v npm >/dev/null || { echo "node and npm are required" >&2; exit 1; }

VENV="$TOOLS/venv"
PY="$VENV/bin/python"
tool_venv "$VENV" "$HERE/requirements.txt"
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
serve "$TMP"

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

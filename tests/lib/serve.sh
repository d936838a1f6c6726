# Shared by the scripts that drive a real server (tests/clients, tests/scim, tests/schemathesis).
# Source it after `set -euo pipefail`; it defines:
#   ROOT, TARGET                the checkout and the cargo target directory
#   say TEXT                    prints a section heading
#   tool_venv DIR REQUIREMENTS  a virtualenv at DIR with the pinned REQUIREMENTS installed;
#                               reinstalled only when the requirements file changes (stamp file)
#   serve TMP [NAME=VALUE...]   builds Steward (or takes $STEWARD_BIN) and serves it on a fresh
#                               SQLite database in TMP, on a free port, with these extra settings;
#                               sets BIN, PORT, BASE and SERVER_PID, and waits for /healthz
#   stop_server                 SIGTERM, then waits; returns the server's exit status
#   finish_server TMP RC        for an EXIT trap: stops the server, prints the server log's tail
#                               when RC is not 0, and keeps TMP then (or with KEEP_TMP=1)
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
mkdir -p "$TARGET" && TARGET="$(cd "$TARGET" && pwd)"   # cargo reads a relative one from ROOT
SERVER_PID=""

say() { printf '\n== %s\n' "$*"; }

stamp_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

tool_venv() {
  local venv="$1" requirements="$2" want
  command -v python3 >/dev/null || { echo "python3 is required" >&2; return 1; }
  want="$(stamp_of "$requirements")"
  if [[ ! -x "$venv/bin/python" || "$(cat "$venv/.stamp" 2>/dev/null)" != "$want" ]]; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    echo "$want" > "$venv/.stamp"
  fi
}

serve() {
  local tmp="$1"
  shift
  if [[ -n "${STEWARD_BIN:-}" ]]; then
    BIN="$(realpath "$STEWARD_BIN")"
  else
    cargo build --quiet --locked --manifest-path "$ROOT/Cargo.toml" --bin steward
    BIN="$TARGET/debug/steward"
  fi
  PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  BASE="http://127.0.0.1:$PORT"
  # The temporary directory is the working directory, so no .env of the checkout is read.
  (
    cd "$tmp"
    exec env STEWARD_DATABASE_URL="sqlite://$tmp/steward.db" STEWARD_BIND="127.0.0.1:$PORT" \
      STEWARD_SIGNING_KEY_FILE="$tmp/key.pem" STEWARD_LOG="${STEWARD_LOG:-warn}" "$@" "$BIN" serve
  ) > "$tmp/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 300); do
    if curl -fsS "$BASE/healthz" > /dev/null 2>&1; then break; fi
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "the server exited during start-up" >&2; return 1; }
    sleep 0.2
  done
  curl -fsS "$BASE/healthz" > /dev/null || { echo "the server did not answer /healthz within 60 s" >&2; return 1; }
  echo "serving $BASE (pid $SERVER_PID) from $BIN"
}

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

finish_server() {
  local tmp="$1" rc="$2"
  stop_server || true
  if [[ $rc -ne 0 && -f "$tmp/server.log" ]]; then
    echo "-- last lines of the server log ($tmp/server.log):"
    tail -n 40 "$tmp/server.log" || true
  fi
  if [[ -n "${KEEP_TMP:-}" || $rc -ne 0 ]]; then
    echo "-- kept $tmp"
  else
    rm -rf "$tmp"
  fi
}

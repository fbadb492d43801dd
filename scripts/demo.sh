#!/usr/bin/env bash
# The demo: an MLflow tracking server behind descope-auth, signed in through the
# local Descope emulator (no Descope project needed). Sets up .venv and the wheel
# first (scripts/setup.sh, once), then runs until Ctrl-C, which stops everything
# it started and removes its temporary directory.
#
#   scripts/demo.sh                  # MLflow on http://127.0.0.1:5000
#   DEMO_PORT=5050 scripts/demo.sh   # another port
#
# DEMO_PORT (default 5000) is MLflow's port, DEMO_EMULATOR_PORT (default: a free
# one) the emulator's, DEMO_WORKERS (default 1) MLflow's worker count. Both
# servers listen on 127.0.0.1 only.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck disable=SC1091
. scripts/setup.sh

port="${DEMO_PORT:-5000}"
emulator_port="${DEMO_EMULATOR_PORT:-0}"
workers="${DEMO_WORKERS:-1}"
host=127.0.0.1
url="http://$host:$port"

workdir="$(mktemp -d "${TMPDIR:-/tmp}/mlflow-descope-demo.XXXXXX")"
groups=()

say() { printf 'demo: %s\n' "$*"; }

group_alive() { kill -0 -- "-$1" 2>/dev/null; }

# SIGTERM each process group we started, give it 15 s, then SIGKILL what is left.
stop_all() {
    trap - INT TERM EXIT
    local pgid deadline
    for pgid in "${groups[@]}"; do
        kill -TERM -- "-$pgid" 2>/dev/null || true
    done
    deadline=$((SECONDS + 15))
    for pgid in "${groups[@]}"; do
        while group_alive "$pgid" && [ "$SECONDS" -lt "$deadline" ]; do
            sleep 0.2
        done
        if group_alive "$pgid"; then
            say "process group $pgid did not stop in time; killing it"
            kill -KILL -- "-$pgid" 2>/dev/null || true
        fi
    done
    wait 2>/dev/null || true
    rm -rf "$workdir"
}

# shellcheck disable=SC2317  # reached through the trap below
on_signal() {
    printf '\n'
    say "stopping"
    stop_all
    say "stopped"
    exit 0
}

fail() {
    say "$*" >&2
    stop_all
    exit 1
}

trap on_signal INT TERM
trap stop_all EXIT

# Each server runs in $workdir as the leader of its own process group (and
# session, via `setsid`): a Ctrl-C reaches only this script, which then stops
# each group as a whole. `exec` keeps the pid: it is the group id.
start_group() {
    local log="$1"
    shift
    (cd "$workdir" && exec setsid "$@") >"$log" 2>&1 </dev/null &
    groups+=("$!")
}

# The emulator and the server must not pick up the caller's Descope or MLflow
# settings (MLFLOW_STATIC_PREFIX, for one, would move every URL printed below),
# nor a .env (the servers run in $workdir).
while IFS= read -r name; do
    unset "$name"
done < <(compgen -e | grep -E '^(DESCOPE|MLFLOW)_' || true)

say "starting the Descope emulator with demo users"
emulator_log="$workdir/emulator.log"
start_group "$emulator_log" python -m mlflow_descope_auth.testing --demo-users \
    --host "$host" --port "$emulator_port"
emulator_pid="${groups[0]}"

for _ in $(seq 1 150); do
    grep -q '^demo access key' "$emulator_log" 2>/dev/null && break
    kill -0 "$emulator_pid" 2>/dev/null || fail "the emulator exited: $(cat "$emulator_log")"
    sleep 0.2
done
grep -q '^demo access key' "$emulator_log" || fail "the emulator did not start: $(cat "$emulator_log")"

setting() { sed -n "s/^$1=//p" "$emulator_log" | head -n 1; }
DESCOPE_PROJECT_ID="$(setting DESCOPE_PROJECT_ID)"
DESCOPE_BASE_URL="$(setting DESCOPE_BASE_URL)"
DESCOPE_WEB_COMPONENT_URL="$(setting DESCOPE_WEB_COMPONENT_URL)"
export DESCOPE_PROJECT_ID DESCOPE_BASE_URL DESCOPE_WEB_COMPONENT_URL
# A credential of this throwaway emulator only; printed below on purpose.
access_key="$(sed -n 's/^demo access key[^:]*: //p' "$emulator_log" | head -n 1)"

python - "$host" "$port" <<'PY' || fail "port $port is in use; choose another with DEMO_PORT=..."
import socket, sys
with socket.socket() as sock:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
    try:
        sock.bind((sys.argv[1], int(sys.argv[2])))
    except OSError:
        sys.exit(1)  # the line after this script says what to do
PY

say "starting mlflow server on $url (store in $workdir)"
server_log="$workdir/mlflow.log"
# Job execution starts extra worker processes the demo does not need.
start_group "$server_log" env MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false \
    mlflow server --app-name descope-auth --host "$host" --port "$port" \
    --workers "$workers" \
    --backend-store-uri "sqlite:///$workdir/mlflow.db" \
    --artifacts-destination "$workdir/artifacts"
server_pid="${groups[-1]}"

# Polls /health until it answers 200 (exit 0), the server exits (1) or 5 minutes pass (2).
python - "$url/health" "$server_pid" <<'PY' || fail "mlflow server did not come up:
$(tail -n 40 "$server_log")"
import os, sys, time, urllib.request
health, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 300
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit(1)
    try:
        with urllib.request.urlopen(health, timeout=2) as response:
            if response.status == 200:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.25)
sys.exit(2)
PY

cat <<EOF

MLflow behind Descope sign-in is running (Descope is the local emulator at $DESCOPE_BASE_URL).

  Open $url/ in a browser and pick a demo user on the login page:
    viewer   role mlflow-viewer  -> READ    (browse; creating gets 403)
    editor   role mlflow-editor  -> EDIT    (create experiments, log runs)
    admin    role admin          -> MANAGE  (everything, deletes included)
    nobody   no roles            -> the default level (DESCOPE_DEFAULT_PERMISSION, READ)

  API clients (the MLflow client, curl) use the demo access key (role mlflow-editor):
    export MLFLOW_TRACKING_URI=$url MLFLOW_TRACKING_TOKEN=$access_key

  A demo user's session JWT (viewer here; editor, admin, nobody alike), for
  MLFLOW_TRACKING_TOKEN or curl -H "Authorization: Bearer <sessionJwt>":
    curl -s -X POST -H 'Authorization: Bearer $DESCOPE_PROJECT_ID' \\
      -d '{"loginId": "viewer"}' $DESCOPE_BASE_URL/emulator/flow/sign-up-or-in/login

  Logs: $workdir/mlflow.log, $workdir/emulator.log
  Press Ctrl-C to stop (the temporary directory is removed).
EOF

# `wait` returns early when a trapped signal arrives; on_signal then exits 0.
wait "$server_pid" || true
fail "mlflow server stopped on its own:
$(tail -n 40 "$server_log")"

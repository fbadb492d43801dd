#!/usr/bin/env bash
# Runs the smoke set against other MLflow releases: scripts/compat.sh 3.5.0 3.10.1
#
# For each VERSION it creates .venv-mlflow-VERSION beside .venv (kept, so a
# second run only reinstalls), installs the wheel scripts/setup.sh built, with
# its dev extras and mlflow==VERSION, and runs the smoke set with that venv's
# pytest: the route table against MLflow's real routers, the middleware, and
# real `mlflow server --app-name descope-auth` processes under uvicorn and
# gunicorn. One line per version; the full pytest output is in
# test-artifacts/compat/mlflow-VERSION.log. Exits non-zero when any version
# fails. Too slow for CI; docs/compat.md has the last measured table.
#
# COMPAT_PIP_ARGS adds requirements to every install, e.g. 'sqlalchemy<2.1'
# for MLflow releases that break on SQLAlchemy 2.1 (docs/compat.md).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

if [ "$#" -eq 0 ]; then
    echo "usage: scripts/compat.sh MLFLOW_VERSION..." >&2
    exit 2
fi

bash scripts/setup.sh >/dev/null 2>&1 || { echo "compat: scripts/setup.sh failed" >&2; exit 1; }
wheels=(dist/mlflow_descope_auth-*.whl)
if [ "${#wheels[@]}" -ne 1 ] || [ ! -f "${wheels[0]}" ]; then
    echo "compat: expected exactly one wheel in dist/, found: ${wheels[*]}" >&2
    exit 1
fi
wheel="${wheels[0]}"
# A stale in-tree extension module would shadow the installed wheel's.
rm -f python/mlflow_descope_auth/_core.abi3.so

smoke=(
    tests/test_route_table.py
    tests/test_middleware.py
    tests/test_server_e2e.py
    tests/test_mlflow_client.py
)
logs="${TEST_ARTIFACTS_DIR:-test-artifacts}/compat"
mkdir -p "$logs"
pip_quiet=(--quiet --disable-pip-version-check)
python="${PYTHON:-python3}"
read -r -a extra <<<"${COMPAT_PIP_ARGS:-}"
status=0

for version in "$@"; do
    venv=".venv-mlflow-$version"
    log="$logs/mlflow-$version.log"
    if [ ! -x "$venv/bin/python" ]; then
        "$python" -m venv "$venv"
    fi
    if ! "$venv/bin/pip" install "${pip_quiet[@]}" "${wheel}[dev]" "mlflow==$version" "${extra[@]}" >"$log" 2>&1 ||
        ! "$venv/bin/pip" install "${pip_quiet[@]}" --force-reinstall --no-deps "$wheel" >>"$log" 2>&1; then
        printf 'mlflow %-8s INSTALL FAILED (see %s)\n' "$version" "$log"
        status=1
        continue
    fi
    if "$venv/bin/python" -m pytest -q -p no:cacheprovider "${smoke[@]}" >>"$log" 2>&1; then
        result=passed
    else
        result=FAILED
        status=1
    fi
    printf 'mlflow %-8s %-6s %s\n' "$version" "$result" "$(tail -n 1 "$log" | tr -d '=' | xargs)"
done
exit "$status"

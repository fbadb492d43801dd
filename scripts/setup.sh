#!/usr/bin/env bash
# Creates .venv, builds the wheel once (again only when the sources change) and
# installs it with the development extras. Sourced by test.sh; run on its own
# it only prepares .venv.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $("$python" --version)"
    "$python" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
pip_quiet=(--quiet --disable-pip-version-check)

stamp=.venv/.mlflow-descope-auth.stamp
sources_hash="$(
    { git ls-files -co --exclude-standard -- src python Cargo.toml Cargo.lock pyproject.toml scripts/constraints.txt \
        2>/dev/null || find src python Cargo.toml pyproject.toml -type f; } \
        | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1
)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sources_hash" ]; then
    echo "setup: wheel up to date"
    # shellcheck disable=SC2317  # the exit is for running it directly, not sourced
    return 0 2>/dev/null || exit 0
fi

echo "setup: installing build tools"
pip install "${pip_quiet[@]}" --upgrade pip "maturin>=1.7,<2"
echo "setup: building the wheel (release)"
rm -rf dist
maturin build --release --out dist
wheel="$(ls dist/mlflow_descope_auth-*.whl)"
echo "setup: installing $wheel with the dev extras"
pip install "${pip_quiet[@]}" --force-reinstall --no-deps "$wheel"
pip install "${pip_quiet[@]}" --constraint scripts/constraints.txt "${wheel}[dev]"
echo "$sources_hash" > "$stamp"

#!/usr/bin/env bash
# Sets everything up and runs every test and linter: the command CI runs.
# Extra arguments go to pytest (e.g. scripts/test.sh -k refresh).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# shellcheck disable=SC1091
. scripts/setup.sh

step() { printf '\n== %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --check
step "cargo clippy (pure core, then with the Python bindings)"
cargo clippy --all-targets -- -D warnings
cargo clippy --all-targets --features python -- -D warnings
step "cargo test"
cargo test
# The short fuzz run (issue 8): every target for FUZZ_SECONDS (default 20, so
# about a minute of fuzzing; 0 skips). A fresh clone also installs cargo-fuzz
# into .tools/ and builds the fuzz targets: docs/robustness.md has the cost.
fuzz_seconds="${FUZZ_SECONDS:-20}"
if [ "$fuzz_seconds" != 0 ]; then
    step "cargo fuzz (${fuzz_seconds} s per target)"
    scripts/fuzz.sh "$fuzz_seconds"
fi
step "ruff"
ruff check python tests scripts
ruff format --check python tests scripts
step "mypy (and stubtest: the _core stub matches the compiled module)"
mypy
python -m mypy.stubtest mlflow_descope_auth._core
step "pytest"
scripts/ensure-chromium.sh
pytest "$@"

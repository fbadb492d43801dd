#!/usr/bin/env bash
# Fuzzes every target in fuzz/ for a bounded time: scripts/fuzz.sh [seconds-per-target]
# (default 20). Installs cargo-fuzz into .tools/ inside the clone when no
# cargo-fuzz is on PATH (CI starts from a fresh clone and caches nothing
# outside it), builds the targets, and runs
# each on a scratch copy of its seed corpus (the committed corpus is only read).
# Exits non-zero when any target crashes; the input is left under
# fuzz/artifacts/<target>/. docs/robustness.md says how to reproduce and
# minimise one, and records the long runs.
#
# Stable Rust is enough: `--sanitizer none` drops the -Zsanitizer flag, the
# only nightly flag cargo-fuzz passes; coverage (-Cpasses=sancov-module) and
# libFuzzer (built by libfuzzer-sys) work on stable. Without a sanitizer there
# is no ASan/malloc hook, so allocation is bounded through -rss_limit_mb.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

seconds="${1:-20}"
targets=(verify_token verify_signed claims_and_levels)
cargo_fuzz_version=0.13.2

export PATH="$root/.tools/bin:$PATH"
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz $cargo_fuzz_version into .tools/"
    cargo install --locked --root "$root/.tools" cargo-fuzz --version "$cargo_fuzz_version"
fi

# -a: debug assertions (and with them overflow checks) in the fuzzed code.
build=(--sanitizer none -a)
echo "fuzz: building ${targets[*]}"
cargo fuzz build "${build[@]}"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
failed=()
for target in "${targets[@]}"; do
    echo "fuzz: $target for ${seconds}s"
    mkdir -p "$scratch/$target" "fuzz/artifacts/$target"
    # 17000 bytes: just over the 16 KiB token limit. 10 s for one input and
    # 512 MB of RSS are far beyond anything the core needs; past them is a bug.
    if ! cargo fuzz run "${build[@]}" "$target" "$scratch/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -max_len=17000 -timeout=10 -rss_limit_mb=512 \
        -print_final_stats=1 2>"$scratch/$target.log"; then
        failed+=("$target")
        tail -n 40 "$scratch/$target.log"
    fi
    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$scratch/$target.log" || true
    echo "fuzz: $target new corpus entries: $(find "$scratch/$target" -type f | wc -l)"
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz: FAILED: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz: no crash in ${#targets[@]} targets x ${seconds}s"

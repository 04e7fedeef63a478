#!/usr/bin/env bash
# Builds every fuzz target and runs each one for N seconds, one after the other.
#
#   fuzz/smoke.sh [SECONDS]          (default 20; or set FUZZ_SECONDS)
#
# Environment:
#   FUZZ_SANITIZER   address (default) or none — `none` builds without AddressSanitizer (faster; panics,
#                    overflow checks and debug assertions still abort the run)
#   FUZZ_TARGETS     space-separated subset of targets (default: all, from `cargo fuzz list`)
#
# Works on a stable toolchain: cargo-fuzz needs nightly-only rustc flags (-Z sanitizer, -Z ...), which
# RUSTC_BOOTSTRAP=1 unlocks. Exits non-zero if a target fails to build or finds a crash; crashing inputs
# are in fuzz/artifacts/<target>/. New corpus entries go to fuzz/corpus/<target>/ (not committed); the
# committed seeds in fuzz/seeds/<target>/ are read too.
set -euo pipefail

secs="${1:-${FUZZ_SECONDS:-20}}"
sanitizer="${FUZZ_SANITIZER:-address}"
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "smoke.sh: cargo-fuzz is not installed (cargo install cargo-fuzz --locked)" >&2
    exit 2
fi
export RUSTC_BOOTSTRAP=1

echo "== building fuzz targets (sanitizer: $sanitizer)"
nice -n 10 cargo fuzz build --sanitizer "$sanitizer"

targets="${FUZZ_TARGETS:-$(cargo fuzz list)}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
failed=()
for t in $targets; do
    mkdir -p "corpus/$t" "seeds/$t"
    echo "== $t: ${secs}s"
    if ! nice -n 10 cargo fuzz run --sanitizer "$sanitizer" "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=3072 -print_final_stats=1 2>"$log"; then
        failed+=("$t")
        tail -n 40 "$log" >&2
    else
        grep -E '^stat::(number_of_executed_units|new_units_added)|^Done' "$log" || true
    fi
done

if [ "${#failed[@]}" -ne 0 ]; then
    echo "smoke.sh: crashes or build failures in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "smoke.sh: all targets ran ${secs}s without a crash"

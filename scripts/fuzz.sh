#!/usr/bin/env bash
# Runs every fuzz target for a while (default 30 s each). Installs cargo-fuzz if needed.
# libFuzzer needs nightly-only sanitizer flags; RUSTC_BOOTSTRAP lets the stable toolchain
# pass them. Crashes land in fuzz/artifacts/<target>/ and fail the script.
#
# Usage: scripts/fuzz.sh [seconds-per-target] [target...]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-30}
shift || true
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi
export RUSTC_BOOTSTRAP=1
targets=("$@")
[ ${#targets[@]} -eq 0 ] && mapfile -t targets < <(cargo fuzz list)
for target in "${targets[@]}"; do
    echo "fuzzing $target for ${seconds}s" >&2
    log=$(mktemp)
    if ! cargo fuzz run -O "$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 >"$log" 2>&1; then
        tail -n 60 "$log" >&2
        echo "fuzz target $target failed; failing inputs are in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    grep -E "^Done" "$log" >&2 || true
    rm -f "$log"
done

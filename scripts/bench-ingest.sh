#!/usr/bin/env bash
# Benchmark (not a test): POST /api/v1/ingest throughput, one build against another in the
# same run, so a refactor's cost shows as a ratio on a shared, noisy machine.
#
# Batches of 1,000 vitals (bench/ingest_batch.py, with an input text to scan), posted by wrk
# to a release `vigil serve` (immune system on, rate limit off), rounds interleaved A, B, A,
# B, ... Reports vitals/s per round and the ratio of the medians (B / A).
#
# Usage: scripts/bench-ingest.sh BEFORE_BIN [AFTER_BIN] [rounds] [seconds] [connections]
#   AFTER_BIN defaults to this tree's release build (built here).
set -euo pipefail
cd "$(dirname "$0")/.."
before=${1:?usage: scripts/bench-ingest.sh BEFORE_BIN [AFTER_BIN] [rounds] [seconds] [connections]}
after=${2:-target/release/vigil}
rounds=${3:-3}
duration=${4:-10}
connections=${5:-4}
if ! command -v wrk >/dev/null; then
    apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
[ -n "${2:-}" ] || cargo build --release --locked -q -p vigil

work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
python3 bench/ingest_batch.py "$work" --input-text

run() { # label, binary -> prints vitals/s
    local label=$1 bin=$2 data url rps non2xx
    data=$(mktemp -d -p "$work")
    VIGIL_DATA=$data VIGIL_LOG=warn VIGIL_LISTEN=127.0.0.1:0 VIGIL_RATE_LIMIT_ENABLED=false \
        "$bin" serve >"$data/serve.out" 2>"$data/serve.err" &
    pid=$!
    for _ in $(seq 1 100); do grep -q listening "$data/serve.out" 2>/dev/null && break; sleep 0.1; done
    url=$(grep -o 'http://[0-9.:]*' "$data/serve.out")
    wrk -t1 -c"$connections" -d"${duration}s" -s "$work/post.lua" "$url/api/v1/ingest" >"$data/wrk.txt"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    pid=
    rps=$(awk '/Requests\/sec/ {print $2}' "$data/wrk.txt")
    non2xx=$(awk '/Non-2xx/ {print $5}' "$data/wrk.txt")
    printf '%-8s %10.0f vitals/s (non-2xx %s)\n' "$label" "$(echo "$rps * 1000" | bc)" "${non2xx:-0}" >&2
    echo "$rps * 1000" | bc
}

a=() b=()
for round in $(seq 1 "$rounds"); do
    echo "round $round" >&2
    a+=("$(run before "$before")")
    b+=("$(run after "$after")")
done
python3 - "${a[*]}" "${b[*]}" <<'PY'
import statistics, sys
a = [float(x) for x in sys.argv[1].split()]
b = [float(x) for x in sys.argv[2].split()]
ma, mb = statistics.median(a), statistics.median(b)
print(f"median vitals/s: before {ma:,.0f}, after {mb:,.0f}; after / before = {mb / ma:.3f}")
PY

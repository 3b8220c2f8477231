#!/usr/bin/env bash
# Benchmark (not a test): the immune system.
#
#   1. Fleet accuracy (crates/vigil-immune/benches/fleet.rs): the engine against seeded
#      synthetic fleets with labelled injected faults, one line per seed — detection
#      precision/recall/F1, diagnosis top-1, delay in the agent's calls, false positives per
#      10k healthy calls — and the engine's own throughput in process (observations/s).
#   2. Rhythm (crates/vigil-immune/benches/rhythm.rs): runaways of ordinary calls in a
#      fleet over two simulated weeks — recall (all, loud), precision, delay in minutes,
#      false incidents.
#   3. Ingest throughput: batches of 1,000 vitals POSTed to a release `vigil serve` with wrk,
#      once with the immune system judging and logging every call and once with it off
#      (`VIGIL_IMMUNE_ENABLED=false`, the in-run reference: same HTTP, parsing and vitals
#      storage). The ratio is what the immune system costs the ingest path.
#
# Usage: scripts/bench-immune.sh [seeds] [duration-seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-5}
duration=${2:-10}
connections=${3:-4}

echo "== fleet accuracy and engine throughput ($seeds seeds)"
cargo bench --locked -q -p vigil-immune --bench fleet --no-run 2>/dev/null
for seed in $(seq 1 "$seeds"); do
    FLEET_SEED=$seed cargo bench --locked -q -p vigil-immune --bench fleet 2>/dev/null | grep '^{'
done

echo "== rhythm: runaways of ordinary calls over 14 simulated days ($seeds seeds)"
cargo bench --locked -q -p vigil-immune --bench rhythm --no-run 2>/dev/null
for seed in $(seq 1 "$seeds"); do
    RHYTHM_SEED=$seed cargo bench --locked -q -p vigil-immune --bench rhythm 2>/dev/null | grep '^{'
done

echo "== POST /api/v1/ingest, batches of 1000"
if ! command -v wrk >/dev/null; then
    apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
cargo build --release --locked -q
bin=target/release/vigil
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
python3 bench/ingest_batch.py "$work"

run() { # label, immune enabled
    local label=$1 enabled=$2 data
    data=$(mktemp -d -p "$work")
    VIGIL_DATA=$data VIGIL_LOG=warn VIGIL_LISTEN=127.0.0.1:0 VIGIL_IMMUNE_ENABLED=$enabled \
        VIGIL_RATE_LIMIT_ENABLED=false "$bin" serve >"$data/serve.out" 2>"$data/serve.err" &
    pid=$!
    for _ in $(seq 1 100); do grep -q listening "$data/serve.out" 2>/dev/null && break; sleep 0.1; done
    local url
    url=$(grep -o 'http://[0-9.:]*' "$data/serve.out")
    wrk -t1 -c"$connections" -d"${duration}s" -s "$work/post.lua" "$url/api/v1/ingest" >"$data/wrk.txt"
    local rps non2xx dropped
    rps=$(awk '/Requests\/sec/ {print $2}' "$data/wrk.txt")
    non2xx=$(awk '/Non-2xx/ {print $5}' "$data/wrk.txt")
    # Vitals the immune system could not judge (its queue was full) would make "on" a lie.
    dropped=$(curl -sf "$url/metrics" | awk '/^vigil_immune_observations_dropped_total/ {print $2}')
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    printf '%-34s %10.0f vitals/s   (%s batches/s, non-2xx %s, not judged %s)\n' \
        "$label" "$(echo "$rps * 1000" | bc)" "$rps" "${non2xx:-0}" "${dropped:-0}"
    echo "$rps" >"$work/$enabled.rps"
}
run "immune on (judged and logged)" true
run "immune off (reference)" false
echo "ratio on/off: $(echo "scale=2; $(cat "$work/true.rps") / $(cat "$work/false.rps")" | bc)"

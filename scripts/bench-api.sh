#!/usr/bin/env bash
# Benchmark (not a test): an authenticated list endpoint under loopback load with wrk.
#
# Starts a release `vigil serve` in production mode, seeds the audit log, then drives
#   1. GET /api/v1/audit?limit=20 with an admin key (auth lookup + SQLite page + JSON), and
#   2. GET /api/v1/keys?limit=20 with an admin key (the same, smaller rows), and
#   3. GET /health/live without a key (routing, middleware, JSON; no auth, no database)
# in the same run. (3) is the in-run reference: the ratio (1)/(3) is what authentication,
# the store and serialisation cost, and stays meaningful on a noisy shared machine where
# absolute numbers move. Installs wrk from Debian if missing.
#
# Peer: Datasette (PyPI, pinned below), which serves the same SQLite rows as an
# authenticated JSON list (a signed bearer token, `_size=20`), runs against a backup of the
# same database in the same run. Set BENCH_PEER=0 to skip it.
#
# Usage: scripts/bench-api.sh [duration-seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
connections=${2:-32}

if ! command -v wrk >/dev/null; then
    apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
cargo build --release --locked -q

data=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$data"' EXIT
export VIGIL_DATA=$data VIGIL_MODE=production VIGIL_LOG=warn VIGIL_LISTEN=127.0.0.1:0 \
    VIGIL_RATE_LIMIT_PER_SECOND=1000000 VIGIL_RATE_LIMIT_BURST=10000000
bin=target/release/vigil
key=$($bin keys create --name bench-admin --scope admin 2>/dev/null)
for i in $(seq 1 40); do $bin keys create --name "seed-$i" --scope read >/dev/null 2>&1; done

$bin serve >"$data/serve.out" 2>"$data/serve.err" &
pid=$!
for _ in $(seq 1 100); do grep -q listening "$data/serve.out" 2>/dev/null && break; sleep 0.1; done
url=$(grep -o 'http://[0-9.:]*' "$data/serve.out")
curl -sf -H "X-API-Key: $key" "$url/api/v1/audit?limit=20" >/dev/null

run() { # slug, label, extra wrk args...
    local name=$1 label=$2; shift 2
    wrk -t1 -c"$connections" -d"${duration}s" --latency "$@" >"$data/$name.txt"
    local rps p50 p99
    rps=$(awk '/Requests\/sec/ {print $2}' "$data/$name.txt")
    p50=$(awk '$1=="50%" {print $2}' "$data/$name.txt")
    p99=$(awk '$1=="99%" {print $2}' "$data/$name.txt")
    local errors
    errors=$(awk '/Non-2xx/ {print $5}' "$data/$name.txt")
    printf '%-44s %10s req/s   p50 %8s   p99 %8s   non-2xx %s\n' "$label" "$rps" "$p50" "$p99" "${errors:-0}"
    echo "$rps" >"$data/$name.rps"
}

echo "vigil $($bin --version | cut -d' ' -f2-), $(nproc) cores, wrk 1 thread, $connections connections, ${duration}s each"
run list "GET /api/v1/audit?limit=20 (admin key)" -H "X-API-Key: $key" "$url/api/v1/audit?limit=20"
run keys "GET /api/v1/keys?limit=20 (admin key)" -H "X-API-Key: $key" "$url/api/v1/keys?limit=20"
run live "GET /health/live (no auth, no store)" "$url/health/live"
if [ "${BENCH_PEER:-1}" != 0 ]; then
    venv=target/bench-venv
    [ -x "$venv/bin/datasette" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q "datasette==1.0a41"; }
    $bin db backup "$data/peer.db" >/dev/null
    printf 'allow:\n  id: root\n' >"$data/datasette.yaml"
    token=$("$venv/bin/datasette" create-token root --secret bench-secret)
    "$venv/bin/datasette" serve "$data/peer.db" -p 0 --secret bench-secret -c "$data/datasette.yaml" \
        >"$data/peer.out" 2>&1 &
    peer=$!
    trap 'kill "$pid" "$peer" 2>/dev/null || true; rm -rf "$data"' EXIT
    for _ in $(seq 1 100); do grep -qo 'http://127.0.0.1:[0-9]*' "$data/peer.out" && break; sleep 0.1; done
    peer_url=$(grep -o 'http://127.0.0.1:[0-9]*' "$data/peer.out" | head -1)
    status=$(curl -s -o /dev/null -w '%{http_code}' "$peer_url/peer/audit_log.json?_size=20&_sort_desc=seq")
    [ "$status" = 403 ] || { echo "peer does not enforce its token (got $status)" >&2; exit 1; }
    run peer "peer: Datasette audit_log.json?_size=20 (token)" -H "Authorization: Bearer $token" \
        "$peer_url/peer/audit_log.json?_size=20&_sort_desc=seq"
    awk -v a="$(cat "$data/list.rps")" -v b="$(cat "$data/peer.rps")" \
        'BEGIN { printf "ratio vigil audit list / Datasette: %.1f\n", a / b }'
fi
for name in list keys; do
    awk -v n="$name" -v a="$(cat "$data/$name.rps")" -v b="$(cat "$data/live.rps")" \
        'BEGIN { printf "ratio %s / liveness: %.2f\n", n, a / b }'
done

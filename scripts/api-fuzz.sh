#!/usr/bin/env bash
# Property-based fuzzing of the HTTP API against its own OpenAPI document: schemathesis
# (pinned, installed here) generates requests for every operation, valid and invalid, and
# checks every answer: no 5xx, every status and body as the document declares, every
# constraint the server enforces declared. Production mode with an admin key, so
# authentication is what a deployment has; a mock provider serves the model calls.
#
# Usage: scripts/api-fuzz.sh [seconds] [vigil binary]   (default 120 s, target/debug/vigil)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-120}
vigil=${2:-target/debug/vigil}
venv=target/schemathesis-venv
if ! "$venv/bin/st" --version 2>/dev/null | grep -q "4.32.5"; then
    echo "installing schemathesis into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "schemathesis==4.32.5"
fi
[ -x "$vigil" ] || cargo build --locked -q -p vigil

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
upstream_port=$(free_port)
port=$(free_port)
"$vigil" mock-upstream --listen "127.0.0.1:$upstream_port" >"$work/upstream.log" 2>&1 &
pids+=($!)
key=$(python3 -c 'import secrets; print("vk_fuzz_" + secrets.token_hex(24))')
mkdir -p "$work/data"
cat >"$work/data/vigil.toml" <<TOML
[[gateway.providers]]
name = "mock"
kind = "openai"
base_url = "http://127.0.0.1:$upstream_port/v1"

[[gateway.providers]]
name = "mock-anthropic"
kind = "anthropic"
base_url = "http://127.0.0.1:$upstream_port/v1"
TOML
VIGIL_MODE=production VIGIL_ADMIN_KEY="$key" VIGIL_LISTEN="127.0.0.1:$port" VIGIL_DATA="$work/data" \
    VIGIL_EGRESS_ALLOW=127.0.0.1 "$vigil" serve >"$work/vigil.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null || { cat "$work/vigil.log" >&2; exit 1; }

curl -fs -H "X-API-Key: $key" "http://127.0.0.1:$port/api/v1/openapi.json" >"$work/openapi.json"
status=0
"$venv/bin/st" --config-file scripts/schemathesis.toml run "$work/openapi.json" --url "http://127.0.0.1:$port" \
    --header "X-API-Key: $key" \
    --max-time "$seconds" \
    --seed 7 \
    --workers 2 \
    --request-timeout 10 \
    --generation-codec utf-8 \
    --no-color \
    >"$work/st.txt" 2>&1 || status=$?
mkdir -p target && cp "$work/st.txt" target/api-fuzz-last.txt
tail -40 "$work/st.txt"
if [ "$status" -ne 0 ]; then
    echo "schemathesis found problems (exit $status; full output in target/api-fuzz-last.txt); the server log:" >&2
    tail -20 "$work/vigil.log" >&2
fi
exit "$status"

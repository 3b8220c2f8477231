#!/usr/bin/env bash
# Benchmark (not a test): Vigil's gateway against TensorZero, LiteLLM and Portkey, all in
# front of the same mock provider (`vigil mock-upstream`), at fixed request rates, streaming
# and not. Reports latency added over calling the mock directly, CPU per request and peak
# memory (bench/gateway_bench.py). Installs what it needs into target/bench-gateway/.
#
# Usage: [REPEAT=n] [GOVERNANCE=1] scripts/bench-gateway.sh [rates] [seconds] [peers]
#   e.g. scripts/bench-gateway.sh 1000,2000,5000 10 tensorzero,litellm,portkey
# REPEAT measures every cell n times, the targets in turn, and reports the medians.
# GOVERNANCE=1 adds the same build with a policy, a kill switch and budgets in force, and
# reports its budget admission and settlement times separately.
set -euo pipefail
cd "$(dirname "$0")/.."
rates=${1:-1000,2000,5000}
seconds=${2:-10}
peers=${3:-tensorzero,litellm,portkey}
scratch=$PWD/target/bench-gateway
mkdir -p "$scratch"

command -v oha >/dev/null || cargo install --locked oha
cargo build --release --locked -q

if [[ $peers == *tensorzero* ]] && [ ! -x "$scratch/venv-tensorzero/bin/python" ]; then
    python3 -m venv "$scratch/venv-tensorzero"
    "$scratch/venv-tensorzero/bin/pip" install -q "tensorzero==2026.6.0"
fi
if [[ $peers == *litellm* ]] && [ ! -x "$scratch/venv-litellm/bin/litellm" ]; then
    python3 -m venv "$scratch/venv-litellm"
    "$scratch/venv-litellm/bin/pip" install -q "litellm[proxy]==1.106.2"
fi
if [[ $peers == *portkey* ]] && [ ! -d "$scratch/portkey/node_modules/@portkey-ai/gateway" ]; then
    mkdir -p "$scratch/portkey"
    cat >"$scratch/portkey/package.json" <<'JSON'
{
  "private": true,
  "dependencies": { "@portkey-ai/gateway": "1.15.2" },
  "overrides": { "@hono/node-server": "1.13.5", "hono": "4.9.7" }
}
JSON
    (cd "$scratch/portkey" && npm install --silent --no-audit --no-fund)
fi

python3 bench/gateway_bench.py target/release/vigil "$scratch" --rates "$rates" --seconds "$seconds" --peers "$peers" \
    --repeat "${REPEAT:-1}" ${GOVERNANCE:+--governance}

#!/usr/bin/env bash
# Benchmark (not a test): what the plugin sandbox costs per plugin, and a 10-plugin no-op
# DAG end to end (crates/vigil-harness/benches/harness.rs), with Python's subprocess.run of
# the same no-op plugin as the peer (how the harness Vigil replaces started plugins).
#
# Usage: scripts/bench-harness.sh [iterations]
set -euo pipefail
cd "$(dirname "$0")/.."
iterations=${1:-200}
cargo build --release --locked -q -p vigil
export VIGIL_BIN=$PWD/target/release/vigil BENCH_ITERATIONS=$iterations
cargo bench --locked -q -p vigil-harness --bench harness 2>/dev/null | grep '^{'
python3 - "$iterations" <<'PY'
import json, subprocess, sys, time
n = int(sys.argv[1])
cmd = ["/bin/sh", "-c", "cat > /dev/null; printf '{\"status\": \"ok\"}'"]
for _ in range(10):
    subprocess.run(cmd, input=b"{}", capture_output=True, timeout=10)
samples = []
for _ in range(n):
    t = time.perf_counter()
    out = subprocess.run(cmd, input=b"{}", capture_output=True, timeout=10)
    samples.append((time.perf_counter() - t) * 1000)
    json.loads(out.stdout)
samples.sort()
pick = lambda p: samples[min(len(samples) - 1, round((len(samples) - 1) * p))]
print(json.dumps({"bench": "plugin_start_python_subprocess_peer", "n": n, "p50_ms": round(pick(0.5), 3), "p90_ms": round(pick(0.9), 3), "p99_ms": round(pick(0.99), 3)}))
PY

#!/usr/bin/env bash
# Benchmark (not a test): a release Vigil under a steady mixed load (gateway calls, ingest,
# uploads and runs, list endpoints) for a long time, its resident memory sampled, to show
# whether memory plateaus (bench/soak.py). Python's standard library only.
#
# Usage: scripts/bench-soak.sh [minutes] [gateway requests per second]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q
python3 bench/soak.py target/release/vigil --minutes "${1:-10}" --gateway-rps "${2:-100}"

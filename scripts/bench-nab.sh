#!/usr/bin/env bash
# Benchmark (not a test): the sentinel's detector on the Numenta Anomaly Benchmark
# (crates/vigil-immune/benches/nab.rs), all three scoring profiles, beside NAB's
# windowed-Gaussian baseline in the same run.
#
# Usage: scripts/bench-nab.sh [nab-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
export NAB_DIR=${1:-$PWD/../shared/data/nab}
cargo bench --locked -q -p vigil-immune --bench nab 2>/dev/null | grep '^{'

#!/usr/bin/env bash
# Benchmark (not a test): the prompt-injection signal (crates/vigil-immune/src/injection.rs)
# on the labelled corpus of PyPI `bastioncorpus` (pinned below, installed into a venv here):
# recall per attack category at the engine's threshold (0.5), false positives on the
# corpus's benign hard negatives, and the scan cost. The rules were written knowing this
# corpus's attack families, so its numbers are an upper bound on unseen text; the unit tests
# in injection.rs use examples of their own.
#
# Usage: scripts/bench-injection.sh
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/bastion-venv
if ! "$venv/bin/python" -c 'import bastioncorpus' >/dev/null 2>&1; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "bastioncorpus==0.6.0"
fi
corpus=target/bastioncorpus.jsonl
"$venv/bin/python" scripts/bastion_dump.py "$corpus"
INJECTION_CORPUS=$PWD/$corpus cargo bench --locked -q -p vigil-immune --bench injection 2>&1 | grep -E '^\{|^false positive'

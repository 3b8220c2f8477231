#!/usr/bin/env bash
# Runs every test Vigil has: architecture invariants, then unit, property and end-to-end
# tests (the end-to-end tests start the real `vigil` binary on loopback ports).
# Installs what the tests need first, so it works on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo nextest --version >/dev/null 2>&1; then
    echo "installing cargo-nextest" >&2
    cargo install --locked cargo-nextest
fi

# Invariant: the pure crates stay pure (no async runtime, no HTTP, no SQL). The first
# check proves the query itself works, so a broken `cargo tree` cannot pass silently.
for pure in vigil-core vigil-immune; do
    cargo tree -p "$pure" -e normal -i serde >/dev/null
    for banned in tokio axum hyper rusqlite; do
        if cargo tree -p "$pure" -e normal -i "$banned" >/dev/null 2>&1; then
            echo "invariant broken: $pure depends on $banned" >&2
            exit 1
        fi
    done
done

# The gateway tests drive Vigil with the official OpenAI and Anthropic Python SDKs, and the
# OTLP receiver test with the official OpenTelemetry SDK, all pinned here.
venv=target/py-venv
if ! "$venv/bin/python" -c 'import openai, anthropic, opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http' >/dev/null 2>&1; then
    echo "installing the OpenAI, Anthropic and OpenTelemetry Python SDKs into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "openai==3.54.0" "anthropic==2.12.0" \
        "opentelemetry-sdk==1.45.2" "opentelemetry-exporter-otlp-proto-http==1.45.2"
fi
export VIGIL_TEST_PYTHON="$PWD/$venv/bin/python"

profile=default
[ -n "${CI:-}" ] && profile=ci
cargo nextest run --workspace --profile "$profile" "$@"

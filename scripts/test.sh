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
for pure in vigil-core vigil-immune vigil-pack vigil-tabular vigil-governance; do
    cargo tree -p "$pure" -e normal -i serde >/dev/null
    for banned in tokio axum hyper rusqlite; do
        if cargo tree -p "$pure" -e normal -i "$banned" >/dev/null 2>&1; then
            echo "invariant broken: $pure depends on $banned" >&2
            exit 1
        fi
    done
done
# Invariant: the services layer has no HTTP framework or HTTP stack in its tree (it talks to
# the outside through ports the binary fills). Again the first query proves `cargo tree` works.
cargo tree -p vigil-services -e normal -i tokio >/dev/null
for banned in axum hyper reqwest tower; do
    if cargo tree -p vigil-services -e normal -i "$banned" >/dev/null 2>&1; then
        echo "invariant broken: vigil-services depends on $banned" >&2
        exit 1
    fi
done

# Invariant: the harness and the HTTP adapter reach storage only through the ports, so a
# Postgres store or an object store serves them unchanged: outside test modules they never
# name the SQLite `Store` or the folder `BlobStore`. The check must find the store crate's
# own uses, so a broken pattern cannot pass silently.
concrete_store_uses() {
    find "$@" -name '*.rs' -print0 | xargs -0 perl -ne '
        close ARGV, next if /^#\[cfg\(test\)\]/;
        next if m{^\s*//};
        print "$ARGV:$.: $_" if /(?<![A-Za-z_])(Blob)?Store(?![A-Za-z_(])/;
        close ARGV if eof;'
}
if [ -z "$(concrete_store_uses crates/vigil-store/src)" ]; then
    echo "the concrete-store check finds nothing where it must: fix the pattern" >&2
    exit 1
fi
if uses=$(concrete_store_uses crates/vigil-harness/src crates/vigil-server/src) && [ -n "$uses" ]; then
    echo "invariant broken: the harness or the server names a concrete store:" >&2
    echo "$uses" >&2
    exit 1
fi

# The gateway tests drive Vigil with the official OpenAI and Anthropic Python SDKs, the
# OTLP receiver test with the official OpenTelemetry SDK, and the tabular pack's profile is
# checked against pandas/numpy/scipy: all pinned here.
venv=target/py-venv
if ! "$venv/bin/python" -c 'import openai, anthropic, opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http, pandas, scipy' >/dev/null 2>&1; then
    echo "installing the OpenAI, Anthropic and OpenTelemetry Python SDKs, pandas and scipy into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "openai==3.54.0" "anthropic==2.12.0" \
        "opentelemetry-sdk==1.45.2" "opentelemetry-exporter-otlp-proto-http==1.45.2" \
        "pandas==3.1.1" "numpy==2.4.6" "scipy==1.17.1"
fi
export VIGIL_TEST_PYTHON="$PWD/$venv/bin/python"

# The API fuzzer (scripts/api-fuzz.sh, run by .ci/run) in a venv of its own: its pins do not
# have to agree with the SDKs'.
fuzz_venv=target/schemathesis-venv
if ! "$fuzz_venv/bin/st" --version 2>/dev/null | grep -q "4.32.5"; then
    echo "installing schemathesis into $fuzz_venv" >&2
    python3 -m venv "$fuzz_venv"
    "$fuzz_venv/bin/pip" install -q "schemathesis==4.32.5"
fi

profile=default
[ -n "${CI:-}" ] && profile=ci
cargo nextest run --workspace --profile "$profile" "$@"

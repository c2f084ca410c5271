#!/usr/bin/env bash
# Every test, from a fresh machine: installs the Rust targets it needs, then
# lints, builds core without std, builds the WebAssembly client, and runs
# the unit, simulation, integration and real-socket tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup.sh
bash ci/lint.sh
bash ci/build-core-nostd.sh
if [ -f ci/build-wasm.sh ]; then
    bash ci/build-wasm.sh
fi
# The integration tests of host-runner start the real chatserver.
cargo build --bins
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --no-fail-fast
else
    cargo test --no-fail-fast
fi
cargo test --doc

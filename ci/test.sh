#!/usr/bin/env bash
# Every test, from a fresh machine: installs the Rust targets it needs, then
# lints, builds core without std, builds the WebAssembly client, runs the
# unit, simulation, integration and real-socket tests, and (on Linux) a short
# run of every fuzz target and of every benchmark workload.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
step() { echo; echo "=== $* ($((SECONDS - started)) s)"; }

step setup
bash ci/setup.sh
step lint
bash ci/lint.sh
step "core without std"
bash ci/build-core-nostd.sh
step "wasm client"
bash ci/build-wasm.sh
step "binaries"
# The integration tests of host-runner start the real chatserver.
cargo build --bins
# Compile the wasm modules into the cache the host-runner tests share, once,
# before the tests start in parallel (a debug wasmtime takes a while).
target="${CARGO_TARGET_DIR:-target}"
for module in "$target"/wasm32-wasip2/release/*.wasm; do
    "$target/debug/host-runner" --precompile --module "$module" \
        --cache-dir "$target/host-runner-test-cache" 127.0.0.1 9 warmup </dev/null
done
step "test suites"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --no-fail-fast
else
    cargo test --no-fail-fast
fi
cargo test --doc
if [ "$(uname -s)" = Linux ]; then
    step "fuzz smoke"
    FUZZ_SECONDS="${FUZZ_SECONDS:-20}" bash ci/fuzz-smoke.sh
    step "bench smoke"
    bash ci/bench-smoke.sh
fi
step "done"

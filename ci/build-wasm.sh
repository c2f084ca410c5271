#!/usr/bin/env bash
# Builds the udpchat client as a WebAssembly component for host-runner:
#
#   target/wasm32-wasip2/release/wasi-client.wasm    the client
#   target/wasm32-wasip2/release/probe-*.wasm        guests for host-runner's
#                                                    sandbox tests
#
# (under $CARGO_TARGET_DIR instead of target/ if that is set). host-runner
# finds wasi-client.wasm there by itself when it is built in the same target
# directory; see `host-runner --help`.
#
# Usage: ci/build-wasm.sh            (from anywhere in the repository)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    rustup target add wasm32-wasip2
fi

# The workspace's release profile keeps line tables for native profiling;
# inside the sandbox they only make the module bigger and slower to compile,
# so drop them (function names stay, for trap backtraces).
export CARGO_PROFILE_RELEASE_DEBUG=false
export CARGO_PROFILE_RELEASE_STRIP=debuginfo

cargo build --package wasi-client --target wasm32-wasip2 --release \
    --features sandbox-probes --bins

out="${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release"
ls -l "$out"/wasi-client.wasm "$out"/probe-*.wasm

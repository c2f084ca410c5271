#!/usr/bin/env bash
# Proves that core is no_std: builds it for wasm32-unknown-unknown, a target
# with no operating system and no std.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-unknown-unknown >/dev/null
cargo build -p udpchat-core --target wasm32-unknown-unknown --release
echo "core builds for wasm32-unknown-unknown (no_std)"

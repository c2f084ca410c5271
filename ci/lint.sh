#!/usr/bin/env bash
# Formatting and lints, warnings as errors.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all --check
cargo clippy --all-targets -- -D warnings
if [ -f wasi-client/Cargo.toml ]; then
    cargo clippy -p wasi-client --target wasm32-wasip2 --all-features -- -D warnings
fi
# The API docs: every link resolves.
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace --quiet

#!/usr/bin/env bash
# Installs what the tests need on a fresh machine: the Rust targets and
# components. Idempotent; safe to run every time.
set -euo pipefail
rustup component add rustfmt clippy >/dev/null 2>&1 || true
rustup target add wasm32-wasip2 wasm32-unknown-unknown
if ! cargo nextest --version >/dev/null 2>&1; then
    echo "cargo-nextest not found: tests will run with cargo test" >&2
fi
# The cluster tests start their own redis-server.
if ! command -v redis-server >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
        sudo=""
        if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
        $sudo apt-get update
        $sudo apt-get install -y redis-server
    else
        echo "redis-server not found: install Redis 7 for the cluster tests" >&2
    fi
fi

#!/usr/bin/env bash
# Runs every fuzz target for a short time (default 20 s each; FUZZ_SECONDS
# overrides), with the nightly toolchain and cargo-fuzz, installing them if
# missing. Linux only. A crash fails the script and leaves the input in
# fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${FUZZ_SECONDS:-20}"
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo +nightly install cargo-fuzz --locked
fi
cd fuzz
for target in decode_datagram handshake server_entry; do
    mkdir -p "corpus/$target"
    echo "fuzzing $target for ${SECONDS_EACH}s"
    log="$(mktemp)"
    if ! cargo +nightly fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$SECONDS_EACH" -max_len=4096 -print_final_stats=1 >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "fuzz target $target failed: see fuzz/artifacts/$target" >&2
        exit 1
    fi
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE)' "$log" || true
    rm -f "$log"
done
echo "fuzz smoke: all targets ran without a crash"

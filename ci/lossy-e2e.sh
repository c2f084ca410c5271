#!/usr/bin/env bash
# End-to-end test through real packet loss: builds the real chatserver,
# chatclient and udprelay binaries and runs native/tests/lossy.rs, which puts
# the lossy UDP relay (20% loss, 5% duplication, 25% reordering, 20 ms delay,
# both directions) between the server and three clients and checks that every
# public and direct message arrives exactly once, in each sender's order.
#
# No root, no kernel modules: everything runs on 127.0.0.1.
#
# Usage: ci/lossy-e2e.sh [extra cargo test arguments]
#   UDPCHAT_LOSSY_SEED=N ci/lossy-e2e.sh    # another impairment seed
set -euo pipefail

cd "$(dirname "$0")/.."

if [[ -n "${UDPCHAT_LOSSY_SEED:-}" ]]; then
    echo "lossy-e2e: relay seed ${UDPCHAT_LOSSY_SEED}" >&2
fi
exec cargo test -p udpchat-native --test lossy "$@" -- --nocapture

#!/usr/bin/env bash
# Smoke test of the benchmarks: builds chatbench with chatserver and runs a
# tiny version of each workload against its own server on loopback, a tiny
# allocbench, and reliabilitybench (virtual time: a second or two). It checks that the
# bench runs and counts correctly — every user logged in, messages delivered,
# none lost, duplicated or refused, deliveries equal to what was expected —
# not how fast anything is.
#
# Usage: ci/bench-smoke.sh            (from anywhere in the repository)
#   BENCH_PROFILE=release ci/bench-smoke.sh   to build and run the release
#   build (default: dev, which CI builds for the tests anyway).
set -euo pipefail
cd "$(dirname "$0")/.."

profile="${BENCH_PROFILE:-dev}"
dir="debug"
if [ "$profile" != "dev" ]; then dir="$profile"; fi
cargo build --profile "$profile" -p udpchat-bench --bin chatbench --bin allocbench --bin reliabilitybench \
    -p udpchat-native --bin chatserver
bench="${CARGO_TARGET_DIR:-target}/$dir/chatbench"

passed=0
failed=0
# pass LINE; fail LINE OUTPUT: one result, counted.
pass() {
    echo "ok   $1"
    passed=$((passed + 1))
}
fail() {
    echo "FAIL $1"
    echo "$2"
    failed=$((failed + 1))
}
run() {
    local name="$1"
    shift
    local out
    # Bounded: a wedged run fails instead of hanging CI.
    if ! out="$(timeout 180 "$bench" "$@" --users 4 --seconds 1 --raw-seconds 0.2 --json --check)"; then
        fail "$name: chatbench $* exited non-zero" "$out"
        return
    fi
    local problems=()
    # The first occurrence of a top-level key (the keys are unique).
    field() { grep -o "\"$1\":[0-9.]*" <<<"$out" | head -n1 | cut -d: -f2; }
    [[ "$out" == *'"deliveries_per_sec":'* ]] || problems+=("no deliveries_per_sec")
    [[ "$out" == *'"raw_ceiling_per_sec":'* ]] || problems+=("no raw_ceiling_per_sec")
    [ "$(field lost)" = "0" ] || problems+=("lost=$(field lost)")
    [ "$(field expected)" = "$(field delivered)" ] ||
        problems+=("expected $(field expected) but delivered $(field delivered)")
    if [ "$name" != "idle" ]; then
        [ "$(field delivered)" != "0" ] || problems+=("nothing delivered")
    fi
    if [ ${#problems[@]} -gt 0 ]; then
        fail "$name: ${problems[*]}" "$out"
    else
        pass "$name: delivered $(field delivered), $(field deliveries_per_sec)/s, lost 0"
    fi
}

run fanout fanout --senders 2
run room room --senders 2
run dm dm --rate 1000
run login-storm login-storm --logins 6 --rate 500
run idle idle
# 4 users offline, 40 DMs stored for them (10 each), delivered at their login.
run offline offline --messages 40

# The time slices of the bench's workers and of the server's threads
# (Linux 6.12+): the run says it set them; on a kernel that ignores them,
# or for a user the kernel does not let set them, chatbench refuses the
# run with a message that says so, and this one is skipped.
if out="$(timeout 180 "$bench" dm --rate 1000 --users 4 --seconds 1 --raw-seconds 0 --json --check \
    --sched-slice-us 100 --server-sched-slice-us 100 2>&1)"; then
    if [[ "$out" == *"the bench's workers at a 100 us time slice; the server's threads at a 100 us time slice"* ]]; then
        pass "dm with time slices"
    else
        fail "dm with time slices: the run does not say it set them" "$out"
    fi
elif [[ "$out" == *"ignores the slice"* || "$out" == *"Operation not permitted"* ]]; then
    echo "skip dm with time slices: $(grep -o -e 'the kernel ignores[^"]*' -e 'Operation not permitted' <<<"$out" | head -n1)"
else
    fail "dm with time slices" "$out"
fi

# allocbench counts in memory: every message reaches every receiver, as
# the server counted too.
if out="$(timeout 180 "${CARGO_TARGET_DIR:-target}/$dir/allocbench" --users 4 --messages 50 --warmup 10)" &&
    [[ "$out" == *"messages delivered: 150 (server count 150)"* ]] &&
    [[ "$out" == *"allocations per datagram sent: "* ]] &&
    [[ "$out" == *"receiving clients: allocations "* ]]; then
    pass "allocbench: $(grep -o 'allocations per datagram sent: [0-9.]*' <<<"$out")"
else
    fail allocbench "$out"
fi
# reliabilitybench: every row delivered every message (columns 3 and 4).
if out="$(timeout 300 "${CARGO_TARGET_DIR:-target}/$dir/reliabilitybench" 2>&1)" &&
    rows="$(awk '$1 == "paced" || $1 == "bulk"' <<<"$out")" &&
    [ "$(wc -l <<<"$rows")" -eq 6 ] &&
    awk '$3 != $4 { exit 1 }' <<<"$rows"; then
    pass "reliabilitybench: 6 runs, every message delivered"
else
    fail reliabilitybench "$out"
fi
echo "bench-smoke: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# Fan-out and direct messages through a cluster of three chatserver nodes
# sharing one Redis, beside the same workload on one server, in one run.
# Each round runs, in turn:
#   single   one chatserver without --cluster (no Redis at all);
#   node-a   the cluster, every user on node a;
#   spread   the cluster, users spread over nodes a, b and c in turn.
# Prints each run (deliveries/s, one-way latency p50/p99, lost, duplicates,
# the nodes' CPU seconds and Redis's CPU seconds over the whole run, the
# users' registrations and logins included, Redis CPU per message sent, and
# the PUBLISH calls with the microseconds Redis spent in each, from INFO
# commandstats), then the medians and the ratios spread/single and
# spread/node-a. In the single runs Redis only serves the idle nodes'
# leases and heartbeats: that is the background of the other two. Redis runs with appendonly yes and appendfsync always, as
# docs/CLUSTER.md asks of a cluster whose acknowledgements must survive a
# restart.
#
#   bench/cluster-vs-single.sh [--workload fanout|dm] [--users N] [--rounds R]
#                              [--seconds S] [--rate R] [--bin DIR]
#
# Everything listens on 127.0.0.1 only, on free ports; the Redis server and
# the nodes are the script's own (a temporary directory, removed on exit).
# --bin is the directory of chatbench and chatserver [default:
# target/release, built]. redis-server and jq are installed with apt-get
# when missing.
set -euo pipefail

workload=fanout
users=300
rounds=3
secs=5
rate=5000
bin=""

while [ $# -gt 0 ]; do
    case "$1" in
        --workload) workload=$2; shift 2 ;;
        --users) users=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --seconds) secs=$2; shift 2 ;;
        --rate) rate=$2; shift 2 ;;
        --bin) bin=$2; shift 2 ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "cluster-vs-single: unknown argument $1" >&2; exit 2 ;;
    esac
done
case "$workload" in fanout|dm) ;; *) echo "cluster-vs-single: --workload fanout or dm" >&2; exit 2 ;; esac

here=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "$bin" ]; then
    (cd "$here" && cargo build --release -q -p udpchat-native -p udpchat-bench --bin chatserver --bin chatbench)
    bin=${CARGO_TARGET_DIR:-$here/target}/release
fi
[ -x "$bin/chatbench" ] && [ -x "$bin/chatserver" ] || { echo "cluster-vs-single: no chatbench/chatserver in $bin" >&2; exit 2; }

need() {
    command -v "$1" >/dev/null 2>&1 && return
    echo "cluster-vs-single: installing $2" >&2
    apt-get install -y -q "$2" >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q "$2" >/dev/null; }
}
need jq jq
need redis-server redis-server
need redis-cli redis-tools

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET, getattr(socket, sys.argv[1])); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' "$1"
}

# Clock ticks of CPU a process used (user + system).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
ticks=$(getconf CLK_TCK)

redis_port=$(free_port SOCK_STREAM)
mkdir "$tmp/redis"
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$tmp/redis" --appendonly yes \
    --appendfsync always --save '' --daemonize no >"$tmp/redis.log" 2>&1 &
redis_pid=$!
pids+=("$redis_pid")
for _ in $(seq 100); do
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
    sleep 0.05
done
redis-cli -p "$redis_port" ping >/dev/null || { cat "$tmp/redis.log" >&2; exit 1; }
# Calls of PUBLISH and their microseconds inside Redis since the last
# CONFIG RESETSTAT (INFO commandstats).
publish_stats() {
    redis-cli -p "$redis_port" info commandstats | tr -d '\r' \
        | awk -F'[:,=]' '/^cmdstat_publish:/ {print $3, $5; found=1} END {if (!found) print 0, 0}'
}
redis_cpu() {
    redis-cli -p "$redis_port" info cpu | tr -d '\r' \
        | awk -F: '/^used_cpu_(sys|user):/ {s += $2} END {printf "%.3f", s}'
}

# Limits lifted so that the benchmark's users, all on 127.0.0.1, are not
# held back by the per-address and per-session defaults.
limits=(--hash-workers 1 --bind 127.0.0.1 --message-burst 1000000 --messages-per-sec 1000000
    --max-sessions-per-ip 20000 --max-handshaking-per-ip 20000 --handshake-burst 100000
    --handshakes-per-sec 100000 --login-failures-per-min 1000000 --max-queued-bytes 8388608
    --min-password-chars 1)
key=$tmp/shared.key

# start_server NAME [cluster args...]: sets port_NAME and pid_NAME.
start_server() {
    local name=$1 port
    shift
    port=$(free_port SOCK_DGRAM)
    mkdir -p "$tmp/$name"
    "$bin/chatserver" "${limits[@]}" --key "$key" --users "$tmp/$name/chat_users.json" \
        --data "$tmp/$name/chat_data.redb" "$@" "$port" >"$tmp/$name.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 200); do
        grep -q "listening\|joined the cluster" "$tmp/$name.log" 2>/dev/null && break
        sleep 0.05
    done
    sleep 0.2
    kill -0 "$pid" 2>/dev/null || { cat "$tmp/$name.log" >&2; exit 1; }
    printf -v "port_$name" '%s' "$port"
    printf -v "pid_$name" '%s' "$pid"
}

start_server single
for n in a b c; do
    start_server "$n" --cluster "redis://127.0.0.1:$redis_port" --node "$n"
done
server_key=$("$bin/chatserver" --print-key --key "$key" | grep -Eo '[0-9a-f]{64}' | head -1)

bench() {
    local mode=$1 server=$2
    shift 2
    local args=(--json --users "$users" --seconds "$secs" --server "127.0.0.1:$server"
        --server-key "$server_key" --prefix "$mode$round")
    [ "$workload" = dm ] && args+=(--rate "$rate")
    "$bin/chatbench" "$workload" "${args[@]}" "$@" 2>"$tmp/bench.err" || { cat "$tmp/bench.err" >&2; exit 1; }
}

# run MODE PIDS... : one benchmark run; prints a line, appends to $tmp/MODE.
run() {
    local mode=$1 out before_nodes after_nodes r0 r1 p
    shift
    before_nodes=0
    for p in "$@"; do before_nodes=$((before_nodes + $(cpu_ticks "$p"))); done
    redis-cli -p "$redis_port" config resetstat >/dev/null
    r0=$(redis_cpu)
    case "$mode" in
        single) out=$(bench single "$port_single") ;;
        node-a) out=$(bench nodea "$port_a") ;;
        spread) out=$(bench spread "$port_a" --server "127.0.0.1:$port_b" --server "127.0.0.1:$port_c") ;;
    esac
    r1=$(redis_cpu)
    read -r pcalls pusec < <(publish_stats)
    after_nodes=0
    for p in "$@"; do after_nodes=$((after_nodes + $(cpu_ticks "$p"))); done
    read -r rate_ p50 p99 lost dups sent < <(jq -r '[.deliveries_per_sec, .latency_us.p50, .latency_us.p99, .lost, .duplicates, .sent] | @tsv' <<<"$out")
    local node_cpu redis_s per_msg
    node_cpu=$(awk -v a="$after_nodes" -v b="$before_nodes" -v t="$ticks" 'BEGIN {printf "%.2f", (a - b) / t}')
    redis_s=$(awk -v a="$r1" -v b="$r0" 'BEGIN {printf "%.3f", a - b}')
    per_msg=$(awk -v r="$redis_s" -v s="$sent" 'BEGIN {if (s > 0) printf "%.1f", r * 1e6 / s; else print "-"}')
    per_pub=$(awk -v u="$pusec" -v c="$pcalls" 'BEGIN {if (c > 0) printf "%.2f", u / c; else print "-"}')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$rate_" "$p50" "$p99" "$node_cpu" "$redis_s" "$per_msg" "$per_pub" >>"$tmp/res-$mode"
    printf 'round %d %-6s %9.0f deliveries/s  p50 %6.2f ms  p99 %7.2f ms  lost %s dup %s  sent %6d  nodes cpu %5.2f s  redis cpu %5.3f s (%s us/message)  %s PUBLISH, %s us each\n' \
        "$round" "$mode" "$rate_" "$(awk -v v="$p50" 'BEGIN{print v/1000}')" "$(awk -v v="$p99" 'BEGIN{print v/1000}')" \
        "$lost" "$dups" "$sent" "$node_cpu" "$redis_s" "$per_msg" "$pcalls" "$per_pub"
}

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
col() { cut -f"$2" "$tmp/res-$1" | median; }

echo "cluster-vs-single: $(date -u +%FT%TZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $workload, $users users, $secs s, $rounds rounds, $(redis-server --version | grep -Eo 'v=[0-9.]+')"
for round in $(seq "$rounds"); do
    run single "$pid_single"
    run node-a "$pid_a" "$pid_b" "$pid_c"
    run spread "$pid_a" "$pid_b" "$pid_c"
done
for mode in single node-a spread; do
    printf 'median %-6s %9.0f deliveries/s  p50 %6.2f ms  p99 %7.2f ms  nodes cpu %5.2f s  redis cpu %5.3f s (%s us/message)  PUBLISH %s us each\n' \
        "$mode" "$(col "$mode" 1)" "$(awk -v v="$(col "$mode" 2)" 'BEGIN{print v/1000}')" \
        "$(awk -v v="$(col "$mode" 3)" 'BEGIN{print v/1000}')" "$(col "$mode" 4)" "$(col "$mode" 5)" "$(col "$mode" 6)" "$(col "$mode" 7)"
done
printf 'ratio spread/single %.2f, spread/node-a %.2f (median deliveries/s)\n' \
    "$(awk -v a="$(col spread 1)" -v b="$(col single 1)" 'BEGIN{print a/b}')" \
    "$(awk -v a="$(col spread 1)" -v b="$(col node-a 1)" 'BEGIN{print a/b}')"

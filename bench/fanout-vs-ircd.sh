#!/usr/bin/env bash
# Fan-out through udpchat's chatserver against the same fan-out through
# ngircd (an IRC server over TCP, penalties off), in one run: for each
# round, `chatbench ircd-fanout` then `chatbench fanout` with the same users,
# message size, window and duration. Prints each pair, the median ratio
# (udpchat / ngircd deliveries per second) with its spread, and the
# servers' CPU seconds per million deliveries (/proc/PID/stat).
#
#   bench/fanout-vs-ircd.sh [--users N[,N...]] [--rounds R] [--seconds S]
#                           [--size BYTES] [--window W] [--ircd-window W]
#                           [--path loopback|mtu1500] [--bin DIR] [--compare DIR]
#
# --path mtu1500 (root, Linux): both servers run in a network namespace
# made for the run, joined to this one by a veth pair with a 1500-byte MTU
# (10.213.0.1 and 10.213.0.2, nothing else routed); chatserver with
# --max-datagram 1452. The namespace is removed on exit.
#
# ngircd is installed with apt-get when missing; jq likewise. --bin is the
# directory of chatbench and chatserver [default: target/release, built].
# --compare DIR runs a second build's chatbench fanout too in each round,
# right after the first: its rate over the first build's, median and spread.
#
# --ircd-window W [default: --window]: ngircd's closed loop keeps W
# messages in flight instead, so that udpchat at a window short enough for
# low latency can be set against ngircd at the window where it delivers
# most (its rate levels off from about 128 while its latency grows).
#
# --load F [default 0.5]: after each round's closed-loop pair, both servers
# run again open loop at the same offered rate, F times the messages per
# second ngircd delivered in that round's closed loop, and their p99 latency
# at that equal load is printed (0: skip). A closed loop keeps the window
# full, so its latency is the window over the rate (Little's law); the
# open loop shows what a message waits at a load both servers carry.
set -euo pipefail

users_list=100
rounds=3
secs=5
size=100
window=128
ircd_window=""
path=loopback
bin=""
compare=""
load=0.5

while [ $# -gt 0 ]; do
    case "$1" in
        --users) users_list=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --seconds) secs=$2; shift 2 ;;
        --size) size=$2; shift 2 ;;
        --window) window=$2; shift 2 ;;
        --ircd-window) ircd_window=$2; shift 2 ;;
        --path) path=$2; shift 2 ;;
        --bin) bin=$2; shift 2 ;;
        --compare) compare=$2; shift 2 ;;
        --load) load=$2; shift 2 ;;
        -h|--help) sed -n '2,33p' "$0"; exit 0 ;;
        *) echo "fanout-vs-ircd: unknown argument $1" >&2; exit 2 ;;
    esac
done
ircd_window=${ircd_window:-$window}
case "$path" in loopback|mtu1500) ;; *) echo "fanout-vs-ircd: --path loopback or mtu1500" >&2; exit 2 ;; esac

here=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "$bin" ]; then
    (cd "$here" && cargo build --release -q -p udpchat-native -p udpchat-bench --bin chatserver --bin chatbench)
    bin=${CARGO_TARGET_DIR:-$here/target}/release
fi
chatbench=$bin/chatbench
[ -x "$chatbench" ] && [ -x "$bin/chatserver" ] || { echo "fanout-vs-ircd: no chatbench/chatserver in $bin" >&2; exit 2; }

need() {
    command -v "$1" >/dev/null 2>&1 && return
    echo "fanout-vs-ircd: installing $2" >&2
    apt-get install -y -q "$2" >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q "$2" >/dev/null; }
}
need jq jq
PATH=$PATH:/usr/sbin need ngircd ngircd
ngircd=$(PATH=$PATH:/usr/sbin command -v ngircd)

tmp=$(mktemp -d)
ns=""
veth=""
ircd_pid=""
cleanup() {
    if [ -n "$ircd_pid" ]; then kill "$ircd_pid" 2>/dev/null || true; wait "$ircd_pid" 2>/dev/null || true; fi
    if [ -n "$ns" ]; then ip netns del "$ns" 2>/dev/null || true; fi
    if [ -n "$veth" ]; then ip link del "$veth" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Where the servers listen, and how they are started.
inns=()
server_addr=127.0.0.1
fanout_args=()
if [ "$path" = mtu1500 ]; then
    ns=udpchat-bench-$$
    veth=vbench$$
    ip netns add "$ns"
    ip link add "$veth" mtu 1500 type veth peer name vserver mtu 1500 netns "$ns"
    ip addr add 10.213.0.1/30 dev "$veth"
    ip link set "$veth" up
    ip -n "$ns" addr add 10.213.0.2/30 dev vserver
    ip -n "$ns" link set vserver up
    ip -n "$ns" link set lo up
    inns=(ip netns exec "$ns")
    server_addr=10.213.0.2
    fanout_args=(--server-netns "$ns" --server-bind "$server_addr" --server-max-datagram 1452)
fi

# A free TCP port on the server's side.
free_port() {
    "${inns[@]}" python3 -c 'import socket; s=socket.socket(); s.bind(("'"$server_addr"'",0)); print(s.getsockname()[1])' 2>/dev/null \
        || echo $((20000 + RANDOM % 20000))
}

start_ircd() {
    local port
    port=$(free_port)
    cat >"$tmp/ngircd.conf" <<EOF
[Global]
Name = bench.invalid
Info = chatbench fan-out comparison
AdminInfo1 = chatbench
AdminInfo2 = local
AdminEMail = root@localhost
Listen = $server_addr
Ports = $port
[Limits]
MaxConnections = 0
MaxConnectionsIP = 0
MaxJoins = 0
MaxNickLength = 30
# No penalty time: no flood protection.
MaxPenaltyTime = 0
PingTimeout = 600
PongTimeout = 600
[Options]
DNS = no
Ident = no
PAM = no
EOF
    "${inns[@]}" "$ngircd" -n -f "$tmp/ngircd.conf" >"$tmp/ngircd.log" 2>&1 &
    ircd_pid=$!
    for _ in $(seq 100); do
        grep -q "Now listening" "$tmp/ngircd.log" && break
        sleep 0.05
    done
    grep -q "Now listening" "$tmp/ngircd.log" || { cat "$tmp/ngircd.log" >&2; exit 1; }
    ircd_port=$port
}

stop_ircd() {
    kill "$ircd_pid" 2>/dev/null || true
    wait "$ircd_pid" 2>/dev/null || true
    ircd_pid=""
}

# One pair: the fan-out through ngircd, then the same through chatserver,
# with the extra arguments in $irc_extra and $udp_extra (a window each, or
# the same rate); leaves each one's JSON report in $irc and $udp.
run_pair() {
    start_ircd
    irc=$("$chatbench" ircd-fanout --json --users "$users" --seconds "$secs" --size "$size" "${irc_extra[@]}" \
        --server "$server_addr:$ircd_port" --server-pid "$ircd_pid" 2>"$tmp/irc.err") \
        || { cat "$tmp/irc.err" "$tmp/ngircd.log" >&2; exit 1; }
    stop_ircd
    udp=$("$chatbench" fanout --json --users "$users" --seconds "$secs" --size "$size" "${udp_extra[@]}" \
        --raw-seconds 0 "${fanout_args[@]}" 2>"$tmp/udp.err") || { cat "$tmp/udp.err" >&2; exit 1; }
}

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

echo "fanout-vs-ircd: $(date -u +%FT%TZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), path $path, $size-byte messages, window $window (ngircd $ircd_window), $secs s, $rounds rounds, equal-load runs at $load"
for users in ${users_list//,/ }; do
    : >"$tmp/pairs"
    : >"$tmp/cmp"
    : >"$tmp/load"
    for r in $(seq "$rounds"); do
        irc_extra=(--window "$ircd_window"); udp_extra=(--window "$window")
        run_pair
        read -r irate ip99 icpm ilost < <(jq -r '[.deliveries_per_sec, .latency_us.p99, .server_cpu_sec_per_million, .lost] | @tsv' <<<"$irc")
        read -r urate up99 ucpm ulost < <(jq -r '[.deliveries_per_sec, .latency_us.p99, (if .server_cpu_sec == null then null else .server_cpu_sec * 1e6 / .deliveries end), .lost] | @tsv' <<<"$udp")
        ratio=$(awk -v u="$urate" -v i="$irate" 'BEGIN {printf "%.2f", u / i}')
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$irate" "$ip99" "$icpm" "$urate" "$up99" "$ucpm" "$ratio" >>"$tmp/pairs"
        printf 'users %5d round %d: ngircd %9.0f/s p99 %6.1f ms cpu %.2f s/M lost %s | udpchat %9.0f/s p99 %6.1f ms cpu %.2f s/M lost %s | ratio %s\n' \
            "$users" "$r" "$irate" "$(awk -v v="$ip99" 'BEGIN{print v/1000}')" "$icpm" "$ilost" \
            "$urate" "$(awk -v v="$up99" 'BEGIN{print v/1000}')" "$ucpm" "$ulost" "$ratio"
        if awk -v f="$load" 'BEGIN {exit !(f > 0)}'; then
            mrate=$(awk -v i="$irate" -v f="$load" -v n="$users" 'BEGIN {printf "%.0f", i * f / (n - 1)}')
            irc_extra=(--rate "$mrate"); udp_extra=(--rate "$mrate")
            run_pair
            read -r lirate lip50 lip99 < <(jq -r '[.deliveries_per_sec, .latency_us.p50, .latency_us.p99] | @tsv' <<<"$irc")
            read -r lurate lup50 lup99 < <(jq -r '[.deliveries_per_sec, .latency_us.p50, .latency_us.p99] | @tsv' <<<"$udp")
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mrate" "$lirate" "$lip50" "$lip99" "$lurate" "$lup50" "$lup99" >>"$tmp/load"
            printf 'users %5d round %d at %s msgs/s each: ngircd %9.0f/s p50 %6.2f p99 %6.2f ms | udpchat %9.0f/s p50 %6.2f p99 %6.2f ms\n' \
                "$users" "$r" "$mrate" "$lirate" "$(awk -v v="$lip50" 'BEGIN{print v/1000}')" "$(awk -v v="$lip99" 'BEGIN{print v/1000}')" \
                "$lurate" "$(awk -v v="$lup50" 'BEGIN{print v/1000}')" "$(awk -v v="$lup99" 'BEGIN{print v/1000}')"
        fi
        if [ -n "$compare" ]; then
            cmp=$("$compare/chatbench" fanout --json --users "$users" --seconds "$secs" --size "$size" --window "$window" \
                --raw-seconds 0 "${fanout_args[@]}" 2>"$tmp/cmp.err") || { cat "$tmp/cmp.err" >&2; exit 1; }
            read -r crate cp99 ccpm < <(jq -r '[.deliveries_per_sec, .latency_us.p99, (if .server_cpu_sec == null then null else .server_cpu_sec * 1e6 / .deliveries end)] | @tsv' <<<"$cmp")
            printf '%s\t%s\t%s\n' "$(awk -v u="$urate" -v c="$crate" 'BEGIN {printf "%.2f", u / c}')" "$crate" "$cp99" >>"$tmp/cmp"
            printf 'users %5d round %d: compared build %9.0f/s p99 %6.1f ms cpu %.2f s/M | this build / compared %s\n' \
                "$users" "$r" "$crate" "$(awk -v v="$cp99" 'BEGIN{print v/1000}')" "$ccpm" "$(tail -1 "$tmp/cmp" | cut -f1)"
        fi
    done
    col() { cut -f"$1" "$tmp/pairs" | median; }
    range() { cut -f"$1" "$tmp/pairs" | sort -g | awk 'NR==1{lo=$1} {hi=$1} END {print lo "-" hi}'; }
    printf 'users %5d median of %d: ratio %s (%s); ngircd %.0f/s p99 %.1f ms cpu %.2f s/M; udpchat %.0f/s p99 %.1f ms cpu %.2f s/M\n' \
        "$users" "$rounds" "$(col 7)" "$(range 7)" "$(col 1)" "$(awk -v v="$(col 2)" 'BEGIN{print v/1000}')" "$(col 3)" \
        "$(col 4)" "$(awk -v v="$(col 5)" 'BEGIN{print v/1000}')" "$(col 6)"
    if [ -s "$tmp/load" ]; then
        lcol() { cut -f"$1" "$tmp/load" | median; }
        lrange() { cut -f"$1" "$tmp/load" | sort -g | awk 'NR==1{lo=$1} {hi=$1} END {printf "%.2f-%.2f", lo/1000, hi/1000}'; }
        printf 'users %5d median of %d at equal load (%s of ngircd'"'"'s rate, open loop): ngircd %.0f/s p50 %.2f p99 %.2f ms (%s); udpchat %.0f/s p50 %.2f p99 %.2f ms (%s)\n' \
            "$users" "$rounds" "$load" "$(lcol 2)" "$(awk -v v="$(lcol 3)" 'BEGIN{print v/1000}')" "$(awk -v v="$(lcol 4)" 'BEGIN{print v/1000}')" "$(lrange 4)" \
            "$(lcol 5)" "$(awk -v v="$(lcol 6)" 'BEGIN{print v/1000}')" "$(awk -v v="$(lcol 7)" 'BEGIN{print v/1000}')" "$(lrange 7)"
    fi
    if [ -n "$compare" ]; then
        printf 'users %5d median of %d: this build / compared build %s (%s); compared build %.0f/s p99 %.1f ms\n' "$users" "$rounds" \
            "$(cut -f1 "$tmp/cmp" | median)" "$(cut -f1 "$tmp/cmp" | sort -g | awk 'NR==1{lo=$1} {hi=$1} END {print lo "-" hi}')" \
            "$(cut -f2 "$tmp/cmp" | median)" "$(cut -f3 "$tmp/cmp" | median | awk '{print $1/1000}')"
    fi
done

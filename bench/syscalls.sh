#!/usr/bin/env bash
# Syscall budget: one loopback transfer per case (default 1 GiB, file in
# /dev/shm, receiver writing to /dev/null), each side under `strace -f -c`,
# printed as syscalls per GiB per side with the busiest calls. When
# `perf stat` can count the raw_syscalls:sys_enter tracepoint, each case is
# run once more under it: strace slows every call down, which changes how
# much data each read finds waiting, so perf's count is the undisturbed one.
#
#   bench/syscalls.sh [SIZE_MIB]        default 1024
#   ZC=path/to/zc bench/syscalls.sh     use this binary instead of building
#
# Cases: zc (SHA-256 verified), zc --no-verify, zc --raw, and bench/baseline.c
# (sendfile; splice or read/write receive) for reference. Linux only; needs
# strace (installed with apt-get when missing and run as root) and cc.
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-1024}
top=${TOP:-4}

if ! command -v strace >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get install -y -qq strace >/dev/null || { apt-get update -qq && apt-get install -y -qq strace >/dev/null; }
    else
        echo "syscalls.sh: strace is needed (apt-get install strace)" >&2
        exit 1
    fi
fi
if [ -z "${ZC:-}" ]; then
    cargo build --release --quiet
    ZC="${CARGO_TARGET_DIR:-target}/release/zc"
fi
zc=$(realpath "$ZC")

base=/dev/shm
[ -d "$base" ] || base=${TMPDIR:-/tmp}
dir=$(mktemp -d "$base/zc-syscalls.XXXXXX")
rpid=
# stop_receiver: ends the receiver (and strace's or perf's child) still running.
stop_receiver() {
    if [ -n "$rpid" ]; then
        kill $(pgrep -P "$rpid") "$rpid" 2>/dev/null || true
        wait "$rpid" 2>/dev/null || true
        rpid=
    fi
}
trap 'stop_receiver; rm -rf "$dir"' EXIT
cc -O2 -o "$dir/baseline" bench/baseline.c
src="$dir/src.bin"
head -c $((mib < 64 ? mib << 20 : 64 << 20)) /dev/urandom >"$dir/block"
: >"$src"
left=$mib
while [ "$left" -gt 0 ]; do
    cat "$dir/block" >>"$src"
    left=$((left - 64))
done
truncate -s $((mib << 20)) "$src"
cat "$src" >/dev/null
rm "$dir/block"

perf_ok=
if command -v perf >/dev/null && perf stat -x, -e raw_syscalls:sys_enter -o "$dir/p" true 2>/dev/null &&
    grep -q '^[0-9]' "$dir/p"; then
    perf_ok=1
fi

# wait_port FILE: the port of the first "listening on HOST:PORT" line in FILE.
wait_port() {
    local i
    for i in $(seq 1000); do
        if grep -q 'listening on' "$1" 2>/dev/null; then
            sed -n 's/.*listening on .*:\([0-9][0-9]*\).*/\1/p' "$1" | head -n1
            return
        fi
        sleep 0.01
    done
    echo "syscalls.sh: no receiver listening; it said:" >&2
    cat "$1" >&2
    return 1
}

# transfer WRAP CASE: one transfer of CASE with each side under WRAP
# ("strace" or "perf"); the reports land in $dir/CASE.{send,recv}.WRAP.
transfer() {
    local wrap=$1 case=$2 recv send
    case $case in
    zc) recv=("$zc" recv --progress none -l 127.0.0.1:0 -o /dev/null)
        send=("$zc" send --progress none "$src") ;;
    zc-noverify) recv=("$zc" recv --progress none --no-verify -l 127.0.0.1:0 -o /dev/null)
        send=("$zc" send --progress none --no-verify "$src") ;;
    zc-raw) recv=("$zc" recv --progress none --raw -l 127.0.0.1:0 -o /dev/null)
        send=("$zc" send --progress none --raw "$src") ;;
    baseline-splice | baseline-rw) recv=("$dir/baseline" recv /dev/null "${case#baseline-}")
        send=("$dir/baseline" send "$src") ;;
    esac
    local out="$dir/$case" pre_r pre_s
    if [ "$wrap" = strace ]; then
        pre_r=(strace -f -c -o "$out.recv.strace")
        pre_s=(strace -f -c -o "$out.send.strace")
    else
        pre_r=(perf stat -x, -e raw_syscalls:sys_enter -o "$out.recv.perf")
        pre_s=(perf stat -x, -e raw_syscalls:sys_enter -o "$out.send.perf")
    fi
    "${pre_r[@]}" "${recv[@]}" 2>"$out.recv.err" &
    rpid=$!
    local port
    port=$(wait_port "$out.recv.err") || return 1
    if ! "${pre_s[@]}" "${send[@]}" "127.0.0.1:$port" 2>"$out.send.err"; then
        echo "syscalls.sh: $case: the sender failed:" >&2
        cat "$out.send.err" >&2
        return 1
    fi
    if ! wait "$rpid"; then
        rpid=
        echo "syscalls.sh: $case: the receiver failed:" >&2
        cat "$out.recv.err" >&2
        return 1
    fi
    rpid=
}

# Calls per GiB from a strace -c report: "total top1 n1 top2 n2 ...".
per_gib_strace() {
    awk -v mib="$mib" -v top="$top" '
        $1 ~ /^[0-9.]+$/ && NF >= 5 {
            if ($NF == "total") total = $4
            else { calls[$NF] = $4 }
        }
        END {
            f = 1024 / mib
            printf "%d |", total * f + 0.5
            for (k = 0; k < top; k++) {
                best = ""; n = -1
                for (c in calls) if (calls[c] > n) { n = calls[c]; best = c }
                if (best == "") break
                printf " %s %d", best, n * f + 0.5
                delete calls[best]
            }
        }' "$1"
}

per_gib_perf() {
    awk -F, -v mib="$mib" '/raw_syscalls:sys_enter/ { printf "%d", $1 * 1024 / mib + 0.5 }' "$1"
}

cases=(zc zc-noverify zc-raw baseline-splice baseline-rw)
for c in "${cases[@]}"; do
    transfer strace "$c"
    [ -z "$perf_ok" ] || transfer perf "$c"
done

echo "syscalls per GiB: ${mib} MiB from $base (page cache) to /dev/null over loopback"
echo "strace -f -c counts (busiest calls per GiB)${perf_ok:+; perf = raw_syscalls:sys_enter count without strace}"
printf '%-16s %-6s %9s %9s  %s\n' case side strace perf "busiest (strace, per GiB)"
for c in "${cases[@]}"; do
    for side in send recv; do
        IFS='|' read -r total busiest <<<"$(per_gib_strace "$dir/$c.$side.strace")"
        p=-
        [ -z "$perf_ok" ] || p=$(per_gib_perf "$dir/$c.$side.perf")
        printf '%-16s %-6s %9s %9s %s\n' "$c" "$side" "$total" "$p" "$busiest"
    done
done

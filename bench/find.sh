#!/usr/bin/env bash
# Time to find a receiver on a LAN: two network namespaces on a bridge
# (198.18.0.0/15 and ULA addresses), `zc recv --announce bench` in one, and
# in the other, round after round, `zc send FILE @bench`, `zc send FILE`
# (the one receiver there is), the same to the receiver's address (what
# finding adds is the difference), and `zc send
# FILE --code C` to a fresh `zc recv --code` (found by its nameplate); each a
# whole process from start to exit, with a 1-byte file. Prints min, median
# and max in ms.
#
#   bench/find.sh [--rounds N]      (root; ZC=path skips the build)
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=21
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    -h | --help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "find.sh makes network namespaces: run it as root" >&2; exit 1; }
command -v ip >/dev/null || { echo "find.sh needs ip (Debian: iproute2)" >&2; exit 1; }

if [ -z "${ZC:-}" ]; then
  cargo build --release --quiet
  ZC=${CARGO_TARGET_DIR:-target}/release/zc
fi
ZC=$(realpath "$ZC")

tag=zcb$$
br=${tag}br
work=$(mktemp -d)
cleanup() {
  [ -n "${rx:-}" ] && kill "$rx" 2>/dev/null && wait "$rx" 2>/dev/null || true
  ip netns del "${tag}a" 2>/dev/null || true
  ip netns del "${tag}b" 2>/dev/null || true
  ip link del "$br" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

ip link add "$br" type bridge
ip link set "$br" up
i=0
for side in a b; do
  i=$((i + 1))
  ns=$tag$side
  ip netns add "$ns"
  ip link add "${tag}v$side" type veth peer name eth0 netns "$ns"
  ip link set "${tag}v$side" master "$br" up
  ip -n "$ns" addr add "198.18.0.$i/24" dev eth0
  ip -n "$ns" addr add "fd5a:7c00::$i/64" dev eth0 nodad
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
done
mkdir "$work/out"
printf x >"$work/one"

# ms since the epoch
now() { date +%s%3N; }

# rounds of one command in the sender's namespace; prints "min median max".
# Rounds are 1.2 s apart: an mDNS responder multicasts a record at most once
# a second (RFC 6762, 6.), so a look-up within a second of the last one
# waits for that (about 1.1 s here), which no user of one send would see.
time_rounds() {
  local times=() t0 t1
  for _ in $(seq "$rounds"); do
    sleep 1.2
    rm -f "$work/out/one"
    t0=$(now)
    ip netns exec "${tag}b" "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }
    t1=$(now)
    times+=($((t1 - t0)))
  done
  spread "${times[@]}"
}

# "min median max" of the numbers given
spread() {
  printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print v[1], v[int((NR+1)/2)], v[NR]}'
}

# one line of the table: the case, then "min median max"
row() {
  local what=$1 lo med hi
  read -r lo med hi
  printf '%-34s %8s %8s %8s\n' "$what" "$lo" "$med" "$hi"
}

# until the receiver started last says it is announced
wait_announced() {
  for _ in $(seq 50); do
    grep -q "announced" "$work/rx.log" 2>/dev/null && return
    sleep 0.1
  done
  cat "$work/rx.log" >&2
  exit 1
}

start_receiver() {
  ip netns exec "${tag}a" "$ZC" recv -k -o "$work/out" --force --announce bench "$@" \
    >/dev/null 2>"$work/rx.log" &
  rx=$!
  wait_announced
}

echo "zc $("$ZC" --version | cut -d' ' -f2), $rounds rounds, $(uname -r), $(nproc) CPUs"
printf '%-34s %8s %8s %8s\n' "case (whole process, 1-byte file)" "min ms" "median" "max ms"

start_receiver
time_rounds "$ZC" send "$work/one" @bench | row "zc send FILE @bench"
time_rounds "$ZC" send "$work/one" | row "zc send FILE (the one receiver)"
time_rounds "$ZC" send "$work/one" "198.18.0.1:9000" | row "zc send FILE 198.18.0.1:9000"
kill "$rx"; wait "$rx" 2>/dev/null || true; rx=

# a code is for one transfer: a fresh one-shot receiver each round, timed
# from the sender's start (the receiver has announced itself by then)
times=()
for _ in $(seq "$rounds"); do
  ip netns exec "${tag}a" "$ZC" recv -o "$work/out" --force --code --announce coded \
    >/dev/null 2>"$work/rx.log" &
  rx=$!
  wait_announced
  code=$(grep -o 'code [0-9]*-[a-z-]*' "$work/rx.log" | head -1 | cut -d' ' -f2)
  # the receiver multicasts its announcement twice, a second apart, and
  # after each answers again only a second later; a person reading the
  # code aloud takes longer than that
  sleep 3
  t0=$(now)
  ip netns exec "${tag}b" "$ZC" send "$work/one" --code "$code" >/dev/null 2>&1 ||
    { echo "failed: send --code $code" >&2; cat "$work/rx.log" >&2; exit 1; }
  t1=$(now)
  times+=($((t1 - t0)))
  wait "$rx" || true
  rx=
done
spread "${times[@]}" | row "zc send FILE --code C (no address)"

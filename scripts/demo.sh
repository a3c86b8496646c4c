#!/usr/bin/env bash
# Builds zc and runs one real transfer over loopback: 256 MiB of random bytes,
# sent with sendfile(2), checked with SHA-256 on both ends, compared with cmp.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
zc="${CARGO_TARGET_DIR:-target}/release/zc"
work=$(mktemp -d)
trap 'kill "${recv_pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
head -c 256M /dev/urandom > "$work/demo.bin"
mkdir "$work/out"
: > "$work/recv.log"
"$zc" recv -l 127.0.0.1:0 -o "$work/out" 2> "$work/recv.log" &
recv_pid=$!
until grep -q 'listening on' "$work/recv.log"; do
    if ! kill -0 "$recv_pid" 2>/dev/null; then
        cat "$work/recv.log" >&2
        echo "demo: the receiver did not start" >&2
        exit 1
    fi
    sleep 0.05
done
addr=$(sed -n 's/.*listening on //p' "$work/recv.log")
"$zc" send "$work/demo.bin" "$addr"
wait "$recv_pid"
cat "$work/recv.log"
cmp "$work/demo.bin" "$work/out/demo.bin" && echo "demo: the received file is identical"

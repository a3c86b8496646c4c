#!/bin/sh
# Builds zc in release mode and runs the loopback benchmark (bench/bench.py):
# zc against nc and a raw sendfile/splice baseline (bench/baseline.c).
#
#   bench/run.sh                      1 GiB to /dev/null, 3 rounds (~30 s)
#   bench/run.sh --to file            the same, receivers writing a file
#   bench/run.sh --scale              cost per GiB at 10 MiB, 100 MiB, 1 GiB, 4 GiB
#   bench/run.sh --yardstick [ARGS]   also run ../shared/bench/compare.py when present
#   bench/run.sh --hold-page-reporting  hold back a VM's free page reporting
#                                     for the run (root; bench/vm_memory.py);
#                                     without it no kernel setting is touched
#   bench/run.sh --help               every option of bench.py
#
# Other arguments go to bench.py. Linux only; needs cargo, cc and python3.
set -eu
cd "$(dirname "$0")/.."
yardstick=
if [ "${1:-}" = "--yardstick" ]; then
    yardstick=1
    shift
fi
cargo build --release --quiet
zc="${CARGO_TARGET_DIR:-target}/release/zc"
python3 bench/bench.py --zc "$zc" "$@"
if [ -n "$yardstick" ]; then
    if [ -f ../shared/bench/compare.py ]; then
        # compare.py knows nothing of the hold: vm_memory.py holds it around it
        hold=
        for arg in "$@"; do
            shift
            if [ "$arg" = --hold-page-reporting ]; then
                hold="python3 bench/vm_memory.py --"
            else
                set -- "$@" "$arg"
            fi
        done
        $hold python3 ../shared/bench/compare.py --zc "$zc" "$@"
    else
        echo "run.sh: no ../shared/bench/compare.py here; skipped the yardstick" >&2
    fi
fi

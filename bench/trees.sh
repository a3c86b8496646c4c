#!/bin/sh
# Builds zc in release mode and runs the tree benchmark (bench/trees.py): whole
# directory trees over loopback, zc against tar|nc and an rsync daemon, into
# tmpfs and onto the disk (durable).
#
#   bench/trees.sh                    small, medium, large, single; tmpfs and disk; 3 rounds
#   bench/trees.sh --quick            one round of the small tree (5,000 x 4 KiB)
#   bench/trees.sh --memory           peak RSS of each side on a 100,000-entry tree
#   bench/trees.sh --all              the tables, then --memory
#   bench/trees.sh --to tmpfs --trees small,medium --rounds 5 --json
#   bench/trees.sh --help             every option of trees.py
#
# Other arguments go to trees.py. Linux only; needs cargo and python3; installs
# netcat-openbsd, rsync and time with apt-get when run as root and missing.
set -eu
cd "$(dirname "$0")/.."
cargo build --release --quiet
zc="${CARGO_TARGET_DIR:-target}/release/zc"
exec python3 bench/trees.py --zc "$zc" "$@"

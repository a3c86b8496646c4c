#!/usr/bin/env bash
# The test command (README): installs what the tests need on Debian, builds
# zc.exe for the Windows test, then runs every test. .ci/run runs this after
# its lint checks, so CI and the README cannot drift apart.
#
# Needs a Rust toolchain from rustup (for the Windows target). Elsewhere than
# Debian it names the packages to install and goes on.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages that are missing: `plain` with their recommends, `cross`
# without (no fonts, GStreamer or 32-bit Wine: ~3x faster). One line each
# says what it is for.
plain=()
cross=()
why=()
add() { plain+=("$1"); why+=("$1: $2"); }
add_cross() { cross+=("$1"); why+=("$1: $2"); }

command -v nc >/dev/null || add netcat-openbsd "nc, which tests/interop.rs talks to"
command -v socat >/dev/null || add socat "which tests/interop.rs talks to"
command -v curl >/dev/null || add curl "which tests/http.rs downloads with (plain, HEAD, a range, -C -) and tests/http_upload.rs uploads with (-T, -F)"
command -v wget >/dev/null || add wget "which tests/http.rs resumes a download with (wget -c)"
command -v python3 >/dev/null || add python3 "which runs the browser driver and the hostile clients (tests/browser/, tests/http/)"
command -v chromium >/dev/null ||
  add_cross chromium "headless Chromium, which tests/http_browser.rs drives (tests/browser/cdp.py) through the index and upload pages"
command -v man >/dev/null || add man-db "man, which renders the man page in tests/generated.rs"
[ -x /usr/bin/time ] || add time "GNU /usr/bin/time, which measures peak memory in tests/core.rs"
command -v mkfs.ext4 >/dev/null || [ -x /usr/sbin/mkfs.ext4 ] || add e2fsprogs "mkfs.ext4, which makes the loop-mounted ext4 of tests/recv_paths.rs"
command -v tar >/dev/null || add tar "which tests/http.rs extracts the served tar stream with (and src/http/tar.rs's unit tests read headers back with)"
# The LAN tests build network namespaces and drop mDNS in one (tests/lan.rs).
{ command -v ip || [ -x /usr/sbin/ip ]; } >/dev/null || add iproute2 "ip, which builds the test LAN of namespaces in tests/lan.rs"
{ command -v nft || command -v iptables || [ -x /usr/sbin/nft ]; } >/dev/null ||
  add nftables "nft, which drops multicast in one namespace in tests/lan.rs"
# The Windows build, run: mingw links zc.exe, Wine runs it (tests/wine.rs).
# Debian 12: `wine` is the /usr/bin/wine launcher, `wine64` the loader.
command -v x86_64-w64-mingw32-gcc >/dev/null ||
  add_cross gcc-mingw-w64-x86-64 "mingw, which links zc.exe for tests/wine.rs"
if ! { command -v wine >/dev/null && [ -x /usr/lib/wine/wine64 ]; }; then
  add_cross wine "the launcher that runs zc.exe in tests/wine.rs"
  add_cross wine64 "Wine's 64-bit loader, for zc.exe"
fi

if [ ${#why[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    for line in "${why[@]}"; do echo "installing $line"; done
    $sudo apt-get update -qq
    if [ ${#plain[@]} -gt 0 ]; then
      $sudo apt-get install -y -qq "${plain[@]}" >/dev/null
    fi
    if [ ${#cross[@]} -gt 0 ]; then
      $sudo apt-get install -y -qq --no-install-recommends "${cross[@]}" >/dev/null
    fi
  else
    echo "no apt-get here: install these (Debian names), or the tests that need them fail or skip:"
    for line in "${why[@]}"; do echo "  $line"; done
  fi
fi

# nc must be the OpenBSD one (the tests use -N).
if command -v nc >/dev/null; then
  nc_help=$(nc -h 2>&1 || true)
  grep -q -- '-N' <<<"$nc_help" || { echo "nc is not netcat-openbsd (the tests use nc -N)" >&2; exit 1; }
fi

# zc.exe with mingw, and next to it the test-only ProcessPrng stub that
# Wine 8 lacks (.ci/wine/bcryptprimitives.c); tests/wine.rs runs them under
# Wine in `cargo test` below. Without the tools those tests skip, unless
# ZC_WINE_REQUIRED=1 (.ci/run sets it) makes a skip a failure.
win_target=x86_64-pc-windows-gnu
if command -v x86_64-w64-mingw32-gcc >/dev/null && command -v wine >/dev/null &&
  command -v rustup >/dev/null; then
  win_start=$SECONDS
  grep -qx "$win_target" <<<"$(rustup target list --installed)" || rustup target add "$win_target"
  cargo build --release --target "$win_target"
  win_dir=${CARGO_TARGET_DIR:-target}/$win_target/release
  if [ ! "$win_dir/bcryptprimitives.dll" -nt .ci/wine/bcryptprimitives.c ]; then
    x86_64-w64-mingw32-gcc -shared -O2 -s -o "$win_dir/bcryptprimitives.dll" \
      .ci/wine/bcryptprimitives.c -ladvapi32
  fi
  echo "zc.exe build: $((SECONDS - win_start)) s"
else
  echo "not building zc.exe (needs mingw, Wine and rustup): tests/wine.rs will skip"
fi

cargo test --release

# The heavy ones: a framed transfer of a sparse file past 4 GiB (writes 4 GiB).
cargo test --release --test scale -- --ignored

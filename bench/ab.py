#!/usr/bin/env python3
"""A/B of zc builds: the same 1 GiB transfer with each binary in turn, round
after round, so that the machine's drift hits every binary alike.

  bench/ab.py [--rounds 7] [--to file|devnull] [--flags=--no-verify] [--size MIB]
              [--dir /dev/shm] before=path/to/zc after=path/to/zc [...]

Prints, per binary, the median GiB/s and each side's CPU seconds per GiB
(user + system from wait4), and every round's wall time. Keep a build of
each commit to compare (cp target/release/zc /tmp/zc-before). With
--hold-page-reporting, holds back a VM's free page reporting for the run
(vm_memory.py) and says so above the table.
"""
import argparse
import os
import random
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vm_memory  # noqa: E402


def listening(port):
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            cols = line.split()
            if int(cols[1].rsplit(":", 1)[1], 16) == port and cols[3] == "0A":
                return True
    return False


def one(zc, src, out, flags):
    port = random.randint(20000, 60000)
    recv = subprocess.Popen(
        [zc, "recv", "-q", "--force", "--listen", f"127.0.0.1:{port}", "-o", out] + flags,
        stderr=subprocess.PIPE,
    )
    for _ in range(1000):
        if listening(port) or recv.poll() is not None:
            break
        time.sleep(0.003)
    began = time.perf_counter()
    send = subprocess.Popen(
        [zc, "send", "-q", src, f"127.0.0.1:{port}"] + flags, stderr=subprocess.PIPE
    )
    _, sent, sent_use = os.wait4(send.pid, 0)
    _, got, got_use = os.wait4(recv.pid, 0)
    # reaped here, not by Popen: say so, or a later Popen's clean-up may
    # waitpid() these pids once reused, and reap another round's receiver
    send.returncode, recv.returncode = sent, got
    wall = time.perf_counter() - began
    if sent or got:
        sys.exit(f"{zc} failed: {send.stderr.read()[-300:]!r} {recv.stderr.read()[-300:]!r}")
    return wall, sent_use.ru_utime + sent_use.ru_stime, got_use.ru_utime + got_use.ru_stime


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--to", choices=["file", "devnull"], default="file")
    ap.add_argument("--flags", default="", help="for both sides, e.g. --flags=--no-verify")
    ap.add_argument("--size", type=int, default=1024, help="MiB (a multiple of 64)")
    ap.add_argument("--dir", default="/dev/shm")
    ap.add_argument("--hold-page-reporting", action="store_true",
                    help="hold back a VM's free page reporting for the run (root; see bench/vm_memory.py)")
    ap.add_argument("builds", nargs="+", metavar="LABEL=PATH")
    a = ap.parse_args()
    builds = [b.split("=", 1) for b in a.builds]
    src = os.path.join(a.dir, "zc-ab-src.bin")
    if not os.path.exists(src) or os.path.getsize(src) != a.size << 20:
        block = os.urandom(64 << 20)
        with open(src, "wb") as f:
            for _ in range(a.size // 64):
                f.write(block)
    subprocess.run(["cat", src], stdout=subprocess.DEVNULL, check=True)
    out = os.devnull if a.to == "devnull" else os.path.join(a.dir, "zc-ab-out.bin")
    results = {label: [] for label, _ in builds}
    with vm_memory.reporting_held(a.hold_page_reporting) as note:
        for _ in range(a.rounds):
            for label, zc in builds:
                results[label].append(one(zc, src, out, a.flags.split()))
                if out != os.devnull and os.path.exists(out):
                    os.unlink(out)
    gib = a.size / 1024
    print(f"{a.size} MiB to {a.to} {a.flags}, {a.rounds} rounds, medians")
    if note:
        print(note)
    for label, runs in results.items():
        wall = statistics.median(r[0] for r in runs)
        snd = statistics.median(r[1] for r in runs) / gib
        rcv = statistics.median(r[2] for r in runs) / gib
        walls = " ".join(f"{r[0]:.3f}" for r in runs)
        print(f"{label:<12} {gib / wall:6.2f} GiB/s  snd {snd:5.2f}  rcv {rcv:5.2f} CPU-s/GiB  walls {walls}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""zc's loopback benchmark: zc against nc and a raw sendfile/splice baseline.

  bench/bench.py --zc target/release/zc [--size 1G] [--rounds 3] [--to devnull|file]
                 [--tools baseline,nc,hash,floor,floor-enc,zc,zc-enc,zc-noverify,zc-raw] [--dir DIR] [--json]
  bench/bench.py --zc target/release/zc --scale [10M,100M,1G,4G] [--rounds 2]

(bench/run.sh builds zc in release mode and calls this with --zc.)

Each round runs every tool's own sender/receiver pair once on the same file,
one after the other, so the machine's drift hits them all alike; the table
shows medians. Columns:

  GiB/s           file size / wall time (sender start to both ends exited,
                  plus an fsync of the output for non-zc tools with --to file,
                  since zc's exit 0 promises durable bytes and theirs does not)
  vs base/nc/hash that rate over the baseline's, nc's and hash-bound's
  CPU s/GiB       user+system seconds of each side per GiB moved
  peak KiB        peak resident memory of each side (ru_maxrss)

Rows: 'baseline' is bench/baseline.c (sendfile(2) sender; the receiver is the
faster, round by round, of splice(2) through a pipe ('baseline-splice') and
read/write with a 1 MiB buffer ('baseline-rw')): what the kernel does with no
framing and no checks. 'hash' is two concurrent `openssl dgst -sha256` of the
file: what SHA-256 on both ends costs on one machine, the bound for a verified
transfer when both ends share the cores; 'nc+verify' is nc then both hashes.
'zc' verifies SHA-256 end to end; 'zc-enc' is the same with a key, so the
session is encrypted (SPAKE2, AES-256-GCM records, no sendfile or splice);
'zc-noverify' is --no-verify; 'zc-raw' is --raw (no framing, no hash).
'floor' and 'floor-enc' are bench/floor.rs (built here with `cargo build
--release --example floor`): the work a verified, or an encrypted, transfer
cannot skip, with the same primitives as zc (sha2, ring) and nothing else,
so each side of 'zc' and 'zc-enc' can be read against its own floor.

--scale runs zc (verified and not) and the baseline at several sizes, to show
whether the cost per GiB stays flat; each file is made, measured and removed
in turn. Files are made from a repeated 64 MiB random block (the content does
not matter to TCP or SHA-256) in /dev/shm when it exists, so disk noise stays
out, and read once so they sit in the page cache.

Linux only. Needs python3 >= 3.8 and cc; nc (OpenBSD flavour) and openssl
are used when present.
"""
import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import vm_memory

HERE = os.path.dirname(os.path.abspath(__file__))
GIB = 1 << 30
BLOCK = 64 << 20


def parse_size(text):
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    t = text.strip().upper().rstrip("B").rstrip("I")
    unit = t[-1] if t and t[-1] in units else ""
    return int(float(t[: len(t) - len(unit)]) * units[unit])


def human(n):
    for unit, size in (("GiB", GIB), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            v = n / size
            return f"{v:.0f} {unit}" if v == int(v) else f"{v:.1f} {unit}"
    return f"{n} B"


def make_file(path, size):
    """`size` bytes made of one random block repeated, then read once."""
    block = os.urandom(min(BLOCK, max(size, 1)))
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, len(block))
            f.write(block[:n])
            left -= n
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port):
    """True once a socket listens on this TCP port (v4 or v6)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if int(cols[1].rsplit(":", 1)[1], 16) == port and cols[3] == "0A":
                        return True
        except (FileNotFoundError, StopIteration):
            pass
    return False


class Lines:
    """Reads a pipe on a thread; `wait_for(pattern)` returns the first match."""

    def __init__(self, pipe):
        self.lines, self.cond = [], threading.Condition()
        self.done = False
        self.thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self.thread.start()

    def _read(self, pipe):
        for raw in pipe:
            with self.cond:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.done = True
            self.cond.notify_all()

    def wait_for(self, find, timeout=10):
        """The first non-None find(line), or None when the pipe ends or time runs out."""
        deadline = time.monotonic() + timeout
        with self.cond:
            seen = 0
            while True:
                for line in self.lines[seen:]:
                    found = find(line)
                    if found is not None:
                        return found
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if self.done or left <= 0:
                    return None
                self.cond.wait(left)

    def text(self):
        self.thread.join(timeout=5)
        return "\n".join(self.lines)


def baseline_port(line):
    m = re.match(r"listening on 127\.0\.0\.1:(\d+)$", line)
    return int(m.group(1)) if m else None


def zc_port(line):
    """The port in zc's JSON `listening` event."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if isinstance(event, dict) and event.get("event") == "listening":
        return int(event["addr"].rsplit(":", 1)[1])
    return None


def build_floor():
    """bench/floor.rs, built in release mode; None where cargo cannot."""
    root = os.path.dirname(HERE)
    try:
        built = subprocess.run(["cargo", "build", "--release", "--example", "floor",
                                "--message-format=json-render-diagnostics"],
                               cwd=root, capture_output=True, text=True)
    except OSError as e:
        sys.stderr.write(f"floor not built: {e}\n")
        return None
    for line in built.stdout.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == "floor":
            if msg.get("executable"):
                return msg["executable"]
    sys.stderr.write(f"floor not built: {built.stderr[-300:]}\n")
    return None


class Bench:
    def __init__(self, args, work):
        self.args, self.work = args, work
        self.base = os.path.join(work, "baseline")
        subprocess.run(["cc", "-O2", "-Wall", "-o", self.base, os.path.join(HERE, "baseline.c")], check=True)
        self.zc = os.path.abspath(args.zc) if args.zc else None
        nc = shutil.which("nc")
        self.nc = nc if nc and b"OpenBSD" in subprocess.run([nc, "-h"], capture_output=True).stderr else None
        self.openssl = shutil.which("openssl")
        self.floor = None
        if any(t.startswith("floor") for t in args.tools.split(",")):
            self.floor = build_floor()

    def available(self, tool):
        if tool.startswith("zc"):
            return self.zc is not None
        if tool == "nc":
            return self.nc is not None
        if tool == "nc+verify":
            return self.nc is not None and self.openssl is not None
        if tool == "hash":
            return self.openssl is not None
        if tool.startswith("floor"):
            return self.floor is not None
        return True

    def pair(self, tool, src, out):
        """(receiver argv, how it says where it listens, sender argv builder, stdin, stdout)."""
        if tool.startswith("baseline-"):
            return ([self.base, "recv", out, tool.split("-")[1]], baseline_port,
                    lambda port: [self.base, "send", src, f"127.0.0.1:{port}"], None, None)
        if tool.startswith("floor"):
            mode = {"floor": "sha", "floor-enc": "aes"}[tool]
            return ([self.floor, "recv", out, mode], baseline_port,
                    lambda port: [self.floor, "send", src, f"127.0.0.1:{port}", mode], None, None)
        if tool == "nc":
            port = free_port()
            return (["nc", "-l", "127.0.0.1", str(port)], port,
                    lambda p: ["nc", "-N", "127.0.0.1", str(p)], src, out)
        if tool.startswith("zc"):
            extra = {"zc": [], "zc-noverify": ["--no-verify"], "zc-raw": ["--raw"],
                     # a bench's key on the command line is fine; ZC_KEY for real use
                     "zc-enc": ["--key", "bench key, not a secret"]}[tool]
            recv = [self.zc, "recv", "--json", "--progress", "none", "-l", "127.0.0.1:0"] + extra
            recv += ["-o", out] + (["--force"] if out != os.devnull else [])
            return (recv, zc_port,
                    lambda port: [self.zc, "send", "--json", "--progress", "none"] + extra + [src, f"127.0.0.1:{port}"],
                    None, None)
        raise ValueError(tool)

    def run_pair(self, tool, src, size, out):
        """One transfer: dict(wall, scpu, rcpu, srss, rrss) or None on failure."""
        recv_argv, where, send_argv, stdin_path, stdout_path = self.pair(tool, src, out)
        rrep, srep = os.path.join(self.work, "r.rep"), os.path.join(self.work, "s.rep")
        rout = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL
        # a ZC_KEY in the caller's environment would encrypt every zc row
        env = {k: v for k, v in os.environ.items() if k != "ZC_KEY"}
        r = subprocess.Popen([self.base, "time", rrep] + recv_argv, stdout=rout, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, env=env)
        rlines = Lines(r.stderr)
        try:
            if isinstance(where, int):
                port, deadline = where, time.monotonic() + 10
                while not listening(port):
                    if time.monotonic() > deadline or r.poll() is not None:
                        raise RuntimeError("the receiver did not listen")
                    time.sleep(0.002)
            else:
                port = rlines.wait_for(where)
                if port is None:
                    raise RuntimeError("the receiver did not listen")
            sin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
            # blocking waits (communicate() and wait() with no timeout), a
            # watchdog for a hang: with a timeout they poll, with sleeps
            # that grow to 50 ms, and would round the time up
            try:
                t0 = time.perf_counter()
                s = subprocess.Popen([self.base, "time", srep] + send_argv(port), stdin=sin,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
                watchdog = threading.Timer(600, lambda: (s.kill(), r.kill()))
                watchdog.start()
                try:
                    serr = s.communicate()[1]
                    r.wait()
                finally:
                    watchdog.cancel()
            finally:
                if stdin_path:
                    sin.close()
            if self.args.to == "file" and not tool.startswith("zc"):
                fd = os.open(out, os.O_RDONLY)
                os.fsync(fd)
                os.close(fd)
            wall = time.perf_counter() - t0
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            r.kill()
            r.wait()
            sys.stderr.write(f"  {tool}: {e}: {rlines.text()[-300:]}\n")
            return None
        finally:
            if stdout_path:
                rout.close()
        rtext = rlines.text()
        if s.returncode or r.returncode:
            sys.stderr.write(f"  {tool} failed: sender {s.returncode} {serr.decode(errors='replace')[-300:]}"
                             f" receiver {r.returncode} {rtext[-300:]}\n")
            return None
        if tool.startswith("zc"):
            done = [json.loads(x) for x in rtext.splitlines() if '"event":"done"' in x.replace(" ", "")]
            if not done or done[-1].get("bytes") != size:
                sys.stderr.write(f"  {tool}: the receiver did not report {size} bytes: {rtext[-300:]}\n")
                return None
        elif tool.startswith(("baseline", "floor")) and f"received {size} bytes" not in rtext:
            sys.stderr.write(f"  {tool}: short transfer: {rtext[-300:]}\n")
            return None
        if tool.startswith("floor"):
            digests = [re.search(r"sha256 ([0-9a-f]{64})", t) for t in (rtext, serr.decode())]
            if not all(digests) or digests[0].group(1) != digests[1].group(1):
                sys.stderr.write(f"  {tool}: the two sides' SHA-256 differ: {rtext[-200:]}\n")
                return None
        sw, su, ss, srss, _ = open(srep).read().split()
        rw, ru, rs, rrss, _ = open(rrep).read().split()
        return {"wall": wall, "scpu": float(su) + float(ss), "rcpu": float(ru) + float(rs),
                "srss": int(srss), "rrss": int(rrss)}

    def hash_bound(self, src):
        """Wall seconds for two concurrent SHA-256 passes over src."""
        t0 = time.perf_counter()
        procs = [subprocess.Popen([self.openssl, "dgst", "-sha256", src], stdout=subprocess.DEVNULL)
                 for _ in range(2)]
        if any(p.wait() for p in procs):
            return None
        wall = time.perf_counter() - t0
        return {"wall": wall, "scpu": 0.0, "rcpu": 0.0, "srss": 0, "rrss": 0}

    def measure(self, tools, src, size, rounds):
        """tool -> list of runs, `rounds` interleaved rounds."""
        runs, order = {}, []
        for t in tools:
            runs[t] = []
            if t == "baseline":
                order += ["baseline-splice", "baseline-rw"]
            elif t != "nc+verify":
                order.append(t)
        runs.update({t: [] for t in order})
        for rnd in range(rounds):
            # rotate the order so that no tool always runs right after the same one
            k = rnd % len(order)
            for tool in order[k:] + order[:k]:
                out = os.devnull if self.args.to == "devnull" else os.path.join(self.work, "out.bin")
                got = self.hash_bound(src) if tool == "hash" else self.run_pair(tool, src, size, out)
                if out != os.devnull:
                    for leftover in (out, out + ".zcpart"):
                        if os.path.exists(leftover):
                            os.unlink(leftover)
                if got:
                    runs[tool].append(got)
            if "baseline" in runs and len(runs["baseline-splice"]) > len(runs["baseline"]) \
                    and len(runs["baseline-rw"]) > len(runs["baseline"]):
                runs["baseline"].append(min(runs["baseline-splice"][-1], runs["baseline-rw"][-1],
                                            key=lambda r: r["wall"]))
            if "nc+verify" in runs and runs.get("nc") and runs.get("hash") \
                    and len(runs["nc"]) > len(runs["nc+verify"]):
                nc, h = runs["nc"][-1], runs["hash"][-1]
                runs["nc+verify"].append(dict(nc, wall=nc["wall"] + h["wall"]))
        return runs


def summarize(runs, size):
    rows = {}
    gib = size / GIB
    for tool, got in runs.items():
        if not got:
            rows[tool] = None
            continue
        wall = statistics.median(r["wall"] for r in got)
        rows[tool] = {
            "runs": len(got), "wall_s": wall, "gib_per_s": gib / wall, "wall_s_per_gib": wall / gib,
            "sender_cpu_s_per_gib": statistics.median(r["scpu"] for r in got) / gib,
            "receiver_cpu_s_per_gib": statistics.median(r["rcpu"] for r in got) / gib,
            "sender_peak_kib": max(r["srss"] for r in got), "receiver_peak_kib": max(r["rrss"] for r in got),
        }
    for row in rows.values():
        if row:
            for key, base in (("vs_baseline", "baseline"), ("vs_nc", "nc"), ("vs_hash", "hash")):
                row[key] = row["gib_per_s"] / rows[base]["gib_per_s"] if rows.get(base) else None
    return rows


def machine():
    model, flags = platform.machine(), ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model == platform.machine():
                    model = value.strip()
                if key.strip() in ("flags", "Features") and not flags:
                    flags = value
    except OSError:
        pass
    sha = "yes" if {"sha_ni", "sha2"} & set(flags.split()) else "no"
    return f"{model}, {os.cpu_count()} CPUs, Linux {platform.release()}, SHA-NI/SHA2 instructions: {sha}"


def fmt(v, spec=".2f"):
    return "-" if v is None else format(v, spec)


def print_table(title, rows, show_ratios=True):
    print(title)
    head = f"{'tool':<16} {'GiB/s':>6}"
    if show_ratios:
        head += f" {'vs base':>7} {'vs nc':>6} {'vs hash':>7}"
    head += f" {'snd CPU s/GiB':>13} {'rcv CPU s/GiB':>13} {'snd peak KiB':>12} {'rcv peak KiB':>12}"
    print(head)
    for tool, row in rows.items():
        if not row:
            print(f"{tool:<16} failed")
            continue
        line = f"{tool:<16} {row['gib_per_s']:>6.2f}"
        if show_ratios:
            line += f" {fmt(row['vs_baseline']):>7} {fmt(row['vs_nc']):>6} {fmt(row['vs_hash']):>7}"
        if tool in ("hash", "nc+verify"):
            line += f" {'-':>13} {'-':>13} {'-':>12} {'-':>12}"
        else:
            line += (f" {row['sender_cpu_s_per_gib']:>13.2f} {row['receiver_cpu_s_per_gib']:>13.2f}"
                     f" {row['sender_peak_kib']:>12} {row['receiver_peak_kib']:>12}")
        print(line)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--zc", help="the zc binary (without it, only the reference tools run)")
    ap.add_argument("--size", default="1G", help="file size for the comparison (default 1G)")
    ap.add_argument("--rounds", type=int, default=None, help="rounds (default 3; 2 with --scale)")
    ap.add_argument("--to", choices=["devnull", "file"], default="devnull",
                    help="receivers write to /dev/null (default) or to a file beside the source")
    ap.add_argument("--tools", default="baseline,nc,hash,nc+verify,zc,zc-enc,zc-noverify,zc-raw")
    ap.add_argument("--scale", nargs="?", const="10M,100M,1G,4G", default=None,
                    help="cost per GiB at these sizes (default 10M,100M,1G,4G)")
    ap.add_argument("--dir", default=None, help="where files live (default /dev/shm when present)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--hold-page-reporting", action="store_true",
                    help="hold back a VM's free page reporting for the run (root; see bench/vm_memory.py)")
    args = ap.parse_args()
    if not sys.platform.startswith("linux"):
        sys.exit("bench.py: Linux only (sendfile/splice baseline)")
    where = args.dir or ("/dev/shm" if os.path.isdir("/dev/shm") else None)
    work = tempfile.mkdtemp(prefix="zc-bench-", dir=where)
    held = contextlib.ExitStack()
    try:
        note = held.enter_context(vm_memory.reporting_held(args.hold_page_reporting))
        bench = Bench(args, work)
        src = os.path.join(work, "src.bin")
        info = {"machine": machine(), "dir": os.path.dirname(work), "to": args.to,
                "page_reporting": note}
        if args.scale:
            rounds = args.rounds or 2
            tools = [t for t in ("baseline", "zc", "zc-noverify") if bench.available(t)]
            results = []
            for size in (parse_size(s) for s in args.scale.split(",")):
                free = shutil.disk_usage(work).free
                need = size * (2 if args.to == "file" else 1) + BLOCK
                if need > free:
                    sys.stderr.write(f"skipping {human(size)}: {human(free)} free in {work}\n")
                    continue
                make_file(src, size)
                rows = summarize(bench.measure(tools, src, size, rounds), size)
                os.unlink(src)
                results.append((size, rows))
                if not args.json:
                    print(f"  measured {human(size)}", file=sys.stderr)
            if args.json:
                print(json.dumps({**info, "rounds": rounds, "scale": [
                    {"size": s, "tools": r} for s, r in results]}, indent=1))
                return
            print(f"cost per GiB by size, to {args.to}, {rounds} rounds, medians; {info['machine']}")
            if note:
                print(note)
            print(f"{'size':>8} {'tool':<16} {'GiB/s':>6} {'wall s/GiB':>10} {'snd CPU s/GiB':>13}"
                  f" {'rcv CPU s/GiB':>13} {'snd peak KiB':>12} {'rcv peak KiB':>12}")
            for size, rows in results:
                for tool, row in rows.items():
                    if tool in ("baseline-splice", "baseline-rw"):
                        continue
                    if not row:
                        print(f"{human(size):>8} {tool:<16} failed")
                        continue
                    print(f"{human(size):>8} {tool:<16} {row['gib_per_s']:>6.2f} {row['wall_s_per_gib']:>10.3f}"
                          f" {row['sender_cpu_s_per_gib']:>13.3f} {row['receiver_cpu_s_per_gib']:>13.3f}"
                          f" {row['sender_peak_kib']:>12} {row['receiver_peak_kib']:>12}")
            return
        rounds = args.rounds or 3
        tools = [t for t in args.tools.split(",") if bench.available(t)]
        size = parse_size(args.size)
        make_file(src, size)
        rows = summarize(bench.measure(tools, src, size, rounds), size)
        if args.json:
            print(json.dumps({**info, "size": size, "rounds": rounds, "tools": rows}, indent=1))
            return
        print_table(f"{human(size)} to {args.to}, {rounds} rounds, medians; files in {info['dir']}\n"
                    f"{info['machine']}" + (f"\n{note}" if note else ""), rows)
    finally:
        held.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

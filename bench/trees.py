#!/usr/bin/env python3
"""zc's tree benchmark: whole directory trees over loopback, zc against tar|nc and rsync.

  bench/trees.py --zc target/release/zc [--to tmpfs,disk] [--trees small,medium,large,single]
                 [--tools zc,tar|nc,rsync] [--rounds 3] [--quick] [--memory | --all]
                 [--json] [--save FILE] [--check] [--clean] [--dir /dev/shm] [--disk-dir /var/tmp]

(bench/trees.sh builds zc in release mode and calls this with --zc.)

Trees (made once, deterministic pseudo-random content, cached in DIR/zc-trees-cache;
--clean removes the cache at the end):

  small    5,000 files of 4 KiB in 50 subdirectories of 100      (20 MiB)
  medium   1,000 files of 1 MiB in 10 subdirectories of 100      (1 GiB)
  large    8 files of 64 MiB                                     (512 MiB)
  single   one 512 MiB file (the 8 large files end to end), sent as a file
  many     --memory only: 100,000 entries (1,000 directories of 99 one-byte files)

Targets (--to): 'tmpfs' writes into DIR (/dev/shm); 'disk' writes into a directory
under --disk-dir (default /var/tmp) on the real disk, and every tool's time includes
making the data durable: zc's exit 0 already means durable (it syncs the file
system), tar|nc and rsync are followed by syncfs(2) of the destination's file
system (what `sync -f DEST` does), inside the timing. Sources always live in DIR.

Tools, each timed end to end (the receiver is started and listening first, outside
the timing; the clock runs from starting the sender until every process of both
sides has exited, plus the sync on disk; the destination is emptied, and on disk
synced, before each transfer, outside the timing):

  zc       zc recv -o DEST -l 127.0.0.1:0 -q   /   zc send -q TREE 127.0.0.1:PORT
           (verification on, the default; the port is read from /proc, since -q
           prints nothing)
  tar|nc   nc -l 127.0.0.1 PORT | tar x -C DEST   /   tar c -C PARENT TREE | nc -N 127.0.0.1 PORT
           (netcat-openbsd)
  http.tar zc send --http --open -q --listen 127.0.0.1:PORT TREE   /
           curl -sSf http://127.0.0.1:PORT/NAME.tar | tar x -C DEST
           (the tree as zc serves it to a side without zc; the server is started and
           listening first, outside the timing, like the other receivers; it walks
           the tree inside the timing, when curl asks)
  rsync    rsync --daemon --no-detach --port PORT --config CONF --address 127.0.0.1
           with one module at DEST (use chroot = false, read only = false), then
           rsync -a TREE rsync://127.0.0.1:PORT/mod/ ; rsync's defaults apart from -a
           (so no --whole-file: the delta machinery runs, with nothing to match
           against in an empty destination). A fresh daemon per transfer; the clock
           stops when the client and the daemon's connection process have exited.

Each round runs every tool once per tree, in an order rotated from round to round;
the table shows medians over --rounds (default 3). Columns: seconds, MiB/s and
files/s (regular files), and each row's speed over tar|nc's and over rsync's (the
zc row is "zc vs tar|nc" and "zc vs rsync"). A line per target gives zc's speed on
the 8 x 64 MiB tree over its speed on the one 512 MiB file.

After each transfer (outside the timing) the destination is checked: the same
files with the same sizes, and a sample of them byte for byte (--check: all).

--memory runs zc once on the 100,000-entry tree with each side under GNU time
(/usr/bin/time -f %M) and prints each side's peak RSS. --all runs the tables and
then --memory. --quick is one round of the small tree.

Every child runs in its own process group and is killed on exit, Ctrl-C or
SIGTERM; the destinations and the rsync config are removed on exit.

Linux only; python3 >= 3.8. Missing nc/rsync/time are installed with apt-get when
running as root, otherwise the tool is skipped with a note.
"""
import argparse
import contextlib
import ctypes
import datetime
import filecmp
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import vm_memory

HERE = os.path.dirname(os.path.abspath(__file__))
MIB = 1 << 20
KIB = 1 << 10
CACHE_VERSION = "zc-trees v1"
TOOLS = ("zc", "tar|nc", "rsync", "http.tar")
TREES = ("small", "medium", "large", "single")
TIMEOUT = 900  # seconds any one transfer may take before it counts as hung


# ---------------------------------------------------------------- trees

class Tree:
    """A source: `name` inside `parent` (a directory, or one file for 'single')."""

    def __init__(self, key, label, dirs, per_dir, size, seed, flat=False, single=False):
        self.key, self.label = key, label
        self.dirs, self.per_dir, self.size, self.seed = dirs, per_dir, size, seed
        self.flat, self.single = flat, single
        self.parent = self.name = None

    @property
    def files(self):
        return self.dirs * self.per_dir

    @property
    def entries(self):
        """Files plus directories (plus the top directory)."""
        if self.single:
            return 1
        return self.files + (0 if self.flat else self.dirs) + 1

    @property
    def bytes(self):
        return self.files * self.size

    @property
    def path(self):
        return os.path.join(self.parent, self.name)


def tree_specs():
    return {
        "small": Tree("small", "5,000 x 4 KiB", 50, 100, 4 * KIB, 1),
        "medium": Tree("medium", "1,000 x 1 MiB", 10, 100, MIB, 2),
        "large": Tree("large", "8 x 64 MiB", 1, 8, 64 * MIB, 3, flat=True),
        "single": Tree("single", "1 x 512 MiB", 1, 1, 512 * MIB, 3, single=True),
        "many": Tree("many", "100,000 entries", 1000, 99, 1, 4),
    }


def spec_string(t):
    return f"{CACHE_VERSION} {t.key} {t.dirs} {t.per_dir} {t.size} {t.seed} {t.flat} {t.single}"


def write_random(path, size, rng):
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 4 * MIB)
            f.write(rng.randbytes(n))
            left -= n


def make_tree(t, cache):
    """Creates the tree under `cache` unless a complete copy is there already."""
    t.parent = os.path.join(cache, t.key)
    t.name = "single.bin" if t.single else t.key
    stamp = os.path.join(cache, t.key + ".ok")
    try:
        with open(stamp) as f:
            if f.read() == spec_string(t):
                return False
    except OSError:
        pass
    shutil.rmtree(t.parent, ignore_errors=True)
    os.makedirs(t.parent)
    started = time.monotonic()
    sys.stderr.write(f"making the {t.key} tree ({t.label}) in {t.parent} ...")
    sys.stderr.flush()
    rng = random.Random(t.seed)
    if t.single:
        write_random(t.path, t.size, rng)
    elif t.key == "many":
        os.mkdir(t.path)
        for d in range(t.dirs):
            sub = os.path.join(t.path, f"d{d:04d}")
            os.mkdir(sub)
            for i in range(t.per_dir):
                with open(os.path.join(sub, f"f{i:03d}"), "wb") as f:
                    f.write(bytes([(d * 131 + i) & 0xFF]))
    else:
        os.mkdir(t.path)
        for d in range(t.dirs):
            sub = t.path if t.flat else os.path.join(t.path, f"d{d:02d}")
            if not t.flat:
                os.mkdir(sub)
            for i in range(t.per_dir):
                write_random(os.path.join(sub, f"f{i:03d}.bin"), t.size, rng)
    with open(stamp, "w") as f:
        f.write(spec_string(t))
    sys.stderr.write(f" {time.monotonic() - started:.1f} s\n")
    return True


def inventory(root):
    """{relative path: size} of every regular file under root (or root itself)."""
    if os.path.isfile(root):
        return {"": os.path.getsize(root)}
    found = {}
    stack = [root]
    while stack:
        d = stack.pop()
        with os.scandir(d) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
                elif e.is_file(follow_symlinks=False):
                    found[os.path.relpath(e.path, root)] = e.stat(follow_symlinks=False).st_size
    return found


def check_copy(t, dest, full):
    """None when DEST/NAME matches the source, else what is wrong."""
    got_root = os.path.join(dest, t.name)
    if not os.path.exists(got_root):
        present = sorted(os.listdir(dest))[:5]
        return f"{got_root} is missing (DEST holds {present})"
    want, got = inventory(t.path), inventory(got_root)
    if want != got:
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        sized = sorted(k for k in set(want) & set(got) if want[k] != got[k])
        return (f"{len(missing)} files missing {missing[:3]}, {len(extra)} extra {extra[:3]}, "
                f"{len(sized)} of another size {sized[:3]}")
    names = sorted(want)
    sample = names if full else names[:: max(1, len(names) // 7)][:8] + names[-1:]
    for rel in sample:
        a = os.path.join(t.path, rel) if rel else t.path
        b = os.path.join(got_root, rel) if rel else got_root
        if not filecmp.cmp(a, b, shallow=False):
            return f"{rel or t.name} differs from the source"
    return None


# ---------------------------------------------------------------- processes

class Children:
    """Every process group this run started, so that none outlives it."""

    def __init__(self):
        self.procs = []

    def spawn(self, argv, **kw):
        p = subprocess.Popen(argv, start_new_session=True, **kw)
        self.procs.append(p)
        return p

    def kill(self, p):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        # a group can outlive its leader (rsync's connection process)
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def wait_all(self, procs, timeout=TIMEOUT):
        """Waits for each of procs in a blocking waitpid(), so that a time
        taken after it is when the last one ended. Popen.wait(timeout) and
        communicate(timeout) poll instead, with sleeps that grow to 50 ms:
        they would add up to 50 ms to a run, more or less by chance. A
        watchdog kills them all at the timeout; then TimeoutExpired."""
        fired = threading.Event()

        def expire():
            fired.set()
            for p in procs:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(p.pid, signal.SIGKILL)

        watchdog = threading.Timer(timeout, expire)
        watchdog.start()
        try:
            for p in procs:
                p.wait()
        finally:
            watchdog.cancel()
        if fired.is_set():
            raise subprocess.TimeoutExpired(procs[0].args, timeout)

    def forget(self, *procs):
        for p in procs:
            self.kill(p)
            if p in self.procs:
                self.procs.remove(p)

    def kill_all(self):
        for p in list(self.procs):
            self.kill(p)
        self.procs.clear()


def descendants(pid):
    """pid and every process below it, as far as /proc shows."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def socket_inodes(pids):
    inodes = set()
    for p in pids:
        try:
            for fd in os.listdir(f"/proc/{p}/fd"):
                try:
                    link = os.readlink(f"/proc/{p}/fd/{fd}")
                except OSError:
                    continue
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        except OSError:
            pass
    return inodes


def listening_ports():
    """{inode: port} of every listening TCP socket."""
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if cols[3] == "0A":
                        found[cols[9]] = int(cols[1].rsplit(":", 1)[1], 16)
        except (OSError, StopIteration):
            pass
    return found


def wait_listening(proc, port=None, timeout=15):
    """The port on which proc (or a process under it) listens; None if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return None
        mine = socket_inodes(descendants(proc.pid))
        for inode, p in listening_ports().items():
            if inode in mine and (port is None or p == port):
                return p
        time.sleep(0.002)
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def syncfs(path):
    """Makes the file system holding `path` durable (`sync -f path`)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.syncfs(fd) != 0:
            raise OSError(ctypes.get_errno(), "syncfs")
    except AttributeError:
        subprocess.run(["sync", "-f", path], check=True)
    finally:
        os.close(fd)


def empty_dir(path, durable):
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    if durable:
        syncfs(path)


def tail(data, n=400):
    if data is None:
        return ""
    text = data.decode(errors="replace") if isinstance(data, bytes) else data
    return text.strip()[-n:]


# ---------------------------------------------------------------- the bench

class Bench:
    def __init__(self, args, work):
        self.args, self.work = args, work
        self.kids = Children()
        self.zc = os.path.abspath(args.zc) if args.zc else None
        self.nc = shutil.which("nc")
        self.rsync = shutil.which("rsync")
        self.gnu_time = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
        self.zc_trees = None
        self.notes = []

    # -- setup

    def ensure_tools(self, want):
        """Installs what is missing (as root, with apt-get) or notes what to install."""
        need = []
        if "tar|nc" in want and not self.openbsd_nc():
            need.append("netcat-openbsd")
        if "rsync" in want and not self.rsync:
            need.append("rsync")
        if want.get("memory") and not self.gnu_time:
            need.append("time")
        if not need:
            return
        if os.geteuid() == 0 and shutil.which("apt-get"):
            sys.stderr.write(f"installing {' '.join(need)} with apt-get ...\n")
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            ok = subprocess.run(["apt-get", "install", "-y", "-qq"] + need, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
            if not ok:
                subprocess.run(["apt-get", "update", "-qq"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                subprocess.run(["apt-get", "install", "-y", "-qq"] + need, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.nc = shutil.which("nc")
            self.rsync = shutil.which("rsync")
            self.gnu_time = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
        still = [p for p, ok in (("netcat-openbsd", self.openbsd_nc() or "tar|nc" not in want),
                                 ("rsync", self.rsync or "rsync" not in want),
                                 ("time", self.gnu_time or not want.get("memory"))) if not ok]
        if still:
            sys.stderr.write(f"missing: install {' '.join(still)} (apt-get install {' '.join(still)}); "
                             "skipping what needs them\n")

    def openbsd_nc(self):
        if not self.nc:
            return False
        got = subprocess.run([self.nc, "-h"], capture_output=True)
        return b"OpenBSD" in got.stderr + got.stdout

    def available(self, tool):
        if tool == "zc":
            return self.zc is not None
        if tool == "tar|nc":
            return self.openbsd_nc() and shutil.which("tar") is not None
        if tool == "rsync":
            return self.rsync is not None
        if tool == "http.tar":
            return self.zc is not None and shutil.which("curl") is not None
        return False

    def probe_zc_trees(self):
        """Whether this zc sends directories (before trees, `zc send DIR` exits 2)."""
        if self.zc_trees is None:
            d = tempfile.mkdtemp(prefix="probe-", dir=self.work)
            got = subprocess.run([self.zc, "send", "-q", d, "127.0.0.1:1"], capture_output=True,
                                 stdin=subprocess.DEVNULL, timeout=30)
            self.zc_trees = not (got.returncode == 2 and b"is a directory" in got.stderr)
            os.rmdir(d)
            if not self.zc_trees:
                said = tail(got.stderr, 300).replace(d, "DIR").splitlines()[0]
                self.notes.append(f"{self.zc} does not send directories yet (`zc send DIR` exits 2: "
                                  f"{said}); zc runs only on 'single'")
        return self.zc_trees

    # -- one transfer per tool

    def run_zc(self, t, dest):
        rep = os.path.join(self.work, "rss.recv"), os.path.join(self.work, "rss.send")
        timed = (lambda which: [self.gnu_time, "-f", "%M", "-o", which]) if self.gnu_time else (lambda _: [])
        recv_argv = timed(rep[0]) + [self.zc, "recv", "-o", dest, "-l", "127.0.0.1:0", "-q"]
        r = self.kids.spawn(recv_argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
        s = None
        try:
            port = wait_listening(r)
            if port is None:
                self.kids.kill(r)
                return {"error": f"the receiver did not listen: {tail(r.stderr.read())}"}
            send_argv = timed(rep[1]) + [self.zc, "send", "-q", t.path, f"127.0.0.1:{port}"]
            t0 = time.perf_counter()
            s = self.kids.spawn(send_argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
            self.kids.wait_all([s, r])
            wall = time.perf_counter() - t0
            serr, rerr = s.stderr.read(), r.stderr.read()
        except subprocess.TimeoutExpired:
            return {"error": f"hung: no exit within {TIMEOUT} s (sender {s and s.poll()}, "
                             f"receiver {r.poll()})"}
        finally:
            self.kids.forget(*(p for p in (r, s) if p))
        if s.returncode or r.returncode:
            return {"error": f"sender exit {s.returncode}: {tail(serr)} | receiver exit "
                             f"{r.returncode}: {tail(rerr)}"}
        got = {"wall": wall}
        if self.gnu_time:
            for key, path in (("recv_peak_kib", rep[0]), ("send_peak_kib", rep[1])):
                try:
                    with open(path) as f:
                        got[key] = int(f.read().split()[-1])
                except (OSError, ValueError, IndexError):
                    pass
        noise = (tail(serr) + " " + tail(rerr)).strip()
        if noise:
            got["stderr"] = noise
        return got

    def run_tar_nc(self, t, dest, durable):
        port = free_port()
        rnc = self.kids.spawn([self.nc, "-l", "127.0.0.1", str(port)], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        rtar = self.kids.spawn(["tar", "x", "-C", dest], stdin=rnc.stdout, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
        rnc.stdout.close()
        procs = [rnc, rtar]
        try:
            if wait_listening(rnc, port) is None:
                return {"error": f"nc -l did not listen on {port}"}
            t0 = time.perf_counter()
            star = self.kids.spawn(["tar", "c", "-C", t.parent, t.name], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            snc = self.kids.spawn([self.nc, "-N", "127.0.0.1", str(port)], stdin=star.stdout,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            star.stdout.close()
            procs += [star, snc]
            self.kids.wait_all(procs)
            if durable:
                syncfs(dest)
            wall = time.perf_counter() - t0
        except subprocess.TimeoutExpired:
            return {"error": f"hung: no exit within {TIMEOUT} s"}
        finally:
            self.kids.forget(*procs)
        bad = [(n, p) for n, p in zip(("nc -l", "tar x", "tar c", "nc -N"), procs) if p.returncode]
        if bad:
            return {"error": "; ".join(f"{n} exit {p.returncode}: {tail(p.stderr.read())}" for n, p in bad)}
        return {"wall": wall}

    def run_http_tar(self, t, dest, durable):
        port = free_port()
        z = self.kids.spawn([self.zc, "send", "--http", "--open", "-q", "--listen",
                             f"127.0.0.1:{port}", t.path], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        procs = [z]
        try:
            if wait_listening(z, port) is None:
                return {"error": f"zc send --http did not listen on {port}"}
            t0 = time.perf_counter()
            # a file is served as itself, a directory as NAME.tar
            url = f"http://127.0.0.1:{port}/{t.name}" + ("" if t.single else ".tar")
            curl = self.kids.spawn(["curl", "-sSf", url], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            unpack = ["dd", f"of={os.path.join(dest, t.name)}", "bs=1M", "status=none"] \
                if t.single else ["tar", "x", "-C", dest]
            tar = self.kids.spawn(unpack, stdin=curl.stdout,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            curl.stdout.close()
            procs += [curl, tar]
            self.kids.wait_all([curl, tar])
            if durable:
                syncfs(dest)
            wall = time.perf_counter() - t0
        except subprocess.TimeoutExpired:
            return {"error": f"hung: no exit within {TIMEOUT} s"}
        finally:
            self.kids.kill(z)
            self.kids.forget(*procs)
        bad = [(n, p) for n, p in zip(("curl", "tar x"), procs[1:]) if p.returncode]
        if bad:
            return {"error": "; ".join(f"{n} exit {p.returncode}: {tail(p.stderr.read())}" for n, p in bad)}
        return {"wall": wall}

    def run_rsync(self, t, dest, durable):
        port = free_port()
        conf = os.path.join(self.work, "rsyncd.conf")
        log = os.path.join(self.work, "rsyncd.log")
        with open(conf, "w") as f:
            f.write(f"use chroot = false\nlog file = {log}\npid file = {self.work}/rsyncd.pid\n"
                    f"[mod]\npath = {dest}\nread only = false\nuid = {os.getuid()}\ngid = {os.getgid()}\n")
        d = self.kids.spawn([self.rsync, "--daemon", "--no-detach", "--port", str(port), "--config", conf,
                             "--address", "127.0.0.1"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        c = None
        try:
            if wait_listening(d, port) is None:
                return {"error": f"the rsync daemon did not listen: {tail(d.stderr.read() if d.poll() is not None else '')}"
                                 f" {tail(open(log).read() if os.path.exists(log) else '')}"}
            t0 = time.perf_counter()
            c = self.kids.spawn([self.rsync, "-a", t.path, f"rsync://127.0.0.1:{port}/mod/"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            self.kids.wait_all([c])
            cerr = c.stderr.read()
            # the daemon forks one process per connection: wait for it to end too
            deadline = time.monotonic() + 60
            while len(descendants(d.pid)) > 1 and time.monotonic() < deadline:
                time.sleep(0.001)
            if durable:
                syncfs(dest)
            wall = time.perf_counter() - t0
        except subprocess.TimeoutExpired:
            return {"error": f"hung: no exit within {TIMEOUT} s"}
        finally:
            self.kids.forget(*(p for p in (d, c) if p))
            for leftover in (conf, log, f"{self.work}/rsyncd.pid"):
                if os.path.exists(leftover):
                    os.unlink(leftover)
        if c.returncode:
            return {"error": f"rsync exit {c.returncode}: {tail(cerr)}"}
        return {"wall": wall}

    def run_one(self, tool, t, dest, durable):
        empty_dir(dest, durable)
        if tool == "zc":
            got = self.run_zc(t, dest)
        elif tool == "tar|nc":
            got = self.run_tar_nc(t, dest, durable)
        elif tool == "http.tar":
            got = self.run_http_tar(t, dest, durable)
        else:
            got = self.run_rsync(t, dest, durable)
        if "error" not in got:
            wrong = check_copy(t, dest, self.args.check)
            if wrong:
                got = {"error": f"wrong copy: {wrong}", "wall": got["wall"]}
        empty_dir(dest, False)
        return got

    # -- rounds

    def measure(self, target, trees, tools, rounds):
        """{tree: {tool: [runs]}}, tools rotated round by round."""
        dest = os.path.join(self.work if target == "tmpfs" else self.disk_work, "dest")
        durable = target == "disk"
        runs = {t.key: {tool: [] for tool in tools} for t in trees}
        errors = {t.key: {tool: [] for tool in tools} for t in trees}
        for t in trees:
            order = [x for x in tools if x != "zc" or t.single or self.probe_zc_trees()]
            for rnd in range(rounds):
                k = rnd % len(order) if order else 0
                for tool in order[k:] + order[:k]:
                    got = self.run_one(tool, t, dest, durable)
                    if "error" in got:
                        errors[t.key][tool].append(got["error"])
                        sys.stderr.write(f"  {target} {t.key} {tool} round {rnd + 1}: {got['error']}\n")
                    else:
                        runs[t.key][tool].append(got)
                        if got.get("stderr"):
                            sys.stderr.write(f"  {target} {t.key} {tool} said: {got['stderr']}\n")
                if not self.args.json:
                    sys.stderr.write(f"  {target} {t.key} round {rnd + 1}/{rounds}: " + ", ".join(
                        f"{tool} {runs[t.key][tool][-1]['wall']:.2f} s"
                        if len(runs[t.key][tool]) and len(runs[t.key][tool]) + len(errors[t.key][tool]) == rnd + 1
                        else f"{tool} failed" for tool in order) + "\n")
        shutil.rmtree(dest, ignore_errors=True)
        return runs, errors

    def memory(self, target):
        """zc once on the 100,000-entry tree, each side's peak RSS."""
        t = self.trees["many"]
        dest = os.path.join(self.work if target == "tmpfs" else self.disk_work, "dest")
        if not self.gnu_time:
            return {"error": "no /usr/bin/time (apt-get install time)", "entries": t.entries, "target": target}
        if not self.probe_zc_trees():
            return {"error": "this zc does not send directories yet", "entries": t.entries, "target": target}
        empty_dir(dest, target == "disk")
        got = self.run_zc(t, dest)
        if "error" not in got:
            wrong = check_copy(t, dest, False)
            if wrong:
                got["error"] = f"wrong copy: {wrong}"
        shutil.rmtree(dest, ignore_errors=True)
        got["entries"] = t.entries
        got["target"] = target
        return got


# ---------------------------------------------------------------- output

def summarize(t, runs, errors):
    rows = {}
    for tool, got in runs.items():
        if not got:
            rows[tool] = {"runs": 0, "errors": errors.get(tool, [])} if errors.get(tool) else None
            continue
        wall = statistics.median(r["wall"] for r in got)
        row = {"runs": len(got), "seconds": wall, "all_seconds": [r["wall"] for r in got],
               "mib_per_s": t.bytes / MIB / wall, "files_per_s": t.files / wall}
        if errors.get(tool):
            row["errors"] = errors[tool]
        for key in ("send_peak_kib", "recv_peak_kib"):
            vals = [r[key] for r in got if key in r]
            if vals:
                row[key] = max(vals)
        rows[tool] = row
    for row in rows.values():
        if row and row.get("runs"):
            for key, ref in (("vs_tar_nc", "tar|nc"), ("vs_rsync", "rsync")):
                base = rows.get(ref)
                row[key] = row["mib_per_s"] / base["mib_per_s"] if base and base.get("runs") else None
    return rows


def fmt(v, spec=".2f"):
    return "-" if v is None else format(v, spec)


def print_table(target, where, rounds, trees, results):
    durable = " (durable: zc's own sync, syncfs for the others)" if target == "disk" else ""
    print(f"\n{target}: into {where}{durable}; {rounds} round{'s' if rounds != 1 else ''}, medians")
    print(f"{'tree':<8} {'tool':<8} {'seconds':>8} {'MiB/s':>8} {'files/s':>9} {'vs tar|nc':>9} {'vs rsync':>9}"
          f"  {'zc peak MiB snd/rcv':>19}")
    for t in trees:
        for tool, row in results[t.key].items():
            if row is None:
                continue
            if not row.get("runs"):
                print(f"{t.key:<8} {tool:<8} failed: {row['errors'][-1][:150]}")
                continue
            peak = ""
            if "send_peak_kib" in row:
                peak = f"{row['send_peak_kib'] / 1024:.1f} / {row.get('recv_peak_kib', 0) / 1024:.1f}"
            more = f" ({len(row['errors'])} failed)" if row.get("errors") else ""
            print(f"{t.key:<8} {tool:<8} {row['seconds']:>8.3f} {row['mib_per_s']:>8.1f} {row['files_per_s']:>9.0f}"
                  f" {fmt(row.get('vs_tar_nc')):>9} {fmt(row.get('vs_rsync')):>9}  {peak:>19}{more}")


def large_vs_single(results):
    try:
        large = results["large"]["zc"]["mib_per_s"]
        single = results["single"]["zc"]["mib_per_s"]
    except (KeyError, TypeError):
        return None
    return {"large_mib_per_s": large, "single_mib_per_s": single, "ratio": large / single}


def zc_ratio(results, tree, ref, tool="zc"):
    row = (results.get(tree) or {}).get(tool)
    return row.get(f"vs_{ref}") if row and row.get("runs") else None


def verdicts(by_target, memory):
    """The project's targets, each with the measured value and whether it holds."""
    out = []

    def add(what, value, goal):
        out.append({"target": what, "value": value, "goal": goal,
                    "met": None if value is None else value >= goal})

    if "tmpfs" in by_target:
        add("small into tmpfs: zc / tar|nc", zc_ratio(by_target["tmpfs"], "small", "tar_nc"), 1.0)
        add("small into tmpfs: http.tar / tar|nc", zc_ratio(by_target["tmpfs"], "small", "tar_nc", "http.tar"), 1.0)
    if "disk" in by_target:
        add("small onto disk, durable: zc / (tar|nc + sync)", zc_ratio(by_target["disk"], "small", "tar_nc"), 1.0)
        add("small onto disk, durable: zc / (rsync daemon + sync)", zc_ratio(by_target["disk"], "small", "rsync"), 3.0)
    for target, results in by_target.items():
        lvs = large_vs_single(results)
        add(f"{target}: zc 8 x 64 MiB tree / one 512 MiB file", lvs and lvs["ratio"], 0.9)
    for m in memory or []:
        for side in ("send", "recv"):
            kib = m.get(f"{side}_peak_kib")
            out.append({"target": f"peak RSS, {m['entries']:,}-entry tree, {side} ({m['target']}), MiB",
                        "value": None if kib is None else kib / 1024, "goal": 32,
                        "met": None if kib is None else kib / 1024 <= 32})
    return out


def machine():
    model = platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                    break
    except OSError:
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return {"nproc": os.cpu_count(), "loadavg": load, "kernel": platform.release(), "cpu": model,
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}


def zc_version(zc):
    if not zc:
        return None
    desc = subprocess.run(["git", "-C", HERE, "describe", "--always", "--dirty"], capture_output=True, text=True)
    return {"binary": zc, "commit": desc.stdout.strip() or None}


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--zc", help="the zc binary (without it, only the reference tools run)")
    ap.add_argument("--to", default="tmpfs,disk", help="targets: tmpfs, disk or both (default tmpfs,disk)")
    ap.add_argument("--trees", default=",".join(TREES), help=f"default {','.join(TREES)}")
    ap.add_argument("--tools", default=",".join(TOOLS), help=f"default {','.join(TOOLS)}")
    ap.add_argument("--rounds", type=int, default=None, help="rounds (default 3; 1 with --quick)")
    ap.add_argument("--quick", action="store_true", help="one round of the small tree")
    ap.add_argument("--memory", action="store_true", help="only the peak-memory run (100,000 entries)")
    ap.add_argument("--all", action="store_true", help="the tables, then the peak-memory run")
    ap.add_argument("--check", action="store_true", help="compare every received file byte for byte")
    ap.add_argument("--dir", default=None, help="sources, cache and the tmpfs target (default /dev/shm)")
    ap.add_argument("--disk-dir", default="/var/tmp", help="where the disk target goes (default /var/tmp)")
    ap.add_argument("--clean", action="store_true", help="also remove the cached trees at the end")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--hold-page-reporting", action="store_true",
                    help="hold back a VM's free page reporting for the run (root; see bench/vm_memory.py)")
    ap.add_argument("--save", metavar="FILE", help="also write the JSON results to FILE")
    args = ap.parse_args()
    if not sys.platform.startswith("linux"):
        sys.exit("trees.py: Linux only")
    base = args.dir or ("/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir())
    targets = [x for x in args.to.split(",") if x]
    for x in targets:
        if x not in ("tmpfs", "disk"):
            sys.exit(f"trees.py: unknown target {x!r} (tmpfs, disk)")
    tools = [x for x in args.tools.split(",") if x]
    for x in tools:
        if x not in TOOLS:
            sys.exit(f"trees.py: unknown tool {x!r} ({', '.join(TOOLS)})")
    tree_keys = ["small"] if args.quick else [x for x in args.trees.split(",") if x and x != "none"]
    for x in tree_keys:
        if x not in TREES:
            sys.exit(f"trees.py: unknown tree {x!r} ({', '.join(TREES)})")
    if args.memory:
        tree_keys = []
    do_memory = args.memory or args.all
    rounds = args.rounds or (1 if args.quick else 3)

    cache = os.path.join(base, "zc-trees-cache")
    work = tempfile.mkdtemp(prefix="zc-trees-", dir=base)
    disk_work = tempfile.mkdtemp(prefix="zc-trees-", dir=args.disk_dir) if "disk" in targets else None
    bench = Bench(args, work)
    bench.disk_work = disk_work

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    held = contextlib.ExitStack()
    try:
        reporting = held.enter_context(vm_memory.reporting_held(args.hold_page_reporting))
        want = {x: True for x in tools}
        want["memory"] = do_memory
        bench.ensure_tools(want)
        tools = [x for x in tools if bench.available(x)]
        if args.zc and not os.access(args.zc, os.X_OK):
            sys.exit(f"trees.py: {args.zc} is not an executable")
        info = {"machine": machine(), "zc": zc_version(bench.zc), "rounds": rounds, "tools": tools,
                "page_reporting": reporting}
        if not args.json:
            m = info["machine"]
            print(f"machine: {m['cpu']}, nproc {m['nproc']}, load average {m['loadavg']}, "
                  f"Linux {m['kernel']}, {m['date']}")
            if info["zc"]:
                print(f"zc: {info['zc']['binary']} (built from a checkout at {info['zc']['commit']})")
            if reporting:
                print(reporting)
        os.makedirs(cache, exist_ok=True)
        bench.trees = specs = tree_specs()
        trees = [specs[k] for k in tree_keys]
        for t in trees + ([specs["many"]] if do_memory else []):
            make_tree(t, cache)
        if bench.zc:
            bench.probe_zc_trees()
        by_target, errors = {}, {}
        for target in targets if trees else []:
            where = work if target == "tmpfs" else disk_work
            runs, errs = bench.measure(target, trees, tools, rounds)
            by_target[target] = {t.key: summarize(t, runs[t.key], errs[t.key]) for t in trees}
            if not args.json:
                print_table(target, where, rounds, trees, by_target[target])
                lvs = large_vs_single(by_target[target])
                if lvs:
                    print(f"zc, {target}: large (8 x 64 MiB tree) {lvs['large_mib_per_s']:.1f} MiB/s / "
                          f"single 512 MiB file {lvs['single_mib_per_s']:.1f} MiB/s = {lvs['ratio']:.2f}"
                          f" (target >= 0.9)")
        memory = []
        if do_memory and bench.zc:
            for target in targets[:1]:
                got = bench.memory(target)
                memory.append(got)
                if not args.json:
                    if "error" in got:
                        print(f"\nmemory ({target}): zc failed on the {got.get('entries', 100000):,}-entry tree: "
                              f"{got['error']}")
                    else:
                        print(f"\nmemory ({target}): zc on a {got['entries']:,}-entry tree "
                              f"({specs['many'].files:,} one-byte files in {specs['many'].dirs:,} directories): "
                              f"{got['wall']:.2f} s, {specs['many'].files / got['wall']:.0f} files/s; peak RSS "
                              f"send {got.get('send_peak_kib', 0) / 1024:.1f} MiB, "
                              f"recv {got.get('recv_peak_kib', 0) / 1024:.1f} MiB (target <= 32 MiB each)")
        info["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        goals = verdicts(by_target, memory)
        doc = json.dumps({**info, "trees": {t.key: {"label": t.label, "files": t.files, "entries": t.entries,
                                                    "bytes": t.bytes} for t in trees},
                          "targets": by_target, "large_vs_single": {
                              k: large_vs_single(v) for k, v in by_target.items()},
                          "memory": memory, "goals": goals, "notes": bench.notes}, indent=1)
        if args.save:
            with open(args.save, "w") as f:
                f.write(doc + "\n")
        if args.json:
            print(doc)
        else:
            if goals:
                print("\ntargets:")
                for g in goals:
                    state = "not measured" if g["met"] is None else ("met" if g["met"] else "NOT met")
                    cmp = "<=" if "RSS" in g["target"] else ">="
                    print(f"  {g['target']}: {fmt(g['value'])} ({cmp} {g['goal']}): {state}")
            for note in bench.notes:
                print(f"note: {note}")
            print(f"load average at the end: {info['load_after']}")
    finally:
        held.close()
        bench.kids.kill_all()
        shutil.rmtree(work, ignore_errors=True)
        if disk_work:
            shutil.rmtree(disk_work, ignore_errors=True)
        if args.clean:
            shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)

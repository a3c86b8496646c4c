#!/usr/bin/env python3
"""One file served over HTTP on loopback to curl, by `zc send --http`, nginx
(`sendfile on`) and `python3 -m http.server`.

  bench/http.py [--size 1G] [--rounds 5] [--to devnull,file] [--dir /dev/shm]
                [--zc PATH]

Each round downloads the file once per server and target, in turn, with
`curl -s -o /dev/null` or `curl -s -o FILE` (FILE beside the source, in
tmpfs). Prints the median wall time, GiB/s, and the server's own CPU seconds
per GiB (user + system of the server process and its children, from
/proc/PID/stat before and after each download), curl's own CPU per GiB
(wait4) and the two summed (on loopback part of the receiving socket's work
runs on the sending side, so a faster sender shows more CPU of its own and
its client less), with ratios to nginx.
ZC (or --zc) names the zc binary; the default is target/release/zc, built
here. nginx runs on a config of its own in a temp directory (Debian package
nginx or nginx-light).
"""

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

TICK = os.sysconf("SC_CLK_TCK")
GIB = 1 << 30


def size_of(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if text[-1].upper() in units:
        return int(float(text[:-1]) * units[text[-1].upper()])
    return int(text)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, proc, what):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what} is not listening on {port}")


def cpu_seconds(pid):
    """User + system seconds of `pid` (all its threads) and its children,
    living ones included (nginx's worker under its master)."""
    total = 0
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                for kid in f.read().split():
                    total += cpu_seconds(int(kid)) * TICK
    except FileNotFoundError:
        pass
    return total / TICK


def start_zc(zc, path, tmp):
    port = free_port()
    proc = subprocess.Popen(
        [zc, "send", "--http", "--open", "--quiet", "--listen", f"127.0.0.1:{port}", path],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc, port


def start_nginx(_zc, path, tmp):
    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(exe):
        raise SystemExit("nginx is not installed (apt-get install nginx)")
    port = free_port()
    prefix = os.path.join(tmp, "nginx")
    os.makedirs(prefix, exist_ok=True)
    conf = os.path.join(prefix, "nginx.conf")
    with open(conf, "w") as f:
        f.write(
            f"""daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{ worker_connections 64; }}
http {{
  sendfile on;
  tcp_nopush on;
  access_log off;
  client_body_temp_path {prefix}/body;
  proxy_temp_path {prefix}/proxy;
  fastcgi_temp_path {prefix}/fastcgi;
  uwsgi_temp_path {prefix}/uwsgi;
  scgi_temp_path {prefix}/scgi;
  server {{
    listen 127.0.0.1:{port};
    root {os.path.dirname(path)};
  }}
}}
"""
        )
    proc = subprocess.Popen(
        [exe, "-p", prefix, "-c", conf, "-e", f"{prefix}/error.log"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc, port


def start_python(_zc, path, tmp):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory",
         os.path.dirname(path), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc, port


SERVERS = [("zc", start_zc), ("nginx", start_nginx), ("python", start_python)]


def download(url, out):
    """curl's wall time and its own CPU seconds (user + system, from wait4):
    on loopback the receiving socket's work lands partly on the sender's
    side, so the two sides' sum is the fair total."""
    start = time.monotonic()
    curl = subprocess.Popen(["curl", "-sSf", "-o", out, url])
    _, status, usage = os.wait4(curl.pid, 0)
    wall = time.monotonic() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"curl {url}: exit {os.waitstatus_to_exitcode(status)}")
    curl.returncode = 0
    return wall, usage.ru_utime + usage.ru_stime


def make_source(path, size):
    if os.path.exists(path) and os.path.getsize(path) == size:
        return
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            f.write(block[: min(left, len(block))])
            left -= len(block)


def zc_binary(given):
    if given:
        return given
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=root, check=True)
    return os.path.join(root, "target/release/zc")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="1G")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--to", default="devnull,file")
    ap.add_argument("--dir", default="/dev/shm")
    ap.add_argument("--zc", default=os.environ.get("ZC"))
    args = ap.parse_args()
    size = size_of(args.size)
    zc = zc_binary(args.zc)
    tmp = tempfile.mkdtemp(prefix="zc-http-bench-", dir=args.dir)
    os.chmod(tmp, 0o755)  # nginx's worker is nobody
    path = os.path.join(tmp, "source.bin")
    out = os.path.join(tmp, "copy.bin")
    make_source(path, size)
    running = []
    results = {}
    try:
        urls = {}
        for name, start in SERVERS:
            proc, port = start(zc, path, tmp)
            running.append(proc)
            wait_listening(port, proc, name)
            urls[name] = (proc, f"http://127.0.0.1:{port}/source.bin")
        targets = args.to.split(",")
        for _ in range(args.rounds):
            for target in targets:
                for name, (proc, url) in urls.items():
                    before = cpu_seconds(proc.pid)
                    wall, client = download(url, "/dev/null" if target == "devnull" else out)
                    cpu = cpu_seconds(proc.pid) - before
                    if target == "file":
                        if os.path.getsize(out) != size:
                            raise SystemExit(f"{name}: {os.path.getsize(out)} bytes, not {size}")
                        os.unlink(out)
                    results.setdefault((target, name), []).append((wall, cpu, client))
    finally:
        for proc in running:
            proc.send_signal(signal.SIGTERM)
        for proc in running:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    report(results, size, args)


def report(results, size, args):
    gib = size / GIB
    print(f"{args.size} to curl, median of {args.rounds} round(s); server CPU = user + system")
    print(f"{'to':8} {'server':7} {'wall s':>7} {'GiB/s':>6} {'CPU s/GiB':>9} {'curl CPU':>8} "
          f"{'both':>6} {'wall/nginx':>10}")
    for target in args.to.split(","):
        nginx = statistics.median(r[0] for r in results[(target, "nginx")])
        for name, _ in SERVERS:
            runs = results[(target, name)]
            wall = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs) / gib
            client = statistics.median(r[2] for r in runs) / gib
            both = statistics.median(r[1] + r[2] for r in runs) / gib
            print(f"{target:8} {name:7} {wall:7.3f} {gib / wall:6.2f} {cpu:9.3f} {client:8.3f} "
                  f"{both:6.3f} {wall / nginx:10.2f}")


if __name__ == "__main__":
    main()

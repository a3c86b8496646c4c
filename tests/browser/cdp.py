#!/usr/bin/env python3
"""Headless Chromium driven through the DevTools protocol, for tests/http_browser.rs.

No websocket: `--remote-debugging-pipe` speaks CDP as NUL-terminated JSON,
reading commands on the child's fd 3 and writing answers and events on fd 4.
Each subcommand prints one JSON object on stdout for the Rust test to check:

  index URL                      the links of an index page (href, text, size)
  upload URL FILE...             the three files through the page's script
  upload --folder DIR URL        a folder through the webkitdirectory input
  upload --noscript URL FILE...  the same page with scripts off: the plain form
  phone URL PNG                  a phone's viewport: a screenshot, and the sizes
                                 the test checks (overflow, tap targets)

Any failure is an exception: a traceback on stderr and exit 1.
"""

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

# A command that gets no answer in this long means a hung browser, not a slow
# one: the Rust test's own timeout is longer.
WAIT = 60


class Browser:
    def __init__(self):
        exe = shutil.which("chromium") or shutil.which("chromium-browser")
        if exe is None:
            raise SystemExit("chromium is not installed: scripts/test.sh installs it")
        self.profile = tempfile.mkdtemp(prefix="zc-chromium-")
        to_child, self.tx = os.pipe()
        self.rx, from_child = os.pipe()

        def at_3_and_4():
            # copies above 9 first, so neither dup2 lands on the other's source
            a = fcntl.fcntl(to_child, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(from_child, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        args = [
            exe,
            "--headless",
            # root in a container: no user namespaces for the sandbox
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--remote-debugging-pipe",
            f"--user-data-dir={self.profile}",
            "about:blank",
        ]
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(3, 4),
            preexec_fn=at_3_and_4,
        )
        os.close(to_child)
        os.close(from_child)
        self.buf = b""
        self.next_id = 0
        self.events = []
        self.session = None
        page = self.page_target()
        got = self.call("Target.attachToTarget", targetId=page, flatten=True, session=False)
        self.session = got["sessionId"]
        self.call("Page.enable")
        self.call("Runtime.enable")

    def page_target(self):
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            targets = self.call("Target.getTargets", session=False)["targetInfos"]
            pages = [t["targetId"] for t in targets if t["type"] == "page"]
            if pages:
                return pages[0]
            time.sleep(0.1)
        raise RuntimeError("chromium opened no page")

    def read_message(self, deadline=None):
        deadline = deadline or time.monotonic() + WAIT
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.rx], [], [], left)[0]:
                raise RuntimeError(f"chromium said nothing for {WAIT} s")
            chunk = os.read(self.rx, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed its DevTools pipe")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\0", 1)
        return json.loads(line)

    def call(self, method, session=True, **params):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self.tx, json.dumps(msg).encode() + b"\0")
        while True:
            got = self.read_message()
            if got.get("id") == self.next_id:
                if "error" in got:
                    raise RuntimeError(f"{method}: {got['error']}")
                return got.get("result", {})
            if "method" in got:
                self.events.append(got)

    def wait_event(self, method):
        """The first `method` event since the last wait for it."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            for i, e in enumerate(self.events):
                if e["method"] == method:
                    del self.events[: i + 1]
                    return e["params"]
            try:
                self.events.append(self.read_message(deadline))
            except RuntimeError:
                break
        raise RuntimeError(f"no {method} in {WAIT} s")

    def goto(self, url):
        self.events.clear()
        got = self.call("Page.navigate", url=url)
        if got.get("errorText"):
            raise RuntimeError(f"{url}: {got['errorText']}")
        self.wait_event("Page.loadEventFired")

    def js(self, expr):
        got = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in got:
            raise RuntimeError(f"{expr}: {got['exceptionDetails']}")
        return got["result"].get("value")

    def poll(self, expr):
        """`expr`'s value once it is truthy."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            value = self.js(expr)
            if value:
                return value
            time.sleep(0.1)
        raise RuntimeError(f"still not true after {WAIT} s: {expr}")

    def node(self, selector):
        root = self.call("DOM.getDocument", depth=0)["root"]["nodeId"]
        found = self.call("DOM.querySelector", nodeId=root, selector=selector)["nodeId"]
        if not found:
            raise RuntimeError(f"no {selector} on the page")
        return found

    def click(self, selector):
        """A real mouse click at the element's centre: works with scripts off."""
        quad = self.call("DOM.getBoxModel", nodeId=self.node(selector))["model"]["content"]
        x = sum(quad[0::2]) / 4
        y = sum(quad[1::2]) / 4
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def html(self):
        root = self.call("DOM.getDocument", depth=-1)["root"]["nodeId"]
        return self.call("DOM.getOuterHTML", nodeId=root)["outerHTML"]

    def close(self):
        try:
            self.call("Browser.close", session=False)
            self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


def index(b, url):
    b.goto(url)
    links = b.js(
        "[...document.querySelectorAll('li')].map(li => {"
        " const a = li.querySelector('a'), s = li.querySelector('span');"
        " return {href: a.href, text: a.textContent, size: s ? s.textContent : ''}; })"
    )
    return {"title": b.js("document.title"), "links": links}


def upload(b, url, paths, folder, noscript):
    if noscript:
        b.call("Emulation.setScriptExecutionDisabled", value=True)
    b.goto(url)
    selector = "input[webkitdirectory]" if folder else "input[type=file]:not([webkitdirectory])"
    b.call("DOM.setFileInputFiles", nodeId=b.node(selector), files=paths)
    # a folder's files are listed by the browser process after the call
    # returns; DevTools' own evaluation runs even with the page's scripts off
    want = b.poll("[...document.querySelectorAll('input[type=file]')].reduce((n, i) => n + i.files.length, 0)")
    b.events.clear()
    b.click("button[type=submit]")
    if noscript:
        # the form's POST navigates to the server's page of results
        b.wait_event("Page.loadEventFired")
        return {"html": b.html()}
    # the script PUTs the files one by one; a line says how each one ended
    deadline = time.monotonic() + WAIT
    lines = []
    while time.monotonic() < deadline:
        lines = b.js("[...document.querySelectorAll('#log li')].map(li => li.textContent)")
        if len(lines) == want and all(": " in x for x in lines):
            return {"lines": lines}
        time.sleep(0.1)
    raise RuntimeError(f"the page's uploads did not finish: {lines}")


def phone(b, url, png):
    b.call(
        "Emulation.setDeviceMetricsOverride",
        width=390,
        height=844,
        deviceScaleFactor=3,
        mobile=True,
    )
    b.call("Emulation.setTouchEmulationEnabled", enabled=True)
    b.goto(url)
    shot = b.call("Page.captureScreenshot", format="png")["data"]
    with open(png, "wb") as f:
        f.write(base64.b64decode(shot))
    sizes = b.js(
        "(() => { const box = s => { const e = document.querySelector(s);"
        " if (!e) return null; const r = e.getBoundingClientRect(), st = getComputedStyle(e);"
        " return {height: r.height, width: r.width, top: r.top, left: r.left,"
        " visible: st.visibility !== 'hidden' && st.display !== 'none' && r.width > 0 && r.height > 0}; };"
        " return {scrollWidth: document.documentElement.scrollWidth, innerWidth: innerWidth,"
        " files: box('input[type=file]:not([webkitdirectory])'), folder: box('input[webkitdirectory]'),"
        " submit: box('button[type=submit]'),"
        " links: [...document.querySelectorAll('a')].map(a => a.getBoundingClientRect().height)}; })()"
    )
    return sizes


def main(argv):
    what, rest = argv[0], argv[1:]
    flags = {a for a in rest if a.startswith("--")}
    rest = [a for a in rest if not a.startswith("--")]
    b = Browser()
    try:
        if what == "index":
            out = index(b, rest[0])
        elif what == "upload":
            paths = [os.path.abspath(p) for p in rest[1:]]
            out = upload(b, rest[0], paths, "--folder" in flags, "--noscript" in flags)
        elif what == "phone":
            out = phone(b, rest[0], rest[1])
        else:
            raise SystemExit(f"unknown command {what}")
    finally:
        b.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])

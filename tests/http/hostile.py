#!/usr/bin/env python3
"""Hostile HTTP clients for tests/http_hostile.rs, written with http.client.

  hostile.py uploads URL     against `zc recv --http` (URL: the upload page)
  hostile.py downloads URL   against `zc send --http` (URL: a file of 1000 bytes)

Each case sends its request on a fresh connection and reads the answer with
http.client's own response parser: an answer it cannot parse, or a server
that closes without one, is reported as such. After every case one plain
request checks that the server still serves. Prints one JSON object:
{"cases": [{"what", "want", "got"}], "serving": [...]}, where "want" is
the status the server gives now (a clean 4xx, or what RFC 9110 has a server
do: a Range it cannot use is ignored); the Rust test holds
the checks on the file system.
"""

import http.client
import io
import json
import socket
import sys
import urllib.parse

TIMEOUT = 20


def answer(sock, method="GET"):
    """The status of the one answer on `sock`, its body read to its end."""
    resp = http.client.HTTPResponse(sock, method=method)
    try:
        resp.begin()
        body = resp.read()
    except (http.client.HTTPException, OSError) as e:
        return f"no clean answer: {type(e).__name__}: {e}", b""
    return resp.status, body


def raw(host, port, data, method="GET", close_after=False):
    """Writes `data` as it stands; a server that answers early and closes
    may refuse the rest, which is not an error."""
    sock = socket.create_connection((host, port), timeout=TIMEOUT)
    try:
        try:
            sock.sendall(data)
        except OSError:
            pass
        if close_after:
            sock.shutdown(socket.SHUT_WR)
        return answer(sock, method)
    finally:
        sock.close()


class Target:
    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port
        self.path = u.path
        # /TOKEN/ for the upload page, /TOKEN/NAME for a file
        self.prefix = "/" + u.path.split("/")[1] + "/"

    def conn(self):
        return http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT)

    def exchange(self, send):
        """`send(connection)`, then the status and body of its answer."""
        c = self.conn()
        try:
            send(c)
            resp = c.getresponse()
            return resp.status, resp.read()
        except (http.client.HTTPException, OSError) as e:
            return f"no clean answer: {type(e).__name__}: {e}", b""
        finally:
            c.close()

    def request(self, method, path, body=None, headers=None, **kw):
        return self.exchange(lambda c: c.request(method, path, body=body, headers=headers or {}, **kw))

    def put_headers(self, path, headers, body=b""):
        """A PUT whose header lines are exactly `headers`, repeats and all
        (http.client's putheader adds each one as given)."""

        def send(c):
            c.putrequest("PUT", path, skip_accept_encoding=True)
            for name, value in headers:
                c.putheader(name, value)
            c.endheaders(body)

        return self.exchange(send)

    def raw(self, data, **kw):
        return raw(self.host, self.port, data, **kw)

    def put_x(self, target):
        """A one-byte PUT to `target` as it stands, written on a socket
        (http.client refuses a NUL or a space in a URL)."""
        return self.raw(f"PUT {target} HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nx".encode())

    def post_form(self, body, length=None, extra="", **kw):
        """The upload page's POST of `body`, its Content-Length `length`
        (the body's own by default), with `extra` header lines."""
        head = (
            f"POST {self.prefix} HTTP/1.1\r\nHost: t\r\nContent-Type: {FORM_TYPE}\r\n"
            f"Content-Length: {len(body) if length is None else length}\r\n{extra}\r\n"
        )
        return self.raw(head.encode() + body, **kw)


FORM_TYPE = "multipart/form-data; boundary=zcbound"


def form(name, data, boundary="zcbound"):
    head = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode("utf-8", "surrogateescape")
    return head + data + f"\r\n--{boundary}--\r\n".encode()


def upload_cases(t):
    p = t.prefix
    flood = "".join(f"X-{i}: y\r\n" for i in range(1000))
    nul_form = form("a\0b", b"nul")
    nul_dir_form = form("d\0/b", b"nul")
    yield "two Content-Length on a PUT", 400, lambda: t.put_headers(
        p + "two-cl", [("Host", "t"), ("Content-Length", "1"), ("Content-Length", "5")], b"xhello"
    )
    yield "Content-Length and Transfer-Encoding on a PUT", 400, lambda: t.put_headers(
        p + "te-cl", [("Host", "t"), ("Content-Length", "5"), ("Transfer-Encoding", "chunked")],
        b"0\r\n\r\n",
    )
    yield "a chunked PUT from http.client", 411, lambda: t.request(
        "PUT", p + "chunked", body=iter([b"hello", b" world"]), encode_chunked=True
    )
    yield "Transfer-Encoding: identity, chunked on a PUT", 400, lambda: t.put_headers(
        p + "te-list", [("Host", "t"), ("Transfer-Encoding", "identity, chunked")], b"0\r\n\r\n"
    )
    yield "a Content-Length of +5", 400, lambda: t.put_headers(
        p + "plus", [("Host", "t"), ("Content-Length", "+5")], b"hello"
    )
    yield "a Content-Length past u64", 400, lambda: t.put_headers(
        p + "huge", [("Host", "t"), ("Content-Length", "99999999999999999999999")], b"x"
    )
    yield "Content-Length and Transfer-Encoding on the form's POST", 400, lambda: t.post_form(
        nul_form, extra="Transfer-Encoding: chunked\r\n"
    )
    yield "a header flood on a PUT", 431, lambda: t.raw(
        f"PUT {p}flood HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n{flood}\r\nx".encode()
    )
    yield "a 1 MB request line", 414, lambda: t.raw(
        (f"PUT {p}" + "a" * (1 << 20) + " HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nx").encode()
    )
    yield "a PUT to /TOKEN/../x", 400, lambda: t.put_x(f"{p}../x")
    yield "a PUT to a/%2e%2e/%2e%2e/x", 400, lambda: t.put_x(f"{p}a/%2e%2e/%2e%2e/x")
    yield "a PUT to a%2fb", 400, lambda: t.put_x(f"{p}a%2fb")
    yield "a raw NUL in the request line", 400, lambda: t.put_x(f"{p}a\0b")
    yield "a NUL in a form's file name", 400, lambda: t.post_form(nul_form)
    yield "a NUL in a form's folder name", 400, lambda: t.post_form(nul_dir_form)
    yield "a PUT with a wrong token", 404, lambda: t.request(
        "PUT", "/00000000000000000000000000000000/wrong-token", body=b"x"
    )
    yield "a form POST with a wrong token", 404, lambda: t.request(
        "POST", "/00000000000000000000000000000000/", body=form("wrong-token-form", b"x"),
        headers={"Content-Type": FORM_TYPE},
    )
    yield "a PUT with the token in capitals", 404, lambda: t.request(
        "PUT", p.upper() + "upper-token", body=b"x"
    )
    # the cut ones last: the test then asks what they left
    yield "a PUT whose body stops short, then a close", 400, lambda: t.raw(
        f"PUT {p}short.bin HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n".encode()
        + b"s" * 40000,
        method="PUT",
        close_after=True,
    )
    short_form = form("short-form.bin", b"f" * 40000)[:-200]
    yield "a form whose body stops short, then a close", 400, lambda: t.post_form(
        short_form, length=len(short_form) + 60000, method="POST", close_after=True
    )
    yield "HEAD on the short PUT: how much is held", 204, lambda: t.request("HEAD", p + "short.bin")


def download_cases(t):
    f = t.path
    yield "a pipelined request behind Content-Length: 0", 200, lambda: pipelined(t, f)
    yield "Content-Length: 4, 4 on a GET", 400, lambda: t.raw(
        f"GET {f} HTTP/1.1\r\nHost: t\r\nContent-Length: 4, 4\r\n\r\nabcd".encode()
    )
    yield "an obs-fold header line", 400, lambda: t.raw(
        f"GET {f} HTTP/1.1\r\nHost: t\r\nX-A: a\r\n  folded\r\n\r\n".encode()
    )
    yield "a bare LF between header lines", 200, lambda: t.raw(
        f"GET {f} HTTP/1.1\nHost: t\nConnection: close\n\n".encode()
    )
    yield "an absolute-form target on another host", 400, lambda: t.raw(
        f"GET http://evil.example{f} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode()
    )
    yield "HTTP/2 in the request line", 400, lambda: t.raw(
        f"GET {f} HTTP/2.0\r\nHost: t\r\n\r\n".encode()
    )
    yield "two ranges", 200, lambda: t.request("GET", f, headers={"Range": "bytes=0-1,5-6"})
    yield "a range backwards", 200, lambda: t.request("GET", f, headers={"Range": "bytes=9-2"})
    yield "a range of zero from the end", 416, lambda: t.request("GET", f, headers={"Range": "bytes=-0"})
    yield "a range in another unit", 200, lambda: t.request("GET", f, headers={"Range": "lines=0-1"})
    yield "HEAD with a wrong token", 404, lambda: t.request(
        "HEAD", "/00000000000000000000000000000000/" + f.rsplit("/", 1)[1]
    )
    yield "a token one character short", 404, lambda: t.request("GET", t.prefix[:-2] + "/" + f.rsplit("/", 1)[1])
    yield "a PUT to a download", 400, lambda: t.request("PUT", f, body=b"x")


class Kept(io.BufferedReader):
    """One buffer for the answers of a connection: http.client closes its
    file after each answer, and a fresh one would lose what was read ahead."""

    def close(self):
        pass


class OneReader:
    def __init__(self, sock):
        self.file = Kept(socket.SocketIO(sock, "rb"))

    def makefile(self, mode):
        return self.file


def pipelined(t, f):
    """A GET and a HEAD in one write: two whole answers, each its own."""
    sock = socket.create_connection((t.host, t.port), timeout=TIMEOUT)
    try:
        sock.sendall(
            f"GET {f} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"
            f"HEAD {f} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode()
        )
        reader = OneReader(sock)
        first, body = answer(reader)
        if first != 200 or len(body) != 1000:
            return f"the first answer: {first}, {len(body)} bytes", b""
        return answer(reader, "HEAD")
    finally:
        sock.close()


def main(argv):
    what, url = argv
    t = Target(url)
    cases = upload_cases(t) if what == "uploads" else download_cases(t)
    report = {"cases": [], "serving": []}
    for name, want, run in cases:
        got, _ = run()
        report["cases"].append({"what": name, "want": want, "got": got})
        # the server still serves: the upload page, or the file
        report["serving"].append(t.request("GET", t.path)[0])
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1:])

"""Helpers for the http-mode loopback tests: a real nginx origin started by the test (one
worker, its own temporary prefix, config, pid and log files, `daemon off`, killed by pid at
the end), an HTTP/1.1 client that reads responses by their framing, and service blocks in
mode http. Everything started is stopped by the harness's clean-up even when a test fails."""
import os
import signal
import socket
import subprocess
import time

import harness
import tcp_tools
from harness import fail, tempdir, wait_for


HTTP_BLOCK = """
  log_format origin '$connection $connection_requests $request_length $status "$request" $http_x_forwarded_for';
  access_log {dir}/access.log origin;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  default_type application/octet-stream;
  types {{ text/plain txt; }}
  server {{
    listen 127.0.0.1:{port} reuseport;
    root {dir}/www;
    location = /ok {{ return 200 "ok"; }}
    location = /post {{ return 200 "posted"; }}
    location /gz/ {{ gzip on; gzip_types text/plain; gzip_min_length 1; gzip_http_version 1.0; }}
    location /dav/ {{ dav_methods PUT DELETE; create_full_put_path on; client_max_body_size 64m; }}
  }}
"""


class Nginx:
    """nginx on 127.0.0.1 with /ok ("ok"), /1k, /64k (static files), /gz/text.txt (gzip on
    the fly: chunked), /post (discards a body, answers "posted") and /dav/ (PUT stores the
    body, so a test can read what arrived)."""

    def __init__(self):
        self.dir = tempdir()
        self.port = tcp_tools.free_port()
        os.makedirs(os.path.join(self.dir, "www", "gz"))
        os.makedirs(os.path.join(self.dir, "www", "dav"))
        self.files = {"/1k": bytes(range(256)) * 4, "/64k": os.urandom(64 * 1024)}
        self.text = b"".join(b"line %d of a text that compresses well\n" % i for i in range(2000))
        for path, data in self.files.items():
            with open(os.path.join(self.dir, "www", path.lstrip("/")), "wb") as f:
                f.write(data)
        with open(os.path.join(self.dir, "www", "gz", "text.txt"), "wb") as f:
            f.write(self.text)
        self.proc = harness.start_nginx(self.dir, HTTP_BLOCK.format(dir=self.dir, port=self.port),
                                        lambda: tcp_tools.can_connect(self.port), connections=4096)

    def access_lines(self):
        """(connection, connection_requests, request_length, status, request line, x-forwarded-for) per request."""
        out = []
        try:
            with open(os.path.join(self.dir, "access.log")) as f:
                for line in f:
                    first, _, rest = line.partition(' "')
                    conn, reqs, length, status = first.split()
                    request, _, xff = rest.rpartition('" ')
                    out.append((int(conn), int(reqs), int(length), int(status), request, xff.strip()))
        except FileNotFoundError:
            pass
        return out

    def stored(self, name):
        with open(os.path.join(self.dir, "www", "dav", name), "rb") as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Response:
    def __init__(self, status, reason, headers, body, version):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value) as received
        self.body = body
        self.version = version

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def headers_named(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def __repr__(self):
        return "<%d %s %s %d bytes>" % (self.status, self.reason, self.headers, len(self.body))


class Client:
    """One client connection; reads responses by their framing (Content-Length, chunked,
    until close), so keep-alive and pipelined answers can be told apart."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.file = self.sock.makefile("rb")
        self.raw_chunks = []

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def request(self, method, path, headers=None, body=None, host="test.local", version="HTTP/1.1"):
        lines = ["%s %s %s" % (method, path, version)]
        if host is not None:
            lines.append("Host: " + host)
        for k, v in (headers or {}).items():
            lines.append("%s: %s" % (k, v))
        if body is not None and not any(k.lower() in ("content-length", "transfer-encoding") for k in (headers or {})):
            lines.append("Content-Length: %d" % len(body))
        data = ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")
        self.send(data)

    def read_head(self):
        line = self.file.readline()
        if not line:
            return None
        version, _, rest = line.decode("latin-1").rstrip("\r\n").partition(" ")
        code, _, reason = rest.partition(" ")
        headers = []
        while True:
            h = self.file.readline()
            if not h:
                fail("connection closed inside a response head")
            h = h.decode("latin-1").rstrip("\r\n")
            if not h:
                break
            k, _, v = h.partition(":")
            headers.append((k, v.strip()))
        return int(code), reason, headers, version

    def read_response(self, method="GET", chunks=None):
        """The next final response (interim ones are skipped); None if the connection closed
        before a status line. `chunks`, when a list, gets each chunk's data."""
        while True:
            head = self.read_head()
            if head is None:
                return None
            code, reason, headers, version = head
            if 100 <= code < 200 and code != 101:
                continue
            break
        r = Response(code, reason, headers, b"", version)
        if method == "HEAD" or code in (204, 304) or code == 101:
            return r
        te = r.header("Transfer-Encoding")
        cl = r.header("Content-Length")
        if te and te.lower().endswith("chunked"):
            body = b""
            while True:
                size_line = self.file.readline()
                if not size_line:
                    fail("connection closed inside a chunked body")
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.file.readline() not in (b"\r\n", b""):
                        pass
                    break
                data = self.file.read(size)
                if chunks is not None:
                    chunks.append(data)
                body += data
                self.file.read(2)
            r.body = body
        elif cl is not None:
            n = int(cl)
            r.body = self.file.read(n)
            if len(r.body) != n:
                r.truncated = True
        else:
            r.body = self.file.read()
        return r

    def read_interim_then_final(self):
        """(interim statuses, final response)."""
        interim = []
        while True:
            head = self.read_head()
            if head is None:
                return interim, None
            code = head[0]
            if 100 <= code < 200 and code != 101:
                interim.append(code)
                continue
            self._pushed = head
            break
        code, reason, headers, version = self._pushed
        r = Response(code, reason, headers, b"", version)
        cl = r.header("Content-Length")
        if cl:
            r.body = self.file.read(int(cl))
        return interim, r

    def closed(self, timeout=5):
        """True once the peer closed (EOF or reset) within `timeout`."""
        self.sock.settimeout(timeout)
        try:
            return self.file.read(1) == b""
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        try:
            self.file.close()
            self.sock.close()
        except OSError:
            pass


def get(port, path, **kw):
    c = Client(port)
    c.request("GET", path, **kw)
    r = c.read_response()
    c.close()
    return r


def http_service(name, port, servers, extra="", listen=True):
    lines = ["  %s:" % name]
    if listen:
        lines.append("    listen: [127.0.0.1:%d]" % port)
    lines.append("    mode: http")
    if extra:
        lines += ["    " + l for l in extra.strip().splitlines()]
    if servers:
        lines.append("    servers:")
        for s in servers:
            lines.append("      - {%s}" % s)
    return "\n".join(lines) + "\n"


def wait_counter(d, service, pred, what, timeout=10):
    return wait_for(lambda: (lambda s: s if pred(s) else None)(d.service(service)), timeout, what)

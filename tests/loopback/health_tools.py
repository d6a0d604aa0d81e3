"""Helpers for the health loopback tests: hafrontd with checks, VIPs and alert sinks in its
config; scripted HTTP servers (a keystone-like API that answers 503 while a flag file exists,
a webhook receiver that records every POST); waiting on a server's or service's health in
status. Everything started is stopped by the harness's clean-up, even when a test fails."""
import http.server
import json
import os
import threading

import tcp_tools
from harness import fail, tempdir, wait_for
from tcp_tools import ProxyDaemon

class HealthDaemon(ProxyDaemon):
    """hafrontd with `checks`, `vips` and `alerts` sections besides the services (each a YAML
    text without its section header, or empty)."""

    def __init__(self, services, checks="", vips="", alerts="", workers=2):
        self.checks = checks
        self.vips = vips
        self.alerts = alerts
        super().__init__(services, workers=workers)

    def set_services(self, services):
        sections = ""
        for name, body in (("vips", self.vips), ("checks", self.checks), ("services", services),
                           ("alerts", self.alerts)):
            if body.strip():
                sections += "%s:\n%s" % (name, body if body.endswith("\n") else body + "\n")
        self.write_sections(sections)

    def health(self, service):
        return self.service(service)["health"]

    def wait_server(self, service, server, pred, timeout=10, what=None):
        """Waits until pred(server status) holds; returns the server's status."""
        def probe():
            s = self.server(service, server)
            return s if pred(s) else None
        return wait_for(probe, timeout, what or "%s/%s to change" % (service, server))

    def wait_state(self, service, server, state, timeout=10):
        return self.wait_server(service, server, lambda s: s["state"] == state, timeout,
                                "%s/%s to be %s" % (service, server, state))

    def wait_health(self, service, pred, timeout=10, what=None):
        def probe():
            h = self.health(service)
            return h if pred(h) else None
        return wait_for(probe, timeout, what or "the health of %s to change" % service)


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass


class KeystoneLike:
    """GET /v3 answers 200 with a small JSON body, or 503 while `flag` exists."""

    def __init__(self, flag):
        owner = self

        class Handler(_Handler):
            def do_GET(self):
                busy = os.path.exists(owner.flag)
                body = b'{"error": "database unavailable"}' if busy else b'{"version": {"id": "v3.14"}}'
                self.send_response(503 if busy else 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.flag = flag
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        _servers.append(self)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class WebhookReceiver:
    """Records the JSON body of every POST, answering 204."""

    def __init__(self):
        owner = self
        self.posts = []
        self.lock = threading.Lock()

        class Handler(_Handler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                try:
                    doc = json.loads(body)
                except ValueError:
                    doc = {"unparsable": body.decode(errors="replace")}
                with owner.lock:
                    owner.posts.append((self.path, doc))
                self.send_response(204)
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        _servers.append(self)

    def alerts(self):
        with self.lock:
            return [doc for _, doc in self.posts]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


_servers = []


def exec_sink_script(directory):
    """A command for the exec sink: appends its stdin, one JSON document per line, to a file.
    Returns (argv, path of the file)."""
    out = os.path.join(directory, "exec-alerts.jsonl")
    script = os.path.join(directory, "exec-sink.py")
    with open(script, "w") as f:
        f.write("import sys\n"
                "data = sys.stdin.read()\n"
                "with open(%r, 'a') as f:\n"
                "    f.write(data.replace('\\n', ' ') + '\\n')\n" % out)
    return ["/usr/bin/python3", script], out


def read_jsonl(path):
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def yaml_list(argv):
    return "[" + ", ".join(json.dumps(a) for a in argv) + "]"


def tcp_listener(address="127.0.0.1", port=0):
    """A listener that accepts and closes at once: a target for tcp checks."""
    return backend_on(address, port, lambda conn, backend: None)


def backend_on(address, port, handler):
    """A tcp_tools.Backend bound to `address` (127.0.0.1 or another loopback address)."""
    return tcp_tools.Backend(handler, port=port, address=address)

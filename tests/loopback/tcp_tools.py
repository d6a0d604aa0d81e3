"""Helpers for the data-plane loopback tests: a network namespace of the test's own when
run as root, free ports, small scripted TCP back-ends on 127.0.0.1, and hafrontd started
with a config written here. Everything started is stopped by the harness's clean-up (by
pid) or by close(), even when a test fails."""
import ctypes
import hashlib
import os
import socket
import subprocess
import threading
import time

import harness
from harness import Daemon, fail, tempdir, wait_for

CLONE_NEWNET = 0x40000000


def isolate_network():
    """As root, move this test (and everything it starts) into a network namespace with only
    lo, so the daemon's VIP handling never touches the host and ports are ours. Must run
    before any thread starts. Unprivileged tests stay where they are (127.0.0.1 only)."""
    if os.geteuid() != 0:
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        fail("unshare(CLONE_NEWNET) failed: %s" % os.strerror(ctypes.get_errno()))
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    return True


_isolated = None


def setup():
    global _isolated
    if _isolated is None:
        _isolated = isolate_network()
    return _isolated


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Backend:
    """A threaded TCP server on 127.0.0.1 (or another loopback `address`) that runs
    `handler(conn, backend)` per connection."""

    def __init__(self, handler, port=None, backlog=64, address="127.0.0.1"):
        self.handler = handler
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, port or 0))
        self.port = self.sock.getsockname()[1]
        self.sock.listen(backlog)
        self.accepted = 0
        self.records = []
        self.lock = threading.Lock()
        self.closed_conns = 0
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        _backends.append(self)

    def _run(self):
        self.sock.settimeout(0.1)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(None)
            with self.lock:
                self.accepted += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            self.handler(conn, self)
        except OSError:
            pass
        finally:
            conn.close()
            with self.lock:
                self.closed_conns += 1

    def record(self, value):
        with self.lock:
            self.records.append(value)

    def close(self):
        self._stop = True
        self.sock.close()


_backends = []


def echo(conn, backend):
    while True:
        data = conn.recv(65536)
        if not data:
            return
        conn.sendall(data)


def recv_exact(sock, n, timeout=10):
    sock.settimeout(timeout)
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            break
        out += chunk
    return out


def recv_all(sock, timeout=30):
    sock.settimeout(timeout)
    chunks = []
    while True:
        chunk = sock.recv(1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def sink_and_source(payload):
    """A back-end that sends `payload` while it reads everything the client sends; after the
    client's end of stream it answers with the SHA-256 of what it received, then closes."""

    def handler(conn, backend):
        sender = threading.Thread(target=conn.sendall, args=(payload,), daemon=True)
        sender.start()
        digest = hashlib.sha256()
        received = 0
        while True:
            data = conn.recv(1 << 20)
            if not data:
                break
            digest.update(data)
            received += len(data)
        sender.join()
        conn.sendall(digest.digest())
        backend.record(received)

    return handler


def first_bytes(n):
    """A back-end that records the first n bytes it receives, then echoes the rest."""

    def handler(conn, backend):
        backend.record(recv_exact(conn, n))
        echo(conn, backend)

    return handler


def blackhole():
    """A listening socket that never accepts, with its accept queue full: further SYNs are
    dropped, so a connect to it neither succeeds nor fails until a time-out."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(0)
    port = s.getsockname()[1]
    fillers = []
    for _ in range(2):
        c = socket.socket()
        c.setblocking(False)
        try:
            c.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(c)
    time.sleep(0.1)  # the fillers' handshakes complete (or stall) on loopback at once
    _holders.append((s, fillers))
    return port


_holders = []

TCP_CONFIG = """
cluster:
  name: loopback
  mode: standalone
{sections}
admin:
  socket: {socket}
proxy:
  workers: {workers}
  access_log: {access_log}
logging:
  level: info
"""


class ProxyDaemon(Daemon):
    """hafrontd with a data-plane config. When setup() moved the test into a namespace of its
    own, the daemon runs in it directly (the harness would otherwise give it another one,
    out of reach of the test's back-ends)."""

    def __init__(self, services, workers=2, backend=None, access_log="off", env=None):
        e = dict(env or {})
        if backend:
            e["HAFRONT_IO_BACKEND"] = backend
        super().__init__(env=e)
        self.access_log = access_log
        self.workers = workers
        self.set_services(services)

    def set_services(self, services):
        self.write_sections("services:\n" + services)

    def write_sections(self, sections):
        """Writes the config: `sections` (top-level YAML) in the loopback frame."""
        self.write_config(raw=TCP_CONFIG.format(sections=sections.rstrip("\n"), socket=self.socket,
                                                workers=self.workers, access_log=self.access_log))

    def argv(self):
        if _isolated:
            return [harness.HAFRONTD, "-c", self.config, "--node", self.argv_node] + self.extra_args
        return super().argv()

    def service(self, name):
        for s in self.status()["services"]:
            if s["name"] == name:
                return s
        fail("no service %r in status" % name)

    def server(self, service, name):
        for s in self.service(service)["servers"]:
            if s["name"] == name:
                return s
        fail("no server %s/%s in status" % (service, name))


def connect(port, timeout=5):
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def can_connect(port):
    try:
        c = connect(port, timeout=1)
    except OSError:
        return False
    c.close()
    return True


def roundtrip(sock, data, timeout=5):
    sock.sendall(data)
    got = recv_exact(sock, len(data), timeout)
    if got != data:
        fail("sent %r, got back %r" % (data, got))
    return True


def service_block(name, port, servers, extra=""):
    lines = ["  %s:" % name, "    listen: [127.0.0.1:%d]" % port]
    if extra:
        lines += ["    " + l for l in extra.strip().splitlines()]
    lines.append("    servers:")
    for s in servers:
        lines.append("      - {%s}" % s)
    return "\n".join(lines) + "\n"


def wait_log_line(path, pred, timeout=10):
    def find():
        try:
            with open(path) as f:
                for line in f:
                    if pred(line):
                        return line
        except FileNotFoundError:
            return None
        return None

    return wait_for(find, timeout, "an access log line in %s" % path)

"""Shared helpers for loopback tests: start the real hafrontd in a temporary folder, talk
to it with the real hafrontctl, capture its sd_notify messages on a socket we own, and
clean up everything (processes by pid, files) even when a test fails."""
import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HAFRONTD = os.environ["HAFRONTD"]
HAFRONTCTL = os.environ["HAFRONTCTL"]
SOURCE_DIR = os.environ["HAFRONT_SOURCE_DIR"]

_procs = []
_dirs = []


def _cleanup():
    for p in _procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    for d in _dirs:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)


def tempdir():
    d = tempfile.mkdtemp(prefix="hafront-test-")
    _dirs.append(d)
    return d


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)
    print("ok: " + msg, flush=True)


def wait_for(pred, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    fail("timed out after %.1fs waiting for %s" % (timeout, what))



NGINX = "/usr/sbin/nginx"


def start_nginx(dir, http_block, ready, connections=1024):
    """Starts a real nginx in the foreground (one process; its pid, logs and temp folders in
    `dir`), killed by pid at exit. `http_block`: the directives of its http {} block (log
    format, servers); `ready()` says it listens. Returns the Popen."""
    conf = os.path.join(dir, "nginx.conf")
    with open(conf, "w") as f:
        f.write("worker_processes 1;\ndaemon off;\nmaster_process off;\n"
                "pid %s/nginx.pid;\nerror_log %s/error.log warn;\n" % (dir, dir))
        f.write("events { worker_connections %d; }\nhttp {\n" % connections)
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            f.write("  %s_temp_path %s/%s;\n" % (kind, dir, kind))
        f.write(http_block + "\n}\n")
    log_path = os.path.join(dir, "nginx.stderr")
    with open(log_path, "w") as log:
        proc = subprocess.Popen([NGINX, "-p", dir, "-c", conf], stdout=log, stderr=subprocess.STDOUT)
    _procs.append(proc)
    wait_for(lambda: proc.poll() is not None or ready(), 10, "nginx to listen")
    if proc.poll() is not None:
        fail("nginx exited: %s" % open(log_path).read())
    return proc

QUICKSTART_TEMPLATE = """
cluster:
  name: loopback
  mode: standalone
vips:
  front: {{address: 127.0.0.10/32, interface: lo}}
checks:
  api: {{http: {{path: /healthcheck}}, interval: 1s, timeout: 500ms}}
services:
{services}
admin:
  socket: {socket}
logging:
  level: {level}
"""

DEFAULT_SERVICES = """  api:
    listen: [front:8080]
    mode: http
    check: api
    servers:
      - {name: web-1, address: 127.0.0.1:18081}
      - {name: web-2, address: 127.0.0.1:18082}
  db:
    listen: [127.0.0.1:13306]
    balance: single-writer
    servers:
      - {name: db-1, address: 127.0.0.1:13307}
"""


class Notify:
    """A datagram socket standing in for systemd's NOTIFY_SOCKET. Like systemd, it reads
    continuously (on a thread): a full queue would block the daemon's sd_notify()."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.messages = []
        self._lock = threading.Lock()
        self._stop = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        while not self._stop:
            try:
                msg = self.sock.recv(4096).decode()
            except (socket.timeout, BlockingIOError):
                continue
            except OSError:
                return
            with self._lock:
                self.messages.append(msg)

    def drain(self):
        with self._lock:
            return list(self.messages)

    def wait(self, text, timeout=10.0, after=0):
        wait_for(lambda: any(text in m for m in self.drain()[after:]), timeout, "sd_notify %r" % text)


class Daemon:
    def __init__(self, directory=None, services=DEFAULT_SERVICES, level="info", env=None,
                 notify=False, extra_args=()):
        self.dir = directory or tempdir()
        self.socket = os.path.join(self.dir, "admin.sock")
        self.config = os.path.join(self.dir, "hafront.yaml")
        self.log_path = os.path.join(self.dir, "hafrontd.log")
        self.write_config(services=services, level=level)
        self.env = dict(os.environ)
        self.env.pop("NOTIFY_SOCKET", None)
        self.env.pop("JOURNAL_STREAM", None)
        self.notify = Notify(self.dir) if notify else None
        if self.notify:
            self.env["NOTIFY_SOCKET"] = self.notify.path
        if env:
            self.env.update(env)
        self.extra_args = list(extra_args)
        self.proc = None

    def write_config(self, services=DEFAULT_SERVICES, level="info", socket_path=None, raw=None):
        text = raw if raw is not None else QUICKSTART_TEMPLATE.format(
            services=services, socket=socket_path or self.socket, level=level)
        tmp = self.config + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.config)

    argv_node = "solo"

    def argv(self):
        cmd = [HAFRONTD, "-c", self.config, "--node", self.argv_node] + self.extra_args
        # The daemon adds its VIPs to interfaces. As root, give it a network namespace of
        # its own (with only lo) so the host's interfaces are never touched; unprivileged,
        # the address changes are refused by the kernel anyway.
        if os.geteuid() == 0:
            return ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$0" "$@"'] + cmd
        return cmd

    def start(self, wait=True):
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.argv(), stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        _procs.append(self.proc)
        if wait:
            wait_for(lambda: self.proc.poll() is not None or self.ping(), 10, "hafrontd to answer")
            if self.proc.poll() is not None:
                fail("hafrontd exited with %s:\n%s" % (self.proc.returncode, self.read_log()))
        return self

    def ping(self):
        if not os.path.exists(self.socket):
            return False
        try:
            return self.request({"command": "ping"}).get("ok", False)
        except OSError:
            return False

    def request(self, obj, timeout=5.0):
        return json.loads(self.raw(json.dumps(obj) + "\n", timeout).splitlines()[0])

    def raw(self, data, timeout=5.0, shutdown=True):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(self.socket)
        try:
            s.sendall(data.encode() if isinstance(data, str) else data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon may close early on a huge request; read what it said
        if shutdown:
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        s.close()
        return out.decode(errors="replace")

    def ctl(self, *args):
        return subprocess.run([HAFRONTCTL, "--socket", self.socket] + list(args),
                              capture_output=True, text=True, timeout=30)

    def status(self):
        r = self.ctl("status", "--json")
        if r.returncode != 0:
            fail("hafrontctl status failed: %s" % r.stderr)
        return json.loads(r.stdout)

    def alive(self):
        return self.proc.poll() is None

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=10):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                fail("hafrontd did not stop within %ss of SIGTERM" % timeout)
        return self.proc.returncode

    def read_log(self):
        with open(self.log_path) as f:
            return f.read()

"""What bench/failover and tests/chaos share: a hafront cluster on the netns test bed
with the lease (or address) driver, one ipmi_sim BMC per node fenced by the real
fence_ipmilan, a tiny TCP backend per node that answers its node name, a client-side TCP
prober, and the steps that bring a fenced node back (wait for the confirmed fence, heal,
power on, boot: backend, Corosync, hafrontd).

    cl = HafrontCluster(bed, driver="lease", vips={"v": ("192.0.2.100", [])})
    cl.start()                                  # sysctls, BMCs, backends, Corosync, hafrontd
    prober = Prober(bed, "192.0.2.100", 8080)   # connects every 5 ms from the client
    ...
    cl.wait_fence_confirmed("n2", t0)           # a survivor's history has the fence
    cl.power_on_and_boot("n2")

Standard library only; the test bed (netns.py), daemons.py, corosync_cluster_lib.py and
tests/fence_peers/fence_peers.py do the rest."""
import contextlib
import datetime
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "fence_peers"))

import daemons  # noqa: E402
from corosync_cluster_lib import cleanup_shm, start_cluster, start_corosync  # noqa: E402,F401 (cleanup_shm: for chaos.py)
from daemons import Hafront  # noqa: E402

BACKEND_PORT = 8080

# A node's backend: accepts, writes the node's name and a newline, closes.
BACKEND = r"""
import socket, sys
name = sys.argv[1].encode() + b"\n"
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[2])))
s.listen(1024)
while True:
    c, _ = s.accept()
    try:
        c.send(name)
    except OSError:
        pass
    c.close()
"""

# The client's prober: a new non-blocking connect to VIP:PORT every `interval` ms, many in
# flight, each given up after `limit` ms. Prints "CONNECTED STARTED NAME" for every connect
# that read a backend's name; with a fifth argument "1" also "- STARTED ENDED REASON" for
# every one that did not (refused, unreachable, closed, timeout). With a sixth argument
# "http:PATH", each connection sends GET PATH (Connection: close) and reads the answer to
# its end: NAME is its X-Node header, a status other than 200 is a failure "http-STATUS".
PROBER = r"""
import errno, selectors, socket, sys, time
vip, port = sys.argv[1], int(sys.argv[2])
interval, limit = float(sys.argv[3]) / 1000, float(sys.argv[4]) / 1000
failures = len(sys.argv) > 5 and sys.argv[5] == "1"
http = sys.argv[6][5:] if len(sys.argv) > 6 and sys.argv[6].startswith("http:") else None
request = ("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (http, vip)).encode() if http else b""
sel = selectors.DefaultSelector()
live = {}   # fd -> [sock, start, connected or None, answer so far]
out = sys.stdout
def drop(fd, why=None):
    ent = live.pop(fd)
    sel.unregister(ent[0])
    ent[0].close()
    if why and failures:
        out.write("- %.6f %.6f %s\n" % (ent[1], time.monotonic(), why))
        out.flush()
print("ready", flush=True)
nxt = time.monotonic()
while True:
    now = time.monotonic()
    if now >= nxt:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
        e = s.connect_ex((vip, port))
        if e in (0, errno.EINPROGRESS):
            live[s.fileno()] = [s, now, None, b""]
            sel.register(s, selectors.EVENT_WRITE)
        else:
            s.close()
            if failures:
                out.write("- %.6f %.6f %s\n" % (now, time.monotonic(), errno.errorcode.get(e, str(e))))
                out.flush()
        nxt += interval
        if nxt < now:
            nxt = now + interval
    wait = max(0.0, nxt - time.monotonic())
    for key, ev in sel.select(wait):
        fd = key.fd
        ent = live.get(fd)
        if ent is None:
            continue
        s = ent[0]
        if ent[2] is None:
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                drop(fd, errno.errorcode.get(err, str(err)))
                continue
            ent[2] = time.monotonic()
            sel.modify(s, selectors.EVENT_READ)
            if request:
                try:
                    s.send(request)
                except OSError:
                    drop(fd, "reset")
            continue
        try:
            data = s.recv(65536 if http else 64)
        except OSError:
            data = b""
            if http:
                drop(fd, "reset")
                continue
        if http:
            if data and len(ent[3]) < 65536:
                ent[3] += data
                continue
            head = ent[3].split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
            status = head[0].split()[1] if len(head[0].split()) > 1 else ""
            if status != "200":
                drop(fd, "http-" + status if status else "closed")
                continue
            name = next((h.split(":", 1)[1].strip() for h in head[1:] if h.lower().startswith("x-node:")), "?")
        else:
            name = data.decode("ascii", "replace").strip()
        if name:
            out.write("%.6f %.6f %s\n" % (ent[2], ent[1], name))
            out.flush()
            drop(fd)
        else:
            drop(fd, "closed")
    now = time.monotonic()
    for fd in [fd for fd, ent in live.items() if now - ent[1] > limit]:
        drop(fd, "timeout")
"""


def pct(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def wait_until(pred, timeout, what, interval=0.02):
    """daemons.wait_for that raises TimeoutError rather than failing the test."""
    return daemons.wait_for(pred, timeout, what, interval, error=TimeoutError)


# ------------------------------------------------------------------------------ client side
class Prober:
    """Connects from the client to vip:port every interval_ms; records (connected_at,
    started_at, node that served) for every connect that read a backend's name, and with
    failures=True (started_at, ended_at, reason) for every one that did not. With
    http_path, every connection is an HTTP GET of that path and the node that served is
    the answer's X-Node header (the nginx backends of tests/demo)."""

    def __init__(self, bed, vip, port=BACKEND_PORT, interval_ms=5, timeout_ms=300, failures=False, name="prober",
                 http_path=None):
        self.vip = vip
        argv = ["python3", "-u", "-c", PROBER, vip, str(port), str(interval_ms), str(timeout_ms),
                "1" if failures else "0"]
        if http_path:
            argv.append("http:" + http_path)
        self.proc = bed.client.spawn(argv, log_path=os.path.join(bed.dir, "client-%s.log" % name))
        self.ok = []
        self.failed = []
        self.lock = threading.Lock()
        # the log file is the channel: a reader thread follows it
        self._stop = False
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._follow, daemon=True)
        self.thread.start()
        if not self._ready.wait(15):
            raise RuntimeError("prober did not start: %s" % self.proc.log_text()[-500:])

    def _follow(self):
        buf = b""
        with open(self.proc.log_path, "rb") as f:
            while not self._stop:
                chunk = f.read(65536)
                if not chunk:
                    time.sleep(0.002)
                    continue
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    parts = line.decode("ascii", "replace").split()
                    if parts == ["ready"]:
                        self._ready.set()
                    elif len(parts) == 3:
                        try:
                            item = (float(parts[0]), float(parts[1]), parts[2])
                        except ValueError:
                            continue
                        with self.lock:
                            self.ok.append(item)
                    elif len(parts) == 4 and parts[0] == "-":
                        try:
                            item = (float(parts[1]), float(parts[2]), parts[3])
                        except ValueError:
                            continue
                        with self.lock:
                            self.failed.append(item)

    def mark(self):
        with self.lock:
            return len(self.ok)

    def since(self, mark):
        with self.lock:
            return self.ok[mark:]

    def recent(self, seconds):
        t = time.monotonic() - seconds
        with self.lock:
            out = []
            for item in reversed(self.ok):
                if item[0] < t:
                    break
                out.append(item)
            return out

    def take(self):
        """Every record so far, forgotten here: (ok, failed)."""
        with self.lock:
            ok, failed = self.ok, self.failed
            self.ok, self.failed = [], []
            return ok, failed

    def stop(self):
        self._stop = True


# ------------------------------------------------------------------------------ the cluster
def set_lease_sysctls(node):
    """What the lease driver needs on the uplink (doc/lease.md): the kernel must not answer
    ARP for the VIP on lo, nor use it as a source."""
    for k, v in (("all.arp_ignore", 1), ("all.arp_announce", 2), ("eth0.arp_ignore", 1), ("eth0.arp_announce", 2)):
        node.sysctl("net.ipv4.conf." + k, v)


def hafront_config(peers, nodes, vips, driver="lease", token="300ms", liveness="1s", lease="500ms",
                   lease_margin="100ms", name="bench", two_node=False, fencing="monitor_interval: 0s",
                   node_extra=None, extra=""):
    """The cluster's YAML. nodes: node names n1..nN (ids and addresses follow the bed);
    vips: {name: (address, prefer list, failback)}; node_extra: {node: "key: value, ..."}."""
    devices = "".join("  %s: {%s, timeout: 20s}\n" % (n, ", ".join("%s: %s" % kv for kv in p.items()))
                      for n, p in peers.devices().items())
    lines = ""
    for n in nodes:
        i = int(n[1:])
        more = (", " + node_extra[n]) if node_extra and n in node_extra else ""
        lines += "    - {name: %s, id: %d, address: 192.0.2.%d, fencing: [[ipmi-%s]]%s}\n" % (n, i, 10 + i, n, more)
    timings = "token: %s, heartbeat_interval: 100ms, liveness_timeout: %s" % (token, liveness)
    if driver == "lease":
        timings += ", lease: %s, lease_margin: %s" % (lease, lease_margin)
    vip_lines = ""
    for vname, (addr, prefer, failback) in vips.items():
        opts = ["address: %s/24" % addr, "interface: eth0", "driver: %s" % driver]
        if prefer:
            opts.append("prefer: [%s]" % ", ".join(prefer))
        if failback:
            opts.append("failback: true")
        opts.append("garp: {count: 3, interval: 50ms}")
        vip_lines += "  %s: {%s}\n" % (vname, ", ".join(opts))
    return """cluster:
  name: %s
  mode: corosync
%s  nodes:
%s  timings: {%s}
  fencing: {%s}
fence_devices:
%svips:
%s%s""" % (name, "  quorum: {two_node: true}\n" if two_node else "", lines, timings, fencing, devices, vip_lines,
           extra)


class PoweredOff(Exception):
    """The node's power is off: nothing can be started on it."""


class HafrontCluster:
    """hafront on every node of a TestBed(mgmt=True): FencePeers (an ipmi_sim BMC per
    node), a backend per node, Corosync and hafrontd. h / coro / backend: {node: Proc or
    Hafront} of the current life of each node."""

    def __init__(self, bed, driver="lease", power_timeout=5):
        from fence_peers import FencePeers
        self.bed = bed
        self.driver = driver
        daemons.BED = bed
        self.peers = FencePeers(bed, power_timeout=power_timeout)
        if driver == "lease":
            for n in bed.nodes:
                set_lease_sysctls(n)
        self.h, self.coro, self.backend = {}, {}, {}
        self.cfg = None
        self.corosync_pids = []   # every Corosync started, for cleanup_shm()

    @contextlib.contextmanager
    def powered(self, name):
        """Hold the node's power still while starting its processes: the power model
        serializes every change of a node with an flock on nodes/<node>/.lock (see
        fence_peers.py), so a fence cannot power the node off between our look at the
        switch and the registration of what we started (which would then survive it).
        Raises PoweredOff if the node is off."""
        fd = os.open(os.path.join(self.peers.model.node_dir(name), ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                     0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if self.peers.power_state(name) != "on":
                raise PoweredOff(name)
            yield
        finally:
            os.close(fd)

    def _spawn_registered(self, name, start):
        """start() spawns one process of the node (returns its Proc), under powered()."""
        with self.powered(name):
            proc = start()
            self._register_locked(name, proc)
        return proc

    def _register_locked(self, name, proc):
        # PowerModel.register_pids takes the node's lock itself; we hold it already.
        from fence_peers import starttime
        st = starttime(proc.pid)
        if st is None:
            return
        with open(self.peers.model.pids_path(name), "a") as f:
            f.write("%d %d\n" % (proc.pid, st))

    def start_backend(self, name):
        node = self.bed.node(name)

        def start():
            self.backend[name] = node.spawn(["python3", "-c", BACKEND, name, str(BACKEND_PORT)],
                                            log_path=os.path.join(self.bed.dir, "%s-backend.log" % name))
            return self.backend[name]
        return self._spawn_registered(name, start) if self.cfg is not None else start()

    def start(self, config_text):
        for n in self.bed.nodes:
            self.start_backend(n.name)
        self.h, self.coro = start_cluster(self.bed, config_text)
        self.cfg = self.h[self.bed.nodes[0].name].config
        self.corosync_pids += [p.pid for p in self.coro.values()]
        for name in self.h:
            self.register(name)

    def register(self, name):
        """The node's processes die when its power goes off."""
        procs = [p for p in (self.h.get(name) and self.h[name].proc, self.coro.get(name), self.backend.get(name))
                 if p is not None and p.alive()]
        self.peers.register_node_pids(name, procs)

    def reap(self, name):
        for p in self.bed.node(name)._procs:
            p.popen.poll()   # reap what a power-off killed

    def start_corosync(self, name):
        def start():
            self.coro[name] = start_corosync(self.bed, self.cfg, self.bed.node(name))
            self.corosync_pids.append(self.coro[name].pid)
            return self.coro[name]
        return self._spawn_registered(name, start)

    def start_hafrontd(self, name, wait=True, timeout=15.0):
        """Start the node's hafrontd; with wait, until its admin socket answers (False if
        it exited or did not answer in time)."""
        def start():
            self.h[name] = Hafront(self.bed, self.bed.node(name), config=self.cfg).start(wait=False)
            return self.h[name].proc
        self._spawn_registered(name, start)
        if not wait:
            return True
        x = self.h[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not x.proc.alive():
                return False
            if x.answers():
                return True
            time.sleep(0.05)
        return False

    def boot(self, name):
        """What the node's init does once its power is on: backend, Corosync, hafrontd.
        Raises PoweredOff if a fence switched it off again meanwhile."""
        self.reap(name)
        self.start_backend(name)
        self.start_corosync(name)
        return self.start_hafrontd(name)

    def power_on_and_boot(self, name):
        self.peers.set_power(name, True)
        return self.boot(name)

    def status(self, name):
        """hafrontctl status --json of a running daemon, or None."""
        x = self.h.get(name)
        if x is None or x.proc is None or not x.proc.alive() or x.proc.state() in ("T", "t"):
            return None
        try:
            r = x.call("status", "--json")
            return json.loads(r.stdout) if r.returncode == 0 else None
        except (subprocess.SubprocessError, ValueError, OSError):
            return None

    def fence_history(self, name):
        x = self.h.get(name)
        if x is None or x.proc is None or not x.proc.alive() or x.proc.state() in ("T", "t"):
            return None
        try:
            r = x.call("fence-history", "--json")
            return json.loads(r.stdout)["history"] if r.returncode == 0 else None
        except (subprocess.SubprocessError, ValueError, KeyError, OSError):
            return None

    def fence_confirmed(self, victim, since_mono, exclude=()):
        """A daemon other than the victim's has a confirmed fence ("off") of victim that
        finished at or after since_mono."""
        t0_wall = since_mono + time.time() - time.monotonic()
        for name in self.h:
            if name == victim or name in exclude:
                continue
            hist = self.fence_history(name) or []
            if any(e["target"] == victim and e["result"] == "off" and e["finished_ms"] / 1000.0 >= t0_wall - 0.002
                   for e in hist):
                return True
        return False

    def power_off_events(self, name, since_mono):
        return [e for e in self.peers.power_events(name) if e["to"] == "off" and e["mono_killed"] >= since_mono]


# ------------------------------------------------------------------------------ binaries, logs
def snapshot_binaries(folder):
    """Run private copies of hafrontd and hafrontctl: build/ may be relinked during a long
    run (a half-written binary cannot be executed). Waits until both are complete."""
    import corosync_cluster_lib
    for name, var in (("hafrontd", "HAFRONTD"), ("hafrontctl", "HAFRONTCTL")):
        src = os.environ[var]
        dst = os.path.join(folder, name)
        deadline = time.monotonic() + 600
        while True:
            try:
                st = os.stat(src)
                if time.time() - st.st_mtime > 5:
                    shutil.copy2(src, dst)
                    if os.stat(src).st_mtime == st.st_mtime and \
                            subprocess.run([dst, "--help"], capture_output=True, timeout=10).returncode == 0:
                        break
            except (OSError, subprocess.SubprocessError):
                pass
            if time.monotonic() > deadline:
                sys.exit("%s stayed unusable for 10 minutes" % src)
            time.sleep(2)
        os.environ[var] = dst
    daemons.HAFRONTD = os.environ["HAFRONTD"]
    daemons.HAFRONTCTL = corosync_cluster_lib.HAFRONTCTL = os.environ["HAFRONTCTL"]


def save_logs(bed, folder):
    """Copy the run folder's regular files (not sockets) for later reading."""
    for base, dirs, files in os.walk(bed.dir):
        for f in files:
            src = os.path.join(base, f)
            if not os.path.isfile(src) or os.path.islink(src):
                continue
            dst = os.path.join(folder, os.path.relpath(src, bed.dir))
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            try:
                shutil.copy2(src, dst)
            except OSError:
                pass


# hafrontd's log lines: "2026-12-07T17:31:40.266 info text" (local time, ms).
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}) (.*)$")


def log_wall_time(stamp):
    """time.time() seconds of a hafrontd log timestamp."""
    return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f").timestamp()

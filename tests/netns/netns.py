"""Multi-node network-namespace test bed for hafront (VIP failover, Corosync, fencing,
chaos tests).

    from netns import TestBed

    with TestBed(nodes=3) as bed:                  # SKIPs (exit 77) if not root
        n1, n2, n3 = bed.nodes
        srv = n2.spawn([sys.executable, "-u", "-m", "http.server", "-b", n2.ip4, "8000"])
        assert bed.client.tcp_connect(n2.ip4, 8000) == "ok"
        n2.link_down()                             # carrier loss on n2's bridge port
        with bed.observer(vips=["192.0.2.100"]) as obs:
            ...
            assert obs.macs_answering_at_once("192.0.2.100") <= 1

Layout (every name carries the owning process's pid, e.g. "hft4242-n1"):

    hft<pid>-br      bridge namespace: Linux bridge br0, one veth port per member,
                     named like the member ("n1", "n2", ..., "client")
    hft<pid>-n<i>    node i: eth0 = 192.0.2.(10+i)/24, 2001:db8:77::(10+i)/64,
                     MAC 02:00:00:00:00:<i in hex>, lo up
    hft<pid>-client  the client: eth0 = 192.0.2.200/24, 2001:db8:77::200/64,
                     MAC 02:00:00:00:00:c8

With TestBed(mgmt=True), a separate management network (BMCs, PDUs):

    hft<pid>-mbr     management bridge namespace: bridge "mgmt", one veth port per
                     node ("n1", ...) and one for the BMC host ("bmc")
    hft<pid>-bmc     bed.mgmt, where BMC/PDU simulators run: mgmt0 = 198.51.100.1/24,
                     plus one address per simulated device (bed.bmc_addr_add())
    (every node)     mgmt0 = 198.51.100.(10+i)/24, MAC 02:00:00:01:00:<i in hex>
    Data-network faults (link_down, partition, bed.partition, heal) never touch it;
    node.mgmt_link_down() / bed.bmc_addr_down(ip) are its own faults.

Everything is torn down on close(), on with-block exit, at interpreter exit, on
SIGTERM/SIGINT/SIGHUP (handlers restore the previous disposition and re-raise), and for
a test that was SIGKILLed, by cleanup_stale(), which every new TestBed runs first.
Processes are only ever killed by pid / process group, never by name.

Standard library only. Read README.md next to this file for the full tour.
"""
import atexit
import bisect
import contextlib
import fcntl
import ipaddress
import itertools
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

__all__ = ["TestBed", "Node", "Proc", "Observer", "cleanup_stale", "stale_cleanup_lock",
           "require_netns",
           "netns_unavailable_reason", "skip", "SKIP_RETURN_CODE", "WIRE", "PYTHON"]

HERE = os.path.dirname(os.path.abspath(__file__))
WIRE = os.path.join(HERE, "wire.py")
PYTHON = sys.executable or "python3"
SKIP_RETURN_CODE = 77
BRIDGE = "br0"
NETNS_DIR = "/run/netns"
V4_PREFIX, V6_PREFIX = "192.0.2.", "2001:db8:77::"
CLIENT_HOST = 200
MGMT_PREFIX = "198.51.100."   # management network (TestBed(mgmt=True)), IPv4 only
MGMT_BRIDGE = "mgmt"
MGMT_IFACE = "mgmt0"
BMC_HOST = 1                  # the bmc namespace's own address: 198.51.100.1
MAX_NODES = 60

_NS_RE = re.compile(r"^hft(\d+)-")
_DIR_RE = re.compile(r"^hft(\d+)-(\d+)-")  # run folder: hft<pid>-<starttime>-XXXXXX
_beds = []                # open TestBeds of this process
_bed_seq = itertools.count()
_handlers = {}            # signal -> previous handler, while ours are installed
_glock = threading.RLock()


class Unavailable(Exception):
    """Network namespaces (or veth/bridge) cannot be used here: a SKIP, not a failure."""


class Error(Exception):
    """Something the test bed was asked to do failed."""


# ----------------------------------------------------------------------------- skip
def netns_unavailable_reason():
    """Why this machine/process cannot build a bed, or None if it (probably) can."""
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux (this is %s)" % sys.platform
    if os.geteuid() != 0:
        return "network namespaces need root (running as uid %d)" % os.geteuid()
    if not os.path.exists("/proc/self/ns/net"):
        return "kernel has no network namespace support (/proc/self/ns/net missing)"
    if shutil.which("ip") is None:
        return "iproute2's 'ip' command is not installed"
    return None


def skip(reason):
    """Print the ctest SKIP line and exit 77."""
    print("SKIP: %s" % reason, flush=True)
    sys.exit(SKIP_RETURN_CODE)


def require_netns():
    """Exit 77 with a SKIP line if network namespaces cannot be used here."""
    reason = netns_unavailable_reason()
    if reason:
        skip(reason)


_UNAVAILABLE_PATTERNS = ("Operation not permitted", "Permission denied",
                         "Function not implemented", "Operation not supported",
                         "Not supported", "Unknown device type")


# ----------------------------------------------------------------------------- low level
def _run(argv, input=None, check=True, timeout=30):
    r = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise Error("%s failed (exit %d): %s" % (" ".join(argv), r.returncode,
                                                  (r.stderr or r.stdout).strip()))
    return r


def _ip_batch(lines, ns=None, force=False, check=True):
    argv = ["ip"] + (["-n", ns] if ns else []) + (["-force"] if force else []) + ["-batch", "-"]
    return _run(argv, input="\n".join(lines) + "\n", check=check)


def _proc_stat(pid):
    """(state, starttime) of a pid from /proc/PID/stat, or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    rest = s[s.rindex(")") + 2:].split()
    return rest[0], int(rest[19])


def _starttime(pid):
    st = _proc_stat(pid)
    return st[1] if st else None


def _wait_stopped(pids, timeout=2.0):
    """Wait until each (pid, starttime) is in stopped state 'T' (or gone/replaced)."""
    deadline = time.monotonic() + timeout
    pending = list(pids)
    while pending:
        still = []
        for pid, st in pending:
            s = _proc_stat(pid)
            if s and s[1] == st and s[0] not in ("T", "t", "Z", "X"):
                still.append((pid, st))
        pending = still
        if not pending or time.monotonic() > deadline:
            return not pending
        time.sleep(0.001)
    return True


def _pid_alive(pid):
    st = _proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def _ns_ids(names):
    """{(st_dev, st_ino): name} for existing /run/netns entries."""
    ids = {}
    for n in names:
        try:
            st = os.stat(os.path.join(NETNS_DIR, n))
        except OSError:
            continue
        ids[(st.st_dev, st.st_ino)] = n
    return ids


def _pids_in_netns(names):
    """{pid: ns name} of every process living in one of these namespaces (what `ip netns
    pids NS` does, for many namespaces in one pass over /proc)."""
    ids = _ns_ids(names)
    found = {}
    if not ids:
        return found
    me = os.getpid()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        try:
            st = os.stat("/proc/%s/ns/net" % d)
        except OSError:
            continue
        n = ids.get((st.st_dev, st.st_ino))
        if n is not None:
            found[int(d)] = n
    return found


def _kill_ns_processes(names, exclude=(), timeout=3.0):
    """SIGKILL every process inside these namespaces (by pid) and wait until they are
    gone. Returns the pids killed."""
    killed = set()
    deadline = time.monotonic() + timeout
    while True:
        pids = {p: n for p, n in _pids_in_netns(names).items() if p not in exclude}
        alive = {p for p in pids if _pid_alive(p)}
        if not alive:
            return killed
        for p in alive:
            try:
                os.kill(p, signal.SIGKILL)
                killed.add(p)
            except ProcessLookupError:
                pass
        _reap_children()
        if time.monotonic() > deadline:
            raise Error("processes still alive in %s after SIGKILL: %s" % (names, sorted(alive)))
        time.sleep(0.01)


def _reap_children():
    """Reap exited children spawned by the bed (tracked Popen objects)."""
    for bed in list(_beds):
        for node in bed._all_members():
            for p in list(node._procs):
                p.popen.poll()


def _list_netns():
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def _owner_starttimes(pid):
    """Start times recorded in run folders of this pid (to tell a live owner from an
    unrelated process that reused the pid)."""
    out = set()
    tmp = tempfile.gettempdir()
    try:
        entries = os.listdir(tmp)
    except OSError:
        return out
    for d in entries:
        m = _DIR_RE.match(d)
        if m and int(m.group(1)) == pid:
            out.add(int(m.group(2)))
    return out


def _owner_alive(pid):
    if not _pid_alive(pid):
        return False
    recorded = _owner_starttimes(pid)
    return not recorded or _starttime(pid) in recorded


@contextlib.contextmanager
def stale_cleanup_lock():
    """Hold off cleanup_stale() in every process while the block runs (an flock on
    /run/netns). Only needed by tests that look at another test's leftovers on purpose.
    Do not create a TestBed inside the block: that would wait for the lock forever."""
    try:
        fd = os.open(NETNS_DIR, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def cleanup_stale(verbose=False):
    """Delete namespaces named hft<pid>-... whose owning process is gone (e.g. a test
    that was SIGKILLed): kill the processes still inside them (by pid), delete the
    namespaces, remove the run folders. Namespaces of live tests are left alone; so
    are namespaces of this very process that belong to an open TestBed. Returns the
    names of the namespaces removed."""
    with _glock, stale_cleanup_lock():
        return _cleanup_stale(verbose)


def _cleanup_stale(verbose):
    me = os.getpid()
    mine = set()
    my_dirs = set()
    for bed in _beds:
        if not bed._closed:
            mine.update(bed.namespaces)
            my_dirs.add(os.path.basename(bed.dir))
    stale = []
    verdict = {}
    for n in _list_netns():
        m = _NS_RE.match(n)
        if not m:
            continue
        pid = int(m.group(1))
        if pid == me:
            if n not in mine:
                stale.append(n)
            continue
        if pid not in verdict:
            verdict[pid] = _owner_alive(pid)
        if not verdict[pid]:
            stale.append(n)
    if stale:
        if verbose:
            print("netns: removing stale namespaces %s" % " ".join(stale), flush=True)
        _kill_ns_processes(stale)
        _ip_batch(["netns del %s" % n for n in stale], force=True, check=False)
    tmp = tempfile.gettempdir()
    try:
        entries = os.listdir(tmp)
    except OSError:
        entries = []
    for d in entries:
        m = _DIR_RE.match(d)
        if not m or not os.path.isdir(os.path.join(tmp, d)):
            continue
        pid, start = int(m.group(1)), int(m.group(2))
        if pid == me:
            gone = d not in my_dirs
        else:
            gone = not _pid_alive(pid) or _starttime(pid) != start
        if gone:
            shutil.rmtree(os.path.join(tmp, d), ignore_errors=True)
    return stale


# ----------------------------------------------------------------------------- signals
def _close_all(reason=""):
    if not _beds:
        return
    for bed in list(_beds):
        if bed._owner == os.getpid():
            try:
                bed.close()
            except Exception as e:  # keep going: other beds still need cleaning
                print("netns: cleanup of %s failed: %s" % (bed.prefix, e), file=sys.stderr,
                      flush=True)


def _on_signal(sig, frame):
    _restore_handlers()
    _close_all("signal %d" % sig)
    signal.raise_signal(sig)


def _install_handlers():
    if _handlers or threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        prev = signal.getsignal(sig)
        if prev is None or prev == signal.SIG_IGN:
            continue  # set from C, or deliberately ignored: leave it alone
        _handlers[sig] = prev
        signal.signal(sig, _on_signal)


def _restore_handlers():
    if threading.current_thread() is not threading.main_thread():
        return
    for sig, prev in list(_handlers.items()):
        try:
            signal.signal(sig, prev)
        except (ValueError, TypeError):
            pass
        _handlers.pop(sig, None)


def _atexit():
    _close_all("exit")


atexit.register(_atexit)


# ----------------------------------------------------------------------------- Proc
class Proc:
    """A process started in a namespace by Node.spawn(). It leads its own process group
    (pgid == pid); signals go to the whole group unless group=False."""

    def __init__(self, node, argv, popen, log_path, internal=False):
        self.node = node
        self.argv = list(argv)
        self.popen = popen
        self.pid = popen.pid
        self.pgid = popen.pid
        self.log_path = log_path
        self.internal = internal
        self.started = time.monotonic()

    def __repr__(self):
        return "<Proc %d %s in %s %s>" % (self.pid, " ".join(self.argv)[:60], self.node.name,
                                          "alive" if self.alive() else
                                          "exit %s" % self.popen.returncode)

    @property
    def returncode(self):
        return self.popen.poll()

    def alive(self):
        """True until the process has exited (a stopped process is alive)."""
        return self.popen.poll() is None

    def state(self):
        """Kernel state letter from /proc/PID/stat ('S', 'R', 'T' stopped, ...), or None."""
        if self.popen.poll() is not None:
            return None
        st = _proc_stat(self.pid)
        return st[0] if st else None

    def kill(self, sig=signal.SIGKILL, group=True):
        """Send sig to the process group (or only the process). False if already gone.
        Only while the leader is unreaped, so the pgid cannot have been reused."""
        if self.popen.poll() is not None:
            return False
        try:
            if group:
                os.killpg(self.pgid, sig)
            else:
                os.kill(self.pid, sig)
            return True
        except ProcessLookupError:
            return False

    def stop(self, wait=True):
        """SIGSTOP the process group; by default return once the process is stopped
        (stopping is asynchronous: the target has to run to stop)."""
        sent = self.kill(signal.SIGSTOP)
        if sent and wait:
            _wait_stopped([(self.pid, _starttime(self.pid))])
        return sent

    def cont(self):
        """SIGCONT the process group."""
        return self.kill(signal.SIGCONT)

    def terminate(self, timeout=5.0):
        """SIGTERM (and SIGCONT, so a stopped process can act on it), then SIGKILL after
        timeout seconds. Returns the exit status (negative: killed by that signal)."""
        if self.kill(signal.SIGTERM):
            self.kill(signal.SIGCONT)
            try:
                return self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill(signal.SIGKILL)
        return self.popen.wait()

    def wait(self, timeout=None):
        """Wait for exit; returns the exit status. Raises subprocess.TimeoutExpired."""
        return self.popen.wait(timeout)

    def log_text(self):
        """Everything the process wrote to stdout/stderr so far ('' if not logged)."""
        if not self.log_path:
            return ""
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_log(self, text, timeout=10.0):
        """Wait until text (a str, or a compiled regex) appears in the log. Returns the
        match (regex) or True. Raises Error with the log tail on timeout or exit."""
        deadline = time.monotonic() + timeout
        while True:
            log = self.log_text()
            if isinstance(text, str):
                if text in log:
                    return True
            else:
                m = text.search(log)
                if m:
                    return m
            if not self.alive():
                raise Error("%r exited (%s) before printing %r; log:\n%s"
                            % (self, self.returncode, text, log[-2000:]))
            if time.monotonic() > deadline:
                raise Error("timed out waiting for %r in log of %r; log:\n%s"
                            % (text, self, log[-2000:]))
            time.sleep(0.01)


# ----------------------------------------------------------------------------- Agent
class _Agent:
    """wire.py agent running in a namespace: JSON requests over a pipe."""

    def __init__(self, node):
        self.node = node
        self.lock = threading.Lock()
        self.buf = b""
        self.ids = itertools.count(1)
        self.ready = False
        self.proc = node._spawn([PYTHON, "-I", "-S", WIRE, "agent"],
                                log_path=os.path.join(node.bed.dir, "%s-agent.log" % node.name),
                                pipes=True, internal=True)

    def _readline(self, timeout):
        fd = self.proc.popen.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Error("wire agent in %s did not answer within %.1fs"
                            % (self.node.name, timeout))
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise Error("wire agent in %s died: %s" % (self.node.name,
                                                               self.proc.log_text()[-1000:]))
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def call(self, op, op_seconds=1.0, **kw):
        """Run op in the agent with keyword arguments kw; op_seconds is how long the
        op itself may take (the answer is awaited 5 s longer)."""
        with self.lock:
            if not self.ready:
                hello = self._readline(15.0)
                if not hello.get("ready"):
                    raise Error("wire agent in %s: bad greeting %r" % (self.node.name, hello))
                self.ready = True
            rid = next(self.ids)
            req = dict(kw, op=op, id=rid)
            try:
                self.proc.popen.stdin.write((json.dumps(req) + "\n").encode())
                self.proc.popen.stdin.flush()
            except (BrokenPipeError, ValueError):
                raise Error("wire agent in %s is gone: %s" % (self.node.name,
                                                              self.proc.log_text()[-1000:]))
            res = self._readline(op_seconds + 5.0)
            if res.get("id") != rid:
                raise Error("wire agent in %s: answer out of order: %r" % (self.node.name, res))
            if not res.get("ok"):
                raise Error("wire agent in %s: %s failed: %s" % (self.node.name, op,
                                                                  res.get("error")))
            return res["result"]

    def close(self):
        try:
            self.proc.popen.stdin.close()
        except Exception:
            pass
        self.proc.kill()
        try:
            self.proc.wait(2)
        except subprocess.TimeoutExpired:
            pass
        try:
            self.proc.popen.stdout.close()
        except Exception:
            pass


# ----------------------------------------------------------------------------- Node
class Node:
    """One namespace on the bed's bridge: a node (n1..nN) or the client."""

    def __init__(self, bed, name, index, host):
        self.bed = bed
        self.name = name
        self.index = index                  # 1..N for nodes, 0 for the client
        self.ns = bed.prefix + name
        self.port = name                    # its veth port in the bridge namespace
        self.iface = "eth0"
        self.ip4 = V4_PREFIX + str(host)
        self.ip6 = (V6_PREFIX + str(host)) if bed.ipv6 else None
        mac_id = index if index else host  # n<i>: 02:00:00:00:00:0<i>; client: ...:c8
        self.mac = "02:00:00:00:%02x:%02x" % (mac_id >> 8, mac_id & 0xFF)
        # Management network (TestBed(mgmt=True)): nodes get a second interface mgmt0.
        self.mgmt_iface = None
        self.mgmt_ip4 = None
        self.mgmt_mac = None
        self.mgmt_port = None               # its veth port in the management bridge ns
        self._procs = []
        self._agent = None
        self._paused = []                   # (pid, starttime) stopped by pause()
        self.binds = {}                     # default binds for spawn()/run(): target -> source
        self._seq = itertools.count(1)

    def __repr__(self):
        return "<Node %s ns=%s %s %s>" % (self.name, self.ns, self.ip4, self.mac)

    # ------------------------------------------------------------------ processes
    def _argv(self, argv, binds=None):
        if isinstance(argv, str):
            argv = ["sh", "-c", argv]
        argv = [str(a) for a in argv]
        allb = dict(self.binds)
        allb.update(binds or {})
        if not allb:
            return argv
        # `ip netns exec` runs the command in a private (slave) mount namespace; bind
        # mounts made there are invisible to the host. exec keeps the pid.
        pairs = []
        for target, source in allb.items():
            pairs += [str(source), str(target)]
        script = ('while [ "$1" != -- ]; do mount --bind "$1" "$2" || exit 126; shift 2; '
                  'done; shift; exec "$@"')
        return ["sh", "-c", script, "bind"] + pairs + ["--"] + argv

    def _spawn(self, argv, log_path=None, env=None, cwd=None, pipes=False, internal=False,
               binds=None):
        argv = [str(a) for a in argv] if internal else self._argv(argv, binds)
        if log_path is None:
            base = re.sub(r"[^A-Za-z0-9_.-]", "_", os.path.basename(argv[0]))[:40]
            log_path = os.path.join(self.bed.dir, "%s-%d-%s.log" % (self.name, next(self._seq),
                                                                   base))
        full_env = None
        if env is not None:
            full_env = dict(os.environ)
            full_env.update({k: str(v) for k, v in env.items()})
        log = open(log_path, "ab")
        try:
            popen = subprocess.Popen(
                ["ip", "netns", "exec", self.ns] + argv,
                stdin=subprocess.PIPE if pipes else subprocess.DEVNULL,
                stdout=subprocess.PIPE if pipes else log,
                stderr=log, env=full_env, cwd=cwd, start_new_session=True)
        finally:
            log.close()
        p = Proc(self, argv, popen, log_path, internal=internal)
        self._procs.append(p)
        return p

    def spawn(self, argv, log_path=None, env=None, cwd=None, binds=None):
        """Start argv (a list, or a str run by sh -c) inside this namespace, in its own
        process group, stdout+stderr to log_path (default: a file in the run folder).
        env: extra environment variables on top of the inherited ones.
        binds: {path seen by the process: host path} bind-mounted for this process only
        (e.g. {"/run": node_dir + "/run"} for daemons with hard-coded pid files); added
        to node.binds. Returns a Proc whose pid is the command's own (ip netns exec and
        the bind wrapper exec). Killed at cleanup."""
        if self.bed._closed:
            raise Error("bed is closed")
        return self._spawn(argv, log_path=log_path, env=env, cwd=cwd, binds=binds)

    def run(self, argv, check=True, timeout=30, input=None, env=None, binds=None):
        """Run a short command inside the namespace; returns CompletedProcess (text).
        argv: a list, or a str run by sh -c. env, binds: as for spawn()."""
        full_env = None
        if env is not None:
            full_env = dict(os.environ)
            full_env.update({k: str(v) for k, v in env.items()})
        argv = self._argv(argv, binds)
        r = subprocess.run(["ip", "netns", "exec", self.ns] + argv, input=input,
                           capture_output=True, text=True, timeout=timeout, env=full_env)
        if check and r.returncode != 0:
            raise Error("%s: %s failed (exit %d): %s" % (self.name, " ".join(argv),
                                                         r.returncode,
                                                         (r.stderr or r.stdout).strip()))
        return r

    @property
    def procs(self):
        """Processes spawned here by the test (not the bed's own helpers)."""
        return [p for p in self._procs if not p.internal]

    def pids(self):
        """Every pid living in this namespace right now."""
        return sorted(_pids_in_netns([self.ns]))

    # ------------------------------------------------------------------ configuration
    def ip(self, args, check=True, json_out=False):
        """Run `ip -n NS ARGS` (args: str or list). Returns stdout, or parsed JSON."""
        if isinstance(args, str):
            args = args.split()
        r = _run(["ip", "-n", self.ns] + (["-j"] if json_out else []) + list(args),
                 check=check)
        if json_out:
            return json.loads(r.stdout or "[]")
        return r.stdout

    def addr_add(self, cidr, dev=None):
        """Add an address (IPv6 gets nodad: usable at once). dev: default eth0 (mgmt0
        on bed.mgmt)."""
        extra = ["nodad"] if ":" in cidr else []
        self.ip(["addr", "add", cidr, "dev", dev or self.iface] + extra)

    def addr_del(self, cidr, dev=None):
        self.ip(["addr", "del", cidr, "dev", dev or self.iface])

    def addrs(self, dev=None):
        """['192.0.2.11/24', '2001:db8:77::11/64', ...] on dev (default eth0)."""
        out = []
        for link in self.ip(["addr", "show", "dev", dev or self.iface], json_out=True):
            for a in link.get("addr_info", []):
                out.append("%s/%s" % (a["local"], a["prefixlen"]))
        return out

    def sysctl(self, key, value=None):
        """Read (value=None) or write a sysctl inside this namespace only, e.g.
        node.sysctl("net.ipv4.conf.eth0.arp_ignore", 1). Returns the value read back."""
        path = "/proc/sys/" + key.replace(".", "/")
        if value is None:
            return self.run(["cat", path]).stdout.strip()
        r = self.run(["sh", "-c", 'echo "$1" > "$2" && cat "$2"', "sh", str(value), path])
        return r.stdout.strip()

    def carrier(self, dev=None):
        """True if dev (default eth0) sees a carrier (its veth peer is up)."""
        info = self.ip(["link", "show", "dev", dev or self.iface], json_out=True)
        return bool(info) and "LOWER_UP" in info[0].get("flags", [])

    # ------------------------------------------------------------------ faults
    def link_down(self):
        """Carrier loss: take the bridge-side veth down (eth0 shows NO-CARRIER)."""
        self.bed._port(self, up=False)

    def link_up(self):
        self.bed._port(self, up=True)

    def partition(self):
        """Cut this member off: detach its port from the bridge. The carrier stays up,
        so the node sees a silent network rather than a dead link."""
        self.bed._port(self, master=None)

    def heal(self):
        """Re-attach to the main bridge (undoes partition() and bed.partition())."""
        self.bed._port(self, master=BRIDGE)

    def _mgmt_port_set(self, up):
        if self.mgmt_port is None:
            raise Error("%s has no management interface (TestBed(mgmt=True))" % self.name)
        _ip_batch(["link set %s %s" % (self.mgmt_port, "up" if up else "down")],
                  ns=self.bed.mgmt_bridge_ns)

    def mgmt_link_down(self):
        """Carrier loss on the management network only: this member's port on the
        management bridge goes down (mgmt0 shows NO-CARRIER; on bed.mgmt, every
        simulated BMC/PDU becomes unreachable at once)."""
        self._mgmt_port_set(False)

    def mgmt_link_up(self):
        self._mgmt_port_set(True)

    def pause(self):
        """Freeze the whole node: SIGSTOP every process group spawned here and every
        other process found inside the namespace (the bed's own helpers excepted)."""
        helpers = {p.pid for p in self._procs if p.internal}
        stopped = []
        for p in self.procs:
            if p.stop(wait=False):
                stopped.append((p.pid, _starttime(p.pid)))
        done = {pid for pid, _ in stopped}
        for pid in _pids_in_netns([self.ns]):
            if pid in helpers or pid in done:
                continue
            st = _starttime(pid)
            try:
                os.kill(pid, signal.SIGSTOP)
                stopped.append((pid, st))
            except ProcessLookupError:
                pass
        self._paused.extend(stopped)
        if not _wait_stopped(stopped):
            raise Error("%s: processes did not stop within 2 s" % self.name)
        return [pid for pid, _ in stopped]

    def resume(self):
        """SIGCONT everything pause() stopped (and every spawned process group)."""
        for p in self.procs:
            p.cont()
        for pid, st in self._paused:
            if st is not None and _starttime(pid) == st:
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
        self._paused = []

    # ------------------------------------------------------------------ observation
    def agent(self):
        """The long-lived wire.py helper in this namespace (started on first use)."""
        with _glock:
            if self._agent is None:
                if self.bed._closed:
                    raise Error("bed is closed")
                self._agent = _Agent(self)
            return self._agent

    def neigh(self, ip, dev=None):
        """MAC this namespace's kernel has for ip (`ip -j neigh`), or None."""
        for e in self.ip(["neigh", "show", "to", ip, "dev", dev or self.iface],
                         json_out=True):
            states = e.get("state", [])
            if e.get("lladdr") and not {"FAILED", "INCOMPLETE"} & set(states):
                return e["lladdr"].lower()
        return None

    def flush_neigh(self, ip=None, dev=None):
        """Forget neighbour entries (all on dev, or just ip)."""
        args = ["neigh", "flush", "dev", dev or self.iface] + (["to", ip] if ip else [])
        self.ip(args)

    def who_has(self, ip, timeout=0.2):
        """Set of MACs answering an ARP request (IPv4) / neighbour solicitation (IPv6)
        sent from this namespace's eth0."""
        return set(self.agent().call("who_has", timeout, ip=ip, timeout=timeout))

    def arp_who_has(self, ip, timeout=0.2):
        if ":" in ip:
            raise ValueError("arp_who_has wants an IPv4 address, got %s" % ip)
        return self.who_has(ip, timeout)

    def ndp_who_has(self, ip6, timeout=0.2):
        if ":" not in ip6:
            raise ValueError("ndp_who_has wants an IPv6 address, got %s" % ip6)
        return self.who_has(ip6, timeout)

    def tcp_connect(self, ip, port, timeout=1.0, source=None):
        """'ok' | 'refused' | 'timeout' | 'reset' | 'unreachable' (or 'error:ENAME')."""
        return self.agent().call("tcp_connect", timeout, ip=ip, port=int(port),
                                 timeout=timeout, source=source)

    def tcp_request(self, ip, port, data=b"", timeout=2.0, source=None):
        """Connect, send data, read until the peer closes or timeout.
        Returns (result, bytes) with result as for tcp_connect."""
        if isinstance(data, str):
            data = data.encode()
        r = self.agent().call("tcp_request", timeout, ip=ip, port=int(port), timeout=timeout,
                              data=data.decode("latin-1"), read=True, source=source)
        return r["result"], r["data"].encode("latin-1")

    def garp(self, ip, mac=None, count=1, interval_ms=0, reply=False):
        """Send gratuitous ARP for ip from eth0 (sender MAC: mac or eth0's)."""
        return self.agent().call("garp", count * interval_ms / 1000.0 + 1, ip=ip,
                                 mac=mac, count=count, interval_ms=interval_ms, reply=reply)

    def unsolicited_na(self, ip6, mac=None, count=1, interval_ms=0):
        """Send an unsolicited neighbour advertisement for ip6 to ff02::1."""
        return self.agent().call("unsolicited_na", count * interval_ms / 1000.0 + 1,
                                 ip6=ip6, mac=mac, count=count, interval_ms=interval_ms)

    def wire(self, *args, timeout=30):
        """Run `wire.py ARGS` once in this namespace; returns the parsed JSON output."""
        r = self.run([PYTHON, "-I", "-S", WIRE] + [str(a) for a in args], timeout=timeout)
        return [json.loads(l) for l in r.stdout.splitlines() if l.strip()]

    # ------------------------------------------------------------------ teardown
    def _stop_procs(self):
        if self._agent is not None:
            self._agent.close()
            self._agent = None
        for p in self._procs:
            if p.alive():
                p.kill(signal.SIGKILL)
        for p in self._procs:
            try:
                p.popen.wait(5)
            except subprocess.TimeoutExpired:
                pass
            for f in (p.popen.stdin, p.popen.stdout):
                try:
                    if f:
                        f.close()
                except Exception:
                    pass


# ----------------------------------------------------------------------------- Observer
def _canon(ip):
    try:
        return str(ipaddress.ip_address(str(ip)))
    except ValueError:
        return str(ip)


class _Series:
    """Items appended in arrival order, their times almost sorted (frames carry the
    kernel's receive time); time-range queries bisect a running maximum of the times."""

    def __init__(self):
        self.ts, self.runmax, self.items = [], [], []

    def add(self, t, item):
        self.runmax.append(t if not self.runmax or t > self.runmax[-1] else self.runmax[-1])
        self.ts.append(t)
        self.items.append(item)

    def range(self, since=None, until=None):
        i = 0 if since is None else bisect.bisect_left(self.runmax, since)
        out = [(t, it) for t, it in zip(self.ts[i:], self.items[i:])
               if (since is None or t >= since) and (until is None or t <= until)]
        out.sort(key=lambda x: x[0])
        return out


class Observer:
    """wire.py watch running in a namespace (the client by default): records every ARP
    and NA frame seen on eth0 and, if asked, probes VIPs every interval_ms.

    Timestamps are time.monotonic() seconds. An "answer" for a VIP is an ARP reply whose
    sender IP is the VIP (not gratuitous) or a solicited NA whose target is the VIP; an
    "announcement" is a gratuitous ARP or an unsolicited NA for it."""

    def __init__(self, node, vips=(), interval_ms=5.0, include_ns=False,
                 include_outgoing=False, arp_src=None):
        self.node = node
        self.bed = node.bed
        self.vips = [str(v) for v in vips]
        self.interval_ms = float(interval_ms)
        self._all = _Series()      # every event
        self._kind = {}            # kind -> _Series of events
        self._ans = {}             # ip -> _Series of answering MACs
        self._ann = {}             # ip -> _Series of announcing MACs
        self.ready = None
        self._cond = threading.Condition()
        self._eof = False
        argv = [PYTHON, "-I", "-S", WIRE, "watch", "--interval-ms", str(interval_ms)]
        for v in self.vips:
            argv += ["--probe", v]
        if include_ns:
            argv.append("--include-ns")
        if include_outgoing:
            argv.append("--include-outgoing")
        if arp_src:
            argv += ["--arp-src", arp_src]
        self.proc = node._spawn(argv, log_path=os.path.join(
            self.bed.dir, "%s-observer-%d.log" % (node.name, next(node._seq))),
            pipes=True, internal=True)
        self.proc.popen.stdin.close()
        self._thread = threading.Thread(target=self._reader, daemon=True,
                                        name="observer-%s" % node.name)
        self._thread.start()
        self._wait_ready(15.0)
        self.started = self.ready["t"]
        self.bed._observers.append(self)

    def _reader(self):
        f = self.proc.popen.stdout
        for line in f:
            try:
                ev = json.loads(line)
                t = ev["t"]
            except (ValueError, KeyError, TypeError):
                continue
            k = ev.get("kind")
            with self._cond:
                if k == "ready":
                    self.ready = ev
                    self._cond.notify_all()
                    continue
                self._record(t, k, ev)
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def _record(self, t, k, ev):
        """Keeps one event (under the lock): every event, and per VIP address the MACs that
        answered and the ones that announced."""
        self._all.add(t, ev)
        self._kind.setdefault(k, _Series()).add(t, ev)
        self._record_arp(t, k, ev)

    def _record_arp(self, t, k, ev):
        if ev.get("outgoing") or k not in ("arp", "na"):
            return
        ip = ev["sender_ip"] if k == "arp" else ev["target_ip"]
        if ev["is_reply"] and not (k == "arp" and ev["is_gratuitous"]):
            self._ans.setdefault(ip, _Series()).add(t, ev["sender_mac"])
        if ev["is_gratuitous"]:
            self._ann.setdefault(ip, _Series()).add(t, ev["sender_mac"])

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.ready is None:
                left = deadline - time.monotonic()
                if self._eof or left <= 0:
                    raise Error("observer in %s did not start: %s"
                                % (self.node.name, self.proc.log_text()[-1500:]))
                self._cond.wait(left)
            return self.ready

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    # ------------------------------------------------------------------ queries
    def events(self, kind=None, since=None, until=None):
        """Recorded events (dicts, sorted by "t"), optionally filtered by kind
        ("arp", "na", "ns", "probe") and time."""
        with self._cond:
            series = self._all if kind is None else self._kind.get(kind)
            return [e for _, e in series.range(since, until)] if series else []

    def answers(self, vip, since=None, until=None):
        """[(t, mac)] of every answer for vip: ARP replies (not gratuitous) whose sender
        IP is vip, and solicited NAs whose target is vip."""
        with self._cond:
            series = self._ans.get(_canon(vip))
            return series.range(since, until) if series else []

    def announcements(self, vip, since=None, until=None):
        """[(t, mac)] of gratuitous ARPs / unsolicited NAs for vip."""
        with self._cond:
            series = self._ann.get(_canon(vip))
            return series.range(since, until) if series else []

    def macs(self, vip, since=None, until=None, include_gratuitous=False):
        """Set of MACs that answered (or announced) vip in the time range."""
        out = {m for _, m in self.answers(vip, since, until)}
        if include_gratuitous:
            out |= {m for _, m in self.announcements(vip, since, until)}
        return out

    def probes(self, since=None, until=None):
        """Times of the probe rounds."""
        return [e["t"] for e in self.events("probe", since, until)]

    def macs_answering_at_once(self, vip, window_ms=None, since=None, until=None,
                               include_gratuitous=False):
        """The two-holders detector: the largest number of distinct MACs that answered
        vip within one probe round (window_ms=None: answers are grouped by the probe
        round they follow) or within any sliding window of window_ms."""
        return max([len(m) for _, m in self._groups(vip, window_ms, since, until,
                                                     include_gratuitous)] or [0])

    def overlaps(self, vip, window_ms=None, since=None, until=None, include_gratuitous=False):
        """[(t, {macs})] for every round/window in which more than one MAC answered."""
        return [(t, m) for t, m in self._groups(vip, window_ms, since, until,
                                                include_gratuitous) if len(m) > 1]

    def _groups(self, vip, window_ms, since, until, include_gratuitous):
        ans = self.answers(vip, since, until)
        if include_gratuitous:
            ans = sorted(ans + self.announcements(vip, since, until))
        if not ans:
            return []
        if window_ms is None:
            probes = self.probes(since, until)
            if probes:
                rounds = {}
                for t, m in ans:
                    i = bisect.bisect_right(probes, t) - 1
                    rounds.setdefault(i, (probes[i] if i >= 0 else t, set()))[1].add(m)
                return sorted(rounds.values(), key=lambda x: x[0])
            window_ms = self.interval_ms
        w = window_ms / 1000.0
        out = []
        j = 0
        for i, (t, _) in enumerate(ans):
            while ans[j][0] < t - w:
                j += 1
            out.append((ans[j][0], {m for _, m in ans[j:i + 1]}))
        return out

    def first_answer_from(self, vip, mac, after_t=None):
        """Time of the first answer for vip from mac (a MAC or a Node) at/after after_t,
        or None."""
        mac = self.bed._mac(mac)
        for t, m in self.answers(vip, since=after_t):
            if m == mac:
                return t
        return None

    def last_answer_from(self, vip, mac, before_t=None):
        mac = self.bed._mac(mac)
        found = None
        for t, m in self.answers(vip, until=before_t):
            if m == mac:
                found = t
        return found

    def longest_silence(self, vip, since=None, until=None):
        """(start, end, seconds) of the longest stretch without any answer for vip
        between since (default: observer start) and until (default: now)."""
        lo = self.started if since is None else since
        hi = time.monotonic() if until is None else until
        ts = [lo] + [t for t, _ in self.answers(vip, lo, hi)] + [hi]
        best = (lo, lo, 0.0)
        for a, b in zip(ts, ts[1:]):
            if b - a > best[2]:
                best = (a, b, b - a)
        return best

    def wait_for(self, predicate, timeout=2.0, what="condition"):
        """Wait until predicate(observer) is truthy; returns its value. Raises Error."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                v = predicate(self)
                if v:
                    return v
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Error("observer: timed out after %.1fs waiting for %s"
                                % (timeout, what))
                if self._eof:
                    raise Error("observer exited: %s" % self.proc.log_text()[-1500:])
                self._cond.wait(min(left, 0.01))

    def wait_answer(self, vip, mac=None, after=None, timeout=2.0):
        """Wait for an answer for vip (from mac, if given) at/after `after`; returns t."""
        mac = self.bed._mac(mac) if mac is not None else None

        def pred(o):
            for t, m in o.answers(vip, since=after):
                if mac is None or m == mac:
                    return t
            return None
        return self.wait_for(pred, timeout, "an answer for %s from %s" % (vip, mac or "anyone"))

    def wait_announcement(self, vip, mac=None, after=None, timeout=2.0):
        mac = self.bed._mac(mac) if mac is not None else None

        def pred(o):
            for t, m in o.announcements(vip, since=after):
                if mac is None or m == mac:
                    return t
            return None
        return self.wait_for(pred, timeout,
                             "an announcement for %s from %s" % (vip, mac or "anyone"))

    def stop(self):
        """Stop sniffing/probing; the recorded events stay available."""
        if self.proc.alive():
            self.proc.kill(signal.SIGTERM)
            try:
                self.proc.wait(2)
            except subprocess.TimeoutExpired:
                self.proc.kill(signal.SIGKILL)
                self.proc.wait()
        self._thread.join(2)
        try:
            self.proc.popen.stdout.close()
        except Exception:
            pass


# ----------------------------------------------------------------------------- TestBed
class TestBed:
    """N node namespaces and a client namespace on one bridge. See the module doc.

    nodes: 1..60. ipv6: give eth0s their 2001:db8:77::/64 addresses too.
    mgmt: also build a separate management network (bridge in its own namespace
    hft<pid>-mbr): a BMC host namespace bed.mgmt (hft<pid>-bmc, mgmt0 = 198.51.100.1/24)
    for BMC/PDU simulators, and a second interface mgmt0 = 198.51.100.(10+i)/24 in every
    node (not the client). Data-network faults never touch it.
    log_dir: copy the run folder (process logs, anything the test put in bed.dir) there
    at close(); default $HAFRONT_NETNS_LOGS/<prefix> if that variable is set, else the
    logs go away with the run folder. skip_if_unavailable: print SKIP and exit 77 when
    namespaces cannot be used (not root, no netns/veth/bridge); False raises Unavailable.
    """

    def __init__(self, nodes=3, ipv6=True, log_dir=None, skip_if_unavailable=True,
                 mgmt=False):
        if not 1 <= nodes <= MAX_NODES:
            raise ValueError("nodes must be 1..%d" % MAX_NODES)
        reason = netns_unavailable_reason()
        if reason:
            if skip_if_unavailable:
                skip(reason)
            raise Unavailable(reason)
        self._owner = os.getpid()
        self._closed = False
        self.ipv6 = ipv6
        cleanup_stale()
        seq = next(_bed_seq)
        self.prefix = "hft%d-" % self._owner if seq == 0 else "hft%d-%d-" % (self._owner, seq)
        self.dir = None
        if log_dir is None and os.environ.get("HAFRONT_NETNS_LOGS"):
            log_dir = os.path.join(os.environ["HAFRONT_NETNS_LOGS"], self.prefix.rstrip("-"))
        self.log_dir = log_dir
        self.bridge_ns = self.prefix + "br"
        self.nodes = [Node(self, "n%d" % i, i, 10 + i) for i in range(1, nodes + 1)]
        self.client = Node(self, "client", 0, CLIENT_HOST)
        self._by_name = {n.name: n for n in self.nodes + [self.client]}
        self._by_mac = {n.mac: n for n in self.nodes + [self.client]}
        self._ports = {n.name: {"master": BRIDGE, "up": True} for n in self._by_name.values()}
        self._bridges = {BRIDGE}
        self._observers = []
        self.namespaces = [self.bridge_ns] + [n.ns for n in self.nodes] + [self.client.ns]
        self.mgmt = None                    # the BMC host namespace (a Node), if mgmt
        self.mgmt_bridge_ns = None
        self._bmc_addrs = {}                # extra BMC address -> True (up) / False (down)
        if mgmt:
            self.mgmt_bridge_ns = self.prefix + "mbr"
            b = Node(self, "bmc", 0, BMC_HOST)
            b.iface = b.mgmt_iface = MGMT_IFACE
            b.ip4 = b.mgmt_ip4 = MGMT_PREFIX + str(BMC_HOST)
            b.ip6 = None
            b.mac = b.mgmt_mac = "02:00:00:01:01:00"
            b.mgmt_port = "bmc"
            self.mgmt = b
            for n in self.nodes:
                n.mgmt_iface = MGMT_IFACE
                n.mgmt_ip4 = MGMT_PREFIX + str(10 + n.index)
                n.mgmt_mac = "02:00:00:01:00:%02x" % n.index
                n.mgmt_port = n.name
            self.namespaces += [self.mgmt_bridge_ns, b.ns]
        with _glock:  # folder and registration together: cleanup_stale() keeps both
            self.dir = tempfile.mkdtemp(prefix="hft%d-%d-" % (self._owner,
                                                              _starttime(self._owner) or 0))
            _beds.append(self)
        _install_handlers()
        t0 = time.monotonic()
        try:
            self._build()
        except Unavailable as e:
            self.close()
            if skip_if_unavailable:
                skip(str(e))
            raise
        except BaseException:
            self.close()
            raise
        self.build_seconds = time.monotonic() - t0

    # ------------------------------------------------------------------ build
    def _check_unavailable(self, err, what):
        for pat in _UNAVAILABLE_PATTERNS:
            if pat in str(err):
                raise Unavailable("%s: %s" % (what, str(err).strip()))

    def _build(self):
        try:
            _ip_batch(["netns add %s" % n for n in self.namespaces])
        except Error as e:
            self._check_unavailable(e, "cannot create network namespaces")
            raise
        br = [
            "link set lo up",
            "link add %s type bridge stp_state 0 forward_delay 0 mcast_snooping 0" % BRIDGE,
            "link set %s addrgenmode none" % BRIDGE,
        ]
        for n in self.nodes + [self.client]:
            br.append("link add %s type veth peer name eth0 netns %s address %s"
                      % (n.port, n.ns, n.mac))
            br.append("link set %s addrgenmode none" % n.port)
            br.append("link set %s master %s up" % (n.port, BRIDGE))
        br.append("link set %s up" % BRIDGE)
        try:
            _ip_batch(br, ns=self.bridge_ns)
        except Error as e:
            self._check_unavailable(e, "kernel cannot build a veth/bridge network")
            raise
        running = []
        for n in self.nodes + [self.client]:
            lines = ["link set lo up", "addr add %s/24 dev eth0" % n.ip4]
            if n.ip6:
                lines.append("addr add %s/64 dev eth0 nodad" % n.ip6)
            lines.append("link set eth0 up")
            p = subprocess.Popen(["ip", "-n", n.ns, "-batch", "-"], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            running.append((n, p, "\n".join(lines) + "\n"))
        errors = []
        for n, p, text in running:
            out, err = p.communicate(text, timeout=30)
            if p.returncode != 0:
                errors.append("%s: %s" % (n.name, err.strip()))
        if errors:
            raise Error("configuring namespaces failed: " + "; ".join(errors))
        if self.mgmt is not None:
            self._build_mgmt()
        # The client's helper starts now (Python start-up overlaps with the test's setup);
        # it is waited for on first use.
        self.client.agent()

    def _build_mgmt(self):
        """The management network: its own bridge namespace, so nothing done to the data
        bridge (partitions, ports down) can reach it."""
        members = self.nodes + [self.mgmt]
        br = ["link set lo up",
              "link add %s type bridge stp_state 0 forward_delay 0 mcast_snooping 0"
              % MGMT_BRIDGE,
              "link set %s addrgenmode none" % MGMT_BRIDGE]
        for n in members:
            br.append("link add %s type veth peer name %s netns %s address %s"
                      % (n.mgmt_port, MGMT_IFACE, n.ns, n.mgmt_mac))
            br.append("link set %s addrgenmode none" % n.mgmt_port)
            br.append("link set %s master %s up" % (n.mgmt_port, MGMT_BRIDGE))
        br.append("link set %s up" % MGMT_BRIDGE)
        _ip_batch(br, ns=self.mgmt_bridge_ns)
        for n in members:
            lines = ["link set %s addrgenmode none" % MGMT_IFACE,
                     "addr add %s/24 dev %s" % (n.mgmt_ip4, MGMT_IFACE),
                     "link set %s up" % MGMT_IFACE]
            if n is self.mgmt:
                lines.insert(0, "link set lo up")
            _ip_batch(lines, ns=n.ns)
        # The BMC host must never route: a packet for a BMC address taken down
        # (bmc_addr_down) is then silently dropped, like a dead BMC, not answered with
        # an ICMP error after a forwarding attempt.
        self.mgmt.sysctl("net.ipv4.ip_forward", 0)

    def mgmt_ip(self, host):
        """'198.51.100.<host>' (an address on the management network)."""
        return MGMT_PREFIX + str(int(host))

    def _need_mgmt(self):
        if self.mgmt is None:
            raise Error("this bed has no management network (TestBed(mgmt=True))")

    def bmc_addr_add(self, ip):
        """Give the BMC host namespace one more address (198.51.100.x, /24 on mgmt0):
        one per simulated device, so each can be made unreachable on its own. Adding a
        known address again just brings it back up."""
        self._need_mgmt()
        if ip in self._bmc_addrs:
            self.bmc_addr_up(ip)
            return
        self.mgmt.addr_add("%s/24" % ip, dev=MGMT_IFACE)
        self._bmc_addrs[ip] = True

    def bmc_addr_down(self, ip):
        """Make one BMC address unreachable: it is removed from the BMC host, whose
        kernel then silently drops what is sent to it (no answer, no ICMP error), the
        way a dead or unplugged BMC looks. Sockets bound to it keep working once
        bmc_addr_up() puts it back."""
        self._need_mgmt()
        if self._bmc_addrs.get(ip):
            self.mgmt.addr_del("%s/24" % ip, dev=MGMT_IFACE)
            self._bmc_addrs[ip] = False

    def bmc_addr_up(self, ip):
        self._need_mgmt()
        if self._bmc_addrs.get(ip) is False:
            self.mgmt.addr_add("%s/24" % ip, dev=MGMT_IFACE)
            self._bmc_addrs[ip] = True

    def bmc_addr_is_up(self, ip):
        return bool(self._bmc_addrs.get(ip))

    # ------------------------------------------------------------------ access
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __getitem__(self, name):
        return self.node(name)

    def __iter__(self):
        return iter(self.nodes)

    def node(self, name):
        """Node by name ('n1', ..., 'client', 'bmc' with mgmt=True) or 1-based index."""
        if isinstance(name, Node):
            return name
        if isinstance(name, int):
            return self.nodes[name - 1]
        if self.mgmt is not None and name == self.mgmt.name:
            return self.mgmt
        return self._by_name[name]

    def _mac(self, x):
        if isinstance(x, Node):
            return x.mac
        if isinstance(x, str) and x in self._by_name:
            return self._by_name[x].mac
        return str(x).lower()

    def mac_of(self, node):
        """MAC of a node (Node or name)."""
        return self.node(node).mac

    def name_of_mac(self, mac):
        """'n2' / 'client' for one of the bed's MACs, else None."""
        n = self._by_mac.get(str(mac).lower())
        return n.name if n else None

    def node_by_mac(self, mac):
        return self._by_mac.get(str(mac).lower())

    def names(self, macs):
        """Sorted member names for a collection of MACs (unknown MACs as they are)."""
        return sorted(self.name_of_mac(m) or m for m in macs)

    def write_hosts(self, extra=""):
        """Give every member an /etc/hosts naming all members (n1, ..., client; IPv4 and
        IPv6) for processes started afterwards, so names resolve without DNS (Corosync
        looks up its nodelist names). The file lives in the run folder and is
        bind-mounted in each process's private mount namespace: /etc is never touched."""
        lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost"]
        for m in self._all_members():
            lines.append("%s %s" % (m.ip4, m.name))
            if m.ip6:
                lines.append("%s %s" % (m.ip6, m.name))
            if m.mgmt_ip4 and m.mgmt_ip4 != m.ip4:
                lines.append("%s %s-mgmt" % (m.mgmt_ip4, m.name))
        path = os.path.join(self.dir, "hosts")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n" + extra)
        for m in self._all_members():
            m.binds["/etc/hosts"] = path
        return path

    def observer(self, vips=(), interval_ms=5.0, node=None, include_ns=False,
                 include_outgoing=False, arp_src=None):
        """Start an Observer in the client namespace (or in node) probing vips
        (IPv4: ARP requests, IPv6: neighbour solicitations) every interval_ms."""
        return Observer(self.node(node) if node is not None else self.client, vips,
                        interval_ms, include_ns, include_outgoing, arp_src)

    # ------------------------------------------------------------------ faults
    def _port(self, member, up=None, master=False):
        m = self.node(member)
        st = self._ports[m.name]
        cmds = []
        if master is not False and master != st["master"]:
            cmds.append("link set %s %s" % (m.port, "nomaster" if master is None
                                            else "master " + master))
            st["master"] = master
        if up is not None and up != st["up"]:
            cmds.append("link set %s %s" % (m.port, "up" if up else "down"))
            st["up"] = up
        if cmds:
            _ip_batch(cmds, ns=self.bridge_ns)

    def partition(self, *groups):
        """Split the network: bed.partition(["n1", "n2"], ["n3"]). Each group gets its
        own bridge; members not named (the client too, unless named) stay with the first
        group. Carriers stay up. bed.heal() undoes it."""
        seen = set()
        for gi, group in enumerate(groups):
            br = BRIDGE if gi == 0 else "br%d" % gi
            if br not in self._bridges:
                _ip_batch(["link add %s type bridge stp_state 0 forward_delay 0 "
                           "mcast_snooping 0" % br, "link set %s addrgenmode none" % br,
                           "link set %s up" % br], ns=self.bridge_ns)
                self._bridges.add(br)
            for member in group:
                m = self.node(member)
                if m.name in seen:
                    raise ValueError("%s is in two groups" % m.name)
                seen.add(m.name)
                self._port(m, master=br)
        for name in self._by_name:
            if name not in seen and self._ports[name]["master"] != BRIDGE:
                self._port(name, master=BRIDGE)

    def heal(self):
        """Every member back on the main bridge with its link up."""
        for name in self._by_name:
            self._port(name, up=True, master=BRIDGE)

    # ------------------------------------------------------------------ logs
    def logs(self):
        """{log file name: text} of every process log in the run folder."""
        out = {}
        try:
            for f in sorted(os.listdir(self.dir)):
                with open(os.path.join(self.dir, f), "rb") as fh:
                    out[f] = fh.read().decode("utf-8", "replace")
        except OSError:
            pass
        return out

    def logs_tail(self, lines=20):
        """The last lines of every process log, for failure messages."""
        parts = []
        for f, text in self.logs().items():
            tail = text.splitlines()[-lines:]
            if tail:
                parts.append("--- %s\n%s" % (f, "\n".join(tail)))
        return "\n".join(parts)

    # ------------------------------------------------------------------ close
    def close(self):
        """Kill every process of the bed, delete its namespaces and run folder.
        Idempotent; safe to call again after a partial failure."""
        if os.getpid() != self._owner:
            return  # a forked child must not tear down its parent's bed
        self._closed = True
        errors = []
        for obs in list(self._observers):
            try:
                obs.stop()
            except Exception as e:
                errors.append("observer: %s" % e)
        for m in self._all_members():
            for p in m.procs:  # frozen groups: SIGCONT is not needed for SIGKILL
                p.kill(signal.SIGKILL)
            try:
                m._stop_procs()
            except Exception as e:
                errors.append("%s: %s" % (m.name, e))
        try:
            _kill_ns_processes(self.namespaces)
        except Exception as e:
            errors.append(str(e))
        existing = set(_list_netns())
        todel = [n for n in self.namespaces if n in existing]
        if todel:
            r = _ip_batch(["netns del %s" % n for n in todel], force=True, check=False)
            left = set(_list_netns()) & set(todel)
            if left:
                errors.append("could not delete %s: %s" % (sorted(left), r.stderr.strip()))
        if self.log_dir and self.dir:
            try:
                os.makedirs(self.log_dir, exist_ok=True)
                for f in os.listdir(self.dir):
                    src = os.path.join(self.dir, f)
                    if os.path.isdir(src):
                        shutil.copytree(src, os.path.join(self.log_dir, f), dirs_exist_ok=True)
                    else:
                        shutil.copy2(src, self.log_dir)
            except OSError as e:
                errors.append("copying logs to %s: %s" % (self.log_dir, e))
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        with _glock:
            if self in _beds:
                _beds.remove(self)
            if not _beds:
                _restore_handlers()
        if errors:
            raise Error("TestBed cleanup: " + "; ".join(errors))

    def _all_members(self):
        return list(self.nodes) + [self.client] + ([self.mgmt] if self.mgmt else [])


# ----------------------------------------------------------------------------- CLI
def _main(argv):
    import argparse
    ap = argparse.ArgumentParser(description="hafront netns test bed")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("cleanup", help="remove namespaces/folders left by dead tests")
    p = sub.add_parser("up", help="build a bed and keep it until Ctrl-C (for poking around)")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--no-ipv6", action="store_true")
    p.add_argument("--mgmt", action="store_true", help="add the management network")
    a = ap.parse_args(argv)
    if a.cmd == "cleanup":
        require_netns()
        removed = cleanup_stale(verbose=True)
        print("removed %d stale namespace(s)" % len(removed))
        return 0
    with TestBed(nodes=a.nodes, ipv6=not a.no_ipv6, mgmt=a.mgmt) as bed:
        print("bed up in %.0f ms; run folder %s" % (bed.build_seconds * 1000, bed.dir))
        for n in bed._all_members():
            print("  %-7s ns=%-22s %-14s %-20s %s%s" % (n.name, n.ns, n.ip4, n.ip6 or "-", n.mac,
                                                    "  mgmt0 %s" % n.mgmt_ip4
                                                    if n.mgmt_ip4 and n is not bed.mgmt
                                                    else ""))
        print("try: ip netns exec %s bash     (Ctrl-C here tears everything down)"
              % bed.nodes[0].ns, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print()
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))

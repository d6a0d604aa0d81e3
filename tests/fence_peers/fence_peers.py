"""Real protocol peers for the fence agents: IPMI BMCs (ipmi_sim), an APC rack PDU
(snmpd + pass_persist) and Redfish BMCs (HTTPS), all driving one power model per node.

    sys.path.insert(0, "tests/netns"); sys.path.insert(0, "tests/fence_peers")
    from netns import TestBed
    from fence_peers import FencePeers

    with TestBed(nodes=3, mgmt=True) as bed:
        peers = FencePeers(bed, pdu=True, redfish_for=["n3"])
        hafront_n2 = bed["n2"].spawn([...])
        peers.register_node_pids("n2", [hafront_n2])
        r = peers.run_agent("n1", "ipmi-n2", "off")      # the real /usr/sbin/fence_ipmilan
        assert r.rc == 0 and not hafront_n2.alive()     # killed before the BMC answered
        peers.power_events("n2")                          # [{"to": "off", "killed": [...]}]

The power model (state folder <bed.dir>/fence_peers/nodes/<node>/):

- A node is powered while its chassis power is on (IPMI and Redfish BMCs of a node share
  one chassis) AND, if it has PDU outlets, at least one of them is on (dual supplies).
- powered -> unpowered: every process registered for the node (file `pids`, lines
  "PID STARTTIME") and its process group is SIGKILLed, and the node's network interfaces
  (eth0, mgmt0) are taken down inside its namespace (a powered-off machine answers
  nothing, not even ARP for a VIP its dead daemon left configured). This happens
  synchronously inside the BMC/PDU command, so a fence agent's success can only follow
  the death. Only then is the new state written and the command answered.
- unpowered -> powered: interfaces come back with their original addresses only (extra
  addresses such as VIPs are gone, as after a reboot), then the `boot` command, if one
  was set (set_boot), starts detached in the node's namespace; its pid is registered, so
  the next power-off kills it too. Without a boot command the harness polls
  power_state()/wait_power() and starts what it wants itself.
- Every change is appended to events.jsonl: "input" events (chassis, outlet) and "power"
  transitions with the pids killed and the time the kill completed (time.time() and
  time.monotonic(), the same clock as the netns Observer).

Stale pids are never trusted: a registered pid is only killed if /proc/PID/stat still
shows the start time recorded at registration (a line without one is only accepted if the
process lives in the node's network namespace). Its process group is killed only if the
pid leads the group, and never the group of the simulator or of pid 1.

The simulators themselves (small programs next to this file) import only the
"power model" half of this module; FencePeers (the test API) needs netns.py.
"""
import fcntl
import json
import os
import signal
import sys
import time
# base64, shlex, shutil, socket, struct, subprocess: imported where used, so that the
# simulators' hook (one Python start per IPMI request) starts fast.

HERE = os.path.dirname(os.path.abspath(__file__))
HOOK = os.path.join(HERE, "ipmi_power_hook.py")
PDU_PROG = os.path.join(HERE, "apc_pdu.py")
REDFISH_PROG = os.path.join(HERE, "redfish_bmc.py")

FAULT_KINDS = ("cannot_act", "unreachable")
KILL_WAIT = 5.0  # seconds a SIGKILLed process may take to die before it counts as survivor


class CannotAct(Exception):
    """The device is told (fault knob cannot_act) to answer but not act."""


class KillFailed(Exception):
    """Registered processes survived SIGKILL: the node is not provably dead."""


# ============================================================================ /proc
def proc_stat(pid):
    """(state, ppid, pgrp, starttime) from /proc/PID/stat, or None if gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except (OSError, ValueError):
        return None
    rest = s[s.rindex(")") + 2:].split()
    return rest[0], int(rest[1]), int(rest[2]), int(rest[19])


def starttime(pid):
    st = proc_stat(pid)
    return st[3] if st else None


def _dead(pid, st):
    """True once (pid, starttime) is gone, a zombie, or the pid belongs to someone else."""
    s = proc_stat(pid)
    return s is None or s[0] in ("Z", "X") or (st is not None and s[3] != st)


def _netns_id(path):
    try:
        st = os.stat(path)
        return st.st_dev, st.st_ino
    except OSError:
        return None


def _all_stats():
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            s = proc_stat(int(d))
            if s:
                out[int(d)] = s
    return out


def _ip_cmd():
    import shutil
    return shutil.which("ip") or next((p for p in ("/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip",
                                                   "/bin/ip") if os.path.exists(p)), "ip")


# ============================================================================ power model
class PowerModel:
    """The per-node power state shared by every simulator. All changes of one node are
    serialized by an flock on nodes/<node>/.lock; state files are replaced atomically,
    so readers need no lock."""

    def __init__(self, root):
        self.root = root

    # ------------------------------------------------------------------ paths
    def node_dir(self, node):
        return os.path.join(self.root, "nodes", node)

    def _state_path(self, node):
        return os.path.join(self.node_dir(node), "state.json")

    def pids_path(self, node):
        return os.path.join(self.node_dir(node), "pids")

    def boot_path(self, node):
        return os.path.join(self.node_dir(node), "boot")

    def events_path(self):
        return os.path.join(self.root, "events.jsonl")

    def _fault_path(self, device):
        return os.path.join(self.root, "faults", device)

    class _Lock:
        def __init__(self, path):
            self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

        def __enter__(self):
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            return self

        def __exit__(self, *exc):
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)

    def _lock(self, node):
        return self._Lock(os.path.join(self.node_dir(node), ".lock"))

    def _write_json(self, path, obj):
        tmp = "%s.tmp%d" % (path, os.getpid())
        with open(tmp, "w") as f:
            json.dump(obj, f, sort_keys=True)
        os.replace(tmp, path)

    # ------------------------------------------------------------------ setup
    def init_node(self, node, netns=None, chassis=True, outlets=(), net=None):
        """Create a node's state. outlets: keys like "pdu:3". net: {"ifaces": [...],
        "keep": {iface: [cidr, ...]}} to take the node's links down while unpowered."""
        os.makedirs(self.node_dir(node), exist_ok=True)
        os.makedirs(os.path.join(self.root, "faults"), exist_ok=True)
        state = {"node": node, "netns": netns, "chassis": bool(chassis),
                 "outlets": {k: True for k in outlets}, "net": net}
        state["powered"] = self.is_powered(state)
        with self._lock(node):
            self._write_json(self._state_path(node), state)
            open(self.pids_path(node), "a").close()

    @staticmethod
    def is_powered(state):
        return bool(state["chassis"]) and (not state["outlets"] or any(state["outlets"].values()))

    def state(self, node):
        with open(self._state_path(node)) as f:
            return json.load(f)

    def nodes(self):
        try:
            return sorted(os.listdir(os.path.join(self.root, "nodes")))
        except OSError:
            return []

    # ------------------------------------------------------------------ faults
    def faults(self, device):
        try:
            with open(self._fault_path(device)) as f:
                return {l.strip() for l in f if l.strip()}
        except OSError:
            return set()

    def set_fault(self, device, kind, on=True):
        if kind not in FAULT_KINDS:
            raise ValueError("fault kind must be one of %s" % (FAULT_KINDS,))
        cur = self.faults(device)
        cur = (cur | {kind}) if on else (cur - {kind})
        os.makedirs(os.path.join(self.root, "faults"), exist_ok=True)
        tmp = self._fault_path(device) + ".tmp"
        with open(tmp, "w") as f:
            f.write("".join(k + "\n" for k in sorted(cur)))
        os.replace(tmp, self._fault_path(device))

    def check_can_act(self, device):
        if "cannot_act" in self.faults(device):
            self.log_event({"kind": "refused", "device": device,
                            "reason": "fault cannot_act"})
            raise CannotAct("%s: simulated fault cannot_act" % device)

    # ------------------------------------------------------------------ registration
    def register_pids(self, node, pids):
        """Append pids (ints) of the node, with their start time now."""
        lines = []
        for pid in pids:
            st = starttime(int(pid))
            if st is None:
                raise ValueError("pid %s does not exist" % pid)
            lines.append("%d %d\n" % (int(pid), st))
        with self._lock(node):
            with open(self.pids_path(node), "a") as f:
                f.write("".join(lines))

    def clear_pids(self, node):
        with self._lock(node):
            open(self.pids_path(node), "w").close()

    def registered(self, node):
        """[(pid, starttime or None)] from the node's pids file."""
        out = []
        try:
            with open(self.pids_path(node)) as f:
                for line in f:
                    parts = line.split()
                    if not parts or not parts[0].isdigit():
                        continue
                    st = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
                    out.append((int(parts[0]), st))
        except OSError:
            pass
        return out

    def set_boot(self, node, cmd):
        """cmd: a shell command run (sh -c) in the node's namespace at power-on; None
        removes it."""
        p = self.boot_path(node)
        if cmd is None:
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
        else:
            with open(p, "w") as f:
                f.write(cmd)

    # ------------------------------------------------------------------ events
    def log_event(self, ev):
        ev.setdefault("t", time.time())
        ev.setdefault("mono", time.monotonic())
        line = json.dumps(ev, sort_keys=True) + "\n"
        fd = os.open(self.events_path(), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                     0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def events(self):
        out = []
        try:
            with open(self.events_path()) as f:
                for line in f:
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass
        except OSError:
            pass
        return out

    # ------------------------------------------------------------------ changes
    def set_chassis(self, node, on, device="test", why=""):
        """Chassis power on/off (IPMI, Redfish). Returns the power event or None."""
        return self._change(node, lambda s: s.__setitem__("chassis", bool(on)),
                            device, "chassis", on, why)

    def set_outlet(self, node, key, on, device="test", why=""):
        """One PDU outlet ("pdu:3") on/off. Returns the power event or None."""
        def mutate(s):
            if key not in s["outlets"]:
                raise KeyError("%s has no outlet %s" % (node, key))
            s["outlets"][key] = bool(on)
        return self._change(node, mutate, device, key, on, why)

    def cycle_chassis(self, node, device="test", why=""):
        """Hard reset / restart: off (if on) then on, in one locked step."""
        with self._lock(node):
            s = self.state(node)
            evs = []
            if s["chassis"]:
                evs.append(self._apply(node, s, lambda s: s.__setitem__("chassis", False),
                                       device, "chassis", False, why))
            evs.append(self._apply(node, self.state(node),
                                   lambda s: s.__setitem__("chassis", True),
                                   device, "chassis", True, why))
            return [e for e in evs if e]

    def cycle_outlet(self, node, key, device="test", why=""):
        with self._lock(node):
            evs = []
            for on in (False, True):
                def mutate(s, on=on):
                    if key not in s["outlets"]:
                        raise KeyError("%s has no outlet %s" % (node, key))
                    s["outlets"][key] = on
                evs.append(self._apply(node, self.state(node), mutate, device, key, on, why))
            return [e for e in evs if e]

    def _change(self, node, mutate, device, what, on, why):
        with self._lock(node):
            return self._apply(node, self.state(node), mutate, device, what, on, why)

    def _apply(self, node, state, mutate, device, what, on, why):
        """Under the node's lock: apply mutate; act on a power transition; write state.
        Raises KillFailed (after writing the state) if registered processes survived."""
        before = self.is_powered(state)
        mutate(state)
        after = self.is_powered(state)
        state["powered"] = after
        self.log_event({"kind": "input", "node": node, "device": device, "input": what,
                        "on": bool(on), "powered": after, "why": why})
        ev = None
        failure = None
        if before and not after:
            t0 = time.time()
            killed, survivors, skipped = self._kill_registered(node, state)
            t_killed, mono_killed = time.time(), time.monotonic()
            self._net(state, up=False)
            ev = {"kind": "power", "node": node, "to": "off", "device": device, "why": why,
                  "killed": killed, "survivors": survivors, "skipped": skipped,
                  "t_kill_start": t0, "t_killed": t_killed, "mono_killed": mono_killed}
            if survivors:
                failure = KillFailed("%s: pids %s survived SIGKILL" % (node, survivors))
        elif after and not before:
            self._net(state, up=True)
            boot_pid = self._boot(node, state)
            ev = {"kind": "power", "node": node, "to": "on", "device": device, "why": why,
                  "boot_pid": boot_pid}
        self._write_json(self._state_path(node), state)
        if ev:
            self.log_event(ev)
        if failure:
            raise failure
        return ev

    # ------------------------------------------------------------------ power off
    def _kill_registered(self, node, state):
        """SIGKILL the node's registered processes and their groups; wait until dead.
        Returns (killed pids, survivors, skipped stale pids). Rewrites the pids file to
        the survivors."""
        entries = self.registered(node)
        ns_id = _netns_id("/run/netns/%s" % state["netns"]) if state.get("netns") else None
        protected = {0, 1, os.getpid(), os.getppid()}
        protected_groups = {0, 1, os.getpgrp(), os.getpgid(os.getppid())}
        targets = {}   # pid -> starttime
        groups = set()
        skipped = []
        for pid, st in entries:
            s = proc_stat(pid)
            if s is None or s[0] in ("Z", "X") or pid in protected:
                continue                                  # already dead (or never ours)
            if st is not None and s[3] != st:
                skipped.append(pid)                       # pid reused: not ours
                continue
            if st is None and (ns_id is None or _netns_id("/proc/%d/ns/net" % pid) != ns_id):
                skipped.append(pid)                       # unverifiable: leave it
                continue
            targets[pid] = s[3]
            if s[2] == pid and pid not in protected_groups:
                groups.add(pid)
        deadline = time.monotonic() + KILL_WAIT
        while True:
            # group members (also ones forked since the last round)
            if groups:
                for pid, s in _all_stats().items():
                    if s[2] in groups and s[0] not in ("Z", "X") and pid not in protected:
                        targets.setdefault(pid, s[3])
            for pid, st in list(targets.items()):
                if not _dead(pid, st):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            for pg in groups:
                try:
                    os.killpg(pg, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            alive = [p for p, st in targets.items() if not _dead(p, st)]
            group_alive = groups and any(s[2] in groups and s[0] not in ("Z", "X")
                                         for s in _all_stats().values())
            if not alive and not group_alive:
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.002)
        survivors = sorted(p for p, st in targets.items() if not _dead(p, st))
        with open(self.pids_path(node) + ".tmp", "w") as f:
            f.write("".join("%d %d\n" % (p, targets[p]) for p in survivors))
        os.replace(self.pids_path(node) + ".tmp", self.pids_path(node))
        return sorted(targets), survivors, skipped

    # ------------------------------------------------------------------ links
    def _net(self, state, up):
        import subprocess
        net = state.get("net")
        ns = state.get("netns")
        if not net or not ns:
            return
        ip = _ip_cmd()
        if not up:
            lines = ["link set %s down" % i for i in net["ifaces"]]
        else:
            lines = []
            r = subprocess.run([ip, "-n", ns, "-j", "addr", "show"], capture_output=True,
                               text=True)
            have = {}
            for link in json.loads(r.stdout or "[]"):
                have[link["ifname"]] = ["%s/%s" % (a["local"], a["prefixlen"])
                                        for a in link.get("addr_info", [])
                                        if not a["local"].startswith("fe80:")]
            for iface, keep in net["keep"].items():
                for a in have.get(iface, []):
                    if a not in keep:
                        lines.append("addr del %s dev %s" % (a, iface))
                for a in keep:
                    if a not in have.get(iface, []):
                        lines.append("addr add %s dev %s%s" % (a, iface,
                                                               " nodad" if ":" in a else ""))
            lines += ["link set %s up" % i for i in net["ifaces"]]
        subprocess.run([ip, "-n", ns, "-force", "-batch", "-"], input="\n".join(lines) + "\n",
                       capture_output=True, text=True)

    # ------------------------------------------------------------------ boot
    def _boot(self, node, state):
        """Start the node's boot command detached (own session and process group) in its
        namespace; register its pid. Returns the pid or None."""
        try:
            with open(self.boot_path(node)) as f:
                cmd = f.read()
        except OSError:
            return None
        argv = ["sh", "-c", cmd]
        if state.get("netns"):
            argv = [_ip_cmd(), "netns", "exec", state["netns"]] + argv
        log = os.open(os.path.join(self.node_dir(node), "boot.log"),
                      os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: new session, fork the boot process, report its pid, exit
            try:
                os.close(r)
                os.setsid()
                pid2 = os.fork()
                if pid2 == 0:
                    try:
                        os.close(w)
                        null = os.open(os.devnull, os.O_RDONLY)
                        os.dup2(null, 0)
                        os.dup2(log, 1)
                        os.dup2(log, 2)
                        os.environ["FENCE_PEERS_NODE"] = node
                        os.execvp(argv[0], argv)
                    finally:
                        os._exit(127)
                os.write(w, str(pid2).encode())
            finally:
                os._exit(0)
        os.close(w)
        os.close(log)
        data = b""
        while True:
            chunk = os.read(r, 64)
            if not chunk:
                break
            data += chunk
        os.close(r)
        os.waitpid(pid, 0)
        if not data:
            return None
        boot_pid = int(data)
        st = starttime(boot_pid)
        if st is not None:
            with open(self.pids_path(node), "a") as f:  # caller holds the node's lock
                f.write("%d %d\n" % (boot_pid, st))
        return boot_pid


# ============================================================================ test API
class AgentRun:
    """One agent run: rc, out, err, seconds, t_start/t_end (time.time()),
    mono_start/mono_end (time.monotonic()), argv."""

    def __init__(self, rc, out, err, seconds, t_start, t_end, mono_start, mono_end, argv):
        self.rc, self.out, self.err, self.seconds = rc, out, err, seconds
        self.t_start, self.t_end, self.mono_start, self.mono_end = t_start, t_end, mono_start, \
            mono_end
        self.argv = argv

    def __repr__(self):
        return "<AgentRun rc=%d %.2fs %r %r>" % (self.rc, self.seconds, self.out.strip(),
                                                 self.err.strip()[-200:])

AGENT_DIR = "/usr/sbin"
AGENT_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
             "PYTHONWARNINGS": "ignore"}


def _hexaddr(ip, port):
    import socket
    import struct
    return "%08X:%04X" % (struct.unpack("<I", socket.inet_aton(ip))[0], port)


def _listening(pid, proto, ip, port):
    """True if process pid's network namespace has a socket bound to ip:port (UDP) or
    listening there (TCP)."""
    want = _hexaddr(ip, port)
    try:
        with open("/proc/%d/net/%s" % (pid, proto)) as f:
            next(f)
            for line in f:
                parts = line.split()
                if parts[1] == want and (proto == "udp" or parts[3] == "0A"):
                    return True
    except OSError:
        pass
    return False


class Device:
    """One simulated fence device."""

    def __init__(self, name, kind, agent, ip, port, nodes):
        self.name = name
        self.kind = kind          # "ipmi", "pdu", "redfish"
        self.agent = agent        # fence_ipmilan, ...
        self.ip = ip
        self.port = port
        self.nodes = nodes        # node names it powers
        self.params = {}          # hafront YAML form (agent + parameters, *_file secrets)
        self.proc = None          # netns.Proc of the simulator
        self.dir = None
        self.outlets = {}         # pdu: outlet number -> (node, name)

    def __repr__(self):
        return "<Device %s %s %s:%s>" % (self.name, self.agent, self.ip, self.port)


class FencePeers:
    """Simulated BMCs and PDUs in the bed's management namespace (TestBed(mgmt=True)).

    nodes: node names to power (default: every node of the bed).
    ipmi: an IPMI BMC (ipmi_sim) per node (True), for the listed nodes, or none (False).
    pdu: False; True/1 = one APC rPDU "pdu" with outlets_per_node outlets per node
      (node i: outlets (i-1)*k+1 .. i*k); 2 = two PDUs "pdu-a", "pdu-b" (A and B feeds),
      outlet i on each for node i.
    redfish_for: node names that get a Redfish BMC too (same chassis as their IPMI BMC).
    net_power: a powered-off node's eth0/mgmt0 go down (and come back at power-on with
      their original addresses only). False: only the processes die.
    power_timeout: written into every device's parameters (the agent's own bound on how
      long it waits for the new state, and on failures).
    """

    def __init__(self, bed, nodes=None, ipmi=True, pdu=False, outlets_per_node=2,
                 redfish_for=(), net_power=True, username="admin", power_timeout=5,
                 start=True):
        if bed.mgmt is None:
            raise ValueError("FencePeers needs TestBed(..., mgmt=True)")
        self.bed = bed
        self.python = sys.executable or "/usr/bin/python3"
        self.root = os.path.join(bed.dir, "fence_peers")
        self.model = PowerModel(self.root)
        self.node_names = [bed.node(n).name for n in (nodes or [n.name for n in bed.nodes])]
        self.username = username
        self.power_timeout = power_timeout
        self.net_power = net_power
        self.devices_by_name = {}
        self._outlets = {n: [] for n in self.node_names}   # node -> ["pdu:1", ...]
        os.makedirs(os.path.join(self.root, "secrets"), exist_ok=True)
        os.makedirs(os.path.join(self.root, "devices"), exist_ok=True)
        import base64
        tag = base64.b32encode(os.urandom(10)).decode().lower()
        self.secret_files = {
            "ipmi": self._secret("ipmi.password", "ipmi-" + tag[:8]),
            "redfish": self._secret("redfish.password", "redfish-" + tag[8:16]),
            "pdu": self._secret("pdu.community", "pdu" + tag[:6]),
        }
        ipmi_nodes = (self.node_names if ipmi is True else list(ipmi or []))
        for n in ipmi_nodes:
            idx = bed.node(n).index
            self._add(Device("ipmi-%s" % n, "ipmi", "fence_ipmilan", bed.mgmt_ip(100 + idx),
                             623, [n]))
        npdu = 0 if not pdu else (1 if pdu is True else int(pdu))
        if npdu not in (0, 1, 2):
            raise ValueError("pdu must be False, True/1 or 2")
        for k in range(npdu):
            name = "pdu" if npdu == 1 else "pdu-%s" % "ab"[k]
            d = Device(name, "pdu", "fence_apc_snmp", bed.mgmt_ip(2 + k), 161,
                       list(self.node_names))
            for n in self.node_names:
                idx = bed.node(n).index
                per = outlets_per_node if npdu == 1 else 1
                for j in range(per):
                    outlet = (idx - 1) * per + j + 1
                    d.outlets[outlet] = (n, "%s-psu%d" % (n, j + 1 if npdu == 1 else k + 1))
                    self._outlets[n].append("%s:%d" % (name, outlet))
            self._add(d)
        for n in redfish_for:
            n = bed.node(n).name
            idx = bed.node(n).index
            self._add(Device("redfish-%s" % n, "redfish", "fence_redfish",
                             bed.mgmt_ip(170 + idx), 443, [n]))
        for n in self.node_names:
            node = bed.node(n)
            net = None
            if net_power:
                ifaces = [node.iface] + ([node.mgmt_iface] if node.mgmt_iface else [])
                keep = {i: node.addrs(dev=i) for i in ifaces}
                keep["lo"] = node.addrs(dev="lo")
                if node.ip6:
                    node.sysctl("net.ipv6.conf.%s.keep_addr_on_down" % node.iface, 1)
                net = {"ifaces": ifaces, "keep": keep}
            self.model.init_node(n, netns=node.ns, chassis=True, outlets=self._outlets[n],
                                 net=net)
        for d in self.devices_by_name.values():
            d.params = self._params(d)
        self.started = False
        if start:
            self.start()

    # ------------------------------------------------------------------ setup helpers
    def _secret(self, name, value):
        path = os.path.join(self.root, "secrets", name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(value + "\n")
        return path

    def _read_secret(self, kind):
        with open(self.secret_files[kind]) as f:
            return f.read().strip()

    def _add(self, d):
        d.dir = os.path.join(self.root, "devices", d.name)
        os.makedirs(d.dir, exist_ok=True)
        self.devices_by_name[d.name] = d

    def _params(self, d):
        pt = str(self.power_timeout)
        if d.kind == "ipmi":
            return {"agent": "fence_ipmilan", "ip": d.ip, "ipport": str(d.port),
                    "username": self.username, "password_file": self.secret_files["ipmi"],
                    "lanplus": "1", "cipher": "3", "power_wait": "0", "power_timeout": pt}
        if d.kind == "pdu":
            return {"agent": "fence_apc_snmp", "ip": d.ip, "ipport": str(d.port),
                    "snmp_version": "1", "community_file": self.secret_files["pdu"],
                    "power_wait": "0", "power_timeout": pt}
        return {"agent": "fence_redfish", "ip": d.ip, "ipport": str(d.port),
                "username": self.username, "password_file": self.secret_files["redfish"],
                "ssl_insecure": "1", "power_wait": "0", "power_timeout": pt}

    # ------------------------------------------------------------------ start / stop
    def start(self, timeout=10.0):
        """Start every simulator in bed.mgmt and wait until each listens."""
        mg = self.bed.mgmt
        for d in self.devices_by_name.values():
            self.bed.bmc_addr_add(d.ip)
        for d in self.devices_by_name.values():
            d.proc = getattr(self, "_start_" + d.kind)(d, mg)
        deadline = time.monotonic() + timeout
        for d in self.devices_by_name.values():
            proto = "udp" if d.kind in ("ipmi", "pdu") else "tcp"
            while not _listening(d.proc.pid, proto, d.ip, d.port):
                if not d.proc.alive():
                    raise RuntimeError("%s simulator exited: %s" % (d.name,
                                                                   d.proc.log_text()[-2000:]))
                if time.monotonic() > deadline:
                    raise RuntimeError("%s simulator not listening on %s:%d after %.0fs: %s"
                                       % (d.name, d.ip, d.port, timeout,
                                          d.proc.log_text()[-2000:]))
                time.sleep(0.01)
        self.started = True
        return self

    def _start_ipmi(self, d, mg):
        for p in (self.python, HOOK, self.root):
            if any(c in p for c in ' "\'\\'):
                raise ValueError("path unusable in lan.conf: %r" % p)
        state = os.path.join(d.dir, "state-%d" % time.monotonic_ns())
        os.makedirs(state)
        pw = self._read_secret("ipmi")
        node = d.nodes[0]
        guid = ("%032x" % (0xa1234567 << 96 | self.bed.node(node).index))[:32]
        lan = ['name "%s"' % d.name,
               "set_working_mc 0x20",
               "  startlan 1",
               "    addr %s %d" % (d.ip, d.port),
               "    priv_limit admin",
               "    allowed_auths_callback none md2 md5 straight",
               "    allowed_auths_user none md2 md5 straight",
               "    allowed_auths_operator none md2 md5 straight",
               "    allowed_auths_admin none md2 md5 straight",
               "    guid %s" % guid,
               "  endlan",
               '  chassis_control "%s -I -S %s %s %s %s"' % (self.python, HOOK, self.root,
                                                              d.name, node),
               '  user 2 true "%s" "%s" admin 10 none md2 md5 straight' % (self.username, pw)]
        conf = os.path.join(d.dir, "lan.conf")
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lan) + "\n")
        emu = os.path.join(d.dir, "bmc.emu")
        with open(emu, "w") as f:
            f.write("mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02\n"
                    "mc_enable 0x20\n")
        return mg.spawn(["ipmi_sim", "-c", conf, "-f", emu, "-s", state, "-n"],
                        log_path=os.path.join(self.bed.dir, "bmc-%s.log" % d.name))

    def _start_pdu(self, d, mg):
        community = self._read_secret("pdu")
        conf = {"device": d.name, "outlets": {str(o): {"node": n, "name": nm,
                                                       "key": "%s:%d" % (d.name, o)}
                                              for o, (n, nm) in sorted(d.outlets.items())}}
        cj = os.path.join(d.dir, "outlets.json")
        with open(cj, "w") as f:
            json.dump(conf, f)
        persist = os.path.join(d.dir, "persist")
        os.makedirs(persist, exist_ok=True)
        sc = os.path.join(d.dir, "snmpd.conf")
        fd = os.open(sc, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("agentAddress udp:%s:%d\n" % (d.ip, d.port))
            f.write("rwcommunity %s %s/24\n" % (community, self.bed.mgmt_ip(0)))
            f.write("sysObjectID .1.3.6.1.4.1.318.1.3.4.5\n")
            f.write('sysDescr "APC Web/SNMP Management Card (hafront fence_peers simulator)"\n')
            f.write("sysName %s\n" % d.name)
            f.write("pass_persist .1.3.6.1.4.1.318 %s -I -S %s %s %s\n"
                    % (self.python, PDU_PROG, self.root, cj))
        return mg.spawn(["snmpd", "-f", "-C", "-c", sc, "-m", "", "-M", "/nonexistent",
                         "-Lf", os.path.join(d.dir, "snmpd.log"),
                         "-p", os.path.join(d.dir, "snmpd.pid")],
                        env={"SNMP_PERSISTENT_DIR": persist, "MIBS": "", "MIBDIRS": ""},
                        log_path=os.path.join(self.bed.dir, "bmc-%s.log" % d.name))

    def _start_redfish(self, d, mg):
        import subprocess
        cert, key = os.path.join(d.dir, "cert.pem"), os.path.join(d.dir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                        "-subj", "/CN=%s" % d.name, "-addext", "subjectAltName=IP:%s" % d.ip,
                        "-keyout", key, "-out", cert], check=True, capture_output=True,
                       timeout=30)
        return mg.spawn([self.python, "-I", "-S", REDFISH_PROG, "--root", self.root,
                         "--device", d.name, "--node", d.nodes[0], "--ip", d.ip,
                         "--port", str(d.port), "--cert", cert, "--key", key,
                         "--username", self.username,
                         "--password-file", self.secret_files["redfish"]],
                        log_path=os.path.join(self.bed.dir, "bmc-%s.log" % d.name))

    def close(self):
        """Stop the simulators (the bed's close() kills them anyway)."""
        for d in self.devices_by_name.values():
            if d.proc is not None and d.proc.alive():
                d.proc.terminate(2.0)

    # ------------------------------------------------------------------ configuration
    def device(self, name):
        return self.devices_by_name[name]

    def devices(self):
        """{device name: parameters} in hafront's fence_devices form: agent, plain
        parameters, secrets as <param>_file paths. Copy into a YAML config as is (add
        hafront's own `timeout` if wanted)."""
        return {n: dict(d.params) for n, d in self.devices_by_name.items()}

    def device_names(self, node=None):
        return [n for n, d in self.devices_by_name.items() if node is None or node in d.nodes]

    def outlets(self, node):
        """["pdu:3", "pdu:4"]: the node's outlets as hafront DEVICE:PLUG references."""
        return list(self._outlets[self.bed.node(node).name])

    def fencing(self, node):
        """The node's fencing topology for hafront's cluster.nodes[].fencing: one level
        per BMC (IPMI first, then Redfish), then one level with all its PDU outlets."""
        node = self.bed.node(node).name
        levels = [[n] for n, d in self.devices_by_name.items()
                  if d.kind == "ipmi" and node in d.nodes]
        levels += [[n] for n, d in self.devices_by_name.items()
                   if d.kind == "redfish" and node in d.nodes]
        if self._outlets[node]:
            levels.append(self.outlets(node))
        return levels

    def agent_params(self, device, plug=None):
        """The key=value parameters the agent itself gets (secrets read from their files,
        hafront-only keys dropped)."""
        d = self.devices_by_name[device]
        out = {}
        for k, v in d.params.items():
            if k == "agent":
                continue
            if k.endswith("_file"):
                with open(v) as f:
                    out[k[:-5]] = f.read().strip()
            else:
                out[k] = v
        if plug is not None:
            out["plug"] = str(plug)
        return out

    def agent_stdin(self, device, action, plug=None, extra=None):
        p = {"action": action}
        p.update(self.agent_params(device, plug))
        p.update(extra or {})
        return "".join("%s=%s\n" % (k, v) for k, v in p.items())

    def run_agent(self, node, device, action, plug=None, timeout=60, extra=None):
        """Run the real agent (/usr/sbin/fence_*) inside node's namespace, parameters on
        stdin, clean environment (PATH, LANG, PYTHONWARNINGS=ignore). Returns AgentRun
        (rc, out, err, seconds, t_start/t_end = time.time(), mono_start/mono_end)."""
        d = self.devices_by_name[device]
        if plug is None and d.kind == "pdu" and action not in ("monitor", "list",
                                                                "metadata"):
            raise ValueError("%s needs a plug" % device)
        argv = ["env", "-i"] + ["%s=%s" % kv for kv in AGENT_ENV.items()] + \
            [os.path.join(AGENT_DIR, d.agent)]
        stdin = self.agent_stdin(device, action, plug, extra)
        n = self.bed.node(node)
        import subprocess
        t0, m0 = time.time(), time.monotonic()
        r = subprocess.run(["ip", "netns", "exec", n.ns] + argv, input=stdin,
                           capture_output=True, text=True, timeout=timeout)
        t1, m1 = time.time(), time.monotonic()
        return AgentRun(r.returncode, r.stdout, r.stderr, m1 - m0, t0, t1, m0, m1, argv)

    # ------------------------------------------------------------------ power model
    def register_node_pids(self, node, pids):
        """Processes that die when the node loses power: ints or netns Procs (their whole
        process group is killed if the pid leads one). Their start time is recorded now."""
        node = self.bed.node(node).name
        self.model.register_pids(node, [getattr(p, "pid", p) for p in pids])

    def clear_node_pids(self, node):
        self.model.clear_pids(self.bed.node(node).name)

    def registered_pids(self, node):
        return [p for p, _ in self.model.registered(self.bed.node(node).name)]

    def set_boot(self, node, cmd):
        """Shell command started (detached, own process group, registered) in the node's
        namespace each time it is powered on; None: nothing starts."""
        if isinstance(cmd, (list, tuple)):
            import shlex
            cmd = " ".join(shlex.quote(str(c)) for c in cmd)
        self.model.set_boot(self.bed.node(node).name, cmd)

    def power_state(self, node):
        """'on' or 'off'."""
        return "on" if self.model.state(self.bed.node(node).name)["powered"] else "off"

    def power_detail(self, node):
        """{"powered": bool, "chassis": bool, "outlets": {"pdu:3": bool, ...}}."""
        s = self.model.state(self.bed.node(node).name)
        return {"powered": s["powered"], "chassis": s["chassis"], "outlets": dict(s["outlets"])}

    def set_power(self, node, on):
        """The harness's own hand on the switch (chassis and all outlets)."""
        node = self.bed.node(node).name
        evs = []
        if on:
            for k in self._outlets[node]:
                evs.append(self.model.set_outlet(node, k, True, "test"))
        evs.append(self.model.set_chassis(node, on, "test"))
        return [e for e in evs if e]

    def wait_power(self, node, state, timeout=10.0):
        deadline = time.monotonic() + timeout
        while self.power_state(node) != state:
            if time.monotonic() > deadline:
                raise TimeoutError("%s not %s after %.1fs" % (node, state, timeout))
            time.sleep(0.01)

    def power_events(self, node=None, since=None, kinds=("power",)):
        """Recorded events, oldest first. Power transitions ("kind": "power") carry
        node, to ("off"/"on"), device, killed (pids), survivors, skipped (stale pids),
        t_killed/mono_killed (kill completed), t/mono (transition complete, before the
        device answered). kinds=None: also "input" (chassis/outlet changes) and
        "refused" (cannot_act) events. since: a time.time() value."""
        node = self.bed.node(node).name if node is not None else None
        out = []
        for e in self.model.events():
            if kinds is not None and e.get("kind") not in kinds:
                continue
            if node is not None and e.get("node") != node:
                continue
            if since is not None and e.get("t", 0) < since:
                continue
            out.append(e)
        return out

    # ------------------------------------------------------------------ faults
    def set_fault(self, device, kind, on=True):
        """kind "cannot_act": the device answers but every power change fails (IPMI
        completion code 0xFF, SNMP set error, Redfish HTTP 500). kind "unreachable": the
        device's address leaves the management network (bed.bmc_addr_down): nothing
        answers, nothing is refused. kind None: clear every fault of the device."""
        d = self.devices_by_name[device]
        if kind is None:
            for k in FAULT_KINDS:
                self.set_fault(device, k, False)
            return
        if kind == "unreachable":
            if on:
                self.bed.bmc_addr_down(d.ip)
            else:
                self.bed.bmc_addr_up(d.ip)
        self.model.set_fault(device, kind, on)

    def clear_fault(self, device, kind=None):
        if kind is None:
            self.set_fault(device, None)
        else:
            self.set_fault(device, kind, False)

    def faults(self, device):
        return self.model.faults(device)

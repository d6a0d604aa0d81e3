#!/usr/bin/env python3
"""tests/chaos/chaos.py: a seeded random schedule of faults on a hafront cluster in the
netns test bed, checked from outside the nodes against the invariants of DESIGN.md.

The bed: three nodes (two with --nodes 2: votequorum two_node), each with a real Corosync,
hafrontd with the lease driver (bench/failover's lease arm settings: token 300 ms,
heartbeat 100 ms, liveness 1 s, lease 500 ms, margin 100 ms), a tiny TCP backend on
:8080 that answers the node's name, and an ipmi_sim BMC on the management network,
fenced by the real fence_ipmilan; a client namespace. Two VIPs: a (prefers n1) and b
(prefers n2, fails back).

Faults, one at a time, drawn by random.Random(seed): partition a node (carrier kept) and
heal; kill -9 hafrontd and restart it; kill -9 Corosync and restart it; SIGSTOP / SIGCONT
hafrontd; pause / resume the whole node; take a node's BMC off the network, then fault
that node, then bring the BMC back; flap a link (down and up within 1 s); kill a backend
(each node's hafrontd checks its own; --no-backend-faults leaves this out). Occasionally (three nodes only) two nodes at once, which
leaves the third in a minority. A node the cluster fenced (powered off through its BMC)
is powered on and booted again: backend, Corosync, hafrontd.

Outside the nodes, every few ms: the client's ARP probes (tests/netns Observer), each
node's kernel lease gate read with bpf(2) (kernel_view.py), and a TCP request to each VIP
(who answered). invariants.py checks: (a) one holder, (b) only on a node that is quorate,
not cut off, not fenced and (within a bound) whose backend is alive, (c) no takeover
without proof, (d) requests follow ARP, and with --nodes 2 (e) a split ends with exactly one node powered off and the other holding.

Output: every event, every violation with the events before it, availability per VIP,
failover times per fault kind, and as the last line `chaos events=N violations=V`. Exit
0 only with no violation, a completed run and a steady cluster at the end.

Usage: tests/chaos/chaos.py [--seed S] [--events N | --long N] [--nodes 2|3]
                            [--no-backend-faults] [--logs DIR]       (root)
Replay a run: the same --seed, --events and --nodes (doc/chaos.md says what repeats)."""
import argparse
import atexit
import bisect
import json
import os
import random
import re
import signal
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "netns"))
sys.path.insert(0, os.path.join(ROOT, "tests", "fence_peers"))
sys.path.insert(0, HERE)
os.environ.setdefault("HAFRONTD", os.path.join(ROOT, "build", "hafrontd"))
os.environ.setdefault("HAFRONTCTL", os.path.join(ROOT, "build", "hafrontctl"))

import netns  # noqa: E402
from failover_bed import (BACKEND_PORT, LOG_LINE, HafrontCluster, PoweredOff, Prober, cleanup_shm,  # noqa: E402
                          hafront_config, log_wall_time, pct, save_logs, snapshot_binaries)
import invariants as inv  # noqa: E402
from kernel_view import GateSampler  # noqa: E402

LEASE, MARGIN = 0.5, 0.1
SAMPLE_MS = 5          # kernel gates and ARP probes
PROBE_MS = 10          # one TCP request per VIP this often
REQUEST_TIMEOUT_MS = 300
WINDOW = 0.020         # ARP/request window (doc/chaos.md: why 20 ms)
VIPS = {"a": ("192.0.2.100", ["n1"], False), "b": ("192.0.2.101", ["n2"], True)}
PRIORITY_DELAY, N1_FENCE_DELAY = 2.0, 1.0   # two-node fence race settings
MEMBER_TIMEOUT = 60.0
SETTLE = 1.5           # a node back counts once it stayed a member this long
STEADY_TIMEOUT = 90.0

# Fault kinds and their weights in the schedule.
FAULTS_3 = [("partition", 3), ("kill-daemon", 3), ("kill-corosync", 2), ("stop-daemon", 3), ("pause-node", 2),
            ("flap-link", 2), ("fail-bmc", 1), ("double", 1)]
FAULTS_2 = [f for f in FAULTS_3 if f[0] != "double"]
BACKEND_FAULT = ("kill-backend", 2)


class HarnessError(Exception):
    """The run could not go on (not a violation of hafront's invariants)."""


def weighted(rng, table):
    total = sum(w for _, w in table)
    x = rng.random() * total
    for name, w in table:
        x -= w
        if x < 0:
            return name
    return table[-1][0]


class CompactObserver(netns.Observer):
    """The test bed's Observer keeping only what the checks read (answers, announcements,
    probe times) and able to forget old records: a --long run probes for an hour."""

    def _record(self, t, k, ev):
        if k == "probe":
            self._kind.setdefault("probe", netns._Series()).add(t, {"t": t})
        else:
            self._record_arp(t, k, ev)

    def forget(self, before):
        with self._cond:
            for s in [self._all] + list(self._kind.values()) + list(self._ans.values()) + list(self._ann.values()):
                i = bisect.bisect_left(s.runmax, before)
                del s.ts[:i], s.runmax[:i], s.items[:i]


class LogEvidence:
    """Follows every node's hafrontd log: lease proofs, fence proofs, releases, quorum
    losses, as (monotonic t, kind, node, vip)."""
    PATTERNS = [(re.compile(r"node (\S+): its lease ran out \(every member attested\)"), "lease-proof"),
                (re.compile(r"node (\S+) is proven down"), "fence-proof"),
                (re.compile(r"VIP (\S+) \(.*\): held -> "), "released"),
                (re.compile(r"quorum: NOT quorate"), "quorum-lost"),
                (re.compile(r"lost Corosync"), "quorum-lost")]

    def __init__(self, bed, nodes):
        self.paths = {n: os.path.join(bed.dir, "%s-hafrontd.log" % n) for n in nodes}
        self.offsets = {n: 0 for n in nodes}
        self.items = []

    def poll(self):
        off = time.time() - time.monotonic()
        for node, path in self.paths.items():
            try:
                with open(path, "rb") as f:
                    f.seek(self.offsets[node])
                    data = f.read()
            except OSError:
                continue
            end = data.rfind(b"\n")
            if end < 0:
                continue
            self.offsets[node] += end + 1
            for line in data[:end].decode("utf-8", "replace").splitlines():
                m = LOG_LINE.match(line)
                if not m:
                    continue
                for rx, kind in self.PATTERNS:
                    x = rx.search(m.group(2))
                    if not x:
                        continue
                    t = log_wall_time(m.group(1)) - off
                    if kind in ("lease-proof", "fence-proof"):
                        self.items.append((t, kind, x.group(1), None))
                    elif kind == "released":
                        self.items.append((t, kind, node, x.group(1)))
                    else:
                        self.items.append((t, kind, node, None))
                    break
        self.items.sort(key=lambda e: e[0])
        return self.items


class Chaos:
    vips = VIPS   # name -> (address, prefer, failback)

    def __init__(self, bed, args, seed):
        self.bed = bed
        self.args = args
        self.rng = random.Random(seed)
        self.seed = seed
        self.names = [n.name for n in bed.nodes]
        self.two_node = len(self.names) == 2
        self.t_start = time.monotonic()
        self.events = []           # (t, text)
        self.n_events = 0          # scheduled faults and repairs
        self.recoveries = 0        # power-on + boot after a fence, restarts found needed
        self.flags = []            # (t, node, flag, on)
        self.active = {n: set() for n in self.names}
        self.violations = []
        self.reported = set()
        self.failovers = []        # [kind, vip, victim, t0, limit, arp_ms, tcp_ms]
        self.proofs = {}
        self.requests_ok = {v: 0 for v in self.vips}
        self.requests_failed = {v: 0 for v in self.vips}
        self.longest_outage = {v: (0.0, None) for v in self.vips}
        self.last_ok = {v: None for v in self.vips}
        self.pending_requests = {v: ([], []) for v in self.vips}
        self.analysed_until = None
        self.race_results = []
        self.quorum_release = []
        self.corosync_pids_out = []
        self.params = inv.Params(self.names, LEASE, MARGIN, SAMPLE_MS / 1000.0, WINDOW, self.two_node)
        self.faults = list(FAULTS_2 if self.two_node else FAULTS_3)
        if args.backend_faults:
            self.faults.append(BACKEND_FAULT)
        if args.faults:
            self.faults = [f for f in self.faults if f[0] in args.faults]

    # ------------------------------------------------------------------ output
    def rel(self, t):
        return t - self.t_start

    def stamp(self, t):
        return "%9.3f" % self.rel(t)

    def event(self, text, scheduled=True):
        t = time.monotonic()
        self.events.append((t, text))
        if scheduled:
            self.n_events += 1
        print("%s  %s" % (self.stamp(t), text), flush=True)
        return t

    def flag(self, node, flag, on, t=None):
        t = time.monotonic() if t is None else t
        self.flags.append((t, node, flag, on))
        (self.active[node].add if on else self.active[node].discard)(flag)

    # ------------------------------------------------------------------ setup
    def setup(self):
        self.cl = self.make_cluster()
        self.cl.corosync_pids = self.corosync_pids_out   # main() cleans /dev/shm after them at exit
        self.cl.start(self.config_text())
        self.start_observers()
        self.wait_steady("the first steady state")
        self.analysed_until = time.monotonic() - 0.5
        self.t_first_steady = self.analysed_until
        self.event("steady: %s" % self.holders_text(), scheduled=False)

    def make_cluster(self):
        return HafrontCluster(self.bed, driver="lease")

    def config_text(self):
        node_extra = {"n1": "fence_delay: %dms" % (N1_FENCE_DELAY * 1000)} if self.two_node else None
        fencing = "monitor_interval: 0s, timeout: 30s"
        if self.two_node:
            fencing += ", priority_delay: %dms" % (PRIORITY_DELAY * 1000)
        extra = ""
        if self.args.backend_faults:
            # Each node checks its own backend (127.0.0.1 is the node's own): a node whose
            # backend is dead cannot serve the VIPs once hafront gates VIPs on health.
            extra = ("checks:\n  backend: {tcp: {}, interval: 200ms, timeout: 150ms, rise: 2, fall: 2}\n"
                     "services:\n  echo:\n    listen: [a:9000, b:9000]\n    mode: tcp\n    check: backend\n"
                     "    servers: [{name: local, address: 127.0.0.1:%d}]\n" % BACKEND_PORT)
        return hafront_config(self.cl.peers, self.names, self.vips, driver="lease", name="chaos",
                              two_node=self.two_node, fencing=fencing, node_extra=node_extra, extra=extra)

    def start_observers(self):
        """Outside the nodes: the kernel gates, ARP, a request to each VIP (who answers)."""
        bed = self.bed
        self.sampler = GateSampler({n.name: n.ns for n in bed.nodes}, {v: ip for v, (ip, _, _) in self.vips.items()},
                                   SAMPLE_MS)
        self.obs = CompactObserver(bed.client, [ip for ip, _, _ in self.vips.values()], SAMPLE_MS)
        self.probers = {v: Prober(bed, ip, BACKEND_PORT, PROBE_MS, REQUEST_TIMEOUT_MS, failures=True,
                                  name="prober-" + v)
                        for v, (ip, _, _) in self.vips.items()}
        self.logs = LogEvidence(bed, self.names)
        self.mac = {n.mac: n.name for n in bed.nodes}

    def holders_text(self):
        return ", ".join("%s on %s" % (v, "+".join(self.sampler.valid_now(v)) or "nobody") for v in self.vips)

    # ------------------------------------------------------------------ cluster state
    def daemon_ok(self, name):
        x = self.cl.h.get(name)
        return x is not None and x.proc is not None and x.proc.alive() and x.proc.state() not in ("T", "t")

    def steady(self):
        """One holder per VIP that every daemon agrees on, every node a member."""
        views = {}
        for n in self.names:
            if self.cl.peers.power_state(n) != "on" or self.active[n]:
                return None
            st = self.cl.status(n)
            if st is None or not st["cluster"]["quorate"] or \
                    sorted(m["name"] for m in st["cluster"]["members"]) != self.names or st["cluster"]["fencing"]:
                return None
            views[n] = {v["name"]: (v["holder"], v["state"]) for v in st["vips"]}
        out = {}
        for v in self.vips:
            holders = {views[n][v][0] for n in self.names}
            held = [n for n in self.names if views[n][v][1] == "held"]
            if len(holders) != 1 or held != list(holders) or self.sampler.valid_now(v, 0.05) != held:
                return None
            recent = self.probers[v].recent(0.3)
            if len(recent) < 10 or any(name != held[0] for _, _, name in recent):
                return None
            out[v] = held[0]
        return out

    def wait_steady(self, what, timeout=STEADY_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = self.steady()
            if s:
                return s
            time.sleep(0.2)
        raise HarnessError("no steady state within %.0f s (%s): %s" % (timeout, what, self.state_text()))

    def state_text(self):
        parts = []
        for n in self.names:
            st = self.cl.status(n)
            parts.append("%s: power %s, faults %s, %s" % (
                n, self.cl.peers.power_state(n), sorted(self.active[n]) or "none",
                "daemon not answering" if st is None else "quorate %s, members %s, fencing %s, vips %s" % (
                    st["cluster"]["quorate"], [m["name"] for m in st["cluster"]["members"]], st["cluster"]["fencing"],
                    ["%s:%s/%s" % (v["name"], v["holder"], v["state"]) for v in st["vips"]])))
        return "; ".join(parts) + "; kernel: " + self.holders_text()

    def member_everywhere(self, name):
        for n in self.names:
            if self.cl.peers.power_state(n) != "on" or not self.daemon_ok(n):
                continue
            st = self.cl.status(n)
            if st is None or name not in [m["name"] for m in st["cluster"]["members"]] or \
                    name in st["cluster"]["fencing"]:
                return False
        st = self.cl.status(name)
        return st is not None and st["cluster"]["quorate"]

    # ------------------------------------------------------------------ faults
    def inject(self, kind, node, why):
        """Apply one fault to node now. Returns the time it took effect."""
        n = self.bed.node(node)
        if kind == "partition":
            n.partition()
            t = self.event("fault   partition %s (%s)" % (node, why))
            self.flag(node, "partition", True, t)
        elif kind == "flap-link":
            n.link_down()
            t = self.event("fault   link down %s (%s)" % (node, why))
            self.flag(node, "link-down", True, t)
        elif kind == "kill-daemon":
            self.cl.h[node].proc.kill(signal.SIGKILL)
            t = self.event("fault   kill -9 hafrontd on %s (%s)" % (node, why))
            self.flag(node, "daemon-dead", True, t)
        elif kind == "kill-corosync":
            self.cl.coro[node].kill(signal.SIGKILL)
            t = self.event("fault   kill -9 corosync on %s (%s)" % (node, why))
            self.flag(node, "corosync-dead", True, t)
        elif kind == "stop-daemon":
            self.cl.h[node].proc.stop()
            t = self.event("fault   SIGSTOP hafrontd on %s (%s)" % (node, why))
            self.flag(node, "daemon-stopped", True, t)
        elif kind == "pause-node":
            n.pause()
            t = self.event("fault   pause node %s (%s)" % (node, why))
            self.flag(node, "paused", True, t)
        elif kind == "kill-backend":
            self.cl.backend[node].kill(signal.SIGKILL)
            t = self.event("fault   kill -9 backend on %s (%s)" % (node, why))
            self.flag(node, "backend-dead", True, t)
        elif kind == "fail-bmc":
            self.cl.peers.set_fault("ipmi-" + node, "unreachable")
            t = self.event("fault   BMC of %s unreachable (%s)" % (node, why))
            self.flag(node, "bmc-down", True, t)
        else:
            raise ValueError(kind)
        return t

    def repair(self, node):
        """Undo every injected fault of node (in an order that lets it come back)."""
        n = self.bed.node(node)
        a = self.active[node]
        # A fault ends when its repair starts (the node may act at once): the flag goes
        # off at the time taken before the action, the event is printed after it.
        if "paused" in a:
            t = time.monotonic()
            n.resume()
            self.flag(node, "paused", False, t)
            self.event("repair  resume node %s" % node)
        if "daemon-stopped" in a:
            t = time.monotonic()
            if self.cl.h[node].proc.alive():
                self.cl.h[node].proc.cont()
            self.flag(node, "daemon-stopped", False, t)
            self.event("repair  SIGCONT hafrontd on %s" % node)
        if "bmc-down" in a:
            self.repair_only(node, "bmc-down")
        if "partition" in a:
            t = time.monotonic()
            n.heal()
            self.flag(node, "partition", False, t)
            self.event("repair  heal %s" % node)
        if "link-down" in a:
            t = time.monotonic()
            n.link_up()
            self.flag(node, "link-down", False, t)
            self.event("repair  link up %s" % node)
        try:   # (a fence may have switched the node off: ensure_running() boots it then)
            if "corosync-dead" in a:
                t = time.monotonic()
                self.cl.reap(node)
                self.cl.start_corosync(node)
                self.flag(node, "corosync-dead", False, t)
                self.event("repair  restart corosync on %s" % node)
            if "daemon-dead" in a:
                t = time.monotonic()
                self.start_daemon(node)
                self.flag(node, "daemon-dead", False, t)
                self.event("repair  restart hafrontd on %s" % node)
            if "backend-dead" in a:
                t = time.monotonic()
                self.cl.reap(node)
                self.cl.start_backend(node)
                self.flag(node, "backend-dead", False, t)
                self.event("repair  restart backend on %s" % node)
        except PoweredOff:
            pass

    def start_daemon(self, node):
        old = self.sampler.prog.get(node)
        self.cl.reap(node)
        self.cl.start_hafrontd(node)
        self.expect_new_gate(node, old)

    def power_on(self, node):
        """A fence powered node off: once the fence is confirmed in a survivor's history
        (powering on earlier would make the fence's status check fail, and retry), power it
        on and boot it."""
        offs = self.cl.power_off_events(node, self.t_start)
        since = offs[-1]["mono_killed"] if offs else self.t_start
        t_wait = time.monotonic()
        while not self.cl.fence_confirmed(node, since - 1) and time.monotonic() - t_wait < 30:
            time.sleep(0.1)
        self.bed.node(node).resume()
        for f in list(self.active[node]):
            if f in ("daemon-dead", "corosync-dead", "backend-dead", "daemon-stopped", "paused"):
                self.flag(node, f, False)
        old = self.sampler.prog.get(node)
        self.cl.peers.set_power(node, True)
        self.recoveries += 1
        self.event("recover power on and boot %s (it was fenced)" % node, scheduled=False)
        self.cl.boot(node)
        self.expect_new_gate(node, old)

    def expect_new_gate(self, node, old):
        """A daemon that starts attaches its own gate: read its map from now on."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if self.sampler.refresh(node) not in (None, old):
                return
            time.sleep(0.02)
        self.event("note    %s: no new lease gate on eth0 within 5 s of its daemon's start" % node, scheduled=False)

    def ensure_running(self, node, deadline):
        """Bring node back however the faults left it: powered off by a fence -> wait for
        the confirmed fence, power on, boot; a dead Corosync or hafrontd -> start it. Then
        wait until every daemon sees it as a member and nobody is fencing it."""
        while True:
            if time.monotonic() > deadline:
                raise HarnessError("%s did not come back within %.0f s: %s" % (node, MEMBER_TIMEOUT, self.state_text()))
            try:
                if self.cl.peers.power_state(node) == "off":
                    self.power_on(node)
                else:
                    self.cl.reap(node)
                    if self.cl.coro.get(node) is None or not self.cl.coro[node].alive():
                        self.cl.start_corosync(node)
                        self.recoveries += 1
                        self.event("recover restart corosync on %s (it had exited)" % node, scheduled=False)
                    if not self.cl.h[node].proc.alive():
                        self.start_daemon(node)
                        self.recoveries += 1
                        self.event("recover restart hafrontd on %s (it had exited)" % node, scheduled=False)
                    if not self.cl.backend[node].alive():
                        self.cl.start_backend(node)
            except PoweredOff:
                continue
            t_wait = time.monotonic()
            while time.monotonic() - t_wait < 20:
                if self.cl.peers.power_state(node) == "off":
                    break
                if self.member_everywhere(node):
                    # Still a member a little later: a node back from a pause can be
                    # dropped again by Corosync (its knet links flap once), then fenced.
                    time.sleep(SETTLE)
                    if self.member_everywhere(node):
                        return
                time.sleep(0.2)

    def healthy(self, node):
        """Powered, its processes running, a member everywhere."""
        return self.cl.peers.power_state(node) == "on" and self.daemon_ok(node) and \
            self.cl.coro[node].alive() and self.cl.backend[node].alive() and self.member_everywhere(node)

    def recover_all(self):
        """Before a fault: any node that went down on its own (a late fence, an exited
        process) comes back first, so only one node is faulted at a time."""
        for node in self.names:
            if not self.active[node] and not self.healthy(node):
                self.event("recover %s is not healthy before the next fault (%s)" % (node, self.node_text(node)),
                           scheduled=False)
                self.ensure_running(node, time.monotonic() + MEMBER_TIMEOUT)

    def node_text(self, node):
        st = self.cl.status(node)
        return "power %s, %s" % (self.cl.peers.power_state(node), "daemon not answering" if st is None else
                                 "members %s" % [m["name"] for m in st["cluster"]["members"]])

    # ------------------------------------------------------------------ the schedule
    def draw(self):
        """Every random choice of one step, always in the same order, so a seed gives the
        same schedule whatever the cluster did."""
        r = self.rng
        return {"kind": weighted(r, self.faults), "role": r.random(), "pick": r.randrange(len(self.names)),
                "pick2": r.randrange(len(self.names) - 1), "hold": r.random(), "gap": r.uniform(0.5, 2.5),
                "sub": r.choice(["partition", "pause-node"]), "sub2": r.choice(["partition", "pause-node"]),
                "follow": r.choice(["partition", "pause-node", "kill-daemon"]), "bmc_hold": r.uniform(3.0, 6.0),
                "after_bmc": r.uniform(0.0, 2.0)}

    def target(self, d):
        """The holder of VIP a (30%), of VIP b (30%), or a node by index."""
        if d["role"] < 0.6:
            vip = "a" if d["role"] < 0.3 else "b"
            holders = self.sampler.valid_now(vip)
            if len(holders) == 1:
                return holders[0], "holder of %s" % vip
        return self.names[d["pick"]], "by index"

    def register_failovers(self, kind, victims, t0):
        for f in self.failovers:
            if f[4] is None:
                f[4] = t0
        for v in self.vips:
            for victim in victims:
                if victim in self.sampler.valid_now(v):
                    self.failovers.append([kind, v, victim, t0, None, None, None])

    def step(self):
        d = self.draw()
        kind = d["kind"]
        self.recover_all()
        if kind == "double":
            a = self.names[d["pick"]]
            b = [n for n in self.names if n != a][d["pick2"]]
            t0 = time.monotonic()
            self.register_failovers("double", [a, b], t0)
            self.inject(d["sub"], a, "double fault, 1 of 2")
            self.inject(d["sub2"], b, "double fault, 2 of 2: %s is left in a minority" %
                        [n for n in self.names if n not in (a, b)][0])
            time.sleep(1.5 + 2.5 * d["hold"])
            self.repair(a)
            self.repair(b)
            deadline = time.monotonic() + MEMBER_TIMEOUT
            self.ensure_running(a, deadline)
            self.ensure_running(b, deadline)
        elif kind == "fail-bmc":
            node, why = self.target(d)
            self.inject("fail-bmc", node, why)
            time.sleep(0.3)
            t0 = time.monotonic()
            self.register_failovers("fail-bmc+" + d["follow"], [node], t0)
            self.inject(d["follow"], node, "while its BMC is unreachable")
            time.sleep(d["bmc_hold"])
            self.repair_only(node, "bmc-down")
            if self.two_node and d["follow"] == "partition":
                self.fence_race(node, t0)     # the split is a race too: node cannot be shot until now
            else:
                time.sleep(d["after_bmc"])
            self.repair(node)
            self.ensure_running(node, time.monotonic() + MEMBER_TIMEOUT)
        else:
            node, why = self.target(d)
            t0 = time.monotonic()
            self.register_failovers(kind, [node], t0)
            self.inject(kind, node, why)
            if kind == "flap-link":
                time.sleep(0.1 + 0.8 * d["hold"])
            elif self.two_node and kind == "partition":
                self.fence_race(node, t0)
            else:
                time.sleep({"partition": 0.5 + 3.5 * d["hold"], "kill-daemon": 0.2 + 2.8 * d["hold"],
                            "kill-corosync": 0.2 + 2.8 * d["hold"], "stop-daemon": 0.2 + 2.8 * d["hold"],
                            "pause-node": 0.3 + 2.7 * d["hold"], "kill-backend": 1.0 + 3.0 * d["hold"]}[kind])
            self.repair(node)
            self.ensure_running(node, time.monotonic() + MEMBER_TIMEOUT)
        if self.two_node:
            self.check_two_node_power()
        self.analyse()
        self.cleanup_shm()
        time.sleep(d["gap"])

    def cleanup_shm(self):
        for p in cleanup_shm(self.cl.corosync_pids):
            self.cl.corosync_pids.remove(p)

    def repair_only(self, node, flag):
        if flag == "bmc-down" and flag in self.active[node]:
            t = time.monotonic()
            self.cl.peers.clear_fault("ipmi-" + node)
            self.flag(node, "bmc-down", False, t)
            self.event("repair  BMC of %s back" % node)

    # ------------------------------------------------------------------ two nodes
    def fence_race(self, cut, t0):
        """(e) A split of a two-node cluster: both halves stay quorate and race to fence
        each other. Exactly one must be powered off, and the other must end up holding
        every VIP. The partition is held until the race is decided."""
        other = [n for n in self.names if n != cut][0]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if any(self.cl.power_off_events(n, t0) for n in self.names):
                break
            time.sleep(0.05)
        # The loser's own shot was delayed: give it that long and more to (wrongly) fire.
        time.sleep(PRIORITY_DELAY + N1_FENCE_DELAY + 1.5)
        off = [n for n in self.names if self.cl.power_off_events(n, t0)]
        t = time.monotonic()
        if len(off) != 1:
            self.add_violation(inv.Violation(t, "e: fence race", None,
                                             "after the split of %s and %s, %s powered off (exactly one must be)" %
                                             (cut, other, " and ".join(off) if off else "no node was")))
            self.race_results.append((cut, None))
            return
        winner = [n for n in self.names if n not in off][0]
        t_wait = time.monotonic()
        while time.monotonic() - t_wait < 10 and not all(self.sampler.valid_now(v) == [winner] for v in self.vips):
            time.sleep(0.05)
        missing = [v for v in self.vips if self.sampler.valid_now(v) != [winner]]
        if missing:
            self.add_violation(inv.Violation(time.monotonic(), "e: fence race", ",".join(missing),
                                             "%s won the race against %s but does not hold %s 10 s later (kernel: %s)" %
                                             (winner, off[0], ", ".join(missing), self.holders_text())))
        self.race_results.append((cut, winner))
        self.event("check   fence race after cutting %s: %s survived, %s powered off" % (cut, winner, off[0]),
                   scheduled=False)

    def check_two_node_power(self):
        """(e) never both nodes of a two-node cluster off at once."""
        evs = sorted((e["mono"], e["node"], e["to"]) for e in self.cl.peers.power_events())
        off = set()
        for t, node, to in evs:
            (off.add if to == "off" else off.discard)(node)
            if len(off) == 2:
                self.add_violation(inv.Violation(t, "e: fence race", None, "both nodes powered off at once",
                                                 key=("e-both", round(t, 2))))

    # ------------------------------------------------------------------ analysis
    def power_intervals(self):
        out = {n: [] for n in self.names}
        for e in self.cl.peers.power_events():
            if e["to"] == "off":
                out[e["node"]].append([e["mono"], None])
            elif out[e["node"]] and out[e["node"]][-1][1] is None:
                out[e["node"]][-1][1] = e["mono"]
        return {n: [tuple(x) for x in v] for n, v in out.items()}

    def add_violation(self, v):
        if v.key in self.reported:
            return
        self.reported.add(v.key)
        self.violations.append(v)
        before = [e for e in self.events if e[0] <= v.t][-6:]
        print("VIOLATION at %.3f s, invariant %s, VIP %s: %s" % (self.rel(v.t), v.invariant, v.vip or "-", v.text),
              flush=True)
        for t, text in before:
            print("    %9.3f  %s" % (self.rel(t), text), flush=True)

    def analyse(self, final=False):
        """Check everything recorded up to now - 1 s (the observers' readers lag a little)
        and forget the bulky records before it."""
        w0 = self.analysed_until
        w1 = time.monotonic() - (0.0 if final else 1.0)
        if w1 <= w0:
            return
        # A blind observer would pass every check: it must still be running.
        dead = [name for name, ok in [("the kernel gate sampler", self.sampler.alive()),
                                      ("the ARP observer", not self.obs._eof)] +
                [("the prober of VIP %s" % v, p.proc.alive()) for v, p in self.probers.items()] if not ok]
        if dead:
            raise HarnessError("%s stopped" % ", ".join(dead))
        p = self.params
        power = self.power_intervals()
        flags = [f for f in self.flags if f[2] != "bmc-down"]
        cuts = inv.lease_cuts(p, flags, power, w1)
        changes = self.sampler.snapshot(since=w0 - 120)
        evidence = self.logs.poll()
        arp = {}
        for v, (ip, _, _) in self.vips.items():
            arp[v] = [(t, self.mac.get(m, m)) for t, m in self.obs.answers(ip, since=w0 - 0.1, until=w1 + 0.1)]
        requests = {}
        for v, pr in self.vips.items():
            ok, failed = self.probers[v].take()
            pok, pfailed = self.pending_requests[v]
            ok, failed = sorted(pok + ok), sorted(pfailed + failed)
            requests[v] = ([r for r in ok if r[1] < w1], [r for r in failed if r[0] < w1])
            self.pending_requests[v] = ([r for r in ok if r[1] >= w1], [r for r in failed if r[0] >= w1])
        vs = []
        vs += inv.kernel_overlaps(p, changes, power)
        rounds = []
        for v, (ip, _, _) in self.vips.items():
            for t, macs in self.obs.overlaps(ip, since=w0, until=w1):
                rounds.append((v, "probe round", t, {self.mac.get(m, m) for m in macs}))
            for t, macs in self.obs.overlaps(ip, window_ms=WINDOW * 1000, since=w0, until=w1):
                rounds.append((v, "%d ms window" % (WINDOW * 1000), t, {self.mac.get(m, m) for m in macs}))
        vs += inv.arp_round_overlaps(rounds)
        win_arp = {v: [x for x in a if w0 <= x[0] < w1] for v, a in arp.items()}
        vs += inv.cut_answers(p, cuts, changes, power, win_arp, requests)
        tv, seen = inv.takeovers(p, changes, power, cuts, evidence)
        vs += tv
        for t, vip, old, new, proof in seen:
            if t >= w0 - 120:
                self.proofs[(vip, old, new, round(t, 3))] = proof
        vs += inv.request_checks(p, requests, arp, changes)
        for v in sorted(vs, key=lambda x: x.t):
            if v.t >= w0 - 120:
                self.add_violation(v)
        # measurements
        for f in self.failovers:
            kind, vip, victim, t0, limit, a_ms, r_ms = f
            if t0 > w1 or (a_ms is not None and r_ms is not None):
                continue
            lim = limit if limit is not None else float("inf")
            if a_ms is None:
                t = next((t for t, n in win_arp[vip] if t >= t0 and t < lim and n != victim), None)
                f[5] = None if t is None else (t - t0) * 1000
            if r_ms is None:
                t = next((c for c, s, n in requests[vip][0] if s >= t0 and c < lim and n != victim), None)
                f[6] = None if t is None else (t - t0) * 1000
        for v in self.vips:
            ok = [r for r in requests[v][0] if r[1] >= self.t_first_steady]
            failed = [r for r in requests[v][1] if r[0] >= self.t_first_steady]
            self.requests_ok[v] += len(ok)
            self.requests_failed[v] += len(failed)
            for c, s, n in ok:
                if self.last_ok[v] is not None and c - self.last_ok[v] > self.longest_outage[v][0]:
                    self.longest_outage[v] = (c - self.last_ok[v], self.last_ok[v])
                self.last_ok[v] = max(c, self.last_ok[v] or c)
        for x in inv.quorum_release_latency([e for e in evidence if w0 <= e[0] < w1], changes):
            self.quorum_release.append(x)
        self.log_gates(changes, final)
        self.obs.forget(w1 - 2.0)
        self.sampler.forget(w1 - 600)
        self.analysed_until = w1

    def log_gates(self, changes, final):
        """Every gate value the kernel view read, into the run folder (kept by --logs), so a
        violation can be read again later: node, VIP, expiry, first and last read, the
        reads before and after (monotonic seconds)."""
        with open(os.path.join(self.bed.dir, "kernel-gates.tsv"), "a") as f:
            for c in changes:
                if not c.logged and (c.next_sample is not None or final):
                    c.logged = True
                    f.write("%s\t%s\t%.6f\t%.6f\t%.6f\t%s\t%s\n" % (
                        c.node, c.vip, c.value, c.first_seen, c.last_seen,
                        "-" if c.prev_sample is None else "%.6f" % c.prev_sample,
                        "-" if c.next_sample is None else "%.6f" % c.next_sample))

    # ------------------------------------------------------------------ the run
    def run(self, n_events):
        while self.n_events < n_events:
            self.step()
        self.event("end     of the schedule: waiting for steady state", scheduled=False)
        self.recover_all()
        s = self.wait_steady("the end of the run")
        time.sleep(1.5)
        self.analyse(final=True)
        self.event("steady: %s" % ", ".join("%s on %s" % kv for kv in s.items()), scheduled=False)
        return s

    def incidents(self, gap=3.0):
        """Violations grouped by time: [(first t, last t, [violations])]."""
        out = []
        for v in sorted(self.violations, key=lambda v: v.t):
            if out and v.t - out[-1][1] <= gap:
                out[-1][1] = v.t
                out[-1][2].append(v)
            else:
                out.append([v.t, v.t, [v]])
        return out

    def report(self, elapsed):
        print()
        print("chaos: %d events (%d recoveries of fenced or exited nodes) in %.0f s, seed %d, %d nodes" %
              (self.n_events, self.recoveries, elapsed, self.seed, len(self.names)))
        print("observer: kernel gates read every %d ms (%d sample rounds, longest gap %.0f ms, %d gaps over 25 ms); "
              "ARP probe every %d ms; a request per VIP every %d ms (time-out %d ms)" %
              (SAMPLE_MS, self.sampler.samples, self.sampler.max_gap * 1000, self.sampler.late, SAMPLE_MS, PROBE_MS,
               REQUEST_TIMEOUT_MS))
        print("availability (requests answered / sent, from the first steady state):")
        for v in self.vips:
            ok, failed = self.requests_ok[v], self.requests_failed[v]
            lo = self.longest_outage[v]
            print("  %s  %6.2f%%  (%d / %d)  longest gap between answers %.0f ms%s" % (
                v, 100.0 * ok / max(1, ok + failed), ok, ok + failed, lo[0] * 1000,
                " at %.1f s" % self.rel(lo[1]) if lo[1] else ""))
        print("failover: fault of a holder -> first ARP answer / first request served by another node (ms)")
        hdr = "  %-28s %4s %5s %7s %7s %7s   %7s %7s %7s" % ("fault", "n", "moved", "arp p50", "p99", "max",
                                                          "tcp p50", "p99", "max")
        print(hdr)
        kinds = sorted({f[0] for f in self.failovers})
        for k in kinds:
            rows = [f for f in self.failovers if f[0] == k]
            a = [f[5] for f in rows if f[5] is not None]
            r = [f[6] for f in rows if f[6] is not None]

            def fmt(xs, q):
                return "%7.0f" % (pct(xs, q) if q < 100 else max(xs)) if xs else "%7s" % "-"
            print("  %-28s %4d %5d %s %s %s   %s %s %s" % (k, len(rows), len(a), fmt(a, 50), fmt(a, 99), fmt(a, 100),
                                                          fmt(r, 50), fmt(r, 99), fmt(r, 100)))
        print("  (n: faults of a VIP's holder, per VIP; moved: another node answered before the next fault; the rest "
              "kept the VIP through the fault)")
        counts = {}
        for proof in self.proofs.values():
            key = proof.split(" (")[0] if proof else "NO PROOF (violation)"
            counts[key] = counts.get(key, 0) + 1
        print("takeovers by proof: %s" % (", ".join("%s %d" % kv for kv in sorted(counts.items())) or "none"))
        if self.quorum_release:
            ms = [x[2] for x in self.quorum_release]
            print("quorum loss or lost Corosync (daemon log) -> its gates seen expired: n=%d, p50 %.0f ms, max %.0f ms "
                  "(design target 100 ms; measured, not asserted)" % (len(ms), pct(ms, 50), max(ms)))
        if self.two_node:
            print("fence races: %d, single survivor in %d" % (len(self.race_results),
                                                             sum(1 for _, w in self.race_results if w)))
        by = {}
        for v in self.violations:
            by[v.invariant] = by.get(v.invariant, 0) + 1
        for t0, t1, vs in self.incidents():
            faults = [text for t, text in self.events if t <= t0 and text.startswith("fault")]
            kinds = {}
            for v in vs:
                kinds[v.invariant.split(":")[0]] = kinds.get(v.invariant.split(":")[0], 0) + 1
            print("incident at %.1f-%.1f s, VIP %s: %s; after: %s" % (
                self.rel(t0), self.rel(t1), ",".join(sorted({v.vip or "-" for v in vs})),
                " ".join("(%s) x%d" % kv for kv in sorted(kinds.items())), faults[-1] if faults else "-"))
        print("violations: %d%s" % (len(self.violations), (" (" + ", ".join("%s: %d" % kv for kv in sorted(by.items()))
                                                           + ")") if by else ""))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, help="schedule seed (default: random, printed)")
    ap.add_argument("--events", type=int, default=24, help="scheduled faults and repairs (default 24)")
    ap.add_argument("--long", type=int, metavar="N", help="run N events (same as --events N)")
    ap.add_argument("--nodes", type=int, choices=(2, 3), default=3)
    ap.add_argument("--backend-faults", action=argparse.BooleanOptionalAction, default=True,
                    help="also kill backends and check that a node whose backend is dead stops answering (hafrontd's "
                         "health gate); on by default")
    ap.add_argument("--backend-bound", type=float, default=3.0,
                    help="seconds after a backend's death by which its node must not answer (default 3)")
    ap.add_argument("--faults", help="only these fault kinds, comma-separated (a different schedule): %s" %
                    ",".join(k for k, _ in FAULTS_3 + [BACKEND_FAULT]))
    ap.add_argument("--logs", help="copy every process log of the run into this folder")
    args = ap.parse_args()
    if args.faults:
        args.faults = [k for k in args.faults.split(",") if k]
        unknown = [k for k in args.faults if k not in dict(FAULTS_3 + [BACKEND_FAULT])]
        if unknown:
            ap.error("unknown fault kind(s): %s" % ", ".join(unknown))
    n_events = args.long or args.events
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 2 ** 31)
    print("chaos: seed %d (replay: tests/chaos/chaos.py --seed %d --events %d --nodes %d%s%s)" %
          (seed, seed, n_events, args.nodes, " --backend-faults" if args.backend_faults else "",
           " --faults " + ",".join(args.faults) if args.faults else ""), flush=True)
    print("chaos: backend faults %s" % ("ON: a node whose backend is dead must stop answering within %.1f s" %
                                        args.backend_bound if args.backend_faults else
                                        "off (--no-backend-faults: hafront's health gate is not checked)"),
          flush=True)
    netns.require_netns()
    t_begin = time.monotonic()
    chaos = None
    completed = False
    # SIGTERM: the test bed cleans up, then calls this, so that `finally` blocks and atexit
    # (Corosync's /dev/shm leftovers) run too.
    signal.signal(signal.SIGTERM, lambda sig, frame: sys.exit(128 + sig))
    corosync_pids = []
    atexit.register(lambda: cleanup_shm(corosync_pids))
    with netns.TestBed(nodes=args.nodes, mgmt=True) as bed:
        snapshot_binaries(bed.dir)
        chaos = Chaos(bed, args, seed)
        chaos.corosync_pids_out = corosync_pids
        if args.backend_faults:
            chaos.params.backend_bound = args.backend_bound
        try:
            chaos.setup()
            chaos.run(n_events)
            completed = True
        except HarnessError as e:
            print("chaos: the run did not complete: %s" % e, flush=True)
        except Exception:
            traceback.print_exc()
            print("chaos: the run did not complete (harness error above)", flush=True)
        finally:
            if not completed:
                print(bed.logs_tail(15), flush=True)
            for attr in ("sampler",):
                if hasattr(chaos, attr):
                    getattr(chaos, attr).stop()
            for pr in getattr(chaos, "probers", {}).values():
                pr.stop()
            if args.logs:
                save_logs(bed, args.logs)
                for b in ("hafrontd", "hafrontctl"):   # the run's copies of the binaries
                    try:
                        os.unlink(os.path.join(args.logs, b))
                    except OSError:
                        pass
            for x in getattr(getattr(chaos, "cl", None), "h", {}).values():
                if x.proc and x.proc.alive():
                    x.proc.kill(signal.SIGCONT)
    cleanup_shm(corosync_pids)   # the bed killed the rest of them
    if chaos is not None and hasattr(chaos, "sampler"):
        chaos.report(time.monotonic() - t_begin)
    nv = len(chaos.violations) if chaos else 0
    rc = 0 if completed and nv == 0 else 1
    if not completed:
        print("chaos: incomplete run (exit 1)")
    print("chaos events=%d violations=%d" % (chaos.n_events if chaos else 0, nv), flush=True)
    return rc


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:   # the test bed has cleaned up already
        print("chaos: interrupted", flush=True)
        sys.exit(130)

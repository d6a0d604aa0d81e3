"""The invariants of DESIGN.md, checked from outside the nodes: pure functions over what
the chaos run recorded (no I/O, no clock), so tests/chaos/invariants_selftest.py can feed
them made-up timelines and show that each one fails when it should.

Times are time.monotonic() seconds. The inputs:

- gate changes (kernel_view.Change): per (node, VIP) the values of the node's kernel gate
  and when they were seen; a node answers for a VIP exactly while its gate is valid and
  it is powered (its interfaces are up);
- power: {node: [(off, on or None)]}: when a fence (the BMC's power hook) took the node's
  interfaces down, and when its power came back;
- flags: [(t, node, flag, on)]: the faults the run injected and repaired (ground truth);
- ARP answers seen by the client: {vip: [(t, node)]}, and probe rounds;
- client requests: ok (connected, started, node) / failed (started, ended, reason);
- evidence from the daemons' logs: [(t, kind, node, vip)] (a lease proof, a fence proof,
  a release, a quorum loss).

Each check returns Violation objects; the caller prints them with the events before."""
import bisect

__all__ = ["Params", "Violation", "lease_cuts", "powered_intervals", "kernel_overlaps", "cut_answers",
           "takeovers", "request_checks", "arp_round_overlaps", "failover_times", "quorum_release_latency",
           "FLAGS_DOWN", "FLAGS_ISOLATED"]

# A node whose daemon cannot renew (and whose daemon does not acknowledge others' states).
FLAGS_DOWN = ("paused", "daemon-stopped", "daemon-dead", "corosync-dead")
# A node that hears nobody on the data network.
FLAGS_ISOLATED = ("partition", "link-down")
BACKEND_DEAD = "backend dead"
REASON = {"paused": "node paused", "daemon-stopped": "daemon SIGSTOPped", "daemon-dead": "daemon killed",
          "corosync-dead": "Corosync killed", "partition": "cut off (partition)", "link-down": "link down"}


class Params:
    """lease, margin: the cluster's timings; sample: the kernel sampler's interval;
    window: the ARP/request window (see doc/chaos.md: 20 ms, as lease_failover.py);
    two_node: votequorum two_node (both halves of a split stay quorate)."""

    def __init__(self, nodes, lease=0.5, margin=0.1, sample=0.005, window=0.020, two_node=False,
                 backend_bound=None):
        self.nodes = list(nodes)
        self.lease, self.margin, self.sample, self.window = lease, margin, sample, window
        self.two_node = two_node
        self.backend_bound = backend_bound

    def bound(self, reason):
        """How long after the start of a cut of this kind the node may still answer."""
        if reason == "powered off":
            return 0.0
        if reason == BACKEND_DEAD:
            return self.backend_bound
        return self.cut_bound

    @property
    def cut_bound(self):
        """How long a node cut off may still answer: its lease, the margin, one sample."""
        return self.lease + self.margin + self.sample


class Violation:
    def __init__(self, t, invariant, vip, text, key=None):
        self.t, self.invariant, self.vip, self.text = t, invariant, vip, text
        self.key = key or (invariant, vip, round(t, 3), text)

    def __repr__(self):
        return "<Violation %s t=%.3f %s: %s>" % (self.invariant, self.t, self.vip, self.text)


# ------------------------------------------------------------------------------ ground truth
def powered_intervals(power, node):
    """[(off, on)] of node, on = inf while still off."""
    return [(a, b if b is not None else float("inf")) for a, b in power.get(node, [])]


def _is_off(power, node, t):
    return any(a <= t < b for a, b in powered_intervals(power, node))


def _bound_class(reason):
    """Cuts of one class keep their start when the reason changes (the lease counts from
    the first fault); a power-off or a dead backend has a bound of its own."""
    return reason if reason in ("powered off", BACKEND_DEAD) else "lease"


def lease_cuts(params, flags, power, t_end):
    """{node: [(start, end, reason)]}: when the node could not renew a lease, from the
    injected faults and the power log. A node renews only while its daemon runs, its
    partition is quorate (votequorum: a majority of the configured votes; two_node: any
    side) and a majority of the configured nodes acknowledge its states: itself and the
    live daemons it can reach, plus nodes that are powered off (fenced nodes count, as in
    doc/lease.md)."""
    nodes = params.nodes
    n = len(nodes)
    times = sorted({t for t, *_ in flags} | {a for v in power.values() for a, _ in v}
                   | {b for v in power.values() for _, b in v if b is not None})
    active = {x: set() for x in nodes}
    changes = sorted(flags, key=lambda f: f[0])
    out = {x: [] for x in nodes}
    open_cut = {}
    i = 0
    for t in [float("-inf")] + times:
        while i < len(changes) and changes[i][0] <= t:
            _, node, flag, on = changes[i]
            (active[node].add if on else active[node].discard)(flag)
            i += 1
        off = {x for x in nodes if _is_off(power, x, t)}
        voting = [x for x in nodes if x not in off and "paused" not in active[x]
                  and "corosync-dead" not in active[x]]
        main = [x for x in voting if not (active[x] & set(FLAGS_ISOLATED))]
        for x in nodes:
            reason = None
            if x in off:
                reason = "powered off"
            else:
                down = [f for f in FLAGS_DOWN if f in active[x]]
                iso = [f for f in FLAGS_ISOLATED if f in active[x]]
                if down:
                    reason = REASON[down[0]]
                elif iso:
                    votes = 1
                    ackers = {x}
                else:
                    votes = len(main)
                    ackers = {y for y in main if not (active[y] & set(FLAGS_DOWN))}
                if reason is None:
                    quorate = votes * 2 > n or (params.two_node and votes >= 1)
                    if not quorate:
                        reason = REASON[iso[0]] if iso else "minority: no quorum"
                    elif len(ackers | off) * 2 <= n:
                        reason = REASON[iso[0]] if iso else "without a majority of acknowledging daemons"
                if reason is None and "backend-dead" in active[x] and params.backend_bound is not None:
                    reason = BACKEND_DEAD
            if x in open_cut and (not reason or _bound_class(reason) != _bound_class(open_cut[x][1])):
                s, r = open_cut.pop(x)
                out[x].append((s, t, r))
            if reason and x not in open_cut:
                open_cut[x] = (t, reason)
    for x, (s, r) in open_cut.items():
        out[x].append((s, t_end, r))
    return out


# ------------------------------------------------------------------------------ (a) one holder
def _clip_powered(interval, offs):
    """Parts of interval (closed) outside the power-off intervals."""
    parts = [interval]
    for a, b in offs:
        nxt = []
        for s, e in parts:
            if e < a or s >= b:
                nxt.append((s, e))
                continue
            if s < a:
                nxt.append((s, a))
            if e >= b:
                nxt.append((b, e))
        parts = nxt
    return parts


def kernel_overlaps(params, changes, power):
    """(a) in the kernel: two powered nodes whose gates for one VIP were valid for sure at
    the same instant. Exact up to the read times (no tolerance): each interval is bounded
    by two reads of the same value and by the expiry itself."""
    out = []
    by_vip = {}
    for c in changes:
        iv = c.sure_valid()
        if iv is None:
            continue
        for s, e in _clip_powered(iv, powered_intervals(power, c.node)):
            by_vip.setdefault(c.vip, []).append((s, e, c.node, c))
    for vip, ivs in by_vip.items():
        ivs.sort(key=lambda x: x[0])
        live = []   # (end, node, change)
        for s, e, node, c in ivs:
            live = [x for x in live if x[0] >= s]
            for e2, node2, c2 in live:
                if node2 != node:
                    out.append(Violation(s, "a: one holder", vip,
                                         "%s's and %s's gates both valid at once (kernel): %s's gate seen valid "
                                         "%.3f-%.3f (expiry %.3f), %s's from %.3f (expiry %.3f)" %
                                         (node2, node, node2, c2.first_seen, c2.last_seen, c2.value, node, s, c.value),
                                         key=("a-kernel", vip, node2, node, round(c2.first_seen, 3))))
            live.append((e, node, c))
    return out


def arp_round_overlaps(rounds):
    """(a) on the wire: [(t, {node names})] from Observer.overlaps (per probe round and per
    20 ms window), turned into violations."""
    out = []
    for vip, kind, t, names in rounds:
        out.append(Violation(t, "a: one holder", vip,
                             "%s answered ARP within one %s" % (" and ".join(sorted(names)), kind),
                             key=("a-arp", vip, kind, round(t, 3))))
    return out


# ------------------------------------------------------------------------------ (b) only where it may
def cut_answers(params, cuts, changes, power, arp, requests):
    """(b) a node that could not renew (cut off, paused, its daemon stopped or killed, in a
    minority) answers for no VIP once lease + margin + one sample have passed since the
    fault; a powered-off node answers nothing at all. Checked on the kernel gates (which
    see a partitioned node too) and on what the client saw (ARP answers, requests)."""
    out = []
    for node, ivs in cuts.items():
        for s, e, reason in ivs:
            if reason == "powered off":
                continue
            d = s + params.bound(reason)
            if d >= e:
                continue
            found = {}   # vip -> the first violation
            for c in changes:
                if c.node != node or c.vip in found:
                    continue
                iv = c.sure_valid()
                if iv is None or iv[1] < d or iv[0] > e:
                    continue
                for a, b in _clip_powered((max(iv[0], d), min(iv[1], e)), powered_intervals(power, node)):
                    found[c.vip] = Violation(a, "b: quorate, not fenced", c.vip,
                                             "%s's gate valid at %.3f (expiry %.3f), %.0f ms after it was %s at %.3f "
                                             "(bound %.0f ms)" %
                                             (node, a, c.value, (a - s) * 1000, reason, s, params.bound(reason) * 1000),
                                             key=("b-kernel", c.vip, node, round(s, 3)))
                    break
            out += found.values()
    for vip, answers in arp.items():
        for t, node in answers:
            for s, e, reason in cuts.get(node, ()):
                d = s + params.bound(reason)
                if d <= t < e:
                    out.append(Violation(t, "b: quorate, not fenced", vip,
                                         "%s answered ARP %.0f ms after it was %s at %.3f" %
                                         (node, (t - s) * 1000, reason, s), key=("b-arp", vip, node, round(s, 3))))
    for vip, (ok, _failed) in requests.items():
        for conn, start, node in ok:
            for s, e, reason in cuts.get(node, ()):
                d = s + params.bound(reason)
                if d <= start and conn < e:
                    out.append(Violation(conn, "b: quorate, not fenced", vip,
                                         "a client request was served by %s %.0f ms after it was %s at %.3f" %
                                         (node, (start - s) * 1000, reason, s), key=("b-req", vip, node, round(s, 3))))
    return out


# ------------------------------------------------------------------------------ (c) proof
def _holdings(changes, vip):
    """[(node, start, end, first change)] for vip: maximal runs of sure-valid intervals
    of one node, in time order."""
    ivs = sorted(((c.sure_valid(), c) for c in changes if c.vip == vip and c.sure_valid()), key=lambda x: x[0][0])
    runs = []
    for (s, e), c in ivs:
        if runs and runs[-1][0] == c.node and s <= runs[-1][2] + 0.5:
            runs[-1][2] = max(runs[-1][2], e)
        else:
            runs.append([c.node, s, e, c])
    return runs


def takeovers(params, changes, power, cuts, evidence):
    """(c) every time a VIP's gate becomes valid on a node other than the one that held it
    last, the old holder must have been proven unable to answer before the new gate was
    written: powered off by a fence, its lease proven run out by the members (log), or it
    released (its gate written to an expired value in the kernel, or its log says so); or,
    failing those, lease + margin had passed since the fault that cut it off. Returns
    (violations, [(t, vip, old, new, proof)])."""
    out, seen = [], []
    vips = sorted({c.vip for c in changes})
    for vip in vips:
        runs = _holdings(changes, vip)
        for prev, cur in zip(runs, runs[1:]):
            old, new, c = prev[0], cur[0], cur[3]
            if old == new:
                continue
            # The new gate was written after its previous read (or at its first read).
            t_new = c.prev_sample if c.prev_sample is not None else c.first_seen
            proof = None
            offs = [a for a, _ in powered_intervals(power, old) if prev[1] <= a <= t_new]
            if offs:
                proof = "fenced (powered off %.0f ms before)" % ((t_new - offs[-1]) * 1000)
            if proof is None:
                for t, kind, node, ev_vip in evidence:
                    if node == old and t <= t_new and t >= prev[1] - 0.001 and \
                            (kind == "lease-proof" or kind == "fence-proof" or (kind == "released" and ev_vip == vip)):
                        proof = {"lease-proof": "its lease proven run out", "fence-proof": "proven down (fence)",
                                 "released": "it released (log)"}[kind]
                        break
            if proof is None:
                for r in changes:
                    if r.node == old and r.vip == vip and r.value <= r.first_seen and \
                            prev[2] <= r.first_seen <= c.first_seen:
                        proof = "it released (kernel: gate written to %.3f)" % r.value
                        break
            if proof is None:
                for s, e, reason in cuts.get(old, ()):
                    if reason != BACKEND_DEAD and s <= prev[2] + params.sample and e >= prev[2] and \
                            t_new >= s + params.lease + params.margin:
                        proof = "lease + margin since it was %s (%.0f ms)" % (reason, (t_new - s) * 1000)
                        break
            if proof is None:
                out.append(Violation(t_new, "c: no takeover without proof", vip,
                                     "%s's gate for %s was written at %.3f-%.3f, after %s's (valid until %.3f), "
                                     "with no proof that %s could not answer: no fence, no lease proof, no release, "
                                     "and less than lease + margin since a fault of %s" %
                                     (new, vip, t_new, c.first_seen, old, prev[2], old, old),
                                     key=("c", vip, old, new, round(t_new, 3))))
            seen.append((t_new, vip, old, new, proof))
    return out, seen


# ------------------------------------------------------------------------------ (d) requests
def _maybe_valid_during(changes_by_node, node, vip, a, b):
    """The node's gate for vip may have been valid at some instant of [a, b]."""
    return any(c.maybe_valid_during(a, b) for c in changes_by_node.get((node, vip), ()))


def _records_near(changes_by_node, node, vip, a, b):
    """The node's gate values read around [a, b], for a violation's text."""
    near = [c for c in changes_by_node.get((node, vip), ())
            if (c.next_sample or c.last_seen) >= a - 0.05 and (c.prev_sample or c.first_seen) <= b + 0.05]
    return "; ".join("expiry %.3f read %.3f-%.3f" % (c.value, c.first_seen, c.last_seen) for c in near) or "none"


def request_checks(params, requests, arp, changes, lease_driver=True):
    """(d) a client request is served only by the node whose MAC answers ARP: no other MAC
    answered ARP for the VIP within `window` of the request, and (lease driver) the
    server's gate may have been valid while the request's packets came in (the gate drops
    the VIP's traffic once the lease ran out)."""
    out = []
    by_node = {}
    for c in changes:
        by_node.setdefault((c.node, c.vip), []).append(c)
    for vip, (ok, _failed) in requests.items():
        answers = arp.get(vip, [])
        ts = [t for t, _ in answers]
        for conn, start, node in ok:
            i = bisect.bisect_left(ts, start - params.window)
            j = bisect.bisect_right(ts, conn + params.window)
            others = sorted({n for _, n in answers[i:j] if n != node})
            if others:
                out.append(Violation(conn, "d: requests follow ARP", vip,
                                     "a request (%.3f-%.3f) was served by %s while %s answered ARP within %.0f ms" %
                                     (start, conn, node, ", ".join(others), params.window * 1000),
                                     key=("d-arp", vip, node, round(conn, 2))))
            if lease_driver and not _maybe_valid_during(by_node, node, vip, start - params.sample, conn):
                out.append(Violation(conn, "d: requests follow ARP", vip,
                                     "a request (%.3f-%.3f) was served by %s whose gate for %s was not valid then "
                                     "(its gate: %s)" % (start, conn, node, vip,
                                                         _records_near(by_node, node, vip, start, conn)),
                                     key=("d-gate", vip, node, round(conn, 2))))
    return out


# ------------------------------------------------------------------------------ measurements
def failover_times(faults, arp, requests):
    """For each fault of a holder: (kind, vip, victim, t_fault, ms to the first ARP answer
    from another node, ms to the first request served by another node); None where none
    came (yet)."""
    out = []
    for kind, vip, victim, t0 in faults:
        a = next((t for t, n in arp.get(vip, []) if t >= t0 and n != victim), None)
        ok = requests.get(vip, ([], []))[0]
        r = next((c for c, s, n in ok if s >= t0 and n != victim), None)
        out.append((kind, vip, victim, t0, None if a is None else (a - t0) * 1000,
                    None if r is None else (r - t0) * 1000))
    return out


def quorum_release_latency(evidence, changes):
    """[(node, t, ms)]: after each "quorum lost" in a daemon's log, how long until its gates
    were seen expired (invariant 4's target is 100 ms; measured, not asserted)."""
    out = []
    for t, kind, node, _ in evidence:
        if kind != "quorum-lost":
            continue
        worst = 0.0
        for c in changes:
            if c.node != node:
                continue
            iv = c.sure_valid()
            if iv and iv[0] <= t <= iv[1]:
                worst = max(worst, iv[1] - t)
        out.append((node, t, worst * 1000))
    return out

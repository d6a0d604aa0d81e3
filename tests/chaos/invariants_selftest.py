#!/usr/bin/env python3
"""The chaos checks must be able to fail: each invariant of invariants.py is fed a made-up
timeline that breaks it (and one that does not). No root, no network, no clock.

    python3 tests/chaos/invariants_selftest.py"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import invariants as inv  # noqa: E402
from kernel_view import Change  # noqa: E402

failures = []


def check(cond, what):
    print("%s: %s" % ("ok" if cond else "FAIL", what), flush=True)
    if not cond:
        failures.append(what)


def gate(node, vip, expiry, first, last, prev=None, nxt=None):
    """A gate value `expiry` seen from `first` to `last` (reads every 5 ms around it)."""
    c = Change(node, vip, expiry, first, first - 0.005 if prev is None else prev)
    c.last_seen = last
    c.next_sample = last + 0.005 if nxt is None else nxt
    return c


def renewed(node, vip, start, end, lease=0.5, step=0.1, seen_until=None):
    """A holder that takes the VIP at `start` and renews every `step` (expiry = renewal
    + lease) until its lease runs out at `end`; the last value is read until seen_until."""
    times = [start + k * step for k in range(int(round((end - lease - start) / step)) + 1)]
    if not times or times[-1] + lease < end - 1e-9:
        times.append(end - lease)
    out = []
    for i, t in enumerate(times):
        last = times[i + 1] - 0.005 if i + 1 < len(times) else (end + 0.1 if seen_until is None else seen_until)
        out.append(gate(node, vip, t + lease, max(t, start), last))
    return out


P3 = inv.Params(["n1", "n2", "n3"])
P2 = inv.Params(["n1", "n2"], two_node=True)

# ---------------------------------------------------------------- (a) one holder, kernel
a_then_b = renewed("n1", "a", 0.0, 1.0) + renewed("n2", "a", 1.7, 3.0)
check(not inv.kernel_overlaps(P3, a_then_b, {}), "(a) a holder after another one's lease ran out is no double holder")
both = renewed("n1", "a", 0.0, 1.0) + renewed("n2", "a", 0.9, 2.0)
v = inv.kernel_overlaps(P3, both, {})
check(len(v) >= 1 and "n1" in v[0].text and "n2" in v[0].text, "(a) two gates valid at once are caught: %s" % v[:1])
# Only the uncertain edges touch: n1's last value seen at 0.995, n2's first seen at 1.000,
# written somewhere after its previous read at 0.995: not an overlap for sure.
edge = [gate("n1", "a", 1.2, 0.900, 0.995)] + [gate("n2", "a", 1.5, 1.000, 1.2, prev=0.995)]
check(not inv.kernel_overlaps(P3, edge, {}), "(a) values seen at different reads that may not overlap are not reported")
check(not inv.kernel_overlaps(P3, both, {"n1": [(0.85, 5.0)]}),
      "(a) a powered-off node's gate does not count (its interfaces are down)")
check(not inv.kernel_overlaps(P3, renewed("n1", "a", 0.0, 1.0) + renewed("n2", "b", 0.5, 2.0), {}),
      "(a) two VIPs on two nodes are no double holder")
v = inv.arp_round_overlaps([("a", "probe round", 3.0, {"n1", "n2"})])
check(len(v) == 1 and v[0].invariant.startswith("a"), "(a) two MACs in one ARP probe round are reported")

# ---------------------------------------------------------------- ground truth: who may renew
flags = [(1.0, "n3", "partition", True), (4.0, "n3", "partition", False)]
cuts = inv.lease_cuts(P3, flags, {}, 10.0)
check(cuts["n3"] == [(1.0, 4.0, "cut off (partition)")] and not cuts["n1"] and not cuts["n2"],
      "3 nodes, n3 cut off: only n3 cannot renew (%s)" % cuts)
flags = [(1.0, "n2", "paused", True), (1.2, "n3", "partition", True), (3.0, "n2", "paused", False),
         (3.0, "n3", "partition", False)]
cuts = inv.lease_cuts(P3, flags, {}, 10.0)
check(cuts["n1"] == [(1.2, 3.0, "minority: no quorum")], "double fault: n1 is left in a minority from the 2nd fault")
cuts = inv.lease_cuts(P3, [(1.0, "n2", "daemon-dead", True), (1.5, "n3", "daemon-stopped", True)], {}, 10.0)
check(cuts["n1"] == [(1.5, 10.0, "without a majority of acknowledging daemons")],
      "quorate but no majority of live daemons: n1 cannot renew (%s)" % cuts["n1"])
cuts = inv.lease_cuts(P3, [(1.0, "n2", "partition", True)], {"n3": [(0.5, None)]}, 10.0)
check(cuts["n1"] == [(1.0, 10.0, "minority: no quorum")],
      "a powered-off node does not vote: n1 alone with n3 off and n2 cut is a minority (%s)" % cuts["n1"])
cuts = inv.lease_cuts(P2, [(1.0, "n2", "partition", True)], {"n2": [(3.0, None)]}, 10.0)
check(cuts["n1"] == [(1.0, 3.0, "without a majority of acknowledging daemons")] and cuts["n2"][0][:2] == (1.0, 3.0),
      "two nodes split: neither renews until the other is powered off, then the survivor does (%s)" % cuts)

# ---------------------------------------------------------------- (b) only where it may
cuts = inv.lease_cuts(P3, [(1.0, "n3", "partition", True), (4.0, "n3", "partition", False)], {}, 10.0)
ok_gate = renewed("n3", "a", 0.0, 1.45)
check(not inv.cut_answers(P3, cuts, ok_gate, {}, {}, {}), "(b) a cut-off node whose lease runs out in time is fine")
bad_gate = renewed("n3", "a", 0.0, 2.5)
v = inv.cut_answers(P3, cuts, bad_gate, {}, {}, {})
check(len(v) == 1 and "cut off" in v[0].text, "(b) a cut-off node still answering after lease + margin: %s" % v[:1])
v = inv.cut_answers(P3, cuts, [], {}, {"a": [(1.3, "n3"), (1.9, "n3")]}, {})
check(len(v) == 1 and v[0].t == 1.9, "(b) an ARP answer from a cut-off node after the bound is caught, not before")
cuts_off = inv.lease_cuts(P3, [], {"n2": [(2.0, 6.0)]}, 10.0)
v = inv.cut_answers(P3, cuts_off, [], {"n2": [(2.0, 6.0)]}, {"a": [(2.01, "n2")]}, {})
check(len(v) == 1 and "powered off" in v[0].text, "(b) a powered-off node answering at all is caught")
v = inv.cut_answers(P3, cuts, [], {}, {}, {"a": ([(2.2, 2.1, "n3")], [])})
check(len(v) == 1, "(b) a request served by a cut-off node after the bound is caught")
pb = inv.Params(["n1", "n2", "n3"], backend_bound=3.0)
cb = inv.lease_cuts(pb, [(1.0, "n1", "backend-dead", True)], {}, 10.0)
v = inv.cut_answers(pb, cb, renewed("n1", "a", 0.0, 6.0), {}, {}, {})
check(len(v) == 1 and "backend dead" in v[0].text, "(b) --backend-faults: a node answering 3 s after its backend died")
check(not inv.lease_cuts(P3, [(1.0, "n1", "backend-dead", True)], {}, 10.0)["n1"],
      "(b) without --backend-faults a dead backend is not checked")

# ---------------------------------------------------------------- (c) no takeover without proof
moves = renewed("n1", "a", 0.0, 1.0) + renewed("n2", "a", 1.7, 3.0)
v, seen = inv.takeovers(P3, moves, {}, {}, [])
check(len(v) == 1 and "no proof" in v[0].text.replace("with no proof", "no proof"),
      "(c) a takeover with no fence, no lease proof, no release and no fault is caught")
v, seen = inv.takeovers(P3, moves, {}, {}, [(1.6, "lease-proof", "n1", None)])
check(not v and "lease" in seen[0][4], "(c) a takeover after the members proved n1's lease out is fine")
v, seen = inv.takeovers(P3, moves, {}, {}, [(1.8, "lease-proof", "n1", None)])
check(len(v) == 1, "(c) a lease proof logged after the new gate was written does not count")
v, seen = inv.takeovers(P3, moves, {"n1": [(1.5, None)]}, {}, [])
check(not v and seen[0][4].startswith("fenced"), "(c) a takeover after n1 was powered off is fine")
released = renewed("n1", "a", 0.0, 1.0, seen_until=1.195) + [gate("n1", "a", 0.0, 1.2, 1.6)] + \
    renewed("n2", "a", 1.7, 3.0)
v, seen = inv.takeovers(P3, released, {}, {}, [])
check(not v and "released" in seen[0][4], "(c) a takeover after n1 wrote its gate expired (release) is fine")
v, seen = inv.takeovers(P3, moves, {}, {"n1": [(1.0, 5.0, "cut off (partition)")]}, [])
check(not v and "lease + margin" in seen[0][4], "(c) lease + margin after the fault that cut n1 off is proof enough")
v, seen = inv.takeovers(P3, moves, {}, {"n1": [(0.995, 5.0, "daemon killed")]}, [])
check(not v, "(c) ... measured from the fault (0.995 + 0.6 <= 1.695)")
late = renewed("n1", "a", 0.0, 1.0) + renewed("n2", "a", 1.5, 3.0)
v, seen = inv.takeovers(P3, late, {}, {"n1": [(0.99, 5.0, "daemon killed")]}, [])
check(len(v) == 1, "(c) a takeover before lease + margin since the fault, with no other proof, is caught")

# ---------------------------------------------------------------- (d) requests follow ARP
gates = renewed("n1", "a", 0.0, 2.0)
arp = {"a": [(0.50, "n1"), (0.505, "n2")]}
v = inv.request_checks(P3, {"a": ([(0.51, 0.50, "n1")], [])}, arp, gates)
check(len(v) == 1 and "n2 answered ARP" in v[0].text, "(d) a request served by n1 while n2 answered ARP is caught")
v = inv.request_checks(P3, {"a": ([(0.51, 0.50, "n1")], [])}, {"a": [(0.50, "n1")]}, gates)
check(not v, "(d) a request served by the node that answers ARP is fine")
v = inv.request_checks(P3, {"a": ([(2.6, 2.5, "n1")], [])}, {"a": []}, gates)
check(len(v) == 1 and "not valid" in v[0].text, "(d) a request served through a gate whose lease ran out is caught")
# Read expired at 3.000 and 0 at 3.010: a renewal and an expiry may have come and gone
# between the two reads, unseen, so a request at 3.005 proves nothing.
blink = [gate("n1", "a", 2.5, 2.9, 3.0, nxt=3.010), gate("n1", "a", 0.0, 3.010, 3.5, prev=3.0)]
v = inv.request_checks(P3, {"a": ([(3.006, 3.005, "n1")], [])}, {"a": []}, blink)
check(not v, "(d) a request between two different reads is not held against the gate (a value may hide there)")
v = inv.request_checks(P3, {"a": ([(3.3, 3.29, "n1")], [])}, {"a": []}, blink)
check(len(v) == 1, "(d) ... but one while the same expired value was read before and after is caught")

# ---------------------------------------------------------------- measurements
ft = inv.failover_times([("partition", "a", "n1", 1.0)], {"a": [(1.2, "n1"), (1.8, "n2")]},
                        {"a": ([(1.9, 1.85, "n2")], [])})
check(ft[0][4] is not None and abs(ft[0][4] - 800) < 1e-6 and abs(ft[0][5] - 900) < 1e-6,
      "failover time: fault -> first answer from another node (%s)" % (ft,))

if failures:
    print("invariants_selftest: %d FAILED: %s" % (len(failures), "; ".join(failures)))
    sys.exit(1)
print("invariants_selftest: all passed")

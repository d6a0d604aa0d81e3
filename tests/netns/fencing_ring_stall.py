"""A frozen node stalls the whole ring: with the default 1 s token, Corosync needs token +
consensus (about 2.2 s) to form the next membership, and no CPG message is delivered
meanwhile -- longer than liveness_timeout. The survivors must not take that stall for
each other's silence: only the frozen node is fenced, the healthy holder keeps its VIP,
and nobody else is powered off. (The first liveness rule, based on the wall clock, made
every survivor declare the others silent and fence a healthy node.)"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fence_peers"))

import daemons  # noqa: E402
import netns  # noqa: E402
from corosync_cluster_lib import start_cluster  # noqa: E402
from daemons import check, wait_for  # noqa: E402
from fence_peers import FencePeers  # noqa: E402

VIP = "192.0.2.100"

with netns.TestBed(nodes=3, mgmt=True) as bed:
    daemons.BED = bed
    peers = FencePeers(bed, power_timeout=3)
    devices = "".join("  %s: {%s, timeout: 10s}\n" % (n, ", ".join("%s: %s" % kv for kv in p.items()))
                      for n, p in peers.devices().items())
    nodes = "".join("    - {name: n%d, id: %d, address: 192.0.2.1%d, fencing: [[ipmi-n%d]]}\n" % (i, i, i, i)
                    for i in (1, 2, 3))
    h, coro = start_cluster(bed, """cluster:
  name: stall
  mode: corosync
  nodes:
%s  timings: {token: 1000ms, heartbeat_interval: 100ms, liveness_timeout: 1s}
  fencing: {monitor_interval: 0s}
fence_devices:
%svips:
  v: {address: %s/24, interface: eth0, driver: address, prefer: [n1]}
""" % (nodes, devices, VIP))
    for name in h:
        peers.register_node_pids(name, [h[name].proc, coro[name]])
    h["n1"].wait_vip("v", "held", timeout=10)
    wait_for(lambda: all(h[n].vip("v")["holder"] == "n1" for n in h), 5, "everyone sees n1 holding the VIP")

    t0 = time.time()
    bed.node("n3").pause()
    peers.wait_power("n3", "off", timeout=20)
    time.sleep(2.0)  # anything wrongly started would show by now
    off = sorted({e["node"] for e in peers.power_events(since=t0) if e["to"] == "off"})
    check(off == ["n3"], "only the frozen node was powered off: %s" % off)
    for name in ("n1", "n2"):
        log = h[name].log_text()
        check("node n1 is silent" not in log and "node n2 is silent" not in log,
              "%s declared no healthy member silent during the ring stall" % name)
    check(h["n1"].vip("v")["state"] == "held" and h["n1"].proc.alive() and h["n2"].proc.alive(),
          "the holder kept its VIP; both survivors run")
    entry = [e for e in __import__("json").loads(h["n2"].ctl("fence-history", "--json"))["history"]
             if e["target"] == "n3"]
    check(len(entry) == 1 and entry[0]["result"] == "off" and entry[0]["executor"] == "n1",
          "one fence of n3, by n1: %s" % entry)
    for name in ("n1", "n2"):
        h[name].stop()
print("fencing_ring_stall: all passed")

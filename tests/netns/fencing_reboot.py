"""cluster.fencing.action: reboot -- the lost holder is powered off through its BMC, the
off is confirmed, the VIP moves, and the BMC powers the node back on; the node then boots
(the harness starts its Corosync and daemon, as its init would) and rejoins as a fresh
member, without taking the VIP back, and learns from the others' table offers that it was
fenced (fence history is synced to joining nodes)."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fence_peers"))

import daemons  # noqa: E402
import netns  # noqa: E402
from corosync_cluster_lib import start_cluster, start_corosync  # noqa: E402
from daemons import Hafront, check, wait_for  # noqa: E402
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
  name: reboot
  mode: corosync
  nodes:
%s  timings: {token: 300ms, heartbeat_interval: 100ms, liveness_timeout: 1s}
  fencing: {action: reboot, monitor_interval: 0s}
fence_devices:
%svips:
  v: {address: %s/24, interface: eth0, driver: address, prefer: [n1]}
""" % (nodes, devices, VIP))
    cfg = h["n1"].config
    for name in h:
        peers.register_node_pids(name, [h[name].proc, coro[name]])
    obs = bed.observer(vips=[VIP], interval_ms=5)
    h["n1"].wait_vip("v", "held", timeout=10)
    wait_for(lambda: all(h[n].vip("v")["holder"] == "n1" for n in h), 5, "everyone sees n1 holding the VIP")

    t0, m0 = time.time(), time.monotonic()
    old = h["n1"]
    bed.node("n1").pause()
    h["n2"].wait_vip("v", "held", timeout=20)
    events = [e for e in peers.power_events("n1", since=t0)]
    check([e["to"] for e in events][:1] == ["off"], "n1 was powered off first: %s" % [e["to"] for e in events])
    first = obs.wait_answer(VIP, mac=bed.node("n2").mac, after=m0, timeout=5)
    check(first > events[0]["mono_killed"], "the VIP answered from n2 only after n1's processes died")
    peers.wait_power("n1", "on", timeout=10)
    ons = [e for e in peers.power_events("n1", since=t0) if e["to"] == "on"]
    check(len(ons) == 1 and ons[0]["device"] == "ipmi-n1", "then its BMC powered it back on")
    check(not old.proc.alive(), "the old daemon did not survive the reboot")
    entry = [e for e in json.loads(h["n3"].ctl("fence-history", "--json"))["history"] if e["target"] == "n1"][-1]
    check(entry["result"] == "off" and entry["action"] == "reboot" and entry["reason"] == "",
          "history: n1 rebooted, off confirmed, back on: %s" % entry)
    check("(reboot)" in h["n3"].call("fence-history").stdout, "fence-history says it was a reboot")

    # The node boots: its init starts Corosync and hafrontd again.
    node = bed.node("n1")
    node.resume()
    coro["n1"] = start_corosync(bed, cfg, node)
    h["n1"] = Hafront(bed, node, config=cfg).start()
    wait_for(lambda: len(h["n2"].status()["cluster"]["members"]) == 3, 15, "n1 rejoins after its reboot")
    wait_for(lambda: h["n1"].vip("v")["holder"] == "n2", 5, "n1 learns n2 holds the VIP")
    time.sleep(0.5)
    check(h["n1"].vip("v")["state"] == "released", "no failback after the reboot")
    learnt = [e for e in json.loads(h["n1"].ctl("fence-history", "--json"))["history"] if e["target"] == "n1"]
    check(learnt and learnt[-1]["executor"] == "n2" and learnt[-1]["finished_ms"] == entry["finished_ms"],
          "the rebooted n1 learnt its own fencing from the others' table offers: %s" % learnt)
    check(obs.macs_answering_at_once(VIP) <= 1, "never two MACs at once: %s" % obs.overlaps(VIP)[:3])
    for x in h.values():
        x.stop()
print("fencing_reboot: all passed")

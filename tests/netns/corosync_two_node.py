"""A two-node cluster (votequorum two_node) split in two: both sides stay quorate, so
without proof neither may take the other's VIP. Exactly one node holds each VIP
throughout; after the heal, still one."""
import os
import time

import daemons
import netns
from corosync_cluster_lib import start_cluster
from daemons import check, wait_for

CONFIG = """cluster:
  name: pair
  mode: corosync
  quorum: {two_node: true}
  nodes:
    - {name: n1, id: 1, address: 192.0.2.11}
    - {name: n2, id: 2, address: 192.0.2.12}
  timings: {token: 300ms, heartbeat_interval: 100ms, liveness_timeout: 1s}
vips:
  a: {address: 192.0.2.100/24, interface: eth0, driver: address, prefer: [n1]}
  b: {address: 192.0.2.101/24, interface: eth0, driver: address, prefer: [n2], failback: true}
"""

with netns.TestBed(nodes=2) as bed:
    daemons.BED = bed
    h, coro = start_cluster(bed, CONFIG)
    n1, n2 = bed.nodes
    h["n1"].wait_vip("a", "held", timeout=10)
    h["n2"].wait_vip("b", "held", timeout=10)
    check(True, "each node holds its preferred VIP (b failed back to n2 once its daemon joined)")

    def holders(ip):
        return [n.name for n in bed.nodes if any(a.startswith(ip + "/") for a in n.addrs())]

    n2.partition()
    wait_for(lambda: "left the membership uncleanly" in h["n1"].vip("b")["reason"], 5, "n1 sees n2 lost")
    wait_for(lambda: "left the membership uncleanly" in h["n2"].vip("a")["reason"], 5, "n2 sees n1 lost")
    st1, st2 = h["n1"].status(), h["n2"].status()
    check(st1["cluster"]["quorate"] and st2["cluster"]["quorate"], "two_node: both halves stay quorate")
    for _ in range(10):  # watch for a second: never two holders of a VIP
        check(holders("192.0.2.100") == ["n1"] and holders("192.0.2.101") == ["n2"],
              "exactly one holder per VIP during the split")
        time.sleep(0.1)
    n2.heal()
    wait_for(lambda: [m["name"] for m in h["n1"].status()["cluster"]["members"]] == ["n1", "n2"], 10, "merge")
    time.sleep(0.5)
    check(holders("192.0.2.100") == ["n1"] and holders("192.0.2.101") == ["n2"], "after the heal, still one holder each")
    for x in h.values():
        x.stop()
print("corosync_two_node: all passed")

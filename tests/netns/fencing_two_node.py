"""Fence races in a two-node cluster (votequorum two_node: both halves of a partition stay
quorate, so each tries to fence the other). With cluster.fencing.priority_delay the node
holding the VIP is fenced last, so it shoots first: the partition must end with exactly
one survivor, and it must be the holder. Repeated 20 times (HAFRONT_FENCE_RACES
overrides), cutting the holder's side and the other side in turn; after each race the
fenced node is powered back on through its BMC, boots, and rejoins."""
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
RACES = int(os.environ.get("HAFRONT_FENCE_RACES", "20"))
PRIORITY_DELAY = 2.0


def flow(d):
    return "{" + ", ".join("%s: %s" % (k, v) for k, v in d.items()) + "}"


with netns.TestBed(nodes=2, mgmt=True) as bed:
    daemons.BED = bed
    peers = FencePeers(bed, power_timeout=3)
    devices = "".join("  %s: %s\n" % (n, flow(dict(p, timeout="10s"))) for n, p in peers.devices().items())
    config = """cluster:
  name: pair
  mode: corosync
  quorum: {two_node: true}
  nodes:
    - {name: n1, id: 1, address: 192.0.2.11, fencing: [[ipmi-n1]]}
    - {name: n2, id: 2, address: 192.0.2.12, fencing: [[ipmi-n2]]}
  timings: {token: 300ms, heartbeat_interval: 100ms, liveness_timeout: 1s}
  fencing: {timeout: 20s, priority_delay: %dms, monitor_interval: 0s}
fence_devices:
%svips:
  a: {address: %s/24, interface: eth0, driver: address, prefer: [n1]}
""" % (PRIORITY_DELAY * 1000, devices, VIP)
    h, coro = start_cluster(bed, config)
    cfg = h["n1"].config
    for name in h:
        peers.register_node_pids(name, [h[name].proc, coro[name]])

    def holds(name):
        return any(a.startswith(VIP + "/") for a in bed.node(name).addrs())

    def boot(name):
        node = bed.node(name)
        coro[name] = start_corosync(bed, cfg, node)
        h[name] = Hafront(bed, node, config=cfg).start()
        peers.register_node_pids(name, [h[name].proc, coro[name]])

    h["n1"].wait_vip("a", "held", timeout=10)
    wait_for(lambda: h["n2"].vip("a")["holder"] == "n1", 5, "n2 sees n1 holding the VIP")
    survivors = []
    for race in range(RACES):
        if race % 2 == 0 and race > 0:
            # Every other race the VIP changes sides (standby, then unstandby: no failback),
            # so both nodes defend it in turn.
            old = [n for n in ("n1", "n2") if holds(n)][0]
            new = "n2" if old == "n1" else "n1"
            h[old].ctl("standby")
            h[new].wait_vip("a", "held", timeout=10)
            h[old].ctl("unstandby")
            wait_for(lambda: h[old].vip("a")["holder"] == new, 5, "the VIP moved to %s" % new)
        holder = [n for n in ("n1", "n2") if holds(n)]
        check(len(holder) == 1, "race %d: exactly one holder before the partition (%s)" % (race + 1, holder))
        holder = holder[0]
        other = "n2" if holder == "n1" else "n1"
        cut = holder if race % 2 == 0 else other  # which side the test pulls off the bridge
        t0 = time.time()
        bed.node(cut).partition()
        peers.wait_power(other, "off", timeout=15)
        # The loser's own fence of the holder was delayed by priority_delay: give it that
        # long and more to (wrongly) fire before declaring the race over.
        time.sleep(PRIORITY_DELAY + 1.5)
        powered = [n for n in ("n1", "n2") if peers.power_state(n) == "on"]
        check(powered == [holder], "race %d (cut %s): exactly one survivor, the holder %s (powered: %s)" %
              (race + 1, cut, holder, powered))
        check(holds(holder) and h[holder].proc.alive(), "race %d: the survivor still serves the VIP" % (race + 1))
        check(not h[other].proc.alive(), "race %d: the loser's daemon is dead" % (race + 1))
        deaths = [e for e in peers.power_events(other, since=t0) if e["to"] == "off"]
        check(len(deaths) == 1 and deaths[0]["device"] == "ipmi-" + other,
              "race %d: %s was powered off once, by its BMC" % (race + 1, other))
        survivors.append(holder)
        # Heal, power the loser back on through its BMC (as an operator would), let it boot.
        bed.node(cut).heal()
        r = peers.run_agent(holder, "ipmi-" + other, "on")
        check(r.rc == 0, "race %d: %s powered back on (%s)" % (race + 1, other, r.err.strip()[-200:]))
        peers.wait_power(other, "on")
        boot(other)
        wait_for(lambda: [m["name"] for m in h[holder].status()["cluster"]["members"]] == ["n1", "n2"], 20,
                 "race %d: %s rejoins" % (race + 1, other))
        wait_for(lambda: h[other].vip("a")["holder"] == holder, 5, "race %d: %s learns the holder" % (race + 1, other))
        print("    race %2d: cut %s -> %s survived, %s fenced %.0f ms after the cut" %
              (race + 1, cut, holder, other, (deaths[0]["t_killed"] - t0) * 1000))
    history = __import__("json").loads(h[survivors[-1]].ctl("fence-history", "--json"))["history"]
    check(all(e["result"] == "off" for e in history), "the survivor's fence history has no failures")
    check(set(survivors) == {"n1", "n2"} or RACES < 3, "both nodes won races as holders: %s" % survivors)
    check(True, "%d partitions, %d single survivors, each the VIP holder" % (RACES, len(survivors)))
    for x in h.values():
        x.stop()
print("fencing_two_node: all passed")

"""The lease driver end to end: three hafront nodes with real Corosync, the VIP gated by
the BPF lease on each node's eth0 (its address on lo, arp_ignore=1 / arp_announce=2), IPMI
fencing in the background through the real fence_ipmilan against ipmi_sim.

A client probes ARP for the VIP every 5 ms. For each fault of the holder:
  1. SIGSTOP of its daemon (Corosync keeps running),
  2. kill -9 of its daemon,
  3. SIGSTOP of the whole node (daemon and Corosync),
  4. its link cut (the port leaves the bridge; carrier stays),
its answers stop within the lease (+ a few ms) of the fault although its kernel still has
the address, the survivor answers only after the lease (+ margin) has run out, never two
MACs answer in one probe round, and the lost node is still fenced. Then:
  5. a holder that loses quorum expires its lease at once and cannot renew it;
  6. the gate drops TCP to the VIP once the lease ran out on a paused holder.
Failover times are printed; the targets are checked loosely here (a loaded CI machine),
bench/failover measures them."""
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
LEASE = 0.5
MARGIN = 0.1
SLACK = 0.06  # the probe interval, renewal jitter and scheduling on a loaded machine


def yaml_config(peers):
    nodes = ""
    for i, name in enumerate(["n1", "n2", "n3"], 1):
        levels = "[" + ", ".join("[" + ", ".join(level) + "]" for level in peers.fencing(name)) + "]"
        nodes += "    - {name: %s, id: %d, address: 192.0.2.1%d, fencing: %s}\n" % (name, i, i, levels)
    devices = "".join("  %s: {%s}\n" % (n, ", ".join("%s: %s" % kv for kv in dict(p, timeout="10s").items()))
                      for n, p in peers.devices().items())
    return """cluster:
  name: bed
  mode: corosync
  nodes:
%s  timings: {token: 300ms, heartbeat_interval: 100ms, liveness_timeout: 2s, lease: %dms, lease_margin: %dms}
  fencing: {timeout: 14s}
fence_devices:
%svips:
  v: {address: %s/24, interface: eth0, driver: lease, prefer: [n1], garp: {count: 3, interval: 50ms}}
""" % (nodes, LEASE * 1000, MARGIN * 1000, devices, VIP)


with netns.TestBed(nodes=3, mgmt=True) as bed:
    daemons.BED = bed
    for n in bed.nodes:
        for conf in ("all", "eth0"):
            n.sysctl("net.ipv4.conf.%s.arp_ignore" % conf, "1")
            n.sysctl("net.ipv4.conf.%s.arp_announce" % conf, "2")
    peers = FencePeers(bed, power_timeout=3)
    h, coro = start_cluster(bed, yaml_config(peers))
    cfg = h["n1"].config
    for name in h:
        peers.register_node_pids(name, [h[name].proc, coro[name]])
    obs = bed.observer(vips=[VIP], interval_ms=5)
    mac = {n.name: n.mac for n in bed.nodes}
    name_of = {m: n for n, m in mac.items()}
    results = []

    def holder_seen_by(name):
        return h[name].vip("v")["holder"]

    def boot(name):
        node = bed.node(name)
        coro[name] = start_corosync(bed, cfg, node)
        h[name] = Hafront(bed, node, config=cfg).start()
        peers.register_node_pids(name, [h[name].proc, coro[name]])

    def restore(name):
        """The fence powered it off: power it on again and let it rejoin."""
        node = bed.node(name)
        node.resume()
        node.heal()
        peers.wait_power(name, "off", timeout=20)
        peers.set_power(name, True)
        boot(name)
        wait_for(lambda: len(h[name].status()["cluster"]["members"]) == 3, 20, "%s rejoins" % name)

    def fenced(victim, since_wall):
        def find():
            for x in h.values():
                if x.name == victim or not x.proc.alive():
                    continue
                hist = __import__("json").loads(x.ctl("fence-history", "--json"))["history"]
                done = [e for e in hist if e["target"] == victim and e["result"] == "off"
                        and e["finished_ms"] / 1000 >= since_wall]
                if done:
                    return done[-1]
            return None
        return wait_for(find, 30, "%s to be fenced in the background" % victim, interval=0.2)

    def current_holder():
        return wait_for(lambda: next((n for n in h if h[n].proc.alive() and h[n].vip("v")["state"] == "held"), None),
                        10, "a holder")

    def fault(what, inject):
        old = current_holder()
        wait_for(lambda: (h[old].vip("v").get("lease_ms_left") or 0) > 200, 5, "%s holds a live lease" % old)
        proof = "node %s: its lease ran out" % old
        proofs_before = {n: h[n].log_text().count(proof) for n in h}
        t_wall = time.time()
        t0 = time.monotonic()
        inject(bed.node(old), h[old])
        # The old holder's answers stop within the lease, with its address still on lo.
        first_other = new = None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and new is None:
            for t, m in obs.answers(VIP, since=t0):
                if m != mac[old]:
                    new, first_other = name_of.get(m, m), t
                    break
            time.sleep(0.01)
        check(new is not None, "%s: a survivor answers for the VIP" % what)
        last_old = obs.last_answer_from(VIP, mac[old], before_t=first_other + 5)
        last_old = last_old if last_old and last_old >= t0 - 0.1 else t0
        stop_ms = (last_old - t0) * 1000
        move_ms = (first_other - t0) * 1000
        check(last_old <= t0 + LEASE + SLACK,
              "%s: %s's answers stopped %.0f ms after the fault (lease %d ms)" % (what, old, stop_ms, LEASE * 1000))
        check(first_other >= last_old, "%s: %s answered only after %s went silent" % (what, new, old))
        check(move_ms >= (LEASE + MARGIN) * 1000 - 150 or what == "link cut",
              "%s: the survivor waited for the lease to run out (%.0f ms)" % (what, move_ms))
        # A killed daemon leaves the CPG group at once; the fence of its node waits for lease
        # + margin + 2 heartbeats (doc/fencing.md), so the lease proof comes first and the
        # survivor answers before the node is powered off. For the other faults the fence
        # may start at once (the simulated BMC powers off in ~0.4 s, faster than a real one):
        # a power-off before the lease (+ margin) ran out stalls the ring and the fence may
        # win. Otherwise the takeover must come from the lease proof.
        off = [e for e in peers.power_events(old, since=t_wall) if e["to"] == "off"]
        if what == "daemon kill -9":
            off = wait_for(lambda: [e for e in peers.power_events(old, since=t_wall) if e["to"] == "off"], 30,
                           "%s to be powered off" % old)
            check(off[0]["mono_killed"] > first_other,
                  "%s: %s answered %.0f ms before %s was powered off (the fence waited for the lease proof)" %
                  (what, new, (off[0]["mono_killed"] - first_other) * 1000, old))
        fence_first = bool(off) and off[0]["mono_killed"] < t0 + LEASE + MARGIN
        if fence_first and h[new].log_text().count(proof) == proofs_before[new]:
            print("    (%s: the background fence powered %s off %.0f ms after the fault, before its lease "
                  "could be proven out; the takeover followed the fence)" % (what, old, (off[0]["mono_killed"] - t0) * 1000))
        else:
            check(h[new].log_text().count(proof) > proofs_before[new],
                  "%s: %s took over on the proof that %s's lease ran out, not on the fence" % (what, new, old))
        check(move_ms < 2000, "%s: failover in %.0f ms" % (what, move_ms))
        later = obs.answers(VIP, since=first_other, until=first_other + 1.0)
        check(all(m != mac[old] for _, m in later), "%s: %s stays silent afterwards" % (what, old))
        e = fenced(old, t_wall)
        results.append((what, old, new, stop_ms, move_ms, e["finished_ms"] - t_wall * 1000))
        print("    %-16s %s silent after %4.0f ms, %s answers after %4.0f ms, %s fenced after %5.0f ms" %
              (what, old, stop_ms, new, move_ms, old, e["finished_ms"] - t_wall * 1000))
        restore(old)
        return old, new

    def keep_logs():
        where = os.environ.get("HAFRONT_NETNS_LOGS")
        if where:
            os.makedirs(where, exist_ok=True)
            for x in h.values():
                with open(os.path.join(where, "lease_failover-%s.log" % x.name), "a") as f:
                    f.write(x.log_text())

    try:
        # --- converge: the lease driver is in effect ----------------------------------------------
        h["n1"].wait_vip("v", "held", timeout=15)
        v = h["n1"].vip("v")
        check(v["driver"] == "lease" and v["lease_ms_left"] > 0, "n1 holds the VIP with the lease driver: %s" % v)
        check(any(a.startswith(VIP + "/32") for a in bed.node("n1").addrs(dev="lo")), "the VIP lives on n1's lo as a /32")
        check(not any(a.startswith(VIP) for a in bed.node("n1").addrs(dev="eth0")), "and not on eth0")
        text = h["n1"].ctl("status")
        check("driver lease (lease" in text, "status shows the driver and the lease left:\n" + text)
        wait_for(lambda: obs.answers(VIP, since=time.monotonic() - 0.2), 5, "answers for the VIP")
        check(obs.macs(VIP, since=time.monotonic() - 0.5) == {mac["n1"]}, "only n1 answers")
        # Renewal keeps it answering with no gap.
        t = time.monotonic()
        time.sleep(2.0)
        gap = obs.longest_silence(VIP, since=t)[2]
        check(gap < 0.2, "a held lease is renewed without a gap in the answers (longest silence %.0f ms)" % (gap * 1000))

        # --- the faults ------------------------------------------------------------------------
        fault("daemon SIGSTOP", lambda node, d: d.proc.stop())
        fault("daemon kill -9", lambda node, d: d.proc.kill())
        fault("node SIGSTOP", lambda node, d: node.pause())
        fault("link cut", lambda node, d: node.partition())

        # --- a TCP connection to the VIP of a paused holder is dropped once its lease ran out -----
        old = current_holder()
        server = bed.node(old).spawn(["/usr/bin/python3", "-c",
                                      "import socket,time\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,"
                                      "socket.SO_REUSEADDR,1);s.bind(('0.0.0.0',7070));s.listen(64)\n"
                                      "while True:\n c,_=s.accept();c.close()"])
        wait_for(lambda: bed.client.tcp_connect(VIP, 7070, timeout=0.3) == "ok", 5, "TCP to the VIP on %s" % old)
        t_wall = time.time()
        h[old].proc.stop()
        t0 = time.monotonic()
        time.sleep(LEASE + 0.05)
        # Other nodes may hold the VIP by now; they have no server on 7070, so any success would
        # come from the paused holder.
        r = bed.client.tcp_connect(VIP, 7070, timeout=0.3)
        check(r == "timeout", "TCP to the VIP is dropped by %s's gate once its lease ran out (%s)" % (old, r))
        fenced(old, t_wall)
        restore(old)

        # --- a holder that loses quorum expires its lease at once ----------------------------------
        holder = current_holder()
        others = [n for n in h if n != holder]
        wait_for(lambda: (h[holder].vip("v").get("lease_ms_left") or 0) > 200, 5, "a live lease on %s" % holder)
        t0 = time.monotonic()
        for n in others:
            bed.node(n).partition()
        wait_for(lambda: not h[holder].status()["cluster"]["quorate"], 10, "%s loses quorum" % holder)
        t_q = time.monotonic()
        time.sleep(0.05)
        v = h[holder].vip("v")
        check(v["state"] == "released", "%s released the VIP on quorum loss" % holder)
        check(not obs.answers(VIP, since=t_q + 0.02), "nobody answers for the VIP after %s lost quorum" % holder)
        time.sleep(1.0)
        check(not obs.answers(VIP, since=t_q + 0.02), "and it never renews without quorum (%d ms later)" %
              ((time.monotonic() - t_q) * 1000))
        check(obs.last_answer_from(VIP, mac[holder]) <= t0 + LEASE + SLACK,
              "its answers stopped within the lease of the cut")
        for n in others:
            bed.node(n).heal()
        wait_for(lambda: any(h[n].vip("v")["state"] == "held" for n in h), 20, "a holder after the heal")

        check(obs.macs_answering_at_once(VIP) <= 1, "never two MACs answering in one probe round: %s" % obs.overlaps(VIP)[:3])
        check(obs.macs_answering_at_once(VIP, window_ms=20) <= 1, "nor within any 20 ms: %s" %
              obs.overlaps(VIP, window_ms=20)[:3])
        for x in h.values():
            x.stop()
    finally:
        keep_logs()
print("lease_failover: %s" % "; ".join("%s %.0f ms" % (r[0], r[4]) for r in results))
print("lease_failover: all passed")

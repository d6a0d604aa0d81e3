"""Fencing end to end: three hafront nodes with real Corosync, fenced through the real
Debian agents (fence_ipmilan, fence_apc_snmp, fence_redfish) against simulators on a
separate management network (ipmi_sim BMCs, snmpd as an APC PDU, an HTTPS Redfish BMC).
A node's "power" is the set of its processes: powering it off SIGKILLs them and takes its
interfaces down, before the BMC or PDU answers the agent.

Scenarios:
  1. the holder hangs (whole node frozen) -> fenced through IPMI -> the VIP moves;
  2. the fenced node is powered back on and rejoins cleanly (no failback);
  3. IPMI answers but cannot act -> escalation to both PDU outlets -> the VIP moves;
  4. every level fails (BMC and PDU unreachable) -> the VIP stays down, an alert and the
     fence history say why, the device monitor flags the PDU; once the devices answer
     again the retry fences the node and the VIP moves;
  5. an operator's `hafrontctl fence n3` (IPMI cannot act -> the Redfish level).
Each takeover is checked against the power log: the old holder's processes were dead
before the VIP answered from the new holder. Throughout, a client probing ARP every 5 ms
never sees two MACs answer for the VIP."""
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


def yaml_config(peers):
    def flow(d):
        return "{" + ", ".join("%s: %s" % (k, v) for k, v in d.items()) + "}"

    nodes = ""
    for i, name in enumerate(["n1", "n2", "n3"], 1):
        levels = "[" + ", ".join("[" + ", ".join(level) + "]" for level in peers.fencing(name)) + "]"
        nodes += "    - {name: %s, id: %d, address: 192.0.2.1%d, fencing: %s}\n" % (name, i, i, levels)
    devices = "".join("  %s: %s\n" % (n, flow(dict(p, timeout="10s"))) for n, p in peers.devices().items())
    return """cluster:
  name: bed
  mode: corosync
  nodes:
%s  timings: {token: 300ms, heartbeat_interval: 100ms, liveness_timeout: 1s}
  fencing: {timeout: 14s, monitor_interval: 2s}
fence_devices:
%svips:
  v: {address: %s/24, interface: eth0, driver: address, prefer: [n1], garp: {count: 3, interval: 50ms}}
""" % (nodes, devices, VIP)


with netns.TestBed(nodes=3, mgmt=True) as bed:
    daemons.BED = bed
    peers = FencePeers(bed, pdu=True, redfish_for=["n3"], power_timeout=3)
    config = yaml_config(peers)
    h, coro = start_cluster(bed, config)
    cfg = h["n1"].config
    for name in h:
        peers.register_node_pids(name, [h[name].proc, coro[name]])
    obs = bed.observer(vips=[VIP], interval_ms=5)
    n1, n2, n3 = bed.nodes
    mac = {n.name: n.mac for n in bed.nodes}

    def holder(name):
        return h[name].vip("v")["holder"]

    def history(name):
        return h[name].status() and __import__("json").loads(h[name].ctl("fence-history", "--json"))["history"]

    def boot(name):
        """The node's power came back: start its Corosync and daemon, as its init would."""
        node = bed.node(name)
        coro[name] = start_corosync(bed, cfg, node)
        h[name] = Hafront(bed, node, config=cfg).start()
        peers.register_node_pids(name, [h[name].proc, coro[name]])

    def power_on(name, via="n3"):
        dev = "ipmi-" + name
        r = peers.run_agent(via, dev, "on")
        check(r.rc == 0, "fence_ipmilan on powers %s back on (%s)" % (name, r.err.strip()[-200:]))
        peers.wait_power(name, "on")
        boot(name)

    def takeover_after_death(old, new, t0):
        """The VIP answered from `new` only after `old`'s processes were killed."""
        deaths = [e for e in peers.power_events(old) if e["to"] == "off" and e["mono"] >= t0]
        check(deaths, "%s was powered off by a fence device" % old)
        killed = deaths[0]["mono_killed"]
        first = obs.wait_answer(VIP, mac=mac[new], after=t0, timeout=10)
        check(first > killed, "%s answered for the VIP %.0f ms after %s's processes died" %
              (new, (first - killed) * 1000, old))
        check(not deaths[0].get("survivors"), "no process of %s survived its power-off" % old)
        return deaths[0], first

    # --- converge ------------------------------------------------------------------------
    h["n1"].wait_vip("v", "held", timeout=10)
    for name in h:
        wait_for(lambda name=name: holder(name) == "n1", 5, "%s sees n1 holding the VIP" % name)
    wait_for(lambda: all(d["state"] == "ok" for d in h["n2"].status()["cluster"]["fence_devices"]), 15,
             "the device monitor found every fence device answering")
    check(True, "devices monitored: " + ", ".join(d["name"] for d in h["n2"].status()["cluster"]["fence_devices"]))

    # --- 1. the holder hangs: fenced through IPMI, the VIP moves -------------------------------
    t0 = time.monotonic()
    n1.pause()
    h["n2"].wait_vip("v", "held", timeout=20)
    death, first = takeover_after_death("n1", "n2", t0)
    check(death["device"] == "ipmi-n1", "n1 was powered off by its BMC (%s)" % death["device"])
    entry = wait_for(lambda: [e for e in history("n3") if e["target"] == "n1"], 5, "n3's fence history")[-1]
    check(entry["result"] == "off" and entry["executor"] == "n2" and entry["level"] == 1 and
          entry["devices"] == ["ipmi-n1"], "fence history on n3: n1 off by n2 at level 1 (ipmi-n1): %s" % entry)
    print("    n1 hung -> fenced in %d ms -> VIP on n2 %.0f ms after the hang" %
          (entry["finished_ms"] - entry["started_ms"], (first - t0) * 1000))
    text = h["n3"].call("fence-history").stdout
    check("n1" in text and "off" in text and "by n2" in text and "ipmi-n1" in text, "fence-history text:\n" + text)

    # --- 2. power n1 back on: it rejoins as a fresh member, no failback -----------------------
    n1.resume()  # its processes are gone; resume() only lifts the freeze bookkeeping
    power_on("n1")
    wait_for(lambda: [m["name"] for m in h["n2"].status()["cluster"]["members"]] == ["n1", "n2", "n3"], 15,
             "n1 rejoins")
    wait_for(lambda: holder("n1") == "n2", 5, "the rebooted n1 learns n2 holds the VIP")
    nodes = {n["name"]: n for n in h["n2"].status()["cluster"]["nodes"]}
    check(nodes["n1"]["member"] and not nodes["n1"]["proven_down"] and nodes["n1"]["departure"] == "",
          "n1 is a plain member again: %s" % nodes["n1"])
    time.sleep(0.5)
    check(h["n1"].vip("v")["state"] == "released" and h["n2"].vip("v")["state"] == "held", "no failback to n1")

    # --- 3. IPMI cannot act: escalation to both PDU outlets ------------------------------------
    peers.set_fault("ipmi-n2", "cannot_act")
    t0 = time.monotonic()
    n2.partition()
    h["n1"].wait_vip("v", "held", timeout=30)
    death, first = takeover_after_death("n2", "n1", t0)
    check(death["device"] == "pdu", "n2 lost power at the PDU (%s)" % death["device"])
    entry = [e for e in history("n1") if e["target"] == "n2"][-1]
    check(entry["result"] == "off" and entry["level"] == 2 and sorted(entry["devices"]) == sorted(peers.outlets("n2")),
          "n2 fenced at level 2 by both outlets %s: %s" % (peers.outlets("n2"), entry))
    check("fencing n2: level 1 failed" in h["n1"].log_text(), "the IPMI failure is in the executor's log")
    print("    n2 cut off, IPMI cannot act -> PDU level fenced it in %d ms" % (entry["finished_ms"] - entry["started_ms"]))
    peers.clear_fault("ipmi-n2")
    n2.heal()
    peers.set_power("n2", True)
    boot("n2")
    wait_for(lambda: len(h["n1"].status()["cluster"]["members"]) == 3, 15, "n2 rejoins after its power returns")

    # --- 4. every level fails: the VIP stays down, and says why ---------------------------------
    peers.set_fault("ipmi-n1", "unreachable")
    peers.set_fault("pdu", "unreachable")
    t0 = time.monotonic()
    t0_wall = time.time()
    n1.partition()
    failed = wait_for(lambda: [e for e in history("n2") if e["target"] == "n1" and e["result"] == "failed"
                               and e["finished_ms"] / 1000 >= t0_wall], 40, "the fence of n1 to fail")[-1]
    check("level 1" in failed["reason"] and "level 2" in failed["reason"], "the failure names both levels: %s" %
          failed["reason"])
    st = h["n3"].status()
    check(any("fencing n1 failed" in a["message"] for a in st["alerts"]), "an alert says fencing n1 failed")
    check(not any(VIP in a for a in n2.addrs() + n3.addrs()), "no takeover without proof")
    check(obs.macs(VIP, since=t0 + 1.0) == set(), "nobody answers for the VIP while n1 is not proven down")
    pdu = [d for d in st["cluster"]["fence_devices"] if d["name"] == "pdu"][0]
    check(pdu["state"] == "failed" and "n1" in pdu["protects"], "status shows the PDU failing its monitor: %s" % pdu)
    check(any("fence device pdu does not answer" in a["message"] for a in st["alerts"]), "the monitor alerted on the PDU")
    check(peers.power_state("n1") == "on" and h["n1"].proc.alive(), "n1 itself was never powered off")
    print("    every level failed after %.1f s: %s" % ((failed["finished_ms"] - failed["started_ms"]) / 1000,
                                                      failed["reason"][:160]))
    peers.clear_fault("ipmi-n1")
    peers.clear_fault("pdu")
    h["n2"].wait_vip("v", "held", timeout=40)
    takeover_after_death("n1", "n2", t0)
    check(True, "once its devices answered again, the retry fenced n1 and the VIP moved")
    n1.heal()
    power_on("n1")
    wait_for(lambda: len(h["n2"].status()["cluster"]["members"]) == 3, 15, "n1 rejoins again")

    # --- 5. an operator fences n3: IPMI cannot act, so the Redfish level does it ---------------
    check(peers.power_state("n3") == "on" and h["n3"].proc.alive(), "n3 runs before the operator's fence")
    peers.set_fault("ipmi-n3", "cannot_act")
    events_before = len(peers.power_events("n3", kinds=None))
    r = h["n1"].call("fence", "n3")
    print("    n3 power log during the fence: %s" % ["%s %s" % (e["device"], e.get("why", "")) for e in
                                                   peers.power_events("n3", kinds=None)[events_before:]])
    check(r.returncode == 0 and "n3" in r.stdout and "off" in r.stdout and "redfish-n3" in r.stdout,
          "hafrontctl fence n3 waited for the outcome: %s %s" % (r.stdout, r.stderr))
    check(peers.power_state("n3") == "off" and not h["n3"].proc.alive(), "n3 is off and its daemon dead")
    check(any(e["device"] == "redfish-n3" for e in peers.power_events("n3")), "the Redfish BMC powered n3 off")
    wait_for(lambda: [n for n in h["n1"].status()["cluster"]["nodes"] if n["name"] == "n3"][0]["proven_down"], 30,
             "after it left, n3 is proven down (fenced again: already off)")
    check(h["n2"].vip("v")["state"] == "held", "the VIP never moved: n3 did not hold it")
    check(obs.macs_answering_at_once(VIP) <= 1, "never two MACs answering at once: %s" % obs.overlaps(VIP)[:3])
    for x in h.values():
        x.stop()
print("fencing: all passed")

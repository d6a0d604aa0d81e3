#!/usr/bin/env python3
"""Self-test of the fence peers (tests/fence_peers/) on the netns bed's management network.

Runs the REAL Debian fence agents (/usr/sbin/fence_ipmilan, fence_apc_snmp, fence_redfish;
parameters on stdin, clean environment) from inside a node's namespace against the
simulators in the bed's bmc namespace, and checks the power model: status/off/on/monitor
(reboot for IPMI, list for the PDU), that a node's registered processes are dead before
the agent's "off" returns, the node's links going down while it is unpowered and back
with their original addresses, the boot command, a node with two PDU outlets staying
powered until both are off, the fault knobs cannot_act and unreachable, that a stale pid
is never killed, and that data-network partitions and a paused node do not cut the
agents' access to the BMCs. Prints the time of every agent action.

Needs root; prints a SKIP line and exits 77 if network namespaces are unavailable.
Exits 1 on the first failure. About 40 s.
"""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "fence_peers"))
import netns  # noqa: E402
from netns import TestBed  # noqa: E402
from fence_peers import FencePeers, proc_stat, starttime  # noqa: E402

POWER_TIMEOUT = 3
T_START = time.monotonic()
TIMINGS = []   # (device, action, plug, rc, seconds)


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)
    print("ok: " + msg, flush=True)


def dead(pid, st):
    s = proc_stat(pid)
    return s is None or s[0] in ("Z", "X") or s[3] != st


def group_pids(pgid):
    """(pid, starttime) of every live process in process group pgid."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            s = proc_stat(int(d))
            if s and s[2] == pgid and s[0] not in ("Z", "X"):
                out.append((int(d), s[3]))
    return out


def workload(bed, peers, node):
    """A process group on node (a shell with two children), registered with the peers.
    Returns [(pid, starttime)] of its members."""
    p = bed[node].spawn("sleep 1000 & sleep 1000 & wait")
    deadline = time.monotonic() + 5
    while len(group_pids(p.pid)) < 3:
        if time.monotonic() > deadline:
            raise Failure("workload on %s did not start" % node)
        time.sleep(0.01)
    peers.register_node_pids(node, [p])
    return group_pids(p.pid)


def agent(peers, device, action, plug=None, expect=0, node="n1", out=None):
    r = peers.run_agent(node, device, action, plug=plug, timeout=60)
    TIMINGS.append((device, action, plug, r.rc, r.seconds))
    what = "%s %s%s from %s" % (device, action, "" if plug is None else " plug=%s" % plug, node)
    print("   %-12s %-8s %-5s rc=%d %6.2f s  %s" % (device, action,
                                                      "" if plug is None else plug, r.rc,
                                                      r.seconds, r.out.strip().replace("\n", " | ")
                                                      [:60]), flush=True)
    if r.rc != expect:
        raise Failure("%s: exit %d, expected %d\nstdout: %s\nstderr: %s"
                      % (what, r.rc, expect, r.out, r.err[-2000:]))
    if out is not None and out not in r.out:
        raise Failure("%s: %r not in output %r" % (what, out, r.out))
    return r


def link_is_up(node, dev):
    info = node.ip(["link", "show", "dev", dev], json_out=True)
    return bool(info) and "UP" in info[0].get("flags", [])


def check_off_killed(peers, node, r, members, since):
    """The agent's off returned after every member of the workload had died."""
    check(all(dead(p, st) for p, st in members),
          "%s: all %d registered processes of %s dead when the agent returned"
          % (peers_dev(r), len(members), node))
    evs = [e for e in peers.power_events(node, since=since) if e["to"] == "off"]
    check(len(evs) == 1 and set(p for p, _ in members) <= set(evs[0]["killed"])
          and not evs[0]["survivors"] and evs[0]["mono_killed"] <= r.mono_end,
          "%s power-off event: killed %s, kill completed %.3f s before the agent returned"
          % (node, evs[0]["killed"] if evs else None,
             (r.mono_end - evs[0]["mono_killed"]) if evs else 0))


def peers_dev(r):
    return os.path.basename(r.argv[-1])


def test_layout(bed, peers):
    for n in bed.nodes:
        check(n.mgmt_ip4 + "/24" in n.addrs(dev="mgmt0"),
              "%s has mgmt0 %s besides eth0 %s" % (n.name, n.mgmt_ip4, n.ip4))
    ips = {d.ip for d in peers.devices_by_name.values()}
    have = {a.split("/")[0] for a in bed.mgmt.addrs()}
    check(ips <= have, "bmc namespace holds %s and the device addresses %s"
          % (bed.mgmt.ip4, " ".join(sorted(ips))))
    devs = peers.devices()
    check(devs["ipmi-n2"]["agent"] == "fence_ipmilan" and "password" not in devs["ipmi-n2"]
          and os.path.isfile(devs["ipmi-n2"]["password_file"]),
          "device parameters carry secrets as files: %s" % devs["ipmi-n2"])
    check(peers.fencing("n2") == [["ipmi-n2"], ["pdu:3", "pdu:4"]]
          and peers.fencing("n3") == [["ipmi-n3"], ["redfish-n3"], ["pdu:5", "pdu:6"]],
          "fencing topologies: n2 %s, n3 %s" % (peers.fencing("n2"), peers.fencing("n3")))


def test_ipmi(bed, peers):
    n2 = bed["n2"]
    print("-- IPMI (ipmi_sim) for n2, agents run on n1", flush=True)
    members = workload(bed, peers, "n2")
    base = n2.addrs()
    agent(peers, "ipmi-n2", "status", out="Status: ON")
    n2.addr_add("192.0.2.99/32")          # a VIP the node's daemon left behind
    t = time.time()
    r = agent(peers, "ipmi-n2", "off", out="Powered OFF")
    check_off_killed(peers, "n2", r, members, t)
    check(peers.power_state("n2") == "off" and not link_is_up(n2, "eth0")
          and not link_is_up(n2, "mgmt0"), "powered-off n2: eth0 and mgmt0 are down")
    agent(peers, "ipmi-n2", "status", expect=2, out="Status: OFF")
    peers.set_boot("n2", "exec sleep 1002")
    agent(peers, "ipmi-n2", "on", out="Powered ON")
    ev = peers.power_events("n2")[-1]
    check(peers.power_state("n2") == "on" and link_is_up(n2, "eth0")
          and sorted(n2.addrs()) == sorted(base),
          "powered-on n2: links up, original addresses only (the left-over VIP is gone)")
    boot = ev.get("boot_pid")
    check(boot and proc_stat(boot) and boot in n2.pids() and boot in peers.registered_pids("n2"),
          "power-on started n2's boot command in its namespace (pid %s, registered)" % boot)
    agent(peers, "ipmi-n2", "monitor")
    boot_st = starttime(boot)
    t = time.time()
    agent(peers, "ipmi-n2", "reboot", out="Rebooted")
    evs = peers.power_events("n2", since=t)
    check([e["to"] for e in evs] == ["off", "on"] and dead(boot, boot_st)
          and evs[1]["boot_pid"] and evs[1]["boot_pid"] != boot,
          "reboot: the booted process was killed, a new one booted (pid %s)"
          % (evs[1].get("boot_pid") if len(evs) > 1 else None))
    peers.set_boot("n2", None)

    # a stale registration is never killed: right pid, wrong start time
    bystander = bed["n2"].spawn(["sleep", "1000"])
    time.sleep(0.05)
    with open(peers.model.pids_path("n2"), "a") as f:
        f.write("%d 1\n" % bystander.pid)

    print("-- IPMI fault cannot_act", flush=True)
    members = workload(bed, peers, "n2")
    peers.set_fault("ipmi-n2", "cannot_act")
    agent(peers, "ipmi-n2", "off", expect=1)
    check(all(not dead(p, st) for p, st in members) and peers.power_state("n2") == "on",
          "cannot_act: off failed, n2 still powered, its processes alive")
    agent(peers, "ipmi-n2", "status", out="Status: ON")
    peers.clear_fault("ipmi-n2")

    print("-- IPMI fault unreachable (power_timeout=%d)" % POWER_TIMEOUT, flush=True)
    peers.set_fault("ipmi-n2", "unreachable")
    r = agent(peers, "ipmi-n2", "status", expect=1)
    check(r.seconds <= POWER_TIMEOUT + 3, "unreachable: status exits 1 after %.1f s" % r.seconds)
    r = agent(peers, "ipmi-n2", "off", expect=1)
    check(r.seconds <= POWER_TIMEOUT + 3 and all(not dead(p, st) for p, st in members),
          "unreachable: off exits 1 after %.1f s, n2's processes alive" % r.seconds)
    peers.clear_fault("ipmi-n2")
    agent(peers, "ipmi-n2", "status", out="Status: ON")
    t = time.time()
    r = agent(peers, "ipmi-n2", "off")
    check_off_killed(peers, "n2", r, members, t)
    ev = peers.power_events("n2")[-1]
    check(bystander.alive() and bystander.pid in ev["skipped"],
          "a registered pid whose start time does not match was left alone")
    bystander.kill()
    agent(peers, "ipmi-n2", "on")


def test_pdu(bed, peers):
    print("-- APC rPDU (snmpd): n2 on outlets 3 and 4", flush=True)
    members = workload(bed, peers, "n2")
    agent(peers, "pdu", "status", plug=3, out="Status: ON")
    agent(peers, "pdu", "off", plug=3, out="Powered OFF")
    check(peers.power_state("n2") == "on" and all(not dead(p, st) for p, st in members),
          "one outlet off: n2 still powered by outlet 4, its processes alive")
    agent(peers, "pdu", "status", plug=3, expect=2, out="Status: OFF")
    t = time.time()
    r = agent(peers, "pdu", "off", plug=4, out="Powered OFF")
    check_off_killed(peers, "n2", r, members, t)
    check(peers.power_state("n2") == "off", "both outlets off: n2 unpowered")
    agent(peers, "pdu", "status", plug=4, expect=2)
    agent(peers, "pdu", "on", plug=3, out="Powered ON")
    check(peers.power_state("n2") == "on", "one outlet back on: n2 powered")
    agent(peers, "pdu", "on", plug=4)
    agent(peers, "pdu", "monitor")
    r = agent(peers, "pdu", "list")
    check("3,n2-psu1" in r.out and "4,n2-psu2" in r.out, "list names the outlets: %s"
          % r.out.strip().replace("\n", " "))
    agent(peers, "pdu", "status", plug="n2-psu2", out="Status: ON")

    peers.set_fault("pdu", "cannot_act")
    agent(peers, "pdu", "off", plug=3, expect=1)
    check(peers.power_detail("n2")["outlets"]["pdu:3"], "cannot_act: outlet 3 stayed on")
    peers.clear_fault("pdu")
    peers.set_fault("pdu", "unreachable")
    r = agent(peers, "pdu", "status", plug=3, expect=1)
    check(r.seconds < 15, "unreachable PDU: status exits 1 after %.1f s" % r.seconds)
    peers.clear_fault("pdu")
    agent(peers, "pdu", "status", plug=3)


def test_redfish(bed, peers):
    print("-- Redfish (HTTPS) for n3", flush=True)
    members = workload(bed, peers, "n3")
    agent(peers, "redfish-n3", "status", out="Status: ON")
    t = time.time()
    r = agent(peers, "redfish-n3", "off", out="Powered OFF")
    check_off_killed(peers, "n3", r, members, t)
    agent(peers, "redfish-n3", "status", expect=2)
    agent(peers, "ipmi-n3", "status", expect=2)   # one chassis, two BMC protocols
    agent(peers, "redfish-n3", "on", out="Powered ON")
    agent(peers, "redfish-n3", "monitor")
    members = workload(bed, peers, "n3")
    peers.set_fault("redfish-n3", "cannot_act")
    r = agent(peers, "redfish-n3", "off", expect=1)
    check(all(not dead(p, st) for p, st in members) and peers.power_state("n3") == "on",
          "cannot_act: off exits 1 after %.1f s, n3 powered, processes alive" % r.seconds)
    agent(peers, "redfish-n3", "status", out="Status: ON")
    peers.clear_fault("redfish-n3")


def test_isolation(bed, peers):
    print("-- data-network faults and a paused node leave the BMCs reachable", flush=True)
    n1, n2 = bed["n1"], bed["n2"]
    bed.partition(["n1"], ["n2", "n3", "client"])
    n1.link_down()
    check(n1.tcp_connect(n2.ip4, 9, timeout=0.3) in ("timeout", "unreachable"),
          "n1 is cut off the data network")
    agent(peers, "ipmi-n2", "status")
    agent(peers, "pdu", "status", plug=5)
    agent(peers, "redfish-n3", "status")
    n1.link_up()
    bed.heal()
    n2.pause()
    sims = [d.proc for d in peers.devices_by_name.values()]
    check(all(p.state() not in ("T", "t") for p in sims), "n2.pause() stopped no simulator")
    agent(peers, "ipmi-n2", "status")
    n2.resume()
    d = peers.device("redfish-n3")
    n1.mgmt_link_down()
    check(n1.tcp_connect(d.ip, d.port, timeout=0.3) in ("timeout", "unreachable"),
          "n1.mgmt_link_down(): n1 cannot reach the BMCs")
    check(not n1.carrier("mgmt0") and n1.carrier("eth0"),
          "n1.mgmt_link_down(): mgmt0 has no carrier, eth0 has")
    n1.mgmt_link_up()
    t = time.monotonic()
    deadline = t + 5
    while n1.tcp_connect(d.ip, d.port, timeout=0.5) != "ok":
        if time.monotonic() > deadline:
            raise Failure("n1.mgmt_link_up(): BMCs still unreachable after 5 s")
        time.sleep(0.05)
    check(True, "n1.mgmt_link_up(): reachable again after %.2f s" % (time.monotonic() - t))


CHILD = r"""
import json, os, sys, time
sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[2])
from netns import TestBed
from fence_peers import FencePeers
bed = TestBed(nodes=2, mgmt=True)
peers = FencePeers(bed, pdu=True, redfish_for=["n2"])
w = bed["n2"].spawn(["sleep", "300"])
peers.register_node_pids("n2", [w])
print(json.dumps({"namespaces": bed.namespaces, "dir": bed.dir,
                  "pids": [d.proc.pid for d in peers.devices_by_name.values()] + [w.pid]}),
      flush=True)
time.sleep(300)
"""


def test_stale_cleanup():
    """A test SIGKILLed while its simulators run leaves nothing once cleanup_stale ran."""
    import json
    import subprocess
    print("-- a SIGKILLed test's management network and simulators", flush=True)
    c = subprocess.Popen([netns.PYTHON, "-c", CHILD, HERE,
                          os.path.join(os.path.dirname(HERE), "fence_peers")],
                         stdout=subprocess.PIPE, text=True)
    try:
        line = c.stdout.readline()
        if not line:
            raise Failure("child test died before starting its peers (exit %s)" % c.wait())
        info = json.loads(line)
        pids = [(p, starttime(p)) for p in info["pids"]]
        with netns.stale_cleanup_lock():
            c.kill()
            c.wait()
            check(set(info["namespaces"]) <= set(netns._list_netns())
                  and not any(dead(p, st) for p, st in pids),
                  "SIGKILLed test left %s and %d simulator/node processes behind"
                  % (" ".join(n for n in info["namespaces"] if n.endswith(("mbr", "bmc"))),
                     len(pids)))
        netns.cleanup_stale()
        check(not set(info["namespaces"]) & set(netns._list_netns())
              and all(dead(p, st) for p, st in pids) and not os.path.exists(info["dir"]),
              "cleanup_stale() removed its namespaces (incl. mbr, bmc), simulators and state")
    finally:
        if c.poll() is None:
            c.kill()
            c.wait()
        c.stdout.close()


def main():
    missing = [p for p in ("/usr/sbin/fence_ipmilan", "/usr/sbin/fence_apc_snmp",
                           "/usr/sbin/fence_redfish", "/usr/bin/ipmitool", "/usr/bin/ipmi_sim",
                           "/usr/sbin/snmpd", "/usr/bin/snmpget", "/usr/bin/openssl")
               if not os.path.exists(p)]
    reason = netns.netns_unavailable_reason()
    if reason:
        netns.skip(reason)
    if missing:
        print("FAIL: missing %s (scripts/setup installs fence-agents openipmi ipmitool snmpd "
              "snmp openssl)" % " ".join(missing), flush=True)
        return 1
    names = sim_pids = None
    try:
        with TestBed(nodes=3, mgmt=True) as bed:
            names = list(bed.namespaces)
            try:
                t = time.monotonic()
                peers = FencePeers(bed, pdu=True, redfish_for=["n3"],
                                   power_timeout=POWER_TIMEOUT)
                sim_pids = [(d.proc.pid, starttime(d.proc.pid))
                            for d in peers.devices_by_name.values()]
                check(True, "bed with management network in %.0f ms, %d simulators up in "
                      "%.2f s" % (bed.build_seconds * 1000, len(sim_pids),
                                  time.monotonic() - t))
                test_layout(bed, peers)
                test_ipmi(bed, peers)
                test_pdu(bed, peers)
                test_redfish(bed, peers)
                test_isolation(bed, peers)
            except BaseException:
                print(bed.logs_tail(15), file=sys.stderr, flush=True)
                raise
        left = set(names) & set(netns._list_netns())
        check(not left and all(dead(p, st) for p, st in sim_pids),
              "after close: no namespace, no simulator left")
        test_stale_cleanup()
    except Failure as e:
        print("FAIL: %s" % e, flush=True)
        return 1
    print("\ntimings (agent run from n1's namespace, incl. ip netns exec):")
    for dev, action, plug, rc, s in TIMINGS:
        print("  %-12s %-8s %-9s rc=%d  %5.2f s" % (dev, action,
                                                      "" if plug is None else "plug=%s" % plug,
                                                      rc, s))
    print("fence_peers_selftest: all passed in %.1f s" % (time.monotonic() - T_START))
    return 0


if __name__ == "__main__":
    sys.exit(main())

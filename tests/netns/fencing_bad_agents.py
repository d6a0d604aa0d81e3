"""Bad fence agents in a real cluster: the holder is cut off and every level of its
fencing topology is broken in its own way -- an agent that hangs (and leaves a child
behind), one that exits with a code outside the agent API, one that reports success but
whose `status` still says ON, and one that is not installed. The fence must fail in
bounded time, with each level's precise reason in the fence history and an alert; the
hung agent's whole process group must be gone; and no survivor may take the VIP."""
import json
import os
import time

import daemons
import netns
from corosync_cluster_lib import start_cluster
from daemons import check, wait_for

VIP = "192.0.2.100"

# One scripted agent; its behaviour comes from its name. Every one answers `metadata`
# (the daemon reads it at start), `monitor` and `status` like a reachable device.
FAKE = r'''#!/usr/bin/python3
import os, subprocess, sys, time
name = os.path.basename(sys.argv[0])[len("fence_"):]
params = dict(l.rstrip("\n").split("=", 1) for l in sys.stdin if "=" in l)
action = params.get("action", "")
here = os.path.dirname(os.path.abspath(sys.argv[0]))
if action == "metadata":
    print('<?xml version="1.0" ?><resource-agent name="fence_%s" shortdesc="test">'
          '<parameters><parameter name="action" required="1"><content type="string" default="off"/></parameter>'
          '<parameter name="plug" required="0"><content type="string"/></parameter>'
          '</parameters><actions><action name="on"/><action name="off"/><action name="status"/>'
          '<action name="monitor"/><action name="metadata"/></actions></resource-agent>' % name)
    sys.exit(0)
if action in ("monitor",):
    sys.exit(0)
if action == "status":
    print("Status: ON")
    sys.exit(0)
if name == "hang":
    child = subprocess.Popen(["sleep", "300"])
    with open(os.path.join(here, "hang.pids"), "a") as f:
        f.write("%d %d\n" % (os.getpid(), child.pid))
    time.sleep(300)
if name == "weird":
    sys.stdout.write("\x00\x01garbage\xff")
    sys.exit(3)
if name == "liar":
    print("Success: Powered OFF")
    sys.exit(0)
sys.exit(1)
'''

with netns.TestBed(nodes=3) as bed:
    daemons.BED = bed
    agents = os.path.join(bed.dir, "agents")
    os.makedirs(agents)
    with open(os.path.join(agents, "fake.py"), "w") as f:
        f.write(FAKE)
    os.chmod(os.path.join(agents, "fake.py"), 0o755)
    for n in ("hang", "weird", "liar"):
        os.symlink("fake.py", os.path.join(agents, "fence_" + n))
    config = """cluster:
  name: bad
  mode: corosync
  nodes:
    - {name: n1, id: 1, address: 192.0.2.11, fencing: [[hang-1], [weird-1], [liar-1], [ghost-1]]}
    - {name: n2, id: 2, address: 192.0.2.12, fencing: [[liar-1]]}
    - {name: n3, id: 3, address: 192.0.2.13, fencing: [[liar-1]]}
  timings: {token: 300ms, heartbeat_interval: 100ms, liveness_timeout: 1s}
  fencing: {timeout: 6s, monitor_interval: 0s, agent_dirs: [%s]}
fence_devices:
  hang-1: {agent: fence_hang, timeout: 2s}
  weird-1: {agent: fence_weird}
  liar-1: {agent: fence_liar}
  ghost-1: {agent: fence_nosuchagent}
vips:
  v: {address: %s/24, interface: eth0, driver: address, prefer: [n1]}
""" % (agents, VIP)
    h, coro = start_cluster(bed, config)
    h["n1"].wait_vip("v", "held", timeout=10)
    wait_for(lambda: all(h[n].vip("v")["holder"] == "n1" for n in h), 5, "everyone sees n1 holding the VIP")
    alerts = wait_for(lambda: [a for a in h["n2"].alerts() if "fence_nosuchagent" in a], 10,
                      "the daemon's own metadata check flags the missing agent")
    check("fence_nosuchagent is not installed in " + agents in alerts[0], "at start the daemon alerts: %s" % alerts[0])

    t0 = time.time()
    bed.node("n1").partition()
    entry = wait_for(lambda: [e for e in json.loads(h["n2"].ctl("fence-history", "--json"))["history"]
                              if e["target"] == "n1" and e["result"] == "failed"], 30, "the fence of n1 to fail")[0]
    took = entry["finished_ms"] / 1000.0 - entry["started_ms"] / 1000.0
    reason = entry["reason"]
    print("    failed after %.1f s, %d attempt(s): %s" % (took, entry["rounds"], reason))
    check(took <= 6.0 + 2.5, "the failure was reported within the fencing time-out (%.1f s)" % took)
    for want in ["hang-1 off: timeout after", "weird-1 off: error: exit code 3 is not in the fence agent API",
                 "liar-1 status after off: on", "ghost-1 off: fence_nosuchagent is not installed in " + agents]:
        check(want in reason, "the history names each level's failure: %r" % want)
    st = h["n3"].status()
    check(any("fencing n1 failed" in a["message"] for a in st["alerts"]), "an alert says fencing n1 failed")
    check(not any(VIP in a for a in bed.node("n2").addrs() + bed.node("n3").addrs()), "no takeover without proof")
    check(h["n2"].vip("v")["holder"] == "n1", "the VIP stays assigned to the lost n1: %s" % h["n2"].vip("v")["reason"])
    # Every hung agent and the child it left behind were killed with their process group.
    with open(os.path.join(agents, "hang.pids")) as f:
        pids = [int(p) for line in f for p in line.split()]
    time.sleep(0.2)
    alive = [p for p in pids if os.path.exists("/proc/%d" % p) and
             open("/proc/%d/stat" % p).read().rsplit(")", 1)[1].split()[0] != "Z"]
    check(pids and not alive, "the hung agents and their children are gone (%d processes checked)" % len(pids))
    # A retry follows after 5 s and fails the same way: still no takeover.
    wait_for(lambda: len([e for e in json.loads(h["n2"].ctl("fence-history", "--json"))["history"]
                          if e["target"] == "n1"]) >= 2, 20, "a second attempt")
    check(not any(VIP in a for a in bed.node("n2").addrs() + bed.node("n3").addrs()), "still no takeover")
    check(all(x.proc.alive() for x in h.values()), "every daemon stayed up")
    for x in h.values():
        x.stop()
print("fencing_bad_agents: all passed")

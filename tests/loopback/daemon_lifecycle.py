"""hafrontd's life: start, READY=1, status (text and JSON shape), watchdog pings when
asked, journald-style log lines, SIGTERM to STOPPING=1 and a clean exit; refusals to start
with a clear message (bad config, second daemon on the same socket, corosync mode)."""
import os
import re
import signal
import subprocess

from harness import HAFRONTD, SOURCE_DIR, Daemon, check, fail, tempdir, wait_for

# --- a normal life under a (simulated) service manager ---------------------------------
d = Daemon(notify=True, env={"WATCHDOG_USEC": "200000"}).start()
d.notify.wait("READY=1")
check(True, "READY=1 sent once the admin socket answers")
check(oct(os.stat(d.socket).st_mode & 0o777) == "0o600", "admin socket is mode 0600")

s = d.status()
check(s["node"] == "solo", "status names the node")
check(s["cluster"]["mode"] == "standalone" and s["cluster"]["quorate"] is True, "standalone is quorate")
check([m["name"] for m in s["cluster"]["members"]] == ["solo"], "members list the node itself")
check([v["name"] for v in s["vips"]] == ["front"], "VIPs listed")
for key in ("name", "address", "holder", "state"):
    check(key in s["vips"][0], "vip has %s" % key)
check([x["name"] for x in s["services"]] == ["api", "db"], "services listed in file order")
srv = s["services"][0]["servers"][0]
for key in ("name", "address", "state", "reason"):
    check(key in srv, "server has %s" % key)
check(srv["address"] == "127.0.0.1:18081", "server address shown")

# Standalone mode holds every VIP (in the daemon's own network namespace when root).
if os.geteuid() == 0:
    v = wait_for(lambda: (lambda st: st if st["vips"][0]["state"] == "held" else None)(d.status()), 5, "VIP held")["vips"][0]
    check(v["holder"] == "solo" and v["address"] == "127.0.0.10/32", "standalone holds its VIP: %s" % v)
    r = d.ctl("standby")
    check(r.returncode == 0 and "standby" in r.stdout, "hafrontctl standby")
    s2 = wait_for(lambda: (lambda st: st if st["vips"][0]["state"] == "released" else None)(d.status()), 5, "VIP released")
    check(s2["standby"] is True and s2["vips"][0]["holder"] is None, "standby releases the VIP")
    r = d.ctl("standby", "some-other-node")
    check(r.returncode == 1 and "only this node" in r.stderr, "standby of another node is refused in standalone mode")
    check(d.ctl("unstandby").returncode == 0, "hafrontctl unstandby")
    wait_for(lambda: d.status()["vips"][0]["state"] == "held", 5, "VIP held again")
    check(True, "unstandby takes the VIP again")

r = d.ctl("status")
check(r.returncode == 0 and "quorate" in r.stdout and "web-2" in r.stdout and "127.0.0.10/32" in r.stdout,
      "text status shows quorum, servers and VIPs")

before = len(d.notify.drain())
wait_for(lambda: sum("WATCHDOG=1" in m for m in d.notify.drain()[before:]) >= 3, 3, "3 watchdog pings")
check(True, "watchdog pings at half of WATCHDOG_USEC")

d.signal(signal.SIGTERM)
d.notify.wait("STOPPING=1")
rc = d.proc.wait(10)
check(rc == 0, "SIGTERM: clean exit 0")
check(not os.path.exists(d.socket), "admin socket removed on stop")

# --- journald format when stderr is the journal ----------------------------------------
j = Daemon(env={"JOURNAL_STREAM": "8:12345"}).start()
j.stop()
lines = j.read_log().splitlines()
check(lines and all(re.match(r"^<[0-7]>", l) for l in lines), "every line carries a syslog priority: %r" % lines[:3])
check(any(l.startswith("<6>hafrontd") and "started" in l for l in lines), "the start line is <6> (info)")

# --- refusals ----------------------------------------------------------------------------
a = Daemon().start()
b = Daemon(directory=tempdir())
b.write_config(socket_path=a.socket)
b.start(wait=False)
rc = b.proc.wait(10)
check(rc == 1 and "another hafrontd is answering" in b.read_log(), "a second daemon on the same socket refuses to start")
check(a.alive() and a.ping(), "the first daemon is unaffected")
a.stop()

bad = Daemon()
bad.write_config(raw="cluster: {name: x}\nservices:\n  s: {listen: [nope:80], servers: []}\n")
bad.start(wait=False)
rc = bad.proc.wait(10)
log = bad.read_log()
check(rc == 2 and bad.config + ":3:16: services.s.listen[0]: unknown VIP 'nope'" in log
      and bad.config + ":3:35: services.s.servers: list at least one server" in log,
      "an invalid config at start: exit 2 with every FILE:LINE:COL: error\n" + log)

# corosync mode with no Corosync reachable (as root the daemon has a network namespace of
# its own, so not even a local Corosync's abstract sockets are visible): it runs, retries,
# is not quorate and holds nothing.
coro = Daemon()
coro.write_config(raw=open(os.path.join(SOURCE_DIR, "config", "two-node.yaml")).read().replace(
    "secrets/", os.path.join(SOURCE_DIR, "config", "secrets") + "/").replace("driver: lease", "driver: address")
    + "admin: {socket: %s}\n" % coro.socket)
coro.extra_args = []
coro.argv_node = "node-a"
coro.start()
st = coro.status()
check(st["cluster"]["mode"] == "corosync" and st["cluster"]["quorate"] is False and st["cluster"]["members"] == [],
      "corosync mode without Corosync: not quorate, no members")
check(st["vips"][0]["state"] == "released" and st["vips"][0]["holder"] is None, "and it holds nothing")
wait_for(lambda: "cannot connect to Corosync" in coro.read_log(), 5, "the log says why")
check(True, "the log says it cannot reach Corosync and retries")
check(coro.stop() == 0, "clean stop")

r = subprocess.run([HAFRONTD, "--bogus"], capture_output=True, text=True, timeout=10)
check(r.returncode != 0 and "bogus" in (r.stderr + r.stdout), "unknown daemon flag refused")
print("daemon_lifecycle: all passed")

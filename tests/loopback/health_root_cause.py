"""Root cause and alerts through hafrontd: a keystone-like service (HTTP check on /v3,
answering 503 while a flag file exists) depends on a galera-like one (tcp check on a
listener). The "database" stops and keystone starts failing at the same moment: the webhook
sink receives ONE alert, galera down, naming keystone as affected (no alert of keystone's
own), the exec sink gets the same JSON on its stdin, status shows keystone down with galera
as its root cause and the VIP not servable because of it; when the database is back a
resolved alert follows."""
import os
import time

import tcp_tools
from harness import check, tempdir, wait_for
from health_tools import (HealthDaemon, KeystoneLike, WebhookReceiver, exec_sink_script, read_jsonl, tcp_listener,
                          yaml_list)
from tcp_tools import free_port, service_block

tcp_tools.setup()

work = tempdir()
flag = os.path.join(work, "db-down")
api = KeystoneLike(flag)
db = tcp_listener()
db_port = db.port
hook = WebhookReceiver()
argv, exec_out = exec_sink_script(work)

checks = ("  v3: {http: {path: /v3, expect_status: 200}, interval: 300ms, fast_interval: 100ms, timeout: 250ms, "
          "rise: 1, fall: 1}\n"
          "  db: {tcp: {}, interval: 300ms, fast_interval: 100ms, timeout: 250ms, rise: 1, fall: 1}\n")
services = (service_block("keystone", free_port(), ["name: ctrl-0, address: 127.0.0.1:%d" % api.port],
                          "check: v3\ndepends_on: [galera]").replace("listen: [127.0.0.1:", "listen: [front:")
            + service_block("galera", free_port(), ["name: ctrl-0, address: 127.0.0.1:%d" % db_port], "check: db"))
alerts = ("  webhook: {url: 'http://127.0.0.1:%d/hooks/hafront', timeout: 2s}\n"
          "  exec: {command: %s, timeout: 5s}\n"
          "  group_wait: 2s\n" % (hook.port, yaml_list(argv)))
vips = "  front: {address: 127.0.0.10/32, interface: lo}\n"
d = HealthDaemon(services, checks=checks, vips=vips, alerts=alerts)
d.start()

d.wait_health("keystone", lambda h: h["state"] == "up", 5, "keystone up")
d.wait_health("galera", lambda h: h["state"] == "up", 5, "galera up")
s = d.server("keystone", "ctrl-0")
check(s["health"]["last_check"]["evidence"].get("http_status") == "200", "keystone's check saw HTTP 200: %s" % s)
time.sleep(2.5)  # longer than group_wait: anything that was going to be sent at start has been
check(hook.alerts() == [], "no alert while everything is up: %s" % hook.alerts())

# The database goes away; keystone answers 503 from the same moment.
open(flag, "w").close()
db.close()
d.wait_health("keystone", lambda h: h["state"] == "down", 5, "keystone down")
g = d.wait_health("galera", lambda h: h["state"] == "down" and h["affected"] == ["keystone"], 5, "galera down")
k = d.health("keystone")
check(k["root_cause"].startswith("galera: down — no usable server: ctrl-0 down"),
      "keystone's root cause is galera: %s" % k["root_cause"])
check(g["affected"] == ["keystone"], "galera lists keystone as affected")
ks = d.server("keystone", "ctrl-0")
check(ks["health"]["last_check"]["evidence"].get("http_status") == "503", "keystone's evidence: HTTP 503")

posts = wait_for(lambda: hook.alerts() or None, 6, "the webhook to receive an alert")
time.sleep(3)  # what else might come (a second alert would be the failure)
posts = hook.alerts()
firing = [p for p in posts if p.get("state") == "firing"]
check(len(firing) == 1, "exactly one alert, folded: %s" % posts)
a = firing[0]
check(a["id"] == "galera" and a["severity"] == "critical" and a["summary"] == "galera down",
      "the alert is about galera: %s" % a)
check(a["affected"] == ["keystone"], "it names keystone as affected")
check("connect refused" in a["root_cause"] or "refused" in a["evidence"][0]["reason"],
      "it says why: %s / %s" % (a["root_cause"], a["evidence"]))
check(a["node"] == "solo" and a["cluster"] == "loopback" and a["time"].endswith("Z"), "it says where and when")
check(not any(p.get("id") == "keystone" for p in posts), "keystone has no alert of its own")

got = wait_for(lambda: read_jsonl(exec_out) or None, 10, "the exec sink to write what it got")
check(got[0]["id"] == "galera" and got[0]["affected"] == ["keystone"], "the exec sink got the same JSON on stdin")

st = d.status()
active = st["active_alerts"]
check(len(active) == 1 and active[0]["id"] == "galera", "status lists one active alert: %s" % active)
front = st["vips"][0]
check(front["servable"] is False and "keystone has no usable server" in front["servable_reason"],
      "the VIP is not servable, and status says why: %s" % front["servable_reason"])
r = d.ctl("status")
check("root cause: galera: down" in r.stdout and "active alerts (1)" in r.stdout,
      "hafrontctl status shows the root cause and the alert")
sinks = {k["name"].split()[0]: k for k in st["alert_sinks"]}
check(sinks["webhook"]["sent"] == 1 and sinks["webhook"]["failed"] == 0, "the webhook counted one delivery: %s" % sinks)

# The database is back: one resolved alert.
db = tcp_listener(port=db_port)
os.unlink(flag)
d.wait_health("galera", lambda h: h["state"] == "up", 5, "galera up again")
d.wait_health("keystone", lambda h: h["state"] == "up", 5, "keystone up again")
resolved = wait_for(lambda: [p for p in hook.alerts() if p.get("state") == "resolved"] or None, 5, "a resolved alert")
check(len(resolved) == 1 and resolved[0]["id"] == "galera", "galera resolved: %s" % resolved)
time.sleep(2.5)
check(len(hook.alerts()) == 2, "nothing else was sent: %s" % hook.alerts())
check(d.status()["active_alerts"] == [], "no active alert")
wait_for(lambda: len(read_jsonl(exec_out)) == 2, 10, "the exec sink to get the resolved alert too")
check(read_jsonl(exec_out)[1]["state"] == "resolved", "the exec sink got the resolved alert")

check(d.alive(), "hafrontd is still running")
check(d.stop() == 0, "clean stop")
print("health_root_cause: all passed")

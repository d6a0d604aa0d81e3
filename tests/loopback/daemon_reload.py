"""Reload: a broken file is rejected with FILE:LINE:COL: messages and the daemon keeps
running the old config; a valid file is applied; changes that need a restart are refused;
systemd hears RELOADING=1 then READY=1."""
import os
import signal

from harness import DEFAULT_SERVICES, Daemon, check, wait_for

d = Daemon(notify=True).start()
d.notify.wait("READY=1")
old = d.status()
old_sha = old["config"]["sha256"]
check([s["name"] for s in old["services"]] == ["api", "db"], "running the first config")

# 1. A broken file through SIGHUP.
d.write_config(services=DEFAULT_SERVICES + "  broken: {listen: [front:8080], servers: [{name: x, address: nowhere}]}\n")
n = len(d.notify.drain())
d.signal(signal.SIGHUP)
d.notify.wait("RELOADING=1", after=n)
d.notify.wait("READY=1", after=n)
s = wait_for(lambda: (lambda st: st if st["config"]["last_reload"]["at"] else None)(d.status()), 5, "reload attempt")
check(d.alive(), "daemon still running after a broken reload")
check(s["config"]["sha256"] == old_sha, "still the old config (same sha256)")
check([x["name"] for x in s["services"]] == ["api", "db"], "still the old services")
errors = s["config"]["last_reload"]["errors"]
check(s["config"]["last_reload"]["ok"] is False, "status says the last reload failed")
check(any(e.startswith(d.config + ":") and "already a listener" in e for e in errors)
      and any("servers[0].address" in e for e in errors), "status lists every error with FILE:LINE:COL: %s" % errors)
log = d.read_log()
check("reload rejected" in log and "still running config " + old_sha[:12] in log, "the log says the reload was rejected")

# 2. The same through hafrontctl reload: exit 2 and the errors on stderr.
r = d.ctl("reload")
check(r.returncode == 2 and "rejected" in r.stderr and d.config + ":" in r.stderr,
      "hafrontctl reload of a broken file: exit 2 with the errors\n" + r.stderr)

# 3. A truncated file and a deleted file.
text = open(d.config).read()
d.write_config(raw=text[: len(text) // 2] + "\n  x: {listen: [")
r = d.ctl("reload")
check(r.returncode == 2 and "YAML syntax error" in r.stderr, "truncated file rejected")
os.unlink(d.config)
r = d.ctl("reload")
check(r.returncode == 2 and "cannot open the config file" in r.stderr, "deleted file rejected")
check(d.status()["config"]["sha256"] == old_sha, "still the old config")

# 4. A valid change: a service added, one changed, one removed.
services = DEFAULT_SERVICES.replace("127.0.0.1:18082", "127.0.0.1:18083").replace("  db:", "  db2:").replace(
    "127.0.0.1:13306", "127.0.0.1:13316")
services += "  extra:\n    listen: [front:9000]\n    servers: [{name: e, address: 127.0.0.1:19000}]\n"
d.write_config(services=services)
r = d.ctl("reload")
check(r.returncode == 0 and "services: added db2, extra; removed db; changed api" in r.stdout,
      "a valid reload is applied and the change summarised: " + r.stdout + r.stderr)
s = d.status()
check([x["name"] for x in s["services"]] == ["api", "db2", "extra"], "status shows the new services")
check(s["config"]["sha256"] != old_sha and s["config"]["last_reload"]["ok"] is True, "new sha256, last reload ok")
check(s["services"][0]["servers"][1]["address"] == "127.0.0.1:18083", "changed server address applied")

# 5. A change that needs a restart is refused and the config stays.
cur = s["config"]["sha256"]
d.write_config(services=services, socket_path=d.socket + ".other")
r = d.ctl("reload")
check(r.returncode == 2 and "needs a restart" in r.stderr and "admin.socket" in r.stderr,
      "moving the admin socket needs a restart: " + r.stderr)
check(d.status()["config"]["sha256"] == cur, "config unchanged after the refused reload")

# 6. Log level change applies on reload.
d.write_config(services=services, level="debug")
check(d.ctl("reload").returncode == 0, "log level change reloads")
check(d.stop() == 0, "clean stop after reloads")
print("daemon_reload: all passed")

"""Active checks through hafrontd: a server that stops answering its tcp check goes down with
its reason in `hafrontctl status`, and the proxy stops sending to it; it comes back up after
`rise` passing checks. An operator's drain / maint / ready (hafrontctl) wins over checks."""
import subprocess

import tcp_tools
from harness import HAFRONTCTL, check, wait_for
from health_tools import HealthDaemon
from tcp_tools import Backend, connect, free_port, roundtrip, service_block

tcp_tools.setup()


def served(conn, backend):
    """Echoes, and records connections that carried data: the checks' bare connects do not."""
    first = True
    while True:
        data = conn.recv(65536)
        if not data:
            return
        if first:
            backend.record(1)
            first = False
        conn.sendall(data)


a = Backend(served)
b = Backend(served)
# The check looks at a port of its own per server (check port = data port here), so a
# server's check can be failed by closing its listener.
front = free_port()
checks = "  tcp: {tcp: {}, interval: 300ms, fast_interval: 100ms, timeout: 200ms, rise: 3, fall: 2}\n"
services = service_block("web", front, ["name: a, address: 127.0.0.1:%d" % a.port,
                                         "name: b, address: 127.0.0.1:%d" % b.port],
                         "check: tcp\npassive: {connect_failures: 0}")
d = HealthDaemon(services, checks=checks)
d.start()

# 1. Both come up after their first check.
for name in ("a", "b"):
    s = d.wait_state("web", name, "up", 5)
    check(s["health"]["last_check"]["ok"] is True and s["health"]["since"],
          "%s is up by its check, since %s: %s" % (name, s["health"]["since"], s["reason"]))
check(d.health("web")["state"] == "up", "service web is up")


def spread(n):
    """n connections through the proxy; returns how many each back-end served."""
    before = (len(a.records), len(b.records))
    for i in range(n):
        c = connect(front)
        roundtrip(c, b"ping %d" % i)
        c.close()
    return len(a.records) - before[0], len(b.records) - before[1]


got = spread(20)
check(got[0] > 0 and got[1] > 0, "traffic reaches both servers: %s" % (got,))

# 2. b stops answering: down after fall (2) failed checks, with its reason.
port_b = b.port
b.close()
s = d.wait_state("web", "b", "down", 5)
check("refused" in s["reason"], "b is down, reason: %s" % s["reason"])
check(s["health"]["last_check"]["ok"] is False, "its last check failed: %s" % s["health"]["last_check"])
h = d.health("web")
check(h["state"] == "degraded" and "b down" in h["reason"], "web is degraded: %s" % h)
got = spread(20)
check(got == (20, 0), "the proxy no longer sends to b: %s" % (got,))
text = subprocess.run([HAFRONTCTL, "--socket", d.socket, "status"], capture_output=True, text=True).stdout
check("health: DEGRADED" in text and "refused" in text, "hafrontctl status shows it:\n" + text)

# 3. b is back: up only after rise (3) passing checks.
b = Backend(served, port=port_b)
seen = []


def watch():
    s = d.server("web", "b")
    seen.append(s["state"])
    return s if s["state"] == "up" else None


s = wait_for(watch, 10, "b to be up again")
check("down" in seen, "b was still down right after it came back")
check(s["health"]["last_check"]["ok"] is True, "b is up after its passing checks")
got = spread(20)
check(got[1] > 0, "traffic reaches b again: %s" % (got,))

# 4. Operators: drain and maint win over checks; ready hands back to them.
r = d.ctl("drain", "web/a")
check(r.returncode == 0 and "drain" in r.stdout, "hafrontctl drain web/a: %s" % r.stdout.strip())
s = d.server("web", "a")
check(s["state"] == "drain" and s["health"]["admin"] == "drain", "a is drained: %s" % s["reason"])
got = spread(10)
check(got == (0, 10), "a drained server takes no new connection: %s" % (got,))
r = d.ctl("maint", "web/a")
check(r.returncode == 0 and d.server("web", "a")["state"] == "maint", "hafrontctl maint web/a")
r = d.ctl("ready", "web/a")
check(r.returncode == 0 and d.server("web", "a")["state"] == "up", "hafrontctl ready web/a: back to up")
got = spread(20)
check(got[0] > 0, "a takes traffic again: %s" % (got,))
r = d.ctl("drain", "web/nope")
check(r.returncode == 1 and "no server 'nope'" in r.stderr, "an unknown server is refused: %s" % r.stderr.strip())
r = d.ctl("drain", "web")
check(r.returncode == 2 and "SERVICE/SERVER" in r.stderr, "a malformed name is a usage error")

check(d.alive(), "hafrontd is still running")
check(d.stop() == 0, "clean stop")
print("health_checks: all passed")

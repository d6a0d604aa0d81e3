"""Passive ejection through hafrontd: a steady stream of short tcp connections through the
proxy, one back-end killed mid-stream. The proxy's first refused connect ejects the server
at once (at most one connection ever tries it), the retry goes to the other server so no
client connection fails, and after the back-off a TCP connect re-admits the server once it
is back. No active check is configured: ejection is all there is."""
import os
import threading
import time

import tcp_tools
from harness import check, wait_for
from health_tools import HealthDaemon
from tcp_tools import Backend, connect, echo, free_port, recv_exact, service_block

tcp_tools.setup()

a = Backend(echo)
b = Backend(echo)
front = free_port()
services = service_block("web", front, ["name: a, address: 127.0.0.1:%d" % a.port,
                                         "name: b, address: 127.0.0.1:%d" % b.port],
                         "passive: {connect_failures: 1, backoff: 1s, max_backoff: 4s}")
d = HealthDaemon(services)
d.access_log = os.path.join(d.dir, "access.log")
d.set_services(services)
d.start()
check(d.server("web", "a")["state"] == "up" and d.server("web", "a")["reason"] == "no check configured",
      "servers without a check start up")

# The load: one short connection every 10 ms, each a round trip.
stats = {"ok": 0, "failed": 0, "errors": []}
stop = threading.Event()
# A connection in flight on the killed server dies with it (a tcp proxy cannot save it); the
# kill happens between two connections, so every failure counted is hafront's.
between = threading.Lock()


def load():
    i = 0
    while not stop.is_set():
        with between:
            one(i)
        i += 1
        time.sleep(0.01)


def one(i):
    try:
        c = connect(front, timeout=5)
        msg = b"GET %d" % i
        c.sendall(msg)
        got = recv_exact(c, len(msg), 5)
        c.close()
        if got != msg:
            raise OSError("sent %r, got back %r" % (msg, got))
        stats["ok"] += 1
    except OSError as e:
        stats["failed"] += 1
        stats["errors"].append(repr(e))


t = threading.Thread(target=load, daemon=True)
t.start()
wait_for(lambda: a.accepted >= 5 and b.accepted >= 5, 10, "the load to reach both servers")

# Kill a: its listener closes, so a connect to it is refused.
port_a = a.port
with between:
    a.close()
    # Python's close() leaves the socket listening until the accept thread's poll returns:
    # wait for it, so the port refuses from here on, as a killed process's would.
    a._thread.join(5)
killed_at = stats["ok"]
s = d.wait_state("web", "a", "down", 5)
check(s["reason"].startswith("ejected: connect refused seen by the proxy (1 in a row)"),
      "a is ejected: %s" % s["reason"])
check(s["health"]["ejection"] and s["health"]["ejection"]["backoff_ms"] == 1000,
      "status shows the ejection and its back-off: %s" % s["health"]["ejection"])
# Let the load run on for a while against the pool with a gone.
wait_for(lambda: stats["ok"] >= killed_at + 100, 20, "100 more connections")
refused = d.server("web", "a")["passive"].get("connect_refused", 0)
check(refused == 1, "exactly one connection tried the dead server (passive connect_refused: %d)" % refused)
if stats["failed"]:
    print("".join(l for l in open(d.access_log) if " -- 0" not in l))
    print(d.read_log()[-3000:])
check(stats["failed"] == 0, "no client connection failed: %s" % stats["errors"][:3])

# a comes back: re-admitted by a TCP connect after its back-off (which doubled while the
# re-admission connects were refused).
a = Backend(echo, port=port_a)
s = d.wait_state("web", "a", "up", 15)
check("re-admitted" in s["reason"], "a is re-admitted: %s" % s["reason"])
base = d.server("web", "a")["counters"]["connections"]
wait_for(lambda: d.server("web", "a")["counters"]["connections"] >= base + 5, 10, "the load to reach a again")
check(True, "traffic reaches a again")

stop.set()
t.join(10)
check(stats["failed"] == 0, "no client connection failed in %d" % stats["ok"])
check(d.alive(), "hafrontd is still running")
check(d.stop() == 0, "clean stop")
print("health_passive: all passed")

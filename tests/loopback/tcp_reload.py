"""Reload (SIGHUP) of tcp services: a service added starts listening while an established
connection of another service keeps working; a service removed stops listening while its
own established connection keeps working; a reload whose new listener cannot bind is
rejected as a whole and changes nothing."""
import signal
import socket

import tcp_tools
from harness import check, wait_for
from tcp_tools import Backend, ProxyDaemon, can_connect, connect, echo, free_port, roundtrip, service_block

tcp_tools.setup()

echo_backend = Backend(echo)
port_a, port_b, port_c = free_port(), free_port(), free_port()
service_a = service_block("alpha", port_a, ["name: e, address: 127.0.0.1:%d" % echo_backend.port])
service_b = service_block("beta", port_b, ["name: e, address: 127.0.0.1:%d" % echo_backend.port])
service_c = service_block("gamma", port_c, ["name: e, address: 127.0.0.1:%d" % echo_backend.port])


def reload_with(d, services):
    before = d.status()["config"]["last_reload"]["at"]
    d.set_services(services)
    d.signal(signal.SIGHUP)
    return wait_for(lambda: (lambda s: s if s["config"]["last_reload"]["at"] != before else None)(d.status()), 10,
                    "the reload to be attempted")


d = ProxyDaemon(service_a).start()
check(not can_connect(port_b), "beta is not listening before the reload")
a1 = connect(port_a)
roundtrip(a1, b"one")

# 1. Add beta: its listener opens; alpha's connection carries on.
s = reload_with(d, service_a + service_b)
check(s["config"]["last_reload"]["ok"], "the reload adding beta is applied")
wait_for(lambda: can_connect(port_b), 10, "beta to listen")
b1 = connect(port_b)
roundtrip(b1, b"beta")
roundtrip(a1, b"two")
check(True, "alpha's established connection still relays after beta was added")

# 2. Remove alpha: its listener closes; its established connection still relays.
s = reload_with(d, service_b)
check(s["config"]["last_reload"]["ok"], "the reload removing alpha is applied")
wait_for(lambda: not can_connect(port_a), 10, "alpha's listener to close")
roundtrip(a1, b"three")
roundtrip(b1, b"beta again")
check([x["name"] for x in d.status()["services"]] == ["beta"], "status lists beta only")
a1.shutdown(socket.SHUT_WR)
check(tcp_tools.recv_all(a1, 5) == b"", "alpha's connection still ends cleanly")
a1.close()

# 3. A new listener that cannot bind (the port is taken by a socket without SO_REUSEPORT):
#    the whole reload is refused and beta keeps serving.
squatter = socket.socket()
squatter.bind(("127.0.0.1", port_c))
squatter.listen(1)
sha = d.status()["config"]["sha256"]
s = reload_with(d, service_b + service_c)
errors = s["config"]["last_reload"]["errors"]
check(not s["config"]["last_reload"]["ok"] and any("cannot listen on 127.0.0.1:%d" % port_c in e for e in errors),
      "the reload is rejected with the bind error: %s" % errors)
check(s["config"]["sha256"] == sha and [x["name"] for x in s["services"]] == ["beta"], "the running config stays")
roundtrip(b1, b"beta after a failed reload")
squatter.close()

# 4. The same change once the port is free, and a changed service (a second server):
#    beta's established connection is not closed by the change.
s = reload_with(d, service_b.replace("    servers:\n", "    retries: 2\n    servers:\n") + service_c)
check(s["config"]["last_reload"]["ok"], "the reload is applied once the port is free")
wait_for(lambda: can_connect(port_c), 10, "gamma to listen")
roundtrip(b1, b"beta after its own change")
b2 = connect(port_b)
roundtrip(b2, b"new beta connection")
b1.close()
b2.close()

check(d.alive(), "hafrontd is still running")
check(d.stop() == 0, "clean stop")
print("tcp_reload: all passed")

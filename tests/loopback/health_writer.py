"""Single-writer through hafrontd, with on_server_down: close-sessions. Two tcp servers,
each with a check on a port of its own (the same port number on two loopback addresses), so
the writer's check can fail while its data port and its established sessions stay up:

  - the writer's check fails -> the other server becomes the writer, and hafrontd closes the
    session a client still had on the old writer (the back-end did not close it);
  - the old writer passes its check again -> it stays a standby: no failback; new sessions
    and the one on the new writer carry on there."""
import socket

import tcp_tools
from harness import check, wait_for
from health_tools import HealthDaemon, backend_on, tcp_listener
from tcp_tools import connect, echo, free_port, roundtrip, service_block

tcp_tools.setup()

# Data ports on 127.0.0.1 and 127.0.0.2; the check port is the same number on both.
a = backend_on("127.0.0.1", 0, echo)
b = backend_on("127.0.0.2", 0, echo)
check_port = free_port()
check_a = tcp_listener("127.0.0.1", check_port)
check_b = tcp_listener("127.0.0.2", check_port)
front = free_port()
checks = ("  alive: {tcp: {}, port: %d, interval: 300ms, fast_interval: 100ms, timeout: 250ms, rise: 1, fall: 1}\n"
          % check_port)
services = service_block("db", front, ["name: a, address: 127.0.0.1:%d" % a.port,
                                        "name: b, address: 127.0.0.2:%d" % b.port],
                         "balance: single-writer\non_server_down: close-sessions\ncheck: alive\n"
                         "timeouts: {client: 60s, server: 60s}")
d = HealthDaemon(services, checks=checks)
d.start()

h = d.wait_health("db", lambda x: x["writer"] == "a" and x["state"] == "up", 5, "a to be the writer")
check(True, "a is the writer: %s" % h["writer_reason"])
check(d.server("db", "b")["health"]["role"] == "standby" and d.server("db", "b")["health"]["weight"] == 0,
      "b stands by with weight 0")

s1 = connect(front)
roundtrip(s1, b"write 1")
check(a.accepted == 1 and b.accepted == 0, "the session went to the writer a")

# a's check fails; its data port and s1 stay up at the back-end.
check_a.close()
h = d.wait_health("db", lambda x: x["writer"] == "b", 5, "b to take over")
check("a" in h["writer_reason"], "the writer moved to b: %s" % h["writer_reason"])
s1.settimeout(5)
try:
    data = s1.recv(100)
    closed = data == b""
except (ConnectionResetError, socket.timeout) as e:
    closed = not isinstance(e, socket.timeout)
check(closed, "hafrontd closed the session on the old writer at once")
wait_for(lambda: a.closed_conns >= 1, 5, "the old writer's side of the session to close")
check(True, "the old writer saw its session end")

s2 = connect(front)
roundtrip(s2, b"write 2")
check(b.accepted == 1 and a.accepted == 1, "a new session goes to the new writer b")

# a is healthy again: no failback.
check_a = tcp_listener("127.0.0.1", check_port)
d.wait_state("db", "a", "up", 5)
check(d.health("db")["writer"] == "b", "b stays the writer after a came back")
s3 = connect(front)
roundtrip(s3, b"write 3")
check(b.accepted == 2 and a.accepted == 1, "new sessions still go to b")
roundtrip(s2, b"still writing")
check(True, "the session on b was not disturbed")
s1.close()
s2.close()
s3.close()

check(d.alive(), "hafrontd is still running")
check(d.stop() == 0, "clean stop")
print("health_writer: all passed")

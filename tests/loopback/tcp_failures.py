"""Servers that fail, through hafrontd in tcp mode: a refused connect is retried on the next
server and reported as a passive health event; a service whose only server refuses gives
up after its retries; a connect to a server that never answers times out and moves on;
idle and client time-outs close quiet connections. Status counts each case and the access
log names it."""
import os
import socket
import struct
import time

import tcp_tools
from harness import check, wait_for
from tcp_tools import Backend, ProxyDaemon, connect, echo, free_port, recv_all, roundtrip, service_block

tcp_tools.setup()

good = Backend(echo)


def ending(conn, backend):
    """Reads to the end and records how the connection ended: "eof" or "reset"."""
    try:
        while conn.recv(65536):
            pass
        backend.record("eof")
    except ConnectionResetError:
        backend.record("reset")


watcher = Backend(ending)
refused_port = free_port()  # nothing listens there
black_port = tcp_tools.blackhole()
ports = {name: free_port() for name in ("retry", "giveup", "slow", "idle", "quiet", "ends")}

# A heavy weight makes the failing server the first pick of every worker.
services = (
    service_block("retry", ports["retry"], ["name: dead, address: 127.0.0.1:%d, weight: 256" % refused_port,
                                            "name: live, address: 127.0.0.1:%d" % good.port])
    + service_block("giveup", ports["giveup"], ["name: dead, address: 127.0.0.1:%d" % refused_port], "retries: 1")
    + service_block("slow", ports["slow"], ["name: hole, address: 127.0.0.1:%d, weight: 256" % black_port,
                                          "name: live, address: 127.0.0.1:%d" % good.port],
                    "timeouts: {connect: 300ms}")
    + service_block("idle", ports["idle"], ["name: live, address: 127.0.0.1:%d" % good.port],
                    "timeouts: {idle: 300ms}")
    + service_block("quiet", ports["quiet"], ["name: live, address: 127.0.0.1:%d" % good.port],
                    "timeouts: {client: 300ms}")
    + service_block("ends", ports["ends"], ["name: watcher, address: 127.0.0.1:%d" % watcher.port]))
d = ProxyDaemon(services)
d.access_log = os.path.join(d.dir, "access.log")
d.set_services(services)
d.start()

# 1. Refused, then redispatched to the live server: every connection works.
for i in range(4):
    c = connect(ports["retry"])
    roundtrip(c, b"retry %d" % i)
    c.close()
check(True, "4 connections through a pool whose favourite server refuses")
dead = wait_for(lambda: (lambda s: s if s["passive"].get("connect_refused", 0) >= 1 else None)(
    d.server("retry", "dead")), 5, "the refused connects to show in status")
check(dead["counters"]["errors"].get("connect_refused", 0) == dead["passive"]["connect_refused"],
      "each refused connect counted once as an error and once as a passive event: %s" % dead)
check(d.service("retry")["counters"]["errors"].get("connect_refused", 0) >= 1, "the service counts them too")
line = tcp_tools.wait_log_line(d.access_log, lambda l: " retry retry/live " in l and l.split()[-1] == "1")
check(line.split()[7] == "--", "access log: the retried connection ended normally after 1 retry: " + line.strip())

# 2. The only server refuses: the client is closed after 1 + retries attempts.
c = connect(ports["giveup"])
check(recv_all(c, 10) == b"", "the client of a pool that refuses everything is closed")
c.close()
giveup = wait_for(lambda: (lambda s: s if s["counters"]["active"] == 0 and s["counters"]["connections"] == 1 else None)(
    d.service("giveup")), 5, "the given-up connection to end")
check(giveup["counters"]["errors"].get("connect_refused") == 2, "two attempts (retries: 1): %s" % giveup["counters"])
check(d.server("giveup", "dead")["passive"].get("connect_refused") == 2, "two passive events")
line = tcp_tools.wait_log_line(d.access_log, lambda l: " giveup giveup/dead " in l)
check(line.split()[7] == "SC" and line.split()[8] == "1", "access log: SC after 1 retry: " + line.strip())

# 3. A server that never answers the SYN: the connect times out, the next server serves.
c = connect(ports["slow"], timeout=10)
roundtrip(c, b"slow", timeout=10)
c.close()
hole = wait_for(lambda: (lambda s: s if s["passive"].get("connect_timeout", 0) >= 1 else None)(d.server("slow", "hole")),
                5, "the connect time-out to show in status")
check(hole["counters"]["errors"].get("connect_timeout", 0) >= 1 and hole["counters"]["connections"] == 0,
      "connect time-outs counted, no connection made: %s" % hole["counters"])
line = tcp_tools.wait_log_line(d.access_log, lambda l: " slow slow/live " in l)
check(int(line.split()[4].split("/")[2]) >= 300, "the connection waited for the 300 ms connect time-out: " + line.strip())

# 4. Idle and client time-outs close a quiet connection (with end of stream, not a hang).
# The idle time-out blames whichever side was quiet longer; here both were, equally.
for name, codes, error in (("idle", ("cD", "sD"), "idle_timeout"), ("quiet", ("cD",), "client_timeout")):
    c = connect(ports[name])
    roundtrip(c, b"hello")
    check(recv_all(c, 10) == b"", "%s: a quiet connection is closed by hafrontd" % name)
    c.close()
    svc = wait_for(lambda: (lambda s: s if s["counters"]["errors"].get(error) == 1 else None)(d.service(name)), 5,
                   "%s to be counted" % error)
    check(svc["counters"]["active"] == 0, "%s: counted as %s and no longer active" % (name, error))
    line = tcp_tools.wait_log_line(d.access_log, lambda l: (" %s %s/live " % (name, name)) in l)
    check(line.split()[7] in codes, "%s: access log says %s: %s" % (name, "/".join(codes), line.strip()))
wait_for(lambda: good.closed_conns >= good.accepted, 5, "the back-end to see every connection closed")
check(True, "the back-end saw the time-outs close its side too")

# 5. How the server's side ends follows how the session ended: a client that closes
# cleanly -> the server gets end of stream; a client that resets (or any abnormal end: the
# VIP released, the session closed because its server stopped being the writer) -> the
# server's connection is reset too, so nothing still queued for it is delivered later.
for how in ("eof", "reset"):
    c = connect(ports["ends"])
    c.sendall(b"INSERT ...")
    wait_for(lambda: watcher.accepted >= (1 if how == "eof" else 2), 5, "the watcher to accept")
    time.sleep(0.2)   # the statement reached the server
    if how == "reset":
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
    wait_for(lambda: len(watcher.records) >= (1 if how == "eof" else 2), 5, "the watcher to see the end")
    check(watcher.records[-1] == how, "a client that %s: the server's connection ends with %s (got %s)" %
          ("closes cleanly" if how == "eof" else "resets", how, watcher.records[-1]))

check(d.alive(), "hafrontd is still running")
check(d.stop() == 0, "clean stop")
print("tcp_failures: all passed")

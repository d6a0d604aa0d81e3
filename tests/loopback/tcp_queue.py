"""A server's maxconn holds through hafrontd: 60 clients at once against a server with
maxconn 2 never put more than 2 connections on it; the others wait in the queue and are all
served in turn; a client that waits longer than timeouts.queue is closed (sQ)."""
import os
import threading
import time

import tcp_tools
from harness import check, wait_for
from tcp_tools import Backend, ProxyDaemon, connect, free_port, recv_all, recv_exact, service_block

tcp_tools.setup()

state = {"now": 0, "max": 0}
lock = threading.Lock()


def slow_echo(conn, backend):
    with lock:
        state["now"] += 1
        state["max"] = max(state["max"], state["now"])
    try:
        data = conn.recv(100)
        time.sleep(0.05)
        conn.sendall(data)
    finally:
        with lock:
            state["now"] -= 1


def hold(conn, backend):
    recv_all(conn, 30)  # keeps the slot until the client goes


slow = Backend(slow_echo)
held = Backend(hold)
port, short_port = free_port(), free_port()
services = (service_block("pool", port, ["name: s, address: 127.0.0.1:%d, maxconn: 2" % slow.port],
                          "timeouts: {queue: 20s}")
            + service_block("short", short_port, ["name: h, address: 127.0.0.1:%d, maxconn: 1" % held.port],
                            "timeouts: {queue: 300ms}"))
# One worker: the whole maxconn is its share (with several, each takes its share of it).
d = ProxyDaemon(services, workers=1)
d.access_log = os.path.join(d.dir, "access.log")
d.set_services(services)
d.start()

results = []


def client(i):
    try:
        c = connect(port, timeout=30)
        c.sendall(b"x%d" % i)
        results.append(recv_exact(c, len(b"x%d" % i), 30) == b"x%d" % i)
        c.close()
    except OSError as e:
        results.append(repr(e))


threads = [threading.Thread(target=client, args=(i,)) for i in range(60)]
for t in threads:
    t.start()
peak_queued = 0
while any(t.is_alive() for t in threads):
    peak_queued = max(peak_queued, d.service("pool")["counters"]["queued"])
    time.sleep(0.02)
for t in threads:
    t.join()
check(results.count(True) == 60, "all 60 clients served: %s" % [r for r in results if r is not True][:3])
check(state["max"] <= 2, "never more than maxconn (2) at the server at once (saw %d)" % state["max"])
check(peak_queued > 0, "status showed connections waiting in the queue (peak %d)" % peak_queued)
pool = wait_for(lambda: (lambda s: s if s["counters"]["active"] == 0 else None)(d.service("pool")), 10, "pool to drain")
check(pool["counters"]["queued"] == 0 and pool["counters"]["connections"] == 60, "queue empty, 60 connections")

# The queue time-out: the only slot is held, the next client waits 300 ms and is closed.
holder = connect(short_port)
holder.sendall(b"hold")
wait_for(lambda: held.accepted == 1, 5, "the slot to be taken")
waiter = connect(short_port)
check(recv_all(waiter, 10) == b"", "the client waiting past timeouts.queue is closed")
short = wait_for(lambda: (lambda s: s if s["counters"]["errors"].get("queue_timeout") == 1 else None)(
    d.service("short")), 5, "the queue time-out to be counted")
check(short["counters"]["queued"] == 0, "no longer queued")
line = tcp_tools.wait_log_line(d.access_log, lambda l: " short short/" in l and " sQ " in l)
check(int(line.split()[4].split("/")[0]) >= 300, "access log: sQ after waiting the queue time-out: " + line.strip())
holder.close()
waiter.close()

check(d.stop() == 0, "clean stop")
print("tcp_queue: all passed")

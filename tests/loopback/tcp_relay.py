"""TCP relay through hafrontd on one I/O back-end (argv[1]: io_uring or epoll): 10 MB each
way at once with checksums, the client's half-close (it shuts down writing and still gets
the server's reply), a small exchange, and what status and the access log say about them.
Exit 77 (skip) only when io_uring is asked for and this kernel refuses it."""
import hashlib
import os
import socket
import sys
import threading
import time

import tcp_tools
from harness import check, fail
from tcp_tools import Backend, ProxyDaemon, connect, recv_all, sink_and_source, echo, free_port

backend_name = sys.argv[1] if len(sys.argv) > 1 else "io_uring"
tcp_tools.setup()

SIZE = 10 * 1024 * 1024
up = os.urandom(SIZE)
down = os.urandom(SIZE)

relay_backend = Backend(sink_and_source(down))
echo_backend = Backend(echo)
relay_port, echo_port = free_port(), free_port()
services = (tcp_tools.service_block("bulk", relay_port, ["name: sink, address: 127.0.0.1:%d" % relay_backend.port])
            + tcp_tools.service_block("echo", echo_port, ["name: e1, address: 127.0.0.1:%d" % echo_backend.port]))
d = ProxyDaemon(services, backend=backend_name)
d.access_log = os.path.join(d.dir, "access.log")
d.set_services(services)
d.start(wait=False)
tcp_tools.wait_for(lambda: d.proc.poll() is not None or d.ping(), 10, "hafrontd to answer")
if d.proc.poll() is not None:
    log = d.read_log()
    if backend_name == "io_uring" and "is io_uring, but" in log:
        print("SKIP: this kernel has no usable io_uring:\n" + log)
        sys.exit(77)
    fail("hafrontd exited with %s:\n%s" % (d.proc.returncode, log))

status = d.status()
check(status["data_plane"]["running"] and status["data_plane"]["backend"] == backend_name,
      "the data plane runs on %s: %s" % (backend_name, status["data_plane"]))
check(backend_name in d.read_log(), "the log says which back-end runs")

# 1. 10 MB each way at the same time; the client then shuts down writing and still
#    receives the server's checksum of what it got.
c = connect(relay_port, timeout=30)
started = time.monotonic()


def send_up():
    c.sendall(up)
    c.shutdown(socket.SHUT_WR)


sender = threading.Thread(target=send_up)
sender.start()
got = recv_all(c, timeout=60)
sender.join()
elapsed = time.monotonic() - started
c.close()
check(len(got) == SIZE + 32, "received 10 MB and a checksum (%d bytes)" % len(got))
check(hashlib.sha256(got[:SIZE]).digest() == hashlib.sha256(down).digest(), "server-to-client bytes intact")
check(got[SIZE:] == hashlib.sha256(up).digest(), "client-to-server bytes intact (the server's checksum matches)")
print("relay: %d MB each way in %.2f s (%.0f MB/s each way) on %s" % (SIZE >> 20, elapsed, (SIZE >> 20) / elapsed,
                                                                        backend_name), flush=True)

# 2. Small exchanges and a half-close on another service.
ends = []
for i in range(20):
    e = connect(echo_port)
    tcp_tools.roundtrip(e, b"ping %d" % i)
    e.shutdown(socket.SHUT_WR)
    ends.append(recv_all(e, 5))  # the echo server closes after our end of stream
    e.close()
check(ends == [b""] * 20, "20 echo exchanges, each ended by a half-close answered with end of stream")

# 3. What status and the access log say.
def settled():
    s = d.service("bulk")
    return s if s["counters"]["active"] == 0 and s["counters"]["bytes_to_clients"] == SIZE + 32 else None


bulk = tcp_tools.wait_for(settled, 10, "the relay to be counted")
check(bulk["state"] == "running", "bulk is running")
check(bulk["counters"]["connections"] == 1 and bulk["counters"]["bytes_from_clients"] == SIZE,
      "service counters: 1 connection, 10 MB from the client: %s" % bulk["counters"])
sink = d.server("bulk", "sink")
check(sink["counters"]["bytes_to_server"] == SIZE and sink["counters"]["bytes_from_server"] == SIZE + 32,
      "server counters: bytes both ways: %s" % sink["counters"])
check(sink["counters"]["connect_time_us"]["p50"] is not None, "connect time histogram filled")
echo_svc = tcp_tools.wait_for(lambda: (lambda s: s if s["counters"]["active"] == 0 else None)(d.service("echo")), 10,
                              "echo connections to end")
check(echo_svc["counters"]["connections"] == 20, "20 echo connections counted")
text = d.ctl("status").stdout
check("bulk (tcp, roundrobin)" in text and "connect p50" in text, "hafrontctl status shows the counters:\n" + text)

line = tcp_tools.wait_log_line(d.access_log, lambda l: " bulk bulk/sink " in l)
fields = line.split()
check(fields[5] == str(SIZE + 32) and fields[6] == str(SIZE) and fields[7] == "--" and fields[8] == "0",
      "access log line: bytes both ways, normal end, no retry: " + line.strip())
check(fields[0].startswith("127.0.0.1:") and fields[1].startswith("["), "access log starts with client and date")

check(d.stop() == 0, "clean stop")
print("tcp_relay (%s): all passed" % backend_name)

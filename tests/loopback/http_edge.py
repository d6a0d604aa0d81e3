"""http mode against small scripted servers, one per edge case: a server too slow to answer
(504), one that resets in the middle of a body (the client sees the connection cut, not a
200), huge response heads (relayed up to proxy.max_header_size, 502 past it), one that
closes before answering (502 for a POST; a GET is retried on the other server), pipelined
requests, an Upgrade echoed like a WebSocket, 100-continue both ways, malformed requests
(400, then the connection closes), half a head (408 after timeouts.http_request while other
clients are served), a 5xx counted as a passive health event, and one server connection
carrying the requests of several client connections."""
import os
import socket
import struct
import threading
import time

import http_tools
import tcp_tools
from harness import check, fail, wait_for
from http_tools import Client, http_service
from tcp_tools import Backend, ProxyDaemon, free_port

tcp_tools.setup()


class Request:
    def __init__(self, line, headers, body):
        self.line = line
        self.headers = headers
        self.body = body

    def header(self, name):
        return self.headers.get(name.lower())


def read_request(conn, buf):
    """(Request, rest) or (None, rest) at end of stream. Content-Length and chunked bodies."""
    while b"\r\n\r\n" not in buf:
        data = conn.recv(65536)
        if not data:
            return None, buf
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for h in lines[1:]:
        k, _, v = h.partition(":")
        headers[k.strip().lower()] = v.strip()
    body = b""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            while b"\r\n" not in rest:
                rest += conn.recv(65536)
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(rest) < size + 2:
                rest += conn.recv(65536)
            body += rest[:size]
            rest = rest[size + 2:]
            if size == 0:
                break
    elif "expect" not in headers:
        n = int(headers.get("content-length", "0"))
        while len(rest) < n:
            data = conn.recv(65536)
            if not data:
                break
            rest += data
        body, rest = rest[:n], rest[n:]
    return Request(lines[0], headers, body), rest


def http_server(respond):
    """A back-end that reads requests one after the other and sends respond(req, conn,
    backend, index)'s bytes for each; None from respond ends the connection. Records
    (connection number, request line) per request."""
    counter = [0]
    lock = threading.Lock()

    def handler(conn, backend):
        with lock:
            counter[0] += 1
            number = counter[0]
        buf = b""
        while True:
            req, buf = read_request(conn, buf)
            if req is None:
                return
            backend.record((number, req.line, req.header("x-forwarded-for")))
            out = respond(req, conn, backend)
            if out is None:
                return
            conn.sendall(out)

    return handler


def ok(body=b"ok", extra=""):
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n" % (len(body), extra.encode()) + body


def answer_ok(req, conn, backend):
    return ok(req.line.encode())


def never_answer(req, conn, backend):
    time.sleep(30)
    return None


def reset_mid_body(req, conn, backend):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
    time.sleep(0.2)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return None  # closed with a reset


def huge_head(size):
    def respond(req, conn, backend):
        fields = b"".join(b"X-Big-%d: %s\r\n" % (i, b"v" * 990) for i in range(size // 1000))
        head = b"HTTP/1.1 200 OK\r\n" + fields + b"Content-Length: 4\r\n\r\n"
        # In several writes, so the head spans several receives.
        for i in range(0, len(head), 3000):
            conn.sendall(head[i:i + 3000])
            time.sleep(0.01)
        conn.sendall(b"body")
        return b""
    return respond


def close_early(req, conn, backend):
    return None


def upgrade_echo(req, conn, backend):
    if req.header("upgrade") != "websocket":
        return ok(b"no upgrade")
    conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
    while True:
        data = conn.recv(65536)
        if not data:
            return None
        conn.sendall(data.upper())


def expect_continue(req, conn, backend):
    if req.header("expect") != "100-continue":
        return ok(b"no expectation")
    if "/refuse" in req.line:
        return b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"
    conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    n = int(req.header("content-length"))
    body = b""
    while len(body) < n:
        body += conn.recv(65536)
    return ok(b"got %d" % len(body))


def close_when_idle(req, conn, backend):
    """Answers keep-alive, then closes the connection 100 ms later (a short keep-alive
    time-out on the server's side)."""
    conn.sendall(ok(req.line.encode()))
    time.sleep(0.1)
    return None


def server_error(req, conn, backend):
    return b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops"


names = ["slow", "reset", "bighead", "early", "earlyget", "pipe", "ws", "cont", "bad", "partial", "err", "reuse",
         "idleclose"]
ports = {n: free_port() for n in names}
servers = {
    "slow": Backend(http_server(never_answer)),
    "reset": Backend(http_server(reset_mid_body)),
    "bighead": Backend(http_server(lambda r, c, b: huge_head(40000 if "/toobig" in r.line else 20000)(r, c, b))),
    "early": Backend(http_server(close_early)),
    "good": Backend(http_server(answer_ok)),
    "ws": Backend(http_server(upgrade_echo)),
    "cont": Backend(http_server(expect_continue)),
    "err": Backend(http_server(server_error)),
    "idleclose": Backend(http_server(close_when_idle)),
}


def one(name):
    return ["name: s, address: 127.0.0.1:%d" % servers[name].port]


services = (
    http_service("slow", ports["slow"], one("slow"), "timeouts: {server: 500ms}")
    + http_service("reset", ports["reset"], one("reset"))
    + http_service("bighead", ports["bighead"], one("bighead"))
    + http_service("early", ports["early"], one("early"))
    + http_service("earlyget", ports["earlyget"], ["name: bad, address: 127.0.0.1:%d, weight: 256" % servers["early"].port,
                                                   "name: good, address: 127.0.0.1:%d" % servers["good"].port])
    + http_service("pipe", ports["pipe"], ["name: s, address: 127.0.0.1:%d" % servers["good"].port])
    + http_service("ws", ports["ws"], one("ws"))
    + http_service("cont", ports["cont"], one("cont"))
    + http_service("bad", ports["bad"], ["name: s, address: 127.0.0.1:%d" % servers["good"].port])
    + http_service("partial", ports["partial"], ["name: s, address: 127.0.0.1:%d" % servers["good"].port],
                   "timeouts: {http_request: 1s}")
    + http_service("err", ports["err"], one("err"))
    + http_service("reuse", ports["reuse"], ["name: s, address: 127.0.0.1:%d" % servers["good"].port])
    + http_service("idleclose", ports["idleclose"], one("idleclose")))
d = ProxyDaemon(services, workers=1)
d.access_log = os.path.join(d.dir, "access.log")
d.set_services(services)
d.start()
for p in ports.values():
    wait_for(lambda: tcp_tools.can_connect(p), 10, "hafrontd to listen on %d" % p)

# 1. A server that never answers: 504 once timeouts.server passed.
start = time.monotonic()
r = http_tools.get(ports["slow"], "/")
took = time.monotonic() - start
check(r.status == 504 and r.header("Connection") == "close" and 0.4 < took < 5,
      "a silent server: 504 after %.2fs, Connection: close" % took)

# 2. A reset in the middle of a body: the client gets what came, then the connection ends.
c = Client(ports["reset"])
c.request("GET", "/")
head = c.read_head()
check(head[0] == 200, "the 200 head came through")
got = b""
try:
    c.sock.settimeout(10)
    while True:
        data = c.file.read1(65536)
        if not data:
            break
        got += data
except (ConnectionResetError, socket.timeout):
    pass
check(len(got) < 100000 and b"HTTP/1.1 502" not in got,
      "then the connection was cut after %d of 100000 bytes, no error answer appended" % len(got))
c.close()

# 3. Response heads of 20 KiB (spanning receives) pass; 40 KiB is past max_header_size: 502.
r = http_tools.get(ports["bighead"], "/big")
check(r.status == 200 and r.body == b"body" and len(r.headers) >= 20, "a 20 KiB response head is relayed whole")
r = http_tools.get(ports["bighead"], "/toobig")
check(r.status == 502, "a 40 KiB one is a 502: %r" % r)

# 4. A server that closes without answering: 502 for a POST (never sent twice) ...
c = Client(ports["early"])
c.request("POST", "/p", body=b"data")
r = c.read_response()
check(r.status == 502 and c.closed(), "POST to a server that hangs up: 502, then close")
c.close()
# ... and a GET is retried on the other server.
for i in range(3):
    r = http_tools.get(ports["earlyget"], "/g%d" % i)
    if r.status != 200 or r.body != ("GET /g%d HTTP/1.1" % i).encode():
        fail("GET through a pool whose favourite server hangs up: %r" % r)
check(True, "3 GETs retried from the hanging-up server to the good one")
bad = wait_for(lambda: (lambda s: s if s["passive"].get("reset", 0) >= 3 else None)(d.server("earlyget", "bad")), 5,
               "the hang-ups to show as passive events")
check(True, "the hang-ups are passive health events: %s" % bad["passive"])

# 5. Pipelined requests on one connection, answered in order.
c = Client(ports["pipe"])
c.send(b"".join(b"GET /p%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(5)))
bodies = [c.read_response().body for _ in range(5)]
check(bodies == [("GET /p%d HTTP/1.1" % i).encode() for i in range(5)], "5 pipelined requests answered in order")
c.close()

# 6. Upgrade: a WebSocket-like echo through the tunnel.
c = Client(ports["ws"])
c.request("GET", "/chat", headers={"Connection": "Upgrade", "Upgrade": "websocket"})
r = c.read_response()
check(r.status == 101 and r.header("Upgrade") == "websocket", "101 Switching Protocols: %r" % r.headers)
for msg in (b"hello", b"x" * 70000):
    c.send(msg)
    back = b""
    c.sock.settimeout(10)
    while len(back) < len(msg):
        data = c.file.read1(65536)
        if not data:
            break
        back += data
    if back != msg.upper():
        fail("tunnel echo of %d bytes came back as %d bytes" % (len(msg), len(back)))
check(True, "bytes both ways through the tunnel (5 B and 70000 B)")
c.sock.shutdown(socket.SHUT_WR)
check(c.closed(), "the tunnel closes when the client is done and the server follows")
c.close()

# 7. 100-continue: the server's 100 is relayed, then the body goes; or a final answer
# comes at once and the body is not waited for.
c = Client(ports["cont"])
c.request("PUT", "/upload", headers={"Expect": "100-continue", "Content-Length": "5000"})
head = c.read_head()
check(head[0] == 100, "the server's 100 Continue reaches the client")
c.send(b"b" * 5000)
r = c.read_response()
check(r.status == 200 and r.body == b"got 5000", "then the body went through: %r" % r.body)
c.request("PUT", "/refuse", headers={"Expect": "100-continue", "Content-Length": "5000"})
r = c.read_response()
check(r.status == 401 and r.header("Connection") == "close", "a refusal without 100 comes at once, closing")
check(c.closed(), "and the connection closes instead of waiting for the body")
c.close()

# 8. Malformed requests: 400 and the connection closes; nothing reaches the server.
before = len(servers["good"].records)
for raw in (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", b"GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"):
    c = Client(ports["bad"])
    c.send(raw)
    r = c.read_response()
    if r is None or r.status != 400 or r.header("Connection") != "close" or not c.closed():
        fail("malformed request %r: %r" % (raw, r))
    c.close()
check(len(servers["good"].records) == before, "5 malformed requests: 400 and close each, none forwarded")

# 9. Half a head: 408 after 1 s while other clients are served meanwhile.
slow = Client(ports["partial"])
slow.send(b"GET / HTTP/1.1\r\nHo")
start = time.monotonic()
served = 0
while time.monotonic() - start < 0.8:
    r = http_tools.get(ports["partial"], "/other")
    served += r.status == 200
r = slow.read_response()
took = time.monotonic() - start
check(r is not None and r.status == 408 and 0.9 < took < 5 and slow.closed(),
      "half a head: 408 after %.2fs, then close; %d other requests served meanwhile" % (took, served))
check(served >= 5, "other clients kept being served")
slow.close()

# 10. A 5xx answer is relayed and counted as a passive health event.
r = http_tools.get(ports["err"], "/")
check(r.status == 500 and r.body == b"oops", "the server's 500 is relayed as it is")
srv = wait_for(lambda: (lambda s: s if s["passive"].get("http_5xx", 0) >= 1 else None)(d.server("err", "s")), 5,
               "the 5xx passive event")
check(srv["counters"]["responses"]["5xx"] == 1, "counted as a 5xx response: %s" % srv["counters"]["responses"])

# 11. Reuse seen from the server: requests of several client connections on one connection.
servers["good"].records.clear()
conns_before = servers["good"].accepted
for i in range(6):
    r = http_tools.get(ports["reuse"], "/r%d" % i, headers={"Connection": "close"})
    if r.status != 200:
        fail("reuse GET %d: %r" % (i, r))
recs = [rec for rec in servers["good"].records if rec[1].startswith("GET /r")]
check(len(recs) == 6 and len({rec[0] for rec in recs}) == 1 and servers["good"].accepted - conns_before <= 1,
      "6 client connections, one server connection: %s" % sorted({rec[0] for rec in recs}))
check(all(rec[2] == "127.0.0.1" for rec in recs), "each with X-Forwarded-For")

# 12. A pooled connection the server closes is dropped from the pool: the next request gets
# a new connection at once, no failure and no retry.
for i in range(3):
    r = http_tools.get(ports["idleclose"], "/i%d" % i)
    if r.status != 200 or r.body != ("GET /i%d HTTP/1.1" % i).encode():
        fail("request %d to a server that closes idle connections: %r" % (i, r))
    time.sleep(0.4)
check(servers["idleclose"].accepted == 3, "each request on a new server connection: %d" % servers["idleclose"].accepted)
lines = [tcp_tools.wait_log_line(d.access_log, lambda l, i=i: '"GET /i%d HTTP/1.1"' % i in l) for i in range(3)]
check(all(l.split()[-4] == "0" and " ---- " in l for l in lines),
      "none of them needed a retry: %s" % [l.split()[-4] for l in lines])

# The access log names the cases.
line = tcp_tools.wait_log_line(d.access_log, lambda l: " slow slow/s " in l)
check(" 504 " in line and " sH-- " in line, "access log: " + line.strip())
line = tcp_tools.wait_log_line(d.access_log, lambda l: " bad bad/<NOSRV> " in l)
check(" 400 " in line and " PR-- " in line and '"<BADREQ>"' in line, "access log: " + line.strip())
check(d.alive(), "hafrontd is still up")
d.stop()
print("PASS")

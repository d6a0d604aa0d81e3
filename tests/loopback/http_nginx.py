"""http mode against a real nginx origin, once per I/O back-end (argument: io_uring or
epoll): keep-alive GETs that reuse one server connection, 64 KiB bodies, chunked responses
(gzip on the fly), POST and PUT bodies with Content-Length and chunked, HEAD, X-Forwarded-For,
status counters and the access log."""
import gzip
import os
import sys

import http_tools
import tcp_tools
from harness import check, fail, wait_for
from http_tools import Client, Nginx, http_service
from tcp_tools import ProxyDaemon

backend = sys.argv[1] if len(sys.argv) > 1 else "io_uring"
tcp_tools.setup()
if backend == "io_uring":
    import ctypes
    # Skip (77) only when this kernel refuses io_uring altogether.
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(425, 1, ctypes.c_void_p(0)) == -1 and ctypes.get_errno() in (38, 1):  # ENOSYS, EPERM
        print("SKIP: io_uring unavailable")
        sys.exit(77)

origin = Nginx()
port = tcp_tools.free_port()
d = ProxyDaemon(http_service("web", port, ["name: nginx, address: 127.0.0.1:%d" % origin.port]), workers=1,
                backend=backend)
d.access_log = os.path.join(d.dir, "access.log")
d.set_services(http_service("web", port, ["name: nginx, address: 127.0.0.1:%d" % origin.port]))
d.start()
wait_for(lambda: tcp_tools.can_connect(port), 10, "hafrontd to listen on %d" % port)
check(d.service("web")["state"] == "running", "the http service runs: %s" % d.service("web").get("note"))

# 1. Keep-alive: many GETs on one client connection, over one server connection.
c = Client(port)
for i in range(20):
    c.request("GET", "/ok")
    r = c.read_response()
    if r is None or r.status != 200 or r.body != b"ok":
        fail("GET /ok #%d: %r" % (i, r))
    if r.header("Connection") is not None:
        fail("no Connection field on a keep-alive HTTP/1.1 answer: %r" % r.headers)
check(True, "20 GETs on one keep-alive client connection")
lines = wait_for(lambda: (lambda l: l if len(l) >= 20 else None)(origin.access_lines()), 5, "nginx to log 20 requests")
conns = {l[0] for l in lines}
check(len(conns) == 1 and max(l[1] for l in lines) == 20,
      "nginx saw them on one connection, requests 1..20 on it: %s" % sorted(conns))
check(all(l[5] == "127.0.0.1" for l in lines), "X-Forwarded-For names the client: %s" % lines[0][5])

# 2. Reuse across clients: new client connections take the pooled server connection.
before = len(origin.access_lines())
for i in range(5):
    r = http_tools.get(port, "/ok", headers={"Connection": "close"})
    if r.status != 200 or r.header("Connection") != "close":
        fail("GET with Connection: close: %r" % r)
lines = wait_for(lambda: (lambda l: l if len(l) >= before + 5 else None)(origin.access_lines()), 5, "5 more lines")
check({l[0] for l in lines[before:]} == conns, "five client connections, still the same server connection")

# 3. 64 KiB and 1 KiB static files, several times on one connection.
for path in ("/64k", "/1k", "/64k"):
    c.request("GET", path)
    r = c.read_response()
    if r.status != 200 or r.body != origin.files[path]:
        fail("GET %s: %r" % (path, r))
check(True, "64 KiB and 1 KiB bodies arrive intact on the same connection")

# 4. Chunked responses (gzip on the fly), passed through chunk by chunk.
chunks = []
c.request("GET", "/gz/text.txt", headers={"Accept-Encoding": "gzip"})
r = c.read_response(chunks=chunks)
check(r.status == 200 and r.header("Transfer-Encoding") == "chunked" and r.header("Content-Encoding") == "gzip",
      "a chunked gzip response: %r" % r.headers)
check(gzip.decompress(r.body) == origin.text, "its %d chunks decode to the file" % len(chunks))

# 5. HEAD: the headers, a Content-Length, no body; the connection goes on.
c.request("HEAD", "/64k")
r = c.read_response(method="HEAD")
check(r.status == 200 and r.header("Content-Length") == str(64 * 1024), "HEAD keeps Content-Length: %r" % r.headers)
c.request("GET", "/ok")
check(c.read_response().body == b"ok", "and no body followed it")

# 6. Request bodies: POST with Content-Length; PUT with Content-Length and chunked (stored
# by nginx's dav module, so what arrived can be compared).
body = os.urandom(200 * 1024)
c.request("POST", "/post", body=body)
r = c.read_response()
# nginx answers `return 200` before it reads the body, then reads and discards it: the body
# still goes up, and the connection carries the next request.
check(r.status == 200 and r.body == b"posted", "POST of 200 KiB answered")
c.request("PUT", "/dav/a.bin", body=body)
r = c.read_response()
check(r.status in (201, 204), "PUT stored: %d" % r.status)
check(origin.stored("a.bin") == body, "the stored body is what the client sent")
chunked = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:1000], body[1000:70000], body[70000:])) + b"0\r\n\r\n"
c.request("PUT", "/dav/b.bin", headers={"Transfer-Encoding": "chunked"}, body=chunked)
r = c.read_response()
check(r.status in (201, 204), "chunked PUT stored: %d" % r.status)
check(origin.stored("b.bin") == body, "the chunked body arrived whole")
c.request("GET", "/dav/b.bin")
check(c.read_response().body == body, "and reads back through the proxy on the same connection")
c.close()

# 7. HTTP/1.0 with and without keep-alive.
c = Client(port)
c.request("GET", "/ok", version="HTTP/1.0", headers={"Connection": "keep-alive"})
r = c.read_response()
check(r.status == 200 and r.header("Connection") == "keep-alive", "HTTP/1.0 keep-alive: %r" % r.headers)
c.request("GET", "/ok", version="HTTP/1.0", host=None)
r = c.read_response()
check(r.status == 200 and r.header("Connection") == "close" and c.closed(), "HTTP/1.0 without it closes")
c.close()

# 8. Counters and the access log.
SENT = 37  # the requests above
svc = wait_for(lambda: (lambda s: s if s["counters"].get("requests", 0) >= SENT else None)(d.service("web")), 5,
               "the request counters")
check(svc["counters"]["requests"] == SENT, "status counts %d requests" % SENT)
check(svc["counters"]["responses"]["2xx"] == svc["counters"]["requests"], "every request a 2xx: %s" % svc["counters"])
srv = d.server("web", "nginx")["counters"]
check(srv["requests"] == svc["counters"]["requests"] and srv["connections"] <= 3,
      "the server got them over %d connection(s): %s" % (srv["connections"], {k: srv[k] for k in ("requests", "connections")}))
check(srv["response_time_us"]["p50"] is not None and srv["connect_time_us"]["p50"] is not None,
      "response and connect time percentiles: p50 %s us, p99 %s us" % (srv["response_time_us"]["p50"],
                                                                    srv["response_time_us"]["p99"]))
line = tcp_tools.wait_log_line(d.access_log, lambda l: '"GET /64k HTTP/1.1"' in l)
f = line.split()
check(f[2] == "web" and f[3] == "web/nginx" and f[5] == "200" and int(f[6]) > 64 * 1024 and f[9] == "----",
      "access log line: " + line.strip())
text = d.ctl("status").stdout
check("requests (2xx" in text, "hafrontctl status shows requests by class:\n" + text)
d.stop()
origin.stop()
print("PASS")

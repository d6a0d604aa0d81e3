"""http mode routing by Host and path prefix (`routes:`): the first matching route wins, the
host is compared ignoring case and port, unmatched requests go to the listening service's
own servers, a service reached only through routes needs no listen: and shows its traffic
in status, a listening service without servers answers 503 to what matches no route; a
reload keeps established keep-alive connections (a request under way finishes where it
started, the next one follows the new routes)."""
import signal
import threading
import time

import http_tools
import tcp_tools
from harness import check, fail, wait_for
from http_tools import Client, http_service
from tcp_tools import Backend, ProxyDaemon, free_port


def named_server(name, delay=0.0):
    """A back-end that answers every request with its name and the request line."""

    def handler(conn, backend):
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
            head, _, buf = buf.partition(b"\r\n\r\n")
            line = head.split(b"\r\n")[0]
            if b"/slow" in line:
                time.sleep(delay)
            body = name.encode() + b" " + line
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

    return Backend(handler)


tcp_tools.setup()
default = named_server("default")
glance = named_server("glance", delay=1.0)
nova = named_server("nova")
port = free_port()
api_port = free_port()


def config(compute_to):
    return (http_service("web", port, ["name: d, address: 127.0.0.1:%d" % default.port],
                         "routes:\n"
                         "  - {host: glance.example.com, path_prefix: /image, service: glance}\n"
                         "  - {path_prefix: /compute, service: %s}\n"
                         "  - {host: GLANCE.example.com, service: nova}" % compute_to)
            + http_service("api", api_port, [], "routes:\n  - {path_prefix: /compute, service: nova}")
            + http_service("glance", 0, ["name: g, address: 127.0.0.1:%d" % glance.port], listen=False)
            + http_service("nova", 0, ["name: n, address: 127.0.0.1:%d" % nova.port], listen=False))


d = ProxyDaemon(config("nova"), workers=1)
d.start()
wait_for(lambda: tcp_tools.can_connect(port), 10, "hafrontd to listen")


def who(c, path, host="www.example.com"):
    c.request("GET", path, host=host)
    r = c.read_response()
    if r is None or r.status != 200:
        fail("GET %s (Host %s): %r" % (path, host, r))
    return r.body.split(b" ")[0].decode()


c = Client(port)
cases = [("/image/42", "glance.example.com", "glance"), ("/images", "Glance.Example.COM:%d" % port, "glance"),
         ("/image", "other.example.com", "default"), ("/compute/servers", "other.example.com", "nova"),
         ("/compute", "glance.example.com", "nova"), ("/v2/other", "glance.example.com", "nova"),
         ("/", "www.example.com", "default")]
for path, host, expected in cases:
    got = who(c, path, host)
    if got != expected:
        fail("GET %s Host %s went to %s, not %s" % (path, host, got, expected))
check(True, "%d requests on one connection, each routed by host and path prefix, first match winning" % len(cases))

# A listening service without servers: routes, or 503.
r = http_tools.get(api_port, "/compute/x")
check(r.status == 200 and r.body.startswith(b"nova"), "api routes /compute to nova")
r = http_tools.get(api_port, "/other")
check(r.status == 503 and r.header("Connection") == "close", "api has nothing for /other: 503")

# Status: a service reached only through routes shows its traffic.
st = wait_for(lambda: (lambda s: s if s["counters"].get("requests", 0) >= 4 else None)(d.service("nova")), 5,
              "nova's counters")
check(st["state"] == "running" and st["listen"] == [], "nova runs without a listener: %s" % st["listen"])
check(d.server("nova", "n")["counters"]["requests"] >= 4, "and its server counts the requests")
web = d.service("web")["counters"]
check(web["requests"] == len(cases), "web counts every request it received: %d" % web["requests"])

# Reload: /compute now leads to glance. A slow request under way finishes where it started;
# the established connection's next request follows the new routes.
slow = Client(port)
slow.request("GET", "/image/slow", host="glance.example.com")
time.sleep(0.2)  # the request is at glance, which takes a second
before = d.status()["config"]["last_reload"]["at"]
d.set_services(config("glance"))
d.signal(signal.SIGHUP)
s = wait_for(lambda: (lambda s: s if s["config"]["last_reload"]["at"] != before else None)(d.status()), 10,
             "the reload")
check(s["config"]["last_reload"]["ok"], "the reload is applied")
r = slow.read_response()
check(r is not None and r.status == 200 and r.body.startswith(b"glance"), "the request under way finished: %r" % r)
check(who(c, "/compute/servers", "other.example.com") == "glance", "the kept connection follows the new routes")
check(who(slow, "/", "x") == "default", "and so does the slow one's next request")
c2 = Client(port)
check(who(c2, "/compute", "x") == "glance", "as does a new connection")
for x in (c, c2, slow):
    x.close()
check(d.alive(), "hafrontd is still up")
d.stop()
print("PASS")

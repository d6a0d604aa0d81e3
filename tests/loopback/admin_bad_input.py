"""The admin socket under bad input: not JSON, binary, huge, deep, unknown commands, many
connections at once, idle connections. Each gets a clear error or is closed; the daemon
keeps answering and its memory stays bounded."""
import json
import socket
import time

from harness import Daemon, check, wait_for

d = Daemon().start()

def reply_of(raw):
    lines = [l for l in raw.splitlines() if l.strip()]
    return json.loads(lines[0]) if lines else {}

r = reply_of(d.raw("this is not json\n"))
check(r.get("ok") is False and "not valid JSON" in r.get("error", ""), "not JSON: %s" % r)

r = reply_of(d.raw(bytes(range(256)) + b"\n"))
check(r.get("ok") is False, "binary garbage: %s" % r)

r = reply_of(d.raw('{"command": "launch-missiles"}\n'))
check(r.get("ok") is False and "unknown command" in r["error"] and "status" in r["error"], "unknown command: %s" % r)

r = reply_of(d.raw('{"command": "status", "args": ' + "[" * 1000 + "]" * 1000 + "}\n"))
check(r.get("ok") is False, "deeply nested JSON refused: %s" % r.get("error"))

r = reply_of(d.raw('{"command": "status", "args": 5}\n'))
check(r.get("ok") is False and "args" in r["error"], "args not an object refused")

rss_before = d.rss_kib()
for i in range(50):
    r = reply_of(d.raw(b"x" * (2 * 1024 * 1024), shutdown=False))
    if i == 0:
        check(r.get("ok") is False and "larger than 65536 bytes" in r.get("error", ""), "2 MiB request refused: %s" % r)
rss_after = d.rss_kib()
check(rss_after - rss_before < 20 * 1024, "memory bounded after 50 huge requests (%d KiB -> %d KiB)" % (rss_before, rss_after))

# Many connections at once: up to the limit are served, the rest told to retry.
socks = []
for i in range(40):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(d.socket)
    socks.append(s)
time.sleep(0.3)
refused = 0
for s in socks:
    s.setblocking(False)
    try:
        data = s.recv(4096)
        if b"too many admin connections" in data:
            refused += 1
    except BlockingIOError:
        pass
check(refused == 40 - 32, "connections past 32 are told to retry (%d refused)" % refused)
for s in socks:
    s.close()
wait_for(d.ping, 5, "the daemon to answer again")
check(True, "daemon answers after the connection flood")

# An idle connection is closed by the daemon after its idle time-out (10 s).
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(15)
s.connect(d.socket)
t0 = time.monotonic()
data = s.recv(10)
elapsed = time.monotonic() - t0
check(data == b"" and 9 <= elapsed <= 13, "idle connection closed after ~10 s (%.1f s)" % elapsed)
s.close()

# A slow, partial request is cut by the same time-out and does not block others.
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(d.socket)
s.sendall(b'{"command": "sta')
check(d.ping(), "others are served while a partial request hangs")
s.close()

check(d.alive() and d.status()["node"] == "solo", "daemon alive and answering at the end")
check(d.stop() == 0, "clean stop")
print("admin_bad_input: all passed")

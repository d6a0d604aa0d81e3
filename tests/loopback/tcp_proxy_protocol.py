"""PROXY protocol towards servers: what a server marked proxy_protocol v1 or v2 receives
before the client's bytes is byte-exact (source: the client, destination: the address it
connected to), and the client's bytes follow untouched."""
import socket
import struct

import tcp_tools
from harness import check, wait_for
from tcp_tools import Backend, ProxyDaemon, first_bytes, free_port, recv_exact, service_block

tcp_tools.setup()

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
LISTEN_ADDRESS = "127.0.0.2"  # not the client's address, so source and destination differ
CLIENT_ADDRESS = "127.0.0.3"


def expected(version, client, listener):
    (ca, cp), (la, lp) = client, listener
    if version == "v1":
        return ("PROXY TCP4 %s %s %d %d\r\n" % (ca, la, cp, lp)).encode()
    return (V2_SIGNATURE + bytes([0x21, 0x11]) + struct.pack("!H", 12) + socket.inet_aton(ca) +
            socket.inet_aton(la) + struct.pack("!HH", cp, lp))


ports = {"v1": free_port(), "v2": free_port()}
backends = {}
services = ""
for version in ("v1", "v2"):
    # The client's port is known only once it connects: the back-end records the longest
    # header of its version, which a TCP4 header of that version never exceeds.
    length = 28 if version == "v2" else len(expected("v1", (CLIENT_ADDRESS, 65535), (LISTEN_ADDRESS, 65535)))
    backends[version] = Backend(first_bytes(length))
    services += service_block(version, ports[version], [
        "name: s, address: 127.0.0.1:%d, proxy_protocol: %s" % (backends[version].port, version)]).replace(
            "127.0.0.1:%d]" % ports[version], "%s:%d]" % (LISTEN_ADDRESS, ports[version]))
d = ProxyDaemon(services).start()

for version in ("v1", "v2"):
    c = socket.socket()
    c.bind((CLIENT_ADDRESS, 0))
    c.settimeout(5)
    c.connect((LISTEN_ADDRESS, ports[version]))
    want = expected(version, c.getsockname(), (LISTEN_ADDRESS, ports[version]))
    body = b"client bytes after the header"
    if version == "v1":
        # A shorter port makes a shorter v1 line: pad with client bytes up to what the
        # back-end records, and expect them right behind the header.
        recorded_len = len(expected("v1", (CLIENT_ADDRESS, 65535), (LISTEN_ADDRESS, 65535)))
        pad = b"x" * (recorded_len - len(want))
    else:
        pad = b""
    c.sendall(pad + body)  # sent at once: it waits for the connect and the header
    got = wait_for(lambda: backends[version].records[0] if backends[version].records else None, 5,
                   "the %s back-end to receive the header" % version)
    check(got == want + pad, "%s header is byte-exact: %r" % (version, got))
    check(recv_exact(c, len(body)) == body, "%s: the client's bytes follow the header untouched" % version)
    c.close()

check(d.stop() == 0, "clean stop")
print("tcp_proxy_protocol: all passed")

#!/usr/bin/env python3
"""Raw-socket ARP / IPv6 neighbour discovery tool for the hafront netns test bed.

Runs INSIDE a network namespace (``ip netns exec NS python3 wire.py ...``): Python 3.11
has no os.setns, so whatever must happen "from a node's point of view" happens in a
process started there. Standard library only; needs CAP_NET_RAW (root).

Modes (all print JSON):

  who-has IP [-i eth0] [-t 0.2]      send one ARP request (IPv4) or neighbour
                                     solicitation (IPv6); print the MACs that answered
  garp IP [-i eth0] [--mac M] [--count N] [--interval-ms MS] [--reply]
                                     gratuitous ARP (request form unless --reply)
  una IP6 [-i eth0] [--mac M] [--count N] [--interval-ms MS]
                                     unsolicited neighbour advertisement to ff02::1
  connect IP PORT [-t 1.0]           TCP connect: ok|refused|timeout|reset|unreachable
  watch [-i eth0] [--probe IP ...] [--interval-ms 5] [--duration S] [--include-ns]
        [--include-outgoing]         sniffer + prober: one JSON line per ARP / NA frame
                                     seen on the interface and per probe round
  agent                              JSON request/response loop on stdin/stdout (used by
                                     netns.py so one long-lived process per namespace
                                     serves many requests quickly)

Every timestamp ("t") is CLOCK_MONOTONIC seconds, the clock of Python's
time.monotonic(), which is the same in every network namespace, so a test can
correlate frames with its own actions. Received frames carry the kernel's receive
time (SO_TIMESTAMPNS), converted to CLOCK_MONOTONIC.

watch output lines (keys always present unless noted):
  {"t", "kind": "arp"|"na"|"ns", "op": "request"|"reply"|"advert"|"solicit",
   "sender_mac", "sender_ip", "target_ip", "is_reply", "is_gratuitous",
   "eth_src", "eth_dst", "outgoing", "flags" (NA only: e.g. "SO")}
  {"t", "kind": "probe", "round": N, "ips": [...]}      one per probe round
  {"t", "kind": "ready", "iface", "mac", "ip4", "ip6"}   once, when listening
"""
import argparse
import errno
import fcntl
import ipaddress
import json
import os
import select
import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
SOL_PACKET = 263
SO_ATTACH_FILTER = 26
SO_TIMESTAMPNS = 35
SIOCGIFADDR = 0x8915
PACKET_OUTGOING = 4
BROADCAST = b"\xff" * 6
ZERO_MAC = b"\x00" * 6
ND_NS, ND_NA = 135, 136


# ----------------------------------------------------------------------------- helpers
def mac_str(b):
    return ":".join("%02x" % x for x in b)


def mac_bytes(s):
    b = bytes(int(x, 16) for x in s.split(":"))
    if len(b) != 6:
        raise ValueError("bad MAC %r" % s)
    return b


def now():
    return time.monotonic()


def iface_mac(iface):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        s.bind((iface, 0))
        return s.getsockname()[4][:6]
    finally:
        s.close()


def iface_ip4(iface):
    """The interface's primary IPv4 address, or None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        req = struct.pack("256s", iface.encode()[:15])
        res = fcntl.ioctl(s.fileno(), SIOCGIFADDR, req)
        return socket.inet_ntoa(res[20:24])
    except OSError:
        return None
    finally:
        s.close()


def iface_ip6(iface, want_global=True):
    """A usable (not tentative) IPv6 address of the interface: global first."""
    best = None
    try:
        with open("/proc/net/if_inet6") as f:
            lines = f.read().split("\n")
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        if len(parts) != 6 or parts[5] != iface:
            continue
        addr = str(ipaddress.IPv6Address(bytes.fromhex(parts[0])))
        scope, flags = int(parts[3], 16), int(parts[4], 16)
        if flags & 0x40:  # IFA_F_TENTATIVE
            continue
        if scope == 0 and want_global:
            return addr
        if scope == 0x20 and best is None:
            best = addr
    return best


def checksum(data):
    if len(data) % 2:
        data += b"\x00"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def solicited_node(ip6):
    b = ipaddress.IPv6Address(ip6).packed
    return ipaddress.IPv6Address(b"\xff\x02" + b"\x00" * 9 + b"\x01\xff" + b[13:16])


def mcast_mac(ip6):
    return b"\x33\x33" + ipaddress.IPv6Address(ip6).packed[12:16]


# ----------------------------------------------------------------------------- frames
def arp_frame(op, src_mac, sender_ip, target_ip, target_mac=ZERO_MAC, dst=BROADCAST):
    arp = struct.pack("!HHBBH6s4s6s4s", 1, ETH_P_IP, 6, 4, op, src_mac,
                      socket.inet_aton(sender_ip), target_mac, socket.inet_aton(target_ip))
    frame = dst + src_mac + struct.pack("!H", ETH_P_ARP) + arp
    return frame.ljust(60, b"\x00")


def icmp6_frame(src_mac, dst_mac, src_ip, dst_ip, icmp_wo_csum):
    src = ipaddress.IPv6Address(src_ip).packed
    dst = ipaddress.IPv6Address(dst_ip).packed
    pseudo = src + dst + struct.pack("!I3xB", len(icmp_wo_csum), 58)
    csum = checksum(pseudo + icmp_wo_csum)
    icmp = icmp_wo_csum[:2] + struct.pack("!H", csum) + icmp_wo_csum[4:]
    ip6 = struct.pack("!IHBB16s16s", 0x60000000, len(icmp), 58, 255, src, dst)
    return dst_mac + src_mac + struct.pack("!H", ETH_P_IPV6) + ip6 + icmp


def ns_frame(src_mac, src_ip, target):
    dst = solicited_node(target)
    body = struct.pack("!BBHI16s", ND_NS, 0, 0, 0, ipaddress.IPv6Address(target).packed)
    body += struct.pack("!BB6s", 1, 1, src_mac)  # source link-layer address option
    return icmp6_frame(src_mac, mcast_mac(dst), src_ip, dst, body)


def na_frame(src_mac, target, solicited=False, override=True, dst_ip="ff02::1",
             dst_mac=None):
    flags = (0x40 if solicited else 0) | (0x20 if override else 0)
    body = struct.pack("!BBHB3x16s", ND_NA, 0, 0, flags,
                       ipaddress.IPv6Address(target).packed)
    body += struct.pack("!BB6s", 2, 1, src_mac)  # target link-layer address option
    return icmp6_frame(src_mac, dst_mac or mcast_mac(dst_ip), target, dst_ip, body)


def parse(frame):
    """ARP / NS / NA frame -> event dict (without "t"), or None."""
    if len(frame) < 14:
        return None
    dst, src, etype = frame[0:6], frame[6:12], struct.unpack("!H", frame[12:14])[0]
    p = frame[14:]
    if etype == ETH_P_ARP and len(p) >= 28:
        htype, ptype, hlen, plen, op = struct.unpack("!HHBBH", p[:8])
        if htype != 1 or ptype != ETH_P_IP or hlen != 6 or plen != 4:
            return None
        sha, spa, tha, tpa = p[8:14], p[14:18], p[18:24], p[24:28]
        sip, tip = socket.inet_ntoa(spa), socket.inet_ntoa(tpa)
        grat = (spa == tpa and sip != "0.0.0.0") or (op == 2 and dst == BROADCAST)
        return {"kind": "arp", "op": "reply" if op == 2 else "request",
                "sender_mac": mac_str(sha), "sender_ip": sip, "target_ip": tip,
                "is_reply": op == 2, "is_gratuitous": grat,
                "eth_src": mac_str(src), "eth_dst": mac_str(dst)}
    if etype == ETH_P_IPV6 and len(p) >= 40 + 24 and p[6] == 58:
        sip = str(ipaddress.IPv6Address(p[8:24]))
        icmp = p[40:]
        typ = icmp[0]
        if typ not in (ND_NS, ND_NA):
            return None
        target = str(ipaddress.IPv6Address(icmp[8:24]))
        lladdr = None
        opts = icmp[24:]
        while len(opts) >= 8 and opts[1] > 0:
            if opts[0] in (1, 2) and len(opts) >= 8:
                lladdr = opts[2:8]
            opts = opts[opts[1] * 8:]
        if typ == ND_NA:
            fl = icmp[4]
            solicited = bool(fl & 0x40)
            return {"kind": "na", "op": "advert",
                    "sender_mac": mac_str(lladdr or src), "sender_ip": sip,
                    "target_ip": target, "is_reply": solicited,
                    "is_gratuitous": not solicited,
                    "flags": ("R" if fl & 0x80 else "") + ("S" if fl & 0x40 else "")
                             + ("O" if fl & 0x20 else ""),
                    "eth_src": mac_str(src), "eth_dst": mac_str(dst)}
        return {"kind": "ns", "op": "solicit", "sender_mac": mac_str(lladdr or src),
                "sender_ip": sip, "target_ip": target, "is_reply": False,
                "is_gratuitous": False, "dad": sip == "::",
                "eth_src": mac_str(src), "eth_dst": mac_str(dst)}
    return None


# Classic BPF: accept ARP, and IPv6 ICMPv6 (no extension headers) of type 133..137.
_FILTER = [
    (0x28, 0, 0, 12),          # ldh [12]
    (0x15, 5, 0, ETH_P_ARP),   # jeq ARP -> accept
    (0x15, 0, 5, ETH_P_IPV6),  # jeq IPv6 else drop
    (0x30, 0, 0, 20),          # ldb [20]  next header
    (0x15, 0, 3, 58),          # jeq ICMPv6 else drop
    (0x30, 0, 0, 54),          # ldb [54]  ICMPv6 type
    (0x35, 0, 1, 133),         # jge 133 else drop
    (0x06, 0, 0, 0x40000),     # accept
    (0x06, 0, 0, 0),           # drop
]


class Wire:
    """One AF_PACKET socket bound to an interface; sends and receives ND frames."""

    def __init__(self, iface="eth0"):
        self.iface = iface
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        prog = b"".join(struct.pack("HBBI", *ins) for ins in _FILTER)
        self._prog = prog  # keep the buffer alive while attaching
        import ctypes
        buf = ctypes.create_string_buffer(prog)
        fprog = struct.pack("HL", len(_FILTER), ctypes.addressof(buf))
        self.sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.bind((iface, 0))
        self.sock.setblocking(False)
        self.mac = self.sock.getsockname()[4][:6]
        self.drain()  # frames queued before the filter was attached

    def close(self):
        self.sock.close()

    def send(self, frame):
        self.sock.send(frame)

    def drain(self):
        while True:
            try:
                self.sock.recv(65536)
            except BlockingIOError:
                return

    def recv_events(self, include_outgoing=False):
        """All queued frames as parsed events (non-blocking)."""
        out = []
        while True:
            try:
                data, anc, _flags, addr = self.sock.recvmsg(65536, 64)
            except BlockingIOError:
                return out
            outgoing = addr[2] == PACKET_OUTGOING
            if outgoing and not include_outgoing:
                continue
            ev = parse(data)
            if ev is None:
                continue
            t = now()
            for level, typ, payload in anc:
                if level == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS and len(payload) >= 16:
                    sec, nsec = struct.unpack("qq", payload[:16])
                    age = time.clock_gettime(time.CLOCK_REALTIME) - (sec + nsec * 1e-9)
                    if 0 <= age < 5:
                        t -= age
            ev = dict({"t": round(t, 6)}, **ev)
            ev["outgoing"] = outgoing
            out.append(ev)

    def wait(self, timeout):
        if timeout > 0:
            select.select([self.sock], [], [], timeout)


def _answer_matches(ev, ip):
    if ev["outgoing"]:
        return False
    if ev["kind"] == "arp":
        return ev["is_reply"] and ev["sender_ip"] == ip
    if ev["kind"] == "na":
        return ev["target_ip"] == ip
    return False


def who_has(ip, iface="eth0", timeout=0.2, src_ip=None):
    """Send one ARP request / NS for ip; return sorted list of MACs that answered."""
    ipobj = ipaddress.ip_address(ip)
    ip = str(ipobj)
    w = Wire(iface)
    try:
        if ipobj.version == 4:
            src = src_ip if src_ip is not None else (iface_ip4(iface) or "0.0.0.0")
            w.send(arp_frame(1, w.mac, src, ip))
        else:
            src = src_ip or iface_ip6(iface)
            if src is None:
                raise RuntimeError("no usable IPv6 source address on %s" % iface)
            w.send(ns_frame(w.mac, src, ip))
        macs = set()
        deadline = now() + timeout
        while True:
            for ev in w.recv_events():
                if _answer_matches(ev, ip):
                    macs.add(ev["sender_mac"])
            left = deadline - now()
            if left <= 0:
                break
            w.wait(left)
        return sorted(macs)
    finally:
        w.close()


def _send_repeated(iface, mac, build, count, interval_ms):
    """Sends build(sender_mac) count times, interval_ms apart, from iface."""
    w = Wire(iface)
    try:
        frame = build(mac_bytes(mac) if mac else w.mac)
        for i in range(count):
            if i:
                time.sleep(interval_ms / 1000.0)
            w.send(frame)
        return count
    finally:
        w.close()


def garp(ip, iface="eth0", mac=None, count=1, interval_ms=0, reply=False):
    # The frame's Ethernet source is the announced MAC too, like a real GARP.
    return _send_repeated(iface, mac, lambda m: arp_frame(2 if reply else 1, m, ip, ip,
                                                          target_mac=BROADCAST if reply else ZERO_MAC),
                          count, interval_ms)


def unsolicited_na(ip6, iface="eth0", mac=None, count=1, interval_ms=0):
    return _send_repeated(iface, mac, lambda m: na_frame(m, str(ipaddress.IPv6Address(ip6))), count, interval_ms)


_UNREACH = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN}


def tcp_request(ip, port, timeout=1.0, data=None, read=False, max_bytes=1 << 20,
                source=None):
    """Connect; optionally send data and read until EOF/timeout. -> (result, bytes)."""
    fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    got = b""
    try:
        s.settimeout(timeout)
        if source:
            s.bind((source, 0))
        deadline = now() + timeout
        try:
            s.connect((ip, port))
            if data:
                s.sendall(data)
            if read:
                while len(got) < max_bytes:
                    left = deadline - now()
                    if left <= 0:
                        break
                    s.settimeout(left)
                    try:
                        chunk = s.recv(65536)
                    except socket.timeout:
                        break
                    if not chunk:
                        break
                    got += chunk
            return "ok", got
        except socket.timeout:
            return "timeout", got
        except ConnectionRefusedError:
            return "refused", got
        except ConnectionResetError:
            return "reset", got
        except OSError as e:
            if e.errno in _UNREACH:
                return "unreachable", got
            return "error:" + (errno.errorcode.get(e.errno) or str(e)), got
    finally:
        s.close()


# ----------------------------------------------------------------------------- watch
def emit(obj):
    try:
        sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    except BrokenPipeError:
        os._exit(0)


def flush():
    try:
        sys.stdout.flush()
    except BrokenPipeError:  # the test went away: stop quietly
        os._exit(0)


def watch(iface="eth0", probes=(), interval_ms=5.0, duration=None, include_ns=False,
          include_outgoing=False, arp_src=None):
    w = Wire(iface)
    ip4 = iface_ip4(iface)
    ip6 = iface_ip6(iface)
    frames = []
    for p in probes:
        a = ipaddress.ip_address(p)
        if a.version == 4:
            frames.append(arp_frame(1, w.mac, arp_src or ip4 or "0.0.0.0", str(a)))
        else:
            if ip6 is None:
                raise SystemExit("wire.py watch: no IPv6 address on %s to probe %s" % (iface, p))
            frames.append(ns_frame(w.mac, ip6, str(a)))
    ips = [str(ipaddress.ip_address(p)) for p in probes]
    emit({"t": round(now(), 6), "kind": "ready", "iface": iface, "mac": mac_str(w.mac),
          "ip4": ip4, "ip6": ip6})
    flush()
    interval = max(interval_ms, 0.1) / 1000.0
    t_end = None if duration is None else now() + duration
    next_probe = now()
    rnd = 0
    while True:
        t = now()
        if t_end is not None and t >= t_end:
            break
        if frames and t >= next_probe:
            for f in frames:
                w.send(f)
            emit({"t": round(t, 6), "kind": "probe", "round": rnd, "ips": ips})
            rnd += 1
            next_probe += interval
            if next_probe < t:  # we fell behind (scheduling): do not burst
                next_probe = t + interval
        for ev in w.recv_events(include_outgoing):
            if ev["kind"] == "ns" and not include_ns:
                continue
            emit(ev)
        flush()
        wake = next_probe if frames else now() + 0.5
        if t_end is not None:
            wake = min(wake, t_end)
        w.wait(max(0.0, wake - now()))


# ----------------------------------------------------------------------------- agent
def agent():
    """Serve JSON requests, one per line, until stdin closes."""
    ops = {
        "ping": lambda: "pong",
        "who_has": lambda ip, timeout=0.2, iface="eth0", src_ip=None:
            who_has(ip, iface, timeout, src_ip),
        "tcp_connect": lambda ip, port, timeout=1.0, source=None:
            tcp_request(ip, port, timeout, source=source)[0],
        "tcp_request": lambda ip, port, timeout=1.0, data="", read=True, source=None:
            (lambda r: {"result": r[0], "data": r[1].decode("latin-1")})(
                tcp_request(ip, port, timeout, data.encode("latin-1"), read, source=source)),
        "garp": garp,
        "unsolicited_na": unsolicited_na,
        "iface": lambda iface="eth0": {"mac": mac_str(iface_mac(iface)),
                                       "ip4": iface_ip4(iface), "ip6": iface_ip6(iface)},
    }
    emit({"ready": True, "pid": os.getpid()})
    flush()
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        rid = None
        try:
            req = json.loads(line)
            rid = req.pop("id", None)
            op = req.pop("op")
            res = {"id": rid, "ok": True, "result": ops[op](**req)}
        except Exception as e:  # report, keep serving
            res = {"id": rid, "ok": False, "error": "%s: %s" % (type(e).__name__, e)}
        emit(res)
        flush()


# ----------------------------------------------------------------------------- main
def main(argv=None):
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("who-has")
    p.add_argument("ip")
    p.add_argument("-i", "--iface", default="eth0")
    p.add_argument("-t", "--timeout", type=float, default=0.2)
    p.add_argument("--src-ip")
    p = sub.add_parser("garp")
    p.add_argument("ip")
    p.add_argument("-i", "--iface", default="eth0")
    p.add_argument("--mac")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--interval-ms", type=float, default=0)
    p.add_argument("--reply", action="store_true")
    p = sub.add_parser("una")
    p.add_argument("ip")
    p.add_argument("-i", "--iface", default="eth0")
    p.add_argument("--mac")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--interval-ms", type=float, default=0)
    p = sub.add_parser("connect")
    p.add_argument("ip")
    p.add_argument("port", type=int)
    p.add_argument("-t", "--timeout", type=float, default=1.0)
    p = sub.add_parser("watch")
    p.add_argument("-i", "--iface", default="eth0")
    p.add_argument("--probe", action="append", default=[])
    p.add_argument("--interval-ms", type=float, default=5.0)
    p.add_argument("--duration", type=float)
    p.add_argument("--include-ns", action="store_true")
    p.add_argument("--include-outgoing", action="store_true")
    p.add_argument("--arp-src", help="sender IP of ARP probes (default: iface address)")
    sub.add_parser("agent")
    a = ap.parse_args(argv)

    if a.mode == "who-has":
        emit({"ip": a.ip, "macs": who_has(a.ip, a.iface, a.timeout, a.src_ip)})
    elif a.mode == "garp":
        emit({"sent": garp(a.ip, a.iface, a.mac, a.count, a.interval_ms, a.reply)})
    elif a.mode == "una":
        emit({"sent": unsolicited_na(a.ip, a.iface, a.mac, a.count, a.interval_ms)})
    elif a.mode == "connect":
        emit({"result": tcp_request(a.ip, a.port, a.timeout)[0]})
    elif a.mode == "watch":
        watch(a.iface, a.probe, a.interval_ms, a.duration, a.include_ns,
              a.include_outgoing, a.arp_src)
    elif a.mode == "agent":
        agent()
    flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

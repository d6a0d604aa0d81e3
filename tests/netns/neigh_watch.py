"""Run inside a namespace: prints one line per neighbour-table change for one address,
"<CLOCK_MONOTONIC seconds> <MAC or -> <state>", from rtnetlink notifications (no polling)."""
import ipaddress
import socket
import struct
import sys
import time

RTNLGRP_NEIGH = 3
RTM_NEWNEIGH, RTM_DELNEIGH = 28, 29
NDA_DST, NDA_LLADDR = 1, 2

target = ipaddress.ip_address(sys.argv[1]).packed
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
s.bind((0, 1 << (RTNLGRP_NEIGH - 1)))
print("ready", flush=True)
while True:
    data = s.recv(65536)
    now = time.monotonic()
    off = 0
    while off + 16 <= len(data):
        length, kind = struct.unpack_from("=IH", data, off)
        if length < 16:
            break
        if kind in (RTM_NEWNEIGH, RTM_DELNEIGH):
            body = data[off + 16: off + length]
            state = struct.unpack_from("=H", body, 8)[0]
            attrs, dst, mac = body[12:], None, None
            a = 0
            while a + 4 <= len(attrs):
                alen, atype = struct.unpack_from("=HH", attrs, a)
                if alen < 4:
                    break
                value = attrs[a + 4: a + alen]
                if atype == NDA_DST:
                    dst = value
                elif atype == NDA_LLADDR and len(value) == 6:
                    mac = ":".join("%02x" % b for b in value)
                a += (alen + 3) & ~3
            if dst == target:
                shown = mac if kind == RTM_NEWNEIGH and mac else "-"
                print("%.6f %s %d" % (now, shown, state), flush=True)
        off += (length + 3) & ~3

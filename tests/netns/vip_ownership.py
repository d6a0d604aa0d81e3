"""VIP ownership on real interfaces, seen from a client on the same bridge: acquire and
announce, conflict detection, a move between nodes, an address deleted by hand, a crash
and restart, the same over IPv6, and client connections reset on release."""
import os
import re
import threading
import time

import netns
from daemons import Failure, Hafront, check, wait_for

VIP4, VIP6 = "192.0.2.100", "2001:db8:77::100"
VIPS = ("  v4: {address: %s/24, interface: eth0, driver: address, garp: {count: 3, interval: 50ms}}\n"
        "  v6: {address: %s/64, interface: eth0, driver: address, garp: {count: 3, interval: 50ms}}\n" % (VIP4, VIP6))

with netns.TestBed(nodes=2) as bed:
    n1, n2 = bed.nodes
    client = bed.client
    # The client stands for the segment's router: gratuitous ARP and unsolicited NA create
    # neighbour entries (the kernel does the latter only on forwarding interfaces).
    client.sysctl("net.ipv4.conf.eth0.arp_accept", 1)
    client.sysctl("net.ipv6.conf.eth0.forwarding", 1)
    client.sysctl("net.ipv6.conf.eth0.accept_untracked_na", 1)
    obs = bed.observer(vips=[VIP4, VIP6], interval_ms=5)

    # --- acquire -------------------------------------------------------------------------
    a = Hafront(bed, n1, VIPS)
    t0 = time.monotonic()
    a.start()
    a.wait_vip("v4", "held")
    a.wait_vip("v6", "held")
    check(a.vip("v4")["holder"] == "n1", "n1 holds v4")
    obs.wait_announcement(VIP4, mac=n1.mac, after=t0, timeout=3)
    obs.wait_announcement(VIP6, mac=n1.mac, after=t0, timeout=3)
    check(True, "n1 announced both VIPs (gratuitous ARP, unsolicited NA)")
    wait_for(lambda: client.neigh(VIP4) == n1.mac, 2, "client neighbour entry for v4 -> n1")
    wait_for(lambda: client.neigh(VIP6) == n1.mac, 2, "client neighbour entry for v6 -> n1")
    check(True, "the client's neighbour entries point at n1 for both VIPs")
    check(client.arp_who_has(VIP4) == {n1.mac}, "only n1 answers ARP for v4")
    check(client.ndp_who_has(VIP6) == {n1.mac}, "only n1 answers NS for v6")
    addrs = n1.addrs()
    check(any(VIP4 in x for x in addrs) and any(VIP6 in x for x in addrs), "both addresses on n1's eth0")

    # --- a second node sees the conflict and stays away ----------------------------------
    b = Hafront(bed, n2, VIPS).start()
    wait_for(lambda: any("already answered for by MAC " + n1.mac in m for m in b.alerts()), 3,
             "n2 alerts about n1 owning the VIP")
    v = b.vip("v4")
    check(v["state"] in ("released", "acquiring") and n1.mac in v["reason"], "n2 does not take v4: %s" % v)
    check(not any(VIP4 in x for x in n2.addrs()), "no v4 address on n2")
    check(client.arp_who_has(VIP4) == {n1.mac}, "still only n1 answers")

    # --- move n1 -> n2 ------------------------------------------------------------------
    b.ctl("standby")
    a.ctl("standby")
    a.wait_vip("v4", "released")
    a.wait_vip("v6", "released")
    check(client.arp_who_has(VIP4) == set(), "after n1's release nobody answers ARP for v4")
    check(client.ndp_who_has(VIP6) == set(), "after n1's release nobody answers NS for v6")
    t_move = time.monotonic()
    b.ctl("unstandby")
    wait_for(lambda: client.neigh(VIP4) == n2.mac, 3, "client entry for v4 -> n2")
    wait_for(lambda: client.neigh(VIP6) == n2.mac, 3, "client entry for v6 -> n2")
    check(True, "the client's entries flipped to n2 (%.0f ms after the decision)" % ((time.monotonic() - t_move) * 1000))
    check(obs.first_answer_from(VIP4, n1.mac, after_t=t_move) is None, "n1 answered no ARP for v4 after the move")
    check(client.arp_who_has(VIP4) == {n2.mac}, "only n2 answers ARP for v4")
    check(obs.macs_answering_at_once(VIP4) <= 1 and obs.macs_answering_at_once(VIP6) <= 1,
          "never two MACs answering in one probe round")

    # --- somebody deletes the address by hand ----------------------------------------------
    n2.addr_del(VIP4 + "/24")
    wait_for(lambda: any(VIP4 in x for x in n2.addrs()), 3, "v4 back on n2")
    wait_for(lambda: any("removed from eth0 by someone else" in m for m in b.alerts()), 2, "alert")
    check(True, "an address deleted by hand is added back, with an alert")
    n2.addr_del(VIP6 + "/64")
    wait_for(lambda: any(VIP6 in x for x in n2.addrs()), 3, "v6 back on n2")
    check(True, "the same for IPv6")

    # --- crash and restart: the stale addresses are removed ----------------------------------
    b.proc.kill()  # SIGKILL: no chance to clean up
    b.proc.wait(5)
    check(any(VIP4 in x for x in n2.addrs()), "a killed daemon leaves its addresses behind")
    b.write(vips="")  # restarted with no VIP at all
    b.start()
    check(not any(VIP4 in x or VIP6 in x for x in n2.addrs()), "restart removed the stale v4 and v6 addresses")
    check("removed stale VIP address %s/24" % VIP4 in b.log_text(), "the log says so")
    check(client.arp_who_has(VIP4) == set(), "nobody answers for v4 now")

    # --- release with open client connections: the client sees a reset ----------------------
    a.ctl("unstandby")
    a.wait_vip("v4", "held")
    server = n1.spawn(["python3", "-c", """
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("%s", 8000)); s.listen(16)
held = []
while True:
    c, _ = s.accept(); held.append(c); print("accepted", len(held), flush=True)
""" % VIP4])
    wait_for(lambda: client.tcp_connect(VIP4, 8000, timeout=0.5) == "ok", 5, "server on the VIP")
    result = {}

    def hold():
        t = time.monotonic()
        result["outcome"] = client.tcp_request(VIP4, 8000, b"", timeout=10.0)[0]
        result["seconds"] = time.monotonic() - t

    th = threading.Thread(target=hold)
    th.start()
    wait_for(lambda: server.log_text().count("accepted") >= 2, 5, "the held connection")
    t_release = time.monotonic()
    a.ctl("standby")
    th.join(15)
    check(result.get("outcome") == "reset", "the client's open connection got a reset: %s" % result)
    check(result["seconds"] < 5 and time.monotonic() - t_release < 2,
          "at once, not after a time-out (%.0f ms after the release)" % ((time.monotonic() - t_release) * 1000))
    # The server also still holds the probe connection of the readiness check above.
    closed = re.search(r"VIP v4: closed (\d+) connection\(s\) on release", a.log_text())
    check(closed and int(closed.group(1)) >= 1, "the log counts the closed connections: %s" % (closed and closed.group(0)))
    server.kill()

    # --- clean stop releases -----------------------------------------------------------------
    a.ctl("unstandby")
    a.wait_vip("v4", "held")
    a.stop()
    check(not any(VIP4 in x for x in n1.addrs()), "a clean stop removes the VIP")
    check(obs.macs_answering_at_once(VIP4) <= 1 and obs.macs_answering_at_once(VIP6) <= 1,
          "over the whole test, never two MACs answered for a VIP in one probe round")
    b.stop()
print("vip_ownership: all passed")

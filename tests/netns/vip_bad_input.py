"""VIPs that cannot be taken: an interface that does not exist, IPv6 on an interface
without IPv6, an address another machine already owns. Each gets a clear reason and an
alert where it matters, and nothing half-configured is left."""
import netns
from daemons import Hafront, check, wait_for

with netns.TestBed(nodes=1) as bed:
    n1 = bed.nodes[0]
    client = bed.client
    # The client already owns 192.0.2.150.
    client.addr_add("192.0.2.150/24")
    n1.sysctl("net.ipv6.conf.eth0.disable_ipv6", 1)
    vips = ("  ghost: {address: 192.0.2.101/24, interface: eth9}\n"
            "  nov6: {address: 2001:db8:77::101/64, interface: eth0, driver: address}\n"
            "  taken: {address: 192.0.2.150/24, interface: eth0, driver: address}\n"
            "  fine: {address: 192.0.2.102/24, interface: eth0, driver: address}\n")
    h = Hafront(bed, n1, vips).start()
    h.wait_vip("fine", "held")
    ghost = h.vip("ghost")
    check(ghost["state"] == "released" and ghost["reason"] == "interface eth9 does not exist",
          "a missing interface: %s" % ghost)
    nov6 = h.vip("nov6")
    check(nov6["state"] == "released" and nov6["reason"] == "IPv6 is disabled on eth0", "IPv6 disabled: %s" % nov6)
    wait_for(lambda: any("192.0.2.150" in m and client.mac in m for m in h.alerts()), 3, "conflict alert")
    taken = h.vip("taken")
    check(taken["state"] in ("released", "acquiring") and client.mac in taken["reason"],
          "an address owned by another machine is not taken: %s" % taken)
    addrs = n1.addrs()
    check(not any("192.0.2.101" in a or "192.0.2.150" in a or "2001:db8:77::101" in a for a in addrs),
          "nothing half-configured: %s" % addrs)
    check(n1.arp_who_has("192.0.2.150") == {client.mac}, "only the owner answers for its address")
    # Once the owner gives the address up, hafront takes it (it keeps probing).
    client.addr_del("192.0.2.150/24")
    h.wait_vip("taken", "held", timeout=4)
    check(client.arp_who_has("192.0.2.150") == {n1.mac}, "taken once the owner let it go")
    check(h.proc.alive(), "the daemon stayed up throughout")
    h.stop()
print("vip_bad_input: all passed")

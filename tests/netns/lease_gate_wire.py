"""The lease gate on a real veth, watched from a client namespace probing ARP and NS every
5 ms. The VIPs live on n1's lo with arp_ignore=1 / arp_announce=2, so the kernel never
answers for them; only the BPF program does, and only while the lease that
lease_gate_tool keeps renewing is valid.

  - before the gate is attached: nobody answers (the kernel is silent by construction);
  - renewed: n1 answers ARP and NS for the VIPs, and TCP to the VIP connects;
  - the renewing process is paused (SIGSTOP, like a hung daemon): the answers stop at the
    last written expiry -- not before, and at most one probe round after -- and TCP to
    the VIP fails (the client's neighbour entry still points at n1: the drop rule);
  - resumed: answers come back;
  - killed with SIGKILL: the filter stays attached and the last lease still runs out."""
import os
import re
import time

import netns
from daemons import check, wait_for

VIP = "192.0.2.100"
VIP6 = "2001:db8:77::100"
LEASE_MS = 800
TOOL = os.environ.get("LEASE_GATE_TOOL", os.path.join(os.path.dirname(__file__), "..", "..", "build", "tests",
                                                      "lease_gate_tool"))


def boot_minus_mono():
    return time.clock_gettime(time.CLOCK_BOOTTIME) - time.monotonic()


def last_expiry_mono(proc):
    """The last lease the tool wrote, on the monotonic clock the observer uses."""
    found = re.findall(r"renewed (\d+)", proc.log_text())
    return int(found[-1]) / 1e9 - boot_minus_mono() if found else None


with netns.TestBed(nodes=1) as bed:
    n1, client = bed.nodes[0], bed.client
    n1.addr_add(VIP + "/32", dev="lo")
    n1.addr_add(VIP6 + "/128", dev="lo")
    for scope in ("all", "eth0"):
        n1.sysctl("net.ipv4.conf.%s.arp_ignore" % scope, 1)
        n1.sysctl("net.ipv4.conf.%s.arp_announce" % scope, 2)
    web = n1.spawn([netns.PYTHON, "-u", "-m", "http.server", "-b", VIP, "8000"])
    web.wait_log("Serving HTTP")
    obs = bed.observer(vips=[VIP, VIP6], interval_ms=5)
    time.sleep(0.3)
    check(obs.macs(VIP) == set() and obs.macs(VIP6) == set(),
          "without the gate nobody answers for the VIPs (address on lo, arp_ignore=1)")

    tool = n1.spawn([TOOL, "--dev", "eth0", "--vip", VIP, "--vip", VIP6, "--mac", n1.mac,
                     "--lease-ms", str(LEASE_MS), "--renew-ms", "100"])
    tool.wait_log("ready")
    t_on = time.monotonic()
    obs.wait_answer(VIP, mac=n1.mac, after=t_on, timeout=2)
    obs.wait_answer(VIP6, mac=n1.mac, after=t_on, timeout=2)
    check(client.tcp_connect(VIP, 8000) == "ok", "TCP to the VIP connects while the lease is renewed")
    check("lease_gate" in n1.run(["tc", "filter", "show", "dev", "eth0", "ingress"]).stdout,
          "the gate is a tc ingress filter on eth0")

    # --- the renewing process hangs ------------------------------------------------------------
    time.sleep(0.5)
    tool.stop()
    t_stop = time.monotonic()
    expiry = last_expiry_mono(tool)
    time.sleep(LEASE_MS / 1000.0 + 0.3)
    for vip in (VIP, VIP6):
        last = obs.last_answer_from(vip, n1.mac)
        check(last is not None and expiry - 0.02 <= last <= expiry + 0.010,
              "%s: answers until the expiry (last %.1f ms before it), none after" % (vip, (expiry - last) * 1000))
        check(not obs.answers(vip, since=expiry + 0.010), "%s: silence after the expiry" % vip)
    check(expiry - t_stop > LEASE_MS / 1000.0 - 0.15, "the stop came %.0f ms before the expiry" % ((expiry - t_stop) * 1000))
    r = client.tcp_connect(VIP, 8000, timeout=0.5)
    check(r != "ok", "TCP to the VIP fails after the expiry (%s)" % r)
    check(obs.macs_answering_at_once(VIP) <= 1, "one MAC at most")

    # --- resumed: renewals and answers come back ---------------------------------------------------
    tool.cont()
    t_cont = time.monotonic()
    obs.wait_answer(VIP, mac=n1.mac, after=t_cont, timeout=2)
    check(True, "after SIGCONT the renewed lease is answered again")

    # --- killed: the filter stays and enforces the last lease ------------------------------------
    tool.kill()
    t_kill = time.monotonic()
    expiry = last_expiry_mono(tool)
    check("lease_gate" in n1.run(["tc", "filter", "show", "dev", "eth0", "ingress"]).stdout,
          "after SIGKILL the filter is still attached")
    time.sleep(max(0.0, expiry - time.monotonic()) + 0.3)
    last = obs.last_answer_from(VIP, n1.mac)
    check(last is not None and t_kill <= last <= expiry + 0.010 and not obs.answers(VIP, since=expiry + 0.010),
          "after SIGKILL: answered until the last expiry (%.0f ms after the kill), then silence" %
          ((last - t_kill) * 1000))
print("lease_gate_wire: all passed")

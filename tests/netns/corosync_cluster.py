"""Three hafront nodes, each with its own real Corosync, in the namespace test bed. The
VIP uses the classic address driver; proof that a lost holder is down comes from
`hafrontctl fence-confirm` (the fencing and lease drivers plug in there). Checked from
the client namespace throughout: no two MACs ever answer for the VIP."""
import datetime
import re
import time

import daemons
import netns
from corosync_cluster_lib import start_cluster, start_corosync
from daemons import Hafront, check, wait_for

VIP = "192.0.2.100"
CONFIG = """cluster:
  name: bed
  mode: corosync
  nodes:
    - {name: n1, id: 1, address: 192.0.2.11}
    - {name: n2, id: 2, address: 192.0.2.12}
    - {name: n3, id: 3, address: 192.0.2.13}
  timings: {token: 300ms, heartbeat_interval: 100ms, liveness_timeout: 1s}
vips:
  v: {address: %s/24, interface: eth0, driver: address, prefer: [n1], garp: {count: 3, interval: 50ms}}
""" % VIP


def log_time(line):
    return datetime.datetime.strptime(line[:23], "%Y-%m-%dT%H:%M:%S.%f").timestamp()


def first_line(text, pattern, after=0.0):
    for line in text.splitlines():
        if re.search(pattern, line) and log_time(line) >= after:
            return log_time(line)
    return None


with netns.TestBed(nodes=3) as bed:
    daemons.BED = bed
    h, coro = start_cluster(bed, CONFIG)
    obs = bed.observer(vips=[VIP], interval_ms=5)
    n1, n2, n3 = bed.nodes

    def holder_seen_by(name):
        return h[name].vip("v")["holder"]

    # --- converge ------------------------------------------------------------------------------
    h["n1"].wait_vip("v", "held", timeout=10)
    for name in h:
        wait_for(lambda name=name: holder_seen_by(name) == "n1", 5, "%s sees n1 as the holder" % name)
    st = h["n2"].status()
    check(st["cluster"]["mode"] == "corosync" and st["cluster"]["quorate"] and
          [m["name"] for m in st["cluster"]["members"]] == ["n1", "n2", "n3"], "status: quorate, members n1 n2 n3")
    check(bed.client.arp_who_has(VIP) == {n1.mac}, "only n1 answers for the VIP")

    # --- partition the holder away ---------------------------------------------------------------
    t_cut = time.time()
    n1.partition()
    h2 = wait_for(lambda: (lambda v: v if "left the membership uncleanly" in v["reason"] else None)(h["n2"].vip("v")), 5,
                  "the majority sees the holder lost")
    check(h2["holder"] == "n1" and h2["state"] == "released", "majority: the VIP stays blocked on lost n1: %s" % h2["reason"])
    wait_for(lambda: "NOT quorate" in h["n1"].log_text(), 5, "n1 loses quorum")
    wait_for(lambda: re.search(r"VIP v .*held -> releasing", h["n1"].log_text()), 5, "n1 releases")
    lost = first_line(h["n1"].log_text(), r"quorum: NOT quorate", t_cut - 1)
    released = first_line(h["n1"].log_text(), r"VIP v .*held -> releasing", t_cut - 1)
    check(lost is not None and released is not None and 0 <= (released - lost) <= 0.100,
          "the minority released the VIP %.0f ms after losing quorum (limit 100 ms)" % ((released - lost) * 1000))
    time.sleep(0.3)
    check(bed.client.arp_who_has(VIP) == set(), "nobody answers while proof is missing")
    check(not any(VIP in a for a in n2.addrs() + n3.addrs()), "no takeover without proof")
    h["n2"].ctl("fence-confirm", "n1")
    h["n2"].wait_vip("v", "held", timeout=5)
    check(bed.client.arp_who_has(VIP) == {n2.mac}, "after the fence confirmation the VIP moved to n2")

    # --- heal: n1 rejoins fresh; no failback ---------------------------------------------------
    n1.heal()
    wait_for(lambda: [m["name"] for m in h["n1"].status()["cluster"]["members"]] == ["n1", "n2", "n3"], 10,
             "n1 rejoins")
    wait_for(lambda: h["n1"].status()["cluster"]["quorate"], 5, "n1 quorate again")
    wait_for(lambda: holder_seen_by("n1") == "n2", 5, "n1 learns the table: holder n2")
    time.sleep(0.5)
    check(h["n2"].vip("v")["state"] == "held" and h["n1"].vip("v")["state"] == "released",
          "after the heal the VIP stays on n2 (no failback)")

    # --- kill -9 the holder's Corosync ------------------------------------------------------
    t_kill = time.time()
    coro["n2"].kill()
    wait_for(lambda: re.search(r"VIP v .*held -> releasing", h["n2"].log_text()[0:]) and
             first_line(h["n2"].log_text(), r"VIP v .*held -> releasing", t_kill - 0.5), 5, "n2 releases")
    lostc = first_line(h["n2"].log_text(), r"lost Corosync", t_kill - 0.5)
    rel = first_line(h["n2"].log_text(), r"VIP v .*held -> releasing", t_kill - 0.5)
    check(lostc is not None and rel is not None and rel - lostc <= 0.1,
          "n2 released %.0f ms after losing its Corosync" % ((rel - lostc) * 1000))
    wait_for(lambda: "left the membership uncleanly" in h["n1"].vip("v")["reason"], 5, "n1 sees n2 lost")
    check(not any(VIP in a for a in n1.addrs() + n3.addrs()), "n1 and n3 wait for proof")
    h["n1"].ctl("fence-confirm", "n2")
    h["n1"].wait_vip("v", "held", timeout=5)
    check(bed.client.arp_who_has(VIP) == {n1.mac}, "then the VIP moved to n1 (preferred)")

    # --- SIGSTOP the holder's daemon (its Corosync keeps running) ----------------------------------
    h["n1"].proc.stop()
    wait_for(lambda: "went silent" in h["n3"].vip("v")["reason"], 5, "n3 sees n1's daemon silent")
    check(h["n3"].vip("v")["holder"] == "n1", "the paused holder's VIP stays blocked: %s" % h["n3"].vip("v")["reason"])
    check(not any(VIP in a for a in n3.addrs()), "no takeover from a paused holder without proof")
    h["n1"].proc.cont()
    wait_for(lambda: "declared this daemon silent" in h["n1"].log_text(), 5, "n1 learns it was declared silent")
    h["n3"].wait_vip("v", "held", timeout=10)
    check(not any(VIP in a for a in n1.addrs()), "after SIGCONT n1 released first; then, once it left cleanly, n3 took the VIP")
    wait_for(lambda: holder_seen_by("n1") == "n3", 5, "n1 rejoined and sees n3 as the holder")
    check(h["n1"].vip("v")["state"] == "released", "n1 rejoined as a fresh member; no failback")

    # --- standby moves the VIP back ---------------------------------------------------------------
    t_standby = time.monotonic()
    h["n1"].ctl("standby", "n3")  # asked from another node: the request travels over CPG
    h["n1"].wait_vip("v", "held", timeout=5)
    first_n1 = obs.wait_answer(VIP, mac=n1.mac, after=t_standby, timeout=3)
    last_n3 = obs.last_answer_from(VIP, n3.mac, before_t=time.monotonic())
    t_first = first_n1["t"] if isinstance(first_n1, dict) else first_n1
    t_last = last_n3["t"] if isinstance(last_n3, dict) else last_n3
    check(t_last < t_first, "standby moved the VIP n3 -> n1, release before acquire: answer gap %.0f ms" % ((t_first - t_last) * 1000))
    check(h["n3"].status()["standby"] is True, "n3 reports itself in standby")

    # --- the killed Corosync comes back: n2's daemon reconnects as a fresh member ---------------
    coro["n2"] = start_corosync(bed, h["n2"].config, n2)
    wait_for(lambda: h["n2"].log_text().count("connected to Corosync as node 2") >= 2, 15, "n2 reconnects")
    wait_for(lambda: "n2" in [m["name"] for m in h["n1"].status()["cluster"]["members"]], 10, "n2 a member again")
    check(True, "after its Corosync restarted, n2's daemon reconnected and rejoined")

    # --- a node running another config is flagged and never takes a VIP ------------------------
    h["n2"].stop()
    other = h["n2"].config + ".other"
    with open(h["n2"].config) as f, open(other, "w") as g:
        g.write(f.read() + "# an edit made on n2 only\n")
    odd = Hafront(bed, n2, config=other).start()
    wait_for(lambda: any(n["name"] == "n2" and n["member"] and not n["config_match"]
                         for n in h["n1"].status()["cluster"]["nodes"]), 10, "n1 flags n2's config")
    check(any(not n["config_match"] for n in odd.status()["cluster"]["nodes"] if n["name"] == "n2"),
          "n2 itself knows it runs another config")
    h["n1"].ctl("standby")  # n3 is in standby too: n2 is the only other node, and may not take it
    wait_for(lambda: h["n1"].vip("v")["state"] == "released", 5, "n1 releases")
    time.sleep(0.5)
    check(odd.vip("v")["state"] == "released" and not any(VIP in a for a in n2.addrs()),
          "the mismatched node did not take the VIP: %s" % h["n1"].vip("v")["reason"])
    check(bed.client.arp_who_has(VIP) == set(), "nobody holds it (and an alert says why)")

    # --- a holder that stops cleanly hands over without fencing ------------------------------
    h["n3"].ctl("unstandby")
    h["n3"].wait_vip("v", "held", timeout=5)
    h["n1"].ctl("unstandby")
    t_stop = time.monotonic()
    h["n3"].stop()
    h["n1"].wait_vip("v", "held", timeout=5)
    st = h["n1"].status()
    check([n for n in st["cluster"]["nodes"] if n["name"] == "n3"][0]["departure"] == "clean" and not st["cluster"]["fence"],
          "n3 left cleanly: nobody is fenced")
    first_n1 = obs.wait_answer(VIP, mac=n1.mac, after=t_stop, timeout=3)
    last_n3 = obs.last_answer_from(VIP, n3.mac, before_t=time.monotonic())
    t_first = first_n1["t"] if isinstance(first_n1, dict) else first_n1
    t_last = last_n3["t"] if isinstance(last_n3, dict) else last_n3
    check(t_last < t_first, "a stopping holder hands over, release before acquire: answer gap %.0f ms" % ((t_first - t_last) * 1000))
    odd.stop()

    check(obs.macs_answering_at_once(VIP) <= 1, "throughout, never two MACs answered for the VIP in one probe round")
    for x in h.values():
        x.stop()
print("corosync_cluster: all passed")

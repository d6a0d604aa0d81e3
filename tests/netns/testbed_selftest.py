#!/usr/bin/env python3
"""Self-test of the netns test bed (tests/netns/netns.py + wire.py).

Builds a real 3-node bed and checks what every multi-node test relies on: addressing and
MACs (ARP and NDP), TCP reachability, carrier loss, partitions with carrier kept, group
partitions, node freeze, the client-side observer (gratuitous ARP, unsolicited NA, the
two-holders detector), per-namespace sysctls, and that nothing is left behind after
close(), after SIGTERM, or after a SIGKILLed test (cleaned by the next TestBed).

Needs root; prints a SKIP line and exits 77 otherwise. Prints "ok: ..." per check and
"testbed_selftest: all passed" at the end; exits 1 on the first failure.

    --fail-after N   inject a failure after N checks (to verify nothing leaks then)
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import netns  # noqa: E402
from netns import PYTHON, TestBed  # noqa: E402

T_START = time.monotonic()
_checks = 0
_fail_after = None


class Failure(Exception):
    pass


def check(cond, msg):
    global _checks
    if not cond:
        raise Failure(msg)
    _checks += 1
    print("ok: " + msg, flush=True)
    if _fail_after is not None and _checks >= _fail_after:
        raise Failure("injected failure after %d checks (--fail-after)" % _checks)


def wait_until(fn, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise Failure("timed out after %.1fs waiting for %s (last: %r)" % (timeout, what, v))
        time.sleep(0.02)


def netns_list():
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def proc_state(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0]


SERVER = r"""
import socket, sys
ip, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((ip, port))
s.listen(64)
print("listening", flush=True)
while True:
    c, _ = s.accept()
    c.sendall(b"hello from " + name.encode() + b"\n")
    c.close()
"""

# A test process that builds a bed, starts a process in it, reports, and waits to be killed.
CHILD = r"""
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
from netns import TestBed
bed = TestBed(nodes=2)
p = bed.nodes[0].spawn(["sleep", "300"])
print(json.dumps({"pid": os.getpid(), "namespaces": bed.namespaces, "sleep": p.pid,
                  "dir": bed.dir}), flush=True)
time.sleep(300)
"""


def start_child(children):
    c = subprocess.Popen([PYTHON, "-c", CHILD, HERE], stdout=subprocess.PIPE, text=True)
    children.append(c)
    line = c.stdout.readline()
    if not line:
        raise Failure("child test process died before building its bed (exit %s)" % c.wait())
    return c, json.loads(line)


# ----------------------------------------------------------------------------- checks
def check_layout(bed):
    pid = os.getpid()
    names = netns_list()
    check(all(n.startswith("hft%d-" % pid) for n in bed.namespaces)
          and set(bed.namespaces) <= names,
          "bed built in %.0f ms: namespaces %s" % (bed.build_seconds * 1000,
                                                   " ".join(bed.namespaces)))
    for n in bed.nodes:
        addrs = n.addrs()
        check(n.ip4 + "/24" in addrs and n.ip6 + "/64" in addrs
              and n.ip(["-br", "link", "show", "eth0"]).split()[2] == n.mac,
              "%s: eth0 %s %s %s" % (n.name, n.ip4, n.ip6, n.mac))
    check(bed.client.ip4 == "192.0.2.200" and bed.client.ip6 == "2001:db8:77::200"
          and "192.0.2.200/24" in bed.client.addrs(), "client: eth0 192.0.2.200 2001:db8:77::200")
    check([bed.mac_of(n) for n in ("n1", "n2", "n3")]
          == ["02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03"]
          and bed.name_of_mac("02:00:00:00:00:02") == "n2" and bed.name_of_mac("02:aa:00:00:00:00") is None,
          "deterministic MACs and MAC -> name mapping")


def check_neighbours(bed):
    t = time.monotonic()
    for n in bed.nodes:
        got4 = bed.client.arp_who_has(n.ip4)
        got6 = bed.client.ndp_who_has(n.ip6)
        check(got4 == {n.mac} and got6 == {n.mac},
              "ARP and NDP for %s / %s answered by %s only" % (n.ip4, n.ip6, n.name))
    check(bed.client.arp_who_has("192.0.2.250") == set(), "nobody answers ARP for an unused address")
    check(time.monotonic() - t < 10, "7 who-has queries (0.2 s listening each) took %.2f s"
          % (time.monotonic() - t))


def check_tcp_and_faults(bed):
    n1, n2, n3 = bed.nodes
    c = bed.client
    srv = n2.spawn([PYTHON, "-c", SERVER, n2.ip4, "8000", "n2"])
    srv.wait_log("listening", timeout=10)
    check(c.tcp_connect(n2.ip4, 8000) == "ok", "TCP server in n2 reachable from client: ok")
    res, data = c.tcp_request(n2.ip4, 8000)
    check(res == "ok" and data == b"hello from n2\n", "tcp_request reads the server's greeting")
    check(c.tcp_connect(n2.ip4, 8001) == "refused", "other port: refused")
    check(c.neigh(n2.ip4) == n2.mac, "client neighbour table has n2's MAC for %s" % n2.ip4)
    c.flush_neigh()
    check(c.neigh(n2.ip4) is None, "flush_neigh forgets it")

    n2.link_down()
    r = c.tcp_connect(n2.ip4, 8000, timeout=0.5)
    check(not n2.carrier() and r in ("timeout", "unreachable"),
          "n2.link_down(): n2 has no carrier, connect -> %s" % r)
    n2.link_up()
    check(n2.carrier(), "n2.link_up(): carrier back")
    wait_until(lambda: c.tcp_connect(n2.ip4, 8000, timeout=0.5) == "ok", 5, "ok after link_up")
    check(True, "connect ok again after link_up")

    n2.partition()
    r = c.tcp_connect(n2.ip4, 8000, timeout=0.5)
    check(n2.carrier() and r in ("timeout", "unreachable"),
          "n2.partition(): carrier kept, connect -> %s" % r)
    n2.heal()
    wait_until(lambda: c.tcp_connect(n2.ip4, 8000, timeout=0.5) == "ok", 5, "ok after heal")
    check(True, "connect ok again after heal")

    bed.partition(["n1", "n2"], ["n3"])
    check(n1.arp_who_has(n2.ip4) == {n2.mac} and n1.arp_who_has(n3.ip4) == set()
          and c.arp_who_has(n3.ip4) == set() and c.arp_who_has(n1.ip4) == {n1.mac}
          and n3.carrier(),
          "bed.partition([n1,n2],[n3]): n1 sees n2 not n3, client stays with n1/n2, carrier kept")
    bed.partition(["n1"], ["n2", "n3", "client"])
    check(n2.arp_who_has(n3.ip4) == {n3.mac} and c.arp_who_has(n2.ip4) == {n2.mac}
          and c.arp_who_has(n1.ip4) == set() and n1.arp_who_has(n2.ip4) == set(),
          "bed.partition([n1],[n2,n3,client]): sides see only each other")
    bed.heal()
    check(all(c.arp_who_has(n.ip4) == {n.mac} for n in bed.nodes), "bed.heal(): all reachable again")
    return srv


def check_pause(bed, srv):
    n2 = bed.node("n2")
    c = bed.client
    # A process started behind the bed's back (not via spawn) must freeze too.
    other = int(n2.run("setsid sleep 300 </dev/null >/dev/null 2>&1 & echo $!").stdout)
    wait_until(lambda: other in n2.pids(), 2, "untracked sleep visible in n2")
    n2.pause()
    check(proc_state(srv.pid) == "T" and proc_state(other) == "T" and srv.alive(),
          "n2.pause(): spawned server and an untracked process are stopped (state T)")
    res, data = c.tcp_request(n2.ip4, 8000, timeout=0.5)
    check(data == b"", "frozen server accepts in the kernel but sends nothing (%s)" % res)
    n2.resume()
    check(proc_state(srv.pid) in "SR" and proc_state(other) in "SR",
          "n2.resume(): both running again (state %s/%s)" % (proc_state(srv.pid), proc_state(other)))
    res, data = c.tcp_request(n2.ip4, 8000)
    check(res == "ok" and data.startswith(b"hello from n2"), "resumed server greets again")
    srv.stop()
    check(proc_state(srv.pid) == "T", "Proc.stop(): state T")
    srv.cont()
    check(proc_state(srv.pid) in "SR", "Proc.cont(): running")
    return other


def check_observer(bed):
    n1, n2, n3 = bed.nodes
    v4, v6 = "192.0.2.99", "2001:db8:77::99"
    with bed.observer(vips=[n1.ip4, v4, v6], interval_ms=5) as obs:
        t = obs.wait_answer(n1.ip4, n1, timeout=2)
        check(abs(t - time.monotonic()) < 2, "observer sees n1 answering ARP for %s" % n1.ip4)

        t0 = time.monotonic()
        n1.garp("192.0.2.100")
        tg = obs.wait_announcement("192.0.2.100", n1, after=t0, timeout=2)
        ev = [e for e in obs.events("arp", since=t0) if e["sender_ip"] == "192.0.2.100"][0]
        check(t0 <= tg < time.monotonic() and ev["is_gratuitous"] and not ev["is_reply"]
              and ev["target_ip"] == "192.0.2.100" and ev["sender_mac"] == n1.mac,
              "observer sees n1's gratuitous ARP for 192.0.2.100 %.1f ms after sending"
              % ((tg - t0) * 1000))
        t0 = time.monotonic()
        n1.unsolicited_na("2001:db8:77::100")
        obs.wait_announcement("2001:db8:77::100", n1, after=t0, timeout=2)
        check(True, "observer sees n1's unsolicited NA for 2001:db8:77::100")

        t1 = time.monotonic()
        n1.addr_add(v4 + "/32")
        n1.addr_add(v6 + "/128")
        obs.wait_answer(v4, n1, after=t1)
        obs.wait_answer(v6, n1, after=t1)
        t1b = time.monotonic()
        time.sleep(0.3)
        a4 = obs.macs_answering_at_once(v4, since=t1b)
        a6 = obs.macs_answering_at_once(v6, since=t1b)
        check(a4 == 1 and a6 == 1, "only n1 holds %s and %s: 1 MAC answering at once" % (v4, v6))

        n3.addr_add(v4 + "/32")
        n3.addr_add(v6 + "/128")
        t2 = time.monotonic()
        obs.wait_answer(v4, n3, after=t2)
        obs.wait_answer(v6, n3, after=t2)
        time.sleep(0.3)
        a4 = obs.macs_answering_at_once(v4, since=t2)
        a6 = obs.macs_answering_at_once(v6, since=t2)
        w4 = obs.macs_answering_at_once(v4, window_ms=5, since=t2)
        ov = obs.overlaps(v4, since=t2)
        check(a4 == 2 and a6 == 2 and w4 == 2 and ov
              and bed.names(ov[0][1]) == ["n1", "n3"],
              "n1 and n3 both hold %s / %s: 2 MACs answering at once (%d of %d rounds)"
              % (v4, v6, len(ov), len(obs.probes(since=t2))))
        fa = obs.first_answer_from(v4, n3, after_t=t2)
        check(fa is not None and fa >= t2, "first_answer_from(n3) after adding: +%.1f ms"
              % ((fa - t2) * 1000))

        n3.addr_del(v4 + "/32")
        n3.addr_del(v6 + "/128")
        t3 = time.monotonic() + 0.02
        time.sleep(0.3)
        check(obs.macs_answering_at_once(v4, since=t3) == 1
              and obs.macs_answering_at_once(v6, since=t3) == 1
              and obs.macs(v4, since=t3) == {n1.mac},
              "after n3 drops the address: 1 MAC again (n1)")
        rounds = obs.probes(since=t1, until=t3)
        rate = len(rounds) / (t3 - t1)
        check(rate > 20, "observer probed %.0f rounds/s (5 ms interval)" % rate)
        last3 = obs.last_answer_from(v4, n3)
        s0, s1, gap = obs.longest_silence(v4, since=t1b)
        check(last3 is not None and last3 < t3 and gap < 1.0,
              "last_answer_from(n3) before the delete; longest silence of %s %.1f ms"
              % (v4, gap * 1000))
    check(not obs.proc.alive(), "observer stopped")


def check_sysctl(bed):
    n1 = bed.node("n1")
    c = bed.client
    with open("/proc/sys/net/ipv4/conf/all/arp_ignore") as f:
        host_before = f.read().strip()
    n1.addr_add("192.0.2.98/32", dev="lo")
    check(c.arp_who_has("192.0.2.98") == {n1.mac}, "a VIP on n1's lo is answered by default")
    v = n1.sysctl("net.ipv4.conf.all.arp_ignore", 1)
    n1.sysctl("net.ipv4.conf.eth0.arp_ignore", 1)
    check(v == "1" and n1.sysctl("net.ipv4.conf.eth0.arp_ignore") == "1"
          and c.arp_who_has("192.0.2.98") == set(),
          "n1.sysctl(arp_ignore=1): n1 stops answering for its lo VIP")
    with open("/proc/sys/net/ipv4/conf/all/arp_ignore") as f:
        host_after = f.read().strip()
    check(host_before == host_after and bed.node("n2").sysctl("net.ipv4.conf.all.arp_ignore") == "0",
          "host and other nodes keep arp_ignore=%s" % host_after)


def check_binds(bed):
    n1 = bed.node("n1")
    hosts = bed.write_hosts()
    r = n1.run(["getent", "hosts", "n3"])
    check(r.stdout.split()[:2] == ["2001:db8:77::13", "n3"] or r.stdout.split()[:2] == ["192.0.2.13", "n3"],
          "write_hosts(): n1 resolves n3 without DNS (%s)" % " ".join(r.stdout.split()[:2]))
    rundir = os.path.join(bed.dir, "n1-run")
    os.makedirs(rundir)
    p = n1.spawn(["sh", "-c", "echo $$ > /run/hft-selftest.pid; exec sleep 300"],
                 binds={"/run": rundir})
    wait_until(lambda: os.path.exists(os.path.join(rundir, "hft-selftest.pid")), 5, "pid file")
    with open(os.path.join(rundir, "hft-selftest.pid")) as f:
        written = int(f.read())
    check(written == p.pid and not os.path.exists("/run/hft-selftest.pid")
          and open("/etc/hosts").read() != open(hosts).read(),
          "spawn(binds={'/run': dir}): private /run, pid kept, host /run and /etc/hosts untouched")


def check_close(bed, extra_pids):
    names = list(bed.namespaces)
    pids = [p.pid for m in bed.nodes + [bed.client] for p in m._procs] + list(extra_pids)
    rundir = bed.dir
    t = time.monotonic()
    bed.close()
    dt = time.monotonic() - t
    left = netns_list() & set(names)
    alive = [p for p in pids if pid_alive(p)]
    check(not left and not alive and not os.path.exists(rundir),
          "close() in %.0f ms: namespaces, %d processes and the run folder are gone"
          % (dt * 1000, len(pids)))
    bed.close()
    check(True, "close() is idempotent")


def check_sigkill_cleanup(children):
    c, info = start_child(children)
    names = set(info["namespaces"])
    # Keep concurrently running tests' cleanup_stale() away until we have looked.
    with netns.stale_cleanup_lock():
        c.kill()
        c.wait()
        check(names <= netns_list() and pid_alive(info["sleep"]) and os.path.isdir(info["dir"]),
              "SIGKILLed test left namespaces %s, its process %d and its folder behind"
              % (" ".join(sorted(names)), info["sleep"]))
    t = time.monotonic()
    with TestBed(nodes=1) as bed:
        dt = time.monotonic() - t
        check(not (netns_list() & names) and not pid_alive(info["sleep"])
              and not os.path.exists(info["dir"]),
              "next TestBed() removed them (creation incl. cleanup %.0f ms)" % (dt * 1000))
        check(bed.client.arp_who_has(bed.node("n1").ip4) == {bed.mac_of("n1")},
              "and the new bed works")
    reap_orphans()


def reap_orphans():
    """Orphans of the killed child tests were reparented to us (a child subreaper) and
    killed by cleanup_stale(); reap them so no zombies are left. Only called when no
    other child of ours is running."""
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return


def check_sigterm_cleanup(children):
    c, info = start_child(children)
    c.send_signal(signal.SIGTERM)
    rc = c.wait(10)
    reap_orphans()
    names = set(info["namespaces"])
    check(rc == -signal.SIGTERM and not (netns_list() & names) and not pid_alive(info["sleep"])
          and not os.path.exists(info["dir"]),
          "SIGTERMed test cleaned up itself and still died of SIGTERM (rc %d)" % rc)


def final_leak_check(child_pids):
    pids = [os.getpid()] + child_pids
    ours = [n for n in netns_list() if any(n.startswith("hft%d-" % p) for p in pids)]
    tmp = tempfile.gettempdir()
    dirs = [d for d in os.listdir(tmp) if any(d.startswith("hft%d-" % p) for p in pids)]
    check(not ours and not dirs, "nothing left: no namespaces, no run folders")


def main():
    global _fail_after
    if "--fail-after" in sys.argv:
        _fail_after = int(sys.argv[sys.argv.index("--fail-after") + 1])
    netns.require_netns()
    try:  # PR_SET_CHILD_SUBREAPER: orphans of the killed child tests become ours to reap
        import ctypes
        ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)
    except Exception:
        pass
    children = []
    try:
        t = time.monotonic()
        bed = TestBed(nodes=3)
        build_ms = (time.monotonic() - t) * 1000
        with bed:
            check_layout(bed)
            check_neighbours(bed)
            srv = check_tcp_and_faults(bed)
            other = check_pause(bed, srv)
            check_observer(bed)
            check_sysctl(bed)
            check_binds(bed)
            check_close(bed, [other])
        check_sigkill_cleanup(children)
        check_sigterm_cleanup(children)
        final_leak_check([c.pid for c in children])
    except Failure as e:
        print("FAIL: %s" % e, flush=True)
        return 1
    finally:
        for c in children:
            if c.poll() is None:
                c.kill()
                c.wait()
        # Beds of SIGKILLed children are removed here too if a check failed midway.
        if children:
            try:
                netns.cleanup_stale()
            except Exception as e:
                print("cleanup_stale: %s" % e, flush=True)
            reap_orphans()
    print("timing: 3-node bed created in %.0f ms; self-test took %.1f s"
          % (build_ms, time.monotonic() - T_START), flush=True)
    print("testbed_selftest: all passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""tests/demo/demo.py (scripts/demo): hafront where it lives, attacked.

Three controller nodes in network namespaces, each with a real Corosync, hafrontd (lease
driver) and an ipmi_sim BMC that the real fence_ipmilan powers off, real backends on each
node: nginx answering a Keystone-like /v3 and /healthcheck, and a three-node MariaDB +
Galera 4 cluster. A client namespace sends traffic through the VIPs: Keystone requests
(http mode, round robin over the three nginx) on `public`, and unique inserts through
the Galera VIP `internal` (tcp mode, single writer). A live line every second shows
members, quorum, who holds each VIP (read from the nodes' kernels), backend states,
requests/s and errors.

Then a short script of incidents: kill -9 the holder's hafrontd, cut a node off the
network, stop a Keystone backend, kill the Galera writer, fail a BMC and then cut its node
off. After each one the nodes are brought back (a fenced node is powered on and boots).
The end is a table: incident, failover time, failed requests, who was fenced, double
holders. The observers and checks are tests/chaos's (invariants of DESIGN.md: one holder,
only on a quorate non-fenced node, no takeover without proof), and the writes go through
tests/netns/galera_jepsen.py's check: every acknowledged write present on every node,
never two Galera nodes taking writes at once.

--nodes 2: the two-node variant (votequorum two_node, a fence race on a split; nginx only:
a two-node Galera cannot keep a primary component through a split without an arbitrator).
--keep: after the script, leave everything running for exploration with hafrontctl
(commands printed) until Ctrl-C. Ctrl-C, the end, or a failure removes everything.

Exit 0 only when every incident recovered, no invariant was violated and (three nodes)
no acknowledged write was lost."""
import argparse
import atexit
import os
import signal
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from appliance import GALERA_PORT, KEYSTONE_PORT, VIPS, Appliance  # noqa: E402  (sets sys.path)

os.environ.setdefault("HAFRONTD", os.path.join(ROOT, "build", "hafrontd"))
os.environ.setdefault("HAFRONTCTL", os.path.join(ROOT, "build", "hafrontctl"))

import netns  # noqa: E402
import chaos  # noqa: E402
from chaos import N1_FENCE_DELAY, PRIORITY_DELAY, Chaos, HarnessError  # noqa: E402
from failover_bed import PoweredOff, Prober, cleanup_shm, pct, save_logs, snapshot_binaries  # noqa: E402

HTTP_MS = 20            # a Keystone request through the VIP this often (new connection each)
HTTP_TIMEOUT_MS = 1000
WRITE_RATE = 100        # Galera inserts/s through the VIP, over 4 connections
SYNC_TIMEOUT = 120.0


def wrap(text, width):
    """text cut into lines of at most width characters, at spaces."""
    out = [""]
    for word in text.split():
        if out[-1] and len(out[-1]) + 1 + len(word) > width:
            out.append("")
        out[-1] = (out[-1] + " " + word).strip()
    return out


def fmt_ms(x):
    if x is None:
        return "-"
    return "%.0f ms" % x if x < 10000 else "%.1f s" % (x / 1000)


class Demo(Chaos):
    """tests/chaos's harness with the appliance's backends, a scripted schedule and a
    table at the end."""

    def __init__(self, bed):
        # Two nodes have no Galera, hence no `internal` VIP.
        self.vips = dict(VIPS) if len(bed.nodes) > 2 else {"public": VIPS["public"]}
        super().__init__(bed, argparse.Namespace(backend_faults=False, faults=None), seed=0)
        self.rows = []           # one per incident, for the table
        self.writer = None
        self.http = None
        self.live_stop = threading.Event()
        self.live_thread = None
        self.galera_result = None

    # ------------------------------------------------------------------ setup
    def make_cluster(self):
        return Appliance(self.bed, galera=not self.two_node)

    def config_text(self):
        if self.two_node:
            return self.cl.config(two_node=True, node_extra={"n1": "fence_delay: %dms" % (N1_FENCE_DELAY * 1000)},
                                  fencing="monitor_interval: 0s, timeout: 30s, priority_delay: %dms" %
                                  (PRIORITY_DELAY * 1000))
        return self.cl.config()

    def setup(self):
        self.say("starting %d nodes (namespaces %sn1..n%d, client, BMC host), Corosync, hafrontd, nginx%s" %
                 (len(self.names), self.bed.prefix, len(self.names), ", Galera (three nodes, rsync SST)"
                  if not self.two_node else ""))
        t = time.monotonic()
        super().setup()
        self.say("cluster steady after %.1f s: %s" % (time.monotonic() - t, self.holders_text()))

    def start_observers(self):
        super().start_observers()
        self.http = Prober(self.bed, self.vips["public"][0], KEYSTONE_PORT, HTTP_MS, HTTP_TIMEOUT_MS, failures=True,
                           name="keystone", http_path="/v3")
        if self.cl.galera:
            from galera_jepsen import Writer
            g = self.cl.galera
            self.writer = Writer(self.bed, self.vips["internal"][0], port=GALERA_PORT, user=g.APP_USER,
                                 password=g.APP_PASSWORD, db=g.DB, conns=4, rate=WRITE_RATE, client="demo")
            self.writer.wait_ready(30)
        print("live view, every second: Corosync members | VIP@node whose kernel answers for it | what hafront "
              "says of the backends (Galera: the writer; the Synced nodes) | what the client got in the last "
              "second", flush=True)
        self.live_thread = threading.Thread(target=self.live, daemon=True)
        self.live_thread.start()

    def stamp(self, t=None):
        """Seconds since the start, and the wall clock (to read next to the daemons' logs)."""
        t = time.monotonic() if t is None else t
        wall = time.time() - (time.monotonic() - t)
        return "%8.3f %s.%03d" % (self.rel(t), time.strftime("%H:%M:%S", time.localtime(wall)),
                                  int(wall * 1000) % 1000)

    def say(self, text):
        print("%s  %s" % (self.stamp(), text), flush=True)

    # ------------------------------------------------------------------ live view
    def any_status(self):
        for n in self.names:
            st = self.cl.status(n) if self.daemon_ok(n) else None
            if st is not None and st["cluster"]["quorate"]:
                return st
        return None

    def http_counts(self, seconds):
        t = time.monotonic() - seconds
        with self.http.lock:
            ok = sum(1 for r in reversed(self.http.ok[-500:]) if r[0] >= t)
            failed = sum(1 for r in reversed(self.http.failed[-500:]) if r[1] >= t)
        return ok, failed

    def live_line(self):
        st = self.any_status()
        parts = []
        if st is None:
            parts.append("no quorate daemon answers")
        else:
            parts.append("members %s (quorate)" % " ".join(sorted(m["name"] for m in st["cluster"]["members"])))
        parts.append("  ".join("%s@%s" % (v, "+".join(self.sampler.valid_now(v)) or "-") for v in self.vips))
        if st is not None:
            svc = {s["name"]: s for s in st["services"]}
            k = svc.get("keystone")
            if k:
                up = [s["name"] for s in k["servers"] if s["state"] == "up"]
                parts.append("keystone servers %d/%d up" % (len(up), len(k["servers"])))
            if "internal" in self.vips:   # the writer the holder of internal sends to
                parts.append("writer %s" % (self.galera_writer() or "NONE"))
        if self.cl.galera:
            synced = sum(1 for n in self.names if (self.cl.galera.status(n, timeout=0.3) or {}).get(
                "wsrep_local_state") in ("4", 4))
            parts.append("galera %d/%d synced" % (synced, len(self.names)))
        ok, failed = self.http_counts(1.0)
        parts.append("keystone %d/s failed %d" % (ok, failed))
        if self.writer:
            c = self.writer.recent(1.0)
            parts.append("writes %d/s failed %d unknown %d" % (c["ok"], c["fail"], c["unknown"]))
        return " | ".join(parts)

    def live(self):
        while not self.live_stop.wait(1.0):
            try:
                print("%s  . %s" % (self.stamp(), self.live_line()), flush=True)
            except Exception as e:   # the view must not take the run down
                print("%s  . (live view: %s)" % (self.stamp(), e), flush=True)

    # ------------------------------------------------------------------ helpers
    def holder(self, vip):
        h = self.sampler.valid_now(vip)
        return h[0] if len(h) == 1 else None

    def holder_status(self, vip):
        """Status of the daemon whose kernel answers for vip (its view is the one clients
        get), else of any quorate daemon."""
        h = self.holder(vip) if vip in self.vips else None
        st = self.cl.status(h) if h and self.daemon_ok(h) else None
        return st if st is not None else self.any_status()

    def galera_writer(self):
        st = self.holder_status("internal")
        if st is None:
            return None
        for s in st["services"]:
            if s["name"] == "galera":
                return s["health"]["writer"]
        return None

    def settle(self):
        """Every node back, Galera whole again, one steady holder per VIP."""
        for n in self.names:
            if not self.healthy(n):
                self.ensure_running(n, time.monotonic() + chaos.MEMBER_TIMEOUT)
        if self.cl.galera:
            for n in self.names:
                if not self.cl.galera.proc[n].alive():
                    self.cl.start_galera(n)
                    self.event("recover restart mariadbd on %s" % n, scheduled=False)
            t = time.monotonic()
            self.cl.galera.wait_synced(self.names, SYNC_TIMEOUT)
            self.event("galera: %s Synced again (%.1f s)" % (", ".join(self.names), time.monotonic() - t),
                       scheduled=False)
        for n in self.names:
            if not self.cl.nginx[n].alive():
                self.cl.start_keystone(n)
        s = self.wait_steady("after the incident")
        time.sleep(1.0)
        return s

    # ------------------------------------------------------------------ the incidents
    def incident(self, title, body):
        """Runs body() (the fault and its repair), waits for the cluster to settle and
        records one row of the table."""
        self.analyse()
        n_viol = len(self.violations)
        n_fail = len(self.failovers)
        writer_before = self.galera_writer() if self.cl.galera else None
        t0 = time.monotonic()
        print(flush=True)
        self.say("== incident %d: %s" % (len(self.rows) + 1, title))
        victim = body()
        self.settle()
        t1 = time.monotonic()
        self.analyse()
        row = {"title": title, "t0": t0, "t1": t1, "victim": victim}
        row["moves"] = [(f[1], f[2], self.holder(f[1]), f[5]) for f in self.failovers[n_fail:]]
        row["violations"] = len(self.violations) - n_viol
        row["fenced"] = sorted({e["node"] for n in self.names for e in self.cl.power_off_events(n, t0)})
        with self.http.lock:
            ok = [r for r in self.http.ok if t0 <= r[1] < t1]
            failed = [r for r in self.http.failed if t0 <= r[0] < t1]
        row["http_failed"] = len(failed)
        row["http_total"] = len(ok) + len(failed)
        row["http_gap"] = self.longest_gap([r[0] for r in ok], t0, t1)
        if self.writer:
            off = time.time() - time.monotonic()
            self.writer.counts()   # reads the log so far
            ops = [a for a in list(self.writer.attempts) if t0 + off <= a[2] < t1 + off]  # (kind, id, start, end, _)
            row["sql"] = {k: sum(1 for o in ops if o[0] == k) for k in ("ok", "fail", "unknown")}
            row["sql_gap"] = self.longest_gap([o[3] for o in ops if o[0] == "ok"], t0, t1, wall=True)
            row["writer"] = (writer_before, self.galera_writer())
        self.rows.append(row)
        self.say("== incident %d done in %.1f s: %s" % (len(self.rows), t1 - t0, self.row_summary(row)))

    @staticmethod
    def longest_gap(times, t0, t1, wall=False):
        """The longest time without a successful answer in [t0, t1] (ms)."""
        if wall:   # the writer logs wall clock times
            off = time.time() - time.monotonic()
            times = [t - off for t in times]
        times = sorted(t for t in times if t0 <= t <= t1)
        edges = [t0] + times + [t1]
        return max(b - a for a, b in zip(edges, edges[1:])) * 1000

    @staticmethod
    def move_text(v, old, new, ms):
        if new == old:
            return "%s stayed on %s" % (v, old)
        return "%s %s->%s %s" % (v, old, new or "nobody", fmt_ms(ms))

    def row_summary(self, row):
        moves = ", ".join(self.move_text(*m) for m in row["moves"])
        return "%s; %d/%d requests failed; fenced: %s; double holders/violations: %d" % (
            moves or "no VIP moved", row["http_failed"], row["http_total"], ", ".join(row["fenced"]) or "nobody",
            row["violations"])

    def kill_holder(self):
        node = self.holder("public")
        t0 = time.monotonic()
        self.register_failovers("kill-daemon", [node], t0)
        self.inject("kill-daemon", node, "holder of public")
        time.sleep(3.0)
        self.repair(node)
        return node

    def partition_holder(self, vip):
        node = self.holder(vip)
        t0 = time.monotonic()
        self.register_failovers("partition", [node], t0)
        self.inject("partition", node, "holder of %s" % vip)
        if self.two_node:
            self.fence_race(node, t0)
        else:
            time.sleep(3.0)
        self.repair(node)
        return node

    def stop_keystone(self):
        node = self.holder("public")
        self.cl.stop_keystone(node)
        self.event("fault   stop Keystone (nginx) on %s, the holder of public" % node)
        time.sleep(4.0)
        self.cl.start_keystone(node)
        self.event("repair  start Keystone on %s" % node)
        return node

    def kill_galera_writer(self):
        node = self.galera_writer()
        self.cl.galera.kill(node)
        self.event("fault   kill -9 mariadbd on %s, the Galera writer" % node)
        time.sleep(4.0)
        try:
            self.cl.start_galera(node)
            self.event("repair  start mariadbd on %s (rejoins by IST)" % node)
        except PoweredOff:
            pass
        return node

    def bmc_then_partition(self, vip):
        node = self.holder(vip)
        self.inject("fail-bmc", node, "holder of %s" % vip)
        time.sleep(0.3)
        t0 = time.monotonic()
        self.register_failovers("fail-bmc+partition", [node], t0)
        self.inject("partition", node, "while its BMC is unreachable")
        time.sleep(5.0)
        self.repair_only(node, "bmc-down")
        if self.two_node:
            self.fence_race(node, t0)
        else:
            # The fence keeps retrying: once the BMC answers, the node goes off.
            t_back = time.monotonic()
            while not self.cl.power_off_events(node, t0) and time.monotonic() < t_back + 30:
                time.sleep(0.1)
            off = self.cl.power_off_events(node, t0)
            self.event("check   " + ("%s powered off by its BMC %.1f s after the BMC came back" %
                                     (node, off[0]["mono_killed"] - t_back) if off else
                                     "%s NOT powered off within 30 s of its BMC coming back" % node), scheduled=False)
        self.repair(node)
        return node

    def script(self):
        steps = [("kill -9 hafrontd on the holder of public", self.kill_holder),
                 ("cut the holder of %s off the network" % ("internal" if not self.two_node else "public"),
                  lambda: self.partition_holder("internal" if not self.two_node else "public")),
                 ("stop a Keystone backend (nginx on the holder of public)", self.stop_keystone)]
        if self.cl.galera:
            steps.append(("kill -9 the Galera writer's mariadbd", self.kill_galera_writer))
        steps.append(("a BMC fails, then its node (holder of public) is cut off",
                      lambda: self.bmc_then_partition("public")))
        for title, body in steps:
            self.incident(title, body)

    # ------------------------------------------------------------------ the end
    def finish_galera(self):
        from galera_jepsen import check, format_result
        self.writer.stop()
        self.say("galera: writer stopped; reading every row from every node (wsrep_sync_wait=1)")
        self.galera_result = check(self.cl.galera, self.writer.log, self.names)
        for line in format_result(self.galera_result):
            print("          " + line, flush=True)

    def writer_path(self, row):
        """The Galera writers that took client writes during the incident, in order (from
        the committed rows' node and time: galera_jepsen's segments)."""
        if self.galera_result is None:
            w0, w1 = row["writer"]
            return [w0] if w0 == w1 else [w0, w1]
        off = time.time() - time.monotonic()
        path = [row["writer"][0]]
        for t, a, b in self.galera_result["changes"]:
            if row["t0"] + off <= t <= row["t1"] + off:
                path.append(b)
        return path

    def table(self):
        header = ["#", "incident", "VIP failover (first ARP answer)", "Keystone requests", "Galera writes",
                  "fenced", "double holders"]
        rows = []
        for i, r in enumerate(self.rows, 1):
            moves = [self.move_text(*m) for m in r["moves"]] or ["no VIP moved"]
            http = ["%d of %d failed" % (r["http_failed"], r["http_total"]), "longest gap %s" % fmt_ms(r["http_gap"])]
            sql = ["-"]
            if "sql" in r:
                path = self.writer_path(r)
                sql = ["%d failed, %d unknown" % (r["sql"]["fail"], r["sql"]["unknown"]),
                       "longest gap %s" % fmt_ms(r["sql_gap"]),
                       "writer " + ("->".join(path) if len(path) > 1 else "stayed on %s" % path[0])]
            rows.append([[str(i)], wrap(r["title"], 34), moves, http, sql, [", ".join(r["fenced"]) or "nobody"],
                         [str(r["violations"])]])
        widths = [max(len(header[c]), max((len(x) for row in rows for x in row[c]), default=0))
                  for c in range(len(header))]
        line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
        print()
        print(line(header))
        print(line(["-" * w for w in widths]))
        for row in rows:
            for k in range(max(len(cell) for cell in row)):
                print(line([cell[k] if k < len(cell) else "" for cell in row]))
        arp = [ms for r in self.rows for _, _, _, ms in r["moves"] if ms is not None]
        if arp:
            print("VIP failovers: %d, first ARP answer from the new holder after p50 %.0f ms, max %.0f ms" %
                  (len(arp), pct(arp, 50), max(arp)))
        if self.two_node and any(m[1] == m[2] for r in self.rows for m in r["moves"]):
            print("Two nodes: a cut holder wins the fence race (priority_delay: the side that serves survives). "
                  "Where the cut also separates it from the clients, as here, they wait for the heal: hafront has "
                  "no gateway reachability check that would make that side lose the race.")

    def verdict(self):
        ok = not self.violations
        lines = ["double holders and other invariant violations: %d" % len(self.violations)]
        if self.galera_result is not None:
            g = self.galera_result
            ok = ok and g["ok"]
            lines.append("galera: %d acknowledged writes, %d lost, %d failed writes found committed, "
                         "single writer violations %d" % (g["ok_count"], g["lost"], g["phantom"], g["violations"]))
        return ok, lines


def report(demo, completed):
    """The table, the verdict and the last line; returns the exit code."""
    if demo is not None and demo.rows:
        demo.table()
    ok = False
    if completed:
        ok, lines = demo.verdict()
        for line in lines:
            print(line)
    print("demo incidents=%d violations=%d %s" % (len(demo.rows) if demo else 0,
                                                  len(demo.violations) if demo else 0,
                                                  "PASS" if ok and completed else "FAIL"), flush=True)
    return 0 if ok and completed else 1


def keep(demo, bed):
    """--keep: the cluster stays up, with its live view, until Ctrl-C."""
    print("\nThe cluster stays up until Ctrl-C (the live view goes on). Try:")
    for n in demo.names:
        print("  %s --socket %s status" % (os.environ["HAFRONTCTL"], demo.cl.h[n].socket))
    print("  ip netns exec %s curl -s http://%s:%d/v3" % (bed.client.ns, demo.vips["public"][0], KEYSTONE_PORT))
    print("  ip netns exec %s ip link set eth0 down    # cut n1 off (up again: ... up)" % bed.nodes[0].ns,
          flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, choices=(2, 3), default=3)
    ap.add_argument("--keep", action="store_true", help="leave the cluster running after the script until Ctrl-C")
    ap.add_argument("--logs", help="copy every process log of the run into this folder")
    args = ap.parse_args()
    netns.require_netns()
    signal.signal(signal.SIGTERM, lambda sig, frame: sys.exit(128 + sig))
    corosync_pids = []
    atexit.register(lambda: cleanup_shm(corosync_pids))
    demo = None
    completed = False
    rc = None
    with netns.TestBed(nodes=args.nodes, mgmt=True) as bed:
        snapshot_binaries(bed.dir)
        demo = Demo(bed)
        demo.corosync_pids_out = corosync_pids
        try:
            demo.setup()
            demo.script()
            if demo.writer:
                demo.finish_galera()
            time.sleep(1.5)   # the observers' readers lag a little (as at the end of a chaos run)
            demo.analyse(final=True)
            completed = True
            if args.keep:
                rc = report(demo, completed)
                keep(demo, bed)
        except HarnessError as e:
            print("demo: the run did not complete: %s" % e, flush=True)
        except Exception:
            traceback.print_exc()
            print("demo: the run did not complete (error above)", flush=True)
        finally:
            if not completed:
                print(bed.logs_tail(15), flush=True)
            demo.live_stop.set()
            if getattr(demo, "sampler", None):
                demo.sampler.stop()
            for pr in list(getattr(demo, "probers", {}).values()) + [demo.http]:
                if pr:
                    pr.stop()
            if args.logs:
                save_logs(bed, args.logs)
            if getattr(demo, "cl", None):
                demo.cl.close()
            for x in getattr(getattr(demo, "cl", None), "h", {}).values():
                if x.proc and x.proc.alive():
                    x.proc.kill(signal.SIGCONT)
    cleanup_shm(corosync_pids)
    if rc is None:
        rc = report(demo, completed)
    else:
        print("demo: stopped; everything it started is gone", flush=True)
    return rc


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:   # the test bed has cleaned up already
        print("demo: interrupted; everything it started is gone", flush=True)
        sys.exit(130)

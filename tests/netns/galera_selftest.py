"""Self-test of galera.py and galera_jepsen.py on a 3-node netns bed (root; exits 77 with
a SKIP line when namespaces are unavailable). No hafront involved.

Phase 1: g.start(); a Writer (4 conns, 200/s) from the client namespace straight to n1's
address; after ~3 s kill -9 n3, measure its eviction (n1 reports a Primary component of
2), wait until n1, n2 are Synced, start_node(n3) (--wsrep-recover + start position), wait
until all three are Synced (rejoin time, IST or SST from the error log), write 1 s more,
stop the writer: check() must report lost 0, phantom 0, violations 0.
Phase 2 (the checker CAN fail): two writers at once, to n1 and to n2, for ~2 s: check()
must report violations > 0 (and still lost 0, phantom 0).
Prints the figures; exit 0 on success, 1 with a FAIL line otherwise. Everything is
stopped and the namespaces are removed at the end.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import netns  # noqa: E402

netns.require_netns()
for path in ("/usr/sbin/mariadbd", "/usr/bin/mariadb-install-db", "/usr/lib/galera/libgalera_smm.so",
             "/usr/bin/rsync"):
    if not os.path.exists(path):   # scripts/setup installs them: missing is a failure, not a skip
        sys.exit("FAIL: %s is not installed (scripts/setup installs it)" % path)
try:
    import pymysql  # noqa: F401,E402
except ImportError:
    sys.exit("FAIL: pymysql is not installed for %s (Debian: python3-pymysql, which scripts/setup installs)" %
             sys.executable)

import galera  # noqa: E402
from galera_jepsen import Writer, check, format_result  # noqa: E402

failures = []


def expect(cond, what):
    print("%s: %s" % ("ok" if cond else "FAIL", what), flush=True)
    if not cond:
        failures.append(what)


def main():
    t_all = time.monotonic()
    with netns.TestBed(nodes=3) as bed:
        g = galera.Galera(bed, nodes=["n1", "n2", "n3"])
        writers = []
        try:
            g.start(timeout=120)
            print("cluster up: " + ", ".join("%s %.1f s" % kv for kv in g.timings.items()), flush=True)
            st = g.status("n1")
            expect(g.is_synced(st, 3), "n1 Synced in a Primary component of 3: %s" % galera.short_status(st))

            # ---------------------------------------------------------------- phase 1
            w = Writer(bed, g.ip("n1"), user=g.APP_USER, password=g.APP_PASSWORD, conns=4, rate=200,
                       client="selftest-1")
            writers.append(w)
            w.wait_ready(10)
            t_w = time.time()
            time.sleep(3)
            c = w.counts()
            print("writer to n1: %d ok in %.1f s (%.0f inserts/s), fail %d, unknown %d"
                  % (c["ok"], time.time() - t_w, c["ok"] / (time.time() - t_w), c["fail"], c["unknown"]),
                  flush=True)
            t_kill = time.monotonic()
            t_kill_wall = time.time()
            g.kill("n3")
            evicted = None
            while time.monotonic() - t_kill < 30:
                s = g.status("n1", timeout=0.5)
                if s and s.get("wsrep_cluster_size") == 2 and s.get("wsrep_cluster_status") == "Primary":
                    evicted = time.monotonic() - t_kill
                    break
                time.sleep(0.05)
            expect(evicted is not None, "n3 evicted after kill -9: %s s"
                   % ("%.2f" % evicted if evicted is not None else "never"))
            g.wait_synced(["n1", "n2"], 30)
            during = w.recent(time.monotonic() - t_kill + 0.5)
            print("writes while n3 was being evicted and after: %s" % during, flush=True)
            t_re = time.monotonic()
            # through a caller's spawn(argv, log_path), as a power model would register it
            spawned = []
            g.start_node("n3", spawn=lambda argv, log: spawned.append(bed.node("n3").spawn(argv, log_path=log))
                         or spawned[-1])
            expect(len(spawned) == 2 and g.proc["n3"] is spawned[-1],
                   "start_node used the given spawn for --wsrep-recover and mariadbd")
            g.wait_synced(["n1", "n2", "n3"], 60)
            rejoin = time.monotonic() - t_re
            how = g.joined_by("n3")
            print("n3 rejoined in %.2f s by %s (--wsrep-recover took %.2f s of it; recovered position %s)"
                  % (rejoin, how, g.timings.get("recover n3", -1), g.last_recover.get("n3")),
                  flush=True)
            expect(how in ("IST", "SST"), "the error log tells IST or SST (%s)" % how)
            time.sleep(1)
            c = w.stop()
            gap = w.longest_gap(since=t_kill_wall - 1)
            lat = max((a[3] - a[2] for a in w.attempts if a[3] >= t_kill_wall), default=0.0)
            print("longest write stall from the kill on: %.2f s (the slowest INSERT took %.2f s)" % (gap[0], lat),
                  flush=True)
            r1 = check(g, w.log, ["n1", "n2", "n3"])
            print("\n".join(format_result(r1)), flush=True)
            expect(r1["ok_count"] > 100, "phase 1 had acknowledged writes (%d)" % r1["ok_count"])
            expect(r1["lost"] == 0 and r1["phantom"] == 0 and r1["differ"] == 0,
                   "phase 1: lost %d, phantom %d, differ %d" % (r1["lost"], r1["phantom"], r1["differ"]))
            expect(r1["violations"] == 0 and r1["ok"], "phase 1: single writer n1, no violation (%d)"
                   % r1["violations"])

            # ---------------------------------------------------------------- phase 2
            wa = Writer(bed, g.ip("n1"), user=g.APP_USER, password=g.APP_PASSWORD, conns=2, rate=50,
                        client="selftest-2a")
            wb = Writer(bed, g.ip("n2"), user=g.APP_USER, password=g.APP_PASSWORD, conns=2, rate=50,
                        client="selftest-2b")
            writers += [wa, wb]
            wa.wait_ready(10)
            wb.wait_ready(10)
            time.sleep(2)
            wa.stop()
            wb.stop()
            r2 = check(g, [wa.log, wb.log], ["n1", "n2", "n3"])
            print("\n".join(format_result(r2, max_changes=3)), flush=True)
            expect(r2["lost"] == 0 and r2["phantom"] == 0, "phase 2: lost %d, phantom %d"
                   % (r2["lost"], r2["phantom"]))
            expect(r2["violations"] > 0 and not r2["ok"],
                   "phase 2: two writers at once are caught (%d violations)" % r2["violations"])
        finally:
            for w in writers:
                try:
                    w.stop(5)
                except Exception as e:  # noqa: BLE001
                    print("writer stop: %s" % e)
            t_close = time.monotonic()
            g.close()
            print("galera stopped in %.1f s" % (time.monotonic() - t_close), flush=True)
    left = [n for n in netns._list_netns() if n.startswith(bed.prefix)]
    expect(not left, "no namespace of the bed left (%s)" % left)
    print("total %.1f s" % (time.monotonic() - t_all))
    if failures:
        print("FAIL: %s" % "; ".join(failures))
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    try:
        rc = main()
    except Exception as e:  # noqa: BLE001 - print one clear line, then the traceback
        import traceback
        traceback.print_exc()
        print("FAIL: %s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else ""), flush=True)
        rc = 1
    sys.exit(rc)

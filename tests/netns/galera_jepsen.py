"""Jepsen-style writer and checker for a Galera cluster behind hafront's VIP.

The question: through hafront's Galera VIP (a TCP proxy, `balance: single-writer`,
`on_server_down: close-sessions`) under faults, (1) is every acknowledged write present on
every node at the end, and (2) did no two Galera nodes take client writes at the same time?

Table: demo.writes (id BIGINT PRIMARY KEY, client VARCHAR(32), node VARCHAR(32),
ts DATETIME(6)) -- made by galera.Galera.start().

WRITER (run in the client namespace; the caller does bed.client.spawn([...]) or uses the
Writer class below):

    /usr/bin/python3 galera_jepsen.py write --host VIP --port 3306 --user U --password P \\
        --db demo --conns 4 --rate 200 --log FILE [--client NAME] [--id-base N]

runs until SIGTERM/SIGINT (then lets every thread finish its statement, writes `end` and
exits 0). Each of `conns` threads keeps one pymysql connection (connect_timeout 1 s, read
and write timeout 2 s, autocommit), reconnects after any error after a 20-50 ms pause, and
inserts ids that no other thread or writer uses (id = id_base + seq * conns + thread;
id_base is random in [0, 2^60) in steps of 2^30 unless given), with
`INSERT INTO writes VALUES (%s, %s, @@wsrep_node_name, NOW(6))`, paced so that all threads
together make `rate` attempts/s (no bursts to catch up). Log lines (each flushed):

    start PID TIME CLIENT ID_BASE CONNS RATE   at once
    ready TIME                                 once the first connection worked
    ok|fail|unknown ID START END DETAIL        one per attempt (START/END: time.time(), us)
    end TIME                                   after SIGTERM/SIGINT, all threads done

DETAIL is the thread ("t0") then, for failures, the errno and message. Classification:
  ok      - the server acknowledged the INSERT (autocommit: committed).
  fail    - the server answered with an error (errno < 2000: 1047 not ready, 1213
            deadlock/certification, 1205 lock wait, ...): not committed; or the connection
            could not be made (the statement was never sent; errno 2003 etc., "connect").
  unknown - the statement was sent but no answer came (lost connection 2013, gone away
            2006, timeout, any other exception): it may or may not have committed.

CHECKER: check(galera, log_path, names) (log_path: a path or a list of paths, e.g. two
writers) waits until the named nodes are Synced in a Primary component, reads every row of
demo.writes from every named node with SET SESSION wsrep_sync_wait=1, restricts it to the
ids in the logs, and computes:
  attempts, ok, fail, unknown, unknown_committed (present on the nodes),
  lost      - logged ok but missing on some node (must be 0),
  phantom   - logged fail but present on some node (must be 0),
  differ    - ids whose row is not the same (or not present) on every node,
  single-writer: the committed rows sorted by ts (NOW(6) of the executing node; every
  namespace shares the host clock) are cut into segments of the same `node`; each change
  of segment is a writer change (time, from, to). A VIOLATION is a node A that writes again
  less than `window` (1 s) after another node took over: for a change A -> B at segment i,
  if a later segment of A starts less than 1 s after A's last write before segment i
  (A..B..A, or A..B..C..A, with the B.. part shorter than 1 s), that is one violation:
  two nodes were taking client writes at (about) the same time.
result["ok"] is lost == 0 and phantom == 0 and differ == 0 and violations == 0. format_result(result)
gives a few printable lines.

Limits of the single-writer rule:
  - ts is the statement start on the executing node (NOW(6)), not its commit time: a
    statement that started on the old writer just before a switch and commits later shows
    at its start time, so it cannot cause a false violation; but an overlap shorter than
    the time between two inserts (1 / rate) is invisible, and an overlap that happens
    between two checked writers' rows is only seen as far as rows were sampled.
  - A legitimate fail-back to A less than 1 s after a failover to B counts as a violation
    (the window is a heuristic: with hafront's health checks a real fail-back takes longer).
  - Two writers overlapping for longer than 1 s with only ONE of them writing in the
    second (e.g. A..B for 2 s then A again) is a fail-back, not a violation.
  - Only rows that committed are seen: writes that a node accepted but that did not commit
    (fail/unknown) do not appear; unknown rows that did commit are included.
  - The rule needs the clocks of the nodes to agree (true here: one host clock).
"""
import argparse
import datetime
import os
import random
import signal
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
INSERT = "INSERT INTO writes VALUES (%s, %s, @@wsrep_node_name, NOW(6))"
KINDS = ("ok", "fail", "unknown")


# ----------------------------------------------------------------------------- writer
def _classify_exec_error(e):
    """(kind, detail) for an exception raised while the INSERT was sent/executed."""
    import pymysql
    code = None
    if isinstance(e, pymysql.err.MySQLError) and e.args and isinstance(e.args[0], int):
        code = e.args[0]
    msg = " ".join(str(a) for a in (e.args[1:] if code is not None else e.args)) or type(e).__name__
    msg = msg.replace("\n", " ")[:200]
    if code is not None and 0 < code < 2000:
        return "fail", "%d %s" % (code, msg)       # the server answered with an error
    return "unknown", "%s %s %s" % (code if code is not None else "-", type(e).__name__, msg)


def write_main(args):
    import pymysql
    stop = threading.Event()
    lock = threading.Lock()
    log = open(args.log, "a", buffering=1)
    client = args.client or "w%d" % os.getpid()
    id_base = args.id_base if args.id_base is not None else random.getrandbits(30) << 30
    ready = threading.Event()

    def emit(line):
        with lock:
            log.write(line + "\n")
            log.flush()

    emit("start %d %.6f %s %d %d %g" % (os.getpid(), time.time(), client, id_base, args.conns, args.rate))

    def on_signal(sig, frame):
        stop.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    interval = args.conns / float(args.rate) if args.rate > 0 else 0.0

    def worker(t):
        conn = None
        seq = 0
        next_t = time.monotonic() + interval * t / max(1, args.conns)
        while not stop.is_set():
            now = time.monotonic()
            if next_t > now:
                if stop.wait(next_t - now):
                    break
            next_t = max(next_t + interval, time.monotonic() - interval)
            rid = id_base + seq * args.conns + t
            seq += 1
            start = time.time()
            if conn is None:
                try:
                    conn = pymysql.connect(host=args.host, port=args.port, user=args.user,
                                           password=args.password, database=args.db,
                                           connect_timeout=1, read_timeout=2, write_timeout=2,
                                           autocommit=True)
                    if not ready.is_set():
                        ready.set()
                        emit("ready %.6f" % time.time())
                except Exception as e:  # noqa: BLE001
                    code = e.args[0] if getattr(e, "args", None) and isinstance(e.args[0], int) else "-"
                    msg = str(e.args[1] if getattr(e, "args", None) and len(e.args) > 1 else e)
                    emit("fail %d %.6f %.6f t%d connect %s %s" % (rid, start, time.time(), t, code,
                                                                  msg.replace("\n", " ")[:200]))
                    conn = None
                    stop.wait(random.uniform(0.02, 0.05))
                    continue
            try:
                with conn.cursor() as c:
                    c.execute(INSERT, (rid, client))
                emit("ok %d %.6f %.6f t%d" % (rid, start, time.time(), t))
            except Exception as e:  # noqa: BLE001
                end = time.time()
                kind, detail = _classify_exec_error(e)
                emit("%s %d %.6f %.6f t%d %s" % (kind, rid, start, end, t, detail))
                try:
                    conn.close()
                except Exception:  # noqa: BLE001
                    pass
                conn = None
                stop.wait(random.uniform(0.02, 0.05))
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                pass

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(args.conns)]
    for th in threads:
        th.start()
    while not stop.is_set():
        stop.wait(0.5)
    for th in threads:
        th.join(5)
    emit("end %.6f" % time.time())
    log.close()
    return 0


# ----------------------------------------------------------------------------- log parsing
def parse_log(paths):
    """{id: {"kind", "start", "end", "detail", "log"}} of every attempt in the logs, and
    the list of `start` records [(pid, time, client, id_base)]."""
    if isinstance(paths, str):
        paths = [paths]
    attempts, starts = {}, []
    for path in paths:
        with open(path, errors="replace") as f:
            for line in f:
                if not line.endswith("\n"):
                    break  # a line being written
                parts = line.rstrip("\n").split(" ", 4)
                if parts[0] in KINDS and len(parts) >= 4:
                    try:
                        attempts[int(parts[1])] = {"kind": parts[0], "start": float(parts[2]),
                                                   "end": float(parts[3]),
                                                   "detail": parts[4] if len(parts) > 4 else "",
                                                   "log": path}
                    except ValueError:
                        continue
                elif parts[0] == "start":
                    p = line.split()
                    starts.append((int(p[1]), float(p[2]), p[3], int(p[4])))
    return attempts, starts


class Writer:
    """The writer CLI spawned in a bed namespace (default bed.client); follows its log.

        w = Writer(bed, "192.0.2.100", user=g.APP_USER, password=g.APP_PASSWORD)
        w.wait_ready(10)
        ... faults ...
        print(w.recent(1.0))     # {"ok": .., "fail": .., "unknown": ..} ending in the last 1 s
        w.stop()
    """

    def __init__(self, bed, host, port=3306, user="app", password="App-s3cret-Kd8", db="demo",
                 conns=4, rate=200, log=None, client=None, node=None, id_base=None):
        self.bed = bed
        self.node = node or bed.client
        self.log = log or os.path.join(bed.dir, "writer-%s-%d.log" % (host, int(time.time() * 1000)))
        self.client = client or "w-%s" % host
        argv = [PYTHON, "-u", os.path.abspath(__file__), "write", "--host", host, "--port", str(port),
                "--user", user, "--password", password, "--db", db, "--conns", str(conns),
                "--rate", str(rate), "--log", self.log, "--client", self.client[:32]]
        if id_base is not None:
            argv += ["--id-base", str(id_base)]
        open(self.log, "a").close()
        self.proc = self.node.spawn(argv, log_path=self.log + ".out")
        self._off = 0
        self._buf = b""
        self._lock = threading.Lock()
        self.attempts = []      # (kind, id, start, end, detail) in log order
        self.ready = False
        self.ended = False

    def _poll(self):
        with self._lock:   # the demo's live view reads from another thread
            self._poll_locked()

    def _poll_locked(self):
        try:
            with open(self.log, "rb") as f:
                f.seek(self._off)
                data = f.read()
        except OSError:
            return
        self._off += len(data)
        self._buf += data
        *lines, self._buf = self._buf.split(b"\n")
        for raw in lines:
            parts = raw.decode("utf-8", "replace").split(" ", 4)
            if parts[0] in KINDS and len(parts) >= 4:
                self.attempts.append((parts[0], int(parts[1]), float(parts[2]), float(parts[3]),
                                      parts[4] if len(parts) > 4 else ""))
            elif parts[0] == "ready":
                self.ready = True
            elif parts[0] == "end":
                self.ended = True

    def counts(self):
        self._poll()
        c = dict.fromkeys(KINDS, 0)
        for a in self.attempts:
            c[a[0]] += 1
        return c

    def ok_count(self):
        return self.counts()["ok"]

    def recent(self, seconds):
        """Counts of attempts that ended in the last `seconds` (wall clock)."""
        self._poll()
        since = time.time() - seconds
        c = dict.fromkeys(KINDS, 0)
        for a in reversed(self.attempts):
            if a[3] < since:
                break
            c[a[0]] += 1
        return c

    def longest_gap(self, since=None, until=None):
        """(seconds, from_t, to_t): the longest time between two consecutive
        acknowledged writes (ok END times, wall clock) within [since, until]; the
        longest write stall a client saw."""
        self._poll()
        ends = sorted(a[3] for a in self.attempts if a[0] == "ok"
                      and (since is None or a[3] >= since) and (until is None or a[3] <= until))
        best = (0.0, None, None)
        for x, y in zip(ends, ends[1:]):
            if y - x > best[0]:
                best = (y - x, x, y)
        return best

    def wait_ready(self, timeout=10.0):
        """Wait until a connection worked (the `ready` line); raises TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            self._poll()
            if self.ready:
                return True
            if not self.proc.alive():
                raise RuntimeError("writer exited (%s): %s" % (self.proc.returncode, self.proc.log_text()[-1500:]))
            if time.monotonic() > deadline:
                raise TimeoutError("writer to %s not ready in %.0f s; log tail: %s"
                                   % (self.client, timeout, self.proc.log_text()[-500:]))
            time.sleep(0.05)

    def wait_ok(self, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        while self.ok_count() < n:
            if time.monotonic() > deadline:
                raise TimeoutError("writer %s: fewer than %d ok in %.0f s (%s)" % (self.client, n, timeout, self.counts()))
            time.sleep(0.05)

    def stop(self, timeout=10.0):
        """SIGTERM, wait for `end` (SIGKILL after timeout). Returns counts()."""
        if self.proc.alive():
            self.proc.kill(signal.SIGTERM, group=False)
            try:
                self.proc.wait(timeout)
            except Exception:  # noqa: BLE001
                self.proc.kill(signal.SIGKILL)
                self.proc.wait(5)
        return self.counts()


# ----------------------------------------------------------------------------- checker
def _epoch(ts):
    if isinstance(ts, datetime.datetime):
        return ts.timestamp()   # naive: server time_zone=SYSTEM, same host clock/TZ
    return float(ts)


def single_writer(rows, window=1.0):
    """rows: [(id, node, ts_epoch)] of committed writes. Returns (segments, changes,
    violations): segments [(node, first_ts, last_ts, count)], changes [(ts, from, to)],
    violations [{"node", "other", "last_before", "again", "gap"}] (see module doc)."""
    rows = sorted(rows, key=lambda r: (r[2], r[0]))
    segs = []
    for rid, node, ts in rows:
        if segs and segs[-1][0] == node:
            s = segs[-1]
            segs[-1] = (node, s[1], ts, s[3] + 1)
        else:
            segs.append((node, ts, ts, 1))
    changes = [(segs[i][1], segs[i - 1][0], segs[i][0]) for i in range(1, len(segs))]
    violations = []
    for i in range(1, len(segs)):
        a = segs[i - 1][0]
        last_a = segs[i - 1][2]
        for k in range(i + 1, len(segs)):
            if segs[k][1] - last_a >= window:
                break
            if segs[k][0] == a:
                violations.append({"node": a, "other": segs[i][0], "last_before": last_a,
                                   "again": segs[k][1], "gap": segs[k][1] - last_a})
                break
    return segs, changes, violations


def check(galera, log_path, names=None, timeout=60.0, window=1.0, size=None):
    """Run the check (see module doc). Returns a dict; result["ok"] is the verdict."""
    names = list(names or galera.names)
    attempts, starts = parse_log(log_path)
    t0 = time.monotonic()
    galera.wait_synced(names, timeout, size=size)
    synced_after = time.monotonic() - t0
    per_node = {}
    for n in names:
        rows = galera.sql(n, "SELECT id, client, node, ts FROM demo.writes", sync_wait=True,
                          timeout=max(5.0, timeout))
        per_node[n] = {r[0]: (r[1], r[2], _epoch(r[3])) for r in rows if r[0] in attempts}
    counts = dict.fromkeys(KINDS, 0)
    for a in attempts.values():
        counts[a["kind"]] += 1
    all_ids = set()
    for rows in per_node.values():
        all_ids |= set(rows)
    lost, phantom, differ, unknown_committed = [], [], [], 0
    for rid, a in attempts.items():
        present = [n for n in names if rid in per_node[n]]
        if a["kind"] == "ok" and len(present) < len(names):
            lost.append((rid, sorted(set(names) - set(present))))
        elif a["kind"] == "fail" and present:
            phantom.append((rid, present))
        elif a["kind"] == "unknown" and present:
            unknown_committed += 1
    for rid in all_ids:
        vals = [per_node[n].get(rid) for n in names]
        if any(v != vals[0] for v in vals):
            differ.append(rid)
    union = {}
    for n in names:
        for rid, (client, node, ts) in per_node[n].items():
            union.setdefault(rid, (rid, node, ts))
    segs, changes, violations = single_writer(list(union.values()), window)
    by_node = {}
    for _, node, _ in union.values():
        by_node[node] = by_node.get(node, 0) + 1
    span = [min((a["start"] for a in attempts.values()), default=0),
            max((a["end"] for a in attempts.values()), default=0)]
    res = {
        "logs": [log_path] if isinstance(log_path, str) else list(log_path),
        "names": names, "attempts": len(attempts), "ok_count": counts["ok"],
        "fail": counts["fail"], "unknown": counts["unknown"], "unknown_committed": unknown_committed,
        "committed": len(union), "rows_by_node": by_node,
        "lost": len(lost), "lost_ids": lost[:20], "phantom": len(phantom), "phantom_ids": phantom[:20],
        "differ": len(differ), "differ_ids": sorted(differ)[:20],
        "segments": segs, "changes": changes, "violations": len(violations),
        "violation_list": violations, "window": window, "synced_after": synced_after,
        "duration": span[1] - span[0], "writers": starts,
    }
    res["ok"] = res["lost"] == 0 and res["phantom"] == 0 and res["differ"] == 0 and res["violations"] == 0
    return res


def _hms(t):
    return datetime.datetime.fromtimestamp(t).strftime("%H:%M:%S.%f")[:-3]


def format_result(res, max_changes=8):
    """A few printable lines describing a check() result."""
    rate = res["attempts"] / res["duration"] if res["duration"] > 0 else 0.0
    lines = [
        "galera check %s: %d attempts in %.1f s (%.0f/s): ok %d, fail %d, unknown %d "
        "(%d committed); %d rows committed %s"
        % ("PASS" if res["ok"] else "FAIL", res["attempts"], res["duration"], rate, res["ok_count"],
           res["fail"], res["unknown"], res["unknown_committed"], res["committed"],
           " ".join("%s:%d" % kv for kv in sorted(res["rows_by_node"].items()))),
        "  lost %d (acknowledged, missing on a node)  phantom %d (failed, yet present)  "
        "rows differing between %s: %d" % (res["lost"], res["phantom"], ",".join(res["names"]), res["differ"]),
        "  single writer: %d segments, %d writer changes, %d violations (a node writing again "
        "< %.1f s after another took over)" % (len(res["segments"]), len(res["changes"]),
                                                res["violations"], res["window"]),
    ]
    if res["lost_ids"]:
        lines.append("  lost ids (id, missing on): %s" % res["lost_ids"][:5])
    if res["phantom_ids"]:
        lines.append("  phantom ids (id, present on): %s" % res["phantom_ids"][:5])
    for t, a, b in res["changes"][:max_changes]:
        lines.append("  writer change at %s: %s -> %s" % (_hms(t), a, b))
    if len(res["changes"]) > max_changes:
        lines.append("  ... %d more writer changes" % (len(res["changes"]) - max_changes))
    for v in res["violation_list"][:3]:
        lines.append("  violation: %s wrote at %s, %s took over, %s wrote again at %s (%.3f s)"
                     % (v["node"], _hms(v["last_before"]), v["other"], v["node"], _hms(v["again"]), v["gap"]))
    return lines


# ----------------------------------------------------------------------------- CLI
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write", help="insert rows until SIGTERM, logging every attempt")
    w.add_argument("--host", required=True)
    w.add_argument("--port", type=int, default=3306)
    w.add_argument("--user", required=True)
    w.add_argument("--password", required=True)
    w.add_argument("--db", default="demo")
    w.add_argument("--conns", type=int, default=4)
    w.add_argument("--rate", type=float, default=200.0)
    w.add_argument("--log", required=True)
    w.add_argument("--client", default=None, help="the client column (default w<pid>)")
    w.add_argument("--id-base", type=int, default=None)
    s = sub.add_parser("summary", help="counts of a writer log (no database needed)")
    s.add_argument("log", nargs="+")
    args = ap.parse_args(argv)
    if args.cmd == "write":
        if args.conns < 1 or args.rate <= 0:
            ap.error("--conns must be >= 1 and --rate > 0")
        return write_main(args)
    attempts, _ = parse_log(args.log)
    c = dict.fromkeys(KINDS, 0)
    for a in attempts.values():
        c[a["kind"]] += 1
    print("attempts %d ok %d fail %d unknown %d" % (len(attempts), c["ok"], c["fail"], c["unknown"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

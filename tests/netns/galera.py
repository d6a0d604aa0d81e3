"""A real MariaDB Galera cluster on the netns test bed: one mariadbd per node namespace.

    import netns, galera
    with netns.TestBed(nodes=3, mgmt=True) as bed:
        g = galera.Galera(bed, nodes=["n1", "n2", "n3"])
        try:
            g.start(timeout=120)        # install-db, bootstrap n1, join n2, n3 (rsync SST)
            g.kill("n3")                 # kill -9
            g.wait_synced(["n1", "n2"], 30)
            g.start_node("n3")           # --wsrep-recover, then --wsrep-start-position: IST
            g.wait_synced(["n1", "n2", "n3"], 60)
            rows = g.sql("n1", "SELECT COUNT(*) FROM demo.writes")
        finally:
            g.close()

Layout: everything of node X lives in os.path.join(bed.dir, "galera-X"): my.cnf, data/
(the datadir, owned by mysql), mysqld.sock, mysqld.pid, error.log (mariadbd's error log,
where SST/IST shows), mariadbd-<n>.out (stdout/stderr of each start) and recover-<n>.log.
bed.dir (mkdtemp: 0700) is opened to 0711 so user mysql can reach its folder.

mariadbd runs as user=mysql (rsync SST drops to nobody and fails as root), listens on
<node ip>:3306, Galera replication (gmcast) on <node ip>:4567 and IST on <node ip>:4568:
every node has its own namespace, so the default ports never collide. Fast EVS timeouts
(evs.suspect_timeout=PT1S, evs.inactive_timeout=PT2S, evs.keepalive_period=PT0.2S,
evs.inactive_check_period=PT0.5S) evict a dead node in 1.2-2.2 s (measured). They NEED
evs.install_timeout=PT2S and evs.join_retrans_period=PT0.3S as well: with only the four
above, evs.install_timeout silently becomes inactive_timeout/2 = PT1S, equal to the default
join_retrans_period PT1S, and the membership protocol often cannot agree ("install timer
expired", "no install message received"): after a kill -9 the two survivors fell apart
into two non-Primary singletons for good (5 of 6 runs), and joins failed with "failed to
reach primary view". With the two extra options: 10 of 10 kill/rejoin rounds clean.
gcache 16 MiB, buffer pool 32 MiB, innodb_flush_log_at_trx_commit=2 (a write() per commit,
fsync once a second: a killed process loses nothing; the simulated power-off only kills
processes, the host's page cache stays), binary log off. Extra provider options:
Galera(..., provider_options="a=b;c=d") (appended, so they win).

Every mariadbd is started with node.spawn() (so it is a bed Proc that the bed kills at
close), or with the caller's spawn(argv, log_path) in start_node (for a power model that
registers the process). status() and sql() go through the node's unix socket as root
(socket authentication): unix sockets are not scoped by network namespace, so the host
reaches every node's socket directly, also while its data network is partitioned.

Not handled: a cluster whose nodes were ALL killed. Then every grastate.dat says
safe_to_bootstrap: 0 and someone must pick the most advanced node (wsrep-recover on each)
and bootstrap it with --wsrep-new-cluster; start_node() only rejoins a node to a running
Primary component. Standard library + pymysql (Debian's python3-pymysql, /usr/bin/python3).
"""
import os
import pwd
import re
import signal
import subprocess
import threading
import time

import pymysql

MARIADBD = "/usr/sbin/mariadbd"
INSTALL_DB = "/usr/bin/mariadb-install-db"
PROVIDER = "/usr/lib/galera/libgalera_smm.so"

STATUS_KEYS = ("wsrep_local_state", "wsrep_local_state_comment", "wsrep_cluster_status",
               "wsrep_cluster_size", "wsrep_ready", "wsrep_last_committed",
               "wsrep_local_commits", "wsrep_cluster_state_uuid", "wsrep_connected",
               "wsrep_desync_count", "wsrep_local_recv_queue")
_INT_KEYS = ("wsrep_local_state", "wsrep_cluster_size", "wsrep_last_committed",
             "wsrep_local_commits", "wsrep_desync_count", "wsrep_local_recv_queue")

CNF = """[mysqld]
user=mysql
datadir={data}
socket={sock}
pid-file={base}/mysqld.pid
log-error={base}/error.log
port=3306
bind-address={ip}
skip-name-resolve
skip-log-bin
binlog_format=ROW
default_storage_engine=InnoDB
innodb_autoinc_lock_mode=2
innodb_buffer_pool_size={buffer_pool}
innodb_log_file_size=16M
innodb_flush_log_at_trx_commit=2
max_connections=200
wsrep_on=ON
wsrep_provider={provider}
wsrep_cluster_name={cluster}
wsrep_cluster_address=gcomm://{members}
wsrep_node_name={name}
wsrep_node_address={ip}
wsrep_sst_method=rsync
wsrep_provider_options="gmcast.listen_addr=tcp://{ip}:4567;ist.recv_addr={ip}:4568;gcache.size={gcache};evs.suspect_timeout=PT1S;evs.inactive_timeout=PT2S;evs.keepalive_period=PT0.2S;evs.inactive_check_period=PT0.5S;evs.install_timeout=PT2S;evs.join_retrans_period=PT0.3S{extra_options}"

[client]
socket={sock}
"""


class GaleraError(Exception):
    pass


class Galera:
    """A Galera cluster of mariadbd, one per named node of a netns.TestBed. See module doc."""

    DB = "demo"
    CHECK_USER, CHECK_PASSWORD = "hafront_check", "Ch3ck-s3cret-Wq4"
    APP_USER, APP_PASSWORD = "app", "App-s3cret-Kd8"
    CLUSTER_NAME = "hafront-bed"
    WRITES_DDL = ("CREATE TABLE IF NOT EXISTS demo.writes (id BIGINT PRIMARY KEY, "
                  "client VARCHAR(32), node VARCHAR(32), ts DATETIME(6)) ENGINE=InnoDB")

    def __init__(self, bed, nodes=None, gcache="16M", buffer_pool="32M", provider_options=""):
        self.bed = bed
        self.names = list(nodes) if nodes else [n.name for n in bed.nodes]
        self.nodes = {n: bed.node(n) for n in self.names}
        self.gcache, self.buffer_pool = gcache, buffer_pool
        self.proc = {}          # name -> current mariadbd Proc
        self._all_procs = []    # every mariadbd (and --wsrep-recover) Proc started
        self._starts = {n: 0 for n in self.names}
        self.timings = {}       # phase -> seconds (install-db, bootstrap, join n2, ...)
        self.last_recover = {}  # name -> position found by --wsrep-recover
        self._closed = False
        pw = pwd.getpwnam("mysql")
        self._uid, self._gid = pw.pw_uid, pw.pw_gid
        st = os.stat(bed.dir)
        if st.st_mode & 0o011 != 0o011:
            os.chmod(bed.dir, (st.st_mode & 0o7777) | 0o011)
        members = ",".join(self.nodes[n].ip4 for n in self.names)
        for name in self.names:
            base = self.dir(name)
            data = self.datadir(name)
            os.makedirs(data, exist_ok=True)
            os.chmod(base, 0o755)
            os.chown(data, self._uid, self._gid)
            os.chmod(data, 0o750)
            with open(self.cnf(name), "w") as f:
                f.write(CNF.format(data=data, sock=self.socket(name), base=base,
                                   ip=self.nodes[name].ip4, buffer_pool=buffer_pool,
                                   provider=PROVIDER, cluster=self.CLUSTER_NAME,
                                   members=members, name=name, gcache=gcache,
                                   extra_options=(";" + provider_options) if provider_options else ""))
            # error.log and the pid file are written by mariadbd (user mysql) in base.
            os.chown(base, self._uid, self._gid)

    # ------------------------------------------------------------------ paths
    def dir(self, name):
        return os.path.join(self.bed.dir, "galera-" + name)

    def datadir(self, name):
        return os.path.join(self.dir(name), "data")

    def socket(self, name):
        return os.path.join(self.dir(name), "mysqld.sock")

    def cnf(self, name):
        return os.path.join(self.dir(name), "my.cnf")

    def error_log_path(self, name):
        return os.path.join(self.dir(name), "error.log")

    def error_log(self, name, tail=3000):
        """The node's mariadbd error log (its last `tail` characters; all if tail=0)."""
        try:
            with open(self.error_log_path(name), "rb") as f:
                text = f.read().decode("utf-8", "replace")
            return text[-tail:] if tail else text
        except OSError as e:
            return "(no error log: %s)" % e

    def ip(self, name):
        return self.nodes[name].ip4

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout=120):
        """install-db every node, bootstrap the first with --wsrep-new-cluster, join the
        others one at a time (rsync SST), wait until all are Synced, then create the check
        user, the app user, database demo and table demo.writes. Phase times go to
        self.timings."""
        deadline = time.monotonic() + timeout
        t0 = time.monotonic()
        for name in self.names:
            r = subprocess.run([INSTALL_DB, "--defaults-file=" + self.cnf(name),
                                "--auth-root-authentication-method=socket", "--skip-test-db"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=max(1, deadline - time.monotonic()))
            if r.returncode != 0:
                raise GaleraError("mariadb-install-db for %s failed: %s\nerror log:\n%s"
                                  % (name, r.stdout.decode(errors="replace")[-1500:], self.error_log(name)))
        self.timings["install-db"] = time.monotonic() - t0
        first = self.names[0]
        t = time.monotonic()
        self._spawn(first, ["--wsrep-new-cluster"])
        self.wait_synced([first], max(1, deadline - time.monotonic()), size=1)
        self.timings["bootstrap " + first] = time.monotonic() - t
        for i, name in enumerate(self.names[1:], start=2):
            t = time.monotonic()
            self._spawn(name, [])
            self.wait_synced(self.names[:i], max(1, deadline - time.monotonic()), size=i)
            self.timings["join " + name] = time.monotonic() - t
        self.timings["start total"] = time.monotonic() - t0
        self.sql(first, "CREATE USER IF NOT EXISTS '%s'@'%%' IDENTIFIED BY '%s'"
                 % (self.CHECK_USER, self.CHECK_PASSWORD))
        self.sql(first, "CREATE DATABASE IF NOT EXISTS %s" % self.DB)
        self.sql(first, "CREATE USER IF NOT EXISTS '%s'@'%%' IDENTIFIED BY '%s'"
                 % (self.APP_USER, self.APP_PASSWORD))
        self.sql(first, "GRANT ALL PRIVILEGES ON %s.* TO '%s'@'%%'" % (self.DB, self.APP_USER))
        self.sql(first, self.WRITES_DDL)
        # DDL (TOI) and user changes are replicated; make sure every node has them.
        for name in self.names:
            self.sql(name, "SELECT COUNT(*) FROM demo.writes", sync_wait=True)
        return self

    def _spawn(self, name, extra, spawn=None):
        if self._closed:
            raise GaleraError("Galera is closed")
        self._starts[name] += 1
        argv = [MARIADBD, "--defaults-file=" + self.cnf(name)] + list(extra)
        log = os.path.join(self.dir(name), "mariadbd-%d.out" % self._starts[name])
        p = spawn(argv, log) if spawn else self.nodes[name].spawn(argv, log_path=log)
        self.proc[name] = p
        self._all_procs.append(p)
        return p

    def recover_position(self, name, spawn=None, timeout=60):
        """Run `mariadbd --wsrep-recover` on the node's datadir (it must not be running)
        and return the recovered position 'uuid:seqno' (None if none was found)."""
        self._starts[name] += 1
        log = os.path.join(self.dir(name), "recover-%d.log" % self._starts[name])
        argv = [MARIADBD, "--defaults-file=" + self.cnf(name), "--wsrep-recover",
                "--log-error=" + log]
        p = spawn(argv, log + ".out") if spawn else self.nodes[name].spawn(argv, log_path=log + ".out")
        self._all_procs.append(p)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
            raise GaleraError("%s: --wsrep-recover did not finish in %d s" % (name, timeout))
        text = ""
        for path in (log, log + ".out"):
            try:
                with open(path, errors="replace") as f:
                    text += f.read()
            except OSError:
                pass
        m = re.findall(r"WSREP: Recovered position:?\s*([0-9a-f-]{36}:-?\d+)", text)
        pos = m[-1] if m else None
        self.last_recover[name] = pos
        return pos

    def start_node(self, name, spawn=None):
        """(Re)start a node that has a datadir and whose mariadbd is gone (kill -9, power
        off and on, or a clean stop): first `mariadbd --wsrep-recover` for its position,
        then mariadbd --wsrep-start-position=POS so that it rejoins by IST when the
        donor's gcache still has the missing writes (SST otherwise). Does not wait for
        Synced (use wait_synced). spawn(argv, log_path) -> netns Proc replaces
        node.spawn (for both processes) when given. Returns the mariadbd Proc.
        Needs a running Primary component to join (no re-bootstrap of a fully dead
        cluster)."""
        old = self.proc.get(name)
        if old is not None and old.alive():
            raise GaleraError("%s: mariadbd %d is still running" % (name, old.pid))
        if old is not None:
            old.popen.poll()
        # A power-off may leave a stale socket / pid file: harmless for mariadbd.
        t = time.monotonic()
        pos = self.recover_position(name, spawn=spawn)
        self.timings["recover " + name] = time.monotonic() - t
        extra = ["--wsrep-start-position=" + pos] if pos and not pos.endswith(":-1") else []
        return self._spawn(name, extra, spawn=spawn)

    def kill(self, name):
        """kill -9 the node's mariadbd (its process group) and reap it."""
        p = self.proc.get(name)
        if p is None:
            return False
        sent = p.kill(signal.SIGKILL)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            pass
        return sent

    def stop(self, name, timeout=60):
        """SIGTERM (clean shutdown) and wait; SIGKILL after timeout. Returns exit status."""
        p = self.proc.get(name)
        if p is None:
            return None
        return p.terminate(timeout)

    def close(self):
        """Stop every mariadbd started (SIGTERM, then SIGKILL after 20 s). Idempotent."""
        if self._closed:
            return
        self._closed = True
        live = [p for p in self._all_procs if p.alive()]
        for p in live:
            p.kill(signal.SIGTERM)
            p.kill(signal.SIGCONT)
        deadline = time.monotonic() + 20
        for p in live:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill(signal.SIGKILL)
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    pass

    # ------------------------------------------------------------------ queries
    def connect(self, name, timeout=5.0, db=None):
        """A pymysql connection as root through the node's unix socket (autocommit)."""
        return pymysql.connect(unix_socket=self.socket(name), user="root", database=db,
                               connect_timeout=timeout, read_timeout=timeout,
                               write_timeout=timeout, autocommit=True)

    def sql(self, name, statement, params=None, timeout=30.0, sync_wait=False):
        """Run one statement as root through the unix socket; returns the rows (a list
        of tuples). sync_wait: SET SESSION wsrep_sync_wait=1 first (causal reads)."""
        conn = self.connect(name, timeout=timeout)
        try:
            with conn.cursor() as c:
                if sync_wait:
                    c.execute("SET SESSION wsrep_sync_wait=1")
                c.execute(statement, params)
                return list(c.fetchall())
        finally:
            conn.close()

    def status(self, name, timeout=1.0):
        """The node's wsrep status as a dict (ints where numeric, wsrep_ready a bool),
        or None if it does not answer within timeout (never blocks much longer)."""
        box = {}

        def run():
            try:
                rows = self.sql(name, "SHOW GLOBAL STATUS WHERE Variable_name IN (%s)"
                                % ",".join("'%s'" % k for k in STATUS_KEYS), timeout=timeout)
                box["rows"] = rows
            except Exception as e:  # noqa: BLE001 - any failure means "does not answer"
                box["error"] = e

        if not os.path.exists(self.socket(name)):
            return None
        t = threading.Thread(target=run, daemon=True)
        t.start()
        t.join(timeout)
        if "rows" not in box:
            return None
        st = {}
        for k, v in box["rows"]:
            k = k.lower()
            if k in _INT_KEYS:
                try:
                    v = int(v)
                except ValueError:
                    pass
            elif k == "wsrep_ready":
                v = v.upper() == "ON"
            st[k] = v
        return st

    def is_synced(self, st, size=None):
        return bool(st) and st.get("wsrep_local_state") == 4 and \
            st.get("wsrep_cluster_status") == "Primary" and st.get("wsrep_ready") is True and \
            (size is None or st.get("wsrep_cluster_size") == size)

    def wait_synced(self, names, timeout, size=None):
        """Wait until every named node is Synced (state 4), ready, in a Primary component
        of `size` nodes (default len(names)). Returns {name: status}; raises TimeoutError
        with the last statuses (and an error-log tail of an exited node)."""
        size = len(names) if size is None else size
        deadline = time.monotonic() + timeout
        last = {}
        while True:
            for n in names:
                last[n] = self.status(n, timeout=1.0)
            if all(self.is_synced(last[n], size) for n in names):
                return last
            dead = [n for n in names if self.proc.get(n) is not None and not self.proc[n].alive()]
            if dead or time.monotonic() > deadline:
                msg = "; ".join("%s: %s" % (n, short_status(last[n])) for n in names)
                for n in dead:
                    msg += "\n%s: mariadbd exited (%s); error log tail:\n%s" % (
                        n, self.proc[n].returncode, self.error_log(n, 1500))
                raise TimeoutError("Galera nodes %s not Synced in a Primary component of %d "
                                   "within %.0f s: %s" % (names, size, timeout, msg))
            time.sleep(0.1)

    def joined_by(self, name):
        """How the node's latest start got its state, from its error log: 'IST' (the
        rsync script ran in IST mode, "Receiving IST: N writesets"), 'SST' (a full rsync
        copy), 'none' (no state transfer was needed), or None (not started/not known)."""
        text = self.error_log(name, tail=0)
        i = text.rfind("Starting MariaDB")
        if i < 0:
            return None
        text = text[i:]
        if "rsync SST completed on joiner" in text or "mariabackup SST completed" in text:
            return "SST"
        if "rsync IST completed on joiner" in text or re.search(r"Receiving IST: \d+ writesets", text):
            return "IST"
        if "Synchronized with group" in text:
            return "none"
        return None


def short_status(st):
    """One line for a status() dict: "Synced/Primary size 3 ready True" or "no answer"."""
    if st is None:
        return "no answer"
    return "%s/%s size %s ready %s" % (st.get("wsrep_local_state_comment"), st.get("wsrep_cluster_status"),
                                        st.get("wsrep_cluster_size"), st.get("wsrep_ready"))

"""The mysql probe against a real MariaDB Galera node, bootstrapped alone as in
/work/shared/notes/galera-and-keepalived.md: a private datadir, socket, pid file, error log
and ports on 127.0.0.1, `mariadb-install-db`, then `mariadbd --wsrep-new-cluster` (as
user mysql when run as root, in a network namespace of its own). A USAGE-only check user is
made through the unix socket. Synced passes and reports wsrep_local_state 4 and
last_committed; `SET GLOBAL wsrep_desync=ON` fails with the state-2 reason and OFF passes
again; a wrong password fails with "Access denied" and the password appears nowhere; a
stopped server fails with a connect reason. mariadbd is killed by pid and its folder removed
at the end, also when the test fails."""
import os
import pwd
import signal
import subprocess

import tcp_tools

tcp_tools.setup()  # before any thread: a namespace with only lo when root

import harness  # noqa: E402
from harness import check, fail, tempdir, wait_for  # noqa: E402
from probe_tools import probe, write_config  # noqa: E402

MARIADBD = "/usr/sbin/mariadbd"
INSTALL_DB = "/usr/bin/mariadb-install-db"
CLIENT = "/usr/bin/mariadb"
PROVIDER = "/usr/lib/galera/libgalera_smm.so"
PASSWORD = "Pr0be-s3cret-Zq9"
WRONG_PASSWORD = "Wr0ng-s3cret-Xk7"

root = os.geteuid() == 0
d = tempdir()
os.chmod(d, 0o755)  # mariadbd (user mysql) must reach its datadir inside
data = os.path.join(d, "data")
os.makedirs(data)
if root:
    mysql = pwd.getpwnam("mysql")
    os.chown(data, mysql.pw_uid, mysql.pw_gid)
sock = os.path.join(data, "mysqld.sock")
port, gcomm_port, ist_port = tcp_tools.free_port(), tcp_tools.free_port(), tcp_tools.free_port()

cnf = os.path.join(d, "my.cnf")
with open(cnf, "w") as f:
    f.write("""[mysqld]
{user}
datadir={data}
socket={sock}
pid-file={data}/mysqld.pid
log-error={data}/error.log
port={port}
bind-address=127.0.0.1
skip-name-resolve
binlog_format=ROW
default_storage_engine=InnoDB
innodb_autoinc_lock_mode=2
innodb_buffer_pool_size=32M
innodb_log_file_size=16M
wsrep_on=ON
wsrep_provider={provider}
wsrep_cluster_name=hafront-probe-test
wsrep_cluster_address=gcomm://
wsrep_node_address=127.0.0.1
wsrep_node_name=probe-node
wsrep_provider_options="gmcast.listen_addr=tcp://127.0.0.1:{gcomm};ist.recv_addr=127.0.0.1:{ist};gcache.size=16M"
""".format(user="user=mysql" if root else "", data=data, sock=sock, port=port, provider=PROVIDER,
           gcomm=gcomm_port, ist=ist_port))

r = subprocess.run([INSTALL_DB, "--defaults-file=" + cnf, "--auth-root-authentication-method=socket",
                    "--skip-test-db"], capture_output=True, text=True, timeout=120)
if r.returncode != 0:
    fail("mariadb-install-db failed: %s%s" % (r.stdout, r.stderr))

server_log = open(os.path.join(d, "mariadbd.out"), "w")
server = subprocess.Popen([MARIADBD, "--defaults-file=" + cnf, "--wsrep-new-cluster"],
                          stdout=server_log, stderr=subprocess.STDOUT)
harness._procs.append(server)  # killed by pid at exit, whatever happens


def error_log():
    try:
        return open(os.path.join(data, "error.log")).read()[-3000:]
    except OSError as e:
        return str(e)


def sql(statement):
    """As the database's root, through the unix socket (socket authentication)."""
    r = subprocess.run([CLIENT, "-S", sock, "-u", "root" if root else pwd.getpwuid(os.geteuid()).pw_name,
                        "-N", "-B", "-e", statement], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        fail("%s failed: %s" % (statement, r.stderr))
    return r.stdout.strip()


def server_ready():
    if server.poll() is not None:
        fail("mariadbd exited with %s:\n%s" % (server.returncode, error_log()))
    if not os.path.exists(sock):
        return False
    r = subprocess.run([CLIENT, "-S", sock, "-u", "root", "-N", "-B", "-e",
                        "SHOW GLOBAL STATUS LIKE 'wsrep_local_state'"], capture_output=True, text=True, timeout=30)
    return r.returncode == 0 and r.stdout.split() == ["wsrep_local_state", "4"]


wait_for(server_ready, 90, "mariadbd to be Synced")
sql("CREATE USER 'hafront'@'127.0.0.1' IDENTIFIED BY '%s'" % PASSWORD)
sql("CREATE TABLE mysql.hafront_probe_writes (id INT PRIMARY KEY) ENGINE=InnoDB")
sql("INSERT INTO mysql.hafront_probe_writes VALUES (1), (2)")  # so last_committed moves

for name, value in (("galera.pw", PASSWORD + "\n"), ("wrong.pw", WRONG_PASSWORD + "\n")):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(value)
    os.chmod(path, 0o600)

cfg = write_config(d, """
  galera:
    mysql:
      user: hafront
      password_file: galera.pw
      require: {wsrep_local_state: 4, wsrep_cluster_status: Primary, wsrep_ready: true, wsrep_desync: false}
    interval: 5s
    timeout: 3s
  galera-wrong-password:
    mysql: {user: hafront, password_file: wrong.pw, require: {wsrep_local_state: 4}}
    interval: 5s
    timeout: 3s
  plain:
    mysql: {user: hafront, password_file: galera.pw}
    interval: 5s
    timeout: 3s
""")
addr = "127.0.0.1:%d" % port


def aborted_clients():
    return int(sql("SHOW GLOBAL STATUS LIKE 'Aborted_clients'").split()[1])


aborted_before = aborted_clients()
res = probe(cfg, "galera", addr)
check(res.ok, "Synced node passes (%r)" % res)
g = res.obs.get("galera", {})
check(g.get("wsrep_local_state") == 4 and g.get("wsrep_local_state_comment") == "Synced"
      and g.get("wsrep_cluster_status") == "Primary" and g.get("wsrep_ready") is True
      and g.get("wsrep_desync") is False and g.get("read_only") is False and g.get("wsrep_cluster_size") == 1,
      "the wsrep view is complete: %s" % g)
check(isinstance(g.get("wsrep_last_committed"), int) and g["wsrep_last_committed"] >= 2,
      "wsrep_last_committed is reported: %s" % g.get("wsrep_last_committed"))
check(g.get("writable") is True, "Galera says it may take writes")
check(res.reason.startswith("Synced, Primary, 1 node, last committed "), "the reason says what it saw: %r" % res.reason)

sql("SET GLOBAL wsrep_desync=ON")
res = wait_for(lambda: (lambda x: x if not x.ok else None)(probe(cfg, "galera", addr)), 30,
               "the probe to fail while desynced")
check("wsrep_local_state 2 (Donor/Desynced), need 4" in res.reason and "wsrep_desync is ON, need OFF" in res.reason
      and res.obs["run"] == "answered", "desynced fails with the state-2 reason (%r)" % res)
check(res.obs["galera"]["wsrep_ready"] is True and res.obs["galera"]["writable"] is False,
      "desynced: still wsrep_ready, not writable")
res = probe(cfg, "plain", addr)
check(res.ok, "a check without requirements still passes on the desynced node (%r)" % res)

sql("SET GLOBAL wsrep_desync=OFF")
res = wait_for(lambda: (lambda x: x if x.ok else None)(probe(cfg, "galera", addr)), 30,
               "the probe to pass again after desync OFF")
check(res.obs["galera"]["wsrep_local_state"] == 4, "back to Synced (%r)" % res)

sql("SET GLOBAL read_only=ON")
res = probe(cfg, "plain", addr)
check(res.ok and res.obs["galera"]["read_only"] is True and res.obs["galera"]["writable"] is False,
      "read_only is reported and makes the node not writable (%r)" % res)
sql("SET GLOBAL read_only=OFF")
check(aborted_clients() == aborted_before,
      "every probe said goodbye (COM_QUIT): Aborted_clients unchanged at %d" % aborted_before)

res = probe(cfg, "galera-wrong-password", addr)
check(not res.ok and "Access denied for user 'hafront'" in res.reason and res.reason.startswith("connect: "),
      "a wrong password fails with MariaDB's 'Access denied' (%r)" % res)
check(res.obs["run"] == "answered", "access denied is the server's answer")
for p in (PASSWORD, WRONG_PASSWORD):
    check(p not in res.stdout and p not in res.stderr, "the password text appears nowhere in the output")

server.send_signal(signal.SIGTERM)
try:
    server.wait(60)
except subprocess.TimeoutExpired:
    fail("mariadbd did not stop within 60 s of SIGTERM")
res = probe(cfg, "galera", addr)
check(not res.ok and res.reason == "connect refused" and res.obs["run"] == "unreachable",
      "a stopped server fails with a connect reason (%r)" % res)

# The same datadir as a plain MariaDB (no Galera): the status query still works, it just
# reports no wsrep state.
plain_server = subprocess.Popen([MARIADBD, "--defaults-file=" + cnf, "--wsrep-on=OFF", "--wsrep-provider=none"],
                                stdout=server_log, stderr=subprocess.STDOUT)
harness._procs.append(plain_server)
server = plain_server
wait_for(lambda: server.poll() is not None or (os.path.exists(sock) and subprocess.run(
    [CLIENT, "-S", sock, "-u", "root", "-e", "SELECT 1"], capture_output=True).returncode == 0), 90,
    "plain mariadbd to answer")
if server.poll() is not None:
    fail("plain mariadbd exited with %s:\n%s" % (server.returncode, error_log()))
res = probe(cfg, "plain", addr)
g = res.obs.get("galera", {})
check(res.ok and "wsrep_local_state" not in g and g.get("read_only") is False and g.get("writable") is False,
      "plain MariaDB: no requirements pass, no wsrep state reported, not Galera-writable (%r)" % res)
res = probe(cfg, "galera", addr)
check(not res.ok and res.obs["run"] == "answered" and res.reason.startswith("wsrep_local_state not reported"),
      "plain MariaDB against Galera requirements: says what is missing, not a query error (%r)" % res)
server.send_signal(signal.SIGTERM)
server.wait(60)
print("PASS")

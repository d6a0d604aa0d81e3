"""The appliance on the netns test bed: what tests/demo (scripts/demo) runs. Three (or two)
controller nodes, each with a real Corosync, hafrontd (lease driver), an ipmi_sim BMC
fenced by fence_ipmilan, and real backends: nginx serving a Keystone-like API (/v3,
/healthcheck) and, with three nodes, a MariaDB + Galera 4 node of a three-node Galera
cluster (tests/netns/galera.py). hafront fronts them on two VIPs, as on an OpenStack
controller: `public` (Keystone, http mode, round robin) and `internal` (Galera, tcp
mode, single writer, sessions closed when the writer moves).

Every node also runs failover_bed's tiny "who am I" backend on :8080, which the chaos
observers use to see which node's kernel answers a VIP.

    app = Appliance(bed, galera=True)
    app.start(app.config())            # nginx, Galera (bootstrap + joins), Corosync, hafrontd
    app.stop_keystone("n1"); app.start_keystone("n1")
    app.power_on_and_boot("n2")        # (failover_bed) boots nginx and Galera too
"""
import os
import signal
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
for sub in ("tests/netns", "tests/fence_peers", "tests/chaos"):
    sys.path.insert(0, os.path.join(ROOT, sub))

from failover_bed import HafrontCluster, hafront_config  # noqa: E402

NGINX = "/usr/sbin/nginx"
KEYSTONE_PORT = 5000
GALERA_PORT = 3306
VIPS = {"public": ("192.0.2.100", ["n1"], False), "internal": ("192.0.2.101", ["n2"], False)}

# What Keystone answers on GET /v3 (trimmed), and the oslo.middleware health check.
KEYSTONE_V3 = ('{"version": {"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z", '
               '"links": [{"rel": "self", "href": "http://%s:5000/v3/"}], '
               '"media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]}}')


def nginx_conf(folder, name, ip):
    """One nginx process (no master), everything under `folder`; X-Node says who served."""
    temp = "".join("  %s_temp_path %s/%s;\n" % (k, folder, k) for k in ("client_body", "proxy", "fastcgi", "uwsgi",
                                                                       "scgi"))
    body = KEYSTONE_V3 % ip
    return """worker_processes 1;
daemon off;
master_process off;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log warn;
events { worker_connections 4096; }
http {
%(temp)s  access_log off;
  keepalive_requests 100000;
  server {
    listen %(ip)s:%(port)d reuseport backlog=4096;
    add_header X-Node %(name)s always;
    location = /v3 { default_type application/json; return 200 '%(body)s'; }
    location = /v3/ { default_type application/json; return 200 '%(body)s'; }
    location = /healthcheck { default_type text/plain; return 200 "OK\\n"; }
    location / { return 404; }
  }
}
""" % {"d": folder, "temp": temp, "ip": ip, "port": KEYSTONE_PORT, "name": name, "body": body}


class Appliance(HafrontCluster):
    """HafrontCluster with the controllers' real backends. nginx / galera.proc: {node:
    Proc} of the current life of each node's Keystone stand-in and mariadbd."""

    def __init__(self, bed, galera=True):
        super().__init__(bed, driver="lease")
        self.names = [n.name for n in bed.nodes]
        self.nginx = {}
        self.galera = None
        if galera:
            from galera import Galera
            self.galera = Galera(bed, nodes=self.names)
        self.secret = os.path.join(bed.dir, "galera-check.pw")

    # ------------------------------------------------------------------ config
    def config(self, name="overcloud", two_node=False, node_extra=None, fencing=None):
        """hafront.yaml for the bed: the lease settings of tests/chaos (token 300 ms,
        heartbeat 100 ms, liveness 1 s, lease 500 ms, margin 100 ms), fencing through each
        node's BMC, checks of Keystone's /v3 and of Galera's wsrep state."""
        servers = lambda port: "".join("      - {name: %s, address: %s:%d}\n" % (n.name, n.ip4, port)
                                       for n in self.bed.nodes)
        extra = """checks:
  keystone:
    http: {path: /v3, expect_status: 200, expect_body: '"id": "v3'}
    interval: 500ms
    timeout: 400ms
    rise: 2
    fall: 2
"""
        if self.galera:
            with open(self.secret, "w") as f:
                f.write(self.galera.CHECK_PASSWORD + "\n")
            os.chmod(self.secret, 0o600)
            extra += """  galera:
    mysql:
      user: %s
      password_file: %s
      require: {wsrep_local_state: 4, wsrep_cluster_status: Primary, wsrep_ready: true, wsrep_desync: false}
    interval: 300ms
    timeout: 250ms
    rise: 2
    fall: 2
""" % (self.galera.CHECK_USER, self.secret)
        extra += """services:
  keystone:
    listen: [public:%d]
    mode: http
    balance: roundrobin
    check: keystone
%s    timeouts: {connect: 1s, client: 30s, server: 10s, http_request: 5s}
    retries: 3
    redispatch: true
    servers:
%s""" % (KEYSTONE_PORT, "    depends_on: [galera]\n" if self.galera else "", servers(KEYSTONE_PORT))
        if self.galera:
            extra += """  galera:
    listen: [internal:%d]
    mode: tcp
    balance: single-writer
    on_server_down: close-sessions
    check: galera
    timeouts: {connect: 1s, client: 90m, server: 90m}
    servers:
%s""" % (GALERA_PORT, servers(GALERA_PORT))
        vips = VIPS if self.galera else {"public": VIPS["public"]}
        return hafront_config(self.peers, self.names, vips, driver="lease", name=name, two_node=two_node,
                              fencing=fencing or "monitor_interval: 0s, timeout: 30s", node_extra=node_extra,
                              extra=extra)

    # ------------------------------------------------------------------ backends
    def _start_nginx(self, name):
        node = self.bed.node(name)
        folder = os.path.join(self.bed.dir, "nginx-%s" % name)
        os.makedirs(folder, exist_ok=True)
        conf = os.path.join(folder, "nginx.conf")
        with open(conf, "w") as f:
            f.write(nginx_conf(folder, name, node.ip4))
        self.nginx[name] = node.spawn([NGINX, "-p", folder, "-c", conf],
                                      log_path=os.path.join(self.bed.dir, "%s-nginx.log" % name))
        return self.nginx[name]

    def start_keystone(self, name):
        """(Re)start the node's nginx; registered with the power model once running."""
        if self.cfg is None:
            return self._start_nginx(name)
        return self._spawn_registered(name, lambda: self._start_nginx(name))

    def stop_keystone(self, name):
        p = self.nginx.get(name)
        if p is not None and p.alive():
            p.kill(signal.SIGTERM)
            p.wait(10)

    def start_galera(self, name):
        """Start a node's mariadbd again (it rejoins by IST when it can), registered with
        the power model; raises PoweredOff if the node is off."""
        def spawn(argv, log_path):
            return self.bed.node(name).spawn(argv, log_path=log_path)
        with self.powered(name):
            proc = self.galera.start_node(name, spawn=spawn)
            self._register_locked(name, proc)
        return proc

    def start_backend(self, name):
        """failover_bed's boot step: the "who am I" backend, and on a node that is booted
        again (fenced, then powered on) Keystone and Galera too."""
        proc = super().start_backend(name)
        if self.cfg is not None:
            self.reap(name)
            if name not in self.nginx or not self.nginx[name].alive():
                self.start_keystone(name)
            if self.galera and not self.galera.proc[name].alive():
                self.start_galera(name)
        return proc

    def start(self, config_text):
        for name in self.names:
            self._start_nginx(name)
        if self.galera:
            self.galera.start()
        super().start(config_text)

    def register(self, name):
        super().register(name)
        extra = [self.nginx.get(name)] + ([self.galera.proc.get(name)] if self.galera else [])
        self.peers.register_node_pids(name, [p for p in extra if p is not None and p.alive()])

    def close(self):
        if self.galera:
            self.galera.close()

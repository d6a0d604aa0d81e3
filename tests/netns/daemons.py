"""Running hafrontd on test-bed nodes: config files, start, admin calls, status waits.
The admin socket is a file in the bed's folder, so hafrontctl reaches it from the host."""
import json
import os
import subprocess
import time

HAFRONTD = os.environ.get("HAFRONTD", "build/hafrontd")
HAFRONTCTL = os.environ.get("HAFRONTCTL", "build/hafrontctl")


class Failure(Exception):
    pass


BED = None  # set by tests so failures show the tail of every process log
DAEMONS = []  # every Hafront made, for the same reason


def fail(msg):
    print("FAIL: " + msg, flush=True)
    for d in DAEMONS:
        print("--- %s hafrontd (last 25 lines)\n%s" % (d.name, "\n".join(d.log_text().splitlines()[-25:])), flush=True)
    if BED is not None:
        print(BED.logs_tail(15), flush=True)
    raise Failure(msg)


def check(cond, msg):
    if not cond:
        fail(msg)
    print("ok: " + msg, flush=True)


def wait_for(pred, timeout=5.0, what="condition", interval=0.01, error=None):
    """pred()'s first true value within timeout; else the test fails, or `error` (an
    exception class) is raised for callers that go on."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    msg = "timed out after %.1fs waiting for %s (last: %r)" % (timeout, what, last)
    if error is not None:
        raise error(msg)
    fail(msg)


class Hafront:
    """One hafrontd on one node of the bed."""

    def __init__(self, bed, node, vips="", extra="", config=None):
        """With `config`, every node runs that one file (as a cluster must: nodes compare
        its digest) and gets its own admin socket through --socket."""
        self.bed = bed
        self.node = node
        self.name = node.name
        self.socket = os.path.join(bed.dir, "%s.sock" % node.name)
        self.config = config or os.path.join(bed.dir, "%s.yaml" % node.name)
        self.log = os.path.join(bed.dir, "%s-hafrontd.log" % node.name)
        self.proc = None
        DAEMONS.append(self)
        if not config:
            self.write(vips, extra)

    def write(self, vips="", extra=""):
        text = "cluster: {name: bed, mode: standalone}\n"
        if vips:
            text += "vips:\n" + vips
        text += extra
        text += "admin: {socket: %s}\n" % self.socket
        with open(self.config + ".tmp", "w") as f:
            f.write(text)
        os.replace(self.config + ".tmp", self.config)

    def start(self, wait=True, standby=False):
        argv = [HAFRONTD, "-c", self.config, "--node", self.name, "--socket", self.socket]
        if standby:
            argv.append("--standby")
        self.proc = self.node.spawn(argv, log_path=self.log)
        if wait:
            wait_for(lambda: not self.proc.alive() or self.answers(), 10, "%s's hafrontd" % self.name)
            if not self.proc.alive():
                raise Failure("hafrontd on %s exited:\n%s" % (self.name, self.log_text()))
        return self

    def answers(self):
        return os.path.exists(self.socket) and self.call("status").returncode == 0

    def call(self, *args):
        return subprocess.run([HAFRONTCTL, "--socket", self.socket] + list(args), capture_output=True, text=True,
                              timeout=30)

    def ctl(self, *args):
        r = self.call(*args)
        if r.returncode != 0:
            raise Failure("hafrontctl %s on %s: %s" % (" ".join(args), self.name, r.stderr))
        return r.stdout

    def status(self):
        return json.loads(self.ctl("status", "--json"))

    def vip(self, name):
        for v in self.status()["vips"]:
            if v["name"] == name:
                return v
        raise Failure("no VIP %s on %s" % (name, self.name))

    def wait_vip(self, name, state, timeout=5.0):
        return wait_for(lambda: (lambda v: v if v["state"] == state else None)(self.vip(name)), timeout,
                        "%s: VIP %s %s" % (self.name, name, state))

    def alerts(self):
        return [a["message"] for a in self.status()["alerts"]]

    def log_text(self):
        try:
            with open(self.log) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.alive():
            self.proc.terminate(10)

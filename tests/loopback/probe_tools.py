"""Helpers for the probe loopback tests: a config file holding only checks (and the little
the loader requires around them), and probe_tool, which runs one named check once against
one address and prints the Observation as JSON (exit 0 passed, 1 failed, 2 bad usage)."""
import json
import os
import subprocess

from harness import fail

PROBE_TOOL = os.environ["PROBE_TOOL"]

CONFIG = """
cluster:
  name: probes
  mode: standalone
checks:
{checks}
services:
  placeholder:
    listen: [127.0.0.1:1]
    servers:
      - {{name: s, address: 127.0.0.1:1}}
admin:
  socket: {dir}/admin.sock
"""


def write_config(directory, checks):
    """`checks`: the YAML body of the checks section, indented by two spaces."""
    path = os.path.join(directory, "checks.yaml")
    with open(path, "w") as f:
        f.write(CONFIG.format(checks=checks.rstrip("\n"), dir=directory))
    return path


class Result:
    def __init__(self, rc, obs, stdout, stderr):
        self.rc = rc
        self.obs = obs
        self.stdout = stdout
        self.stderr = stderr

    @property
    def ok(self):
        return self.obs["ok"]

    @property
    def reason(self):
        return self.obs["reason"]

    def __repr__(self):
        return "rc=%d %s" % (self.rc, self.stdout.strip() or self.stderr.strip())


def probe(config, check, address, service="svc", server="srv-1", timeout=60):
    r = subprocess.run([PROBE_TOOL, "-c", config, "--check", check, "--address", address,
                        "--service", service, "--server", server],
                       capture_output=True, text=True, timeout=timeout)
    if r.returncode not in (0, 1):
        fail("probe_tool %s %s exited %d: %s%s" % (check, address, r.returncode, r.stdout, r.stderr))
    try:
        obs = json.loads(r.stdout)
    except ValueError:
        fail("probe_tool printed no JSON: %r %r" % (r.stdout, r.stderr))
    if obs["ok"] != (r.returncode == 0):
        fail("probe_tool exit %d disagrees with ok=%s" % (r.returncode, obs["ok"]))
    return Result(r.returncode, obs, r.stdout, r.stderr)

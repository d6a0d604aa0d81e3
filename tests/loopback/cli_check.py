"""hafrontctl check: accepts every example config, rejects the invalid corpus with
FILE:LINE:COL: messages and exit code 2, and handles hostile files without crashing."""
import glob
import os
import re
import subprocess

from harness import HAFRONTCTL, SOURCE_DIR, check, tempdir


def run(*args):
    return subprocess.run([HAFRONTCTL] + list(args), capture_output=True, text=True, timeout=60)


examples = sorted(glob.glob(os.path.join(SOURCE_DIR, "config", "*.yaml")))
check(len(examples) >= 3, "there are example configs")
for f in examples:
    r = run("check", "-c", f)
    check(r.returncode == 0 and ": ok" in r.stdout, "check accepts %s (%s)" % (os.path.basename(f), r.stderr.strip()))

# simulate and corosync-conf work on the example configs.
for f in examples:
    r = run("simulate", "-c", f)
    check(r.returncode == 0 and "plan:" in r.stdout and " -> " in r.stdout, "simulate -c %s" % os.path.basename(f))
    r = run("corosync-conf", "-c", f)
    if "mode: corosync" in open(f).read():
        check(r.returncode == 0 and "nodelist {" in r.stdout and "corosync_votequorum" in r.stdout,
              "corosync-conf -c %s" % os.path.basename(f))
    else:
        check(r.returncode == 2 and "only for mode: corosync" in r.stderr, "corosync-conf refuses standalone %s" % os.path.basename(f))

# The whole invalid corpus, through the command line: exit 2 and each expected
# FILE:LINE:COL: message on stderr.
corpus = sorted(glob.glob(os.path.join(SOURCE_DIR, "tests", "config", "invalid", "*.yaml")))
check(len(corpus) >= 40, "the invalid corpus has at least 40 files (%d)" % len(corpus))
expect_re = re.compile(r"^# expect: (\d+):(\d+): (.+)$")
for f in corpus:
    expects = [expect_re.match(l) for l in open(f, encoding="utf-8", errors="replace")]
    expects = [m for m in expects if m]
    r = run("check", "-c", f)
    ok = r.returncode == 2
    for m in expects:
        prefix = "%s:%s:%s: " % (f, m.group(1), m.group(2))
        ok = ok and any(l.startswith(prefix) and m.group(3) in l for l in r.stderr.splitlines())
    check(ok, "check rejects %s with exit 2 and the expected messages\n%s" % (os.path.basename(f), r.stderr))

d = tempdir()
# Several files at once: one bad file makes the exit code 2, the good one is still reported.
bad = os.path.join(d, "bad.yaml")
open(bad, "w").write("cluster: {name: c, mode: nope}\n")
r = run("check", "-c", examples[0], bad)
check(r.returncode == 2 and ": ok" in r.stdout and "bad.yaml:1:26: cluster.mode" in r.stderr,
      "mixed good and bad files: exit 2, both reported")

# Fence devices against the installed agents' own metadata (Debian fence-agents).
pw = os.path.join(d, "ipmi.pw")
open(pw, "w").write("secret\n")
fenced = os.path.join(d, "fence.yaml")
open(fenced, "w").write("""cluster:
  name: c
  mode: corosync
  quorum: {two_node: true}
  nodes:
    - {name: a, id: 1, address: 192.0.2.1, fencing: [[ipmi-a], [pdu]]}
    - {name: b, id: 2, address: 192.0.2.2, fencing: [[ipmi-b], [pdu:2]]}
fence_devices:
  ipmi-a: {agent: fence_ipmilan, ip: 10.0.0.1, username: admin, password_file: %s, lanpls: true}
  ipmi-b: {agent: fence_ipmilan, username: admin, password_file: %s, lanplus: maybe}
  pdu: {agent: fence_apc_snmp, ip: 10.0.0.50}
  ghost: {agent: fence_nosuchagent, ip: 10.0.0.9}
""" % (pw, pw))
r = run("check", "-c", fenced)
errors = r.stderr
check(r.returncode == 2, "check fails a config whose fence devices do not match their agents (exit %d)" % r.returncode)
for want in ["fence_devices.ipmi-a: unknown parameter 'lanpls' for fence_ipmilan (did you mean 'lanplus'?)",
             "fence_devices.ipmi-b: parameter 'lanplus' of fence_ipmilan expects a boolean",
             "fence_devices.pdu: fence_apc_snmp needs a plug",
             "fence_devices.ghost: agent fence_nosuchagent is not installed"]:
    check(want in errors, "check reports: %s\n%s" % (want, errors))
check("fence_devices.ipmi-b" in errors and "'ip'" in errors, "check reports ipmi-b's missing address\n" + errors)
r = run("check", "--skip-agents", "-c", fenced)
check(r.returncode == 0, "--skip-agents leaves the agents out (%s)" % r.stderr)

# Hostile files.
big = os.path.join(d, "big.yaml")
with open(big, "w") as f:
    f.write("cluster: {name: c}\n")
    f.write("#" * (10 * 1024 * 1024) + "\n")
r = run("check", "-c", big)
check(r.returncode == 2 and "big.yaml:1:1:" in r.stderr and "at most 4 MiB" in r.stderr, "a 10 MB file is refused")

binary = os.path.join(d, "binary.yaml")
with open(binary, "wb") as f:
    f.write(open("/bin/true", "rb").read())
r = run("check", "-c", binary)
check(r.returncode == 2 and "binary" in r.stderr, "a binary file is refused: %s" % r.stderr.strip())

empty = os.path.join(d, "empty.yaml")
open(empty, "w").close()
r = run("check", "-c", empty)
check(r.returncode == 2 and "empty.yaml:1:1: the file is empty" in r.stderr, "an empty file is refused")

r = run("check", "-c", os.path.join(d, "missing.yaml"))
check(r.returncode == 2 and "cannot open the config file" in r.stderr, "a missing file is refused")

r = run("check")
check(r.returncode == 2, "check without a file is a usage error (exit 2)")
r = run("frobnicate")
check(r.returncode == 2, "an unknown subcommand is a usage error (exit 2)")
print("cli_check: all passed")

"""The exec probe against shell scripts this test writes, run by probe_tool from a real
config: HAProxy agent words, the HAFRONT_* environment with check.port, a failing exit with
its first line, and a hung script killed with its whole process group at the time-out."""
import os

import tcp_tools

tcp_tools.setup()

from harness import check, tempdir, wait_for  # noqa: E402
from probe_tools import probe, write_config  # noqa: E402

d = tempdir()


def script(name, body):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body)
    os.chmod(path, 0o755)
    return path


agent = script("agent.sh", 'echo "${AGENT_REPLY:-ready 60% #replica lag 0s}"\n')
state = os.path.join(d, "agent-state")
agent_file = script("agent-file.sh", 'cat "%s"\n' % state)
env = script("env.sh", 'echo "$HAFRONT_SERVICE/$HAFRONT_SERVER at $HAFRONT_ADDRESS:$HAFRONT_PORT args=$*"\n')
failing = script("failing.sh", 'echo "galera node not synced" >&2\nexit 2\n')
hang = script("hang.sh", 'echo $$ > "%s/hang.pid"\nsleep 60 &\necho $! > "%s/hang-child.pid"\nwait\n' % (d, d))

cfg = write_config(d, """
  agent: {exec: {command: [%s], agent_output: true}, interval: 10s, timeout: 5s}
  agent-file: {exec: {command: [%s], agent_output: true}, interval: 10s, timeout: 5s}
  env: {exec: {command: [%s, "a b", "$X"]}, port: 9200, interval: 10s, timeout: 5s}
  failing: {exec: {command: [%s]}, interval: 10s, timeout: 5s}
  hang: {exec: {command: [%s]}, interval: 2s, timeout: 500ms}
""" % (agent, agent_file, env, failing, hang))

res = probe(cfg, "agent", "127.0.0.1:3306")
check(res.ok and res.obs["exit_code"] == 0, "agent: exit 0 passes (%r)" % res)
check(res.obs["agent"] == {"state": "up", "weight_percent": 60, "message": "replica lag 0s"},
      "agent: words parsed: %s" % res.obs.get("agent"))

with open(state, "w") as f:
    f.write("down #disk full\n")
res = probe(cfg, "agent-file", "127.0.0.1:3306")
check(not res.ok and res.reason == "agent says down: disk full" and res.obs["exit_code"] == 0,
      "agent: 'down' fails even with exit 0 (%r)" % res)
with open(state, "w") as f:
    f.write("drain 0%\n")
res = probe(cfg, "agent-file", "127.0.0.1:3306")
check(res.ok and res.obs["agent"].get("state") == "drain" and res.obs["agent"].get("weight_percent") == 0,
      "agent: drain passes and is reported (%r)" % res)

res = probe(cfg, "env", "127.0.0.1:3306", service="galera", server="ctrl-0")
check(res.ok and res.reason == "exit 0: galera/ctrl-0 at 127.0.0.1:9200 args=a b $X",
      "env: HAFRONT_* with the check's port, argv without a shell (%r)" % res)

res = probe(cfg, "failing", "127.0.0.1:3306")
check(not res.ok and res.reason == "exit 2: galera node not synced" and res.obs["exit_code"] == 2,
      "failing: exit 2 with its first line (%r)" % res)

res = probe(cfg, "hang", "127.0.0.1:3306")
check(not res.ok and res.reason == "timed out after 500ms (killed)" and res.obs["run"] == "timed-out",
      "hang: killed at the time-out (%r)" % res)


def dead(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


pid = int(open(os.path.join(d, "hang.pid")).read())
child = int(open(os.path.join(d, "hang-child.pid")).read())
check(dead(pid), "hang: the script is gone")
wait_for(lambda: dead(child), 5, "the script's background sleep to die")
check(True, "hang: its background child was killed with the process group")
print("PASS")

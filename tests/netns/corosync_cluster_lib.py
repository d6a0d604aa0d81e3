"""Starting a hafront cluster in the test bed: one real Corosync per node (its config
rendered by `hafrontctl corosync-conf` from the same YAML), then one hafrontd per node,
all running that one config file."""
import atexit
import os
import re
import shutil
import subprocess

from daemons import HAFRONTCTL, Hafront, check, wait_for


def corosync_conf(bed, cfg, node):
    """hafrontctl corosync-conf, with what a test cluster needs on top: no crypto, logs on
    stderr, a state folder of the node's own."""
    text = subprocess.run([HAFRONTCTL, "corosync-conf", "-c", cfg, "--no-crypto"], check=True,
                          capture_output=True, text=True).stdout
    text = re.sub(r"logging \{.*?\n\}", "logging {\n    to_stderr: yes\n    to_syslog: no\n    timestamp: hires\n}",
                  text, flags=re.S)
    state = os.path.join(bed.dir, node.name + "-state")
    os.makedirs(state, exist_ok=True)
    text += "\nsystem {\n    state_dir: %s\n}\n" % state
    path = os.path.join(bed.dir, node.name + "-corosync.conf")
    with open(path, "w") as f:
        f.write(text)
    return path


def start_corosync(bed, cfg, node):
    # Corosync's pid file is /run/corosync.pid, hard-coded: give each node its own /run.
    run = os.path.join(bed.dir, node.name + "-run")
    os.makedirs(run, exist_ok=True)
    proc = node.spawn(["corosync", "-f", "-c", corosync_conf(bed, cfg, node)],
                      log_path=os.path.join(bed.dir, node.name + "-corosync.log"), binds={"/run": run})
    _started.append(proc.pid)
    return proc


# Every Corosync a test started: what they leave in /dev/shm is removed at exit (the test
# bed has stopped them by then; the ones still running are left alone).
_started = []
atexit.register(lambda: cleanup_shm(_started))


def cleanup_shm(pids):
    """Remove what Corosync leaves in /dev/shm when it is killed (libqb's IPC rings,
    qb-<corosync pid>-<client pid>-*, about 3 MB per client, and its 8 MB blackbox,
    qb-corosync-<pid>-blackbox-*), for those of pids that are gone. Returns the pids
    cleaned; the others are left for a later call."""
    gone = [p for p in pids if not os.path.exists("/proc/%d" % p)]
    if not gone:
        return []
    want = {str(p) for p in gone}
    try:
        entries = os.listdir("/dev/shm")
    except OSError:
        return []
    for e in entries:
        parts = e.split("-")
        if (len(parts) >= 3 and parts[0] == "qb" and parts[1] in want) or \
                (len(parts) >= 4 and parts[:2] == ["qb", "corosync"] and parts[2] in want):
            path = os.path.join("/dev/shm", e)
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.unlink(path)
                except OSError:
                    pass
    return gone


def start_cluster(bed, config_text):
    """Returns ({node name: Hafront}, {node name: corosync Proc}) once every Corosync is
    quorate and every hafrontd answers."""
    bed.write_hosts()  # Corosync resolves its nodelist names
    cfg = os.path.join(bed.dir, "cluster.yaml")
    with open(cfg, "w") as f:
        f.write(config_text)
    coro = {n.name: start_corosync(bed, cfg, n) for n in bed.nodes}
    for n in bed.nodes:
        wait_for(lambda n=n: n.run(["corosync-quorumtool", "-s"], check=False).returncode == 0, 15,
                 "%s's corosync quorate" % n.name, interval=0.1)
    check(True, "%d real Corosyncs formed a quorate ring" % len(bed.nodes))
    return {n.name: Hafront(bed, n, config=cfg).start() for n in bed.nodes}, coro

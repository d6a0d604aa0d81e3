"""What the nodes' kernels say about a leased VIP, read from outside the nodes.

The BPF gate on a node's uplink answers ARP for a VIP and admits its traffic exactly while
the expiry in its map `leases` is later than CLOCK_BOOTTIME (bpf/lease.bpf.c). The map is a
kernel object: it is read here with the bpf(2) system call from the host, so a paused,
killed or cut-off node is read just as well as a healthy one, and nothing runs inside the
node. Which map is the node's is found from the program attached to its uplink's tc
ingress hook (`tc -n NS filter show`): every hafrontd loads its own program and map and
replaces the filter, so the map is looked up again whenever a daemon (re)starts.

GateSampler samples every node every few ms (in a process of its own) and keeps, per
(node, VIP), only the changes of the value: Change(value, first_seen, last_seen,
prev_sample, next_sample), the value being the expiry in time.monotonic() seconds. A value
seen at two reads was in the map during the whole time between them (renewals only extend
the expiry, a release writes 0, and a send time never repeats; 0 can repeat, so the entry's
write counter is read too, and a value written again between two reads starts a new
record: a VIP taken and released within one sampling interval is not hidden), so "valid for sure" is
[first_seen, min(last_seen, expiry)] and "maybe valid" adds
the gaps before the first and after the last read (a value may have come and gone
unseen there): violations are reported only from the first, and only when the second
cannot explain what the client saw.

Standard library only (ctypes for bpf(2)); needs root. The `driver: address` is not read.
"""
import ctypes
import ipaddress
import json
import os
import subprocess
import sys
import threading
import time

__all__ = ["BpfMap", "LeaseMaps", "GateSampler", "Change", "boottime_offset"]

_libc = ctypes.CDLL(None, use_errno=True)
_SYS_BPF = 321  # x86_64
BPF_MAP_LOOKUP_ELEM = 1
BPF_PROG_GET_FD_BY_ID = 13
BPF_MAP_GET_FD_BY_ID = 14
BPF_OBJ_GET_INFO_BY_FD = 15
AF_INET = 2


def _bpf(cmd, attr):
    r = _libc.syscall(_SYS_BPF, ctypes.c_int(cmd), ctypes.byref(attr), ctypes.c_uint(ctypes.sizeof(attr)))
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, "bpf(%d): %s" % (cmd, os.strerror(e)))
    return r


class _IdAttr(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint32), ("next_id", ctypes.c_uint32), ("open_flags", ctypes.c_uint32)]


class _InfoAttr(ctypes.Structure):
    _fields_ = [("bpf_fd", ctypes.c_uint32), ("info_len", ctypes.c_uint32), ("info", ctypes.c_uint64)]


class _ElemAttr(ctypes.Structure):
    _fields_ = [("map_fd", ctypes.c_uint32), ("pad", ctypes.c_uint32), ("key", ctypes.c_uint64),
                ("value", ctypes.c_uint64), ("flags", ctypes.c_uint64)]


class _ProgInfo(ctypes.Structure):  # struct bpf_prog_info, the leading fields
    _fields_ = [("type", ctypes.c_uint32), ("id", ctypes.c_uint32), ("tag", ctypes.c_uint8 * 8),
                ("jited_prog_len", ctypes.c_uint32), ("xlated_prog_len", ctypes.c_uint32),
                ("jited_prog_insns", ctypes.c_uint64), ("xlated_prog_insns", ctypes.c_uint64),
                ("load_time", ctypes.c_uint64), ("created_by_uid", ctypes.c_uint32),
                ("nr_map_ids", ctypes.c_uint32), ("map_ids", ctypes.c_uint64), ("name", ctypes.c_char * 16)]


class _MapInfo(ctypes.Structure):  # struct bpf_map_info, the leading fields
    _fields_ = [("type", ctypes.c_uint32), ("id", ctypes.c_uint32), ("key_size", ctypes.c_uint32),
                ("value_size", ctypes.c_uint32), ("max_entries", ctypes.c_uint32), ("map_flags", ctypes.c_uint32),
                ("name", ctypes.c_char * 16)]


class _LeaseKey(ctypes.Structure):  # bpf/lease_layout.h: struct hafront_lease_key
    _fields_ = [("family", ctypes.c_uint8), ("pad", ctypes.c_uint8 * 3), ("addr", ctypes.c_uint8 * 16)]


class _LeaseValue(ctypes.Structure):  # struct hafront_lease_value
    _fields_ = [("expiry_ns", ctypes.c_uint64), ("mac", ctypes.c_uint8 * 6), ("writes", ctypes.c_uint16)]


def boottime_offset():
    """CLOCK_BOOTTIME - CLOCK_MONOTONIC in seconds (constant while the machine does not
    suspend; read between two monotonic reads)."""
    a = time.monotonic()
    b = time.clock_gettime(time.CLOCK_BOOTTIME)
    c = time.monotonic()
    return b - (a + c) / 2


def _prog_map_ids(prog_id):
    fd = _bpf(BPF_PROG_GET_FD_BY_ID, _IdAttr(id=prog_id))
    try:
        ids = (ctypes.c_uint32 * 16)()
        info = _ProgInfo(nr_map_ids=16, map_ids=ctypes.addressof(ids))
        _bpf(BPF_OBJ_GET_INFO_BY_FD, _InfoAttr(bpf_fd=fd, info_len=ctypes.sizeof(info), info=ctypes.addressof(info)))
        return list(ids[:min(info.nr_map_ids, 16)])
    finally:
        os.close(fd)


class BpfMap:
    """An open BPF map (by id), with its name and sizes."""

    def __init__(self, map_id):
        self.id = map_id
        self.fd = _bpf(BPF_MAP_GET_FD_BY_ID, _IdAttr(id=map_id))
        info = _MapInfo()
        _bpf(BPF_OBJ_GET_INFO_BY_FD, _InfoAttr(bpf_fd=self.fd, info_len=ctypes.sizeof(info),
                                               info=ctypes.addressof(info)))
        self.name = info.name.decode(errors="replace")
        self.key_size, self.value_size = info.key_size, info.value_size

    def lookup(self, key, value):
        """Fill value (a ctypes object) for key; False if there is no entry."""
        attr = _ElemAttr(map_fd=self.fd, key=ctypes.addressof(key), value=ctypes.addressof(value))
        r = _libc.syscall(_SYS_BPF, ctypes.c_int(BPF_MAP_LOOKUP_ELEM), ctypes.byref(attr),
                          ctypes.c_uint(ctypes.sizeof(attr)))
        return r == 0

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def attached_prog_id(ns, dev="eth0"):
    """Id of the BPF program named lease_gate on ns/dev's tc ingress hook, or None if
    there is none. Raises OSError if tc could not tell."""
    r = subprocess.run(["tc", "-n", ns, "-j", "filter", "show", "dev", dev, "ingress"], capture_output=True,
                       text=True, timeout=10)
    if r.returncode != 0:
        raise OSError("tc -n %s filter show dev %s ingress: %s" % (ns, dev, r.stderr.strip()))
    try:
        filters = json.loads(r.stdout or "[]")
    except ValueError as e:
        raise OSError("tc printed no JSON: %s" % e)
    for f in filters:
        prog = (f.get("options") or {}).get("prog") or {}
        if prog.get("name") == "lease_gate" and prog.get("id"):
            return int(prog["id"])
    return None


class LeaseMaps:
    """The lease map of each node, found through the program on its uplink."""

    def __init__(self, nodes, vips, dev="eth0"):
        """nodes: {name: netns name}; vips: {vip name: IPv4 address}."""
        self.nodes = dict(nodes)
        self.dev = dev
        self.keys = {}
        for name, ip in vips.items():
            k = _LeaseKey(family=AF_INET)
            for i, b in enumerate(ipaddress.IPv4Address(ip).packed):
                k.addr[i] = b
            self.keys[name] = k
        self.maps = {}      # node -> BpfMap
        self.prog = {}      # node -> prog id
        self.lock = threading.Lock()
        self.value = _LeaseValue()

    def refresh(self, node):
        """Look up node's program again; True if it changed. Keeps the map it has when tc
        fails (raises OSError then)."""
        pid = attached_prog_id(self.nodes[node], self.dev)
        with self.lock:
            if pid == self.prog.get(node):
                return False
            old = self.maps.pop(node, None)
            self.prog[node] = pid
            if pid is not None:
                try:
                    for mid in _prog_map_ids(pid):
                        m = BpfMap(mid)
                        if m.name == "leases":
                            self.maps[node] = m
                            break
                        m.close()
                except OSError:
                    self.prog[node] = None   # replaced again meanwhile: try next time
            if old is not None:
                old.close()
            return True

    def read(self, node, vip):
        """(expiry in CLOCK_BOOTTIME ns, writes) of node's gate for vip; (0, None) without an
        entry or program. `writes` counts the daemon's writes of the entry: a release (0)
        read twice with another write between was valid for a moment in between."""
        with self.lock:
            m = self.maps.get(node)
            if m is None or not m.lookup(self.keys[vip], self.value):
                return 0, None
            return self.value.expiry_ns, self.value.writes

    def close(self):
        with self.lock:
            for m in self.maps.values():
                m.close()
            self.maps.clear()


class Change:
    """One value of one (node, VIP) gate and when it was seen (monotonic seconds)."""
    __slots__ = ("node", "vip", "value", "first_seen", "last_seen", "prev_sample", "next_sample", "logged")

    def __init__(self, node, vip, value, first_seen, prev_sample):
        self.node, self.vip, self.value = node, vip, value
        self.first_seen = self.last_seen = first_seen
        self.prev_sample = prev_sample
        self.next_sample = None
        self.logged = False

    def sure_valid(self):
        """(start, end) during which the gate was valid for sure, or None."""
        if self.value <= self.first_seen:
            return None
        return self.first_seen, min(self.last_seen, self.value)

    def maybe_valid_during(self, a, b):
        """Whether the gate may have been valid at some instant of [a, b] as far as this
        record tells: while the value was read it was valid before its expiry; in the gap
        before its first read and after its last one any value may have been written and
        overwritten unseen (a renewal and an expiry within one sample), so the gaps count
        as maybe valid."""
        if self.prev_sample is not None and a < self.first_seen and b > self.prev_sample:
            return True
        if a <= min(self.last_seen, self.value) and b >= self.first_seen and self.value > self.first_seen:
            return True
        return self.next_sample is not None and a < self.next_sample and b > self.last_seen

    def __repr__(self):
        return "<%s %s value=%.3f seen %.3f..%.3f>" % (self.node, self.vip, self.value, self.first_seen,
                                                      self.last_seen)


class GateSampler:
    """Samples every (node, VIP) gate every interval_ms and keeps the value changes (see
    the module doc), lease expiries converted to monotonic time. The reads run in a
    process of their own (`kernel_view.py sample`, started here, outside every node), so
    the test's other threads cannot delay them; it reports each new value with the time
    of its first read and of the read before, and every 50 ms the time of its latest
    round (every value not reported changed was read again then)."""

    def __init__(self, nodes, vips, interval_ms=5.0):
        """nodes: {name: netns}; vips: {name: IPv4 address}."""
        self.nodes = list(nodes)
        self.vips = list(vips)
        self.interval = interval_ms / 1000.0
        self.offset = boottime_offset()
        self.changes = []          # every Change, in order of first_seen
        self.current = {}          # (node, vip) -> Change
        self.prog = {n: None for n in self.nodes}
        self.samples = 0
        self.late = 0              # rounds more than 5 intervals after the previous one
        self.max_gap = 0.0
        self.lock = threading.Condition()
        self._seq = 0
        self._replies = {}
        argv = [sys.executable, "-u", os.path.abspath(__file__), "sample", "--interval-ms", str(interval_ms)]
        argv += ["--node=%s=%s" % kv for kv in nodes.items()] + ["--vip=%s=%s" % kv for kv in vips.items()]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._reader, daemon=True, name="gate-sampler")
        self.thread.start()
        if not self._ready.wait(15):
            self.stop()
            raise RuntimeError("the gate sampler did not start")

    def _reader(self):
        for line in self.proc.stdout:
            parts = line.split()
            if not parts:
                continue
            with self.lock:
                if parts[0] == "C":        # C node vip raw_ns t_read t_prev_read
                    node, vip = parts[1], parts[2]
                    raw, t = int(parts[3]), float(parts[4])
                    prev = None if parts[5] == "-" else float(parts[5])
                    value = raw / 1e9 - self.offset if raw else 0.0
                    cur = self.current.get((node, vip))
                    if cur is not None:
                        cur.last_seen = max(cur.last_seen, prev if prev is not None else cur.last_seen)
                        cur.next_sample = t
                    c = Change(node, vip, value, t, prev)
                    self.current[(node, vip)] = c
                    self.changes.append(c)
                elif parts[0] == "S":      # S t_round samples max_gap late
                    t = float(parts[1])
                    for c in self.current.values():
                        c.last_seen = max(c.last_seen, t)
                    self.samples, self.max_gap, self.late = int(parts[2]), float(parts[3]), int(parts[4])
                elif parts[0] == "P":      # P node prog_id|- seq
                    self.prog[parts[1]] = None if parts[2] == "-" else int(parts[2])
                    self._replies[int(parts[3])] = self.prog[parts[1]]
                    self.lock.notify_all()
                elif parts[0] == "ready":
                    self._ready.set()

    def refresh(self, node, timeout=5.0):
        """Look node's gate up again now (its daemon was (re)started); returns the id of
        the program on its uplink, or None."""
        with self.lock:
            self._seq += 1
            seq = self._seq
        try:
            self.proc.stdin.write("R %s %d\n" % (node, seq))
            self.proc.stdin.flush()
        except OSError:
            return None
        deadline = time.monotonic() + timeout
        with self.lock:
            while seq not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    return self.prog.get(node)
                self.lock.wait(left)
            return self._replies.pop(seq)

    def snapshot(self, since=None):
        """The changes that were still current at or after since (all if None)."""
        with self.lock:
            if since is None:
                return list(self.changes)
            return [c for c in self.changes if (c.next_sample or c.last_seen) >= since]

    def forget(self, before):
        """Drop changes that ended before `before` (bounded memory on long runs)."""
        with self.lock:
            self.changes = [c for c in self.changes if c.next_sample is None or c.next_sample >= before]

    def valid_now(self, vip, slack=0.0):
        """Nodes whose current gate value for vip is valid now (+ slack)."""
        now = time.monotonic()
        with self.lock:
            return sorted(n for (n, v), c in self.current.items() if v == vip and c.value > now + slack)

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.thread.join(2)
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass


def _sample_main(argv):
    """The sampling process: reads every gate every interval, prints changes (see
    GateSampler). Exits when its stdin closes (the test ended, however it ended)."""
    import argparse
    import select
    ap = argparse.ArgumentParser(prog="kernel_view.py sample")
    ap.add_argument("--interval-ms", type=float, default=5.0)
    ap.add_argument("--node", action="append", default=[], help="NAME=NETNS")
    ap.add_argument("--vip", action="append", default=[], help="NAME=IPv4")
    a = ap.parse_args(argv)
    nodes = dict(x.split("=", 1) for x in a.node)
    vips = dict(x.split("=", 1) for x in a.vip)
    view = LeaseMaps(nodes, vips)
    for n in nodes:
        try:
            view.refresh(n)
        except (OSError, subprocess.SubprocessError):
            pass
    out = sys.stdout
    print("ready", flush=True)
    interval = a.interval_ms / 1000.0
    last = {}       # (node, vip) -> value
    prev_read = {}  # (node, vip) -> time of its previous read
    samples = late = 0
    max_gap = 0.0
    prev_round = None
    last_report = 0.0
    buf = ""
    nxt = time.monotonic()
    fd = sys.stdin.fileno()
    while True:
        r, _, _ = select.select([fd], [], [], 0)
        if r:
            data = os.read(fd, 4096).decode()
            if not data:
                return 0
            buf += data
            *lines, buf = buf.split("\n")
            for line in lines:
                parts = line.split()
                if len(parts) == 3 and parts[0] == "R" and parts[1] in nodes:
                    try:
                        view.refresh(parts[1])
                    except (OSError, subprocess.SubprocessError):
                        pass
                    pid = view.prog.get(parts[1])
                    out.write("P %s %s %s\n" % (parts[1], "-" if pid is None else pid, parts[2]))
        t_first = None
        for n in nodes:
            for v in vips:
                # The read happened at some instant of [before, t]: a new value is there
                # for sure from t on; the previous one was last there for sure at the
                # previous read's `before` (a scheduler delay between the read and the
                # clock must not stretch what was seen).
                before = time.monotonic()
                raw, writes = view.read(n, v)
                t = time.monotonic()
                t_first = before if t_first is None else t_first
                # The same value written again (a release, an acquire, a release) is a
                # change too: the gap between the two reads may hide a valid moment.
                if last.get((n, v)) != (raw, writes):
                    last[(n, v)] = (raw, writes)
                    p = prev_read.get((n, v))
                    out.write("C %s %s %d %.6f %s\n" % (n, v, raw, t, "-" if p is None else "%.6f" % p))
                prev_read[(n, v)] = before
        samples += 1
        if prev_round is not None:
            gap = t - prev_round
            max_gap = max(max_gap, gap)
            if gap > 5 * interval:
                late += 1
        prev_round = t
        if t - last_report >= 0.05:   # every value was read again at or after t_first
            out.write("S %.6f %d %.6f %d\n" % (t_first, samples, max_gap, late))
            last_report = t
        out.flush()
        nxt += interval
        delay = nxt - time.monotonic()
        if delay < 0:
            nxt = time.monotonic()
        else:
            time.sleep(delay)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "sample":
        sys.exit(_sample_main(sys.argv[2:]))
    sys.exit("usage: kernel_view.py sample --node NAME=NETNS ... --vip NAME=IPv4 ... [--interval-ms 5]")

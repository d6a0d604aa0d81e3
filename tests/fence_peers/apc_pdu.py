"""An APC switched rack PDU (rPDU) behind snmpd: the net-snmp pass_persist program for
.1.3.6.1.4.1.318 (snmpd itself answers sysObjectID .1.3.6.1.4.1.318.1.3.4.5, which makes
fence_apc_snmp pick its "APC rPDU" OID set).

    pass_persist .1.3.6.1.4.1.318 PYTHON -I -S apc_pdu.py ROOT OUTLETS_JSON

OUTLETS_JSON: {"device": "pdu", "outlets": {"1": {"node": "n1", "name": "n1-psu1",
"key": "pdu:1"}, ...}}. Outlet states live in the power model (ROOT/nodes/<node>/);
a command is answered only after the model acted (killed the node's processes when its
last outlet went off). Served:

  .318.1.1.12.1.1.0           rPDUIdentName                    string
  .318.1.1.12.1.8.0           rPDUIdentDeviceNumOutlets        integer
  .318.1.1.12.3.3.1.1.{1,2,4}.N  rPDUOutletControl index, name, command
                              (read: 1 on, 2 off; write: 1 on, 2 off, 3 reboot)
  .318.1.1.12.3.5.1.1.{1,2,3,4}.N rPDUOutletStatus index, name, phase, state (1 on, 2 off)

Fault knob cannot_act: a write answers inconsistent-value (snmpset fails, agent exits 1).
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fence_peers import CannotAct, KillFailed, PowerModel  # noqa: E402

BASE = (1, 3, 6, 1, 4, 1, 318)
CONTROL = BASE + (1, 1, 12, 3, 3, 1, 1)
STATUS = BASE + (1, 1, 12, 3, 5, 1, 1)


def oid_str(t):
    return "." + ".".join(str(x) for x in t)


def parse_oid(s):
    return tuple(int(x) for x in s.strip().strip(".").split(".") if x != "")


class Pdu:
    def __init__(self, root, conf_path):
        with open(conf_path) as f:
            conf = json.load(f)
        self.device = conf["device"]
        self.outlets = {int(k): v for k, v in conf["outlets"].items()}
        self.model = PowerModel(root)

    def state(self, n):
        o = self.outlets[n]
        return 1 if self.model.state(o["node"])["outlets"].get(o["key"]) else 2

    def table(self):
        """Sorted [(oid tuple, type, value-function)]."""
        rows = [(BASE + (1, 1, 12, 1, 1, 0), "string", lambda: "hafront-%s" % self.device),
                (BASE + (1, 1, 12, 1, 8, 0), "integer", lambda: len(self.outlets))]
        for n, o in self.outlets.items():
            rows += [(CONTROL + (1, n), "integer", lambda n=n: n),
                     (CONTROL + (2, n), "string", lambda o=o: o["name"]),
                     (CONTROL + (4, n), "integer", lambda n=n: self.state(n)),
                     (STATUS + (1, n), "integer", lambda n=n: n),
                     (STATUS + (2, n), "string", lambda o=o: o["name"]),
                     (STATUS + (3, n), "integer", lambda: 1),
                     (STATUS + (4, n), "integer", lambda n=n: self.state(n))]
        rows.sort(key=lambda r: r[0])
        return rows

    def get(self, oid, nxt):
        for o, typ, fn in self.table():
            if (o > oid) if nxt else (o == oid):
                return "%s\n%s\n%s\n" % (oid_str(o), typ, fn())
        return "NONE\n"

    def set(self, oid, typ_value):
        parts = typ_value.split(None, 1)
        if len(oid) != len(CONTROL) + 2 or oid[:len(CONTROL)] != CONTROL or oid[-2] != 4 \
                or oid[-1] not in self.outlets:
            return "not-writable\n"
        if not parts or parts[0].lower() != "integer":
            return "wrong-type\n"
        try:
            cmd = int(parts[1])
        except (IndexError, ValueError):
            return "wrong-value\n"
        o = self.outlets[oid[-1]]
        why = "snmp outlet %d command %d" % (oid[-1], cmd)
        try:
            self.model.check_can_act(self.device)
            if cmd == 1:
                self.model.set_outlet(o["node"], o["key"], True, self.device, why)
            elif cmd == 2:
                self.model.set_outlet(o["node"], o["key"], False, self.device, why)
            elif cmd == 3:
                self.model.cycle_outlet(o["node"], o["key"], self.device, why)
            else:
                return "wrong-value\n"
        except (CannotAct, KillFailed) as e:
            print(str(e), file=sys.stderr, flush=True)
            return "inconsistent-value\n"
        return "DONE\n"


def main(argv):
    pdu = Pdu(argv[0], argv[1])
    inp = sys.stdin
    out = sys.stdout
    while True:
        line = inp.readline()
        if not line:
            return 0
        cmd = line.strip().lower()
        if cmd == "":
            continue
        if cmd == "ping":
            reply = "PONG\n"
        elif cmd in ("get", "getnext"):
            try:
                reply = pdu.get(parse_oid(inp.readline()), cmd == "getnext")
            except ValueError:
                reply = "NONE\n"
        elif cmd == "set":
            oid = inp.readline()
            tv = inp.readline().strip()
            try:
                reply = pdu.set(parse_oid(oid), tv)
            except ValueError:
                reply = "not-writable\n"
        else:
            reply = "NONE\n"
        out.write(reply)
        out.flush()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

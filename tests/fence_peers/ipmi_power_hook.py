"""chassis_control hook of ipmi_sim (one simulated IPMI BMC), run synchronously by the
simulator for each chassis request:

    ipmi_power_hook.py ROOT DEVICE NODE get power        prints power:1 / power:0
    ipmi_power_hook.py ROOT DEVICE NODE set power 0|1    chassis off / on
    ipmi_power_hook.py ROOT DEVICE NODE set reset 1      hard reset (off, then on)
    ipmi_power_hook.py ROOT DEVICE NODE set shutdown 1   soft off (modelled as off)

A set returns only after the power model has killed the node's registered processes (on
a powered -> unpowered transition). A non-zero exit makes ipmi_sim answer with completion
code 0xFF, so the fence agent fails: used for the fault knob cannot_act (and when
processes survive SIGKILL).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fence_peers import CannotAct, KillFailed, PowerModel  # noqa: E402


def main(argv):
    if len(argv) < 5:
        print("usage: ipmi_power_hook.py ROOT DEVICE NODE get|set ITEM [VALUE]", file=sys.stderr)
        return 2
    root, device, node, op, item = argv[:5]
    value = argv[5] if len(argv) > 5 else None
    model = PowerModel(root)
    if op == "get":
        if item == "power":
            print("power:%d" % (1 if model.state(node)["chassis"] else 0))
            return 0
        print("%s: unsupported get %s" % (device, item), file=sys.stderr)
        return 1
    if op != "set":
        print("%s: unsupported operation %s" % (device, op), file=sys.stderr)
        return 1
    why = "ipmi set %s %s" % (item, value)
    try:
        model.check_can_act(device)
        if item == "power":
            model.set_chassis(node, value == "1", device, why)
        elif item == "reset":
            if model.state(node)["chassis"]:
                model.cycle_chassis(node, device, why)
        elif item == "shutdown":
            model.set_chassis(node, False, device, why)
        else:
            print("%s: unsupported set %s" % (device, item), file=sys.stderr)
            return 1
    except (CannotAct, KillFailed) as e:
        print(str(e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

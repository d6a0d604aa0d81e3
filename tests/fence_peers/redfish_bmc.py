"""A small Redfish BMC over HTTPS for fence_redfish, driving one node's chassis in the
power model (shared with that node's IPMI BMC).

    redfish_bmc.py --root ROOT --device NAME --node NODE --ip IP --port 443
                   --cert CERT --key KEY --username USER --password-file FILE

Implements what fence_redfish uses: GET /redfish/v1 (Systems link), GET
/redfish/v1/Systems (one member), GET /redfish/v1/Systems/1 (PowerState, the
#ComputerSystem.Reset target) and POST .../Actions/ComputerSystem.Reset with ResetType
On | ForceOff | GracefulShutdown | ForceRestart | GracefulRestart | PowerCycle | Nmi
(204 after the power model acted). Basic auth; the password file is read per request.
Fault knob cannot_act: a reset answers 500 (fence_redfish ignores the status of its POST,
so it then fails when the power state does not change within power_timeout).
"""
import argparse
import base64
import hmac
import json
import os
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fence_peers import CannotAct, KillFailed, PowerModel  # noqa: E402

SYSTEM = "/redfish/v1/Systems/1"
RESET = SYSTEM + "/Actions/ComputerSystem.Reset"
RESET_TYPES = ["On", "ForceOff", "GracefulShutdown", "ForceRestart", "GracefulRestart",
               "PowerCycle", "Nmi"]


def make_handler(args, model):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "hafront-fence-peers-redfish/1"

        def setup(self):
            self.request.settimeout(10)
            self.request.do_handshake()   # in this request's thread, not the accept loop
            super().setup()

        def log_message(self, fmt, *a):
            sys.stderr.write("%s %s\n" % (self.address_string(), fmt % a))
            sys.stderr.flush()

        def _send(self, code, body=None, headers=()):
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(code)
            for k, v in headers:
                self.send_header(k, v)
            if body is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("OData-Version", "4.0")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if data:
                self.wfile.write(data)

        def _error(self, code, msg):
            self._send(code, {"error": {"code": "Base.1.8.GeneralError", "message": msg}})

        def _authorized(self):
            with open(args.password_file) as f:
                password = f.read().strip()
            want = "Basic " + base64.b64encode(
                ("%s:%s" % (args.username, password)).encode()).decode()
            got = self.headers.get("Authorization", "")
            if hmac.compare_digest(got.encode(), want.encode()):
                return True
            self._send(401, {"error": {"code": "Base.1.8.InsufficientPrivilege",
                                       "message": "authentication required"}},
                       [("WWW-Authenticate", 'Basic realm="redfish"')])
            return False

        def do_GET(self):
            path = self.path.split("?")[0].rstrip("/") or "/"
            if path == "/redfish":
                return self._send(200, {"v1": "/redfish/v1/"})
            if not self._authorized():
                return
            if path == "/redfish/v1":
                return self._send(200, {
                    "@odata.id": "/redfish/v1", "@odata.type": "#ServiceRoot.v1_5_0.ServiceRoot",
                    "Id": "RootService", "Name": "Root Service", "RedfishVersion": "1.6.0",
                    "Systems": {"@odata.id": "/redfish/v1/Systems"}})
            if path == "/redfish/v1/Systems":
                return self._send(200, {
                    "@odata.id": "/redfish/v1/Systems",
                    "@odata.type": "#ComputerSystemCollection.ComputerSystemCollection",
                    "Name": "Computer System Collection",
                    "Members": [{"@odata.id": SYSTEM}], "Members@odata.count": 1})
            if path == SYSTEM:
                on = model.state(args.node)["chassis"]
                return self._send(200, {
                    "@odata.id": SYSTEM, "@odata.type": "#ComputerSystem.v1_10_0.ComputerSystem",
                    "Id": "1", "Name": args.node, "HostName": args.node,
                    "PowerState": "On" if on else "Off",
                    "Status": {"State": "Enabled", "Health": "OK"},
                    "Actions": {"#ComputerSystem.Reset": {
                        "target": RESET, "ResetType@Redfish.AllowableValues": RESET_TYPES}}})
            self._error(404, "no resource %s" % path)

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if not self._authorized():
                return
            if self.path.split("?")[0] != RESET:
                return self._error(404, "no action %s" % self.path)
            try:
                reset = json.loads(raw or b"{}").get("ResetType")
            except ValueError:
                return self._error(400, "body is not JSON")
            if reset not in RESET_TYPES:
                return self._error(400, "unsupported ResetType %r" % reset)
            why = "redfish ResetType %s" % reset
            try:
                model.check_can_act(args.device)
                if reset == "On":
                    model.set_chassis(args.node, True, args.device, why)
                elif reset in ("ForceOff", "GracefulShutdown"):
                    model.set_chassis(args.node, False, args.device, why)
                elif reset in ("ForceRestart", "GracefulRestart", "PowerCycle"):
                    model.cycle_chassis(args.node, args.device, why)
            except (CannotAct, KillFailed) as e:
                return self._error(500, str(e))
            self._send(204)

    return Handler


def main(argv):
    ap = argparse.ArgumentParser()
    for a in ("root", "device", "node", "ip", "cert", "key", "username", "password_file"):
        ap.add_argument("--" + a.replace("_", "-"), required=True)
    ap.add_argument("--port", type=int, default=443)
    args = ap.parse_args(argv)
    model = PowerModel(args.root)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    srv = ThreadingHTTPServer((args.ip, args.port), make_handler(args, model))
    srv.daemon_threads = True
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
    print("redfish %s for %s listening on https://%s:%d" % (args.device, args.node, args.ip,
                                                          args.port), flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

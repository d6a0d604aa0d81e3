"""The tcp, http and https probes against a real nginx (its own prefix, config, pid and logs
in a temporary folder, `daemon off; master_process off;`, killed by pid at the end): 200
with the expected body, 503, a wrong body, a regex, a JSON field, and HTTPS with a
self-signed certificate made here with `openssl req -x509` (verify on fails naming the
certificate problem; verify off passes; ca_file = that certificate with the right name
passes, with the wrong name fails). nginx cannot be slow on purpose, so a tiny Python
server answers the slow location. Everything runs on 127.0.0.1 (in a network namespace of
its own when run as root)."""
import os
import signal
import subprocess
import time

import tcp_tools

tcp_tools.setup()  # before any thread: a namespace with only lo when root

import harness  # noqa: E402
from harness import check, fail, tempdir, wait_for  # noqa: E402
from probe_tools import probe, write_config  # noqa: E402

BODY = '{"version": {"id": "v3.14", "status": "stable"}}'

HTTP_BLOCK = """
  log_format probe '$request|$http_host|$ssl_server_name|$http_user_agent';
  access_log {dir}/access.log probe;
  default_type application/json;
  server {{
    listen 127.0.0.1:{http_port};
    listen 127.0.0.1:{https_port} ssl;
    server_name keystone.test;
    ssl_certificate {dir}/cert.pem;
    ssl_certificate_key {dir}/key.pem;
    location = /v3 {{ return 200 '{body}'; }}
    location = /down {{ return 503; }}
    location = /deprecated {{ return 200 '{{"version": {{"status": "deprecated"}}}}'; }}
  }}
"""

d = tempdir()
os.chmod(d, 0o755)
http_port, https_port = tcp_tools.free_port(), tcp_tools.free_port()

# A self-signed certificate for keystone.test.
r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", os.path.join(d, "key.pem"), "-out", os.path.join(d, "cert.pem"),
                    "-days", "2", "-subj", "/CN=keystone.test", "-addext", "subjectAltName=DNS:keystone.test"],
                   capture_output=True, text=True)
if r.returncode != 0:
    fail("openssl req failed: %s" % r.stderr)

nginx = harness.start_nginx(d, HTTP_BLOCK.format(dir=d, http_port=http_port, https_port=https_port, body=BODY),
                            lambda: tcp_tools.can_connect(http_port) and tcp_tools.can_connect(https_port),
                            connections=256)


def slow(conn, backend):
    """Reads the request, then answers after 3 s: longer than the check's time-out."""
    conn.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return
        data += chunk
    backend.record(data)
    time.sleep(3)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


slow_server = tcp_tools.Backend(slow)
closed_port = tcp_tools.free_port()

cfg = write_config(d, """
  port-open: {tcp: {}, timeout: 2s}
  keystone: {http: {path: /v3, expect_status: 200, expect_body: '"id": "v3'}, timeout: 2s}
  keystone-json: {http: {path: /v3, expect_json: {field: /version/status, equals: stable}}, timeout: 2s}
  keystone-regex: {http: {path: /v3, expect_body_regex: '"status":\\s*"stable"'}, timeout: 2s}
  down: {http: {path: /down}, timeout: 2s}
  wrong-body: {http: {path: /v3, expect_body: '"id": "v4'}, timeout: 2s}
  deprecated: {http: {path: /deprecated, expect_json: {field: /version/status, equals: stable}}, timeout: 2s}
  slow: {http: {path: /slow}, interval: 2s, timeout: 500ms}
  tls-verify: {https: {path: /v3}, timeout: 2s}
  tls-no-verify: {https: {path: /v3, verify: false}, timeout: 2s}
  tls-ca: {https: {path: /v3, host: keystone.test, ca_file: cert.pem}, timeout: 2s}
  tls-ca-wrong-name: {https: {path: /v3, ca_file: cert.pem, sni: other.test}, timeout: 2s}
""")
web = "127.0.0.1:%d" % http_port
tls = "127.0.0.1:%d" % https_port

res = probe(cfg, "port-open", web)
check(res.ok and res.reason == "connected", "tcp: nginx accepts (%r)" % res)
res = probe(cfg, "port-open", "127.0.0.1:%d" % closed_port)
check(not res.ok and res.reason == "connect refused" and res.obs["run"] == "unreachable",
      "tcp: a closed port is 'connect refused' (%r)" % res)

res = probe(cfg, "keystone", web)
check(res.ok and res.reason == "HTTP 200 from GET /v3" and res.obs["http_status"] == 200,
      "http: 200 with the expected body passes (%r)" % res)
check(res.obs["body_excerpt"] == BODY, "http: the body excerpt is what nginx sent")
access = open(os.path.join(d, "access.log")).read().splitlines()
check(access and access[-1].startswith("GET /v3 HTTP/1.1|127.0.0.1:%d|-|hafront-check/" % http_port),
      "nginx saw GET /v3 with Host 127.0.0.1:%d and our User-Agent: %r" % (http_port, access[-1:]))
res = probe(cfg, "keystone-json", web)
check(res.ok, "http: JSON /version/status equals stable (%r)" % res)
res = probe(cfg, "keystone-regex", web)
check(res.ok, "http: the body regex matches (%r)" % res)

res = probe(cfg, "down", web)
check(not res.ok and res.reason == "HTTP 503 from GET /down" and res.obs["http_status"] == 503
      and res.obs["run"] == "answered", "http: 503 fails with 'HTTP 503 from GET /down' (%r)" % res)
check("503 Service Temporarily Unavailable" in res.obs.get("body_excerpt", ""),
      "http: the 503 page is the evidence")
res = probe(cfg, "wrong-body", web)
check(not res.ok and res.reason == 'body lacks "\\"id\\": \\"v4"', "http: a wrong body says what it lacks (%r)" % res)
res = probe(cfg, "deprecated", web)
check(not res.ok and res.reason == 'JSON /version/status is "deprecated", want "stable"',
      "http: a JSON field with another value says both (%r)" % res)

res = probe(cfg, "slow", "127.0.0.1:%d" % slow_server.port)
check(not res.ok and res.obs["run"] == "timed-out"
      and res.reason == "timed out after 500ms waiting for the response head",
      "http: a slow server times out waiting for the response head (%r)" % res)
check(res.obs["duration_ms"] < 2500, "http: the slow probe ended at its time-out, not at the answer (%d ms)"
      % res.obs["duration_ms"])

res = probe(cfg, "tls-verify", tls)
check(not res.ok and res.reason == "TLS handshake failed: certificate verify failed (self-signed certificate)",
      "https: verify on fails naming the certificate problem (%r)" % res)
res = probe(cfg, "tls-no-verify", tls)
check(res.ok and res.reason == "HTTP 200 from GET /v3", "https: verify off passes (%r)" % res)
res = probe(cfg, "tls-ca", tls)
check(res.ok and res.reason == "HTTP 200 from GET /v3",
      "https: ca_file = the certificate and host keystone.test pass (%r)" % res)
access = open(os.path.join(d, "access.log")).read().splitlines()
check(access[-1].startswith("GET /v3 HTTP/1.1|keystone.test|keystone.test|"),
      "nginx saw Host and SNI keystone.test: %r" % access[-1])
res = probe(cfg, "tls-ca-wrong-name", tls)
check(not res.ok and res.reason == "TLS handshake failed: certificate verify failed (hostname mismatch)",
      "https: the right CA but the wrong name fails (%r)" % res)

nginx.send_signal(signal.SIGTERM)
nginx.wait(10)
res = probe(cfg, "keystone", web)
check(not res.ok and res.reason == "connect refused", "http: nginx stopped is 'connect refused' (%r)" % res)
slow_server.close()
print("PASS")

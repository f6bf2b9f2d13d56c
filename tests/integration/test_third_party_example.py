"""examples/third-party.conf as shipped, with only what a test box must
change: listen ports, the resolver address (dnsmasq on loopback), log and
pid paths, the destination ports (443/80 -> the local backends' ports), and
`proxy_target_allow 127.0.0.0/8;` because the backends are local.

curl reaches api.example.com over HTTPS (SNI) and over HTTP (Host) on the
address dnsmasq gives (127.0.0.23), sees that backend's certificate, and a
name not on the allow-list is refused with 403 before any DNS query."""

import http.server
import os
import re
import shutil
import subprocess
import threading

import pytest

import dns
import util

EXAMPLES = os.path.join(util.REPO, "examples")
API_IP = "127.0.0.23"

LINE_RX = re.compile(r'^(?P<addr>\S+) \[[^\]]+\] (?P<status>\d+) (?P<sent>\d+) '
                     r'(?P<received>\d+) (?P<time>\S+) sni="(?P<sni>[^"]*)" '
                     r'host="(?P<host>[^"]*)" preread=(?P<preread>\S*) '
                     r'upstream="(?P<upstream>[^"]*)"$')


def _sub(text, old, new, count=1):
    """Replace `old` exactly `count` times; fail if the example changed."""
    n = text.count(old)
    assert n == count, "expected %d x %r in the example, found %d" % (count, old, n)
    return text.replace(old, new)


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.hosts.append(self.headers.get("Host"))
        body = b"plain-http-backend\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


@pytest.fixture
def http_backend():
    """python http.server on API_IP, in a thread; shut down at teardown."""
    srv = None
    for _ in range(20):
        try:
            srv = http.server.ThreadingHTTPServer((API_IP, util.free_port(API_IP)),
                                                  _Handler)
            break
        except OSError:
            continue
    assert srv is not None
    srv.daemon_threads = True
    srv.hosts = []
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    t.join(5)


@pytest.fixture
def example(workdir, snirelay_bin, dnsmasq, same_port_backends, http_backend, pki):
    d = dnsmasq({"api.example.com": API_IP, "v2.api.example.net": API_IP,
                 "evil.example.org": API_IP}, ttl=300)
    tport, tls = same_port_backends(
        [API_IP], lambda h: dns.http_reply("tls-backend"),
        ssl_for=lambda h: util.server_context(
            *pki.cert("api.example.com", ["api.example.com", "*.api.example.net"])))
    hport = http_backend.server_address[1]
    L443, L80 = util.free_port(), util.free_port()
    wd = os.path.join(workdir, "example")
    os.makedirs(wd)
    shutil.copy(os.path.join(EXAMPLES, "third-party-names.conf"), wd)
    with open(os.path.join(EXAMPLES, "third-party.conf")) as f:
        text = f.read()
    text = _sub(text, "/var/log/snirelay.error.log warn", "%s/error.log info" % wd)
    text = _sub(text, "/var/run/snirelay.pid", "%s/snirelay.pid" % wd)
    text = _sub(text, "/var/log/snirelay.access.log", "%s/access.log" % wd)
    text = _sub(text, "resolver 192.0.2.53 valid=60s;",
                "resolver %s valid=60s;\n    proxy_target_allow 127.0.0.0/8;" % d.addr)
    text = _sub(text, "listen 443;", "listen 127.0.0.1:%d;" % L443)
    text = _sub(text, "listen 80;", "listen 127.0.0.1:%d;" % L80)
    text = _sub(text, "proxy_pass $ssl_preread_server_name:443;",
                "proxy_pass $ssl_preread_server_name:%d;" % tport)
    text = _sub(text, "proxy_pass $http_preread_host:80;",
                "proxy_pass $http_preread_host:%d;" % hport)
    r = util.Snirelay(wd, text, snirelay_bin)
    r.start()
    yield {"relay": r, "dns": d, "tls": tls[API_IP], "http": http_backend,
           "L443": L443, "L80": L80, "conf": r.conf}
    rc = r.stop()
    assert rc == 0, r.stderr()


def _lines(r, n):
    out = []
    for l in r.wait_access(n):
        m = LINE_RX.match(l)
        assert m, "unexpected access-log line: %r" % l
        out.append(m.groupdict())
    return out


def _curl(*args):
    p = subprocess.run(["curl", "-sS", "--max-time", "15", "--noproxy", "*"] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def test_rewritten_example_passes_the_config_test_without_warnings(example, snirelay_bin):
    p = subprocess.run([snirelay_bin, "-t", "-c", example["conf"]], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 0, err
    assert "[warn]" not in err, err


def test_https_reaches_the_api_address_and_its_certificate(example, pki):
    L, tls = example["L443"], example["tls"]
    rc, out, err = _curl("--resolve", "api.example.com:%d:127.0.0.1" % L,
                         "--cacert", pki.ca, "https://api.example.com:%d/v1/ping" % L)
    assert rc == 0, err
    assert out == b"tls-backend\n"
    assert tls.accepted == 1
    example["relay"].wait_access(1)
    assert tls.conns[0]["data"].startswith(b"GET /v1/ping HTTP/1.1\r\n")
    assert b"\r\nHost: api.example.com:%d\r\n" % L in tls.conns[0]["data"]
    # The wildcard form of the list (.api.example.net) and the cert's SAN.
    rc, out, err = _curl("--resolve", "v2.api.example.net:%d:127.0.0.1" % L,
                         "--cacert", pki.ca, "https://v2.api.example.net:%d/" % L)
    assert rc == 0, err
    assert out == b"tls-backend\n"
    lines = _lines(example["relay"], 2)
    assert [l["sni"] for l in lines] == ["api.example.com", "v2.api.example.net"]
    assert all(l["status"] == "200" and l["preread"] == "ok" for l in lines)
    assert all(l["upstream"] == tls.addr for l in lines)
    assert example["dns"].count("api.example.com") == 1


def test_plain_http_reaches_the_api_address(example):
    L, srv = example["L80"], example["http"]
    rc, out, err = _curl("-H", "Host: api.example.com", "http://127.0.0.1:%d/v1/ping" % L)
    assert rc == 0, err
    assert out == b"plain-http-backend\n"
    assert srv.hosts == ["api.example.com"]
    line = _lines(example["relay"], 1)[0]
    assert line["status"] == "200"
    assert line["host"] == "api.example.com"
    assert util.empty(line["sni"])
    assert line["upstream"] == "%s:%d" % srv.server_address
    assert example["tls"].accepted == 0


def test_names_off_the_list_get_403_and_no_query(example, pki):
    r, d = example["relay"], example["dns"]
    L443, L80 = example["L443"], example["L80"]
    rc, out, err = _curl("--resolve", "evil.example.org:%d:127.0.0.1" % L443,
                         "--cacert", pki.ca, "https://evil.example.org:%d/" % L443)
    assert rc != 0 and out == b""
    r.wait_access(1)
    rc, out, err = _curl("-H", "Host: evil.example.org", "http://127.0.0.1:%d/" % L80)
    assert rc != 0 and out == b""
    r.wait_access(2)
    # api.example.com.evil.example.org is not api.example.com
    rc, out, err = _curl("-H", "Host: api.example.com.evil.example.org",
                         "http://127.0.0.1:%d/" % L80)
    assert rc != 0 and out == b""
    lines = _lines(r, 3)
    assert [l["status"] for l in lines] == ["403", "403", "403"]
    assert all(util.empty(l["upstream"]) for l in lines)
    assert [l["host"] if util.empty(l["sni"]) else l["sni"] for l in lines] == \
        ["evil.example.org", "evil.example.org", "api.example.com.evil.example.org"]
    assert d.queries() == []
    assert example["tls"].accepted == 0 and example["http"].hosts == []

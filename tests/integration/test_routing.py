"""SNI routing: map (exact, wildcard, regex, default), server_name virtual
servers, real TLS clients (Python ssl, openssl s_client, curl) seeing each
backend's own certificate, and raw ClientHellos in awkward segmentations."""

import http.server
import os
import socket
import ssl
import subprocess
import threading
import time

import pytest

import hello
import util
from util import sha

MAP_CONF = r"""
    map $ssl_preread_server_name $backend {
        hostnames;
        a.test                         127.0.0.1:@A@;
        *.wild.test                    127.0.0.1:@B@;
        ~^(?<sub>[a-z]+)\.re\.test$    127.0.0.1:@C@;
        default                        127.0.0.1:@D@;
    }
    server {
        listen 127.0.0.1:@L@;
        ssl_preread on;
        preread_timeout 5s;
        proxy_connect_timeout 2s;
        proxy_timeout 10s;
        proxy_pass $backend;
    }
"""


@pytest.fixture
def tls_setup(relay, tls_backend, port):
    """snirelay with the map above in front of four TLS backends."""
    bk = {
        "A": tls_backend("A", cn="a.test"),
        "B": tls_backend("B", cn="wild.test", sans=["*.wild.test"]),
        "C": tls_backend("C", cn="re.test", sans=["*.re.test"]),
        "D": tls_backend("D", cn="default.test"),
    }
    L = port()
    r = relay(MAP_CONF, L=L, **{k: b.port for k, b in bk.items()})
    return r, L, bk


def _check_log(r, n, server_name, status, upstream):
    lines = r.wait_access(n)
    f = util.parse_line(lines[n - 1])
    assert f["status"] == "200", lines[n - 1]
    assert f["ssl_preread_status"] == status, lines[n - 1]
    if server_name:
        assert f["ssl_preread_server_name"] == server_name, lines[n - 1]
    else:
        assert util.empty(f["ssl_preread_server_name"]), lines[n - 1]
    assert f["upstream_addr"] == upstream.addr, lines[n - 1]
    return f


def test_exact_name_reaches_its_backend_with_its_own_certificate(tls_setup, pki):
    r, L, bk = tls_setup
    cert, reply, _ = util.ssl_request(L, "a.test", pki.ca)
    assert util.cert_cn(cert) == "a.test"
    assert util.cert_sans(cert) == ["a.test"]
    assert reply == b"A\n"
    assert bk["A"].sni == ["a.test"]
    assert sum(b.accepted for b in bk.values()) == 1
    _check_log(r, 1, "a.test", "ok", bk["A"])


def test_wildcard_name_reaches_wildcard_backend(tls_setup, pki):
    r, L, bk = tls_setup
    cert, reply, _ = util.ssl_request(L, "foo.wild.test", pki.ca)
    assert util.cert_cn(cert) == "wild.test"
    assert util.cert_sans(cert) == ["*.wild.test"]
    assert reply == b"B\n"
    assert bk["B"].sni == ["foo.wild.test"]
    _check_log(r, 1, "foo.wild.test", "ok", bk["B"])


def test_regex_name_reaches_regex_backend(tls_setup, pki):
    r, L, bk = tls_setup
    cert, reply, _ = util.ssl_request(L, "abc.re.test", pki.ca)
    assert util.cert_cn(cert) == "re.test"
    assert reply == b"C\n"
    _check_log(r, 1, "abc.re.test", "ok", bk["C"])


def test_name_failing_the_regex_goes_to_default(tls_setup, pki):
    r, L, bk = tls_setup
    # "ab1" is not [a-z]+, so the regex must not match.
    cert, reply, _ = util.ssl_request(L, "ab1.re.test", pki.ca, check_hostname=False)
    assert util.cert_cn(cert) == "default.test"
    assert reply == b"D\n"
    assert bk["C"].accepted == 0
    _check_log(r, 1, "ab1.re.test", "ok", bk["D"])


def test_unknown_name_goes_to_default(tls_setup, pki):
    r, L, bk = tls_setup
    cert, reply, _ = util.ssl_request(L, "nowhere.test", pki.ca, check_hostname=False)
    assert util.cert_cn(cert) == "default.test"
    assert reply == b"D\n"
    _check_log(r, 1, "nowhere.test", "ok", bk["D"])


def test_no_sni_goes_to_default(tls_setup, pki):
    r, L, bk = tls_setup
    cert, reply, _ = util.ssl_request(L, None, pki.ca, check_hostname=False)
    assert util.cert_cn(cert) == "default.test"
    assert reply == b"D\n"
    assert bk["D"].sni == [None]
    _check_log(r, 1, None, "no_sni", bk["D"])


def test_sni_is_matched_case_insensitively(tls_setup, pki):
    r, L, bk = tls_setup
    cert, reply, _ = util.ssl_request(L, "A.TeSt", pki.ca)
    assert util.cert_cn(cert) == "a.test"
    assert reply == b"A\n"
    assert bk["A"].sni == ["A.TeSt"]     # the client really sent mixed case


def test_sessions_in_a_row_each_reach_their_own_backend(tls_setup, pki):
    r, L, bk = tls_setup
    order = [("a.test", b"A\n"), ("x.wild.test", b"B\n"), ("q.re.test", b"C\n"),
             ("a.test", b"A\n"), (None, b"D\n"), ("y.wild.test", b"B\n")]
    for name, want in order:
        _, reply, _ = util.ssl_request(L, name, pki.ca, check_hostname=name is not None)
        assert reply == want, name
    assert [b.accepted for b in (bk["A"], bk["B"], bk["C"], bk["D"])] == [2, 2, 1, 1]
    assert len(r.wait_access(len(order))) == len(order)


@pytest.mark.parametrize("name,cn,reply", [("a.test", "a.test", "A"),
                                           ("deep.wild.test", "wild.test", "B")])
def test_openssl_s_client_sees_backend_certificate(tls_setup, pki, name, cn, reply):
    r, L, bk = tls_setup
    p = subprocess.run(
        ["openssl", "s_client", "-connect", "127.0.0.1:%d" % L, "-servername", name,
         "-CAfile", pki.ca, "-verify_return_error", "-verify_hostname", name,
         "-ign_eof"],
        input=b"ping\n", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        timeout=util.DEADLINE)
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 0, out + p.stderr.decode(errors="replace")
    assert "subject=CN = %s" % cn in out
    assert "Verify return code: 0 (ok)" in out
    assert "\n%s\n" % reply in out
    assert bk[reply].sni == [name]


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = self.server.body
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


@pytest.fixture
def https_server(pki):
    servers = []

    def make(cn, body):
        crt, key = pki.cert(cn)
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        srv.daemon_threads = True
        srv.socket = util.server_context(crt, key).wrap_socket(srv.socket, server_side=True)
        srv.body = body
        t = threading.Thread(target=srv.serve_forever, daemon=True)
        t.start()
        servers.append(srv)
        return srv.server_address[1]

    yield make
    for s in servers:
        s.shutdown()
        s.server_close()


def test_curl_gets_the_https_backend_body(relay, https_server, tls_backend, pki, port):
    body_a = b"hello from the a.test https backend " + os.urandom(8).hex().encode() + b"\n"
    A = https_server("a.test", body_a)
    body_b = b"this is b.test\n"
    B = https_server("b.test", body_b)
    D = tls_backend("D", cn="default.test")
    L = port()
    r = relay(r"""
    map $ssl_preread_server_name $backend {
        a.test   127.0.0.1:@A@;
        b.test   127.0.0.1:@B@;
        default  127.0.0.1:@D@;
    }
    server {
        listen 127.0.0.1:@L@;
        ssl_preread on;
        proxy_pass $backend;
    }
    """, A=A, B=B, D=D.port, L=L)
    for host, body in (("a.test", body_a), ("b.test", body_b)):
        p = subprocess.run(
            ["curl", "-sS", "--max-time", "20", "--cacert", pki.ca,
             "--resolve", "%s:%d:127.0.0.1" % (host, L), "https://%s:%d/" % (host, L)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=util.DEADLINE + 5)
        assert p.returncode == 0, p.stderr.decode(errors="replace")
        assert p.stdout == body
    lines = r.wait_access(2)
    f = util.parse_line(lines[0])
    assert f["ssl_preread_server_name"] == "a.test"
    assert f["upstream_addr"] == "127.0.0.1:%d" % A
    assert "http/1.1" in f["ssl_preread_alpn_protocols"]
    assert D.accepted == 0


def test_server_name_selects_virtual_server(relay, tls_backend, pki, port):
    A = tls_backend("A", cn="a.test")
    B = tls_backend("B", cn="wild.test", sans=["*.wild.test"])
    C = tls_backend("C", cn="re.test", sans=["*.re.test"])
    D = tls_backend("D", cn="default.test")
    L = port()
    r = relay(r"""
    server {
        listen 127.0.0.1:@L@;
        server_name a.test;
        ssl_preread on;
        proxy_pass 127.0.0.1:@A@;
    }
    server {
        listen 127.0.0.1:@L@;
        server_name *.wild.test;
        ssl_preread on;
        proxy_pass 127.0.0.1:@B@;
    }
    server {
        listen 127.0.0.1:@L@;
        server_name ~^[a-z]+\.re\.test$;
        ssl_preread on;
        proxy_pass 127.0.0.1:@C@;
    }
    server {
        listen 127.0.0.1:@L@ default_server;
        server_name default.test;
        ssl_preread on;
        proxy_pass 127.0.0.1:@D@;
    }
    """, L=L, A=A.port, B=B.port, C=C.port, D=D.port)
    cases = [("a.test", "a.test", b"A\n"), ("x.wild.test", "wild.test", b"B\n"),
             ("abc.re.test", "re.test", b"C\n"), ("default.test", "default.test", b"D\n"),
             ("other.test", "default.test", b"D\n"), (None, "default.test", b"D\n")]
    for name, cn, want in cases:
        exact = name in ("a.test", "x.wild.test", "abc.re.test", "default.test")
        cert, reply, _ = util.ssl_request(L, name, pki.ca, check_hostname=exact)
        assert util.cert_cn(cert) == cn, name
        assert reply == want, name
    assert [b.accepted for b in (A, B, C, D)] == [1, 1, 1, 3]
    lines = r.wait_access(len(cases))
    assert [util.parse_line(l)["upstream_addr"] for l in lines] == \
        [A.addr, B.addr, C.addr, D.addr, D.addr, D.addr]


# ---- raw ClientHellos against a raw TCP backend -------------------------------

RAW_CONF = r"""
    map $ssl_preread_server_name $backend {
        hostnames;
        pq.test     127.0.0.1:@A@;
        frag.test   127.0.0.1:@A@;
        default     127.0.0.1:@D@;
    }
    server {
        listen 127.0.0.1:@L@;
        ssl_preread on;
        preread_timeout 10s;
        proxy_timeout 10s;
        proxy_pass $backend;
    }
"""


def _raw_route(relay, backend, port, stream):
    A = backend(util.reply_after(len(stream), "A"), name="A")
    D = backend(util.reply_after(len(stream), "D"), name="D")
    L = port()
    r = relay(RAW_CONF, A=A.port, D=D.port, L=L)
    return r, L, A, D


def test_post_quantum_hello_in_two_segments_is_routed_unchanged(relay, backend, port):
    stream = hello.pq_client_hello("pq.test")
    assert len(stream) > 1500  # the point: bigger than one typical segment
    r, L, A, D = _raw_route(relay, backend, port, stream)
    s = util.connect(L)
    try:
        s.sendall(stream[:1000])
        # Let the first segment reach the proxy and be parsed alone.
        time.sleep(0.3)  # ok-sleep: the two-write test needs a gap between segments
        s.sendall(stream[1000:])
        reply = s.recv(4096)
        assert reply == ("A %s\n" % sha(stream)).encode()
    finally:
        s.close()
    A.wait_conns(1)
    assert A.conns[0]["data"] == stream
    assert D.accepted == 0
    f = util.parse_line(r.wait_access(1)[0])
    assert f["ssl_preread_server_name"] == "pq.test"
    assert f["ssl_preread_status"] == "ok"
    assert f["status"] == "200"


def _sizes(n, k):
    out = [k] * (n // k)
    if n % k:
        out.append(n % k)
    return out


@pytest.mark.parametrize("record_size,byte_per_send", [
    (1, False),      # every handshake byte in its own record, one write
    (7, True),       # 7-byte records, written one byte at a time
    (None, True),    # one record, written one byte at a time
])
def test_fragmented_hello_is_routed_unchanged(relay, backend, port, record_size,
                                              byte_per_send):
    hs = hello.build_client_hello(server_name="frag.test")
    sizes = _sizes(len(hs), record_size) if record_size else None
    stream = hello.records(hs, sizes)
    if record_size:
        assert len(stream) == len(hs) + 5 * len(sizes)
    r, L, A, D = _raw_route(relay, backend, port, stream)
    s = util.connect(L)
    try:
        if byte_per_send:
            for i in range(len(stream)):
                s.send(stream[i:i + 1])
                time.sleep(0.001)  # ok-sleep: keep each byte in its own segment
        else:
            s.sendall(stream)
        reply = s.recv(4096)
        assert reply == ("A %s\n" % sha(stream)).encode()
    finally:
        s.close()
    A.wait_conns(1)
    assert A.conns[0]["data"] == stream
    assert D.accepted == 0
    f = util.parse_line(r.wait_access(1)[0])
    assert f["ssl_preread_server_name"] == "frag.test"
    assert f["ssl_preread_status"] == "ok"


def _have_ipv6():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _have_ipv6(), reason="no IPv6 loopback on this machine")
def test_ipv6_listener_routes_to_ipv6_backend(relay, tls_backend, pki, backend):
    A = backend(util.tls_reply("A6"), name="A6", host="::1",
                ssl_context=util.server_context(*pki.cert("a.test")))
    L = util.free_port("::1")
    r = relay(r"""
    map $ssl_preread_server_name $backend {
        a.test   [::1]:@A@;
        default  [::1]:1;
    }
    server {
        listen [::1]:@L@;
        ssl_preread on;
        proxy_pass $backend;
    }
    """, A=A.port, L=L)
    cert, reply, _ = util.ssl_request(L, "a.test", pki.ca, host="::1")
    assert util.cert_cn(cert) == "a.test"
    assert reply == b"A6\n"
    f = util.parse_line(r.wait_access(1)[0])
    assert f["remote_addr"] == "::1"
    assert f["upstream_addr"] == "[::1]:%d" % A.port


def test_hello_retry_request_handshake_through_proxy(relay, spawn, pki, port, workdir):
    """openssl s_server accepting only P-256 makes the client (which offers an
    X25519 key share first) redo its hello after a HelloRetryRequest: the
    second ClientHello must flow through the already-routed session."""
    crt, key = pki.cert("hrr.test")
    P = port()
    with open(os.path.join(workdir, "s_server.out"), "wb") as out:
        srv = spawn(["openssl", "s_server", "-accept", "127.0.0.1:%d" % P, "-cert", crt,
                     "-key", key, "-tls1_3", "-groups", "P-256", "-rev", "-naccept", "1",
                     "-msg"], stdout=out, stderr=subprocess.STDOUT)
    util.wait_for(lambda: srv.poll() is not None or util.port_listening(P),
                  "openssl s_server to listen")
    assert srv.poll() is None, "openssl s_server exited early"
    L = port()
    r = relay(r"""
    map $ssl_preread_server_name $backend {
        hrr.test  127.0.0.1:@P@;
        default   127.0.0.1:1;
    }
    server {
        listen 127.0.0.1:@L@;
        ssl_preread on;
        proxy_pass $backend;
    }
    """, P=P, L=L)
    ctx = ssl.create_default_context(cafile=pki.ca)
    raw = util.connect(L)
    try:
        s = ctx.wrap_socket(raw, server_hostname="hrr.test")
        assert s.version() == "TLSv1.3"
        assert util.cert_cn(s.getpeercert()) == "hrr.test"
        s.sendall(b"retry\n")
        buf = b""
        while b"\n" not in buf:
            b = s.recv(100)
            if not b:
                break
            buf += b
        assert buf == b"yrter\n"
        s.close()
    finally:
        raw.close()
    f = util.parse_line(r.wait_access(1)[0])
    assert f["ssl_preread_server_name"] == "hrr.test"
    assert f["upstream_addr"] == "127.0.0.1:%d" % P
    srv.wait(util.DEADLINE)
    with open(os.path.join(workdir, "s_server.out"), "rb") as fh:
        log = fh.read()
    # Two ClientHellos reached the server: the first, and the retry after HRR.
    assert log.count(b"Handshake") and log.count(b", ClientHello") == 2, log

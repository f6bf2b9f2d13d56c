"""ssl_preread outcomes: not_tls and malformed input go to the default route
unchanged; an oversized hello is refused with 400; ALPN, protocol and ECH
variables are filled from the hello."""

import os
import subprocess

import pytest

import hello
import util
from util import sha

CONF = r"""
    map $ssl_preread_server_name $backend {
        hostnames;
        a.test   127.0.0.1:@A@;
        default  127.0.0.1:@D@;
    }
    server {
        listen 127.0.0.1:@L@;
        ssl_preread on;
        preread_timeout 5s;
        @EXTRA@
        proxy_pass $backend;
    }
"""


def _raw_setup(relay, backend, port, n, extra="", log_format=util.LOG_FORMAT):
    A = backend(util.reply_after(n, "A"), name="A")
    D = backend(util.reply_after(n, "D"), name="D")
    L = port()
    r = relay(CONF, A=A.port, D=D.port, L=L, EXTRA=extra, log_format=log_format)
    return r, L, A, D


def _send(L, data):
    s = util.connect(L)
    try:
        s.sendall(data)
        return util.recv_all(s)
    finally:
        s.close()


@pytest.mark.parametrize("data", [
    b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n" + os.urandom(3000),
    b"x" * 1000,
    b"\x00" * 100,
], ids=["http", "x1000", "zeros"])
def test_non_tls_goes_to_default_route_unchanged(relay, backend, port, data):
    r, L, A, D = _raw_setup(relay, backend, port, len(data))
    assert _send(L, data) == ("D %s\n" % sha(data)).encode()
    assert D.conns[0]["data"] == data
    assert A.accepted == 0
    f = util.parse_line(r.wait_access(1)[0])
    assert f["status"] == "200"
    assert f["ssl_preread_status"] == "not_tls"
    assert util.empty(f["ssl_preread_server_name"])
    assert util.empty(f["ssl_preread_protocol"])
    assert f["upstream_addr"] == D.addr
    assert f["bytes_received"] == str(len(data))


def test_malformed_hello_goes_to_default_route_unchanged(relay, backend, port):
    hs = util.corrupt_sni_list_length(hello.build_client_hello(server_name="a.test"),
                                      "a.test")
    data = hello.records(hs)
    r, L, A, D = _raw_setup(relay, backend, port, len(data))
    assert _send(L, data) == ("D %s\n" % sha(data)).encode()
    assert D.conns[0]["data"] == data
    assert A.accepted == 0
    f = util.parse_line(r.wait_access(1)[0])
    assert f["status"] == "200"
    assert f["ssl_preread_status"] == "malformed"
    assert util.empty(f["ssl_preread_server_name"])
    assert f["upstream_addr"] == D.addr


def test_hello_larger_than_preread_buffer_gives_400(relay, backend, port):
    data = hello.records(hello.build_client_hello(server_name="a.test",
                                                  extra_padding=4000))
    assert len(data) > 4000
    r, L, A, D = _raw_setup(relay, backend, port, len(data),
                            extra="preread_buffer_size 1k;")
    s = util.connect(L)
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert util.wait_closed(s) == b""
    finally:
        s.close()
    f = util.parse_line(r.wait_access(1)[0])
    assert f["status"] == "400"
    assert f["ssl_preread_status"] == "too_large"
    assert f["bytes_sent"] == "0"
    assert util.empty(f["upstream_addr"])
    assert A.accepted == 0 and D.accepted == 0


def test_hello_within_preread_buffer_is_routed(relay, backend, port):
    data = hello.records(hello.build_client_hello(server_name="a.test",
                                                  extra_padding=600))
    assert 600 < len(data) < 1024
    r, L, A, D = _raw_setup(relay, backend, port, len(data),
                            extra="preread_buffer_size 1k;")
    assert _send(L, data) == ("A %s\n" % sha(data)).encode()
    f = util.parse_line(r.wait_access(1)[0])
    assert f["ssl_preread_status"] == "ok"


@pytest.mark.parametrize("record_version", [0x0300, 0x0301, 0x0302, 0x0303])
def test_record_minor_version_is_ignored(relay, backend, port, record_version):
    """ROBUSTNESS.md 5.1 #5, as nginx's stream_ssl_preread.t: clients write
    3.0 (old OpenSSL), 3.1 (most) or 3.3 as legacy_record_version; each is
    routed by its name, every record of a split hello included."""
    hs = hello.build_client_hello(server_name="a.test")
    data = hello.records(hs, sizes=[50, len(hs) - 50], version=record_version)
    r, L, A, D = _raw_setup(relay, backend, port, len(data))
    assert _send(L, data) == ("A %s\n" % sha(data)).encode()
    f = util.parse_line(r.wait_access(1)[0])
    assert f["ssl_preread_status"] == "ok"
    assert f["ssl_preread_server_name"] == "a.test"


def test_grease_and_ech_hello_is_routed_and_ech_flagged(relay, backend, port):
    fields = util.LOG_FIELDS + ["ssl_preread_ech"]
    fmt = "|".join("$" + f for f in fields)
    plain = hello.records(hello.build_client_hello(server_name="a.test", grease=True))
    ech = hello.records(hello.build_client_hello(server_name="a.test", grease=True,
                                                 ech=True))
    A = backend(util.reply_after(len(plain), "A"), name="A")
    A2 = backend(util.reply_after(len(ech), "A"), name="A2")
    D = backend(util.record_to_eof(), name="D")
    L = port()
    r = relay(r"""
    map $ssl_preread_server_name $backend {
        a.test   127.0.0.1:@A@;
        default  127.0.0.1:@D@;
    }
    map $ssl_preread_ech $backend2 {
        1        127.0.0.1:@A2@;
        default  $backend;
    }
    server {
        listen 127.0.0.1:@L@;
        ssl_preread on;
        proxy_pass $backend2;
    }
    """, A=A.port, A2=A2.port, D=D.port, L=L, log_format=fmt)
    assert _send(L, plain) == ("A %s\n" % sha(plain)).encode()
    assert _send(L, ech) == ("A %s\n" % sha(ech)).encode()
    assert A.accepted == 1 and A2.accepted == 1 and D.accepted == 0
    lines = r.wait_access(2)
    f1 = util.parse_line(lines[0], fields)
    f2 = util.parse_line(lines[1], fields)
    assert f1["ssl_preread_server_name"] == f2["ssl_preread_server_name"] == "a.test"
    assert f1["ssl_preread_ech"] in ("", "-", "0")
    assert f2["ssl_preread_ech"] == "1"


@pytest.mark.parametrize("versions,alpn,want_proto,want_alpn", [
    ((0x0304, 0x0303), ["h2", "http/1.1"], "TLSv1.3", "h2,http/1.1"),
    ((), ["http/1.1"], "TLSv1.2", "http/1.1"),
    ((0x0303,), None, "TLSv1.2", ""),
])
def test_protocol_and_alpn_variables_from_raw_hello(relay, backend, port, versions, alpn,
                                                    want_proto, want_alpn):
    data = hello.records(hello.build_client_hello(server_name="a.test", alpn=alpn,
                                                  versions=versions))
    r, L, A, D = _raw_setup(relay, backend, port, len(data))
    assert _send(L, data) == ("A %s\n" % sha(data)).encode()
    f = util.parse_line(r.wait_access(1)[0])
    assert f["ssl_preread_protocol"] == want_proto
    if want_alpn:
        assert f["ssl_preread_alpn_protocols"] == want_alpn
    else:
        assert util.empty(f["ssl_preread_alpn_protocols"])


@pytest.mark.parametrize("tls_flag,want_proto", [("-tls1_2", "TLSv1.2"),
                                                 ("-tls1_3", "TLSv1.3")])
def test_openssl_alpn_and_protocol_are_logged(relay, tls_backend, pki, port, tls_flag,
                                              want_proto):
    A = tls_backend("A", cn="a.test", alpn=["h2", "http/1.1"])
    D = tls_backend("D", cn="default.test")
    L = port()
    r = relay(CONF, A=A.port, D=D.port, L=L, EXTRA="")
    p = subprocess.run(
        ["openssl", "s_client", "-connect", "127.0.0.1:%d" % L, "-servername", "a.test",
         "-alpn", "h2,http/1.1", tls_flag, "-CAfile", pki.ca, "-verify_return_error",
         "-ign_eof"],
        input=b"ping\n", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        timeout=util.DEADLINE)
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 0, out + p.stderr.decode(errors="replace")
    assert "ALPN protocol: h2" in out
    assert "\nA\n" in out
    A.wait_conns(1)
    assert A.conns[0]["done"].wait(util.DEADLINE)
    assert A.conns[0]["alpn"] == "h2"
    assert A.conns[0]["version"] == want_proto
    f = util.parse_line(r.wait_access(1)[0])
    assert f["ssl_preread_server_name"] == "a.test"
    assert f["ssl_preread_alpn_protocols"] == "h2,http/1.1"
    assert f["ssl_preread_protocol"] == want_proto
    assert f["ssl_preread_status"] == "ok"

"""PROXY protocol in (`listen ... proxy_protocol`, set_real_ip_from,
proxy_protocol_timeout) and out (`proxy_protocol on|v1|v2`), checked byte
for byte at a raw backend with a parser written here, independent of the
one in src/proto/proxy_proto.c."""

import os
import socket
import struct
import time

import pytest

import hello
import util

FIELDS = ["status", "remote_addr", "remote_port", "realip_remote_addr",
          "realip_remote_port", "proxy_protocol_addr", "proxy_protocol_port",
          "proxy_protocol_server_addr", "proxy_protocol_server_port",
          "upstream_addr", "bytes_received", "ssl_preread_server_name"]
FMT = "|".join("$" + f for f in FIELDS)

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


# --------------------------------------------------------------------------
# PROXY protocol, written and parsed here (HAProxy proxy-protocol.txt)


def v1(src, dst, sport, dport, fam=None):
    fam = fam or ("TCP6" if ":" in src else "TCP4")
    return ("PROXY %s %s %s %d %d\r\n" % (fam, src, dst, sport, dport)).encode()


def v2(src, dst, sport, dport, cmd=1, tlvs=b"", fam=None):
    six = ":" in src
    if fam is None:
        fam = 0x21 if six else 0x11
    af = socket.AF_INET6 if six else socket.AF_INET
    body = (socket.inet_pton(af, src) + socket.inet_pton(af, dst) +
            struct.pack("!HH", sport, dport) + tlvs)
    return V2_SIG + bytes([0x20 | cmd, fam]) + struct.pack("!H", len(body)) + body


def tlv(t, value):
    return bytes([t]) + struct.pack("!H", len(value)) + value


def parse(data):
    """Parse the PROXY header at the start of `data`; return (header, rest)."""
    if data.startswith(b"PROXY "):
        end = data.index(b"\r\n")
        assert end + 2 <= 107, "v1 line longer than 107 bytes"
        f = data[:end].decode("ascii").split(" ")
        assert len(f) == 6, f
        return ({"version": 1, "family": f[1], "src": f[2], "dst": f[3],
                 "sport": int(f[4]), "dport": int(f[5]), "tlvs": {}},
                data[end + 2:])
    assert data[:12] == V2_SIG, "neither a v1 nor a v2 header: %r" % data[:16]
    ver_cmd, fam = data[12], data[13]
    (length,) = struct.unpack("!H", data[14:16])
    assert ver_cmd == 0x21, "version 2, command PROXY: got %#x" % ver_cmd
    body = data[16:16 + length]
    assert len(body) == length
    if fam == 0x11:
        af, alen, family = socket.AF_INET, 4, "TCP4"
    elif fam == 0x21:
        af, alen, family = socket.AF_INET6, 16, "TCP6"
    else:
        raise AssertionError("unexpected family %#x" % fam)
    src = socket.inet_ntop(af, body[:alen])
    dst = socket.inet_ntop(af, body[alen:2 * alen])
    sport, dport = struct.unpack("!HH", body[2 * alen:2 * alen + 4])
    tlvs = {}
    off = 2 * alen + 4
    while off < len(body):
        t = body[off]
        (n,) = struct.unpack("!H", body[off + 1:off + 3])
        assert off + 3 + n <= len(body), "TLV overruns the header"
        tlvs.setdefault(t, []).append(body[off + 3:off + 3 + n])
        off += 3 + n
    return ({"version": 2, "family": family, "src": src, "dst": dst,
             "sport": sport, "dport": dport, "tlvs": tlvs}, data[16 + length:])


def test_parser_self_check():
    h, rest = parse(v1("1.2.3.4", "5.6.7.8", 1, 2) + b"x")
    assert (h["src"], h["dport"], rest) == ("1.2.3.4", 2, b"x")
    h, rest = parse(v2("::1", "::2", 3, 4, tlvs=tlv(2, b"a.test")) + b"y")
    assert (h["family"], h["dst"], h["tlvs"], rest) == ("TCP6", "::2", {2: [b"a.test"]}, b"y")


# --------------------------------------------------------------------------
# helpers


def _lines(m):
    return [util.parse_line(l, FIELDS) for l in m.access_lines()]


def _first(m):
    m.wait_access(1)
    return _lines(m)[0]


def _send(L, data, host="127.0.0.1", shut=True):
    """Connect (from `host`), send `data`, half-close; return the socket."""
    s = socket.socket()
    s.bind((host, 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", L))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(data)
    if shut:
        s.shutdown(socket.SHUT_WR)
    return s


IN_CONF = r"""
    server {
        listen 127.0.0.1:@L@ proxy_protocol;
@EXTRA@
        proxy_timeout 10s;
        proxy_pass 127.0.0.1:@B@;
    }
"""


def _in(master, backend, port, extra="", handler=None):
    B = backend(handler or util.record_to_eof(), name="raw")
    L = port()
    m = master(IN_CONF, log_format=FMT, L=L, B=B.port, EXTRA=extra)
    m.wait_workers(1)
    return m, L, B


def _backend_data(B, i=0):
    B.wait_conns(i + 1)
    assert B.conns[i]["done"].wait(util.DEADLINE)
    return B.conns[i]["data"]


# --------------------------------------------------------------------------
# PROXY protocol in


@pytest.mark.parametrize("header,addr,port_,saddr,sport", [
    (v1("192.0.2.10", "198.51.100.1", 40000, 443), "192.0.2.10", "40000",
     "198.51.100.1", "443"),
    (v2("192.0.2.11", "198.51.100.2", 40001, 8443), "192.0.2.11", "40001",
     "198.51.100.2", "8443"),
    (v1("2001:db8::5", "2001:db8::6", 5, 6), "2001:db8::5", "5", "2001:db8::6", "6"),
    (v2("2001:db8::7", "2001:db8::8", 7, 8, tlvs=tlv(0x05, b"uid") + tlv(0x02, b"h.test")),
     "2001:db8::7", "7", "2001:db8::8", "8"),
], ids=["v1-tcp4", "v2-tcp4", "v1-tcp6", "v2-tcp6-tlvs"])
def test_header_fills_variables_and_is_stripped(master, backend, port, header, addr,
                                                port_, saddr, sport):
    m, L, B = _in(master, backend, port)
    payload = os.urandom(5000)
    s = _send(L, header + payload)
    util.recv_all(s)
    s.close()
    assert _backend_data(B) == payload
    f = _first(m)
    assert f["status"] == "200"
    assert (f["proxy_protocol_addr"], f["proxy_protocol_port"]) == (addr, port_)
    assert (f["proxy_protocol_server_addr"], f["proxy_protocol_server_port"]) == \
        (saddr, sport)
    # Without set_real_ip_from the peer stays the client.
    assert f["remote_addr"] == "127.0.0.1"
    assert f["realip_remote_addr"] == "127.0.0.1"
    assert f["bytes_received"] == str(len(header) + len(payload))


def test_header_split_over_many_sends(master, backend, port):
    m, L, B = _in(master, backend, port)
    header = v2("192.0.2.20", "198.51.100.20", 1111, 2222, tlvs=tlv(0x04, b"n" * 300))
    s = _send(L, b"", shut=False)
    for i in range(0, len(header), 7):
        s.sendall(header[i:i + 7])
    s.sendall(b"payload")
    s.shutdown(socket.SHUT_WR)
    util.recv_all(s)
    s.close()
    assert _backend_data(B) == b"payload"
    f = _first(m)
    assert f["proxy_protocol_addr"] == "192.0.2.20"


@pytest.mark.parametrize("data", [
    b"GET / HTTP/1.0\r\n\r\n",                                  # no header at all
    b"PROXY TCP4 192.0.2.1 198.51.100.1 1\r\nxx",               # missing field
    b"PROXY TCP9 192.0.2.1 198.51.100.1 1 2\r\n",               # unknown protocol
    b"PROXY TCP4 192.0.2.300 198.51.100.1 1 2\r\n",             # bad address
    b"PROXY TCP4 192.0.2.1 198.51.100.1 99999 2\r\n",           # bad port
    b"PROXY TCP4 192.0.2.1 198.51.100.1 1 2\n",                 # LF without CR
    b"PROXY TCP4 " + b"1" * 120 + b"\r\n",                      # longer than 107
    b"PROXY TCP6 192.0.2.1 198.51.100.1 1 2\r\n",               # v4 address in TCP6
    V2_SIG + b"\x31\x11\x00\x0c" + bytes(12),                   # v2: version 3
    V2_SIG + b"\x2f\x11\x00\x0c" + bytes(12),                   # v2: command 15
    V2_SIG + b"\x21\x11\x00\x04" + bytes(4),                    # v2: short address block
    V2_SIG + b"\x21\x11\xff\xff",                               # v2: length over the cap
    v2("192.0.2.1", "198.51.100.1", 1, 2, tlvs=b"\x02\x00\x10ab"),  # TLV overrun
], ids=["none", "v1-fields", "v1-proto", "v1-addr", "v1-port", "v1-lf", "v1-long",
        "v1-family", "v2-version", "v2-command", "v2-short", "v2-long", "v2-tlv"])
def test_broken_header_closes_with_400(master, backend, port, data):
    m, L, B = _in(master, backend, port)
    s = _send(L, data, shut=False)
    try:
        assert util.wait_closed(s, 5) == b""
    finally:
        s.close()
    f = _first(m)
    assert f["status"] == "400"
    assert util.empty(f["upstream_addr"])
    assert B.accepted == 0
    assert m.count_errors(r"\[error\] .*broken PROXY protocol header: \S") == 1, \
        m.error_text()


def test_proxy_protocol_timeout(master, backend, port):
    m, L, B = _in(master, backend, port, "        proxy_protocol_timeout 500ms;")
    s = _send(L, b"PROXY TCP4 ", shut=False)    # a start, then nothing
    t0 = time.monotonic()
    try:
        assert util.wait_closed(s, 10) == b""
    finally:
        s.close()
    took = time.monotonic() - t0
    assert 0.4 <= took < 3, "closed after %.2fs with proxy_protocol_timeout 500ms" % took
    f = _first(m)
    assert f["status"] == "400"
    assert B.accepted == 0
    assert "PROXY protocol header timed out" in m.error_text()


def test_unknown_and_local_keep_the_peer_address(master, backend, port):
    m, L, B = _in(master, backend, port, "        set_real_ip_from 127.0.0.1;")
    local = V2_SIG + b"\x20\x00\x00\x00"             # v2 LOCAL, AF_UNSPEC
    for i, header in enumerate([b"PROXY UNKNOWN\r\n", local,
                                b"PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n"]):
        s = _send(L, header + b"data%d" % i)
        util.recv_all(s)
        s.close()
        assert _backend_data(B, i) == b"data%d" % i
    m.wait_access(3)
    for f in _lines(m):
        assert f["status"] == "200"
        assert f["remote_addr"] == "127.0.0.1"
        assert util.empty(f["proxy_protocol_addr"]), f


def test_set_real_ip_from_trusted_peer_takes_the_header_address(master, backend, port):
    m, L, B = _in(master, backend, port, "        set_real_ip_from 127.0.0.1/32;")
    s = _send(L, v1("203.0.113.7", "198.51.100.1", 4242, 443) + b"x")
    util.recv_all(s)
    peer_port = s.getsockname()[1]
    s.close()
    f = _first(m)
    assert f["status"] == "200"
    assert (f["remote_addr"], f["remote_port"]) == ("203.0.113.7", "4242")
    assert (f["realip_remote_addr"], f["realip_remote_port"]) == ("127.0.0.1", str(peer_port))
    assert f["proxy_protocol_addr"] == "203.0.113.7"


def test_spoofed_header_from_untrusted_peer_is_not_believed(master, backend, port):
    m, L, B = _in(master, backend, port, "        set_real_ip_from 127.0.0.1/32;")
    s = _send(L, v1("203.0.113.8", "198.51.100.1", 4243, 443) + b"x", host="127.0.0.2")
    util.recv_all(s)
    peer_port = s.getsockname()[1]
    s.close()
    f = _first(m)
    assert f["status"] == "200"
    assert (f["remote_addr"], f["remote_port"]) == ("127.0.0.2", str(peer_port))
    assert f["realip_remote_addr"] == "127.0.0.2"
    assert f["proxy_protocol_addr"] == "203.0.113.8"


def test_access_rules_and_limits_see_the_real_ip(master, backend, port):
    B = backend(util.record_to_eof())
    L = port()
    m = master(r"""
    server {
        listen 127.0.0.1:@L@ proxy_protocol;
        set_real_ip_from 127.0.0.0/8;
        deny 198.18.0.0/15;
        allow all;
        proxy_timeout 10s;
        proxy_pass 127.0.0.1:@B@;
    }
    """, log_format=FMT, L=L, B=B.port)
    m.wait_workers(1)
    for src in ["198.18.1.1", "203.0.113.9"]:
        s = _send(L, v1(src, "198.51.100.1", 1000, 443) + b"x")
        util.recv_all(s)
        s.close()
    m.wait_access(2)
    st = {f["remote_addr"]: f["status"] for f in _lines(m)}
    assert st == {"198.18.1.1": "403", "203.0.113.9": "200"}
    assert B.accepted == 1


def test_header_fused_with_client_hello_routes_by_sni(master, backend, port):
    A = backend(util.record_to_eof(), name="a")
    D = backend(util.record_to_eof(), name="default")
    L = port()
    m = master(r"""
    map $ssl_preread_server_name $up {
        a.test   127.0.0.1:@A@;
        default  127.0.0.1:@D@;
    }
    server {
        listen 127.0.0.1:@L@ proxy_protocol;
        ssl_preread on;
        proxy_timeout 10s;
        proxy_pass $up;
    }
    """, log_format=FMT, L=L, A=A.port, D=D.port)
    m.wait_workers(1)
    hs = hello.records(hello.build_client_hello(server_name="a.test"))
    tail = os.urandom(3000)
    for header in [v1("192.0.2.50", "198.51.100.1", 50000, 443),
                   v2("192.0.2.51", "198.51.100.1", 50001, 443)]:
        s = _send(L, header + hs + tail)           # one send: header + hello + more
        util.recv_all(s)
        s.close()
    assert _backend_data(A, 0) == hs + tail
    assert _backend_data(A, 1) == hs + tail
    assert D.accepted == 0
    m.wait_access(2)
    lines = _lines(m)
    assert [f["ssl_preread_server_name"] for f in lines] == ["a.test", "a.test"]
    assert sorted(f["proxy_protocol_addr"] for f in lines) == ["192.0.2.50", "192.0.2.51"]


# --------------------------------------------------------------------------
# PROXY protocol out


OUT_CONF = r"""
    server {
        listen 127.0.0.1:@L@@LOPT@;
@EXTRA@
        proxy_protocol @V@;
        proxy_timeout 10s;
        proxy_pass 127.0.0.1:@B@;
    }
"""


def _out(master, backend, port, version, extra="", lopt=""):
    B = backend(util.record_to_eof(), name="raw")
    L = port()
    m = master(OUT_CONF, log_format=FMT, L=L, B=B.port, V=version, EXTRA=extra,
               LOPT=lopt)
    m.wait_workers(1)
    return m, L, B


@pytest.mark.parametrize("version", ["on", "v1", "v2"])
def test_outbound_header_then_the_client_bytes_unchanged(master, backend, port, version):
    m, L, B = _out(master, backend, port, version)
    payload = os.urandom(200 * 1024)
    s = _send(L, payload)
    cport = s.getsockname()[1]
    util.recv_all(s)
    s.close()
    hdr, rest = parse(_backend_data(B))
    assert hdr["version"] == (2 if version == "v2" else 1)
    assert hdr["family"] == "TCP4"
    assert (hdr["src"], hdr["sport"]) == ("127.0.0.1", cport)
    assert (hdr["dst"], hdr["dport"]) == ("127.0.0.1", L)
    assert hdr["tlvs"] == {}
    assert rest == payload


def test_outbound_v2_carries_the_sni_as_authority(master, backend, port):
    m, L, B = _out(master, backend, port, "v2", extra="        ssl_preread on;")
    hs = hello.records(hello.build_client_hello(server_name="sni.example.test",
                                                alpn=["h2"]))
    tail = os.urandom(10000)
    s = _send(L, hs + tail)
    cport = s.getsockname()[1]
    util.recv_all(s)
    s.close()
    hdr, rest = parse(_backend_data(B))
    assert (hdr["src"], hdr["sport"], hdr["dst"], hdr["dport"]) == \
        ("127.0.0.1", cport, "127.0.0.1", L)
    assert hdr["tlvs"] == {0x02: [b"sni.example.test"]}
    assert rest == hs + tail


@pytest.mark.parametrize("version", ["on", "v1"])
def test_outbound_v1_with_ssl_preread_sends_the_line(master, backend, port, version):
    # The commonest set-up: v1 has no place for the name, so the line goes
    # without it (it once sent no header at all).
    m, L, B = _out(master, backend, port, version, extra="        ssl_preread on;")
    hs = hello.records(hello.build_client_hello(server_name="v1.example.test"))
    s = _send(L, hs)
    cport = s.getsockname()[1]
    util.recv_all(s)
    s.close()
    data = _backend_data(B)
    assert data == b"PROXY TCP4 127.0.0.1 127.0.0.1 %d %d\r\n" % (cport, L) + hs
    assert _first(m)["ssl_preread_server_name"] == "v1.example.test"


def test_outbound_v1_with_http_preread_sends_the_line(master, backend, port):
    m, L, B = _out(master, backend, port, "v1", extra="        http_preread on;")
    req = b"GET / HTTP/1.1\r\nHost: h.example.test\r\n\r\n"
    s = _send(L, req)
    cport = s.getsockname()[1]
    util.recv_all(s)
    s.close()
    assert _backend_data(B) == \
        b"PROXY TCP4 127.0.0.1 127.0.0.1 %d %d\r\n" % (cport, L) + req


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_outbound_header_for_an_ipv6_realip_client_on_ipv4(master, backend, port, version):
    # The trusted PROXY-in client is IPv6, the listener IPv4: the header is
    # TCP6 with the listener address IPv4-mapped, never left out.
    m, L, B = _out(master, backend, port, version, lopt=" proxy_protocol",
                   extra="        set_real_ip_from 127.0.0.1;\n        ssl_preread on;")
    hs = hello.records(hello.build_client_hello(server_name="m.test"))
    s = _send(L, v2("2001:db8::9", "2001:db8::1", 7000, 443) + hs)
    util.recv_all(s)
    s.close()
    hdr, rest = parse(_backend_data(B))
    assert hdr["family"] == "TCP6"
    assert (hdr["src"], hdr["sport"]) == ("2001:db8::9", 7000)
    assert (hdr["dst"], hdr["dport"]) == ("::ffff:127.0.0.1", L)
    assert rest == hs
    assert _first(m)["status"] == "200"


def test_outbound_v2_without_sni_has_no_authority(master, backend, port):
    m, L, B = _out(master, backend, port, "v2", extra="        ssl_preread on;")
    hs = hello.records(hello.build_client_hello(server_name=None))
    s = _send(L, hs)
    util.recv_all(s)
    s.close()
    hdr, rest = parse(_backend_data(B))
    assert 0x02 not in hdr["tlvs"]
    assert rest == hs


def test_outbound_v2_carries_the_http_host_as_authority(master, backend, port):
    m, L, B = _out(master, backend, port, "v2", extra="        http_preread on;")
    req = b"GET /x HTTP/1.1\r\nHost: www.http.test:8080\r\nUser-Agent: t\r\n\r\nbody"
    s = _send(L, req)
    util.recv_all(s)
    s.close()
    hdr, rest = parse(_backend_data(B))
    assert hdr["tlvs"].get(0x02) == [b"www.http.test"]
    assert rest == req


def test_outbound_header_carries_the_realip_client(master, backend, port):
    m, L, B = _out(master, backend, port, "v2", lopt=" proxy_protocol",
                   extra="        set_real_ip_from 127.0.0.1;\n        ssl_preread on;")
    hs = hello.records(hello.build_client_hello(server_name="r.test"))
    inbound = v1("203.0.113.77", "198.51.100.9", 6000, 443)
    s = _send(L, inbound + hs)
    util.recv_all(s)
    s.close()
    hdr, rest = parse(_backend_data(B))
    assert (hdr["src"], hdr["sport"]) == ("203.0.113.77", 6000)
    assert (hdr["dst"], hdr["dport"]) == ("127.0.0.1", L)
    assert hdr["tlvs"] == {0x02: [b"r.test"]}
    assert rest == hs          # the inbound header is not forwarded


def test_outbound_v1_from_an_untrusted_proxy_carries_the_peer(master, backend, port):
    m, L, B = _out(master, backend, port, "v1", lopt=" proxy_protocol",
                   extra="        set_real_ip_from 10.0.0.0/8;")
    s = _send(L, v1("203.0.113.78", "198.51.100.9", 6001, 443) + b"abc", host="127.0.0.3")
    cport = s.getsockname()[1]
    util.recv_all(s)
    s.close()
    data = _backend_data(B)
    assert data == b"PROXY TCP4 127.0.0.3 127.0.0.1 %d %d\r\nabc" % (cport, L)


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6")
def test_outbound_v1_over_ipv6(master, backend, port):
    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("no IPv6 loopback")
    B = backend(util.record_to_eof(), name="raw")
    L = port("::1")
    m = master(r"""
    server {
        listen [::1]:@L@;
        proxy_protocol on;
        proxy_pass 127.0.0.1:@B@;
    }
    """, log_format=FMT, L=L, B=B.port)
    m.wait_workers(1)
    s = socket.create_connection(("::1", L), timeout=10)
    cport = s.getsockname()[1]
    s.sendall(b"six")
    s.shutdown(socket.SHUT_WR)
    util.recv_all(s)
    s.close()
    assert _backend_data(B) == b"PROXY TCP6 ::1 ::1 %d %d\r\nsix" % (cport, L)


def test_limit_conn_counts_the_real_ip(master, backend, port):
    B = backend(util.echo())
    L = port()
    m = master(r"""
    limit_conn_zone $binary_remote_addr zone=real:64k;
    server {
        listen 127.0.0.1:@L@ proxy_protocol;
        set_real_ip_from 127.0.0.1;
        limit_conn real 1;
        proxy_timeout 10s;
        proxy_pass 127.0.0.1:@B@;
    }
    """, log_format=FMT, L=L, B=B.port)
    m.wait_workers(1)

    def attempt(src):
        s = _send(L, v1(src, "198.51.100.1", 1000, 443) + b"ping", shut=False)
        got = util.recv_all(s, 4)
        if got == b"ping":
            return s
        s.close()
        return None

    a = attempt("192.0.2.1")
    b = attempt("192.0.2.2")      # another real client: its own count
    assert a is not None and b is not None
    assert attempt("192.0.2.1") is None
    a.close()
    b.close()
    m.wait_access(3)
    st = sorted((f["remote_addr"], f["status"]) for f in _lines(m))
    assert st == [("192.0.2.1", "200"), ("192.0.2.1", "503"), ("192.0.2.2", "200")]


# --------------------------------------------------------------------------
# $proxy_protocol_tlv_* (nginx 1.23.2)

TLV_NAMES = ["alpn", "authority", "0x3", "unique_id", "netns", "ssl_verify",
             "ssl_version", "ssl_cn", "ssl_cipher", "ssl_sig_alg", "ssl_key_alg",
             "0x000ae", "0x000e", "ssl"]
TLV_FMT = "|".join("$proxy_protocol_tlv_" + n for n in TLV_NAMES) + "|$upstream_addr"


def _ssl_tlv(client, verify, subs):
    return tlv(0x20, bytes([client]) + struct.pack("!I", verify) + subs)


def test_tlv_variables_from_a_v2_header(master, backend, port):
    B1 = backend(util.record_to_eof(), name="by-authority")
    B2 = backend(util.record_to_eof(), name="default")
    L = port()
    m = master(r"""
    map $proxy_protocol_tlv_authority $backend {
        a.test   127.0.0.1:@B1@;
        default  127.0.0.1:@B2@;
    }
    server {
        listen 127.0.0.1:@L@ proxy_protocol;
        proxy_pass $backend;
    }
    """, log_format=TLV_FMT, L=L, B1=B1.port, B2=B2.port)
    subs = (tlv(0x21, b"TLSv1.2") + tlv(0x22, b"example.com") +
            tlv(0x23, b"AES256-SHA") + tlv(0x24, b"SHA1") + tlv(0x25, b"RSA512"))
    tlvs = (tlv(0x01, b"ALPN1") + tlv(0x02, b"a.test") + tlv(0x03, b"4321") +
            tlv(0x05, b"UNIQQ") + tlv(0x30, b"NETNS") + tlv(0xae, b"12345") +
            _ssl_tlv(0x01, 255, subs))
    payload = os.urandom(1000)
    s = _send(L, v2("192.0.2.1", "192.0.2.2", 123, 5678, tlvs=tlvs) + payload)
    util.recv_all(s)
    s.close()
    assert _backend_data(B1) == payload
    # Without TLVs (and with a v1 header) every one has no value: "-".
    for header in (v2("192.0.2.1", "192.0.2.2", 1, 2),
                   v1("192.0.2.1", "192.0.2.2", 1, 2)):
        s = _send(L, header + b"x")
        util.recv_all(s)
        s.close()
    m.wait_access(3)
    lines = [l.split("|") for l in m.access_lines()]
    got = dict(zip(TLV_NAMES + ["upstream_addr"], lines[0]))
    assert got == {
        "alpn": "ALPN1", "authority": "a.test", "0x3": "4321",
        "unique_id": "UNIQQ", "netns": "NETNS", "ssl_verify": "255",
        "ssl_version": "TLSv1.2", "ssl_cn": "example.com",
        "ssl_cipher": "AES256-SHA", "ssl_sig_alg": "SHA1",
        "ssl_key_alg": "RSA512", "0x000ae": "12345", "0x000e": "-",
        # The SSL TLV raw: client, verify, sub-TLVs; bytes escaped \xHH.
        "ssl": "\\x01\\x00\\x00\\x00\\xFF!\\x00\\x07TLSv1.2\\x22\\x00\\x0Bexample.com"
               "#\\x00\\x0AAES256-SHA$\\x00\\x04SHA1%\\x00\\x06RSA512",
        "upstream_addr": B1.addr,
    }
    for l in lines[1:]:
        assert l == ["-"] * len(TLV_NAMES) + [B2.addr]


def test_unknown_tlv_name_loads_and_logs_per_use(master, backend, port):
    # nginx accepts any $proxy_protocol_tlv_ name and complains when used.
    B = backend(util.record_to_eof())
    L = port()
    m = master(IN_CONF, log_format="$proxy_protocol_tlv_bogus|$proxy_protocol_tlv_0x",
               L=L, B=B.port, EXTRA="")
    s = _send(L, v2("192.0.2.1", "192.0.2.2", 1, 2, tlvs=tlv(0x02, b"h")) + b"x")
    util.recv_all(s)
    s.close()
    m.wait_access(1)
    assert m.access_lines() == ["-|-"]
    err = m.error_text()
    assert 'unknown PROXY protocol TLV "bogus"' in err
    assert 'unknown PROXY protocol TLV "0x"' in err

"""http_preread: plain HTTP/1.x routed by its Host header to the name the
client asked for (resolved by dnsmasq), every byte forwarded unchanged;
malformed, oversized and slow request heads; ssl_preread and http_preread
on one listener."""

import os
import re
import subprocess
import time

import pytest

import dns
import hello
import util

CONF = r"""
    resolver @DNS@ ipv6=off;
    resolver_timeout 5s;
    server {
        listen 127.0.0.1:@L@;
        http_preread on;
        preread_timeout @PT@;
        proxy_connect_timeout 2s;
        proxy_target_allow 127.0.0.0/8;
        @EXTRA@
        proxy_pass $http_preread_host:@P@;
    }
"""

RECORDS = {"a.test": "127.0.0.21", "b.test": "127.0.0.22"}


@pytest.fixture
def setup(relay, port, dnsmasq, same_port_backends):
    """make(handler_for=None, PT='5s', EXTRA='') -> (relay, {ip: backend}, dnsmasq)."""
    def make(handler_for=None, PT="5s", EXTRA="", conf=CONF):
        P, bk = same_port_backends(["127.0.0.21", "127.0.0.22"],
                                   handler_for or (lambda h: util.record_to_eof()))
        d = dnsmasq(RECORDS, ttl=60)
        r = relay(conf, DNS=d.addr, L=port(), P=P, PT=PT, EXTRA=EXTRA,
                  log_format=dns.FWD_FORMAT)
        return r, bk, d
    return make


def _curl(url, *args):
    p = subprocess.run(["curl", "-sS", "--max-time", "15", "--noproxy", "*"] +
                       list(args) + [url],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def test_curl_is_routed_by_host_header(setup):
    names = {"127.0.0.21": "A", "127.0.0.22": "B"}
    r, bk, d = setup(lambda h: dns.http_reply(names[h]))
    L = r.listen_ports[0]
    url = "http://127.0.0.1:%d/some/path?q=1" % L
    for i, (host, want) in enumerate((("a.test", b"A\n"), ("B.Test:8080", b"B\n"),
                                      ("a.test.", b"A\n")), 1):
        rc, out, err = _curl(url, "-H", "Host: " + host)
        assert rc == 0, err
        assert out == want, (host, out)
        r.wait_access(i)        # lines in session order
    a, b = bk["127.0.0.21"], bk["127.0.0.22"]
    assert a.accepted == 2 and b.accepted == 1
    assert a.conns[0]["data"].startswith(b"GET /some/path?q=1 HTTP/1.1\r\nHost: a.test\r\n")
    assert b"\r\nHost: B.Test:8080\r\n" in b.conns[0]["data"]   # forwarded as sent
    lines = [dns.fwd_line(l) for l in r.wait_access(3)]
    assert [l["http_preread_host"] for l in lines] == ["a.test", "b.test", "a.test"]
    assert [l["upstream_addr"] for l in lines] == [a.addr, b.addr, a.addr]
    assert all(l["status"] == "200" for l in lines)
    assert d.count("a.test") == 1 and d.count("b.test") == 1


def test_every_byte_is_forwarded_unchanged(setup):
    r, bk, d = setup()
    body = os.urandom(5000)
    data = (b"POST /up HTTP/1.1\r\nHost: b.test\r\nContent-Length: %d\r\n"
            b"X-Odd:   spaced  \r\n\r\n" % len(body)) + body
    s = util.connect(r.listen_ports[0])
    for i in range(0, len(data), 997):   # several segments
        s.sendall(data[i:i + 997])
    b = bk["127.0.0.22"]
    b.wait_conns(1)
    s.close()
    assert b.conns[0]["done"].wait(util.DEADLINE)
    assert b.conns[0]["data"] == data
    f = dns.fwd_line(r.wait_access(1)[0])
    assert f["status"] == "200"
    assert f["http_preread_host"] == "b.test"
    assert f["bytes_received"] == str(len(data))
    assert bk["127.0.0.21"].accepted == 0


def test_absolute_form_target_names_the_host(setup):
    r, bk, d = setup()
    data = b"GET http://a.test/x HTTP/1.1\r\nHost: a.test\r\n\r\n"
    s = dns.send_http(r.listen_ports[0], data)
    bk["127.0.0.21"].wait_conns(1)
    s.close()
    f = dns.fwd_line(r.wait_access(1)[0])
    assert f["http_preread_host"] == "a.test"
    assert f["upstream_addr"] == bk["127.0.0.21"].addr


# name -> (bytes, why the head scanner gives up; None: a valid head, no Host)
BAD_HEADS = {
    "duplicate-host": (b"GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n",
                       "duplicate Host header"),
    "space-before-colon": (b"GET / HTTP/1.1\r\nHost : a.test\r\n\r\n",
                           "whitespace between header name and colon"),
    "obs-fold": (b"GET / HTTP/1.1\r\nHost: a.test\r\nX-A: 1\r\n  folded\r\n\r\n",
                 "obs-fold"),
    "backslash-in-host": (b"GET / HTTP/1.1\r\nHost: a.te\\st\r\n\r\n",
                          "invalid byte in host"),
    "space-in-host": (b"GET / HTTP/1.1\r\nHost: a.te st\r\n\r\n",
                      "whitespace inside the Host value"),
    "ctl-in-host": (b"GET / HTTP/1.1\r\nHost: a.te\x01st\r\n\r\n",
                    "invalid byte in host"),
    "host-with-slash": (b"GET / HTTP/1.1\r\nHost: a.test/x\r\n\r\n",
                        "invalid byte in host"),
    "missing-host-1.1": (b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", None),
    "missing-host-1.0": (b"GET / HTTP/1.0\r\n\r\n", None),
    "empty-host": (b"GET / HTTP/1.1\r\nHost:\r\n\r\n", None),
}


@pytest.mark.parametrize("data,why", list(BAD_HEADS.values()), ids=list(BAD_HEADS))
def test_malformed_or_hostless_head_reaches_no_upstream(setup, data, why):
    """Preread ends with an empty $http_preread_host; `proxy_pass
    $http_preread_host:PORT` then has no name: refused with 403."""
    r, bk, d = setup()
    s = dns.send_http(r.listen_ports[0], data)
    assert util.recv_all(s) == b""
    s.close()
    f = dns.fwd_line(r.wait_access(1)[0])
    assert util.empty(f["http_preread_host"]), f
    assert util.empty(f["upstream_addr"]), f
    assert f["status"] == "403", f
    assert f["bytes_sent"] == "0"
    assert f["bytes_received"] == str(len(data))
    if why:
        r.wait_error(r"malformed HTTP request head: .*%s" % re.escape(why))
    else:
        assert "malformed HTTP request head" not in r.error_text()
    assert sum(b.accepted for b in bk.values()) == 0
    assert d.queries() == []


def test_host_valid_in_http_but_not_a_dns_name_is_refused(setup):
    """RFC 3986 allows "$" in a reg-name, so the head is fine and the variable
    is set; as a DNS name it is invalid: refused before any query."""
    r, bk, d = setup()
    s = dns.send_http(r.listen_ports[0], b"GET / HTTP/1.1\r\nHost: a.te$t\r\n\r\n")
    assert util.recv_all(s) == b""
    s.close()
    f = dns.fwd_line(r.wait_access(1)[0])
    assert f["http_preread_host"] == "a.te$t"
    assert f["status"] == "403"
    assert util.empty(f["upstream_addr"])
    r.wait_error(r'invalid host name in "a\.te\$t:\d+"')
    assert sum(b.accepted for b in bk.values()) == 0
    assert d.queries() == []


def test_oversized_head_gives_400(setup):
    r, bk, d = setup(EXTRA="preread_buffer_size 1k;")
    s = dns.send_http(r.listen_ports[0],
                      b"GET / HTTP/1.1\r\nHost: a.test\r\nX-Big: " + b"x" * 3000)
    assert util.recv_all(s) == b""
    s.close()
    f = dns.fwd_line(r.wait_access(1)[0])
    assert f["status"] == "400"
    assert util.empty(f["http_preread_host"])
    assert util.empty(f["upstream_addr"])
    r.wait_error(r"preread buffer full")
    assert sum(b.accepted for b in bk.values()) == 0
    assert d.queries() == []


def test_head_within_the_buffer_is_routed(setup):
    r, bk, d = setup(EXTRA="preread_buffer_size 1k;")
    data = b"GET / HTTP/1.1\r\nHost: a.test\r\nX-Big: " + b"x" * 900 + b"\r\n\r\n"
    s = dns.send_http(r.listen_ports[0], data)
    bk["127.0.0.21"].wait_conns(1)
    s.close()
    assert dns.fwd_line(r.wait_access(1)[0])["status"] == "200"


def test_slow_head_is_closed_at_the_preread_deadline(setup):
    r, bk, d = setup(PT="1s")
    t0 = time.monotonic()
    s = dns.send_http(r.listen_ports[0], b"GET / HTTP/1.1\r\nHost: a.te")
    assert util.recv_all(s) == b""
    took = time.monotonic() - t0
    s.close()
    assert 0.8 <= took < 5.0, took
    f = dns.fwd_line(r.wait_access(1)[0])
    assert f["status"] == "200"
    assert util.empty(f["upstream_addr"])
    assert util.empty(f["http_preread_host"])
    assert sum(b.accepted for b in bk.values()) == 0
    assert d.queries() == []


def test_trickled_head_does_not_extend_the_deadline(setup):
    """The deadline is absolute: a byte every 0.3 s does not keep it open."""
    r, bk, d = setup(PT="1s")
    s = util.connect(r.listen_ports[0])
    t0 = time.monotonic()
    closed = False
    head = b"GET / HTTP/1.1\r\nX-Slow: " + b"y" * 100
    for i in range(len(head)):
        try:
            s.sendall(head[i:i + 1])
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
        s.settimeout(0.3)
        try:
            if s.recv(1) == b"":
                closed = True
                break
        except TimeoutError:
            pass
        except ConnectionResetError:
            closed = True
            break
        if time.monotonic() - t0 > 6:
            break
    s.close()
    assert closed, "still open after %.1fs" % (time.monotonic() - t0)
    assert time.monotonic() - t0 < 4.0
    assert dns.fwd_line(r.wait_access(1)[0])["status"] == "200"
    assert sum(b.accepted for b in bk.values()) == 0


def test_numeric_host_is_refused_without_a_query(setup):
    r, bk, d = setup()
    s = dns.send_http(r.listen_ports[0], dns.http_head("127.0.0.21"))
    assert util.recv_all(s) == b""
    s.close()
    f = dns.fwd_line(r.wait_access(1)[0])
    assert f["status"] == "403"
    assert sum(b.accepted for b in bk.values()) == 0
    assert d.queries() == []


BOTH = r"""
    resolver @DNS@ ipv6=off;
    server {
        listen 127.0.0.1:@L@;
        ssl_preread on;
        http_preread on;
        preread_timeout @PT@;
        proxy_target_allow 127.0.0.0/8;
        @EXTRA@
        proxy_pass $ssl_preread_server_name$http_preread_host:@P@;
    }
"""


def test_tls_and_http_on_one_listener_first_byte_decides(setup):
    r, bk, d = setup(conf=BOTH)
    L = r.listen_ports[0]
    a, b = bk["127.0.0.21"], bk["127.0.0.22"]

    s, tls = dns.send_hello(L, "a.test")
    a.wait_conns(1)
    s.close()
    f = dns.fwd_line(r.wait_access(1)[0])
    assert f["ssl_preread_server_name"] == "a.test"
    assert util.empty(f["http_preread_host"])
    assert f["upstream_addr"] == a.addr

    data = dns.http_head("b.test")
    s = dns.send_http(L, data)
    b.wait_conns(1)
    s.close()
    f = dns.fwd_line(r.wait_access(2)[1])
    assert f["http_preread_host"] == "b.test"
    assert util.empty(f["ssl_preread_server_name"])
    assert f["upstream_addr"] == b.addr

    # A ClientHello whose bytes happen to contain an HTTP-looking Host line
    # is still TLS: the SNI routes it.
    hs = hello.build_client_hello(server_name="a.test",
                                  alpn=["\r\nHost: b.test\r\n"])
    s = util.connect(L)
    s.sendall(hello.records(hs))
    a.wait_conns(2)
    s.close()
    f = dns.fwd_line(r.wait_access(3)[2])
    assert f["ssl_preread_server_name"] == "a.test"
    assert util.empty(f["http_preread_host"])
    for c in a.conns[:2] + b.conns[:1]:
        assert c["done"].wait(util.DEADLINE)
    assert a.conns[0]["data"] == tls
    assert b.conns[0]["data"] == data


def test_keep_alive_second_request_with_another_host_stays_on_the_first_upstream(
        setup):
    """Routing is per connection (README: the unit of access control is the
    upstream): a second request on the same connection naming another Host
    is forwarded, unchanged, to the upstream the first one chose."""
    r, bk, d = setup()
    first = b"GET /1 HTTP/1.1\r\nHost: a.test\r\n\r\n"
    second = b"GET /2 HTTP/1.1\r\nHost: b.test\r\n\r\n"
    s = dns.send_http(r.listen_ports[0], first)
    a = bk["127.0.0.21"]
    a.wait_conns(1)
    s.sendall(second)
    s.close()
    assert a.conns[0]["done"].wait(util.DEADLINE)
    assert a.conns[0]["data"] == first + second
    assert bk["127.0.0.22"].accepted == 0
    f = dns.fwd_line(r.wait_access(1)[0])
    assert f["http_preread_host"] == "a.test"
    assert d.count("b.test") == 0

"""Guards on forwarding to names the client chooses: SSRF (addresses that
names from clients may not resolve to), IP literals that are never resolved,
forwarding loops, the deny_if allow-list, and `-t` warnings for open-proxy
configurations.

Only loopback addresses are ever connected to.  169.254.169.254 and the IPv6
forms embedding it appear only in DNS answers that snirelay must refuse, and
each such test first checks that the guard refuses a loopback answer."""

import os
import socket
import subprocess

import pytest

import dns
import util

SNI_CONF = r"""
    resolver @DNS@ @ROPTS@;
    resolver_timeout 5s;
    server {
        listen 127.0.0.1:@L@;
        ssl_preread on;
        preread_timeout 5s;
        proxy_connect_timeout 2s;
        @EXTRA@
        proxy_pass @PASS@;
    }
"""

ALLOW = "proxy_target_allow 127.0.0.0/8;"


def _relay(relay, port, d, P, extra="", ropts="", pass_="$ssl_preread_server_name:@P@",
           L=None):
    return relay(SNI_CONF.replace("@PASS@", pass_), DNS=d.addr, ROPTS=ropts,
                 EXTRA=extra, L=L or port(), P=P, log_format=dns.FWD_FORMAT)


def _closed_silently(r, name, n_line):
    """A session for SNI `name` the proxy must close with no data; its log line."""
    s, _ = dns.send_hello(r.listen_ports[0], name)
    assert util.recv_all(s) == b""
    s.close()
    return dns.fwd_line(r.wait_access(n_line)[n_line - 1])


# --------------------------------------------------------------------------
# SSRF


@pytest.mark.parametrize("allow", [False, True], ids=["default", "allowed"])
def test_loopback_answer_is_refused_unless_allowed(relay, port, dnsmasq,
                                                   same_port_backends, allow):
    P, bk = same_port_backends(["127.0.0.21"], lambda h: util.record_to_eof())
    b = bk["127.0.0.21"]
    d = dnsmasq({"lo.test": "127.0.0.21"}, ttl=60)
    r = _relay(relay, port, d, P, extra=ALLOW if allow else "", ropts="ipv6=off")
    if allow:
        s, data = dns.send_hello(r.listen_ports[0], "lo.test")
        b.wait_conns(1)
        s.close()
        b.conns[0]["done"].wait(util.DEADLINE)
        assert b.conns[0]["data"] == data
        f = dns.fwd_line(r.wait_access(1)[0])
        assert f["status"] == "200"
        assert f["upstream_addr"] == b.addr
        assert "denied" not in r.error_text()
    else:
        f = _closed_silently(r, "lo.test", 1)
        assert f["status"] == "403"
        assert util.empty(f["upstream_addr"])
        r.wait_error(r"lo\.test resolved to 127\.0\.0\.21:%d, a loopback address: denied"
                     % P)
        assert b.accepted == 0
    assert d.count("lo.test") == 1


@pytest.mark.parametrize("record,qtype,addr_rx,klass", [
    ("169.254.169.254", 1, r"169\.254\.169\.254:\d+", "link-local"),
    ("::ffff:169.254.169.254", 28, r"\[::ffff:169\.254\.169\.254\]:\d+", "link-local"),
    ("64:ff9b::a9fe:a9fe", 28, r"\[64:ff9b::a9fe:a9fe\]:\d+", "link-local"),
    ("::ffff:127.0.0.1", 28, r"\[::ffff:127\.0\.0\.1\]:\d+", "loopback"),
], ids=["imds", "v4-mapped-imds", "nat64-imds", "v4-mapped-loopback"])
def test_metadata_and_embedded_v4_answers_are_refused(relay, port, dnsmasq,
                                                      same_port_backends,
                                                      record, qtype, addr_rx, klass):
    P, bk = same_port_backends(["127.0.0.21"], lambda h: util.record_to_eof())
    d = dnsmasq({"lo.test": "127.0.0.21", "meta.test": record}, ttl=60)
    r = _relay(relay, port, d, P)
    # The guard must be working before an address off this host is offered.
    f = _closed_silently(r, "lo.test", 1)
    assert f["status"] == "403", "the SSRF guard let a loopback answer through"
    r.wait_error(r"lo\.test resolved to .*: denied")

    f = _closed_silently(r, "meta.test", 2)
    assert f["status"] == "403"
    assert util.empty(f["upstream_addr"])
    assert f["bytes_sent"] == "0"
    r.wait_error(r"meta\.test resolved to %s, a %s address: denied" % (addr_rx, klass))
    assert d.count("meta.test", "A" if qtype == 1 else "AAAA") == 1
    assert bk["127.0.0.21"].accepted == 0


def test_map_value_built_from_a_regex_capture_is_guarded(relay, port, dnsmasq,
                                                          same_port_backends):
    """A capture from the SNI makes the target client-chosen: guarded too.
    A map whose values all name fixed hosts is the operator's choice: not
    guarded (the decision is per proxy_pass: one capture guards them all)."""
    P, bk = same_port_backends(["127.0.0.21", "127.0.0.22"],
                               lambda h: util.record_to_eof())
    d = dnsmasq({"one.inner.test": "127.0.0.21", "fixed.test": "127.0.0.22"}, ttl=60)
    r = relay(r"""
        resolver @DNS@ ipv6=off;
        map $ssl_preread_server_name $captured {
            hostnames;
            ~^(?<h>[a-z]+)\.fwd\.test$   $h.inner.test:@P@;
        }
        map $ssl_preread_server_name $fixed {
            hostnames;
            fixed.fwd2.test              fixed.test:@P@;
        }
        server {
            listen 127.0.0.1:@L1@;
            ssl_preread on;
            preread_timeout 5s;
            proxy_pass $captured;
        }
        server {
            listen 127.0.0.1:@L2@;
            ssl_preread on;
            preread_timeout 5s;
            proxy_pass $fixed;
        }
    """, DNS=d.addr, L1=port(), L2=port(), P=P, log_format=dns.FWD_FORMAT)
    f = _closed_silently(r, "one.fwd.test", 1)
    assert f["status"] == "403"
    r.wait_error(r"one\.inner\.test resolved to 127\.0\.0\.21:\d+, a loopback address: "
                 r"denied")
    assert bk["127.0.0.21"].accepted == 0

    s, _ = dns.send_hello(r.listen_ports[1], "fixed.fwd2.test")
    bk["127.0.0.22"].wait_conns(1)
    s.close()
    f = dns.fwd_line(r.wait_access(2)[1])
    assert f["status"] == "200"
    assert f["upstream_addr"] == bk["127.0.0.22"].addr


# --------------------------------------------------------------------------
# IP literals from clients


@pytest.mark.parametrize("name", ["127.0.0.1", "127.1", "2130706433", "0x7f.1",
                                  "0177.0.0.1"])
def test_numeric_names_are_never_resolved_or_used(relay, port, dnsmasq, backend, name):
    b = backend(util.record_to_eof(), name="lit")       # listens on 127.0.0.1:P
    d = dnsmasq({"a.test": "127.0.0.1"}, ttl=60)
    r = _relay(relay, port, d, b.port, extra=ALLOW)
    f = _closed_silently(r, name, 1)
    assert f["status"] == "403"
    assert util.empty(f["upstream_addr"])
    r.wait_error(r"is an address in a form that is never resolved|"
                 r"is an address, not a name")
    assert d.queries() == []
    assert b.accepted == 0


# --------------------------------------------------------------------------
# forwarding loops


@pytest.mark.parametrize("target,extra", [
    ("127.0.0.1", ALLOW), ("127.0.0.1", ""), ("127.0.0.9", ALLOW)],
    ids=["listen-addr", "listen-addr-no-allow", "other-loopback-addr"])
def test_name_resolving_to_the_proxy_itself_is_a_loop(relay, port, dnsmasq,
                                                      target, extra):
    L = port()
    d = dnsmasq({"loop.test": target}, ttl=60)
    r = _relay(relay, port, d, L, extra=extra, ropts="ipv6=off", L=L)
    f = _closed_silently(r, "loop.test", 1)
    assert f["status"] == "502"
    assert util.empty(f["upstream_addr"])
    r.wait_error(r"forwarding loop: loop\.test resolved to %s:%d, which is this proxy"
                 % (target.replace(".", r"\."), L))
    # The proxy did not connect to itself: nothing else is open on its port,
    # and the next session's line directly follows the refused one.
    util.wait_proxy_closed_all(L)
    f = _closed_silently(r, "nx.test", 2)
    assert f["status"] == "500"
    lines = r.access_lines()
    assert len(lines) == 2, lines
    assert dns.fwd_line(lines[0])["ssl_preread_server_name"] == "loop.test"
    assert dns.fwd_line(lines[1])["ssl_preread_server_name"] == "nx.test"


def _own_ipv4():
    """A non-loopback IPv4 address of this host (the stand-in "own"
    address), or None."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"],
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if "inet" in parts:
            return parts[parts.index("inet") + 1].split("/")[0]
    return None


def _embed(form, v4):
    """v4 written in one of the IPv6 forms that carry an IPv4 address."""
    b = bytes(int(x) for x in v4.split("."))
    if form == "mapped":
        return "::ffff:" + v4
    if form == "nat64":
        return "64:ff9b::" + v4
    if form == "6to4":
        return "2002:%02x%02x:%02x%02x::1" % tuple(b)
    raise ValueError(form)


OWN_LOOP_CONF = r"""
    resolver @DNS@ ipv4=off;
    resolver_timeout 5s;
    server {
        listen 127.0.0.1:@L@;
        listen @OWN@:@L@;
        ssl_preread on;
        preread_timeout 5s;
        proxy_connect_timeout 2s;
        proxy_target_allow @OWN@/32 64:ff9b::/96 2002::/16;
        proxy_pass $ssl_preread_server_name:@L@;
    }
"""


@pytest.mark.parametrize("form", ["mapped", "nat64", "6to4"])
def test_own_address_embedded_in_ipv6_is_a_loop(relay, port, dnsmasq, form):
    # Issue 8: an AAAA answer carrying the proxy's own (non-loopback,
    # proxy_target_allow-ed) IPv4 address.  Before the fix the mapped form
    # connected to our own listener, and every session there looped again.
    own = _own_ipv4()
    if own is None:
        pytest.skip("no non-loopback IPv4 address on this host")
    L = port()
    target = socket.inet_ntop(socket.AF_INET6,
                              socket.inet_pton(socket.AF_INET6, _embed(form, own)))
    d = dnsmasq({"loop.test": target}, ttl=60)
    r = relay(OWN_LOOP_CONF, DNS=d.addr, OWN=own, L=L,
              log_format=dns.FWD_FORMAT)
    f = _closed_silently(r, "loop.test", 1)
    assert f["status"] == "502"
    assert util.empty(f["upstream_addr"])
    r.wait_error(r"forwarding loop: loop\.test resolved to \[%s\]:%d, which "
                 r"is this proxy" % (target.replace(".", r"\."), L))
    assert r.error_text().count("forwarding loop") == 1, r.error_text()
    # Canary: nothing was accepted on our own address's listener, nothing is
    # left open on the port, and the next session's line follows directly.
    util.wait_proxy_closed_all(L)
    f = _closed_silently(r, "nx.test", 2)
    assert f["status"] == "500"
    lines = r.access_lines()
    assert len(lines) == 2, lines
    assert "connected to %s:%d" % (own, L) not in r.error_text()
    assert r.error_text().count("forwarding loop") == 1, r.error_text()


CHAIN_CONF = r"""
    upstream inner {
        server 127.0.0.1:@M@;
    }
    server {
        listen 127.0.0.1:@L@;
        proxy_pass @PASS@;
    }
    server {
        listen 127.0.0.1:@M@;
        proxy_pass 127.0.0.1:@B@;
    }
"""


@pytest.mark.parametrize("pass_", ["127.0.0.1:@M@", "inner", "$server_addr:@M@"],
                         ids=["address", "upstream-block", "non-client-value"])
def test_chaining_to_our_own_listener_written_in_the_config(relay, port, backend, pass_):
    # An address the config writes is the operator's choice, not a loop:
    # server L hands over to server M, which forwards to the backend.
    b = backend(util.echo())
    L, M = port(), port()
    r = relay(CHAIN_CONF.replace("@PASS@", pass_), L=L, M=M, B=b.port)
    s = util.connect(L)
    assert util.echo_roundtrip(s, b"chained") == b"chained"
    s.close()
    lines = [util.parse_line(l) for l in r.wait_access(2)]
    assert sorted(f["upstream_addr"] for f in lines) == \
        sorted(["127.0.0.1:%d" % M, b.addr])
    assert all(f["status"] == "200" for f in lines), lines
    assert "forwarding loop" not in r.error_text()


def test_config_chosen_name_resolving_to_our_listener_chains(relay, port,
                                                           backend, dnsmasq):
    # The loop guard is for names a client chose (issue 7): a name the
    # config picks (a map on $server_port) may resolve to one of our own
    # listeners, as nginx's stream_resolver.t does.
    b = backend(util.echo())
    L, M = port(), port()
    d = dnsmasq({"inner.test": "127.0.0.1"}, ttl=60)
    r = relay(r"""
        resolver @DNS@ ipv6=off;
        map $server_port $next {
            default inner.test:@M@;
        }
        server {
            listen 127.0.0.1:@L@;
            proxy_pass $next;
        }
        server {
            listen 127.0.0.1:@M@;
            proxy_pass 127.0.0.1:@B@;
        }
    """, DNS=d.addr, L=L, M=M, B=b.port)
    s = util.connect(L)
    assert util.echo_roundtrip(s, b"via dns") == b"via dns"
    s.close()
    lines = [util.parse_line(l) for l in r.wait_access(2)]
    assert sorted(f["upstream_addr"] for f in lines) == \
        sorted(["127.0.0.1:%d" % M, b.addr])
    assert "forwarding loop" not in r.error_text()


@pytest.mark.parametrize("preread,send", [
    ("ssl_preread on;", lambda L, name: dns.send_hello(L, name)[0]),
    ("http_preread on;", lambda L, name: dns.send_http(L, dns.http_head(name))),
    # RFC 9112 §3.2.2: the target's authority is the host (Host agrees)
    ("http_preread on;", lambda L, name: dns.send_http(
        L, b"GET http://%s:80/ HTTP/1.1\r\nHost: %s\r\n\r\n"
        % (name.encode(), name.encode()))),
], ids=["sni", "host", "absolute-form"])
def test_client_name_equal_to_a_fixed_proxy_pass_address_is_refused(
        relay, port, dnsmasq, same_port_backends, preread, send):
    # Issue 8: a fixed `proxy_pass 127.0.0.22:P` makes an implicit upstream
    # named "127.0.0.22:P"; a client's "127.0.0.22" must not reach it.
    P, bk = same_port_backends(["127.0.0.22"], lambda h: util.record_to_eof())
    b = bk["127.0.0.22"]
    d = dnsmasq({"a.test": "127.0.0.21"}, ttl=60)
    r = relay(r"""
        resolver @DNS@ ipv6=off;
        server {
            listen 127.0.0.1:@L@;
            @PRE@
            preread_timeout 5s;
            proxy_target_allow 127.0.0.0/8;
            proxy_pass $@VAR@:@P@;
        }
        server {
            listen 127.0.0.1:@M@;
            proxy_pass 127.0.0.22:@P@;
        }
    """, DNS=d.addr, L=port(), M=port(), P=P, PRE=preread,
        VAR="ssl_preread_server_name" if "ssl" in preread else "http_preread_host",
        log_format=dns.FWD_FORMAT)
    s = send(r.listen_ports[0], "127.0.0.22")
    assert util.recv_all(s) == b""
    s.close()
    f = dns.fwd_line(r.wait_access(1)[0])
    assert f["status"] == "403"
    assert util.empty(f["upstream_addr"])
    r.wait_error(r"is an address, not a name|is an address in a form that is never resolved")
    assert b.accepted == 0
    assert d.queries() == []


@pytest.mark.parametrize("name", ["a.test:@P@", "a.test:@Q@", "[::1]", "a.test:"])
def test_client_never_chooses_the_port(relay, port, dnsmasq, same_port_backends, name):
    # Found by the outside probes (issue 8): with `proxy_pass
    # $ssl_preread_server_name;` the text after the last ':' was the
    # client's, so "a.test:P" reached any port of an allowed host.
    P, bk = same_port_backends(["127.0.0.21"], lambda h: util.record_to_eof())
    b = bk["127.0.0.21"]
    d = dnsmasq({"a.test": "127.0.0.21"}, ttl=60)
    name = util.render(name, P=P, Q=P + 1)
    r = _relay(relay, port, d, P, extra=ALLOW, pass_="$ssl_preread_server_name")
    f = _closed_silently(r, name, 1)
    assert f["status"] == "403"
    assert util.empty(f["upstream_addr"])
    r.wait_error(r'the client-supplied value ".*" has a ":" where only a name may be')
    assert d.queries() == []
    assert b.accepted == 0


# --------------------------------------------------------------------------
# deny_if allow-list


def test_allow_list_refuses_unlisted_names_before_dns(relay, port, dnsmasq,
                                                      same_port_backends):
    P, bk = same_port_backends(["127.0.0.21"], lambda h: util.record_to_eof())
    b = bk["127.0.0.21"]
    d = dnsmasq({"api.test": "127.0.0.21", "ok.test": "127.0.0.21",
                 "x.ok.test": "127.0.0.21", "evil.test": "127.0.0.21",
                 "api.test.evil.test": "127.0.0.21"}, ttl=0)
    r = relay(r"""
        resolver @DNS@ ipv6=off;
        map $ssl_preread_server_name $denied {
            hostnames;
            default    1;
            api.test   0;
            .ok.test   0;
        }
        server {
            listen 127.0.0.1:@L@;
            ssl_preread on;
            preread_timeout 5s;
            deny_if $denied;
            proxy_target_allow 127.0.0.0/8;
            proxy_pass $ssl_preread_server_name:@P@;
        }
    """, DNS=d.addr, L=port(), P=P, log_format=dns.FWD_FORMAT)
    n = 0
    for name, ok in (("api.test", True), ("evil.test", False), ("ok.test", True),
                     ("x.ok.test", True), ("api.test.evil.test", False),
                     ("API.TEST", True)):
        n += 1
        if ok:
            before = b.accepted
            s, data = dns.send_hello(r.listen_ports[0], name)
            b.wait_conns(before + 1)
            s.close()
            f = dns.fwd_line(r.wait_access(n)[n - 1])
            assert f["status"] == "200", (name, f)
            assert f["upstream_addr"] == b.addr
        else:
            before = b.accepted
            f = _closed_silently(r, name, n)
            assert f["status"] == "403", (name, f)
            assert util.empty(f["upstream_addr"])
            assert b.accepted == before
            assert d.count(name) == 0, "%s was looked up although denied" % name
    r.wait_error(r'access forbidden by "deny_if"')
    assert d.count("api.test") == 2 and d.count("x.ok.test") == 1


# --------------------------------------------------------------------------
# -t warnings


def _t(snirelay_bin, workdir, body):
    conf = os.path.join(workdir, "t%d.conf" % len(os.listdir(workdir)))
    with open(conf, "w") as f:
        f.write("error_log %s/t.log info;\nevents {}\nstream {\n%s\n}\n" % (workdir, body))
    p = subprocess.run([snirelay_bin, "-t", "-c", conf], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    return p.returncode, p.stderr.decode(errors="replace"), conf


SERVER = """
    %(pre)s
    server {
        listen 127.0.0.1:%(L)d;
        ssl_preread on;
        %(inner)s
        proxy_pass %(pass)s;
    }
"""


@pytest.mark.parametrize("pre,inner,pass_,want", [
    ("", "", "$ssl_preread_server_name:443", {"resolver", "open"}),
    ("resolver 127.0.0.1:53;", "", "$ssl_preread_server_name:443", {"open"}),
    ("", "deny_if $d;", "$ssl_preread_server_name:443", {"resolver"}),
    ("resolver 127.0.0.1:53;", "deny_if $d;", "$ssl_preread_server_name:443", set()),
    ("", "", "$fixed", {"resolver"}),
    ("resolver 127.0.0.1:53;", "", "$fixed", set()),
    ("", "", "127.0.0.1:443", set()),
], ids=["neither", "resolver-only", "deny-only", "both", "fixed-map-no-resolver",
        "fixed-map-resolver", "static"])
def test_config_test_warns_about_missing_resolver_and_open_proxy(
        snirelay_bin, workdir, pre, inner, pass_, want):
    maps = ("map $ssl_preread_server_name $d { hostnames; default 1; a.test 0; }\n"
            "map $ssl_preread_server_name $fixed { default b.test:443; }\n")
    body = maps + SERVER % {"pre": pre, "inner": inner, "pass": pass_,
                            "L": util.free_port()}
    rc, err, conf = _t(snirelay_bin, workdir, body)
    assert rc == 0, err
    got = set()
    for line in err.splitlines():
        if "may need a resolver" in line:
            assert line.startswith("snirelay: [warn] "), line
            assert '"proxy_pass %s" may need a resolver' % pass_ in line
            assert conf in line
            got.add("resolver")
        if "open proxy" in line:
            assert line.startswith("snirelay: [warn] "), line
            assert '"proxy_pass %s" forwards to names the client chooses' % pass_ in line
            got.add("open")
    assert got == want, err

"""proxy_pass to the name the client asked for, resolved through a real DNS
server (dnsmasq on loopback): answers, TTL and valid= caching, NXDOMAIN,
server failure, a silent server, one query shared by concurrent sessions,
ipv6=off, and several addresses tried in turn.

Every backend lives on 127.0.0.x, which the SSRF guard refuses for names
from clients, so these configs carry `proxy_target_allow 127.0.0.0/8;`
(test_guards.py checks the same setups are refused without it)."""

import re
import socket
import subprocess
import threading
import time

import pytest

import dns
import util

SNI_CONF = r"""
    resolver @DNS@ @ROPTS@;
    resolver_timeout @RT@;
    server {
        listen 127.0.0.1:@L@;
        ssl_preread on;
        preread_timeout 5s;
        proxy_connect_timeout 2s;
        proxy_target_allow 127.0.0.0/8;
        proxy_pass $ssl_preread_server_name:@P@;
    }
"""


def _relay(relay, port, d, P, ropts="", rt="5s"):
    return relay(SNI_CONF, DNS=d.addr, ROPTS=ropts, RT=rt, L=port(), P=P,
                 log_format=dns.FWD_FORMAT)


def _recorders(same_port_backends, hosts):
    return same_port_backends(hosts, lambda h: util.record_to_eof())


def _refused(r, name, n_lines):
    """One session for `name` that must be closed with no data; returns its log line."""
    s, _ = dns.send_hello(r.listen_ports[0], name)
    assert util.recv_all(s) == b""
    s.close()
    return dns.fwd_line(r.wait_access(n_lines)[n_lines - 1])


def test_sni_names_resolve_to_their_own_backends_over_tls(relay, port, dnsmasq,
                                                          same_port_backends, pki):
    hosts = ["127.0.0.21", "127.0.0.22"]
    names = {"127.0.0.21": "a.test", "127.0.0.22": "b.test"}

    P, bk = same_port_backends(
        hosts, lambda h: util.tls_reply(names[h]),
        ssl_for=lambda h: util.server_context(*pki.cert(names[h])))
    d = dnsmasq({"a.test": "127.0.0.21", "b.test": "127.0.0.22"}, ttl=60)
    r = _relay(relay, port, d, P)
    L = r.listen_ports[0]
    for i, name in enumerate(("a.test", "b.test", "a.test"), 1):
        cert, reply, _ = util.ssl_request(L, name, pki.ca)
        assert util.cert_cn(cert) == name
        assert reply == (name + "\n").encode()
        r.wait_access(i)        # lines in session order
    assert [bk[h].accepted for h in hosts] == [2, 1]
    lines = [dns.fwd_line(l) for l in r.wait_access(3)]
    assert [l["upstream_addr"] for l in lines] == \
        ["127.0.0.21:%d" % P, "127.0.0.22:%d" % P, "127.0.0.21:%d" % P]
    assert all(l["status"] == "200" for l in lines)
    # TTL 60: the second session for a.test used the cached answer.
    assert d.count("a.test") == 1
    assert d.count("b.test") == 1


def test_resolver_in_the_server_block_and_name_case_folded(relay, port, dnsmasq,
                                                           same_port_backends):
    P, bk = _recorders(same_port_backends, ["127.0.0.21"])
    d = dnsmasq({"mixed.test": "127.0.0.21"}, ttl=60)
    r = relay(r"""
        server {
            listen 127.0.0.1:@L@;
            ssl_preread on;
            resolver @DNS@;
            resolver_timeout 5s;
            proxy_target_allow 127.0.0.0/8;
            proxy_pass $ssl_preread_server_name:@P@;
        }
    """, DNS=d.addr, L=port(), P=P, log_format=dns.FWD_FORMAT)
    s, data = dns.send_hello(r.listen_ports[0], "MiXeD.TeSt")
    bk["127.0.0.21"].wait_conns(1)
    s.close()
    f = dns.fwd_line(r.wait_access(1)[0])
    assert f["status"] == "200"
    assert f["upstream_addr"] == "127.0.0.21:%d" % P
    assert d.count("mixed.test") == 1


def test_ttl_expiry_picks_up_a_changed_address(relay, port, dnsmasq, same_port_backends):
    P, bk = _recorders(same_port_backends, ["127.0.0.21", "127.0.0.22"])
    old, new = bk["127.0.0.21"], bk["127.0.0.22"]
    d = dnsmasq({"moving.test": "127.0.0.21"}, ttl=1)
    r = _relay(relay, port, d, P)
    L = r.listen_ports[0]

    s, _ = dns.send_hello(L, "moving.test")
    old.wait_conns(1)
    s.close()
    d.set_records({"moving.test": "127.0.0.22"})
    t0 = time.monotonic()

    def lands_on_new():
        before = new.accepted + old.accepted
        s, _ = dns.send_hello(L, "moving.test")
        util.wait_for(lambda: new.accepted + old.accepted > before, "a backend connection")
        s.close()
        return new.accepted > 0

    util.wait_for(lands_on_new, "a session to reach the new address", interval=0.1)
    assert time.monotonic() - t0 < 5, "the 1 s TTL was kept far too long"
    assert d.count("moving.test") >= 2
    lines = r.wait_access(old.accepted + new.accepted)
    assert [dns.fwd_line(l)["upstream_addr"] for l in lines].count(new.addr) == 1


def test_valid_overrides_a_zero_ttl(relay, port, dnsmasq, same_port_backends):
    """local-ttl 0: without valid= every session asks again (control);
    with valid=60s the first answer is used although the record changed."""
    P, bk = _recorders(same_port_backends, ["127.0.0.21", "127.0.0.22"])
    old, new = bk["127.0.0.21"], bk["127.0.0.22"]

    def two_sessions(ropts):
        d = dnsmasq({"v.test": "127.0.0.21"}, ttl=0)
        r = _relay(relay, port, d, P, ropts=ropts)
        base = old.accepted
        total = old.accepted + new.accepted
        s, _ = dns.send_hello(r.listen_ports[0], "v.test")
        old.wait_conns(base + 1)
        s.close()
        r.wait_access(1)
        d.set_records({"v.test": "127.0.0.22"})
        s, _ = dns.send_hello(r.listen_ports[0], "v.test")
        util.wait_for(lambda: old.accepted + new.accepted == total + 2,
                      "the second session at a backend")
        s.close()
        lines = r.wait_access(2)
        return d, [dns.fwd_line(l)["upstream_addr"] for l in lines]

    d1, ups = two_sessions("")
    assert ups == [old.addr, new.addr]
    assert d1.count("v.test") == 2

    d2, ups = two_sessions("valid=60s")
    assert ups == [old.addr, old.addr]
    assert d2.count("v.test") == 1


def test_nxdomain_gives_500_and_is_remembered(relay, port, dnsmasq, same_port_backends):
    P, bk = _recorders(same_port_backends, ["127.0.0.21"])
    d = dnsmasq({"a.test": "127.0.0.21"}, ttl=60)
    r = _relay(relay, port, d, P, ropts="ipv6=off")
    t0 = time.monotonic()
    f = _refused(r, "nx.test", 1)
    assert f["status"] == "500"
    assert util.empty(f["upstream_addr"])
    assert f["bytes_sent"] == "0"
    r.wait_error(r"nx\.test could not be resolved \(\d+: Host not found\)")
    assert d.count("nx.test") == 1
    # A second session right away is answered from the negative cache (5 s).
    f = _refused(r, "nx.test", 2)
    assert f["status"] == "500"
    if time.monotonic() - t0 < 4.0:
        assert d.count("nx.test") == 1
    assert bk["127.0.0.21"].accepted == 0


def test_refused_query_is_a_server_failure(relay, port, dnsmasq, same_port_backends):
    """dnsmasq answers REFUSED outside its local zone (no upstreams)."""
    P, bk = _recorders(same_port_backends, ["127.0.0.21"])
    d = dnsmasq({}, ttl=60)
    r = _relay(relay, port, d, P, ropts="ipv6=off")
    f = _refused(r, "api.refused.example", 1)
    assert f["status"] == "500"
    # The error line is written before the access-log line we waited for.
    got = [l for l in r.error_text().splitlines() if "api.refused.example" in l]
    assert got and re.search(r"api\.refused\.example could not be resolved "
                             r"\(\d+: Server failure\)", got[0]), got
    assert d.count("api.refused.example") >= 1
    assert bk["127.0.0.21"].accepted == 0


def test_silent_resolver_times_out_with_500(relay, port, silent_resolver, same_port_backends):
    P, bk = _recorders(same_port_backends, ["127.0.0.21"])
    r = relay(SNI_CONF, DNS=silent_resolver.addr, ROPTS="", RT="1s", L=port(), P=P,
              log_format=dns.FWD_FORMAT)
    t0 = time.monotonic()
    s, _ = dns.send_hello(r.listen_ports[0], "slow.test")
    assert util.recv_all(s) == b""
    took = time.monotonic() - t0
    s.close()
    assert 0.8 <= took < 5.0, "closed after %.2fs with resolver_timeout 1s" % took
    f = dns.fwd_line(r.wait_access(1)[0])
    assert f["status"] == "500"
    assert util.empty(f["upstream_addr"])
    r.wait_error(r"slow\.test could not be resolved \(\d+: Operation timed out\)")
    assert silent_resolver.asked("slow.test") >= 1
    assert bk["127.0.0.21"].accepted == 0


def test_resolver_answering_after_4s_is_waited_for_with_resolver_timeout_10s(
        relay, port, slow_resolver, same_port_backends):
    # Issue 8: c-ares was set to 1s x 2 tries whatever resolver_timeout
    # said, so an answer after 4s was never taken.
    P, bk = _recorders(same_port_backends, ["127.0.0.21"])
    d = slow_resolver({"late.test": "127.0.0.21"}, delay=4.0)
    r = relay(SNI_CONF, DNS=d.addr, ROPTS="ipv6=off", RT="10s", L=port(), P=P,
              log_format=dns.FWD_FORMAT)
    t0 = time.monotonic()
    s, data = dns.send_hello(r.listen_ports[0], "late.test")
    b = bk["127.0.0.21"]
    b.wait_conns(1, timeout=15)
    took = time.monotonic() - t0
    s.close()
    b.conns[0]["done"].wait(util.DEADLINE)
    assert b.conns[0]["data"] == data
    assert 3.5 <= took < 10, "connected after %.2fs" % took
    f = dns.fwd_line(r.wait_access(1)[0])
    assert f["status"] == "200"
    assert f["upstream_addr"] == b.addr
    assert "could not be resolved" not in r.error_text()


def test_cname_only_answers_are_chased_for_an_sni_name(relay, port,
                                                      slow_resolver,
                                                      same_port_backends):
    # The server answers svc.test with its CNAME only (no A for the target):
    # c-ares calls that "no data"; we ask on, as nginx's resolver does.
    P, bk = _recorders(same_port_backends, ["127.0.0.22"])
    d = slow_resolver({"real.test": "127.0.0.22"}, 0,
                      cnames={"svc.test": "mid.test", "mid.test": "real.test"})
    r = _relay(relay, port, d, P, ropts="ipv6=off")
    s, data = dns.send_hello(r.listen_ports[0], "svc.test")
    b = bk["127.0.0.22"]
    b.wait_conns(1)
    s.close()
    b.conns[0]["done"].wait(util.DEADLINE)
    assert b.conns[0]["data"] == data
    assert d.count("mid.test") >= 1 and d.count("real.test") == 1


@pytest.mark.parametrize("cnames", [
    {"loop.test": "loop.test"},
    {"loop.test": "two.test", "two.test": "loop.test"},
    {"loop.test": "a.test", "a.test": "b.test", "b.test": "c.test",
     "c.test": "a.test"},
], ids=["self", "two", "three-from-the-second"])
def test_cname_loops_end_in_host_not_found_with_few_queries(
        relay, port, slow_resolver, same_port_backends, cnames):
    P, bk = _recorders(same_port_backends, ["127.0.0.22"])
    d = slow_resolver({}, 0, cnames=cnames)
    r = _relay(relay, port, d, P, ropts="ipv6=off")
    f = _refused(r, "loop.test", 1)
    assert f["status"] == "500"
    r.wait_error(r"loop\.test could not be resolved \(\d+: Host not found\)")
    # Bounded: at most a few rounds of (A, CNAME) per link, not a storm.
    asked = sum(d.count(n) + d.count(n, 5) for n in cnames)
    assert 0 < asked <= 2 * 9, asked
    assert bk["127.0.0.22"].accepted == 0


def test_silent_resolver_fails_at_resolver_timeout_not_earlier(
        relay, port, silent_resolver, same_port_backends):
    P, bk = _recorders(same_port_backends, ["127.0.0.21"])
    r = relay(SNI_CONF, DNS=silent_resolver.addr, ROPTS="", RT="6s", L=port(),
              P=P, log_format=dns.FWD_FORMAT)
    t0 = time.monotonic()
    s, _ = dns.send_hello(r.listen_ports[0], "never.test")
    assert util.recv_all(s) == b""
    took = time.monotonic() - t0
    s.close()
    assert 5.8 <= took < 8.0, "closed after %.2fs with resolver_timeout 6s" % took
    f = dns.fwd_line(r.wait_access(1)[0])
    assert f["status"] == "500"
    r.wait_error(r"never\.test could not be resolved \(\d+: Operation timed out\)")
    # c-ares retransmitted within the timeout rather than asking once.
    assert silent_resolver.asked("never.test") >= 2
    assert bk["127.0.0.21"].accepted == 0


def _reply_at_eof(name):
    """Backend handler: read to EOF, then answer `name` and close."""
    def handler(conn, info):
        info["data"] = util.recv_all(conn)
        conn.sendall(name.encode() + b"\n")
    return handler


HC_CONF = SNI_CONF.replace("proxy_target_allow", "proxy_half_close @HC@;\n"
                           "        proxy_target_allow")


@pytest.mark.parametrize("half_close", ["on", "off"])
def test_client_fin_during_a_slow_lookup(relay, port, slow_resolver,
                                         same_port_backends, half_close):
    """Issue 8: a client's FIN while its name is being resolved.  With
    proxy_half_close on (the whole hello was read) it is a half-close: the
    session goes on, the upstream gets the hello and the FIN, and its
    answer reaches the client.  With it off the session ends at once."""
    P, bk = same_port_backends(["127.0.0.21"], lambda h: _reply_at_eof("served"))
    d = slow_resolver({"slow.test": "127.0.0.21"}, delay=1.5)
    r = relay(HC_CONF, DNS=d.addr, ROPTS="ipv6=off", RT="10s", HC=half_close,
              L=port(), P=P, log_format=dns.FWD_FORMAT)
    s, data = dns.send_hello(r.listen_ports[0], "slow.test")
    util.wait_for(lambda: d.count("slow.test") >= 1, "the query to be asked")
    t0 = time.monotonic()
    s.shutdown(socket.SHUT_WR)
    got = util.recv_all(s)
    took = time.monotonic() - t0
    s.close()
    f = dns.fwd_line(r.wait_access(1)[0])
    b = bk["127.0.0.21"]
    if half_close == "on":
        assert got == b"served\n"
        assert b.conns[0]["data"] == data
        assert f["status"] == "200"
        assert f["upstream_addr"] == b.addr
    else:
        assert got == b""
        assert took < 1.0, "closed after %.2fs" % took
        assert f["status"] == "200"
        assert util.empty(f["upstream_addr"])
        r.wait_error(r"\[info\] .*client closed connection while resolving")
        assert b.accepted == 0


def test_cache_is_bounded_by_cache_entries_lru(relay, port, dnsmasq,
                                              same_port_backends):
    """Issue 8: the cache had no bound, so random names grew it for ever.
    `resolver ... cache_entries=64` (our extension): 2000 random NXDOMAIN
    names later the first name was dropped (asked again), the newest is
    still cached, the bound is logged once, and lookups still work."""
    import concurrent.futures
    import random

    P, bk = _recorders(same_port_backends, ["127.0.0.21"])
    b = bk["127.0.0.21"]
    d = dnsmasq({"first.test": "127.0.0.21", "last.test": "127.0.0.21"}, ttl=60)
    r = _relay(relay, port, d, P, ropts="ipv6=off valid=60s cache_entries=64")
    L = r.listen_ports[0]

    def served(name, n):
        s, data = dns.send_hello(L, name)
        b.wait_conns(n)
        s.close()
        b.conns[n - 1]["done"].wait(util.DEADLINE)
        assert b.conns[n - 1]["data"] == data

    def refused(name):
        s, _ = dns.send_hello(L, name)
        try:
            return util.recv_all(s)
        finally:
            s.close()

    served("first.test", 1)
    assert d.count("first.test") == 1
    rnd = random.Random(8)
    names = ["nx%08x.test" % rnd.getrandbits(32) for _ in range(2000)]
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        assert all(x == b"" for x in ex.map(refused, names))
    r.wait_access(2001)
    r.wait_error(r"\[warn\] .*resolver cache is full \(64 names\): the least "
                 r"recently used ones are dropped")
    assert r.error_text().count("resolver cache is full") == 1
    served("last.test", 2)
    served("last.test", 3)
    assert d.count("last.test") == 1, "the newest name was not cached"
    served("first.test", 4)
    assert d.count("first.test") == 2, "the oldest name was never dropped"
    # The newest random names are cached NXDOMAIN (5s): not asked again.
    before = d.count(names[-1])
    assert refused(names[-1]) == b""
    assert d.count(names[-1]) == before


@pytest.mark.parametrize("bad", ["cache_entries=0", "cache_entries=x",
                                 "cache_entries="])
def test_cache_entries_invalid_value_is_refused(relay, port, bad):
    r = relay(r"""
    resolver 127.0.0.1:53 @BAD@;
    server {
        listen 127.0.0.1:@L@;
        proxy_pass 127.0.0.1:1;
    }
    """, BAD=bad, L=port(), start=False)
    p = subprocess.run([r.binary, "-t", "-c", r.conf], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=util.DEADLINE)
    assert p.returncode == 1
    lines = r.text.splitlines()
    n = [i for i, l in enumerate(lines) if bad in l][0] + 1
    assert ('snirelay: [emerg] invalid parameter "%s" in %s:%d'
            % (bad, r.conf, n)) in p.stderr, p.stderr


def test_concurrent_sessions_share_one_query(relay, port, dnsmasq, same_port_backends):
    """20 sessions for one name while its query is held in flight: one query.

    TTL 0, so a proxy that did not share the in-flight query (and had no
    answer to cache) would have to ask once per session."""
    N = 20
    P, bk = _recorders(same_port_backends, ["127.0.0.21"])
    b = bk["127.0.0.21"]
    d = dnsmasq({"shared.test": "127.0.0.21"}, ttl=0)
    gate = dns.GatedForwarder(d.port)
    try:
        r = relay(SNI_CONF, DNS=gate.addr, ROPTS="ipv6=off", RT="10s", L=port(), P=P,
                  log_format=dns.FWD_FORMAT)
        L = r.listen_ports[0]
        socks = [None] * N
        errs = []

        def client(i):
            try:
                socks[i] = dns.send_hello(L, "shared.test")[0]
            except OSError as e:
                errs.append(e)

        ts = [threading.Thread(target=client, args=(i,)) for i in range(N)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(util.DEADLINE)
        assert not errs
        util.wait_for(lambda: gate.held() >= 1, "the query to reach the gate")
        util.wait_for(lambda: dns.proxy_has_read_all(L, N),
                      "the proxy to read all %d hellos" % N)
        # Everything read, a query held: a second query would be here already.
        assert [q for q in gate.queries if q[2] == "shared.test"] == \
            [gate.queries[0]]
        gate.open()
        b.wait_conns(N)
        for s in socks:
            s.close()
        lines = [dns.fwd_line(l) for l in r.wait_access(N)]
        assert all(l["status"] == "200" and l["upstream_addr"] == b.addr for l in lines)
        assert len([q for q in gate.queries if q[2] == "shared.test"]) == 1
        assert d.count("shared.test", "A") == 1
        assert d.count("shared.test", "AAAA") == 0
    finally:
        gate.stop()


@pytest.mark.parametrize("ropts,aaaa", [("ipv6=off", False), ("", True)],
                         ids=["ipv6-off", "default"])
def test_ipv6_off_sends_no_aaaa_queries(relay, port, dnsmasq, same_port_backends, ropts, aaaa):
    P, bk = _recorders(same_port_backends, ["127.0.0.21"])
    d = dnsmasq({"four.test": "127.0.0.21"}, ttl=60)
    r = _relay(relay, port, d, P, ropts=ropts)
    s, _ = dns.send_hello(r.listen_ports[0], "four.test")
    bk["127.0.0.21"].wait_conns(1)
    s.close()
    assert dns.fwd_line(r.wait_access(1)[0])["status"] == "200"
    assert d.count("four.test", "A") == 1
    if aaaa:
        assert d.count("four.test", "AAAA") == 1
    else:
        assert d.count("four.test", "AAAA") == 0


def test_several_addresses_are_tried_in_turn(relay, port, dnsmasq, same_port_backends):
    """Two A records; nothing listens on the first: the next one is used."""
    P, bk = _recorders(same_port_backends, ["127.0.0.32"])
    live = bk["127.0.0.32"]
    d = dnsmasq([("127.0.0.31", "multi.test"), ("127.0.0.32", "multi.test")], ttl=60)
    r = _relay(relay, port, d, P, ropts="ipv6=off")
    for i in (1, 2):
        s, data = dns.send_hello(r.listen_ports[0], "multi.test")
        live.wait_conns(i)
        s.close()
        live.conns[i - 1]["done"].wait(util.DEADLINE)
        assert live.conns[i - 1]["data"] == data
        r.wait_access(i)
    lines = [dns.fwd_line(l) for l in r.wait_access(2)]
    assert lines[0]["status"] == "200"
    assert lines[0]["upstream_addr"] == "127.0.0.31:%d, 127.0.0.32:%d" % (P, P)
    assert lines[1]["status"] == "200"
    assert lines[1]["upstream_addr"].endswith("127.0.0.32:%d" % P)


def test_all_addresses_refusing_gives_502(relay, port, dnsmasq):
    P = util.free_port("127.0.0.31")
    d = dnsmasq([("127.0.0.31", "dead.test"), ("127.0.0.33", "dead.test")], ttl=60)
    r = _relay(relay, port, d, P, ropts="ipv6=off")
    f = _refused(r, "dead.test", 1)
    assert f["status"] == "502"
    assert f["upstream_addr"] == "127.0.0.31:%d, 127.0.0.33:%d" % (P, P)


def test_no_resolver_gives_500(relay, port, same_port_backends):
    P, bk = _recorders(same_port_backends, ["127.0.0.21"])
    r = relay(r"""
        server {
            listen 127.0.0.1:@L@;
            ssl_preread on;
            proxy_target_allow 127.0.0.0/8;
            proxy_pass $ssl_preread_server_name:@P@;
        }
    """, L=port(), P=P, log_format=dns.FWD_FORMAT)
    f = _refused(r, "a.test", 1)
    assert f["status"] == "500"
    r.wait_error(r"no resolver defined to resolve a\.test")
    assert bk["127.0.0.21"].accepted == 0


def _close_kind(s):
    """How the proxy ended a session: ('eof' | 'reset', bytes received)."""
    s.settimeout(util.DEADLINE)
    data = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                return "eof", data
            data += b
    except ConnectionResetError:
        return "reset", data


def test_failures_look_the_same_to_the_client(relay, port, dnsmasq, silent_resolver,
                                              same_port_backends):
    """NXDOMAIN, an SSRF denial, an IP literal, a deny_if refusal and a DNS
    timeout: the client sees the same close with no bytes for each."""
    P, bk = _recorders(same_port_backends, ["127.0.0.21"])
    d = dnsmasq({"lo.test": "127.0.0.21", "blocked.test": "127.0.0.21"}, ttl=60)
    conf = r"""
        resolver @DNS@ ipv6=off;
        resolver_timeout 1s;
        map $ssl_preread_server_name $denied {
            default       0;
            blocked.test  1;
        }
        server {
            listen 127.0.0.1:@L@;
            ssl_preread on;
            preread_timeout 5s;
            deny_if $denied;
            proxy_pass $ssl_preread_server_name:@P@;
        }
    """
    r = relay(conf, DNS=d.addr, L=port(), P=P, log_format=dns.FWD_FORMAT)
    silent = relay(conf, DNS=silent_resolver.addr, L=port(), P=P,
                   log_format=dns.FWD_FORMAT)
    seen = {}
    for rr, name in ((r, "nx.test"), (r, "lo.test"), (r, "127.0.0.21"),
                     (r, "blocked.test"), (silent, "slow.test")):
        s, _ = dns.send_hello(rr.listen_ports[0], name)
        seen[name] = _close_kind(s)
        s.close()
    statuses = sorted(dns.fwd_line(l)["status"] for l in r.wait_access(4))
    assert statuses == ["403", "403", "403", "500"]
    assert dns.fwd_line(silent.wait_access(1)[0])["status"] == "500"
    kinds = set(seen.values())
    assert len(kinds) == 1 and list(kinds)[0][1] == b"", seen
    assert bk["127.0.0.21"].accepted == 0

"""`server NAME service=S resolve` in an upstream{} (nginx 1.27.3): the
servers come from DNS SRV records of _S._tcp.NAME, each target's addresses
with the record's port and weight; the lowest priority's records are the
primaries and the others backups. Real DNS servers: dnsmasq (--srv-host)
for the record shapes, dns.SlowResolver where answers must change or
fail while the proxy runs."""

import pytest

import util


CONF = r"""
    resolver @DNS@ valid=1s;
    resolver_timeout 2s;
    upstream svc {
        server svc.test @OPTS@;
    }
    server {
        listen 127.0.0.1:@L@;
        proxy_pass svc;
        proxy_connect_timeout 1s;
    }
"""


_session = util.session_to


def _srv_host(name, target, port, prio, weight):
    return "--srv-host=%s,%s,%d,%d,%d" % (name, target, port, prio, weight)


def test_srv_records_give_the_servers_their_ports_and_weights(relay, port, dnsmasq,
                                                              backend):
    a = backend(util.record_to_eof(), name="a")
    b = backend(util.record_to_eof(), name="b")
    d = dnsmasq({"a.svc.test": "127.0.0.1", "b.svc.test": "127.0.0.1"}, ttl=60,
                extra=[_srv_host("_http._tcp.svc.test", "a.svc.test", a.port, 1, 1),
                       _srv_host("_http._tcp.svc.test", "b.svc.test", b.port, 1, 3)])
    r = relay(CONF.replace("@OPTS@", "service=http resolve"), DNS=d.addr, L=port())
    L = r.listen_ports[0]
    bk = {"a": a, "b": b}
    util.wait_for(lambda: _session(L, bk, r) is not None, "the SRV servers to come up",
                  interval=0.1)
    util.wait_for(lambda: d.count("_http._tcp.svc.test", "SRV") >= 1, "an SRV query")
    # Smooth weighted round-robin over weights 1 and 3: 2 and 6 of 8.
    n0 = len(r.access_lines())
    got = [_session(L, bk, r) for _ in range(8)]
    assert got.count("a") == 2 and got.count("b") == 6, got
    lines = [util.parse_line(l) for l in r.access_lines()[n0:]]
    assert len(lines) == 8
    assert {l["upstream_addr"] for l in lines} == {"127.0.0.1:%d" % a.port,
                                                  "127.0.0.1:%d" % b.port}


def test_a_service_with_a_dot_is_the_whole_prefix(relay, port, dnsmasq, backend):
    a = backend(util.record_to_eof(), name="a")
    d = dnsmasq({"a.svc.test": "127.0.0.1"}, ttl=60,
                extra=[_srv_host("_x-api._udp.svc.test", "a.svc.test", a.port, 0, 0)])
    r = relay(CONF.replace("@OPTS@", "service=_x-api._udp resolve"), DNS=d.addr,
              L=port())
    util.wait_for(lambda: _session(r.listen_ports[0], {"a": a}, r) == "a",
                  "_x-api._udp.svc.test's server (weight 0 counts as 1)", interval=0.1)


def test_higher_priority_records_are_backups(relay, port, dnsmasq, backend):
    # Priority 1 points at a port where nothing listens: the session moves
    # on to the backup, priority 2; priority 3 is a backup too, after it.
    dead = util.free_port()
    b = backend(util.record_to_eof(), name="b")
    c = backend(util.record_to_eof(), name="c")
    d = dnsmasq({"a.svc.test": "127.0.0.1", "b.svc.test": "127.0.0.1",
                 "c.svc.test": "127.0.0.1"}, ttl=60,
                extra=[_srv_host("_http._tcp.svc.test", "a.svc.test", dead, 1, 1),
                       _srv_host("_http._tcp.svc.test", "b.svc.test", b.port, 2, 1),
                       _srv_host("_http._tcp.svc.test", "c.svc.test", c.port, 3, 1)])
    r = relay(CONF.replace("@OPTS@", "service=http resolve max_fails=0"),
              DNS=d.addr, L=port())
    L = r.listen_ports[0]
    bk = {"b": b, "c": c}
    util.wait_for(lambda: _session(L, bk, r) is not None, "the SRV servers to come up",
                  interval=0.1)
    for _ in range(4):
        assert _session(L, bk, r) in ("b", "c")
    line = util.parse_line(r.access_lines()[-1])
    assert line["upstream_addr"].startswith("127.0.0.1:%d, " % dead), line
    assert line["status"] == "200"


def test_with_backup_the_lowest_priority_is_the_backup_and_the_rest_unused(
        relay, port, dnsmasq, backend):
    dead = util.free_port()
    b = backend(util.record_to_eof(), name="b")
    canary = backend(util.record_to_eof(), name="canary")
    d = dnsmasq({"b.svc.test": "127.0.0.1", "c.svc.test": "127.0.0.1"}, ttl=60,
                extra=[_srv_host("_http._tcp.svc.test", "b.svc.test", b.port, 1, 1),
                       _srv_host("_http._tcp.svc.test", "c.svc.test", canary.port,
                                 2, 1)])
    r = relay(CONF.replace("server svc.test @OPTS@;",
                           "server 127.0.0.1:%d max_fails=0;\n"
                           "        server svc.test service=http resolve backup;" % dead),
              DNS=d.addr, L=port())
    L = r.listen_ports[0]
    bk = {"b": b, "canary": canary}
    util.wait_for(lambda: _session(L, bk, r) == "b",
                  "the dead primary, then the SRV backup", interval=0.1)
    for _ in range(4):
        assert _session(L, bk, r) == "b"
    assert canary.accepted == 0


def test_srv_answers_change_fail_and_go_empty(relay, port, slow_resolver, backend):
    a = backend(util.record_to_eof(), name="a")
    b = backend(util.record_to_eof(), name="b")
    bk = {"a": a, "b": b}
    q = "_http._tcp.svc.test"
    d = slow_resolver({"a.svc.test": "127.0.0.1", "b.svc.test": "127.0.0.1"}, 0,
                      ttl=1, srv={q: [(1, 1, a.port, "a.svc.test")]})
    r = relay(CONF.replace("@OPTS@", "service=http resolve"), DNS=d.addr, L=port())
    L = r.listen_ports[0]
    util.wait_for(lambda: _session(L, bk, r) == "a", "the first SRV answer", interval=0.1)
    # A changed record is picked up without a reload.
    d.srv[q] = [(1, 1, b.port, "b.svc.test")]
    util.wait_for(lambda: _session(L, bk, r) == "b", "the changed record", interval=0.1)
    # SERVFAIL for the SRV name keeps the servers as they were ...
    n = d.count(q, 33)
    d.servfail.add(q)
    util.wait_for(lambda: d.count(q, 33) >= n + 2, "two failed SRV lookups")
    assert _session(L, bk, r) == "b"
    r.wait_error(r"_http\._tcp\.svc\.test could not be resolved \(2: Server failure\)")
    # ... and so does SERVFAIL for a target.
    d.servfail = {"b.svc.test"}
    n = d.count("b.svc.test")
    util.wait_for(lambda: d.count("b.svc.test") >= n + 2, "failed target lookups")
    assert _session(L, bk, r) == "b"
    r.wait_error(r"b\.svc\.test \(SRV target of _http\._tcp\.svc\.test\) could not "
                 r"be resolved")
    # No records any more: no servers, $upstream_addr names the upstream.
    d.servfail = set()
    d.srv[q] = []
    util.wait_for(lambda: _session(L, bk, r) is None, "the servers to go", interval=0.2)
    line = util.parse_line(r.access_lines()[-1])
    assert line["status"] == "502" and line["upstream_addr"] == "svc", line
    # Back again once the records are (the empty answer is kept for valid=).
    d.srv[q] = [(1, 1, a.port, "a.svc.test")]
    util.wait_for(lambda: _session(L, bk, r) == "a", "the records back", interval=0.2)


def test_cname_only_srv_answers_are_chased(relay, port, slow_resolver, backend):
    a = backend(util.record_to_eof(), name="a")
    d = slow_resolver({"a.svc.test": "127.0.0.1"}, 0, ttl=1,
                      cnames={"_http._tcp.svc.test": "alias.svc.test"},
                      srv={"alias.svc.test": [(1, 1, a.port, "a.svc.test")]})
    r = relay(CONF.replace("@OPTS@", "service=http resolve"), DNS=d.addr, L=port())
    util.wait_for(lambda: _session(r.listen_ports[0], {"a": a}, r) == "a",
                  "a session through the CNAME's SRV records", interval=0.1)
    assert d.count("alias.svc.test", 33) >= 1


def test_srv_servers_survive_a_reload(master, port, slow_resolver, backend):
    # The answer is kept in shared memory as for `resolve`: a reload's new
    # worker starts from it even when the DNS server has gone quiet.
    a = backend(util.record_to_eof(), name="a")
    q = "_http._tcp.svc.test"
    d = slow_resolver({"a.svc.test": "127.0.0.1"}, 0, ttl=1,
                      srv={q: [(1, 1, a.port, "a.svc.test")]})
    m = master(CONF.replace("@OPTS@", "service=http resolve"), DNS=d.addr, L=port(),
               allow_log=[r"could not be resolved"])
    (w,) = m.wait_workers(1)
    L = m.listen_ports[0]
    util.wait_for(lambda: _session(L, {"a": a}, m) == "a", "the first answer",
                  interval=0.1)
    d.servfail.add(q)
    m.reload()
    util.wait_for_gone([w], timeout=10)
    assert _session(L, {"a": a}, m) == "a"


@pytest.mark.parametrize("opts,msg", [
    ("service= resolve", "service is empty"),
    ("service=http", 'service upstream "svc.test" requires "resolve" parameter'),
])
def test_service_bad_config(snirelay_bin, workdir, opts, msg):
    _check_refused(snirelay_bin, workdir, "svc.test " + opts, msg)


@pytest.mark.parametrize("server,msg", [
    ("svc.test:80", 'service upstream "svc.test:80" may not have port'),
    ("127.0.0.1", 'service upstream "127.0.0.1" requires domain name'),
    ("[::1]", 'service upstream "[::1]" requires domain name'),
])
def test_service_server_must_be_a_name_without_port(snirelay_bin, workdir, server,
                                                   msg):
    _check_refused(snirelay_bin, workdir, server + " service=http resolve", msg)


def _check_refused(snirelay_bin, workdir, server, msg):
    rc, err, conf = util.config_test(
        snirelay_bin, workdir,
        "stream {\n  resolver 127.0.0.1;\n  upstream u {\n    server %s;\n  }\n"
        "  server { listen 127.0.0.1:%d; proxy_pass u; }\n}\n"
        % (server, util.free_port()))
    assert rc == 1, err
    assert "[emerg] %s in %s:4" % (msg, conf) in err, err

"""`server NAME:PORT resolve` in an upstream{}: the name is looked up again
through the configured resolver as its TTL runs out, so a changed address is
picked up without a reload; a name unknown at start leaves the server down
until it resolves."""
import time

import pytest

import dns
import util


CONF = r"""
    resolver @DNS@;
    upstream svc {
        server svc.test:@P@ resolve;
    }
    server {
        listen 127.0.0.1:@L@;
        proxy_pass svc;
    }
"""


_session = util.session_to


def test_resolve_server_follows_a_changed_address(relay, port, dnsmasq,
                                                 same_port_backends):
    P, bk = same_port_backends(["127.0.0.21", "127.0.0.22"],
                               lambda h: util.record_to_eof())
    d = dnsmasq({"svc.test": "127.0.0.21"}, ttl=1)
    r = relay(CONF, DNS=d.addr, P=P, L=port())
    L = r.listen_ports[0]
    util.wait_for(lambda: d.count("svc.test") >= 1, "the worker's first lookup")
    assert _session(L, bk, r) == "127.0.0.21"
    d.set_records({"svc.test": "127.0.0.22"})
    t0 = time.monotonic()
    util.wait_for(lambda: _session(L, bk, r) == "127.0.0.22",
                  "a session to reach the new address", interval=0.1)
    assert time.monotonic() - t0 < 5, "the 1 s TTL was kept far too long"
    lines = [util.parse_line(l) for l in r.wait_access(bk["127.0.0.21"].accepted +
                                                      bk["127.0.0.22"].accepted)]
    assert {l["upstream_addr"] for l in lines} == {"127.0.0.21:%d" % P,
                                                  "127.0.0.22:%d" % P}


def test_resolve_server_unknown_at_start_comes_up_when_it_resolves(
        relay, port, dnsmasq, same_port_backends):
    P, bk = same_port_backends(["127.0.0.23"], lambda h: util.record_to_eof())
    d = dnsmasq({"other.test": "127.0.0.23"}, ttl=1)
    r = relay(CONF, DNS=d.addr, P=P, L=port())
    L = r.listen_ports[0]
    # Not resolvable yet: the only server is down, 502, nothing contacted.
    s = util.connect(L)
    assert util.recv_all(s) == b""
    s.close()
    assert util.parse_line(r.wait_access(1)[0])["status"] == "502"
    assert bk["127.0.0.23"].accepted == 0
    d.set_records({"svc.test": "127.0.0.23"})
    util.wait_for(lambda: _session(L, bk, r) == "127.0.0.23",
                  "the server to come up once its name resolves", interval=0.2)


def test_resolve_needs_a_resolver(snirelay_bin, workdir):
    rc, err, _ = util.config_test(
        snirelay_bin, workdir,
        "stream {\n  upstream u {\n    server svc.test:80 resolve;\n  }\n"
        "  server { listen 127.0.0.1:%d; proxy_pass u; }\n}\n" % util.free_port())
    assert rc == 1, err
    assert 'no resolver defined to resolve "svc.test" in upstream "u"' in err



@pytest.mark.parametrize("gone,ropts", [({}, ""), ({"svc.test": "::1"}, "ipv6=off")],
                         ids=["nxdomain", "empty-answer"])
def test_resolve_server_with_no_address_any_more_is_down(relay, port, dnsmasq,
                                                        same_port_backends, gone, ropts):
    # NXDOMAIN, or an answer with no address of the families asked for,
    # says the name has no address now: its servers go down, the last
    # addresses are not kept as after a failed lookup.
    P, bk = same_port_backends(["127.0.0.25"], lambda h: util.record_to_eof())
    d = dnsmasq({"svc.test": "127.0.0.25"}, ttl=1)
    r = relay(CONF.replace("resolver @DNS@;", "resolver @DNS@ %s;" % ropts),
              DNS=d.addr, P=P, L=port())
    L = r.listen_ports[0]
    util.wait_for(lambda: _session(L, bk, r) == "127.0.0.25", "the first lookup",
                  interval=0.1)
    d.set_records(gone)
    util.wait_for(lambda: _session(L, bk, r) is None,
                  "the server to go down once its name has no address", interval=0.2)
    r.wait_error(r"svc\.test has no address \(Host not found\) for upstream \"svc\"")
    assert util.parse_line(r.access_lines()[-1])["status"] == "502"
    # ... and up again when it has one.
    d.set_records({"svc.test": "127.0.0.25"})
    util.wait_for(lambda: _session(L, bk, r) == "127.0.0.25", "the server back up",
                  interval=0.2)


def test_resolve_server_follows_a_cname_chain(relay, port, dnsmasq,
                                              same_port_backends):
    P, bk = same_port_backends(["127.0.0.26"], lambda h: util.record_to_eof())
    d = dnsmasq({"real.test": "127.0.0.26"}, ttl=1,
                extra=["--cname=svc.test,mid.test", "--cname=mid.test,real.test"])
    r = relay(CONF, DNS=d.addr, P=P, L=port())
    L = r.listen_ports[0]
    util.wait_for(lambda: _session(L, bk, r) == "127.0.0.26",
                  "a session through svc.test -> mid.test -> real.test", interval=0.1)
    assert d.count("svc.test") >= 1


def test_resolve_server_follows_cname_only_answers(relay, port, slow_resolver,
                                                  same_port_backends):
    # A server that answers a CNAME without chasing it (as nginx-tests'
    # stream_upstream_resolve.t does): the target is asked for in turn.
    P, bk = same_port_backends(["127.0.0.27"], lambda h: util.record_to_eof())
    d = slow_resolver({"real.test": "127.0.0.27"}, 0,
                      cnames={"svc.test": "mid.test", "mid.test": "real.test"})
    r = relay(CONF, DNS=d.addr, P=P, L=port())
    L = r.listen_ports[0]
    util.wait_for(lambda: _session(L, bk, r) == "127.0.0.27",
                  "a session through svc.test -> mid.test -> real.test", interval=0.1)
    assert d.count("svc.test") >= 1 and d.count("mid.test") >= 1
    assert d.count("real.test") >= 1


def test_resolved_addresses_survive_a_reload_and_a_worker_restart(
        master, port, dnsmasq, same_port_backends):
    # svc.test is known only to the configured resolver (the system's, which
    # the master asks at load, does not know it). Once a worker resolved
    # it, the DNS server goes away: a reload's new worker, and a worker
    # started after a crash, begin with the last answer instead of nothing.
    import os
    import signal
    P, bk = same_port_backends(["127.0.0.27"], lambda h: util.record_to_eof())
    d = dnsmasq({"svc.test": "127.0.0.27"}, ttl=1)
    m = master(CONF.replace("resolver @DNS@;", "resolver @DNS@;\n    resolver_timeout 1s;"),
               DNS=d.addr, P=P, L=port(), allow_log=[r"exited on signal 9"])
    (w,) = m.wait_workers(1)
    L = m.listen_ports[0]
    util.wait_for(lambda: _session(L, bk, m) == "127.0.0.27", "the first lookup",
                  interval=0.1)
    d.stop()
    (w2,) = m.reload()
    util.wait_for_gone([w], timeout=10)
    assert _session(L, bk, m) == "127.0.0.27"
    os.kill(w2, signal.SIGKILL)
    (w3,) = m.wait_workers(1, exclude=[w2])
    assert _session(L, bk, m) == "127.0.0.27"
    lines = [util.parse_line(l) for l in m.access_lines()]
    assert lines[-1]["status"] == "200" and lines[-2]["status"] == "200", lines[-3:]


def test_resolved_addresses_survive_a_reload_that_changes_the_port(
        master, port, dnsmasq, same_port_backends):
    # As nginx (stream_upstream_resolve_reload.t): the answer is the name's,
    # so a reload that moves the server to another port starts from it too.
    P, bk = same_port_backends(["127.0.0.27"], lambda h: util.record_to_eof())
    P2, bk2 = same_port_backends(["127.0.0.27"], lambda h: util.record_to_eof())
    d = dnsmasq({"svc.test": "127.0.0.27"}, ttl=1)
    conf = CONF.replace("resolver @DNS@;", "resolver @DNS@;\n    resolver_timeout 1s;")
    L = port()
    m = master(conf, DNS=d.addr, P=P, L=L)
    (w,) = m.wait_workers(1)
    util.wait_for(lambda: _session(L, bk, m) == "127.0.0.27", "the first lookup",
                  interval=0.1)
    d.stop()
    m.reload(m.text.replace(":%d resolve" % P, ":%d resolve" % P2))
    util.wait_for_gone([w], timeout=10)
    assert _session(L, bk2, m) == "127.0.0.27"
    line = util.parse_line(m.access_lines()[-1])
    assert line["status"] == "200"
    assert line["upstream_addr"] == "127.0.0.27:%d" % P2


def test_resolver_inside_upstream_is_used_for_its_servers(relay, port, dnsmasq,
                                                          same_port_backends):
    """`resolver` and `resolver_timeout` inside upstream{} (nginx 1.27.3):
    each upstream asks its own resolver; none at stream level is needed."""
    P, bk = same_port_backends(["127.0.0.21", "127.0.0.22"],
                               lambda h: util.record_to_eof())
    d1 = dnsmasq({"svc.test": "127.0.0.21"}, ttl=1)
    d2 = dnsmasq({"svc.test": "127.0.0.22"}, ttl=1)
    r = relay(r"""
    upstream one {
        server svc.test:@P@ resolve;
        resolver @D1@;
    }
    upstream two {
        zone two 64k;
        server svc.test:@P@ resolve;
        resolver @D2@ valid=1s;
        resolver_timeout 5s;
    }
    server {
        listen 127.0.0.1:@L1@;
        proxy_pass one;
    }
    server {
        listen 127.0.0.1:@L2@;
        proxy_pass two;
    }
    """, D1=d1.addr, D2=d2.addr, P=P, L1=port(), L2=port())
    L1, L2 = r.listen_ports[0], r.listen_ports[1]
    util.wait_for(lambda: d1.count("svc.test") >= 1 and d2.count("svc.test") >= 1,
                  "each upstream's lookup at its own resolver")
    util.wait_for(lambda: _session(L1, bk, r) == "127.0.0.21", "one via d1",
                  interval=0.1)
    util.wait_for(lambda: _session(L2, bk, r) == "127.0.0.22", "two via d2",
                  interval=0.1)


@pytest.mark.parametrize("line,msg", [
    ("resolver_timeout 5s; resolver_timeout 6s;",
     '"resolver_timeout" directive is duplicate'),
    ("resolver 127.0.0.1; resolver 127.0.0.2;",
     '"resolver" directive is duplicate'),
    ("resolver_timeout x;", '"resolver_timeout" directive invalid value'),
])
def test_resolver_inside_upstream_bad_config(snirelay_bin, workdir, line, msg):
    rc, err, conf = util.config_test(
        snirelay_bin, workdir,
        "stream {\n  upstream u {\n    server svc.test:80 resolve;\n"
        "    %s\n  }\n"
        "  server { listen 127.0.0.1:%d; proxy_pass u; }\n}\n"
        % (line, util.free_port()))
    assert rc == 1, err
    assert "[emerg] %s in %s:4" % (msg, conf) in err, err

"""proxy_pass with variables: evaluated per session to an upstream{} name or
an address; names that would need DNS fail clearly until the resolver exists.
Names in upstream{} server lines are resolved once, at start-up."""
import socket
import subprocess

import hello
import util


def _send_hello(port, name):
    s = util.connect(port)
    s.sendall(hello.records(hello.build_client_hello(server_name=name)))
    return s


STREAM = r"""
    map $ssl_preread_server_name $target {
        hostnames;
        pool.test    pool;
        ip.test      127.0.0.1:@B@;
        name.test    backend.invalid:443;
        noport.test  backend;
        default      127.0.0.1:@B@;
    }
    upstream pool { server 127.0.0.1:@P@; }
    server {
        listen 127.0.0.1:@L@;
        ssl_preread on;
        proxy_pass $target;
    }
"""


def _start(relay, port):
    pool = util.Backend(util.record_to_eof(), "pool")
    direct = util.Backend(util.record_to_eof(), "direct")
    r = relay(STREAM, L=port(), P=pool.port, B=direct.port)
    return r, pool, direct


def test_value_naming_an_upstream_goes_to_it(relay, port):
    r, pool, direct = _start(relay, port)
    try:
        s = _send_hello(r.listen_ports[0], "pool.test")
        pool.wait_conns(1)
        s.close()
        line = util.parse_line(r.wait_access(1)[0])
        assert line["upstream_addr"] == pool.addr
        assert direct.accepted == 0
    finally:
        pool.stop()
        direct.stop()


def test_value_with_a_literal_address_goes_there(relay, port):
    r, pool, direct = _start(relay, port)
    try:
        s = _send_hello(r.listen_ports[0], "ip.test")
        direct.wait_conns(1)
        s.close()
        line = util.parse_line(r.wait_access(1)[0])
        assert line["upstream_addr"] == direct.addr
        assert line["status"] == "200"
    finally:
        pool.stop()
        direct.stop()


def test_value_with_a_host_name_fails_500_without_resolver(relay, port):
    r, pool, direct = _start(relay, port)
    try:
        s = _send_hello(r.listen_ports[0], "name.test")
        assert util.recv_all(s) == b""      # closed, nothing sent
        s.close()
        line = util.parse_line(r.wait_access(1)[0])
        assert line["status"] == "500"
        assert util.empty(line["upstream_addr"])
        r.wait_error(r'no resolver defined to resolve backend\.invalid while')
        assert pool.accepted == 0 and direct.accepted == 0
    finally:
        pool.stop()
        direct.stop()


def test_value_without_port_fails_500(relay, port):
    r, pool, direct = _start(relay, port)
    try:
        s = _send_hello(r.listen_ports[0], "noport.test")
        assert util.recv_all(s) == b""
        s.close()
        assert util.parse_line(r.wait_access(1)[0])["status"] == "500"
        r.wait_error(r'no port in upstream "backend"')
    finally:
        pool.stop()
        direct.stop()


def test_upstream_server_name_is_resolved_at_start(relay, port):
    b = util.Backend(util.record_to_eof(), "named")
    try:
        r = relay(r"""
            upstream named { server localhost:@B@; }
            server {
                listen 127.0.0.1:@L@;
                proxy_pass named;
            }
        """, L=port(), B=b.port)
        s = util.connect(r.listen_ports[0])
        s.sendall(b"hello")
        s.shutdown(socket.SHUT_WR)
        b.wait_conns(1)
        util.wait_for(lambda: b.conns[0].get("data") == b"hello", "bytes at backend")
        s.close()
    finally:
        b.stop()


def test_unknown_upstream_host_fails_the_config_test(snirelay_bin, workdir):
    conf = "%s/bad.conf" % workdir
    with open(conf, "w") as f:
        f.write("stream {\n  upstream u {\n    server no-such-host.invalid:80;\n  }\n"
                "  server { listen 127.0.0.1:%d; proxy_pass u; }\n}\n"
                % util.free_port())
    p = subprocess.run([snirelay_bin, "-t", "-c", conf], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    err = p.stderr.decode()
    assert p.returncode == 1, err
    assert ('[emerg] host not found in upstream "no-such-host.invalid:80" in %s:3'
            % conf) in err


def test_value_with_an_empty_host_is_not_this_host(relay, port):
    """":PORT" must not become 0.0.0.0:PORT (this host): nginx says no host."""
    sink = util.Backend(util.record_to_eof(), "sink")
    try:
        r = relay(r"""
            map $ssl_preread_server_name $h { default ""; }
            server {
                listen 127.0.0.1:@L@;
                ssl_preread on;
                proxy_pass $h:@B@;
            }
        """, L=port(), B=sink.port)
        s = _send_hello(r.listen_ports[0], "x.test")
        assert util.recv_all(s) == b""
        s.close()
        line = util.parse_line(r.wait_access(1)[0])
        assert line["status"] == "500"
        assert util.empty(line["upstream_addr"])
        r.wait_error(r'no host in upstream ":%d"' % sink.port)
        assert sink.accepted == 0
    finally:
        sink.stop()

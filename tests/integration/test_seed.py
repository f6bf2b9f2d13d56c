"""examples/seed.conf, the founding use case, serves as shipped.

Only what a test cannot use is rewritten: the listen port (443 needs root
and may be taken), the log and pid paths, and the documentation upstream
addresses, which become two local TLS backends with their own certificates.
"""
import os
import re

import pytest

import util


@pytest.fixture
def seed_relay(workdir, snirelay_bin, pki):
    with open(os.path.join(util.REPO, "examples", "seed.conf")) as f:
        text = f.read()
    cn = util.Backend(util.tls_reply("server_cn"), "server_cn",
                      ssl_context=util.server_context(*pki.cert("api.example.cn")))
    other = util.Backend(util.tls_reply("server_baidu"), "server_baidu",
                         ssl_context=util.server_context(*pki.cert("www.example.com")))
    listen = util.free_port()
    subs = [
        (r"listen 443;", "listen 127.0.0.1:%d;" % listen),
        (r"/var/log/snirelay\.error\.log warn", "%s/error.log info" % workdir),
        (r"/var/log/snirelay\.access\.log", "%s/access.log" % workdir),
        (r"/var/run/snirelay\.pid", "%s/snirelay.pid" % workdir),
        (r"192\.0\.2\.10:443", cn.addr),
        (r"192\.0\.2\.20:443", other.addr),
    ]
    for pattern, repl in subs:
        text, n = re.subn(pattern, repl, text)
        assert n == 1, "examples/seed.conf no longer has %r" % pattern
    r = util.Snirelay(workdir, text, snirelay_bin)
    r.listen_ports = [listen]   # not the skipped http{} block's `listen 80`
    r.start()
    yield r, cn, other
    try:
        assert r.stop() == 0, r.stderr()
    finally:
        cn.stop()
        other.stop()


def test_seed_config_routes_each_name_to_its_upstream(seed_relay, pki):
    r, cn, other = seed_relay
    port = r.listen_ports[0]
    cert, reply, _ = util.ssl_request(port, "api.example.cn", pki.ca)
    assert reply == b"server_cn\n"
    assert util.cert_cn(cert) == "api.example.cn"
    _, reply, _ = util.ssl_request(port, "www.example.com", pki.ca)
    assert reply == b"server_baidu\n"
    assert cn.accepted == 1 and other.accepted == 1


def test_seed_config_logs_in_its_proxy_format(seed_relay, pki):
    r, cn, _ = seed_relay
    util.ssl_request(r.listen_ports[0], "x.example.cn", pki.ca,
                     check_hostname=False)
    line = r.wait_access(1)[0]
    # '$proxy_protocol_addr $remote_addr [$time_local] $protocol $status ...'
    m = re.match(r'^- 127\.0\.0\.1 \[[^]]+\] TCP 200 (\d+) (\d+) [\d.]+ '
                 r'"([^"]+)" "(\d+)" "(\d+)" "([\d.]+)"$', line)
    assert m, line
    assert m.group(3) == cn.addr
    assert int(m.group(2)) == int(m.group(4)) > 0   # every client byte went upstream
    assert int(m.group(1)) == int(m.group(5)) > 0   # every upstream byte reached the client


def test_seed_config_warns_about_the_skipped_http_block(seed_relay):
    r, _, _ = seed_relay
    with open(r.conf) as f:
        http_line = [i + 1 for i, l in enumerate(f) if l.startswith("http {")][0]
    util.wait_for(lambda: ("%s:%d" % (r.conf, http_line)) in r.stderr() + r.error_text(),
                  "warning naming the http block's line")

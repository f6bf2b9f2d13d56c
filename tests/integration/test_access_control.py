"""allow / deny in stream{} and server{}: the first matching rule wins, a
denied session is closed at once with $status 403 and no upstream is
contacted.  Clients come from different loopback addresses (127.0.0.x)."""

import socket

import pytest

import util

FIELDS = ["status", "remote_addr", "upstream_addr", "bytes_received", "bytes_sent"]
FMT = "|".join("$" + f for f in FIELDS)

CONF = r"""
@STREAM_RULES@
    server {
        listen 127.0.0.1:@L@;
@RULES@
        proxy_timeout 10s;
        proxy_pass 127.0.0.1:@B@;
    }
"""

HOSTS = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"]


def _client(L, host, port_host="127.0.0.1"):
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.bind((host, 0))
    s.settimeout(10)
    s.connect((port_host, L))
    return s


def _outcome(L, host, port_host="127.0.0.1"):
    """'allow' when the session echoes, 'deny' when the proxy closes it at
    once (without the client sending anything)."""
    s = _client(L, host, port_host)
    try:
        s.sendall(b"probe\n")
        try:
            got = util.recv_all(s, 6)
        except ConnectionResetError:
            got = b""
        if got == b"probe\n":
            return "allow"
        assert got == b"", got
        return "deny"
    finally:
        s.close()


def _rules(text):
    return "\n".join("        " + r.strip() + ";" for r in text.split(";") if r.strip())


def _start(master, backend, port, rules="", stream_rules=""):
    B = backend(util.echo())
    L = port()
    m = master(CONF, log_format=FMT, L=L, B=B.port, RULES=_rules(rules),
               STREAM_RULES=_rules(stream_rules))
    m.wait_workers(1)
    return m, L, B


@pytest.mark.parametrize("rules,expect", [
    ("allow 127.0.0.1; deny all;", "addd"),
    ("deny 127.0.0.2; allow 127.0.0.0/8; deny all;", "adaa"),
    ("allow all; deny 127.0.0.2;", "aaaa"),
    ("deny 127.0.0.0/31; allow all;", "daaa"),
    ("allow 127.0.0.2/32; allow 127.0.0.3; deny all;", "daad"),
    ("deny 127.0.0.4; deny 127.0.0.2;", "adad"),
    ("", "aaaa"),
], ids=["allow-one", "deny-one-then-net", "allow-all-first", "deny-cidr",
        "two-allows", "only-denies", "no-rules"])
def test_first_matching_rule_wins(master, backend, port, rules, expect):
    m, L, B = _start(master, backend, port, rules)
    want = ["allow" if c == "a" else "deny" for c in expect]
    got = [_outcome(L, h) for h in HOSTS]
    assert got == want, dict(zip(HOSTS, got))
    m.wait_access(len(HOSTS))
    lines = [util.parse_line(l, FIELDS) for l in m.access_lines()]
    by_host = {l["remote_addr"]: l for l in lines}
    for h, w in zip(HOSTS, want):
        line = by_host[h]
        if w == "allow":
            assert line["status"] == "200"
        else:
            assert line["status"] == "403"
            assert util.empty(line["upstream_addr"]), line
            assert line["bytes_sent"] == "0"
    assert B.accepted == want.count("allow")
    assert m.count_errors(r"\[error\] .*access forbidden by rule") == want.count("deny")


def test_denied_client_is_closed_at_once_without_sending(master, backend, port):
    m, L, B = _start(master, backend, port, "deny 127.0.0.2; allow all;")
    s = _client(L, "127.0.0.2")
    try:
        assert util.wait_closed(s, 5) == b""
    finally:
        s.close()
    line = util.parse_line(m.wait_access(1)[0], FIELDS)
    assert line["status"] == "403"
    assert line["remote_addr"] == "127.0.0.2"
    assert line["bytes_received"] == "0"
    assert B.accepted == 0


def test_deny_comes_before_ssl_preread(master, backend, port):
    """The address check does not wait for a ClientHello."""
    B = backend(util.echo())
    L = port()
    m = master(r"""
    server {
        listen 127.0.0.1:@L@;
        deny 127.0.0.2;
        ssl_preread on;
        preread_timeout 10s;
        proxy_pass 127.0.0.1:@B@;
    }
    """, log_format=FMT, L=L, B=B.port)
    s = _client(L, "127.0.0.2")
    try:
        assert util.wait_closed(s, 3) == b""
    finally:
        s.close()
    assert util.parse_line(m.wait_access(1)[0], FIELDS)["status"] == "403"
    assert B.accepted == 0


def test_stream_rules_are_inherited_and_server_rules_replace_them(master, backend, port):
    B = backend(util.echo())
    L1, L2 = port(), port()
    m = master(r"""
    deny 127.0.0.3;
    server {
        listen 127.0.0.1:@L1@;
        proxy_pass 127.0.0.1:@B@;
    }
    server {
        listen 127.0.0.1:@L2@;
        deny 127.0.0.2;
        proxy_pass 127.0.0.1:@B@;
    }
    """, log_format=FMT, L1=L1, L2=L2, B=B.port)
    m.wait_workers(1)
    assert [_outcome(L1, h) for h in HOSTS[:3]] == ["allow", "allow", "deny"]
    # The server's own rules replace the stream's (as in nginx).
    assert [_outcome(L2, h) for h in HOSTS[:3]] == ["allow", "deny", "allow"]


def test_rules_apply_in_every_worker(master, backend, port):
    B = backend(util.echo())
    L = port()
    m = master(CONF.replace("@L@;", "@L@ reuseport;"), log_format=FMT,
               main_extra="worker_processes 2;", L=L, B=B.port,
               RULES=_rules("deny 127.0.0.2"), STREAM_RULES="")
    m.wait_workers(2)
    for _ in range(10):
        assert _outcome(L, "127.0.0.2") == "deny"
        assert _outcome(L, "127.0.0.1") == "allow"
    assert B.accepted == 10


def _have_ipv6_loopback():
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _have_ipv6_loopback(), reason="no IPv6 loopback")
def test_ipv6_rules(master, backend, port):
    B = backend(util.echo())
    L = port("::1")
    m = master(r"""
    server {
        listen [::1]:@L@;
        listen 127.0.0.1:@L@;
        deny ::1;
        allow all;
        proxy_pass 127.0.0.1:@B@;
    }
    """, log_format=FMT, L=L, B=B.port)
    m.wait_workers(1)
    assert _outcome(L, "::1", port_host="::1") == "deny"
    assert _outcome(L, "127.0.0.1") == "allow"


@pytest.mark.parametrize("bad", ["allow 127.0.0.300;", "deny 127.0.0.0/33;",
                                 "allow foo;", "deny;"])
def test_bad_rule_is_a_config_error(snirelay_bin, workdir, bad):
    import subprocess
    text = util.config_events(workdir, util.render(CONF, L=util.free_port(),
                                                   B=util.free_port(), RULES="        " + bad,
                                                   STREAM_RULES=""))
    path = workdir + "/bad.conf"
    with open(path, "w") as f:
        f.write(text)
    p = subprocess.run([snirelay_bin, "-t", "-c", path], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=util.DEADLINE)
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 1, err
    line = text.splitlines().index("        " + bad) + 1
    assert "[emerg]" in err and "%s:%d" % (path, line) in err, err

"""geo {}: values by client address through the real binary.

Clients are told apart by the loopback address their socket is bound to
(127.0.0.1, 127.0.0.2, 127.0.1.1, ::1), the PROXY header's address, or an
address another variable gives; the value is seen in the access log or in
which backend answered.  Bad configs get nginx's texts with file:line, and
nginx's warnings (duplicate network, low address bits, nothing to delete)
appear at -t.
"""

import os
import socket
import subprocess

import pytest

import util


def _named(name):
    """Backend handler: say `name` and close."""
    def handler(conn, info):
        conn.sendall(name.encode())
    return handler


def _ask(port, src, dst="127.0.0.1", data=b""):
    """Connect from address `src` to dst:port, send data, read to EOF."""
    fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(util.DEADLINE)
    try:
        s.bind((src, 0))
        s.connect((dst, port))
        if data:
            s.sendall(data)
        return util.recv_all(s)
    finally:
        s.close()


def _values(r, n):
    """The access log's first n lines, each split on '|'."""
    return [l.split("|") for l in r.wait_access(n)[:n]]


def test_geo_routes_clients_by_source_address(relay, backend, port):
    A = backend(_named("A"), name="A")
    B = backend(_named("B"), name="B")
    D = backend(_named("D"), name="D")
    L = port()
    relay(r"""
    geo $to {
        default        127.0.0.1:@D@;
        127.0.0.0/24   127.0.0.1:@A@;
        127.0.0.2      127.0.0.1:@B@;
    }
    server {
        listen 127.0.0.1:@L@;
        proxy_pass $to;
    }
""", A=A.port, B=B.port, D=D.port, L=L)
    assert _ask(L, "127.0.0.1") == b"A"    # the /24
    assert _ask(L, "127.0.0.2") == b"B"    # the /32 inside it wins
    assert _ask(L, "127.0.0.3") == b"A"
    assert _ask(L, "127.0.1.1") == b"D"    # no network: default
    assert (A.accepted, B.accepted, D.accepted) == (2, 1, 1)


CIDR = r"""
    geo $g {
        127.0.0.0/8      loopback;
        127.0.0.2        two;
        192.0.2.0/24     test;
        ::1              six;
        2001:db8::/32    doc6;
        default          world;
    }
    geo $remote_addr $ga {
        127.0.0.2        two;
        default          other;
    }
    geo $g_none {
        127.0.0.0/8      loopback;
    }
    server {
        listen 127.0.0.1:@L@;
        listen [::1]:@L@;
        proxy_pass 127.0.0.1:@B@;
    }
"""


def test_geo_cidr_longest_prefix_ipv4_and_ipv6(relay, backend, port):
    B = backend(_named("B"), name="B")
    L = port()
    r = relay(CIDR, B=B.port, L=L, log_format="$remote_addr|$g|$ga|$g_none")
    _ask(L, "127.0.0.1")
    r.wait_access(1)
    _ask(L, "127.0.0.2")
    r.wait_access(2)
    _ask(L, "127.0.1.1")
    r.wait_access(3)
    _ask(L, "::1", dst="::1")
    rows = _values(r, 4)
    assert rows[0] == ["127.0.0.1", "loopback", "other", "loopback"]
    assert rows[1] == ["127.0.0.2", "two", "two", "loopback"]
    assert rows[2] == ["127.0.1.1", "loopback", "other", "loopback"]
    # ::1 is no IPv4 network, and no default gives the empty value.
    assert rows[3] == ["::1", "six", "other", ""]


def test_geo_address_from_another_variable(relay, backend, port):
    B = backend(_named("B"), name="B")
    L1, L2, L3, L4, L5 = port(), port(), port(), port(), port()
    r = relay(r"""
    map $server_port $addr {
        @L1@  192.0.2.1;
        @L2@  10.0.0.1;
        @L3@  loopback;
        @L4@  ::ffff:192.0.2.9;
        @L5@  2001:db8::5;
    }
    geo $addr $g {
        default          default;
        192.0.2.0/24     test;
        2001:db8::/32    doc6;
        255.255.255.255  none;
    }
    geo $addr $gr {
        ranges;
        default                default;
        192.0.2.0-192.0.2.1    test;
    }
    server {
        listen 127.0.0.1:@L1@;
        listen 127.0.0.1:@L2@;
        listen 127.0.0.1:@L3@;
        listen 127.0.0.1:@L4@;
        listen 127.0.0.1:@L5@;
        proxy_pass 127.0.0.1:@B@;
    }
""", B=B.port, L1=L1, L2=L2, L3=L3, L4=L4, L5=L5,
        log_format="$server_port|$g|$gr")
    for i, L in enumerate((L1, L2, L3, L4, L5)):
        _ask(L, "127.0.0.1")
        r.wait_access(i + 1)
    rows = {int(p): (g, gr) for p, g, gr in _values(r, 5)}
    assert rows[L1] == ("test", "test")
    assert rows[L2] == ("default", "default")
    # Not an address: nginx looks up 255.255.255.255.
    assert rows[L3] == ("none", "default")
    # IPv4-mapped: looked up as IPv4, in both kinds of table.
    assert rows[L4] == ("test", "default")
    # IPv6 in a ranges table: 255.255.255.255, so the default.
    assert rows[L5] == ("doc6", "default")


def test_geo_proxy_protocol_address(relay, backend, port):
    B = backend(_named("B"), name="B")
    L1, L2 = port(), port()
    r = relay(r"""
    geo $g {
        default       world;
        127.0.0.0/8   loopback;
        192.0.2.0/24  test;
    }
    geo $proxy_protocol_addr $gp {
        default       world;
        192.0.2.0/24  test;
    }
    server {
        listen 127.0.0.1:@L1@ proxy_protocol;
        proxy_pass 127.0.0.1:@B@;
    }
    server {
        listen 127.0.0.1:@L2@ proxy_protocol;
        set_real_ip_from 127.0.0.1;
        proxy_pass 127.0.0.1:@B@;
    }
""", B=B.port, L1=L1, L2=L2, log_format="$server_port|$g|$gp")
    header = b"PROXY TCP4 192.0.2.7 192.0.2.8 1111 2222\r\n"
    _ask(L1, "127.0.0.1", data=header)
    r.wait_access(1)
    _ask(L2, "127.0.0.1", data=header)
    rows = {int(p): (g, gp) for p, g, gp in _values(r, 2)}
    # Untrusted peer: the client is 127.0.0.1; the header's address is
    # still there for `geo $proxy_protocol_addr`.
    assert rows[L1] == ("loopback", "test")
    # set_real_ip_from: $remote_addr, so geo's default source, is the header's.
    assert rows[L2] == ("test", "test")


def test_geo_include_and_delete(relay, backend, port):
    B = backend(_named("B"), name="B")
    L = port()
    r = relay(r"""
    geo $gi {
        include       geo.conf;
        0.0.0.0/0     world;
    }
    geo $gd {
        include       geo.conf;
        0.0.0.0/0     world;
        delete        127.0.0.0/8;
    }
    geo $gri {
        ranges;
        default       default;
        include       geo-ranges.conf;
    }
    server {
        listen 127.0.0.1:@L@;
        proxy_pass 127.0.0.1:@B@;
    }
""", B=B.port, L=L, log_format="$remote_addr|$gi|$gd|$gri", start=False)
    # Relative to the main file's directory, as nginx's prefix.
    with open(os.path.join(r.dir, "geo.conf"), "w") as f:
        f.write("127.0.0.0/8  loopback;\n127.0.0.2  two;\n")
    with open(os.path.join(r.dir, "geo-ranges.conf"), "w") as f:
        f.write("127.0.0.0-127.255.255.255  loopback;\n")
    r.start()
    _ask(L, "127.0.0.1")
    r.wait_access(1)
    _ask(L, "127.0.0.2")
    rows = _values(r, 2)
    assert rows[0] == ["127.0.0.1", "loopback", "world", "loopback"]
    assert rows[1] == ["127.0.0.2", "two", "two", "loopback"]


def test_geo_many_networks_from_an_include(relay, backend, port):
    # 600 networks and 250 distinct values: the tables and the sharing of
    # equal values grow well past their first sizes.
    B = backend(_named("B"), name="B")
    L = port()
    r = relay(r"""
    geo $g {
        default  none;
        include  many.conf;
    }
    geo $r {
        ranges;
        default  none;
        include  many-ranges.conf;
    }
    server {
        listen 127.0.0.1:@L@;
        proxy_pass 127.0.0.1:@B@;
    }
""", B=B.port, L=L, log_format="$remote_addr|$g|$r", start=False)
    addrs = ["127.0.%d.%d" % (i // 250, i % 250 + 1) for i in range(600)]
    with open(os.path.join(r.dir, "many.conf"), "w") as f:
        for i, a in enumerate(addrs):
            f.write("%s  v%d;\n" % (a, i % 250))
    with open(os.path.join(r.dir, "many-ranges.conf"), "w") as f:
        for i, a in enumerate(addrs):
            f.write("%s-%s  r%d;\n" % (a, a, i % 250))
    r.start()
    picks = [0, 1, 249, 250, 251, 499, 599]
    for n, i in enumerate(picks):
        _ask(L, addrs[i])
        r.wait_access(n + 1)
    _ask(L, "127.0.3.1")
    rows = _values(r, len(picks) + 1)
    assert rows[:-1] == [[addrs[i], "v%d" % (i % 250), "r%d" % (i % 250)]
                         for i in picks]
    assert rows[-1] == ["127.0.3.1", "none", "none"]


def test_geo_ranges(relay, backend, port):
    B = backend(_named("B"), name="B")
    L = port()
    r = relay(r"""
    geo $r {
        ranges;
        default                default;
        127.0.0.0-127.0.0.1    low;
        127.0.0.2-127.0.0.255  high;
        127.0.1.0-127.0.1.9    ten;
        127.0.1.5-127.0.1.5    inside;
        127.0.2.0-127.0.2.9    gone;
        delete                 127.0.2.0-127.0.2.9;
    }
    server {
        listen 127.0.0.1:@L@;
        listen [::1]:@L@;
        proxy_pass 127.0.0.1:@B@;
    }
""", B=B.port, L=L, log_format="$remote_addr|$r")
    want = [("127.0.0.1", "low"), ("127.0.0.2", "high"),
            ("127.0.0.255", "high"), ("127.0.1.4", "ten"),
            ("127.0.1.5", "inside"), ("127.0.1.6", "ten"),
            ("127.0.1.9", "ten"), ("127.0.1.10", "default"),
            ("127.0.2.3", "default"), ("::1", "default")]
    for i, (src, _) in enumerate(want):
        _ask(L, src, dst="::1" if ":" in src else "127.0.0.1")
        r.wait_access(i + 1)
    assert [tuple(x) for x in _values(r, len(want))] == want


# --------------------------------------------------------------------------
# configuration errors and warnings


def _check(snirelay_bin, workdir, stream_lines, name="geo.conf"):
    """Write a config with `stream_lines` (a list) in stream{}, run -t.

    Returns (rc, stderr, path, lines)."""
    d = workdir
    lines = ([
        "pid %s/snirelay.pid;" % d,
        "error_log %s/error.log;" % d,
        "events { }",
        "stream {",
    ] + ["    " + l for l in stream_lines] + [
        "    server {",
        "        listen 127.0.0.1:%d;" % util.free_port(),
        "        proxy_pass 127.0.0.1:%d;" % util.free_port(),
        "    }",
        "}",
    ])
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    p = subprocess.run([snirelay_bin, "-t", "-c", path], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=util.DEADLINE)
    return p.returncode, p.stderr.decode(errors="replace"), path, lines


def _line(lines, needle):
    return [i + 1 for i, l in enumerate(lines) if needle in l][0]


@pytest.mark.parametrize("body,bad,message", [
    (["geo $g {", "    10.0.0.300/8  x;", "}"], "10.0.0.300",
     'invalid network "10.0.0.300/8"'),
    (["geo $g {", "    10.0.0.0/33  x;", "}"], "/33",
     'invalid network "10.0.0.0/33"'),
    (["geo $g {", "    default  x;", "    ranges;", "}"], "ranges;",
     'the "ranges" directive must be the first directive inside "geo" block'),
    (["geo $g {", "    ranges;", "    10.0.0.1  x;", "}"], "10.0.0.1",
     'invalid range "10.0.0.1"'),
    (["geo $g {", "    ranges;", "    10.0.0.9-10.0.0.1  x;", "}"], "10.0.0.9",
     'invalid range "10.0.0.9-10.0.0.1"'),
    (["geo $g {", "    ranges;", "    10.0.0.1-10.0.0.10  a;",
      "    10.0.0.5-10.0.0.20  b;", "}"], "10.0.0.20",
     'range "10.0.0.5-10.0.0.20" overlaps "10.0.0.1-10.0.0.10"'),
    (["geo $g {", "    10.0.0.0/8  a  b;", "}"], "a  b",
     "invalid number of the geo parameters"),
    (["geo $g {", "    10.0.0.0/8  { }", "}"], "0/8  {", 'unexpected "{"'),
    (["geo $g {", "    proxy  10.0.0.1;", "}"], "proxy",
     '"proxy" is a parameter of the http geo module only'),
    (["geo $g {", "    proxy_recursive;", "}"], "proxy_recursive",
     '"proxy_recursive" is a parameter of the http geo module only'),
    (["geo g {", "}"], "geo g", 'invalid variable name "g"'),
    (["geo $a $b $c {", "}"], "geo $a",
     'invalid number of arguments in "geo" directive'),
    (["geo $nosuch $g {", "}"], "geo $nosuch", 'unknown "nosuch" variable'),
    (["geo addr $g {", "}"], "geo addr", 'invalid variable name "addr"'),
])
def test_geo_bad_config_names_file_and_line(snirelay_bin, workdir, body, bad,
                                             message):
    rc, err, path, lines = _check(snirelay_bin, workdir, body)
    assert rc == 1, err
    emerg = [l for l in err.splitlines() if l.startswith("snirelay: [emerg] ")]
    assert emerg, err
    assert emerg[0].startswith("snirelay: [emerg] " + message), err
    assert emerg[0].endswith(" in %s:%d" % (path, _line(lines, bad))), err


def test_geo_is_not_allowed_in_server(snirelay_bin, workdir):
    d = workdir
    lines = ["events { }", "stream {", "    server {",
             "        listen 127.0.0.1:%d;" % util.free_port(),
             "        geo $g { }",
             "        proxy_pass 127.0.0.1:1;", "    }", "}"]
    path = os.path.join(d, "srv.conf")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    p = subprocess.run([snirelay_bin, "-t", "-c", path], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=util.DEADLINE)
    err = p.stderr.decode()
    assert p.returncode == 1, err
    assert ('snirelay: [emerg] "geo" directive is not allowed here in %s:5'
            % path) in err, err


def test_geo_error_in_included_file_names_that_file(snirelay_bin, workdir):
    inc = os.path.join(workdir, "nets.conf")
    with open(inc, "w") as f:
        f.write("10.0.0.0/8  a;\nnot-a-net  b;\n")
    rc, err, path, lines = _check(snirelay_bin, workdir,
                                  ["geo $g {", "    include %s;" % inc, "}"])
    assert rc == 1, err
    assert 'snirelay: [emerg] invalid network "not-a-net" in %s:2' % inc in err, err


def test_geo_warnings_at_t(snirelay_bin, workdir):
    rc, err, path, lines = _check(snirelay_bin, workdir, [
        "geo $g {",
        "    10.0.0.0/8   a;",
        "    10.0.0.0/8   b;",
        "    10.1.2.3/8   c;",
        "    delete       11.0.0.0/8;",
        "    default      x;",
        "    default      y;",
        "}",
        "geo $r {",
        "    ranges;",
        "    default      a;",
        "    default      b;",
        "    10.0.0.0-10.0.0.9   x;",
        "    10.0.0.0-10.0.0.9   y;",
        "    delete       9.0.0.0-9.0.0.1;",
        "}",
    ])
    assert rc == 0, err
    at = lambda n: " in %s:%d" % (path, _line(lines, n))  # noqa: E731
    want = [
        'duplicate network "10.0.0.0/8", value: "b", old value: "a"' + at("0/8   b"),
        "low address bits of 10.1.2.3/8 are meaningless" + at("10.1.2.3"),
        'duplicate network "10.1.2.3/8", value: "c", old value: "b"' + at("10.1.2.3"),
        'no network "11.0.0.0/8" to delete' + at("11.0.0.0"),
        'duplicate network "default", value: "y", old value: "x"' + at("default      y"),
        'duplicate default geo range value: "b", old value: "a"' + at("default      b"),
        'duplicate range "10.0.0.0-10.0.0.9", value: "y", old value: "x"'
        + at("0.9   y"),
        'no address range "9.0.0.0-9.0.0.1" to delete' + at("9.0.0.0"),
    ]
    warns = [l[len("snirelay: [warn] "):] for l in err.splitlines()
             if l.startswith("snirelay: [warn] ")]
    for w in want:
        assert w in warns, (w, err)
    # nginx warns for the IPv4 and the IPv6 /0 of a second default.
    assert warns.count(want[4]) == 2, err

"""The session phase engine, `return` and `set`, through the real binary.

Phases run in nginx's order: post-accept (PROXY header) -> pre-access (set,
then limit_conn) -> access (allow/deny) -> preread -> content (return or
proxy_pass).  Error-log lines name the phase under way ("while ...").
`return VALUE` sends the value (variables evaluated) and closes with 200;
`set $var VALUE` stores a value usable by return, proxy_pass, maps and the
access log.
"""

import os
import socket
import subprocess

import pytest

import hello
import util

FIELDS = ["status", "remote_addr", "bytes_sent", "upstream_addr", "v"]


def _fmt(var="-"):
    return "|".join("$" + f if f != "v" else var for f in FIELDS)


def _lines(r):
    return [util.parse_line(l, FIELDS) for l in r.access_lines()]


def _read_all(port, host="127.0.0.1", send=None):
    s = socket.socket(socket.AF_INET)
    s.bind((host, 0))
    s.settimeout(util.DEADLINE)
    s.connect(("127.0.0.1", port))
    try:
        if send:
            s.sendall(send)
        return util.recv_all(s)
    finally:
        s.close()


# --------------------------------------------------------------------------
# return


def test_return_sends_a_literal_and_closes_with_200(relay, port):
    L = port()
    r = relay("""
    server {
        listen 127.0.0.1:@L@;
        return "hello, stream\\n";
    }
""", log_format=_fmt(), L=L)
    assert _read_all(L) == b"hello, stream\n"
    r.wait_access(1)
    line = _lines(r)[0]
    assert line["status"] == "200"
    assert line["bytes_sent"] == "14"
    assert util.empty(line["upstream_addr"])


def test_return_evaluates_variables_per_session(relay, port):
    L = port()
    r = relay("""
    server {
        listen 127.0.0.1:@L@;
        return "$remote_addr $server_port $protocol";
    }
""", log_format=_fmt(), L=L)
    assert _read_all(L, host="127.0.0.2") == ("127.0.0.2 %d TCP" % L).encode()
    assert _read_all(L, host="127.0.0.3") == ("127.0.0.3 %d TCP" % L).encode()
    r.wait_access(2)
    assert [l["remote_addr"] for l in _lines(r)] == ["127.0.0.2", "127.0.0.3"]


def test_return_of_an_empty_value_closes_at_once(relay, port):
    L = port()
    r = relay("""
    server {
        listen 127.0.0.1:@L@;
        return "$ssl_preread_server_name";
    }
""", log_format=_fmt(), L=L)
    assert _read_all(L) == b""
    r.wait_access(1)
    assert _lines(r)[0]["status"] == "200"
    assert _lines(r)[0]["bytes_sent"] == "0"


def test_return_sends_a_value_larger_than_the_socket_buffer(relay, port):
    """A value that does not fit the send buffer at once is finished by
    write events; the client reads it slowly."""
    L = port()
    big = "x" * 1000
    # 1000 x 300 = 300k bytes: a map value repeated.
    relay("""
    map 1 $chunk { default "@BIG@"; }
    server {
        listen 127.0.0.1:@L@;
        return "@REP@";
    }
""", L=L, BIG=big, REP="$chunk" * 300)
    s = util.connect(L)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    got = util.recv_all(s)
    s.close()
    assert got == big.encode() * 300


def test_return_with_ssl_preread_sees_the_preread_name(relay, port):
    L = port()
    relay("""
    server {
        listen 127.0.0.1:@L@;
        ssl_preread on;
        return "name=$ssl_preread_server_name";
    }
""", L=L)
    got = _read_all(L, send=hello.records(
        hello.build_client_hello(server_name="return.example")))
    assert got == b"name=return.example"


# --------------------------------------------------------------------------
# set


def test_set_value_reaches_return_and_the_access_log(relay, port):
    L = port()
    r = relay("""
    server {
        listen 127.0.0.1:@L@;
        set $greeting "hi $remote_addr";
        return "$greeting!";
    }
""", log_format=_fmt("$greeting"), L=L)
    assert _read_all(L, host="127.0.0.4") == b"hi 127.0.0.4!"
    r.wait_access(1)
    assert _lines(r)[0]["v"] == "hi 127.0.0.4"


def test_set_overrides_a_map_and_is_empty_where_not_set(relay, port):
    L1, L2 = port(), port()
    relay("""
    map 0 $mapped { default "original"; }
    server {
        listen 127.0.0.1:@L1@;
        return "$mapped:$copy";
        set $copy $mapped;
        set $mapped "new";
    }
    server {
        listen 127.0.0.1:@L2@;
        return "[$copy]";
    }
""", L1=L1, L2=L2)
    assert _read_all(L1) == b"new:original"
    assert _read_all(L2) == b"[]"


def test_set_variable_feeds_a_map_and_proxy_pass(relay, backend, port):
    B = backend(util.echo())
    L = port()
    r = relay("""
    map $which $target { default 127.0.0.1:1; echo 127.0.0.1:@B@; }
    server {
        listen 127.0.0.1:@L@;
        set $which echo;
        proxy_pass $target;
    }
""", log_format=_fmt("$which"), L=L, B=B.port)
    s = util.connect(L)
    assert util.echo_roundtrip(s, b"via set\n") == b"via set\n"
    s.close()
    r.wait_access(1)
    line = _lines(r)[0]
    assert line["upstream_addr"] == "127.0.0.1:%d" % B.port
    assert line["v"] == "echo"


# --------------------------------------------------------------------------
# phase order


def test_set_runs_before_limit_conn(relay, backend, port):
    """limit_conn's key may be a `set` variable (both pre-access; set first):
    here every client shares one key, so a second address is limited."""
    B = backend(util.echo())
    L = port()
    r = relay("""
    limit_conn_zone $k zone=shared:1m;
    server {
        listen 127.0.0.1:@L@;
        set $k everyone;
        limit_conn shared 1;
        proxy_pass 127.0.0.1:@B@;
    }
""", log_format=_fmt(), L=L, B=B.port)
    s1 = util.connect(L)
    assert util.echo_roundtrip(s1, b"a\n") == b"a\n"
    assert _read_all(L, host="127.0.0.2") == b""
    r.wait_access(1)
    assert _lines(r)[0]["status"] == "503"
    assert _lines(r)[0]["remote_addr"] == "127.0.0.2"
    s1.close()
    r.wait_access(2)


def test_limit_conn_runs_before_allow_deny(relay, backend, port):
    """nginx order: limit_conn (pre-access) before deny (access).  A client
    over its limit gets 503 even where it would be denied; one under the
    limit reaches deny and gets 403."""
    B = backend(util.echo())
    LA, LB = port(), port()
    r = relay("""
    limit_conn_zone $binary_remote_addr zone=perip:1m;
    server {
        listen 127.0.0.1:@LA@;
        limit_conn perip 1;
        proxy_pass 127.0.0.1:@B@;
    }
    server {
        listen 127.0.0.1:@LB@;
        limit_conn perip 1;
        deny all;
        return "never";
    }
""", log_format=_fmt(), LA=LA, LB=LB, B=B.port)
    held = util.connect(LA)
    assert util.echo_roundtrip(held, b"hold\n") == b"hold\n"
    assert _read_all(LB) == b""                     # 127.0.0.1: over the limit
    assert _read_all(LB, host="127.0.0.2") == b""   # under it: denied
    r.wait_access(2)
    assert [(l["remote_addr"], l["status"]) for l in _lines(r)] == [
        ("127.0.0.1", "503"), ("127.0.0.2", "403")]
    assert "limiting connections by zone \"perip\" while initializing session" \
        in r.error_text()
    assert "access forbidden by rule while initializing session" in r.error_text()
    # The denied session gave its count back: 127.0.0.2 may connect again.
    assert _read_all(LB, host="127.0.0.2") == b""
    r.wait_access(3)
    assert _lines(r)[2]["status"] == "403"
    held.close()
    r.wait_access(4)


def test_deny_runs_before_preread(relay, port):
    """A denied client is closed before anything is read from it."""
    L = port()
    r = relay("""
    server {
        listen 127.0.0.1:@L@;
        ssl_preread on;
        deny all;
        return "$ssl_preread_server_name";
    }
""", log_format=_fmt("$ssl_preread_status"), L=L)
    s = util.connect(L)
    assert util.recv_all(s) == b""   # closed without the client sending
    s.close()
    r.wait_access(1)
    line = _lines(r)[0]
    assert line["status"] == "403"
    assert util.empty(line["v"])


def test_error_log_names_the_phase_under_way(relay, port):
    dead = port()   # nothing listens here
    LP, LC, LX = port(), port(), port()
    r = relay("""
    server {
        listen 127.0.0.1:@LP@;
        ssl_preread on;
        preread_timeout 300ms;
        return "x";
    }
    server {
        listen 127.0.0.1:@LC@;
        proxy_pass 127.0.0.1:@DEAD@;
    }
    server {
        listen 127.0.0.1:@LX@ proxy_protocol;
        proxy_protocol_timeout 300ms;
        return "x";
    }
""", LP=LP, LC=LC, LX=LX, DEAD=dead)
    s = util.connect(LP)
    assert util.recv_all(s) == b""
    s.close()
    r.wait_error(r"\[info\] .*preread timed out while prereading client data, "
                 r"client: 127\.0\.0\.1, server: 127\.0\.0\.1:%d" % LP)
    assert _read_all(LC) == b""
    r.wait_error(r"\[error\] .*connect\(\) failed \(111: Connection refused\) "
                 r"while connecting to upstream, client: 127\.0\.0\.1, "
                 r"server: 127\.0\.0\.1:%d, upstream: \"127\.0\.0\.1:%d\""
                 % (LC, dead))
    s = util.connect(LX)
    assert util.recv_all(s) == b""
    s.close()
    r.wait_error(r"PROXY protocol header timed out while reading PROXY "
                 r"protocol, client: 127\.0\.0\.1")


def test_proxy_protocol_header_is_read_before_set_and_access(relay, port):
    """realip (post-accept) runs first: set and allow/deny see the address
    from the PROXY header of a trusted peer."""
    L = port()
    relay("""
    server {
        listen 127.0.0.1:@L@ proxy_protocol;
        set_real_ip_from 127.0.0.1;
        set $who "from $remote_addr";
        deny 192.0.2.9;
        return $who;
    }
""", L=L)
    hdr = b"PROXY TCP4 192.0.2.7 127.0.0.1 5555 %d\r\n" % L
    assert _read_all(L, send=hdr) == b"from 192.0.2.7"
    hdr = b"PROXY TCP4 192.0.2.9 127.0.0.1 5555 %d\r\n" % L
    assert _read_all(L, send=hdr) == b""


# --------------------------------------------------------------------------
# configuration


def _conf(workdir, server_lines, stream_lines=()):
    lines = [
        "pid %s/snirelay.pid;" % workdir,
        "error_log %s/error.log info;" % workdir,
        "events { worker_connections 1024; }",
        "stream {",
    ] + ["    " + l for l in stream_lines] + [
        "    server {",
        "        listen 127.0.0.1:%d;" % util.free_port(),
    ] + ["        " + l for l in server_lines] + [
        "    }",
        "}",
    ]
    path = os.path.join(workdir, "t.conf")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path, lines


def _test(snirelay_bin, path):
    p = subprocess.run([snirelay_bin, "-t", "-c", path], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=util.DEADLINE)
    return p.returncode, p.stderr.decode(errors="replace")


@pytest.mark.parametrize("server_lines,bad,message", [
    (["return;"], "return;", 'invalid number of arguments in "return" directive'),
    (["return a b;"], "return a b;",
     'invalid number of arguments in "return" directive'),
    (["return a;", "return b;"], "return b;", '"return" directive is duplicate'),
    (["set x 1;", "return x;"], "set x 1;", 'invalid variable name "x"'),
    (["set $v;", "return x;"], "set $v;",
     'invalid number of arguments in "set" directive'),
    (["set $remote_addr 1;", "return x;"], "set $remote_addr",
     'the duplicate "remote_addr" variable'),
    (["return $nosuch;"], "return $nosuch;", 'unknown "nosuch" variable'),
], ids=["return-no-args", "return-two-args", "return-twice", "set-no-dollar",
        "set-one-arg", "set-builtin", "return-unknown-var"])
def test_bad_return_and_set_give_nginx_errors(snirelay_bin, workdir, server_lines,
                                              bad, message):
    path, lines = _conf(workdir, server_lines)
    rc, err = _test(snirelay_bin, path)
    assert rc == 1, err
    line = [i + 1 for i, l in enumerate(lines) if bad in l][0]
    assert "snirelay: [emerg] %s in %s:%d" % (message, path, line) in err, err


def test_set_in_stream_context_is_refused(snirelay_bin, workdir):
    path, lines = _conf(workdir, ["return x;"], stream_lines=["set $a 1;"])
    rc, err = _test(snirelay_bin, path)
    assert rc == 1, err
    assert 'snirelay: [emerg] "set" directive is not allowed here in %s:5' % path \
        in err, err


@pytest.mark.parametrize("order", ["return-last", "proxy_pass-last"])
def test_return_and_proxy_pass_the_later_line_wins(relay, backend, port, order):
    """nginx accepts both in one server (each sets the server's handler, so
    the later one is used); snirelay does the same and warns."""
    B = backend(util.echo())
    L = port()
    body = ["return \"returned\";", "proxy_pass 127.0.0.1:@B@;"]
    if order == "return-last":
        body.reverse()
    r = relay("""
    server {
        listen 127.0.0.1:@L@;
        %s
    }
""" % "\n        ".join(body), L=L, B=B.port)
    assert "the server uses the later one" in r.stderr() + r.error_text()
    if order == "return-last":
        assert _read_all(L) == b"returned"
        assert B.accepted == 0
    else:
        s = util.connect(L)
        assert util.echo_roundtrip(s, b"p\n") == b"p\n"
        s.close()

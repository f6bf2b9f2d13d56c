"""upstream{}: next upstream on connect failure, 502 when all fail,
weighted round robin, backup servers, consistent hashing."""

import collections
import re
import subprocess

import pytest

import hello
import util
from util import sha

MSG = b"hello upstream\n"

ERRLOG_LINE = re.compile(
    r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(emerg|alert|crit|error|warn|notice|info|debug)\] "
    r"\d+#\d+: ", re.M)


def _named(backend, name):
    return backend(util.reply_after(len(MSG), name), name=name)


def _session(L, payload=MSG):
    """One session: send payload, return everything received until EOF."""
    s = util.connect(L)
    try:
        s.sendall(payload)
        return util.recv_all(s)
    finally:
        s.close()


def _reply(name, payload=MSG):
    return ("%s %s\n" % (name, sha(payload))).encode()


def test_next_upstream_after_refused_connect(relay, backend, port):
    closed = port()            # nobody listens here: connect() is refused
    G = _named(backend, "good")
    L = port()
    r = relay(r"""
    upstream pool {
        server 127.0.0.1:@X@;
        server 127.0.0.1:@G@;
    }
    server {
        listen 127.0.0.1:@L@;
        proxy_connect_timeout 2s;
        proxy_pass pool;
    }
    """, X=closed, G=G.port, L=L)
    for _ in range(4):
        assert _session(L) == _reply("good")
    lines = r.wait_access(4)
    fields = [util.parse_line(l) for l in lines]
    assert all(f["status"] == "200" for f in fields), lines
    # The first session tried the refusing server first, then the good one;
    # after that failure (max_fails=1 by default) the refusing server rests
    # for fail_timeout and the later sessions go straight to the good one.
    assert fields[0]["upstream_addr"] == "127.0.0.1:%d, 127.0.0.1:%d" % (closed, G.port)
    assert [f["upstream_addr"] for f in fields[1:]] == [G.addr] * 3, lines
    assert G.accepted == 4
    m = r.wait_error(r"\[error\] \d+#\d+: \*\d+ .*connect.*127\.0\.0\.1:%d" % closed)
    assert "refused" in m.group(0).lower() or "111" in m.group(0)


def test_max_fails_zero_keeps_trying_the_failed_server(relay, backend, port):
    closed = port()
    G = _named(backend, "good")
    L = port()
    r = relay(r"""
    upstream pool {
        server 127.0.0.1:@X@ max_fails=0;
        server 127.0.0.1:@G@;
    }
    server {
        listen 127.0.0.1:@L@;
        proxy_pass pool;
    }
    """, X=closed, G=G.port, L=L)
    for _ in range(4):
        assert _session(L) == _reply("good")
    fields = [util.parse_line(l) for l in r.wait_access(4)]
    both = "127.0.0.1:%d, 127.0.0.1:%d" % (closed, G.port)
    # Round robin alternates the first pick; with max_fails=0 the refusing
    # server is never marked failed, so it is tried on every other session.
    assert [f["upstream_addr"] for f in fields].count(both) == 2, fields


def test_proxy_next_upstream_off_gives_502_on_first_failure(relay, backend, port):
    closed = port()
    G = _named(backend, "good")
    L = port()
    r = relay(r"""
    upstream pool {
        server 127.0.0.1:@X@;
        server 127.0.0.1:@G@;
    }
    server {
        listen 127.0.0.1:@L@;
        proxy_next_upstream off;
        proxy_pass pool;
    }
    """, X=closed, G=G.port, L=L)
    assert _session(L) == b""            # first pick: the refusing server
    assert _session(L) == _reply("good")
    fields = [util.parse_line(l) for l in r.wait_access(2)]
    assert (fields[0]["status"], fields[0]["upstream_addr"]) == \
        ("502", "127.0.0.1:%d" % closed)
    assert (fields[1]["status"], fields[1]["upstream_addr"]) == ("200", G.addr)
    assert G.accepted == 1


def test_random_balancer_uses_every_server(relay, backend, port):
    bks = [_named(backend, "R%d" % i) for i in range(2)]
    L = port()
    relay(r"""
    upstream pool {
        random;
        server 127.0.0.1:@A@;
        server 127.0.0.1:@B@;
    }
    server {
        listen 127.0.0.1:@L@;
        proxy_pass pool;
    }
    """, A=bks[0].port, B=bks[1].port, L=L)
    seen = collections.Counter(_session(L).split(b" ")[0] for _ in range(30))
    assert set(seen) == {b"R0", b"R1"}, seen      # 2 * 2^-30 chance of a false failure
    assert sum(seen.values()) == 30


def test_all_upstreams_down_gives_502_and_close_without_data(relay, port):
    x1, x2 = port(), port()
    L = port()
    r = relay(r"""
    upstream pool {
        server 127.0.0.1:@X1@;
        server 127.0.0.1:@X2@;
    }
    server {
        listen 127.0.0.1:@L@;
        proxy_connect_timeout 2s;
        proxy_pass pool;
    }
    """, X1=x1, X2=x2, L=L)
    assert _session(L) == b""
    f = util.parse_line(r.wait_access(1)[0])
    assert f["status"] == "502"
    assert f["bytes_sent"] == "0"
    assert "127.0.0.1:%d" % x1 in f["upstream_addr"]
    assert "127.0.0.1:%d" % x2 in f["upstream_addr"]
    r.wait_error(r"\[error\]")
    text = r.error_text()
    for line in text.splitlines():
        assert ERRLOG_LINE.match(line), "not nginx error-log format: %r" % line


def test_single_down_proxy_pass_address_gives_502(relay, port):
    x = port()
    L = port()
    r = relay(r"""
    server {
        listen 127.0.0.1:@L@;
        proxy_pass 127.0.0.1:@X@;
    }
    """, X=x, L=L)
    assert _session(L) == b""
    f = util.parse_line(r.wait_access(1)[0])
    assert f["status"] == "502"
    assert f["upstream_addr"] == "127.0.0.1:%d" % x


def test_weighted_round_robin_distribution(relay, backend, port):
    A = _named(backend, "A")
    B = _named(backend, "B")
    C = _named(backend, "C")
    L = port()
    relay(r"""
    upstream pool {
        server 127.0.0.1:@A@ weight=3;
        server 127.0.0.1:@B@ weight=2;
        server 127.0.0.1:@C@;
    }
    server {
        listen 127.0.0.1:@L@;
        proxy_pass pool;
    }
    """, A=A.port, B=B.port, C=C.port, L=L)
    seen = collections.Counter()
    order = []
    for _ in range(12):             # two full cycles of 3+2+1
        reply = _session(L)
        name = reply.split(b" ")[0].decode()
        seen[name] += 1
        order.append(name)
    assert seen == {"A": 6, "B": 4, "C": 2}, order
    # Smooth WRR interleaves: no server gets more than two sessions in a row.
    assert "AAA" not in "".join(order), order
    assert (A.accepted, B.accepted, C.accepted) == (6, 4, 2)


def test_backup_used_only_when_primaries_are_down(relay, backend, port):
    P1 = _named(backend, "P1")
    P2 = _named(backend, "P2")
    K = _named(backend, "backup")
    L = port()
    r = relay(r"""
    upstream pool {
        server 127.0.0.1:@P1@;
        server 127.0.0.1:@P2@;
        server 127.0.0.1:@K@ backup;
    }
    server {
        listen 127.0.0.1:@L@;
        proxy_connect_timeout 2s;
        proxy_pass pool;
    }
    """, P1=P1.port, P2=P2.port, K=K.port, L=L)
    names = [_session(L).split(b" ")[0] for _ in range(6)]
    assert sorted(names) == [b"P1"] * 3 + [b"P2"] * 3
    assert K.accepted == 0
    P1.stop_listening()
    P2.stop_listening()
    for _ in range(3):
        assert _session(L) == _reply("backup")
    assert K.accepted == 3
    lines = r.wait_access(9)
    last = util.parse_line(lines[-1])
    assert last["upstream_addr"].endswith("127.0.0.1:%d" % K.port)
    assert last["status"] == "200"


def test_down_server_is_never_used(relay, backend, port):
    A = _named(backend, "A")
    Z = _named(backend, "Z")
    L = port()
    relay(r"""
    upstream pool {
        server 127.0.0.1:@A@;
        server 127.0.0.1:@Z@ down;
    }
    server {
        listen 127.0.0.1:@L@;
        proxy_pass pool;
    }
    """, A=A.port, Z=Z.port, L=L)
    for _ in range(4):
        assert _session(L) == _reply("A")
    assert Z.accepted == 0


def test_consistent_hash_maps_same_key_to_same_backend(relay, backend, port):
    names = ["host%d.hash.test" % i for i in range(16)]
    hellos = {n: hello.records(hello.build_client_hello(server_name=n)) for n in names}
    size = {len(h) for h in hellos.values()}

    def handler_for(tag):
        def handler(conn, info):
            data = b""
            # The hellos differ in length by name; read one whole TLS record.
            while len(data) < 5 or len(data) < 5 + int.from_bytes(data[3:5], "big"):
                b = conn.recv(65536)
                if not b:
                    break
                data += b
            info["data"] = data
            conn.sendall(tag.encode() + b"\n")
        return handler

    bks = [backend(handler_for("H%d" % i), name="H%d" % i) for i in range(3)]
    L = port()
    r = relay(r"""
    upstream pool {
        hash $ssl_preread_server_name consistent;
        server 127.0.0.1:@H0@;
        server 127.0.0.1:@H1@;
        server 127.0.0.1:@H2@;
    }
    server {
        listen 127.0.0.1:@L@;
        ssl_preread on;
        proxy_pass pool;
    }
    """, H0=bks[0].port, H1=bks[1].port, H2=bks[2].port, L=L)
    assert size  # the hellos were built
    first = {}
    for rnd in range(3):
        for n in names:
            got = _session(L, hellos[n])
            assert got.startswith(b"H"), (n, got)
            if rnd == 0:
                first[n] = got
            else:
                assert got == first[n], "key %s moved from %r to %r" % (n, first[n], got)
    assert len(set(first.values())) >= 2, "16 keys all hashed to one server: %r" % first
    lines = r.wait_access(3 * len(names))
    by_name = collections.defaultdict(set)
    for l in lines:
        f = util.parse_line(l)
        by_name[f["ssl_preread_server_name"]].add(f["upstream_addr"])
    assert set(by_name) == set(names)
    assert all(len(v) == 1 for v in by_name.values()), by_name


def test_least_conn_prefers_idle_server(relay, backend, port):
    import threading
    release = threading.Event()

    def hold(conn, info):
        util.recv_all(conn, len(MSG))
        conn.sendall(b"busy\n")
        release.wait(util.DEADLINE)

    BUSY = backend(hold, name="busy")
    IDLE = _named(backend, "idle")
    L = port()
    r = relay(r"""
    upstream pool {
        least_conn;
        server 127.0.0.1:@B@;
        server 127.0.0.1:@I@;
    }
    server {
        listen 127.0.0.1:@L@;
        proxy_pass pool;
    }
    """, B=BUSY.port, I=IDLE.port, L=L)
    held = None
    ended = 0
    try:
        # Open sessions until one lands on the busy server and stays open;
        # the others end (wait for their log line) so they hold nothing.
        for _ in range(4):
            s = util.connect(L)
            s.sendall(MSG)
            if s.recv(64) == b"busy\n":
                held = s
                break
            s.close()
            ended += 1
            r.wait_access(ended)
        assert held is not None, "no session reached the busy server"
        # While it is held, every new session must go to the idle server.
        for _ in range(4):
            assert _session(L) == _reply("idle")
            ended += 1
            r.wait_access(ended)
    finally:
        release.set()
        if held:
            held.close()


def _line_or_close(name):
    """Handler: read a line; answer `name`; on "close" close at once, else
    hold the connection until the peer's EOF."""
    def handler(conn, info):
        buf = b""
        while not buf.endswith(b"\n"):
            b = conn.recv(64)
            if not b:
                return
            buf += b
        info["line"] = buf
        conn.sendall(name.encode() + b"\n")
        if buf != b"close\n":
            util.recv_all(conn)
    return handler


def _ask(L, line):
    """Open a session, send `line`, return (socket, the server's name)."""
    s = util.connect(L)
    s.sendall(line)
    got = b""
    while not got.endswith(b"\n"):
        b = s.recv(64)
        assert b, "the session closed before the server answered"
        got += b
    return s, got.decode().strip()


def test_least_conn_does_not_count_a_session_whose_upstream_closed(relay, backend, port):
    # proxy_half_close on (the default): the upstream closed and all its
    # bytes reached the client, who keeps its side open. That session no
    # longer loads its server.
    X = backend(_line_or_close("x"), name="x")
    Y = backend(_line_or_close("y"), name="y")
    L = port()
    relay(r"""
    upstream pool {
        least_conn;
        server 127.0.0.1:@X@;
        server 127.0.0.1:@Y@;
    }
    server {
        listen 127.0.0.1:@L@;
        proxy_pass pool;
    }
    """, X=X.port, Y=Y.port, L=L)
    open_ = []
    try:
        s1, first = _ask(L, b"close\n")
        open_.append(s1)
        assert util.recv_all(s1) == b""      # the upstream's FIN arrived
        s2, second = _ask(L, b"hold\n")
        open_.append(s2)
        s3, third = _ask(L, b"hold\n")
        open_.append(s3)
        # Two held sessions on two idle servers: one each.
        assert second != third, (first, second, third)
    finally:
        for s in open_:
            s.close()


def test_failed_server_is_live_again_once_a_connection_succeeds(relay, backend, port):
    # A server that failed is live again when a connection to it succeeds,
    # not only when that session ends.
    import threading
    release = threading.Event()

    def hold(name):
        def handler(conn, info):
            util.recv_all(conn, len(MSG))
            conn.sendall(name + b"\n")
            release.wait(util.DEADLINE)
        return handler

    A_port = port()            # refuses until its backend starts
    B = backend(hold(b"b"), name="b")
    L = port()
    r = relay(r"""
    upstream pool {
        server 127.0.0.1:@A@ max_fails=1 fail_timeout=2s;
        server 127.0.0.1:@B@;
    }
    server {
        listen 127.0.0.1:@L@;
        proxy_connect_timeout 2s;
        proxy_pass pool;
    }
    """, A=A_port, B=B.port, L=L)
    opened = []

    def session():
        s = util.connect(L)
        opened.append(s)
        s.sendall(MSG)
        return s.recv(64).strip()

    try:
        assert session() == b"b"            # A refused: failed, then B
        r.wait_error(r"connect\(\) failed .*127\.0\.0\.1:%d" % A_port)
        backend(hold(b"a"), name="a", port=A_port)
        # Once fail_timeout has passed, a session reaches A again and stays.
        util.wait_for(lambda: session() == b"a", "a session to reach A again",
                      interval=0.1)
        # A is live: the next sessions share the load with it at once.
        got = [session() for _ in range(4)]
        assert b"a" in got, got
    finally:
        release.set()
        for s in opened:
            s.close()


def test_upstream_variables_list_one_value_per_tried_server(relay, backend, port):
    # As $upstream_addr: nginx lists each try, ", "-separated; the servers
    # that refused carried no bytes and have no connect time.
    x1, x2 = port(), port()    # nobody listens: refused
    G = _named(backend, "good")
    L = port()
    fields = ["upstream_addr", "upstream_bytes_sent", "upstream_bytes_received",
              "upstream_connect_time", "status"]
    r = relay(r"""
    upstream pool {
        server 127.0.0.1:@X1@;
        server 127.0.0.1:@X2@;
        server 127.0.0.1:@G@;
    }
    server {
        listen 127.0.0.1:@L@;
        proxy_pass pool;
    }
    """, X1=x1, X2=x2, G=G.port, L=L,
        log_format="|".join("$" + f for f in fields))
    assert _session(L) == _reply("good")
    f = util.parse_line(r.wait_access(1)[0], fields)
    assert f["status"] == "200"
    assert f["upstream_addr"] == "127.0.0.1:%d, 127.0.0.1:%d, %s" % (x1, x2, G.addr)
    assert f["upstream_bytes_sent"] == "0, 0, %d" % len(MSG)
    assert f["upstream_bytes_received"] == "0, 0, %d" % len(_reply("good"))
    assert re.fullmatch(r"-, -, \d+\.\d{3}", f["upstream_connect_time"]), f
    # A session that reached its first server has one value each.
    assert _session(L) == _reply("good")
    f = util.parse_line(r.wait_access(2)[1], fields)
    assert f["upstream_addr"] == G.addr
    assert f["upstream_bytes_sent"] == "%d" % len(MSG)
    assert re.fullmatch(r"\d+\.\d{3}", f["upstream_connect_time"]), f



@pytest.mark.parametrize("method", ["hash $proxy_protocol_addr",
                                    "hash $proxy_protocol_addr consistent"],
                         ids=["hash", "consistent"])
def test_hash_with_an_empty_key_is_round_robin(relay, backend, port, method):
    # $proxy_protocol_addr is empty without a PROXY header: nginx then
    # balances round-robin instead of sending every client to one server.
    A = _named(backend, "a")
    B = _named(backend, "b")
    L = port()
    r = relay(r"""
    upstream pool {
        @M@;
        server 127.0.0.1:@A@;
        server 127.0.0.1:@B@;
    }
    server {
        listen 127.0.0.1:@L@;
        proxy_pass pool;
    }
    """, M=method, A=A.port, B=B.port, L=L)
    got = [_session(L) for _ in range(4)]
    assert got == [_reply("a"), _reply("b")] * 2, got
    r.wait_access(4)


def test_max_conns_skips_a_full_server_and_all_full_is_502(relay, backend, port):
    X = backend(_line_or_close("x"), name="x")
    Y = backend(_line_or_close("y"), name="y")
    L = port()
    r = relay(r"""
    upstream pool {
        server 127.0.0.1:@X@ max_conns=1;
        server 127.0.0.1:@Y@ max_conns=1;
    }
    server {
        listen 127.0.0.1:@L@;
        proxy_pass pool;
    }
    """, X=X.port, Y=Y.port, L=L)
    held = []
    try:
        for _ in range(2):
            s, name = _ask(L, b"hold\n")
            held.append((s, name))
        assert sorted(n for _, n in held) == ["x", "y"]
        # Both at max_conns: the third client is closed, 502.
        s = util.connect(L)
        s.sendall(b"hold\n")
        assert util.recv_all(s) == b""
        s.close()
        f = util.parse_line(r.wait_access(1)[0])
        # nginx: with no live server $upstream_addr names the upstream.
        assert f["status"] == "502" and f["upstream_addr"] == "pool", f
        r.wait_error(r"no live upstreams")
        assert X.accepted == 1 and Y.accepted == 1
        # One ends: its server takes the next client.
        s, freed = held.pop(0)
        s.close()
        r.wait_access(2)
        s, name = _ask(L, b"hold\n")
        held.append((s, name))
        assert name == freed
    finally:
        for s, _ in held:
            s.close()


def test_max_conns_does_not_count_a_session_whose_upstream_closed(relay, backend, port):
    # proxy_half_close on: the first session's upstream closed and its
    # bytes were delivered; the client still holds its side. The server's
    # one connection is free again.
    X = backend(_line_or_close("x"), name="x")
    L = port()
    relay(r"""
    upstream pool {
        server 127.0.0.1:@X@ max_conns=1;
    }
    server {
        listen 127.0.0.1:@L@;
        proxy_pass pool;
    }
    """, X=X.port, L=L)
    opened = []
    try:
        s1, name = _ask(L, b"close\n")
        opened.append(s1)
        assert util.recv_all(s1) == b""
        s2, name = _ask(L, b"hold\n")
        opened.append(s2)
        assert name == "x"
    finally:
        for s in opened:
            s.close()


@pytest.mark.parametrize("bad", ["max_conns=x", "max_conns=-1", "max_conns="])
def test_max_conns_invalid_value_is_refused(relay, port, bad):
    r = relay(r"""
    upstream pool {
        server 127.0.0.1:1 @BAD@;
    }
    server {
        listen 127.0.0.1:@L@;
        proxy_pass pool;
    }
    """, BAD=bad, L=port(), start=False)
    p = subprocess.run([r.binary, "-t", "-c", r.conf], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=util.DEADLINE)
    assert p.returncode == 1
    line = [l for l in r.text.splitlines() if bad in l]
    assert ('snirelay: [emerg] invalid parameter "%s" in %s:%d'
            % (bad, r.conf, r.text.splitlines().index(line[0]) + 1)) in p.stderr, p.stderr

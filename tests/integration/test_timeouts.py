"""preread_timeout, proxy_timeout and proxy_connect_timeout, with short
timeouts (1s).  Closing is detected by polling the socket, never by sleeping."""

import os
import select
import socket
import struct
import time

import pytest

import hello
import util
from util import sha

MSG = b"ping\n"


def _reply(name, payload=MSG):
    return ("%s %s\n" % (name, sha(payload))).encode()


PREREAD_CONF = r"""
    server {
        listen 127.0.0.1:@L@;
        ssl_preread on;
        preread_timeout 1s;
        proxy_pass 127.0.0.1:@D@;
    }
"""


def _check_preread_timeout(r, D, sent):
    f = util.parse_line(r.wait_access(1)[0])
    assert f["status"] == "200"
    assert f["ssl_preread_status"] == "timeout"
    assert util.empty(f["ssl_preread_server_name"])
    assert util.empty(f["upstream_addr"])
    assert f["bytes_sent"] == "0"
    assert f["bytes_received"] == str(sent)
    assert D.accepted == 0, "an upstream was contacted after a preread timeout"


def test_preread_timeout_closes_silent_client(relay, backend, port):
    D = backend(util.record_to_eof(), name="default")
    L = port()
    r = relay(PREREAD_CONF, D=D.port, L=L)
    s = util.connect(L)
    try:
        assert util.wait_closed(s, timeout=15) == b""
    finally:
        s.close()
    _check_preread_timeout(r, D, 0)


def test_preread_timeout_closes_client_with_partial_hello(relay, backend, port):
    D = backend(util.record_to_eof(), name="default")
    L = port()
    r = relay(PREREAD_CONF, D=D.port, L=L)
    stream = hello.records(hello.build_client_hello(server_name="slow.test"))
    s = util.connect(L)
    try:
        s.sendall(stream[:40])
        assert util.wait_closed(s, timeout=15) == b""
    finally:
        s.close()
    _check_preread_timeout(r, D, 40)


def test_preread_timeout_is_not_rearmed_by_trickling_bytes(relay, backend, port):
    D = backend(util.record_to_eof(), name="default")
    L = port()
    r = relay(PREREAD_CONF, D=D.port, L=L)
    stream = hello.records(hello.build_client_hello(server_name="trickle.test"))
    s = util.connect(L)
    sent = 0
    closed = False
    try:
        # One byte every 0.25s: each gap is shorter than the 1s timeout, the
        # whole hello would take a minute.  The deadline must be absolute.
        for i in range(len(stream)):
            try:
                s.send(stream[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            sent += 1
            rd, _, _ = select.select([s], [], [], 0.25)
            if rd:
                try:
                    assert s.recv(1) == b""
                except ConnectionResetError:
                    pass
                closed = True
                break
    finally:
        s.close()
    assert closed, "the proxy kept a trickling client past its preread_timeout"
    assert sent < len(stream)
    f = util.parse_line(r.wait_access(1)[0])
    assert f["ssl_preread_status"] == "timeout"
    assert D.accepted == 0


@pytest.mark.parametrize("proxy_splice", ["on", "off"])
def test_proxy_timeout_closes_idle_session_both_sides(relay, backend, port):
    B = backend(util.reply_after(len(MSG), "B", hold=True), name="B")
    L = port()
    r = relay(r"""
    server {
        listen 127.0.0.1:@L@;
        proxy_timeout 1s;
        proxy_pass 127.0.0.1:@B@;
    }
    """, B=B.port, L=L)
    s = util.connect(L)
    try:
        s.sendall(MSG)
        assert util.recv_exact(s, len(_reply("B"))) == _reply("B")
        # Now both sides are silent: the proxy must close the session.
        assert util.wait_closed(s, timeout=15) == b""
    finally:
        s.close()
    B.wait_conns(1)
    assert B.conns[0]["done"].wait(15), "backend side not closed after proxy_timeout"
    assert B.conns[0]["tail"] == b""
    f = util.parse_line(r.wait_access(1)[0])
    assert f["status"] == "200"
    assert f["bytes_received"] == str(len(MSG))
    assert f["bytes_sent"] == str(len(_reply("B")))
    r.wait_error(r"timed out")


@pytest.mark.parametrize("proxy_splice", ["on", "off"])
def test_proxy_timeout_is_rearmed_by_traffic(relay, backend, port):
    def echo(conn, info):
        while True:
            b = conn.recv(4096)
            if not b:
                break
            conn.sendall(b)

    B = backend(echo, name="echo")
    L = port()
    r = relay(r"""
    server {
        listen 127.0.0.1:@L@;
        proxy_timeout 1s;
        proxy_pass 127.0.0.1:@B@;
    }
    """, B=B.port, L=L)
    s = util.connect(L)
    try:
        # Ten round trips 0.3s apart: 3s in all, three times the timeout.
        for i in range(10):
            s.sendall(b"%d" % (i % 10))
            assert s.recv(1) == b"%d" % (i % 10), "session closed while active"
            rd, _, _ = select.select([s], [], [], 0.3)
            assert not rd, "session closed (or spoke) during a 0.3s gap"
        assert util.wait_closed(s, timeout=15) == b""
    finally:
        s.close()
    f = util.parse_line(r.wait_access(1)[0])
    assert f["bytes_received"] == "10"
    assert f["bytes_sent"] == "10"


@pytest.fixture
def blackhole():
    """A loopback address:port whose SYNs are never answered.

    A listen(0) socket whose accept queue is already full: the kernel drops
    further SYNs, so connect() neither completes nor fails.
    """
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    fillers = util.fill_backlog(lsock)
    yield lsock.getsockname()[1]
    for c in fillers:
        c.close()
    lsock.close()


def test_blackhole_is_really_a_blackhole(blackhole):
    """Guard for the fixture itself: a connect to it does not complete."""
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.setblocking(False)
    try:
        try:
            c.connect(("127.0.0.1", blackhole))
        except BlockingIOError:
            pass
        _, w, _ = select.select([], [c], [], 1.5)
        assert not w
    finally:
        c.close()


def test_connect_timeout_moves_to_next_upstream(relay, backend, port, blackhole):
    G = backend(util.reply_after(len(MSG), "G"), name="G")
    L = port()
    r = relay(r"""
    upstream pool {
        server 127.0.0.1:@H@;
        server 127.0.0.1:@G@;
    }
    server {
        listen 127.0.0.1:@L@;
        proxy_connect_timeout 1s;
        proxy_timeout 10s;
        proxy_pass pool;
    }
    """, H=blackhole, G=G.port, L=L)
    s = util.connect(L)
    try:
        s.sendall(MSG)
        assert util.recv_exact(s, len(_reply("G"))) == _reply("G")
    finally:
        s.close()
    f = util.parse_line(r.wait_access(1)[0])
    assert f["status"] == "200"
    assert f["upstream_addr"] == "127.0.0.1:%d, 127.0.0.1:%d" % (blackhole, G.port)
    assert G.accepted == 1
    assert G.conns[0]["data"] == MSG
    r.wait_error(r"\[error\] .*timed out.*127\.0\.0\.1:%d" % blackhole)


def test_connect_timeout_on_only_upstream_gives_502(relay, port, blackhole):
    L = port()
    r = relay(r"""
    server {
        listen 127.0.0.1:@L@;
        proxy_connect_timeout 1s;
        proxy_pass 127.0.0.1:@H@;
    }
    """, H=blackhole, L=L)
    s = util.connect(L)
    try:
        s.sendall(MSG)
        assert util.wait_closed(s, timeout=15) == b""
    finally:
        s.close()
    f = util.parse_line(r.wait_access(1)[0])
    assert f["status"] == "502"
    assert f["bytes_sent"] == "0"
    assert f["upstream_addr"] == "127.0.0.1:%d" % blackhole


@pytest.mark.parametrize("tries,expect", [("2", "502"), ("0", "200")])
def test_proxy_next_upstream_tries(relay, backend, port, tries, expect):
    """proxy_next_upstream_tries 2 stops after two refused servers (502,
    two addresses logged); 0 (unlimited) goes on to the good one."""
    G = backend(util.reply_after(len(MSG), "G"), name="G")
    dead = [port(), port(), port()]
    L = port()
    r = relay(r"""
    upstream pool {
        server 127.0.0.1:@A@ max_fails=0;
        server 127.0.0.1:@B@ max_fails=0;
        server 127.0.0.1:@C@ max_fails=0;
        server 127.0.0.1:@G@ max_fails=0;
    }
    server {
        listen 127.0.0.1:@L@;
        proxy_next_upstream_tries @T@;
        proxy_pass pool;
    }
    """, A=dead[0], B=dead[1], C=dead[2], G=G.port, L=L, T=tries)
    s = util.connect(L)
    s.sendall(MSG)
    got = util.wait_closed(s, timeout=15) if expect == "502" else \
        util.recv_exact(s, len(_reply("G")))
    s.close()
    f = util.parse_line(r.wait_access(1)[0])
    assert f["status"] == expect
    n = len(f["upstream_addr"].split(", "))
    if expect == "502":
        assert got == b"" and n == 2, f
    else:
        assert got == _reply("G") and n == 4, f


@pytest.mark.parametrize("timeout,expect", [("500ms", "502"), ("0", "200")])
def test_proxy_next_upstream_timeout(relay, backend, port, blackhole,
                                     timeout, expect):
    """After a 1 s connect timeout, proxy_next_upstream_timeout 500ms has
    run out: no next server (502); 0 (unlimited) goes on."""
    G = backend(util.reply_after(len(MSG), "G"), name="G")
    L = port()
    r = relay(r"""
    upstream pool {
        server 127.0.0.1:@H@;
        server 127.0.0.1:@G@;
    }
    server {
        listen 127.0.0.1:@L@;
        proxy_connect_timeout 1s;
        proxy_next_upstream_timeout @T@;
        proxy_pass pool;
    }
    """, H=blackhole, G=G.port, L=L, T=timeout)
    s = util.connect(L)
    s.sendall(MSG)
    if expect == "502":
        assert util.wait_closed(s, timeout=15) == b""
    else:
        assert util.recv_exact(s, len(_reply("G"))) == _reply("G")
    s.close()
    f = util.parse_line(r.wait_access(1)[0])
    assert f["status"] == expect
    assert G.accepted == (1 if expect == "200" else 0)


def _worker(r):
    """The pid of r's (only) worker, or r itself when it has none."""
    kids = util.child_pids(r.pid)
    return kids[0] if kids else r.pid


def _nfds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def test_clients_resetting_during_a_blackholed_connect_free_their_fds_at_once(
        relay, port, blackhole):
    """Issue 8: 300 clients that reset while their upstream connect hangs.

    Before, each session kept its two descriptors for the whole
    proxy_connect_timeout (60s here); now the worker notices the reset and
    its descriptor count is back at its baseline within a second."""
    N = 300
    L = port()
    r = relay(r"""
    server {
        listen 127.0.0.1:@L@;
        proxy_connect_timeout 60s;
        proxy_pass 127.0.0.1:@H@;
    }
    """, H=blackhole, L=L)
    # The baseline once the worker's set-up is over (the listening port
    # is the master's, open before the worker starts): its sandbox entry
    # is the last step, and the steps before hold descriptors a while.
    w = int(r.wait_error(r"\[info\] (\d+)#0: sandbox: ").group(1))
    assert w == _worker(r)
    base = _nfds(w)
    clients = []
    try:
        for _ in range(N):
            clients.append(util.connect(L))
        util.wait_for(lambda: _nfds(w) >= base + 2 * N,
                      "every session to be connecting upstream")
        for c in clients:
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                         struct.pack("ii", 1, 0))
            c.close()
        util.wait_for(lambda: _nfds(w) <= base,
                      "the worker's descriptors back at %d" % base, timeout=1.0)
    finally:
        for c in clients:
            c.close()
    lines = r.wait_access(N)
    assert len(lines) == N
    for line in lines:
        f = util.parse_line(line)
        assert f["upstream_addr"] == "127.0.0.1:%d" % blackhole
        assert f["bytes_sent"] == "0"
    assert r.error_text().count("Connection reset by peer") == N
    assert "timed out" not in r.error_text()


@pytest.mark.parametrize("half_close", ["on", "off"])
def test_client_fin_during_a_blackholed_connect(relay, port, blackhole,
                                                half_close):
    """A FIN while connecting ends the session at once with
    proxy_half_close off; with it on, it is a half-close and the session
    waits for its connect (here, to the 2s timeout)."""
    L = port()
    r = relay(r"""
    server {
        listen 127.0.0.1:@L@;
        proxy_connect_timeout 2s;
        proxy_half_close @HC@;
        proxy_pass 127.0.0.1:@H@;
    }
    """, H=blackhole, L=L, HC=half_close)
    s = util.connect(L)
    try:
        s.sendall(MSG)
        t0 = time.monotonic()
        s.shutdown(socket.SHUT_WR)
        assert util.wait_closed(s, timeout=15) == b""
        took = time.monotonic() - t0
    finally:
        s.close()
    f = util.parse_line(r.wait_access(1)[0])
    if half_close == "off":
        assert took < 1.0, "closed after %.2fs" % took
        assert f["status"] == "200"
        r.wait_error(r"\[info\] .*client closed connection while connecting "
                     r"to upstream")
    else:
        assert took >= 1.8, "closed after %.2fs" % took
        assert f["status"] == "502"
        r.wait_error(r"upstream timed out")

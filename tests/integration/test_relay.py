"""Byte relay: bulk data both ways at once, half-close in both directions,
concurrent sessions, a reader that stops.  Bytes must arrive unchanged
(sha256 on both ends).  Every test runs on both relay paths: proxy_splice
on (splice() through pipes) and off (the buffered copy)."""

import hashlib
import os
import socket
import struct
import threading

import pytest

import hello
import util
from util import sha

MIB = 1024 * 1024


@pytest.fixture(params=["on", "off"])
def proxy_splice(request):
    return request.param


def _drain_hash(sock, limit=None):
    """Read until EOF (or limit); return (byte count, sha256 hex)."""
    h = hashlib.sha256()
    n = 0
    while limit is None or n < limit:
        try:
            b = sock.recv(1 << 18 if limit is None else min(1 << 18, limit - n))
        except ConnectionResetError:
            break
        if not b:
            break
        h.update(b)
        n += len(b)
    return n, h.hexdigest()


@pytest.mark.parametrize("pipe_size", [None, "64k"])
def test_64mib_both_directions_at_once_arrive_unchanged(relay, backend, port,
                                                        pipe_size):
    """With the default proxy_splice_pipe_size (bulk pipes enlarged to 1m)
    and with 64k (never enlarged), on both proxy_splice values."""
    size = 64 * MIB
    up = os.urandom(size)
    down = os.urandom(size)
    hs = hello.records(hello.build_client_hello(server_name="bulk.test"))
    client_stream = hs + up

    def handler(conn, info):
        t = threading.Thread(target=conn.sendall, args=(down,), daemon=True)
        t.start()
        info["got"] = _drain_hash(conn, len(client_stream))
        t.join(util.DEADLINE * 3)
        info["sent_all"] = not t.is_alive()

    B = backend(handler, name="bulk")
    D = backend(util.record_to_eof(), name="default")
    L = port()
    r = relay(r"""
    map $ssl_preread_server_name $backend {
        bulk.test  127.0.0.1:@B@;
        default    127.0.0.1:@D@;
    }
    server {
        listen 127.0.0.1:@L@;
        ssl_preread on;
        proxy_timeout 30s;
        @PS@
        proxy_pass $backend;
    }
    """, B=B.port, D=D.port, L=L,
              PS="" if pipe_size is None else
              "proxy_splice_pipe_size %s;" % pipe_size)

    s = util.connect(L, timeout=60)
    sender_err = []

    def send():
        try:
            s.sendall(client_stream)
        except OSError as e:
            sender_err.append(e)

    t = threading.Thread(target=send, daemon=True)
    t.start()
    try:
        got = _drain_hash(s)
        t.join(60)
    finally:
        s.close()
    assert not sender_err
    assert got == (size, sha(down))
    B.wait_conns(1)
    assert B.conns[0]["done"].wait(util.DEADLINE)
    assert B.conns[0].get("got") == (len(client_stream), sha(client_stream))
    assert B.conns[0].get("sent_all")
    assert D.accepted == 0
    f = util.parse_line(r.wait_access(1)[0])
    assert f["status"] == "200"
    assert f["bytes_received"] == str(len(client_stream))
    assert f["bytes_sent"] == str(size)
    assert f["ssl_preread_server_name"] == "bulk.test"


PLAIN_CONF = r"""
    server {
        listen 127.0.0.1:@L@;
        proxy_timeout 10s;
        proxy_pass 127.0.0.1:@B@;
    }
"""


def test_client_half_close_still_gets_reply_sent_after_eof(relay, backend, port):
    request = os.urandom(100 * 1024)
    reply_body = os.urandom(MIB)

    def handler(conn, info):
        info["data"] = util.recv_all(conn)       # returns only at the client's FIN
        conn.sendall(reply_body + sha(info["data"]).encode())

    B = backend(handler)
    L = port()
    r = relay(PLAIN_CONF, B=B.port, L=L)
    s = util.connect(L)
    try:
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        got = util.recv_all(s)
    finally:
        s.close()
    assert got == reply_body + sha(request).encode()
    assert B.conns[0]["data"] == request
    util.wait_proxy_closed_all(L)
    f = util.parse_line(r.wait_access(1)[0])
    assert f["status"] == "200"
    assert f["bytes_received"] == str(len(request))
    assert f["bytes_sent"] == str(len(got))


def test_backend_half_close_still_gets_client_reply_sent_after_eof(relay, backend, port):
    push = os.urandom(MIB)
    answer = os.urandom(200 * 1024)

    def handler(conn, info):
        conn.sendall(push)
        conn.shutdown(socket.SHUT_WR)
        info["data"] = util.recv_all(conn)       # the client answers after our FIN

    B = backend(handler)
    L = port()
    r = relay(PLAIN_CONF, B=B.port, L=L)
    s = util.connect(L)
    try:
        got = util.recv_all(s)                   # returns only at the backend's FIN
        assert got == push
        s.sendall(answer)
        s.shutdown(socket.SHUT_WR)
        assert util.wait_closed(s) == b""
    finally:
        s.close()
    B.wait_conns(1)
    assert B.conns[0]["done"].wait(util.DEADLINE)
    assert B.conns[0]["data"] == answer
    util.wait_proxy_closed_all(L)
    f = util.parse_line(r.wait_access(1)[0])
    assert f["status"] == "200"
    assert f["bytes_sent"] == str(len(push))
    assert f["bytes_received"] == str(len(answer))


def test_hello_then_fin_during_preread_is_forwarded_then_fin(relay, backend, port):
    stream = hello.records(hello.build_client_hello(server_name="fin.test"))

    def handler(conn, info):
        info["data"] = util.recv_all(conn)
        conn.sendall(b"after-eof " + sha(info["data"]).encode())

    B = backend(handler, name="fin")
    D = backend(util.record_to_eof(), name="default")
    L = port()
    r = relay(r"""
    map $ssl_preread_server_name $backend {
        fin.test  127.0.0.1:@B@;
        default   127.0.0.1:@D@;
    }
    server {
        listen 127.0.0.1:@L@;
        ssl_preread on;
        proxy_timeout 10s;
        proxy_pass $backend;
    }
    """, B=B.port, D=D.port, L=L)
    s = util.connect(L)
    try:
        s.sendall(stream)
        s.shutdown(socket.SHUT_WR)
        got = util.recv_all(s)
    finally:
        s.close()
    assert got == b"after-eof " + sha(stream).encode()
    assert B.conns[0]["data"] == stream
    assert D.accepted == 0
    f = util.parse_line(r.wait_access(1)[0])
    assert f["ssl_preread_server_name"] == "fin.test"


def test_concurrent_sessions_echo_unchanged(relay, backend, port):
    def echo(conn, info):
        while True:
            b = conn.recv(65536)
            if not b:
                break
            conn.sendall(b)

    B = backend(echo, name="echo")
    L = port()
    r = relay(PLAIN_CONF, B=B.port, L=L)
    n = 20
    payloads = [os.urandom(256 * 1024 + i) for i in range(n)]
    results = [None] * n

    def one(i):
        s = util.connect(L)
        try:
            t = threading.Thread(target=lambda: (s.sendall(payloads[i]),
                                                 s.shutdown(socket.SHUT_WR)),
                                 daemon=True)
            t.start()
            results[i] = _drain_hash(s)
            t.join(util.DEADLINE)
        except Exception as e:
            results[i] = repr(e)
        finally:
            s.close()

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(util.DEADLINE * 2)
    for i in range(n):
        assert results[i] == (len(payloads[i]), sha(payloads[i])), i
    lines = r.wait_access(n)
    util.wait_proxy_closed_all(L)   # no CLOSE_WAIT left behind
    got = sorted(int(util.parse_line(l)["bytes_received"]) for l in lines)
    assert got == sorted(len(p) for p in payloads)


def test_a_reader_that_stops_stops_the_writer_then_gets_every_byte(relay, backend, port):
    """Backpressure: while the client reads nothing, the proxy stops reading
    the backend, so the backend's sends block long before it has written
    everything; once the client reads, every byte arrives, in order."""
    size = 128 * MIB
    chunk = os.urandom(MIB)
    blocked = threading.Event()

    def handler(conn, info):
        conn.settimeout(1.0)
        info["sent"] = 0
        view = memoryview(chunk)
        while info["sent"] < size:
            off = info["sent"] % len(chunk)
            try:
                n = conn.send(view[off:])
            except socket.timeout:
                # Nothing went for a whole second: the proxy holds back.
                info.setdefault("blocked_at", info["sent"])
                blocked.set()
                continue
            except OSError:
                break
            info["sent"] += n
        conn.shutdown(socket.SHUT_WR)
        util.recv_all(conn)

    B = backend(handler)
    L = port()
    r = relay(PLAIN_CONF.replace("10s", "60s"), B=B.port, L=L)
    worker = util.wait_for(lambda: util.child_pids(r.pid), "the worker")[0]
    rss_before = util.rss_kib(worker)
    s = util.connect(L, timeout=60)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    try:
        s.sendall(b"go")
        assert blocked.wait(util.DEADLINE), "the backend never blocked"
        info = B.conns[0]
        # What waits for the reader waits in socket buffers and at most one
        # relay buffer or pipe (kernel memory): the worker's own memory
        # stays flat while tens of MiB are held back.
        grown = util.rss_kib(worker) - rss_before
        assert grown < 4096, "worker RSS grew %d KiB behind a slow reader" % grown
        # Socket buffers on both sides (tcp_rmem/tcp_wmem autotuning on
        # loopback: 32 + 4 + 4 MiB here) hold tens of MiB at most; the
        # proxy adds one buffer or pipe. Without backpressure all 128 MiB
        # would have gone into the proxy.
        assert info["blocked_at"] < 64 * MIB, info["blocked_at"]
        s.shutdown(socket.SHUT_WR)
        h = hashlib.sha256()
        n = 0
        while True:
            b = s.recv(1 << 20)
            if not b:
                break
            h.update(b)
            n += len(b)
    finally:
        s.close()
    want = hashlib.sha256()
    for _ in range(size // len(chunk)):
        want.update(chunk)
    assert n == size
    assert h.hexdigest() == want.hexdigest()
    f = util.parse_line(r.wait_access(1)[0])
    assert f["bytes_sent"] == str(size)
    assert f["bytes_received"] == "2"


COUNTERS = ["bytes_sent", "bytes_received", "upstream_bytes_sent",
            "upstream_bytes_received", "status"]


def test_byte_counters_are_exact_both_ways_with_preread(relay, backend, port):
    """$bytes_sent, $bytes_received, $upstream_bytes_sent and
    $upstream_bytes_received count every byte, the preread hello included,
    whichever path carried them."""
    hs = hello.records(hello.build_client_hello(server_name="count.test"))
    up = os.urandom(3 * MIB + 17)
    down = os.urandom(5 * MIB + 3)

    def handler(conn, info):
        t = threading.Thread(target=conn.sendall, args=(down,), daemon=True)
        t.start()
        info["got"] = util.recv_all(conn)
        t.join(util.DEADLINE)
        conn.shutdown(socket.SHUT_WR)

    B = backend(handler)
    L = port()
    r = relay(r"""
    server {
        listen 127.0.0.1:@L@;
        ssl_preread on;
        proxy_timeout 30s;
        proxy_pass 127.0.0.1:@B@;
    }
    """, B=B.port, L=L, log_format="|".join("$" + c for c in COUNTERS))
    s = util.connect(L, timeout=60)
    t = threading.Thread(target=lambda: (s.sendall(hs + up), s.shutdown(socket.SHUT_WR)),
                         daemon=True)
    t.start()
    try:
        got = util.recv_all(s)
        t.join(util.DEADLINE)
    finally:
        s.close()
    assert got == down
    B.wait_conns(1)
    assert B.conns[0]["done"].wait(util.DEADLINE)
    assert B.conns[0]["got"] == hs + up
    f = util.parse_line(r.wait_access(1)[0], COUNTERS)
    assert f == {"bytes_sent": str(len(down)),
                 "bytes_received": str(len(hs + up)),
                 "upstream_bytes_sent": str(len(hs + up)),
                 "upstream_bytes_received": str(len(down)),
                 "status": "200"}


def test_backend_reset_mid_stream_ends_the_session_and_frees_its_sockets(
        relay, backend, port):
    """ROBUSTNESS.md 5.1 #33: a backend that resets mid-stream ends that
    session (the client sees the end), the session is logged, and the
    worker keeps no socket of it; a second session is served as usual."""
    sent = 4 * MIB

    def handler(conn, info):
        data = b""
        while len(data) < 2:
            b = conn.recv(2 - len(data))
            if not b:
                return
            data += b
        if data == b"ok":
            conn.sendall(b"fine")
            conn.shutdown(socket.SHUT_WR)
            util.recv_all(conn)
            return
        conn.sendall(os.urandom(sent))
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        struct.pack("ii", 1, 0))   # close() sends RST

    B = backend(handler)
    L = port()
    r = relay(PLAIN_CONF, B=B.port, L=L)
    worker = util.wait_for(lambda: util.child_pids(r.pid), "the worker")[0]

    def fine_session(n_logged):
        s = util.connect(L)
        s.sendall(b"ok")
        s.shutdown(socket.SHUT_WR)
        assert util.recv_all(s) == b"fine"
        s.close()
        assert util.parse_line(r.wait_access(n_logged)[-1])["status"] == "200"
    # The count of an idle worker's sockets, taken after a whole session
    # (a worker still starting may open more of its own later) and once
    # that session's sockets are closed (its line is logged just before).
    fine_session(1)
    util.wait_for(lambda: not util.session_socket_inodes(worker, L, B.port),
                  "the worker to close the first session's sockets")
    idle = len(util.socket_inodes(worker))
    s = util.connect(L)
    s.sendall(b"go")
    n, _ = _drain_hash(s)           # EOF or reset: either ends the read
    s.close()
    assert n <= sent
    f = util.parse_line(r.wait_access(2)[-1])
    assert f["bytes_received"] == "2"
    util.wait_for(lambda: len(util.socket_inodes(worker)) == idle,
                  "the worker to close both sockets of the reset session")
    fine_session(3)

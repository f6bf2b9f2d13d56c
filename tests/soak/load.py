"""The soak's client sessions: one function per kind, each driving one
connection through snirelay and checking what comes back.

Every session fills in a Rec: its kind, the listener it used, its own local
port (so the driver can tell whether a killed worker held it), when it ran,
and ok/err. A legitimate session raises on any deviation (a byte wrong, a
checksum off, an early close, a timeout); a hostile one must be closed by
the proxy without a byte reaching it from a backend.

Names carry a per-session id (s17.echo.test, s17.web.test), so the access
log line of each session can be found.
"""

import hashlib
import os
import socket
import ssl
import struct
import threading
import time

import hello
import util

# One socket operation may take this long before the session counts as
# failed: generous, because the machine is shared and a soak must not turn
# scheduling noise into a loss.
OP_TIMEOUT = 60.0
CHUNK = 65536


class Rec:
    """What one session did."""

    __slots__ = ("kind", "legit", "name", "listen", "cport", "t0", "t1", "ok",
                 "err", "late")

    def __init__(self, kind, legit):
        self.kind = kind
        self.legit = legit
        self.name = None
        self.listen = None
        self.cport = None
        self.t0 = time.monotonic()
        self.t1 = None
        self.ok = False
        self.err = None
        self.late = False    # a slow client that itself overran preread_timeout


class Ctx:
    """What every session needs: ports, the CA, the stop flag, ids."""

    def __init__(self, tls_port, http_port, ca, preread_timeout):
        self.tls_port = tls_port
        self.http_port = http_port
        self.preread_timeout = preread_timeout
        self.ssl_context = ssl.create_default_context(cafile=ca)
        self.stop = threading.Event()
        self._id = 0
        self._lock = threading.Lock()

    def next_id(self):
        with self._lock:
            self._id += 1
            return self._id


# --------------------------------------------------------------------------
# helpers


def _connect(rec, port):
    s = socket.create_connection(("127.0.0.1", port), timeout=OP_TIMEOUT)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    rec.listen = port
    rec.cport = s.getsockname()[1]
    return s


def _recv_exact(s, n, h=None):
    """Read exactly n bytes (hashing them into h, if given); return them
    unless h is given (then b"")."""
    chunks = []
    while n > 0:
        b = s.recv(min(n, CHUNK))
        if not b:
            raise EOFError("proxy closed with %d bytes still expected" % n)
        if h is not None:
            h.update(b)
        else:
            chunks.append(b)
        n -= len(b)
    return b"".join(chunks)


def _expect_eof(s):
    b = s.recv(CHUNK)
    if b:
        raise AssertionError("%d unexpected bytes before EOF" % len(b))


def _rst_close(s):
    """Close with a reset (SO_LINGER 0) instead of a FIN."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def _pace(t_start, done, rate):
    """Keep a transfer at `rate` bytes/s: shape the load, wait on nothing."""
    ahead = t_start + done / rate - time.monotonic()
    if ahead > 0:
        time.sleep(ahead)  # ok-sleep: pacing a transfer, not waiting for a condition


def _hello(name, rng, pq_share=0.25):
    if rng.random() < pq_share:
        return hello.pq_client_hello(name)
    return hello.records(hello.build_client_hello(server_name=name, alpn=["h2"]))


def _send_split(s, data, rng):
    """Send in two writes at a random point (a hello split over segments)."""
    cut = rng.randrange(1, len(data))
    s.sendall(data[:cut])
    s.sendall(data[cut:])


def _trickle(s, data, rng, per_byte):
    """Send byte by byte, `per_byte` (lo, hi) seconds apart; return the time taken."""
    t = time.monotonic()
    for i in range(len(data)):
        s.sendall(data[i:i + 1])
        time.sleep(rng.uniform(*per_byte))  # ok-sleep: a slow client's pace, the point of the test
    return time.monotonic() - t


# --------------------------------------------------------------------------
# short sessions


def short_echo(ctx, rec, rng):
    """A ClientHello (sometimes post-quantum sized, split in two writes),
    a few KiB both ways through the echo upstream, a clean close."""
    rec.name = "s%d.echo.test" % ctx.next_id()
    s = _connect(rec, ctx.tls_port)
    try:
        first = _hello(rec.name, rng)
        payload = os.urandom(rng.randint(1, 16384))
        _send_split(s, first, rng)
        s.sendall(payload)
        got = _recv_exact(s, len(first) + len(payload))
        if got != first + payload:
            raise AssertionError("echo differs")
        s.shutdown(socket.SHUT_WR)
        _expect_eof(s)
    finally:
        s.close()


def short_tls(ctx, rec, rng):
    """A real TLS 1.3 handshake with the backend through the proxy
    (certificate checked against the wildcard name), then an echo."""
    rec.name = "s%d.tls.test" % ctx.next_id()
    raw = _connect(rec, ctx.tls_port)
    try:
        s = ctx.ssl_context.wrap_socket(raw, server_hostname=rec.name)
        payload = os.urandom(rng.randint(1, 8192))
        s.sendall(payload)
        if _recv_exact(s, len(payload)) != payload:
            raise AssertionError("TLS echo differs")
        s.close()
    finally:
        raw.close()


def _http_head(name, rng, pad=0):
    return (b"GET /soak/%d HTTP/1.1\r\nHost: %s\r\nUser-Agent: soak\r\n"
            b"X-Pad: %s\r\n\r\n" % (rng.randrange(1 << 30), name.encode(),
                                   b"p" * (pad or rng.randint(0, 2000))))


def _check_http_reply(s, head):
    reply = util.recv_all(s)
    want = hashlib.sha256(head).hexdigest().encode()
    if not reply.startswith(b"HTTP/1.1 200 OK\r\n") or not reply.endswith(b"\r\n\r\n" + want):
        raise AssertionError("bad HTTP reply %r" % reply[:200])


def short_http(ctx, rec, rng):
    """A plain HTTP request routed by its Host header; the backend answers
    with the sha256 of the head it received."""
    rec.name = "s%d.web.test" % ctx.next_id()
    s = _connect(rec, ctx.http_port)
    try:
        head = _http_head(rec.name, rng)
        _send_split(s, head, rng)
        _check_http_reply(s, head)
    finally:
        s.close()


# --------------------------------------------------------------------------
# long transfers (paced, so that they span reloads and worker kills)


def long_upload(ctx, rec, rng, size, rate):
    """Client -> sink: the backend's sha256 of what it got must equal ours."""
    rec.name = "u%d.sink.test" % ctx.next_id()
    s = _connect(rec, ctx.tls_port)
    try:
        s.sendall(_hello(rec.name, rng, pq_share=0))
        h = hashlib.sha256()
        t = time.monotonic()
        done = 0
        while done < size:
            b = os.urandom(min(CHUNK, size - done))
            h.update(b)
            s.sendall(b)
            done += len(b)
            _pace(t, done, rate)
        s.shutdown(socket.SHUT_WR)
        reply = util.recv_all(s).decode(errors="replace")
        want = "%s %d\n" % (h.hexdigest(), size)
        if reply != want:
            raise AssertionError("sink says %r, sent %r" % (reply, want))
    finally:
        s.close()


def long_download(ctx, rec, rng, size, rate):
    """Source -> client, read at a pace (so the proxy must hold the backend
    back): our sha256 must equal the one the backend sends last."""
    rec.name = "d%d.source.test" % ctx.next_id()
    s = _connect(rec, ctx.tls_port)
    try:
        s.sendall(_hello(rec.name, rng, pq_share=0) + struct.pack("!QQ", size, 0))
        h = hashlib.sha256()
        t = time.monotonic()
        done = 0
        while done < size:
            n = min(CHUNK, size - done)
            _recv_exact(s, n, h)
            done += n
            _pace(t, done, rate)
        theirs = _recv_exact(s, 64).decode(errors="replace")
        if theirs != h.hexdigest():
            raise AssertionError("source sent sha %s, received data has %s"
                                 % (theirs, h.hexdigest()))
        _expect_eof(s)
    finally:
        s.close()


def long_echo(ctx, rec, rng, size, rate):
    """Both directions at once through the echo upstream: a writer thread
    sends, this thread reads; the sha256 of both streams must match."""
    rec.name = "e%d.echo.test" % ctx.next_id()
    s = _connect(rec, ctx.tls_port)
    sent = hashlib.sha256()
    werr = []

    def writer():
        try:
            t = time.monotonic()
            done = 0
            while done < size:
                b = os.urandom(min(CHUNK, size - done))
                sent.update(b)
                s.sendall(b)
                done += len(b)
                _pace(t, done, rate)
            s.shutdown(socket.SHUT_WR)
        except Exception as e:      # reported by the reader side below
            werr.append(e)

    try:
        first = _hello(rec.name, rng, pq_share=0)
        s.sendall(first)
        if _recv_exact(s, len(first)) != first:
            raise AssertionError("echoed hello differs")
        w = threading.Thread(target=writer, daemon=True)
        w.start()
        got = hashlib.sha256()
        try:
            _recv_exact(s, size, got)
            _expect_eof(s)
        finally:
            w.join(OP_TIMEOUT)
        if werr:
            raise werr[0]
        if got.hexdigest() != sent.hexdigest():
            raise AssertionError("echoed stream differs")
    finally:
        s.close()


# --------------------------------------------------------------------------
# slow clients: the hello or head trickled byte by byte, well within
# preread_timeout; then a normal exchange


def _late(ctx, took):
    """True when a trickle overran the proxy's deadline by itself (the
    machine stalled us): then a close is the right answer, not a loss."""
    return took >= ctx.preread_timeout - 1.0


def slow_hello(ctx, rec, rng):
    rec.name = "w%d.echo.test" % ctx.next_id()
    s = _connect(rec, ctx.tls_port)
    try:
        first = hello.records(hello.build_client_hello(server_name=rec.name))
        took = _trickle(s, first, rng, (0.002, 0.012))
        rec.late = _late(ctx, took)
        payload = os.urandom(rng.randint(1, 4096))
        s.sendall(payload)
        if _recv_exact(s, len(first) + len(payload)) != first + payload:
            raise AssertionError("echo after a slow hello differs")
        s.shutdown(socket.SHUT_WR)
        _expect_eof(s)
    finally:
        s.close()


def slow_http(ctx, rec, rng):
    rec.name = "w%d.web.test" % ctx.next_id()
    s = _connect(rec, ctx.http_port)
    try:
        head = _http_head(rec.name, rng, pad=1)
        took = _trickle(s, head, rng, (0.002, 0.012))
        rec.late = _late(ctx, took)
        _check_http_reply(s, head)
    finally:
        s.close()


# --------------------------------------------------------------------------
# hostile clients: each must be closed by the proxy (or is reset by us)
# and must never get a byte back from a backend


def _hostile_wait(ctx, s, data_ok=False):
    """Wait for the proxy to close `s`; fail if it does not within the
    preread deadline plus a margin, or if bytes came back."""
    s.settimeout(ctx.preread_timeout + 30)
    got = b""
    while True:
        try:
            b = s.recv(CHUNK)
        except ConnectionResetError:
            break
        except socket.timeout:
            raise AssertionError("hostile session not closed by the proxy")
        if not b:
            break
        got += b
    if got and not data_ok:
        raise AssertionError("hostile session got %d bytes back: %r" % (len(got), got[:80]))


def _good_hs(name):
    return hello.build_client_hello(server_name=name)


HOSTILE_TLS = [
    ("garbage", lambda rng: bytes(rng.randrange(256) for _ in range(rng.randint(1, 2000)))),
    ("zeros", lambda rng: b"\x00" * 100),
    ("http-on-tls-port", lambda rng: b"GET / HTTP/1.1\r\nHost: s1.echo.test\r\n\r\n"),
    ("oversize-record", lambda rng: b"\x16\x03\x01\xff\xff" + b"\x01" * 64),
    ("empty-record", lambda rng: b"\x16\x03\x01\x00\x00"),
    ("sslv2-hello", lambda rng: hello.sslv2_client_hello()),
    ("malformed-sni", lambda rng: hello.records(util.corrupt_sni_list_length(
        _good_hs("m.echo.test"), "m.echo.test"))),
    ("unknown-sni", lambda rng: hello.records(_good_hs("x.evil.test"))),
    ("ip-literal-sni", lambda rng: hello.records(_good_hs("127.0.0.1"))),
    ("crlf-sni", lambda rng: hello.records(_good_hs(b"a.echo.test\r\nX: forged"))),
    ("no-sni", lambda rng: hello.records(hello.build_client_hello())),
]

HOSTILE_HTTP = [
    ("binary-on-http-port", lambda rng: b"\x00\x01\x02binary\xff" * 10),
    ("unknown-host", lambda rng: b"GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n"),
    ("duplicate-host", lambda rng: b"GET / HTTP/1.1\r\nHost: s1.web.test\r\n"
                                   b"Host: evil.test\r\n\r\n"),
    ("space-before-colon", lambda rng: b"GET / HTTP/1.1\r\nHost : s1.web.test\r\n\r\n"),
    ("nul-in-host", lambda rng: b"GET / HTTP/1.1\r\nHost: \x00s1.web.test\r\n\r\n"),
    ("oversize-head", lambda rng: b"GET / HTTP/1.1\r\nX-Big: " + b"b" * 70000),
]


def hostile_bytes(ctx, rec, rng):
    """Garbage, broken hellos and bad request heads, sent in one go; the
    proxy must close without forwarding them."""
    if rng.random() < 0.5:
        name, make = rng.choice(HOSTILE_TLS)
        port = ctx.tls_port
    else:
        name, make = rng.choice(HOSTILE_HTTP)
        port = ctx.http_port
    rec.name = name
    s = _connect(rec, port)
    try:
        try:
            s.sendall(make(rng))
        except (BrokenPipeError, ConnectionResetError):
            return      # closed already, while we were still sending
        _hostile_wait(ctx, s)
    finally:
        s.close()


def hostile_truncated(ctx, rec, rng):
    """A ClientHello cut short, then FIN: closed as incomplete."""
    rec.name = "truncated-fin"
    s = _connect(rec, ctx.tls_port)
    try:
        data = hello.records(_good_hs("t.echo.test"))
        s.sendall(data[:rng.randrange(1, len(data))])
        s.shutdown(socket.SHUT_WR)
        _hostile_wait(ctx, s)
    finally:
        s.close()


def hostile_mutated(ctx, rec, rng):
    """A hello with random bytes flipped, then FIN. It may still parse as a
    valid hello for the echo upstream, so an echo is allowed back; either
    way the session must end."""
    rec.name = "mutated-fin"
    s = _connect(rec, ctx.tls_port)
    try:
        data = bytearray(hello.records(_good_hs("s1.echo.test")))
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        s.sendall(bytes(data))
        s.shutdown(socket.SHUT_WR)
        _hostile_wait(ctx, s, data_ok=True)
    finally:
        s.close()


def hostile_stall(ctx, rec, rng):
    """Half a hello, then silence: closed at the preread deadline."""
    rec.name = "stall"
    s = _connect(rec, ctx.tls_port)
    try:
        data = hello.records(_good_hs("t.echo.test"))
        s.sendall(data[:len(data) // 2])
        _hostile_wait(ctx, s)
    finally:
        s.close()


def hostile_reset_preread(ctx, rec, rng):
    """Part of a hello, then a reset."""
    rec.name = "reset-preread"
    s = _connect(rec, ctx.tls_port)
    data = hello.records(_good_hs("t.echo.test"))
    s.sendall(data[:rng.randrange(1, len(data))])
    _rst_close(s)


def hostile_reset_midstream(ctx, rec, rng):
    """A routed session that resets in the middle of a transfer, with
    bytes still in flight both ways."""
    rec.name = "r%d.echo.test" % ctx.next_id()
    s = _connect(rec, ctx.tls_port)
    try:
        first = hello.records(_good_hs(rec.name))
        s.sendall(first + os.urandom(rng.randint(1, 32 * 1024)))
        _recv_exact(s, len(first))        # routed and flowing
    finally:
        _rst_close(s)

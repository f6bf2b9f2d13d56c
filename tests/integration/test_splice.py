"""proxy_splice: the relay moves bytes with splice() through pipes from a
per-worker pool (on, the default) or copies them through a buffer (off).
The relay's behaviour on both paths is tested in test_relay.py,
test_rates.py and test_timeouts.py; here, what is particular to the pipes:
where bytes wait, that an idle session holds no pipe, that a pipe left
holding bytes is never handed to another session, the fallbacks to the
copy when pipes cannot be had (with their error-log lines), and TCP urgent
data, which stops splice() but not recv()."""

import fcntl
import os
import re
import resource
import select
import signal
import socket
import struct
import subprocess
import threading

import pytest

import util
from util import sha

MIB = 1024 * 1024

PLAIN = r"""
    server {
        listen 127.0.0.1:@L@;
        proxy_timeout 60s;
        proxy_pass 127.0.0.1:@B@;
    }
"""


def _worker(r):
    kids = util.wait_for(lambda: util.child_pids(r.pid), "snirelay's worker")
    return kids[0]


def _serving(pid, listen_port):
    """True once worker `pid` watches its listening socket on listen_port
    in its epoll set (/proc/PID/fdinfo): it has set itself up, its
    descriptor budget and pipe pool included."""
    inodes = set(util.listen_inodes(listen_port))
    fds = []
    epolls = []
    d = "/proc/%d/fd" % pid
    for n in os.listdir(d):
        try:
            link = os.readlink(os.path.join(d, n))
        except OSError:
            continue
        if link == "anon_inode:[eventpoll]":
            epolls.append(n)
        elif link.startswith("socket:[") and int(link[8:-1]) in inodes:
            fds.append(n)
    for e in epolls:
        with open("/proc/%d/fdinfo/%s" % (pid, e)) as f:
            text = f.read()
        if any(re.search(r"^tfd:\s+%s\s" % n, text, re.M) for n in fds):
            return True
    return False


def _pipes(pid):
    """Distinct pipes `pid` has open (both ends of one pipe count once)."""
    return {f for f in util.open_files(pid) if f.startswith("pipe:")}


def _pusher(size):
    """Backend: send `size` random bytes (kept in info["data"]), then FIN;
    read the client's bytes to EOF."""
    def handler(conn, info):
        info["data"] = os.urandom(size)
        try:
            conn.sendall(info["data"])
            conn.shutdown(socket.SHUT_WR)
            util.recv_all(conn)
        except OSError:
            pass
    return handler


def _small_reader(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    s.settimeout(util.DEADLINE)
    s.connect(("127.0.0.1", port))
    return s


def _proxy_stalled(listen_port, upstream_port):
    """True when bytes wait at the proxy for a client that does not read:
    its client socket's send queue and its upstream socket's receive queue
    are both non-empty."""
    return _stalled_sessions(listen_port, upstream_port) > 0


def _stalled_sessions(listen_port, upstream_port):
    """How many sessions hold bytes at the proxy for a client that does not
    read, as _proxy_stalled() tells for one: the fewer of the proxy's client
    sockets with a send queue and its upstream sockets with a receive
    queue (/proc/net/tcp). An upstream that sent its last byte and its FIN
    into the kernel's buffers leaves the proxy's socket in CLOSE_WAIT (08),
    bytes still queued."""
    tx = rx = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            p = line.split()
            local = int(p[1].rsplit(":", 1)[1], 16)
            remote = int(p[2].rsplit(":", 1)[1], 16)
            txq, rxq = (int(x, 16) for x in p[4].split(":"))
            tx += p[3] == "01" and local == listen_port and txq > 0
            rx += p[3] in ("01", "08") and remote == upstream_port and rxq > 0
    return min(tx, rx)


@pytest.mark.parametrize("proxy_splice", ["on", "off"])
def test_stalled_bytes_wait_in_a_pipe_with_proxy_splice_on_in_a_buffer_off(
        relay, backend, port, proxy_splice):
    size = 16 * MIB
    B = backend(_pusher(size))
    L = port()
    r = relay(PLAIN, B=B.port, L=L)
    w = _worker(r)
    assert not _pipes(w)
    s = _small_reader(L)
    try:
        util.wait_for(lambda: _proxy_stalled(L, B.port), "bytes held at the proxy")
        held = _pipes(w)
        if proxy_splice == "on":
            assert len(held) >= 1, "no pipe holds the stalled direction's bytes"
        else:
            assert not held, "proxy_splice off opened pipes: %s" % held
        got = util.recv_all(s)
    finally:
        s.close()
    assert len(got) == size and got == B.conns[0]["data"]
    f = util.parse_line(r.wait_access(1)[0])
    assert f["bytes_sent"] == str(size)


def _pipe_sizes(pid):
    """The size (F_GETPIPE_SZ) of each pipe `pid` has open, read through
    /proc/PID/fd (opening a pipe there gives another descriptor on it)."""
    sizes = {}
    d = "/proc/%d/fd" % pid
    for n in os.listdir(d):
        try:
            link = os.readlink(os.path.join(d, n))
        except OSError:
            continue
        if not link.startswith("pipe:") or link in sizes:
            continue
        try:
            fd = os.open(os.path.join(d, n), os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            sizes[link] = fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ)
        finally:
            os.close(fd)
    return sizes


SIZED = r"""
    server {
        listen 127.0.0.1:@L@;
        proxy_timeout 60s;
        @PS@
        proxy_pass 127.0.0.1:@B@;
    }
"""


@pytest.mark.parametrize("pipe_size", [None, "64k"])
def test_a_bulk_direction_gets_an_enlarged_pipe_a_short_session_none(
        relay, backend, port, pipe_size):
    """A short echo (4,000 bytes, under the 16k buffer) is copied and takes
    no pipe at all (a direction splices once a read fills its buffer); a
    stalled 16 MiB download takes a pipe, fills it, and has it enlarged to
    1m (the default proxy_splice_pipe_size) and, with 64k, not."""
    E = backend(util.echo(), name="echo")
    B = backend(_pusher(16 * MIB), name="bulk")
    L = port()
    L2 = port()
    conf = SIZED + SIZED.replace("@L@", "@L2@").replace("@B@", "@E@")
    r = relay(conf, B=B.port, L=L, E=E.port, L2=L2,
              PS="" if pipe_size is None else
              "proxy_splice_pipe_size %s;" % pipe_size)
    w = _worker(r)
    short = util.connect(L2)
    try:
        assert util.echo_roundtrip(short, b"x" * 4000) == b"x" * 4000
        assert not _pipe_sizes(w), "the short session took a pipe"
    finally:
        short.close()
    s = _small_reader(L)
    try:
        util.wait_for(lambda: _proxy_stalled(L, B.port), "bytes held at the proxy")
        sizes = _pipe_sizes(w)
        big = [v for v in sizes.values() if v > 65536]
        if pipe_size is None:
            assert big == [MIB], sizes
        else:
            assert not big, sizes
        got = util.recv_all(s)
    finally:
        s.close()
    assert len(got) == 16 * MIB and got == B.conns[0]["data"]


def test_enlarged_pipes_stay_under_the_workers_share_of_the_user_pages(
        relay, backend, port):
    """More stalled bulk downloads than the bound allows 1 MiB pipes for:
    the worker's enlarged pipes hold at most a quarter of
    fs.pipe-user-pages-soft divided by the worker count; the other bulk
    directions keep 64 KiB pipes, and every byte still arrives."""
    with open("/proc/sys/fs/pipe-user-pages-soft") as f:
        soft = int(f.read()) or 16384
    size = 4 * MIB
    B = backend(_pusher(size))
    L = port()
    r = relay(PLAIN, B=B.port, L=L)
    w = _worker(r)
    workers = len(util.child_pids(r.pid))
    bound = soft // 4 // workers * os.sysconf("SC_PAGE_SIZE")
    fits = bound // MIB
    socks = [_small_reader(L) for _ in range(fits + 4)]
    try:
        def at_bound():
            big = [v for v in _pipe_sizes(w).values() if v > 65536]
            return len(big) == fits and sum(big) <= bound
        util.wait_for(at_bound, "%d enlarged pipes" % fits)
        B.wait_conns(len(socks))
        util.wait_for(lambda: sum(1 for v in _pipe_sizes(w).values()
                                  if v == 65536) >= 4,
                      "the other bulk directions on 64 KiB pipes")
        sizes = _pipe_sizes(w)
        big = [v for v in sizes.values() if v > 65536]
        assert len(big) == fits and sum(big) <= bound, sizes
        got = [util.recv_all(s) for s in socks]
    finally:
        for s in socks:
            s.close()
    datas = sorted(c["data"] for c in B.conns)
    assert sorted(got) == datas


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run as nobody")
@pytest.mark.parametrize("over_max", [False, True])
def test_a_pipe_size_the_kernel_refuses_is_said_once_and_pipes_keep_theirs(
        relay, backend, port, over_max):
    """Above fs.pipe-max-size the kernel refuses F_SETPIPE_SZ (EPERM) to a
    process without CAP_SYS_RESOURCE, such as a worker running as `user
    nobody`: it logs one notice, keeps its 64 KiB pipes, stops trying, and
    every byte still arrives. At fs.pipe-max-size the same worker has its
    pipes enlarged: the refusal comes from the kernel's limit."""
    with open("/proc/sys/fs/pipe-max-size") as f:
        size = int(f.read()) * (2 if over_max else 1)
    if size > 64 * MIB or size < 128 * 1024:
        pytest.skip("fs.pipe-max-size is outside the directive's range")
    B = backend(_pusher(16 * MIB))
    L = port()
    r = relay(SIZED, B=B.port, L=L,
              PS="proxy_splice_pipe_size %dk;" % (size // 1024),
              main_extra="worker_processes 1;\nuser nobody;")
    w = _worker(r)
    socks = []
    try:
        for _ in range(2):
            socks.append(_small_reader(L))
        B.wait_conns(2)
        util.wait_for(lambda: _stalled_sessions(L, B.port) == 2,
                      "bytes held at the proxy for both clients")
        sizes = _pipe_sizes(w)
        big = [v for v in sizes.values() if v > 65536]
        got = [util.recv_all(s) for s in socks]
    finally:
        for s in socks:
            s.close()
    assert sorted(got) == sorted(c["data"] for c in B.conns)
    refused = r.error_text().count(
        "fcntl(F_SETPIPE_SZ, %d) failed (1: Operation not permitted), "
        "pipes keep their size" % size)
    if over_max:
        assert refused == 1 and not big, (refused, sizes)
    else:
        assert refused == 0 and big == [size, size], (refused, sizes)


@pytest.mark.parametrize("value", ["32k", "65m", "1x", "-1"])
def test_bad_proxy_splice_pipe_size_is_refused_with_file_line(
        snirelay_bin, workdir, value):
    rc, err, path = util.config_test(
        snirelay_bin, workdir,
        "error_log stderr;\nevents {}\nstream {\nserver {\nlisten 127.0.0.1:1;\n"
        "proxy_splice_pipe_size %s;\nproxy_pass 127.0.0.1:2;\n}\n}\n" % value)
    assert rc == 1, err
    assert "\"proxy_splice_pipe_size\"" in err and ("in %s:6" % path) in err, err


def test_idle_sessions_hold_no_pipe(relay, backend, port):
    """Ten sessions each move 1 MiB both ways, then stay open and idle: the
    worker holds the pool's few pipes, not one or two per session."""
    B = backend(util.echo())
    L = port()
    r = relay(PLAIN, B=B.port, L=L)
    w = _worker(r)
    socks = []
    try:
        for i in range(10):
            s = util.connect(L)
            socks.append(s)
            payload = os.urandom(MIB)
            t = threading.Thread(target=s.sendall, args=(payload,), daemon=True)
            t.start()
            assert util.recv_exact(s, len(payload)) == payload
            t.join(util.DEADLINE)
        # Every byte is delivered; the sessions are idle and still open.
        assert B.accepted == 10
        assert 1 <= len(_pipes(w)) <= 2, _pipes(w)
    finally:
        for s in socks:
            s.close()
    r.wait_access(10)


def test_a_pipe_left_holding_bytes_is_closed_never_reused(relay, backend, port):
    """A session ends (client reset) while its pipe holds bytes the client
    never read: that pipe is closed. Sessions after it get their own bytes
    only; a pipe given back with bytes in it would hand them to the next
    session that takes it from the pool."""
    B = backend(_pusher(16 * MIB), name="pusher")
    E = backend(util.echo(), name="echo")
    L, L2 = port(), port()
    r = relay(r"""
    server {
        listen 127.0.0.1:@L@;
        proxy_timeout 60s;
        proxy_pass 127.0.0.1:@B@;
    }
    server {
        listen 127.0.0.1:@L2@;
        proxy_timeout 60s;
        proxy_pass 127.0.0.1:@E@;
    }
    """, B=B.port, E=E.port, L=L, L2=L2)
    w = _worker(r)
    s = _small_reader(L)
    util.wait_for(lambda: _proxy_stalled(L, B.port), "bytes held at the proxy")
    util.wait_for(lambda: _pipes(w), "a pipe holding the stalled bytes")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()  # RST: the session ends with bytes in its pipe
    r.wait_access(1)
    for _ in range(5):
        c = util.connect(L2)
        try:
            payload = os.urandom(256 * 1024)
            t = threading.Thread(target=c.sendall, args=(payload,), daemon=True)
            t.start()
            got = util.recv_exact(c, len(payload))
            t.join(util.DEADLINE)
        finally:
            c.close()
        assert sha(got) == sha(payload)
    r.wait_access(6)


def test_pipe2_failing_falls_back_to_the_copy_and_says_so(relay, backend, port):
    """With no descriptor left for a pipe (EMFILE), the session is relayed
    by copy, whole, and the error log says why; it does not fail."""
    B = backend(util.echo())
    L = port()
    r = relay(PLAIN, B=B.port, L=L)
    w = _worker(r)
    # Its descriptor budget is reckoned at start: lower the limit after.
    util.wait_for(lambda: _serving(w, L), "the worker to serve")
    soft, hard = resource.prlimit(w, resource.RLIMIT_NOFILE)
    # Three free descriptor numbers: the session's two sockets and the
    # accept loop's next try (accept4() wants a free one even when nobody
    # waits), none for a pipe's two ends.
    used = {int(n) for n in os.listdir("/proc/%d/fd" % w)}
    limit, free = 0, 0
    while free < 3:
        free += limit not in used
        limit += 1
    resource.prlimit(w, resource.RLIMIT_NOFILE, (limit, hard))
    s = util.connect(L)
    try:
        payload = os.urandom(4 * MIB)
        t = threading.Thread(target=s.sendall, args=(payload,), daemon=True)
        t.start()
        got = util.recv_exact(s, len(payload))
        t.join(util.DEADLINE)
    finally:
        s.close()
    assert sha(got) == sha(payload)
    r.wait_error(r"\[warn\] .*pipe2\(\) failed \(24: Too many open files\), "
                 r"relaying by copy while proxying connection")
    f = util.parse_line(r.wait_access(1)[0])
    assert f["bytes_sent"] == f["bytes_received"] == str(len(payload))
    assert not _pipes(w)
    resource.prlimit(w, resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.parametrize("proxy_splice", ["on", "off"])
def test_open_files_limit_leaving_no_room_for_pipes_is_said_at_start(
        relay, backend, port, proxy_splice):
    """worker_rlimit_nofile leaves the sessions every descriptor: with
    proxy_splice on the worker says it relays by copy; off, pipes are not
    wanted and nothing is said. Either way bytes go through."""
    B = backend(util.echo())
    L = port()
    r = relay(PLAIN, main_extra="worker_rlimit_nofile 64;", B=B.port, L=L)
    c = util.connect(L)
    try:
        assert util.echo_roundtrip(c, b"x" * 100000) == b"x" * 100000
    finally:
        c.close()
    r.wait_access(1)
    said = "no descriptors left for splice() pipes" in r.error_text()
    assert said == (proxy_splice == "on"), r.error_text()


@pytest.mark.parametrize("proxy_splice", ["on", "off"])
def test_urgent_data_neither_stalls_nor_spins_the_relay(relay, backend, port,
                                                       proxy_splice):
    """TCP urgent data that arrives before the reader reaches its mark
    stops splice() there (EAGAIN while epoll says readable); the relay then
    reads past it with recv(), as the copy does, so bytes go on and the
    worker does not spin. The worker is stopped while the client sends, so
    the urgent byte is queued before the relay reads (otherwise the kernel
    skips it and neither path sees it). The first 64 KiB fill the relay's
    buffer, so with proxy_splice on the direction splices from then on."""
    got = []
    first = threading.Event()
    done = threading.Event()
    start = b"s" * 65536

    def handler(conn, info):
        n = 0
        while n < len(start) + 2000:
            b = conn.recv(65536)
            if not b:
                break
            got.append(b)
            n += len(b)
            if n >= len(start):
                first.set()
        done.set()
        util.recv_all(conn)

    B = backend(handler)
    L = port()
    r = relay(PLAIN, B=B.port, L=L)
    w = _worker(r)
    s = util.connect(L)
    try:
        s.sendall(start)
        assert first.wait(util.DEADLINE)  # the relay runs
        os.kill(w, signal.SIGSTOP)
        try:
            s.sendall(b"a" * 1000)
            s.send(b"!", socket.MSG_OOB)
            s.sendall(b"b" * 1000)
        finally:
            os.kill(w, signal.SIGCONT)
        assert done.wait(util.DEADLINE), "bytes after the urgent mark never came"
        ticks0 = util.cpu_ticks(w)
        rd, _, _ = select.select([s], [], [], 1.0)  # a second with nothing to do
        assert not rd
        ticks = util.cpu_ticks(w) - ticks0
    finally:
        s.close()
    # recv() without SO_OOBINLINE leaves the urgent byte out, on both paths.
    assert b"".join(got) == start + b"a" * 1000 + b"b" * 1000
    assert bool(_pipes(w)) == (proxy_splice == "on"), _pipes(w)
    assert ticks < 20, "the worker used %d ticks in an idle second" % ticks
    r.wait_access(1)


def test_bad_proxy_splice_value_is_refused_with_nginx_message(snirelay_bin, workdir):
    conf = os.path.join(workdir, "t.conf")
    with open(conf, "w") as f:
        f.write("error_log stderr;\nevents {}\nstream {\nproxy_splice maybe;\n}\n")
    p = subprocess.run([snirelay_bin, "-t", "-c", conf], capture_output=True,
                       text=True, timeout=util.DEADLINE)
    assert p.returncode == 1
    assert ('invalid value "maybe" in "proxy_splice" directive, it must be '
            '"on" or "off" in %s:4' % conf) in p.stderr

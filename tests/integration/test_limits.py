"""Connection limits: worker_connections (a full worker stops accepting and
the extra clients wait in the backlog), EMFILE (worker_rlimit_nofile), and
limit_conn / limit_conn_zone shared by all workers.  While a worker waits it
must not spin: its CPU time is measured from /proc/PID/stat."""

import os
import select
import signal
import subprocess
import socket
import time

import pytest

import util

FIELDS = ["pid", "status", "remote_addr", "upstream_addr", "bytes_received", "bytes_sent"]
FMT = "|".join("$" + f for f in FIELDS)

# A spinning worker burns ~100 ticks a second; an idle one next to nothing.
MAX_IDLE_TICKS = 20

CONF = r"""
    server {
        listen 127.0.0.1:@L@@OPT@;
        proxy_timeout 30s;
        proxy_pass 127.0.0.1:@B@;
    }
"""


def _lines(m):
    return [util.parse_line(l, FIELDS) for l in m.access_lines()]


class Clients:
    """Many client sockets, each sends one line and expects it echoed."""

    def __init__(self, L, n, host="127.0.0.1"):
        self.socks = []
        self.msg = []
        self.got = []
        self.eof = []
        for i in range(n):
            s = socket.socket()
            if host != "127.0.0.1":
                s.bind((host, 0))
            s.settimeout(10)
            s.connect(("127.0.0.1", L))        # the kernel's backlog accepts it
            msg = b"client %d\n" % i
            s.sendall(msg)
            s.setblocking(False)
            self.socks.append(s)
            self.msg.append(msg)
            self.got.append(b"")
            self.eof.append(False)

    def poll(self):
        """Read what has arrived; return the indexes of served clients."""
        live = [s for i, s in enumerate(self.socks) if s is not None and not self.eof[i]]
        if live:
            r, _, _ = select.select(live, [], [], 0)
            for s in r:
                i = self.socks.index(s)
                try:
                    b = s.recv(4096)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    b = b""
                if not b:
                    self.eof[i] = True
                self.got[i] += b
        return self.served()

    def served(self):
        return [i for i in range(len(self.socks)) if self.got[i] == self.msg[i]]

    def broken(self):
        """Clients closed or answered wrongly before being served."""
        return [i for i in range(len(self.socks))
                if (self.eof[i] and self.got[i] != self.msg[i]) or
                not self.msg[i].startswith(self.got[i])]

    def close(self, idx):
        for i in idx:
            if self.socks[i] is not None:
                self.socks[i].close()
                self.socks[i] = None

    def close_all(self):
        self.close(range(len(self.socks)))


def _idle_ticks(pids, cond, what, seconds=1.0):
    """CPU ticks `pids` use while we wait `seconds` for cond(), which must
    stay false (the test fails if it becomes true)."""
    t0 = sum(util.cpu_ticks(p) for p in pids)
    with pytest.raises(util.WaitTimeout):
        util.wait_for(cond, what, timeout=seconds)
    return sum(util.cpu_ticks(p) for p in pids) - t0


def test_worker_connections_full_worker_stops_accepting_without_spinning(
        master, backend, port):
    B = backend(util.echo())
    L = port()
    m = master(CONF, log_format=FMT, events="worker_connections 4;",
               main_extra="worker_processes 1;", L=L, B=B.port, OPT="")
    (w,) = m.wait_workers(1)
    held = []
    for i in range(2):                       # 4 connections = 2 sessions
        s = util.connect(L, timeout=10)
        assert util.echo_roundtrip(s, b"held %d\n" % i) == b"held %d\n" % i
        held.append(s)
    extra = Clients(L, 2)
    m.wait_error(r"\[warn\] .*worker_connections are not enough")
    ticks = _idle_ticks([w], lambda: extra.poll() or extra.broken(),
                        "an extra client to be served or closed")
    assert ticks < MAX_IDLE_TICKS, "the full worker used %d ticks in 1 s" % ticks
    assert extra.served() == [] and extra.broken() == []
    assert B.accepted == 2
    # The sessions it holds are unaffected.
    for i, s in enumerate(held):
        assert util.echo_roundtrip(s, b"again %d\n" % i) == b"again %d\n" % i
    # Each session that ends lets one waiting client in, in arrival order.
    held[0].close()
    util.wait_for(lambda: extra.poll() == [0], "the first waiting client to be served")
    assert extra.poll() == [0]
    held[1].close()
    util.wait_for(lambda: extra.poll() == [0, 1], "the second waiting client")
    assert extra.broken() == []
    extra.close_all()
    m.wait_access(4)
    assert [l["status"] for l in _lines(m)] == ["200"] * 4


EMFILE_LINE = r"\[crit\] \d+#\d+: accept4\(\) failed \(24: Too many open files\)"
FULL_LINE = r"\[warn\] \d+#\d+: .*not accepting until sessions end"


@pytest.mark.parametrize("nofile", [64, 63])
def test_out_of_descriptors_clients_wait_in_backlog(master, backend, port, nofile):
    """Out of descriptors, a worker stops accepting like at worker_connections:
    the extra clients wait and are served as sessions end, none is failed
    (a [crit] accept4() EMFILE line, if any, is rate-limited).  Both parities
    of the descriptor budget: with an odd one an accept could take the last
    descriptor and leave none for the upstream socket."""
    B = backend(util.echo())
    L = port()
    m = master(CONF, log_format=FMT, main_extra="worker_processes 1;\n"
               "worker_rlimit_nofile %d;" % nofile, L=L, B=B.port, OPT="",
               allow_log=[EMFILE_LINE])
    (w,) = m.wait_workers(1)
    t_start = time.monotonic()
    c = Clients(L, 100)
    # At its limit the worker either met EMFILE in accept4() or stopped
    # accepting before it (capping its sessions by the descriptor budget).
    util.wait_for(lambda: m.count_errors(EMFILE_LINE) or m.count_errors(FULL_LINE) or
                  (c.poll() and c.broken()), "the worker to reach its descriptor limit")
    assert c.broken() == [], "%d clients closed unserved; error log:\n%s" % (
        len(c.broken()), "\n".join(m.error_text().splitlines()[:6]))
    ticks = _idle_ticks([w], lambda: c.poll() and c.broken(),
                        "a client to be closed unserved")
    assert ticks < MAX_IDLE_TICKS, "the worker out of descriptors used %d ticks in 1 s" \
        % ticks
    first = len(c.poll())
    assert first == B.accepted
    assert 10 <= first < 32, "%d sessions with %d descriptors?" % (first, nofile)
    # Served sessions still relay.
    for i in c.served()[:3]:
        c.socks[i].setblocking(True)
        assert util.echo_roundtrip(c.socks[i], b"more\n") == b"more\n"
        c.got[i] = c.msg[i]
        c.socks[i].setblocking(False)
    # Ending sessions lets the waiting clients in, wave after wave.
    done = set()
    while len(done) < 100:
        now = set(c.poll()) - done
        assert c.broken() == [], "clients closed unserved: %s" % c.broken()[:10]
        if now:
            c.close(now)
            done |= now
            continue
        util.wait_for(lambda: set(c.poll()) - done or c.broken(),
                      "more clients to be served (%d of 100 so far)" % len(done))
    elapsed = time.monotonic() - t_start
    m.wait_access(100)
    assert [l["status"] for l in _lines(m)] == ["200"] * 100
    crit = m.count_errors(EMFILE_LINE)
    assert crit <= 2 + elapsed, "%d EMFILE lines in %.1fs: not rate-limited" % (crit, elapsed)


# --------------------------------------------------------------------------
# limit_conn


LIMIT_CONF = r"""
    limit_conn_zone $binary_remote_addr zone=perip:64k;
    server {
        listen 127.0.0.1:@L@@OPT@;
        limit_conn perip @N@;
        proxy_timeout 30s;
        proxy_pass 127.0.0.1:@B@;
    }
"""


def _try(L, host="127.0.0.1", msg=b"hi\n"):
    """One session attempt: the socket when echoed (still open), None when closed."""
    s = socket.socket()
    s.bind((host, 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", L))
    try:
        s.sendall(msg)
        got = util.recv_all(s, len(msg))
    except (ConnectionResetError, BrokenPipeError):
        got = b""
    if got == msg:
        return s
    assert got == b"", got
    s.close()
    return None


def test_limit_conn_is_shared_by_all_workers(master, backend, port):
    B = backend(util.echo())
    L = port()
    m = master(LIMIT_CONF, log_format=FMT, main_extra="worker_processes 2;",
               L=L, B=B.port, OPT=" reuseport", N=1)
    ws = m.wait_workers(2)
    s1 = _try(L)
    assert s1 is not None
    owner = util.owner_of(s1, L, ws)
    assert owner in ws
    # Over the limit on whichever worker the kernel picks: 20 tries reach
    # the other worker too (all missing it: 2^-20).
    for i in range(20):
        assert _try(L) is None, "attempt %d got through the limit" % i
    m.wait_access(20)
    lines = _lines(m)
    assert [l["status"] for l in lines] == ["503"] * 20
    assert {int(l["pid"]) for l in lines} == set(ws), \
        "rejections did not come from both workers: %s" % lines
    assert all(util.empty(l["upstream_addr"]) for l in lines)
    assert B.accepted == 1
    assert m.count_errors(r'\[error\] .*limiting connections by zone "perip"') == 20
    # Another address has its own count.
    s2 = _try(L, host="127.0.0.2")
    assert s2 is not None
    # When the session ends, a new one is allowed again.
    s1.close()
    m.wait_access(21)
    s3 = _try(L)
    assert s3 is not None
    s2.close()
    s3.close()
    m.wait_access(23)
    assert [l["status"] for l in _lines(m)[20:]] == ["200"] * 3


def test_limit_conn_allows_n_and_rejects_the_next(master, backend, port):
    B = backend(util.echo())
    L = port()
    m = master(LIMIT_CONF, log_format=FMT, main_extra="worker_processes 2;",
               L=L, B=B.port, OPT=" reuseport", N=3)
    m.wait_workers(2)
    held = [_try(L) for _ in range(3)]
    assert all(held)
    assert _try(L) is None
    assert _try(L) is None
    for s in held:
        assert util.echo_roundtrip(s, b"ok\n") == b"ok\n"
        s.close()
    m.wait_access(5)
    st = sorted(l["status"] for l in _lines(m))
    assert st == ["200", "200", "200", "503", "503"]


def test_limit_conn_at_stream_level_is_inherited(master, backend, port):
    B = backend(util.echo())
    L = port()
    conf = LIMIT_CONF.replace("        limit_conn perip @N@;\n", "").replace(
        "    server {", "    limit_conn perip 1;\n    server {")
    m = master(conf, log_format=FMT, L=L, B=B.port, OPT="")
    m.wait_workers(1)
    s = _try(L)
    assert s is not None
    assert _try(L) is None
    s.close()
    m.wait_access(2)
    assert sorted(l["status"] for l in _lines(m)) == ["200", "503"]


def test_limit_conn_does_not_count_an_empty_key(master, backend, port):
    B = backend(util.echo())
    L = port()
    # No PROXY protocol on this listener: $proxy_protocol_addr is empty.
    conf = LIMIT_CONF.replace("$binary_remote_addr", "$proxy_protocol_addr")
    m = master(conf, log_format=FMT, L=L, B=B.port, OPT="", N=1)
    m.wait_workers(1)
    held = [_try(L) for _ in range(4)]
    assert all(held), "sessions with an empty key were limited"
    for s in held:
        s.close()
    m.wait_access(4)
    assert [l["status"] for l in _lines(m)] == ["200"] * 4
    assert "limiting connections" not in m.error_text()


def test_limit_conn_status_variable(master, backend, port):
    """$limit_conn_status (nginx 1.17.6): PASSED, REJECTED, and no value
    when no key was counted (no limit_conn, or an empty key)."""
    B = backend(util.echo())
    L, L2 = port(), port()
    conf = LIMIT_CONF + r"""
    server {
        listen 127.0.0.1:@L2@;
        proxy_pass 127.0.0.1:@B@;
    }
"""
    m = master(conf, log_format="$server_port|$status|$limit_conn_status",
               L=L, L2=L2, B=B.port, OPT="", N=1)
    m.wait_workers(1)
    s = _try(L)
    assert s is not None
    assert _try(L) is None
    m.wait_access(1)
    s.close()
    s = _try(L2)
    assert s is not None
    s.close()
    m.wait_access(3)
    assert sorted(m.access_lines()) == sorted([
        "%d|503|REJECTED" % L, "%d|200|PASSED" % L, "%d|200|-" % L2])


def test_limit_conn_count_survives_reload(master, backend, port):
    B = backend(util.echo())
    L = port()
    m = master(LIMIT_CONF, log_format=FMT, L=L, B=B.port, OPT="", N=1)
    m.wait_workers(1)
    s1 = _try(L)
    assert s1 is not None
    m.reload()
    # The session on the old worker still counts in the new generation.
    assert _try(L) is None
    s1.close()
    m.wait_access(2)
    s2 = _try(L)
    assert s2 is not None
    s2.close()
    m.wait_access(3)
    assert [l["status"] for l in _lines(m)] == ["503", "200", "200"]


# --------------------------------------------------------------------------
# limit_conn across worker deaths (shared memory that survives a kill -9)


def test_limit_conn_count_of_a_killed_worker_is_given_back(master, backend,
                                                           port):
    B = backend(util.echo())
    L = port()
    m = master(LIMIT_CONF, log_format=FMT, L=L, B=B.port, OPT="", N=1,
               allow_log=[r"exited on signal 9"])
    (w,) = m.wait_workers(1)
    s1 = _try(L)
    assert s1 is not None
    assert _try(L) is None            # the count is held
    os.kill(w, signal.SIGKILL)
    m.wait_workers(1, exclude=[w])
    m.wait_error(r"gave back 1 limit_conn count\(s\) held by worker process %d"
                 % w)
    # The dead worker's session no longer counts: the address is served.
    s2 = _try(L)
    assert s2 is not None, "the dead worker's count was never given back"
    assert _try(L) is None            # and counting goes on as before
    s1.close()
    s2.close()


def test_limit_conn_survives_a_refused_reload_then_a_crash(master, backend,
                                                           port):
    """Refused reloads (too many generations draining) must not unmap the
    live zone: a worker started after them still counts (no SIGSEGV)."""
    B = backend(util.echo())
    L = port()
    m = master(LIMIT_CONF, log_format=FMT, L=L, B=B.port, OPT="", N=1,
               allow_log=[r"exited on signal 9", r"reload refused"])
    (w,) = m.wait_workers(1)
    held = []
    # Each generation keeps one session open, so none finishes draining.
    # The next session is opened once the old worker has stopped accepting,
    # or it could land there and leave a generation with none.
    for i in range(16):
        s = _try(L, host="127.0.%d.1" % (i + 1))
        assert s is not None
        held.append(s)
        old = w
        (w,) = m.reload()
        util.wait_for(lambda: m.count_errors(r"%d#0: gracefully shutting down" % old),
                      "worker %d to stop accepting" % old)
    s = _try(L, host="127.0.17.1")
    assert s is not None
    held.append(s)
    m.send_signal(signal.SIGHUP)
    util.wait_for(lambda: m.count_errors(r"reload refused") >= 1,
                  "a reload refused for too many generations")
    seen = set(m.workers()) | set(m.seen)
    os.kill(w, signal.SIGKILL)
    (w2,) = m.wait_workers(1, exclude=seen)
    s = _try(L, host="127.0.99.1")
    assert s is not None, "a new worker could not serve after the refused reload"
    assert _try(L, host="127.0.99.1") is None   # the zone still counts
    assert util.pid_alive(w2)
    assert m.count_errors(r"exited on signal 11") == 0
    s.close()
    for h in held:
        h.close()


def test_limit_conn_log_level(master, backend, port):
    B = backend(util.echo())
    L = port()
    conf = LIMIT_CONF.replace("        limit_conn perip @N@;\n",
                              "        limit_conn perip @N@;\n"
                              "        limit_conn_log_level warn;\n")
    m = master(conf, log_format=FMT, L=L, B=B.port, OPT="", N=1,
               main_extra="error_log @D@/warn.log warn;", D=".")
    m.wait_workers(1)
    s = _try(L)
    assert s is not None
    assert _try(L) is None
    m.wait_error(r'\[warn\] .*limiting connections by zone "perip"')
    assert m.count_errors(r'\[error\] .*limiting connections') == 0
    s.close()


def test_limit_conn_log_level_values(master, backend, port, snirelay_bin,
                                     workdir):
    path = os.path.join(workdir, "lvl.conf")
    with open(path, "w") as f:
        f.write("events { }\nstream {\n    limit_conn_log_level crit;\n}\n")
    p = subprocess.run([snirelay_bin, "-t", "-c", path], capture_output=True,
                       timeout=util.DEADLINE)
    assert p.returncode == 1
    assert ('invalid value "crit" in "limit_conn_log_level" directive, it must '
            'be "info", "notice", "warn" or "error" in %s:3' % path
            ) in p.stderr.decode()


def test_limit_conn_full_zone_refuses_new_keys_and_says_so_once(
        master, backend, port):
    B = backend(util.echo())
    L = port()
    conf = LIMIT_CONF.replace("zone=perip:64k", "zone=perip:4k")
    m = master(conf, log_format=FMT, L=L, B=B.port, OPT="", N=5,
               allow_log=[r'limit_conn zone "perip" is full'])
    m.wait_workers(1)
    held, refused = [], 0
    for i in range(400):
        s = _try(L, host="127.1.%d.%d" % (i // 200, i % 200 + 1))
        if s is None:
            refused += 1
        else:
            held.append(s)
    assert refused > 0 and len(held) > 150, (refused, len(held))
    assert m.count_errors(r'limit_conn zone "perip" is full') == 1
    for s in held:
        s.close()
    # Once given back, the room is there again (no tombstones left).
    m.wait_access(400)
    again = [_try(L, host="127.2.0.%d" % (i + 1)) for i in range(100)]
    assert all(again)
    for s in again:
        s.close()


@pytest.mark.parametrize("dry", ["on", "off"])
def test_limit_conn_dry_run(master, backend, port, dry):
    """limit_conn_dry_run on: over the limit is logged ("dry run") and let
    through, $limit_conn_status REJECTED_DRY_RUN; off: refused (503)."""
    B = backend(util.echo())
    L = port()
    conf = LIMIT_CONF.replace("        limit_conn perip @N@;\n",
                              "        limit_conn perip @N@;\n"
                              "        limit_conn_dry_run @DRY@;\n")
    m = master(conf, log_format="$status|$limit_conn_status", L=L, B=B.port,
               OPT="", N=1, DRY=dry)
    m.wait_workers(1)
    s1 = _try(L)
    assert s1 is not None
    s2 = _try(L)
    if dry == "on":
        assert s2 is not None, "dry run refused a session"
        m.wait_error(r'\[error\] .*limiting connections, dry run, by zone '
                     r'"perip"')
        s2.close()
        m.wait_access(1)
        assert m.access_lines()[0] == "200|REJECTED_DRY_RUN"
    else:
        assert s2 is None
        m.wait_access(1)
        assert m.access_lines()[0] == "503|REJECTED"
        assert "dry run" not in m.error_text()
    s1.close()

"""Master and worker processes: worker_processes, the pid file, reuseport,
a killed worker is replaced, QUIT (graceful) and TERM/INT (fast) stop, USR1
log reopening, -s quit|stop|reopen, daemon on.

Every test runs the real binary; workers are found as the master's children
(/proc/PID/task/*/children) and the `master` fixture checks at teardown that
none of them outlived the master.
"""

import os
import signal
import subprocess
import time

import pytest

import util

# $pid is the worker that served the session.
FIELDS = ["pid", "status", "remote_addr", "upstream_addr", "bytes_received", "bytes_sent"]
FMT = "|".join("$" + f for f in FIELDS)

ECHO_CONF = r"""
    server {
        listen 127.0.0.1:@L@@OPT@;
        proxy_timeout 30s;
        proxy_pass 127.0.0.1:@B@;
    }
"""


def _lines(m, path=None):
    return [util.parse_line(l, FIELDS) for l in m.access_lines(path)]


def _start(master, backend, port, workers=1, opt="", main_extra="", **kw):
    B = backend(util.echo(), name="echo")
    L = port()
    m = master(ECHO_CONF, log_format=FMT, L=L, B=B.port, OPT=opt,
               main_extra="worker_processes %s;\n%s" % (workers, main_extra), **kw)
    return m, L, B


def _session(L, payload=b"hello\n", host="127.0.0.1"):
    s = util.connect(L, host=host, timeout=10)
    try:
        assert util.echo_roundtrip(s, payload) == payload
    finally:
        s.close()


def _pid_file(m):
    util.wait_for(lambda: os.path.exists(m.pid_file), "the pid file")
    with open(m.pid_file) as f:
        return f.read()


def test_master_writes_pid_file_and_forks_n_workers(master, backend, port):
    m, L, _ = _start(master, backend, port, workers=3)
    ws = m.wait_workers(3)
    assert _pid_file(m) == "%d\n" % m.pid
    for w in ws:
        assert util.parent_pid(w) == m.pid
        assert "start worker process %d" % w in m.error_text()
    # Sessions are served by the workers, not by the master.
    for _ in range(6):
        _session(L)
    m.wait_access(6)
    lines = _lines(m)
    assert len(lines) == 6
    assert {l["status"] for l in lines} == {"200"}
    assert {int(l["pid"]) for l in lines} <= set(ws), (lines, ws)


def test_worker_processes_defaults_to_one(master, backend, port):
    B = backend(util.echo())
    L = port()
    m = master(ECHO_CONF, log_format=FMT, L=L, B=B.port, OPT="")
    (w,) = m.wait_workers(1)
    _session(L)
    m.wait_access(1)
    assert int(_lines(m)[0]["pid"]) == w


def test_worker_processes_auto_starts_one_per_cpu(master, backend, port):
    m, L, _ = _start(master, backend, port, workers="auto")
    n = min(os.sysconf("SC_NPROCESSORS_ONLN"), 256)    # as the master counts
    ws = m.wait_workers(n)
    assert len(ws) == n
    _session(L)


def _listen_inodes_of(pids, L):
    """{pid: the listening socket inodes of port L that pid holds}."""
    listening = set(util.listen_inodes(L))
    return {p: util.socket_inodes(p) & listening for p in pids}


def test_reuseport_gives_each_worker_its_own_socket_and_spreads_sessions(
        master, backend, port):
    m, L, _ = _start(master, backend, port, workers=2, opt=" reuseport")
    ws = m.wait_workers(2)
    util.wait_for(lambda: len(util.listen_inodes(L)) == 2, "two sockets listening")
    held = _listen_inodes_of(ws, L)
    assert all(len(v) == 1 for v in held.values()), held
    assert held[ws[0]] != held[ws[1]], held
    for i in range(40):
        _session(L, b"s%d\n" % i)
    m.wait_access(40)
    lines = _lines(m)
    assert len(lines) == 40
    assert {l["status"] for l in lines} == {"200"}
    pids = [int(l["pid"]) for l in lines]
    assert set(pids) == set(ws), "sessions per worker: %s" % {
        w: pids.count(w) for w in ws}


def test_without_reuseport_workers_share_one_socket(master, backend, port):
    m, L, _ = _start(master, backend, port, workers=2)
    ws = m.wait_workers(2)
    assert len(util.listen_inodes(L)) == 1
    held = _listen_inodes_of(ws, L)
    assert held[ws[0]] == held[ws[1]] == set(util.listen_inodes(L)), held
    for i in range(10):
        _session(L, b"s%d\n" % i)
    m.wait_access(10)
    lines = _lines(m)
    assert {l["status"] for l in lines} == {"200"}
    assert {int(l["pid"]) for l in lines} <= set(ws)


def test_sigkill_worker_is_logged_and_replaced(master, backend, port):
    m, L, _ = _start(master, backend, port, workers=2,
                     allow_log=[r"\[alert\] .*worker process \d+ exited on signal 9"])
    ws = m.wait_workers(2)
    # An old enough worker is replaced at once (a young one waits 1 s).
    util.wait_for(lambda: util.start_age(ws[0]) > 1.2, "worker to be older than 1 s")
    os.kill(ws[0], signal.SIGKILL)
    m.wait_error(r"worker process %d exited on signal 9" % ws[0])
    new = m.wait_workers(1, exclude=ws)
    assert ws[1] in m.workers()
    assert sorted(m.workers()) == sorted([ws[1]] + new)
    assert util.parent_pid(new[0]) == m.pid
    for i in range(10):
        _session(L, b"after %d\n" % i)
    m.wait_access(10)
    lines = _lines(m)
    assert {l["status"] for l in lines} == {"200"}
    assert ws[0] not in {int(l["pid"]) for l in lines}


def test_worker_dying_young_is_replaced_after_a_second(master, backend, port):
    m, L, _ = _start(master, backend, port, workers=1,
                     allow_log=[r"\[alert\] .*worker process \d+ exited on signal 9"])
    (w,) = m.wait_workers(1)
    age = util.start_age(w)
    killed = time.monotonic()
    os.kill(w, signal.SIGKILL)
    assert age < 0.8, "the worker was already %.2fs old: cannot test a young death" % age
    m.wait_error(r"worker process %d exited on signal 9" % w)
    (new,) = m.wait_workers(1, exclude=[w], timeout=10)
    waited = time.monotonic() - killed
    assert waited >= 0.8, "a worker that died %.2fs after its start was replaced " \
        "after %.2fs, not after 1 s" % (age, waited)
    _session(L)
    m.wait_access(1)
    assert int(_lines(m)[0]["pid"]) == new


def test_quit_lets_an_open_session_finish_then_exits_0(master, backend, port):
    m, L, B = _start(master, backend, port, workers=2)
    ws = m.wait_workers(2)
    s = util.connect(L, timeout=10)
    assert util.echo_roundtrip(s, b"before\n") == b"before\n"
    holder = util.owner_of(s, L, ws)
    assert holder in ws
    m.expect_exit = True
    m.send_signal(signal.SIGQUIT)
    util.wait_for(lambda: m.count_errors("gracefully shutting down") == 2,
                  "both workers to log 'gracefully shutting down'")
    # The worker without a session is gone; the one holding it keeps relaying.
    util.wait_for(lambda: m.workers() == [holder], "the idle worker to exit")
    for i in range(5):
        msg = b"after quit %d\n" % i * 100
        assert util.echo_roundtrip(s, msg) == msg
    assert m.proc.poll() is None, "the master exited while a session was open"
    assert len(m.workers()) == 1
    s.close()
    rc = m.proc.wait(util.DEADLINE)
    assert rc == 0
    assert m.stop_all() == 0
    log = m.error_text()
    assert log.rstrip().endswith("exit"), log[-500:]
    lines = _lines(m)
    assert len(lines) == 1 and lines[0]["status"] == "200"
    assert int(lines[0]["bytes_received"]) == len(b"before\n") + sum(
        len(b"after quit %d\n" % i * 100) for i in range(5))
    assert not util.port_listening(L)
    assert not os.path.exists(m.pid_file)
    assert B.accepted == 1 and B.conns[0]["done"].wait(util.DEADLINE)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_fast_stop_does_not_wait_for_open_sessions(master, backend, port, sig):
    m, L, _ = _start(master, backend, port, workers=2)
    m.wait_workers(2)
    socks = []
    for i in range(4):
        s = util.connect(L, timeout=10)
        assert util.echo_roundtrip(s, b"x%d\n" % i) == b"x%d\n" % i
        socks.append(s)
    t0 = time.monotonic()
    m.expect_exit = True
    m.send_signal(sig)
    rc = m.proc.wait(util.DEADLINE)
    took = time.monotonic() - t0
    assert rc == 0
    assert took < 3.0, "fast stop took %.2fs with sessions open" % took
    for s in socks:
        assert util.wait_closed(s, 5) == b""
        s.close()
    assert m.stop_all() == 0
    assert not util.port_listening(L)


def test_usr1_reopens_access_log_in_every_worker(master, backend, port):
    m, L, _ = _start(master, backend, port, workers=2, opt=" reuseport")
    ws = m.wait_workers(2)

    def sessions_until_both(path):
        for i in range(200):
            _session(L, b"r%d\n" % i)
            if i % 10 == 9:
                m.wait_access(i + 1, path)
                pids = {int(util.parse_line(l, FIELDS)["pid"])
                        for l in m.access_lines(path)}
                if pids == set(ws):
                    return i + 1
        raise AssertionError("200 sessions did not reach both workers")

    n_old = sessions_until_both(m.access_log)
    rotated = m.access_log + ".1"
    os.rename(m.access_log, rotated)
    m.send_signal(signal.SIGUSR1)
    m.wait_error("reopening logs")
    m.wait_reopened(m.access_log)
    # Both workers reopened: the new file collects lines from both.
    sessions_until_both(m.access_log)
    assert len(m.access_lines(rotated)) == n_old
    assert set(m.workers()) == set(ws)


def test_usr1_reopens_error_log(master, backend, port):
    m, L, _ = _start(master, backend, port, workers=1)
    (w,) = m.wait_workers(1)
    rotated = m.error_log + ".1"
    os.rename(m.error_log, rotated)
    m.send_signal(signal.SIGUSR1)
    m.wait_reopened(m.error_log, pids=[m.pid, w])
    # A reload is logged by the master and by the retiring worker.
    m.reload()
    m.wait_error("reconfiguring")
    m.wait_error("gracefully shutting down")
    with open(rotated) as f:
        assert "reconfiguring" not in f.read()


def _ctl(binary, conf, action):
    p = subprocess.run([binary, "-s", action, "-c", conf], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=util.DEADLINE)
    return p.returncode, p.stderr.decode(errors="replace")


def test_s_reopen_and_s_quit_use_the_pid_file(master, backend, port, snirelay_bin):
    m, L, _ = _start(master, backend, port, workers=2)
    m.wait_workers(2)
    _pid_file(m)
    _session(L)
    m.wait_access(1)
    os.rename(m.access_log, m.access_log + ".1")
    rc, err = _ctl(snirelay_bin, m.conf, "reopen")
    assert rc == 0, err
    m.wait_error("reopening logs")
    m.wait_reopened(m.access_log)
    s = util.connect(L, timeout=10)
    assert util.echo_roundtrip(s, b"open\n") == b"open\n"
    m.expect_exit = True
    rc, err = _ctl(snirelay_bin, m.conf, "quit")
    assert rc == 0, err
    m.wait_error("gracefully shutting down")
    assert util.echo_roundtrip(s, b"still\n") == b"still\n"
    assert m.proc.poll() is None
    s.close()
    assert m.proc.wait(util.DEADLINE) == 0
    assert m.stop_all() == 0
    assert len(m.access_lines()) == 1


def test_s_stop_uses_the_pid_file(master, backend, port, snirelay_bin):
    m, L, _ = _start(master, backend, port, workers=2)
    m.wait_workers(2)
    _pid_file(m)
    s = util.connect(L, timeout=10)
    assert util.echo_roundtrip(s, b"open\n") == b"open\n"
    m.expect_exit = True
    rc, err = _ctl(snirelay_bin, m.conf, "stop")
    assert rc == 0, err
    assert m.proc.wait(util.DEADLINE) == 0
    assert util.wait_closed(s, 5) == b""
    s.close()
    assert m.stop_all() == 0


def test_s_without_a_running_master_fails(master, backend, port, snirelay_bin):
    m, L, _ = _start(master, backend, port, start=False)
    rc, err = _ctl(snirelay_bin, m.conf, "reload")
    assert rc == 1
    assert m.pid_file in err


def test_daemon_on_detaches_and_s_stop_ends_it(master, backend, port, snirelay_bin):
    m, L, _ = _start(master, backend, port, workers=2, main_extra="daemon on;",
                     start=False)
    m.start(wait=False)
    assert m.proc.wait(util.DEADLINE) == 0, m.stderr()
    assert m.stop() == 0        # the foreground process is done

    def pid_text():
        try:
            with open(m.pid_file) as f:
                return f.read()
        except FileNotFoundError:
            return ""
    util.wait_for(lambda: pid_text().endswith("\n"), "the daemon's pid file")
    pid = int(pid_text())
    kids = []
    try:
        assert pid != m.proc.pid
        assert util.pid_alive(pid)
        kids = util.wait_for(lambda: len(util.child_pids(pid)) == 2 and
                             all(util.has_event_loop(k) for k in util.child_pids(pid))
                             and util.child_pids(pid), "the daemon's two workers")
        util.wait_for(lambda: util.port_listening(L), "the daemon to listen")
        _session(L)
        rc, err = _ctl(snirelay_bin, m.conf, "stop")
        assert rc == 0, err
        left = util.wait_for_gone([pid] + kids, comm=os.path.basename(snirelay_bin))
        assert not left, "still running after -s stop: %s" % left
    finally:
        util.wait_for_gone([pid] + kids, comm=os.path.basename(snirelay_bin), timeout=0)
    assert not util.port_listening(L)
    assert m.error_text().rstrip().endswith("exit")


def test_quit_stops_listening_while_sessions_finish(master, backend, port):
    """As nginx's master does on QUIT (ngx_close_listening_sockets): the
    listening socket closes at once, so a new client is refused instead of
    being queued unserved until the last session ends."""
    m, L, _ = _start(master, backend, port, workers=2)
    m.wait_workers(2)
    s = util.connect(L, timeout=10)
    assert util.echo_roundtrip(s, b"open\n") == b"open\n"
    m.expect_exit = True
    m.send_signal(signal.SIGQUIT)
    util.wait_for(lambda: m.count_errors("gracefully shutting down") == 2,
                  "both workers to log 'gracefully shutting down'")
    try:
        util.wait_for(lambda: not util.port_listening(L),
                      "port %d to stop listening after QUIT" % L, timeout=5)
        with pytest.raises(ConnectionRefusedError):
            util.connect(L, timeout=5).close()
        assert util.echo_roundtrip(s, b"still\n") == b"still\n"
    finally:
        s.close()
    assert m.proc.wait(util.DEADLINE) == 0
    assert m.stop_all() == 0


def test_quit_with_worker_shutdown_timeout_closes_sessions_after_it(
        master, backend, port):
    m, L, _ = _start(master, backend, port, workers=1,
                     main_extra="worker_shutdown_timeout 1s;")
    m.wait_workers(1)
    s = util.connect(L, timeout=10)
    assert util.echo_roundtrip(s, b"open\n") == b"open\n"
    t0 = time.monotonic()
    m.expect_exit = True
    m.send_signal(signal.SIGQUIT)
    m.wait_error("gracefully shutting down")
    try:
        assert util.wait_closed(s, 10) == b""
    finally:
        s.close()
    assert m.proc.wait(util.DEADLINE) == 0
    took = time.monotonic() - t0
    assert 0.8 <= took < 5, "exited %.2fs after QUIT with worker_shutdown_timeout 1s" % took
    assert m.stop_all() == 0


HALF_CONF = r"""
    server {
        listen 127.0.0.1:@L@;
        proxy_timeout 1m;
        proxy_pass 127.0.0.1:@B@;
    }
    server {
        listen 127.0.0.1:@H@;
        proxy_timeout 1m;
        proxy_pass 127.0.0.1:@Q@;
    }
"""


def _bye():
    """Handler: read a line, answer "bye", close."""
    def handler(conn, info):
        util.recv_all(conn, 4)
        conn.sendall(b"bye\n")
    return handler


def _half_session(H):
    """A session whose upstream has closed, all its bytes delivered, while
    the client keeps its own side open (proxy_half_close on)."""
    s = util.connect(H, timeout=10)
    s.sendall(b"hi!\n")
    assert util.recv_all(s) == b"bye\n"
    return s


@pytest.mark.parametrize("how", ["quit", "reload"])
def test_drain_does_not_wait_for_a_session_whose_upstream_closed(
        master, backend, port, how):
    B = backend(util.echo(), name="echo")
    Q = backend(_bye(), name="bye")
    L, H = port(), port()
    m = master(HALF_CONF, log_format=FMT, L=L, B=B.port, H=H, Q=Q.port)
    (w,) = m.wait_workers(1)
    live = util.connect(L, timeout=10)
    assert util.echo_roundtrip(live, b"live\n") == b"live\n"
    half = _half_session(H)
    t0 = time.monotonic()
    try:
        if how == "quit":
            m.expect_exit = True
            m.send_signal(signal.SIGQUIT)
        else:
            m.reload()
        m.wait_error("gracefully shutting down")
        # The half-closed session ends after a short linger (not after
        # proxy_timeout); the live one is still served.
        line = util.wait_for(
            lambda: [f for f in _lines(m) if f["upstream_addr"] == Q.addr],
            "the half-closed session to end", timeout=10)
        assert line[0]["status"] == "200"
        assert time.monotonic() - t0 < 5
        assert util.echo_roundtrip(live, b"still\n") == b"still\n"
        assert w in m.workers(), "the worker left while a live session was open"
    finally:
        live.close()
        half.close()
    if how == "quit":
        assert m.proc.wait(util.DEADLINE) == 0
    else:
        assert util.wait_for_gone([w], timeout=10) == []


def test_workers_exit_when_the_master_is_killed(master, backend, port):
    m, L, _ = _start(master, backend, port, workers=3)
    ws = m.wait_workers(3)
    os.kill(m.pid, signal.SIGKILL)
    m.proc.wait(util.DEADLINE)
    m.stop()
    left = util.wait_for_gone(ws, comm=os.path.basename(m.binary), timeout=10)
    assert left == [], "workers %s outlived their master" % left
    util.wait_for(lambda: not util.port_listening(L), "the port to close")

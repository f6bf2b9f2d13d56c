"""Reload (SIGHUP, -s reload): new workers take over, old ones finish their
sessions, the listening socket is kept so no connection is refused, and a
broken config leaves the old one serving.  The main test reloads under load.
"""

import hashlib
import re
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

import util

FIELDS = ["pid", "status", "remote_addr", "upstream_addr", "bytes_received", "bytes_sent"]
FMT = "|".join("$" + f for f in FIELDS)

MIB = 1024 * 1024

ALLOW_BAD_RELOAD = [r"\[emerg\] .* in .*:\d+", r"\[alert\] .*reload failed: the old "
                    r"configuration keeps serving"]

CONF = r"""
    server {
        listen 127.0.0.1:@L@@OPT@;
        proxy_timeout 30s;
        proxy_pass 127.0.0.1:@B@;
    }
"""


def named_echo(name):
    """Handler: answer the first line with `name` + the line, then echo to EOF."""
    def handler(conn, info):
        buf = b""
        while b"\n" not in buf:
            b = conn.recv(4096)
            if not b:
                return
            buf += b
        line, rest = buf.split(b"\n", 1)
        info["line"] = line
        conn.sendall(name.encode() + b" " + line + b"\n" + rest)
        while True:
            b = conn.recv(1 << 18)
            if not b:
                return
            conn.sendall(b)
    return handler


def ask(L, token, timeout=10):
    """One short session: send a line, return the answering backend's name."""
    s = util.connect(L, timeout=timeout)
    try:
        s.sendall(token + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            b = s.recv(4096)
            if not b:
                raise AssertionError("EOF before a reply (got %r)" % buf)
            buf += b
    finally:
        s.close()
    name, got = buf.rstrip(b"\n").split(b" ", 1)
    assert got == token, (got, token)
    return name.decode()


def _conf(master, **kw):
    """The text master() would write for these substitutions (same dir)."""
    return util.config_events(master.dir, util.render(CONF, **kw),
                              main_extra=master.main_extra, log_format=FMT)


def _start(master, backend, port, workers=2, opt="", main_extra="", allow_log=()):
    A = backend(named_echo("A"), name="A")
    B = backend(named_echo("B"), name="B")
    L = port()
    extra = "worker_processes %d;\n%s" % (workers, main_extra)
    m = master(CONF, log_format=FMT, main_extra=extra, L=L, B=A.port, OPT=opt,
               allow_log=allow_log)
    m.main_extra = extra
    m.wait_workers(workers)
    return m, L, A, B


def _route(m, L, target, opt=""):
    return _conf(m, L=L, B=target.port, OPT=opt)


def test_hup_starts_new_workers_keeps_the_socket_and_changes_routing(
        master, backend, port):
    m, L, A, B = _start(master, backend, port)
    old = m.workers()
    sock = util.listen_inodes(L)
    assert len(sock) == 1
    assert ask(L, b"one") == "A"
    new = m.reload(_route(m, L, B))
    assert not set(new) & set(old)
    for w in old:
        m.wait_error(r"worker process %d exited with code 0" % w)
    assert m.count_errors("gracefully shutting down") == 2
    assert sorted(m.workers()) == sorted(new)
    assert util.listen_inodes(L) == sock, "the listening socket was replaced"
    # Held by the new workers: the same socket the old ones had.
    for w in new:
        assert set(sock) <= util.socket_inodes(w)
    assert ask(L, b"two") == "B"
    assert ask(L, b"three") == "B"


def test_hup_with_broken_config_keeps_the_old_one_serving(master, backend, port):
    m, L, A, B = _start(master, backend, port, allow_log=ALLOW_BAD_RELOAD)
    old = m.workers()
    good = m.text
    bad = _route(m, L, B).replace("proxy_timeout 30s;", "proxy_timeout 30s;\n"
                                  "        no_such_directive on;")
    line = bad.splitlines().index("        no_such_directive on;") + 1
    m.write_conf(bad)
    m.send_signal(signal.SIGHUP)
    m.wait_error("reload failed: the old configuration keeps serving")
    assert re.search(r'\[emerg\] \d+#\d+: unknown directive "no_such_directive" in %s:%d$'
                     % (re.escape(m.conf), line), m.error_text(), re.M), m.error_text()
    assert sorted(m.workers()) == sorted(old)
    assert "gracefully shutting down" not in m.error_text()
    assert ask(L, b"still-old") == "A"
    # A later good reload works.
    m.reload(good.replace(str(A.port), str(B.port)))
    assert ask(L, b"now-new") == "B"


def test_reload_that_cannot_bind_a_new_port_keeps_the_old_config(master, backend, port):
    m, L, A, B = _start(master, backend, port, allow_log=ALLOW_BAD_RELOAD + [
        r"\[emerg\] .*bind\(\) to 127\.0\.0\.1:\d+ failed \(98: Address already in use\)"])
    old = m.workers()
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        text = _route(m, L, B).replace(
            "        listen 127.0.0.1:%d;" % L,
            "        listen 127.0.0.1:%d;\n        listen 127.0.0.1:%d;"
            % (L, busy.getsockname()[1]))
        m.write_conf(text)
        m.send_signal(signal.SIGHUP)
        m.wait_error("reload failed")
        assert "Address already in use" in m.error_text()
    finally:
        busy.close()
    assert sorted(m.workers()) == sorted(old)
    assert ask(L, b"x") == "A"


def test_reload_adds_and_removes_listeners_and_workers(master, backend, port):
    m, L, A, B = _start(master, backend, port, workers=2)
    L2 = port()
    text = _route(m, L2, B).replace("worker_processes 2;", "worker_processes 3;")
    new = m.reload(text, workers=3)
    assert len(new) == 3
    util.wait_for(lambda: not util.port_listening(L), "the old port to close")
    with pytest.raises(ConnectionRefusedError):
        util.connect(L, timeout=5).close()
    assert ask(L2, b"moved") == "B"
    util.wait_for(lambda: sorted(m.workers()) == sorted(new), "the old workers to exit")


def test_open_session_survives_reload_on_its_old_worker(master, backend, port):
    m, L, A, B = _start(master, backend, port)
    old = m.workers()
    s = util.connect(L, timeout=10)
    s.sendall(b"long\n")
    assert util.recv_exact(s, 7) == b"A long\n"
    holder = util.owner_of(s, L, old)
    assert holder in old
    new = m.reload(_route(m, L, B))
    other = [w for w in old if w != holder]
    m.wait_error(r"worker process %d exited with code 0" % other[0])
    assert ask(L, b"new") == "B"
    # The old worker keeps relaying its session to the old backend.
    payload = os.urandom(256 * 1024)
    assert util.echo_roundtrip(s, payload) == payload
    assert util.pid_alive(holder)
    assert "worker process %d exited" % holder not in m.error_text()
    s.close()
    m.wait_error(r"worker process %d exited with code 0" % holder)
    util.wait_for(lambda: sorted(m.workers()) == sorted(new), "only the new workers")
    assert A.accepted == 1
    lines = [util.parse_line(l, FIELDS) for l in m.wait_access(2)]
    mine = [l for l in lines if int(l["pid"]) == holder]
    assert len(mine) == 1 and mine[0]["status"] == "200"
    assert int(mine[0]["bytes_received"]) == 5 + len(payload)


def test_worker_shutdown_timeout_closes_sessions_of_old_workers(master, backend, port):
    m, L, A, B = _start(master, backend, port, workers=1,
                        main_extra="worker_shutdown_timeout 1s;")
    (old,) = m.workers()
    s = util.connect(L, timeout=10)
    s.sendall(b"held\n")
    assert util.recv_exact(s, 7) == b"A held\n"
    t0 = time.monotonic()
    m.reload(_route(m, L, B))
    m.wait_error("gracefully shutting down")
    assert util.wait_closed(s, 10) == b""
    took = time.monotonic() - t0
    s.close()
    assert 0.8 <= took < 5, "old worker closed its session after %.2fs" % took
    m.wait_error(r"worker process %d exited with code 0" % old)
    assert ask(L, b"after") == "B"


def test_s_reload_uses_the_pid_file(master, backend, port, snirelay_bin):
    m, L, A, B = _start(master, backend, port)
    old = m.workers()
    util.wait_for(lambda: os.path.exists(m.pid_file), "the pid file")
    m.write_conf(_route(m, L, B))
    p = subprocess.run([snirelay_bin, "-s", "reload", "-c", m.conf],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=util.DEADLINE)
    assert p.returncode == 0, p.stderr
    m.wait_error("reconfiguring")
    m.wait_workers(2, exclude=old)
    util.wait_for(lambda: ask(L, b"p") == "B", "sessions to reach the new backend")


# --------------------------------------------------------------------------
# reload under load


class ShortClient(threading.Thread):
    """Opens short sessions back to back until stopped; records every failure."""

    def __init__(self, L):
        super().__init__(daemon=True)
        self.L = L
        self.stop = threading.Event()
        self.ok = 0
        self.failures = []
        self.last = None
        self.by = {}

    def run(self):
        i = 0
        while not self.stop.is_set():
            i += 1
            try:
                name = ask(self.L, b"s%d" % i, timeout=10)
            except Exception as e:        # refused, reset, EOF, bad echo
                self.failures.append((i, repr(e)))
                continue
            self.ok += 1
            self.last = name
            self.by[name] = self.by.get(name, 0) + 1


class LongSession(threading.Thread):
    """One session carrying `size` bytes through the echo backend, sent in
    parts: part k is sent only once `gate()` >= k, so the data crosses
    every reload."""

    def __init__(self, L, size, parts, gate):
        super().__init__(daemon=True)
        self.L = L
        self.data = os.urandom(size)
        self.parts = parts
        self.gate = gate
        self.error = None
        self.got = None
        self.backend = None
        self.sock = None

    def run(self):
        try:
            s = self.sock = util.connect(self.L, timeout=30)
            s.sendall(b"long\n")
            hdr = util.recv_exact(s, 7)
            self.backend = hdr[:1].decode()
            reader = threading.Thread(target=self._read, daemon=True)
            reader.start()
            step = -(-len(self.data) // self.parts)
            for k in range(self.parts):
                util.wait_for(lambda: self.gate() >= k, "reload %d" % k, timeout=60)
                s.sendall(self.data[k * step:(k + 1) * step])
            reader.join(60)
            s.close()
        except Exception as e:
            self.error = repr(e)

    def _read(self):
        h = hashlib.sha256()
        n = 0
        while n < len(self.data):
            b = self.sock.recv(1 << 18)
            if not b:
                break
            h.update(b)
            n += len(b)
        self.got = (n, h.hexdigest())


@pytest.mark.parametrize("opt", ["", " reuseport"], ids=["shared", "reuseport"])
def test_reload_under_load_drops_nothing(master, backend, port, opt):
    m, L, A, B = _start(master, backend, port, workers=2, opt=opt,
                        allow_log=ALLOW_BAD_RELOAD)
    inodes = util.listen_inodes(L)
    good_a = m.text
    good_b = _route(m, L, B, opt)
    broken = good_a.replace("proxy_pass", "proxy_pass_bogus")

    done = [0]                   # valid reloads finished
    client = ShortClient(L)
    client2 = ShortClient(L)
    longs = [LongSession(L, 8 * MIB, 5, lambda: done[0]) for _ in range(4)]
    client.start()
    client2.start()
    for t in longs:
        t.start()
    util.wait_for(lambda: all(t.backend for t in longs) or
                  any(t.error for t in longs), "the long sessions to start")

    def progress(n=150):
        want = client.ok + n
        util.wait_for(lambda: client.ok >= want or not client.is_alive(),
                      "%d more short sessions" % n)

    try:
        progress()
        m.reload(good_a)                                   # 1: same config
        done[0] += 1
        progress()
        before = m.count_errors("reload failed")
        workers = m.workers()
        m.write_conf(broken)                               # bad: keeps serving
        m.send_signal(signal.SIGHUP)
        util.wait_for(lambda: m.count_errors("reload failed") > before,
                      "the broken reload to fail")
        assert sorted(m.workers()) == sorted(workers)
        progress()
        m.reload(good_a)                                   # 2: restored
        done[0] += 1
        progress()
        before = m.count_errors("reconfiguring")
        for i in range(5):                                 # a burst of HUPs
            m.send_signal(signal.SIGHUP)
            util.wait_for(lambda: m.count_errors("reconfiguring") > before + i,
                          "reload %d of the burst" % i)
        progress()
        m.reload(good_b)                                   # 3: routing changes
        done[0] += 1
        util.wait_for(lambda: client.last == "B", "short sessions to reach backend B")
        progress()
        m.reload(good_b)                                   # 4
        done[0] += 1
        util.wait_for(lambda: client.ok >= 2000 or not client.is_alive(),
                      "2000 short sessions", timeout=30)
        progress()
    finally:
        done[0] = 99
        client.stop.set()
        client2.stop.set()
        client.join(30)
        client2.join(30)
        for t in longs:
            t.join(60)

    assert client.failures == [], "%d of %d short sessions failed, first: %s" % (
        len(client.failures), client.ok + len(client.failures), client.failures[:5])
    assert client2.failures == [], "%d of %d short sessions failed, first: %s" % (
        len(client2.failures), client2.ok + len(client2.failures), client2.failures[:5])
    assert client.ok >= 2000
    assert client.last == "B"
    for t in longs:
        assert t.error is None, t.error
        assert t.backend == "A"
        assert t.got == (len(t.data), util.sha(t.data)), "long session corrupted"
    assert util.listen_inodes(L) == inodes, "the listening socket(s) changed"
    # The long sessions kept generations alive; now only the last is left.
    util.wait_for(lambda: len(m.workers()) == 2, "the retired workers to exit")
    total = client.ok + client2.ok + len(longs)
    m.wait_access(total)
    lines = [util.parse_line(l, FIELDS) for l in m.access_lines()]
    assert len(lines) == total
    assert {l["status"] for l in lines} == {"200"}
    # Last, so that the checks above report first: a worker killed by the
    # next reload's QUIT (test_rapid_reloads_kill_no_worker) shows up here.
    died = [l for l in m.error_text().splitlines() if "exited on signal" in l]
    assert died == [], "worker(s) died of a signal during the reloads:\n" + "\n".join(died)


def test_rapid_reloads_kill_no_worker(master, backend, port):
    """HUP again the moment the previous reload starts: the workers forked by
    one reload get the next one's QUIT right after their birth, and must
    still exit normally, never die of the signal."""
    # On a loaded machine the old generations may drain slower than they
    # come: past 16 at once a reload is refused, with an alert (as meant).
    m, L, A, B = _start(master, backend, port, workers=4, allow_log=[
        r"\[alert\] .*too many generations draining; reload refused"])
    for i in range(40):
        n = m.count_errors("reconfiguring")
        m.send_signal(signal.SIGHUP)
        util.wait_for(lambda: m.count_errors("reconfiguring") > n,
                      "reload %d to start" % i, interval=0.0005)
    util.wait_for(lambda: len(m.workers()) == 4, "the old generations to drain")
    m.reload()
    util.wait_for(lambda: len(m.workers()) == 4, "the last four workers only")
    assert ask(L, b"ok") == "A"
    died = [l for l in m.error_text().splitlines() if "exited on signal" in l]
    assert died == [], "%d worker(s) died of a signal:\n%s" % (len(died),
                                                              "\n".join(died[:5]))


def test_usr1_reaches_workers_still_draining_after_a_reload(master, backend, port):
    """nginx sends the reopen signal to exiting workers too: the last lines of
    a session that outlives a reload must not go to the rotated file."""
    m, L, A, B = _start(master, backend, port, workers=1)
    (old,) = m.workers()
    s = util.connect(L, timeout=10)
    s.sendall(b"long\n")
    assert util.recv_exact(s, 7) == b"A long\n"
    m.reload(_route(m, L, B))
    m.wait_error("gracefully shutting down")
    assert util.pid_alive(old)
    rotated = m.access_log + ".1"
    os.rename(m.access_log, rotated)
    m.send_signal(signal.SIGUSR1)
    m.wait_error("reopening logs")
    new = [w for w in m.workers() if w != old]
    m.wait_reopened(m.access_log, pids=new)
    assert ask(L, b"new") == "B"
    m.wait_access(1)
    s.close()
    m.wait_error(r"worker process %d exited" % old)
    lines = [util.parse_line(l, FIELDS) for l in m.access_lines()]
    assert int(lines[0]["pid"]) != old
    assert [int(l["pid"]) for l in lines[1:]] == [old], \
        "the draining worker wrote its line to %s, not to the reopened log: %s" % (
            rotated, m.access_lines(rotated))


def test_usr1_right_after_a_reload_kills_no_worker(master, backend, port):
    """logrotate's USR1 may come at any time, also just after a reload forked
    new workers: none of them may die of it."""
    m, L, A, B = _start(master, backend, port, workers=4,
                        allow_log=[r"\[alert\] .*exited on signal 10"])
    for i in range(40):
        n = m.count_errors("start worker process")
        m.send_signal(signal.SIGHUP)
        util.wait_for(lambda: m.count_errors("start worker process") > n,
                      "reload %d to fork" % i, interval=0.0005)
        m.send_signal(signal.SIGUSR1)
        util.wait_for(lambda: m.count_errors("reopening logs") > i, "USR1 %d" % i)
    util.wait_for(lambda: len(m.workers()) == 4, "four workers")
    assert ask(L, b"ok") == "A"
    died = [l for l in m.error_text().splitlines() if "exited on signal" in l]
    assert died == [], "%d worker(s) died of a signal:\n%s" % (len(died),
                                                              "\n".join(died[:5]))


def _log_fds(pid, d):
    """{path: number of descriptors} of `pid` for files in directory d."""
    out = {}
    for n in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, n))
        except OSError:
            continue
        if link.startswith(d + "/") and link.endswith((".log", ".log.1")):
            out[link] = out.get(link, 0) + 1
    return out


def test_new_workers_hold_no_log_descriptors_of_the_old_generation(master, backend, port):
    """As nginx closes the old cycle's files before forking: a worker started
    by a reload has each log open once, so after logrotate (rename, USR1)
    no process keeps the rotated file open (its disk space would stay in use)."""
    m, L, A, B = _start(master, backend, port, workers=2)
    new = m.reload()
    util.wait_for(lambda: sorted(m.workers()) == sorted(new), "the old workers to exit")
    want = {m.error_log: 1, m.access_log: 1}
    for w in new:
        assert _log_fds(w, m.dir) == want, "worker %d: %s" % (w, _log_fds(w, m.dir))
    rotated = m.access_log + ".1"
    os.rename(m.access_log, rotated)
    m.send_signal(signal.SIGUSR1)
    m.wait_reopened(m.access_log, pids=[m.pid] + new)
    holders = [p for p in [m.pid] + new if rotated in util.open_files(p)]
    assert holders == [], "still holding %s after USR1: %s" % (rotated, holders)

"""listen parameters and per-server socket settings, read back from the
real sockets: the test process takes a duplicate of snirelay's descriptor
(pidfd_getfd) and asks the kernel with getsockopt(); backlog comes from
`ss`. Also listen with a host name, nginx's listen conflicts, and the
"conflicting server name" warning."""

import ctypes
import os
import signal
import socket
import ssl
import subprocess
import threading

import pytest

import util


SYS_PIDFD_OPEN = 434
SYS_PIDFD_GETFD = 438
TCP_FASTOPEN = 23
TCP_DEFER_ACCEPT = 9
_libc = ctypes.CDLL(None, use_errno=True)


def _steal(pid, fd):
    """A socket object on a duplicate of descriptor fd of process pid."""
    pidfd = _libc.syscall(SYS_PIDFD_OPEN, pid, 0)
    assert pidfd >= 0, os.strerror(ctypes.get_errno())
    try:
        dup = _libc.syscall(SYS_PIDFD_GETFD, pidfd, fd, 0)
        assert dup >= 0, os.strerror(ctypes.get_errno())
    finally:
        os.close(pidfd)
    return socket.socket(fileno=dup)


def _sockets(pid):
    """Duplicates of the TCP sockets of pid (the caller closes them)."""
    out = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if not link.startswith("socket:["):
            continue
        s = _steal(pid, int(fd))
        if s.type == socket.SOCK_STREAM and s.family in (socket.AF_INET,
                                                         socket.AF_INET6):
            out.append(s)
        else:
            s.close()
    return out


def _pick(socks, want):
    """The first of socks for which want(s) holds; closes the others."""
    found = None
    for s in socks:
        try:
            ok = found is None and want(s)
        except OSError:
            ok = False
        if ok:
            found = s
        else:
            s.close()
    return found


def _listen_sock(pid, port):
    """pid's listening socket on port, once it has one."""
    return util.wait_for(
        lambda: _pick(_sockets(pid), lambda s: s.getsockname()[1] == port and
                      s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)),
        "a listening socket on %d in %d" % (port, pid))


def _ready(r, port):
    """Waits until r itself listens on port."""
    _listen_sock(r.pid, port).close()
    _worker(r)


def _session_socks(pid, listen_port, backend_port):
    """The worker's (client-side, upstream-side) sockets of one session."""
    def client(s):
        return (s.getsockname()[1] == listen_port and
                not s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))

    def find():
        c = _pick(_sockets(pid), client)
        u = _pick(_sockets(pid), lambda s: s.getpeername()[1] == backend_port)
        if c is not None and u is not None:
            return c, u
        for s in (c, u):
            if s is not None:
                s.close()
        return None
    return util.wait_for(find, "the session's two sockets")


def _worker(r):
    def one():
        kids = util.child_pids(r.pid)
        return kids[0] if kids and util.has_event_loop(kids[0]) else None
    return util.wait_for(one, "a worker")


def _backlog(port, pid):
    out = subprocess.run(["ss", "-Hltnp", "sport = :%d" % port],
                         stdout=subprocess.PIPE, check=True).stdout.decode()
    lines = [l for l in out.splitlines() if "pid=%d," % pid in l]
    assert len(lines) == 1, out
    return int(lines[0].split()[2])      # Send-Q of a listener: its backlog


def _opt(s, level, name):
    return s.getsockopt(level, name)


# --------------------------------------------------------------------------
# listen parameters


def test_listen_parameters_reach_the_socket(relay, port):
    p = port()
    r = relay("server {\n    listen 127.0.0.1:@P@ rcvbuf=64k sndbuf=96k "
              "backlog=17 fastopen=5 deferred so_keepalive=30s:10s:3 "
              "reuseport bind; proxy_pass 127.0.0.1:1; }", P=p)
    s = _listen_sock(r.pid, p)
    try:
        # Linux doubles the value given (for its bookkeeping).
        assert _opt(s, socket.SOL_SOCKET, socket.SO_RCVBUF) == 2 * 65536
        assert _opt(s, socket.SOL_SOCKET, socket.SO_SNDBUF) == 2 * 98304
        assert _opt(s, socket.IPPROTO_TCP, TCP_FASTOPEN) == 5
        assert _opt(s, socket.IPPROTO_TCP, TCP_DEFER_ACCEPT) >= 1
        assert _opt(s, socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert _opt(s, socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30
        assert _opt(s, socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 10
        assert _opt(s, socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 3
        assert _opt(s, socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
    finally:
        s.close()
    assert _backlog(p, r.pid) == 17


def test_listen_without_parameters_has_nginx_defaults(relay, port):
    p = port()
    r = relay("server {\n    listen 127.0.0.1:@P@; proxy_pass 127.0.0.1:1; }", P=p)
    s = _listen_sock(r.pid, p)
    try:
        assert _opt(s, socket.IPPROTO_TCP, TCP_FASTOPEN) == 0
        assert _opt(s, socket.IPPROTO_TCP, TCP_DEFER_ACCEPT) == 0
        assert _opt(s, socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 0
        assert _opt(s, socket.SOL_SOCKET, socket.SO_REUSEPORT) == 0
    finally:
        s.close()
    assert _backlog(p, r.pid) == 511


@pytest.mark.parametrize("server,deferred", [
    ("ssl_preread on;", True),
    ("http_preread on;", True),
    ("ssl_preread off;", False),
    # The default server decides: it is the one that prereads, or not.
    ("ssl_preread off; proxy_pass 127.0.0.1:1; } server { "
     "listen 127.0.0.1:@P@; server_name b.test; ssl_preread on;", False),
    ("ssl_preread on; proxy_pass 127.0.0.1:1; } server { "
     "listen 127.0.0.1:@P@; server_name b.test; ssl_preread off;", True),
])
def test_listen_defers_accept_where_the_client_speaks_first(relay, port,
                                                             server,
                                                             deferred):
    # Deviation (README): nginx sets TCP_DEFER_ACCEPT only for `deferred`.
    p = port()
    r = relay("server {\n    listen 127.0.0.1:@P@; %s "
              "proxy_pass 127.0.0.1:1; }" % server, P=p)
    s = _listen_sock(r.pid, p)
    try:
        got = _opt(s, socket.IPPROTO_TCP, TCP_DEFER_ACCEPT)
        assert (got >= 1) == deferred, got
    finally:
        s.close()


def test_listen_defers_accept_with_proxy_protocol(relay, port):
    p = port()
    r = relay("server {\n    listen 127.0.0.1:@P@ proxy_protocol; "
              "proxy_pass 127.0.0.1:1; }", P=p)
    s = _listen_sock(r.pid, p)
    try:
        assert _opt(s, socket.IPPROTO_TCP, TCP_DEFER_ACCEPT) >= 1
    finally:
        s.close()


def test_listen_options_on_a_later_server_apply_to_the_address(relay, port):
    # nginx: options given once for an address apply, whichever server.
    p = port()
    r = relay("server {\n    listen 127.0.0.1:@P@; proxy_pass 127.0.0.1:1; }\n"
              "server {\n    listen 127.0.0.1:@P@ backlog=23; server_name b; "
              "proxy_pass 127.0.0.1:1; }", P=p)
    _ready(r, p)
    assert _backlog(p, r.pid) == 23


def test_reload_applies_new_options_to_the_socket_it_keeps(relay, port):
    p = port()
    r = relay("server {\n    listen 127.0.0.1:@P@ backlog=17 fastopen=3;\n"
              "    proxy_pass 127.0.0.1:1; }", P=p)
    s = _listen_sock(r.pid, p)
    try:
        inode = os.fstat(s.fileno()).st_ino
        assert _backlog(p, r.pid) == 17
        with open(r.conf) as f:
            text = f.read()
        with open(r.conf, "w") as f:
            f.write(text.replace("backlog=17 fastopen=3",
                                 "backlog=33 so_keepalive=on deferred"))
        r.send_signal(signal.SIGHUP)
        util.wait_for(lambda: _backlog(p, r.pid) == 33, "the new backlog")
        # The same socket (no new bind), with the new options.
        kept = _listen_sock(r.pid, p)
        try:
            assert os.fstat(kept.fileno()).st_ino == inode
            assert _opt(kept, socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            assert _opt(kept, socket.IPPROTO_TCP, TCP_DEFER_ACCEPT) >= 1
            assert _opt(kept, socket.IPPROTO_TCP, TCP_FASTOPEN) == 0
        finally:
            kept.close()
    finally:
        s.close()


def test_listen_with_a_host_name_serves_on_its_addresses(relay, port, backend):
    b = backend(util.reply_after(4, "b"))
    p = port()
    r = relay("server {\n    listen localhost:@P@; proxy_pass @B@; }",
              P=p, B=b.addr)
    _ready(r, p)
    addrs = {ai[4][0] for ai in socket.getaddrinfo(
        "localhost", p, type=socket.SOCK_STREAM)}
    assert addrs
    for a in addrs:
        fam = socket.AF_INET6 if ":" in a else socket.AF_INET
        with socket.create_connection((a, p), timeout=util.DEADLINE) as c:
            assert c.family == fam
            c.sendall(b"ping")
            assert util.recv_all(c).startswith(b"b ")


def _conf(workdir, body):
    path = os.path.join(workdir, "l.conf")
    text = ("pid %s/x.pid;\nevents { }\nstream {\n%s\n}\n" % (workdir, body))
    with open(path, "w") as f:
        f.write(text)
    return path, text.splitlines()


def _t(bin_, path):
    p = subprocess.run([bin_, "-t", "-c", path], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=util.DEADLINE)
    return p.returncode, p.stderr.decode(errors="replace")


def _line(lines, needle, nth=1):
    return [i + 1 for i, l in enumerate(lines) if needle in l][nth - 1]


@pytest.mark.parametrize("param,message", [
    ("rcvbuf=x", 'invalid rcvbuf "rcvbuf=x"'),
    ("sndbuf=1q", 'invalid sndbuf "sndbuf=1q"'),
    ("fastopen=-1", 'invalid fastopen "fastopen=-1"'),
    ("backlog=0", 'invalid backlog "backlog=0"'),
    ("ipv6only=oops", 'invalid ipv6only flags "oops"'),
    ("so_keepalive=::", 'invalid so_keepalive value: "::"'),
    ("so_keepalive=x:1:1", 'invalid so_keepalive value: "x:1:1"'),
    ("deferred=1", 'invalid parameter "deferred=1"'),
])
def test_bad_listen_parameters(snirelay_bin, workdir, param, message):
    path, lines = _conf(workdir, "server { listen 127.0.0.1:%d %s; "
                        "proxy_pass 127.0.0.1:1; }" % (util.free_port(), param))
    rc, err = _t(snirelay_bin, path)
    assert rc == 1, err
    assert "[emerg] %s in %s:%d" % (message, path,
                                    _line(lines, param)) in err, err


def test_listen_host_with_a_bad_port(snirelay_bin, workdir):
    path, lines = _conf(workdir, "server { listen localhost:99999; "
                        "proxy_pass 127.0.0.1:1; }")
    rc, err = _t(snirelay_bin, path)
    assert rc == 1, err
    assert ('[emerg] invalid port in "localhost:99999" of the "listen" '
            'directive in %s:%d' % (path, _line(lines, "99999"))) in err, err


# --------------------------------------------------------------------------
# conflicts between servers on one address (nginx's ngx_stream.c)


def _conflict(snirelay_bin, workdir, first, second):
    p = util.free_port()
    body = ("server { listen 127.0.0.1:%d %s; proxy_pass 127.0.0.1:1; }\n"
            "server { listen 127.0.0.1:%d %s; server_name b;\n"
            "    proxy_pass 127.0.0.1:1; }" % (p, first, p, second))
    path, lines = _conf(workdir, body)
    rc, err = _t(snirelay_bin, path)
    return p, path, lines, rc, err


def test_two_default_servers_are_refused(snirelay_bin, workdir):
    p, path, lines, rc, err = _conflict(snirelay_bin, workdir,
                                        "default_server", "default_server")
    assert rc == 1, err
    assert ("[emerg] a duplicate default server for 127.0.0.1:%d in %s:%d"
            % (p, path, _line(lines, "server_name b"))) in err, err


@pytest.mark.parametrize("first,second", [
    ("backlog=10", "backlog=10"),
    ("reuseport", "reuseport"),
    ("rcvbuf=8k", "so_keepalive=on"),
])
def test_listen_options_given_twice_are_refused(snirelay_bin, workdir, first,
                                                second):
    p, path, lines, rc, err = _conflict(snirelay_bin, workdir, first, second)
    assert rc == 1, err
    assert ("[emerg] duplicate listen options for 127.0.0.1:%d in %s:%d"
            % (p, path, _line(lines, "server_name b"))) in err, err


def test_proxy_protocol_on_one_listen_only_is_refused(snirelay_bin, workdir):
    p, path, lines, rc, err = _conflict(snirelay_bin, workdir,
                                        "proxy_protocol", "")
    assert rc == 1, err
    assert ('[emerg] "proxy_protocol" must be on every listen of '
            '127.0.0.1:%d or on none' % p) in err, err


def test_one_server_listening_twice_on_an_address(snirelay_bin, workdir):
    p = util.free_port()
    path, lines = _conf(workdir, "server {\n    listen 127.0.0.1:%d;\n"
                        "    listen 127.0.0.1:%d;\n"
                        "    proxy_pass 127.0.0.1:1; }" % (p, p))
    rc, err = _t(snirelay_bin, path)
    assert rc == 1, err
    assert ("[emerg] a duplicate listen 127.0.0.1:%d in %s:%d"
            % (p, path, _line(lines, "    listen", 2))) in err, err


@pytest.mark.parametrize("name1,name2,shown", [
    ("", "", ""),
    ("server_name a.test;", "server_name a.test;", "a.test"),
    ('server_name "";', "", ""),
])
def test_conflicting_server_names_warn_at_t(snirelay_bin, workdir, name1,
                                            name2, shown):
    p = util.free_port()
    path, _ = _conf(workdir,
                    "server { listen 127.0.0.1:%d; %s proxy_pass 127.0.0.1:1; }\n"
                    "server { listen 127.0.0.1:%d; %s proxy_pass 127.0.0.1:2; }"
                    % (p, name1, p, name2))
    rc, err = _t(snirelay_bin, path)
    assert rc == 0, err
    assert ('[warn] conflicting server name "%s" on 127.0.0.1:%d, ignored'
            % (shown, p)) in err, err


def test_distinct_server_names_do_not_warn(snirelay_bin, workdir):
    p = util.free_port()
    path, _ = _conf(workdir,
                    "server { listen 127.0.0.1:%d; proxy_pass 127.0.0.1:1; }\n"
                    "server { listen 127.0.0.1:%d; server_name b.test; "
                    "proxy_pass 127.0.0.1:2; }" % (p, p))
    rc, err = _t(snirelay_bin, path)
    assert rc == 0, err
    assert "conflicting" not in err, err


def test_conflicting_server_name_warns_at_start(relay, port):
    p = port()
    r = relay("server {\n    listen 127.0.0.1:@P@; proxy_pass 127.0.0.1:1; }\n"
              "server {\n    listen 127.0.0.1:@P@; proxy_pass 127.0.0.1:2; }", P=p)
    want = 'conflicting server name "" on 127.0.0.1:%d, ignored' % p
    util.wait_for(lambda: want in r.stderr() + r.error_text(),
                  "the warning at start")


# --------------------------------------------------------------------------
# per-server socket settings of a session


def _hold(stop):
    def handler(conn, info):
        stop.wait(util.DEADLINE)
    return handler


@pytest.mark.parametrize("keepalive", ["on", "off"])
def test_proxy_socket_keepalive(relay, port, backend, keepalive):
    stop = threading.Event()
    b = backend(_hold(stop))
    p = port()
    r = relay("server {\n    listen 127.0.0.1:@P@; proxy_socket_keepalive @K@; "
              "proxy_pass @B@; }", P=p, B=b.addr, K=keepalive)
    _ready(r, p)
    try:
        with util.connect(p) as c:
            c.sendall(b"x")
            # Set between socket() and connect(): done once b accepted.
            b.wait_conns(1)
            cs, us = _session_socks(_worker(r), p, b.port)
            try:
                assert _opt(us, socket.SOL_SOCKET, socket.SO_KEEPALIVE) == \
                    (1 if keepalive == "on" else 0)
                assert _opt(cs, socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 0
            finally:
                cs.close()
                us.close()
    finally:
        stop.set()


def _client_hello(name):
    ctx = ssl.create_default_context()
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=name)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


@pytest.mark.parametrize("nodelay", ["on", "off"])
def test_tcp_nodelay_of_the_default_server_is_set_on_the_listener(
        relay, port, backend, nodelay):
    # Accepted sockets inherit TCP_NODELAY from their listener, so the
    # listener carries the default server's tcp_nodelay and a session that
    # stays with that server has it with no call of its own.
    stop = threading.Event()
    b = backend(_hold(stop))
    p = port()
    r = relay("server {\n    listen 127.0.0.1:@P@; tcp_nodelay @N@; "
              "proxy_pass @B@; }", P=p, B=b.addr, N=nodelay)
    want = 1 if nodelay == "on" else 0
    s = _listen_sock(r.pid, p)
    try:
        assert _opt(s, socket.IPPROTO_TCP, socket.TCP_NODELAY) == want
    finally:
        s.close()
    try:
        with util.connect(p, nodelay=False) as c:
            c.sendall(b"x")
            cs, us = _session_socks(_worker(r), p, b.port)
            try:
                util.wait_for(lambda: _opt(us, socket.IPPROTO_TCP,
                                           socket.TCP_NODELAY) == want,
                              "TCP_NODELAY %d upstream" % want)
                assert _opt(cs, socket.IPPROTO_TCP, socket.TCP_NODELAY) == want
            finally:
                cs.close()
                us.close()
    finally:
        stop.set()


def test_a_reload_given_up_puts_the_old_listen_options_back(master, port):
    # The reload sets its options on the socket it keeps before it opens
    # its new ones; when one of those cannot be bound, the old
    # configuration serves on with its own options on that socket.
    p = port()
    m = master("server {\n    listen 127.0.0.1:@P@ backlog=17; tcp_nodelay on;\n"
               "    proxy_pass 127.0.0.1:1; }", P=p,
               allow_log=[r"\[emerg\] .*bind\(\) to 127\.0\.0\.1:\d+ failed",
                          r"\[alert\] .*reload failed"])
    s = _listen_sock(m.pid, p)
    busy = socket.socket()
    try:
        assert _opt(s, socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        with open(m.conf) as f:
            text = f.read()
        m.write_conf(text.replace(
            "listen 127.0.0.1:%d backlog=17; tcp_nodelay on;" % p,
            "listen 127.0.0.1:%d backlog=33; tcp_nodelay off;\n"
            "    listen 127.0.0.1:%d;" % (p, busy.getsockname()[1])))
        m.send_signal(signal.SIGHUP)
        m.wait_error("reload failed")
        assert _backlog(p, m.pid) == 17
        assert _opt(s, socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        busy.close()
        s.close()


@pytest.mark.parametrize("nodelay", ["on", "off"])
def test_tcp_nodelay_of_the_picked_server_on_both_sockets(relay, port,
                                                          backend, nodelay):
    # The default server says the opposite: the server picked by the
    # preread name decides, for the client's socket too.
    stop = threading.Event()
    b = backend(_hold(stop))
    p = port()
    other = "off" if nodelay == "on" else "on"
    r = relay("server {\n    listen 127.0.0.1:@P@; ssl_preread on; "
              "tcp_nodelay @O@; proxy_pass 127.0.0.1:1; }\n"
              "server {\n    listen 127.0.0.1:@P@; server_name b.test; "
              "ssl_preread on; tcp_nodelay @N@; proxy_pass @B@; }",
              P=p, B=b.addr, N=nodelay, O=other)
    _ready(r, p)
    try:
        with util.connect(p, nodelay=False) as c:
            c.sendall(_client_hello("b.test"))
            cs, us = _session_socks(_worker(r), p, b.port)
            want = 1 if nodelay == "on" else 0
            try:
                # Set when the worker sees the connect finish, which may
                # come just after the backend's accept: wait for it.
                util.wait_for(lambda: _opt(cs, socket.IPPROTO_TCP,
                                           socket.TCP_NODELAY) == want and
                              _opt(us, socket.IPPROTO_TCP,
                                   socket.TCP_NODELAY) == want,
                              "TCP_NODELAY %d on both sockets" % want)
            finally:
                cs.close()
                us.close()
    finally:
        stop.set()


def _anon_bytes(pid):
    """Bytes in the anonymous mappings of pid, its heap included."""
    total = 0
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 5 or parts[5:] == ["[heap]"]:
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                total += hi - lo
    return total


@pytest.mark.parametrize("size,splice,expect_big", [
    ("4m", "off", True), ("16k", "off", False), ("4m", "on", False)])
def test_proxy_buffer_size_sizes_the_relay_buffer(relay, port, backend, size,
                                                  splice, expect_big):
    # A backend that never reads: once the kernel buffers on the way are
    # full, the client's bytes wait in the relay buffer, which holds
    # proxy_buffer_size: one of 4m grows the worker's memory (mmap, or the
    # heap once glibc's mmap threshold has grown) by 4 MiB; 16k does not.
    # With proxy_splice on they wait in a pipe instead (kernel memory), so
    # even 4m leaves the worker's memory as it was.
    stop = threading.Event()
    b = backend(_hold(stop))
    p = port()
    r = relay("server {\n    listen 127.0.0.1:@P@; proxy_buffer_size @S@; "
              "proxy_splice @X@; proxy_pass @B@; }", P=p, B=b.addr, S=size,
              X=splice)
    _ready(r, p)
    w = _worker(r)
    before = _anon_bytes(w)
    state = {"sent": 0, "idle": 0}
    try:
        with util.connect(p) as c:
            # Bytes sent while the upstream connects are read into the
            # preread buffer (up to proxy_buffer_size), whatever
            # proxy_splice says: send once the relay runs.
            r.wait_error(r"proxy \S+ connected to ")
            c.setblocking(False)
            chunk = b"y" * 65536

            def settled():
                """Sends what the proxy takes; true once it took nothing
                for 25 polls in a row (its buffers are full)."""
                progress = False
                try:
                    while state["sent"] < 256 << 20:
                        state["sent"] += c.send(chunk)
                        progress = True
                except BlockingIOError:
                    pass
                state["idle"] = 0 if progress else state["idle"] + 1
                return state["idle"] >= 25

            util.wait_for(settled, "the proxy to stop taking bytes")
            grown = _anon_bytes(w) - before
            assert (grown >= 4 << 20) == expect_big, (grown, state)
    finally:
        stop.set()

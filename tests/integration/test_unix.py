"""Unix-domain sockets with nginx's semantics: `listen unix:PATH`,
`proxy_pass unix:PATH` (literal, from a config variable, or through an
upstream{} of `server unix:PATH` lines with failover), $remote_addr "unix:"
and empty $remote_port for a unix client, $server_addr and $upstream_addr
"unix:PATH", `allow`/`deny unix:`, `set_real_ip_from unix:` behind a PROXY
header, limit_conn on $binary_remote_addr, the socket file's life (created
0666, never replaced at start, removed at stop and when a reload drops the
listener, handed over unchanged when it stays), config errors in nginx's
words, and the guard: a name a client chose (SNI, Host) never reaches a
unix socket, even one the config names elsewhere.

Every socket lives in a short private directory under /tmp (sun_path holds
107 bytes)."""

import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading

import pytest

import dns
import util

FIELDS = ["remote_addr", "remote_port", "server_addr", "server_port",
          "upstream_addr", "status", "realip_remote_addr", "proxy_protocol_addr",
          "bytes_received", "ssl_preread_server_name"]
FMT = "|".join("$" + f for f in FIELDS)


def line(text):
    return util.parse_line(text, FIELDS)


@pytest.fixture
def sockdir():
    d = tempfile.mkdtemp(prefix="sru-", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


class UnixBackend:
    """An AF_UNIX stream server thread at `path`: echoes each connection
    until EOF; counts accepted connections."""

    def __init__(self, path):
        self.path = path
        self.accepted = 0
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(64)
        self._cond = threading.Condition()
        self._open = []
        self._t = threading.Thread(target=self._loop, daemon=True)
        self._t.start()

    def _loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self._cond:
                self.accepted += 1
                self._open.append(c)
                self._cond.notify_all()
            threading.Thread(target=self._echo, args=(c,), daemon=True).start()

    @staticmethod
    def _echo(c):
        try:
            while True:
                b = c.recv(65536)
                if not b:
                    break
                c.sendall(b)
        except OSError:
            pass
        finally:
            c.close()

    def wait_conns(self, n):
        with self._cond:
            ok = self._cond.wait_for(lambda: self.accepted >= n, util.DEADLINE)
        assert ok, "unix backend %s: %d of %d connections" % (self.path, self.accepted, n)

    def stop(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for c in list(self._open):
            try:
                c.close()
            except OSError:
                pass


@pytest.fixture
def unix_backend():
    made = []

    def make(path):
        b = UnixBackend(path)
        made.append(b)
        return b

    yield make
    for b in made:
        b.stop()


def uconnect(path, timeout=util.DEADLINE):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s


def wait_unix_listening(path, proc=None):
    """Waits until a socket listens on path, read from /proc/net/unix
    (__SO_ACCEPTCON in Flags), so no probe session shows in any count. The
    file alone is not enough: bind() makes it before listen(), and a
    connect in between is refused."""
    def ok():
        if proc is not None and proc.poll() is not None:
            raise AssertionError("snirelay exited with %s" % proc.returncode)
        with open("/proc/net/unix") as f:
            next(f)
            return any(len(fl) >= 8 and fl[7] == path and
                       int(fl[3], 16) & 0x10000
                       for fl in (line.split() for line in f))
    util.wait_for(ok, "a unix listener at %s" % path)


def roundtrip(s, payload=b"unix-payload"):
    got = util.echo_roundtrip(s, payload)
    s.close()
    return got


def closed_without_data(s):
    """True when the proxy closes `s` without sending anything (a unix peer
    may see EPIPE or a reset instead of a plain EOF)."""
    try:
        s.sendall(b"x")
        data = util.recv_all(s)
    except OSError:
        data = b""
    s.close()
    return data == b""


def unix_inode(path):
    """Inode of the listening socket bound to `path` (from /proc/net/unix)."""
    with open("/proc/net/unix") as f:
        next(f)
        for row in f:
            p = row.split()
            # Num RefCount Protocol Flags Type St Inode [Path]; St 01 = listening
            if len(p) >= 8 and p[7] == path and p[5] == "01":
                return int(p[6])
    return None


# --------------------------------------------------------------------------
# listen unix:PATH


def test_unix_client_is_relayed_to_a_tcp_backend(relay, backend, sockdir):
    b = backend(util.echo(), name="tcp")
    path = os.path.join(sockdir, "in.sock")
    r = relay("""
        server {
            listen unix:@P@;
            proxy_pass 127.0.0.1:@B@;
        }
    """, P=path, B=b.port, log_format=FMT)
    wait_unix_listening(path, r.proc)
    st = os.stat(path)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o666, oct(st.st_mode)   # as nginx

    payload = os.urandom(200 * 1024)
    assert roundtrip(uconnect(path), payload) == payload
    lines = [line(l) for l in r.wait_access(1)]
    f = [x for x in lines if x["bytes_received"] == str(len(payload))][0]
    assert f["status"] == "200"
    assert f["remote_addr"] == "unix:"
    assert util.empty(f["remote_port"])
    assert f["server_addr"] == "unix:" + path
    assert util.empty(f["server_port"])
    assert f["upstream_addr"] == b.addr
    assert f["realip_remote_addr"] == "unix:"
    assert f["bytes_received"] == str(len(payload))

    # A client bound to a path of its own shows it, as nginx's addr_text.
    cpath = os.path.join(sockdir, "client.sock")
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(util.DEADLINE)
    c.bind(cpath)
    c.connect(path)
    assert roundtrip(c) == b"unix-payload"
    f = [x for x in map(line, r.wait_access(2)) if x["bytes_received"] == "12"][0]
    assert f["remote_addr"] == "unix:" + cpath
    assert util.empty(f["remote_port"])


@pytest.mark.parametrize("how", ["literal", "variable", "upstream"])
def test_tcp_client_is_relayed_to_a_unix_backend(relay, port, unix_backend, sockdir, how):
    path = os.path.join(sockdir, "b.sock")
    ub = unix_backend(path)
    pass_ = {"literal": "unix:" + path, "variable": "$target", "upstream": "u"}[how]
    r = relay("""
        map $remote_addr $target {
            default unix:@P@;
        }
        upstream u {
            server unix:@P@ weight=2 max_fails=1 fail_timeout=10s;
        }
        server {
            listen 127.0.0.1:@L@;
            proxy_pass @PASS@;
        }
    """, P=path, L=port(), PASS=pass_, log_format=FMT)
    assert roundtrip(util.connect(r.listen_ports[0])) == b"unix-payload"
    ub.wait_conns(1)
    f = line(r.wait_access(1)[0])
    assert f["status"] == "200"
    assert f["upstream_addr"] == "unix:" + path
    assert f["remote_addr"] == "127.0.0.1"


@pytest.mark.parametrize("dead_kind", ["missing", "stale"])
def test_upstream_fails_over_from_a_dead_unix_path(relay, port, unix_backend, sockdir,
                                                  dead_kind):
    dead = os.path.join(sockdir, "dead.sock")
    live = os.path.join(sockdir, "live.sock")
    if dead_kind == "stale":
        # A socket file nobody listens on: connect() is refused.
        s = socket.socket(socket.AF_UNIX)
        s.bind(dead)
        s.close()
    ub = unix_backend(live)
    r = relay("""
        upstream u {
            server unix:@D@;
            server unix:@V@;
        }
        server {
            listen 127.0.0.1:@L@;
            proxy_pass u;
        }
    """, D=dead, V=live, L=port(), log_format=FMT)
    for i in range(3):
        assert roundtrip(util.connect(r.listen_ports[0]), b"x%d" % i) == b"x%d" % i
    ub.wait_conns(3)
    lines = [line(l) for l in r.wait_access(3)]   # in the order sessions ended
    assert all(f["status"] == "200" for f in lines)
    # The first tried the dead path, then the live one; marked failed
    # (max_fails=1), the dead path is skipped by the next two.
    assert sorted(f["upstream_addr"] for f in lines) == sorted(
        ["unix:%s, unix:%s" % (dead, live)] + ["unix:" + live] * 2)
    err = {"missing": "2: No such file or directory",
           "stale": "111: Connection refused"}[dead_kind]
    r.wait_error(r'connect\(\) failed \(%s\) while connecting to upstream, '
                 r'client: 127\.0\.0\.1, server: 127\.0\.0\.1:\d+, upstream: "unix:%s"'
                 % (err, re.escape(dead)))


def test_unix_listener_to_unix_listener_chain(relay, port, unix_backend, sockdir):
    """A server may forward into another server's unix listener (nginx-tests
    do it everywhere): chaining by config is not a forwarding loop."""
    front = os.path.join(sockdir, "front.sock")
    last = os.path.join(sockdir, "last.sock")
    ub = unix_backend(last)
    r = relay("""
        server {
            listen 127.0.0.1:@L@;
            proxy_pass unix:@F@;
        }
        server {
            listen unix:@F@;
            proxy_pass unix:@Z@;
        }
    """, L=port(), F=front, Z=last, log_format=FMT)
    assert roundtrip(util.connect(r.listen_ports[0])) == b"unix-payload"
    ub.wait_conns(1)
    lines = sorted((line(l) for l in r.wait_access(2)), key=lambda f: f["remote_addr"])
    assert [f["status"] for f in lines] == ["200", "200"]
    assert lines[0]["upstream_addr"] == "unix:" + front
    assert lines[1]["remote_addr"] == "unix:"
    assert lines[1]["upstream_addr"] == "unix:" + last
    assert "forwarding loop" not in r.error_text()


# --------------------------------------------------------------------------
# allow / deny unix:, realip, limit_conn


def test_allow_and_deny_unix(relay, backend, port, sockdir):
    """nginx: `unix:` rules and `all` apply to unix clients; IP rules never
    do, and `unix:` rules never apply to TCP clients."""
    b = backend(util.echo(), name="tcp")
    paths = {k: os.path.join(sockdir, k + ".sock") for k in "abce"}
    L = port()
    r = relay("""
        server {
                 listen unix:@A@; allow unix:; deny all;  proxy_pass 127.0.0.1:@B@; }
        server {
                 listen unix:@BB@; deny unix:; allow all; proxy_pass 127.0.0.1:@B@; }
        server {
                 listen unix:@C@; deny 127.0.0.1; deny ::1; deny 0.0.0.0/0;
                 proxy_pass 127.0.0.1:@B@; }
        server {
                 listen 127.0.0.1:@L@; deny unix:; proxy_pass 127.0.0.1:@B@; }
        server {
                 listen unix:@E@; deny all; proxy_pass 127.0.0.1:@B@; }
    """, A=paths["a"], BB=paths["b"], C=paths["c"], E=paths["e"], L=L, B=b.port,
        log_format=FMT)
    for p in paths.values():
        wait_unix_listening(p, r.proc)
    want = {"a": True, "b": False, "c": True, "e": False}
    for k, ok in sorted(want.items()):
        s = uconnect(paths[k])
        if ok:
            assert roundtrip(s) == b"unix-payload", k
        else:
            assert closed_without_data(s), k
    assert roundtrip(util.connect(L)) == b"unix-payload"
    lines = [line(l) for l in r.wait_access(5)]
    by_server = {f["server_addr"]: f["status"] for f in lines}
    assert by_server == {"unix:" + paths["a"]: "200", "unix:" + paths["b"]: "403",
                         "unix:" + paths["c"]: "200", "unix:" + paths["e"]: "403",
                         "127.0.0.1": "200"}
    assert r.error_text().count("access forbidden by rule") == 2


@pytest.mark.parametrize("trusted", [True, False], ids=["unix-trusted", "not-trusted"])
def test_proxy_protocol_and_realip_on_a_unix_listener(relay, backend, sockdir, trusted):
    b = backend(util.echo(), name="tcp")
    path = os.path.join(sockdir, "pp.sock")
    r = relay("""
        server {
            listen unix:@P@ proxy_protocol;
            @REAL@
            proxy_pass 127.0.0.1:@B@;
        }
    """, P=path, B=b.port, log_format=FMT,
        REAL="set_real_ip_from unix:;" if trusted else "set_real_ip_from 127.0.0.1;")
    wait_unix_listening(path, r.proc)
    s = uconnect(path)
    s.sendall(b"PROXY TCP4 192.0.2.7 192.0.2.1 5555 443\r\n")
    assert roundtrip(s, b"after-header") == b"after-header"
    f = line(r.wait_access(1)[0])
    assert f["status"] == "200"
    assert f["proxy_protocol_addr"] == "192.0.2.7"
    assert f["realip_remote_addr"] == "unix:"
    if trusted:
        assert f["remote_addr"] == "192.0.2.7"
        assert f["remote_port"] == "5555"
    else:
        assert f["remote_addr"] == "unix:"
        assert util.empty(f["remote_port"])


@pytest.mark.parametrize("version,header", [
    ("on", b"PROXY UNKNOWN\r\n"),
    ("v2", b"\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00")])
def test_proxy_protocol_out_for_a_unix_client(relay, backend, sockdir, version, header):
    """A unix client has no address for the header: v1 says UNKNOWN, as
    nginx; v2 is a LOCAL header. The stream follows it unchanged."""
    b = backend(util.record_to_eof(), name="rec")
    path = os.path.join(sockdir, "ppo.sock")
    r = relay("""
        server {
            listen unix:@P@;
            proxy_protocol @V@;
            proxy_pass 127.0.0.1:@B@;
        }
    """, P=path, V=version, B=b.port, log_format=FMT)
    wait_unix_listening(path, r.proc)
    s = uconnect(path)
    s.sendall(b"payload")
    s.shutdown(socket.SHUT_WR)
    b.wait_conns(1)
    b.conns[0]["done"].wait(util.DEADLINE)
    s.close()
    assert b.conns[0]["data"] == header + b"payload"
    assert line(r.wait_access(1)[0])["status"] == "200"


@pytest.mark.parametrize("from_", ["localhost", "127.0.0.2"])
def test_set_real_ip_from_a_host_name(relay, backend, port, from_):
    """nginx resolves a name in set_real_ip_from at load, to every address
    it has (tests use localhost only: nothing leaves the machine)."""
    b = backend(util.echo(), name="tcp")
    r = relay("""
        server {
            listen 127.0.0.1:@L@ proxy_protocol;
            set_real_ip_from @FROM@;
            proxy_pass 127.0.0.1:@B@;
        }
    """, L=port(), B=b.port, FROM=from_, log_format=FMT)
    s = util.connect(r.listen_ports[0])
    s.sendall(b"PROXY TCP4 192.0.2.7 192.0.2.1 5555 443\r\n")
    assert roundtrip(s, b"x") == b"x"
    f = line(r.wait_access(1)[0])
    assert f["realip_remote_addr"] == "127.0.0.1"
    assert f["remote_addr"] == ("192.0.2.7" if from_ == "localhost" else "127.0.0.1")


def test_limit_conn_counts_unix_clients_under_one_key(relay, backend, sockdir):
    """$binary_remote_addr of every unbound unix client is the same key
    ("unix:"), so they share one limit."""
    b = backend(util.echo(), name="tcp")
    path = os.path.join(sockdir, "lc.sock")
    r = relay("""
        limit_conn_zone $binary_remote_addr zone=z:1m;
        server {
            listen unix:@P@;
            limit_conn z 1;
            proxy_pass 127.0.0.1:@B@;
        }
    """, P=path, B=b.port, log_format=FMT)
    wait_unix_listening(path, r.proc)
    first = uconnect(path)
    assert util.echo_roundtrip(first, b"held") == b"held"
    assert closed_without_data(uconnect(path))
    f = line(r.wait_access(1)[0])
    assert f["status"] == "503"
    assert f["remote_addr"] == "unix:"
    first.close()
    lines = [line(l) for l in r.wait_access(2)]
    assert sorted(x["status"] for x in lines) == ["200", "503"]


# --------------------------------------------------------------------------
# a client-chosen name never reaches a unix socket


def test_client_chosen_name_never_reaches_a_unix_socket(relay, port, unix_backend,
                                                        sockdir):
    canary_path = os.path.join(sockdir, "canary.sock")
    canary = unix_backend(canary_path)
    ports = {k: port() for k in ("fixed", "sni", "sni443", "map", "host")}
    r = relay("""
        map $ssl_preread_server_name $picked {
            hostnames;
            default $ssl_preread_server_name;
        }
        # The config names the canary: an implicit upstream "unix:PATH" exists.
        server {
                 listen 127.0.0.1:@FIXED@; proxy_pass unix:@C@; }
        server {
                 listen 127.0.0.1:@SNI@; ssl_preread on;
                 proxy_pass $ssl_preread_server_name; }
        server {
                 listen 127.0.0.1:@SNI443@; ssl_preread on;
                 proxy_pass $ssl_preread_server_name:443; }
        server {
                 listen 127.0.0.1:@MAP@; ssl_preread on; proxy_pass $picked; }
        server {
                 listen 127.0.0.1:@HOST@; http_preread on;
                 proxy_pass $http_preread_host:443; }
    """, C=canary_path, FIXED=ports["fixed"], SNI=ports["sni"], SNI443=ports["sni443"],
        MAP=ports["map"], HOST=ports["host"], log_format=FMT)

    # Control: the canary is reachable when the config names it.
    assert roundtrip(util.connect(ports["fixed"])) == b"unix-payload"
    canary.wait_conns(1)
    assert line(r.wait_access(1)[0])["upstream_addr"] == "unix:" + canary_path

    n = 1
    for k in ("sni", "sni443", "map"):
        for name in ("unix:" + canary_path, "UNIX:" + canary_path):
            s, _ = dns.send_hello(ports[k], name)
            assert util.recv_all(s) == b"", (k, name)
            s.close()
            n += 1
            f = line(r.wait_access(n)[n - 1])
            assert f["status"] == "403", (k, name, f)
            assert f["ssl_preread_server_name"].lower() == ("unix:" + canary_path).lower()
            assert util.empty(f["upstream_addr"])
    # A Host header cannot even carry a path (its port must be digits)...
    s = util.connect(ports["host"])
    s.sendall(dns.http_head("unix:" + canary_path))
    assert util.recv_all(s) == b""
    s.close()
    n += 1
    f = line(r.wait_access(n)[n - 1])
    assert f["status"] == "403", f
    assert util.empty(f["upstream_addr"])
    r.wait_error(r"malformed HTTP request head")
    # ...but host "unix" and port 443 make a value that reads as a path.
    s = util.connect(ports["host"])
    s.sendall(dns.http_head("unix"))
    assert util.recv_all(s) == b""
    s.close()
    n += 1
    f = line(r.wait_access(n)[n - 1])
    assert f["status"] == "403", f
    assert util.empty(f["upstream_addr"])

    assert canary.accepted == 1, "a client-chosen name reached the unix socket"
    log = r.error_text()
    assert len(re.findall(r'the client-supplied value "unix:%s(:443)?" names a '
                          r'unix-domain socket' % re.escape(canary_path), log, re.I)) == 6, log
    assert 'the client-supplied value "unix:443" names a unix-domain socket' in log


# --------------------------------------------------------------------------
# the socket file's life


def test_existing_file_is_never_replaced_at_start(relay, backend, sockdir):
    b = backend(util.echo(), name="tcp")
    path = os.path.join(sockdir, "taken.sock")
    with open(path, "w") as f:
        f.write("not a socket")
    r = relay("""
        server {
                 listen unix:@P@; proxy_pass 127.0.0.1:@B@; }
    """, P=path, B=b.port, start=False)
    r.start(wait=False)
    r.proc.wait(util.DEADLINE)
    r.stop()
    assert r.returncode == 1
    assert re.search(r"\[emerg\] bind\(\) to unix:%s failed \(98: Address already in use\)"
                     % re.escape(path), r.stderr()), r.stderr()
    with open(path) as f:
        assert f.read() == "not a socket"


def test_failed_start_leaves_no_socket_file_of_its_own(relay, backend, sockdir):
    """Listeners open last server first: the free path is bound before the
    taken one fails, and its file must not be left behind."""
    b = backend(util.echo(), name="tcp")
    taken = os.path.join(sockdir, "taken.sock")
    free = os.path.join(sockdir, "free.sock")
    with open(taken, "w") as f:
        f.write("x")
    r = relay("""
        server {
            listen unix:@T@;
            proxy_pass 127.0.0.1:@B@;
        }
        server {
            listen unix:@F@;
            proxy_pass 127.0.0.1:@B@;
        }
    """, T=taken, F=free, B=b.port, start=False)
    r.start(wait=False)
    r.proc.wait(util.DEADLINE)
    r.stop()
    assert r.returncode == 1
    assert "Address already in use" in r.stderr()
    assert not os.path.exists(free)
    assert os.path.exists(taken)


def test_failed_reload_removes_the_socket_files_it_made(master, backend, sockdir):
    b = backend(util.echo(), name="tcp")
    old = os.path.join(sockdir, "old.sock")
    taken = os.path.join(sockdir, "taken.sock")
    free = os.path.join(sockdir, "free.sock")
    m = master("""
        server {
            listen unix:@O@;
            proxy_pass 127.0.0.1:@B@;
        }
    """, O=old, B=b.port, main_extra="worker_processes 1;", allow_log=[
        r"\[emerg\] .*bind\(\) to unix:%s failed \(98: Address already in use\)"
        % re.escape(taken), r"\[alert\] .*reload failed"])
    m.wait_workers(1)
    wait_unix_listening(old, m.proc)
    workers = m.workers()
    with open(taken, "w") as f:
        f.write("x")
    extra = """
        server {
            listen unix:%s;
            proxy_pass 127.0.0.1:%d;
        }
        server {
            listen unix:%s;
            proxy_pass 127.0.0.1:%d;
        }
    }
""" % (taken, b.port, free, b.port)
    text = m.text[:m.text.rindex("}")] + extra
    m.write_conf(text)
    m.send_signal(signal.SIGHUP)
    m.wait_error("reload failed")
    assert not os.path.exists(free)
    assert os.path.exists(taken)
    assert m.workers() == workers
    assert roundtrip(uconnect(old)) == b"unix-payload"
    m.stop_all()
    assert not os.path.exists(old)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGQUIT], ids=["TERM", "QUIT"])
def test_socket_file_is_removed_at_stop(master, backend, sockdir, sig):
    b = backend(util.echo(), name="tcp")
    path = os.path.join(sockdir, "stop.sock")
    m = master("""
        server {
                 listen unix:@P@; proxy_pass 127.0.0.1:@B@; }
    """, P=path, B=b.port, main_extra="worker_processes 2;")
    m.wait_workers(2)
    wait_unix_listening(path, m.proc)
    rc = m.stop_all(sig)
    assert rc == 0
    assert not os.path.exists(path)


def test_reload_hands_over_a_staying_unix_listener_and_removes_a_dropped_one(
        master, backend, sockdir):
    b = backend(util.echo(), name="tcp")
    stays = os.path.join(sockdir, "stays.sock")
    goes = os.path.join(sockdir, "goes.sock")
    comes = os.path.join(sockdir, "comes.sock")
    body = """
        server {
                 listen unix:@S@; proxy_pass 127.0.0.1:@B@; }
        server {
                 listen unix:@G@; proxy_pass 127.0.0.1:@B@; }
    """
    m = master(body, S=stays, G=goes, B=b.port, main_extra="worker_processes 1;",
               log_format=FMT)
    m.wait_workers(1)
    wait_unix_listening(stays, m.proc)
    wait_unix_listening(goes, m.proc)
    inode = unix_inode(stays)
    file_ino = os.stat(stays).st_ino
    assert inode is not None

    text = m.text.replace("listen unix:%s;" % goes, "listen unix:%s;" % comes)
    m.reload(text)
    wait_unix_listening(comes, m.proc)
    util.wait_for(lambda: not os.path.exists(goes), "the dropped socket file to go")
    m.wait_error(r"\[warn\] \d+#\d+: deleting socket %s" % re.escape(goes))
    assert "deleting socket %s" % stays not in m.error_text()
    # The same listening socket, the same file: handed over, never re-bound.
    assert unix_inode(stays) == inode
    assert os.stat(stays).st_ino == file_ino
    assert roundtrip(uconnect(stays)) == b"unix-payload"
    with pytest.raises(OSError):
        uconnect(goes)

    m.stop_all()
    assert not os.path.exists(stays)
    assert not os.path.exists(comes)


# --------------------------------------------------------------------------
# config errors


def _t(snirelay_bin, workdir, body):
    conf = os.path.join(workdir, "t.conf")
    with open(conf, "w") as f:
        f.write("events {}\nstream {\n%s\n}\n" % body)
    p = subprocess.run([snirelay_bin, "-t", "-c", conf], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=util.DEADLINE)
    return p.returncode, p.stderr.decode(errors="replace"), conf


@pytest.mark.parametrize("body,msg,lineno", [
    ("server {\nlisten unix:;\nproxy_pass 127.0.0.1:9;\n}",
     'no path in the unix domain socket in "unix:" of the "listen" directive', 4),
    ("server {\nlisten unix:/%s;\nproxy_pass 127.0.0.1:9;\n}" % ("a" * 110),
     'too long path in the unix domain socket in "unix:/%s" of the "listen" directive'
     % ("a" * 110), 4),
    ("upstream u {\nserver unix:;\n}\nserver {\nlisten 127.0.0.1:9;\nproxy_pass u;\n}",
     'no path in the unix domain socket in upstream "unix:"', 4),
], ids=["listen-no-path", "listen-too-long", "server-no-path"])
def test_bad_unix_addresses_are_refused_with_nginx_text(snirelay_bin, workdir, body, msg,
                                                        lineno):
    rc, err, conf = _t(snirelay_bin, workdir, body)
    assert rc == 1, err
    assert "snirelay: [emerg] %s in %s:%d" % (msg, conf, lineno) in err, err


def test_set_real_ip_from_an_unknown_host_is_refused(snirelay_bin, workdir):
    rc, err, conf = _t(snirelay_bin, workdir,
                       "server {\nlisten 127.0.0.1:9;\nset_real_ip_from a/b;\n"
                       "proxy_pass 127.0.0.1:9;\n}")
    assert rc == 1, err
    assert 'snirelay: [emerg] host not found in set_real_ip_from "a/b" in %s:5' % conf \
        in err, err


def test_proxy_pass_without_a_path_is_refused(snirelay_bin, workdir):
    rc, err, conf = _t(snirelay_bin, workdir,
                       "server {\nlisten 127.0.0.1:9;\nproxy_pass unix:;\n}")
    assert rc == 1, err
    assert 'snirelay: [emerg] no path in the unix domain socket in upstream "unix:"' \
        in err, err
    assert conf in err


def test_client_chosen_name_never_names_an_implicit_tcp_upstream(relay, port, backend):
    """The same hole for TCP: `proxy_pass 127.0.0.1:P` elsewhere makes an
    implicit upstream named "127.0.0.1:P"; an SNI spelling that name is an
    address the client chose, and is refused."""
    b = backend(util.echo(), name="tcp")
    fixed, sni = port(), port()
    r = relay("""
        server {
            listen 127.0.0.1:@FIXED@;
            proxy_pass 127.0.0.1:@B@;
        }
        server {
            listen 127.0.0.1:@SNI@;
            ssl_preread on;
            proxy_pass $ssl_preread_server_name;
        }
    """, FIXED=fixed, SNI=sni, B=b.port, log_format=FMT)
    assert roundtrip(util.connect(fixed)) == b"unix-payload"
    b.wait_conns(1)
    assert line(r.wait_access(1)[0])["upstream_addr"] == b.addr
    s, _ = dns.send_hello(sni, b.addr)
    assert util.recv_all(s) == b""
    s.close()
    f = line(r.wait_access(2)[1])
    assert f["status"] == "403"
    assert f["ssl_preread_server_name"] == b.addr
    assert b.accepted == 1
    r.wait_error(r'the client-supplied value "%s" is an address, not a name'
                 % re.escape(b.addr))

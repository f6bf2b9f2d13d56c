"""Helpers for the snirelay integration tests.

Everything here talks to real sockets and real processes: certificates are
made with the openssl CLI, backends are Python servers in daemon threads, and
snirelay itself is the real binary started from a generated config.  Nothing
sleeps to wait; every wait polls a condition until a deadline.
"""

import hashlib
import os
import random
import re
import select
import signal
import socket
import ssl
import subprocess
import threading
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_BIN = os.path.join(REPO, "build", "snirelay")

# How long any single wait may take before the test fails.  Generous, because
# the same tests run against an ASan build on a small machine.
DEADLINE = 20.0


def bin_path():
    """The snirelay binary under test: $SNIRELAY_BIN or build/snirelay."""
    return os.path.abspath(os.environ.get("SNIRELAY_BIN", DEFAULT_BIN))


def sha(data):
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------
# waiting


class WaitTimeout(AssertionError):
    pass


def wait_for(cond, what, timeout=DEADLINE, interval=0.02):
    """Poll cond() until it returns a true value; return that value.

    Fails the test with `what` in the message after `timeout` seconds.
    """
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= end:
            raise WaitTimeout("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)  # ok-sleep: polling interval of a bounded wait


# --------------------------------------------------------------------------
# ports


_handed_out = set()
_port_lock = threading.Lock()


def _unclaimed_ports():
    """Ports the kernel never picks by itself (below or above
    net.ipv4.ip_local_port_range, from which bind(0) and connect() take
    theirs), or None when the range leaves too few: a port handed out from
    these cannot be taken by a test's own bind(0) or by a connection's
    source port before whoever asked binds it (or while a test relies on
    nothing listening there)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        return None
    if lo - 10000 >= 4096:
        return (10000, lo - 1)
    if 65535 - hi >= 4096:
        return (hi + 1, 65535)
    return None


def free_port(host="127.0.0.1"):
    """A TCP port nothing is bound to now, never handed out before in this
    run, from outside the kernel's ephemeral range when it leaves room."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    span = _unclaimed_ports()
    with _port_lock:
        for _ in range(200):
            want = random.randint(*span) if span else 0
            s = socket.socket(fam, socket.SOCK_STREAM)
            try:
                s.bind((host, want))
                port = s.getsockname()[1]
            except OSError:
                continue  # in use (or TIME_WAIT): try another
            finally:
                s.close()
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise RuntimeError("could not find a free port")


def _listening_ports():
    """Ports in TCP LISTEN state, read from /proc/net/tcp{,6}."""
    ports = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if len(parts) > 3 and parts[3] == "0A":
                        ports.add(int(parts[1].rsplit(":", 1)[1], 16))
        except FileNotFoundError:
            pass
    return ports


def local_conn_states(port):
    """TCP states (hex, as in /proc) of non-listening sockets whose local port is `port`."""
    states = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if len(parts) > 3 and parts[3] != "0A" and \
                            int(parts[1].rsplit(":", 1)[1], 16) == port:
                        states.append(parts[3])
        except FileNotFoundError:
            pass
    return states


def wait_proxy_closed_all(port, timeout=DEADLINE):
    """Wait until the proxy holds no connection accepted on `port`
    (TIME_WAIT, state 06, is a closed socket and does not count)."""
    wait_for(lambda: all(s == "06" for s in local_conn_states(port)),
             "the proxy to close every connection on port %d" % port, timeout)


def port_bindable(port, host="127.0.0.1"):
    """Whether nothing holds `port` on `host` (a fixed port a test needs)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def port_listening(port):
    """True when some socket listens on `port`.

    Read from /proc instead of connecting, so that waiting for snirelay to
    come up does not create a session (and an access-log line).
    """
    return port in _listening_ports()


# --------------------------------------------------------------------------
# certificates


class PKI:
    """A test CA and per-host certificates made with the openssl CLI."""

    def __init__(self, directory):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.ca_key = os.path.join(directory, "ca.key")
        self.ca = os.path.join(directory, "ca.crt")
        self._certs = {}
        self._lock = threading.Lock()
        run_ok(["openssl", "req", "-x509", "-newkey", "ec",
                "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", self.ca_key, "-out", self.ca, "-days", "2",
                "-subj", "/CN=snirelay test CA",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign"])

    def cert(self, cn, sans=None):
        """Return (certfile, keyfile) for `cn` with DNS SANs `sans` (default: [cn])."""
        sans = list(sans or [cn])
        key = (cn, tuple(sans))
        with self._lock:
            if key in self._certs:
                return self._certs[key]
            base = os.path.join(self.dir, "h%d" % len(self._certs))
            ext = base + ".ext"
            with open(ext, "w") as f:
                f.write("basicConstraints=CA:FALSE\n")
                f.write("keyUsage=critical,digitalSignature\n")
                f.write("extendedKeyUsage=serverAuth\n")
                f.write("subjectAltName=%s\n" % ",".join("DNS:" + s for s in sans))
            run_ok(["openssl", "req", "-new", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", base + ".key", "-out", base + ".csr",
                    "-subj", "/CN=" + cn])
            run_ok(["openssl", "x509", "-req", "-in", base + ".csr",
                    "-CA", self.ca, "-CAkey", self.ca_key, "-CAcreateserial",
                    "-days", "2", "-extfile", ext, "-out", base + ".crt"])
            self._certs[key] = (base + ".crt", base + ".key")
            return self._certs[key]

    def client_context(self):
        ctx = ssl.create_default_context(cafile=self.ca)
        return ctx


def run_ok(argv, **kw):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    if p.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (argv[0], p.returncode,
                                                   p.stderr.decode(errors="replace")))
    return p


# --------------------------------------------------------------------------
# sockets


def recv_all(sock, limit=None):
    """Read until EOF (or `limit` bytes); return the bytes."""
    chunks = []
    n = 0
    while limit is None or n < limit:
        try:
            b = sock.recv(65536 if limit is None else min(65536, limit - n))
        except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            break
        if not b:
            break
        chunks.append(b)
        n += len(b)
    return b"".join(chunks)


def recv_exact(sock, n):
    data = recv_all(sock, n)
    if len(data) != n:
        raise AssertionError("expected %d bytes, got %d before EOF" % (n, len(data)))
    return data


def connect(port, host="127.0.0.1", timeout=DEADLINE, nodelay=True):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if nodelay:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.connect((host, port))
    return s


def wait_closed(sock, timeout=DEADLINE):
    """Wait until the peer closes `sock`; return the bytes received meanwhile.

    Fails if the socket is still open after `timeout` seconds.
    """
    sock.settimeout(timeout)
    chunks = []
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            raise AssertionError("connection not closed by the proxy within %.1fs" % timeout)
        sock.settimeout(left)
        try:
            b = sock.recv(65536)
        except ConnectionResetError:
            return b"".join(chunks)
        except socket.timeout:
            raise AssertionError("connection not closed by the proxy within %.1fs" % timeout)
        if not b:
            return b"".join(chunks)
        chunks.append(b)


def ssl_request(port, server_name, ca, payload=b"ping\n", host="127.0.0.1",
                check_hostname=True, alpn=None):
    """TLS-connect through the proxy; return (peercert dict, reply bytes, version)."""
    ctx = ssl.create_default_context(cafile=ca)
    if not check_hostname:
        ctx.check_hostname = False
    if alpn:
        ctx.set_alpn_protocols(alpn)
    raw = connect(port, host)
    try:
        s = ctx.wrap_socket(raw, server_hostname=server_name)
        cert = s.getpeercert()
        version = s.version()
        s.sendall(payload)
        reply = recv_all(s)
        s.close()
    finally:
        raw.close()
    return cert, reply, version


def cert_cn(cert):
    for rdn in cert.get("subject", ()):
        for k, v in rdn:
            if k == "commonName":
                return v
    return None


def cert_sans(cert):
    return [v for k, v in cert.get("subjectAltName", ()) if k == "DNS"]


def fill_backlog(sock_listen, host="127.0.0.1"):
    """Fill the accept queue of a listen(0) socket; return the filler sockets.

    After this, new SYNs to the port are dropped by the kernel, so a connect()
    to it neither succeeds nor fails: a blackhole on loopback.
    """
    port = sock_listen.getsockname()[1]
    fillers = []
    for _ in range(16):
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.setblocking(False)
        fillers.append(c)
        try:
            c.connect((host, port))
        except BlockingIOError:
            pass
        # A connect that does not finish within a second hit a full queue.
        _, w, _ = select.select([], [c], [], 1.0)
        if not w:
            return fillers
    for c in fillers:
        c.close()
    raise RuntimeError("could not fill the accept queue of port %d" % port)


# --------------------------------------------------------------------------
# backends


class Backend:
    """A TCP server on a daemon thread, one daemon thread per connection.

    `handler(conn, info)` serves one connection; `info` is a dict the handler
    may fill in (it is appended to self.conns).  Closed on stop().
    """

    def __init__(self, handler, name="backend", host="127.0.0.1", port=None,
                 backlog=128, ssl_context=None):
        self.name = name
        self.handler = handler
        self.host = host
        self.ssl_context = ssl_context
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port or 0))
        self.port = self.sock.getsockname()[1]
        self.sock.listen(backlog)
        self.conns = []
        self.errors = []
        self._open = []
        self._lock = threading.Lock()
        self._stopped = False
        self._thread = threading.Thread(target=self._accept_loop, daemon=True,
                                        name="accept-%s" % name)
        self._thread.start()

    @property
    def addr(self):
        if ":" in self.host:
            return "[%s]:%d" % (self.host, self.port)
        return "%s:%d" % (self.host, self.port)

    @property
    def accepted(self):
        with self._lock:
            return len(self.conns)

    def _accept_loop(self):
        while not self._stopped:
            try:
                conn, peer = self.sock.accept()
            except OSError:
                return
            info = {"peer": peer, "done": threading.Event()}
            with self._lock:
                if self._stopped:
                    conn.close()
                    return
                self.conns.append(info)
                self._open.append(conn)
            t = threading.Thread(target=self._serve, args=(conn, info), daemon=True)
            t.start()

    def _serve(self, conn, info):
        conn.settimeout(DEADLINE * 3)
        try:
            if self.ssl_context is not None:
                conn = self.ssl_context.wrap_socket(conn, server_side=True)
                with self._lock:
                    self._open.append(conn)
            self.handler(conn, info)
        except Exception as e:  # recorded; tests assert on self.errors
            if not self._stopped:
                info["error"] = repr(e)
                self.errors.append(repr(e))
        finally:
            try:
                conn.close()
            except OSError:
                pass
            info["done"].set()

    def wait_conns(self, n, timeout=DEADLINE):
        wait_for(lambda: self.accepted >= n, "%d connection(s) at %s" % (n, self.name),
                 timeout)
        return self.conns[:n]

    def stop_listening(self):
        """Close the listening socket: later connects are refused.

        shutdown() first: a bare close() does not wake the thread blocked in
        accept(), and the kernel would keep the socket listening.
        """
        for op in (lambda: self.sock.shutdown(socket.SHUT_RDWR), self.sock.close):
            try:
                op()
            except OSError:
                pass
        wait_for(lambda: not port_listening(self.port),
                 "port %d to stop listening" % self.port)

    def stop(self):
        self._stopped = True
        self.stop_listening()
        with self._lock:
            socks = list(self._open)
        for c in socks:
            for op in (lambda: c.shutdown(socket.SHUT_RDWR), c.close):
                try:
                    op()
                except (OSError, ValueError):
                    pass


def reply_after(n, name, hold=False):
    """Handler: read exactly n bytes, reply `name` + sha256 of them.

    Then close, or with hold=True keep reading until the peer's EOF (what
    came after is stored as info["tail"]).
    """
    def handler(conn, info):
        data = recv_all(conn, n)
        info["data"] = data
        conn.sendall(("%s %s\n" % (name, sha(data))).encode())
        if hold:
            info["tail"] = recv_all(conn)
    return handler


def record_to_eof():
    """Handler: record everything until EOF, reply nothing."""
    def handler(conn, info):
        info["data"] = recv_all(conn)
    return handler


def tls_reply(name):
    """Handler for a TLS backend: read one line, reply `name`, close."""
    def handler(conn, info):
        buf = b""
        while b"\n" not in buf:
            b = conn.recv(4096)
            if not b:
                break
            buf += b
        info["data"] = buf
        info["alpn"] = conn.selected_alpn_protocol()
        info["version"] = conn.version()
        conn.sendall(("%s\n" % name).encode())
        try:
            conn.unwrap()
        except (OSError, ssl.SSLError, ValueError):
            pass
    return handler


def server_context(certfile, keyfile, alpn=None, sni_log=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certfile, keyfile)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if sni_log is not None:
        def cb(sslobj, name, _ctx):
            sni_log.append(name)
        ctx.sni_callback = cb
    return ctx


# --------------------------------------------------------------------------
# snirelay


def _die_with_parent():
    """preexec_fn: the child gets SIGKILL if the test runner dies first."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except Exception:
        pass


# Every Snirelay started and not yet stopped; the session hook in conftest.py
# stops leftovers, so no test (or helper misuse) can leak a process.
LIVE = set()


class Snirelay:
    """One snirelay process on a generated config."""

    def __init__(self, workdir, text, binary):
        self.dir = workdir
        self.binary = binary
        self.conf = os.path.join(workdir, "snirelay.conf")
        self.pid_file = os.path.join(workdir, "snirelay.pid")
        self.error_log = os.path.join(workdir, "error.log")
        self.access_log = os.path.join(workdir, "access.log")
        self.stdout_path = os.path.join(workdir, "stdout.txt")
        self.stderr_path = os.path.join(workdir, "stderr.txt")
        self.text = text
        with open(self.conf, "w") as f:
            f.write(text)
        self.listen_ports = [int(p) for p in
                             re.findall(r"^\s*listen\s+(?:\S*:)?(\d+)[\s;]", text, re.M)]
        self.proc = None
        self.returncode = None
        self.env = None       # extra environment variables for start()
        self.launcher = []    # argv run in front of the binary (it execs it)

    def start(self, wait=True):
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        env = dict(os.environ, **self.env) if self.env else None
        self.proc = subprocess.Popen(self.launcher + [self.binary, "-c", self.conf],
                                     stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=self._err,
                                     cwd=self.dir, preexec_fn=_die_with_parent,
                                     env=env)
        LIVE.add(self)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("snirelay exited with %s during startup:\n%s"
                                     % (self.proc.returncode, self.stderr()))
            return all(port_listening(p) for p in self.listen_ports)
        wait_for(ready, "snirelay to listen on %s" % self.listen_ports)

    @property
    def pid(self):
        return self.proc.pid

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def error_text(self):
        try:
            with open(self.error_log, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def access_lines(self, path=None):
        try:
            with open(path or self.access_log, "rb") as f:
                data = f.read().decode("latin-1")
        except FileNotFoundError:
            return []
        return [l for l in data.split("\n") if l]

    def wait_access(self, n, path=None, timeout=DEADLINE):
        """Wait until the access log has at least n lines; return them."""
        wait_for(lambda: len(self.access_lines(path)) >= n,
                 "%d access-log line(s) in %s" % (n, path or self.access_log), timeout)
        return self.access_lines(path)

    def wait_error(self, pattern, timeout=DEADLINE):
        rx = re.compile(pattern)
        return wait_for(lambda: rx.search(self.error_text()),
                        "error log to match %r" % pattern, timeout)

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Send `sig` and wait; kill -9 after `timeout` and raise.  Returns the exit code."""
        if self.proc is None:
            return None
        LIVE.discard(self)
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self._close_files()
                raise AssertionError("snirelay did not exit within %.0fs of signal %d"
                                     % (timeout, sig))
        self.returncode = self.proc.returncode
        self._close_files()
        return self.returncode

    def _close_files(self):
        for f in (getattr(self, "_out", None), getattr(self, "_err", None)):
            if f:
                f.close()


# Standard log format: '|'-separated, parsed by parse_line().
LOG_FIELDS = ["remote_addr", "remote_port", "status", "bytes_sent", "bytes_received",
              "upstream_addr", "ssl_preread_server_name", "ssl_preread_status",
              "ssl_preread_alpn_protocols", "ssl_preread_protocol"]
LOG_FORMAT = "|".join("$" + f for f in LOG_FIELDS)


def parse_line(line, fields=None):
    fields = fields or LOG_FIELDS
    parts = line.split("|")
    if len(parts) != len(fields):
        raise AssertionError("log line has %d fields, want %d: %r"
                             % (len(parts), len(fields), line))
    return dict(zip(fields, parts))


def empty(v):
    """An empty variable as it appears in the access log (nginx writes '-')."""
    return v in ("", "-")


def render(text, **subs):
    """Replace @NAME@ tokens in a config template."""
    for k, v in subs.items():
        text = text.replace("@%s@" % k, str(v))
    left = re.findall(r"@[A-Z0-9_]+@", text)
    if left:
        raise ValueError("unreplaced tokens in config: %s" % left)
    return text


def config(workdir, stream_body, main_extra="", log_format=LOG_FORMAT,
           access_extra=""):
    """A complete config with absolute paths in `workdir` around `stream_body`."""
    return (
        "pid %(d)s/snirelay.pid;\n"
        "error_log %(d)s/error.log info;\n"
        "%(main)s\n"
        "events { worker_connections 1024; }\n"
        "stream {\n"
        "    log_format t '%(fmt)s';\n"
        "    access_log %(d)s/access.log t%(ax)s;\n"
        "%(body)s\n"
        "}\n" % {"d": workdir, "main": main_extra, "fmt": log_format,
                 "ax": access_extra, "body": stream_body})


# --------------------------------------------------------------------------
# ClientHello surgery


def corrupt_sni_list_length(handshake, server_name):
    """Make the server_name list length overrun its extension: a malformed hello."""
    name = server_name.encode() if isinstance(server_name, str) else server_name
    i = handshake.find(name)
    assert i > 9, "server name not found in hello"
    # ext type(2) ext len(2) list len(2) name type(1) name len(2) name
    assert handshake[i - 9:i - 7] == b"\x00\x00", "unexpected SNI layout"
    assert int.from_bytes(handshake[i - 2:i], "big") == len(name)
    bad = bytearray(handshake)
    bad[i - 5:i - 3] = (len(name) + 3 + 200).to_bytes(2, "big")
    return bytes(bad)


# --------------------------------------------------------------------------
# processes: master and workers (appended for the process/reload/limits tests)


def child_pids(pid):
    """Pids of the live children of `pid` (from /proc/PID/task/*/children)."""
    out = set()
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except FileNotFoundError:
        return []
    for t in tasks:
        try:
            with open("/proc/%d/task/%s/children" % (pid, t)) as f:
                out.update(int(x) for x in f.read().split())
        except (FileNotFoundError, ProcessLookupError):
            pass
    return sorted(p for p in out if pid_alive(p))


def has_event_loop(pid):
    """True once `pid` has an epoll descriptor: a worker that got this far has
    set up its signal handling (a fresh fork of the master has none)."""
    d = "/proc/%d/fd" % pid
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        return False
    for n in names:
        try:
            if os.readlink(os.path.join(d, n)) == "anon_inode:[eventpoll]":
                return True
        except OSError:
            pass
    return False


def _stat_fields(pid):
    """Fields of /proc/PID/stat after the command name (field 3 is index 0)."""
    with open("/proc/%d/stat" % pid) as f:
        text = f.read()
    return text[text.rindex(")") + 2:].split()


def pid_alive(pid):
    """True while `pid` exists and is not a zombie."""
    try:
        return _stat_fields(pid)[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return False


def parent_pid(pid):
    try:
        return int(_stat_fields(pid)[1])
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return None


def cpu_ticks(pid):
    """utime + stime of `pid` in clock ticks (0 once it is gone)."""
    try:
        f = _stat_fields(pid)
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return int(f[11]) + int(f[12])   # fields 14 and 15


def start_age(pid):
    """Seconds since `pid` started (from its starttime and /proc/uptime)."""
    hz = os.sysconf("SC_CLK_TCK")
    start = int(_stat_fields(pid)[19]) / hz          # field 22
    with open("/proc/uptime") as f:
        up = float(f.read().split()[0])
    return up - start


def _tcp_rows():
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    p = line.split()
                    if len(p) > 9:
                        yield (int(p[1].rsplit(":", 1)[1], 16),
                               int(p[2].rsplit(":", 1)[1], 16), p[3], int(p[9]))
        except FileNotFoundError:
            pass


def listen_inodes(port):
    """Socket inodes of the sockets listening on `port`."""
    return sorted(ino for lp, _, st, ino in _tcp_rows() if lp == port and st == "0A")


def accepted_inode(listen_port, client_port):
    """Inode of the proxy's accepted socket of the client on `client_port` (or None)."""
    for lp, rp, st, ino in _tcp_rows():
        if lp == listen_port and rp == client_port and st != "0A" and ino:
            return ino
    return None


def session_socket_inodes(pid, listen_port, backend_port):
    """Inodes of `pid`'s TCP sockets that belong to sessions: accepted on
    `listen_port`, or connected to `backend_port`."""
    mine = socket_inodes(pid)
    return {ino for lp, rp, st, ino in _tcp_rows()
            if ino in mine and ((lp == listen_port and st != "0A") or
                                rp == backend_port)}


def open_files(pid):
    """Paths of the files `pid` has open (readlink of /proc/PID/fd/*)."""
    out = set()
    d = "/proc/%d/fd" % pid
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        return out
    for n in names:
        try:
            out.add(os.readlink(os.path.join(d, n)))
        except OSError:
            pass
    return out


def socket_inodes(pid):
    """Socket inodes among the open descriptors of `pid`."""
    out = set()
    d = "/proc/%d/fd" % pid
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        return out
    for n in names:
        try:
            link = os.readlink(os.path.join(d, n))
        except OSError:
            continue
        if link.startswith("socket:["):
            out.add(int(link[8:-1]))
    return out


def owner_of(client_sock, listen_port, pids):
    """Which of `pids` holds the proxy side of `client_sock` (or None)."""
    ino = accepted_inode(listen_port, client_sock.getsockname()[1])
    if ino is None:
        return None
    for p in pids:
        if ino in socket_inodes(p):
            return p
    return None


def echo():
    """Handler: echo every byte back until the peer's EOF; info["n"] counts them."""
    def handler(conn, info):
        info["n"] = 0
        while True:
            b = conn.recv(65536)
            if not b:
                break
            info["n"] += len(b)
            conn.sendall(b)
    return handler


def echo_roundtrip(sock, payload):
    """Send `payload` on `sock` and read the same number of bytes back."""
    sock.sendall(payload)
    return recv_exact(sock, len(payload))


def config_events(workdir, stream_body, main_extra="", log_format=LOG_FORMAT,
                  access_extra="", events="worker_connections 1024;"):
    """config() with another events{} body."""
    text = config(workdir, stream_body, main_extra=main_extra,
                  log_format=log_format, access_extra=access_extra)
    return text.replace("events { worker_connections 1024; }",
                        "events { %s }" % events, 1)


class Master(Snirelay):
    """A snirelay master whose worker processes the test watches.

    Every worker pid ever seen is kept in self.seen, so that the fixture can
    check at teardown that none of them outlived the test.
    """

    def __init__(self, workdir, text, binary):
        super().__init__(workdir, text, binary)
        self.seen = set()
        self.allow_log = []
        self.expect_exit = False     # the test sent a stop signal itself

    def workers(self):
        """The master's live child processes now (sorted pids)."""
        if self.proc is None:
            return []
        ws = child_pids(self.proc.pid)
        self.seen.update(ws)
        return ws

    def wait_workers(self, n, exclude=(), timeout=DEADLINE, ready=True):
        """Wait until the master has exactly n children outside `exclude`,
        each logged as started (and with ready=True, each running its event
        loop); return them."""
        exclude = set(exclude)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("master exited with %s:\n%s"
                                     % (self.proc.returncode, self.error_text()[-3000:]))
            ws = [w for w in self.workers() if w not in exclude]
            if len(ws) != n:
                return None
            log = self.error_text()
            if not all("start worker process %d" % w in log for w in ws):
                return None
            if ready and not all(has_event_loop(w) for w in ws):
                return None
            return ws
        return wait_for(ready, "%d new worker(s) of master %d" % (n, self.proc.pid),
                        timeout)

    def wait_reopened(self, path, pids=None, timeout=DEADLINE):
        """After renaming the log at `path` and USR1: wait until every worker
        (or each of `pids`) has `path` open again."""
        def done():
            return all(path in open_files(p)
                       for p in (pids if pids is not None else self.workers()))
        wait_for(done, "the workers to reopen %s" % path, timeout)

    def write_conf(self, text):
        self.text = text
        tmp = self.conf + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.conf)

    def count_errors(self, pattern):
        return len(re.findall(pattern, self.error_text()))

    def reload(self, text=None, workers=None, timeout=DEADLINE):
        """Optionally write a new config, HUP, and wait for the new workers
        (`workers` of them, default: the config's worker_processes).  Returns them."""
        old = self.workers()
        if workers is None:
            mt = re.search(r"^\s*worker_processes\s+(\d+)\s*;", text or self.text, re.M)
            workers = int(mt.group(1)) if mt else 1
        n = workers
        before = self.count_errors(r"reconfiguring")
        if text is not None:
            self.write_conf(text)
        self.send_signal(signal.SIGHUP)
        wait_for(lambda: self.count_errors(r"reconfiguring") > before,
                 "the master to log 'reconfiguring'", timeout)
        return self.wait_workers(n, exclude=old, timeout=timeout)

    def stop_all(self, sig=signal.SIGTERM, timeout=10.0):
        """stop() and then wait until no worker ever seen is alive."""
        self.workers()
        rc = self.stop(sig, timeout)
        left = wait_for_gone(self.seen, comm=os.path.basename(self.binary),
                             timeout=timeout)
        if left:
            raise AssertionError("worker(s) %s outlived master %d" % (left, self.proc.pid))
        return rc


def pid_comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except (FileNotFoundError, ProcessLookupError):
        return None


def wait_for_gone(pids, comm=None, timeout=DEADLINE):
    """Wait until none of `pids` is alive; SIGKILL and return those that stayed.

    With `comm`, a pid counts only while its command name is `comm` (so a
    recycled pid of another program is never killed).
    """
    def alive(p):
        return pid_alive(p) and (comm is None or pid_comm(p) == comm[:15])
    end = time.monotonic() + timeout
    while True:
        left = [p for p in pids if alive(p)]
        if not left or time.monotonic() >= end:
            break
        time.sleep(0.02)  # ok-sleep: polling interval of a bounded wait
    for p in left:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left


def config_test(snirelay_bin, workdir, text, name="t.conf"):
    """Write `text` to workdir/name and run `snirelay -t` on it; returns
    (exit code, stderr text, the file's path)."""
    path = os.path.join(workdir, name)
    with open(path, "w") as f:
        f.write(text)
    p = subprocess.run([snirelay_bin, "-t", "-c", path], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    return p.returncode, p.stderr.decode(errors="replace"), path


def session_to(L, backends, log):
    """One session through the proxy on port L (a byte sent, then FIN);
    returns the key in `backends` ({key: Backend}) of the backend that got
    it, or None when the proxy closed it without one (the backends record
    until EOF, so by the time the client sees EOF any backend connection
    was accepted). Returns once the session's access-log line is written
    (log: the relay or master), so the last line read afterwards is this
    session's."""
    before = {k: b.accepted for k, b in backends.items()}
    logged = len(log.access_lines())
    s = connect(L)
    try:
        s.sendall(b"x")
        s.shutdown(socket.SHUT_WR)
        recv_all(s)
    except OSError:
        pass  # closed by the proxy first: no server
    s.close()
    log.wait_access(logged + 1)
    got = [k for k, b in backends.items() if b.accepted > before[k]]
    return got[0] if got else None


def rss_kib(pid):
    """Resident set size of `pid` in KiB (VmRSS of /proc/PID/status)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)

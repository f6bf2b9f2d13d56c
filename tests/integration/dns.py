"""A real DNS server for the resolver tests: dnsmasq on a loopback port.

Dnsmasq answers only from an addn-hosts file the test writes; it never
forwards (no upstream servers, --no-resolv, --no-hosts, no config file), so
no query leaves the machine.  The zone `test` is local: a .test name that is
not in the file gets NXDOMAIN; any other unknown name gets REFUSED.

    d = Dnsmasq(directory, {"a.test": ["127.0.0.21"]}, ttl=1).start()
    d.addr                      # "127.0.0.1:PORT", for `resolver`
    d = Dnsmasq(directory, records, host="127.53.0.7", port=53)  # a fixed place
    d.resolv_conf(path)         # write a resolv.conf naming it (port 53 only)
    d.set_records({...})        # rewrite the file, SIGHUP, wait for the re-read
    d.count("a.test", "A")      # queries for a name seen so far (query log)
    d.stop()

SilentResolver is a UDP socket that reads queries and never answers;
SlowResolver answers each query (A and AAAA records from a dict, NXDOMAIN
for other names) only after a delay, which may be 0.

Also here: an access-log format for the forwarding tests (FWD_FORMAT,
parsed by fwd_line()) and small helpers to send a ClientHello or an HTTP
head and to bind several backends on one port number on different
127.0.0.x addresses (proxy_pass NAME:PORT uses one port for all names).
"""

import os
import re
import signal
import socket
import struct
import subprocess
import threading
import time

import hello
import util

DNSMASQ = "/usr/sbin/dnsmasq"

# A name the readiness probe asks for; count()/queries() leave it out.
PROBE_NAME = "ready.probe.test"

_QUERY_RX = re.compile(r"query\[(\w+)\] (\S+) from ")

FWD_FIELDS = ["status", "bytes_sent", "bytes_received", "upstream_addr",
              "ssl_preread_server_name", "http_preread_host",
              "ssl_preread_status"]
FWD_FORMAT = "|".join("$" + f for f in FWD_FIELDS)


def fwd_line(line):
    """Parse an access-log line written with FWD_FORMAT."""
    return util.parse_line(line, FWD_FIELDS)


def free_udp_tcp_port(host="127.0.0.1"):
    """A port free for both UDP and TCP on `host` (dnsmasq binds both)."""
    for _ in range(50):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            u.bind((host, 0))
            p = u.getsockname()[1]
            try:
                t.bind((host, p))
            except OSError:
                continue
            with util._port_lock:
                if p in util._handed_out:
                    continue
                util._handed_out.add(p)
            return p
        finally:
            u.close()
            t.close()
    raise RuntimeError("no free UDP+TCP port")


def build_query(name, qtype=1, qid=0x5151):
    """A DNS query packet (RD set) for `name`, type `qtype` (1 A, 28 AAAA)."""
    qname = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".") if l)
    return (struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + qname + b"\0"
            + struct.pack("!HH", qtype, 1))


def ask(port, name, qtype=1, timeout=1.0, host="127.0.0.1"):
    """Send one query to host:port; return the rcode, or None on no answer."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(build_query(name, qtype), (host, port))
        r = s.recv(4096)
        return r[3] & 0x0F
    except (socket.timeout, ConnectionRefusedError):
        return None
    finally:
        s.close()


def _hosts_text(records):
    """records: {name: [addr, ...]} or [(addr, name), ...] -> hosts-file text."""
    if isinstance(records, dict):
        pairs = [(a, n) for n, addrs in records.items()
                 for a in ([addrs] if isinstance(addrs, str) else addrs)]
    else:
        pairs = list(records)
    return "".join("%s %s\n" % (a, n) for a, n in pairs)


class Dnsmasq:
    """One dnsmasq process answering from a hosts file (see module doc)."""

    def __init__(self, directory, records=None, ttl=0, local_zone="test",
                 extra=(), host="127.0.0.1", port=None):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.hosts = os.path.join(directory, "dns.hosts")
        self.log = os.path.join(directory, "dnsmasq.log")
        self.pid_file = os.path.join(directory, "dnsmasq.pid")
        self.out = os.path.join(directory, "dnsmasq.out")
        self.ttl = ttl
        self.local_zone = local_zone
        self.extra = list(extra)
        self.host = host
        self.fixed_port = port
        self.port = None
        self.proc = None
        with open(self.hosts, "w") as f:
            f.write(_hosts_text(records or {}))

    @property
    def addr(self):
        return "%s:%d" % (self.host, self.port)

    def resolv_conf(self, path):
        """Write a resolv.conf at path naming this server (which must be on
        port 53: resolv.conf has no port); returns path."""
        assert self.port == 53, "a resolv.conf can only name port 53"
        with open(path, "w") as f:
            f.write("# written by the test: its own dnsmasq, never the "
                    "machine's resolver\nnameserver %s\n" % self.host)
        return path

    def argv(self):
        a = [DNSMASQ, "--keep-in-foreground", "--conf-file=/dev/null",
             "--no-resolv", "--no-hosts", "--no-poll", "--bind-interfaces",
             "--listen-address=%s" % self.host, "--port=%d" % self.port,
             "--addn-hosts=%s" % self.hosts, "--local-ttl=%d" % self.ttl,
             "--log-queries", "--log-facility=%s" % self.log,
             "--pid-file=%s" % self.pid_file, "--user=root", "--group=root",
             "--cache-size=0"]
        if self.local_zone:
            a.append("--local=/%s/" % self.local_zone)
        return a + self.extra

    def start(self):
        last = ""
        for _ in range(5):          # retry if the port was taken meanwhile
            self.port = self.fixed_port or free_udp_tcp_port(self.host)
            with open(self.out, "wb") as out:
                self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                             stdout=out, stderr=subprocess.STDOUT,
                                             preexec_fn=util._die_with_parent)
            try:
                util.wait_for(self._ready, "dnsmasq to answer on port %d" % self.port)
                return self
            except _Exited:
                last = self._out_text()
                self.proc = None
        raise AssertionError("dnsmasq would not start:\n" + last)

    def _out_text(self):
        try:
            with open(self.out, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def _ready(self):
        if self.proc.poll() is not None:
            raise _Exited()
        return ask(self.port, PROBE_NAME, timeout=0.2, host=self.host) is not None

    def log_text(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def queries(self):
        """[(qtype, name)] of every query logged, the readiness probes left out."""
        return [(m.group(1), m.group(2).lower())
                for m in _QUERY_RX.finditer(self.log_text())
                if m.group(2).lower() != PROBE_NAME]

    def count(self, name, qtype="A"):
        """How many `qtype` queries for `name` dnsmasq has logged."""
        name = name.lower().rstrip(".")
        return sum(1 for t, n in self.queries() if t == qtype and n == name)

    def _reads(self):
        return self.log_text().count("read %s - " % self.hosts)

    def set_records(self, records):
        """Replace every record; returns once dnsmasq has re-read the file."""
        before = self._reads()
        tmp = self.hosts + ".new"
        with open(tmp, "w") as f:
            f.write(_hosts_text(records))
        os.replace(tmp, self.hosts)
        self.proc.send_signal(signal.SIGHUP)
        util.wait_for(lambda: self._reads() > before, "dnsmasq to re-read its hosts file")

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class _Exited(Exception):
    pass


def system_dnsmasq(directory, records, ttl=0):
    """A started Dnsmasq on port 53 of a loopback address of its own
    (127.53.X.Y), for `resolver system=FILE` (resolv.conf names no port),
    with FILE written at directory/resolv.conf. Needs root (port 53);
    pytest skips otherwise. Returns (dnsmasq, path)."""
    import pytest
    if os.geteuid() != 0:
        pytest.skip("port 53 needs root")
    last = None
    for i in range(8):
        host = "127.53.%d.%d" % (os.getpid() % 250 + 1, (i * 31 + 7) % 250 + 1)
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.bind((host, 53))
        except OSError as e:
            last = e
            continue
        finally:
            probe.close()
        d = Dnsmasq(os.path.join(directory, "sysdns%d" % i), records, ttl=ttl,
                    host=host, port=53)
        try:
            d.start()
        except AssertionError as e:
            last = e
            continue
        return d, d.resolv_conf(os.path.join(directory, "resolv.conf"))
    raise AssertionError("no loopback address with port 53 free: %s" % last)


class SilentResolver:
    """A UDP socket on a loopback port that reads DNS queries and never answers.

    self.names lists the names asked, in order.
    """

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.names = []
        self._lock = threading.Lock()
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name="silent-dns")
        self._thread.start()

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def _loop(self):
        while not self._stopped:
            try:
                pkt, _ = self.sock.recvfrom(4096)
            except OSError:
                return
            with self._lock:
                self.names.append(_qname(pkt))

    def asked(self, name):
        with self._lock:
            return sum(1 for n in self.names if n == name)

    def stop(self):
        self._stopped = True
        # A datagram to ourselves wakes recvfrom(); then close.
        try:
            w = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            w.sendto(b"", ("127.0.0.1", self.port))
            w.close()
        except OSError:
            pass
        self._thread.join(5)
        self.sock.close()


class SlowResolver:
    """A UDP DNS server on a loopback port that answers every query after
    `delay` seconds: A records (the IPv4 addresses) and AAAA records (the
    IPv6 ones) from `records` ({name: [addr, ...]}) with `ttl`, an empty
    answer for other types of a known name, NXDOMAIN for unknown names; a name in `cnames` ({name: target}) gets only a CNAME
    record, for every type, the target left for the asker to chase (as a
    server that does not follow chains answers); a name in `srv` ({name:
    [(priority, weight, port, target), ...]}) has those SRV records; a
    name in `servfail` (a set) gets SERVFAIL.  srv and servfail may be
    changed while it runs.  self.asked lists (time, qtype, name) of every
    query, retransmissions included (each is answered, late, in its
    turn)."""

    def __init__(self, records, delay, ttl=60, cnames=None, srv=None):
        self.records = {n.lower(): ([a] if isinstance(a, str) else list(a))
                        for n, a in records.items()}
        self.cnames = {n.lower(): t.lower() for n, t in (cnames or {}).items()}
        self.srv = dict(srv or {})
        self.servfail = set()
        self.steps = {}
        self._step = {}
        self.delay = delay
        self.ttl = ttl
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.asked = []
        self._lock = threading.Lock()
        self._stopped = False
        self._timers = []
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name="slow-dns")
        self._thread.start()

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def _loop(self):
        while not self._stopped:
            try:
                pkt, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            if self._stopped or len(pkt) < 12:
                continue
            with self._lock:
                self.asked.append((time.monotonic(), _qtype(pkt), _qname(pkt)))
                t = threading.Timer(self.delay, self._answer, (pkt, peer))
                t.daemon = True
                self._timers.append(t)
            t.start()

    def _answer(self, pkt, peer):
        if self._stopped:
            return
        i = 12
        while pkt[i]:
            i += 1 + pkt[i]
        question = pkt[12:i + 5]
        name, qtype = _qname(pkt), _qtype(pkt)
        addrs = self.records.get(name)
        if name in self.steps:
            with self._lock:
                i = self._step.get(name, -1)
                if qtype == 1:
                    i = min(i + 1, len(self.steps[name]) - 1)
                    self._step[name] = i
                addrs = list(self.steps[name][max(i, 0)])
        srv = self.srv.get(name)
        rcode = 3 if addrs is None and srv is None and name not in self.cnames else 0
        answers = b""
        n = 0
        if name in self.servfail:
            rcode = 2
        elif name in self.cnames:
            target = _encode_name(self.cnames[name])
            answers += (struct.pack("!HHHIH", 0xC00C, 5, 1, self.ttl, len(target))
                        + target)
            n += 1
        elif qtype == 1 and addrs:
            for a in addrs:
                if ":" in a:
                    continue
                answers += (struct.pack("!HHHIH", 0xC00C, 1, 1, self.ttl, 4)
                            + socket.inet_aton(a))
                n += 1
        elif qtype == 28 and addrs:
            for a in addrs:
                if ":" not in a:
                    continue
                answers += (struct.pack("!HHHIH", 0xC00C, 28, 1, self.ttl, 16)
                            + socket.inet_pton(socket.AF_INET6, a))
                n += 1
        elif qtype == 33 and srv:
            for prio, weight, port, target in srv:
                rdata = struct.pack("!HHH", prio, weight, port) + _encode_name(target)
                answers += (struct.pack("!HHHIH", 0xC00C, 33, 1, self.ttl, len(rdata))
                            + rdata)
                n += 1
        flags = 0x8180 | rcode
        reply = (pkt[:2] + struct.pack("!HHHHH", flags, 1, n, 0, 0)
                 + question + answers)
        try:
            self.sock.sendto(reply, peer)
        except OSError:
            pass

    def count(self, name, qtype=1):
        with self._lock:
            return sum(1 for _, t, n in self.asked if n == name and t == qtype)

    def stop(self):
        self._stopped = True
        with self._lock:
            timers = list(self._timers)
        for t in timers:
            t.cancel()
        try:
            w = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            w.sendto(b"", ("127.0.0.1", self.port))
            w.close()
        except OSError:
            pass
        self._thread.join(5)
        self.sock.close()


def _encode_name(name):
    """name in DNS wire form (labels, no compression)."""
    return b"".join(bytes([len(l)]) + l.encode("ascii")
                    for l in name.split(".") if l) + b"\0"


def _qname(pkt):
    """The question name of a DNS packet, lower-cased ('' if unparsable)."""
    labels = []
    i = 12
    try:
        while pkt[i]:
            n = pkt[i]
            labels.append(pkt[i + 1:i + 1 + n].decode("ascii", "replace"))
            i += 1 + n
    except IndexError:
        return ""
    return ".".join(labels).lower()


# --------------------------------------------------------------------------
# clients and backends for the forwarding tests


def send_hello(port, name):
    """Connect to the proxy and send a ClientHello with SNI `name`; return (sock, bytes)."""
    data = hello.records(hello.build_client_hello(server_name=name))
    s = util.connect(port)
    s.sendall(data)
    return s, data


def http_head(host, path="/", extra=b""):
    h = host.encode() if isinstance(host, str) else host
    return (b"GET " + path.encode() + b" HTTP/1.1\r\nHost: " + h +
            b"\r\nUser-Agent: t\r\n" + extra + b"\r\n")


def http_reply(name):
    """Backend handler: read a request head (info["data"]), answer `name`
    in a small HTTP/1.1 response, close."""
    def handler(conn, info):
        buf = b""
        while b"\r\n\r\n" not in buf:
            b = conn.recv(65536)
            if not b:
                break
            buf += b
        info["data"] = buf
        body = name.encode() + b"\n"
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
                     b"Connection: close\r\n\r\n" % len(body) + body)
        if hasattr(conn, "unwrap"):
            try:
                conn.unwrap()
            except (OSError, ValueError):
                pass
    return handler


def send_http(port, data):
    s = util.connect(port)
    s.sendall(data)
    return s


def _listening_on(host, port):
    """True when some socket listens on IPv4 host:port (read from /proc)."""
    want = "%s:%04X" % ("".join("%02X" % int(x) for x in reversed(host.split("."))), port)
    with open("/proc/net/tcp") as f:
        next(f)
        return any(l.split()[1] == want and l.split()[3] == "0A" for l in f)


class AddrBackend(util.Backend):
    """util.Backend whose stop waits for its own address:port only, so that
    several of them may share one port number on different addresses."""

    def stop_listening(self):
        for op in (lambda: self.sock.shutdown(socket.SHUT_RDWR), self.sock.close):
            try:
                op()
            except OSError:
                pass
        util.wait_for(lambda: not _listening_on(self.host, self.port),
                      "%s to stop listening" % self.addr)


def backends_on_one_port(hosts, handler_for, port=None, ssl_for=None, made=None):
    """Start one AddrBackend per address in `hosts`, all on one port number.

    handler_for(host) -> handler; ssl_for(host) -> server SSLContext or None.
    Every backend started is appended to `made` (the caller stops them).
    Returns (port, {host: backend}).
    """
    made = made if made is not None else []
    for _ in range(30):
        p = port or util.free_port(hosts[0])
        these = {}
        try:
            for h in hosts:
                these[h] = AddrBackend(handler_for(h), name=h, host=h, port=p,
                                       ssl_context=ssl_for(h) if ssl_for else None)
                made.append(these[h])
            return p, these
        except OSError:
            for b in these.values():
                b.stop()
            if port:
                raise
    raise RuntimeError("no port free on all of %s" % (hosts,))


class GatedForwarder:
    """A UDP DNS relay in front of a real server that holds queries until open().

    Used to keep a lookup in flight while many sessions pile onto it.  Each
    distinct query (by id, type and name) is counted in self.queries and
    forwarded once; a retransmission of a held query is not forwarded again.
    """

    def __init__(self, upstream_port):
        self.upstream = ("127.0.0.1", upstream_port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries = []          # (qid, qtype, name), distinct
        self.packets = 0
        self._held = []
        self._open = False
        self._lock = threading.Lock()
        self._stopped = False
        self._threads = []
        t = threading.Thread(target=self._loop, daemon=True, name="dns-gate")
        t.start()
        self._threads.append(t)

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def _loop(self):
        while not self._stopped:
            try:
                pkt, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            if self._stopped or len(pkt) < 12:
                continue
            key = (struct.unpack("!H", pkt[:2])[0], _qtype(pkt), _qname(pkt))
            with self._lock:
                self.packets += 1
                if key in self.queries:
                    continue
                self.queries.append(key)
                if not self._open:
                    self._held.append((pkt, peer))
                    continue
            self._relay(pkt, peer)

    def _relay(self, pkt, peer):
        def run():
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.settimeout(5)
            try:
                u.sendto(pkt, self.upstream)
                ans = u.recv(4096)
                self.sock.sendto(ans, peer)
            except OSError:
                pass
            finally:
                u.close()
        t = threading.Thread(target=run, daemon=True)
        t.start()
        self._threads.append(t)

    def held(self):
        with self._lock:
            return len(self._held)

    def open(self):
        with self._lock:
            self._open = True
            held, self._held = self._held, []
        for pkt, peer in held:
            self._relay(pkt, peer)

    def stop(self):
        self._stopped = True
        try:
            w = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            w.sendto(b"", ("127.0.0.1", self.port))
            w.close()
        except OSError:
            pass
        for t in self._threads:
            t.join(6)
        self.sock.close()


def _qtype(pkt):
    i = 12
    try:
        while pkt[i]:
            i += 1 + pkt[i]
        return struct.unpack("!H", pkt[i + 1:i + 3])[0]
    except (IndexError, struct.error):
        return 0


def proxy_has_read_all(port, n):
    """True when at least n connections were accepted on local `port` (or
    wait in its accept queue) and every one of them has an empty receive
    queue: the proxy has read all the bytes its clients sent."""
    rows = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if len(parts) > 4 and parts[3] == "01" and \
                            int(parts[1].rsplit(":", 1)[1], 16) == port:
                        rows.append(int(parts[4].split(":")[1], 16))
        except FileNotFoundError:
            pass
    return len(rows) >= n and all(q == 0 for q in rows)

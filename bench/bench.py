# SPDX-License-Identifier: MIT
"""Run snirelay, nginx (stream + ssl_preread), HAProxy and sniproxy side by
side on loopback and report each metric as snirelay / other.

Started by bench/run.sh (which installs the packages and compiles
bench/backend.c and bench/loadgen.c); see bench/README.md. Every proxy gets
the same job: listen on a loopback port, read the SNI from the ClientHello
without terminating TLS, forward to one of three backends chosen by name.
Proxies run on core 0, the backend, the load generator and this script on
core 1 (when the machine has two cores or more).

Every loop is bounded in count and time; every process started here is
stopped at the end, also on Ctrl-C, SIGTERM or an error.
"""

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import hello  # noqa: E402  (tests/integration/hello.py: the ClientHello builder)

BENCH = os.path.join(ROOT, "bench")
CONF_DIR = os.path.join(BENCH, "conf")
CLK_TCK = os.sysconf("SC_CLK_TCK")
IP_BIND_ADDRESS_NO_PORT = 24
GIB = 1 << 30
# snirelay-copy: snirelay with proxy_splice off (the buffered copy), to
# compare the two relay paths within one run.
# haproxy-splice: HAProxy with option splice-request + splice-response (on
# 2.6.12 splice-auto never engaged on these transfers; see bench/README.md).
PROXY_NAMES = ("snirelay", "snirelay-copy", "nginx", "haproxy", "haproxy-splice",
               "sniproxy")
OTHERS = ("snirelay-copy", "nginx", "haproxy", "haproxy-splice", "sniproxy")
# the peers: what snirelay is compared with ("the best peer" is one of them)
PEERS = ("nginx", "haproxy", "haproxy-splice", "sniproxy")
NAMES = {"a": "a.bench.test", "b": "b.bench.test", "c": "c.bench.test"}

# (key, label, unit, better, format)
METRICS = [
    ("up_mib_s", "Throughput client->backend", "MiB/s", "higher", "%.0f"),
    ("up_cpu_per_gib", "Proxy CPU per GiB client->backend", "CPU s/GiB", "lower", "%.3f"),
    ("down_mib_s", "Throughput backend->client", "MiB/s", "higher", "%.0f"),
    ("down_cpu_per_gib", "Proxy CPU per GiB backend->client", "CPU s/GiB", "lower", "%.3f"),
    ("rate_per_s", "Session rate (hello+1 KiB, 1 KiB reply)", "sessions/s", "higher", "%.0f"),
    ("rate_cpu_per_1000", "Proxy CPU per 1000 sessions", "CPU s/1000", "lower", "%.4f"),
    ("idle_rss_kib", "RSS per idle session", "KiB/session", "lower", "%.2f"),
    ("idle_pss_kib", "Pss per idle session", "KiB/session", "lower", "%.2f"),
    ("start_rss_kib", "RSS at start (all processes)", "KiB", "lower", "%.0f"),
    ("lat_p50_us", "Latency p50, connect to first reply byte", "us", "lower", "%.1f"),
    ("lat_p99_us", "Latency p99, connect to first reply byte", "us", "lower", "%.1f"),
]


def log(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


# ---------------------------------------------------------------- helpers

def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def cores():
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def pin(cpu):
    """preexec_fn that pins the child to one CPU (what taskset -c does)."""
    if cpu is None:
        return None

    def fn():
        os.sched_setaffinity(0, {cpu})
    return fn


def run_text(argv, timeout=10):
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout)
        return p.returncode, p.stdout.decode("utf-8", "replace").strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return -1, str(e)


def source_commit():
    """The commit build/snirelay was built from, as far as git can tell:
    HEAD, with "+local changes" when src/ differs from it."""
    rc, head = run_text(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    if rc != 0:
        return "unknown"
    rc, dirty = run_text(["git", "-C", ROOT, "status", "--porcelain", "--", "src", "conf"])
    return head + (" +local changes in src/" if dirty else "")


def deb_version(pkg):
    rc, out = run_text(["dpkg-query", "-W", "-f=${Status} ${Version}", pkg])
    if rc != 0 or "ok installed" not in out:
        return None
    return out.split()[-1]


def proc_children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                rest = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        kids.setdefault(int(rest[1]), []).append(int(d))
    return kids


def proc_tree(root):
    kids = proc_children_map()
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_seconds(pids):
    """utime+stime of each process (all its threads), summed, in seconds."""
    ticks = 0
    for p in pids:
        try:
            with open("/proc/%d/stat" % p) as f:
                rest = f.read().rsplit(")", 1)[1].split()
            ticks += int(rest[11]) + int(rest[12])
        except (OSError, IndexError, ValueError):
            pass
    return ticks / CLK_TCK


def all_cpu_ticks():
    """{pid: utime+stime ticks} of every process on the machine."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                rest = f.read().rsplit(")", 1)[1].split()
            out[int(d)] = int(rest[11]) + int(rest[12])
        except (OSError, IndexError, ValueError):
            pass
    return out


def foreign_cpu_pct(before, after, seconds):
    """CPU used between two all_cpu_ticks() snapshots by processes that are
    not this harness or its children, in % of one core (a lower bound:
    processes that came and went in between are not seen)."""
    ours = set(proc_tree(os.getpid()))
    ticks = sum(t - before[p] for p, t in after.items() if p in before and p not in ours)
    return 100.0 * ticks / CLK_TCK / max(seconds, 1e-3)


def wait_quiet(limit_s, threshold_pct=10.0):
    """Wait up to limit_s for other processes to use under threshold_pct of a
    core over one second. Returns the last reading."""
    deadline = time.monotonic() + limit_s
    while True:
        b = all_cpu_ticks()
        time.sleep(1.0)
        pct = foreign_cpu_pct(b, all_cpu_ticks(), 1.0)
        if pct < threshold_pct or time.monotonic() >= deadline:
            return pct


def memory_kib(pids):
    """(VmRSS, Pss or None) summed over the processes, in KiB."""
    rss, pss = 0, 0
    for p in pids:
        try:
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
        except OSError:
            pass
        try:
            with open("/proc/%d/smaps_rollup" % p) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            pss = None
            break
    return rss, pss


def connect_from(i, port, timeout=5.0):
    """A socket to 127.0.0.1:port from source 127.0.0.(2 + i % 250)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
    except OSError:
        pass
    s.bind(("127.0.0.%d" % (2 + i % 250), 0))
    s.connect(("127.0.0.1", port))
    return s


def cmd(op, n=0, m=0):
    return struct.pack("<B3xIQ", ord(op), n, m)


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def strace_counts(pids, fn, out_path, trace=None):
    """Runs fn() with `strace -c -f` attached to pids (and whatever they
    start); returns ({syscall: [calls, errors]}, fn's result). strace stops
    (SIGINT) once fn returns, and writes its summary to out_path."""
    argv = ["strace", "-c", "-f", "-qq", "-o", out_path]
    if trace:
        argv += ["-e", "trace=" + trace]
    for p in pids:
        argv += ["-p", str(p)]
    tracer = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not all(traced(p) for p in pids):
            if tracer.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("strace did not attach: %s"
                                   % tracer.stderr.read().decode(errors="replace")[-300:])
            time.sleep(0.02)
        result = fn()
    finally:
        if tracer.poll() is None:
            tracer.send_signal(signal.SIGINT)
        try:
            tracer.wait(timeout=30)
        except subprocess.TimeoutExpired:
            tracer.kill()
            tracer.wait()
    counts = {}
    with open(out_path) as f:
        for line in f:
            w = line.split()
            if len(w) < 5 or w[-1] == "total" or not w[0][0].isdigit():
                continue
            if len(w) == 6:
                counts[w[-1]] = [int(w[3]), int(w[4])]
            elif len(w) == 5:      # no errors column
                counts[w[-1]] = [int(w[3]), 0]
    return counts, result


def traced(pid):
    """True when a tracer is attached to pid (or pid is gone)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("TracerPid:"):
                    return int(line.split()[1]) != 0
    except OSError:
        return True
    return False


# ---------------------------------------------------------------- processes

class Backend:
    """bench/backend.c: three routed ports and a control port."""

    def __init__(self, binary, tmp, cpu):
        self.ctl, self.a, self.b, self.c = free_ports(4)
        self.log = open(os.path.join(tmp, "backend.log"), "w")
        self.proc = subprocess.Popen(
            [binary, str(self.ctl), str(self.a), str(self.b), str(self.c)],
            stdout=subprocess.PIPE, stderr=self.log, preexec_fn=pin(cpu),
            start_new_session=True)
        line = self.proc.stdout.readline()
        if line.strip() != b"ready":
            raise RuntimeError("backend did not start (see %s)" % self.log.name)

    def stats(self):
        with socket.create_connection(("127.0.0.1", self.ctl), timeout=5) as s:
            line = s.makefile().readline()
        return dict((k, int(v)) for k, v in (w.split("=") for w in line.split()))

    def wait_conns(self, pred, timeout):
        deadline = time.monotonic() + timeout
        while True:
            st = self.stats()
            if pred(st) or time.monotonic() > deadline:
                return st
            time.sleep(0.05)

    def stop(self):
        stop_process(self.proc)
        self.log.close()


def stop_process(proc, grace=5.0):
    """SIGTERM the process, then SIGKILL it and whatever it started."""
    if proc is None or proc.poll() is not None:
        return
    tree = proc_tree(proc.pid)
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    for p in tree:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass


class Proxy:
    def __init__(self, name, tmp, backend, cpu, prefix=None, snirelay_main=""):
        """prefix: argv run in front of the proxy (valgrind, strace);
        snirelay_main: directives put at the top of snirelay's config."""
        self.name = name
        self.prefix = list(prefix or [])
        self.snirelay_main = snirelay_main
        self.start_timeout = 10.0     # seconds until it must listen
        self.stop_grace = 5.0         # seconds from SIGTERM to SIGKILL
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir)
        os.chmod(self.dir, 0o755)
        self.port = free_ports(1)[0]
        self.backend = backend
        self.cpu = cpu
        self.proc = None
        self.skip = None
        self.version = None
        self.argv = None
        self.check = None
        subs = {"@DIR@": self.dir, "@PORT@": str(self.port),
                "@PORT_A@": str(backend.a), "@PORT_B@": str(backend.b),
                "@PORT_C@": str(backend.c), "@USER@": "nobody"}
        getattr(self, "_setup_" + name.replace("-", "_"))(subs)
        if self.argv and self.prefix:
            self.argv = self.prefix + self.argv

    def _write_conf(self, template, subs, out_name):
        with open(os.path.join(CONF_DIR, template)) as f:
            text = f.read()
        for k, v in subs.items():
            text = text.replace(k, v)
        path = os.path.join(self.dir, out_name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def _setup_snirelay(self, subs, splice="on"):
        binary = os.environ.get("SNIRELAY_BIN", os.path.join(ROOT, "build", "snirelay"))
        if not os.access(binary, os.X_OK):
            self.skip = "%s not found (run make)" % binary
            return
        subs = dict(subs, **{"@SPLICE@": splice, "@MAIN@": self.snirelay_main})
        conf = self._write_conf("snirelay.conf.in", subs, "snirelay.conf")
        self.version = run_text([binary, "-v"])[1].replace("snirelay version: ", "")
        self.check = [binary, "-t", "-c", conf]
        self.argv = [binary, "-c", conf]

    def _setup_snirelay_copy(self, subs):
        self._setup_snirelay(subs, splice="off")

    def _setup_nginx(self, subs):
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not os.access(binary, os.X_OK):
            self.skip = "nginx not installed"
            return
        rc, v = run_text([binary, "-V"])
        if "stream_ssl_preread" not in v:
            self.skip = "this nginx has no ssl_preread module (nginx -V)"
            return
        module = "/usr/lib/nginx/modules/ngx_stream_module.so"
        if "--with-stream=dynamic" in v:
            if not os.path.exists(module):
                self.skip = "%s missing (apt-get install libnginx-mod-stream)" % module
                return
            subs = dict(subs, **{"@NGINX_STREAM_MODULE@": module})
            conf = self._write_conf("nginx.conf.in", subs, "nginx.conf")
        else:
            conf = self._write_conf("nginx.conf.in", subs, "nginx.conf")
            with open(conf) as f:
                text = f.read().replace("load_module @NGINX_STREAM_MODULE@;\n", "")
            with open(conf, "w") as f:
                f.write(text)
        self.version = v.splitlines()[0].split("/", 1)[-1] if v else None
        startup = os.path.join(self.dir, "nginx.startup.log")
        self.check = [binary, "-t", "-p", self.dir, "-c", conf, "-e", startup]
        self.argv = [binary, "-p", self.dir, "-c", conf, "-e", startup]

    def _setup_haproxy(self, subs, splice=""):
        binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
        if not os.access(binary, os.X_OK):
            self.skip = "haproxy not installed"
            return
        subs = dict(subs, **{"@SPLICE@": splice})
        conf = self._write_conf("haproxy.cfg.in", subs, "haproxy.cfg")
        self.version = run_text([binary, "-v"])[1].splitlines()[0].split()[2]
        self.check = [binary, "-c", "-f", conf]
        self.argv = [binary, "-db", "-f", conf]

    def _setup_haproxy_splice(self, subs):
        # splice-auto is what the issue asked for, but on 2.6.12 it never
        # spliced these one-way bulk transfers (strace: no splice() call);
        # the explicit options do, checked in every run (splice_check).
        self._setup_haproxy(subs, splice="option splice-request\n"
                                         "    option splice-response")

    def _setup_sniproxy(self, subs):
        binary = shutil.which("sniproxy") or "/usr/sbin/sniproxy"
        if not os.access(binary, os.X_OK):
            self.skip = "sniproxy not installed"
            return
        conf = self._write_conf("sniproxy.conf.in", subs, "sniproxy.conf")
        self.version = run_text([binary, "-V"])[1].replace("sniproxy ", "")
        self.check = None  # sniproxy has no config test flag
        self.argv = [binary, "-f", "-c", conf, "-n", "20000"]

    def start(self):
        """Start in the foreground on core 0; None when it serves and routes
        every name right, else the reason."""
        if self.check:
            rc, out = run_text(self.check)
            if rc != 0:
                return "config test failed: %s" % out[-500:]
        self.out = open(os.path.join(self.dir, "stdout+stderr.log"), "w")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=self.out, stderr=subprocess.STDOUT,
                                     preexec_fn=pin(self.cpu), start_new_session=True,
                                     cwd=self.dir)
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.proc.poll() is not None:
                return "exited with %s at start: %s" % (self.proc.returncode, self.tail())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    return "not listening after %g s: %s" % (self.start_timeout,
                                                              self.tail())
                time.sleep(0.05)
        want = {NAMES["a"]: self.backend.a, NAMES["b"]: self.backend.b,
                "other.example": self.backend.c}
        for i, (name, port) in enumerate(want.items()):
            try:
                with connect_from(i, self.port) as s:
                    s.sendall(hello.records(hello.build_client_hello(server_name=name))
                              + cmd("P"))
                    got = struct.unpack("<H", recv_exact(s, 2))[0]
            except OSError as e:
                return "routing check for %s failed: %s" % (name, e)
            if got != port:
                return "routed %s to port %d, expected %d" % (name, got, port)
        time.sleep(0.2)
        return None

    def pids(self):
        return proc_tree(self.proc.pid) if self.proc else []

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def tail(self):
        text = ""
        for fn in sorted(os.listdir(self.dir)):
            if fn.endswith(".log"):
                try:
                    with open(os.path.join(self.dir, fn), errors="replace") as f:
                        t = f.read()[-400:].strip()
                except OSError:
                    continue
                if t:
                    text += "[%s] %s " % (fn, t)
        return " | ".join(l.strip() for l in text.splitlines() if l.strip()) or "(no output)"

    def error_log_text(self):
        """What the proxy wrote to its error logs (empty when all went well)."""
        text = []
        for fn in sorted(os.listdir(self.dir)):
            if fn.endswith("error.log") or fn == "nginx.startup.log":
                try:
                    with open(os.path.join(self.dir, fn), errors="replace") as f:
                        t = f.read().strip()
                except OSError:
                    continue
                if t:
                    text.append("%s: %s" % (fn, " | ".join(t.splitlines()[:3])[:300]))
        return "; ".join(text)

    def stop(self):
        stop_process(self.proc, self.stop_grace)
        if getattr(self, "out", None):
            self.out.close()
            self.out = None
        self.proc = None


# ---------------------------------------------------------------- metrics

class Runner:
    def __init__(self, args, tmp, loadgen, backend, client_cpu):
        self.a = args
        self.tmp = tmp
        self.loadgen = loadgen
        self.backend = backend
        self.client_cpu = client_cpu
        self.hellos = {}
        for k, name in NAMES.items():
            path = os.path.join(tmp, "hello-%s.bin" % k)
            with open(path, "wb") as f:
                f.write(self.hello_bytes(name))
            self.hellos[k] = path

    def hello_bytes(self, name):
        # A Chrome-like hello (GREASE, ALPN, X25519MLKEM768 share, padding):
        # about 1.8 KB, one record, as browsers send today.
        return hello.pq_client_hello(name)

    def lg(self, *argv, timeout):
        p = subprocess.run([self.loadgen] + [str(x) for x in argv],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout, preexec_fn=pin(self.client_cpu))
        if p.returncode != 0:
            raise RuntimeError("loadgen %s: exit %d: %s" % (
                argv[0], p.returncode, p.stderr.decode(errors="replace").strip()[-300:]))
        return json.loads(p.stdout)

    def throughput(self, port, proxy, direction):
        nbytes = int(self.a.gib * GIB)
        pids = proxy.pids() if proxy else []
        c0 = cpu_seconds(pids)
        r = self.lg(direction, port, self.hellos["a"], nbytes, timeout=120)
        c1 = cpu_seconds(pids)
        out = {"%s_mib_s" % direction: nbytes / r["seconds"] / (1 << 20)}
        if proxy:
            out["%s_cpu_per_gib" % direction] = (c1 - c0) / (nbytes / GIB)
        return out

    def rate(self, port, proxy, seconds):
        pids = proxy.pids() if proxy else []
        hellos = ",".join(self.hellos[k] for k in ("a", "b", "c"))
        c0 = cpu_seconds(pids)
        r = self.lg("rate", port, hellos, self.a.conc, seconds, self.a.rate_max,
                    1024, 1024, timeout=seconds + 30)
        c1 = cpu_seconds(pids)
        out = {"rate_per_s": r["sessions"] / r["seconds"],
               "rate_errors": r["errors"], "rate_sessions": r["sessions"]}
        if proxy and r["sessions"]:
            out["rate_cpu_per_1000"] = (c1 - c0) / r["sessions"] * 1000
        return out

    def latency(self, port):
        r = self.lg("lat", port, self.hellos["a"], self.a.lat_count, self.a.lat_seconds,
                    timeout=self.a.lat_seconds + 30)
        return {"lat_p50_us": r["p50_us"], "lat_p99_us": r["p99_us"],
                "lat_n": r["n"], "lat_errors": r["errors"]}

    def idle(self, proxy):
        """Open N sessions that send a hello and stay idle; RSS/Pss delta."""
        n = self.a.idle
        data = self.hello_bytes(NAMES["a"])
        base = self.backend.stats()
        pids = proxy.pids()
        rss0, pss0 = memory_kib(pids)
        socks, out = [], {}
        try:
            deadline = time.monotonic() + 60
            for i in range(n):
                if time.monotonic() > deadline:
                    break
                s = connect_from(i, proxy.port)
                socks.append(s)
                s.sendall(data)
            st = self.backend.wait_conns(
                lambda st: st["hellos"] >= base["hellos"] + len(socks), 30)
            reached = st["hellos"] - base["hellos"]
            time.sleep(0.5)
            rss1, pss1 = memory_kib(proxy.pids())
            if reached < n:
                out["idle_note"] = "only %d of %d sessions reached the backend" % (reached, n)
            if reached > 0:
                out["idle_rss_kib"] = (rss1 - rss0) / reached
                if pss0 is not None and pss1 is not None:
                    out["idle_pss_kib"] = (pss1 - pss0) / reached
            out["idle_sessions"] = reached
        finally:
            for s in socks:
                s.close()
            self.backend.wait_conns(lambda st: st["conns"] <= base["conns"], 15)
        return out

    def measure(self, proxy):
        """All metrics for one started proxy (or the backend directly when
        proxy is None). Returns (values, errors)."""
        port = proxy.port if proxy else self.backend.a
        vals, errs = {}, []
        steps = []
        if proxy:
            rss, _ = memory_kib(proxy.pids())
            vals["start_rss_kib"] = rss
            steps.append(("idle", lambda: self.idle(proxy)))
        steps += [("latency", lambda: self.latency(port)),
                  ("up", lambda: self.throughput(port, proxy, "up"))]
        if not self.a.no_download:
            steps.append(("down", lambda: self.throughput(port, proxy, "down")))
        steps.append(("rate", lambda: self.rate(
            port, proxy, self.a.rate_seconds if proxy else self.a.direct_rate_seconds)))
        snap0, t0 = all_cpu_ticks(), time.monotonic()
        for what, fn in steps:
            if proxy and not proxy.alive():
                errs.append("%s: proxy died: %s" % (what, proxy.tail()))
                break
            try:
                vals.update(fn())
            except Exception as e:  # one failed metric must not stop the run
                errs.append("%s: %s" % (what, e))
        if proxy and not proxy.alive():
            errs.append("proxy exited during the run: %s" % proxy.tail())
        vals["background_cpu_pct"] = foreign_cpu_pct(snap0, all_cpu_ticks(),
                                                     time.monotonic() - t0)
        return vals, errs


# ---------------------------------------------------------------- report

def machine_info(snirelay_version):
    info = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            info["memory"] = f.readline().split(":", 1)[1].strip()
    except OSError:
        pass
    try:
        with open("/etc/debian_version") as f:
            info["debian"] = f.read().strip()
    except OSError:
        pass
    info["packages"] = {p: deb_version(p) for p in
                        ("nginx-core", "nginx-light", "nginx-full", "libnginx-mod-stream",
                         "haproxy", "sniproxy")}
    info["packages"] = {k: v for k, v in info["packages"].items() if v}
    info["snirelay"] = snirelay_version
    info["cc"] = run_text(["cc", "--version"])[1].splitlines()[0]
    sysctls = {}
    for k in ("net/ipv4/tcp_tw_reuse", "net/ipv4/ip_local_port_range", "net/core/somaxconn"):
        try:
            with open("/proc/sys/" + k) as f:
                sysctls[k.replace("/", ".")] = " ".join(f.read().split())
        except OSError:
            pass
    info["sysctl"] = sysctls
    return info


def fmt(v, f):
    return "-" if v is None else f % v


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def report(results, info, args, proxies_meta):
    cols = [p for p in PROXY_NAMES if p in proxies_meta or p in results["median"]]
    lines = []
    lines.append("# snirelay benchmark: %s" % info["date"])
    lines.append("")
    lines.append("Machine: %s cores (%s), %s, kernel %s, Debian %s. Proxies pinned to "
                 "core %s; backend, load generator and harness on core %s. Loopback only. "
                 "One worker/process/thread per proxy; all at nice %d. Each value is the "
                 "median of %d runs."
                 % (info["nproc"], info.get("cpu", "?"), info.get("memory", "?"),
                    info["kernel"], info.get("debian", "?"), args.proxy_cpu_label,
                    args.client_cpu_label, args.nice_applied, args.reps))
    lines.append("")
    vers = ["snirelay %s" % info["snirelay"]] + ["%s %s" % (k, v)
                                                  for k, v in info["packages"].items()]
    lines.append("Versions: " + ", ".join(vers) + ".")
    lines.append("")
    head = ["metric", "unit", "better"] + cols + (["direct"] if "direct" in results["median"]
                                                  else [])
    head += ["snirelay/%s" % o for o in OTHERS]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for key, label, unit, better, f in METRICS:
        row = [label, unit, better]
        vals = {p: results["median"].get(p, {}).get(key) for p in cols + ["direct"]}
        row += ["skipped" if proxies_meta.get(p, {}).get("skip") and vals[p] is None
                else fmt(vals[p], f) for p in cols]
        if "direct" in results["median"]:
            row.append(fmt(vals["direct"], f))
        for o in OTHERS:
            r = ratio(vals.get("snirelay"), vals.get(o))
            row.append("-" if r is None else "%.2f" % r)
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines.append("Spread across the runs (min-max), to judge the medians above:")
    lines.append("")
    head2 = ["metric"] + cols + (["direct"] if "direct" in results["median"] else [])
    lines.append("| " + " | ".join(head2) + " |")
    lines.append("|" + "---|" * len(head2))
    for key, label, unit, better, f in METRICS:
        row = [label]
        for p in head2[1:]:
            xs = [r[key] for r in results["runs"].get(p, []) if key in r]
            row.append("-" if not xs else (f % min(xs)) + "-" + (f % max(xs)))
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    noisy = [p for p in cols + ["direct"]
             if results["median"].get(p, {}).get("background_cpu_pct", 0) >= 10]
    if noisy:
        lines.append("**Warning**: other processes kept the machine busy while %s "
                     "ran (see background CPU below): throughput, session rate and "
                     "above all p99 latency are not comparable in this run; CPU per "
                     "GiB / per session and memory are." % ", ".join(noisy))
        lines.append("")
    lines.append("How to read the ratios: snirelay / other. For a 'higher is better' "
                 "metric a ratio above 1 means snirelay is better; for a 'lower is "
                 "better' metric a ratio below 1 means snirelay is better. CPU per "
                 "GiB and per 1000 sessions are the main figures: throughput and "
                 "session rate on two cores are bounded by the load generator and "
                 "backend sharing core 1 ('direct' = the same client straight to the "
                 "backend, no proxy).")
    lines.append("")
    for p, meta in proxies_meta.items():
        if meta.get("skip"):
            lines.append("- **%s skipped**: %s" % (p, meta["skip"]))
    for p in cols + (["direct"] if "direct" in results["median"] else []):
        m = results["median"].get(p, {})
        extra = []
        if m.get("rate_errors"):
            extra.append("session-rate errors (median) %d of %d sessions"
                         % (m["rate_errors"], m.get("rate_sessions", 0)))
        if m.get("lat_errors"):
            extra.append("latency errors (median) %d" % m["lat_errors"])
        for e in results["errors"].get(p, []):
            extra.append(e)
        for n in results["notes"].get(p, []):
            extra.append(n)
        if extra:
            lines.append("- %s: %s" % (p, "; ".join(extra)))
    bg = ["%s %.0f%%" % (p, results["median"][p]["background_cpu_pct"])
          for p in cols + ["direct"]
          if "background_cpu_pct" in results["median"].get(p, {})]
    if bg:
        lines.append("- background CPU used by other processes on the machine while "
                     "each was measured (median, %% of one core; above ~10%% the "
                     "figures are noisier): %s" % ", ".join(bg))
    lines.append("")
    lines.append("Settings: %s GiB per throughput run; %d concurrent clients for %g s "
                 "per session-rate run; %d idle sessions; up to %d sequential latency "
                 "samples (%g s max); hello: Chrome-like ClientHello of %d bytes "
                 "(tests/integration/hello.py pq_client_hello)."
                 % (args.gib, args.conc, args.rate_seconds, args.idle, args.lat_count,
                    args.lat_seconds, args.hello_len))
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- main

def raise_nofile():
    """The soft open files limit up to the hard one (65536 at most); the
    proxies inherit it. Returns (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(want, 65536)), hard))
    except (ValueError, OSError):
        pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def stop_on_signals():
    """SIGTERM, SIGINT and SIGHUP raise KeyboardInterrupt, so that the
    finally clauses stop every process started (also when started in the
    background, where SIGINT comes in ignored)."""
    def on_term(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_term)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--gib", type=float, default=1.0, help="GiB per throughput run")
    ap.add_argument("--no-download", action="store_true",
                    help="skip the backend->client throughput run")
    ap.add_argument("--conc", type=int, default=50)
    ap.add_argument("--rate-seconds", type=float, default=10.0)
    ap.add_argument("--direct-rate-seconds", type=float, default=5.0)
    ap.add_argument("--rate-max", type=int, default=2000000,
                    help="at most this many sessions per rate run")
    ap.add_argument("--idle", type=int, default=2000)
    ap.add_argument("--lat-count", type=int, default=3000)
    ap.add_argument("--lat-seconds", type=float, default=5.0)
    ap.add_argument("--proxies", default=",".join(PROXY_NAMES))
    ap.add_argument("--no-direct", action="store_true")
    ap.add_argument("--nice", type=int, default=-10,
                    help="nice value for the harness and all it starts (root only)")
    ap.add_argument("--quiet-wait", type=float, default=10.0,
                    help="before each proxy, wait up to this many seconds for "
                         "other processes to go quiet (0: do not wait)")
    ap.add_argument("--bin-dir", default=os.path.join(ROOT, "build", "bench"),
                    help="where run.sh put backend and loadgen")
    ap.add_argument("--out", default=os.path.join(BENCH, "results"))
    args = ap.parse_args()

    stop_on_signals()

    raise_nofile()

    # Run everything (inherited by the children) ahead of other work on a
    # shared machine; the same for every proxy. Needs root: else unchanged.
    try:
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)
        args.nice_applied = args.nice
    except OSError:
        args.nice_applied = os.getpriority(os.PRIO_PROCESS, 0)

    cs = cores()
    if len(cs) >= 2:
        proxy_cpu, client_cpu = cs[0], cs[1]
        os.sched_setaffinity(0, {client_cpu})
        args.proxy_cpu_label, args.client_cpu_label = str(proxy_cpu), str(client_cpu)
    else:
        proxy_cpu = client_cpu = None
        args.proxy_cpu_label = args.client_cpu_label = "any (one core: not pinned)"

    backend_bin = os.path.join(args.bin_dir, "backend")
    loadgen_bin = os.path.join(args.bin_dir, "loadgen")
    for b in (backend_bin, loadgen_bin):
        if not os.access(b, os.X_OK):
            sys.exit("bench: %s missing: run bench/run.sh (it compiles it)" % b)

    wanted = [p.strip() for p in args.proxies.split(",") if p.strip()]
    tmp = tempfile.mkdtemp(prefix="snirelay-bench-")
    os.chmod(tmp, 0o755)
    backend = None
    proxies = {}
    t_start = time.monotonic()
    per_rep = {}       # name -> list of value dicts
    errors = {}        # name -> list of strings
    notes = {}
    meta = {}
    try:
        backend = Backend(backend_bin, tmp, client_cpu)
        runner = Runner(args, tmp, loadgen_bin, backend, client_cpu)
        args.hello_len = len(runner.hello_bytes(NAMES["a"]))
        for name in wanted:
            if name not in PROXY_NAMES:
                sys.exit("bench: unknown proxy %r" % name)
            proxies[name] = Proxy(name, tmp, backend, proxy_cpu)
            meta[name] = {"version": proxies[name].version, "skip": proxies[name].skip}
            if proxies[name].skip:
                log("%s: skipped: %s" % (name, proxies[name].skip))

        order = [n for n in wanted if not proxies[n].skip]
        for rep in range(args.reps):
            # rotate the order each repetition so no proxy always runs first
            rot = order[rep % len(order):] + order[:rep % len(order)] if order else []
            if not args.no_direct:
                log("rep %d/%d: direct (no proxy)" % (rep + 1, args.reps))
                vals, errs = runner.measure(None)
                per_rep.setdefault("direct", []).append(vals)
                errors.setdefault("direct", []).extend(errs)
            for name in rot:
                p = proxies[name]
                if p.skip:
                    continue
                if args.quiet_wait > 0:
                    pct = wait_quiet(args.quiet_wait)
                    if pct >= 10.0:
                        log("other processes use %.0f%% of a core; measuring anyway" % pct)
                log("rep %d/%d: %s" % (rep + 1, args.reps, name))
                why = p.start()
                if why:
                    p.stop()
                    p.skip = why
                    meta[name]["skip"] = why
                    log("%s: skipped: %s" % (name, why))
                    continue
                try:
                    vals, errs = runner.measure(p)
                finally:
                    p.stop()
                elog = p.error_log_text()
                if elog:
                    vals["error_log_note"] = elog
                per_rep.setdefault(name, []).append(vals)
                for e in errs:
                    errors.setdefault(name, []).append("rep %d: %s" % (rep + 1, e))
                    log("%s: %s" % (name, e))
                log("%s: %s" % (name, ", ".join("%s=%.4g" % (k, v)
                                                  for k, v in sorted(vals.items())
                                                  if isinstance(v, (int, float)))))
                for k, v in vals.items():
                    if k.endswith("_note"):
                        notes.setdefault(name, []).append("rep %d: %s" % (rep + 1, v))
    except KeyboardInterrupt:
        log("interrupted: stopping everything")
        raise
    finally:
        for p in proxies.values():
            p.stop()
        if backend:
            backend.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    median = {}
    for name, reps in per_rep.items():
        keys = set(k for r in reps for k in r if not k.endswith("_note"))
        median[name] = {k: statistics.median([r[k] for r in reps if k in r]) for k in keys}
    # keep the proxies' order fixed in the report
    median = {k: median[k] for k in list(PROXY_NAMES) + ["direct"] if k in median}
    results = {"median": median, "runs": per_rep, "errors": errors, "notes": notes}
    info = machine_info(meta.get("snirelay", {}).get("version"))
    info["proxy_versions"] = {k: v.get("version") for k, v in meta.items()}
    md = report(results, info, args, meta)
    md += "\nWall time of the whole run: %.0f s.\n" % (time.monotonic() - t_start)

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "latest.md"), "w") as f:
        f.write(md)
    with open(os.path.join(args.out, "latest.json"), "w") as f:
        json.dump({"machine": info, "settings": {k: v for k, v in vars(args).items()},
                   "proxies": meta, "results": results,
                   "metrics": [{"key": k, "label": l, "unit": u, "better": b}
                               for k, l, u, b, _ in METRICS]},
                  f, indent=2, sort_keys=False)
        f.write("\n")
    print()
    print(md)
    print("written: %s/latest.md, %s/latest.json" % (args.out, args.out))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as e:
        print("bench: interrupted (%s); every process it started is stopped" % e,
              file=sys.stderr)
        sys.exit(130)

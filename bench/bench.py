# SPDX-License-Identifier: MIT
"""Run snirelay, nginx (stream + ssl_preread), HAProxy (with and without
splice) and sniproxy side by side on loopback and report each metric as a
ratio to the best peer.

Started by bench/run.sh (bench/deps.sh installs the packages; run.sh
compiles bench/backend.c and bench/loadgen.c); see bench/README.md. Also a
library for bench/callgrind.py and bench/syscalls.py. Every proxy gets
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
# (key, label, unit, better, format, headline). Labels may name the run's
# settings ({idle}, {burst}, ...). better: "lower", "higher" or None (a
# count shown for context, no ratio). The headline figures are the ones
# the plot shows and the ratios to the best peer are about.
METRICS = [
    ("down_cpu_per_gib", "Bulk CPU per GiB, backend->client", "CPU s", "lower", "%.3f", True),
    ("up_cpu_per_gib", "Bulk CPU per GiB, client->backend", "CPU s", "lower", "%.3f", True),
    ("rate_cpu_ms", "CPU per 1,000 short sessions, {conc} in parallel", "CPU ms", "lower",
     "%.1f", True),
    ("serial_cpu_ms", "CPU per 1,000 short sessions, serial", "CPU ms", "lower", "%.1f", True),
    ("idle_rss_kib", "RSS per idle session, {idle} idle", "KiB", "lower", "%.2f", True),
    ("after_close_pct", "RSS {close_wait:g} s after {burst} sessions closed, % of start", "%",
     "lower", "%.0f", True),
    ("stall_small_kib", "RSS per stalled 60 KB ClientHello, {stall_small} clients", "KiB",
     "lower", "%.1f", True),
    ("stall_large_kib", "RSS per stalled 60 KB ClientHello, {stall_large} clients", "KiB",
     "lower", "%.1f", True),
    ("ping_p99_us", "1-byte ping-pong p99, one open session", "us", "lower", "%.1f", True),
    ("ping_p50_us", "1-byte ping-pong p50", "us", "lower", "%.1f", False),
    ("lat_p50_us", "Connect to first reply byte p50", "us", "lower", "%.1f", False),
    ("lat_p99_us", "Connect to first reply byte p99", "us", "lower", "%.1f", False),
    ("down_mib_s", "Throughput backend->client", "MiB/s", "higher", "%.0f", False),
    ("up_mib_s", "Throughput client->backend", "MiB/s", "higher", "%.0f", False),
    ("rate_per_s", "Session rate, {conc} in parallel", "sessions/s", "higher", "%.0f", False),
    ("serial_per_s", "Session rate, serial", "sessions/s", "higher", "%.0f", False),
    ("idle_pss_kib", "Pss per idle session", "KiB", "lower", "%.2f", False),
    ("start_rss_kib", "RSS at start (all processes)", "KiB", "lower", "%.0f", False),
    ("burst_peak_kib", "RSS with {burst} sessions open", "KiB", "lower", "%.0f", False),
    ("after_close_kib", "RSS {close_wait:g} s after they closed", "KiB", "lower", "%.0f", False),
    ("stall_small_open", "Stalled hellos still open, of {stall_small}", "sessions", None,
     "%.0f", False),
    ("stall_large_open", "Stalled hellos still open, of {stall_large}", "sessions", None,
     "%.0f", False),
    ("splice_per_mib", "splice() calls per MiB (strace check, 16 MiB each way)", "calls", None,
     "%.1f", False),
]
# Below this a value counts as this in ratios: a stalled hello that a
# proxy refused costs it next to nothing, and a ratio to a few hundred
# bytes per client (page-sized noise in RSS) would say nothing. One page
# (4 KiB) per client is the floor; 0.1 KiB per idle session.
RATIO_FLOOR = {"stall_small_kib": 4.0, "stall_large_kib": 4.0, "idle_rss_kib": 0.1}


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


def cpu_snapshot():
    """(seconds, machine busy ticks, our ticks): busy from /proc/stat (all
    CPUs, everything but idle and iowait, steal included), ours = this
    harness, its live descendants and the ones it has reaped (whose times
    the kernel adds to the reaper's)."""
    with open("/proc/stat") as f:
        w = [int(x) for x in f.readline().split()[1:]]
    busy = sum(w) - w[3] - w[4]
    if len(w) > 8:
        busy -= sum(w[8:10])     # guest time is already in user/nice
    t = os.times()
    ours = (t.user + t.system + t.children_user + t.children_system) * CLK_TCK
    ours += cpu_seconds([p for p in proc_tree(os.getpid()) if p != os.getpid()]) * CLK_TCK
    return time.monotonic(), busy, ours


def foreign_cpu_pct(before, after):
    """CPU used between two cpu_snapshot()s by everything but this harness
    and what it started, in % of one core (kernel work for our sockets done
    in interrupts may land in either)."""
    dt = max(after[0] - before[0], 1e-3)
    ticks = (after[1] - before[1]) - (after[2] - before[2])
    return max(0.0, 100.0 * ticks / CLK_TCK / dt)


def wait_quiet(limit_s, threshold_pct=10.0):
    """Wait up to limit_s for other processes to use under threshold_pct of a
    core over one second. Returns the last reading."""
    deadline = time.monotonic() + limit_s
    while True:
        b = cpu_snapshot()
        time.sleep(1.0)
        pct = foreign_cpu_pct(b, cpu_snapshot())
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
    def __init__(self, name, tmp, backend, cpu, prefix=None, snirelay_main="", tag=""):
        """prefix: argv run in front of the proxy (valgrind, strace);
        snirelay_main: directives put at the top of snirelay's config;
        tag: appended to its directory's name (one per instance)."""
        self.name = name
        self.prefix = list(prefix or [])
        self.snirelay_main = snirelay_main
        self.start_timeout = 10.0     # seconds until it must listen
        self.stop_grace = 5.0         # seconds from SIGTERM to SIGKILL
        self.dir = os.path.join(tmp, name + tag)
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

    # ------------------------------------------------ traffic (one proxy run)

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

    def rate(self, port, proxy, seconds, conc, prefix):
        """Short sessions (hello + 1 KiB request, 1 KiB reply, the backend
        closes), conc at a time: sessions per second and proxy CPU ms per
        1,000 sessions."""
        pids = proxy.pids() if proxy else []
        hellos = ",".join(self.hellos[k] for k in ("a", "b", "c"))
        c0 = cpu_seconds(pids)
        r = self.lg("rate", port, hellos, conc, seconds, self.a.rate_max,
                    1024, 1024, timeout=seconds + 30)
        c1 = cpu_seconds(pids)
        out = {"%s_per_s" % prefix: r["sessions"] / r["seconds"],
               "%s_errors" % prefix: r["errors"], "%s_sessions" % prefix: r["sessions"]}
        if proxy and r["sessions"]:
            out["%s_cpu_ms" % prefix] = (c1 - c0) * 1000 / r["sessions"] * 1000
        return out

    def latency(self, port):
        r = self.lg("lat", port, self.hellos["a"], self.a.lat_count, self.a.lat_seconds,
                    timeout=self.a.lat_seconds + 30)
        return {"lat_p50_us": r["p50_us"], "lat_p99_us": r["p99_us"],
                "lat_n": r["n"], "lat_errors": r["errors"]}

    def ping(self, port):
        r = self.lg("ping", port, self.hellos["a"], self.a.ping_count, self.a.ping_seconds,
                    timeout=self.a.ping_seconds + 30)
        return {"ping_p50_us": r["p50_us"], "ping_p99_us": r["p99_us"], "ping_n": r["n"]}

    def splice_check(self, proxy):
        """splice() calls per MiB over 16 MiB each way, with strace attached
        (after the timed runs): shows whether a proxy really splices."""
        mib = 16
        total = 0
        for d in ("up", "down"):
            path = os.path.join(self.tmp, "%s-splice-%s.strace" % (proxy.name, d))
            counts, _ = strace_counts(proxy.pids(), lambda: self.lg(
                d, proxy.port, self.hellos["a"], mib << 20, timeout=120), path,
                trace="splice")
            total += counts.get("splice", [0])[0]
        return {"splice_per_mib": total / (2.0 * mib)}

    def traffic(self, proxy):
        """Everything timed, on one started proxy (or the backend directly
        when proxy is None). Returns [(step, fn)]."""
        port = proxy.port if proxy else self.backend.a
        a = self.a
        steps = [("ping", lambda: self.ping(port)),
                 ("latency", lambda: self.latency(port)),
                 ("up", lambda: self.throughput(port, proxy, "up"))]
        if not a.no_download:
            steps.append(("down", lambda: self.throughput(port, proxy, "down")))
        secs = a.rate_seconds if proxy else a.direct_rate_seconds
        steps.append(("rate", lambda: self.rate(port, proxy, secs, a.conc, "rate")))
        steps.append(("serial", lambda: self.rate(port, proxy, a.serial_seconds or secs, 1,
                                                  "serial")))
        if proxy and a.splice_check and shutil.which("strace"):
            steps.append(("splice-check", lambda: self.splice_check(proxy)))
        return [st for st in steps if not a.only or st[0] in a.only]

    # ------------------------------------------------ memory (fresh proxies)

    def open_sessions(self, proxy, n, payload, deadline_s=90):
        """n sessions to the proxy, each sent payload. Returns the sockets
        (fewer than n when the time ran out or connect failed: noted)."""
        socks, note = [], None
        deadline = time.monotonic() + deadline_s
        for i in range(n):
            if time.monotonic() > deadline:
                note = "opened %d of %d sessions in %d s" % (len(socks), n, deadline_s)
                break
            try:
                s = connect_from(i, proxy.port)
                s.sendall(payload)
            except OSError as e:
                note = "opened %d of %d sessions: %s" % (len(socks), n, e)
                break
            socks.append(s)
        return socks, note

    def close_all(self, socks, base):
        for s in socks:
            s.close()
        return self.backend.wait_conns(lambda st: st["conns"] <= base["conns"], 30)

    def idle(self, proxy):
        """N sessions that send a hello and stay idle: RSS/Pss delta per
        session, from a freshly started proxy."""
        n = self.a.idle
        base = self.backend.stats()
        rss0, pss0 = memory_kib(proxy.pids())
        out = {"start_rss_kib": rss0}
        socks, note = self.open_sessions(proxy, n, self.hello_bytes(NAMES["a"]))
        try:
            st = self.backend.wait_conns(
                lambda st: st["hellos"] >= base["hellos"] + len(socks), 30)
            reached = st["hellos"] - base["hellos"]
            time.sleep(0.5)
            rss1, pss1 = memory_kib(proxy.pids())
            if note or reached < n:
                out["idle_note"] = "%s%d of %d idle sessions reached the backend" % (
                    note + "; " if note else "", reached, n)
            if reached > 0:
                out["idle_rss_kib"] = (rss1 - rss0) / reached
                if pss0 is not None and pss1 is not None:
                    out["idle_pss_kib"] = (pss1 - pss0) / reached
            out["idle_sessions"] = reached
        finally:
            self.close_all(socks, base)
        return out

    def burst(self, proxy):
        """N sessions that each move 1 KiB each way through the relay and
        stay open; then all close. RSS at the peak, and close_wait seconds
        after the last one closed, against the fresh proxy's RSS."""
        n = self.a.burst
        base = self.backend.stats()
        rss0, _ = memory_kib(proxy.pids())
        payload = self.hello_bytes(NAMES["a"]) + cmd("R", 1024, 1024) + bytes(1024)
        socks, note = self.open_sessions(proxy, n, payload)
        out = {}
        try:
            got = 0
            for s in socks:
                try:
                    recv_exact(s, 1024)
                    got += 1
                except OSError:
                    pass
            rss1, _ = memory_kib(proxy.pids())
            out["burst_peak_kib"] = rss1
            if note or got < n:
                out["burst_note"] = "%s%d of %d sessions got their reply" % (
                    note + "; " if note else "", got, n)
        finally:
            st = self.close_all(socks, base)
        if st["conns"] > base["conns"]:
            out["burst_note"] = (out.get("burst_note", "") + " %d backend connections still "
                                 "open 30 s after the clients closed"
                                 % (st["conns"] - base["conns"])).strip()
        time.sleep(self.a.close_wait)   # the figure is defined at this delay
        rss2, _ = memory_kib(proxy.pids())
        out["after_close_kib"] = rss2
        out["after_close_pct"] = 100.0 * rss2 / rss0
        return out

    def stall(self, proxy, n, key):
        """n clients each send the first 60,000 bytes of a ~62 KB ClientHello
        (4 records) and stall: RSS delta per client once the proxy's RSS
        settles, and how many of them it still holds open."""
        hs = hello.build_client_hello(server_name=NAMES["a"], extra_padding=61000)
        data = hello.records(hs)[:60000]
        rss0, _ = memory_kib(proxy.pids())
        socks, left = [], []
        try:
            for i in range(n):
                try:
                    s = connect_from(i, proxy.port)
                except OSError:
                    break
                s.setblocking(False)
                socks.append(s)
                left.append(0)
            # send round-robin without blocking on any one client
            deadline = time.monotonic() + 15
            pending = set(range(len(socks)))
            while pending and time.monotonic() < deadline:
                progress = False
                for i in list(pending):
                    try:
                        k = socks[i].send(data[left[i]:])
                    except BlockingIOError:
                        continue
                    except OSError:
                        pending.discard(i)      # refused / reset: the proxy closed it
                        continue
                    left[i] += k
                    progress = True
                    if left[i] >= len(data):
                        pending.discard(i)
                if not progress:
                    time.sleep(0.05)
            # settle: RSS unchanged over 3 readings 0.2 s apart (5 s at most)
            last, same, t_end = None, 0, time.monotonic() + 5
            while same < 3 and time.monotonic() < t_end:
                time.sleep(0.2)
                rss1, _ = memory_kib(proxy.pids())
                same = same + 1 if rss1 == last else 0
                last = rss1
            open_n = 0
            for s in socks:
                try:
                    open_n += s.recv(1) != b""
                except BlockingIOError:
                    open_n += 1
                except OSError:
                    pass
            out = {"%s_kib" % key: (last - rss0) / max(len(socks), 1),
                   "%s_open" % key: open_n,
                   "%s_sent_kib" % key: sum(left) / 1024.0 / max(len(socks), 1)}
            if len(socks) < n:
                out["%s_note" % key] = "connected %d of %d stalled clients" % (len(socks), n)
        finally:
            base = self.backend.stats()
            for s in socks:
                s.close()
            self.backend.wait_conns(lambda st: st["conns"] <= base["conns"], 10)
        return out

    def memory_phases(self):
        """[(label, fn(proxy))]: each runs on a freshly started proxy, so
        one phase's leftovers (a heap that did not shrink) do not hide the
        next one's cost."""
        a = self.a
        return [("idle", self.idle), ("burst", self.burst),
                ("stall-small", lambda p: self.stall(p, a.stall_small, "stall_small")),
                ("stall-large", lambda p: self.stall(p, a.stall_large, "stall_large"))]


def run_steps(proxy, steps):
    """Runs each (what, fn); one failed step does not stop the others."""
    vals, errs = {}, []
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


def metric_label(label, args):
    return label.format(**vars(args))


def cost_ratio(key, better, v, ref):
    """v against ref as a cost: below 1 means v is better, whichever way
    the metric goes (higher-is-better metrics are inverted). None when
    either is missing."""
    if v is None or ref is None or better is None:
        return None
    floor = RATIO_FLOOR.get(key, 0.0)
    v, ref = max(v, floor), max(ref, floor)
    if better == "lower":
        return v / ref if ref > 0 else None
    return ref / v if v > 0 else None


def best_peer(median, key, better):
    """(name, value) of the best peer for a metric, or (None, None)."""
    vals = [(median[p][key], p) for p in PEERS if key in median.get(p, {})]
    if not vals or better is None:
        return None, None
    v, p = (min if better == "lower" else max)(vals)
    return p, v


def ratios_to_best(median):
    """{metric: {"best": peer, proxy: cost ratio}} for every proxy."""
    out = {}
    for key, _, _, better, _, _ in METRICS:
        peer, ref = best_peer(median, key, better)
        if peer is None:
            continue
        out[key] = {"best": peer}
        for p in PROXY_NAMES:
            r = cost_ratio(key, better, median.get(p, {}).get(key), ref)
            if r is not None:
                out[key][p] = r
    return out


# Issue 9's targets, checked against this run's medians:
# (text, metric keys, reference: "best", a peer's name or a number, factor)
TARGETS = [
    ("bulk CPU per GiB, both directions, <= 0.8 x HAProxy with splice",
     ("down_cpu_per_gib", "up_cpu_per_gib"), "haproxy-splice", 0.8),
    ("CPU per 1,000 short sessions <= 0.7 x the best peer (in parallel, serial)",
     ("rate_cpu_ms", "serial_cpu_ms"), "best", 0.7),
    ("RSS per idle session <= 0.5 x HAProxy", ("idle_rss_kib",), "haproxy", 0.5),
    ("1-byte ping-pong p99 <= the best peer", ("ping_p99_us",), "best", 1.0),
    ("RSS within 10% of its start 5 s after the sessions closed", ("after_close_pct",),
     110.0, 1.0),
    ("a stalled 60 KB hello costs <= 64 KiB (both client counts)",
     ("stall_small_kib", "stall_large_kib"), 64.0, 1.0),
]


def target_lines(median):
    lines = []
    sr = median.get("snirelay", {})
    for text, keys, ref, factor in TARGETS:
        parts, ok = [], True
        for key in keys:
            v = sr.get(key)
            if isinstance(ref, str):
                if ref == "best":
                    peer, r = best_peer(median, key, "lower")
                else:
                    peer, r = ref, median.get(ref, {}).get(key)
                if v is None or r is None:
                    parts.append("%s: not measured" % key)
                    ok = False
                    continue
                lim = r * factor
                parts.append("%.4g vs %.4g (%s %.4g x %g)" % (v, lim, peer, r, factor))
            else:
                if v is None:
                    parts.append("%s: not measured" % key)
                    ok = False
                    continue
                lim = ref
                parts.append("%.4g vs %.4g" % (v, lim))
            ok = ok and v <= lim
        measured = not any("not measured" in x for x in parts)
        lines.append("- %s %s: %s" % ("met" if ok else "**not met**" if measured
                                      else "not measured:", text, "; ".join(parts)))
    return lines


def report(results, info, args, proxies_meta):
    med = results["median"]
    cols = [p for p in PROXY_NAMES if p in proxies_meta or p in med]
    has_direct = "direct" in med
    ratios = results["ratios_to_best"]
    lines = []
    lines.append("# snirelay benchmark: %s" % info["date"])
    lines.append("")
    lines.append("Measured: snirelay built from main commit %s (%s). Machine: %s cores "
                 "(%s), %s, kernel %s, Debian %s. Proxies pinned to core %s; backend, load "
                 "generator and harness on core %s. Loopback only. One worker/process/thread "
                 "per proxy; all at nice %d. Each value is the median of %d runs%s."
                 % (info["commit"], info["snirelay"], info["nproc"], info.get("cpu", "?"),
                    info.get("memory", "?"), info["kernel"], info.get("debian", "?"),
                    args.proxy_cpu_label, args.client_cpu_label, args.nice_applied,
                    args.reps, " (a QUICK smoke run: smaller counts, not comparable)"
                    if args.quick else ""))
    lines.append("")
    vers = ["snirelay %s" % info["snirelay"]] + ["%s %s" % (k, v)
                                                  for k, v in info["packages"].items()]
    lines.append("Versions: " + ", ".join(vers) + ". Open files: soft limit raised to "
                 "%d (the hard limit)." % args.nofile)
    lines.append("")
    lines.append("**Ratios to the best peer** (nginx, HAProxy, HAProxy + splice, sniproxy), "
                 "as costs: below 1 is better than the best peer, whichever way the metric "
                 "goes. Plot: [latest.png](latest.png).")
    lines.append("")
    head = ["metric", "unit"] + cols + ["best peer", "snirelay / best",
                                        "snirelay-copy / best"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for key, label, unit, better, f, headline in METRICS:
        if not headline:
            continue
        row = [metric_label(label, args), unit]
        row += ["skipped" if proxies_meta.get(p, {}).get("skip") and key not in med.get(p, {})
                else fmt(med.get(p, {}).get(key), f) for p in cols]
        r = ratios.get(key, {})
        row.append(r.get("best", "-"))
        for p in ("snirelay", "snirelay-copy"):
            row.append("-" if p not in r else "**%.2f**" % r[p] if p == "snirelay"
                       else "%.2f" % r[p])
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines.append("Issue 9's targets against these medians:")
    lines.append("")
    lines += target_lines(med)
    lines.append("")
    lines.append("More figures (`direct`: the same client straight to the backend, no proxy: "
                 "the ceiling the load generator and backend reach on their one core):")
    lines.append("")
    head = ["metric", "unit", "better"] + cols + (["direct"] if has_direct else [])
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for key, label, unit, better, f, headline in METRICS:
        if headline:
            continue
        row = [metric_label(label, args), unit, better or "(count)"]
        row += [fmt(med.get(p, {}).get(key), f) for p in cols + (["direct"] if has_direct
                                                                  else [])]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines.append("snirelay / each peer (cost ratios as above):")
    lines.append("")
    others = [p for p in OTHERS if p in cols]
    head = ["metric"] + ["/ %s" % o for o in others]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for key, label, unit, better, f, headline in METRICS:
        if not headline:
            continue
        row = [metric_label(label, args)]
        for o in others:
            r = cost_ratio(key, better, med.get("snirelay", {}).get(key), med.get(o, {}).get(key))
            row.append("-" if r is None else "%.2f" % r)
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines.append("Spread across the runs (min-max), to judge the medians above:")
    lines.append("")
    head2 = ["metric"] + cols + (["direct"] if has_direct else [])
    lines.append("| " + " | ".join(head2) + " |")
    lines.append("|" + "---|" * len(head2))
    for key, label, unit, better, f, headline in METRICS:
        row = [metric_label(label, args)]
        for p in head2[1:]:
            xs = [r[key] for r in results["runs"].get(p, []) if key in r]
            row.append("-" if not xs else (f % min(xs)) + "-" + (f % max(xs)))
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    noisy = [p for p in cols + ["direct"]
             if med.get(p, {}).get("background_cpu_pct", 0) >= 10]
    if noisy:
        lines.append("**Warning**: other processes kept the machine busy while %s "
                     "ran (see background CPU below): throughput, session rate and "
                     "above all p99 latency are not comparable in this run; CPU per "
                     "GiB / per session and memory are less affected." % ", ".join(noisy))
        lines.append("")
    for p, meta in proxies_meta.items():
        if meta.get("skip"):
            lines.append("- **%s skipped**: %s" % (p, meta["skip"]))
    for p in cols + (["direct"] if has_direct else []):
        m = med.get(p, {})
        extra = []
        for k in ("rate", "serial"):
            if m.get("%s_errors" % k):
                extra.append("%s errors (median) %d of %d sessions"
                             % (k, m["%s_errors" % k], m.get("%s_sessions" % k, 0)))
        if m.get("lat_errors"):
            extra.append("latency errors (median) %d" % m["lat_errors"])
        for e in results["errors"].get(p, []):
            extra.append(e)
        for n in results["notes"].get(p, []):
            extra.append(n)
        if extra:
            lines.append("- %s: %s" % (p, "; ".join(extra)))
    bg = ["%s %.0f%%" % (p, med[p]["background_cpu_pct"])
          for p in cols + ["direct"] if "background_cpu_pct" in med.get(p, {})]
    if bg:
        lines.append("- background CPU used by other processes on the machine while "
                     "each was measured (median, %% of one core; above ~10%% the "
                     "figures are noisier): %s" % ", ".join(bg))
    lines.append("")
    lines.append("Settings: %g GiB per throughput run; %d concurrent clients for %g s and "
                 "one client for %g s per session-rate run; %d idle sessions; %d sessions "
                 "for the RSS-after-close figure (each moves 1 KiB each way, then all "
                 "close); %d and %d stalled clients that each send 60,000 bytes of a "
                 "61 KB ClientHello; %d ping-pongs (%g s max); up to %d sequential connect "
                 "latency samples (%g s max); hello: Chrome-like ClientHello of %d bytes "
                 "(tests/integration/hello.py pq_client_hello). Memory figures each come "
                 "from a freshly started proxy."
                 % (args.gib, args.conc, args.rate_seconds, args.serial_seconds, args.idle,
                    args.burst, args.stall_small, args.stall_large, args.ping_count,
                    args.ping_seconds, args.lat_count, args.lat_seconds, args.hello_len))
    return "\n".join(lines) + "\n"


def plot(results, args, out_png):
    """A gnuplot bar chart of every proxy's cost ratio to the best peer, one
    cluster per headline metric, on a log scale. Returns None or why not."""
    if not shutil.which("gnuplot"):
        return "gnuplot is not installed (sh bench/deps.sh)"
    ratios = results["ratios_to_best"]
    keys = [(k, l) for k, l, _, _, _, h in METRICS if h and k in ratios]
    procs = [p for p in PROXY_NAMES if any(p in ratios[k] for k, _ in keys)]
    if not keys or not procs:
        return "nothing to plot"
    short = {"down_cpu_per_gib": "CPU/GiB down", "up_cpu_per_gib": "CPU/GiB up",
             "rate_cpu_ms": "CPU/session\\n%d parallel" % args.conc,
             "serial_cpu_ms": "CPU/session\\nserial",
             "idle_rss_kib": "RSS/idle session\\n(%d)" % args.idle,
             "after_close_pct": "RSS %gs after\\n%d closed" % (args.close_wait, args.burst),
             "stall_small_kib": "stalled hello\\n(%d)" % args.stall_small,
             "stall_large_kib": "stalled hello\\n(%d)" % args.stall_large,
             "ping_p99_us": "ping-pong p99"}
    d = tempfile.mkdtemp(prefix="snirelay-plot-")
    try:
        data = os.path.join(d, "ratios.dat")
        with open(data, "w") as f:
            f.write("metric " + " ".join('"%s"' % p for p in procs) + "\n")
            for k, l in keys:
                vals = [ratios[k].get(p) for p in procs]
                f.write('"%s" ' % short.get(k, k) + " ".join(
                    "?" if v is None else "%.4f" % max(min(v, 50.0), 0.02)
                    for v in vals) + "\n")
        script = os.path.join(d, "plot.gp")
        colors = {"snirelay": "#d62728", "snirelay-copy": "#ff9896", "nginx": "#2ca02c",
                  "haproxy": "#1f77b4", "haproxy-splice": "#9edae5", "sniproxy": "#7f7f7f"}
        with open(script, "w") as f:
            f.write('set terminal pngcairo size 1400,680 font "DejaVu Sans,10"\n')
            f.write('set output "%s"\n' % out_png)
            f.write('set title "%s"\n' % (
                "Cost relative to the best peer (nginx, HAProxy, HAProxy+splice, sniproxy): "
                "below 1 is better; medians of %d, %s" % (args.reps, time.strftime("%Y-%m-%d"))))
            f.write("set style data histograms\nset style histogram clustered gap 1\n"
                    "set style fill solid 0.9 border -1\nset boxwidth 0.9\n"
                    "set logscale y\nset yrange [0.02:50]\n"
                    "set ytics (0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50)\n"
                    "set grid ytics\nset key outside right top\n"
                    "set arrow from graph 0, first 1 to graph 1, first 1 nohead lw 2 "
                    "lc rgb 'black'\n"
                    "set xtics nomirror\nset datafile missing '?'\nset bmargin 5\n"
                    "set ylabel 'value / best peer (lower-is-better terms)'\n")
            f.write("plot " + ", \\\n     ".join(
                "'%s' using %d:xtic(1) title columnheader(%d) lc rgb '%s'"
                % (data, i + 2, i + 2, colors.get(p, "#000000"))
                for i, p in enumerate(procs)) + "\n")
        rc, out = run_text(["gnuplot", script], timeout=60)
        if rc != 0:
            return "gnuplot failed: %s" % out[-300:]
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return None


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


MEMORY_STEPS = ("idle", "burst", "stall-small", "stall-large")
TRAFFIC_STEPS = ("ping", "latency", "up", "down", "rate", "serial", "splice-check")
QUICK = {"reps": 1, "gib": 0.25, "rate_seconds": 2.0, "serial_seconds": 2.0,
         "direct_rate_seconds": 2.0, "idle": 2000, "burst": 2000, "stall_small": 100,
         "stall_large": 400, "ping_count": 3000, "ping_seconds": 1.0, "lat_count": 1000,
         "lat_seconds": 1.0, "quiet_wait": 0.0}


def measure_proxy(name, rep, args, tmp, backend, runner, proxy_cpu):
    """Every phase for one proxy in one repetition: the memory figures,
    each on a freshly started instance, then the timed runs on another.
    Returns (values, errors) or (None, why) when it cannot start."""
    vals, errs = {}, []
    phases = [(label, lambda p, fn=fn, label=label: run_steps(p, [(label, lambda: fn(p))]))
              for label, fn in (runner.memory_phases() if not args.no_memory else [])
              if not args.only or label in args.only]
    if not args.only or set(args.only) & set(TRAFFIC_STEPS):
        phases.append(("timed", lambda p: run_steps(p, runner.traffic(p))))
    snap0 = cpu_snapshot()
    for i, (label, fn) in enumerate(phases):
        p = Proxy(name, tmp, backend, proxy_cpu, tag="-%d-%d" % (rep, i))
        why = p.start()
        if why:
            p.stop()
            if i == 0:
                return None, why
            errs.append("%s: did not start: %s" % (label, why))
            continue
        try:
            v, e = fn(p)
        finally:
            p.stop()
        vals.update(v)
        errs += e
        elog = p.error_log_text()
        if elog:
            vals.setdefault("error_log_note", "")
            vals["error_log_note"] += "%s: %s " % (label, elog)
        log("%s %s: %s" % (name, label, ", ".join(
            "%s=%.4g" % (k, x) for k, x in sorted(v.items()) if isinstance(x, (int, float)))))
    vals["background_cpu_pct"] = foreign_cpu_pct(snap0, cpu_snapshot())
    return vals, errs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="a smoke run of a few minutes: " + ", ".join(
                        "%s=%s" % kv for kv in QUICK.items()) + " (unless given)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--gib", type=float, default=4.0,
                    help="GiB per throughput run (CPU comes in 10 ms ticks)")
    ap.add_argument("--no-download", action="store_true",
                    help="skip the backend->client throughput run")
    ap.add_argument("--conc", type=int, default=50)
    ap.add_argument("--rate-seconds", type=float, default=10.0)
    ap.add_argument("--serial-seconds", type=float, default=5.0)
    ap.add_argument("--direct-rate-seconds", type=float, default=5.0)
    ap.add_argument("--rate-max", type=int, default=2000000,
                    help="at most this many sessions per rate run")
    ap.add_argument("--idle", type=int, default=9500,
                    help="idle sessions (each takes 2 of the proxy's descriptors)")
    ap.add_argument("--burst", type=int, default=8000,
                    help="sessions opened, then closed, for the RSS-after-close figure")
    ap.add_argument("--close-wait", type=float, default=5.0,
                    help="seconds after they closed that RSS is read")
    ap.add_argument("--stall-small", type=int, default=500)
    ap.add_argument("--stall-large", type=int, default=2000)
    ap.add_argument("--no-memory", action="store_true", help="skip the memory phases")
    ap.add_argument("--only", default="",
                    help="run only these steps (comma-separated): one of %s"
                         % ", ".join(MEMORY_STEPS + TRAFFIC_STEPS))
    ap.add_argument("--ping-count", type=int, default=20000)
    ap.add_argument("--ping-seconds", type=float, default=3.0)
    ap.add_argument("--lat-count", type=int, default=3000)
    ap.add_argument("--lat-seconds", type=float, default=3.0)
    ap.add_argument("--no-splice-check", dest="splice_check", action="store_false",
                    help="do not count splice() calls with strace")
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
    argv = sys.argv[1:]
    args = ap.parse_args(argv)
    if args.quick:
        given = set(a.split("=")[0].lstrip("-").replace("-", "_") for a in argv
                    if a.startswith("--"))
        for k, v in QUICK.items():
            if k not in given:
                setattr(args, k, v)
        if "out" not in given:   # keep the committed results
            args.out = os.path.join(ROOT, "build", "bench", "results-quick")

    args.only = [x.strip() for x in args.only.split(",") if x.strip()]
    for x in args.only:
        if x not in MEMORY_STEPS + TRAFFIC_STEPS:
            sys.exit("bench: unknown step %r (one of %s)"
                     % (x, ", ".join(MEMORY_STEPS + TRAFFIC_STEPS)))
    stop_on_signals()
    args.nofile = raise_nofile()[0]
    if args.idle * 2 + 100 > args.nofile or args.idle + 100 > args.nofile:
        log("open files limit %d: fewer than %d idle sessions will fit"
            % (args.nofile, args.idle))

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
    for name in wanted:
        if name not in PROXY_NAMES:
            sys.exit("bench: unknown proxy %r (one of %s)" % (name, ", ".join(PROXY_NAMES)))
    tmp = tempfile.mkdtemp(prefix="snirelay-bench-")
    os.chmod(tmp, 0o755)
    backend = None
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
            p = Proxy(name, tmp, backend, proxy_cpu, tag="-setup")
            meta[name] = {"version": p.version, "skip": p.skip}
            if p.skip:
                log("%s: skipped: %s" % (name, p.skip))

        order = [n for n in wanted if not meta[n]["skip"]]
        for rep in range(args.reps):
            # rotate the order each repetition so no proxy always runs first
            rot = order[rep % len(order):] + order[:rep % len(order)] if order else []
            if not args.no_direct and runner.traffic(None):
                log("rep %d/%d: direct (no proxy)" % (rep + 1, args.reps))
                vals, errs = run_steps(None, runner.traffic(None))
                per_rep.setdefault("direct", []).append(vals)
                errors.setdefault("direct", []).extend(errs)
            for name in rot:
                if meta[name]["skip"]:
                    continue
                if args.quiet_wait > 0:
                    pct = wait_quiet(args.quiet_wait)
                    if pct >= 10.0:
                        log("other processes use %.0f%% of a core; measuring anyway" % pct)
                log("rep %d/%d: %s" % (rep + 1, args.reps, name))
                vals, errs = measure_proxy(name, rep, args, tmp, backend, runner, proxy_cpu)
                if vals is None:
                    meta[name]["skip"] = errs
                    log("%s: skipped: %s" % (name, errs))
                    continue
                per_rep.setdefault(name, []).append(vals)
                for e in errs:
                    errors.setdefault(name, []).append("rep %d: %s" % (rep + 1, e))
                    log("%s: %s" % (name, e))
                for k, v in vals.items():
                    if k.endswith("_note"):
                        notes.setdefault(name, []).append("rep %d: %s" % (rep + 1, v))
    except KeyboardInterrupt:
        log("interrupted: stopping everything")
        raise
    finally:
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
    results["ratios_to_best"] = ratios_to_best(median)
    hs = results["median"].get("haproxy-splice", {})
    if "splice_per_mib" in hs and hs["splice_per_mib"] < 1:
        notes.setdefault("haproxy-splice", []).append(
            "its splice check counted %.2f splice() calls per MiB: it did not splice"
            % hs["splice_per_mib"])
    info = machine_info(meta.get("snirelay", {}).get("version"))
    info["commit"] = source_commit()
    info["proxy_versions"] = {k: v.get("version") for k, v in meta.items()}
    md = report(results, info, args, meta)
    md += "\nWall time of the whole run: %.0f s.\n" % (time.monotonic() - t_start)

    os.makedirs(args.out, exist_ok=True)
    png = os.path.join(args.out, "latest.png")
    why = plot(results, args, png)
    if why:
        log("no plot: %s" % why)
        md += "\nNo plot: %s.\n" % why
    with open(os.path.join(args.out, "latest.md"), "w") as f:
        f.write(md)
    with open(os.path.join(args.out, "latest.json"), "w") as f:
        json.dump({"machine": info, "settings": {k: v for k, v in vars(args).items()},
                   "proxies": meta, "results": results,
                   "metrics": [{"key": k, "label": metric_label(l, args), "unit": u,
                                "better": b, "headline": h}
                               for k, l, u, b, _, h in METRICS]},
                  f, indent=2, sort_keys=False)
        f.write("\n")
    print()
    print(md)
    print("written: %s/latest.md, latest.json%s" % (args.out, "" if why else ", latest.png"))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as e:
        print("bench: interrupted (%s); every process it started is stopped" % e,
              file=sys.stderr)
        sys.exit(130)

#!/usr/bin/python3
"""`make soak`: snirelay under ten minutes of mixed load and faults.

Runs the real binary (worker_processes 2) on loopback in front of backends
in a separate process (tests/soak/backends.py), with a TLS listener routed
by SNI (ssl_preread, map hostnames, deny_if for everything else) and an HTTP
listener routed by Host (http_preread). Upstreams share a zone, and both
listeners count sessions in a limit_conn zone.

Load, all at once (tests/soak/load.py): short sessions (real TLS handshakes
with the backend, ClientHello + echo, HTTP requests), long paced transfers
upload, download and both ways with sha256 compared end to end, slow
clients trickling their hello or request head byte by byte, and hostile
clients (garbage, broken hellos, bad heads, resets, stalls).
Faults: SIGHUP every 30 s (every 3rd with an invalid config, which must be
refused), SIGKILL of a random current worker every 2 minutes (the first at
45 s).

Which sessions a kill may take: just before a kill the victim is stopped
(SIGSTOP), so it cannot accept or finish anything more; its open sockets
are read from /proc/PID/fd and matched against /proc/net/tcp to get the
client ports of the sessions it holds; then it gets SIGKILL. A failed
legitimate session counts as killed-with-worker only when its (listener,
client port) was in that set and it was running at that moment; any other
failure is a lost session. Sessions on the other worker, on draining
workers after a reload and across refused reloads must never fail.

Pass criteria, checked at the end after the load stops and the proxy is
quiet (no old generation left, no connection open on a listener or to a
backend):
- zero lost sessions, every hostile client closed by the proxy with no
  backend byte returned, every thread finished;
- every ok session has its access-log line with status 200 (found by the
  id in its SNI or Host), unless a killed worker held it;
- limit_conn counts are exact after the kills: LIMIT sessions pass at once
  and the next one gets 503;
- no [error], [alert], [crit] or [emerg] line in the error log but those
  the faults and checks cause (signal 9 exits, refused reloads, the
  limit check's 503); hostile input is logged at info, below the
  soak's notice level;
- descriptors of master + workers exactly as in the baseline taken after a
  warm-up, but for idle splice pipes pooled for reuse (bounded by
  PIPE_FDS_MAX: which worker took the peaks varies); the master's RSS within MASTER_SLACK_KIB of it, the workers'
  within their relay-buffer pools' bound (see WORKER_POOL_KIB).
One summary line goes to stdout ("hostile closed" counts hostile sessions
that ended as they must: closed by the proxy with no backend byte, or reset
by the client itself); progress and details go to stderr.
"""

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import hello  # noqa: E402
import load  # noqa: E402
import util  # noqa: E402

PREREAD_TIMEOUT = 20     # s; slow clients take at most ~4 s of it
LIMIT = 64               # limit_conn per client address; load peaks far below
WORKERS = 2
RELOAD_EVERY = 30.0
REFUSED_EVERY = 3        # every 3rd reload has an invalid config
KILL_EVERY = 120.0
FIRST_KILL = 45.0        # away from the reloads at multiples of 30 s
WARMUP = 15.0
QUIET_TIMEOUT = 180.0    # long transfers finish, old generations leave
# RSS tolerance. The master lives through every reload and kill, so it
# must come back within MASTER_SLACK_KIB (it stays flat over 60 reloads).
# A worker keeps up to RELAY_POOL_MAX (256) idle 16 KiB relay buffers for
# reuse by design (src/stream/relay.c), and new workers fill that pool by
# chance (a preread buffer that grew to 16 KiB joins it): the workers
# together may end WORKER_POOL_KIB each above the baseline workers.
MASTER_SLACK_KIB = 512
WORKER_POOL_KIB = 256 * 16
# Pipe descriptors idle pools can hold at the end: two pipes (one per
# direction) of two descriptors for each session of the largest peak
# (LIMIT sessions of the limit check, plus the load's own, well under 32).
# One pipe leaked per session would pass this within a few hundred.
PIPE_FDS_MAX = 2 * 2 * (LIMIT + 32)

LOG_FIELDS = ["pid", "server_port", "remote_port", "status",
              "ssl_preread_server_name", "http_preread_host",
              "ssl_preread_status", "upstream_addr", "bytes_received",
              "bytes_sent", "limit_conn_status"]
# Between the fields: '"', which escape=default writes as \x22 inside a
# value. A '|' did not do: a hello with a byte mutated into '|' logged its
# SNI as it came (as nginx does) and split the line in one more field.
LOG_SEP = '"'

CONF = r"""
pid @D@/snirelay.pid;
error_log @D@/error.log notice;
worker_processes @W@;
events { worker_connections 1024; }
stream {
    # generation @GEN@
    log_format soak '@FMT@';
    access_log @D@/access.log soak;
    preread_timeout @PT@s;
    proxy_connect_timeout 5s;
    proxy_timeout 60s;
    limit_conn_zone $binary_remote_addr zone=perip:1m;

    upstream echo {
        zone soak_up 64k;
        @BALANCE@
        server 127.0.0.1:@ECHO1@;
        server 127.0.0.1:@ECHO2@;
    }
    upstream sink   { zone soak_up; server 127.0.0.1:@SINK@; }
    upstream source { zone soak_up; server 127.0.0.1:@SOURCE@; }
    upstream tls    { zone soak_up; server 127.0.0.1:@TLS@; }
    upstream web    { zone soak_up; server 127.0.0.1:@WEB@; }

    map $ssl_preread_server_name $tls_target {
        hostnames;
        default       "";
        *.echo.test   echo;
        *.sink.test   sink;
        *.source.test source;
        *.tls.test    tls;
    }
    map $http_preread_host $http_target {
        hostnames;
        default       "";
        *.web.test    web;
    }
    map $tls_target $tls_denied { "" 1; default 0; }
    map $http_target $http_denied { "" 1; default 0; }

    server {
        listen 127.0.0.1:@LTLS@;
        ssl_preread on;
        limit_conn perip @LIMIT@;
        deny_if $tls_denied;
        proxy_pass $tls_target;
    }
    server {
        listen 127.0.0.1:@LHTTP@;
        http_preread on;
        limit_conn perip @LIMIT@;
        deny_if $http_denied;
        proxy_pass $http_target;
    }
    @BROKEN@
}
"""


def log(msg):
    sys.stderr.write("soak: %s\n" % msg)
    sys.stderr.flush()


# --------------------------------------------------------------------------
# the load mix


def _long(fn, lo_mib, hi_mib, rate):
    def run(ctx, rec, rng):
        fn(ctx, rec, rng, size=rng.randint(lo_mib << 20, hi_mib << 20), rate=rate)
    return run


_HOSTILE = [(load.hostile_bytes, 50), (load.hostile_truncated, 14),
            (load.hostile_mutated, 14), (load.hostile_reset_preread, 8),
            (load.hostile_reset_midstream, 10), (load.hostile_stall, 4)]


def _hostile(ctx, rec, rng):
    fn = rng.choices([f for f, _ in _HOSTILE], [w for _, w in _HOSTILE])[0]
    rec.kind = fn.__name__
    fn(ctx, rec, rng)


# kind, session function, threads, sessions per second per thread (None:
# back to back), legitimate?
MIX = [
    ("short-echo", load.short_echo, 2, 12, True),
    ("short-tls", load.short_tls, 2, 6, True),
    ("short-http", load.short_http, 2, 10, True),
    ("slow-hello", load.slow_hello, 1, None, True),
    ("slow-http", load.slow_http, 1, None, True),
    ("long-upload", _long(load.long_upload, 8, 48, 4 << 20), 1, None, True),
    ("long-download", _long(load.long_download, 8, 48, 4 << 20), 1, None, True),
    ("long-echo", _long(load.long_echo, 4, 24, 2 << 20), 1, None, True),
    ("hostile", _hostile, 2, 5, False),
]


class Stats:
    """Every session's outcome, as the load threads report them."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ok = {}              # kind -> count
        self.failed = []          # Recs of failed legitimate sessions
        self.hostile_ok = 0
        self.hostile_by = {}      # hostile kind -> count handled as it must be
        self.hostile_failed = []  # Recs of hostile sessions the proxy mishandled
        self.ok_names = {}        # name -> (listen, cport) of ok legit sessions

    def add(self, rec):
        with self.lock:
            if rec.legit and rec.ok:
                self.ok[rec.kind] = self.ok.get(rec.kind, 0) + 1
                self.ok_names[rec.name] = (rec.listen, rec.cport)
            elif rec.legit:
                self.failed.append(rec)
            elif rec.ok:
                self.hostile_ok += 1
                k = rec.kind + ("" if rec.name.endswith(".test") else ":" + rec.name)
                self.hostile_by[k] = self.hostile_by.get(k, 0) + 1
            else:
                self.hostile_failed.append(rec)

    def n_ok(self):
        with self.lock:
            return sum(self.ok.values())


def _kind_loop(ctx, stats, kind, fn, rate, legit, seed):
    rng = random.Random(seed)
    while not ctx.stop.is_set():
        rec = load.Rec(kind, legit)
        try:
            fn(ctx, rec, rng)
            rec.ok = True
        except Exception as e:      # every failure is judged by the driver
            rec.err = "%s: %s" % (type(e).__name__, e)
        rec.t1 = time.monotonic()
        stats.add(rec)
        if rate:
            ctx.stop.wait(max(0.0, rec.t0 + 1.0 / rate - rec.t1))


class Load:
    """The MIX's threads, started together and stopped together."""

    def __init__(self, ctx, stats, seed):
        self.ctx = ctx
        self.threads = []
        rng = random.Random(seed)
        for kind, fn, n, rate, legit in MIX:
            for i in range(n):
                t = threading.Thread(target=_kind_loop, daemon=True,
                                     name="%s-%d" % (kind, i),
                                     args=(ctx, stats, kind, fn, rate, legit,
                                           rng.randrange(1 << 30)))
                self.threads.append(t)

    def start(self):
        self.ctx.stop.clear()
        for t in self.threads:
            t.start()

    def stop(self, timeout):
        """Let every thread finish its session; return the ones that did not."""
        self.ctx.stop.set()
        end = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, end - time.monotonic()))
        return [t.name for t in self.threads if t.is_alive()]


# --------------------------------------------------------------------------
# the proxy's processes


def _proc_status(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return line.split()[1]
    except (FileNotFoundError, ProcessLookupError):
        pass
    return None


def _pipe_fds(pid):
    """How many of pid's descriptors are pipes."""
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("pipe:"):
                n += 1
        except OSError:
            pass
    return n


def measure(m):
    """{pid: (RSS KiB, open descriptors, RssAnon, RssFile, RssShmem, pipe
    descriptors)} of the master and each worker."""
    out = {}
    for p in [m.pid] + m.workers():
        try:
            fds = len(os.listdir("/proc/%d/fd" % p))
            pipes = _pipe_fds(p)
        except (FileNotFoundError, ProcessLookupError):
            continue
        out[p] = (int(_proc_status(p, "VmRSS") or 0), fds) + tuple(
            int(_proc_status(p, k) or 0) for k in ("RssAnon", "RssFile", "RssShmem")) + (
                pipes,)
    return out


def totals(sample):
    return (sum(v[0] for v in sample.values()), sum(v[1] for v in sample.values()))


def pipe_total(sample):
    return sum(v[5] for v in sample.values())


def _tcp_rows():
    """(local port, remote port, state, inode) of every IPv4/IPv6 TCP socket."""
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(name) as f:
            next(f)
            for line in f:
                p = line.split()
                yield (int(p[1].rsplit(":", 1)[1], 16), int(p[2].rsplit(":", 1)[1], 16),
                       p[3], int(p[9]))


def proxy_conns(listen_ports, backend_ports):
    """Connections the proxy still has: accepted on a listener, or to a
    backend (TIME_WAIT, state 06, is closed and does not count)."""
    n = 0
    for lp, rp, st, _ in _tcp_rows():
        if st in ("06", "0A"):
            continue
        if lp in listen_ports or rp in backend_ports:
            n += 1
    return n


class Kill:
    def __init__(self, pid, t_stop, held):
        self.pid = pid
        self.t_stop = t_stop
        self.held = held       # {(listen port, client port)} the victim held


def _state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            text = f.read()
        return text[text.rindex(")") + 2]
    except (FileNotFoundError, ProcessLookupError):
        return None


def _sessions_of(pid, listen_ports):
    inodes = util.socket_inodes(pid)
    return {(lp, rp) for lp, rp, st, ino in _tcp_rows()
            if ino in inodes and lp in listen_ports and st != "0A"}


def kill_worker(m, current, listen_ports, rng):
    """Stop a random current worker (one holding sessions, if any does),
    note the sessions it holds, SIGKILL it, wait for the master's
    replacement. Returns (Kill, the new worker)."""
    busy = [w for w in sorted(current) if _sessions_of(w, listen_ports)]
    victim = rng.choice(busy or sorted(current))
    before = set(m.workers())
    t_stop = time.monotonic()
    os.kill(victim, signal.SIGSTOP)
    try:
        util.wait_for(lambda: _state(victim) in ("T", "t", None),
                      "worker %d to stop" % victim, timeout=10)
        held = _sessions_of(victim, listen_ports)
    finally:
        os.kill(victim, signal.SIGKILL)
    util.wait_for(lambda: not util.pid_alive(victim), "worker %d to die" % victim)

    def replaced():
        log_text = m.error_text()
        for w in m.workers():
            if w not in before and "start worker process %d" % w in log_text \
                    and util.has_event_loop(w):
                return w
        return None
    new = util.wait_for(replaced, "a worker to replace %d" % victim, timeout=30)
    return Kill(victim, t_stop, held), new


def render_conf(subs, gen, broken=False):
    return util.render(CONF, GEN=gen, BALANCE="least_conn;" if gen % 2 else "",
                       BROKEN="soak_refused_directive on;" if broken else "",
                       **subs)


def refused_reload(m, text_bad, text_good):
    """HUP with an invalid config: the master must refuse it and start no worker."""
    failed = m.count_errors(r"reload failed")
    started = m.count_errors(r"start worker process")
    m.write_conf(text_bad)
    m.send_signal(signal.SIGHUP)
    util.wait_for(lambda: m.count_errors(r"reload failed") > failed,
                  "the master to refuse the invalid config")
    if m.count_errors(r"start worker process") != started:
        raise AssertionError("a refused reload started workers")
    m.write_conf(text_good)


# --------------------------------------------------------------------------
# end checks


def read_access_log(path, offset=0):
    """From byte `offset` on: {name: [status, ...]} by SNI or Host,
    {(server_port, remote_port): [status, ...]}, the number of bad lines."""
    by_name, by_port, bad = {}, {}, 0
    with open(path, "rb") as f:
        f.seek(offset)
        for raw in f.read().decode("latin-1").split("\n"):
            if not raw:
                continue
            parts = raw.split(LOG_SEP)
            if len(parts) != len(LOG_FIELDS):
                bad += 1
                continue
            rec = dict(zip(LOG_FIELDS, parts))
            for k in ("ssl_preread_server_name", "http_preread_host"):
                if not util.empty(rec[k]):
                    by_name.setdefault(rec[k], []).append(rec["status"])
            by_port.setdefault((rec["server_port"], rec["remote_port"]), []).append(
                rec["status"])
    return by_name, by_port, bad


EXPECTED_BAD_LOG = [
    r"\[error\] .*limiting connections by zone \"perip\"",     # limit_check()
    r"\[alert\] .*worker process \d+ exited on signal 9",
    r"\[emerg\] .*unknown directive \"soak_refused_directive\"",
    r"\[alert\] .*reload failed: the old configuration keeps serving",
]


def unexpected_log_lines(text):
    out = []
    for line in text.splitlines():
        if not re.search(r"\[(error|alert|crit|emerg)\]", line):
            continue
        if not any(re.search(p, line) for p in EXPECTED_BAD_LOG):
            out.append(line)
    return out


def limit_check(ctx, m, tls_port):
    """LIMIT sessions must pass at once and the next must get 503: the
    killed workers' limit_conn counts all came back."""
    socks = []
    offset = os.path.getsize(m.access_log)
    try:
        for i in range(LIMIT):
            s = util.connect(tls_port, timeout=30)
            socks.append(s)
            first = hello.records(hello.build_client_hello(server_name="c%d.echo.test" % i))
            s.sendall(first)
            if util.recv_exact(s, len(first)) != first:
                raise AssertionError("limit session %d: echo differs" % i)
        over = util.connect(tls_port, timeout=30)
        cport = over.getsockname()[1]
        over.sendall(hello.records(hello.build_client_hello(server_name="over.echo.test")))
        if util.wait_closed(over, timeout=30):
            raise AssertionError("the session over the limit got bytes back")
        over.close()

        def logged():
            _, by_port, _ = read_access_log(m.access_log, offset)
            return by_port.get((str(tls_port), str(cport)))
        statuses = util.wait_for(logged, "the over-limit session's log line")
        if statuses != ["503"]:
            raise AssertionError("over-limit session logged %s, want 503" % statuses)
    finally:
        for s in socks:
            s.close()


def quiesce(m, current, listen_ports, backend_ports):
    util.wait_for(lambda: set(m.workers()) == set(current),
                  "old generations to exit (workers %s, want %s)"
                  % (m.workers(), sorted(current)), timeout=QUIET_TIMEOUT)
    util.wait_for(lambda: proxy_conns(listen_ports, backend_ports) == 0,
                  "the proxy to close every connection", timeout=QUIET_TIMEOUT)


# --------------------------------------------------------------------------
# main


def main(argv):
    ap = argparse.ArgumentParser(description="snirelay soak test")
    ap.add_argument("--seconds", type=float,
                    default=float(os.environ.get("SOAK_SECONDS", "600")))
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args(argv)

    binary = util.bin_path()
    if not os.access(binary, os.X_OK):
        log("no binary at %s (make all, or set SNIRELAY_BIN)" % binary)
        return 2
    work = tempfile.mkdtemp(prefix="snirelay-soak-")
    log("work dir %s, seed %d, binary %s" % (work, args.seed, binary))
    rng = random.Random(args.seed)
    backends = None
    m = None
    problems = []
    summary = None
    try:
        pki = util.PKI(os.path.join(work, "pki"))
        crt, key = pki.cert("soak tls backend", ["*.tls.test"])
        backends = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "backends.py"), "--cert", crt, "--key", key],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            preexec_fn=util._die_with_parent)
        bports = json.loads(backends.stdout.readline())
        ltls, lhttp = util.free_port(), util.free_port()
        subs = dict(D=work, W=WORKERS, PT=PREREAD_TIMEOUT, LIMIT=LIMIT,
                    FMT=LOG_SEP.join("$" + f for f in LOG_FIELDS),
                    ECHO1=bports["echo1"], ECHO2=bports["echo2"],
                    SINK=bports["sink"], SOURCE=bports["source"],
                    TLS=bports["tls"], WEB=bports["web"], LTLS=ltls, LHTTP=lhttp)
        listen_ports = {ltls, lhttp}
        backend_ports = set(bports.values())
        gen = 0
        m = util.Master(work, render_conf(subs, gen), binary)
        m.start()
        current = set(m.wait_workers(WORKERS))

        ctx = load.Ctx(ltls, lhttp, pki.ca, PREREAD_TIMEOUT)
        stats = Stats()

        # Warm-up, then the baseline on a quiet proxy.
        warm = Load(ctx, stats, rng.randrange(1 << 30))
        warm.start()
        ctx.stop.wait(WARMUP)
        stuck = warm.stop(QUIET_TIMEOUT)
        if stuck or stats.failed or stats.hostile_failed:
            raise AssertionError("warm-up failed: stuck %s, failed %s"
                                 % (stuck, [(r.kind, r.err) for r in
                                            stats.failed + stats.hostile_failed][:5]))
        # The end check opens LIMIT sessions at once; so does the warm-up,
        # so that both measurements follow the same peak (relay buffers
        # stay pooled in a worker after use).
        quiesce(m, current, listen_ports, backend_ports)
        limit_check(ctx, m, ltls)
        quiesce(m, current, listen_ports, backend_ports)
        base = measure(m)
        base_rss, base_fds = totals(base)
        log("baseline after %d warm-up sessions: %s" % (stats.n_ok(), base))
        stats = Stats()

        # The timed run.
        ld = Load(ctx, stats, rng.randrange(1 << 30))
        t0 = time.monotonic()
        ld.start()
        kills, reloads, refused = [], 0, 0
        next_reload, next_kill = RELOAD_EVERY, FIRST_KILL
        next_sample, samples = 10.0, []
        while True:
            now = time.monotonic() - t0
            if now >= args.seconds:
                break
            if m.proc.poll() is not None:
                raise AssertionError("the master exited (%s)" % m.proc.returncode)
            if now >= next_reload:
                next_reload += RELOAD_EVERY
                reloads += 1
                if reloads % REFUSED_EVERY == 0:
                    refused += 1
                    refused_reload(m, render_conf(subs, gen, broken=True),
                                   render_conf(subs, gen))
                    log("%.0f s: reload %d refused (invalid config), workers %s kept"
                        % (now, reloads, sorted(current)))
                else:
                    gen += 1
                    current = set(m.reload(render_conf(subs, gen), workers=WORKERS))
                    log("%.0f s: reload %d -> workers %s" % (now, reloads, sorted(current)))
            elif now >= next_kill:
                next_kill += KILL_EVERY
                k, new = kill_worker(m, current, listen_ports, rng)
                kills.append(k)
                current = (current - {k.pid}) | {new}
                log("%.0f s: killed worker %d holding %d session(s); replaced by %d"
                    % (now, k.pid, len(k.held), new))
            elif now >= next_sample:
                next_sample += 10.0
                s = measure(m)
                samples.append((now, totals(s)))
                if len(samples) % 3 == 0:
                    with stats.lock:
                        nf, nh = len(stats.failed), stats.hostile_ok
                    log("%.0f s: %d ok, %d failed so far, %d hostile; %d processes, "
                        "rss %d KiB, fds %d" % (now, stats.n_ok(), nf, nh, len(s),
                                                *totals(s)))
            ctx.stop.wait(0.2)
        duration = time.monotonic() - t0
        stuck = ld.stop(QUIET_TIMEOUT)
        if stuck:
            problems.append("load threads still running after %.0f s: %s"
                            % (QUIET_TIMEOUT, stuck))

        # Sort failures: killed with their worker, a slow client late by
        # itself, or lost.
        killed, late, lost = [], [], []
        for r in stats.failed:
            if any((r.listen, r.cport) in k.held and r.t0 <= k.t_stop <= r.t1
                   for k in kills):
                killed.append(r)
            elif r.late:
                late.append(r)
            else:
                lost.append(r)
        for r in lost[:20]:
            problems.append("lost: %s %s (port %s, %.1f-%.1f s): %s"
                            % (r.kind, r.name, r.cport, r.t0 - t0, r.t1 - t0, r.err))
        for r in stats.hostile_failed[:20]:
            problems.append("hostile mishandled: %s (port %s): %s" % (r.kind, r.cport, r.err))
        if late:
            log("%d slow client(s) overran preread_timeout by themselves" % len(late))

        quiesce(m, current, listen_ports, backend_ports)
        limit_check(ctx, m, ltls)
        quiesce(m, current, listen_ports, backend_ports)
        end = measure(m)
        end_rss, end_fds = totals(end)
        log("end: %s" % end)

        # Access log: every ok session has its 200 line, unless a killed
        # worker held it (it may have died before writing it).
        by_name, _, bad_lines = read_access_log(m.access_log)
        held = set().union(*(k.held for k in kills)) if kills else set()
        missing = [n for n, lp in stats.ok_names.items()
                   if "200" not in by_name.get(n, ()) and lp not in held]
        if missing:
            problems.append("%d ok session(s) without a 200 access-log line, e.g. %s"
                            % (len(missing), missing[:5]))
        if bad_lines:
            problems.append("%d malformed access-log line(s)" % bad_lines)
        bad = unexpected_log_lines(m.error_text())
        if bad:
            problems.append("unexpected error-log lines:\n  " + "\n  ".join(bad[:20]))
        levels = {lv: len(re.findall(r"\[%s\]" % lv, m.error_text()))
                  for lv in ("error", "warn")}
        log("error log: %s" % levels)

        # Idle splice pipes stay pooled in a worker for reuse, as many as
        # its busiest moment needed, and which worker the kernel gave the
        # peaks to varies: pipes are bounded, everything else is exact.
        base_pipes, end_pipes = pipe_total(base), pipe_total(end)
        if end_fds - end_pipes != base_fds - base_pipes:
            problems.append("descriptors other than pipes: %d at the baseline, %d at the end"
                            % (base_fds - base_pipes, end_fds - end_pipes))
        if end_pipes > PIPE_FDS_MAX:
            problems.append("%d pipe descriptors at the end (baseline %d), more than the "
                            "%d the peak could pool" % (end_pipes, base_pipes, PIPE_FDS_MAX))
        if end[m.pid][0] > base[m.pid][0] + MASTER_SLACK_KIB:
            problems.append("master RSS %d KiB at the end, baseline %d (+%d allowed)"
                            % (end[m.pid][0], base[m.pid][0], MASTER_SLACK_KIB))
        base_w, end_w = base_rss - base[m.pid][0], end_rss - end[m.pid][0]
        if end_w > base_w + WORKERS * WORKER_POOL_KIB:
            problems.append("workers' RSS %d KiB at the end, baseline %d (+%d allowed)"
                            % (end_w, base_w, WORKERS * WORKER_POOL_KIB))
        if samples:
            log("during the run: rss %d-%d KiB, fds %d-%d"
                % (min(s[1][0] for s in samples), max(s[1][0] for s in samples),
                   min(s[1][1] for s in samples), max(s[1][1] for s in samples)))
        with stats.lock:
            log("ok by kind: %s" % dict(sorted(stats.ok.items())))
            log("hostile by kind: %s" % dict(sorted(stats.hostile_by.items())))
        if lost:
            problems.insert(0, "%d lost session(s)" % len(lost))

        rc = m.stop_all(signal.SIGTERM)
        if rc != 0:
            problems.append("snirelay exited with %s on SIGTERM" % rc)
        m = None
        summary = ("soak: %.0f s, %d sessions ok, %d lost, %d killed-with-worker, "
                   "%d hostile closed, %d reloads (%d refused), %d worker kills, "
                   "rss %d->%d KiB, fds %d->%d (pipes %d->%d)"
                   % (duration, stats.n_ok(), len(lost), len(killed), stats.hostile_ok,
                      reloads, refused, len(kills), base_rss, end_rss, base_fds, end_fds,
                      base_pipes, end_pipes))
    except (AssertionError, util.WaitTimeout, OSError, RuntimeError, ValueError) as e:
        problems.append("aborted: %s: %s" % (type(e).__name__, e))
    finally:
        if m is not None:
            try:
                m.stop_all(signal.SIGTERM)
            except AssertionError as e:
                problems.append(str(e))
        if backends is not None:
            backends.stdin.close()
            try:
                backends.wait(10)
            except subprocess.TimeoutExpired:
                backends.kill()
                backends.wait()
    for p in problems:
        log("FAIL: " + p)
    verdict = "FAIL" if problems else "PASS"
    print("%s: %s" % (summary or "soak: aborted", verdict), flush=True)
    if problems or args.keep:
        log("logs kept in %s" % work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

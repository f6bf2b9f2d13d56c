"""Fixtures for the snirelay integration tests.

- snirelay_bin: the binary ($SNIRELAY_BIN or build/snirelay); fails if missing.
- pki:          session-scoped test CA; pki.cert(cn, sans) -> (crt, key).
- port:         port() asks the kernel for a free loopback port.
- workdir:      a per-test directory for configs and logs.
- relay:        relay(stream_body, **subs) writes a config, starts snirelay,
                waits for its listen ports and stops it (SIGTERM) at teardown.
- proxy_splice: None, or "on"/"off" to put first in relay()'s and master()'s
                stream block; a module overrides it with params to run its
                relay tests on both paths (splice and the buffered copy).
- backend:      backend(handler, name) starts a TCP (or TLS) server thread.
- tls_backend:  tls_backend(name, cn, sans) starts a TLS server with its own cert.
- spawn:        spawn(argv) starts a helper process killed at teardown.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import util  # noqa: E402


@pytest.fixture(scope="session")
def snirelay_bin():
    path = util.bin_path()
    if not os.access(path, os.X_OK):
        pytest.fail("snirelay binary not found at %s (build it, or set SNIRELAY_BIN)" % path)
    return path


@pytest.fixture(scope="session")
def session_dir():
    d = tempfile.mkdtemp(prefix="snirelay-it-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def pki(session_dir):
    return util.PKI(os.path.join(session_dir, "pki"))


@pytest.fixture
def port():
    return util.free_port


@pytest.fixture
def workdir(tmp_path):
    return str(tmp_path)


@pytest.fixture
def proxy_splice():
    """The proxy_splice value relay() and master() set for the whole stream
    block, or None to leave the default (on). A test module runs its tests
    on both relay paths with

        @pytest.fixture(params=["on", "off"])
        def proxy_splice(request):
            return request.param

    and a single test with @pytest.mark.parametrize("proxy_splice", ...)."""
    return None


def _with_splice(stream_body, proxy_splice):
    if proxy_splice is None:
        return stream_body
    return "    proxy_splice %s;\n%s" % (proxy_splice, stream_body)


@pytest.fixture
def relay(workdir, snirelay_bin, proxy_splice):
    """Factory: relay(stream_body, main_extra='', log_format=..., access_extra='', **subs)."""
    started = []

    def make(stream_body, main_extra="", log_format=util.LOG_FORMAT, access_extra="",
             start=True, **subs):
        d = os.path.join(workdir, "r%d" % len(started))
        os.makedirs(d)
        stream_body = _with_splice(stream_body, proxy_splice)
        text = util.config(d, util.render(stream_body, **subs),
                           main_extra=util.render(main_extra, **subs),
                           log_format=log_format, access_extra=access_extra)
        r = util.Snirelay(d, text, snirelay_bin)
        started.append(r)
        if start:
            r.start()
        return r

    yield make

    problems = []
    for r in started:
        if r.proc is None or r.returncode is not None:
            continue  # never started, or the test stopped it and checked
        if r.proc.poll() is not None:
            problems.append("snirelay died during the test (exit %s); stderr:\n%s"
                            % (r.proc.returncode, r.stderr()[-3000:]))
            r.stop()
            continue
        try:
            rc = r.stop()
        except AssertionError as e:
            problems.append(str(e))
            continue
        if rc != 0:
            problems.append("snirelay exited with %s on SIGTERM; stderr:\n%s"
                            % (rc, r.stderr()[-3000:]))
        bad = [l for l in r.error_text().splitlines()
               if "[alert]" in l or "[crit]" in l or "[emerg]" in l]
        if bad:
            problems.append("error log has alert/crit/emerg lines:\n" + "\n".join(bad[:20]))
    if problems:
        pytest.fail("\n".join(problems))


@pytest.fixture
def backend():
    """Factory: backend(handler, name='b', **kw) -> util.Backend (stopped at teardown)."""
    made = []

    def make(handler, name="b", **kw):
        b = util.Backend(handler, name=name, **kw)
        made.append(b)
        return b

    yield make
    for b in made:
        b.stop()


@pytest.fixture
def tls_backend(backend, pki):
    """Factory: tls_backend(name, cn=None, sans=None, alpn=None) -> Backend speaking TLS.

    Each connection reads one line and answers `name`.  b.sni lists the SNI
    each handshake carried.
    """
    def make(name, cn=None, sans=None, alpn=None, handler=None):
        crt, key = pki.cert(cn or name, sans)
        sni = []
        ctx = util.server_context(crt, key, alpn=alpn, sni_log=sni)
        b = backend(handler or util.tls_reply(name), name=name, ssl_context=ctx)
        b.sni = sni
        return b

    return make


@pytest.fixture
def spawn():
    """Factory: spawn(argv, **popen_kw) -> Popen, killed at teardown."""
    procs = []

    def make(argv, **kw):
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("preexec_fn", util._die_with_parent)
        p = subprocess.Popen(argv, **kw)
        procs.append(p)
        return p

    yield make
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def pytest_sessionfinish(session, exitstatus):
    """Safety net: stop any snirelay a test left running."""
    for r in list(util.LIVE):
        try:
            r.stop(timeout=5)
        except AssertionError:
            pass


# --------------------------------------------------------------------------
# DNS (appended for the resolver tests; see dns.py)

import dns as _dns  # noqa: E402


@pytest.fixture
def dnsmasq(workdir):
    """Factory: dnsmasq(records, ttl=0, **kw) -> started dns.Dnsmasq, stopped at teardown."""
    made = []

    def make(records=None, ttl=0, **kw):
        d = _dns.Dnsmasq(os.path.join(workdir, "dns%d" % len(made)), records, ttl=ttl, **kw)
        made.append(d)
        return d.start()

    yield make
    for d in made:
        d.stop()


@pytest.fixture
def system_dnsmasq(workdir):
    """Factory: system_dnsmasq(records, ttl=0) -> (dns.Dnsmasq on port 53 of
    a loopback address of its own, path of a resolv.conf naming it), for
    `resolver system=FILE`; stopped at teardown."""
    made = []

    def make(records=None, ttl=0):
        d, path = _dns.system_dnsmasq(
            os.path.join(workdir, "sys%d" % len(made)), records or {}, ttl=ttl)
        made.append(d)
        return d, path

    yield make
    for d in made:
        d.stop()


@pytest.fixture
def silent_resolver():
    """A UDP 'DNS server' on loopback that never answers (dns.SilentResolver)."""
    s = _dns.SilentResolver()
    yield s
    s.stop()


@pytest.fixture
def slow_resolver():
    """Factory: slow_resolver(records, delay, ttl=60, cnames=None, srv=None)
    -> dns.SlowResolver, a loopback DNS server answering each query after
    `delay` seconds (CNAME-only answers for the names in cnames, SRV
    records for those in srv)."""
    made = []

    def make(records, delay, ttl=60, cnames=None, srv=None):
        s = _dns.SlowResolver(records, delay, ttl, cnames, srv)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


@pytest.fixture
def same_port_backends():
    """Factory: same_port_backends(hosts, handler_for, ssl_for=None, port=None)
    -> (port, {host: backend}): one backend per 127.0.0.x address in `hosts`,
    all on one port number (dns.backends_on_one_port); stopped at teardown."""
    made = []

    def make(hosts, handler_for, ssl_for=None, port=None):
        return _dns.backends_on_one_port(hosts, handler_for, port=port, ssl_for=ssl_for,
                                         made=made)

    yield make
    for b in made:
        b.stop()


# --------------------------------------------------------------------------
# master/worker processes (appended for test_process, test_reload,
# test_limits, test_access_control, test_proxy_protocol)


@pytest.fixture
def master(workdir, snirelay_bin, proxy_splice):
    """Factory: master(stream_body, main_extra='', events='worker_connections 1024;',
    log_format=util.LOG_FORMAT, access_extra='', start=True, allow_log=(), **subs)
    -> started util.Master.

    Teardown: SIGTERM (unless the test stopped it, or sent a stop signal and
    set m.expect_exit: then it must have exited 0), then every
    worker pid ever seen (and every child the master had then) must be gone;
    error-log lines at alert/crit/emerg fail the test unless they match one
    of the regexes in m.allow_log.
    """
    import re

    started = []

    def make(stream_body, main_extra="", events="worker_connections 1024;",
             log_format=util.LOG_FORMAT, access_extra="", start=True, allow_log=(),
             **subs):
        d = os.path.join(workdir, "m%d" % len(started))
        os.makedirs(d)
        stream_body = _with_splice(stream_body, proxy_splice)
        text = util.config_events(d, util.render(stream_body, **subs),
                                  main_extra=util.render(main_extra, **subs),
                                  log_format=log_format, access_extra=access_extra,
                                  events=util.render(events, **subs))
        m = util.Master(d, text, snirelay_bin)
        m.allow_log = list(allow_log)
        started.append(m)
        if start:
            m.start()
        return m

    yield make

    problems = []
    comm = os.path.basename(snirelay_bin)
    for m in started:
        if m.proc is None:
            continue
        if m.returncode is None:
            m.workers()
            if m.proc.poll() is not None:
                if not (m.expect_exit and m.proc.returncode == 0):
                    problems.append("master died during the test (exit %s); error log:\n%s"
                                    % (m.proc.returncode, m.error_text()[-3000:]))
                m.stop()
            else:
                try:
                    rc = m.stop()
                    if rc != 0:
                        problems.append("master exited with %s on SIGTERM" % rc)
                except AssertionError as e:
                    problems.append(str(e))
        left = util.wait_for_gone(m.seen, comm=comm, timeout=10)
        if left:
            problems.append("worker process(es) %s of master %d outlived it (killed)"
                            % (left, m.proc.pid))
        bad = [l for l in m.error_text().splitlines()
               if ("[alert]" in l or "[crit]" in l or "[emerg]" in l)
               and not any(re.search(a, l) for a in m.allow_log)]
        if bad:
            problems.append("error log has unexpected alert/crit/emerg lines:\n"
                            + "\n".join(bad[:20]))
    if problems:
        pytest.fail("\n".join(problems))

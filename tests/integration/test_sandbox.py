"""The worker sandbox (`sandbox on`, the default; `sandbox off`):
no_new_privs, a seccomp allow-list whose violation kills the worker with the
call named in the master's log, and Landlock (where the kernel has it)
limiting files to the logs and the configuration; reload, log reopening and
the resolver keep working under it.

A worker is made to act on demand by a test-only LD_PRELOAD shim
(sandbox/shim.c, built here, never part of snirelay): its SIGUSR2 handler
makes a forbidden call (ptrace) or opens a file, and prints the outcome on
stderr. A kernel without Landlock is imitated by sandbox/no_landlock.c, a
launcher whose seccomp filter makes the landlock_* calls fail with ENOSYS.
"""

import ctypes
import errno
import os
import re
import signal
import subprocess

import pytest

import dns
import util

HERE = os.path.dirname(os.path.abspath(__file__))

FIELDS = ["pid", "status", "upstream_addr"]
FMT = "|".join("$" + f for f in FIELDS)

ECHO_CONF = r"""
    server {
        listen 127.0.0.1:@L@;
        proxy_pass 127.0.0.1:@B@;
    }
"""

SIGSYS_LINE = (r"worker process %d exited on signal %d \(SIGSYS\): "
               r"forbidden system call ptrace \(\d+\)")
ALLOW_SIGSYS = [r"exited on signal %d \(SIGSYS\): forbidden system call ptrace"
                % signal.SIGSYS]


def _landlock_abi():
    """The kernel's Landlock ABI (landlock_create_ruleset, VERSION), or 0."""
    libc = ctypes.CDLL(None, use_errno=True)
    abi = libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return abi if abi > 0 else 0


@pytest.fixture(scope="session")
def helpers(session_dir):
    """Builds the shim and the launcher with the system C compiler."""
    cc = os.environ.get("CC", "cc")
    out = {"shim": os.path.join(session_dir, "sandbox_shim.so"),
           "no_landlock": os.path.join(session_dir, "no_landlock")}
    util.run_ok([cc, "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-o",
                 out["shim"], os.path.join(HERE, "sandbox", "shim.c")])
    util.run_ok([cc, "-Wall", "-Wextra", "-Werror", "-o", out["no_landlock"],
                 os.path.join(HERE, "sandbox", "no_landlock.c"), "-lseccomp"])
    return out


def _start(master, backend, port, main_extra="", shim=None, helpers=None,
           launcher=None, workers=1, allow_log=(), start=True):
    B = backend(util.echo(), name="echo")
    m = master(ECHO_CONF, log_format=FMT, L=port(), B=B.port, start=False,
               main_extra="worker_processes %d;\n%s" % (workers, main_extra),
               allow_log=allow_log)
    if shim is not None:
        m.env = {"LD_PRELOAD": helpers["shim"], "SNIRELAY_SHIM": shim}
    if launcher is not None:
        m.launcher = [launcher]
    if start:
        m.start()
    return m, m.listen_ports[0]


def _session(L, payload=b"hello\n"):
    s = util.connect(L, timeout=10)
    try:
        assert util.echo_roundtrip(s, payload) == payload
    finally:
        s.close()


def _sandboxed(m, *pids):
    """Wait until each worker has logged that it entered the sandbox (it
    runs its event loop a little before: wait_workers() does not wait)."""
    for w in pids:
        m.wait_error(r"\[info\] %d#0: sandbox: \d+ system calls allowed" % w)
    return pids


def _status(pid):
    """Seccomp and NoNewPrivs of /proc/PID/status, as ints."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Seccomp", "NoNewPrivs"):
                out[k] = int(v)
    return out


def _shim_says(m, action, n=1):
    """Wait for the n-th stderr line of the shim about `action`; return its result."""
    rx = re.compile(r"^shim: %s = (.*)\n" % re.escape(action), re.M)
    util.wait_for(lambda: len(rx.findall(m.stderr())) >= n,
                  "the shim to report %r" % action)
    return rx.findall(m.stderr())[n - 1]


def _served_by(m, n):
    """The pid in the n-th access-log line (waits for it)."""
    return int(util.parse_line(m.wait_access(n)[n - 1], FIELDS)["pid"])


def test_sandbox_directive_takes_on_and_off_in_main_context(snirelay_bin, workdir):
    def check(line):
        conf = os.path.join(workdir, "t.conf")
        with open(conf, "w") as f:
            f.write("%s\nevents {}\nstream { server { listen 127.0.0.1:1; "
                    "return x; } }\n" % line)
        p = subprocess.run([snirelay_bin, "-t", "-c", conf], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=util.DEADLINE)
        return p.returncode, p.stderr.decode(errors="replace")

    assert check("sandbox on;")[0] == 0
    assert check("sandbox off;")[0] == 0
    rc, err = check("sandbox maybe;")
    assert rc == 1
    assert 'invalid value "maybe" in "sandbox" directive, it must be "on" or "off"' in err


def test_worker_is_sandboxed_by_default(master, backend, port):
    m, L = _start(master, backend, port, workers=2)
    ws = _sandboxed(m, *m.wait_workers(2))
    for w in ws:
        assert _status(w) == {"Seccomp": 2, "NoNewPrivs": 1}, w
    # The master is not: it reloads, reopens and forks.
    assert _status(m.pid)["Seccomp"] == 0
    lines = re.findall(r"\[info\] (\d+)#0: sandbox: (\d+) system calls allowed, "
                       r"(.*)$", m.error_text(), re.M)
    assert sorted(int(p) for p, _, _ in lines) == sorted(ws)
    assert all(int(n) > 20 for _, n, _ in lines)
    abi = _landlock_abi()
    assert {ll for _, _, ll in lines} == {"Landlock ABI %d" % abi if abi else "no Landlock"}
    _session(L)
    assert _served_by(m, 1) in ws


def test_sandbox_off_leaves_the_worker_unfiltered(master, backend, port):
    m, L = _start(master, backend, port, main_extra="sandbox off;")
    (w,) = m.wait_workers(1)
    assert _status(w)["Seccomp"] == 0
    assert "sandbox:" not in m.error_text()
    _session(L)
    assert _served_by(m, 1) == w


def test_a_forbidden_system_call_in_a_worker_is_logged_by_the_master_and_the_worker_replaced(
        master, backend, port, helpers):
    m, L = _start(master, backend, port, shim="forbidden", helpers=helpers,
                  allow_log=ALLOW_SIGSYS)
    (w,) = _sandboxed(m, *m.wait_workers(1))
    _session(L)
    assert _served_by(m, 1) == w
    os.kill(w, signal.SIGUSR2)
    m.wait_error(SIGSYS_LINE % (w, signal.SIGSYS))
    assert re.search(r"\[alert\] %d#0: " % m.pid + SIGSYS_LINE % (w, signal.SIGSYS),
                     m.error_text())
    # The call never returned: the shim had nothing to report.
    assert "shim: forbidden" not in m.stderr()
    (w2,) = _sandboxed(m, *m.wait_workers(1, exclude=[w]))
    assert _status(w2)["Seccomp"] == 2
    _session(L)
    assert _served_by(m, 2) == w2


def test_with_sandbox_off_the_forbidden_call_does_not_kill_the_worker(
        master, backend, port, helpers):
    m, L = _start(master, backend, port, main_extra="sandbox off;",
                  shim="forbidden", helpers=helpers)
    (w,) = m.wait_workers(1)
    os.kill(w, signal.SIGUSR2)
    # ptrace(PTRACE_PEEKDATA, pid 0) ran, and failed harmlessly.
    assert _shim_says(m, "forbidden") == "errno %d" % errno.ESRCH
    assert "SIGSYS" not in m.error_text()
    assert m.workers() == [w]
    _session(L)
    assert _served_by(m, 1) == w


def test_abort_in_a_sandboxed_worker_is_still_sigabrt(master, backend, port, helpers):
    # BUG_ON() aborts: the sandbox lets abort() signal its own process, so
    # the master sees SIGABRT, not a forbidden call.
    m, L = _start(master, backend, port, shim="abort", helpers=helpers,
                  allow_log=[r"exited on signal %d$" % signal.SIGABRT])
    (w,) = _sandboxed(m, *m.wait_workers(1))
    os.kill(w, signal.SIGUSR2)
    m.wait_error(r"(?m)\[alert\] %d#0: worker process %d exited on signal %d$"
                 % (m.pid, w, signal.SIGABRT))
    assert "SIGSYS" not in m.error_text()
    _sandboxed(m, *m.wait_workers(1, exclude=[w]))
    _session(L)


def test_a_sanitizer_report_in_a_sandboxed_worker_is_printed(
        master, backend, port, helpers):
    # An ASan build (make asan) keeps the sandbox: a report must still
    # reach stderr whole, not die of SIGSYS half-way.
    m, L = _start(master, backend, port, shim="asan-report", helpers=helpers)
    (w,) = _sandboxed(m, *m.wait_workers(1))
    os.kill(w, signal.SIGUSR2)
    got = _shim_says_or_exit(m, w, "asan-report")
    if got == "errno %d" % errno.ENOSYS:
        pytest.skip("not an ASan build")
    assert got is None, "the shim said %r; error log:\n%s" % (
        got, m.error_text()[-3000:])
    assert re.search(r"(?m)worker process %d exited with code 1$" % w,
                     m.wait_error(r"worker process %d exited" % w).string), \
        m.error_text()[-3000:]
    err = m.stderr()
    assert "ERROR: AddressSanitizer" in err, err[-3000:]
    assert re.search(r"SUMMARY: AddressSanitizer: \S+", err), err[-3000:]
    assert "SIGSYS" not in m.error_text()
    _sandboxed(m, *m.wait_workers(1, exclude=[w]))
    _session(L)


def _shim_says_or_exit(m, w, action):
    """The shim's report of `action`, or None once worker w has exited."""
    rx = re.compile(r"^shim: %s = (.*)\n" % re.escape(action), re.M)

    def done():
        got = rx.findall(m.stderr())
        if got:
            return got[0]
        if re.search(r"worker process %d exited" % w, m.error_text()):
            return "exited"
        return None
    got = util.wait_for(done, "the shim's %r, or the worker to exit" % action)
    return None if got == "exited" else got


def _probe(m, w, action, n=1):
    os.kill(w, signal.SIGUSR2)
    return _shim_says(m, action, n)


def test_landlock_limits_worker_files_to_the_logs_and_the_config(
        master, backend, port, helpers, workdir):
    if not _landlock_abi():
        pytest.skip("this kernel has no Landlock (test_without_landlock_* covers it)")
    secret = os.path.join(workdir, "secret.txt")
    with open(secret, "w") as f:
        f.write("not for workers\n")
    other = os.path.join(workdir, "elsewhere")
    os.makedirs(other)
    m, L = _start(master, backend, port, shim="-", helpers=helpers, start=False)
    want = [("read:" + secret, "errno %d" % errno.EACCES),
            ("create:" + os.path.join(other, "x"), "errno %d" % errno.EACCES),
            ("read:/etc/passwd", "errno %d" % errno.EACCES),
            ("read:" + m.conf, "ok 0"),                 # the config is readable
            ("create:" + os.path.join(m.dir, "new.log"), "ok 0")]   # a log dir
    m.env["SNIRELAY_SHIM"] = "|".join(a for a, _ in want)
    m.start()
    (w,) = _sandboxed(m, *m.wait_workers(1))
    os.kill(w, signal.SIGUSR2)
    assert [(a, _shim_says(m, a)) for a, _ in want] == want
    assert not os.path.exists(os.path.join(other, "x"))
    assert m.workers() == [w]
    _session(L)


def test_with_sandbox_off_files_are_not_limited(master, backend, port, helpers, workdir):
    secret = os.path.join(workdir, "secret.txt")
    with open(secret, "w") as f:
        f.write("readable without the sandbox\n")
    m, L = _start(master, backend, port, main_extra="sandbox off;",
                  shim="read:" + secret, helpers=helpers)
    (w,) = m.wait_workers(1)
    assert _probe(m, w, "read:" + secret) == "ok 0"


def test_without_landlock_the_lack_is_noted_once_and_seccomp_still_applies(
        master, backend, port, helpers, workdir):
    secret = os.path.join(workdir, "secret.txt")
    with open(secret, "w") as f:
        f.write("x\n")
    m, L = _start(master, backend, port, workers=2, shim="read:" + secret,
                  helpers=helpers, launcher=helpers["no_landlock"])
    ws = _sandboxed(m, *m.wait_workers(2))
    m.wait_error(r"\[notice\] %d#0: sandbox: the kernel has no Landlock "
                 r"\(%d: [^)]*\); workers are sandboxed by seccomp only"
                 % (m.pid, errno.ENOSYS))
    for w in ws:
        assert _status(w) == {"Seccomp": 2, "NoNewPrivs": 1}
    assert m.count_errors(r"sandbox: \d+ system calls allowed, no Landlock") == 2
    # No Landlock: the file is readable; the worker lives on.
    assert _probe(m, ws[0], "read:" + secret) == "ok 0"
    _session(L)
    # A reload does not say it again.
    new = _sandboxed(m, *m.reload())
    assert m.count_errors("the kernel has no Landlock") == 1
    for w in new:
        assert _status(w)["Seccomp"] == 2


def test_reload_works_under_the_sandbox(master, backend, port):
    A = backend(util.echo(), name="A")
    m, L = _start(master, backend, port)
    (old,) = m.wait_workers(1)
    _session(L)
    new = m.reload(re.sub(r"proxy_pass 127\.0\.0\.1:\d+;",
                          "proxy_pass 127.0.0.1:%d;" % A.port, m.text))
    m.wait_error(r"worker process %d exited with code 0" % old)
    (w,) = _sandboxed(m, *new)
    assert _status(w) == {"Seccomp": 2, "NoNewPrivs": 1}
    _session(L)
    A.wait_conns(1)
    line = util.parse_line(m.wait_access(2)[1], FIELDS)
    assert int(line["pid"]) == w
    assert line["upstream_addr"] == "127.0.0.1:%d" % A.port
    assert "SIGSYS" not in m.error_text()


def test_log_reopen_works_under_the_sandbox(master, backend, port):
    # The server's access logs, relative to the prefix (the master's cwd):
    # the usual one, and one with a variable in its name in a directory of
    # its own, opened per session.
    body = ECHO_CONF.replace(
        "proxy_pass", "access_log access.log t;\n"
        "        access_log logs/port-$server_port.log t;\n        proxy_pass")
    B = backend(util.echo(), name="echo")
    Lp = port()
    m = master(body, log_format=FMT, L=Lp, B=B.port, start=False)
    os.makedirs(os.path.join(m.dir, "logs"))
    m.start()
    (w,) = _sandboxed(m, *m.wait_workers(1))
    var_log = os.path.join(m.dir, "logs", "port-%d.log" % Lp)
    _session(Lp)
    m.wait_access(1)
    m.wait_access(1, var_log)
    for path in (m.access_log, m.error_log, var_log):
        os.rename(path, path + ".1")
    m.send_signal(signal.SIGUSR1)
    m.wait_reopened(m.access_log)
    m.wait_reopened(m.error_log, pids=[m.pid, w])
    _session(Lp, b"after\n")
    assert int(util.parse_line(m.wait_access(1)[0], FIELDS)["pid"]) == w
    assert len(m.wait_access(1, var_log)) == 1
    assert len(m.access_lines(m.access_log + ".1")) == 1
    assert m.workers() == [w]
    assert "SIGSYS" not in m.error_text()


def test_resolver_works_under_the_sandbox(master, port, dnsmasq, same_port_backends):
    hosts = ["127.0.0.21", "127.0.0.22"]
    P, bk = same_port_backends(hosts, lambda h: util.record_to_eof())
    d = dnsmasq({"a.test": "127.0.0.21", "b.test": "127.0.0.22"}, ttl=0)
    m = master(r"""
        resolver @DNS@;
        resolver_timeout 5s;
        server {
            listen 127.0.0.1:@L@;
            ssl_preread on;
            proxy_target_allow 127.0.0.0/8;
            proxy_pass $ssl_preread_server_name:@P@;
        }
    """, DNS=d.addr, L=port(), P=P, log_format=FMT)
    (w,) = _sandboxed(m, *m.wait_workers(1))
    assert _status(w)["Seccomp"] == 2
    L = m.listen_ports[0]
    for i, name in enumerate(("a.test", "b.test", "a.test"), 1):
        s, _ = dns.send_hello(L, name)
        s.close()
        m.wait_access(i)
    lines = [util.parse_line(l, FIELDS) for l in m.wait_access(3)]
    assert [l["upstream_addr"] for l in lines] == \
        ["127.0.0.21:%d" % P, "127.0.0.22:%d" % P, "127.0.0.21:%d" % P]
    assert {int(l["pid"]) for l in lines} == {w}
    # TTL 0: every session asked the server again.
    assert d.count("a.test") == 2
    assert d.count("b.test") == 1
    assert m.workers() == [w]
    assert "SIGSYS" not in m.error_text()


def test_a_dns_answer_too_big_for_udp_is_fetched_over_tcp_under_the_sandbox(
        master, port, dnsmasq, same_port_backends):
    # 40 A records do not fit a 512-byte UDP answer: dnsmasq truncates it
    # and c-ares asks again over TCP (its own calls: connect, writev, recv).
    hosts = ["127.0.1.%d" % i for i in range(1, 41)]
    P, bk = same_port_backends(hosts, lambda h: util.record_to_eof())
    d = dnsmasq({"big.test": hosts}, ttl=60)
    m = master(r"""
        resolver @DNS@ ipv6=off;
        resolver_timeout 5s;
        server {
            listen 127.0.0.1:@L@;
            ssl_preread on;
            proxy_target_allow 127.0.0.0/8;
            proxy_pass $ssl_preread_server_name:@P@;
        }
    """, DNS=d.addr, L=port(), P=P, log_format=FMT)
    (w,) = _sandboxed(m, *m.wait_workers(1))
    s, _ = dns.send_hello(m.listen_ports[0], "big.test")
    s.close()
    line = util.parse_line(m.wait_access(1)[0], FIELDS)
    assert line["status"] == "200"
    assert line["upstream_addr"].rsplit(":", 1)[0] in hosts
    # Asked twice: over UDP (truncated), then over TCP.
    assert d.count("big.test") == 2
    assert m.workers() == [w]
    assert "SIGSYS" not in m.error_text()


def test_an_access_log_path_starting_with_a_variable_leaves_writing_open(
        master, backend, port, workdir):
    # Its files may be anywhere: the rule is "/", said once at notice level.
    other = os.path.join(workdir, "other")
    os.makedirs(other)
    B = backend(util.echo(), name="echo")
    m = master(r"""
        map $server_port $alog {
            default @O@/by-map.log;
        }
        server {
            listen 127.0.0.1:@L@;
            access_log $alog t;
            proxy_pass 127.0.0.1:@B@;
        }
    """, O=other, L=port(), B=B.port, log_format=FMT)
    (w,) = _sandboxed(m, *m.wait_workers(1))
    assert m.count_errors(r"\[notice\] %d#0: sandbox: an access_log path starts "
                          r"with a variable: workers may write files anywhere" % w) == 1
    _session(m.listen_ports[0])
    line = util.parse_line(m.wait_access(1, os.path.join(other, "by-map.log"))[0], FIELDS)
    assert int(line["pid"]) == w
    assert m.workers() == [w]

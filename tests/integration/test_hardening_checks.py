"""Failures of registration and allocation are handled (issue 8, item 5):

- a `realloc` of the timer heap that fails (injected with an LD_PRELOAD shim
  built here with the system cc) closes only the session that needed the
  timer, with an error-log line; the other sessions and the worker go on;
- USR1 with `user nobody` as root: the master gives the reopened log files
  to the worker user (as nginx does), so the workers, no longer root, write
  to the new files instead of the rotated ones.
"""

import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile

import pytest

import hello
import util

FIELDS = ["pid", "status", "remote_addr", "ssl_preread_server_name"]
FMT = "|".join("$" + f for f in FIELDS)

PREREAD_CONF = r"""
    server {
        listen 127.0.0.1:@L@;
        ssl_preread on;
        preread_timeout 60s;
        proxy_timeout 60s;
        proxy_pass 127.0.0.1:@B@;
    }
"""

# realloc() called from inside one of the ranges fails: once when the file
# FAILREALLOC_ONCE exists (it is removed then), every time while the file
# FAILREALLOC_ALWAYS exists. Each failure adds a byte to FAILREALLOC_COUNT.
SHIM_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_RANGES 8

static void *(*real_realloc)(void *, size_t);
static uintptr_t lo[MAX_RANGES], hi[MAX_RANGES];
static int nranges;
static const char *once, *always, *count;

static int
main_base(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    *(uintptr_t *)data = info->dlpi_addr; /* the first one: the program */
    return 1;
}

__attribute__((constructor)) static void
shim_init(void)
{
    const char *r = getenv("FAILREALLOC_RANGES");
    uintptr_t base = 0;

    once = getenv("FAILREALLOC_ONCE");
    always = getenv("FAILREALLOC_ALWAYS");
    count = getenv("FAILREALLOC_COUNT");
    real_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
    dl_iterate_phdr(main_base, &base);
    while (r != NULL && *r != '\0' && nranges < MAX_RANGES) {
        char *end;
        const uintptr_t start = (uintptr_t)strtoull(r, &end, 16);
        const uintptr_t len = (uintptr_t)strtoull(end + 1, &end, 16);
        lo[nranges] = base + start;
        hi[nranges] = base + start + len;
        nranges++;
        r = *end == ',' ? end + 1 : end;
    }
}

void *
realloc(void *p, size_t n)
{
    const uintptr_t caller = (uintptr_t)__builtin_return_address(0);

    for (int i = 0; i < nranges; i++) {
        if (caller >= lo[i] && caller < hi[i] &&
            (unlink(once) == 0 || access(always, F_OK) == 0)) {
            const int fd = open(count, O_WRONLY | O_APPEND | O_CREAT, 0644);
            if (fd != -1) {
                (void)!write(fd, "x", 1);
                close(fd);
            }
            errno = ENOMEM;
            return NULL;
        }
    }
    return real_realloc(p, n);
}
"""


@pytest.fixture
def workdir():
    """A directory every user may enter: workers running as `user` open
    their log files by path (pytest's own tmp directories are root's only)."""
    d = tempfile.mkdtemp(prefix="snirelay-hc-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _symbol_ranges(binary, name):
    """'start:size' (hex) of `name` and its compiler-split parts in binary."""
    out = subprocess.run(["nm", "-S", "--defined-only", binary], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, check=True).stdout.decode()
    ranges = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and re.fullmatch(re.escape(name) + r"(\..*)?", parts[3]):
            ranges.append("%x:%x" % (int(parts[0], 16), int(parts[1], 16)))
    return ranges, "__asan_init" in out


def _build_shim(d):
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler to build the LD_PRELOAD shim")
    src = os.path.join(d, "failrealloc.c")
    so = os.path.join(d, "failrealloc.so")
    with open(src, "w") as f:
        f.write(SHIM_C)
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", so, src, "-ldl"], check=True)
    return so


def _client_hello(name):
    return hello.records(hello.build_client_hello(server_name=name))


class Shim:
    """Files that steer the LD_PRELOAD shim (see SHIM_C)."""

    def __init__(self, d):
        self.once = os.path.join(d, "fail-once")
        self.always = os.path.join(d, "fail-always")
        self.count_path = os.path.join(d, "failures")

    def count(self):
        try:
            return os.path.getsize(self.count_path)
        except FileNotFoundError:
            return 0

    @staticmethod
    def touch(path):
        with open(path, "w"):
            pass


def _start_with_shim(master, workdir, snirelay_bin, monkeypatch, conf, **subs):
    """A master (one worker) whose realloc() called from loop_timer_set(),
    that is the timer heap growing, fails as the returned Shim says."""
    ranges, is_asan = _symbol_ranges(snirelay_bin, "loop_timer_set")
    if is_asan:
        pytest.skip("an ASan build brings its own realloc, which LD_PRELOAD "
                    "cannot replace")
    if not ranges:
        pytest.skip("loop_timer_set not in the binary's symbol table (stripped?)")
    so = _build_shim(workdir)
    shim = Shim(workdir)
    # The shim reads and removes its control files from inside the worker
    # (access, unlink), which the worker sandbox forbids: not under test here.
    m = master(conf, log_format=FMT, main_extra="worker_processes 1;\nsandbox off;",
               start=False,
               allow_log=[r"adding a timer failed \(12: Cannot allocate memory\)"],
               **subs)
    monkeypatch.setenv("LD_PRELOAD", so)
    monkeypatch.setenv("FAILREALLOC_RANGES", ",".join(ranges))
    monkeypatch.setenv("FAILREALLOC_ONCE", shim.once)
    monkeypatch.setenv("FAILREALLOC_ALWAYS", shim.always)
    monkeypatch.setenv("FAILREALLOC_COUNT", shim.count_path)
    m.start()
    monkeypatch.delenv("LD_PRELOAD")
    return m, shim


def _closed_ones(socks):
    """Indexes of the sockets the proxy has closed."""
    out = []
    for i, s in enumerate(socks):
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                out.append(i)
        except BlockingIOError:
            pass
        except ConnectionError:
            out.append(i)
    return out


def _open_until_failure(m, L, shim, socks):
    """Opens sessions that wait in preread (one timer each) until one of
    them needs the timer heap to grow and meets the failing realloc; then
    waits until the worker has taken every session opened."""
    for _ in range(480):
        socks.append(util.connect(L, timeout=10))
        if shim.count() > 0:
            break
    util.wait_for(lambda: shim.count() > 0, "the worker to meet the failing realloc")
    util.wait_for(lambda: m.count_errors(r"connected to 127\.0\.0\.1:%d" % L)
                  == len(socks), "the worker to take all %d sessions" % len(socks))


FAILED_LINE = (r"\[alert\] \d+#\d+: \*\d+ adding a timer failed \(12: Cannot "
               r"allocate memory\) while prereading client data, client: "
               r"127\.0\.0\.1, server: 127\.0\.0\.1:%d")


def test_failing_timer_heap_realloc_closes_only_that_session(
        master, backend, port, workdir, snirelay_bin, monkeypatch):
    B = backend(util.echo())
    L = port()
    m, shim = _start_with_shim(master, workdir, snirelay_bin, monkeypatch,
                               PREREAD_CONF, L=L, B=B.port)
    (w,) = m.wait_workers(1)
    socks = []
    try:
        shim.touch(shim.once)
        _open_until_failure(m, L, shim, socks)
        assert shim.count() == 1
        m.wait_error(FAILED_LINE % L)
        closed = util.wait_for(lambda: _closed_ones(socks),
                               "the failed session to be closed")
        assert len(closed) == 1, "sessions closed: %s of %d" % (closed, len(socks))
        lines = [util.parse_line(l, FIELDS) for l in m.wait_access(1)]
        assert [(l["pid"], l["status"]) for l in lines] == [(str(w), "500")], lines

        # Every other session goes on: its hello is routed and echoed back.
        for i, s in enumerate(socks):
            if i in closed:
                continue
            s.settimeout(10)
            payload = _client_hello("s%d.example" % i) + b"after %d\n" % i
            assert util.echo_roundtrip(s, payload) == payload, i
    finally:
        for s in socks:
            s.close()
    lines = m.wait_access(len(socks))
    statuses = sorted(util.parse_line(l, FIELDS)["status"] for l in lines)
    assert statuses == ["200"] * (len(socks) - 1) + ["500"]

    # The same worker, alive and serving.
    assert m.workers() == [w]
    s = util.connect(L, timeout=10)
    payload = _client_hello("later.example") + b"later\n"
    assert util.echo_roundtrip(s, payload) == payload
    s.close()
    assert "exited on signal" not in m.error_text()


RESOLVE_CONF = PREREAD_CONF + r"""
    resolver @DNS@ ipv6=off;
    resolver_timeout 60s;
    server {
        listen 127.0.0.1:@L2@;
        set $target "r.test:@B@";
        proxy_pass $target;
    }
"""


def test_lookup_refused_for_want_of_a_deadline_closes_the_session(
        master, backend, port, workdir, snirelay_bin, monkeypatch,
        silent_resolver):
    """A lookup whose resolver_timeout deadline cannot be armed is refused
    (resolver_lookup() says so, apart from "queued"): the session ends at
    once with a log line, instead of waiting on a query with no deadline."""
    B = backend(util.echo())
    L, L2 = port(), port()
    m, shim = _start_with_shim(master, workdir, snirelay_bin, monkeypatch,
                               RESOLVE_CONF, L=L, L2=L2, B=B.port,
                               DNS=silent_resolver.addr)
    (w,) = m.wait_workers(1)
    socks = []
    try:
        # The heap full, every growth failing: the lookup's deadline is
        # the next timer armed.
        shim.touch(shim.always)
        _open_until_failure(m, L, shim, socks)
        failures = shim.count()
        closed = util.wait_for(lambda: len(_closed_ones(socks)) == failures
                               and _closed_ones(socks),
                               "the %d failed session(s) to be closed" % failures)
        s = util.connect(L2, timeout=10)
        assert util.wait_closed(s) == b""
        s.close()
        assert shim.count() == failures + 1
        m.wait_error(r"\[error\] \d+#\d+: \*\d+ r\.test could not be resolved: "
                     r"the lookup was refused \(12: Cannot allocate memory\) while "
                     r"resolving, client: 127\.0\.0\.1, server: 127\.0\.0\.1:%d\n"
                     % L2)
        lines = [util.parse_line(l, FIELDS) for l in m.wait_access(failures + 1)]
        assert [l["status"] for l in lines] == ["500"] * (failures + 1)
        assert silent_resolver.names == []      # no query without a deadline
        assert _closed_ones(socks) == closed    # the others still wait
        # Memory back: sessions get their timers again.
        os.unlink(shim.always)
        s = util.connect(L, timeout=10)
        payload = _client_hello("later.example") + b"later\n"
        assert util.echo_roundtrip(s, payload) == payload
        s.close()
    finally:
        for s in socks:
            s.close()
    assert m.workers() == [w]


def _uid_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    return None


def test_usr1_with_user_nobody_as_root_writes_to_the_new_file(master, backend, port):
    if os.geteuid() != 0:
        pytest.skip("needs root: `user` is ignored unless the master runs as root")
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user \"nobody\" on this system")
    B = backend(util.echo())
    L = port()
    m = master(PREREAD_CONF, log_format=FMT, L=L, B=B.port,
               main_extra="worker_processes 1;\nuser nobody;")
    (w,) = m.wait_workers(1)
    assert _uid_of(w) == nobody.pw_uid

    def session(name):
        s = util.connect(L, timeout=10)
        client_port = s.getsockname()[1]
        payload = _client_hello(name) + b"x\n"
        assert util.echo_roundtrip(s, payload) == payload
        s.close()
        return client_port

    session("before.example")
    m.wait_access(1)
    access_rotated = m.access_log + ".1"
    error_rotated = m.error_log + ".1"
    os.rename(m.access_log, access_rotated)
    os.rename(m.error_log, error_rotated)
    m.send_signal(signal.SIGUSR1)
    # The worker, no longer root, could open the files the master made.
    m.wait_reopened(m.access_log, pids=[w])
    m.wait_reopened(m.error_log, pids=[m.pid, w])
    for path in (m.access_log, m.error_log):
        assert os.stat(path).st_uid == nobody.pw_uid, path

    client_port = session("after.example")
    lines = [util.parse_line(l, FIELDS) for l in m.wait_access(1)]
    assert [l["ssl_preread_server_name"] for l in lines] == ["after.example"]
    assert [l["pid"] for l in lines] == [str(w)]
    assert len(m.access_lines(access_rotated)) == 1
    # The worker's error-log lines go to the new file too.
    line = r"\[info\] %d#\d+: \*\d+ client 127\.0\.0\.1:%d connected to" % (
        w, client_port)
    m.wait_error(line)
    with open(error_rotated) as f:
        assert not re.search(line, f.read())
    assert "Permission denied" not in m.error_text()

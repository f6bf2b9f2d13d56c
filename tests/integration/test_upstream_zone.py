"""upstream `zone NAME [SIZE]`: the servers' run-time state (failures,
least_conn and max_conns counts) is shared by every worker, and a killed
worker's connections are given back by the master.  Which worker served a
session is proven by $pid in the access log or by the owner of the accepted
socket (/proc); with reuseport the kernel spreads new connections over
both workers, so a few tries reach each of them."""

import os
import signal
import socket
import subprocess

import pytest

import util

FIELDS = ["pid", "status", "upstream_addr"]
FMT = "|".join("$" + f for f in FIELDS)
TRIES = 40   # sessions to reach the other worker (all missing it: 2^-40)


def _lines(m):
    return [util.parse_line(l, FIELDS) for l in m.access_lines()]


def _try(L):
    """One session: the open socket when echoed, None when closed (502)."""
    s = socket.socket()
    s.settimeout(10)
    s.connect(("127.0.0.1", L))
    msg = b"hi\n"
    try:
        s.sendall(msg)
        got = util.recv_all(s, len(msg))
    except (ConnectionResetError, BrokenPipeError):
        got = b""
    if got == msg:
        return s
    assert got == b"", got
    s.close()
    return None


def _on_other_worker(m, L, ws, owner, n_logged):
    """Opens sessions until one is held by the worker that is not `owner`;
    those landing on `owner` are closed (and logged) first.  Returns the
    open socket (or None if it was refused) and the access lines so far."""
    for _ in range(TRIES):
        s = _try(L)
        if s is None:
            n_logged += 1
            m.wait_access(n_logged)
            lines = _lines(m)
            if int(lines[-1]["pid"]) != owner:
                return None, n_logged
            continue
        w = util.wait_for(lambda: util.owner_of(s, L, ws), "the session's worker")
        if w != owner:
            return s, n_logged
        s.close()
        n_logged += 1
        m.wait_access(n_logged)
    pytest.fail("no session reached the other worker in %d tries" % TRIES)


def test_zone_failure_in_one_worker_is_skipped_by_the_other(master, backend,
                                                             port):
    B = backend(util.echo())
    L, dead = port(), port()     # nobody listens on `dead`: refused
    m = master(r"""
    upstream u {
        zone u 64k;
        server 127.0.0.1:@DEAD@ max_fails=1 fail_timeout=60s;
        server 127.0.0.1:@B@;
    }
    server {
        listen 127.0.0.1:@L@ reuseport;
        proxy_pass u;
    }
    """, log_format=FMT, main_extra="worker_processes 2;", L=L, B=B.port,
               DEAD=dead)
    ws = m.wait_workers(2)
    n = 0
    # Until both workers have served: only the very first session tries the
    # dead server (round-robin starts with it); the failure is shared.
    for _ in range(TRIES):
        s = _try(L)
        assert s is not None
        s.close()
        n += 1
        m.wait_access(n)
        if {int(l["pid"]) for l in _lines(m)} == set(ws):
            break
    lines = _lines(m)
    assert {int(l["pid"]) for l in lines} == set(ws), lines
    tried_dead = [l for l in lines if str(dead) in l["upstream_addr"]]
    assert len(tried_dead) == 1, \
        "the failed server was tried again by the other worker: %s" % lines
    assert lines[0]["upstream_addr"] == "127.0.0.1:%d, 127.0.0.1:%d" % (
        dead, B.port)
    assert all(l["status"] == "200" for l in lines)


def test_zone_least_conn_counts_sessions_held_on_the_other_worker(
        master, backend, port):
    A = backend(util.echo(), name="a")
    B = backend(util.echo(), name="b")
    L = port()
    m = master(r"""
    upstream u {
        zone u 64k;
        least_conn;
        server 127.0.0.1:@A@;
        server 127.0.0.1:@B@;
    }
    server {
        listen 127.0.0.1:@L@ reuseport;
        proxy_timeout 30s;
        proxy_pass u;
    }
    """, log_format=FMT, main_extra="worker_processes 2;", L=L, A=A.port,
               B=B.port)
    ws = m.wait_workers(2)
    s1 = _try(L)
    assert s1 is not None
    assert (A.accepted, B.accepted) == (1, 0)   # the first server, on a tie
    owner = util.wait_for(lambda: util.owner_of(s1, L, ws), "s1's worker")
    a_before = A.accepted
    s2, _ = _on_other_worker(m, L, ws, owner, 0)
    assert s2 is not None
    # The other worker saw s1's connection to A: least_conn chose B.  Without
    # a shared count it would start with A (0 connections in its own view).
    assert A.accepted == a_before, "the other worker ignored s1's connection"
    s1.close()
    s2.close()


def test_zone_max_conns_across_two_workers(master, backend, port):
    A = backend(util.echo(), name="a")
    B = backend(util.echo(), name="b")
    L = port()
    m = master(r"""
    upstream u {
        zone u 64k;
        server 127.0.0.1:@A@ max_conns=1;
        server 127.0.0.1:@B@ max_conns=1;
    }
    server {
        listen 127.0.0.1:@L@ reuseport;
        proxy_timeout 30s;
        proxy_pass u;
    }
    """, log_format=FMT, main_extra="worker_processes 2;", L=L, A=A.port,
               B=B.port)
    ws = m.wait_workers(2)
    s1 = _try(L)
    assert s1 is not None
    assert (A.accepted, B.accepted) == (1, 0)
    owner = util.wait_for(lambda: util.owner_of(s1, L, ws), "s1's worker")
    # Sessions landing on s1's worker go to B (A is full) and end; the first
    # on the other worker must get B too: A's one slot is taken over there.
    a_before = A.accepted
    s2, n = _on_other_worker(m, L, ws, owner, 0)
    assert s2 is not None
    assert A.accepted == a_before, "max_conns was counted per worker"
    # Both full, whichever worker: 502, and $upstream_addr names the upstream.
    for _ in range(4):
        assert _try(L) is None
    n += 4
    m.wait_access(n)
    refused = [l for l in _lines(m) if l["status"] == "502"]
    assert len(refused) == 4
    assert all(l["upstream_addr"] == "u" for l in refused), refused
    assert m.count_errors(r"\[error\] .*no live upstreams") == 4
    s1.close()
    s2.close()


def test_zone_connection_of_a_killed_worker_is_given_back(master, backend,
                                                          port):
    A = backend(util.echo())
    L = port()
    m = master(r"""
    upstream u {
        zone u 64k;
        server 127.0.0.1:@A@ max_conns=1;
    }
    server {
        listen 127.0.0.1:@L@;
        proxy_timeout 30s;
        proxy_pass u;
    }
    """, log_format=FMT, L=L, A=A.port, allow_log=[r"exited on signal 9"])
    (w,) = m.wait_workers(1)
    s1 = _try(L)
    assert s1 is not None
    assert _try(L) is None              # A's only slot is held
    os.kill(w, signal.SIGKILL)
    m.wait_workers(1, exclude=[w])
    m.wait_error(r"gave back 1 upstream connection\(s\) held by worker "
                 r"process %d" % w)
    s2 = _try(L)
    assert s2 is not None, "the dead worker's connection was never given back"
    assert _try(L) is None              # and max_conns counts on
    s1.close()
    s2.close()


def test_zone_without_size_uses_one_sized_elsewhere(master, backend, port):
    A = backend(util.echo())
    L1, L2 = port(), port()
    m = master(r"""
    upstream one {
        zone shared;
        server 127.0.0.1:@A@ max_conns=1;
    }
    upstream two {
        zone shared 64k;
        server 127.0.0.1:@A@;
    }
    server {
        listen 127.0.0.1:@L1@;
        proxy_timeout 30s;
        proxy_pass one;
    }
    server {
        listen 127.0.0.1:@L2@;
        proxy_timeout 30s;
        proxy_pass two;
    }
    """, log_format=FMT, L1=L1, L2=L2, A=A.port)
    m.wait_workers(1)
    s1 = _try(L1)
    assert s1 is not None
    assert _try(L1) is None
    # Another upstream in the same zone keeps its own servers' counts.
    s2 = _try(L2)
    assert s2 is not None
    s1.close()
    s2.close()


def test_zone_is_fresh_after_reload(master, backend, port):
    A = backend(util.echo())
    L = port()
    conf = r"""
    upstream u {
        zone u 64k;
        server 127.0.0.1:@A@ max_conns=1;
    }
    server {
        listen 127.0.0.1:@L@;
        proxy_timeout 30s;
        proxy_pass u;
    }
    """
    m = master(conf, log_format=FMT, L=L, A=A.port)
    m.wait_workers(1)
    s1 = _try(L)
    assert s1 is not None
    assert _try(L) is None
    # nginx re-initialises upstream zones at a reload: the old generation's
    # session no longer counts in the new one.
    m.reload()
    s2 = _try(L)
    assert s2 is not None
    s1.close()
    s2.close()


BAD = [
    ("zone u 1k;", 'zone "u" is too small'),
    ("zone u 12x;", 'invalid zone size "12x"'),
    ('zone "" 64k;', 'invalid zone name ""'),
    ("zone nosize;", 'zero size shared memory zone "nosize"'),
]


@pytest.mark.parametrize("line,msg", BAD)
def test_zone_bad_config_is_refused_with_nginx_text(relay, port, line, msg):
    r = relay(r"""
    upstream u {
        @LINE@
        server 127.0.0.1:1;
    }
    server {
        listen 127.0.0.1:@L@;
        proxy_pass u;
    }
    """, LINE=line, L=port(), start=False)
    p = subprocess.run([r.binary, "-t", "-c", r.conf], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=util.DEADLINE)
    assert p.returncode == 1
    n = r.text.splitlines().index("        " + line) + 1
    assert "snirelay: [emerg] %s in %s:%d" % (msg, r.conf, n) in p.stderr, \
        p.stderr


def test_zone_size_conflict_and_other_use_are_refused(relay, port):
    r = relay(r"""
    upstream a {
        zone z 64k;
        server 127.0.0.1:1;
    }
    upstream b {
        zone z 128k;
        server 127.0.0.1:1;
    }
    server {
        listen 127.0.0.1:@L@;
        proxy_pass a;
    }
    """, L=port(), start=False)
    p = subprocess.run([r.binary, "-t", "-c", r.conf], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=util.DEADLINE)
    assert p.returncode == 1
    n = r.text.splitlines().index("        zone z 128k;") + 1
    assert ('snirelay: [emerg] the size 131072 of shared memory zone "z" '
            'conflicts with already declared size 65536 in %s:%d'
            % (r.conf, n)) in p.stderr, p.stderr

    r = relay(r"""
    limit_conn_zone $remote_addr zone=z:1m;
    upstream a {
        zone z 64k;
        server 127.0.0.1:1;
    }
    server {
        listen 127.0.0.1:@L@;
        proxy_pass a;
    }
    """, L=port(), start=False)
    p = subprocess.run([r.binary, "-t", "-c", r.conf], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=util.DEADLINE)
    assert p.returncode == 1
    n = r.text.splitlines().index("        zone z 64k;") + 1
    assert ('snirelay: [emerg] the shared memory zone "z" is already declared '
            'for a different use in %s:%d' % (r.conf, n)) in p.stderr, p.stderr


def test_zone_module_is_named_by_dash_V(snirelay_bin):
    p = subprocess.run([snirelay_bin, "-V"], capture_output=True, text=True,
                       timeout=util.DEADLINE)
    out = p.stdout + p.stderr
    assert "--without-stream_upstream_zone_module" not in out
    assert "configure arguments:" in out


def test_zone_slot_reused_for_a_new_address_forgets_the_old_failure(
        relay, backend, port, dnsmasq, same_port_backends):
    """A `resolve` server's slot in the zone is reused when its name moves to
    another address: the failure counted against the old address must not
    keep the new one down for the old one's fail_timeout.  (A backup server
    keeps the group from being all-failed, where failures are reset.)"""
    P, bk = same_port_backends(["127.0.0.32"], lambda h: util.echo())
    B = backend(util.echo())
    # 127.0.0.31:P has no listener: connecting to it is refused.
    d = dnsmasq({"svc.test": "127.0.0.31"}, ttl=1)
    r = relay(r"""
    resolver @DNS@;
    upstream u {
        zone u 64k;
        server svc.test:@P@ resolve max_fails=1 fail_timeout=600s;
        server 127.0.0.1:@B@ backup;
    }
    server {
        listen 127.0.0.1:@L@;
        proxy_pass u;
    }
    """, log_format=FMT, DNS=d.addr, P=P, B=B.port, L=port())
    L = r.listen_ports[0]
    util.wait_for(lambda: d.count("svc.test") >= 1, "the worker's first lookup")
    s = _try(L)
    assert s is not None
    s.close()
    first = util.parse_line(r.wait_access(1)[0], FIELDS)
    assert first["upstream_addr"] == "127.0.0.31:%d, 127.0.0.1:%d" % (P, B.port)
    d.set_records({"svc.test": "127.0.0.32"})
    n = 1

    def new_address_served():
        nonlocal n
        s = _try(L)
        assert s is not None
        s.close()
        n += 1
        line = util.parse_line(r.wait_access(n)[-1], FIELDS)
        return line["upstream_addr"] == "127.0.0.32:%d" % P
    # The TTL is 1 s, fail_timeout 600 s: only a forgotten failure lets a
    # session reach the new address within the wait.
    util.wait_for(new_address_served, "a session to reach the new address",
                  timeout=15, interval=0.2)
    assert bk["127.0.0.32"].accepted >= 1

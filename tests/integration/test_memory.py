"""Memory a worker holds (issue 9): an idle session is small, memory goes
back after a burst, and preread is paid by the byte under a per-worker
budget (`preread_budget`) that closes the largest stalled hellos first.

Correctness bounds only, measured on the worker's own RSS; no timings. The
RSS bounds are skipped under ASan, whose allocator keeps freed memory
quarantined and pads every block."""

import hashlib
import os
import socket
import subprocess
import threading

import pytest

import hello
import util


def _is_asan(binary):
    with open(binary, "rb") as f:
        return b"__asan_init" in f.read()


@pytest.fixture
def no_asan(snirelay_bin):
    if _is_asan(snirelay_bin):
        pytest.skip("RSS bounds mean nothing under ASan's allocator")


def _holder(stop):
    """A backend that reads the client's first bytes and holds the session
    until `stop` is set."""
    def handler(conn, info):
        info["first"] = conn.recv(65536)
        stop.wait(util.DEADLINE * 3)
    return handler


def _open_idle(port, n, data):
    """n client connections to port, each having sent data."""
    socks = []
    for _ in range(n):
        s = util.connect(port)
        s.sendall(data)
        socks.append(s)
    return socks


SERVER = """
    server {
        listen 127.0.0.1:@L@;
        ssl_preread on;
        proxy_pass 127.0.0.1:@B@;
    }
"""


def test_an_idle_session_holds_little_memory(master, backend, port, no_asan):
    # Before issue 9 an idle relaying session held about 4 KiB of the
    # worker's memory (the ClientHello parser state stayed with it), 5.5
    # KiB in this test.
    n = 400
    stop = threading.Event()
    B = backend(_holder(stop))
    L = port()
    m = master(SERVER, events="worker_connections 4096;", L=L, B=B.port)
    (w,) = m.wait_workers(1)
    data = hello.pq_client_hello("idle.test")
    socks = []
    try:
        # One session first: what every worker allocates once is not
        # counted per session.
        socks += _open_idle(L, 1, data)
        B.wait_conns(1)
        before = util.rss_kib(w)
        socks += _open_idle(L, n, data)
        B.wait_conns(n + 1)
        util.wait_for(lambda: all("first" in c for c in B.conns),
                      "every hello at the backend")
        # About 1 KiB is the session itself; the rest here is heap left
        # between sessions by the hellos freed once sent (400 sessions
        # opened at once keep up to 400 of them in flight).
        per = (util.rss_kib(w) - before) * 1024 / n
        assert per < 3584, "%.0f bytes of worker RSS per idle session" % per
    finally:
        stop.set()
        for s in socks:
            s.close()


def test_memory_goes_back_after_a_burst(master, backend, port, no_asan):
    n = 1200
    stop = threading.Event()
    B = backend(_holder(stop))
    L = port()
    m = master(SERVER, events="worker_connections 4096;", L=L, B=B.port)
    (w,) = m.wait_workers(1)
    # A hello of 8 KB: each session's preread buffer grows past 4k.
    data = hello.records(hello.build_client_hello("burst.test",
                                                  extra_padding=8000))
    warm = _open_idle(L, 1, data)
    B.wait_conns(1)
    base = util.rss_kib(w)
    socks = _open_idle(L, n, data)
    try:
        B.wait_conns(n + 1)
        peak = util.rss_kib(w)
        assert peak - base > 256, (base, peak)
    finally:
        stop.set()
        for s in socks:
            s.close()
    # With the burst over, the worker gives back what it took: three
    # quarters of it at least (before issue 9 it kept all of it).
    util.wait_for(lambda: util.rss_kib(w) - base <= (peak - base) / 4,
                  "the worker's RSS back near %d KiB (peak %d KiB)"
                  % (base, peak))
    # And it still serves.
    for s in warm:
        s.close()
    s = util.connect(L)
    s.sendall(data)
    B.wait_conns(n + 2)
    s.close()


def _drained(listen_port, client):
    """True once the worker has read everything `client` sent (the
    accepted socket's receive queue is empty)."""
    cport = client.getsockname()[1]
    out = subprocess.run(
        ["ss", "-Htn", "state", "established",
         "( sport = :%d and dport = :%d )" % (listen_port, cport)],
        stdout=subprocess.PIPE, check=True).stdout.decode().split()
    return len(out) >= 1 and out[0] == "0"


BUDGET = """
    preread_budget 100k;
    server {
        listen 127.0.0.1:@L@;
        ssl_preread on;
        preread_buffer_size 64k;
        proxy_pass 127.0.0.1:@B@;
    }
"""


def _recorder(info_key="data"):
    def handler(conn, info):
        info[info_key] = util.recv_all(conn)
    return handler


def test_preread_budget_closes_the_largest_stalled_hello_first(relay, backend,
                                                              port):
    B = backend(_recorder())
    L = port()
    r = relay(BUDGET, L=L, B=B.port)
    # A hello of about 60 KB, sent in parts: each client stalls mid-hello.
    whole = hello.records(hello.build_client_hello("big.test",
                                                   extra_padding=60000))
    a, b, c = util.connect(L), util.connect(L), util.connect(L)
    try:
        a.sendall(whole[:30000])
        util.wait_for(lambda: _drained(L, a), "a's bytes read")
        b.sendall(whole[:50000])
        util.wait_for(lambda: _drained(L, b), "b's bytes read")
        # 30000 + 50000 + 30000 > 100k: the largest, b, is closed.
        c.sendall(whole[:30000])
        util.wait_closed(b)
        r.wait_error(r"\[error\] .*preread budget of 102400 bytes exceeded, "
                     r"closing the largest hello held: 50000 bytes while "
                     r"prereading client data")
        # a and c go on: their hellos complete and reach the backend whole.
        a.sendall(whole[30000:])
        c.sendall(whole[30000:])
        B.wait_conns(2)
        a.shutdown(socket.SHUT_WR)
        c.shutdown(socket.SHUT_WR)
        util.recv_all(a)
        util.recv_all(c)
        util.wait_for(lambda: all("data" in x for x in B.conns[:2]),
                      "both sessions at the backend")
        want = hashlib.sha256(whole).hexdigest()
        assert [hashlib.sha256(x["data"]).hexdigest()
                for x in B.conns[:2]] == [want, want]
        assert B.accepted == 2
        r.wait_access(3)
        statuses = sorted(util.parse_line(l)["status"]
                          for l in r.access_lines())
        assert statuses == ["200", "200", "503"], statuses
    finally:
        for s in (a, b, c):
            s.close()


def test_preread_budget_closes_the_reader_itself_when_it_is_largest(
        relay, backend, port):
    B = backend(_recorder())
    L = port()
    r = relay(BUDGET, L=L, B=B.port)
    whole = hello.records(hello.build_client_hello("big.test",
                                                   extra_padding=60000))
    a, b = util.connect(L), util.connect(L)
    try:
        a.sendall(whole[:50000])
        util.wait_for(lambda: _drained(L, a), "a's bytes read")
        # b goes over the budget (100k) past 52400 bytes, when it is the
        # largest: the session being read is the one closed.
        b.sendall(whole[:55000])
        util.wait_closed(b)
        r.wait_error(r"closing the largest hello held: 5[2-5]\d{3} bytes")
        assert "held: 50000 bytes" not in r.error_text()
        a.sendall(whole[50000:])
        a.shutdown(socket.SHUT_WR)
        util.recv_all(a)
        B.wait_conns(1)
        util.wait_for(lambda: "data" in B.conns[0], "a at the backend")
        assert B.conns[0]["data"] == whole
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("value", ["1", "64k", "32m", "1g"])
def test_preread_budget_values(snirelay_bin, workdir, value):
    rc, err, path = util.config_test(
        snirelay_bin, workdir,
        "stream {\n    preread_budget %s;\n"
        "    server { listen 127.0.0.1:1; proxy_pass 127.0.0.1:2; }\n}\n"
        % value)
    assert rc == 0, err


@pytest.mark.parametrize("text,line,msg", [
    ("stream {\n    preread_budget abc;\n", 2,
     '"preread_budget" directive invalid value'),
    ("stream {\n    preread_budget 0;\n", 2,
     '"preread_budget" directive invalid value'),
    ("stream {\n    preread_budget 1m;\n    preread_budget 2m;\n", 3,
     '"preread_budget" directive is duplicate'),
    ("stream {\n    preread_budget;\n", 2,
     'invalid number of arguments in "preread_budget" directive'),
    ("stream {\n    server { listen 127.0.0.1:1;\n"
     "        preread_budget 1m;\n", 3,
     '"preread_budget" directive is not allowed here'),
])
def test_preread_budget_config_errors(snirelay_bin, workdir, text, line, msg):
    body = text + ("    proxy_pass 127.0.0.1:2; }\n}\n" if "server {" in text
                   else "    server { listen 127.0.0.1:1; "
                        "proxy_pass 127.0.0.1:2; }\n}\n")
    rc, err, path = util.config_test(snirelay_bin, workdir, body)
    assert rc != 0
    assert "%s in %s:%d" % (msg, path, line) in err, err

"""proxy_upload_rate and proxy_download_rate (nginx's algorithm: a direction
may take rate * (seconds since start + 1) - bytes received, and waits
n / rate seconds after each read).  Only lower bounds on elapsed time are
checked: a limited transfer of N bytes at R bytes/s takes at least
(N - R) / R seconds.  The other direction is not slowed, the worker does not
spin while it waits (CPU ticks from /proc), and proxy_timeout does not fire
while a direction waits on its rate."""

import os
import socket
import subprocess
import threading
import time

import pytest

import util

# A spinning worker burns ~100 ticks a second; a waiting one next to nothing.
MAX_TICKS_PER_S = 5
SLOP = 0.1  # timer rounding, seconds


@pytest.fixture(params=["on", "off"])
def proxy_splice(request):
    """Every test here runs with proxy_splice on and off: a rated direction
    copies either way, the other one splices when on."""
    return request.param


def _elapsed_lower_bound(size, rate):
    return (size - rate) / rate - SLOP


def _sink_with_download(down):
    """Backend: send `down` at once (on its own thread) while reading the
    client's bytes to EOF; record when the upload ended."""
    def handler(conn, info):
        t = threading.Thread(target=conn.sendall, args=(down,), daemon=True)
        t.start()
        info["up"] = util.recv_all(conn)
        info["up_done"] = time.monotonic()
        t.join(util.DEADLINE)
    return handler


def _send_and_close(port, data, host="127.0.0.1"):
    s = socket.socket()
    if host != "127.0.0.1":
        s.bind((host, 0))
    s.settimeout(util.DEADLINE * 3)
    s.connect(("127.0.0.1", port))
    s.sendall(data)
    return s


def test_upload_rate_limits_client_bytes_not_the_download_and_does_not_spin(
        master, backend, port):
    rate, up, down = 1024, os.urandom(5 * 1024), os.urandom(1024 * 1024)
    B = backend(_sink_with_download(down))
    L = port()
    m = master(r"""
    server {
        listen 127.0.0.1:@L@;
        proxy_upload_rate 1k;
        proxy_pass 127.0.0.1:@B@;
    }
    """, main_extra="worker_processes 1;", L=L, B=B.port)
    (w,) = m.wait_workers(1)
    ticks0 = util.cpu_ticks(w)
    t0 = time.monotonic()
    s = _send_and_close(L, up)
    s.shutdown(socket.SHUT_WR)
    got = util.recv_exact(s, len(down))
    t_down = time.monotonic()
    (info,) = B.wait_conns(1)
    assert info["done"].wait(util.DEADLINE * 2)
    ticks = util.cpu_ticks(w) - ticks0
    s.close()
    assert info["up"] == up
    assert got == down
    elapsed = info["up_done"] - t0
    assert elapsed >= _elapsed_lower_bound(len(up), rate), elapsed
    # The download was not held back by the upload's rate.
    assert t_down < info["up_done"]
    assert ticks < MAX_TICKS_PER_S * elapsed + 5, \
        "the worker used %d ticks in %.1f s of waiting" % (ticks, elapsed)


def test_download_rate_from_a_map_is_per_session(relay, backend, port):
    rate, small, big = 1024, os.urandom(3 * 1024), os.urandom(1024 * 1024)

    def handler(conn, info):
        who = util.recv_exact(conn, 1)
        conn.sendall(small if who == b"s" else big)
        conn.shutdown(socket.SHUT_WR)
        util.recv_all(conn)

    B = backend(handler)
    L = port()
    r = relay(r"""
    map $remote_addr $rate {
        127.0.0.1  1k;
        default    0;
    }
    server {
        listen 127.0.0.1:@L@;
        proxy_download_rate $rate;
        proxy_pass 127.0.0.1:@B@;
    }
    """, L=L, B=B.port)
    t0 = time.monotonic()
    s = _send_and_close(L, b"s")
    assert util.recv_all(s) == small
    elapsed = time.monotonic() - t0
    s.close()
    assert elapsed >= _elapsed_lower_bound(len(small), rate), elapsed
    # From another address the map gives 0: unlimited (1 MiB at 1k/s would
    # take 17 minutes, far beyond the deadline).
    s = _send_and_close(L, b"b", host="127.0.0.2")
    assert util.recv_all(s) == big
    s.close()
    r.wait_access(2)


def test_invalid_rate_from_a_variable_is_logged_and_unlimited(relay, backend, port):
    big = os.urandom(1024 * 1024)

    def handler(conn, info):
        util.recv_exact(conn, 1)
        conn.sendall(big)
        conn.shutdown(socket.SHUT_WR)
        util.recv_all(conn)

    B = backend(handler)
    L = port()
    r = relay(r"""
    map $remote_addr $rate {
        default  fast;
    }
    server {
        listen 127.0.0.1:@L@;
        proxy_download_rate $rate;
        proxy_pass 127.0.0.1:@B@;
    }
    """, L=L, B=B.port)
    s = _send_and_close(L, b"x")
    assert util.recv_all(s) == big
    s.close()
    r.wait_access(1)
    assert 'invalid size "fast"' in r.error_text()


def test_proxy_timeout_does_not_fire_while_a_direction_waits_on_its_rate(
        relay, backend, port):
    rate, data = 1024, os.urandom(4 * 1024)

    def handler(conn, info):
        util.recv_exact(conn, 1)
        conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)
        util.recv_all(conn)

    B = backend(handler)
    L = port()
    relay(r"""
    server {
        listen 127.0.0.1:@L@;
        proxy_timeout 1s;
        proxy_download_rate 1k;
        proxy_pass 127.0.0.1:@B@;
    }
    """, L=L, B=B.port)
    t0 = time.monotonic()
    s = _send_and_close(L, b"x")
    got = util.recv_all(s)
    elapsed = time.monotonic() - t0
    s.close()
    # Every byte, though the rate kept the session quiet longer than 1s.
    assert got == data
    assert elapsed >= _elapsed_lower_bound(len(data), rate), elapsed


def test_rate_inherited_from_stream_and_zero_in_server_is_unlimited(
        relay, backend, port):
    small, big = os.urandom(2 * 1024), os.urandom(1024 * 1024)

    def handler(conn, info):
        who = util.recv_exact(conn, 1)
        conn.sendall(small if who == b"s" else big)
        conn.shutdown(socket.SHUT_WR)
        util.recv_all(conn)

    B = backend(handler)
    L1, L2 = port(), port()
    relay(r"""
    proxy_download_rate 1k;
    server {
        listen 127.0.0.1:@L1@;
        proxy_pass 127.0.0.1:@B@;
    }
    server {
        listen 127.0.0.1:@L2@;
        proxy_download_rate 0;
        proxy_pass 127.0.0.1:@B@;
    }
    """, L1=L1, L2=L2, B=B.port)
    t0 = time.monotonic()
    s = _send_and_close(L1, b"s")
    assert util.recv_all(s) == small
    elapsed = time.monotonic() - t0
    s.close()
    assert elapsed >= _elapsed_lower_bound(len(small), 1024), elapsed
    s = _send_and_close(L2, b"b")
    assert util.recv_all(s) == big
    s.close()


def test_upload_rate_counts_bytes_sent_while_the_upstream_is_found(
        relay, backend, port, slow_resolver, proxy_splice):
    """Bytes a client sends while its upstream is still being resolved and
    connected are the relay's to send at proxy_upload_rate: they were
    read early and sent at once, so nginx's stream_limit_rate.t saw 1000
    bytes pass a rate of 1 per second.  1500 bytes at 500/s sent before
    the upstream is known still take (1500 - 500) / 500 s to arrive."""
    rate, up = 500, os.urandom(1500)

    def handler(conn, info):
        # When the first and the last byte came (not the FIN: the relay
        # reads that only when the rate allows a read again).
        got = conn.recv(65536)
        info["first_at"] = time.monotonic()
        while len(got) < len(up):
            more = conn.recv(65536)
            if not more:
                break
            got += more
        info["last_at"] = time.monotonic()
        info["up"] = got + util.recv_all(conn)

    B = backend(handler)
    d = slow_resolver({"slow.test": "127.0.0.1"}, delay=0.5)
    L = port()
    relay(r"""
    resolver @DNS@ ipv6=off;
    server {
        listen 127.0.0.1:@L@;
        proxy_upload_rate @RATE@;
        proxy_splice @SPLICE@;
        proxy_target_allow 127.0.0.0/8;
        set $up slow.test;
        proxy_pass $up:@B@;
    }
    """, DNS=d.addr, L=L, B=B.port, RATE=rate, SPLICE=proxy_splice)
    s = _send_and_close(L, up)
    s.shutdown(socket.SHUT_WR)
    (info,) = B.wait_conns(1)
    assert info["done"].wait(util.DEADLINE * 2)
    s.close()
    assert d.count("slow.test") >= 1, "the bytes were not sent before the lookup"
    assert info["up"] == up
    elapsed = info["last_at"] - info["first_at"]
    assert elapsed >= _elapsed_lower_bound(len(up), rate), elapsed


def _check(snirelay_bin, workdir, body):
    conf = os.path.join(workdir, "t.conf")
    with open(conf, "w") as f:
        f.write("error_log stderr;\nevents {}\nstream {\n%s\n}\n" % body)
    p = subprocess.run([snirelay_bin, "-t", "-c", conf], capture_output=True,
                       text=True, timeout=util.DEADLINE)
    return p.returncode, p.stderr, conf


def test_bad_rates_are_refused_with_nginx_messages(snirelay_bin, workdir):
    rc, err, conf = _check(snirelay_bin, workdir,
                           "server {\nlisten 127.0.0.1:1;\n"
                           "proxy_upload_rate 1q;\nproxy_pass 127.0.0.1:2;\n}")
    assert rc == 1
    assert ('snirelay: [emerg] "proxy_upload_rate" directive invalid value '
            'in %s:6' % conf) in err
    rc, err, conf = _check(snirelay_bin, workdir,
                           "proxy_download_rate 1k;\nproxy_download_rate 2k;")
    assert rc == 1
    assert ('snirelay: [emerg] "proxy_download_rate" directive is duplicate '
            'in %s:5' % conf) in err
    rc, err, conf = _check(snirelay_bin, workdir,
                           "server {\nlisten 127.0.0.1:1;\n"
                           "proxy_download_rate $nosuch;\nproxy_pass 127.0.0.1:2;\n}")
    assert rc == 1
    assert 'unknown "nosuch" variable in %s:6' % conf in err

"""Metrics in shared memory and the `status` handler (issue 10, items 1-2).

A server with `status;` answers /metrics (Prometheus text), /status.json,
/healthz and / (the HTML page) over HTTP/1.x. These tests read it with
real clients (raw sockets, promtool, headless Chromium) while real
sessions run through the proxy, and check that the counters match the
traffic exactly, survive reloads and a killed worker without going back,
and that no byte a client sends becomes a label."""

import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

import dns
import hello
import util

STATUS = r"""
    server {
        listen 127.0.0.1:@S@;
        status;
    }
"""

PLAIN = STATUS + r"""
    server {
        listen 127.0.0.1:@L@;
        proxy_pass 127.0.0.1:@B@;
    }
"""

PROMTOOL = shutil.which("promtool")
CHROMIUM = shutil.which("chromium")

SAMPLE_RX = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL_RX = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


# --------------------------------------------------------------------------
# helpers


def http(port, path="/", method="GET", raw=None, host="127.0.0.1"):
    """One request to the status listener; (code, headers dict, body bytes).
    code is None when the proxy closed without answering."""
    s = util.connect(port)
    s.sendall(raw if raw is not None else
              ("%s %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (method, path, host)).encode())
    data = util.recv_all(s)
    s.close()
    if not data:
        return None, {}, b""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    code = int(lines[0].split()[1])
    headers = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        headers[k.strip().lower()] = v.strip()
    return code, headers, body


def scrape(port):
    code, headers, body = http(port, "/metrics")
    assert code == 200, (code, body[:200])
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    assert int(headers["content-length"]) == len(body)
    return body.decode()


def parse(text):
    """{(name, frozenset(labels.items())): float}"""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE_RX.match(line)
        assert m, "unparsable sample line %r" % line
        labels = frozenset(LABEL_RX.findall(m.group(3) or ""))
        key = (m.group(1), labels)
        assert key not in out, "duplicate sample %r" % line
        out[key] = float(m.group(4).replace("+Inf", "inf"))
    return out


def val(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), None)


def metric(port, name, **labels):
    return val(parse(scrape(port)), name, **labels)


def wait_metric(port, name, want, **labels):
    """Wait until the sample equals `want`; return the samples."""
    got = []

    def ok():
        s = parse(scrape(port))
        got[:] = [val(s, name, **labels)]
        return s if got[0] == want else None
    try:
        return util.wait_for(ok, "%s%s == %s" % (name, labels, want))
    except util.WaitTimeout:
        raise AssertionError("%s%s is %s, want %s" % (name, labels, got, want))


def promtool_check(text):
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(),
                       capture_output=True, timeout=60)
    assert p.returncode == 0 and p.stdout == b"" and p.stderr == b"", \
        (p.returncode, p.stdout.decode()[-2000:], p.stderr.decode()[-2000:])


def families_from_man(snirelay_bin):
    out = subprocess.run([snirelay_bin, "--metrics-man"], capture_output=True,
                         text=True, check=True).stdout
    return re.findall(r"^\.B (snirelay_\w+)\n(\w+), in ", out, re.M)


def echo_session(port, payload=b"ping\n"):
    s = util.connect(port)
    s.sendall(payload)
    got = util.recv_exact(s, len(payload))
    s.close()
    assert got == payload


def echo_backend(backend):
    def handler(conn, info):
        while True:
            b = conn.recv(65536)
            if not b:
                return
            conn.sendall(b)
    return backend(handler, name="echo")


def assert_monotonic(before, after, what):
    """Every counter sample (and histogram part) of `before` is in `after`
    and not smaller."""
    for key, v in before.items():
        name = key[0]
        if not (name.endswith("_total") or name.endswith("_bucket")
                or name.endswith("_count") or name.endswith("_sum")):
            continue
        assert key in after, "%s: series %s%s went away" % (what, name, dict(key[1]))
        assert after[key] >= v, "%s: %s%s went back from %s to %s" % (
            what, name, dict(key[1]), v, after[key])


# --------------------------------------------------------------------------
# /metrics


@pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian package prometheus)")
def test_exposition_is_promtool_clean_and_lists_every_family(relay, port, backend,
                                                               snirelay_bin):
    b = echo_backend(backend)
    r = relay(PLAIN, S=port(), L=port(), B=b.port)
    S, L = r.listen_ports
    for i in range(3):
        echo_session(L, b"s%d\n" % i)
    wait_metric(S, "snirelay_listener_sessions_total", 3, listen="127.0.0.1:%d" % L)
    text = scrape(S)
    promtool_check(text)
    # The exposition and the man page section come from one table.
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    fams = families_from_man(snirelay_bin)
    assert len(fams) >= 30
    # ... and the built snirelay(8) carries that section.
    page = os.path.join(os.path.dirname(snirelay_bin), "man", "snirelay.8")
    with open(page) as f:
        man8 = f.read()
    assert "\n.SH METRICS\n" in man8
    for name, _ in fams:
        assert "\n.B %s\n" % name in man8, name
    assert [f for f, _ in fams] == list(types)
    for name, t in fams:
        assert types[name] == t, name
        assert name.startswith("snirelay_")
        if t == "counter":
            assert name.endswith("_total"), name
    s = parse(text)
    L_ = "127.0.0.1:%d" % L
    assert val(s, "snirelay_listener_received_bytes_total", listen=L_) == 9
    assert val(s, "snirelay_listener_sent_bytes_total", listen=L_) == 9
    server = {"upstream": "127.0.0.1:%d" % b.port, "server": "127.0.0.1:%d" % b.port}
    assert val(s, "snirelay_upstream_tries_total", **server) == 3
    assert val(s, "snirelay_upstream_connect_seconds_count", **server) == 3
    assert val(s, "snirelay_upstream_first_byte_seconds_count", **server) == 3
    assert val(s, "snirelay_upstream_sent_bytes_total", **server) == 9
    assert val(s, "snirelay_upstream_received_bytes_total", **server) == 9
    assert val(s, "snirelay_upstream_state", state="up", **server) == 1
    assert val(s, "snirelay_upstream_sessions_active", **server) == 0
    assert val(s, "snirelay_config_generation") == 1
    # Histograms: cumulative buckets ending in +Inf == _count.
    assert val(s, "snirelay_upstream_connect_seconds_bucket", le="+Inf",
               **server) == 3


def test_counters_survive_reloads_and_a_killed_worker(master, backend, port):
    b = echo_backend(backend)
    m = master(PLAIN, main_extra="worker_processes 1;", S=port(), L=port(), B=b.port,
               allow_log=[r"\[alert\] .*worker process \d+ exited on signal 9",
                          r"\[emerg\] .*\"status\" directive is duplicate",
                          r"\[alert\] .*reload failed"])
    S, L = m.listen_ports
    ws = m.wait_workers(1)
    n = 0
    prev = None
    steps = ["start"] + ["reload %d" % i for i in range(1, 6)] + ["kill -9"]
    for step in steps:
        if step.startswith("reload"):
            ws = m.reload()
        elif step == "kill -9":
            # The worker dies holding a session: its counts stay, its
            # gauges (open sessions) go with it.
            held = util.connect(L)
            echo_roundtrip = held.sendall(b"held\n") or util.recv_exact(held, 5)
            assert echo_roundtrip == b"held\n"
            n += 1
            s = wait_metric(S, "snirelay_listener_sessions_active", 1,
                            listen="127.0.0.1:%d" % L)
            assert val(s, "snirelay_upstream_sessions_active",
                       upstream="127.0.0.1:%d" % b.port,
                       server="127.0.0.1:%d" % b.port) == 1
            util.wait_for(lambda: util.start_age(ws[0]) > 1.2, "worker older than 1 s")
            os.kill(ws[0], signal.SIGKILL)
            m.wait_error(r"worker process %d exited on signal 9" % ws[0])
            ws = m.wait_workers(1, exclude=ws)
            held.close()
            s = wait_metric(S, "snirelay_listener_sessions_active", 0,
                            listen="127.0.0.1:%d" % L)
            assert val(s, "snirelay_upstream_sessions_active",
                       upstream="127.0.0.1:%d" % b.port,
                       server="127.0.0.1:%d" % b.port) == 0
            assert 'pid="%d"' % ws[0] in scrape(S)
        for i in range(4):
            echo_session(L, b"%s %d\n" % (step.encode(), i))
            n += 1
        s = wait_metric(S, "snirelay_listener_sessions_total", n,
                        listen="127.0.0.1:%d" % L)
        if prev is not None:
            assert_monotonic(prev, s, step)
        prev = s
    server = {"upstream": "127.0.0.1:%d" % b.port, "server": "127.0.0.1:%d" % b.port}
    assert val(prev, "snirelay_upstream_tries_total", **server) == n
    assert val(prev, "snirelay_reloads_total", result="ok") == 5
    assert val(prev, "snirelay_reloads_total", result="failed") == 0
    assert val(prev, "snirelay_config_generation") == 6
    assert val(prev, "snirelay_worker_restarts_total") == 1
    # A failed reload is counted as such and changes nothing else.
    m.write_conf(m.text.replace("status;", "status; status;"))
    m.send_signal(signal.SIGHUP)
    m.wait_error(r"reload failed")
    s = wait_metric(S, "snirelay_reloads_total", 1, result="failed")
    assert val(s, "snirelay_config_generation") == 6
    assert_monotonic(prev, s, "failed reload")


def test_random_server_names_add_no_series(relay, port):
    N = 100000
    conf = STATUS + r"""
    upstream dead { server 127.0.0.1:1; }
    map $ssl_preread_server_name $b {
        hostnames;
        example.test dead;
        default dead;
    }
    server {
        listen 127.0.0.1:@L@;
        ssl_preread on;
        proxy_pass $b;
    }
"""
    r = relay(conf, S=port(), L=port())
    S, L = r.listen_ports
    before = parse(scrape(S))
    rng = random.Random(10)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-"
    names = ["".join(rng.choice(alphabet) for _ in range(rng.randint(3, 20)))
             + "." + rng.choice(["test", "example", "com", "internal"])
             for _ in range(N)]
    errors = []

    def client(part):
        try:
            for name in part:
                s = socket.create_connection(("127.0.0.1", L), timeout=util.DEADLINE)
                s.sendall(hello.records(hello.build_client_hello(server_name=name)))
                s.recv(16)
                s.close()
        except Exception as e:  # reported below
            errors.append(repr(e))
    threads = [threading.Thread(target=client, args=(names[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    after = wait_metric(S, "snirelay_route_sessions_total", N, source="map $b",
                        route="default")
    assert set(after) == set(before), set(after) ^ set(before)
    assert val(after, "snirelay_preread_verdicts_total", status="ok") == N
    assert val(after, "snirelay_route_overflow_total") == 0
    assert val(after, "snirelay_series_overflow_total") == 0
    text = scrape(S)
    for name in names[:1000]:
        assert name not in text


def test_byte_counters_advance_while_a_download_runs(relay, port, backend):
    CHUNK = 256 * 1024
    go = [threading.Event(), threading.Event(), threading.Event()]

    def handler(conn, info):
        for e in go:
            assert e.wait(util.DEADLINE * 3)
            if e is go[-1]:
                return
            conn.sendall(b"x" * CHUNK)
    b = backend(handler, name="download")
    r = relay(PLAIN, S=port(), L=port(), B=b.port)
    S, L = r.listen_ports
    c = util.connect(L)
    got = []
    reader = threading.Thread(target=lambda: got.append(util.recv_all(c)))
    reader.start()
    server = {"upstream": "127.0.0.1:%d" % b.port, "server": "127.0.0.1:%d" % b.port}
    Ls = "127.0.0.1:%d" % L
    wait_metric(S, "snirelay_upstream_sessions_active", 1, **server)
    for k in (1, 2):
        go[k - 1].set()
        s = wait_metric(S, "snirelay_upstream_received_bytes_total", k * CHUNK, **server)
        util.wait_for(lambda: metric(S, "snirelay_listener_sent_bytes_total",
                                     listen=Ls) == k * CHUNK,
                      "the client side to count chunk %d" % k)
        # The session is still open: counted as it moves, not at its end.
        assert val(s, "snirelay_listener_sessions_active", listen=Ls) == 1
        assert val(s, "snirelay_sessions_ended_total", how="upstream_closed") == 0
    go[2].set()
    reader.join(util.DEADLINE)
    c.close()
    assert len(got[0]) == 2 * CHUNK
    s = wait_metric(S, "snirelay_sessions_ended_total", 1, how="upstream_closed")
    assert val(s, "snirelay_upstream_sessions_active", **server) == 0
    assert val(s, "snirelay_listener_sent_bytes_total", listen=Ls) == 2 * CHUNK


GUARDS = STATUS + r"""
    resolver @DNS@ ipv6=off;
    proxy_target_allow 127.0.0.0/8;
    proxy_connect_timeout 2s;
    map $ssl_preread_server_name $denied {
        hostnames;
        ok.test 0;
        refused.test 0;
        ssrf.test 0;
        127.0.0.1 0;
        default 1;
    }
    server {
        listen 127.0.0.1:@V@;
        ssl_preread on;
        return "";
    }
    server {
        listen 127.0.0.1:@G@;
        ssl_preread on;
        deny_if $denied;
        proxy_pass $ssl_preread_server_name:@P@;
    }
    server {
        listen 127.0.0.1:@LL@;
        ssl_preread on;
        proxy_pass $ssl_preread_server_name:@LL@;
    }
"""


def test_verdicts_guards_and_connect_failures_match_the_traffic(relay, port, backend,
                                                                 dnsmasq):
    b = backend(util.record_to_eof(), name="ok")
    d = dnsmasq({"ok.test": "127.0.0.1", "refused.test": "127.0.0.3",
                 "ssrf.test": "169.254.169.254", "loop.test": "127.0.0.1"}, ttl=60)
    LL = port()
    # One worker: one resolver cache, so the hits are exact.
    r = relay(GUARDS, main_extra="worker_processes 1;", DNS=d.addr, S=port(),
              V=port(), G=port(), LL=LL, P=b.port)
    S, V, G = r.listen_ports[:3]

    def closed(p, data):
        s = util.connect(p)
        s.sendall(data)
        assert util.recv_all(s) == b""
        s.close()

    def hello_for(name):
        return hello.records(hello.build_client_hello(server_name=name))

    # Verdicts, on a server that only prereads.
    for _ in range(3):
        closed(V, hello_for("v.test"))
    for _ in range(2):
        closed(V, hello.records(hello.build_client_hello(server_name=None)))
    closed(V, b"GET / HTTP/1.0\r\n\r\n")
    hs = hello.build_client_hello(server_name="bad.test")
    closed(V, hello.records(util.corrupt_sni_list_length(hs, "bad.test")))
    # Guards and connect failures, each a session of its own.
    for i in (1, 2):
        s, _ = dns.send_hello(G, "ok.test")
        b.wait_conns(i)  # resolved: the second lookup is a cache hit
        s.close()
    for _ in range(2):
        closed(G, hello_for("notlisted.test"))
    closed(G, hello_for("127.0.0.1"))
    closed(G, hello_for("ssrf.test"))
    for _ in range(2):
        closed(G, hello_for("refused.test"))
    closed(LL, hello_for("loop.test"))

    total_ok = 3 + 2 + 2 + 1 + 1 + 2 + 1
    s = wait_metric(S, "snirelay_preread_verdicts_total", total_ok, status="ok")
    s = wait_metric(S, "snirelay_sessions_total", 3, status="502")
    assert val(s, "snirelay_preread_verdicts_total", status="no_sni") == 2
    assert val(s, "snirelay_preread_verdicts_total", status="not_tls") == 1
    assert val(s, "snirelay_preread_verdicts_total", status="malformed") == 1
    assert val(s, "snirelay_guard_refusals_total", reason="allow_list") == 2
    assert val(s, "snirelay_guard_refusals_total", reason="ip_literal") == 1
    assert val(s, "snirelay_guard_refusals_total", reason="ssrf") == 1
    assert val(s, "snirelay_guard_refusals_total", reason="loop") == 1
    dyn = {"upstream": "$ssl_preread_server_name:%d" % b.port, "server": "*"}
    assert val(s, "snirelay_upstream_tries_total", **dyn) == 4
    assert val(s, "snirelay_upstream_failures_total", reason="refused", **dyn) == 2
    for reason in ("timeout", "reset", "unreachable", "error"):
        assert val(s, "snirelay_upstream_failures_total", reason=reason, **dyn) == 0
    # 403: allow-list x2, IP literal, SSRF; 502: both refused connects, the loop.
    assert val(s, "snirelay_sessions_total", status="403") == 4
    assert val(s, "snirelay_resolver_queries_total") == 4
    assert val(s, "snirelay_resolver_cache_hits_total") == 2
    assert val(s, "snirelay_resolver_answers_total", rcode="noerror") == 4
    if PROMTOOL:
        promtool_check(scrape(S))


# --------------------------------------------------------------------------
# the HTTP side of `status`


def test_status_http_codes(relay, port):
    r = relay(STATUS, S=port())
    S = r.listen_ports[0]
    assert http(S, "/healthz")[0:3:2] == (200, b"ok\n")
    code, h, body = http(S, "/healthz", method="HEAD")
    assert (code, body) == (200, b"")
    assert h["content-length"] == "3"
    code, h, _ = http(S, "/metrics", method="POST")
    assert code == 405 and h["allow"] == "GET, HEAD"
    assert http(S, "/", method="DELETE")[0] == 405
    assert http(S, "/nope")[0] == 404
    assert http(S, "/metrics/")[0] == 404
    assert http(S, raw=b"GET / HTTP/9.9\r\n\r\n")[0] == 400
    assert http(S, raw=b"GET /\x01 HTTP/1.1\r\n\r\n")[0] == 400
    assert http(S, raw=b"\x16\x03\x01\x00\x05hello")[0] == 400
    assert http(S, "/metrics?x=1")[0] == 200
    code, h, body = http(S, "/status.json")
    assert code == 200 and h["content-type"] == "application/json"
    doc = json.loads(body)
    names = [f["name"] for f in doc["families"]]
    assert "snirelay_sessions_total" in names


# --------------------------------------------------------------------------
# the HTML page


PAGE = r"""
    upstream backend {
        server 127.0.0.1:@B@;
        server 127.0.0.1:@D1@ max_fails=1 fail_timeout=60s;
        server 127.0.0.1:@D2@ backup;
        server 127.0.0.1:@D3@ down;
    }
    map $ssl_preread_server_name $b {
        hostnames;
        app.example.test backend;
        default backend;
    }
    server {
        listen 127.0.0.1:@L@;
        ssl_preread on;
        proxy_pass $b;
    }
    server {
        listen 127.0.0.1:@N@;
        ssl_preread on;
        proxy_pass $ssl_preread_server_name:443;
    }
    server {
        listen 127.0.0.1:@S@;
        allow 127.0.0.1;
        deny all;
        status;
    }
"""

XSS = "<script>alert(1)</script>"


def chromium(*args):
    p = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                        "--hide-scrollbars", *args], capture_output=True,
                       timeout=180)
    assert p.returncode == 0, p.stderr.decode()[-2000:]
    return p.stdout.decode()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium (Debian package chromium)")
def test_status_page_renders_in_chromium_with_client_names_escaped(
        relay, port, backend, snirelay_bin):
    def app(conn, info):
        conn.recv(65536)
        conn.sendall(b"app\n")
        util.recv_all(conn)
    b = backend(app, name="app")
    dead = [util.free_port() for _ in range(3)]
    r = relay(PAGE, B=b.port, D1=dead[0], D2=dead[1], D3=dead[2], L=port(),
              N=port(), S=port())
    L, N, S = r.listen_ports
    for i in range(4):
        s, _ = dns.send_hello(L, "app.example.test")
        assert util.recv_exact(s, 4) == b"app\n"
        s.close()
    # A name no DNS name can be, refused (403) before any lookup.
    s = util.connect(N)
    s.sendall(hello.records(hello.build_client_hello(server_name=XSS)))
    assert util.recv_all(s) == b""
    s.close()
    wait_metric(S, "snirelay_listener_errors_total", 1, listen="127.0.0.1:%d" % N)

    code, h, body = http(S, "/")
    assert code == 200 and h["content-type"] == "text/html; charset=utf-8"
    assert "script-src" not in h["content-security-policy"]
    assert h["content-security-policy"].startswith("default-src 'none'")
    page = body.decode()
    assert '<meta http-equiv="refresh"' in page
    assert '<meta name="viewport"' in page
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page

    url = "http://127.0.0.1:%d/" % S
    dom = chromium("--dump-dom", url)
    assert "<script" not in dom.lower()          # no element came of it
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom   # shown as text
    for state in ("up", "failed", "backup", "down"):
        assert 'class="l %s">%s<' % (state, state) in dom, state
    assert "127.0.0.1:%d" % L in dom and "127.0.0.1:%d" % b.port in dom
    assert "refused, " in dom                    # the dead server's last failure

    # The screenshot the README shows (docs/status.png is a copy of it).
    shot = os.path.join(os.path.dirname(snirelay_bin), "status.png")
    chromium("--window-size=900,1100", "--screenshot=%s" % shot, url)
    with open(shot, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_status_client_outside_allow_is_refused(relay, port):
    r = relay(r"""
    server {
        listen 127.0.0.1:@S@;
        allow 127.0.0.2;
        deny all;
        status;
    }
""", S=port())
    S = r.listen_ports[0]
    assert http(S, "/healthz") == (None, {}, b"")     # from 127.0.0.1
    s = socket.socket()
    s.settimeout(util.DEADLINE)
    s.bind(("127.0.0.2", 0))
    s.connect(("127.0.0.1", S))
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    reply = util.recv_all(s)
    s.close()
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    s = parse(reply.partition(b"\r\n\r\n")[2].decode())
    assert val(s, "snirelay_sessions_total", status="403") == 1
    assert val(s, "snirelay_sessions_ended_total", how="refused") == 1
    r.wait_error(r"access forbidden by rule")


@pytest.mark.parametrize("body,err", [
    ("listen 127.0.0.1:1; status; status;",
     r'"status" directive is duplicate in %s:\d+'),
    ("listen 127.0.0.1:1; status on;",
     r'invalid number of arguments in "status" directive in %s:\d+'),
    ("listen 127.0.0.1:1; status; proxy_pass 127.0.0.1:2;",
     r'"status" cannot be combined with "proxy_pass" or "return" in %s:\d+'),
    ("listen 127.0.0.1:1; return x; status;",
     r'"status" cannot be combined with "proxy_pass" or "return" in %s:\d+'),
], ids=["duplicate", "argument", "with-proxy_pass", "with-return"])
def test_status_directive_errors_name_the_line(snirelay_bin, workdir, body, err):
    rc, stderr, path = util.config_test(
        snirelay_bin, workdir, "events {}\nstream {\n    server { %s }\n}\n" % body)
    assert rc == 1
    assert re.search(r"\[emerg\] " + err % re.escape(path), stderr), stderr


def test_status_directive_outside_server_is_refused(snirelay_bin, workdir):
    rc, stderr, path = util.config_test(
        snirelay_bin, workdir, "events {}\nstream {\n    status;\n}\n")
    assert rc == 1
    assert '"status" directive is not allowed here in %s:3' % path in stderr


def test_routes_past_the_cap_count_under_other(relay, port):
    K = 300
    keys = "\n".join("        k%d.test dead;" % i for i in range(K))
    conf = STATUS + r"""
    upstream dead { server 127.0.0.1:1; }
    map $ssl_preread_server_name $b {
        hostnames;
@KEYS@
    }
    server {
        listen 127.0.0.1:@L@;
        ssl_preread on;
        proxy_pass $b;
    }
""".replace("@KEYS@", keys)
    r = relay(conf, main_extra="worker_processes 1;", S=port(), L=port())
    S, L = r.listen_ports
    r.wait_error(r"\[warn\] .*have no metric series of their own \(more than "
                 r"256 routes")
    for i in range(K):
        s = util.connect(L)
        s.sendall(hello.records(hello.build_client_hello(server_name="k%d.test" % i)))
        assert util.recv_all(s) == b""
        s.close()
    s = wait_metric(S, "snirelay_sessions_total", K, status="502")
    own = {dict(k[1])["route"]: v for k, v in s.items()
           if k[0] == "snirelay_route_sessions_total"
           and dict(k[1])["source"] == "map $b"}
    other = val(s, "snirelay_route_sessions_total", source="other", route="other")
    assert len(own) <= 256 and other > 0
    assert set(own.values()) <= {1.0}
    assert sum(own.values()) + other == K
    assert val(s, "snirelay_route_overflow_total") == other
    assert val(s, "snirelay_series_overflow_total") >= other


ROUTED = STATUS + r"""
    upstream app {
        server 127.0.0.1:@DEAD@ max_fails=1 fail_timeout=30s;
        server 127.0.0.1:@B@;
    }
    map $ssl_preread_server_name $b {
        hostnames;
        app.test app;
    }
    server {
        listen 127.0.0.1:@L@;
        ssl_preread on;
        proxy_pass $b;
    }
"""


def _of_pid(samples, name, pid):
    """The sample of `name` whose labels name worker `pid`."""
    got = [v for (n, labels), v in samples.items()
           if n == name and str(pid) in dict(labels).values()]
    assert len(got) == 1, (name, pid, [k for k in samples if k[0] == name])
    return got[0]


# Histograms: their _bucket, _sum and _count samples.
DURATION = "snirelay_session_duration_seconds"
CONNECT = "snirelay_upstream_connect_seconds"
FIRST_BYTE = "snirelay_upstream_first_byte_seconds"


def test_route_bytes_timings_failure_times_and_worker_gauges(relay, port, backend):
    """The families the other tests do not pin down, each against traffic
    whose figures are known: bytes per route, the histograms' counts and
    sums, a failed server's failure times, and the worker's gauges."""
    b = echo_backend(backend)
    dead = port()               # nobody listens: connecting is refused
    r = relay(ROUTED, main_extra="worker_processes 1;", S=port(), L=port(),
              B=b.port, DEAD=dead)
    S, L = r.listen_ports
    w = util.wait_for(lambda: util.child_pids(r.pid), "the worker")[0]
    hs = hello.records(hello.build_client_hello(server_name="app.test"))
    route = {"source": "map $b", "route": "app.test"}
    up = {"upstream": "app", "server": "127.0.0.1:%d" % b.port}
    down = {"upstream": "app", "server": "127.0.0.1:%d" % dead}

    # K sessions held open, each having echoed its hello and `extra` bytes.
    K, extra = 3, b"x" * 1000
    t0 = time.time()
    held = []
    for _ in range(K):
        s = util.connect(L)
        s.sendall(hs + extra)
        assert util.recv_exact(s, len(hs) + len(extra)) == hs + extra
        held.append(s)
    moved = K * (len(hs) + len(extra))
    s = wait_metric(S, "snirelay_route_received_bytes_total", moved, **route)
    assert val(s, "snirelay_route_sent_bytes_total", **route) == moved
    # The scrape is a session of the same worker too, with one socket;
    # each held session has its client and its upstream socket.
    assert _of_pid(s, "snirelay_worker_sessions_active", w) == K + 1
    assert _of_pid(s, "snirelay_worker_descriptors", w) == 2 * K + 1
    # Round robin tried the dead server once, then kept away from it.
    assert val(s, "snirelay_upstream_failures_total", reason="refused", **down) == 1
    last = val(s, "snirelay_upstream_last_failure_timestamp_seconds", **down)
    until = val(s, "snirelay_upstream_failed_until_timestamp_seconds", **down)
    assert t0 - 1 <= last <= time.time() + 1, (t0, last)
    assert abs(until - (last + 30)) <= 1, (last, until)
    assert val(s, "snirelay_upstream_last_failure_timestamp_seconds", **up) == 0
    # One connect and one first byte per session that reached the echo.
    assert val(s, CONNECT + "_count", **up) == K
    assert val(s, FIRST_BYTE + "_count", **up) == K

    # Scrapes are sessions too, ended in milliseconds; the held sessions
    # last over `hold`, so they alone land above the 1 s bound.
    hold = 1.2

    def longer_than_a_second():
        s = parse(scrape(S))
        le = {float(dict(k[1])["le"]): v for k, v in s.items()
              if k[0] == DURATION + "_bucket"}
        return s if le[float("inf")] - le[1.0] == K else None
    assert longer_than_a_second() is None
    # Every held session was accepted before t_held: each lasts over hold.
    t_held = time.monotonic()
    util.wait_for(lambda: time.monotonic() - t_held >= hold, "the sessions to age")
    for c in held:
        c.close()
    s = util.wait_for(longer_than_a_second, "the held sessions' durations")
    assert val(s, DURATION + "_sum") >= K * (hold - 0.01)   # ms rounding
    assert val(s, DURATION + "_count") == \
        val(s, DURATION + "_bucket", le="+Inf")
    assert _of_pid(s, "snirelay_worker_sessions_active", w) == 1
    assert _of_pid(s, "snirelay_worker_descriptors", w) == 1

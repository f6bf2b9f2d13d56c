"""access_log as nginx's stream log module has it: variables in the path
(opened per session, or kept by open_log_file_cache), if=, gzip[=level],
and nginx's errors for them."""

import gzip
import os
import signal
import subprocess

import pytest

import hello
import util


def _session(port, name, backend):
    data = hello.records(hello.build_client_hello(server_name=name))
    s = util.connect(port)
    try:
        s.sendall(data)
        assert util.recv_all(s).startswith(b"B ")
    finally:
        s.close()
    return data


def _backend(backend):
    # Every session sends one hello: read it, answer, close.
    n = len(hello.records(hello.build_client_hello(server_name="x.test")))
    return backend(lambda conn, info: _reply(conn, info), name="B"), n


def _reply(conn, info):
    buf = b""
    while len(buf) < 5 or len(buf) < 5 + int.from_bytes(buf[3:5], "big"):
        b = conn.recv(65536)
        if not b:
            break
        buf += b
    conn.sendall(b"B ok\n")


def _worker(r):
    def one():
        kids = util.child_pids(r.pid)
        return kids[0] if kids and util.has_event_loop(kids[0]) else None
    return util.wait_for(one, "a worker")


def _open_paths(pid):
    out = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            out.add(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        except OSError:
            pass
    return out


def _lines(path):
    with open(path, "rb") as f:
        return [l for l in f.read().decode().split("\n") if l]


def test_access_log_path_with_variables_opens_a_file_per_value(
        relay, backend, port, workdir):
    B, _ = _backend(backend)
    p1, p2 = port(), port()
    d = os.path.join(workdir, "logs")
    os.makedirs(d)
    r = relay("""
    server {
        listen 127.0.0.1:@P1@; ssl_preread on;
        access_log @D@/s-$server_port.log t; proxy_pass @B@; }
    server {
        listen 127.0.0.1:@P2@; ssl_preread on;
        access_log @D@/s-$server_port.log t; proxy_pass @B@; }
    """, P1=p1, P2=p2, D=d, B=B.addr)
    w = _worker(r)
    _session(p1, "a.test", B)
    _session(p2, "b.test", B)
    _session(p2, "c.test", B)
    f1 = os.path.join(d, "s-%d.log" % p1)
    f2 = os.path.join(d, "s-%d.log" % p2)
    util.wait_for(lambda: os.path.exists(f1) and os.path.exists(f2) and
                  len(_lines(f2)) == 2, "both per-port logs")
    assert [util.parse_line(l)["ssl_preread_server_name"]
            for l in _lines(f1)] == ["a.test"]
    assert not os.path.exists(os.path.join(d, "s-$server_port.log"))
    # Without open_log_file_cache nothing stays open.
    assert not any(x.startswith(d) for x in _open_paths(w))


def test_open_log_file_cache_keeps_the_file_open(relay, backend, port,
                                                 workdir):
    B, _ = _backend(backend)
    p = port()
    d = os.path.join(workdir, "logs")
    os.makedirs(d)
    r = relay("""
    open_log_file_cache max=4 inactive=1h valid=1h;
    server {
        listen 127.0.0.1:@P@; ssl_preread on;
        access_log @D@/c-$ssl_preread_server_name.log t;
        proxy_pass @B@; }
    """, P=p, D=d, B=B.addr)
    w = _worker(r)
    for name in ("a.test", "a.test", "b.test"):
        _session(p, name, B)
    fa = os.path.join(d, "c-a.test.log")
    fb = os.path.join(d, "c-b.test.log")
    util.wait_for(lambda: os.path.exists(fb) and len(_lines(fa)) == 2,
                  "the cached logs")
    held = {x for x in _open_paths(w) if x.startswith(d)}
    assert held == {fa, fb}


def test_open_log_file_cache_max_evicts_the_least_recent(relay, backend, port,
                                                         workdir):
    B, _ = _backend(backend)
    p = port()
    d = os.path.join(workdir, "logs")
    os.makedirs(d)
    r = relay("""
    server {
        listen 127.0.0.1:@P@; ssl_preread on;
        open_log_file_cache max=1;
        access_log @D@/e-$ssl_preread_server_name.log t;
        proxy_pass @B@; }
    """, P=p, D=d, B=B.addr)
    w = _worker(r)
    _session(p, "a.test", B)
    _session(p, "b.test", B)
    fb = os.path.join(d, "e-b.test.log")
    util.wait_for(lambda: os.path.exists(fb), "the second log")
    util.wait_for(lambda: {x for x in _open_paths(w) if x.startswith(d)} ==
                  {fb}, "only the latest file held")


def test_a_client_chosen_path_with_dotdot_is_refused(relay, backend, port,
                                                     workdir):
    B, _ = _backend(backend)
    p = port()
    d = os.path.join(workdir, "logs", "in")
    os.makedirs(d)
    r = relay("""
    server {
        listen 127.0.0.1:@P@; ssl_preread on;
        access_log @D@/$ssl_preread_server_name t; proxy_pass @B@; }
    """, P=p, D=d, B=B.addr)
    _session(p, "..", B)
    r.wait_error(r"access_log path \".*/in/\.\.\" refused")
    assert os.listdir(d) == []
    assert sorted(os.listdir(os.path.dirname(d))) == ["in"]


def test_access_log_if_skips_empty_and_zero(relay, backend, port, workdir):
    B, _ = _backend(backend)
    p = port()
    log = os.path.join(workdir, "if.log")
    all_log = os.path.join(workdir, "all.log")
    r = relay("""
    map $ssl_preread_server_name $loggable {
        empty.test "";
        zero.test 0;
        default 1;
    }
    server {
        listen 127.0.0.1:@P@; ssl_preread on;
        access_log @L@ t if=$loggable; access_log @A@ t;
        proxy_pass @B@; }
    """, P=p, L=log, A=all_log, B=B.addr)
    for name in ("empty.test", "zero.test", "one.test", "zero.test"):
        _session(p, name, B)
    # The second log sees every session, after the first: once it has all
    # four, the filtered one has had its chance to be written.
    r.wait_access(4, path=all_log)
    names = [util.parse_line(l)["ssl_preread_server_name"] for l in _lines(log)]
    assert names == ["one.test"]


@pytest.mark.parametrize("param,level", [("gzip", 1), ("gzip=9", 9)])
def test_access_log_gzip_writes_gzip_members(relay, backend, port, workdir,
                                             param, level):
    B, _ = _backend(backend)
    p = port()
    log = os.path.join(workdir, "z.log.gz")
    all_log = os.path.join(workdir, "all.log")
    r = relay("""
    server {
        listen 127.0.0.1:@P@; ssl_preread on;
        access_log @L@ t @G@ flush=1h; access_log @A@ t;
        proxy_pass @B@; }
    """, P=p, L=log, A=all_log, B=B.addr, G=param)
    for name in ("g1.test", "g2.test"):
        _session(p, name, B)
    r.wait_access(2, path=all_log)     # unbuffered: the sessions are logged
    util.wait_proxy_closed_all(p)
    assert r.stop(signal.SIGTERM) == 0    # flushes the buffer
    with open(log, "rb") as f:
        raw = f.read()
    assert raw[:2] == b"\x1f\x8b", raw[:16]
    # FLG/XFL: level 9 marks "maximum compression" (2), level 1 "fastest" (4).
    assert raw[8] == (2 if level == 9 else 4)
    lines = [l for l in gzip.decompress(raw).decode().split("\n") if l]
    assert [util.parse_line(l)["ssl_preread_server_name"] for l in lines] == \
        ["g1.test", "g2.test"]


def _t(bin_, workdir, body):
    path = os.path.join(workdir, "a.conf")
    text = ("pid %s/x.pid;\nevents { }\nstream {\n    log_format t '$status';\n"
            "    server { listen 127.0.0.1:%d; proxy_pass 127.0.0.1:1;\n"
            "        %s\n    }\n}\n" % (workdir, util.free_port(), body))
    with open(path, "w") as f:
        f.write(text)
    p = subprocess.run([bin_, "-t", "-c", path], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=util.DEADLINE)
    return p.returncode, p.stderr.decode(errors="replace"), path


@pytest.mark.parametrize("body,message", [
    ("access_log /tmp/x.log t gzip=0;", 'invalid compression level "0"'),
    ("access_log /tmp/x.log t gzip=10;", 'invalid compression level "10"'),
    ("access_log /tmp/x.log t gzipx;", 'invalid parameter "gzipx"'),
    ("access_log /tmp/s-$server_port.log t buffer=4k;",
     "buffered logs cannot have variables in name"),
    ("access_log /tmp/s-$server_port.log t gzip;",
     "buffered logs cannot have variables in name"),
    ("access_log /tmp/s-$nosuchvar.log t;", 'unknown "nosuchvar" variable'),
    ("access_log /tmp/x.log t if=$nosuchvar;", 'unknown "nosuchvar" variable'),
])
def test_access_log_bad_parameters(snirelay_bin, workdir, body, message):
    body = body.replace("/tmp/", workdir + "/")
    rc, err, path = _t(snirelay_bin, workdir, body)
    assert rc == 1, err
    assert "[emerg] %s in %s:6" % (message, path) in err, err


def test_one_file_with_conflicting_buffers_is_refused(snirelay_bin, workdir):
    rc, err, path = _t(snirelay_bin, workdir,
                       "access_log %s/x.log t buffer=8k;\n"
                       "        access_log %s/x.log t buffer=16k;"
                       % (workdir, workdir))
    assert rc == 1, err
    assert ('[emerg] access_log "%s/x.log" already defined with conflicting '
            'parameters in %s:7' % (workdir, path)) in err, err

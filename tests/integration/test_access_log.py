"""Access log: every variable of a line checked against what really happened,
escaping of client-controlled bytes, buffered writing."""

import datetime
import os
import re
import signal
import socket
import subprocess
import time

import hello
import util
from util import sha

ALL_FIELDS = [
    "remote_addr", "remote_port", "server_addr", "server_port", "protocol", "status",
    "bytes_sent", "bytes_received", "session_time", "time_local", "time_iso8601", "msec",
    "connection", "pid", "hostname", "upstream_addr", "upstream_bytes_sent",
    "upstream_bytes_received", "upstream_connect_time", "upstream_first_byte_time",
    "upstream_session_time", "ssl_preread_server_name", "ssl_preread_alpn_protocols",
    "ssl_preread_protocol", "ssl_preread_status", "ssl_preread_ech",
    "proxy_protocol_addr", "proxy_protocol_port", "nginx_version",
]
ALL_FORMAT = "|".join("$" + f for f in ALL_FIELDS)

CONF = r"""
    map $ssl_preread_server_name $backend {
        log.test  127.0.0.1:@B@;
        default   127.0.0.1:@D@;
    }
    server {
        listen 127.0.0.1:@L@;
        ssl_preread on;
        proxy_pass $backend;
    }
"""

SECS = re.compile(r"^\d+\.\d{3}$")


def _near_now(t, what):
    assert abs(t - time.time()) < 300, "%s %r is not the current time" % (what, t)


def test_every_field_of_a_line(relay, backend, port):
    hs = hello.records(hello.build_client_hello(server_name="log.test", alpn=["h2"]))
    extra = os.urandom(12345)
    reply = os.urandom(4321)
    sent = hs + extra

    def handler(conn, info):
        info["data"] = util.recv_all(conn, len(sent))
        conn.sendall(reply)

    B = backend(handler, name="B")
    D = backend(util.record_to_eof(), name="D")
    L = port()
    r = relay(CONF, B=B.port, D=D.port, L=L, log_format=ALL_FORMAT)

    conns = []
    for _ in range(2):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(util.DEADLINE)
        s.bind(("127.0.0.1", 0))
        cport = s.getsockname()[1]
        s.connect(("127.0.0.1", L))
        try:
            s.sendall(sent)
            got = util.recv_all(s)
        finally:
            s.close()
        assert got == reply
        conns.append(cport)
        r.wait_access(len(conns))   # sessions one after the other

    lines = r.wait_access(2)
    f = util.parse_line(lines[0], ALL_FIELDS)
    g = util.parse_line(lines[1], ALL_FIELDS)
    assert f["remote_addr"] == "127.0.0.1"
    assert f["remote_port"] == str(conns[0])
    assert g["remote_port"] == str(conns[1])
    assert f["server_addr"] == "127.0.0.1"
    assert f["server_port"] == str(L)
    assert f["protocol"] == "TCP"
    assert f["status"] == "200"
    assert f["bytes_sent"] == str(len(reply))
    assert f["bytes_received"] == str(len(sent))
    assert f["upstream_addr"] == B.addr
    assert f["upstream_bytes_sent"] == str(len(sent))
    assert f["upstream_bytes_received"] == str(len(reply))
    for k in ("session_time", "upstream_connect_time", "upstream_first_byte_time",
              "upstream_session_time"):
        assert SECS.match(f[k]), (k, f[k])
        assert 0 <= float(f[k]) < 60, (k, f[k])
    assert float(f["upstream_session_time"]) <= float(f["session_time"]) + 0.001
    t1 = datetime.datetime.strptime(f["time_local"], "%d/%b/%Y:%H:%M:%S %z")
    _near_now(t1.timestamp(), "$time_local")
    t2 = datetime.datetime.strptime(f["time_iso8601"], "%Y-%m-%dT%H:%M:%S%z")
    _near_now(t2.timestamp(), "$time_iso8601")
    assert abs(t1.timestamp() - t2.timestamp()) <= 1
    assert SECS.match(f["msec"]), f["msec"]
    _near_now(float(f["msec"]), "$msec")
    assert re.match(r"^\d+$", f["connection"]) and int(f["connection"]) >= 1
    assert int(g["connection"]) > int(f["connection"])
    pid = int(f["pid"])
    if pid != r.pid:   # a worker: its parent must be the process we started
        with open("/proc/%d/status" % pid) as st:
            ppid = int(re.search(r"^PPid:\s+(\d+)", st.read(), re.M).group(1))
        assert ppid == r.pid
    assert f["hostname"] == socket.gethostname()
    assert f["ssl_preread_server_name"] == "log.test"
    assert f["ssl_preread_alpn_protocols"] == "h2"
    assert f["ssl_preread_protocol"] == "TLSv1.3"
    assert f["ssl_preread_status"] == "ok"
    assert f["ssl_preread_ech"] in ("", "-", "0")
    assert util.empty(f["proxy_protocol_addr"])
    assert util.empty(f["proxy_protocol_port"])
    # snirelay is not nginx: $nginx_version is snirelay's own version.
    v = subprocess.run([util.bin_path(), "-v"], capture_output=True, text=True)
    assert "snirelay version: snirelay/%s\n" % f["nginx_version"] == v.stderr
    assert re.match(r"^\d+\.\d+\.\d+$", f["nginx_version"])
    assert B.conns[0]["data"] == sent
    assert D.accepted == 0


def test_client_bytes_in_sni_and_alpn_are_escaped(relay, backend, port):
    name = b'ev"il\nname\\x\x1b\x7f\xff.test'
    alpn = [b'h2"\r\n', b"ok"]
    data = hello.records(hello.build_client_hello(server_name=name, alpn=alpn))
    B = backend(util.record_to_eof(), name="B")
    D = backend(util.reply_after(len(data), "D"), name="D")
    L = port()
    r = relay(CONF, B=B.port, D=D.port, L=L)
    s = util.connect(L)
    try:
        s.sendall(data)
        util.recv_all(s)
    finally:
        s.close()
    lines = r.wait_access(1)
    with open(r.access_log, "rb") as fh:
        raw = fh.read()
    assert raw.count(b"\n") == 1, "one session must give exactly one line: %r" % raw
    assert b'"' not in raw and b"\x1b" not in raw and b"\x7f" not in raw \
        and b"\xff" not in raw and b"\r" not in raw
    f = util.parse_line(lines[0])
    want = r"ev\x22il\x0Aname\x5Cx\x1B\x7F\xFF.test"
    assert f["ssl_preread_server_name"].lower() == want.lower()
    assert f["ssl_preread_alpn_protocols"].lower() == r"h2\x22\x0D\x0A,ok".lower()


def test_buffered_log_is_written_after_flush_interval(relay, backend, port):
    data = hello.records(hello.build_client_hello(server_name="log.test"))
    B = backend(util.reply_after(len(data), "B"), name="B")
    D = backend(util.record_to_eof(), name="D")
    L = port()
    r = relay(CONF, B=B.port, D=D.port, L=L, access_extra=" buffer=64k flush=1s")
    for _ in range(3):
        s = util.connect(L)
        try:
            s.sendall(data)
            assert util.recv_all(s) == ("B %s\n" % sha(data)).encode()
        finally:
            s.close()
    lines = r.wait_access(3)
    assert len(lines) == 3
    assert all(util.parse_line(l)["ssl_preread_server_name"] == "log.test" for l in lines)


def test_buffered_log_is_flushed_on_exit(relay, backend, port):
    data = hello.records(hello.build_client_hello(server_name="log.test"))
    B = backend(util.reply_after(len(data), "B"), name="B")
    D = backend(util.record_to_eof(), name="D")
    L = port()
    r = relay(CONF, B=B.port, D=D.port, L=L, access_extra=" buffer=64k flush=1h")
    s = util.connect(L)
    try:
        s.sendall(data)
        assert util.recv_all(s) == ("B %s\n" % sha(data)).encode()
    finally:
        s.close()
    B.wait_conns(1)
    assert B.conns[0]["done"].wait(util.DEADLINE)
    # The session is over once the proxy has closed the client's socket;
    # then stop: the buffered line must reach the file.
    util.wait_proxy_closed_all(L)
    assert r.stop(signal.SIGTERM) == 0
    lines = r.access_lines()
    assert len(lines) == 1, lines
    assert util.parse_line(lines[0])["ssl_preread_server_name"] == "log.test"


def test_missing_value_is_a_dash_only_with_default_escaping(relay, port):
    # nginx writes "-" for a variable with no value under escape=default,
    # and nothing under escape=json and escape=none (nginx-tests'
    # stream_access_log_none.t and _escape.t).
    L = port()
    r = relay(r"""
        log_format dflt '[$upstream_addr]';
        log_format js escape=json '[$upstream_addr]';
        log_format raw escape=none '[$upstream_addr]';
        server {
            listen 127.0.0.1:@L@;
            return ok;
            access_log @D@/dflt.log dflt;
            access_log @D@/js.log js;
            access_log @D@/raw.log raw;
        }
    """, L=L, D="__D__", start=False)
    with open(r.conf, "w") as f:
        f.write(r.text.replace("__D__", r.dir))
    r.start()
    s = util.connect(L)
    assert util.recv_all(s) == b"ok"
    s.close()
    got = {n: r.wait_access(1, os.path.join(r.dir, n + ".log"))[0]
           for n in ("dflt", "js", "raw")}
    assert got == {"dflt": "[-]", "js": "[]", "raw": "[]"}, got

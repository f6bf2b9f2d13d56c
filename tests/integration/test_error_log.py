"""error_log as nginx: several targets per context (all written), syslog:
targets over UDP and a unix datagram socket in nginx's format, and nginx's
info-level session lines (client connected, proxy connected, disconnected
with byte counts)."""

import os
import re
import socket
import subprocess

import util


def _echo(conn, info):
    data = conn.recv(65536)
    conn.sendall(data.upper() + b"!")


def _udp_receiver():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(util.DEADLINE)
    return s


def _session(port, payload=b"ping"):
    c = util.connect(port)
    c.sendall(payload)
    got = util.recv_exact(c, len(payload) + 1)
    c.shutdown(socket.SHUT_WR)
    util.wait_closed(c)
    c.close()
    return got


def _text(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def test_several_error_logs_in_one_context_all_get_each_line(relay, backend,
                                                             port):
    b = backend(_echo)
    L = port()
    r = relay("""
        server {
            listen 127.0.0.1:@L@;
            proxy_pass 127.0.0.1:@B@;
            error_log @D@/s_info.log info;
            error_log @D@/s_info2.log info;
            error_log @D@/s_emerg.log emerg;
        }
    """, L=L, B=b.port, D="__DIR__", start=False)
    # The relay fixture renders before it knows its directory: fix it up.
    text = r.text.replace("__DIR__", r.dir)
    with open(r.conf, "w") as f:
        f.write(text)
    r.start()
    assert _session(L) == b"PING!"
    info = os.path.join(r.dir, "s_info.log")
    util.wait_for(lambda: "disconnected" in _text(info), "disconnect line")
    one, two = _text(info), _text(os.path.join(r.dir, "s_info2.log"))
    assert re.search(r"\[info\] \d+#0: \*\d+ client 127\.0\.0\.1:\d+ "
                     r"connected to 127\.0\.0\.1:%d\n" % L, one), one
    assert re.search(r"\[info\] \d+#0: \*\d+ proxy 127\.0\.0\.1:\d+ connected "
                     r"to 127\.0\.0\.1:%d while proxying connection, client: "
                     r"127\.0\.0\.1, server: 127\.0\.0\.1:%d" % (b.port, L), one), one
    assert re.search(r"client disconnected, bytes from/to client:4/5, "
                     r"bytes from/to upstream:5/4 while proxying connection",
                     one), one
    # Same lines in the second target; none at info in the emerg one.
    strip = lambda t: [l.split("] ", 1)[1] for l in t.splitlines()]
    assert strip(one) == strip(two)
    assert "[info]" not in _text(os.path.join(r.dir, "s_emerg.log"))


def test_main_context_takes_several_error_logs(relay, backend, port):
    b = backend(_echo)
    L = port()
    r = relay("""
        server {
            listen 127.0.0.1:@L@;
            proxy_pass 127.0.0.1:@B@;
        }""",
              main_extra="error_log @X@ notice;", L=L, B=b.port,
              X="/dev/null", start=False)
    second = os.path.join(r.dir, "second.log")
    with open(r.conf, "w") as f:
        f.write(r.text.replace("/dev/null", second))
    r.start()
    util.wait_for(lambda: "start worker process" in _text(second),
                  "worker start notice in the second main error_log")
    assert "start worker process" in r.error_text()


def test_syslog_udp_lines_in_nginx_format(relay, backend, port):
    b = backend(_echo)
    rx = _udp_receiver()
    rx2 = _udp_receiver()
    L = port()
    r = relay("""
        server {
            listen 127.0.0.1:@L@;
            proxy_pass 127.0.0.1:@B@;
            error_log syslog:server=127.0.0.1:@S@ info;
            error_log syslog:server=127.0.0.1:@T@,facility=local0,tag=relay_1,nohostname info;
        }
    """, L=L, B=b.port, S=rx.getsockname()[1], T=rx2.getsockname()[1])
    assert _session(L) == b"PING!"
    msg = rx.recv(4096).decode()
    # <PRI>Mmm dd hh:mm:ss HOST TAG: MSG; info = 6, local7 = 23.
    m = re.match(r"^<(\d+)>([A-Z][a-z]{2}) ([ \d]\d) (\d\d):(\d\d):(\d\d) "
                 r"(\S+) (\w+): (.*)$", msg)
    assert m, msg
    assert int(m.group(1)) == 23 * 8 + 6
    assert m.group(7) == socket.gethostname().lower()
    assert m.group(8) == "nginx"
    assert re.search(r"\[info\] \d+#0: \*\d+ client 127\.0\.0\.1:\d+ "
                     r"connected to 127\.0\.0\.1:%d$" % L, m.group(9)), msg
    msg2 = rx2.recv(4096).decode()
    m = re.match(r"^<(\d+)>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d (\w+): ", msg2)
    assert m, msg2
    assert int(m.group(1)) == 16 * 8 + 6 and m.group(2) == "relay_1"
    rx.close()
    rx2.close()


def test_syslog_to_a_unix_datagram_socket(relay, backend, port, workdir):
    b = backend(_echo)
    path = os.path.join(workdir, "log.sock")
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind(path)
    rx.settimeout(util.DEADLINE)
    L = port()
    relay("""
        server {
            listen 127.0.0.1:@L@;
            proxy_pass 127.0.0.1:@B@;
            error_log syslog:server=unix:@P@ info;
        }
    """, L=L, B=b.port, P=path)
    assert _session(L) == b"PING!"
    assert "connected to 127.0.0.1:%d" % L in rx.recv(4096).decode()
    rx.close()


def test_no_live_upstreams_names_the_group(relay, port):
    L = port()
    r = relay("""
        upstream grp { server 127.0.0.1:1 down; }
        server {
            listen 127.0.0.1:@L@;
            proxy_pass grp;
        }
    """, L=L)
    c = util.connect(L)
    util.wait_closed(c)
    r.wait_error(r'no live upstreams while connecting to upstream, client: '
                 r'127\.0\.0\.1, server: 127\.0\.0\.1:%d, upstream: "grp"' % L)


def _t(snirelay_bin, workdir, line):
    conf = os.path.join(workdir, "e.conf")
    with open(conf, "w") as f:
        f.write("events { }\n%s\n" % line)
    p = subprocess.run([snirelay_bin, "-t", "-c", conf],
                       stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=util.DEADLINE)
    return p.returncode, p.stderr.decode(), conf


def test_bad_error_log_targets_name_file_and_line(snirelay_bin, workdir):
    for line, text in [
        ("error_log syslog:server=127.0.0.1,facility=bogus;",
         'unknown syslog facility "bogus"'),
        ("error_log syslog:server=127.0.0.1,flavour=x;",
         'unknown syslog parameter "flavour=x"'),
        ("error_log syslog:facility=local1;", "no syslog server specified"),
        ("error_log syslog:server=127.0.0.1,tag=a-b;",
         'syslog "tag" only allows alphanumeric characters and underscore'),
        ("error_log memory:32m debug;", '"memory:" error logs are not supported: '
         'they need an nginx built --with-debug and a debugger to read'),
        ("error_log /x.log verbose;", 'invalid log level "verbose"'),
    ]:
        rc, err, conf = _t(snirelay_bin, workdir, line)
        assert rc == 1, line
        assert "%s in %s:2" % (text, conf) in err, (line, err)


def test_access_log_to_syslog(relay, backend, port):
    """access_log syslog:... sends each line as one datagram in nginx's
    format, severity= chosen (info by default), facility local7."""
    b = backend(_echo)
    rx = _udp_receiver()
    rx2 = _udp_receiver()
    L = port()
    relay("""
        log_format plain '$remote_addr $status $bytes_received';
        server {
            listen 127.0.0.1:@L@;
            proxy_pass 127.0.0.1:@B@;
            access_log syslog:server=127.0.0.1:@S@,severity=notice,tag=acc plain;
            access_log syslog:server=127.0.0.1:@T@ plain;
        }
    """, L=L, B=b.port, S=rx.getsockname()[1], T=rx2.getsockname()[1])
    assert _session(L) == b"PING!"
    msg = rx.recv(4096).decode()
    m = re.match(r"^<(\d+)>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ (\w+): "
                 r"(.*)$", msg)
    assert m, msg
    assert int(m.group(1)) == 23 * 8 + 5 and m.group(2) == "acc"
    assert m.group(3) == "127.0.0.1 200 4", msg
    msg2 = rx2.recv(4096).decode()
    assert msg2.startswith("<%d>" % (23 * 8 + 6)), msg2
    assert msg2.endswith(" nginx: 127.0.0.1 200 4"), msg2
    rx.close()
    rx2.close()


def test_access_log_syslog_refuses_buffer_and_gzip(snirelay_bin, workdir):
    for param in ("buffer=32k", "gzip"):
        rc, err, conf = _t(snirelay_bin, workdir,
                           "stream { access_log syslog:server=127.0.0.1 "
                           "%s; }" % param)
        assert rc == 1
        assert ('parameter "%s" is not supported with a syslog: target'
                % param.split("=")[0]) in err, err

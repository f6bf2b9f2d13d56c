"""proxy_bind: the source address of upstream connections, as nginx's stream
proxy: a constant address, `off` to cancel an inherited one, a value with
variables evaluated per session (empty: no bind; not an address: logged,
no bind), `transparent` (IP_TRANSPARENT, kept across the workers' switch to
`user`), and bind() failures ending the session with 500.  The backend
checks the peer address it sees."""

import os
import socket
import subprocess

import pytest

import util

FIELDS = ["remote_addr", "status", "upstream_addr"]
FMT = "|".join("$" + f for f in FIELDS)


def _peer_reply():
    """Backend: reply with the peer address it sees, then close."""
    def handler(conn, info):
        conn.sendall(("%s\n" % info["peer"][0]).encode())
    return handler


def _ask(port, src="127.0.0.1"):
    s = socket.socket()
    if src != "127.0.0.1":
        s.bind((src, 0))
    s.settimeout(util.DEADLINE)
    s.connect(("127.0.0.1", port))
    try:
        return util.recv_all(s).decode().strip()
    finally:
        s.close()


def test_constant_address_inherited_and_cancelled_by_off(relay, backend, port):
    B = backend(_peer_reply())
    L1, L2, L3 = port(), port(), port()
    relay(r"""
    proxy_bind 127.0.0.2;
    server {
        listen 127.0.0.1:@L1@;
        proxy_pass 127.0.0.1:@B@;
    }
    server {
        listen 127.0.0.1:@L2@;
        proxy_bind off;
        proxy_pass 127.0.0.1:@B@;
    }
    server {
        listen 127.0.0.1:@L3@;
        proxy_bind 127.0.0.3;
        proxy_pass 127.0.0.1:@B@;
    }
    """, L1=L1, L2=L2, L3=L3, B=B.port)
    assert _ask(L1) == "127.0.0.2"
    assert _ask(L2) == "127.0.0.1"
    assert _ask(L3) == "127.0.0.3"


def test_value_from_a_map_is_evaluated_per_session(relay, backend, port):
    B = backend(_peer_reply())
    L = port()
    r = relay(r"""
    map $remote_addr $source {
        127.0.0.1  127.0.0.3;
        127.0.0.4  "";
        default    bogus;
    }
    server {
        listen 127.0.0.1:@L@;
        proxy_bind $source;
        proxy_pass 127.0.0.1:@B@;
    }
    """, log_format=FMT, L=L, B=B.port)
    assert _ask(L) == "127.0.0.3"
    # Empty: no bind, the kernel's choice.
    assert _ask(L, src="127.0.0.4") == "127.0.0.1"
    # Not an address: logged, then no bind (nginx).
    assert _ask(L, src="127.0.0.5") == "127.0.0.1"
    r.wait_access(3)
    assert 'invalid local address "bogus"' in r.error_text()
    lines = [util.parse_line(l, FIELDS) for l in r.access_lines()]
    assert [l["status"] for l in lines] == ["200"] * 3


def test_ipv6_address(relay, backend, port):
    B = backend(_peer_reply(), host="::1")
    L = port()
    relay(r"""
    server {
        listen 127.0.0.1:@L@;
        proxy_bind [::1];
        proxy_pass [::1]:@B@;
    }
    """, L=L, B=B.port)
    assert _ask(L) == "::1"


def test_bind_failure_ends_the_session_with_500_and_a_crit_line(
        master, backend, port):
    B = backend(_peer_reply())
    L = port()
    # 192.0.2.1 (TEST-NET-1) is no address of this host: bind() fails.
    m = master(r"""
    server {
        listen 127.0.0.1:@L@;
        proxy_bind 192.0.2.1;
        proxy_pass 127.0.0.1:@B@;
    }
    """, log_format=FMT, L=L, B=B.port,
        allow_log=[r"\[crit\] .*bind\(192\.0\.2\.1\) failed \(99: "])
    assert _ask(L) == ""
    m.wait_access(1)
    (line,) = [util.parse_line(l, FIELDS) for l in m.access_lines()]
    assert line["status"] == "500"
    assert B.accepted == 0
    assert "bind(192.0.2.1) failed (99: Cannot assign requested address)" \
        in m.error_text()


@pytest.mark.skipif(os.geteuid() != 0, reason="IP_TRANSPARENT needs root")
def test_transparent_works_in_workers_that_switched_user(master, backend, port):
    B = backend(_peer_reply())
    L = port()
    m = master(r"""
    server {
        listen 127.0.0.1:@L@;
        proxy_bind 127.0.0.6 transparent;
        proxy_pass 127.0.0.1:@B@;
    }
    """, main_extra="user nobody;", log_format=FMT, L=L, B=B.port)
    (w,) = m.wait_workers(1)
    with open("/proc/%d/status" % w) as f:
        status = f.read()
    assert "\nUid:\t65534\t" in status
    # CAP_NET_RAW (bit 13) alone is kept, effective.
    eff = [l for l in status.splitlines() if l.startswith("CapEff:")][0]
    assert int(eff.split()[1], 16) == 1 << 13
    assert _ask(L) == "127.0.0.6"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run as nobody")
def test_transparent_without_the_capability_is_refused(snirelay_bin):
    """nginx accepts it and fails every connection; snirelay refuses a
    config that cannot work, saying why."""
    import shutil
    import tempfile
    if shutil.which("runuser") is None:
        pytest.skip("no runuser")
    d = tempfile.mkdtemp(prefix="snirelay-tp-")
    try:
        os.chmod(d, 0o755)
        conf = os.path.join(d, "t.conf")
        with open(conf, "w") as f:
            f.write("error_log stderr;\nevents {}\nstream {\nserver {\n"
                    "listen 127.0.0.1:1;\nproxy_bind 127.0.0.2 transparent;\n"
                    "proxy_pass 127.0.0.1:2;\n}\n}\n")
        os.chmod(conf, 0o644)
        p = subprocess.run(["runuser", "-u", "nobody", "--", snirelay_bin, "-t",
                            "-c", conf], capture_output=True, text=True,
                           timeout=util.DEADLINE)
        if "Permission denied" in p.stderr and "[emerg]" not in p.stderr:
            pytest.skip("nobody cannot run %s" % snirelay_bin)
        assert p.returncode == 1, p.stderr
        assert ('snirelay: [emerg] "proxy_bind ... transparent" cannot work: '
                "setsockopt(IP_TRANSPARENT) failed (1: Operation not permitted); "
                "it needs CAP_NET_RAW or CAP_NET_ADMIN (run as root) in %s:6"
                % conf) in p.stderr
    finally:
        shutil.rmtree(d)


def _check(snirelay_bin, workdir, line):
    conf = os.path.join(workdir, "t.conf")
    with open(conf, "w") as f:
        f.write("error_log stderr;\nevents {}\nstream {\nserver {\n"
                "listen 127.0.0.1:1;\n%s\nproxy_pass 127.0.0.1:2;\n}\n}\n" % line)
    p = subprocess.run([snirelay_bin, "-t", "-c", conf], capture_output=True,
                       text=True, timeout=util.DEADLINE)
    return p.returncode, p.stderr, conf


@pytest.mark.parametrize("line,message", [
    ("proxy_bind 1.2.3;", 'invalid address "1.2.3"'),
    ("proxy_bind 127.0.0.2:0;", 'invalid address "127.0.0.2:0"'),
    # nginx takes IPv6 in brackets only
    ("proxy_bind ::1;", 'invalid address "::1"'),
    ("proxy_bind 127.0.0.2 sideways;", 'invalid parameter "sideways"'),
    ("proxy_bind a b c;", 'invalid number of arguments in "proxy_bind" directive'),
    ("proxy_bind 127.0.0.2; proxy_bind off;",
     '"proxy_bind" directive is duplicate'),
])
def test_bad_proxy_bind_is_refused_with_nginx_messages(snirelay_bin, workdir,
                                                       line, message):
    rc, err, conf = _check(snirelay_bin, workdir, line)
    assert rc == 1, err
    assert "snirelay: [emerg] %s in %s:6" % (message, conf) in err


def test_good_forms_are_accepted(snirelay_bin, workdir):
    for line in ("proxy_bind 127.0.0.2:40000;", "proxy_bind [::1];",
                 "proxy_bind [::1]:40000;", "proxy_bind $remote_addr;",
                 "proxy_bind 127.0.0.2 transparent;", "proxy_bind off;"):
        rc, err, _ = _check(snirelay_bin, workdir, line)
        assert rc == 0, (line, err)

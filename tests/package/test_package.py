"""The Debian package (make test-package; root; not in make test).

SNIRELAY_DEB names the .deb that `make deb` built. It is installed with
dpkg; the snirelay system user, the files and the conffile are checked;
the unit passes `systemd-analyze verify` and the logrotate file parses.
The service is started under systemd when PID 1 is systemd, and otherwise
with the unit's own command lines (ExecStartPre, ExecStart, ExecReload),
as the unit's user, its RuntimeDirectory made as systemd would and
$NOTIFY_SOCKET set, so Type=notify's READY=1 is checked either way. It
must serve (a session on 127.0.0.1:4443 whose SNI is an IP literal: refused
before any lookup, so no query goes to this machine's resolver; /healthz
and /metrics on the status server, 127.0.0.1:8080), reload,
reopen its log after logrotate (USR1), and stop on SIGQUIT. Then the
package is purged and nothing of it is left; the user is removed so the
machine is as it was."""
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import hello  # noqa: E402
import util   # noqa: E402

DEB = os.environ.get("SNIRELAY_DEB", "")
UNIT = "/lib/systemd/system/snirelay.service"
CONF = "/etc/snirelay/snirelay.conf"
ACCESS = "/var/log/snirelay/access.log"
PORT = 4443

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists(DEB),
                                reason="needs root and SNIRELAY_DEB (make test-package)")


def run(*argv, check=True, **kw):
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=120, **kw)
    if check:
        assert p.returncode == 0, "%s: %s" % (" ".join(argv), p.stdout.decode())
    return p.stdout.decode()


def systemd_is_pid1():
    return os.path.isdir("/run/systemd/system")


def unit_values(key):
    """Every value of key= in the installed unit, in order."""
    with open(UNIT) as f:
        return [l.split("=", 1)[1].strip() for l in f
                if l.startswith(key + "=")]


def status_get(path):
    """(status code, body) of GET path on the shipped status server."""
    s = util.connect(8080)
    s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    data = util.recv_all(s)
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def ip_literal_session():
    """One session that the shipped config refuses before any lookup."""
    s = util.connect(PORT)
    s.sendall(hello.records(hello.build_client_hello(server_name="127.0.0.1")))
    assert util.recv_all(s) == b""
    s.close()


def access_lines():
    try:
        with open(ACCESS) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


@pytest.fixture(scope="module")
def installed():
    if run("dpkg-query", "-W", "-f=${Status}", "snirelay", check=False) \
            .endswith("installed"):
        pytest.fail("snirelay is already installed here: not touching it")
    had_user = True
    try:
        pwd.getpwnam("snirelay")
    except KeyError:
        had_user = False
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run("dpkg", "-i", DEB, env=env)
    yield
    # Whatever the tests did: purge, and the user goes if we made it.
    run("dpkg", "-P", "snirelay", check=False, env=env)
    if not had_user:
        run("deluser", "--system", "snirelay", check=False)


def test_user_files_and_conffile(installed):
    u = pwd.getpwnam("snirelay")
    assert u.pw_uid < 1000, "not a system user"
    assert u.pw_shell in ("/usr/sbin/nologin", "/bin/false")
    files = run("dpkg", "-L", "snirelay").split()
    for f in ("/usr/sbin/snirelay", CONF, UNIT, "/etc/logrotate.d/snirelay",
              "/usr/share/man/man8/snirelay.8.gz",
              "/usr/share/man/man5/snirelay.conf.5.gz"):
        assert f in files, f
        assert os.path.exists(f), f
    assert CONF in run("dpkg-query", "-W", "-f=${Conffiles}", "snirelay")
    st = os.stat("/var/log/snirelay")
    assert st.st_uid == u.pw_uid
    # As the service's user, as the unit's ExecStartPre and ExecReload do
    # (as root, -t would create the log files root's).
    assert "configuration file %s test is successful" % CONF in \
        run(*_as_user(["/usr/sbin/snirelay", "-t", "-c", CONF], "snirelay"))


def test_unit_verifies_and_is_hardened(installed):
    out = run("systemd-analyze", "verify", UNIT)
    assert "snirelay" not in out, out
    with open(UNIT) as f:
        unit = f.read()
    for line in ("Type=notify", "KillSignal=SIGQUIT",
                 "AmbientCapabilities=CAP_NET_BIND_SERVICE",
                 "ProtectSystem=strict", "NoNewPrivileges=yes",
                 "PrivateTmp=yes", "User=snirelay"):
        assert line in unit.splitlines(), line
    reload = unit_values("ExecReload")
    assert reload[0].endswith("-t -q -c " + CONF), "the reload tests first"
    assert "-HUP" in reload[1]
    # worker_shutdown_timeout is below TimeoutStopSec.
    stop = int(re.match(r"(\d+)s$", unit_values("TimeoutStopSec")[0]).group(1))
    with open(CONF) as f:
        wst = int(re.search(r"^worker_shutdown_timeout (\d+)s;", f.read(),
                            re.M).group(1))
    assert wst < stop


def test_logrotate_file_parses(installed):
    out = run("logrotate", "-d", "/etc/logrotate.d/snirelay")
    assert "/var/log/snirelay/*.log" in out


class Notify:
    """The service manager's end of sd_notify."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o666)
        self.sock.settimeout(util.DEADLINE)

    def recv(self):
        data = self.sock.recv(4096).decode()
        return dict(l.split("=", 1) for l in data.split("\n") if l)


def _as_user(argv, user):
    return ["setpriv", "--reuid=" + user, "--regid=" + user, "--init-groups",
            "--"] + argv


def test_service_starts_serves_reloads_rotates_and_stops(installed):
    for p in (PORT, 8080):
        if not util.port_bindable(p):
            pytest.skip("port %d is taken on this machine" % p)
    if systemd_is_pid1():
        _under_systemd()
    else:
        _with_the_units_command_lines()


def _under_systemd():
    run("systemctl", "start", "snirelay")
    try:
        assert run("systemctl", "is-active", "snirelay").strip() == "active"
        ip_literal_session()
        util.wait_for(lambda: any('sni="127.0.0.1"' in l for l in access_lines()),
                      "the access-log line")
        assert status_get("/healthz")[0] == 200
        pid = run("systemctl", "show", "-p", "MainPID", "--value", "snirelay")
        run("systemctl", "reload", "snirelay")
        assert run("systemctl", "show", "-p", "MainPID", "--value",
                   "snirelay") == pid
        n = len(access_lines())
        ip_literal_session()
        util.wait_for(lambda: len(access_lines()) > n, "a line after reload")
    finally:
        run("systemctl", "stop", "snirelay")
    assert run("systemctl", "is-active", "snirelay", check=False).strip() \
        == "inactive"


def _with_the_units_command_lines():
    user = unit_values("User")[0]
    u = pwd.getpwnam(user)
    # RuntimeDirectory= and LogsDirectory=, as systemd makes them.
    dirs = [os.path.join("/run", d) for d in unit_values("RuntimeDirectory")]
    dirs += [os.path.join("/var/log", d) for d in unit_values("LogsDirectory")]
    for path in dirs:
        os.makedirs(path, exist_ok=True)
        os.chown(path, u.pw_uid, u.pw_gid)
    tmp = tempfile.mkdtemp(prefix="snirelay-pkg-")
    os.chmod(tmp, 0o755)
    notify = Notify(tmp)
    err = open(os.path.join(tmp, "stderr"), "wb")
    for pre in unit_values("ExecStartPre"):
        run(*_as_user(shlex.split(pre), user))
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "NOTIFY_SOCKET": notify.path}
    p = subprocess.Popen(_as_user(shlex.split(unit_values("ExecStart")[0]), user),
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=err, env=env)
    try:
        ready = notify.recv()
        assert ready["READY"] == "1" and ready["MAINPID"] == str(p.pid)
        workers = util.child_pids(p.pid)
        assert workers and all(os.stat("/proc/%d" % w).st_uid == u.pw_uid
                               for w in workers)
        ip_literal_session()
        util.wait_for(lambda: any('sni="127.0.0.1"' in l and " 403 " in l
                                  for l in access_lines()), "the access-log line")
        assert status_get("/healthz")[0] == 200
        code, metrics = status_get("/metrics")
        assert code == 200 and b"snirelay_" in metrics

        # ExecReload, line by line: the test, then the signal.
        for line in unit_values("ExecReload"):
            argv = shlex.split(line.replace("$MAINPID", str(p.pid)))
            run(*(_as_user(argv, user) if argv[0].endswith("snirelay") else argv))
        assert notify.recv()["RELOADING"] == "1"
        assert notify.recv() == {"READY": "1", "STATUS": "serving (reloaded)"}
        util.wait_for(lambda: set(util.child_pids(p.pid)) - set(workers),
                      "the new workers")

        # logrotate moves the log and sends USR1: the next line goes to a
        # new access.log.
        state = os.path.join(tmp, "logrotate.state")
        run("logrotate", "-f", "-s", state, "/etc/logrotate.d/snirelay")
        assert os.path.exists(ACCESS + ".1")
        util.wait_for(lambda: os.path.exists(ACCESS), "a new access.log")
        ip_literal_session()
        util.wait_for(lambda: any('sni="127.0.0.1"' in l for l in access_lines()),
                      "a line in the reopened access.log")

        p.send_signal(getattr(signal, unit_values("KillSignal")[0]))
        assert notify.recv() == {"STOPPING": "1"}
        assert p.wait(timeout=90) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        err.close()
        with open(os.path.join(tmp, "stderr"), "rb") as f:
            sys.stderr.write(f.read().decode(errors="replace")[-3000:])
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree("/run/snirelay", ignore_errors=True)


def test_purge_leaves_nothing(installed):
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run("dpkg", "-r", "snirelay", env=env)
    assert not os.path.exists("/usr/sbin/snirelay")
    assert os.path.exists(CONF), "remove keeps the conffile"
    run("dpkg", "-P", "snirelay", env=env)
    for f in ("/usr/sbin/snirelay", "/etc/snirelay", UNIT,
              "/etc/logrotate.d/snirelay", "/var/log/snirelay"):
        assert not os.path.exists(f), f
    assert "snirelay" not in run("dpkg-query", "-W", "-f=${Package}\\n",
                                 check=False).split()

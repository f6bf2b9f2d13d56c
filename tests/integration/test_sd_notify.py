"""The built-in sd_notify (systemd Type=notify): with $NOTIFY_SOCKET set,
the master sends READY=1 once its listeners accept, RELOADING=1 and then
READY=1 around each reload (a refused one too), and STOPPING=1 on a stop
signal; to a real unix datagram socket, named by a path or (with '@') in
the abstract namespace. With a socket that is not there a warning is
logged and snirelay serves all the same."""

import os
import re
import signal
import socket

import pytest

import util

CONF = r"""
    server {
        listen 127.0.0.1:@L@;
        return "hi\n";
    }
"""


class Manager:
    """The service manager's end: a bound unix datagram socket."""

    def __init__(self, workdir, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = "snirelay-test-%d-%d" % (os.getpid(), id(self))
            self.sock.bind("\0" + name)
            self.env = "@" + name
        else:
            path = os.path.join(workdir, "notify.sock")
            self.sock.bind(path)
            self.env = path
        self.sock.settimeout(util.DEADLINE)

    def recv(self):
        """The next message as {KEY: VALUE}."""
        data = self.sock.recv(4096).decode()
        return dict(l.split("=", 1) for l in data.split("\n") if l)

    def close(self):
        self.sock.close()


@pytest.fixture
def manager(workdir):
    made = []

    def make(abstract=False):
        m = Manager(workdir, abstract)
        made.append(m)
        return m

    yield make
    for m in made:
        m.close()


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_ready_reloading_stopping(master, port, manager, abstract):
    mgr = manager(abstract)
    m = master(CONF, L=port(), start=False)
    m.env = {"NOTIFY_SOCKET": mgr.env}
    m.start(wait=False)
    ready = mgr.recv()
    assert ready["READY"] == "1"
    assert ready["MAINPID"] == str(m.pid)
    # READY=1 means serving: the listener takes a session at once.
    s = util.connect(m.listen_ports[0])
    assert util.recv_all(s) == b"hi\n"
    s.close()

    m.reload()
    reloading = mgr.recv()
    assert reloading["RELOADING"] == "1"
    assert int(reloading["MONOTONIC_USEC"]) > 0
    after = mgr.recv()
    assert after["READY"] == "1" and after["STATUS"] == "serving (reloaded)"

    # A refused reload: RELOADING, then READY with the reason.
    m.write_conf(m.text.replace("return", "retrun"))
    m.send_signal(signal.SIGHUP)
    assert mgr.recv()["RELOADING"] == "1"
    failed = mgr.recv()
    assert failed["READY"] == "1"
    assert failed["STATUS"].startswith("reload failed")
    m.allow_log = [r"unknown directive", r"reload failed"]

    m.send_signal(signal.SIGQUIT)
    assert mgr.recv() == {"STOPPING": "1"}
    m.expect_exit = True
    assert m.proc.wait(timeout=util.DEADLINE) == 0


def test_missing_socket_is_warned_and_serving_goes_on(master, port, workdir):
    path = os.path.join(workdir, "no-such.sock")
    m = master(CONF, L=port(), start=False)
    m.env = {"NOTIFY_SOCKET": path}
    m.start()
    m.wait_error(re.escape('[warn]') + r".*" +
                 re.escape('sd_notify to "%s" failed (2: No such file or '
                           'directory)' % path))
    s = util.connect(m.listen_ports[0])
    assert util.recv_all(s) == b"hi\n"
    s.close()

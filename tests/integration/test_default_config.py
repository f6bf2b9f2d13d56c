"""`make run`'s embedded default config (conf/default.conf compiled in):
without -c, snirelay listens on 127.0.0.1:4443 and forwards to 8443."""
import os
import signal
import socket
import subprocess

import pytest

import hello
import util


def _free(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def test_embedded_default_config_serves(snirelay_bin, workdir):
    if not (_free(4443) and _free(8443)):
        pytest.skip("ports 4443/8443 are taken on this machine")
    backend = util.Backend(util.record_to_eof(), "default", port=8443)
    out = open(os.path.join(workdir, "stdout"), "wb")
    err = open(os.path.join(workdir, "stderr"), "wb")
    p = subprocess.Popen([snirelay_bin], stdout=out, stderr=err, cwd=workdir)
    try:
        util.wait_for(lambda: util.port_listening(4443) or p.poll() is not None,
                      "snirelay to listen on 4443")
        assert p.poll() is None, open(os.path.join(workdir, "stderr")).read()
        data = hello.records(hello.build_client_hello(server_name="x.test"))
        s = util.connect(4443)
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        backend.wait_conns(1)
        util.wait_for(lambda: backend.conns[0].get("data") == data,
                      "the hello at the backend")
        s.close()
        # The access log goes to stdout, one line per session.
        util.wait_for(lambda: b'sni="x.test"' in open(
            os.path.join(workdir, "stdout"), "rb").read(), "the access-log line")
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=10) == 0
        out.close()
        err.close()
        backend.stop()

"""`make run`'s embedded default config (conf/default.conf compiled in): a
local forwarder on 127.0.0.1:4443 that sends each TLS stream to the name in
its SNI, port 443, through `resolver system;`, the guards on.

The binary is run exactly as `make run` runs it (no -c) only where that
resolves nothing: IP-literal and missing names are refused before any
lookup. What needs a lookup runs the embedded config itself, printed by
`-T`, with `resolver system;` pointed at a resolv.conf of the test's own
(naming its dnsmasq) and the ports moved: no query ever reaches the
machine's resolver."""
import os
import re
import signal
import socket
import subprocess

import pytest

import dns
import hello
import util


def _embedded_text(snirelay_bin):
    """The embedded config, as `snirelay -T` prints it."""
    p = subprocess.run([snirelay_bin, "-T"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30, check=True)
    head, text = p.stdout.decode().split("\n", 1)
    assert head == "# configuration file <embedded default config>:"
    return text


def _sub(text, old, new):
    """text with old replaced by new; old must be there (the default
    config changed under this test otherwise)."""
    assert old in text, "the default config no longer has %r" % old
    return text.replace(old, new)


class _Run:
    """snirelay with stdout (the access log) and stderr in files."""

    def __init__(self, argv, workdir):
        self.dir = workdir
        self.out = open(os.path.join(workdir, "stdout"), "wb")
        self.err = open(os.path.join(workdir, "stderr"), "wb")
        self.p = subprocess.Popen(argv, stdout=self.out, stderr=self.err,
                                  stdin=subprocess.DEVNULL, cwd=workdir)

    def text(self, name):
        with open(os.path.join(self.dir, name), "rb") as f:
            return f.read().decode(errors="replace")

    def wait_listening(self, port):
        util.wait_for(lambda: util.port_listening(port) or
                      self.p.poll() is not None, "snirelay to listen on %d" % port)
        assert self.p.poll() is None, self.text("stderr")

    def access(self, n):
        util.wait_for(lambda: len(self.text("stdout").splitlines()) >= n,
                      "%d access-log line(s)" % n)
        return self.text("stdout").splitlines()

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        rc = self.p.wait(timeout=10)
        self.out.close()
        self.err.close()
        assert rc == 0, self.text("stderr")


def _refused_at_once(port, sni):
    data = hello.records(hello.build_client_hello(server_name=sni))
    s = util.connect(port)
    s.sendall(data)
    assert util.recv_all(s) == b""
    s.close()


def test_embedded_default_config_serves_as_make_run_starts_it(snirelay_bin,
                                                              workdir):
    if not util.port_bindable(4443) or not util.port_bindable(8080):
        pytest.skip("port 4443 or 8080 is taken on this machine")
    r = _Run([snirelay_bin], workdir)
    try:
        r.wait_listening(4443)
        # Refused before any lookup: an IP literal (the guard) and no SNI.
        _refused_at_once(4443, "127.0.0.1")
        _refused_at_once(4443, None)
        lines = r.access(2)
        assert 'TCP 403 ' in lines[0] and 'sni="127.0.0.1" preread=ok' in lines[0]
        assert 'sni="" preread=no_sni' in lines[1]
        err = r.text("stderr")
        assert ('the client-supplied value "127.0.0.1:443" is an address, '
                'not a name') in err
        assert "could not be resolved" not in err
        # The status listener answers too (what `make run` prints).
        r.wait_listening(8080)
        s = util.connect(8080)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        reply = util.recv_all(s)
        s.close()
        assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
        assert reply.endswith(b"\r\n\r\nok\n")
    finally:
        r.stop()


def _dumped(snirelay_bin, workdir, resolv_conf, L, P, allow_loopback):
    text = _embedded_text(snirelay_bin)
    text = _sub(text, "resolver system;", "resolver system=%s;" % resolv_conf)
    text = _sub(text, "listen 127.0.0.1:4443;", "listen 127.0.0.1:%d;" % L)
    text = _sub(text, "proxy_pass $ssl_preread_server_name:443;",
                "proxy_pass $ssl_preread_server_name:%d;" % P)
    if allow_loopback:
        text = _sub(text, "ssl_preread on;",
                    "ssl_preread on; proxy_target_allow 127.0.0.0/8;")
    # The status server, when there is one, moves to a free port too.
    text = re.sub(r"listen 127\.0\.0\.1:8080;",
                  lambda m: "listen 127.0.0.1:%d;" % util.free_port(), text)
    path = os.path.join(workdir, "default.conf")
    with open(path, "w") as f:
        f.write(text)
    return path


def test_default_config_forwards_each_sni_to_its_name(snirelay_bin, workdir,
                                                      system_dnsmasq,
                                                      same_port_backends):
    """The embedded config, its resolver pointed at the test's dnsmasq and
    port 443 moved to the backends': each name reaches its own backend
    (proxy_target_allow added, since the backends are on loopback)."""
    P, bk = same_port_backends(["127.0.0.21", "127.0.0.22"],
                               lambda h: util.record_to_eof())
    d, rc_path = system_dnsmasq({"a.test": "127.0.0.21",
                                 "b.test": "127.0.0.22"}, ttl=60)
    L = util.free_port()
    r = _Run([snirelay_bin, "-c",
              _dumped(snirelay_bin, workdir, rc_path, L, P, True)], workdir)
    try:
        r.wait_listening(L)
        for i, (name, host) in enumerate((("a.test", "127.0.0.21"),
                                          ("b.test", "127.0.0.22")), 1):
            s, data = dns.send_hello(L, name)
            s.shutdown(socket.SHUT_WR)
            bk[host].wait_conns(1)
            util.wait_for(lambda: bk[host].conns[0].get("data") == data,
                          "the hello at " + host)
            s.close()
            line = r.access(i)[i - 1]
            assert 'sni="%s"' % name in line
            assert "upstream=%s:%d" % (host, P) in line
        assert d.count("a.test") == 1 and d.count("b.test") == 1
    finally:
        r.stop()


def test_default_config_refuses_a_name_resolving_to_loopback(
        snirelay_bin, workdir, system_dnsmasq, same_port_backends):
    """As it is (no proxy_target_allow), the SSRF guard refuses a name that
    resolves to 127.0.0.21: nothing reaches the backend there."""
    P, bk = same_port_backends(["127.0.0.21"], lambda h: util.record_to_eof())
    d, rc_path = system_dnsmasq({"inside.test": "127.0.0.21"}, ttl=60)
    L = util.free_port()
    r = _Run([snirelay_bin, "-c",
              _dumped(snirelay_bin, workdir, rc_path, L, P, False)], workdir)
    try:
        r.wait_listening(L)
        _refused_at_once(L, "inside.test")
        line = r.access(1)[0]
        assert " 403 " in line and 'sni="inside.test"' in line
        assert d.count("inside.test") == 1
        assert bk["127.0.0.21"].accepted == 0
    finally:
        r.stop()

"""Hostile bytes from the network close that one session with a log line;
every other session is untouched; nothing crashes, leaks or spins."""
import hashlib
import os
import random
import socket
import struct
import threading

import hello
import util


def _hostile_inputs(rng):
    """Garbage, and ClientHellos broken in the ways parsers get wrong."""
    good = hello.build_client_hello(server_name="good.test", alpn=[b"h2"])
    yield b"\x00" * 100
    yield b"x" * 1000
    yield b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    yield b"\x16\x03\x01\xff\xff" + b"\x01" * 64           # record > 16384
    yield b"\x16\x03\x01\x00\x00"                          # empty record
    yield b"\x80\x2e\x01\x03\x01" + b"\x00" * 45           # SSLv2 hello
    yield hello.records(good)[:-7]                         # truncated, then FIN
    for _ in range(40):
        rec = bytearray(hello.records(good))
        for _ in range(rng.randint(1, 6)):
            rec[rng.randrange(len(rec))] = rng.randrange(256)
        yield bytes(rec)
    for _ in range(20):
        yield bytes(rng.randrange(256) for _ in range(rng.randint(1, 600)))


def test_hostile_sessions_do_not_disturb_a_live_one(relay, port):
    echo_backend = util.Backend(util.reply_after(1 << 20, "echo", hold=True), "echo")
    sink = util.Backend(util.record_to_eof(), "sink")
    r = relay(r"""
        map $ssl_preread_server_name $t {
            hostnames;
            live.test 127.0.0.1:@E@;
            default   127.0.0.1:@S@;
        }
        server {
            listen 127.0.0.1:@L@;
            ssl_preread on;
            preread_timeout 3s;
            proxy_pass $t;
        }
    """, L=port(), E=echo_backend.port, S=sink.port)
    L = r.listen_ports[0]
    try:
        # A live session, started before the attack and finished after it.
        live = util.connect(L)
        live.sendall(hello.records(hello.build_client_hello(server_name="live.test")))
        payload = os.urandom((1 << 20) - len(hello.records(
            hello.build_client_hello(server_name="live.test"))))
        live.sendall(payload[:1000])

        rng = random.Random(1234)
        inputs = list(_hostile_inputs(rng))
        errors = []

        def attack(data):
            try:
                s = util.connect(L)
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
                util.recv_all(s)
                s.close()
            except OSError as e:
                errors.append(e)

        threads = [threading.Thread(target=attack, args=(d,)) for d in inputs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(util.DEADLINE)
        assert not errors, errors

        # One access-log line per hostile session, each closed.
        lines = r.wait_access(len(inputs))
        assert len(lines) == len(inputs)
        assert r.proc.poll() is None, "snirelay died"

        # The live session is intact.
        live.sendall(payload[1000:])
        live.shutdown(socket.SHUT_WR)
        want = hashlib.sha256(hello.records(hello.build_client_hello(
            server_name="live.test")) + payload).hexdigest()
        reply = util.recv_all(live, limit=200)
        live.close()
        assert reply == ("echo %s\n" % want).encode()
        # Nothing left open at the proxy's listen port.
        util.wait_proxy_closed_all(L)
    finally:
        echo_backend.stop()
        sink.stop()


def test_cpu_stays_idle_with_half_open_hostile_clients(relay, port):
    """Clients that send a partial hello and go quiet cost no CPU."""
    sink = util.Backend(util.record_to_eof(), "sink")
    r = relay(r"""
        server {
            listen 127.0.0.1:@L@;
            ssl_preread on;
            preread_timeout 30s;
            proxy_pass 127.0.0.1:@S@;
        }
    """, L=port(), S=sink.port)
    L = r.listen_ports[0]
    socks = []
    try:
        partial = hello.records(hello.build_client_hello(server_name="x.test"))[:20]
        for _ in range(50):
            s = util.connect(L)
            s.sendall(partial)
            socks.append(s)
        # An RST from some of them while the others wait.
        for s in socks[:10]:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        util.wait_for(lambda: len(r.access_lines()) >= 10, "the reset sessions logged")

        def cpu_ticks():
            with open("/proc/%d/stat" % r.pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return int(fields[11]) + int(fields[12])   # utime + stime

        before = cpu_ticks()
        # Wait on a condition that takes a while: a backend connection that
        # never comes (the sessions are still prereading).
        try:
            util.wait_for(lambda: sink.accepted > 0, "no upstream", timeout=1.0)
        except util.WaitTimeout:
            pass
        used = cpu_ticks() - before
        # 1 s of wall time; a spinning loop would burn ~100 ticks.
        assert used < 20, "snirelay used %d ticks while idle" % used
    finally:
        for s in socks:
            s.close()
        sink.stop()

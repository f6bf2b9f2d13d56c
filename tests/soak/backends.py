"""The soak's backends, run as their own process (`python3 backends.py`).

A separate process, so that the backends do not share the load generator's
interpreter lock. It binds every server on 127.0.0.1 (kernel-chosen ports),
prints one JSON line {"name": port, ...} when all listen, and exits when its
stdin closes (the driver's end of the pipe) or its parent dies.

Protocols (the client speaks first; "hello" is one TLS record holding a
ClientHello, sent by the client so that snirelay can route it):

  echo1, echo2  every byte back, the hello included, until the client's EOF
  sink          hello, then bytes until EOF; replies "SHA256HEX COUNT\\n"
                (what it received), then closes
  source        hello, then 16 bytes: size (u64, network order) and 8
                unused; sends `size` random bytes and then the 64-char hex
                sha256 of them, then closes
  tls           a TLS server (certificate for *.tls.test): echo until EOF
  web           an HTTP/1.1 request head; replies 200 with the hex sha256 of
                the head as the body, Connection: close

One thread per connection; a connection's errors are counted, not raised
(clients are killed, reset and cut off on purpose).
"""

import argparse
import hashlib
import json
import os
import signal
import socket
import ssl
import struct
import sys
import threading

TIMEOUT = 120.0          # per socket operation: a stuck proxy shows as a client error
CHUNK = 65536
HEAD_MAX = 65536


def _recv_exact(conn, n):
    chunks = []
    while n > 0:
        b = conn.recv(min(n, CHUNK))
        if not b:
            raise EOFError("EOF with %d bytes to go" % n)
        chunks.append(b)
        n -= len(b)
    return b"".join(chunks)


def _skip_hello(conn):
    """Read the client's one-record hello (5-byte header, then its length)."""
    hdr = _recv_exact(conn, 5)
    if hdr[0] != 0x16:
        raise ValueError("not a handshake record: %r" % hdr)
    _recv_exact(conn, struct.unpack("!H", hdr[3:5])[0])


def echo(conn):
    while True:
        b = conn.recv(CHUNK)
        if not b:
            break
        conn.sendall(b)
    conn.shutdown(socket.SHUT_WR)


def sink(conn):
    _skip_hello(conn)
    h = hashlib.sha256()
    n = 0
    while True:
        b = conn.recv(CHUNK)
        if not b:
            break
        h.update(b)
        n += len(b)
    conn.sendall(("%s %d\n" % (h.hexdigest(), n)).encode())


def source(conn):
    _skip_hello(conn)
    size = struct.unpack("!Q", _recv_exact(conn, 16)[:8])[0]
    h = hashlib.sha256()
    left = size
    while left > 0:
        b = os.urandom(min(CHUNK, left))
        h.update(b)
        conn.sendall(b)
        left -= len(b)
    conn.sendall(h.hexdigest().encode())


def tls_echo(conn):
    while True:
        try:
            b = conn.recv(CHUNK)
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
            break
        if not b:
            break
        conn.sendall(b)


def web(conn):
    head = b""
    while b"\r\n\r\n" not in head:
        b = conn.recv(CHUNK)
        if not b:
            raise EOFError("EOF inside the request head")
        head += b
        if len(head) > HEAD_MAX:
            raise ValueError("request head over %d bytes" % HEAD_MAX)
    body = hashlib.sha256(head).hexdigest().encode()
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
                 b"Connection: close\r\n\r\n" % len(body) + body)


class Server:
    def __init__(self, name, handler, ssl_context=None):
        self.name = name
        self.handler = handler
        self.ssl_context = ssl_context
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.served = 0
        self.errors = 0
        threading.Thread(target=self._accept, daemon=True, name=name).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        ok = False
        try:
            conn.settimeout(TIMEOUT)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.ssl_context is not None:
                conn = self.ssl_context.wrap_socket(conn, server_side=True)
            self.handler(conn)
            ok = True
        except Exception:
            pass   # counted below; the driver decides what a client error means
        finally:
            try:
                conn.close()
            except OSError:
                pass
            with self.lock:
                self.served += 1
                self.errors += 0 if ok else 1


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    args = ap.parse_args(argv)

    signal.signal(signal.SIGINT, signal.SIG_IGN)     # the driver stops us
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    servers = [Server("echo1", echo), Server("echo2", echo), Server("sink", sink),
               Server("source", source), Server("tls", tls_echo, ctx),
               Server("web", web)]
    print(json.dumps({s.name: s.port for s in servers}), flush=True)
    # Until the driver closes our stdin; then report what was served.
    for line in sys.stdin:
        if line.strip() == "stats":
            print(json.dumps({s.name: [s.served, s.errors] for s in servers}),
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

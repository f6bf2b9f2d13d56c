"""split_clients {}: buckets by MurmurHash2 through the real binary.

The key is a template over the client's loopback address, so each client
(bound to 127.0.0.N) has a fixed bucket; the expected bucket is computed
here by an independent MurmurHash2 and nginx's bound arithmetic.  Bad
configs get nginx's texts with file:line.
"""

import os
import socket
import subprocess

import pytest

import util


def murmur2(data):
    """MurmurHash2, seed 0, as nginx's ngx_murmur_hash2()."""
    m = 0x5bd1e995
    mask = 0xffffffff
    n = len(data)
    h = n & mask
    i = 0
    while n - i >= 4:
        k = data[i] | data[i + 1] << 8 | data[i + 2] << 16 | data[i + 3] << 24
        k = (k * m) & mask
        k ^= k >> 24
        k = (k * m) & mask
        h = (h * m) & mask
        h ^= k
        i += 4
    rest = n - i
    if rest == 3:
        h ^= data[i + 2] << 16
    if rest >= 2:
        h ^= data[i + 1] << 8
    if rest >= 1:
        h ^= data[i]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h


def bucket(key, parts):
    """parts: [(hundredths or 0 for '*', value)]; '' when none matches."""
    h = murmur2(key.encode())
    last = 0
    for pct, value in parts:
        if pct == 0:
            return value
        last = (last + pct * 0xffffffff // 10000) & 0xffffffff
        if h < last:
            return value
    return ""


def _named(name):
    def handler(conn, info):
        conn.sendall(name.encode())
    return handler


def _ask(port, src):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(util.DEADLINE)
    try:
        s.bind((src, 0))
        s.connect(("127.0.0.1", port))
        return util.recv_all(s)
    finally:
        s.close()


CLIENTS = ["127.0.0.%d" % i for i in range(1, 31)]


def test_python_murmur2_matches_known_nginx_distribution():
    # nginx-tests stream_split_clients.t: keys "1".."20" (its $connection)
    # split 51.2% / 10% / * give 12 / 2 / 6.
    parts = [(5120, "first"), (1000, "second"), (0, "third")]
    got = [bucket(str(i), parts) for i in range(1, 21)]
    assert (got.count("first"), got.count("second"), got.count("third")) == \
        (12, 2, 6)


def test_split_clients_bucket_of_each_client(relay, backend, port):
    B = backend(_named("B"), name="B")
    L = port()
    r = relay(r"""
    split_clients "${remote_addr}-ab" $variant {
        33.3%   first;
        20%     second;
        0.5%    third;
        *       rest;
    }
    split_clients "$remote_addr" $partial {
        25.25%  quarter;
        .5%     half-percent;
    }
    server {
        listen 127.0.0.1:@L@;
        proxy_pass 127.0.0.1:@B@;
    }
""", B=B.port, L=L, log_format="$remote_addr|$variant|$partial")
    for i, src in enumerate(CLIENTS):
        _ask(L, src)
        r.wait_access(i + 1)
    rows = [l.split("|") for l in r.wait_access(len(CLIENTS))]
    parts = [(3330, "first"), (2000, "second"), (50, "third"), (0, "rest")]
    partial = [(2525, "quarter"), (50, "half-percent")]
    want = [[src, bucket(src + "-ab", parts), bucket(src, partial)]
            for src in CLIENTS]
    # The key choice must make the test able to fail: several buckets,
    # and clients in no bucket of the partial split (the empty value).
    assert len({w[1] for w in want}) >= 3
    assert any(w[2] == "" for w in want) and any(w[2] for w in want)
    assert rows == want


def test_split_clients_routes_to_the_bucket_backend(relay, backend, port):
    A = backend(_named("A"), name="A")
    B = backend(_named("B"), name="B")
    L = port()
    relay(r"""
    split_clients $remote_addr $to {
        50%  127.0.0.1:@A@;
        *    127.0.0.1:@B@;
    }
    server {
        listen 127.0.0.1:@L@;
        proxy_pass $to;
    }
""", A=A.port, B=B.port, L=L)
    parts = [(5000, "A"), (0, "B")]
    want = [bucket(src, parts) for src in CLIENTS[:12]]
    assert set(want) == {"A", "B"}
    got = [_ask(L, src).decode() for src in CLIENTS[:12]]
    assert got == want
    # The same client always lands in the same bucket.
    assert _ask(L, CLIENTS[0]).decode() == want[0]


def _check(snirelay_bin, workdir, stream_lines):
    lines = ([
        "pid %s/snirelay.pid;" % workdir,
        "error_log %s/error.log;" % workdir,
        "events { }",
        "stream {",
    ] + ["    " + l for l in stream_lines] + [
        "    server {",
        "        listen 127.0.0.1:%d;" % util.free_port(),
        "        proxy_pass 127.0.0.1:%d;" % util.free_port(),
        "    }",
        "}",
    ])
    path = os.path.join(workdir, "split.conf")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    p = subprocess.run([snirelay_bin, "-t", "-c", path], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=util.DEADLINE)
    return p.returncode, p.stderr.decode(errors="replace"), path, lines


@pytest.mark.parametrize("body,bad,message", [
    (["split_clients $remote_addr $v {", "    60%  a;", "    40.01%  b;", "}"],
     "40.01%", "percent total is greater than 100%"),
    (["split_clients $remote_addr $v {", "    *  a;", "    1%  b;", "}"],
     "1%  b", "percent total is greater than 100%"),
    (["split_clients $remote_addr $v {", "    10  a;", "}"], "10  a",
     'invalid percent value "10"'),
    (["split_clients $remote_addr $v {", "    0%  a;", "}"], "0%  a",
     'invalid percent value "0%"'),
    (["split_clients $remote_addr $v {", "    1.234%  a;", "}"], "1.234%",
     'invalid percent value "1.234%"'),
    (["split_clients $remote_addr $v {", "    ten%  a;", "}"], "ten%",
     'invalid percent value "ten%"'),
    (["split_clients $remote_addr $v {", "    10%  a  b;", "}"], "10%  a  b",
     "invalid number of the split_clients parameters"),
    (["split_clients $remote_addr $v {", "    10%  { }", "}"], "10%  {",
     'unexpected "{"'),
    (["split_clients $remote_addr v {", "}"], "    split_clients",
     'invalid variable name "v"'),
    (["split_clients $nosuch $v {", "}"], "    split_clients",
     'unknown "nosuch" variable'),
    (["split_clients $remote_addr {", "}"], "    split_clients",
     'invalid number of arguments in "split_clients" directive'),
])
def test_split_clients_bad_config_names_file_and_line(snirelay_bin, workdir,
                                                       body, bad, message):
    rc, err, path, lines = _check(snirelay_bin, workdir, body)
    assert rc == 1, err
    emerg = [l for l in err.splitlines() if l.startswith("snirelay: [emerg] ")]
    assert emerg, err
    line = [i + 1 for i, l in enumerate(lines) if bad in l][0]
    assert emerg[0] == "snirelay: [emerg] %s in %s:%d" % (message, path, line), err


def test_split_clients_is_not_allowed_in_server(snirelay_bin, workdir):
    rc, err, path, lines = _check(snirelay_bin, workdir, [])
    text = open(path).read().replace(
        "proxy_pass", "split_clients $remote_addr $v { * a; }\n        proxy_pass")
    with open(path, "w") as f:
        f.write(text)
    p = subprocess.run([snirelay_bin, "-t", "-c", path], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=util.DEADLINE)
    err = p.stderr.decode()
    assert p.returncode == 1, err
    assert '"split_clients" directive is not allowed here in %s:' % path in err, err


def test_split_clients_value_is_literal(relay, backend, port):
    # Values are constants, as in nginx: "$remote_addr" stays as written.
    B = backend(_named("B"), name="B")
    L = port()
    r = relay(r"""
    split_clients $remote_addr $v {
        *  "$remote_addr";
    }
    server {
        listen 127.0.0.1:@L@;
        proxy_pass 127.0.0.1:@B@;
    }
""", B=B.port, L=L, log_format="$v")
    _ask(L, "127.0.0.1")
    assert r.wait_access(1) == ["$remote_addr"]

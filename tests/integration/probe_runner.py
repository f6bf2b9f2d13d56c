# SPDX-License-Identifier: MIT
"""Outside probes: a client's attempts to make snirelay connect where it must
not, fired from a private network namespace where canaries prove what was
and was not connected.

Run by test_probes.py as `unshare -n -m --propagation private python3
probe_runner.py --bin B --dir D --out J`; it refuses to touch the network
or mount anything unless it is in fresh network and mount namespaces (not
init's; only `lo`, down).  Inside it:

  - brings `lo` up and gives a stand-in "own" interface (own0: a dummy, else
    a veth pair, else lo itself) the non-loopback addresses 192.0.2.10 and
    2001:db8::10, which snirelay finds with getifaddrs() like any address of
    the host;
  - routes every other IPv4 and IPv6 address to this host (`local` default
    routes), so a connect() to any address succeeds and lands on the
    wildcard canary listeners of ports 9000 and 9001, which record the
    address it was made to: a probe sees every connection snirelay made, to
    wherever it was made (198.51.100.20 stands for an allowed remote server;
    64:ff9b::7f00:1 would reach the canary as well as 127.0.0.1 does);
  - bind-mounts a hosts file (fixed.test = 127.0.0.23) for the one name a
    fixed proxy_pass resolves at load;
  - starts dns.SlowResolver (no delay, TTL 0) as the only DNS server, and
    snirelay on PROBE_CONF.

Each probe (PROBES below: names, Host forms, DNS answer shapes, loops, PROXY
trust, log injection) sends one client's bytes and checks what the client
saw, the access-log line, the error log, the DNS queries and the canaries:
exactly the connections expected (an allowed server, a fixed target) and no
other.  The result, one record per probe, is written as JSON to --out and as
a table to stderr.
"""

import argparse
import json
import os
import re
import select
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dns  # noqa: E402
import hello  # noqa: E402
import util  # noqa: E402

OWN4 = "192.0.2.10"
OWN6 = "2001:db8::10"
ALLOWED4 = "198.51.100.20"           # an allowed "remote" server
ALLOWED6 = "2001:db8:100::20"
POOL_A = "198.51.100.20"
POOL_B = "198.51.100.21"
FIXED_ADDR = "127.0.0.22"            # another server's `proxy_pass ADDR`
FIXED_NAME_ADDR = "127.0.0.23"       # fixed.test in the hosts file
TRUSTED_SRC = "127.0.0.3"            # set_real_ip_from
SPOOFED = "192.0.2.99"               # the address PROXY headers claim
LATE_OWN4 = "192.0.2.11"             # given to own0 while snirelay runs

CP = 9000        # the port client-chosen names are forwarded to
POOL_PORT = 9001
P_TLS = 4431     # proxy_pass $ssl_preread_server_name:9000
P_HTTP = 8080    # proxy_pass $http_preread_host:9000
P_FIXED = 4433   # proxy_pass 127.0.0.22:9000
P_FIXNAME = 4434  # proxy_pass fixed.test:9000
P_MAP = 4436     # a map regex capture into proxy_pass
P_NOPORT = 4437  # proxy_pass $ssl_preread_server_name (no port)
P_DENY = 4438    # deny_if a `map hostnames` deny-list of the SNI
P_HDENY = 8081   # deny_if a `map hostnames` deny-list of the Host
P_LOOP = 4440    # own addresses, proxy_pass $ssl_preread_server_name:4440
P_LOOPANY = 4441  # wildcard listens, proxy_pass ...:4441
P_PPGEO = 4450   # proxy_protocol, geo $remote_addr picks the upstream
P_PPACL = 4451   # proxy_protocol, allow 192.0.2.99; deny all
P_PPAUTH = 4452  # proxy_protocol, proxy_pass $proxy_protocol_tlv_authority:9000

ALLOW_NETS = "198.51.100.0/24 2001:db8:100::/64"

PROBE_CONF = r"""
pid @D@/snirelay.pid;
error_log @D@/error.log info;
events { worker_connections 1024; }
stream {
    log_format t '$remote_addr\t$server_port\t$status\t$upstream_addr\t'
                 '$ssl_preread_server_name\t$http_preread_host\t'
                 '$ssl_preread_status\t$ssl_preread_alpn_protocols\t'
                 '$proxy_protocol_addr\t$proxy_protocol_tlv_authority\t'
                 '$realip_remote_addr\t$bytes_received';
    log_format j escape=json '{"sni":"$ssl_preread_server_name",'
                 '"host":"$http_preread_host",'
                 '"alpn":"$ssl_preread_alpn_protocols",'
                 '"authority":"$proxy_protocol_tlv_authority",'
                 '"status":"$status"}';
    access_log @D@/access.log t;
    access_log @D@/access.json j;
    resolver 127.0.0.1:@DNS@;
    resolver_timeout 5s;
    preread_timeout 5s;
    proxy_connect_timeout 2s;
    proxy_protocol_timeout 5s;

    upstream pool_a { server @POOL_A@:@PP@; }
    upstream pool_b { server @POOL_B@:@PP@; }

    geo $pool {
        default pool_a;
        @SPOOFED@/32 pool_b;
    }
    map $ssl_preread_server_name $captured {
        ~^(?<h>.+)\.fwd\.test$ $h:@CP@;
    }
    map $ssl_preread_server_name $sni_denied {
        hostnames;
        default 0;
        denied.test 1;
        .denied-wild.test 1;
    }
    map $http_preread_host $host_denied {
        hostnames;
        default 0;
        denied.test 1;
        .denied-wild.test 1;
    }

    server {
        listen 127.0.0.1:@P_TLS@;
        listen [::1]:@P_TLS@;
        ssl_preread on;
        proxy_target_allow @ALLOW@;
        proxy_pass $ssl_preread_server_name:@CP@;
    }
    server {
        listen 127.0.0.1:@P_HTTP@;
        http_preread on;
        proxy_target_allow @ALLOW@;
        proxy_pass $http_preread_host:@CP@;
    }
    server {
        listen 127.0.0.1:@P_FIXED@;
        proxy_pass @FIXED_ADDR@:@CP@;
    }
    server {
        listen 127.0.0.1:@P_FIXNAME@;
        proxy_pass fixed.test:@CP@;
    }
    server {
        listen 127.0.0.1:@P_MAP@;
        ssl_preread on;
        proxy_target_allow @ALLOW@;
        proxy_pass $captured;
    }
    server {
        listen 127.0.0.1:@P_NOPORT@;
        ssl_preread on;
        proxy_target_allow @ALLOW@;
        proxy_pass $ssl_preread_server_name;
    }
    server {
        listen 127.0.0.1:@P_DENY@;
        ssl_preread on;
        deny_if $sni_denied;
        proxy_target_allow @ALLOW@;
        proxy_pass $ssl_preread_server_name:@CP@;
    }
    server {
        listen 127.0.0.1:@P_HDENY@;
        http_preread on;
        deny_if $host_denied;
        proxy_target_allow @ALLOW@;
        proxy_pass $http_preread_host:@CP@;
    }
    server {
        listen 127.0.0.1:@P_LOOP@;
        listen @OWN4@:@P_LOOP@;
        listen [::1]:@P_LOOP@;
        listen [@OWN6@]:@P_LOOP@;
        ssl_preread on;
        proxy_target_allow all;
        proxy_pass $ssl_preread_server_name:@P_LOOP@;
    }
    server {
        listen 0.0.0.0:@P_LOOPANY@;
        listen [::]:@P_LOOPANY@ ipv6only=on;
        ssl_preread on;
        proxy_target_allow all;
        proxy_pass $ssl_preread_server_name:@P_LOOPANY@;
    }
    server {
        listen 127.0.0.1:@P_PPGEO@ proxy_protocol;
        set_real_ip_from @TRUSTED@;
        proxy_pass $pool;
    }
    server {
        listen 127.0.0.1:@P_PPACL@ proxy_protocol;
        set_real_ip_from @TRUSTED@;
        allow @SPOOFED@;
        deny all;
        proxy_pass pool_b;
    }
    server {
        listen 127.0.0.1:@P_PPAUTH@ proxy_protocol;
        set_real_ip_from 127.0.0.0/8;
        proxy_target_allow @ALLOW@;
        proxy_pass $proxy_protocol_tlv_authority:@CP@;
    }
}
"""

LOG_FIELDS = ["remote_addr", "server_port", "status", "upstream_addr", "sni",
              "host", "preread", "alpn", "pp_addr", "pp_authority",
              "realip", "bytes_received"]

# DNS: every answer has TTL 0, so each session asks again.
RECORDS = {
    "allowed.test": [ALLOWED4],
    "allowed6.test": [ALLOWED6],
    "xn--bcher-kva.test": [ALLOWED4],
    "fixed.test": [ALLOWED4],          # what a client's "fixed.test" resolves to
    "127.0.0.1.nip.io": ["127.0.0.1"],
    "192.0.2.10.nip.io": [OWN4],
    "lo4.test": ["127.0.0.1"],
    "lo4b.test": ["127.0.0.2"],
    "lo6.test": ["::1"],
    "mapped-lo.test": ["::ffff:127.0.0.1"],
    "translated-lo.test": ["::ffff:0:127.0.0.1"],
    "compat-lo.test": ["::127.0.0.1"],
    "mapped-own.test": ["::ffff:" + OWN4],
    "nat64-lo.test": ["64:ff9b::7f00:1"],
    "nat64local-lo.test": ["64:ff9b:1::7f00:1"],
    "sixto4-lo.test": ["2002:7f00:1::"],
    "sixto4-own.test": ["2002:c000:20a::"],
    "teredo-lo.test": ["2001:0:4136:e378:8000:63bf:80ff:fffe"],
    "own4.test": [OWN4],
    "own6.test": [OWN6],
    "zero4.test": ["0.0.0.0"],
    "zero6.test": ["::"],
    "imds.test": ["169.254.169.254"],
    "private.test": ["10.1.2.3"],
    "ula.test": ["fd00::1"],
    "mix-a.test": [ALLOWED4, "127.0.0.1"],
    "mix-b.test": ["127.0.0.1", ALLOWED4],
    "mix-6.test": [ALLOWED4, "::1", "::ffff:127.0.0.1"],
    "all-bad.test": ["127.0.0.1", "10.0.0.1", "::1", "64:ff9b::7f00:1"],
    # the loop server (proxy_target_allow all): only the loop guard refuses
    "loop-own4.test": [OWN4],
    "loop-own6.test": [OWN6],
    "loop-mapped-own.test": ["::ffff:" + OWN4],
    "loop-translated-own.test": ["::ffff:0:" + OWN4],
    "loop-nat64-own.test": ["64:ff9b::c000:20a"],
    "loop-6to4-own.test": ["2002:c000:20a::"],
    "loop-teredo-own.test": ["2001:0:4136:e378:8000:63bf:3fff:fdf5"],
    "loop-lo.test": ["127.0.0.1"],
    "loop-lo2.test": ["127.0.0.2"],
    "loop-lo6.test": ["::1"],
    "loop-mapped-lo.test": ["::ffff:127.0.0.1"],
    "loop-zero.test": ["0.0.0.0"],
    "loop-zero6.test": ["::"],
    "loop-routed.test": [ALLOWED4],
    "loop-late.test": [LATE_OWN4],
    "denied.test": [ALLOWED4],
    "denied-wild.test": [ALLOWED4],
    "x.denied-wild.test": [ALLOWED4],
    "a.b.denied-wild.test": [ALLOWED4],
    "other.test": [ALLOWED4],
}
CNAMES = {"cname-lo.test": "lo4.test", "cname-ok.test": "allowed.test"}
STEPS = {"rebind.test": [[ALLOWED4], ["127.0.0.1"]]}


# --------------------------------------------------------------------------
# probe descriptions


class Probe:
    """One client's attempt.

    port/src:   where the client connects, and from which address;
    data:       the bytes it sends (it then waits for the proxy to close);
    status:     the $status values accepted in its access-log line;
    hits:       the canary connections expected, as "ADDR:PORT" (any other
                connection anywhere fails the probe);
    relayed:    what a hit canary must receive (default: data);
    err:        a regex the new error-log text must match;
    dns:        True: the name must have been looked up; False: no DNS
                query at all may be made;
    loop:       a forwarding-loop probe: exactly one "forwarding loop" line
                and one session;
    sni/alpn/authority: the raw bytes, checked in the escaped logs (log
                injection);
    before:     a function of the namespace's state run first (e.g. add an
                address).
    """

    def __init__(self, name, category, port, data, status, hits=(),
                 relayed=None, err=None, dns=None, loop=False, src=None,
                 sni=None, alpn=None, authority=None, note="", before=None):
        self.name = name
        self.category = category
        self.port = port
        self.data = data
        self.status = {status} if isinstance(status, str) else set(status)
        self.hits = sorted(hits)
        self.relayed = data if relayed is None else relayed
        self.err = err
        self.dns = dns
        self.loop = loop
        self.src = src
        self.sni, self.alpn, self.authority = (
            v.encode("utf-8") if isinstance(v, str) else v
            for v in (sni, alpn, authority))
        self.before = before
        self.note = note


def _hello(name, alpn=None):
    return hello.records(hello.build_client_hello(server_name=name, alpn=alpn))


def _http(target, host_lines, method=b"GET", version=b"HTTP/1.1", eol=b"\r\n"):
    head = method + b" " + target + b" " + version + eol
    for h in host_lines:
        head += h + eol
    return head + b"User-Agent: probe" + eol + eol


def _host(value, target=b"/"):
    return _http(target, [b"Host: " + value])


def _v1(src, dst, sport, dport):
    return ("PROXY TCP4 %s %s %d %d\r\n" % (src, dst, sport, dport)).encode()


V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def _v2(src, dst, sport, dport, tlvs=b""):
    body = (socket.inet_aton(src) + socket.inet_aton(dst)
            + struct.pack("!HH", sport, dport) + tlvs)
    return V2_SIG + b"\x21\x11" + struct.pack("!H", len(body)) + body


def _authority(value):
    return b"\x02" + struct.pack("!H", len(value)) + value


A = "%s:%d" % (ALLOWED4, CP)
REFUSED = "403"
COLON_ERR = r'has a ":" where only a name may be'
LITERAL_ERR = r"is an address, not a name|never resolved|no host in upstream|" + COLON_ERR
INVALID_ERR = r"invalid host name in|no host in upstream|" + LITERAL_ERR


def _names():
    """Look-alike names in an SNI (server P_TLS) and a Host (P_HTTP)."""
    out = []
    literals = [
        "127.0.0.1", "127.0.0.1.", "127.1", "127.0.1", "2130706433",
        "017700000001", "0177.0.0.1", "0x7f.1", "0x7f000001", "0X7F.0.0.1",
        "127.000.000.001", "0", "0.0.0.0", "0x0", OWN4, ALLOWED4,
        "::1", "[::1]", "::ffff:127.0.0.1", "[::ffff:7f00:1]", "::ffff:" + OWN4,
        "64:ff9b::7f00:1", "fe80::1%lo", "[fe80::1%25lo]", "::1%1",
        "[::1]:9000",
    ]
    for i, n in enumerate(literals):
        out.append(Probe("sni-literal-%02d" % i, "names", P_TLS, _hello(n), REFUSED,
                         err=LITERAL_ERR + "|invalid host name", dns=False, sni=n,
                         note=n))
    invalid = [
        "localhost", "LOCALHOST", "localhost.", "a.localhost", "127.0.0.1:9001",
        "allowed.test:9001", "%31%32%37.0.0.1", "allowed.test%00",
        "allowed.test\x00.evil.test", "allowed..test", ".allowed.test",
        "allowed.test..", "*.test", "allowed.test/x", "allowed.test@127.0.0.1",
        "b\xfccher.test", "\uff11\uff12\uff17.\uff10.\uff10.\uff11",
        "a" * 64 + ".test", ("a" * 62 + ".") * 4 + "test", "allowed.test ",
        " allowed.test", "allowed.test\t", "-allowed.test", "1-2.3",
    ]
    for i, n in enumerate(invalid):
        raw = n.encode("utf-8")
        out.append(Probe("sni-invalid-%02d" % i, "names", P_TLS, _hello(raw), REFUSED,
                         err=INVALID_ERR, dns=False, note=repr(n),
                         sni=raw if len(raw) <= 255 else None))
    out += [
        Probe("sni-no-sni", "names", P_TLS, _hello(None), REFUSED,
              err="no host in upstream", dns=False),
        Probe("sni-allowed", "names", P_TLS, _hello("allowed.test"), "200",
              hits=[A], dns=True, note="control: an allowed name is forwarded"),
        Probe("sni-allowed-v6", "names", P_TLS, _hello("allowed6.test"), "200",
              hits=["[%s]:%d" % (ALLOWED6, CP)], dns=True),
        Probe("sni-upper", "names", P_TLS, _hello("ALLOWED.TEST"), "200", hits=[A]),
        Probe("sni-trailing-dot", "names", P_TLS, _hello("allowed.test."), "200",
              hits=[A]),
        Probe("sni-punycode", "names", P_TLS, _hello("xn--bcher-kva.test"), "200",
              hits=[A]),
        Probe("sni-nip-loopback", "names", P_TLS, _hello("127.0.0.1.nip.io"), REFUSED,
              err=r"127\.0\.0\.1\.nip\.io resolved to 127\.0\.0\.1:9000, a loopback "
                  r"address: denied", dns=True),
        Probe("sni-nip-own", "names", P_TLS, _hello("192.0.2.10.nip.io"), REFUSED,
              err=r"resolved to 192\.0\.2\.10:9000, a documentation address", dns=True),
        Probe("sni-nip-upper-dot", "names", P_TLS, _hello("127.0.0.1.NIP.IO."),
              REFUSED, err=r"a loopback address: denied", dns=True),
        # Issue 8: a fixed `proxy_pass 127.0.0.22:9000` elsewhere makes an
        # implicit upstream "127.0.0.22:9000" a client must not name.
        Probe("sni-fixed-addr", "names", P_TLS, _hello(FIXED_ADDR), REFUSED,
              err=LITERAL_ERR, dns=False),
        Probe("sni-fixed-name", "names", P_TLS, _hello("fixed.test"), "200",
              hits=[A], dns=True,
              note="implicit upstream fixed.test:9000 (127.0.0.23) not used"),
        Probe("map-capture-fixed-addr", "names", P_MAP, _hello(FIXED_ADDR + ".fwd.test"),
              REFUSED, err=LITERAL_ERR, dns=False),
        Probe("map-capture-literal", "names", P_MAP, _hello("2130706433.fwd.test"),
              REFUSED, err=LITERAL_ERR, dns=False),
        Probe("map-capture-fixed-name", "names", P_MAP, _hello("fixed.test.fwd.test"),
              "200", hits=[A], dns=True),
        Probe("map-capture-port", "names", P_MAP, _hello("allowed.test:9001.fwd.test"),
              REFUSED, err=INVALID_ERR, dns=False),
        Probe("noport-allowed", "names", P_NOPORT, _hello("allowed.test"), "500",
              err="no port in upstream", dns=False),
        # Found by this suite: the client chose the port.
        Probe("noport-client-port", "names", P_NOPORT, _hello("allowed.test:9001"),
              REFUSED, err=COLON_ERR, dns=False,
              note="a client never chooses the port"),
        Probe("noport-client-port-lo", "names", P_NOPORT, _hello("lo4.test:9001"),
              REFUSED, err=COLON_ERR, dns=False),
        Probe("noport-fixed-implicit", "names", P_NOPORT,
              _hello("%s:%d" % (FIXED_ADDR, CP)), REFUSED, err=LITERAL_ERR, dns=False),
        Probe("noport-fixed-name-implicit", "names", P_NOPORT,
              _hello("fixed.test:%d" % CP), REFUSED, err=COLON_ERR, dns=False,
              note="equal to the implicit upstream of `proxy_pass fixed.test:9000`"),
        Probe("noport-unix", "names", P_NOPORT, _hello("unix:/tmp/x"), REFUSED,
              err="names a unix-domain socket", dns=False),
        Probe("control-fixed-addr", "names", P_FIXED, b"fixed\n", "200",
              hits=["%s:%d" % (FIXED_ADDR, CP)],
              note="control: the canary sees the fixed target"),
        Probe("control-fixed-name", "names", P_FIXNAME, b"fixed\n", "200",
              hits=["%s:%d" % (FIXED_NAME_ADDR, CP)],
              note="control: fixed.test from the hosts file at load"),
    ]
    return out


def _hosts():
    """Host header and request-target forms (server P_HTTP)."""
    H = P_HTTP
    out = []
    bad_hosts = [
        b"127.0.0.1", b"127.0.0.1:9000", b"127.0.0.1.", b"2130706433", b"0x7f.1",
        b"0177.0.0.1", b"[::1]", b"[::1]:80", b"[::ffff:127.0.0.1]",
        b"[::ffff:7f00:1]:9000", b"::1", b"[fe80::1%25lo]", b"0.0.0.0", b"0",
        FIXED_ADDR.encode(), FIXED_ADDR.encode() + b":9000",
        b"localhost", b"LocalHost:80", b"%31%32%37.0.0.1", b"allowed.test@127.0.0.1",
        b"allowed.test%2f", b"b\xc3\xbccher.test", b"allowed..test", b"allowed.test..",
        b"*.test", b"a" * 64 + b".test", b"",
    ]
    for i, v in enumerate(bad_hosts):
        out.append(Probe("host-bad-%02d" % i, "host", H, _host(v), REFUSED,
                         dns=False, note=repr(v)))
    bad_heads = [
        # duplicate Host, even when equal (RFC 9112 §3.2: 400)
        _http(b"/", [b"Host: allowed.test", b"Host: 127.0.0.1"]),
        _http(b"/", [b"Host: allowed.test", b"Host: allowed.test"]),
        _http(b"/", [b"Host: 127.0.0.1", b"host: allowed.test"]),
        # whitespace, NUL, CR, obs-fold, space before the colon
        _http(b"/", [b"Host: allowed.test 127.0.0.1"]),
        _http(b"/", [b"Host: allowed.test\x00.evil.test"]),
        _http(b"/", [b"Host: allowed.test\rX: 1"]),
        _http(b"/", [b"Host: allowed.test", b" 127.0.0.1"]),
        _http(b"/", [b"Host : allowed.test"]),
        _http(b"/", [b"Host:\x0ballowed.test"]),
        # absolute-form: the target's authority is the host (RFC 9112 §3.2.2)
        _http(b"http://127.0.0.22/", [b"Host: allowed.test"]),
        _http(b"http://127.0.0.22:9000/", [b"Host: 127.0.0.22:9000"]),
        _http(b"http://127.0.0.1.nip.io/", [b"Host: 127.0.0.1.nip.io"]),
        _http(b"http://allowed.test@127.0.0.1/", [b"Host: 127.0.0.1"]),
        _http(b"http://127.0.0.1/", [b"Host: allowed.test"]),
        _http(b"http://allowed.test/", [b"Host: 127.0.0.1"]),
        _http(b"http://[::1]/", [b"Host: [::1]"]),
        _http(b"http://2130706433/", []),
        # CONNECT: the authority-form target is not a route
        _http(b"127.0.0.1:9000", [], method=b"CONNECT"),
        _http(b"127.0.0.1:9000", [b"Host: 127.0.0.1:9000"], method=b"CONNECT"),
        # no Host
        _http(b"/", [], version=b"HTTP/1.0"),
        _http(b"/", [b"X-Host: allowed.test", b"Hostx: allowed.test"]),
        # not HTTP, or HTTP/2 preface
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    ]
    for i, d in enumerate(bad_heads):
        nip = b"nip.io" in d
        out.append(Probe("host-head-%02d" % i, "host", H, d, REFUSED, dns=nip or False,
                         err="a loopback address: denied" if nip else None,
                         note=repr(d[:60])))
    good = [
        ("host-allowed", _host(b"allowed.test")),
        ("host-upper-dot-port", _host(b"ALLOWED.TEST.:8080")),
        ("host-ows", _http(b"/", [b"Host: \t allowed.test \t"])),
        ("host-lf-only", _http(b"/", [b"Host: allowed.test"], eol=b"\n")),
        ("host-punycode", _host(b"xn--bcher-kva.test")),
        ("host-absolute-form", _http(b"http://allowed.test:1234/x", [b"Host: allowed.test"])),
        ("host-connect-port-ignored",
         _http(b"allowed.test:9001", [b"Host: allowed.test:9001"], method=b"CONNECT")),
        ("host-fixed-name", _host(b"fixed.test")),
    ]
    for name, d in good:
        out.append(Probe(name, "host", H, d, "200", hits=[A], dns=True))
    out.append(Probe("host-nip-loopback", "host", H, _host(b"127.0.0.1.nip.io"), REFUSED,
                     err="a loopback address: denied", dns=True))
    out.append(Probe("host-cname-loopback", "host", H, _host(b"cname-lo.test"), REFUSED,
                     err="a loopback address: denied", dns=True))
    return out


def _answers():
    """DNS answer shapes for a client-chosen name (server P_TLS)."""
    out = []
    refused = [
        ("lo4", r"127\.0\.0\.1:9000, a loopback"),
        ("lo4b", r"127\.0\.0\.2:9000, a loopback"),
        ("lo6", r"\[::1\]:9000, a loopback"),
        ("mapped-lo", r"\[::ffff:127\.0\.0\.1\]:9000, a loopback"),
        ("translated-lo", r"a loopback"),
        ("compat-lo", r"a loopback"),
        ("mapped-own", r"\[::ffff:192\.0\.2\.10\]:9000, a documentation"),
        ("nat64-lo", r"\[64:ff9b::7f00:1\]:9000, a loopback"),
        ("nat64local-lo", r"a loopback"),
        ("sixto4-lo", r"\[2002:7f00:1::\]:9000, a loopback"),
        ("sixto4-own", r"\[2002:c000:20a::\]:9000, a documentation"),
        ("teredo-lo", r"a loopback"),
        ("own4", r"192\.0\.2\.10:9000, a documentation"),
        ("own6", r"\[2001:db8::10\]:9000, a documentation"),
        ("zero4", r"0\.0\.0\.0:9000, a unspecified|0\.0\.0\.0:9000, an? unspecified"),
        ("zero6", r"\[::\]:9000, an? unspecified"),
        ("imds", r"169\.254\.169\.254:9000, a link-local"),
        ("private", r"10\.1\.2\.3:9000, a private"),
        ("ula", r"\[fd00::1\]:9000, a private"),
        ("all-bad", r"denied"),
        ("cname-lo", r"lo4\.test resolved to 127\.0\.0\.1:9000|cname-lo\.test resolved"),
    ]
    for n, rx in refused:
        out.append(Probe("dns-" + n, "dns", P_TLS, _hello(n + ".test"), REFUSED, err=rx,
                         dns=True))
    for n in ("mix-a", "mix-b", "mix-6", "cname-ok"):
        out.append(Probe("dns-" + n, "dns", P_TLS, _hello(n + ".test"), "200", hits=[A],
                         dns=True, note="only the allowed address of the answer"))
    out.append(Probe("dns-rebind-1", "dns", P_TLS, _hello("rebind.test"), "200",
                     hits=[A], dns=True, note="TTL 0: first answer allowed"))
    out.append(Probe("dns-rebind-2", "dns", P_TLS, _hello("rebind.test"), REFUSED,
                     err=r"rebind\.test resolved to 127\.0\.0\.1:9000, a loopback",
                     dns=True, note="TTL 0: second answer loopback"))
    return out


def _loops():
    """Names resolving to this proxy (servers P_LOOP and P_LOOPANY, which
    allow every address: only the loop guard stands in the way)."""
    out = []
    for n in ("own4", "own6", "mapped-own", "translated-own", "nat64-own", "6to4-own",
              "teredo-own", "lo", "lo2", "lo6", "mapped-lo", "zero", "zero6", "routed"):
        for port, tag in ((P_LOOP, ""), (P_LOOPANY, "any-")):
            out.append(Probe("loop-%s%s" % (tag, n), "loop", port,
                             _hello("loop-%s.test" % n), "502",
                             err=r"forwarding loop: loop-%s\.test resolved to .*:%d, "
                                 r"which is this proxy" % (re.escape(n), port),
                             dns=True, loop=True))
    # Found by this suite: an address this host got after start, or one
    # that is its own through a `local` route (AnyIP: loop-*routed), was not
    # known to the loop guard; the wildcard listener took the connection
    # and the session looped until worker_connections ran out.
    out.append(Probe("loop-any-late-addr", "loop", P_LOOPANY, _hello("loop-late.test"),
                     "502", err=r"forwarding loop: loop-late\.test resolved to "
                                r"192\.0\.2\.11:4441", dns=True, loop=True,
                     before=_add_late_address,
                     note="an address own0 got after snirelay started"))
    return out


def _add_late_address():
    sh("ip", "addr", "add", LATE_OWN4 + "/32", "dev", "own0" if _own_dev() else "lo")


def _own_dev():
    return sh("ip", "link", "show", "own0", check=False).returncode == 0


def _deny_lists():
    """A `map hostnames` deny-list read by deny_if: every spelling of a
    denied name is denied before DNS (servers P_DENY and P_HDENY)."""
    out = []
    sni = ["denied.test", "DENIED.TEST", "denied.test.", "Denied.Test.", "denied.test..",
           "x.denied-wild.test", "X.DENIED-WILD.TEST.", "denied-wild.test",
           "a.b.denied-wild.test", "denied.test\x00", "denied.test:9000"]
    for i, n in enumerate(sni):
        out.append(Probe("deny-sni-%02d" % i, "names", P_DENY, _hello(n), REFUSED,
                         dns=False, note=repr(n)))
    hosts = [b"denied.test", b"DENIED.TEST", b"denied.test.", b"denied.test.:80",
             b"Denied.Test.:8080", b"denied.test..", b"x.denied-wild.test",
             b"X.DENIED-WILD.TEST.", b"denied-wild.test", b"a.b.denied-wild.test"]
    for i, h in enumerate(hosts):
        out.append(Probe("deny-host-%02d" % i, "host", P_HDENY, _host(h), REFUSED,
                         dns=False, note=repr(h)))
    out.append(Probe("deny-host-absolute", "host", P_HDENY,
                     _http(b"http://denied.test./", [b"Host: denied.test."]), REFUSED,
                     dns=False))
    out.append(Probe("deny-sni-control", "names", P_DENY, _hello("other.test"), "200",
                     hits=[A], dns=True, note="control: a name not on the list"))
    out.append(Probe("deny-host-control", "host", P_HDENY, _host(b"other.test"), "200",
                     hits=[A], dns=True, note="control: a name not on the list"))
    return out


def _proxy_trust():
    """PROXY headers from trusted (127.0.0.3) and untrusted peers."""
    pa = "%s:%d" % (POOL_A, POOL_PORT)
    pb = "%s:%d" % (POOL_B, POOL_PORT)
    body = b"after the header\n"
    v1 = _v1(SPOOFED, "127.0.0.1", 1111, P_PPGEO)
    v2 = _v2(SPOOFED, "127.0.0.1", 1111, P_PPGEO)
    return [
        Probe("pp-untrusted-v1-geo", "proxy", P_PPGEO, v1 + body, "200", hits=[pa],
              relayed=body, note="geo sees the peer, not the header"),
        Probe("pp-untrusted-v2-geo", "proxy", P_PPGEO, v2 + body, "200", hits=[pa],
              relayed=body),
        Probe("pp-trusted-v1-geo", "proxy", P_PPGEO, v1 + body, "200", hits=[pb],
              relayed=body, src=TRUSTED_SRC, note="control: a trusted header is used"),
        Probe("pp-untrusted-acl", "proxy", P_PPACL, v1 + body, REFUSED,
              err="access forbidden by rule"),
        Probe("pp-untrusted-acl-v2", "proxy", P_PPACL, v2 + body, REFUSED,
              err="access forbidden by rule"),
        Probe("pp-trusted-acl", "proxy", P_PPACL, v1 + body, "200", hits=[pb],
              relayed=body, src=TRUSTED_SRC),
        Probe("pp-header-on-plain-listener", "proxy", P_TLS,
              _v1("127.0.0.1", "127.0.0.1", 1, CP) + _hello("allowed.test"), REFUSED,
              dns=False, note="a PROXY line where none is expected is not TLS"),
        Probe("pp-authority-literal", "proxy", P_PPAUTH,
              _v2(SPOOFED, "127.0.0.1", 1, 2, _authority(b"127.0.0.1")) + body, REFUSED,
              err=LITERAL_ERR, dns=False),
        Probe("pp-authority-fixed-addr", "proxy", P_PPAUTH,
              _v2(SPOOFED, "127.0.0.1", 1, 2, _authority(FIXED_ADDR.encode())) + body,
              REFUSED, err=LITERAL_ERR, dns=False),
        Probe("pp-authority-nip", "proxy", P_PPAUTH,
              _v2(SPOOFED, "127.0.0.1", 1, 2, _authority(b"127.0.0.1.nip.io")) + body,
              REFUSED, err="a loopback address: denied", dns=True),
        Probe("pp-authority-port", "proxy", P_PPAUTH,
              _v2(SPOOFED, "127.0.0.1", 1, 2, _authority(b"allowed.test:9001")) + body,
              REFUSED, err=INVALID_ERR, dns=False),
        Probe("pp-authority-allowed", "proxy", P_PPAUTH,
              _v2(SPOOFED, "127.0.0.1", 1, 2, _authority(b"allowed.test")) + body, "200",
              hits=[A], relayed=body, dns=True),
    ]


INJECT = [
    b"evil.test\n2099/01/01 00:00:00 [emerg] 1#0: forged line",
    b"evil.test\r\n127.0.0.1\t4431\t200\tforged",
    b'evil".test\\x22',
    b"evil\x1b[31m.test\x1b[0m",
    b"evil\x00.test",
    b"evil\x7f\xff\xfe.test",
    b"\xe2\x80\xaeevil.test",
    b"%s\t%s",
]


def _injection():
    out = []
    for i, v in enumerate(INJECT):
        out.append(Probe("inject-sni-%d" % i, "log", P_TLS, _hello(v), REFUSED,
                         err=INVALID_ERR, dns=False, sni=v))
        out.append(Probe("inject-alpn-%d" % i, "log", P_TLS,
                         _hello("allowed.test", alpn=[v]), "200", hits=[A], alpn=v))
        out.append(Probe("inject-authority-%d" % i, "log", P_PPAUTH,
                         _v2(SPOOFED, "127.0.0.1", 1, 2, _authority(v)) + b"x\n",
                         REFUSED, dns=False, authority=v))
    for i, v in enumerate([b'evil".test', b"evil\\.test", b"evil\x01.test",
                           b"evil\x7f.test", b"evil\xff.test"]):
        out.append(Probe("inject-host-%d" % i, "log", P_HTTP, _host(v), REFUSED,
                         dns=False))
    return out


# The whole run's time limit (a passing run takes about a second), and
# each probe's wait for the proxy to close and log.
BUDGET_S = 60
PROBE_DEADLINE_S = 5.0

PROBES = (_names() + _deny_lists() + _hosts() + _answers() + _loops() + _proxy_trust()
          + _injection())


def probe_names():
    return [p.name for p in PROBES]


# --------------------------------------------------------------------------
# the namespace


def sh(*argv, check=True):
    p = subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)
    if check and p.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(argv), p.stderr.strip()))
    return p


def assert_fresh_namespace():
    """Refuse to change any network, or mount anything, outside fresh
    private namespaces (those of init are the host's)."""
    for ns in ("net", "mnt"):
        try:
            same = os.readlink("/proc/self/ns/" + ns) == os.readlink("/proc/1/ns/" + ns)
        except OSError:
            same = False        # cannot see init's: judge by the links below
        if same:
            raise RuntimeError("in init's %s namespace: run me under `unshare -n -m`" % ns)
    links = sh("ip", "-o", "link", "show").stdout.strip().splitlines()
    names = [l.split(":")[1].strip().split("@")[0] for l in links]
    if names != ["lo"] or "UP" in links[0].split(">")[0]:
        raise RuntimeError("not a fresh network namespace (links: %s): run me "
                           "under `unshare -n -m`" % names)


def setup_namespace(workdir):
    info = {}
    sh("ip", "link", "set", "lo", "up")
    dev = "own0"
    if sh("ip", "link", "add", "own0", "type", "dummy", check=False).returncode == 0:
        info["own_if"] = "dummy"
    elif sh("ip", "link", "add", "own0", "type", "veth", "peer", "name", "own1",
            check=False).returncode == 0:
        sh("ip", "link", "set", "own1", "up")
        info["own_if"] = "veth"
    else:
        dev = "lo"
        info["own_if"] = "lo"
    sh("ip", "addr", "add", OWN4 + "/24", "dev", dev)
    sh("ip", "-6", "addr", "add", OWN6 + "/64", "dev", dev, "nodad")
    sh("ip", "link", "set", dev, "up")
    # Every other address is this host too: a connect() anywhere lands on
    # the wildcard canaries, which see where it was made to.
    sh("ip", "route", "add", "local", "0.0.0.0/0", "dev", "lo")
    sh("ip", "-6", "route", "add", "local", "::/0", "dev", "lo")
    hosts = os.path.join(workdir, "hosts")
    with open(hosts, "w") as f:
        f.write("127.0.0.1 localhost\n%s fixed.test\n" % FIXED_NAME_ADDR)
    sh("mount", "--bind", hosts, "/etc/hosts")
    info["addresses"] = sh("ip", "-o", "addr", "show").stdout.split("\n")
    return info


class Canaries:
    """Wildcard listeners on every canary port, IPv4 and IPv6; each
    connection is accepted, read and closed, and recorded with the address
    it was made to."""

    def __init__(self, ports):
        self.socks = []
        for port in ports:
            for fam, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
                s = socket.socket(fam, socket.SOCK_STREAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if fam == socket.AF_INET6:
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s.bind((host, port))
                s.listen(64)
                s.setblocking(False)
                self.socks.append(s)

    def take(self, listener, want):
        """Accept one pending connection: ("ADDR:PORT", bytes read)."""
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            return None
        dst = conn.getsockname()
        where = ("[%s]:%d" % dst[:2]) if listener.family == socket.AF_INET6 \
            else "%s:%d" % dst
        conn.settimeout(3)
        data = b""
        try:
            while len(data) < want:
                b = conn.recv(65536)
                if not b:
                    break
                data += b
        except OSError:
            pass
        conn.close()
        return where, data

    def drain(self, want=0):
        hits = []
        for l in self.socks:
            while True:
                h = self.take(l, want)
                if h is None:
                    break
                hits.append(h)
        return hits

    def close(self):
        for s in self.socks:
            s.close()


# --------------------------------------------------------------------------
# running one probe


def _error_lines_ok(text):
    """Problems with error-log text: every line must be a whole log line
    of printable ASCII."""
    bad = []
    rx = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(debug|info|notice|warn|error|"
                    r"crit|alert|emerg)\] \d+#\d+: ")
    for line in text.split("\n")[:-1]:
        if not rx.match(line):
            bad.append("error-log line not in nginx's format: %r" % line[:200])
        if any(c < " " or c > "~" for c in line):
            bad.append("raw control or non-ASCII byte in the error log: %r" % line[:200])
    return bad


def escaped(raw):
    """raw as escape=default writes it."""
    return "".join(chr(b) if 0x20 <= b <= 0x7e and b not in (0x22, 0x5c)
                   else "\\x%02X" % b for b in raw)


class Run:
    def __init__(self, binary, workdir):
        self.dir = workdir
        self.binary = binary
        self.resolver = dns.SlowResolver(RECORDS, 0, ttl=0, cnames=CNAMES)
        self.resolver.steps = {k: [list(a) for a in v] for k, v in STEPS.items()}
        self.canaries = Canaries([CP, POOL_PORT])
        text = util.render(PROBE_CONF, D=workdir, DNS=self.resolver.port, CP=CP,
                           PP=POOL_PORT, POOL_A=POOL_A, POOL_B=POOL_B, SPOOFED=SPOOFED,
                           ALLOW=ALLOW_NETS, FIXED_ADDR=FIXED_ADDR, OWN4=OWN4, OWN6=OWN6,
                           TRUSTED=TRUSTED_SRC, P_TLS=P_TLS, P_HTTP=P_HTTP,
                           P_FIXED=P_FIXED, P_FIXNAME=P_FIXNAME, P_MAP=P_MAP,
                           P_NOPORT=P_NOPORT, P_DENY=P_DENY, P_HDENY=P_HDENY,
                           P_LOOP=P_LOOP, P_LOOPANY=P_LOOPANY,
                           P_PPGEO=P_PPGEO, P_PPACL=P_PPACL, P_PPAUTH=P_PPAUTH)
        self.relay = util.Snirelay(workdir, text, binary)
        self.relay.listen_ports = sorted(set(self.relay.listen_ports))
        self.sessions = 0
        self.json_log = os.path.join(workdir, "access.json")

    def start(self):
        self.relay.start()

    def error_text(self):
        return self.relay.error_text()

    def probe(self, p, deadline=PROBE_DEADLINE_S):
        problems = []
        n_before = len(self.relay.access_lines())
        err_before = len(self.error_text())
        asked_before = len(self.resolver.asked)
        if p.before is not None:
            p.before()
        fam = socket.AF_INET
        c = socket.socket(fam, socket.SOCK_STREAM)
        c.settimeout(deadline)
        if p.src:
            c.bind((p.src, 0))
        c.connect(("127.0.0.1", p.port))
        self.sessions += 1
        c.sendall(p.data)
        got = b""
        hits = []
        end = time.monotonic() + deadline
        open_ = True
        while open_:
            left = end - time.monotonic()
            if left <= 0:
                problems.append("the proxy kept the client open for %.0fs" % deadline)
                break
            r, _, _ = select.select([c] + self.canaries.socks, [], [], left)
            for s in r:
                if s is c:
                    try:
                        b = c.recv(65536)
                    except ConnectionResetError:
                        b = b""
                    if not b:
                        open_ = False
                    got += b
                else:
                    h = self.canaries.take(s, len(p.relayed))
                    if h:
                        hits.append(h)
        c.close()
        try:
            lines = self.relay.wait_access(n_before + 1, timeout=deadline)
        except util.WaitTimeout as e:
            lines = self.relay.access_lines()
            problems.append(str(e))
        hits += self.canaries.drain(len(p.relayed))
        try:
            # the json log's line follows the tab log's
            util.wait_for(lambda: len(self._json_lines()) >= self.sessions,
                          "the json access-log line", timeout=deadline)
        except util.WaitTimeout as e:
            problems.append(str(e))
        new = lines[n_before:]
        rec = {}
        if len(new) != 1:
            problems.append("%d access-log lines for one session: %r" % (len(new), new))
        if new:
            parts = new[0].split("\t")
            if len(parts) != len(LOG_FIELDS):
                problems.append("access-log line has %d fields, want %d: %r"
                                % (len(parts), len(LOG_FIELDS), new[0]))
            else:
                rec = dict(zip(LOG_FIELDS, parts))
        status = rec.get("status")
        if status not in p.status:
            problems.append("status %s, want %s" % (status, "/".join(sorted(p.status))))
        if got:
            problems.append("the client got %d bytes: %r" % (len(got), got[:80]))
        where = sorted(h[0] for h in hits)
        if where != p.hits:
            problems.append("canary connections %s, want %s" % (where or "none",
                                                                p.hits or "none"))
        for w, data in hits:
            if w in p.hits and data != p.relayed:
                problems.append("canary %s got %r, want %r" % (w, data[:60],
                                                               p.relayed[:60]))
        if not p.hits and rec and rec.get("upstream_addr") not in ("-", ""):
            problems.append("upstream_addr %s: a connection was tried"
                            % rec["upstream_addr"])
        if p.err:
            try:
                util.wait_for(lambda: re.search(p.err, self.error_text()[err_before:]),
                              "the error log to match", timeout=deadline)
            except util.WaitTimeout:
                problems.append("error log lacks /%s/: %r"
                                % (p.err, self.error_text()[err_before:][-600:]))
        err_new = self.error_text()[err_before:]
        asked = self.resolver.asked[asked_before:]
        if p.dns is False and asked:
            problems.append("DNS queries for %s" % sorted({a[2] for a in asked}))
        if p.dns is True and not asked:
            problems.append("no DNS query")
        if p.loop:
            n_loop = err_new.count("forwarding loop")
            if n_loop != 1:
                problems.append("%d forwarding-loop lines, want 1" % n_loop)
            n_conn = len(re.findall(r"\] \d+#\d+: \*\d+ client \S+ connected to", err_new))
            if n_conn != 1:
                problems.append("%d sessions started, want 1 (no second session)"
                                % n_conn)
        problems += self.check_escaping(p, rec, err_new)
        return {"name": p.name, "category": p.category, "ok": not problems,
                "status": status, "hits": where, "note": p.note,
                "problems": problems}

    def _json_lines(self):
        try:
            with open(self.json_log, "rb") as f:
                return f.read().split(b"\n")[:-1]
        except FileNotFoundError:
            return []

    def check_escaping(self, p, rec, err_new):
        problems = []
        problems += _error_lines_ok(err_new)
        for field, raw in (("sni", p.sni), ("alpn", p.alpn), ("pp_authority", p.authority)):
            if raw is None or not rec:
                continue
            want = escaped(raw)
            if rec.get(field) != want:
                problems.append("access log %s %r, want %r" % (field, rec.get(field), want))
        jl = self._json_lines()
        if len(jl) != self.sessions:
            problems.append("json access log has %d lines after %d sessions"
                            % (len(jl), self.sessions))
        elif jl:
            try:
                j = json.loads(jl[-1].decode("latin-1"))
            except ValueError as e:
                problems.append("json access-log line is not JSON (%s): %r" % (e, jl[-1]))
            else:
                for key, raw in (("sni", p.sni), ("alpn", p.alpn),
                                 ("authority", p.authority)):
                    if raw is not None and j.get(key) != raw.decode("latin-1"):
                        problems.append("json log %s %r, want %r" % (key, j.get(key), raw))
        return problems


def run(binary, workdir, out_path):
    result = {"setup": {}, "probes": [], "problems": []}
    r = None
    try:
        assert_fresh_namespace()
        result["setup"] = setup_namespace(workdir)
        r = Run(binary, workdir)
        r.start()
        t0 = time.monotonic()
        for p in PROBES:
            if time.monotonic() - t0 > BUDGET_S:
                # A proxy that loops or hangs makes every later probe wait
                # out its deadline: stop, failing the ones not run.
                result["probes"].append({"name": p.name, "category": p.category,
                                         "ok": False, "problems": [
                                             "not run: the run took over %ds"
                                             % BUDGET_S]})
                continue
            try:
                result["probes"].append(r.probe(p))
            except Exception:
                result["probes"].append({"name": p.name, "category": p.category,
                                         "ok": False, "problems": [traceback.format_exc()]})
        result["seconds"] = round(time.monotonic() - t0, 2)
        # After all probes: one access line per session, every connection
        # the canaries ever saw was claimed by a probe, nothing crashed.
        lines = r.relay.access_lines()
        if len(lines) != r.sessions:
            result["problems"].append("%d access-log lines for %d sessions"
                                      % (len(lines), r.sessions))
        late = r.canaries.drain()
        if late:
            result["problems"].append("late canary connections: %s" % late)
        bad = [l for l in r.error_text().splitlines()
               if re.match(r"\S+ \S+ \[(alert|crit|emerg)\]", l)]
        if bad:
            result["problems"].append("alert/crit/emerg in the error log: %s" % bad[:5])
    except Exception:
        result["problems"].append(traceback.format_exc())
    finally:
        if r is not None:
            try:
                rc = r.relay.stop()
                if rc != 0:
                    result["problems"].append("snirelay exited with %s on SIGTERM" % rc)
            except AssertionError as e:
                result["problems"].append(str(e))
            r.resolver.stop()
            r.canaries.close()
            result["error_log_tail"] = r.error_text()[-4000:]
    with open(out_path, "w") as f:
        json.dump(result, f, indent=1)
    sys.stderr.write(table(result))
    return 0 if not result["problems"] and all(p["ok"] for p in result["probes"]) else 1


def table(result):
    rows = ["%-28s %-6s %-4s %-6s %-24s %s" % ("probe", "group", "ok", "status",
                                              "connections", "what")]
    for p in result["probes"]:
        rows.append("%-28s %-6s %-4s %-6s %-24s %s%s" % (
            p["name"], p["category"], "ok" if p["ok"] else "FAIL", p.get("status"),
            ",".join(p.get("hits") or []) or "-", (p.get("note") or "")[:60],
            "" if p["ok"] else "\n    " + "\n    ".join(p["problems"])))
    rows += ["run problem: " + x for x in result["problems"]]
    n_ok = sum(1 for p in result["probes"] if p["ok"])
    rows.append("%d/%d probes ok in %ss" % (n_ok, len(result["probes"]),
                                           result.get("seconds")))
    return "\n".join(rows) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=util.bin_path())
    ap.add_argument("--dir", default=None)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    d = a.dir or tempfile.mkdtemp(prefix="snirelay-probes-")
    return run(os.path.abspath(a.bin), d, a.out)


if __name__ == "__main__":
    sys.exit(main())

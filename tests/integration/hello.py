# SPDX-License-Identifier: MIT
"""Build TLS ClientHello bytes for tests and fuzz corpora (no dependencies).

build_client_hello() returns one handshake message (RFC 8446 §4.1.2);
records() wraps a handshake stream in TLS records (RFC 8446 §5.1);
pq_client_hello() returns a Chrome-sized record stream with a post-quantum
X25519MLKEM768 key share. The output is well formed: Wireshark dissects it
and OpenSSL parses it (the keys are filler bytes, so no handshake can
complete with it, which routing tests do not need).

Run as a script to write a hello to a file, e.g.
    python3 hello.py --server-name example.com --alpn h2,http/1.1 -o x.bin
"""

import argparse
import struct
import sys

GREASE_EXT_1 = 0x0A0A
GREASE_EXT_2 = 0x1A1A
GREASE_CIPHER = 0x2A2A
GREASE_GROUP = 0x3A3A
GREASE_VERSION = 0x4A4A

GROUP_X25519 = 0x001D
GROUP_SECP256R1 = 0x0017
GROUP_X25519MLKEM768 = 0x11EC

RECORD_MAX = 16384

_CIPHERS = (0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030,
            0xCCA9, 0xCCA8, 0xC013, 0xC014, 0x009C, 0x009D, 0x002F, 0x0035)
_SIGALGS = (0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601)


def _u8(v):
    return struct.pack("!B", v)


def _u16(v):
    return struct.pack("!H", v)


def _u24(v):
    return struct.pack("!I", v)[1:]


def _vec8(body):
    """opaque x<0..2^8-1>: one length byte, then the body."""
    if len(body) > 0xFF:
        raise ValueError("vector too long for a 1-byte length")
    return _u8(len(body)) + body


def _vec16(body):
    """opaque x<0..2^16-1>: two length bytes, then the body."""
    if len(body) > 0xFFFF:
        raise ValueError("vector too long for a 2-byte length")
    return _u16(len(body)) + body


def _ext(ext_type, data):
    """Extension (RFC 8446 §4.2): type(2) | extension_data<0..2^16-1>."""
    return _u16(ext_type) + _vec16(data)


def _as_bytes(s):
    return s.encode("ascii") if isinstance(s, str) else bytes(s)


def _filler(length, seed):
    """Deterministic stand-in for key material, so corpora are stable."""
    return bytes((seed + i * 7) & 0xFF for i in range(length))


def build_client_hello(server_name=None, alpn=None, versions=(0x0304, 0x0303),
                       key_share_len=32, group=GROUP_X25519, ech=False,
                       grease=False, extra_padding=0):
    """Return one ClientHello handshake message (type 1, uint24 length).

    server_name: str/bytes for one host_name entry (RFC 6066 §3), or None.
    alpn: list of protocol names (RFC 7301 §3.1), or None.
    versions: supported_versions entries (RFC 8446 §4.2.1); empty or None
        leaves the extension out (a TLS 1.2-style hello).
    key_share_len, group: the key_share entry (RFC 8446 §4.2.8); 0 leaves
        key_share out. With group X25519MLKEM768 an x25519 share is added
        after it, as Chrome and Firefox send.
    ech: add an outer encrypted_client_hello (0xfe0d) extension.
    grease: add RFC 8701 GREASE values to ciphers, groups, versions,
        key_share and two GREASE extensions, as Chrome does.
    extra_padding: add a padding extension (RFC 7685) with this many zeros.
    """
    versions = tuple(versions or ())
    real = [v for v in versions if (v & 0x0F0F) != 0x0A0A]
    legacy = min(0x0303, max(real)) if real else 0x0303

    ciphers = ((GREASE_CIPHER,) if grease else ()) + _CIPHERS
    groups = [GREASE_GROUP] if grease else []
    groups.append(group)
    if group == GROUP_X25519MLKEM768:
        groups.append(GROUP_X25519)
    groups.append(GROUP_SECP256R1 if group != GROUP_SECP256R1
                  else GROUP_X25519)

    exts = []
    if grease:
        exts.append(_ext(GREASE_EXT_1, b""))
    if server_name is not None:
        # ServerNameList<1..2^16-1> of name_type(1) | HostName<1..2^16-1>
        entry = _u8(0) + _vec16(_as_bytes(server_name))
        exts.append(_ext(0x0000, _vec16(entry)))
    exts.append(_ext(0x0017, b""))                       # ext. master secret
    exts.append(_ext(0xFF01, b"\x00"))                   # renegotiation_info
    exts.append(_ext(0x000A, _vec16(b"".join(_u16(g) for g in groups))))
    exts.append(_ext(0x000B, _vec8(b"\x00")))            # ec_point_formats
    exts.append(_ext(0x0023, b""))                       # session_ticket
    if alpn:
        names = b"".join(_vec8(_as_bytes(p)) for p in alpn)
        exts.append(_ext(0x0010, _vec16(names)))
    exts.append(_ext(0x0005, b"\x01\x00\x00\x00\x00"))   # status_request
    exts.append(_ext(0x000D, _vec16(b"".join(_u16(a) for a in _SIGALGS))))
    if key_share_len:
        # client_shares<0..2^16-1> of group(2) | key_exchange<1..2^16-1>
        shares = b""
        if grease:
            shares += _u16(GREASE_GROUP) + _vec16(b"\x00")
        shares += _u16(group) + _vec16(_filler(key_share_len, 0x11))
        if group == GROUP_X25519MLKEM768:
            shares += _u16(GROUP_X25519) + _vec16(_filler(32, 0x55))
        exts.append(_ext(0x0033, _vec16(shares)))
    if real:
        exts.append(_ext(0x002D, _vec8(b"\x01")))        # psk_dhe_ke
    if versions:
        vlist = ((GREASE_VERSION,) if grease else ()) + versions
        exts.append(_ext(0x002B, _vec8(b"".join(_u16(v) for v in vlist))))
    if ech:
        # ECHClientHello, outer: type 0 | kdf HKDF-SHA256 | aead AES-128-GCM
        # | config_id | enc<0..2^16-1> | payload<1..2^16-1>
        outer = (_u8(0) + _u16(0x0001) + _u16(0x0001) + _u8(0x2A)
                 + _vec16(_filler(32, 0x21)) + _vec16(_filler(144, 0x31)))
        exts.append(_ext(0xFE0D, outer))
    if grease:
        exts.append(_ext(GREASE_EXT_2, b"\x00"))
    if extra_padding:
        exts.append(_ext(0x0015, bytes(extra_padding)))

    body = (_u16(legacy)
            + _filler(32, 0x00)                          # random
            + _vec8(_filler(32, 0xE0))                   # legacy_session_id
            + _vec16(b"".join(_u16(c) for c in ciphers))
            + _vec8(b"\x00")                             # compression: null
            + _vec16(b"".join(exts)))
    return _u8(1) + _u24(len(body)) + body


def records(handshake, sizes=None, version=0x0301):
    """Split a handshake byte stream into TLS handshake records.

    sizes: payload sizes of the first records, in order; whatever is left
    goes into further records of up to 16384 bytes. Default: one record
    (or as many 16 KiB records as needed). version: legacy_record_version,
    0x0301 as clients send on their first flight.
    """
    out = []
    pos = 0
    for size in sizes or ():
        if size <= 0 or size > RECORD_MAX:
            raise ValueError("record payload must be 1..16384 bytes")
        if pos >= len(handshake):
            break
        chunk = handshake[pos:pos + size]
        out.append(_u8(22) + _u16(version) + _u16(len(chunk)) + chunk)
        pos += len(chunk)
    while pos < len(handshake):
        chunk = handshake[pos:pos + RECORD_MAX]
        out.append(_u8(22) + _u16(version) + _u16(len(chunk)) + chunk)
        pos += len(chunk)
    return b"".join(out)


def pq_client_hello(server_name):
    """Return a ~1.8 KB record stream like Chrome 131+ sends: GREASE,
    h2/http1.1 ALPN, an X25519MLKEM768 (0x11ec) share of 1216 bytes plus an
    x25519 share, and a padding extension."""
    hs = build_client_hello(server_name=server_name, alpn=["h2", "http/1.1"],
                            key_share_len=1216, group=GROUP_X25519MLKEM768,
                            grease=True, extra_padding=290)
    return records(hs)


def sslv2_client_hello(version=0x0002):
    """Return an SSLv2-compatible CLIENT-HELLO (RFC 5246 appendix E.2)."""
    specs = bytes.fromhex("010080" "0700c0" "030080" "000039" "00002f")
    challenge = _filler(16, 0x42)
    body = (_u8(1) + _u16(version) + _u16(len(specs)) + _u16(0)
            + _u16(len(challenge)) + specs + challenge)
    return _u16(0x8000 | len(body)) + body


def _main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server-name")
    ap.add_argument("--alpn", help="comma-separated protocol names")
    ap.add_argument("--versions", default="0304,0303",
                    help="hex versions, comma-separated; empty for none")
    ap.add_argument("--key-share-len", type=int, default=32)
    ap.add_argument("--group", type=lambda s: int(s, 16), default=GROUP_X25519)
    ap.add_argument("--ech", action="store_true")
    ap.add_argument("--grease", action="store_true")
    ap.add_argument("--padding", type=int, default=0)
    ap.add_argument("--sizes", help="record payload sizes, comma-separated")
    ap.add_argument("--handshake", action="store_true",
                    help="write the bare handshake message, no records")
    ap.add_argument("--pq", action="store_true",
                    help="pq_client_hello(--server-name)")
    ap.add_argument("--prefix", type=lambda s: bytes.fromhex(s), default=b"",
                    help="hex bytes to write first (fuzz chunk selector)")
    ap.add_argument("-o", "--out", required=True)
    a = ap.parse_args(argv)

    if a.pq:
        data = pq_client_hello(a.server_name)
    else:
        versions = tuple(int(v, 16) for v in a.versions.split(",") if v)
        hs = build_client_hello(
            server_name=a.server_name,
            alpn=a.alpn.split(",") if a.alpn else None, versions=versions,
            key_share_len=a.key_share_len, group=a.group, ech=a.ech,
            grease=a.grease, extra_padding=a.padding)
        sizes = [int(s) for s in a.sizes.split(",")] if a.sizes else None
        data = hs if a.handshake else records(hs, sizes)
    with open(a.out, "wb") as f:
        f.write(a.prefix + data)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))

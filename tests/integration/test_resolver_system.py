"""`resolver system;` and `resolver system=FILE;` (our extension): the name
servers of /etc/resolv.conf, or of FILE, read at each load as the C library
reads them.

Every test here gives `system=` a file of its own naming its own dnsmasq
(on port 53 of a loopback address of its own, since resolv.conf has no
port): no test ever sends a query to the machine's resolver. Plain
`resolver system;` is only loaded with -t here (nothing is resolved)."""

import os

import pytest

import dns
import util

SYSTEM_CONF = r"""
    resolver @RESOLVER@;
    resolver_timeout 5s;
    server {
        listen 127.0.0.1:@L@;
        ssl_preread on;
        preread_timeout 5s;
        proxy_connect_timeout 2s;
        proxy_target_allow 127.0.0.0/8;
        proxy_pass $ssl_preread_server_name:@P@;
    }
"""


def _t(snirelay_bin, workdir, resolver):
    text = util.config(workdir, util.render(SYSTEM_CONF, RESOLVER=resolver,
                                            L=util.free_port(), P=1))
    return util.config_test(snirelay_bin, workdir, text)


def test_system_file_names_the_servers_asked(relay, port, system_dnsmasq,
                                             same_port_backends):
    P, bk = same_port_backends(["127.0.0.21"], lambda h: util.record_to_eof())
    d, path = system_dnsmasq({"a.test": "127.0.0.21"}, ttl=60)
    r = relay(SYSTEM_CONF, RESOLVER="system=" + path, L=port(), P=P,
              log_format=dns.FWD_FORMAT)
    s, _ = dns.send_hello(r.listen_ports[0], "a.test")
    bk["127.0.0.21"].wait_conns(1)
    s.close()
    f = dns.fwd_line(r.wait_access(1)[0])
    assert f["status"] == "200"
    assert f["upstream_addr"] == "127.0.0.21:%d" % P
    assert d.count("a.test") == 1


def test_system_file_is_read_again_on_reload(master, port, system_dnsmasq,
                                             same_port_backends):
    """The file names dnsmasq 1, then (rewritten) dnsmasq 2: after a reload
    the new name is asked of 2 only; before it, 1 answered."""
    P, bk = same_port_backends(["127.0.0.21", "127.0.0.22"],
                               lambda h: util.record_to_eof())
    d1, path = system_dnsmasq({"one.test": "127.0.0.21"}, ttl=60)
    d2, path2 = system_dnsmasq({"two.test": "127.0.0.22"}, ttl=60)
    os.replace(path2, path + ".2")
    m = master(SYSTEM_CONF, RESOLVER="system=" + path, L=port(), P=P,
               log_format=dns.FWD_FORMAT)
    L = m.listen_ports[0]
    s, _ = dns.send_hello(L, "one.test")
    bk["127.0.0.21"].wait_conns(1)
    s.close()
    assert d1.count("one.test") == 1

    os.replace(path + ".2", path)
    m.reload()
    s, _ = dns.send_hello(L, "two.test")
    bk["127.0.0.22"].wait_conns(1)
    s.close()
    assert d2.count("two.test") == 1
    assert d1.count("two.test") == 0


def test_what_glibc_ignores_is_ignored_with_warnings(snirelay_bin, workdir):
    path = os.path.join(workdir, "resolv.conf")
    with open(path, "w") as f:
        f.write("# comment\n"
                "search example.org\n"
                "nameserver bogus\n"
                "nameserver 127.0.0.1\n"
                "nameserver fe80::1%lo\n"
                "nameserver ::1\n"
                "nameserver 127.0.0.2\n")
    rc, err, conf = _t(snirelay_bin, workdir, "system=" + path)
    assert rc == 0, err
    at = "in %s:" % conf
    assert ('1 "nameserver" line(s) of "%s" name no IP address and are '
            'ignored (the first at line 3) %s' % (path, at)) in err
    assert ('name server "fe80::1%%lo" of "%s" line 5 is ignored: a scoped '
            'address is not supported %s' % (path, at)) in err
    assert ('only the first 3 name servers of "%s" are used, as the C '
            'library does %s' % (path, at)) in err


@pytest.mark.parametrize("content", ["", "# nothing\nsearch x\n",
                                     "nameserver x.example\n"])
def test_no_name_server_means_127_0_0_1_with_a_warning(snirelay_bin, workdir,
                                                       content):
    path = os.path.join(workdir, "resolv.conf")
    with open(path, "w") as f:
        f.write(content)
    rc, err, conf = _t(snirelay_bin, workdir, "system=" + path)
    assert rc == 0, err
    assert ('no usable name server in "%s", using 127.0.0.1 as the C library '
            'does in %s:' % (path, conf)) in err


def test_missing_or_oversized_file_is_refused(snirelay_bin, workdir):
    missing = os.path.join(workdir, "nope.conf")
    rc, err, conf = _t(snirelay_bin, workdir, "system=" + missing)
    assert rc == 1
    assert ('[emerg] open() "%s" failed (2: No such file or directory) in %s:'
            % (missing, conf)) in err

    big = os.path.join(workdir, "big.conf")
    with open(big, "w") as f:
        f.write("nameserver 127.0.0.1\n" + "#" * 65536 + "\n")
    rc, err, conf = _t(snirelay_bin, workdir, "system=" + big)
    assert rc == 1
    assert '[emerg] "%s" is larger than 65536 bytes in %s:' % (big, conf) in err


def test_empty_system_file_name_is_refused(snirelay_bin, workdir):
    rc, err, conf = _t(snirelay_bin, workdir, "system=")
    assert rc == 1
    assert '[emerg] invalid parameter "system=" in %s:' % conf in err


def test_plain_system_loads(snirelay_bin, workdir):
    """`resolver system;` reads /etc/resolv.conf (or, without one, uses
    127.0.0.1 with a warning): -t only, nothing is resolved."""
    rc, err, _ = _t(snirelay_bin, workdir, "system")
    assert rc == 0, err
    if not os.path.exists("/etc/resolv.conf"):
        assert 'no usable name server in "/etc/resolv.conf"' in err

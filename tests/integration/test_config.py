"""Command line and configuration: -t/-T/-v, error messages with file:line,
include, http{} skipped with a warning, signals, pid file."""

import os
import signal
import socket
import subprocess

import pytest

import util


def _run(args, timeout=util.DEADLINE):
    p = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def _write(path, lines):
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def _base_lines(d, stream_lines=(), main_lines=(), server_lines=()):
    """A valid config as a list of lines; the callers count lines from it."""
    return ([
        "pid %s/snirelay.pid;" % d,
        "error_log %s/error.log info;" % d,
    ] + list(main_lines) + [
        "events { worker_connections 1024; }",
        "stream {",
        "    log_format t '$remote_addr $status';",
        "    access_log %s/access.log t;" % d,
    ] + ["    " + l for l in stream_lines] + [
        "    server {",
        "        listen 127.0.0.1:%d;" % util.free_port(),
    ] + ["        " + l for l in server_lines] + [
        "        proxy_pass 127.0.0.1:%d;" % util.free_port(),
        "    }",
        "}",
    ])


def _line_of(lines, needle):
    return [i + 1 for i, l in enumerate(lines) if needle in l][0]


def _assert_failed(rc, err, conf):
    assert rc == 1, err
    assert "snirelay: configuration file %s test failed" % conf in err, err


def test_t_reports_syntax_ok_and_success(snirelay_bin, workdir):
    conf = _write(os.path.join(workdir, "ok.conf"), _base_lines(workdir))
    rc, out, err = _run([snirelay_bin, "-t", "-c", conf])
    assert rc == 0, err
    assert "snirelay: the configuration file %s syntax is ok" % conf in err
    assert "snirelay: configuration file %s test is successful" % conf in err
    assert "[emerg]" not in err


def test_t_exits_without_serving(snirelay_bin, workdir):
    lines = _base_lines(workdir)
    conf = _write(os.path.join(workdir, "ok.conf"), lines)
    port = int([l for l in lines if "listen" in l][0].split(":")[1].rstrip(";"))
    rc, _, err = _run([snirelay_bin, "-t", "-c", conf])   # fails if it keeps running
    assert rc == 0, err
    assert not util.port_listening(port)
    assert not os.path.exists(os.path.join(workdir, "access.log")) or \
        os.path.getsize(os.path.join(workdir, "access.log")) == 0


@pytest.mark.parametrize("where", ["main", "stream", "server"])
def test_unknown_directive_names_file_and_line(snirelay_bin, workdir, where):
    kw = {"main": {"main_lines": ["foo bar;"]},
          "stream": {"stream_lines": ["foo bar;"]},
          "server": {"server_lines": ["foo bar;"]}}[where]
    lines = _base_lines(workdir, **kw)
    conf = _write(os.path.join(workdir, "bad.conf"), lines)
    rc, _, err = _run([snirelay_bin, "-t", "-c", conf])
    _assert_failed(rc, err, conf)
    assert 'snirelay: [emerg] unknown directive "foo" in %s:%d' % (
        conf, _line_of(lines, "foo bar;")) in err


def test_bad_config_without_t_prints_emerg_and_exits_1(snirelay_bin, workdir):
    lines = _base_lines(workdir, stream_lines=["foo bar;"])
    conf = _write(os.path.join(workdir, "bad.conf"), lines)
    rc, _, err = _run([snirelay_bin, "-c", conf])
    assert rc == 1, err
    assert 'snirelay: [emerg] unknown directive "foo" in %s:%d' % (
        conf, _line_of(lines, "foo bar;")) in err
    assert not os.path.exists(os.path.join(workdir, "snirelay.pid"))


def test_missing_config_file_fails(snirelay_bin, workdir):
    conf = os.path.join(workdir, "does-not-exist.conf")
    rc, _, err = _run([snirelay_bin, "-t", "-c", conf])
    assert rc == 1, err
    assert "[emerg]" in err and conf in err


def test_include_of_missing_file_names_the_include_line(snirelay_bin, workdir):
    missing = os.path.join(workdir, "nope", "missing.conf")
    lines = _base_lines(workdir, stream_lines=["include %s;" % missing])
    conf = _write(os.path.join(workdir, "inc.conf"), lines)
    rc, _, err = _run([snirelay_bin, "-t", "-c", conf])
    _assert_failed(rc, err, conf)
    emerg = [l for l in err.splitlines() if "[emerg]" in l]
    assert emerg, err
    assert missing in emerg[0]
    assert emerg[0].endswith("in %s:%d" % (conf, _line_of(lines, "include %s;" % missing)))


def test_error_inside_included_file_names_that_file(snirelay_bin, workdir):
    sub = _write(os.path.join(workdir, "sub.conf"), [
        "# included",
        "map $ssl_preread_server_name $x { default 127.0.0.1:1; }",
        "bogus_directive 1;",
    ])
    lines = _base_lines(workdir, stream_lines=["include %s;" % sub])
    conf = _write(os.path.join(workdir, "main.conf"), lines)
    rc, _, err = _run([snirelay_bin, "-t", "-c", conf])
    _assert_failed(rc, err, conf)
    assert 'snirelay: [emerg] unknown directive "bogus_directive" in %s:3' % sub in err


def test_include_glob_and_T_dumps_every_file(snirelay_bin, workdir):
    os.makedirs(os.path.join(workdir, "conf.d"))
    parts = []
    for i in range(2):
        text = [
            "# part %d marker-%s" % (i, os.urandom(4).hex()),
            "server {",
            "    listen 127.0.0.1:%d;" % util.free_port(),
            "    proxy_pass 127.0.0.1:%d;" % util.free_port(),
            "}",
        ]
        parts.append(_write(os.path.join(workdir, "conf.d", "p%d.conf" % i), text))
    lines = _base_lines(workdir, stream_lines=[
        "include %s/conf.d/*.conf;" % workdir])
    conf = _write(os.path.join(workdir, "main.conf"), lines)
    rc, out, err = _run([snirelay_bin, "-t", "-c", conf])
    assert rc == 0, err
    rc, out, err = _run([snirelay_bin, "-T", "-c", conf])
    assert rc == 0, err
    assert "test is successful" in err
    with open(conf) as f:
        assert f.read() in out
    for p in parts:
        with open(p) as f:
            assert f.read() in out
        assert p in out


@pytest.mark.parametrize("directive,bad", [
    ("proxy_timeout", "proxy_timeout abc;"),
    ("proxy_connect_timeout", "proxy_connect_timeout -5s;"),
    ("preread_buffer_size", "preread_buffer_size 12q;"),
    ("ssl_preread", "ssl_preread maybe;"),
    ("listen", "listen 127.0.0.1:99999;"),
    ("proxy_timeout", "proxy_timeout 1s 2s;"),
])
def test_bad_value_names_directive_file_and_line(snirelay_bin, workdir, directive, bad):
    lines = _base_lines(workdir, server_lines=[bad])
    conf = _write(os.path.join(workdir, "bad.conf"), lines)
    rc, _, err = _run([snirelay_bin, "-t", "-c", conf])
    _assert_failed(rc, err, conf)
    emerg = [l for l in err.splitlines() if l.startswith("snirelay: [emerg] ")]
    assert emerg, err
    assert directive in emerg[0]
    assert emerg[0].endswith(" in %s:%d" % (conf, _line_of(lines, bad)))


def test_unclosed_block_is_an_error(snirelay_bin, workdir):
    lines = _base_lines(workdir)[:-1]    # drop the closing "}" of stream
    conf = _write(os.path.join(workdir, "open.conf"), lines)
    rc, _, err = _run([snirelay_bin, "-t", "-c", conf])
    _assert_failed(rc, err, conf)
    assert "snirelay: [emerg] unexpected end of file" in err
    assert "in %s:" % conf in err


def test_http_block_is_skipped_with_a_warning_naming_its_line(snirelay_bin, workdir):
    # Nothing inside http{} is opened: these includes name files that do
    # not exist (as on a proxy box without nginx), and the config loads.
    missing = os.path.join(workdir, "no-such-dir")
    http = ["http {",
            "    include %s/mime.types;" % missing,
            "    server { listen 80; include %s/*.conf;" % missing,
            "             location / { return 200; } }",
            "}"]
    lines = _base_lines(workdir, main_lines=http)
    conf = _write(os.path.join(workdir, "http.conf"), lines)
    rc, _, err = _run([snirelay_bin, "-t", "-c", conf])
    assert rc == 0, err
    warn = [l for l in err.splitlines() if "[warn]" in l]
    assert warn, err
    assert "http" in warn[0]
    assert "%s:%d" % (conf, _line_of(lines, "http {")) in warn[0]
    assert "test is successful" in err
    assert "no-such-dir" not in err
    # The same include outside http{} is read, and fails: the test can fail.
    lines = _base_lines(workdir, main_lines=["include %s/mime.types;" % missing])
    conf = _write(os.path.join(workdir, "inc.conf"), lines)
    rc, _, err = _run([snirelay_bin, "-t", "-c", conf])
    _assert_failed(rc, err, conf)
    assert "no-such-dir/mime.types" in err


def test_v_prints_version(snirelay_bin):
    rc, out, err = _run([snirelay_bin, "-v"])
    assert rc == 0
    assert "snirelay version: snirelay/0.1.0" in out + err


def test_seed_example_passes_t(snirelay_bin):
    seed = os.path.join(util.REPO, "examples", "seed.conf")
    assert os.path.exists(seed), "examples/seed.conf is missing"
    rc, _, err = _run([snirelay_bin, "-t", "-c", seed])
    assert rc == 0, err
    assert "snirelay: configuration file %s test is successful" % seed in err


def _simple(relay, port):
    return relay(r"""
    server {
        listen 127.0.0.1:@L@;
        proxy_pass 127.0.0.1:@X@;
    }
    """, L=port(), X=port())


def test_pid_file_holds_the_pid(relay, port):
    r = _simple(relay, port)
    util.wait_for(lambda: os.path.exists(r.pid_file), "pid file")
    with open(r.pid_file) as f:
        text = f.read()
    assert text == "%d\n" % r.pid


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_exits_0_and_removes_nothing_unexpected(relay, port, sig):
    r = _simple(relay, port)
    L = r.listen_ports[0]
    util.wait_for(lambda: os.path.exists(r.pid_file), "pid file")
    # One session, so the logs have something in them.
    s = util.connect(L)
    s.close()
    r.wait_access(1)
    before = set(os.listdir(r.dir))
    assert r.stop(sig) == 0, r.stderr()
    after = set(os.listdir(r.dir))
    assert before - after <= {os.path.basename(r.pid_file)}, before - after
    with open(r.conf) as f:
        assert f.read() == r.text
    assert r.access_lines()
    assert not util.port_listening(L)


def test_port_in_use_fails_to_start(relay, port):
    busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        r = relay(r"""
        server {
            listen 127.0.0.1:@L@;
            proxy_pass 127.0.0.1:@X@;
        }
        """, L=busy.getsockname()[1], X=port(), start=False)
        r.start(wait=False)
        try:
            rc = r.proc.wait(30)
        except subprocess.TimeoutExpired:
            raise AssertionError("snirelay kept running though its port is taken")
        r.stop()
        assert rc == 1
        text = r.stderr() + r.error_text()
        assert "[emerg]" in text and "Address already in use" in text, text
    finally:
        busy.close()

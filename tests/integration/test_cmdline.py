"""nginx's command line: -p PREFIX, -e FILE|stderr, -g DIRECTIVES, -q, -V,
grouped flags, values in the same word; the way Test::Nginx starts nginx
(`-p DIR/ -c nginx.conf -e error.log -g "pid ...; error_log ...;"`)."""

import os
import re
import signal
import socket
import subprocess

import util


def _run(args, cwd=None):
    p = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=util.DEADLINE, cwd=cwd)
    return (p.returncode, p.stdout.decode(errors="replace"),
            p.stderr.decode(errors="replace"))


def _conf(prefix, port=None, main="", name="nginx.conf"):
    """A config whose paths are all relative: they must resolve from -p."""
    port = port or util.free_port()
    text = (main +
            "events { }\n"
            "stream {\n"
            "    log_format t '$remote_addr $status';\n"
            "    access_log logs/access.log t;\n"
            "    server {\n"
            "        listen 127.0.0.1:%d;\n"
            "        proxy_pass 127.0.0.1:%d;\n"
            "    }\n"
            "}\n" % (port, util.free_port()))
    os.makedirs(os.path.join(prefix, "logs"), exist_ok=True)
    with open(os.path.join(prefix, name), "w") as f:
        f.write(text)
    return text


def _wait_file(path, what):
    util.wait_for(lambda: os.path.exists(path), what)


def _stop(p):
    p.send_signal(signal.SIGTERM)
    assert p.wait(10) == 0


def test_p_resolves_conf_logs_and_pid_from_the_prefix(snirelay_bin, workdir,
                                                      spawn):
    port = util.free_port()
    prefix = os.path.join(workdir, "prefix")
    os.makedirs(prefix)
    _conf(prefix, port, main="pid logs/x.pid;\nerror_log logs/error.log info;\n")
    # Started from elsewhere: every relative path is the prefix's.
    p = spawn([snirelay_bin, "-p", prefix + "/", "-c", "nginx.conf"],
              cwd="/", stderr=subprocess.PIPE)
    _wait_file(os.path.join(prefix, "logs/x.pid"), "pid file under -p")
    util.wait_for(lambda: util.port_listening(port), "listen")
    with open(os.path.join(prefix, "logs/x.pid")) as f:
        assert int(f.read()) == p.pid
    s = util.connect(port)
    s.close()
    util.wait_for(lambda: os.path.exists(os.path.join(prefix, "logs/access.log"))
                  and os.path.getsize(os.path.join(prefix, "logs/access.log")) > 0,
                  "access log under -p")
    _stop(p)
    assert not os.path.exists(os.path.join("/", "logs/x.pid"))


def test_p_names_the_full_path_in_messages(snirelay_bin, workdir):
    with open(os.path.join(workdir, "nginx.conf"), "w") as f:
        f.write("events { }\nfoo;\n")
    rc, _, err = _run([snirelay_bin, "-t", "-p", workdir + "/", "-c",
                       "nginx.conf"], cwd="/")
    assert rc == 1
    assert 'unknown directive "foo" in %s/nginx.conf:2' % workdir in err, err


def test_g_directives_apply_and_come_before_the_file(snirelay_bin, workdir,
                                                     spawn):
    port = util.free_port()
    _conf(workdir, port)
    pid = os.path.join(workdir, "g.pid")
    err_log = os.path.join(workdir, "g-error.log")
    p = spawn([snirelay_bin, "-p", workdir, "-c", "nginx.conf", "-g",
               "pid %s; error_log %s info;" % (pid, err_log)])
    _wait_file(pid, "pid file named by -g")
    util.wait_for(lambda: util.port_listening(port), "listen")
    # A reload reads the file again with the same -g: the error log stays
    # the one -g named (a reload without it would fall back to stderr).
    size = os.path.getsize(err_log)
    p.send_signal(signal.SIGHUP)
    util.wait_for(lambda: "reconfiguring" in open(err_log).read()[size:]
                  and re.search(r"start worker", open(err_log).read()[size:]),
                  "reload logged to the -g error log")
    _stop(p)


def test_g_error_is_located_in_the_command_line(snirelay_bin, workdir):
    _conf(workdir)
    rc, _, err = _run([snirelay_bin, "-t", "-p", workdir, "-c", "nginx.conf",
                       "-g", "daemon off; bogus_directive 1;"])
    assert rc == 1
    assert 'unknown directive "bogus_directive" in command line:1' in err, err


def test_g_duplicate_of_the_file_is_refused(snirelay_bin, workdir):
    port = util.free_port()
    _conf(workdir, port, main="daemon off;\n")
    rc, _, err = _run([snirelay_bin, "-t", "-p", workdir, "-c", "nginx.conf",
                       "-g", "daemon off;"])
    assert rc == 1
    assert '"daemon" directive is duplicate' in err, err


def test_e_file_is_the_error_log_when_the_config_names_none(snirelay_bin,
                                                            workdir, spawn):
    port = util.free_port()
    _conf(workdir, port, main="pid x.pid;\n")
    p = spawn([snirelay_bin, "-p", workdir, "-c", "nginx.conf", "-e",
               "elog.txt"], stderr=subprocess.PIPE)
    _wait_file(os.path.join(workdir, "x.pid"), "pid file")
    util.wait_for(lambda: os.path.exists(os.path.join(workdir, "elog.txt")),
                  "-e log created under the prefix")
    # The default level is error, as nginx's: a refused reload is logged.
    with open(os.path.join(workdir, "nginx.conf"), "a") as f:
        f.write("broken_here;\n")
    p.send_signal(signal.SIGHUP)
    util.wait_for(lambda: 'unknown directive "broken_here"' in
                  open(os.path.join(workdir, "elog.txt")).read(),
                  "the refused reload in the -e log")
    assert util.port_listening(port)
    _stop(p)


def test_e_file_gets_start_up_errors(snirelay_bin, workdir):
    with open(os.path.join(workdir, "nginx.conf"), "w") as f:
        f.write("events { }\nstream { server { listen 127.0.0.1:1; "
                "proxy_pass nowhere; } }\nbad_one;\n")
    rc, _, err = _run([snirelay_bin, "-p", workdir, "-c", "nginx.conf", "-e",
                       "e.log"])
    assert rc == 1
    with open(os.path.join(workdir, "e.log")) as f:
        text = f.read()
    assert re.search(r'\[emerg\] \d+#0: unknown directive "bad_one"', text), text
    assert 'unknown directive "bad_one"' in err


def test_e_stderr(snirelay_bin, workdir):
    _conf(workdir)
    rc, _, err = _run([snirelay_bin, "-t", "-p", workdir, "-c", "nginx.conf",
                       "-e", "stderr"])
    assert rc == 0, err
    assert not os.path.exists(os.path.join(workdir, "stderr"))


def test_q_suppresses_the_ok_lines_but_not_errors(snirelay_bin, workdir):
    _conf(workdir)
    rc, _, err = _run([snirelay_bin, "-tq", "-p", workdir, "-c", "nginx.conf"])
    assert rc == 0 and err == "", err
    rc, _, err = _run([snirelay_bin, "-t", "-p", workdir, "-c", "nginx.conf"])
    assert rc == 0 and "syntax is ok" in err
    with open(os.path.join(workdir, "bad.conf"), "w") as f:
        f.write("nope;\n")
    rc, _, err = _run([snirelay_bin, "-q", "-t", "-c" + os.path.join(workdir,
                                                                     "bad.conf")])
    assert rc == 1 and 'unknown directive "nope"' in err


def test_option_values_and_errors(snirelay_bin):
    rc, _, err = _run([snirelay_bin, "-c"])
    assert rc == 1 and 'option "-c" requires file name' in err
    rc, _, err = _run([snirelay_bin, "-x"])
    assert rc == 1 and 'invalid option: "x"' in err


def test_V_lists_modules_as_nginx_configure_arguments(snirelay_bin):
    rc, out, err = _run([snirelay_bin, "-V"])
    assert rc == 0
    line = [l for l in err.splitlines() if l.startswith("configure arguments:")]
    assert len(line) == 1, err
    words = line[0].split()[2:]
    assert "--with-stream" in words
    assert "--with-stream_ssl_preread_module" in words
    assert "--with-stream_realip_module" in words
    # No http, no TLS termination: Test::Nginx must skip what needs them.
    assert "--without-http" in words
    assert not any(w.startswith("--with-stream_ssl_module") for w in words)
    # Modules we have are never listed as missing.
    for have in ("stream_map_module", "stream_access_module",
                 "stream_limit_conn_module", "stream_upstream_hash_module",
                 "stream_return_module", "stream_set_module"):
        assert "--without-" + have not in words
    # An optional module we lack is not named at all (Test::Nginx matches
    # some features by substring).
    assert "geoip" not in line[0]

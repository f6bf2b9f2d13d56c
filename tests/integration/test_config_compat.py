"""nginx config compatibility through the real binary: nginx core main
directives (worker_priority, worker_cpu_affinity, env applied in workers;
master_process, timer_resolution, pcre_jit, lock_file accepted),
load_module and the Debian modules-enabled layout, open_log_file_cache,
and the reasons given for out-of-scope directives."""

import os
import subprocess

import pytest

import util


def _run(args):
    p = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=util.DEADLINE)
    return p.returncode, p.stderr.decode(errors="replace")


def _conf(workdir, main="", stream="", server="", name="c.conf"):
    """A valid config around the given lines; returns (path, lines)."""
    lines = (["pid %s/snirelay.pid;" % workdir]
             + main.splitlines()
             + ["events { worker_connections 64; }",
                "stream {"]
             + ["    " + l for l in stream.splitlines()]
             + ["    server {",
                "        listen 127.0.0.1:%d;" % util.free_port()]
             + ["        " + l for l in server.splitlines()]
             + ["        proxy_pass 127.0.0.1:%d;" % util.free_port(),
                "    }",
                "}"])
    path = os.path.join(workdir, name)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path, lines


def _line(lines, needle):
    """The first line whose text (paths aside) holds needle."""
    return [i + 1 for i, l in enumerate(lines)
            if needle in l and not l.startswith("pid ")][0]


def _t_ok(bin_, path):
    rc, err = _run([bin_, "-t", "-c", path])
    assert rc == 0, err
    assert "test is successful" in err
    return err


def _t_fails(bin_, path, message):
    rc, err = _run([bin_, "-t", "-c", path])
    assert rc == 1, err
    assert "snirelay: [emerg] %s" % message in err, err
    return err


# --------------------------------------------------------------------------
# main context: accepted


def test_main_directives_of_nginx_core_are_accepted(snirelay_bin, workdir):
    path, _ = _conf(workdir, main="\n".join([
        "master_process on;",
        "timer_resolution 100ms;",
        "pcre_jit on;",
        "lock_file %s/nginx.lock;" % workdir,
        "worker_priority -5;",
        "worker_cpu_affinity auto;",
        "env TZ;",
        "env FOO=bar;",
    ]))
    _t_ok(snirelay_bin, path)
    # lock_file is accepted, not applied: nothing is created.
    assert not os.path.exists(os.path.join(workdir, "nginx.lock"))


@pytest.mark.parametrize("directive,message", [
    ("worker_priority x;", '"worker_priority" directive invalid number'),
    ("worker_priority -;", '"worker_priority" directive invalid number'),
    ("worker_priority 1;\nworker_priority 2;",
     '"worker_priority" directive is duplicate'),
    ("worker_cpu_affinity 0102;",
     'invalid character "2" in "worker_cpu_affinity"'),
    ("worker_cpu_affinity auto 01 10;",
     'invalid number of arguments in "worker_cpu_affinity" directive'),
    ("worker_cpu_affinity %s;" % ("1" * 1025),
     '"worker_cpu_affinity" supports up to 1024 CPUs only'),
    ("worker_cpu_affinity 01;\nworker_cpu_affinity 10;",
     '"worker_cpu_affinity" directive is duplicate'),
    ("master_process maybe;",
     'invalid value "maybe" in "master_process" directive, it must be "on" '
     'or "off"'),
    ("pcre_jit on;\npcre_jit on;", '"pcre_jit" directive is duplicate'),
    ("timer_resolution fast;", '"timer_resolution" directive invalid value'),
    ("env;", 'invalid number of arguments in "env" directive'),
])
def test_main_directive_bad_values_get_nginx_errors(snirelay_bin, workdir,
                                                     directive, message):
    path, lines = _conf(workdir, main=directive)
    # The error is at the last line of the directive text.
    at = _line(lines, directive.splitlines()[0]) + directive.count("\n")
    _t_fails(snirelay_bin, path, "%s in %s:%d" % (message, path, at))


def _worker(r):
    def one():
        kids = util.child_pids(r.pid)
        return kids[0] if kids and util.has_event_loop(kids[0]) else None
    return util.wait_for(one, "a worker with its event loop")


def _nice(pid):
    return int(util._stat_fields(pid)[16])      # field 19


def test_worker_priority_sets_the_workers_nice_value(relay, port):
    r = relay("server {\n    listen 127.0.0.1:@P@; proxy_pass 127.0.0.1:1; }",
              main_extra="worker_priority 7;", P=port())
    w = _worker(r)
    assert _nice(w) == 7
    # The master keeps the priority it was started with (the test's own:
    # `nice make test` starts it above 0).
    assert _nice(r.pid) == os.getpriority(os.PRIO_PROCESS, 0), \
        "the master keeps its priority"


def test_worker_cpu_affinity_masks_pin_each_worker(relay, port):
    cpus = sorted(os.sched_getaffinity(0))
    cpu = cpus[-1]
    mask = "1" + "0" * cpu
    r = relay("server {\n    listen 127.0.0.1:@P@; proxy_pass 127.0.0.1:1; }",
              main_extra="worker_cpu_affinity %s;" % mask, P=port())
    w = _worker(r)
    assert os.sched_getaffinity(w) == {cpu}
    assert os.sched_getaffinity(r.pid) == set(cpus)


def test_worker_cpu_affinity_auto_spreads_workers(relay, port):
    cpus = sorted(os.sched_getaffinity(0))
    r = relay("server {\n    listen 127.0.0.1:@P@; proxy_pass 127.0.0.1:1; }",
              main_extra="worker_processes 2; worker_cpu_affinity auto;",
              P=port())

    def both():
        kids = util.child_pids(r.pid)
        if len(kids) == 2 and all(util.has_event_loop(k) for k in kids):
            return kids
        return None
    kids = util.wait_for(both, "two workers")
    got = sorted(tuple(os.sched_getaffinity(k)) for k in kids)
    if len(cpus) >= 2:
        assert got == [(cpus[0],), (cpus[1],)]
    else:
        assert got == [(cpus[0],), (cpus[0],)]


def test_env_gives_workers_only_tz_and_the_named_variables(relay, port,
                                                            workdir,
                                                            monkeypatch):
    # /proc/PID/environ shows the block a process started with, not what
    # it changed later, so the worker logs its variables' names at debug.
    monkeypatch.setenv("SNIRELAY_KEEP_ME", "kept")
    monkeypatch.setenv("SNIRELAY_DROP_ME", "dropped")
    monkeypatch.setenv("TZ", "UTC")
    r = relay("server {\n    listen 127.0.0.1:@P@; proxy_pass 127.0.0.1:1; }",
              main_extra="error_log @D@/error.log debug;\n"
                         "env SNIRELAY_KEEP_ME; env SNIRELAY_SET=v1;",
              P=port(), D=os.path.join(workdir, "r0"))
    m = r.wait_error(r"worker environment:.*")
    assert m.group(0).split(":", 1)[1].split() == [
        "SNIRELAY_KEEP_ME", "SNIRELAY_SET", "TZ"]


# --------------------------------------------------------------------------
# load_module and the Debian layout


def _modules_enabled(workdir, files):
    d = os.path.join(workdir, "modules-enabled")
    os.makedirs(d)
    for name, text in files.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    return d


def test_debian_modules_enabled_layout_loads_builtin_stream_modules(
        snirelay_bin, workdir):
    d = _modules_enabled(workdir, {
        "50-mod-stream.conf":
            "load_module modules/ngx_stream_module.so;\n",
        "70-mod-stream-map.conf":
            "load_module /usr/lib/nginx/modules/ngx_stream_map_module.so;\n",
    })
    path, _ = _conf(workdir, main="include %s/*.conf;" % d)
    err = _t_ok(snirelay_bin, path)
    for name, mod in (("50-mod-stream.conf", "ngx_stream_module"),
                      ("70-mod-stream-map.conf", "ngx_stream_map_module")):
        assert ('snirelay: [notice] module "%s" is built into snirelay, '
                '"load_module" ignored in %s/%s:1' % (mod, d, name)) in err


def test_load_module_of_a_module_we_lack_is_refused_naming_it(snirelay_bin,
                                                              workdir):
    d = _modules_enabled(workdir, {
        "50-mod-stream.conf": "load_module modules/ngx_stream_module.so;\n",
        "50-mod-http-image-filter.conf":
            "load_module modules/ngx_http_image_filter_module.so;\n",
    })
    path, _ = _conf(workdir, main="include %s/*.conf;" % d)
    _t_fails(snirelay_bin, path,
             'module "ngx_http_image_filter_module" is not supported by '
             'snirelay in %s/50-mod-http-image-filter.conf:1' % d)


def test_load_module_after_a_block_is_too_late(snirelay_bin, workdir):
    path, lines = _conf(workdir)
    lines.append("load_module modules/ngx_stream_module.so;")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    _t_fails(snirelay_bin, path,
             '"load_module" directive is specified too late in %s:%d'
             % (path, len(lines)))


# --------------------------------------------------------------------------
# open_log_file_cache


def test_open_log_file_cache_is_accepted_in_stream_and_server(snirelay_bin,
                                                              workdir):
    path, _ = _conf(workdir,
                    stream="open_log_file_cache max=100 inactive=20s "
                           "min_uses=2 valid=1m;",
                    server="open_log_file_cache off;")
    _t_ok(snirelay_bin, path)


@pytest.mark.parametrize("value,message", [
    ("inactive=20s", '"open_log_file_cache" must have "max" parameter'),
    ("max=x", 'invalid "open_log_file_cache" parameter "max=x"'),
    ("max=10 size=1", 'invalid "open_log_file_cache" parameter "size=1"'),
    ("max=10 valid=soon",
     'invalid "open_log_file_cache" parameter "valid=soon"'),
])
def test_open_log_file_cache_bad_values(snirelay_bin, workdir, value, message):
    path, lines = _conf(workdir, stream="open_log_file_cache %s;" % value)
    _t_fails(snirelay_bin, path, "%s in %s:%d" % (
        message, path, _line(lines, "open_log_file_cache")))


def test_open_log_file_cache_twice_is_duplicate(snirelay_bin, workdir):
    path, lines = _conf(workdir, server="open_log_file_cache off;\n"
                                        "open_log_file_cache max=1;")
    _t_fails(snirelay_bin, path,
             '"open_log_file_cache" directive is duplicate in %s:%d'
             % (path, _line(lines, "max=1")))


# --------------------------------------------------------------------------
# out of scope: a reason, never "unknown directive"

TLS = "snirelay never terminates TLS (passthrough only)"


@pytest.mark.parametrize("where,directive,reason", [
    ("server", "ssl_certificate /x.crt;", TLS),
    ("server", "ssl_certificate_key /x.key;", TLS),
    ("stream", "ssl_protocols TLSv1.2 TLSv1.3;", TLS),
    ("stream", "ssl_session_cache shared:SSL:10m;", TLS),
    ("main", "ssl_engine x;", TLS),
    ("server", "proxy_ssl on;", TLS),
    ("server", "proxy_ssl_verify on;", TLS),
    ("server", "proxy_requests 1;", "snirelay relays TCP only (no UDP)"),
    ("server", "proxy_responses 1;", "snirelay relays TCP only (no UDP)"),
    ("stream", "js_import main.js;", "snirelay has no njs (JavaScript) module"),
    ("server", "js_preread main.preread;",
     "snirelay has no njs (JavaScript) module"),
])
def test_out_of_scope_directives_say_why(snirelay_bin, workdir, where,
                                         directive, reason):
    path, lines = _conf(workdir, **{where: directive})
    name = directive.split()[0]
    _t_fails(snirelay_bin, path, '"%s" directive is not supported: %s in %s:%d'
             % (name, reason, path, _line(lines, directive)))


@pytest.mark.parametrize("param,reason", [
    ("ssl", "snirelay never terminates TLS (passthrough only)"),
    ("udp", "snirelay relays TCP only"),
])
def test_listen_ssl_and_udp_say_why(snirelay_bin, workdir, param, reason):
    port = util.free_port()
    path, lines = _conf(workdir, stream="server { listen 127.0.0.1:%d %s; "
                        "proxy_pass 127.0.0.1:1; }" % (port, param))
    _t_fails(snirelay_bin, path,
             'the "%s" parameter is not supported: %s in %s:%d'
             % (param, reason, path, _line(lines, " %s;" % param)))


def test_ssl_preread_out_of_place_is_not_allowed_here(snirelay_bin, workdir):
    path, lines = _conf(workdir, main="ssl_preread on;")
    _t_fails(snirelay_bin, path,
             '"ssl_preread" directive is not allowed here in %s:%d'
             % (path, _line(lines, "ssl_preread")))


def test_a_truly_unknown_directive_is_still_unknown(snirelay_bin, workdir):
    path, lines = _conf(workdir, server="sslx_foo on;")
    _t_fails(snirelay_bin, path, 'unknown directive "sslx_foo" in %s:%d'
             % (path, _line(lines, "sslx_foo")))

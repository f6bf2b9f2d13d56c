"""`make install` / `make uninstall` (issue 10): under DESTDIR, with PREFIX
(default /usr/local), sbindir, mandir and sysconfdir honoured, exactly
these files are installed:

    $(sbindir)/snirelay                     the binary (0755)
    $(mandir)/man8/snirelay.8               the man pages (0644)
    $(mandir)/man5/snirelay.conf.5
    $(sysconfdir)/snirelay/snirelay.conf    conf/snirelay.conf (0644), only
                                            when there is none

and uninstall removes them (the config only when unedited). The build dir
is the one of the binary under test, so nothing is rebuilt."""
import os
import stat
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def _make(snirelay_bin, target, destdir, *args):
    build = os.path.dirname(os.path.abspath(snirelay_bin))
    # Not the variables of a make that runs these tests (make asan passes
    # CC, CFLAGS and BUILD down through MAKEFLAGS).
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    p = subprocess.run(["make", "-s", "-C", ROOT, target, "BUILD=" + build,
                        "DESTDIR=" + destdir, *args],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=120, env=env)
    assert p.returncode == 0, p.stdout.decode()
    return p.stdout.decode()


def _files(root):
    """{path relative to root: mode} of every file under root."""
    out = {}
    for d, _, names in os.walk(root):
        for n in names:
            path = os.path.join(d, n)
            out[os.path.relpath(path, root)] = stat.S_IMODE(os.stat(path).st_mode)
    return out


@pytest.fixture
def have_build(snirelay_bin):
    build = os.path.dirname(os.path.abspath(snirelay_bin))
    if not os.path.exists(os.path.join(build, "man", "snirelay.8")):
        pytest.skip("no man pages in %s (make all builds them)" % build)


@pytest.mark.parametrize("args,sbin,man,etc", [
    ((), "usr/local/sbin", "usr/local/share/man", "usr/local/etc"),
    (("PREFIX=/usr",), "usr/sbin", "usr/share/man", "etc"),
    (("PREFIX=/opt/sr", "sbindir=/opt/sr/bin", "sysconfdir=/etc/opt/sr",
      "mandir=/opt/sr/man"), "opt/sr/bin", "opt/sr/man", "etc/opt/sr"),
], ids=["default", "prefix-usr", "dirs"])
def test_install_puts_exactly_the_listed_files(snirelay_bin, have_build,
                                               tmp_path, args, sbin, man, etc):
    dest = str(tmp_path / "dest")
    _make(snirelay_bin, "install", dest, *args)
    assert _files(dest) == {
        sbin + "/snirelay": 0o755,
        man + "/man8/snirelay.8": 0o644,
        man + "/man5/snirelay.conf.5": 0o644,
        etc + "/snirelay/snirelay.conf": 0o644,
    }
    with open(os.path.join(dest, etc, "snirelay", "snirelay.conf")) as f, \
            open(os.path.join(ROOT, "conf", "snirelay.conf")) as g:
        assert f.read() == g.read()
    v = subprocess.run([os.path.join(dest, sbin, "snirelay"), "-v"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert v.returncode == 0 and b"snirelay" in v.stdout

    _make(snirelay_bin, "uninstall", dest, *args)
    assert _files(dest) == {}
    assert not os.path.exists(os.path.join(dest, etc, "snirelay"))


def test_an_edited_config_is_kept(snirelay_bin, have_build, tmp_path):
    dest = str(tmp_path / "dest")
    conf = os.path.join(dest, "etc", "snirelay", "snirelay.conf")
    _make(snirelay_bin, "install", dest, "PREFIX=/usr")
    with open(conf, "a") as f:
        f.write("# edited\n")
    out = _make(snirelay_bin, "install", dest, "PREFIX=/usr")
    assert "keeping the existing" in out
    assert open(conf).read().endswith("# edited\n")
    out = _make(snirelay_bin, "uninstall", dest, "PREFIX=/usr")
    assert "keeping the edited" in out
    assert list(_files(dest)) == ["etc/snirelay/snirelay.conf"]


def test_shipped_config_passes_t(snirelay_bin, tmp_path):
    """conf/snirelay.conf, its /var/log and /run paths moved under tmp_path
    (-t opens the logs, as nginx): the test passes. Nothing is resolved."""
    with open(os.path.join(ROOT, "conf", "snirelay.conf")) as f:
        text = f.read()
    for d in ("/var/log/snirelay", "/run/snirelay"):
        assert d in text
        moved = str(tmp_path) + d
        os.makedirs(moved)
        text = text.replace(d, moved)
    path = tmp_path / "snirelay.conf"
    path.write_text(text)
    p = subprocess.run([snirelay_bin, "-t", "-c", str(path)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert p.returncode == 0, p.stdout.decode()
    assert b"test is successful" in p.stdout

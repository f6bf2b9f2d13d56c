"""The man pages snirelay(8) and snirelay.conf(5), generated at build time by
tools/gen_man.c from the parser's directive tables and the README's
reference rows: every directive has an entry, an undocumented one fails
the generator (and so the build), and both pages pass mandoc -Tlint."""
import os
import re
import shutil
import subprocess

import pytest

import util

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


@pytest.fixture
def gen_man(snirelay_bin):
    path = os.path.join(os.path.dirname(snirelay_bin), "tools", "gen_man")
    if not os.path.exists(path):
        pytest.skip("no %s (built by make all)" % path)
    return path


def _gen(gen_man, readme, outdir, *extra):
    os.makedirs(outdir, exist_ok=True)
    return subprocess.run([gen_man, *extra, readme, outdir],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=30)


def test_pages_are_generated_and_lint_clean(gen_man, workdir):
    out = os.path.join(workdir, "man")
    p = _gen(gen_man, os.path.join(ROOT, "README.md"), out)
    assert p.returncode == 0, p.stderr.decode()
    pages = [os.path.join(out, "snirelay.8"), os.path.join(out, "snirelay.conf.5")]
    if shutil.which("mandoc") is None:
        pytest.skip("mandoc is not installed (scripts/deps.sh installs it)")
    lint = subprocess.run(["mandoc", "-Tlint", "-Wstyle", *pages],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert lint.returncode == 0, lint.stdout.decode()
    conf = subprocess.run(["mandoc", "-Tascii", pages[1]], stdout=subprocess.PIPE,
                          check=True).stdout.decode()
    text = re.sub(r".\x08", "", conf)
    # A directive of each table, with its contexts from the table.
    for entry in ("resolver system[=FILE]", "worker_shutdown_timeout TIME",
                  "proxy_pass UPSTREAM", "zone NAME [SIZE]", "env NAME[=VALUE]"):
        assert entry in text, entry
    assert "Context: stream, server." in text
    eight = subprocess.run(["mandoc", "-Tascii", pages[0]], stdout=subprocess.PIPE,
                           check=True).stdout.decode()
    assert "-c FILE" in re.sub(r".\x08", "", eight)


def test_an_undocumented_directive_fails_the_generator(gen_man, workdir):
    """The README without its `proxy_timeout` row: gen_man exits 1 naming it."""
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    row = re.search(r"^\| `proxy_timeout TIME` \|.*\n", readme, re.M)
    assert row is not None
    path = os.path.join(workdir, "README.md")
    with open(path, "w") as f:
        f.write(readme.replace(row.group(0), ""))
    p = _gen(gen_man, path, os.path.join(workdir, "man"))
    assert p.returncode == 1
    assert ('directive "proxy_timeout" is not documented in %s' % path
            ) in p.stderr.decode()


def test_an_extra_section_goes_into_snirelay_8(gen_man, workdir):
    """-x FILE: a section (the metrics families) appended to snirelay(8)."""
    extra = os.path.join(workdir, "extra.roff")
    with open(extra, "w") as f:
        f.write('.SH "EXTRA SECTION"\nIts text.\n')
    out = os.path.join(workdir, "man")
    p = _gen(gen_man, os.path.join(ROOT, "README.md"), out, "-x", extra)
    assert p.returncode == 0, p.stderr.decode()
    with open(os.path.join(out, "snirelay.8")) as f:
        page = f.read()
    assert '.SH "EXTRA SECTION"\nIts text.\n' in page
    assert page.index("EXTRA SECTION") < page.index(".SH FILES")

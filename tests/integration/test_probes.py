"""Outside probes (issue 8): a regression suite of a client's attempts to
make snirelay connect where it must not: look-alike names, Host and
request-target forms, DNS answer shapes (mapped, NAT64, 6to4, Teredo,
TTL-0 rebinding), forwarding loops through the proxy's own addresses,
PROXY headers from untrusted peers, and log injection.

probe_runner.py runs them all in a private network namespace (`unshare -n
-m`), where every address is this host and wildcard canaries record every
connection snirelay makes; this file starts it once and reports each
probe as its own test, so a failure names the probe and says what reached
where. Skipped, with the reason, where namespaces cannot be made."""

import json
import os
import shutil
import subprocess
import sys

import pytest

import probe_runner

RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "probe_runner.py")
# A passing run takes a few seconds (more under ASan); the runner stops
# probing after probe_runner.BUDGET_S.
TIMEOUT_S = probe_runner.BUDGET_S + 120


def _namespaces_unavailable():
    """Why `unshare -n -m` cannot run here, or None."""
    unshare = shutil.which("unshare")
    if unshare is None or shutil.which("ip") is None:
        return "unshare(1) or ip(8) is not installed"
    p = subprocess.run([unshare, "-n", "-m", "--propagation", "private", "true"],
                       stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        return "cannot make a network namespace (unshare -n -m: %s)" % p.stderr.strip()
    return None


@pytest.fixture(scope="module")
def probe_run(snirelay_bin, tmp_path_factory):
    why = _namespaces_unavailable()
    if why:
        pytest.skip(why)
    d = str(tmp_path_factory.mktemp("probes"))
    out = os.path.join(d, "result.json")
    argv = [shutil.which("unshare"), "-n", "-m", "--propagation", "private",
            sys.executable, RUNNER,
            "--bin", snirelay_bin, "--dir", d, "--out", out]
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=TIMEOUT_S,
                       preexec_fn=probe_runner.util._die_with_parent)
    if not os.path.exists(out):
        pytest.fail("the probe runner wrote no result (exit %s):\n%s"
                    % (p.returncode, p.stderr[-4000:]))
    with open(out) as f:
        result = json.load(f)
    result["returncode"] = p.returncode
    result["table"] = p.stderr
    result["by_name"] = {r["name"]: r for r in result["probes"]}
    return result


def test_probe_run_is_clean(probe_run):
    """The run itself: set up, every session logged once, no canary
    connection unclaimed, snirelay stopped cleanly; the table shows all."""
    print(probe_run["table"])
    assert probe_run["problems"] == [], "\n".join(probe_run["problems"]) + \
        "\nerror log tail:\n" + probe_run.get("error_log_tail", "")
    assert len(probe_run["probes"]) == len(probe_runner.PROBES)


@pytest.mark.parametrize("name", probe_runner.probe_names())
def test_probe(probe_run, name):
    r = probe_run["by_name"].get(name)
    assert r is not None, "probe %s did not run" % name
    assert r["ok"], "%s (%s%s): %s" % (
        name, r["category"], ", " + r["note"] if r.get("note") else "",
        "; ".join(r["problems"]))

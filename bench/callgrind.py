# SPDX-License-Identifier: MIT
"""Instructions per session and per KiB relayed: snirelay's worker under
valgrind --tool=callgrind (`make bench-callgrind`).

Counts of user-space instructions hardly move with the machine's load, so
two builds can be compared on a shared machine where CPU seconds cannot.
Each figure is a difference between runs of a fresh snirelay (master and
one worker, both under callgrind; only the worker's count is used):

  base      start, the harness's 3 routing-check sessions, stop
  sessions  the same + N serial short sessions (hello + 1 KiB request,
            1 KiB reply, the backend closes)
  up/down   the same + one session moving M MiB in paced chunks (each
            chunk crosses the proxy before the next is sent, so the
            number of reads does not depend on how fast the proxy is)

  per session = (sessions - base) / N
  per KiB     = (up - base - one session) / (M * 1024), and down likewise

with proxy_splice on and off. Kernel work (the copies read() and write()
do, splice itself) is not counted: these are the worker's own
instructions. Written to stdout and bench/results/callgrind.md.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402


def worker_ir(path):
    """The total instruction count (Ir) in one callgrind output file."""
    total = None
    with open(path) as f:
        for line in f:
            if line.startswith("totals:") or line.startswith("summary:"):
                total = int(line.split()[1])
    if total is None:
        raise RuntimeError("no totals in %s" % path)
    return total


class Callgrind:
    def __init__(self, args, tmp, backend, runner):
        self.a = args
        self.tmp = tmp
        self.backend = backend
        self.runner = runner
        self.n = 0

    def run(self, name, work):
        """Starts snirelay under callgrind, runs work(proxy), stops it and
        returns the worker's instruction count."""
        self.n += 1
        outdir = os.path.join(self.tmp, "cg-%d" % self.n)
        os.makedirs(outdir)
        prefix = ["valgrind", "--tool=callgrind", "--dump-instr=no",
                  "--callgrind-out-file=%s/callgrind.out.%%p" % outdir]
        p = B.Proxy(name, os.path.join(self.tmp, "run-%d" % self.n), self.backend, None,
                    prefix=prefix, snirelay_main="sandbox off;")
        if p.skip:
            raise RuntimeError(p.skip)
        p.start_timeout = 60.0
        p.stop_grace = 60.0
        try:
            why = p.start()
            if why:
                raise RuntimeError("%s: %s" % (name, why))
            pids = p.pids()
            master = p.proc.pid
            work(p)
            # let the worker finish closing what the client saw closed
            self.backend.wait_conns(lambda st: st["conns"] == 0, 10)
            time.sleep(0.5)
        finally:
            p.stop()
        workers = [q for q in pids if q != master]
        files = [os.path.join(outdir, "callgrind.out.%d" % q) for q in workers]
        files = [f for f in files if os.path.exists(f)]
        if len(files) != 1:
            raise RuntimeError("expected one worker's callgrind file in %s, found %s"
                               % (outdir, os.listdir(outdir)))
        return worker_ir(files[0])

    def figures(self, name):
        a = self.a
        hello_a = self.runner.hellos["a"]
        hellos = ",".join(self.runner.hellos[k] for k in ("a", "b", "c"))
        kib = a.mib * 1024
        chunks = a.mib * 1024 * 1024 // a.chunk

        def sessions(p):
            r = self.runner.lg("rate", p.port, hellos, 1, 600, a.sessions, 1024, 1024,
                               timeout=900)
            if r["sessions"] != a.sessions or r["errors"]:
                raise RuntimeError("sessions: %d done, %d errors" % (r["sessions"],
                                                                     r["errors"]))

        def paced(direction):
            def fn(p):
                self.runner.lg("pace", p.port, hello_a, chunks, a.chunk, direction,
                               timeout=900)
            return fn

        B.log("%s: base" % name)
        base = self.run(name, lambda p: None)
        B.log("%s: %d sessions" % (name, a.sessions))
        ses = self.run(name, sessions)
        per_session = (ses - base) / a.sessions
        out = {"base_ir": base, "sessions_ir": ses, "per_session": per_session}
        for d in ("up", "down"):
            B.log("%s: %d MiB %s, %d-byte chunks" % (name, a.mib, d, a.chunk))
            ir = self.run(name, paced(d))
            out["%s_ir" % d] = ir
            out["%s_per_kib" % d] = (ir - base - per_session) / kib
        B.log("%s: %s" % (name, out))
        return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=2000)
    ap.add_argument("--mib", type=int, default=32, help="MiB per paced transfer")
    ap.add_argument("--chunk", type=int, default=32768, help="bytes per paced chunk")
    ap.add_argument("--bin-dir", default=os.path.join(B.ROOT, "build", "bench"))
    ap.add_argument("--out", default=os.path.join(B.BENCH, "results", "callgrind.md"))
    args = ap.parse_args()
    B.stop_on_signals()
    B.raise_nofile()
    if not shutil.which("valgrind"):
        sys.exit("bench-callgrind: valgrind is not installed (sh bench/deps.sh)")

    tmp = tempfile.mkdtemp(prefix="snirelay-callgrind-")
    os.chmod(tmp, 0o755)
    backend = None
    res = {}
    try:
        backend = B.Backend(os.path.join(args.bin_dir, "backend"), tmp, None)
        runner = B.Runner(args, tmp, os.path.join(args.bin_dir, "loadgen"), backend, None)
        cg = Callgrind(args, tmp, backend, runner)
        for name in ("snirelay", "snirelay-copy"):
            res[name] = cg.figures(name)
        version = B.run_text([os.environ.get("SNIRELAY_BIN", os.path.join(
            B.ROOT, "build", "snirelay")), "-v"])[1].replace("snirelay version: ", "")
    finally:
        if backend:
            backend.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    commit = B.source_commit()
    lines = ["# snirelay under callgrind: instructions in the worker", "",
             "%s, commit %s, %s. Fixed work, counted in user space by valgrind "
             "(kernel copies and splice not included): %d serial short sessions "
             "(ClientHello + 1 KiB request, 1 KiB reply); %d MiB each way in "
             "%d-byte paced chunks. See bench/callgrind.py for the method."
             % (version, commit, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                args.sessions, args.mib, args.chunk), "",
             "| relay | instructions per session | per KiB up (client->backend) "
             "| per KiB down (backend->client) | per KiB, mean |",
             "|---|---|---|---|---|"]
    for name, label in (("snirelay", "splice (proxy_splice on)"),
                        ("snirelay-copy", "copy (proxy_splice off)")):
        r = res[name]
        lines.append("| %s | %.0f | %.1f | %.1f | %.1f |" % (
            label, r["per_session"], r["up_per_kib"], r["down_per_kib"],
            (r["up_per_kib"] + r["down_per_kib"]) / 2))
    lines += ["", "Raw worker totals (Ir): " + "; ".join(
        "%s base %d, sessions %d, up %d, down %d" % (n, r["base_ir"], r["sessions_ir"],
                                                   r["up_ir"], r["down_ir"])
        for n, r in res.items()), ""]
    # the history: earlier runs' rows kept from the file, this one added
    hist = []
    try:
        with open(args.out) as f:
            text = f.read()
        if "## History" in text:
            hist = [x for x in text.split("## History", 1)[1].splitlines()
                    if x.startswith("| ") and not x.startswith("| date")]
    except OSError:
        pass
    hist.append("| %s | %s | %d sessions, %d MiB, %d B chunks | %.0f | %.1f | %.1f |" % (
        time.strftime("%Y-%m-%d %H:%M", time.gmtime()), commit, args.sessions, args.mib,
        args.chunk, res["snirelay"]["per_session"],
        (res["snirelay"]["up_per_kib"] + res["snirelay"]["down_per_kib"]) / 2,
        (res["snirelay-copy"]["up_per_kib"] + res["snirelay-copy"]["down_per_kib"]) / 2))
    lines += ["## History", "",
              "| date (UTC) | commit | work | per session (splice) | per KiB splice "
              "| per KiB copy |", "|---|---|---|---|---|---|"] + hist + [""]
    md = "\n".join(lines)
    print(md)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(md)
    print("written: %s" % args.out)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)

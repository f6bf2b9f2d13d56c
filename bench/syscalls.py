# SPDX-License-Identifier: MIT
"""System calls per session and per MiB: snirelay and each peer under
`strace -c -f` (`make bench-syscalls`).

Every proxy is started as in bench.py (same configs, one worker), then
strace is attached to all its processes for one phase at a time:

  serial    N short sessions one after another (ClientHello + 1 KiB
            request, 1 KiB reply, the backend closes)
  parallel  N of the same, 50 at a time
  up/down   one session moving M MiB client->backend / backend->client

Counts, not times: strace slows every call down, so the proxies batch more
work per wake-up than they would untraced (the parallel and bulk rows more
so than the serial one). Written to bench/syscalls-peers.md.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402

READS = ("read", "readv", "recvfrom", "recvmsg", "recvmmsg")
WRITES = ("write", "writev", "sendto", "sendmsg", "sendmmsg")
SPLICE = ("splice", "tee", "vmsplice")
WAITS = ("epoll_wait", "epoll_pwait", "epoll_pwait2", "poll", "ppoll", "select",
         "pselect6")
CTL = ("epoll_ctl",)


def group(counts, names):
    return sum(counts.get(n, [0, 0])[0] for n in names)


def group_err(counts, names):
    return sum(counts.get(n, [0, 0])[1] for n in names)


def total(counts):
    return sum(c[0] for c in counts.values())


def others(counts, per, floor=0.2):
    """The calls outside the groups above, per unit, most frequent first."""
    known = set(READS + WRITES + SPLICE + WAITS + CTL)
    rest = sorted(((c[0] / per, n) for n, c in counts.items() if n not in known),
                  reverse=True)
    return ", ".join("%s %.2g" % (n, v) for v, n in rest if v >= floor) or "-"


def measure(proxy, runner, args, tmp):
    hellos = ",".join(runner.hellos[k] for k in ("a", "b", "c"))
    nbytes = args.mib << 20
    out = {}

    def phase(key, fn):
        path = os.path.join(tmp, "%s-%s.strace" % (proxy.name, key))
        counts, r = B.strace_counts(proxy.pids(), fn, path)
        out[key] = {"counts": counts, "result": r}
        B.log("%s %s: %d calls" % (proxy.name, key, total(counts)))

    for key, conc in (("serial", 1), ("parallel", args.conc)):
        phase(key, lambda: runner.lg("rate", proxy.port, hellos, conc, 600,
                                     args.sessions, 1024, 1024, timeout=900))
    for d in ("up", "down"):
        phase(d, lambda: runner.lg(d, proxy.port, runner.hellos["a"], nbytes,
                                   timeout=900))
    return out


def report(res, args, meta):
    lines = ["# System calls per session and per MiB, snirelay and its peers", "",
             "`make bench-syscalls` (bench/syscalls.py), %s, snirelay commit %s. "
             "`strace -c -f` attached to every process of each proxy for one phase "
             "at a time: %d short sessions one after another (serial), %d with %d at a "
             "time (parallel), one session carrying %d MiB each way. Same configs as "
             "`make bench` (bench/conf/). strace slows every call down, so a proxy "
             "batches more work per wake-up than it would untraced: compare the "
             "proxies with each other, row by row."
             % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), args.commit,
                args.sessions, args.sessions, args.conc, args.mib), "",
             "Versions: " + ", ".join("%s %s" % (n, m.get("version") or "?")
                                      for n, m in meta.items() if not m.get("skip")) + ".",
             ""]
    for key, label in (("serial", "serial"), ("parallel", "%d in parallel" % args.conc)):
        lines += ["## Per session, %s" % label, "",
                  "| proxy | all calls | read/recv (EAGAIN) | write/send | splice "
                  "| epoll_wait | epoll_ctl | others per session |",
                  "|---|---|---|---|---|---|---|---|"]
        for name, r in res.items():
            c = r[key]["counts"]
            n = max(r[key]["result"]["sessions"], 1)
            lines.append("| %s | %.1f | %.2f (%.2f) | %.2f | %.2f | %.2f | %.2f | %s |" % (
                name, total(c) / n, group(c, READS) / n, group_err(c, READS) / n,
                group(c, WRITES) / n, group(c, SPLICE) / n, group(c, WAITS) / n,
                group(c, CTL) / n, others(c, n)))
        lines.append("")
    for key, label in (("up", "client->backend"), ("down", "backend->client")):
        lines += ["## Per MiB, %s" % label, "",
                  "| proxy | all calls | read/recv (EAGAIN) | write/send | splice "
                  "| epoll_wait | epoll_ctl | others per MiB |",
                  "|---|---|---|---|---|---|---|---|"]
        for name, r in res.items():
            c = r[key]["counts"]
            m = float(args.mib)
            lines.append("| %s | %.1f | %.1f (%.1f) | %.1f | %.1f | %.1f | %.1f | %s |" % (
                name, total(c) / m, group(c, READS) / m, group_err(c, READS) / m,
                group(c, WRITES) / m, group(c, SPLICE) / m, group(c, WAITS) / m,
                group(c, CTL) / m, others(c, m, 0.05)))
        lines.append("")
    skipped = ["- %s skipped: %s" % (n, m["skip"]) for n, m in meta.items() if m.get("skip")]
    if skipped:
        lines += skipped + [""]
    lines += ["Every call, per session (serial) / per MiB (up, down):", ""]
    for name, r in res.items():
        n = max(r["serial"]["result"]["sessions"], 1)
        names = sorted(set(r["serial"]["counts"]) | set(r["up"]["counts"])
                       | set(r["down"]["counts"]))
        parts = []
        for sc in names:
            parts.append("%s %.2f/%.1f/%.1f" % (
                sc, r["serial"]["counts"].get(sc, [0])[0] / n,
                r["up"]["counts"].get(sc, [0])[0] / args.mib,
                r["down"]["counts"].get(sc, [0])[0] / args.mib))
        lines.append("- **%s**: %s" % (name, ", ".join(parts)))
    lines.append("")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--conc", type=int, default=50)
    ap.add_argument("--mib", type=int, default=64, help="MiB per bulk transfer")
    ap.add_argument("--proxies", default=",".join(B.PROXY_NAMES))
    ap.add_argument("--bin-dir", default=os.path.join(B.ROOT, "build", "bench"))
    ap.add_argument("--out", default=os.path.join(B.BENCH, "syscalls-peers.md"))
    args = ap.parse_args()
    B.stop_on_signals()
    B.raise_nofile()
    if not shutil.which("strace"):
        sys.exit("bench-syscalls: strace is not installed (sh bench/deps.sh)")
    args.commit = B.source_commit()

    cs = B.cores()
    proxy_cpu, client_cpu = (cs[0], cs[1]) if len(cs) >= 2 else (None, None)
    if client_cpu is not None:
        os.sched_setaffinity(0, {client_cpu})
    tmp = tempfile.mkdtemp(prefix="snirelay-syscalls-")
    os.chmod(tmp, 0o755)
    backend, res, meta = None, {}, {}
    try:
        backend = B.Backend(os.path.join(args.bin_dir, "backend"), tmp, client_cpu)
        runner = B.Runner(args, tmp, os.path.join(args.bin_dir, "loadgen"), backend,
                          client_cpu)
        for name in [p.strip() for p in args.proxies.split(",") if p.strip()]:
            if name not in B.PROXY_NAMES:
                sys.exit("bench-syscalls: unknown proxy %r" % name)
            p = B.Proxy(name, tmp, backend, proxy_cpu)
            meta[name] = {"version": p.version, "skip": p.skip}
            if p.skip:
                B.log("%s: skipped: %s" % (name, p.skip))
                continue
            why = p.start()
            try:
                if why:
                    meta[name]["skip"] = why
                    B.log("%s: skipped: %s" % (name, why))
                    continue
                res[name] = measure(p, runner, args, tmp)
            finally:
                p.stop()
    finally:
        if backend:
            backend.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    md = report(res, args, meta)
    print(md)
    with open(args.out, "w") as f:
        f.write(md)
    print("written: %s" % args.out)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)

#!/usr/bin/python3
"""bench/profile.py: where a proxy's CPU goes under the bench's own workloads.

`make bench-profile` or `sh bench/run.sh profile [--proxies P,...] [--steps down,up,rate,serial]`

For each proxy and step, on a freshly started proxy (bench.py's Proxy,
Backend and loadgen, pinned as in `make bench`), three passes of the same
workload:
  1. plain: CPU from /proc/PID/stat split into user and system time, and
     the worker's voluntary/involuntary context switches (wake-ups);
  2. `perf record -g` attached to the proxy's processes (software
     cpu-clock, 999 Hz); the top symbols (self time) and the user/kernel
     split of the samples go to the report;
  3. `strace -c -f` attached: system calls per MiB / per session.
Writes build/bench/profile/NAME-STEP.{perf.txt,strace.txt} and prints a
summary (JSON, then a markdown table) to stdout. bench/results/profile.md
quotes a run of it.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

MIB = 1 << 20


def ustime(pids):
    """(user s, system s) summed over pids."""
    u = s = 0
    for p in pids:
        try:
            with open("/proc/%d/stat" % p) as f:
                rest = f.read().rsplit(")", 1)[1].split()
            u += int(rest[11])
            s += int(rest[12])
        except (OSError, IndexError, ValueError):
            pass
    return u / bench.CLK_TCK, s / bench.CLK_TCK


def ctxt(pids):
    """(voluntary, involuntary) context switches of every thread of pids."""
    v = n = 0
    for p in pids:
        try:
            tids = os.listdir("/proc/%d/task" % p)
        except OSError:
            continue
        for t in tids:
            try:
                with open("/proc/%d/task/%s/status" % (p, t)) as f:
                    for line in f:
                        if line.startswith("voluntary_ctxt_switches:"):
                            v += int(line.split()[1])
                        elif line.startswith("nonvoluntary_ctxt_switches:"):
                            n += int(line.split()[1])
            except OSError:
                pass
    return v, n


def workload(runner, port, step, a):
    """Runs one step with loadgen; returns (units, unit name, loadgen json)."""
    if step in ("down", "up"):
        nbytes = int(a.mib * MIB)
        r = runner.lg(step, port, runner.hellos["a"], nbytes, timeout=300)
        return nbytes / MIB, "MiB", r
    hellos = ",".join(runner.hellos[k] for k in ("a", "b", "c"))
    conc = a.conc if step == "rate" else 1
    r = runner.lg("rate", port, hellos, conc, a.seconds, a.sessions, 1024, 1024,
                  timeout=a.seconds + 60)
    return r["sessions"], "session", r


MARKERS = [
    # (label, any of these frames in the stack)
    ("syscall: splice", ("__x64_sys_splice",)),
    ("  splice socket->pipe (tcp_splice_read)", ("tcp_splice_read",)),
    ("  splice pipe->socket (tcp_sendmsg via splice_to_socket)", ("splice_to_socket",)),
    ("syscall: epoll_wait", ("__x64_sys_epoll_wait", "__x64_sys_epoll_pwait")),
    ("syscall: read/recv*", ("__x64_sys_read", "__x64_sys_recvfrom", "__x64_sys_recvmsg")),
    ("syscall: write/send*", ("__x64_sys_write", "__x64_sys_sendto", "__x64_sys_sendmsg",
                              "__x64_sys_writev")),
    ("syscall: accept4", ("__x64_sys_accept4",)),
    ("syscall: connect", ("__x64_sys_connect",)),
    ("syscall: close", ("__x64_sys_close",)),
    ("syscall: socket", ("__x64_sys_socket",)),
    ("syscall: shutdown", ("__x64_sys_shutdown",)),
    ("syscall: epoll_ctl", ("__x64_sys_epoll_ctl",)),
    ("syscall: setsockopt", ("__x64_sys_setsockopt",)),
    ("syscall: other", ("do_syscall_64",)),
    ("loopback receive (net_rx_action/__netif_receive_skb, inclusive)",
     ("__netif_receive_skb", "__netif_receive_skb_one_core", "net_rx_action")),
    ("TCP transmit (tcp_write_xmit, inclusive)", ("tcp_write_xmit",)),
    ("seccomp filter", ("__seccomp_filter",)),
    ("scheduler (schedule)", ("schedule", "__schedule")),
]


def fold(path):
    """Inclusive share (% of all samples) of each MARKERS group, from
    `perf script`; plus 'user space' (leaf frame outside the kernel)."""
    out = subprocess.run(["perf", "script", "-i", path, "-F", "ip,sym,dso"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         text=True).stdout
    counts = {}
    n = 0
    for block in out.split("\n\n"):
        frames = [ln.split() for ln in block.strip().splitlines() if ln.strip()]
        if not frames:
            continue
        n += 1
        syms = set(f[1].split("+")[0] if len(f) > 1 else "" for f in frames)
        leaf_dso = frames[0][-1] if frames[0] else ""
        if "kernel" not in leaf_dso:
            counts["user space (leaf outside the kernel)"] = counts.get(
                "user space (leaf outside the kernel)", 0) + 1
        seen_sys = False
        for label, marks in MARKERS:
            if label.startswith("syscall:"):
                if seen_sys:
                    continue
                if any(m in syms for m in marks):
                    seen_sys = True
                    counts[label] = counts.get(label, 0) + 1
            elif any(m in syms for m in marks):
                counts[label] = counts.get(label, 0) + 1
    return {k: 100.0 * v / n for k, v in counts.items()} if n else {}


def perf_top(path, pids, fn, out_txt):
    """fn() under `perf record -g -p pids`; writes the report to out_txt and
    returns (fn's result, {kernel_pct, user_pct, top: [(pct, dso, sym)]})."""
    argv = ["perf", "record", "-q", "-g", "-F", "999", "-o", path,
            "-p", ",".join(str(p) for p in pids)]
    rec = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
    time.sleep(0.5)          # let it attach
    try:
        res = fn()
    finally:
        rec.send_signal(signal.SIGINT)
        rec.wait(timeout=60)
    rep = subprocess.run(["perf", "report", "-i", path, "--stdio", "--no-children",
                          "-g", "none", "--percent-limit", "0.5",
                          "--sort", "dso,sym"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
    callers = subprocess.run(["perf", "report", "-i", path, "--stdio", "--children",
                              "-g", "caller,0.5,callee,function,percent",
                              "--percent-limit", "3", "--sort", "sym"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             text=True).stdout
    with open(out_txt, "w") as f:
        f.write(rep)
        f.write("\n\n# ---- with children (inclusive), callers\n")
        f.write(callers)
    folded = fold(path)
    with open(out_txt, "a") as f:
        f.write("\n\n# ---- inclusive shares of the samples (perf script, folded)\n")
        for k, v in sorted(folded.items(), key=lambda kv: -kv[1]):
            f.write("%6.1f%%  %s\n" % (v, k))
    top, kern = [], 0.0
    total = 0.0
    for line in rep.splitlines():
        w = line.split()
        if not w or not w[0].endswith("%") or line.startswith("#"):
            continue
        pct = float(w[0][:-1])
        dso = w[1]
        sym = " ".join(w[3:]) if len(w) > 3 else ""
        total += pct
        if "[k]" in line:
            kern += pct
        top.append((pct, dso, sym))
    return res, {"shares": folded, "kernel_pct_of_listed": kern, "listed_pct": total, "top": top[:25]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--proxies", default="snirelay,haproxy-splice,sniproxy")
    ap.add_argument("--steps", default="down,up,rate,serial")
    ap.add_argument("--mib", type=float, default=512, help="MiB per bulk run")
    ap.add_argument("--seconds", type=float, default=5, help="seconds per session run")
    ap.add_argument("--sessions", type=int, default=20000, help="at most, per session run")
    ap.add_argument("--conc", type=int, default=50)
    ap.add_argument("--no-perf", action="store_true")
    ap.add_argument("--no-strace", action="store_true")
    ap.add_argument("--bin-dir", default=os.path.join(bench.ROOT, "build", "bench"))
    ap.add_argument("--out", default=os.path.join(bench.ROOT, "build", "bench", "profile"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    bench.raise_nofile()
    bench.stop_on_signals()
    cs = bench.cores()
    proxy_cpu, client_cpu = (cs[0], cs[1]) if len(cs) >= 2 else (None, None)
    if client_cpu is not None:
        os.sched_setaffinity(0, {client_cpu})
    tmp = tempfile.mkdtemp(prefix="snirelay-profile-")
    os.chmod(tmp, 0o755)
    results = {}
    backend = None
    try:
        backend = bench.Backend(os.path.join(a.bin_dir, "backend"), tmp, client_cpu)
        runner = bench.Runner(argparse.Namespace(), tmp, os.path.join(a.bin_dir, "loadgen"),
                              backend, client_cpu)
        for name in a.proxies.split(","):
            for step in a.steps.split(","):
                key = "%s-%s" % (name, step)
                p = bench.Proxy(name, tmp, backend, proxy_cpu, tag="-" + step)
                why = p.skip or p.start()
                if why:
                    print("%s: skipped: %s" % (key, why), file=sys.stderr)
                    p.stop()
                    continue
                try:
                    pids = p.pids()
                    r = {}
                    # 1. plain
                    u0, s0, c0 = ustime(pids) + (ctxt(pids),)
                    units, unit, lg = workload(runner, p.port, step, a)
                    u1, s1, c1 = ustime(pids) + (ctxt(pids),)
                    scale = 1024 / units if unit == "MiB" else 1000 / units
                    r.update(unit=unit, units=units, loadgen=lg,
                             user_s=u1 - u0, sys_s=s1 - s0,
                             # per GiB (bulk) or per 1,000 sessions
                             user_per=(u1 - u0) * scale, sys_per=(s1 - s0) * scale,
                             vol_cs_per_unit=(c1[0] - c0[0]) / units,
                             invol_cs_per_unit=(c1[1] - c0[1]) / units)
                    # 2. perf
                    if not a.no_perf and shutil.which("perf"):
                        (pu, _, _), pr = perf_top(
                            os.path.join(a.out, key + ".perf.data"), pids,
                            lambda: workload(runner, p.port, step, a),
                            os.path.join(a.out, key + ".perf.txt"))
                        r["perf"] = pr
                    # 3. strace
                    if not a.no_strace and shutil.which("strace"):
                        sp = os.path.join(a.out, key + ".strace.txt")
                        counts, (su, _, _) = bench.strace_counts(
                            pids, lambda: workload(runner, p.port, step, a), sp)
                        r["syscalls_per_unit"] = {k: [c / su, e / su]
                                                  for k, (c, e) in sorted(
                                                      counts.items(),
                                                      key=lambda kv: -kv[1][0])}
                        r["syscalls_total_per_unit"] = sum(c for c, _ in counts.values()) / su
                    results[key] = r
                    print("%s: user %.3f sys %.3f (per %s), vol cs/%s %.2f, syscalls/%s %.2f"
                          % (key, r["user_per"], r["sys_per"],
                             "GiB" if unit == "MiB" else "1000 sessions", unit,
                             r["vol_cs_per_unit"], unit,
                             r.get("syscalls_total_per_unit", -1)), file=sys.stderr)
                finally:
                    p.stop()
    finally:
        if backend:
            backend.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    with open(os.path.join(a.out, "profile.json"), "w") as f:
        json.dump(results, f, indent=1)
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

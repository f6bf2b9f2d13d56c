#!/bin/sh
# bench/run.sh: `make bench`, `make bench-callgrind`, `make bench-syscalls`.
# Installs what is missing (bench/deps.sh), compiles the backend and the
# load generator, raises the open files limit, then runs
#   sh bench/run.sh [ARGS]            bench/bench.py (the side-by-side run)
#   sh bench/run.sh callgrind [ARGS]  bench/callgrind.py
#   sh bench/run.sh syscalls [ARGS]   bench/syscalls.py
#   sh bench/run.sh profile [ARGS]    bench/profile.py
# with Debian's python3; ARGS go to the script (`--help` lists them).
# BENCH_QUICK=1 makes bench.py a smoke run of a few minutes (--quick).
set -eu
cd "$(dirname "$0")/.."

if [ ! -x "${SNIRELAY_BIN:-build/snirelay}" ]; then
    echo "bench: ${SNIRELAY_BIN:-build/snirelay} is missing: run make first" >&2
    exit 1
fi
sh bench/deps.sh

# The backend and the load generator: small C programs, built here.
mkdir -p build/bench
CC=${CC:-cc}
for prog in backend loadgen; do
    if [ ! -x "build/bench/$prog" ] || [ "bench/$prog.c" -nt "build/bench/$prog" ]; then
        $CC -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -o "build/bench/$prog" "bench/$prog.c"
    fi
done

# ~9,500 idle sessions need ~19,000 descriptors in the proxy and 9,500 in
# the harness: the soft limit goes up to the hard one (20,000 on the
# machine these figures come from; a hard limit cannot be raised here).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

script=bench/bench.py
case "${1:-}" in
callgrind | syscalls | profile) script="bench/$1.py"; shift ;;
esac
if [ "$script" = bench/bench.py ] && [ -n "${BENCH_QUICK:-}" ] && [ "$BENCH_QUICK" != 0 ]; then
    set -- --quick "$@"
fi
exec /usr/bin/python3 "$script" "$@"

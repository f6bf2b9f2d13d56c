#!/bin/sh
# bench/run.sh: `make bench`. Installs what the benchmark needs from
# Debian 12 (nginx-core + libnginx-mod-stream, haproxy, sniproxy) without
# letting their services start, compiles the backend and load generator,
# then runs bench/bench.py with Debian's python3. Arguments are passed on
# to bench.py (e.g. `sh bench/run.sh --reps 1 --proxies snirelay,nginx`).
set -eu
cd "$(dirname "$0")/.."

if [ ! -x build/snirelay ]; then
    echo "bench: build/snirelay is missing: run make first" >&2
    exit 1
fi

# Debian 12 packages the stream module (built with ssl_preread) apart from
# nginx itself: nginx-core + libnginx-mod-stream (nginx-full has both).
PKGS="nginx-core libnginx-mod-stream haproxy sniproxy"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
        missing="$missing $p"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then
        SUDO=sudo
    else
        SUDO=""
    fi
    # Keep invoke-rc.d from starting the packages' services: a policy-rc.d
    # that denies everything, only while we install, only if none exists.
    ours=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null &&
            $SUDO chmod 755 /usr/sbin/policy-rc.d && ours=1
    fi
    echo "bench: installing$missing"
    rc=0
    { $SUDO apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
            --no-install-recommends $missing; } || rc=$?
    [ -n "$ours" ] && $SUDO rm -f /usr/sbin/policy-rc.d
    # bench.py reports whatever is still missing as skipped, with the reason
    [ "$rc" -eq 0 ] || echo "bench: apt-get failed ($rc); running with what is there" >&2
fi

# The backend and the load generator: small C programs, built here.
mkdir -p build/bench
CC=${CC:-cc}
for prog in backend loadgen; do
    if [ ! -x "build/bench/$prog" ] || [ "bench/$prog.c" -nt "build/bench/$prog" ]; then
        $CC -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -o "build/bench/$prog" "bench/$prog.c"
    fi
done

# 2,000 idle sessions need ~6,000 descriptors across client, proxy and backend.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

exec /usr/bin/python3 bench/bench.py "$@"

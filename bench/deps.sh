#!/bin/sh
# bench/deps.sh: what `make bench`, `make bench-callgrind` and
# `make bench-syscalls` need from Debian 12, and only for them (building
# and testing snirelay need none of it: scripts/deps.sh is that list).
#   the peers: nginx-core + libnginx-mod-stream (Debian 12 packages the
#     stream module, built with ssl_preread, apart from nginx; nginx-full
#     would bring both), haproxy, sniproxy
#   gnuplot-nox (the plot), valgrind (bench-callgrind), strace
#     (bench-syscalls and the check that the splice peers do splice),
#     linux-perf (bench-profile)
# Only what is missing is installed, with a policy-rc.d that denies
# everything in place so the packages' services do not start (only if
# none exists; removed afterwards). If apt fails, the bench goes on and
# reports a missing peer as skipped, with the reason.
set -u
PKGS="nginx-core libnginx-mod-stream haproxy sniproxy gnuplot-nox valgrind strace linux-perf"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO=sudo
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
[ "$rc" -eq 0 ] || echo "bench: apt-get failed ($rc); running with what is there" >&2
exit 0

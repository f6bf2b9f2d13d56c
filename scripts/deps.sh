#!/bin/sh
# Installs the Debian 12 packages that building and testing snirelay need,
# and only those that are missing, so a second run costs one dpkg query.
# `deps.sh package`: those that building and testing the .deb need
# (make deb, make test-package) instead.
set -e
PKGS="build-essential clang xxd pkg-config libpcre2-dev libcmocka-dev \
libc-ares-dev libseccomp-dev zlib1g-dev python3-pytest openssl curl dnsmasq-base iproute2 procps mandoc man-db \
prometheus chromium"
if [ "${1:-}" = "package" ]; then
    PKGS="build-essential dpkg-dev debhelper lintian fakeroot xxd pkgconf \
libpcre2-dev libc-ares-dev libseccomp-dev zlib1g-dev adduser systemd \
logrotate util-linux python3-pytest"
fi
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing

#!/bin/bash
# Runs nginx's own stream regression tests (nginx-tests, stream_*.t) against
# build/snirelay: `make nginx-tests`. The tests are never copied into the
# project; NGINX_TESTS names a checkout (default ../shared/nginx-tests).
#
# One line per file: pass, FAIL (with the failed subtests), skip (with the
# reason Test::Nginx gave, and the [emerg] line when the skip is a config
# snirelay refused), or out-of-scope (a feature snirelay deliberately does
# not have: the reason is in the table below). Then a summary. Exit status 1
# when an in-scope file fails or is skipped.
set -u
cd "$(dirname "$0")/.."
top=$PWD
tests=${NGINX_TESTS:-../shared/nginx-tests}
bin=${SNIRELAY_BIN:-$top/build/snirelay}
jobs=${NGINX_TESTS_JOBS:-2}
only=${1:-}

if [ ! -d "$tests" ] || [ ! -f "$tests/lib/Test/Nginx.pm" ]; then
    echo "nginx-tests: no checkout at $tests (set NGINX_TESTS=DIR)" >&2
    exit 1
fi
tests=$(cd "$tests" && pwd)

# Perl modules the suite uses, from Debian.
pkgs="perl libio-socket-ssl-perl"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
        missing="$missing $p"
done
if [ -n "$missing" ]; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
fi

# Files that test what snirelay deliberately does not have.
declare -A out_of_scope=(
    [ssl]="needs TLS termination (listen ... ssl, ssl_certificate), also as its test backend: snirelay never holds keys"
    [udp]="UDP (listen ... udp): snirelay relays TCP only"
    [http]="needs nginx's http module as a test backend: snirelay has no http{}"
    [geoip]="GeoIP databases (ngx_stream_geoip_module): no MaxMind reader"
    [least_time]="least_time is an NGINX Plus balancing method"
)
scope_of() {
    case "$1" in
    stream_ssl.t | stream_ssl_alpn.t | stream_ssl_certificate*.t | \
    stream_ssl_conf_command.t | stream_ssl_ocsp.t | stream_ssl_realip.t | \
    stream_ssl_reject_handshake.t | stream_ssl_session_reuse.t | \
    stream_ssl_sni_protocols.t | stream_ssl_stapling.t | \
    stream_ssl_variables.t | stream_ssl_verify_client.t | stream_proxy_ssl*.t | \
    stream_proxy_protocol_ssl.t | stream_upstream_zone_ssl.t | \
    stream_server_name.t | stream_pass.t | stream_ssl_preread.t | \
    stream_ssl_preread_alpn.t)
        echo ssl ;;
    stream_udp_*.t | stream_variables.t) echo udp ;;
    stream_limit_conn.t | stream_limit_conn_complex.t | \
    stream_limit_conn_dry_run.t | stream_proxy_bind.t | stream_map.t) echo http ;;
    stream_geoip.t) echo geoip ;;
    stream_upstream_least_time.t) echo least_time ;;
    *) echo "" ;;
    esac
}

# Single subtests that are known to differ, with why. A file whose only
# failures are these passes (and says so).
declare -A version_subtests=(
    [stream_error_log.t]="6 7"
    [stream_ssl_preread_protocol.t]="5"
)
declare -A subtest_why=(
    [stream_error_log.t]='look for "nginx/1.x" in a log: snirelay logs its own name'
    [stream_ssl_preread_protocol.t]='sends a hello whose supported_versions extension says 7 bytes with 3 left: nginx reads it, our parser refuses a malformed hello'
)
# "2, 4, 6-7" -> "2 4 6 7"
expand() {
    echo "$1" | tr ',' '\n' | while read -r r; do
        [ -z "$r" ] && continue
        case "$r" in
        *-*) seq "${r%-*}" "${r#*-}" ;;
        *) echo "$r" ;;
        esac
    done | tr '\n' ' '
}

out=$(mktemp -d /tmp/nginx-tests.XXXXXX)
chmod 755 "$out"
runas=()
if [ "$(id -u)" -eq 0 ]; then
    # As root, Test::Nginx's workers drop to nobody and cannot reach the
    # test directory: run the suite as nobody (PINNED.md).
    runas=(runuser -u nobody --)
    chown nobody "$out"
fi

run_one() {
    local f=$1 d
    d="$out/${f%.t}"
    mkdir -p "$d/tmp"
    [ ${#runas[@]} -gt 0 ] && chown -R nobody "$d"
    (cd "$tests" && timeout 300 "${runas[@]}" env TMPDIR="$d/tmp" \
        TEST_NGINX_BINARY="$bin" TEST_NGINX_LEAVE=1 TEST_NGINX_UNSAFE=1 \
        prove "$f" >"$d/prove.out" 2>&1)
    echo $? >"$d/rc"
}
export -f run_one
export out tests bin
export runas_s="${runas[*]}"

files=$(cd "$tests" && ls stream_*.t)
[ -n "$only" ] && files=$(cd "$tests" && ls $only)
todo=()
for f in $files; do
    [ -z "$(scope_of "$f")" ] && todo+=("$f")
done
printf '%s\n' "${todo[@]}" |
    xargs -P "$jobs" -I{} bash -c 'runas=($runas_s); run_one "$@"' _ {}

pass=0 fail=0 skip=0 oos=0
for f in $files; do
    s=$(scope_of "$f")
    if [ -n "$s" ]; then
        printf '%-36s out-of-scope  %s\n' "$f" "${out_of_scope[$s]}"
        oos=$((oos + 1))
        continue
    fi
    d="$out/${f%.t}"
    rc=$(cat "$d/rc" 2>/dev/null || echo 1)
    res=$(cat "$d/prove.out")
    if echo "$res" | grep -q "skipped:"; then
        why=$(echo "$res" | sed -n 's/.*skipped: *//p' | head -1)
        emerg=$(cat "$d"/tmp/nginx-test-*/error.log 2>/dev/null |
            grep -m1 -o '\[emerg\].*')
        [ -n "$emerg" ] && why="$why; snirelay refused the config: $emerg"
        printf '%-36s skip          %s\n' "$f" "$why"
        skip=$((skip + 1))
    elif [ "$rc" = 0 ] && echo "$res" | grep -q "^Result: PASS"; then
        printf '%-36s pass\n' "$f"
        pass=$((pass + 1))
    else
        failed=$(echo "$res" | sed -n 's/^ *Failed tests\?: *//p' | head -1)
        allowed=${version_subtests[$f]:-}
        if [ -n "$failed" ] && [ -n "$allowed" ] &&
            echo "$res" | grep -q "Non-zero exit status" &&
            ! echo "$res" | grep -q "Parse errors"; then
            extra=""
            for n in $(expand "$failed"); do
                case " $allowed " in
                *" $n "*) ;;
                *) extra="$extra $n" ;;
                esac
            done
            if [ -z "$extra" ]; then
                printf '%-36s pass          (subtests %s %s)\n' \
                    "$f" "$allowed" "${subtest_why[$f]}"
                pass=$((pass + 1))
                continue
            fi
        fi
        [ -z "$failed" ] && failed=$(echo "$res" | grep -m1 -E 'Dubious|Bad plan|died|Parse errors' )
        [ "$rc" = 124 ] && failed="timed out after 300 s"
        printf '%-36s FAIL          %s\n' "$f" "$failed"
        fail=$((fail + 1))
    fi
done
echo "nginx-tests: $pass passed, $fail failed, $skip skipped, $oos out of scope" \
    "(of $(echo $files | wc -w) files; logs in $out)"
[ "$fail" -eq 0 ] && [ "$skip" -eq 0 ]

#!/bin/sh
# Fails on any #include "..." edge the layer diagram in docs/ARCHITECTURE.md
# does not allow, and on any header that does not compile on its own.
set -u
allowed() {
    case "$1" in
    proto) echo "proto" ;;
    core) echo "core" ;;
    conf) echo "core conf" ;;
    event) echo "core event" ;;
    log) echo "core log" ;;
    net) echo "core event net" ;;
    dns) echo "core event net log dns" ;;
    stream) echo "core conf event net log proto dns stream" ;;
    process) echo "core conf event net log proto dns stream process" ;;
    *) echo "" ;;
    esac
}
fail=0
for f in $(find src -name '*.[ch]' ! -name main.c | sort); do
    layer=$(echo "$f" | cut -d/ -f2)
    ok=$(allowed "$layer")
    for inc in $(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f"); do
        dep=$(echo "$inc" | cut -d/ -f1)
        [ "$dep" = "$inc" ] && dep=$layer # same-folder include
        case " $ok " in
        *" $dep "*) ;;
        *) echo "check-layers: $f includes $inc ($layer -> $dep not allowed)"
           fail=1 ;;
        esac
    done
done
# Every header compiles on its own.
for h in $(find src -name '*.h' | sort); do
    if ! echo "#include \"${h#src/}\"" |
        ${CC:-cc} -std=c11 -D_GNU_SOURCE -Isrc -Wall -Wextra -Werror \
            -fsyntax-only -x c - 2>/tmp/check-layers.$$; then
        echo "check-layers: $h does not compile on its own:"
        cat /tmp/check-layers.$$
        fail=1
    fi
done
rm -f /tmp/check-layers.$$
[ $fail -eq 0 ] && echo "check-layers: ok"
exit $fail

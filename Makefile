# snirelay: one non-recursive GNU make.
#   make / make all   build build/snirelay and the man pages (build/man/)
#   make man-lint     mandoc -Tlint both man pages (part of make test)
#   make install      binary, man pages and (if absent) the config, under
#                     DESTDIR + PREFIX (/usr/local), sbindir, mandir,
#                     sysconfdir (/etc when PREFIX is /usr); make uninstall
#   make deb          the Debian package (dpkg-buildpackage) in build/deb/
#   make test-package build it, lintian, install, run, reload, purge (root;
#                     not in make test)
#   make run          build and start on the embedded default config
#   make test         deps, layer check, man-lint, unit tests (plain + ASan/UBSan),
#                     integration tests (plain + ASan/UBSan binary), fuzz smoke
#   make fuzz         build the libFuzzer targets (clang) and run each for
#                     FUZZ_TIME seconds (600) over its corpus, one at a time
#   make fuzz-build   only build them
#   make nginx-tests  nginx's own stream_*.t against build/snirelay
#                     (NGINX_TESTS=DIR, default ../shared/nginx-tests)
#   make soak         mixed load, reloads and worker kills against
#                     build/snirelay for SOAK_SECONDS (default 600); not in test
#   make bench        snirelay next to nginx, HAProxy and sniproxy (~19 min);
#   make bench-callgrind, make bench-syscalls   instruction and system call
#                     counts; none of the bench targets is in test

CC       ?= gcc
PYTHON   ?= /usr/bin/python3
SOAK_SECONDS ?= 600
BUILD    ?= build
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS   ?= -O2 -g
CPPFLAGS += -D_GNU_SOURCE -Isrc
LIBS     := -lpcre2-8 -lcares -lz -lm $(shell pkg-config --libs libseccomp)
ALL_CFLAGS = -std=c11 $(WARN) $(CFLAGS) $(EXTRA_CFLAGS)

SRCS     := $(shell find src -name '*.c' ! -name main.c | sort)
OBJS     := $(SRCS:src/%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/default_conf.o
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNITS    := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZERS  := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)

SAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
             -fno-sanitize-recover=all

.PHONY: all run test deps unit integration asan asan-build fuzz fuzz-build \
        fuzz-smoke check-layers format clean bench bench-deps bench-callgrind \
        bench-syscalls bench-profile nginx-tests soak man-lint install uninstall deb \
        test-package

# Installation directories (GNU names); DESTDIR is prepended by install.
PREFIX     ?= /usr/local
prefix     ?= $(PREFIX)
exec_prefix ?= $(prefix)
sbindir    ?= $(exec_prefix)/sbin
sysconfdir ?= $(if $(filter /usr,$(prefix)),/etc,$(prefix)/etc)
datarootdir ?= $(prefix)/share
mandir     ?= $(datarootdir)/man

INSTALL    ?= install

MAN := $(BUILD)/man/snirelay.8 $(BUILD)/man/snirelay.conf.5

all: $(BUILD)/snirelay $(MAN)

deps:
	@sh scripts/deps.sh

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

# The default config is compiled in, so `make run` needs no file.
$(BUILD)/obj/default_conf.c: conf/default.conf
	@mkdir -p $(dir $@)
	(echo '/* generated from conf/default.conf */'; \
	 echo 'const char default_conf_text[] = {'; \
	 xxd -i < $<; echo ', 0x00 };') > $@

$(BUILD)/obj/default_conf.o: $(BUILD)/obj/default_conf.c
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/libsnirelay.a: $(OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/snirelay: $(BUILD)/obj/main.o $(BUILD)/libsnirelay.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libsnirelay.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests/unit $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS) -lcmocka

# The lines to try go to the terminal first; the status URL only once the
# embedded config has a status server.
# The man pages, from the directive tables and the README's reference rows:
# the generator fails (and so the build) on an undocumented directive.
$(BUILD)/tools/gen_man: tools/gen_man.c $(BUILD)/libsnirelay.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

# snirelay(8) gets the METRICS section the binary writes from the table
# the exposition uses (snirelay --metrics-man).
$(MAN) &: $(BUILD)/tools/gen_man README.md $(BUILD)/snirelay
	@mkdir -p $(BUILD)/man
	$(BUILD)/snirelay --metrics-man > $(BUILD)/man/metrics.roff
	$(BUILD)/tools/gen_man -x $(BUILD)/man/metrics.roff \
	    -f $(sysconfdir)/snirelay/snirelay.conf README.md $(BUILD)/man

# Both pages pass mandoc's strictest check (style level: any message fails)
# and groff's warnings as lintian runs them (man --warnings).
man-lint: $(MAN)
	mandoc -Tlint -Wstyle $(MAN)
	@for f in $(MAN); do \
	  out=$$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 \
	    man --warnings -E UTF-8 -l -Tutf8 -Z $$f 2>&1 >/dev/null); \
	  [ -z "$$out" ] || { echo "$$f: $$out"; exit 1; }; done
	@echo "man-lint: ok"

# What `make install` puts in place (the config only when there is none:
# an edited one is kept); `make uninstall` removes it (the config only when
# unedited).
INSTALLED_BIN  := $(DESTDIR)$(sbindir)/snirelay
INSTALLED_MAN  := $(DESTDIR)$(mandir)/man8/snirelay.8 \
                  $(DESTDIR)$(mandir)/man5/snirelay.conf.5
INSTALLED_CONF := $(DESTDIR)$(sysconfdir)/snirelay/snirelay.conf

install: $(BUILD)/snirelay $(MAN)
	$(INSTALL) -d $(DESTDIR)$(sbindir) $(DESTDIR)$(mandir)/man8 \
	    $(DESTDIR)$(mandir)/man5 $(DESTDIR)$(sysconfdir)/snirelay
	$(INSTALL) -m 755 $(BUILD)/snirelay $(INSTALLED_BIN)
	$(INSTALL) -m 644 $(BUILD)/man/snirelay.8 $(DESTDIR)$(mandir)/man8/
	$(INSTALL) -m 644 $(BUILD)/man/snirelay.conf.5 $(DESTDIR)$(mandir)/man5/
	@if [ -e $(INSTALLED_CONF) ]; then \
	  echo "install: keeping the existing $(INSTALLED_CONF)"; \
	else \
	  echo "$(INSTALL) -m 644 conf/snirelay.conf $(INSTALLED_CONF)"; \
	  $(INSTALL) -m 644 conf/snirelay.conf $(INSTALLED_CONF); \
	fi

uninstall:
	rm -f $(INSTALLED_BIN) $(INSTALLED_MAN)
	@if cmp -s conf/snirelay.conf $(INSTALLED_CONF); then \
	  echo "rm -f $(INSTALLED_CONF)"; rm -f $(INSTALLED_CONF); \
	  rmdir $(DESTDIR)$(sysconfdir)/snirelay 2>/dev/null || true; \
	elif [ -e $(INSTALLED_CONF) ]; then \
	  echo "uninstall: keeping the edited $(INSTALLED_CONF)"; \
	fi

# The Debian package, built by dpkg-buildpackage from a copy of the tree
# (build dirs and .git left out) in $(BUILD)/deb/, where the .deb lands.
VERSION := $(shell sed -n 's/.*SNIRELAY_VERSION "\(.*\)".*/\1/p' src/core/version.h)
DEB_DIR := $(BUILD)/deb

deb:
	rm -rf $(DEB_DIR)
	mkdir -p $(DEB_DIR)/snirelay-$(VERSION)
	tar --exclude-vcs --exclude='./build*' --exclude=./debian/build \
	    --exclude='__pycache__' -cf - . | tar -xf - -C $(DEB_DIR)/snirelay-$(VERSION)
	cd $(DEB_DIR)/snirelay-$(VERSION) && \
	    DEB_BUILD_OPTIONS=parallel=2 dpkg-buildpackage -us -uc -b
	@ls $(DEB_DIR)/*.deb

# Not in `make test` (about 100 s, and it installs a package on this
# machine, as root): builds the .deb, lintian must be clean, then it is
# installed, started (under systemd when PID 1 is systemd, else with the
# unit's command line), reloaded, checked serving and purged.
test-package:
	sh scripts/deps.sh package
	$(MAKE) deb
	lintian --fail-on error,warning --info $(DEB_DIR)/snirelay_$(VERSION)_*.changes
	SNIRELAY_DEB=$$(ls $(abspath $(DEB_DIR))/snirelay_$(VERSION)_*.deb) \
	    $(PYTHON) -m pytest -q -p no:cacheprovider tests/package

run: deps all
	@echo 'snirelay: forwarding 127.0.0.1:4443 to each SNI name on port 443; try:'
	@echo '    curl --connect-to ::127.0.0.1:4443 https://example.org/'
	@if grep -q '^[^#]*status;' conf/default.conf; then \
	  echo '    curl http://127.0.0.1:8080/   (the status page)'; fi
	./$(BUILD)/snirelay

unit: $(UNITS)
	@fail=0; for t in $(UNITS); do echo "== $$t"; ./$$t || fail=1; done; exit $$fail

integration: all
	SNIRELAY_BIN=$(abspath $(BUILD)/snirelay) $(PYTHON) -m pytest -q tests/integration

# The same tests against a clang ASan/UBSan build in build-asan/.
asan-build:
	$(MAKE) BUILD=build-asan CC=clang CFLAGS="$(SAN_FLAGS)" all $(UNIT_SRC:tests/unit/%.c=build-asan/tests/%)

asan: asan-build
	$(MAKE) BUILD=build-asan CC=clang CFLAGS="$(SAN_FLAGS)" unit integration

$(BUILD)/fuzz/%: tests/fuzz/%.c $(wildcard src/proto/*.[ch] src/dns/*.[ch])
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $< \
	    $(filter-out %/main.c,$(FUZZ_DEPS_$*)) $(FUZZ_LIBS_$*)

FUZZ_FLAGS := -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all

# Targets over config-time code link this instrumented copy of the library
# (the linker takes only the objects they reach).
FUZZ_LIB  := $(BUILD)/fuzz/libsnirelay-fuzz.a
FUZZ_OBJS := $(SRCS:src/%.c=$(BUILD)/fuzz/obj/%.o)

$(BUILD)/fuzz/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) -std=c11 $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link \
	    -MMD -MP -c $< -o $@

$(FUZZ_LIB): $(FUZZ_OBJS)
	@rm -f $@
	ar rcs $@ $^

FUZZ_DEPS_fuzz_tls_hello := src/proto/tls_hello.c
FUZZ_DEPS_fuzz_http_head := src/proto/http_head.c
FUZZ_DEPS_fuzz_http_req := src/proto/http_req.c
FUZZ_DEPS_fuzz_hostname := src/proto/hostname.c
FUZZ_DEPS_fuzz_proxy_proto := src/proto/proxy_proto.c
FUZZ_DEPS_fuzz_dns_cname := src/dns/cname.c src/dns/wire.c
FUZZ_LIBS_fuzz_dns_cname := -lcares
FUZZ_DEPS_fuzz_dns_srv := src/dns/srv.c src/dns/cname.c src/dns/wire.c
FUZZ_LIBS_fuzz_dns_srv := -lcares
FUZZ_DEPS_fuzz_resolv_conf := src/dns/resolv_conf.c
FUZZ_ON_LIB := fuzz_conf fuzz_tmpl fuzz_map fuzz_cidr
$(foreach t,$(FUZZ_ON_LIB),$(eval FUZZ_DEPS_$(t) := $(FUZZ_LIB)) \
    $(eval FUZZ_LIBS_$(t) := $(LIBS)) $(eval $(BUILD)/fuzz/$(t): $(FUZZ_LIB)))

fuzz-build: $(FUZZERS)

# Each target for FUZZ_TIME seconds, new inputs kept in build/fuzz/new-*.
FUZZ_TIME ?= 600
fuzz: fuzz-build
	@for f in $(FUZZERS); do n=$$(basename $$f); \
	  echo "== $$n ($(FUZZ_TIME) s)"; mkdir -p $(BUILD)/fuzz/new-$$n; \
	  ./$$f -max_total_time=$(FUZZ_TIME) -rss_limit_mb=2048 \
	    -dict=tests/fuzz/$${n#fuzz_}.dict \
	    $(BUILD)/fuzz/new-$$n tests/fuzz/corpus/$${n#fuzz_} || exit 1; done

# Replays each corpus and fuzzes 20 s more per target.
fuzz-smoke: fuzz-build
	@for f in $(FUZZERS); do n=$$(basename $$f); \
	  echo "== $$n"; mkdir -p $(BUILD)/fuzz/new-$$n; \
	  ./$$f -max_total_time=20 -dict=tests/fuzz/$${n#fuzz_}.dict \
	    $(BUILD)/fuzz/new-$$n tests/fuzz/corpus/$${n#fuzz_} || exit 1; done

check-layers:
	@sh scripts/check-layers.sh

test: deps all check-layers man-lint unit integration asan fuzz-smoke

format:
	clang-format -i $$(find src tests -name '*.[ch]')

nginx-tests: all
	bash scripts/nginx-tests.sh

# Not part of `make test`. bench/deps.sh installs the peers and tools
# (nginx, HAProxy, sniproxy, gnuplot, valgrind, strace) for these only.
bench-deps:
	@sh bench/deps.sh

# snirelay next to nginx, HAProxy (+ splice) and sniproxy: ~19 min;
# BENCH_QUICK=1 for a smoke run of a few minutes. See bench/README.md.
bench: all
	sh bench/run.sh

# Instructions per session and per KiB relayed, under callgrind (~1 min).
bench-callgrind: all
	sh bench/run.sh callgrind

# System calls per session and per MiB, snirelay and each peer (~2 min).
bench-syscalls: all
	sh bench/run.sh syscalls

# Where the CPU goes (perf record -g, user/system split, strace -c) under
# the bench's bulk and short-session workloads (~4 min).
bench-profile: all
	sh bench/run.sh profile

# Not part of `make test`: it takes SOAK_SECONDS (ten minutes by default).
soak: all
	SNIRELAY_BIN=$(abspath $(BUILD)/snirelay) $(PYTHON) tests/soak/soak.py \
	    --seconds $(SOAK_SECONDS)

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD)/obj $(BUILD)/fuzz/obj -name '*.d' 2>/dev/null)

# wf2jsm: webform submissions from PostgreSQL to Jira Service Management.
#
#   make            build bin/wf2jsm
#   make test       unit tests (cmocka), integration tests (real PostgreSQL, real
#                   curl, the JSM test server) under ASan+UBSan, valgrind, contract
#   make demo       the real job against a throwaway PostgreSQL and the test server
#   make fuzz       libFuzzer targets (tests/fuzz/), FUZZ_SECONDS each (default 60)
#   make bench      catch-up rate against a rate-limited JSM, client CPU and
#                   RSS by backlog, and the no-op tick against its floor
#   make install    PREFIX=/usr/local DESTDIR=

PREFIX ?= /usr/local
DESTDIR ?=
CC ?= cc
PKGS = libpq libcurl libcjson sqlite3 libcrypto libxml-2.0
DEPS_CHECK = pkg-config --exists $(PKGS) cmocka 2>/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v clang >/dev/null 2>&1 && echo yes
DEPS_OK := $(shell $(DEPS_CHECK))

# On a fresh machine the first make installs its own dependencies (and says
# so) before anything is compiled, so `make demo` and `make test` are all the
# set-up there is.
ifneq ($(DEPS_OK),yes)
ifeq ($(filter clean,$(MAKECMDGOALS)),)
$(info make: build dependencies are missing; running setup/install-deps.sh)
DEPS_INSTALL := $(shell sh setup/install-deps.sh 1>&2; echo $$?)
DEPS_OK := $(shell $(DEPS_CHECK))
endif
endif

CFLAGS ?= -O2 -g
WARN = -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wformat=2 -Wno-format-truncation
PKG_CFLAGS = $(if $(DEPS_OK),$(shell pkg-config --cflags $(PKGS)),)
# libcurl is not linked: modules/curl_loader.c loads it on the first Jira
# call, so that a tick with nothing new does not map it and its thirty-odd
# dependencies. libxml2 neither: modules/html_text.c loads it for the first
# HTML column (only its headers are needed to build). SQLite neither:
# modules/sqlite_loader.c maps it while PostgreSQL sets up the session.
PKG_LIBS = $(if $(DEPS_OK),$(shell pkg-config --libs $(filter-out libcurl libxml-2.0 sqlite3,$(PKGS))) -ldl,)
SAN = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

# Every module and job is picked up by its file: adding one is adding its
# .c/.h pair, with no list to keep in step.
MODULES = $(sort $(basename $(notdir $(wildcard modules/*.c))))
JOBS = $(sort $(basename $(notdir $(wildcard jobs/*.c))))
MIGRATIONS = $(sort $(wildcard setup/migrations/*.sql))
PG_MIGRATIONS = $(sort $(wildcard setup/migrations/pg/*.sql))

MODULE_SRC = $(MODULES:%=modules/%.c) build/migrations.c build/migrations_pg.c
JOB_SRC = $(JOBS:%=jobs/%.c)
HEADERS = $(wildcard modules/*.h jobs/*.h)

.PHONY: all deps test unit integration contract valgrind fuzz bench demo install clean

all: deps bin/wf2jsm

deps:
ifneq ($(DEPS_OK),yes)
	@echo "make: dependencies are still missing after setup/install-deps.sh; see its output above" >&2
	@exit 1
endif

build/migrations.c: $(MIGRATIONS) setup/embed-sql.sh
	@mkdir -p build
	sh setup/embed-sql.sh $@ $(MIGRATIONS)

build/migrations_pg.c: $(PG_MIGRATIONS) setup/embed-sql.sh
	@mkdir -p build
	sh setup/embed-sql.sh -n wf_pg_migrations $@ $(PG_MIGRATIONS)

bin/wf2jsm: $(MODULE_SRC) $(JOB_SRC) $(HEADERS)
	@mkdir -p bin
	$(CC) $(WARN) $(CFLAGS) $(PKG_CFLAGS) -o $@ $(MODULE_SRC) $(JOB_SRC) $(PKG_LIBS)

# The binary the tests drive: same sources, sanitizers on. The modules are
# compiled once into objects that it and every unit test link: compiling
# every module again for each of the unit tests took minutes of CI's time.
TEST_OBJS = $(MODULES:%=build/test/obj/%.o) build/test/obj/migrations.o build/test/obj/migrations_pg.o
.SECONDARY: $(TEST_OBJS)
build/test/obj/%.o: modules/%.c $(HEADERS)
	@mkdir -p build/test/obj
	$(CC) $(WARN) -O1 -g $(SAN) $(PKG_CFLAGS) -c -o $@ $<
build/test/obj/migrations.o: build/migrations.c
	@mkdir -p build/test/obj
	$(CC) $(WARN) -O1 -g $(SAN) -c -o $@ $<
build/test/obj/migrations_pg.o: build/migrations_pg.c
	@mkdir -p build/test/obj
	$(CC) $(WARN) -O1 -g $(SAN) -c -o $@ $<

build/test/wf2jsm: $(TEST_OBJS) $(JOB_SRC) $(HEADERS)
	@mkdir -p build/test
	$(CC) $(WARN) -O1 -g $(SAN) $(PKG_CFLAGS) -o $@ $(JOB_SRC) $(TEST_OBJS) $(PKG_LIBS)

UNIT_TESTS = $(patsubst tests/unit/%.c,build/test/%,$(wildcard tests/unit/test_*.c))
build/test/test_%: tests/unit/test_%.c $(TEST_OBJS) $(HEADERS)
	@mkdir -p build/test
	$(CC) $(WARN) -O1 -g $(SAN) $(PKG_CFLAGS) -o $@ $< $(TEST_OBJS) $(PKG_LIBS) $(shell pkg-config --libs cmocka)

# Fuzz targets: Debian's clang with libFuzzer, ASan and UBSan. The modules are
# built once with coverage instrumentation (fuzzer-no-link) and linked into
# every target; any crash, leak or sanitizer report fails `make fuzz`.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_FLAGS = -g -O1 -fno-omit-frame-pointer -fno-sanitize-recover=all
FUZZ_WARN = $(filter-out -Wno-format-truncation,$(WARN))
FUZZ_TARGETS = $(patsubst tests/fuzz/%.c,build/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_OBJS = $(MODULES:%=build/fuzz/obj/%.o) build/fuzz/obj/migrations.o build/fuzz/obj/migrations_pg.o
.SECONDARY: $(FUZZ_OBJS)
build/fuzz/obj/%.o: modules/%.c $(HEADERS)
	@mkdir -p build/fuzz/obj
	$(FUZZ_CC) $(FUZZ_WARN) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link,address,undefined $(PKG_CFLAGS) -c -o $@ $<
build/fuzz/obj/migrations.o: build/migrations.c
	@mkdir -p build/fuzz/obj
	$(FUZZ_CC) $(FUZZ_WARN) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link,address,undefined -c -o $@ $<
build/fuzz/obj/migrations_pg.o: build/migrations_pg.c
	@mkdir -p build/fuzz/obj
	$(FUZZ_CC) $(FUZZ_WARN) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link,address,undefined -c -o $@ $<
build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_util.h $(FUZZ_OBJS)
	$(FUZZ_CC) $(FUZZ_WARN) $(FUZZ_FLAGS) -fsanitize=fuzzer,address,undefined $(PKG_CFLAGS) -o $@ $< $(FUZZ_OBJS) $(PKG_LIBS)

fuzz: deps $(FUZZ_TARGETS)
	@sh tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

unit: deps $(UNIT_TESTS)
	@sh tests/run-unit.sh $(UNIT_TESTS)

integration: deps bin/wf2jsm build/test/wf2jsm
	python3 tests/integration/run.py

valgrind: deps bin/wf2jsm $(UNIT_TESTS)
	python3 tests/integration/run.py --valgrind

contract: deps bin/wf2jsm
	bash contract/run.sh

test: deps bin/wf2jsm build/test/wf2jsm $(UNIT_TESTS) $(FUZZ_TARGETS)
	@sh tests/run-all.sh

bench: deps bin/wf2jsm
	python3 tests/bench/catch_up.py

demo: deps bin/wf2jsm
	sh setup/demo.sh

install: bin/wf2jsm
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/doc/wf2jsm/examples
	install -m 0755 bin/wf2jsm $(DESTDIR)$(PREFIX)/bin/wf2jsm
	install -m 0644 docs/wf2jsm.1 $(DESTDIR)$(PREFIX)/share/man/man1/wf2jsm.1
	install -m 0644 .env.example cron/* $(DESTDIR)$(PREFIX)/share/doc/wf2jsm/examples/

clean:
	rm -rf bin build

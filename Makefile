# alua — Lua 5.4 with asyncio built in. Dependencies come from Debian's packages.
#   make          build build/bin/alua, build/lib/libalua.a, build/lua/asyncio.so
#   make run      install missing packages, build, run an example
#   make test     build and run the whole suite (last line: "N passed, N failed")
#   make check    the suite built with AddressSanitizer + UBSan
#   make valgrind the suite under valgrind memcheck
#   make tsan     the worker, to_thread and await specs built with ThreadSanitizer (clang)
#   make install  PREFIX=/usr/local DESTDIR=...: alua, libalua.{a,so}, alua.h, alua.pc,
#                 alua.1, asyncio.so for stock lua5.4, and under share/alua the LuaLS
#                 definitions (luals/) and the luacheck standard `alua` (luacheckrc)

BUILD    ?= build
CC       ?= cc
PKGS     := lua5.4 libuv openssl
# llhttp (Node's HTTP parser) is built from the sources Debian's node-llhttp installs
LLHTTP_DIR ?= /usr/share/llhttp
LLHTTP_INC ?= /usr/share/include/llhttp
OPT      ?= -O2 -g
SAN      ?=
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(if $(LUA_INCDIR),-I$(LUA_INCDIR))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS   += -std=c11 -D_GNU_SOURCE -Wall -Wextra -fPIC $(OPT) $(SAN) \
            -Iinclude -Iasync -Ivm -I$(LLHTTP_INC) $(PKG_CFLAGS)
LDFLAGS  += $(SAN)
LIBS     := $(PKG_LIBS) -lz -lm

ASYNC_SRC  := $(sort $(wildcard async/*.c async/*/*.c))
# the command's own: main, the REPL, and tsan.c (an object on the command's link line, not
# in the archive the link would not take it from, as nothing else needs it; empty but under
# ThreadSanitizer)
VM_SRC     := $(filter-out vm/main.c vm/repl.c vm/tsan.c,$(sort $(wildcard vm/*.c)))
STDLIB_LUA := $(shell find stdlib -name '*.lua' | sort)

LLHTTP_OBJ := $(addprefix $(BUILD)/obj/llhttp/,llhttp.o api.o http.o)
ASYNC_OBJ  := $(ASYNC_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/stdlib_files.o $(LLHTTP_OBJ)
VM_OBJ     := $(VM_SRC:%.c=$(BUILD)/obj/%.o)

ALUA       := $(BUILD)/bin/alua
LIBALUA    := $(BUILD)/lib/libalua.a
MODULE     := $(BUILD)/lua/asyncio.so
SOVERSION  := 0
SHLIB      := $(BUILD)/lib/libalua.so.$(SOVERSION)
PREFIX     ?= /usr/local
LUALS_DEFS := $(sort $(wildcard editor/luals/*.lua))
LUACHECKRC := $(BUILD)/share/luacheckrc

.PHONY: all run test check valgrind tsan deps clean install module install-module
all: $(ALUA) $(LIBALUA) $(SHLIB) $(MODULE) $(LUACHECKRC)

$(BUILD)/obj/%.o: %.c $(wildcard async/*/*.h vm/*.h include/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# generated code: its warnings are llhttp's, not ours
$(BUILD)/obj/llhttp/%.o: $(LLHTTP_DIR)/%.c $(LLHTTP_INC)/llhttp.h
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -Wall -Wextra,$(CFLAGS)) -w -c $< -o $@

$(BUILD)/obj/gen/stdlib_files.o: $(BUILD)/gen/stdlib_files.c async/core/stdlib_files.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/gen/stdlib_files.c: $(STDLIB_LUA) $(BUILD)/tools/embed
	@mkdir -p $(dir $@)
	$(BUILD)/tools/embed $(STDLIB_LUA) > $@.tmp && mv $@.tmp $@

$(BUILD)/tools/embed: tools/embed.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -o $@ $<

$(BUILD)/bin $(BUILD)/lib $(BUILD)/lua:
	@mkdir -p $@

$(LIBALUA): $(ASYNC_OBJ) $(VM_OBJ) | $(BUILD)/lib
	rm -f $@ && ar rcs $@ $^

# The command adds the REPL (readline) to the library, and links Lua statically, as
# Debian's /usr/bin/lua5.4 does: its calls into Lua are direct rather than through
# liblua5.4.so's PLT and position-independent code (spawn: -8 to -17% CPU per task,
# bench/RESULTS.md, issue 22 session 5). The whole archive, exported by -Wl,-E, so that C
# modules (cjson, LuaSocket) find every Lua function in the command. Embedders' libalua.so
# stays on the shared liblua5.4.
LUA_STATIC := $(shell pkg-config --variable=libdir lua5.4 2>/dev/null)/liblua5.4.a
$(ALUA): $(BUILD)/obj/vm/main.o $(BUILD)/obj/vm/repl.o $(BUILD)/obj/vm/tsan.o $(LIBALUA) | $(BUILD)/bin
	$(CC) $(LDFLAGS) -Wl,-E -o $@ $(BUILD)/obj/vm/main.o $(BUILD)/obj/vm/repl.o $(BUILD)/obj/vm/tsan.o $(LIBALUA) \
	  -Wl,--whole-archive $(LUA_STATIC) -Wl,--no-whole-archive \
	  $(filter-out -llua5.4,$(LIBS)) -lreadline -ldl

$(SHLIB): $(ASYNC_OBJ) $(VM_OBJ) | $(BUILD)/lib
	$(CC) $(LDFLAGS) -shared -Wl,-soname,libalua.so.$(SOVERSION) -o $@ $^ $(LIBS)
	ln -sf libalua.so.$(SOVERSION) $(BUILD)/lib/libalua.so

# The module for stock lua5.4: Lua's symbols come from the interpreter that loads it.
$(MODULE): $(ASYNC_OBJ) | $(BUILD)/lua
	$(CC) $(LDFLAGS) -shared -o $@ $^ $(shell pkg-config --libs libuv openssl 2>/dev/null) -lz -lm

# the luacheck standard, generated from the LuaLS definitions so that the two agree
$(LUACHECKRC): tools/luacheck_std.lua tools/luals_names.lua $(LUALS_DEFS) $(ALUA)
	@mkdir -p $(dir $@)
	$(ALUA) tools/luacheck_std.lua $(LUALS_DEFS) > $@.tmp && mv $@.tmp $@

deps:
	@scripts/install-deps.sh

run: deps
	@$(MAKE) --no-print-directory all
	$(ALUA) scripts/examples/hello.lua

test: all
	@ALUA=$(ALUA) MODULE_DIR=$(BUILD)/lua tests/run.sh

check:
	@$(MAKE) --no-print-directory BUILD=build/asan OPT="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" all
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ALUA=build/asan/bin/alua MODULE_DIR=build/asan/lua tests/run.sh

# ThreadSanitizer over the specs that use threads (workers, to_thread), and core_await_spec
# (chains of 20,000 awaits: Lua's longjmps through alua's C frames, vm/tsan.c). Not
# tests/cli/ctrl_c.sh: its SIGINTs into busy Lua loops time out under TSan, which runs a
# signal's handler only once the thread calls into libc, and a loop in uninstrumented Lua
# never does (bench/RESULTS.md, session 8, wt-carry).
tsan:
	@$(MAKE) --no-print-directory BUILD=build/tsan CC=clang OPT="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=thread" all
	@TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/tsan.supp" STRESS=$${STRESS:-quick} ONLY="$${ONLY:-workers core_await_spec}" \
	  ALUA=build/tsan/bin/alua MODULE_DIR=build/tsan/lua tests/run.sh

valgrind: all
	@ALUA=$(ALUA) MODULE_DIR=$(BUILD)/lua VALGRIND=1 tests/run.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	  $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/lua/5.4 $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(ALUA) $(DESTDIR)$(PREFIX)/bin/alua
	install -m 644 $(LIBALUA) $(DESTDIR)$(PREFIX)/lib/libalua.a
	install -m 755 $(SHLIB) $(DESTDIR)$(PREFIX)/lib/libalua.so.$(SOVERSION)
	ln -sf libalua.so.$(SOVERSION) $(DESTDIR)$(PREFIX)/lib/libalua.so
	install -m 644 include/alua.h $(DESTDIR)$(PREFIX)/include/alua.h
	install -m 755 $(MODULE) $(DESTDIR)$(PREFIX)/lib/lua/5.4/asyncio.so
	install -m 644 man/alua.1 $(DESTDIR)$(PREFIX)/share/man/man1/alua.1
	sed 's|@PREFIX@|$(PREFIX)|' alua.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/alua.pc
	install -d $(DESTDIR)$(PREFIX)/share/alua/luals
	install -m 644 $(LUALS_DEFS) $(DESTDIR)$(PREFIX)/share/alua/luals/
	install -m 644 $(LUACHECKRC) $(DESTDIR)$(PREFIX)/share/alua/luacheckrc

# for luarocks (alua-scm-1.rockspec): the module alone, installed where it says
module: $(MODULE)
install-module: $(MODULE)
	install -d $(LUA_LIBDIR_INSTALL)
	install -m 755 $(MODULE) $(LUA_LIBDIR_INSTALL)/asyncio.so

clean:
	rm -rf build

-include mk/*.mk

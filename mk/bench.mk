# bench.mk — the benchmark suite (bench/): alua side by side with Python asyncio, Node and
# raw C on libuv. Never part of `make test` at full size.
#   make bench        build, then every workload on every runtime (RUNS=5), table of medians
#   make bench-smoke  every benchmark program once with a tiny N (seconds): does it still run?
#   make bench-progs  only the raw C programs (build/bench/)

BENCH_C    := $(sort $(wildcard bench/c/*.c))
BENCH_PROGS := $(BENCH_C:bench/c/%.c=$(BUILD)/bench/%)

.PHONY: bench bench-smoke bench-progs bench-deps
bench-progs: $(BENCH_PROGS)

$(BUILD)/bench/%: bench/c/%.c bench/c/common.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -o $@ $< $(shell pkg-config --cflags --libs libuv)

# wrk measures workload E: installed when root, otherwise asked for
bench-deps:
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" -eq 0 ]; then echo "installing wrk"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null || \
	    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null; }; \
	  else echo "workload E needs wrk: run as root: apt-get install -y wrk (E is skipped meanwhile)" >&2; fi; }

bench: all bench-progs bench-deps
	@ALUA=$(ALUA) BENCH_BIN=$(BUILD)/bench bench/run

bench-smoke: all bench-progs
	@ALUA=$(ALUA) BENCH_BIN=$(BUILD)/bench bench/run --smoke

# alua linked against the static liblua5.4.a, whose symbol table names Lua's internal
# functions (the shared library is stripped): for bench/profile. The same objects and the
# same static Lua as the alua command (which links it too since session 5), so that the
# profiles stay valid when the command is built differently (make check's sanitizers).
VM_CMD_OBJ  := $(patsubst vm/%.c,$(BUILD)/obj/vm/%.o,$(filter-out $(VM_SRC),$(wildcard vm/*.c)))
.PHONY: bench-prof-bin bench-profile
bench-prof-bin: $(BUILD)/bench/alua-prof
$(BUILD)/bench/alua-prof: $(VM_CMD_OBJ) $(LIBALUA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -Wl,-E -o $@ $(VM_CMD_OBJ) $(LIBALUA) $(LUA_STATIC) \
	  $(filter-out -llua5.4,$(LIBS)) $(if $(wildcard vm/repl.c),-lreadline) -ldl

# make bench-profile W=spawn [PERF=1]: where alua's time goes (see bench/profile)
bench-profile: all bench-prof-bin
	@bench/profile $(if $(PERF),--perf) $(or $(W),spawn)

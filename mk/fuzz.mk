# fuzz.mk — C cores on their own under libFuzzer (clang, ASan+UBSan): the keyword
# transform (vm/syntax.c), a stream's read buffer (async/net/readbuf.c), and the HTTP
# parser on llhttp (async/net/http_parse.c) for requests and for responses (with
# async/net/inflate.c); and the speed check.
#   make fuzz [FUZZ_SECONDS=60]  each target for that long, from its seed corpus in tests/fuzz/
#   make bench-syntax            transform vs luac5.4 -p on a generated multi-megabyte file

FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_LUA     := $(shell pkg-config --cflags --libs lua5.4 2>/dev/null)

.PHONY: fuzz fuzz-runtime bench-syntax

# libFuzzer's runtime is a separate Debian package: say which when it is missing
fuzz-runtime:
	@printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }\n' | \
	  $(FUZZ_CC) -fsanitize=fuzzer -x c - -o /dev/null 2>/dev/null || { \
	  echo "make fuzz needs clang and libFuzzer: apt-get install -y clang libclang-rt-14-dev" >&2; \
	  exit 1; }

$(FUZZ_DIR)/syntax_fuzz: tests/fuzz/syntax_fuzz.c vm/syntax.c vm/syntax.h | fuzz-runtime
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	  -Ivm -o $@ tests/fuzz/syntax_fuzz.c vm/syntax.c $(FUZZ_LUA)

$(FUZZ_DIR)/stream_fuzz: tests/fuzz/stream_fuzz.c async/net/readbuf.c async/net/readbuf.h | fuzz-runtime
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
	  -fno-sanitize-recover=undefined -Iasync/net -o $@ tests/fuzz/stream_fuzz.c async/net/readbuf.c

HTTP_FUZZ_SRC := tests/fuzz/http_fuzz.c async/net/http_parse.c async/net/http_parse.h async/net/inflate.c async/net/inflate.h
HTTP_FUZZ_CC   = $(FUZZ_CC) -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
  -fno-sanitize-recover=undefined -Iasync/net -I$(LLHTTP_INC) tests/fuzz/http_fuzz.c async/net/http_parse.c \
  async/net/inflate.c $(LLHTTP_DIR)/llhttp.c $(LLHTTP_DIR)/api.c $(LLHTTP_DIR)/http.c -lz

$(FUZZ_DIR)/http_request_fuzz: $(HTTP_FUZZ_SRC) | fuzz-runtime
	@mkdir -p $(dir $@)
	$(HTTP_FUZZ_CC) -o $@

$(FUZZ_DIR)/http_response_fuzz: $(HTTP_FUZZ_SRC) | fuzz-runtime
	@mkdir -p $(dir $@)
	$(HTTP_FUZZ_CC) -DFUZZ_RESPONSE -o $@

# each target in turn; what a run finds new goes to build/fuzz/<target>_corpus
fuzz: $(FUZZ_DIR)/syntax_fuzz $(FUZZ_DIR)/stream_fuzz $(FUZZ_DIR)/http_request_fuzz $(FUZZ_DIR)/http_response_fuzz
	@mkdir -p $(FUZZ_DIR)/syntax_corpus $(FUZZ_DIR)/stream_corpus $(FUZZ_DIR)/http_request_corpus \
	  $(FUZZ_DIR)/http_response_corpus
	$(FUZZ_DIR)/syntax_fuzz -max_total_time=$(FUZZ_SECONDS) -timeout=5 -max_len=4096 \
	  -dict=tests/fuzz/syntax.dict -print_final_stats=1 $(FUZZ_DIR)/syntax_corpus tests/fuzz/syntax_corpus
	$(FUZZ_DIR)/stream_fuzz -max_total_time=$(FUZZ_SECONDS) -timeout=5 -max_len=4096 \
	  -print_final_stats=1 $(FUZZ_DIR)/stream_corpus tests/fuzz/stream_corpus
	$(FUZZ_DIR)/http_request_fuzz -max_total_time=$(FUZZ_SECONDS) -timeout=5 -max_len=4096 \
	  -dict=tests/fuzz/http.dict -print_final_stats=1 $(FUZZ_DIR)/http_request_corpus tests/fuzz/http_request_corpus
	$(FUZZ_DIR)/http_response_fuzz -max_total_time=$(FUZZ_SECONDS) -timeout=5 -max_len=4096 \
	  -dict=tests/fuzz/http.dict -print_final_stats=1 $(FUZZ_DIR)/http_response_corpus tests/fuzz/http_response_corpus

$(FUZZ_DIR)/syntax_speed: tests/fuzz/syntax_speed.c vm/syntax.c vm/syntax.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 -Ivm -o $@ tests/fuzz/syntax_speed.c vm/syntax.c

bench-syntax: $(FUZZ_DIR)/syntax_speed
	@SYNTAX_SPEED=$(FUZZ_DIR)/syntax_speed bench/syntax_speed.sh

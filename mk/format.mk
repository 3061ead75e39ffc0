# format.mk — the one C style of async/, vm/ and include/ (.clang-format, clang-format 14).
#   make format        rewrites the files in place
#   make format-check  fails (CI) when a file differs from what clang-format makes of it

FORMAT_SRC := $(sort $(wildcard async/*.c async/*/*.[ch] vm/*.[ch] include/*.h))

.PHONY: format format-check
format:
	clang-format -i $(FORMAT_SRC)

format-check:
	@clang-format --dry-run -Werror $(FORMAT_SRC) && \
	  echo "format-check: $(words $(FORMAT_SRC)) files follow .clang-format"

/* common.h — small helpers shared by the raw libuv reference programs. */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define CHECK(expr)                                                              \
  do {                                                                           \
    int rc_ = (expr);                                                            \
    if (rc_ < 0) {                                                               \
      fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr, uv_strerror(rc_)); \
      exit(1);                                                                   \
    }                                                                            \
  } while (0)

/* A value in kB from /proc/self/status ("VmRSS", "VmHWM"). */
static inline long status_kb(const char *key) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  size_t n = strlen(key);
  long kb = -1;
  if (!f) return -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, key, n) == 0 && line[n] == ':') {
      kb = strtol(line + n + 1, NULL, 10);
      break;
    }
  fclose(f);
  return kb;
}

/* The delay generator shared by every language: a 31-bit LCG, seed 42; each call
   gives the next delay in whole milliseconds, 0..max_ms (1000 in the benchmark). */
static inline unsigned lcg_next_ms(unsigned *state, unsigned max_ms) {
  *state = (*state * 1103515245u + 12345u) & 0x7fffffffu;
  return *state % (max_ms + 1);
}

#endif

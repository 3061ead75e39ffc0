/* syntax_speed.c — times syntax_translate on a file: the best of N runs, in milliseconds;
   writes the translation to OUT when given. */
#define _POSIX_C_SOURCE 200809L  /* clock_gettime */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "syntax.h"

static double now_ms(void)
{
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
  FILE *f = argc > 1 ? fopen(argv[1], "rb") : NULL;
  FILE *o;
  int runs = argc > 2 ? atoi(argv[2]) : 20, i;
  double best = 1e300;
  size_t len = 0, cap = 1 << 20, got;
  char *src = malloc(cap);
  if (!f || !src) {
    fprintf(stderr, "usage: syntax_speed FILE [RUNS [OUT]]\n");
    return 2;
  }
  while ((got = fread(src + len, 1, cap - len, f)) > 0)
    if ((len += got) == cap && !(src = realloc(src, cap *= 2)))
      return 2;
  fclose(f);
  for (i = 0; i < runs; i++) {
    struct syntax_output out;
    double t0 = now_ms(), t;
    int st = syntax_translate(src, len, &out);
    t = now_ms() - t0;
    if (st != SYNTAX_OK) {
      fprintf(stderr, "syntax_speed: %s: line %d: %s\n", argv[1], out.line, out.msg);
      return 1;
    }
    if (i == 0 && argc > 3 && (!(o = fopen(argv[3], "wb")) || fwrite(out.text, 1, out.len, o) != out.len ||
                               fclose(o) != 0)) {
      perror(argv[3]);
      return 1;
    }
    syntax_output_free(&out);
    if (t < best)
      best = t;
  }
  printf("%.3f\n", best);
  free(src);
  return 0;
}

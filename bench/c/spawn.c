/* spawn.c — workload A in raw C on libuv: N "tasks" (a heap record with a function
   that returns its index) queued on a ready list that a uv_idle handle drains; the
   result of each lands in a results array, as gather would collect them.
   usage: spawn [N]   prints ns_per_task=... */
#include "common.h"

typedef struct job {
  struct job *next;
  long index;
  long (*fn)(struct job *);
} job;

static job *head, *tail;
static long *results;
static long pending;

static long body(job *j) { return j->index; }

static void idle_cb(uv_idle_t *h) {
  job *j = head;
  head = tail = NULL;
  while (j) {
    job *next = j->next;
    results[j->index] = j->fn(j);
    free(j);
    pending--;
    j = next;
  }
  if (pending == 0) uv_idle_stop(h);
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 200000;
  uv_loop_t *loop = uv_default_loop();
  uv_idle_t idle;
  results = calloc(n, sizeof *results);
  uint64_t t0 = uv_hrtime();
  for (long i = 0; i < n; i++) {
    job *j = malloc(sizeof *j);
    j->next = NULL;
    j->index = i;
    j->fn = body;
    if (tail) tail->next = j; else head = j;
    tail = j;
  }
  pending = n;
  CHECK(uv_idle_init(loop, &idle));
  CHECK(uv_idle_start(&idle, idle_cb));
  uv_run(loop, UV_RUN_DEFAULT);
  uint64_t t1 = uv_hrtime();
  for (long i = 0; i < n; i++)
    if (results[i] != i) { fprintf(stderr, "wrong result at %ld\n", i); return 1; }
  printf("ns_per_task=%.1f\n", (double)(t1 - t0) / n);
  return 0;
}

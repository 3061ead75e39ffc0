/* timers.c — workload C in raw C on libuv: N timers, one uv_timer_t per sleeper, each
   with a delay from the shared LCG. Wall time to the last expiry and peak RSS per sleeper.
   usage: timers [N] [MAX_MS]   prints wall_s=... bytes_per_task=... delay_sum_ms=... */
#include "common.h"

typedef struct sleeper {
  uv_timer_t timer;
  long index;
} sleeper;

static long pending;
static long *done_order;

static void close_cb(uv_handle_t *h) { free(h->data); }

static void fire(uv_timer_t *t) {
  sleeper *s = t->data;
  done_order[--pending] = s->index;
  uv_close((uv_handle_t *)t, close_cb);
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 100000;
  unsigned max_ms = argc > 2 ? (unsigned)atoi(argv[2]) : 1000;
  uv_loop_t *loop = uv_default_loop();
  long base_kb = status_kb("VmRSS");
  unsigned state = 42;
  long long sum = 0;
  done_order = calloc(n, sizeof *done_order);
  uint64_t t0 = uv_hrtime();
  for (long i = 0; i < n; i++) {
    unsigned ms = lcg_next_ms(&state, max_ms);
    sum += ms;
    sleeper *s = malloc(sizeof *s);
    s->index = i;
    s->timer.data = s;
    CHECK(uv_timer_init(loop, &s->timer));
    CHECK(uv_timer_start(&s->timer, fire, ms, 0));
  }
  pending = n;
  uv_run(loop, UV_RUN_DEFAULT);
  uint64_t t1 = uv_hrtime();
  long peak_kb = status_kb("VmHWM");
  printf("wall_s=%.3f bytes_per_task=%.0f delay_sum_ms=%lld\n", (double)(t1 - t0) / 1e9,
         (double)(peak_kb - base_kb) * 1024.0 / n, sum);
  return 0;
}

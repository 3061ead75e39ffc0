/* timer.c — one binary heap of deadlines per loop, served by a single uv_timer. */
#include <math.h>
#include <stdlib.h>

#include "core.h"

/* Far enough to mean "never" without overflowing libuv's millisecond arithmetic. */
#define TIMER_FOREVER_MS ((uint64_t)1 << 40)

static void timer_cb(uv_timer_t *t);

/* The heap orders entries by deadline, then by insertion order. The deadline is read
   from the array, never from the node: a node lives in its Task, Future or handle, and
   with 100,000 sleepers (workload C) the nodes a sift compares are all over the heap of
   Lua objects, a cache miss each (~1.5 per insertion, two per level of a removal), while
   the array's entries sit side by side. Only equal deadlines read the nodes' order. */
static int entry_before(const timer_entry *a, const timer_entry *b) {
  return a->when < b->when || (a->when == b->when && (int32_t)(a->node->seq - b->node->seq) < 0);
}

static void heap_place(loop_state *loop, timer_entry e, size_t i) {
  loop->heap[i] = e;
  e.node->index = (uint32_t)i;
}

static void heap_sift_up(loop_state *loop, size_t i) {
  timer_entry e = loop->heap[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!entry_before(&e, &loop->heap[parent])) break;
    heap_place(loop, loop->heap[parent], i);
    i = parent;
  }
  heap_place(loop, e, i);
}

static void heap_sift_down(loop_state *loop, size_t i) {
  timer_entry e = loop->heap[i];
  size_t count = loop->heap_count;
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= count) break;
    if (child + 1 < count && entry_before(&loop->heap[child + 1], &loop->heap[child])) child++;
    if (!entry_before(&loop->heap[child], &e)) break;
    heap_place(loop, loop->heap[child], i);
    i = child;
  }
  heap_place(loop, e, i);
}

/* Arms the uv timer for the earliest deadline. libuv counts whole milliseconds from its
   cached clock; rounding the deadline up means the timer never fires before it. */
static void timer_arm(loop_state *loop) {
  if (loop->closed) return;
  if (loop->heap_count == 0) {
    uv_timer_stop(loop->timer);
    return;
  }
  uint64_t when = loop->heap[0].when;
  uint64_t due_ms = (when + 999999) / 1000000;
  uint64_t now_ms = uv_now(loop->uv);
  uint64_t timeout = due_ms > now_ms ? due_ms - now_ms : 0;
  if (timeout > TIMER_FOREVER_MS) timeout = TIMER_FOREVER_MS;
  uv_timer_start(loop->timer, timer_cb, timeout, 0);
}

void timer_schedule(loop_state *loop, timer_node *node, uint64_t when) {
  if (loop->heap_count == TIMER_NOT_QUEUED) abort(); /* a billion timers: no index left */
  if (loop->heap_count == loop->heap_cap) {
    size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
    timer_entry *heap = realloc(loop->heap, cap * sizeof *heap);
    if (heap == NULL) abort();
    loop->heap = heap;
    loop->heap_cap = cap;
  }
  node->seq = (uint32_t)loop->timer_seq++;
  heap_place(loop, (timer_entry){when, node}, loop->heap_count++);
  heap_sift_up(loop, node->index);
  if (node->index == 0) timer_arm(loop);
}

/* The node keeps no deadline of its own (8 bytes less in every Future and Task): its
   entry in the array has it. */
uint64_t timer_when(loop_state *loop, const timer_node *node) {
  return loop->heap[node->index].when;
}

void timer_remove(loop_state *loop, timer_node *node) {
  size_t i = node->index;
  if (i == TIMER_NOT_QUEUED) return;
  node->index = TIMER_NOT_QUEUED;
  timer_entry last = loop->heap[--loop->heap_count];
  if (i == loop->heap_count) {
    if (loop->heap_count == 0) timer_arm(loop);
    return;
  }
  heap_place(loop, last, i);
  if (i > 0 && entry_before(&last, &loop->heap[(i - 1) / 2]))
    heap_sift_up(loop, i);
  else
    heap_sift_down(loop, i);
  /* a stale earlier arming only costs one wake-up that finds nothing due */
}

static timer_node *heap_pop(loop_state *loop) {
  timer_node *top = loop->heap[0].node;
  top->index = TIMER_NOT_QUEUED;
  timer_entry last = loop->heap[--loop->heap_count];
  if (loop->heap_count > 0) {
    heap_place(loop, last, 0);
    heap_sift_down(loop, 0);
  }
  return top;
}

static void timer_fire(loop_state *loop, timer_node *node) {
  if (node->kind == TIMER_FUTURE) {
    future *f = container_of(node, future, timer);
    future_complete(f, FUT_RESULT);
  } else if (node->kind == TIMER_TASK) {
    task_timer_fired(loop, container_of(node, task, base.timer));
  } else {
    loop_push_ready(loop, &container_of(node, handle, timer)->run);
  }
}

/* Pure C: completing a sleep only queues its waiters, so no Lua runs inside uv_run here. */
static void timer_cb(uv_timer_t *t) {
  loop_state *loop = t->data;
  uint64_t now = uv_hrtime();
  while (loop->heap_count > 0 && loop->heap[0].when <= now) timer_fire(loop, heap_pop(loop));
  timer_arm(loop);
}

int timer_init(loop_state *loop) {
  loop->timer = malloc(sizeof *loop->timer);
  if (loop->timer == NULL) return -1;
  uv_timer_init(loop->uv, loop->timer);
  loop->timer->data = loop;
  return 0;
}

static void timer_free_cb(uv_handle_t *h) { free(h); }

void timer_close(loop_state *loop) {
  for (size_t i = 0; i < loop->heap_count; i++) loop->heap[i].node->index = TIMER_NOT_QUEUED;
  loop->heap_count = 0;
  uv_close((uv_handle_t *)loop->timer, timer_free_cb);
}

/* Checks a delay argument in seconds and converts it; math.huge means forever. */
uint64_t timer_delay_to_ns(lua_State *L, int arg, const char *fname) {
  if (lua_type(L, arg) != LUA_TNUMBER) /* at the user's line, as every bad argument */
    argcheck_error(L, "%s: delay must be a number of seconds, got %s", fname,
                   argcheck_describe(L, arg));
  lua_Number d = lua_tonumber(L, arg);
  if (d != d) argcheck_error(L, "%s: delay is NaN", fname);
  return timer_seconds_to_ns(d);
}

/* d seconds (not NaN) in ns: 0 for a delay not positive, "forever" for centuries. */
uint64_t timer_seconds_to_ns(lua_Number d) {
  if (d <= 0) return 0;
  if (d >= 1.8e10 || isinf(d)) return UINT64_MAX / 2; /* centuries: "forever" */
  return (uint64_t)(d * 1e9);
}

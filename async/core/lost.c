/* lost.c — timely reports of task errors nobody will see. A task that fails while
   nothing waits on it (no awaiting task, no done callback, no gather) is reported
   when it is collected ("Task exception was never retrieved"), and a long-running
   server may not collect for a long time. So such a failure arms a timer: half a second
   later a full collection runs, and a failed task nobody holds any more is collected
   and reported then. A task someone still holds (to await it later) is not collected,
   so it is never reported wrongly. The timer is unreferenced: it never keeps a
   finished program alive. At most one collection per half second, and only after such
   failures. */
#include <stdlib.h>

#include "core.h"

#define LOST_CHECK_DELAY_MS 500

static void lost_timer_cb(uv_timer_t *h) {
  loop_state *loop = h->data;
  lua_gc(loop->L, LUA_GCCOLLECT, 0);
}

static void lost_free_cb(uv_handle_t *h) { free(h); }

int lost_init(loop_state *loop) {
  loop->lost_timer = malloc(sizeof *loop->lost_timer);
  if (loop->lost_timer == NULL) return UV_ENOMEM;
  uv_timer_init(loop->uv, loop->lost_timer);
  loop->lost_timer->data = loop;
  uv_unref((uv_handle_t *)loop->lost_timer);
  return 0;
}

void lost_close(loop_state *loop) {
  uv_close((uv_handle_t *)loop->lost_timer, lost_free_cb);
  loop->lost_timer = NULL;
}

/* A task failed with nothing waiting on it: collect soon, unless a check is due. */
void lost_watch(loop_state *loop) {
  if (loop->lost_timer == NULL || uv_is_active((uv_handle_t *)loop->lost_timer)) return;
  uv_timer_start(loop->lost_timer, lost_timer_cb, LOST_CHECK_DELAY_MS, 0);
}

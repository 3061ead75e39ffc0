/* toplevel.c — the top level of a script (or the REPL prompt) as the parent of the
   TaskGroup and timeout scopes made there, as a task is for scopes made inside it:
   cancelling it cancels what the top-level await in progress is waiting for, so that
   await raises CancelledError (the scope turns it into TimeoutError or stops the body
   for a failed child); a cancel while no top-level await runs waits for the next one.
   A cancel the awaited future cannot take (a gather whose children have all finished,
   its own completion queued) stays pending too, and the await in progress raises it
   when it returns, as a Task keeps a cancel its awaited future refused (must_cancel;
   Python's Task.cancel does the same): it was lost, the await returned the gather's
   results, and a worker awaiting gathers in a loop never saw its terminate(). */
#include "core.h"

/* loop_run_until, before running for f: a cancel that came while nothing was awaited
   (still pending if f cannot take it). */
void toplevel_deliver_cancel(lua_State *L, loop_state *loop, future *f) {
  if (loop->top_cancel_pending && future_cancel_any(L, f)) loop->top_cancel_pending = 0;
}

/* Cancels the top level: what its await in progress waits for, or its next await. */
void toplevel_cancel(lua_State *L, loop_state *loop) {
  loop->top_cancels++;
  if (loop->running_until == NULL || !future_cancel_any(L, loop->running_until))
    loop->top_cancel_pending = 1;
}

/* await_top_level, after an await that suspended: whether a cancel is pending (taken). */
int toplevel_take_cancel(loop_state *loop) {
  if (!loop->top_cancel_pending) return 0;
  loop->top_cancel_pending = 0;
  return 1;
}

/* core._top_level:cancel() */
static int l_top_level_cancel(lua_State *L) {
  toplevel_cancel(L, loop_get(L));
  lua_pushboolean(L, 1);
  return 1;
}

/* core._top_level:uncancel() -> the requests left */
static int l_top_level_uncancel(lua_State *L) {
  loop_state *loop = loop_get(L);
  if (loop->top_cancels > 0 && --loop->top_cancels == 0) loop->top_cancel_pending = 0;
  lua_pushinteger(L, loop->top_cancels);
  return 1;
}

static int l_top_level_cancelling(lua_State *L) {
  lua_pushinteger(L, loop_get(L)->top_cancels);
  return 1;
}

static int l_top_level_done(lua_State *L) {
  lua_pushboolean(L, 0);
  return 1;
}

static const luaL_Reg top_methods[] = {
    {"cancel", l_top_level_cancel},
    {"uncancel", l_top_level_uncancel},
    {"cancelling", l_top_level_cancelling},
    {"done", l_top_level_done},
    {NULL, NULL},
};

/* Adds core._top_level, the parent the scopes use outside every task. */
void toplevel_open(lua_State *L) {
  luaL_newlib(L, top_methods);
  lua_setfield(L, -2, "_top_level");
}

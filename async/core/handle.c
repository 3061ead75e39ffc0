/* handle.c — callback handles: call_soon, call_later, call_at and done callbacks. */
#include <math.h>

#include "core.h"

/* User values: 1 = the function, 2.. = its arguments, then, when the code that scheduled
   it had one, the ContextVar context it runs in (as Python's Handle copies it): a handle
   made where no variable was ever set carries nothing more. */

/* Pushes a new Handle with nuv user values, not scheduled. */
static handle *handle_alloc(lua_State *L, loop_state *loop, int nuv) {
  handle *h = lua_newuserdatauv(L, sizeof *h, nuv);
  h->run.kind = RUN_HANDLE;
  waiter_init(&h->wait, WAITER_HANDLE);
  h->timer.index = TIMER_NOT_QUEUED;
  h->timer.kind = TIMER_HANDLE;
  h->when = 0;
  h->loop = loop;
  h->target = NULL;
  h->ref = LUA_NOREF;
  h->nargs = 0;
  h->cancelled = h->has_context = h->deadline = h->fired = 0;
  type_setmetatable(L, &type_handle);
  return h;
}

int handle_new(lua_State *L, loop_state *loop, int fidx, int nargs) {
  fidx = lua_absindex(L, fidx);
  int has_context = loop->any_context && context_capture(L, loop); /* pushes it */
  handle *h = handle_alloc(L, loop, 1 + nargs + has_context);
  h->nargs = nargs;
  h->has_context = (uint8_t)has_context;
  for (int i = 0; i <= nargs; i++) {
    lua_pushvalue(L, fidx + i);
    lua_setiuservalue(L, -2, i + 1);
  }
  if (has_context) {
    lua_insert(L, -2); /* the handle above its context */
    lua_setiuservalue(L, -2, nargs + 2);
  }
  lua_replace(L, fidx);
  lua_pop(L, nargs);
  return 1;
}

void handle_wake(loop_state *loop, waiter *w, future *f) {
  (void)f;
  handle *h = container_of(w, handle, wait);
  h->target = NULL;
  loop_push_ready(loop, &h->run);
}

handle *handle_check(lua_State *L, int idx) { return type_check(L, idx, &type_handle, "Handle"); }

/* A scheduled handle must run even if the caller drops it: anchor it until it runs. */
void handle_anchor(lua_State *L, handle *h, int idx) {
  lua_pushvalue(L, idx);
  h->ref = anchor_take(L, h->loop);
}

void handle_release(lua_State *L, handle *h) {
  anchor_drop(L, h->loop, h->ref);
  h->ref = LUA_NOREF;
}

/* Keeps the error and where it happened, for the report. */
static int callback_msgh(lua_State *L) {
  lua_createtable(L, 0, 2);
  lua_pushvalue(L, 1);
  lua_setfield(L, -2, "error");
  error_traceback(L, L, 1, 1);
  lua_setfield(L, -2, "traceback");
  return 1;
}

/* A deadline handle is due: it cancels its target as target:cancel() would, from C. No
   Lua function is called and nothing is allocated on the way (the handle's slot was
   taken when it was scheduled; a cancel without a message keeps none), so a memory
   error cannot lose a deadline, as it can a Lua callback's whole work when the call
   itself needs memory (tests/c/alloc_test.c's sweep, a timeout scope's callback). */
static void handle_fire_deadline(lua_State *L, handle *h, int hidx) {
  h->fired = 1;
  lua_getiuservalue(L, hidx, 1);
  future *f = lua_touserdata(L, -1);
  if (f)
    future_cancel_any(L, f);
  else
    toplevel_cancel(L, h->loop);
}

/* Runs a due handle from the ready queue. Its errors are reported, never propagated:
   nothing is there to catch them (as in Python's "Exception in callback"). */
void handle_run(lua_State *L, handle *h) {
  int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->ref);
  handle_release(L, h);
  if (h->cancelled) {
    lua_settop(L, top);
    return;
  }
  if (h->deadline) {
    handle_fire_deadline(L, h, top + 1);
    lua_settop(L, top);
    return;
  }
  /* its own copy of the context it was scheduled in, if it or the top level has one */
  loop_state *loop = h->loop;
  int swap = h->has_context || loop->top_has_context, outer = 0;
  if (swap) {
    lua_getiuservalue(L, top + 1, h->nargs + 2);
    outer = context_enter(L, loop);
  }
  int base = top + 1 + swap; /* the handle, and the top-level context while swapped */
  lua_pushcfunction(L, callback_msgh);
  for (int i = 1; i <= h->nargs + 1; i++) lua_getiuservalue(L, top + 1, i);
  if (lua_pcall(L, h->nargs, 0, base + 1) != LUA_OK) {
    if (lua_istable(L, -1)) {
      lua_getfield(L, -1, "error");
      lua_getfield(L, -2, "traceback");
      loop_report(L, "Exception in callback:", -2, lua_tostring(L, -1));
    } else {
      loop_report(L, "Exception in callback:", -1, NULL);
    }
  }
  if (swap) {
    lua_settop(L, base);
    context_leave(L, loop, outer);
    /* a handle that runs again (a signal handler) keeps what it set, as in Python; one
       scheduled without a context has no slot and starts each run from none */
    if (h->has_context)
      lua_setiuservalue(L, top + 1, h->nargs + 2);
    else
      lua_pop(L, 1);
  }
  lua_settop(L, top);
}

/* ---- Lua API -------------------------------------------------------------- */

static int l_handle_cancel(lua_State *L) {
  handle *h = handle_check(L, 1);
  if (h->cancelled) return 0;
  h->cancelled = 1;
  if (h->timer.index != TIMER_NOT_QUEUED) {
    timer_remove(h->loop, &h->timer);
    handle_release(L, h);
  } else if (h->target) {
    future_remove_waiter(h->target, &h->wait);
    h->target = NULL;
    handle_release(L, h);
  } /* else it is in the ready queue (released when skipped there) or already ran */
  return 0;
}

static int l_handle_cancelled(lua_State *L) {
  lua_pushboolean(L, handle_check(L, 1)->cancelled);
  return 1;
}

static int l_handle_when(lua_State *L) {
  handle *h = handle_check(L, 1);
  if (h->when == 0) return 0;
  lua_pushnumber(L, (lua_Number)h->when / 1e9);
  return 1;
}

static int handle_tostring(lua_State *L) {
  handle *h = handle_check(L, 1);
  lua_pushfstring(L, "<Handle%s>", h->cancelled ? " cancelled" : "");
  return 1;
}

static void loop_check_self(lua_State *L) { type_check(L, 1, &type_loop, "loop"); }

/* loop:call_soon(fn, ...) */
static int l_loop_call_soon(lua_State *L) {
  loop_check_self(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  loop_state *loop = loop_get(L);
  handle_new(L, loop, 2, lua_gettop(L) - 2);
  handle *h = lua_touserdata(L, -1);
  handle_anchor(L, h, -1);
  loop_push_ready(loop, &h->run);
  return 1;
}

static int schedule_at(lua_State *L, uint64_t when) {
  luaL_checktype(L, 3, LUA_TFUNCTION);
  loop_state *loop = loop_get(L);
  handle_new(L, loop, 3, lua_gettop(L) - 3);
  handle *h = lua_touserdata(L, -1);
  handle_anchor(L, h, -1);
  h->when = when;
  timer_schedule(loop, &h->timer, when);
  return 1;
}

/* loop:call_later(delay, fn, ...). A negative delay is a deadline in the past, not 0:
   as in Python, call_later(-2) runs before an earlier call_later(-1). */
static int l_loop_call_later(lua_State *L) {
  loop_check_self(L);
  uint64_t delay = timer_delay_to_ns(L, 2, "call_later");
  uint64_t now = uv_hrtime();
  lua_Number back = -lua_tonumber(L, 2) * 1e9;
  if (back > 0) return schedule_at(L, back >= (lua_Number)now ? 0 : now - (uint64_t)back);
  return schedule_at(L, now + delay);
}

/* The time at idx on loop:time()'s clock in the timer heap's nanoseconds: before the
   clock's start is 0 (due at once), centuries away "forever". */
static uint64_t when_to_ns(lua_State *L, int idx, const char *fname) {
  lua_Number when = luaL_checknumber(L, idx);
  if (when != when) luaL_error(L, "%s: when is NaN", fname);
  return when <= 0 ? 0 : when >= 1.8e10 ? UINT64_MAX / 2 : (uint64_t)(when * 1e9);
}

/* loop:call_at(when, fn, ...) with `when` on loop:time()'s clock */
static int l_loop_call_at(lua_State *L) {
  loop_check_self(L);
  return schedule_at(L, when_to_ns(L, 2, "call_at"));
}

/* core._cancel_at(when, target): a Handle that cancels target (a Task or Future; nil:
   the top level) at `when` on loop:time()'s clock, or at once (as call_soon) if that has
   passed; what timeout scopes and wait_for arm. handle:cancel() disarms it. */
static int l_core_cancel_at(lua_State *L) {
  uint64_t ns = when_to_ns(L, 1, "_cancel_at");
  if (!lua_isnil(L, 2)) future_check(L, 2);
  lua_settop(L, 2);
  loop_state *loop = loop_get(L);
  handle *h = handle_alloc(L, loop, 1);
  h->deadline = 1;
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, -2, 1);
  handle_anchor(L, h, -1);
  if (ns <= uv_hrtime()) {
    loop_push_ready(loop, &h->run);
  } else {
    h->when = ns;
    timer_schedule(loop, &h->timer, ns);
  }
  return 1;
}

/* core._fired(handle): whether a deadline handle has run (cancelled its target). */
static int l_core_fired(lua_State *L) {
  lua_pushboolean(L, handle_check(L, 1)->fired);
  return 1;
}

static const luaL_Reg handle_methods[] = {
    {"cancel", l_handle_cancel},
    {"cancelled", l_handle_cancelled},
    {"when", l_handle_when},
    {NULL, NULL},
};

static const luaL_Reg loop_scheduling[] = {
    {"call_soon", l_loop_call_soon},
    {"call_later", l_loop_call_later},
    {"call_at", l_loop_call_at},
    {NULL, NULL},
};

static const luaL_Reg core_deadlines[] = {
    {"_cancel_at", l_core_cancel_at},
    {"_fired", l_core_fired},
    {NULL, NULL},
};

/* Creates the Handle metatable and adds the scheduling methods to the loop's, and the
   deadline handles' functions to the core table on top. */
void handle_open(lua_State *L) {
  luaL_setfuncs(L, core_deadlines, 0);
  luaL_newmetatable(L, HANDLE_MT);
  type_register(L, -1, &type_handle);
  luaL_newlib(L, handle_methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, handle_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  luaL_getmetatable(L, LOOP_MT);
  lua_getfield(L, -1, "__index");
  luaL_setfuncs(L, loop_scheduling, 0);
  lua_pop(L, 2);
}

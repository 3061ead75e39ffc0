/* future.c — Future: a result that will exist later, its waiters and its Lua methods. */
#include <stdio.h>

#include "core.h"

void future_init(future *f, loop_state *loop, uint8_t kind) {
  f->kind = kind;
  f->state = FUT_PENDING;
  f->retrieved = 0;
  f->sleeping = 0;
  f->nresults = 0;
  f->msg_ref = LUA_NOREF;
  f->loop = loop;
  f->first = NULL;
  f->timer.index = TIMER_NOT_QUEUED;
  f->timer.kind = TIMER_FUTURE;
}

future *future_new(lua_State *L, loop_state *loop) {
  future *f = lua_newuserdatauv(L, sizeof *f, FUV_COUNT - 1);
  future_init(f, loop, KIND_FUTURE);
  type_setmetatable(L, &type_future);
  debug_record(L, -1);
  return f;
}

/* A Task keeps its extra out of line, in a registry table by the task's address (set
   only when it has one, forgotten by task_gc): few tasks have a name or a traceback, and
   the user value would cost 16 bytes in every Task, sleeping ones included. */
static char task_extras_key;

/* Pushes the extra of the future at idx; returns its type. */
static int extra_push(lua_State *L, int idx) {
  future *f = lua_touserdata(L, idx);
  if (f->kind != KIND_TASK) return lua_getiuservalue(L, idx, FUV_EXTRA);
  if (!((task *)f)->has_extra) {
    lua_pushnil(L);
    return LUA_TNIL;
  }
  lua_rawgetp(L, LUA_REGISTRYINDEX, &task_extras_key);
  int type = lua_rawgetp(L, -1, f);
  lua_remove(L, -2);
  return type;
}

/* Pops the value on top into the extra of the future at idx (absolute). */
static void extra_store(lua_State *L, int idx) {
  future *f = lua_touserdata(L, idx);
  if (f->kind != KIND_TASK) {
    lua_setiuservalue(L, idx, FUV_EXTRA);
    return;
  }
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &task_extras_key) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &task_extras_key);
  }
  lua_insert(L, -2);
  lua_rawsetp(L, -2, f);
  lua_pop(L, 1);
  ((task *)f)->has_extra = 1;
  finalize_watch_task(L, (task *)f, idx); /* to forget it (task_finalize) */
}

void future_forget_extra(lua_State *L, future *f) {
  if (f->kind != KIND_TASK || !((task *)f)->has_extra) return;
  ((task *)f)->has_extra = 0;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &task_extras_key) == LUA_TTABLE) {
    lua_pushnil(L);
    lua_rawsetp(L, -2, f);
  }
  lua_pop(L, 1);
}

int future_get_extra(lua_State *L, int idx, int which) {
  int type = extra_push(L, idx);
  if (type == LUA_TTABLE) {
    type = lua_rawgeti(L, -1, which);
    lua_remove(L, -2);
    return type;
  }
  if (type == LUA_TSTRING && which == FEXTRA_NAME) return type;
  lua_pop(L, 1);
  lua_pushnil(L);
  return LUA_TNIL;
}

void future_set_extra(lua_State *L, int idx, int which) {
  idx = lua_absindex(L, idx);
  int type = extra_push(L, idx);
  if (type != LUA_TTABLE) {
    if (which == FEXTRA_NAME) { /* the name alone: the user value itself */
      lua_pop(L, 1);
      extra_store(L, idx);
      return;
    }
    lua_createtable(L, 2, 0);
    if (type == LUA_TSTRING) { /* the name already set */
      lua_pushvalue(L, -2);
      lua_rawseti(L, -2, FEXTRA_NAME);
    }
    lua_replace(L, -2);
    lua_pushvalue(L, -1);
    extra_store(L, idx);
  }
  lua_insert(L, -2);
  lua_rawseti(L, -2, which);
  lua_pop(L, 1);
}

/* A Future or a Task (whose metatable inherits the Future type). */
future *future_test(lua_State *L, int idx) { return type_test(L, idx, &type_future); }

future *future_check(lua_State *L, int idx) {
  return type_check(L, idx, &type_future, "Future or Task");
}

/* A Future proper: what set_result and friends accept. */
static future *future_check_plain(lua_State *L, int idx) {
  future *f = future_check(L, idx);
  if (f->kind == KIND_TASK) luaL_typeerror(L, idx, "Future (not a Task)");
  return f;
}

/* ---- waiters -------------------------------------------------------------- */

static inline waiter *waiter_prev(const waiter *w) {
  return (waiter *)(w->prev_kind & ~(uintptr_t)3);
}

static inline void waiter_set_prev(waiter *w, waiter *prev) {
  w->prev_kind = (uintptr_t)prev | (w->prev_kind & 3);
}

/* A future's waiters are a list newest first: first is the newest, each waiter's next
   the one before it, its prev the one after it (NULL for the newest). Adding at the head
   needs no pointer to the last waiter (8 bytes less in every future and task), and the
   wake reverses the list to run them in the order they came. A gather's child entry
   keeps no prev (its link field holds its place in the gather, gather.c): nothing reads
   it, as such an entry leaves its list only when the future wakes it. */
static inline int waiter_keeps_prev(const waiter *w) { return waiter_kind_of(w) != WAITER_GATHER; }

void future_add_waiter(future *f, waiter *w) {
  waiter *newest = f->first;
  w->next = newest;
  if (newest && waiter_keeps_prev(newest)) waiter_set_prev(newest, w);
  f->first = w;
}

/* w: a task's or a done callback's (never a gather's child entry) */
void future_remove_waiter(future *f, waiter *w) {
  waiter *prev = waiter_prev(w), *next = w->next;
  if (prev)
    prev->next = next;
  else
    f->first = next;
  if (next && waiter_keeps_prev(next)) waiter_set_prev(next, prev);
  waiter_set_prev(w, NULL);
  w->next = NULL;
}

/* Queues every waiter, in the order they started waiting. Never calls into Lua: this
   runs inside timer and I/O callbacks. */
static void future_wake_all(loop_state *loop, future *f) {
  /* Top-level await runs the loop until f is done. Done inside a callback (a timer due at
     the start of an iteration), with nothing else to run, the loop would still block in
     poll until the next unrelated event, seconds away maybe: stop it after this turn. */
  if (f == loop->running_until) uv_stop(loop->uv);
  waiter *w = f->first, *oldest = NULL;
  f->first = NULL;
  while (w) { /* oldest first: the list is newest first */
    waiter *next = w->next;
    w->next = oldest;
    oldest = w;
    w = next;
  }
  for (w = oldest; w; w = oldest) {
    oldest = w->next;
    w->next = NULL;
    switch (waiter_kind_of(w)) {
      case WAITER_TASK:
        waiter_set_prev(w, NULL);
        task_wake(loop, w, f);
        break;
      case WAITER_HANDLE:
        waiter_set_prev(w, NULL);
        handle_wake(loop, w, f);
        break;
      case WAITER_GATHER: gather_child_done(loop, w, f); break;
    }
  }
}

/* ---- completing ----------------------------------------------------------- */

/* Completes the pending future f: FUT_RESULT, FUT_ERROR or FUT_CANCELLED (its value,
   error or message stored already), then queues its waiters. Every completion goes
   through here. Pure C: runs inside timer and I/O callbacks too. */
void future_complete(future *f, int state) {
  f->state = (uint8_t)state;
  future_wake_all(f->loop, f);
}

/* Makes a completed, unobserved future (no waiter left, its result taken) pending again,
   so that a steady reader reuses one future (waitset_add_one). */
void future_rearm(future *f) {
  f->state = FUT_PENDING;
  f->nresults = 0;
}

/* Stores the n values starting at `first` as the result of the future at fidx. */
void future_store_results(lua_State *L, int fidx, int first, int n) {
  future *f = lua_touserdata(L, fidx);
  fidx = lua_absindex(L, fidx);
  first = lua_absindex(L, first);
  if (n == 1) {
    lua_pushvalue(L, first);
  } else if (n == 0) {
    lua_pushnil(L);
  } else {
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
      lua_pushvalue(L, first + i);
      lua_rawseti(L, -2, i + 1);
    }
  }
  lua_setiuservalue(L, fidx, FUV_VALUE);
  f->nresults = n;
}

/* Cancels a pending future; msg_ref (owned by the future from now on) is the message. */
int future_cancel(lua_State *L, future *f, int msg_ref) {
  if (f->state != FUT_PENDING) {
    luaL_unref(L, LUA_REGISTRYINDEX, msg_ref);
    return 0;
  }
  if (f->kind == KIND_GATHER) return gather_cancel(L, f, msg_ref);
  if (f->sleeping) timer_remove(f->loop, &f->timer);
  f->msg_ref = msg_ref;
  future_complete(f, FUT_CANCELLED);
  return 1;
}

/* Cancels f without a message as f:cancel() would: a Task's cancel for a Task (what it
   awaits in its place), else the future's. Allocates nothing (no message to keep). */
int future_cancel_any(lua_State *L, future *f) {
  if (f->state != FUT_PENDING) return 0;
  if (f->kind == KIND_TASK) return task_cancel(L, (task *)f, 0);
  return future_cancel(L, f, LUA_NOREF);
}

/* Pushes the results of the done future at fidx and returns how many, or raises its
   error or its cancellation. */
int future_push_outcome(lua_State *L, future *f, int fidx) {
  switch (f->state) {
    case FUT_RESULT:
      if (f->nresults == 1) {
        lua_getiuservalue(L, fidx, FUV_VALUE);
        return 1;
      }
      if (f->nresults == 0) return 0;
      luaL_checkstack(L, f->nresults, "too many results");
      lua_getiuservalue(L, fidx, FUV_VALUE);
      lua_pushnil(L);
      if (lua_next(L, -2) == 0) { /* no value in the list: nils (gather.c's list of children
                                     that all returned nothing), pushed at once */
        lua_pop(L, 1);
        lua_settop(L, lua_gettop(L) + f->nresults);
        return f->nresults;
      }
      lua_pop(L, 2);
      for (int i = 1; i <= f->nresults; i++) lua_rawgeti(L, -i, i);
      lua_remove(L, -f->nresults - 1);
      return f->nresults;
    case FUT_ERROR:
      f->retrieved = 1;
      lua_getiuservalue(L, fidx, FUV_VALUE);
      future_get_extra(L, fidx, FEXTRA_TRACEBACK);
      error_relay_set(L, -2, -1);
      lua_pop(L, 1);
      return lua_error(L);
    case FUT_CANCELLED: task_push_cancelled_error(L, f->msg_ref); return lua_error(L);
    default: return error_raise(L, "InvalidStateError", "result is not set: the future is pending");
  }
}

/* ---- Lua methods ---------------------------------------------------------- */

static int future_lua_new(lua_State *L) {
  future_new(L, loop_get(L));
  return 1;
}

static int l_future_done(lua_State *L) {
  lua_pushboolean(L, future_check(L, 1)->state != FUT_PENDING);
  return 1;
}

static int l_future_cancelled(lua_State *L) {
  lua_pushboolean(L, future_check(L, 1)->state == FUT_CANCELLED);
  return 1;
}

static int l_future_result(lua_State *L) {
  future *f = future_check(L, 1);
  lua_settop(L, 1);
  return future_push_outcome(L, f, 1);
}

static int l_future_exception(lua_State *L) {
  future *f = future_check(L, 1);
  if (f->state == FUT_PENDING)
    return error_raise(L, "InvalidStateError", "exception is not set: the future is pending");
  if (f->state == FUT_CANCELLED) return future_push_outcome(L, f, 1);
  if (f->state == FUT_RESULT) return 0;
  f->retrieved = 1;
  lua_getiuservalue(L, 1, FUV_VALUE);
  return 1;
}

static future *future_check_settable(lua_State *L, const char *fname) {
  future *f = future_check_plain(L, 1);
  if (f->state != FUT_PENDING)
    error_raise(L, "InvalidStateError", "%s: the future is already done", fname);
  if (f->sleeping) luaL_error(L, "%s: asyncio.sleep's future resolves by itself", fname);
  return f;
}

static int l_future_set_result(lua_State *L) {
  future *f = future_check_settable(L, "set_result");
  future_store_results(L, 1, 2, lua_gettop(L) - 1);
  future_complete(f, FUT_RESULT);
  return 0;
}

static int l_future_set_exception(lua_State *L) {
  future *f = future_check_settable(L, "set_exception");
  luaL_argcheck(L, !lua_isnoneornil(L, 2), 2, "an error value expected");
  lua_settop(L, 2);
  lua_setiuservalue(L, 1, FUV_VALUE);
  if (!lua_istable(L, 2)) {
    luaL_traceback(L, L, NULL, 1);
    future_set_extra(L, 1, FEXTRA_TRACEBACK);
  }
  future_complete(f, FUT_ERROR);
  return 0;
}

static int l_future_cancel(lua_State *L) {
  future *f = future_check_plain(L, 1);
  lua_settop(L, 2);
  int ref = lua_isnil(L, 2) ? LUA_NOREF : luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushboolean(L, future_cancel(L, f, ref));
  return 1;
}

static int l_future_add_done_callback(lua_State *L) {
  future *f = future_check(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 1);
  handle_new(L, f->loop, lua_gettop(L) - 1, 1);
  handle *h = lua_touserdata(L, -1);
  handle_anchor(L, h, -1);
  if (f->state != FUT_PENDING) {
    loop_push_ready(f->loop, &h->run);
  } else {
    h->target = f;
    future_add_waiter(f, &h->wait);
  }
  return 0;
}

static int l_future_remove_done_callback(lua_State *L) {
  future *f = future_check(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  int removed = 0;
  waiter *w = f->first;
  while (w) {
    waiter *next = w->next;
    if (waiter_kind_of(w) == WAITER_HANDLE) {
      handle *h = container_of(w, handle, wait);
      lua_rawgeti(L, LUA_REGISTRYINDEX, h->ref);
      lua_getiuservalue(L, -1, 1);
      if (lua_rawequal(L, -1, 2)) {
        future_remove_waiter(f, w);
        h->target = NULL;
        handle_release(L, h);
        removed++;
      }
      lua_pop(L, 2);
    }
    w = next;
  }
  lua_pushinteger(L, removed);
  return 1;
}

static int l_future_get_name(lua_State *L) {
  future_check(L, 1);
  if (future_get_extra(L, 1, FEXTRA_NAME) == LUA_TNIL) lua_pushliteral(L, "Future");
  return 1;
}

static int l_future_set_name(lua_State *L) {
  future_check(L, 1);
  luaL_checkany(L, 2);
  luaL_tolstring(L, 2, NULL);
  future_set_extra(L, 1, FEXTRA_NAME);
  return 0;
}

static int l_future_get_loop(lua_State *L) {
  future_check(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, "asyncio.loopobject");
  return 1;
}

static const char *const state_names[] = {"pending", "finished", "finished", "cancelled"};

static int future_tostring(lua_State *L) {
  future *f = future_check(L, 1);
  const char *kind = f->kind == KIND_TASK ? "Task" : "Future";
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  lua_pushfstring(L, "<%s %s", kind, state_names[f->state]);
  luaL_addvalue(&b);
  if (f->kind == KIND_TASK) {
    lua_getfield(L, 1, "get_name");
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1);
    lua_pushfstring(L, " name='%s'", lua_tostring(L, -1));
    lua_remove(L, -2);
    luaL_addvalue(&b);
  }
  if (f->state == FUT_ERROR) {
    lua_getiuservalue(L, 1, FUV_VALUE);
    luaL_tolstring(L, -1, NULL);
    lua_remove(L, -2);
    lua_pushfstring(L, " exception=%s", lua_tostring(L, -1));
    lua_remove(L, -2);
    luaL_addvalue(&b);
  }
  luaL_addchar(&b, '>');
  luaL_pushresult(&b);
  return 1;
}

/* Reports an error nobody looked at: never silently lost. */
void future_report_unretrieved(lua_State *L, int idx, const char *what) {
  future *f = lua_touserdata(L, idx);
  if (f->state != FUT_ERROR || f->retrieved) return;
  idx = lua_absindex(L, idx);
  lua_getiuservalue(L, idx, FUV_VALUE);
  future_get_extra(L, idx, FEXTRA_TRACEBACK);
  const char *tb = lua_tostring(L, -1);
  if (tb == NULL && lua_istable(L, -2)) {
    lua_getfield(L, -2, "traceback");
    lua_replace(L, -2);
    tb = lua_tostring(L, -1);
  }
  loop_report(L, what, -2, tb);
  lua_pop(L, 2);
  debug_report_creation(L, idx, f->kind == KIND_TASK ? "The task" : "The future");
}

static int future_gc(lua_State *L) {
  future *f = lua_touserdata(L, 1);
  if (f->sleeping && f->timer.index != TIMER_NOT_QUEUED) timer_remove(f->loop, &f->timer);
  luaL_unref(L, LUA_REGISTRYINDEX, f->msg_ref);
  future_report_unretrieved(L, 1, "Future exception was never retrieved");
  return 0;
}

static const luaL_Reg future_shared_methods[] = {
    {"done", l_future_done},
    {"cancelled", l_future_cancelled},
    {"result", l_future_result},
    {"exception", l_future_exception},
    {"add_done_callback", l_future_add_done_callback},
    {"remove_done_callback", l_future_remove_done_callback},
    {"set_name", l_future_set_name},
    {"get_loop", l_future_get_loop},
    {NULL, NULL},
};

static const luaL_Reg future_only_methods[] = {
    {"set_result", l_future_set_result},
    {"set_exception", l_future_set_exception},
    {"cancel", l_future_cancel},
    {"get_name", l_future_get_name},
    {NULL, NULL},
};

/* Fills the table on top with the methods Futures and Tasks share. */
void future_shared_methods_add(lua_State *L) { luaL_setfuncs(L, future_shared_methods, 0); }

/* Creates the Future metatable; pushes the constructor. */
void future_open(lua_State *L) {
  luaL_newmetatable(L, FUTURE_MT);
  type_register(L, -1, &type_future);
  lua_newtable(L);
  luaL_setfuncs(L, future_shared_methods, 0);
  luaL_setfuncs(L, future_only_methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, future_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushcfunction(L, future_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushliteral(L, "Future");
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
  lua_pushcfunction(L, future_lua_new);
}

int future_tostring_lua(lua_State *L) { return future_tostring(L); }

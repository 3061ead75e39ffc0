/* gather.c — asyncio.gather in C: children report to the outer future without Lua. */
#include <stdlib.h>
#include <string.h>

#include "core.h"

/* One waiter per argument: a child's completion only counts, in C. When the outcome is
   known (all done, or a failure without return_exceptions) a finisher is queued on the
   ready queue; it builds the results in Lua and completes the outer future. The child
   itself is in the gather's list (GUV_CHILDREN), and future_complete hands it to the
   waiter: 16 bytes per child, the waiter alone. Its link to the previous waiter, which
   a child entry never needs (future.c), holds its offset in the gather's array instead
   (a multiple of 16, the kind in its low bits), from which the gather is found. */

typedef struct gather {
  future base; /* a Future to Lua: must stay first */
  runnable run;
  int n, finished;
  int returned_nothing; /* children done with a result of no values */
  int failed;           /* index of the child whose error ends the gather, or -1 */
  int ref;              /* registry ref: anchors the gather until every child is done */
  uint8_t return_exceptions, scheduled;
  uint8_t cancel_requested; /* cancel() reached a child: end with CancelledError */
  waiter children[];        /* one per child, in the child's waiter list */
} gather;

enum { GUV_CHILDREN = FUV_COUNT, GUV_COUNT }; /* user value: the list of child futures */

/* For print_tasks: "gather (1 of 3 done; pending: Task 'a', Task 'b')" (debug.c). */
void gather_push_description(lua_State *L, future *f) {
  gather *g = (gather *)f;
  int top = lua_gettop(L), shown = 0;
  lua_pushfstring(L, "gather (%d of %d done", g->finished, g->n);
  gather_push_children(L, f); /* nil once every child is done */
  int list = lua_gettop(L);
  for (int i = 0; i < g->n && lua_istable(L, list); i++) {
    lua_rawgeti(L, list, i + 1);
    future *c = lua_touserdata(L, -1);
    lua_pop(L, 1); /* the list anchors it */
    if (!c || c->state != FUT_PENDING) continue;
    if (shown == 3) {
      lua_pushliteral(L, ", ...");
      break;
    }
    lua_pushstring(L, shown++ ? ", " : "; pending: ");
    if (c->kind == KIND_TASK && ((task *)c)->ref != LUA_NOREF) {
      lua_rawgeti(L, LUA_REGISTRYINDEX, ((task *)c)->ref);
      if (future_get_extra(L, -1, FEXTRA_NAME) == LUA_TSTRING)
        lua_pushfstring(L, "Task '%s'", lua_tostring(L, -1));
      else
        lua_pushfstring(L, "Task 'Task-%I'", (lua_Integer)((task *)c)->id);
      lua_replace(L, -3);
      lua_pop(L, 1);
    } else {
      lua_pushliteral(L, "a Future");
    }
  }
  lua_pushliteral(L, ")");
  lua_remove(L, list);
  lua_concat(L, lua_gettop(L) - top);
}

/* Pushes the list of a pending gather's children (nil once it is done). */
void gather_push_children(lua_State *L, future *f) {
  gather *g = (gather *)f;
  if (g->ref == LUA_NOREF) {
    lua_pushnil(L);
    return;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, g->ref);
  lua_getiuservalue(L, -1, GUV_CHILDREN);
  lua_remove(L, -2);
}

static void gather_schedule(gather *g) {
  if (g->scheduled) return;
  g->scheduled = 1;
  loop_push_ready(g->base.loop, &g->run);
}

/* A child entry's offset in the array, in its prev link's place, with the kind. */
_Static_assert(sizeof(waiter) % 4 == 0, "an offset in the array leaves the kind's bits free");
static inline void gather_child_init(waiter *w, size_t i) {
  w->prev_kind = i * sizeof(waiter) | WAITER_GATHER;
  w->next = NULL;
}

void gather_child_done(loop_state *loop, waiter *w, future *child) {
  (void)loop;
  uintptr_t offset = w->prev_kind & ~(uintptr_t)3;
  gather *g = (gather *)((char *)w - offset - offsetof(gather, children));
  g->finished++;
  if (child->state == FUT_RESULT && child->nresults == 0) g->returned_nothing++;
  if (child->state == FUT_ERROR) child->retrieved = 1; /* gather reports it */
  if (g->base.state == FUT_PENDING && g->failed < 0 && !g->return_exceptions &&
      child->state != FUT_RESULT)
    g->failed = (int)(offset / sizeof(waiter));
  if (g->failed >= 0 || g->finished == g->n) gather_schedule(g);
}

/* Pushes the value gather reports for a done child: its first result, or (with
   return_exceptions) its error or a CancelledError. */
static void gather_push_child_value(lua_State *L, future *child, int cidx) {
  switch (child->state) {
    case FUT_RESULT:
      if (child->nresults == 0) {
        lua_pushnil(L);
      } else {
        lua_getiuservalue(L, cidx, FUV_VALUE);
        if (child->nresults > 1) {
          lua_rawgeti(L, -1, 1);
          lua_remove(L, -2);
        }
      }
      break;
    case FUT_ERROR:
      future_get_extra(L, cidx, FEXTRA_TRACEBACK);
      lua_getiuservalue(L, cidx, FUV_VALUE);
      error_wrap_failure(L, -2);
      lua_remove(L, -2);
      break;
    default: task_push_cancelled_error(L, child->msg_ref);
  }
}

/* Runs from the ready queue: completes the outer future, releases the anchor. */
void gather_run(lua_State *L, runnable *r) {
  gather *g = container_of(r, gather, run);
  int top = lua_gettop(L);
  g->scheduled = 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, g->ref);
  int gidx = top + 1;
  lua_getiuservalue(L, gidx, GUV_CHILDREN);
  int list = top + 2;
  if (g->base.state == FUT_PENDING && g->failed >= 0) {
    lua_rawgeti(L, list, g->failed + 1);
    future *child = lua_touserdata(L, -1);
    if (child->state == FUT_CANCELLED) {
      task_push_cancelled_error(L, child->msg_ref);
      g->base.retrieved = 1; /* a cancellation is no error to report */
    } else {
      if (future_get_extra(L, -1, FEXTRA_TRACEBACK) != LUA_TNIL)
        future_set_extra(L, gidx, FEXTRA_TRACEBACK);
      else
        lua_pop(L, 1);
      lua_getiuservalue(L, -1, FUV_VALUE);
    }
    lua_setiuservalue(L, gidx, FUV_VALUE);
    future_complete(&g->base, FUT_ERROR);
  } else if (g->base.state == FUT_PENDING && g->finished == g->n && g->cancel_requested) {
    /* even with return_exceptions (Python issue 32684) */
    task_push_cancelled_error(L, g->base.msg_ref);
    lua_setiuservalue(L, gidx, FUV_VALUE);
    g->base.retrieved = 1;
    future_complete(&g->base, FUT_ERROR);
  } else if (g->base.state == FUT_PENDING && g->finished == g->n) {
    /* every child is done: the list of children becomes the list of results, each
       child's value in its place (no second list of n at the end: with all children's
       garbage still uncollected, that was C's peak) */
    if (g->returned_nothing == g->n) {
      /* every child returned nothing (sleepers, tasks run for their effects): n nils are
         an empty list, and no child is read again (at the end of workload C that read
         100,000 Tasks back from memory, one cache miss after another, while the awaiting
         task waited) */
      lua_createtable(L, 0, 0);
      lua_replace(L, list);
    } else {
      for (int i = 0; i < g->n; i++) {
        lua_rawgeti(L, list, i + 1);
        gather_push_child_value(L, lua_touserdata(L, -1), lua_gettop(L));
        lua_rawseti(L, list, i + 1);
        lua_pop(L, 1);
      }
    }
    lua_pushnil(L);
    lua_setiuservalue(L, gidx, GUV_CHILDREN);
    lua_pushvalue(L, list);
    if (g->n == 1) lua_rawgeti(L, -1, 1);
    lua_setiuservalue(L, gidx, FUV_VALUE);
    g->base.nresults = g->n;
    future_complete(&g->base, FUT_RESULT);
  }
  if (g->finished == g->n) {
    anchor_drop(L, g->base.loop, g->ref);
    g->ref = LUA_NOREF;
  }
  lua_settop(L, top);
}

/* loop_drain: an error (on top of L, popped) cut gather_run short (no memory for the
   results' list, the error's traceback, a CancelledError): the gather completes with that
   error, so that its awaiters wake and raise it, and lets its anchor go once every child
   is done, as gather_run does. Allocates nothing: memory may be short. */
void gather_settle_failed(lua_State *L, runnable *r) {
  gather *g = container_of(r, gather, run);
  g->scheduled = 0;
  if (g->ref == LUA_NOREF) {
    lua_pop(L, 1);
    return;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, g->ref);
  lua_insert(L, -2);
  int all_done = g->finished == g->n;
  if (g->base.state == FUT_PENDING && (g->failed >= 0 || all_done)) {
    lua_setiuservalue(L, -2, FUV_VALUE);
    g->base.nresults = 0;
    g->base.retrieved = 0; /* reported if nobody awaits it */
    future_complete(&g->base, FUT_ERROR);
  } else {
    lua_pop(L, 1);
  }
  if (all_done) {
    lua_pushnil(L); /* the list, which may hold some results already */
    lua_setiuservalue(L, -2, GUV_CHILDREN);
    anchor_drop(L, g->base.loop, g->ref);
    g->ref = LUA_NOREF;
  }
  lua_pop(L, 1);
}

/* gather:cancel(msg), as Python's _GatheringFuture.cancel: cancels the children still
   running and succeeds only if one of them accepted. The gather itself stays pending
   until they finish, then raises CancelledError: whoever awaits it resumes after the
   children's cleanup, and a gather whose children are all done keeps its result. */
int gather_cancel(lua_State *L, future *f, int msg_ref) {
  gather *g = (gather *)f;
  int any = 0;
  if (g->failed < 0 && g->finished < g->n) { /* else the outcome is already decided */
    gather_push_children(L, f);              /* anchored while a child is pending */
    int list = lua_gettop(L);
    for (int i = 0; i < g->n; i++) {
      lua_rawgeti(L, list, i + 1);
      future *child = lua_touserdata(L, -1);
      lua_pop(L, 1); /* the list anchors it */
      if (child->state != FUT_PENDING) continue;
      lua_rawgeti(L, LUA_REGISTRYINDEX, msg_ref); /* nil for LUA_NOREF */
      if (child->kind == KIND_TASK) {
        any |= task_cancel(L, (task *)child, lua_isnil(L, -1) ? 0 : lua_gettop(L));
        lua_pop(L, 1);
      } else {
        any |= future_cancel(
            L, child,
            lua_isnil(L, -1) ? (lua_pop(L, 1), LUA_NOREF) : luaL_ref(L, LUA_REGISTRYINDEX));
      }
    }
    lua_pop(L, 1);
  }
  if (!any) {
    luaL_unref(L, LUA_REGISTRYINDEX, msg_ref);
    return 0;
  }
  g->cancel_requested = 1;
  luaL_unref(L, LUA_REGISTRYINDEX, g->base.msg_ref);
  g->base.msg_ref = msg_ref;
  return 1;
}

static int is_plain_table(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TTABLE) return 0;
  if (!lua_getmetatable(L, idx)) return 1;
  lua_pop(L, 1);
  return 0;
}

/* A Task is its own future: one test of its metatable's address, where await_to_future
   compares it with three kinds of awaitable (~140 instructions a child less). */
static int is_task(lua_State *L, loop_state *loop, int idx) {
  if (!lua_getmetatable(L, idx)) return 0;
  int yes = lua_topointer(L, -1) == loop->task_mt;
  lua_pop(L, 1);
  return yes;
}

static const char *const gather_options[] = {"return_exceptions", "boolean", NULL};

/* gather({aw, ...} [, opts]): leaves the list's items as the arguments, opts after them. */
static int gather_unpack_list(lua_State *L) {
  int n = lua_gettop(L);
  if (n > 2)
    argcheck_error(L, "gather: after a list of awaitables only an options table may follow");
  lua_Integer len = (lua_Integer)lua_rawlen(L, 1);
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    lua_pop(L, 1);
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > len) {
      int named = lua_type(L, -1) == LUA_TSTRING;
      lua_pushvalue(L, -1);
      argcheck_error(L, "gather: the list of awaitables has a key %s%s%s that is not 1..%d%s",
                     named ? "'" : "", luaL_tolstring(L, -1, NULL), named ? "'" : "", (int)len,
                     named ? " (options go in a second table: "
                             "gather(list, {return_exceptions = true}))"
                           : "");
    }
  }
  luaL_checkstack(L, (int)len + 2, "gather: too many awaitables");
  for (lua_Integer i = 1; i <= len; i++) lua_rawgeti(L, 1, i);
  if (n == 2)
    lua_pushvalue(L, 2);
  else
    lua_pushnil(L);
  lua_remove(L, 1);
  if (n == 2) lua_remove(L, 1);
  return (int)len;
}

/* gather(co, co), as Python's gather: an awaitable given twice is turned into a future
   once, and both places wait for it (a coroutine object runs once: a second Task of it
   would raise "already awaited"). Tasks and Futures need nothing: they are their own
   futures. Returns 1 when argument i was seen before and now holds that one's future;
   else records it in the table at *converted (made on the first call, above the n
   arguments) for the arguments after it. */
static int gather_seen_before(lua_State *L, int i, int n, int *converted) {
  int t = lua_type(L, i);
  if (t == LUA_TNIL || t == LUA_TNUMBER) return 0; /* not awaitable: await_to_future says so */
  if (*converted == 0) {
    if (i == n) return 0; /* nothing after it to be the same */
    lua_createtable(L, 0, n - i + 1);
    *converted = lua_gettop(L);
  }
  lua_pushvalue(L, i);
  if (lua_rawget(L, *converted) == LUA_TNUMBER) {
    lua_pushvalue(L, (int)lua_tointeger(L, -1));
    lua_replace(L, i);
    lua_pop(L, 1);
    return 1;
  }
  lua_pop(L, 1);
  lua_pushvalue(L, i);
  lua_pushinteger(L, i);
  lua_rawset(L, *converted);
  return 0;
}

/* core.gather(aw, ... [, opts]) or core.gather(list [, opts]): needs await.c's upvalues
   to turn the arguments into futures (gather_open). */
static int l_core_gather(lua_State *L) {
  loop_state *loop = loop_get(L);
  int n = lua_gettop(L);
  int return_exceptions = 0;
  int has_opts = 0;
  if (n > 0 && is_plain_table(L, 1)) {
    n = gather_unpack_list(L);
    has_opts = 1; /* the slot after the list: a table or nil */
  } else if (n > 0 && is_plain_table(L, n)) {
    n--;
    has_opts = 1;
  }
  if (has_opts) {
    argcheck_options(L, n + 1, "gather", gather_options);
    if (lua_istable(L, n + 1)) {
      lua_getfield(L, n + 1, "return_exceptions");
      return_exceptions = lua_toboolean(L, -1);
    }
    lua_settop(L, n);
  }
  /* the usual children, Tasks, are read where the call left them (lua54.c): their
     metatable tested, the list of them filled, their blocks found without a call of
     Lua's API each (~150 instructions a child less); ci->func is read again after
     anything that may move the stack */
  lua_Debug self;
  int raw = lua54_usable() && lua_getstack(L, 0, &self);
  int converted = 0; /* stack index of { awaitable = its index } once one was converted */
  for (int i = 1; i <= n; i++) {
    if (raw) {
      const lua54_udata *u = lua54_udata_in(lua54_args(self.i_ci) + i - 1);
      if (u != NULL && u->metatable == loop->task_mt) continue;
    } else if (is_task(L, loop, i)) {
      continue;
    }
    if (gather_seen_before(L, i, n, &converted)) continue;
    await_to_future(L, loop, i, "gather");
  }
  if (converted) lua_settop(L, n);
  gather *g = lua_newuserdatauv(L, sizeof *g + (size_t)n * sizeof(waiter), GUV_COUNT - 1);
  future_init(&g->base, loop, KIND_GATHER);
  g->run.kind = RUN_GATHER;
  g->n = n;
  g->finished = 0;
  g->returned_nothing = 0;
  g->failed = -1;
  g->ref = LUA_NOREF;
  g->return_exceptions = (uint8_t)return_exceptions;
  g->scheduled = 0;
  g->cancel_requested = 0;
  type_setmetatable(L, &type_future);
  int gidx = lua_gettop(L);
  lua_createtable(L, n, 0);
  const void *list = lua_topointer(L, -1);
  lua54_value *array = raw ? lua54_array(list, (unsigned)n) : NULL;
  if (array != NULL && lua54_storable(list)) {
    memcpy(array, lua54_args(self.i_ci), (size_t)n * sizeof *array);
  } else {
    raw = 0;
    for (int i = 1; i <= n; i++) {
      lua_pushvalue(L, i);
      lua_rawseti(L, -2, i);
    }
  }
  lua_setiuservalue(L, gidx, GUV_CHILDREN);
  if (n == 0) {
    future_complete(&g->base, FUT_RESULT);
    return 1;
  }
  lua_pushvalue(L, gidx);
  g->ref = anchor_take(L, loop);
  const lua54_value *args = raw ? lua54_args(self.i_ci) : NULL;
  for (int i = 0; i < n; i++) {
    waiter *c = &g->children[i];
    future *child = raw ? lua54_block(lua54_udata_in(&args[i])) : lua_touserdata(L, i + 1);
    gather_child_init(c, (size_t)i);
    if (child->state == FUT_PENDING)
      future_add_waiter(child, c);
    else
      gather_child_done(loop, c, child);
  }
  return 1;
}

static const luaL_Reg gather_functions[] = {
    {"gather", l_core_gather},
    {NULL, NULL},
};

/* Adds gather to the table on top (core), after await_open. */
void gather_open(lua_State *L) { await_setfuncs(L, gather_functions); }

/* finalize.c — finalizers only for the objects that need one: the flag by which Lua's
   metamethod cache hides a metatable's __gc (coro.c's coroutine objects and Tasks are made
   without being registered for finalization), and the watchers and closer that do a
   Task's finalizer work (task_finalize) for the few Tasks that need it.

   Lua keeps every object registered for finalization on a list of its own, which each
   major collection walks (one cache miss per object), and calls each dead one's finalizer
   after resurrecting it for a collection: spawn's Tasks were half of that list once
   coroutine objects left it (bench/RESULTS.md issue 22, sessions 5 and 7). Yet most Tasks
   end with a result, no thread, no context, no name, no cancel message: their finalizer
   has nothing to do. So a Task is registered at creation only if it starts with a name or
   a context (registering the object made last is cheap: Lua's walk of its object list
   stops at once); one that comes to need it later (it fails, is named, sets a ContextVar,
   keeps a cancel message) gets a watcher then, a small finalizable userdata reachable only
   through the Task (an ephemeron table), whose finalizer does the Task's work in the same
   collection as a finalizer of the Task's own would: registering the Task itself then
   would cost a walk of Lua's object list up to it. A pending Task is anchored (anchor.c)
   and dies only at lua_close, where the closer, made before every Task and watcher and
   so finalized after them, does the work of the pending Tasks nothing watches. */
#include <stdlib.h>

#include "core.h"

static int table_flags_probe(lua_State *L) {
  lua_createtable(L, 0, 0);
  const unsigned char *flags = (const unsigned char *)lua_topointer(L, -1) + GC_FLAGS_OFFSET;
  int fresh =
      (*flags & GC_FLAGS_TM_FAST) == GC_FLAGS_TM_FAST; /* a new table: every fast tm absent */
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, "__gc");
  int written = (*flags & GC_FLAGS_TM_FAST) == 0; /* a write clears the cache */
  lua_pop(L, 1);
  return fresh && written;
}

int finalize_flag_usable(lua_State *L) { return table_flags_probe(L); }

void finalize_push_mt(lua_State *L, lua_CFunction gc) {
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, gc);
  lua_setfield(L, -2, "__gc");
}

void finalize_push_ephemeron(lua_State *L) {
  lua_createtable(L, 0, 0);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
}

/* ---- Tasks ----------------------------------------------------------------------- */

static char watch_key, watcher_key, closer_key;

/* The watcher's finalizer: its Task became garbage (or the state closes). */
static int task_watcher_gc(lua_State *L) {
  if (lua_getiuservalue(L, 1, 1) == LUA_TUSERDATA) task_finalize(L, lua_gettop(L));
  return 0;
}

void finalize_watch_task(lua_State *L, task *t, int idx) {
  if (t->has_finalizer) return;
  if (idx)
    lua_pushvalue(L, idx);
  else
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->ref);   /* pending: anchored there */
  lua_rawgetp(L, LUA_REGISTRYINDEX, &watch_key); /* task watch */
  lua_pushvalue(L, -2);
  lua_newuserdatauv(L, 0, 1); /* task watch task watcher */
  lua_pushvalue(L, -4);
  lua_setiuservalue(L, -2, 1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &watcher_key);
  lua_setmetatable(L, -2);
  lua_rawset(L, -3); /* watch[task] = watcher */
  lua_pop(L, 2);
  t->has_finalizer = 1;
}

/* At lua_close, after every Task and watcher: the pending Tasks nothing watched, newest
   first, as their own finalizers ran. */
static int task_closer_gc(lua_State *L) {
  loop_state *loop = loop_get(L);
  size_t n;
  task **all = task_pending_list(L, loop, &n);
  while (n > 0) {
    task *t = all[--n];
    if (t->has_finalizer) continue;
    t->has_finalizer = 1;
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->ref);
    task_finalize(L, lua_gettop(L));
    lua_pop(L, 1);
  }
  free(all);
  return 0;
}

/* task_open, after the loop exists (the closer must be finalized before the loop). */
int finalize_open(lua_State *L) {
  if (!finalize_flag_usable(L)) return 0;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &closer_key) != LUA_TNIL) {
    lua_pop(L, 1);
    return 1; /* opened before in this state */
  }
  lua_pop(L, 1);
  finalize_push_mt(L, task_watcher_gc);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &watcher_key);
  finalize_push_ephemeron(L); /* watch: Task -> watcher */
  lua_rawsetp(L, LUA_REGISTRYINDEX, &watch_key);
  lua_newuserdatauv(L, 0, 0);
  finalize_push_mt(L, task_closer_gc);
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &closer_key); /* anchored: finalized only at lua_close */
  return 1;
}

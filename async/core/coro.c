/* coro.c — coroutine objects, what calling an async function (or asyncio.sleep) returns:
   its function and arguments, run once by await or a task; their names, the "never
   awaited" warning. await.c makes them (inline, on the hot path), this file the rest. */
#include <stdio.h>

#include "core.h"

_Thread_local uint16_t coro_payload[3] = {sizeof(coro), sizeof(coro), sizeof(coro)};

int coro_test(lua_State *L, int idx) { return type_test(L, idx, &type_coro) != NULL; }

/* Is the coroutine object at idx one that asyncio.sleep made? */
int coro_is_sleep(lua_State *L, int idx) { return ((coro *)lua_touserdata(L, idx))->sleep; }

static void coro_push_name(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  if (lua_getiuservalue(L, idx, 2) == LUA_TSTRING) return;
  lua_pop(L, 1);
  if (coro_is_sleep(L, idx)) {
    lua_pushliteral(L, "sleep");
    return;
  }
  lua_Debug ar;
  lua_getiuservalue(L, idx, 1);
  if (lua_isfunction(L, -1) && lua_getinfo(L, ">S", &ar))
    lua_pushfstring(L, "function <%s:%d>", ar.short_src, ar.linedefined);
  else
    lua_pushliteral(L, "?");
}

static void coro_leave_nursery(lua_State *L, coro *c);
static void coro_last_leave(lua_State *L, loop_state *loop);

/* Marks the coroutine object at idx as run: a coroutine runs once. */
void coro_claim(lua_State *L, int idx, const char *fname) {
  coro *c = lua_touserdata(L, idx);
  if (c->taken) {
    coro_push_name(L, idx);
    argcheck_error(L,
                   "%s: coroutine '%s' was already awaited (a coroutine object runs once; "
                   "wrap it in asyncio.create_task to share its result)",
                   fname, lua_tostring(L, -1));
  }
  c->taken = 1;
  coro_leave_nursery(L, c);
}

/* coro_claim of the object made last, untaken (loop->coro_last): in the nursery's own
   slot. */
void coro_claim_last(lua_State *L, loop_state *loop) {
  loop->coro_last->taken = 1;
  coro_last_leave(L, loop);
}

/* Pushes the function and arguments of the coroutine object at idx; returns how many
   arguments. */
int coro_unpack(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  coro *c = lua_touserdata(L, idx);
  /* a few fit in the LUA_MINSTACK slots every C function has */
  if (c->nargs > 8) luaL_checkstack(L, c->nargs + 2, "too many arguments");
  lua_getiuservalue(L, idx, 1);
  for (int i = 0; i < c->nargs; i++) lua_getiuservalue(L, idx, 3 + i);
  return c->nargs;
}

/* Copies the function and arguments of the coroutine object c, at idx, into user values
   of the userdata on top: the function into fn_slot, the arguments from first_arg_slot
   on. */
void coro_copy_into(lua_State *L, int idx, const coro *c, int fn_slot, int first_arg_slot) {
  lua_getiuservalue(L, idx, 1);
  lua_setiuservalue(L, -2, fn_slot);
  for (int i = 0; i < c->nargs; i++) {
    lua_getiuservalue(L, idx, 3 + i);
    lua_setiuservalue(L, -2, first_arg_slot + i);
  }
}

int coro_take(lua_State *L, int idx, const char *fname) {
  coro_claim(L, idx, fname);
  return coro_unpack(L, idx);
}

/* Pushes " (created at src:line)" for the coroutine object at idx (site.c), or "". */
static void coro_push_site(lua_State *L, int idx) {
  coro *c = lua_touserdata(L, idx);
  if (site_push_text(L, c->site)) {
    lua_pushfstring(L, " (created at %s)", lua_tostring(L, -1));
    lua_remove(L, -2);
    return;
  }
  lua_pushliteral(L, "");
}

/* Reports the coroutine object at idx if it was never awaited nor wrapped (once). */
static void coro_report(lua_State *L, int idx) {
  coro *c = lua_touserdata(L, idx);
  if (c->taken || c->reported) return;
  c->reported = 1;
  idx = lua_absindex(L, idx);
  coro_push_name(L, idx);
  coro_push_site(L, idx);
  fprintf(stderr, "RuntimeWarning: coroutine '%s' was never awaited%s\n", lua_tostring(L, -2),
          lua_tostring(L, -1));
  fflush(stderr);
  debug_report_creation(L, idx, "It");
  lua_pop(L, 2);
}

/* The finalizer of a coroutine object made finalizable at once (when the lazy scheme
   below is off). */
static int coro_gc(lua_State *L) {
  coro_report(L, 1);
  return 0;
}

/* ---- finalizers only for coroutine objects that outlive a collection untaken ----------

   Nearly every coroutine object is awaited or wrapped in a task right after it is made
   (create_task(work(i))), yet a finalizer on each (the "never awaited" report) cost far
   more than its call: Lua keeps finalizable objects on a list of their own, which every
   major collection walks, one cache miss per object (spawn: a third of its CPU time,
   bench/RESULTS.md issue 22 session 5). So a new coroutine object is made with its
   metatable but not registered for finalization (Lua registers an object when it gets
   a metatable whose __gc its cache does not mark absent: the bit is set just before,
   finalize.c),
   and goes into the nursery, a list anchoring it. At the end of every collection a
   sentinel's finalizer (a fresh garbage userdata each time) empties the nursery: an
   object still untaken then gets a watcher, a small finalizable userdata reachable only
   through the object (an ephemeron table), whose finalizer reports the object if it was
   never taken; the rest is left to the collector. Registering the object itself later
   would cost a walk of Lua's list of objects up to it. An object made untaken and dropped
   is therefore reported one collection later than with a finalizer of its own. At
   lua_close every finalizer runs, newest first; the closer, older than every sentinel and
   watcher, runs after them and reports what is still in the nursery or watched, untaken. */

typedef struct coro_sentinel {
  loop_state *loop;
} coro_sentinel;

static char sentinel_key, watcher_key, closer_key, watch_key, holder_key;

/* The object made last and not yet taken is not in the nursery's list but alone in the
   one user value of a holder of its own (a userdata anchored in the registry: its header
   is loop->coro_last_holder; nursery_slot NURSERY_LAST): nearly every object is taken
   before the next is made (create_task(work(i))), and that slot is a store to fill and a
   store to empty, where the list is a look-up of the table, a write and a pop each way,
   and a registry slot a table write each way (~120 instructions a task more). Both stores
   are raw (lua54.c): the object's only where the holder is not black (one store through
   the API makes it gray until the collector's next atomic phase, so nearly every store
   is raw), the nil's at any time (a value the collector does not follow needs no
   barrier). A thread's stack, which needs no barrier at all, held it until session 9: a
   copy, a move and a settop, ~65 instructions more (bench/RESULTS.md, issue 22, session 9,
   wt-create). The next object made moves an untaken one into the list. */
#define NURSERY_LAST UINT32_MAX

static void coro_holder_push(lua_State *L) { lua_rawgetp(L, LUA_REGISTRYINDEX, &holder_key); }

/* Empties the holder (the object leaves it). */
static void coro_holder_clear(lua_State *L, loop_state *loop) {
  if (lua54_usable()) {
    loop->coro_last_holder->uv[0].tt = 0; /* nil */
    return;
  }
  coro_holder_push(L);
  lua_pushnil(L);
  lua_setiuservalue(L, -2, 1);
  lua_pop(L, 1);
}

static void coro_last_to_nursery(lua_State *L, loop_state *loop) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, loop->coro_nursery_ref);
  coro_holder_push(L);
  lua_getiuservalue(L, -1, 1);
  lua_remove(L, -2);
  lua_rawseti(L, -2, ++loop->coro_nursery_n);
  lua_pop(L, 1);
  loop->coro_last->nursery_slot = (uint32_t)loop->coro_nursery_n;
  loop->coro_last = NULL;
  coro_holder_clear(L, loop);
}

/* Gives the coroutine object c, on top, the metatable at mtidx, without registering it
   for finalization when the lazy scheme is on: the object goes into the nursery instead. */
void coro_set_metatable(lua_State *L, int mtidx, coro *c) {
  loop_state *loop = loop_get(L);
  if (loop->coro_nursery_ref == 0) { /* off: finalizable now */
    lua_pushvalue(L, mtidx);
    lua_setmetatable(L, -2);
    return;
  }
  lua_pushvalue(L, mtidx);
  finalize_flag_hide(loop->coro_mt, 1); /* the table at mtidx: coroutine objects have no other */
  lua_setmetatable(L, -2);
  coro_nurse(L, loop, c);
}

/* Puts the new coroutine object c, on top, with its metatable (given as
   coro_set_metatable gives it), in the nursery's slot for the object made last. */
void coro_nurse(lua_State *L, loop_state *loop, coro *c) {
  if (loop->coro_last) coro_last_to_nursery(L, loop);
  lua54_udata *holder = loop->coro_last_holder;
  if (lua54_usable() && lua54_storable(holder)) {
    /* its user values: the function, the name, then the arguments (or a sleep's delay
       and results), nargs of them */
    holder->uv[0].value = lua54_udata_of(c, c->nargs + 2);
    holder->uv[0].tt = LUA54_TYPE_UDATA | LUA54_COLLECTABLE;
  } else {
    coro_holder_push(L);
    lua_pushvalue(L, -2);
    lua_setiuservalue(L, -2, 1);
    lua_pop(L, 1);
  }
  loop->coro_last = c;
  c->nursery_slot = NURSERY_LAST;
}

/* The object made last leaves its slot (taken). */
static void coro_last_leave(lua_State *L, loop_state *loop) {
  loop->coro_last->nursery_slot = 0;
  loop->coro_last = NULL;
  coro_holder_clear(L, loop);
}

/* A coroutine object taken leaves the nursery at once: what it holds (its function and
   arguments: a process, a stream) is then no longer reachable through it, as before
   this scheme, and a collection can close it. */
static void coro_leave_nursery(lua_State *L, coro *c) {
  if (c->nursery_slot == 0) return;
  loop_state *loop = loop_get(L);
  if (c->nursery_slot == NURSERY_LAST) { /* the usual case */
    coro_last_leave(L, loop);
    return;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, loop->coro_nursery_ref);
  if (c->nursery_slot == (uint32_t)loop->coro_nursery_n) { /* the last one: */
    lua_pushnil(L);                                        /* the nursery stays small */
    loop->coro_nursery_n--;
  } else {
    lua_pushboolean(L, 0); /* not nil: the list stays a dense array */
  }
  lua_rawseti(L, -2, (lua_Integer)c->nursery_slot);
  lua_pop(L, 1);
  c->nursery_slot = 0;
}

/* The watcher's finalizer: its object became garbage (or the state closes). */
static int coro_watcher_gc(lua_State *L) {
  if (lua_getiuservalue(L, 1, 1) == LUA_TUSERDATA) coro_report(L, -1);
  return 0;
}

/* Watches the untaken coroutine object on top (watch table below it). */
static void coro_watch(lua_State *L) {
  lua_newuserdatauv(L, 0, 1);
  lua_pushvalue(L, -2);
  lua_setiuservalue(L, -2, 1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &watcher_key);
  lua_setmetatable(L, -2);
  lua_rawset(L, -3); /* watch[object] = watcher */
}

static void coro_sentinel_new(lua_State *L, loop_state *loop) {
  coro_sentinel *s = lua_newuserdatauv(L, sizeof *s, 0);
  s->loop = loop;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &sentinel_key);
  lua_setmetatable(L, -2);
  lua_pop(L, 1); /* garbage at once: its finalizer runs after the next collection */
}

/* Empties the nursery: the untaken get a watcher (with `watch` false: at lua_close, the
   closer reports them itself). Leaves a new, empty nursery. */
static void coro_nursery_empty(lua_State *L, loop_state *loop, int watch) {
  if (loop->coro_last) coro_last_to_nursery(L, loop); /* into the list with the others */
  int n = loop->coro_nursery_n;
  lua_rawgeti(L, LUA_REGISTRYINDEX, loop->coro_nursery_ref);
  lua_createtable(L, 0, 0);
  lua_rawseti(L, LUA_REGISTRYINDEX, loop->coro_nursery_ref);
  loop->coro_nursery_n = 0;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &watch_key);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, -2, i);
    coro *c = lua_touserdata(L, -1);
    if (c) c->nursery_slot = 0;
    if (c && !c->taken && !c->reported) {
      if (watch) {
        coro_watch(L);
        continue;
      }
      coro_report(L, -1);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
}

static int coro_sentinel_gc(lua_State *L) {
  coro_sentinel *s = lua_touserdata(L, 1);
  loop_state *loop = s->loop;
  if (loop == NULL || loop->coro_nursery_ref == 0) return 0;
  coro_nursery_empty(L, loop, 1);
  coro_sentinel_new(L, loop);
  return 0;
}

/* At lua_close, after every sentinel and watcher: reports what is left untaken. */
static int coro_closer_gc(lua_State *L) {
  coro_sentinel *s = lua_touserdata(L, 1);
  loop_state *loop = s->loop;
  if (loop == NULL || loop->coro_nursery_ref == 0) return 0;
  coro_nursery_empty(L, loop, 0);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &watch_key);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lua_pop(L, 1);
    coro_report(L, -1);
  }
  lua_pop(L, 1);
  loop->coro_nursery_ref = 0;
  return 0;
}

static void coro_lazy_open(lua_State *L) {
  loop_state *loop = loop_get(L);
  if (loop->coro_nursery_ref != 0 || !finalize_flag_usable(L)) return;
  finalize_push_mt(L, coro_sentinel_gc);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &sentinel_key);
  finalize_push_mt(L, coro_watcher_gc);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &watcher_key);
  finalize_push_ephemeron(L); /* watch: object -> watcher */
  lua_rawsetp(L, LUA_REGISTRYINDEX, &watch_key);
  coro_sentinel *closer = lua_newuserdatauv(L, sizeof *closer, 0);
  closer->loop = loop;
  finalize_push_mt(L, coro_closer_gc);
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &closer_key); /* anchored: finalized only at lua_close */
  loop->coro_last_holder = lua54_udata_of(lua_newuserdatauv(L, 0, 1), 1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &holder_key);
  loop->coro_last = NULL;
  lua_createtable(L, 0, 0);
  loop->coro_nursery_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  loop->coro_nursery_n = 0;
  coro_sentinel_new(L, loop);
}

static int coro_tostring(lua_State *L) {
  coro *c = type_check(L, 1, &type_coro, "coroutine object");
  coro_push_name(L, 1);
  lua_pushfstring(L, "<coroutine '%s'%s>", lua_tostring(L, -1), c->taken ? " (taken)" : "");
  return 1;
}

/* Makes the coroutine objects' metatable (CORO_MT). */
void coro_open(lua_State *L) {
  luaL_newmetatable(L, CORO_MT);
  type_register(L, -1, &type_coro);
  lua_pushcfunction(L, coro_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, coro_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "coroutine");
  lua_setfield(L, -2, "__name");
  loop_get(L)->coro_mt = lua_topointer(L, -1);
  lua_pop(L, 1);
  coro_lazy_open(L);
}

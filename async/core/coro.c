/* coro.c — coroutine objects, what calling an async function (or asyncio.sleep) returns:
   its function and arguments, run once by await or a task; their names, the "never
   awaited" warning. await.c makes them (inline, on the hot path), this file the rest. */
#include <stdio.h>

#include "core.h"

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
}

/* Pushes the function and arguments of the coroutine object at idx; returns how many
   arguments. */
int coro_unpack(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  coro *c = lua_touserdata(L, idx);
  luaL_checkstack(L, c->nargs + 2, "too many arguments");
  lua_getiuservalue(L, idx, 1);
  for (int i = 0; i < c->nargs; i++) lua_getiuservalue(L, idx, 3 + i);
  return c->nargs;
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

static int coro_gc(lua_State *L) {
  coro *c = lua_touserdata(L, 1);
  if (c->taken) return 0;
  coro_push_name(L, 1);
  coro_push_site(L, 1);
  fprintf(stderr, "RuntimeWarning: coroutine '%s' was never awaited%s\n", lua_tostring(L, -2),
          lua_tostring(L, -1));
  fflush(stderr);
  debug_report_creation(L, 1, "It");
  return 0;
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
  lua_pop(L, 1);
}

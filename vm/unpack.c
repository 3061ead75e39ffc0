/* unpack.c — table.unpack that leaves room for the call its values go to.

   `f(table.unpack(t))` is how a list becomes arguments (`asyncio.gather(table.unpack(
   tasks))`, as Python's `gather(*tasks)`). Lua's unpack grows the stack to exactly what
   its values need, and the call that takes them then needs LUA_MINSTACK free slots more:
   Lua doubles the stack for those, and a generational collector never shrinks it. For
   100,000 values that is 3.2 MB of stack instead of 1.6 (workload C: 16 bytes per
   sleeper, bench/RESULTS.md). This one asks for the room the call needs along with its
   values; otherwise it behaves as Lua 5.4's, messages included. */
#include <limits.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "core/core.h"
#include "vm.h"

/* Free slots asked for after the values: what a C function called with them needs (a
   Lua function with a larger frame still grows the stack, as before). */
#define UNPACK_CALL_ROOM LUA_MINSTACK

/* The values of a table without a metatable, read from its array part and copied into
   the stack slots they go to (lua54.c's layouts; a stack needs no write barrier), where
   lua_geti cost ~63 instructions a value (C's gather(table.unpack(tasks)): 100,000
   values; bench/RESULTS.md, issue 22, session 9, wt-create). A nil there may be Lua's
   "empty" variant, which must not reach the stack (rawequal would tell it from nil): each
   nil is stored as a plain one. A key past the array part goes through lua_geti. Returns 0
   (nothing pushed) where the probe found other layouts or the table has a metatable. */
static int unpack_raw(lua_State *L, lua_Integer first, lua_Unsigned span) {
  lua_Debug self;
  if (!lua54_usable() || lua_type(L, 1) != LUA_TTABLE) return 0;
  if (lua_getmetatable(L, 1)) {
    lua_pop(L, 1);
    return 0;
  }
  int base = lua_gettop(L);
  lua_settop(L, base + (int)span + 1);
  if (!lua_getstack(L, 0, &self)) {
    lua_settop(L, base);
    return 0;
  }
  const void *t = lua_topointer(L, 1);
  lua54_value *to = (lua54_value *)lua54_args(self.i_ci) + base;
  const lua54_value *from = lua54_array_slot(t, first);
  /* how many of the keys are in the array part: first.. up to its limit */
  lua_Unsigned in_array = from ? lua54_array_limit(t) - (lua_Unsigned)(first - 1) : 0;
  if (in_array > span + 1) in_array = span + 1;
  for (lua_Unsigned k = 0; k < in_array; k++) {
    to[k] = from[k];
    if ((to[k].tt & 0x0f) == LUA_TNIL) to[k].tt = LUA_TNIL;
  }
  for (lua_Unsigned k = in_array; k <= span; k++) { /* past the array part */
    lua_geti(L, 1, first + (lua_Integer)k);
    lua_replace(L, base + 1 + (int)k);
  }
  return 1;
}

static int unpack_with_room(lua_State *L) {
  lua_Integer first = luaL_optinteger(L, 2, 1);
  lua_Integer last = luaL_opt(L, luaL_checkinteger, 3, luaL_len(L, 1));
  if (first > last) return 0;
  /* the count less one, in unsigned arithmetic: first..last may span every integer */
  lua_Unsigned span = (lua_Unsigned)last - (lua_Unsigned)first;
  /* The room is asked for with the values, not after them: a stack grown for the values
     alone would double for it. A request that fails leaves the stack at Lua's error
     size, where it cannot grow again, so there is no second try without the room: the
     values alone then fit only within UNPACK_CALL_ROOM slots of LUAI_MAXSTACK, where a
     C function called with them would overflow the stack anyway (measured: from a Lua
     function, 999,965 values fail here where Lua's unpack and select take them, and
     999,970 overflow with Lua's). */
  if (span >= (lua_Unsigned)(INT_MAX - UNPACK_CALL_ROOM) ||
      !lua_checkstack(L, (int)span + 1 + UNPACK_CALL_ROOM))
    return luaL_error(L, "too many results to unpack");
  if (unpack_raw(L, first, span)) return (int)span + 1;
  /* counted by span, not by comparing with last: last may be math.maxinteger */
  for (lua_Unsigned k = 0; k <= span; k++) lua_geti(L, 1, first + (lua_Integer)k);
  return (int)span + 1;
}

void unpack_install(lua_State *L) {
  lua_getglobal(L, LUA_TABLIBNAME);
  if (lua_istable(L, -1)) {
    lua_pushcfunction(L, unpack_with_room);
    lua_setfield(L, -2, "unpack");
  }
  lua_pop(L, 1);
}

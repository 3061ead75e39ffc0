/* lua54.c — stores into a userdata or table Lua has just made, and reads of a C
   function's own arguments and upvalues, without a call of Lua's API for each value:
   for creation's hot path (a coroutine object, its Task, gather's list of children),
   where every value went through lua_pushvalue and lua_setiuservalue (~65 instructions a
   value, ~280 a coroutine object, ~280 a Task; bench/RESULTS.md, issue 22, session 8,
   wt-create).

   Why a raw store is sound: Lua's collector needs a barrier on a store only when the
   object stored into is black (lgc.h: luaC_barrierback for user values and table slots,
   luaC_objbarrier for a metatable, both "isblack(p) && iswhite(v)"); an object not black
   (white as Lua made it, or gray: to be traversed yet) takes any value as it is, in
   incremental and generational mode alike. A new object is white, but the collection
   step lua_newuserdatauv and lua_createtable end with can already have traversed it. So
   every user of this file tests the black bit of the object's header right before its
   raw stores, makes them all before anything allocates again (an allocation may run a
   step, or an emergency collection), and otherwise takes the API's path. The metatable
   is stored raw only where lua_setmetatable would register nothing for finalization
   (finalize.c's flag hides the metatable's __gc from luaC_checkfinalizer).

   The layouts are Lua 5.4's, the same in every 5.4 release on a 64-bit machine: a
   TValue is a value word and a tag byte in 16 bytes; a full userdata with user values
   is CommonHeader (next, tt, marked), nuvalue, len, metatable, gclist, then its user
   values, then its block; a table is CommonHeader, flags, lsizenode, alimit, then its
   array; a C closure is CommonHeader, nupvalues, gclist, f, then its upvalues; a
   CallInfo starts with func, the stack slot of its function (core.h's lua54_callinfo),
   whose arguments follow it; a lua_State's words 2 and 4 are its top and its running
   CallInfo. A probe at start-up checks each on the Lua actually linked (lua54_probe);
   where anything disagrees, lua54_usable() is false and every caller takes the API's
   path. A task's first step uses the same layouts (task.c's hand-over from one task to
   the next, tail.c's reading of a frame) and lua54_line, which reads a Lua function's
   line information as ldebug.c does (tail.c's probe checks it against lua_getinfo). */
#include <stdatomic.h>
#include <string.h>

#include "core.h"

atomic_int lua54_raw; /* 0: not probed yet, 1: on, -1: off */

static char probe_key;

/* A Lua closure (lobject.h's LClosure: CommonHeader, nupvalues, gclist, then its
   prototype) and the head of its prototype (Proto) up to its line information. */
typedef struct lua54_lclosure {
  void *next;
  uint8_t tt, marked, nupvalues;
  void *gclist;
  const struct lua54_proto *p;
} lua54_lclosure;
typedef struct lua54_proto {
  void *next;
  uint8_t tt, marked, numparams, is_vararg, maxstacksize;
  int sizeupvalues, sizek, sizecode, sizelineinfo, sizep, sizelocvars, sizeabslineinfo;
  int linedefined, lastlinedefined;
  void *k;
  const uint32_t *code;
  void *p, *upvalues;
  const signed char *lineinfo; /* each instruction's line less the one before it... */
  const struct {
    int pc, line;
  } * abslineinfo; /* ...or, where that does not fit a byte or every 128, its line here */
} lua54_proto;

/* ldebug.c's luaG_getfuncline: the last absolute entry at or before the instruction (an
   estimate first: there is one at least every 128 instructions), then the differences. */
int lua54_line(const lua54_callinfo *ci) {
  const lua54_proto *p = ((const lua54_lclosure *)((const lua54_value *)ci->func)->value)->p;
  if (p->lineinfo == NULL) return -1;
  int pc = (int)(ci->u.l.savedpc - p->code) - 1, basepc = -1, line = p->linedefined;
  if (p->sizeabslineinfo > 0 && pc >= p->abslineinfo[0].pc) {
    int i = pc / 128 - 1;
    if (i < 0) i = 0;
    if (i >= p->sizeabslineinfo) i = p->sizeabslineinfo - 1;
    while (i > 0 && p->abslineinfo[i].pc > pc) i--;
    while (i + 1 < p->sizeabslineinfo && pc >= p->abslineinfo[i + 1].pc) i++;
    basepc = p->abslineinfo[i].pc;
    line = p->abslineinfo[i].line;
  }
  while (basepc++ < pc) line += p->lineinfo[basepc];
  return line;
}

static int same(const lua54_value *v, const void *value, int tt) {
  return v->value == value && v->tt == tt;
}

/* Called as probe(1, &probe_key) with upvalues (&probe_key, 2): checks every layout
   above on objects made through the API. */
static int lua54_probe_fn(lua_State *L) {
  lua_Debug ar;
  int ok = lua_getstack(L, 0, &ar);
  if (ok) {
    const lua54_value *args = lua54_args(ar.i_ci);
    const lua54_value *func = args - 1;
    ok = func->tt == LUA54_TT_CCLOSURE && func->value == lua_topointer(L, lua_upvalueindex(3)) &&
         same(&args[0], (void *)1, LUA54_TT_INTEGER) &&
         same(&args[1], &probe_key, LUA54_TT_LIGHT) && lua54_ci(L) == (const void *)ar.i_ci &&
         lua54_top(L) == (const void *)(args + lua_gettop(L)) && lua54_nargs(L, args) == 2 &&
         lua54_cclosure_f(func) == lua54_probe_fn &&
         lua54_cclosure_upvalues(func) == lua54_upvalues(ar.i_ci);
  }
  if (ok) { /* a float and an integer argument, as lua_tonumber reads them */
    int isint, isfloat, isnot;
    lua_pushinteger(L, -7);
    lua_pushnumber(L, 2.5);
    const lua54_value *top = lua54_top(L);
    ok = lua54_number(&top[-2], &isint) == -7.0 && isint &&
         lua54_number(&top[-1], &isfloat) == 2.5 && isfloat &&
         lua54_number(lua54_args(ar.i_ci) + 1, &isnot) == 0 && !isnot;
    lua_pop(L, 2);
  }
  if (ok) {
    const lua54_value *up = lua54_upvalues(ar.i_ci);
    ok = same(&up[0], &probe_key, LUA54_TT_LIGHT) && same(&up[1], (void *)2, LUA54_TT_INTEGER);
  }
  /* a userdata with two user values and a metatable */
  void *block = lua_newuserdatauv(L, 8, 2);
  lua_pushlightuserdata(L, &probe_key);
  lua_setiuservalue(L, -2, 1);
  lua_pushinteger(L, 3);
  lua_setiuservalue(L, -2, 2);
  lua_createtable(L, 0, 0);
  const void *mt = lua_topointer(L, -1);
  lua_setmetatable(L, -2);
  const lua54_udata *u = lua54_udata_of(block, 2);
  unsigned color = u->marked & (LUA54_WHITE_BITS | LUA54_BLACK_BIT);
  ok = ok && u->tt == LUA54_TYPE_UDATA && u->nuvalue == 2 && u->len == 8 && u->metatable == mt &&
       (color == LUA54_WHITE_BITS_0 || color == LUA54_WHITE_BITS_1) &&
       same(&u->uv[0], &probe_key, LUA54_TT_LIGHT) && same(&u->uv[1], (void *)3, LUA54_TT_INTEGER);
  /* a table's array, as lua_createtable sizes it: a raw store there is what lua_rawgeti
     then reads */
  lua_createtable(L, 3, 0);
  lua54_value *array = lua54_array(lua_topointer(L, -1), 3);
  if (ok && array != NULL) {
    array[1] = u->uv[1];
    ok = lua_rawgeti(L, -1, 1) == LUA_TNIL && lua_rawgeti(L, -2, 2) == LUA_TNUMBER &&
         lua_tointeger(L, -1) == 3 && lua_rawgeti(L, -3, 3) == LUA_TNIL;
    lua_pop(L, 3);
  } else {
    ok = 0;
  }
  /* a slot found by its key (anchor.c's in the registry): the userdata above and a false
     stored raw are what lua_rawgeti reads there; no slot past the table's limit */
  lua_createtable(L, 4, 0);
  const void *t = lua_topointer(L, -1);
  lua54_value *slot2 = lua54_array_slot(t, 2), *slot3 = lua54_array_slot(t, 3);
  if (ok && lua54_storable(t) && slot2 == lua54_array(t, 4) + 1 && slot3 == slot2 + 1 &&
      lua54_array_slot(t, 5) == NULL && lua54_array_slot(t, 0) == NULL) {
    slot2->value = u;
    slot2->tt = LUA54_TYPE_UDATA | LUA54_COLLECTABLE;
    slot3->value = NULL;
    slot3->tt = LUA54_TT_FALSE;
    ok = lua_rawgeti(L, -1, 2) == LUA_TUSERDATA && lua_touserdata(L, -1) == block &&
         lua_rawgeti(L, -2, 3) == LUA_TBOOLEAN && !lua_toboolean(L, -1) &&
         ((const unsigned char *)lua_topointer(L, LUA_REGISTRYINDEX))[sizeof(void *)] ==
             LUA54_TYPE_TABLE;
    lua_pop(L, 2);
  } else {
    ok = 0;
  }
  lua_pop(L, 1);
  lua_pushboolean(L, ok);
  return 1;
}

/* Runs the probe in state L and sets what lua54_usable says (every state finds the
   same; a probe whose userdata a collection step has already marked is run again). */
void lua54_probe(lua_State *L) {
  int top = lua_gettop(L), ok = 0;
  for (int attempt = 0; attempt < 3 && !ok && lua_version(L) == 504; attempt++) {
    lua_pushlightuserdata(L, &probe_key);
    lua_pushinteger(L, 2);
    lua_pushnil(L); /* the probe itself, below */
    lua_pushcclosure(L, lua54_probe_fn, 3);
    lua_pushvalue(L, -1);
    lua_setupvalue(L, -2, 3);
    lua_pushinteger(L, 1);
    lua_pushlightuserdata(L, &probe_key);
    ok = lua_pcall(L, 2, 1, 0) == LUA_OK && lua_toboolean(L, -1);
    lua_settop(L, top);
  }
  atomic_store(&lua54_raw, ok ? 1 : -1);
}

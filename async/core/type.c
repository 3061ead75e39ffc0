/* type.c — metatables of alua's userdata found and tested by address, not by name. */
#include "core.h"

/* Each metatable is also kept in the registry under the address of a static key, and
   carries that key as a field. Creating an object and testing its type are then
   pointer-keyed lookups; luaL_setmetatable and luaL_testudata hash and compare the
   type's name on every call, which showed in the profile of task creation. */
char type_future, type_task, type_coro, type_handle, type_loop, type_op;

/* Registers the metatable at mtidx as the one for objects of type `key`. */
void type_register(lua_State *L, int mtidx, const void *key) {
  mtidx = lua_absindex(L, mtidx);
  type_inherit(L, mtidx, key);
  lua_pushvalue(L, mtidx);
  lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}

/* Objects with the metatable at mtidx are also of type `key` (a Task is a Future). */
void type_inherit(lua_State *L, int mtidx, const void *key) {
  mtidx = lua_absindex(L, mtidx);
  lua_pushboolean(L, 1);
  lua_rawsetp(L, mtidx, key);
}

/* Gives the value on top the metatable of type `key`. */
void type_setmetatable(lua_State *L, const void *key) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, key);
  lua_setmetatable(L, -2);
}

void *type_test(lua_State *L, int idx, const void *key) {
  void *p = lua_touserdata(L, idx);
  if (p == NULL || !lua_getmetatable(L, idx)) return NULL;
  int yes = lua_rawgetp(L, -1, key) == LUA_TBOOLEAN;
  lua_pop(L, 2);
  return yes ? p : NULL;
}

void *type_check(lua_State *L, int idx, const void *key, const char *tname) {
  void *p = type_test(L, idx, key);
  if (p == NULL) luaL_typeerror(L, idx, tname);
  return p;
}

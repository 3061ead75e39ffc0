/* type.c — metatables of alua's userdata found and tested by address, not by name. */
#include <string.h>

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

/* Raises the error for a self of the wrong type: a method called with '.' says so. */
static void self_error(lua_State *L, const char *tname) {
  lua_Debug ar;
  if (lua_getstack(L, 0, &ar) && lua_getinfo(L, "n", &ar) && ar.name != NULL &&
      (strcmp(ar.namewhat, "method") == 0 || strcmp(ar.namewhat, "field") == 0)) {
    const char *var = strcmp(tname, "Task") == 0     ? "task"
                      : strcmp(tname, "loop") == 0   ? "loop"
                      : strcmp(tname, "Handle") == 0 ? "handle"
                                                     : "fut";
    argcheck_self_error(L, strcmp(tname, "Future or Task") == 0 ? "Future" : tname, var, ar.name);
  }
  luaL_typeerror(L, 1, tname);
}

void *type_check(lua_State *L, int idx, const void *key, const char *tname) {
  void *p = type_test(L, idx, key);
  if (p == NULL) {
    if (idx == 1) self_error(L, tname);
    luaL_typeerror(L, idx, tname);
  }
  return p;
}

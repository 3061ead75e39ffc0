/* context.c — task-local context, what asyncio.ContextVar reads (Python's contextvars):
   an immutable table {var = value} per task, shared with the tasks it creates until one
   of them sets a variable (stdlib/asyncio/contextvars.lua copies it then). A task made
   while no variable was ever set costs one test; the context outside every task (a
   script's top level, plain callbacks) lives in the registry. */
#include "core.h"

static char top_context_key;

/* The task whose context the running code sees, or NULL for the top-level context. */
static task *context_owner(lua_State *L, loop_state *loop) {
  task *t = task_of(L);
  if (t == NULL) t = loop->current;
  return t && t->ref != LUA_NOREF ? t : NULL;
}

/* Pushes the context of `owner` (NULL: the top level), or nil if it has none. */
static void context_push(lua_State *L, task *owner) {
  if (owner == NULL) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &top_context_key);
  } else if (owner->has_context) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, owner->ref);
    lua_getiuservalue(L, -1, TUV_CONTEXT);
    lua_remove(L, -2);
  } else {
    lua_pushnil(L);
  }
}

/* task_create: the new task `t` (on top of the stack) starts with its creator's context. */
void context_inherit(lua_State *L, loop_state *loop, task *t) {
  context_push(L, context_owner(L, loop));
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  lua_setiuservalue(L, -2, TUV_CONTEXT);
  t->has_context = 1;
}

/* core._context_get() -> the running code's context table, or nil */
static int l_core_context_get(lua_State *L) {
  context_push(L, context_owner(L, loop_get(L)));
  return 1;
}

/* core._context_set(ctx): replaces the running code's context (a table nobody changes
   afterwards); returns the task it belongs to, or nil for the top level. */
static int l_core_context_set(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  loop_state *loop = loop_get(L);
  task *owner = context_owner(L, loop);
  lua_settop(L, 1);
  if (owner == NULL) {
    lua_rawsetp(L, LUA_REGISTRYINDEX, &top_context_key);
    loop->top_has_context = 1;
    return 0;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, owner->ref);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, TUV_CONTEXT);
  owner->has_context = 1;
  return 0;
}

/* core._context_owner() -> the running task, or false at the top level: a token
   remembers where it was made. */
static int l_core_context_owner(lua_State *L) {
  task *owner = context_owner(L, loop_get(L));
  if (owner == NULL)
    lua_pushboolean(L, 0);
  else
    lua_rawgeti(L, LUA_REGISTRYINDEX, owner->ref);
  return 1;
}

static const luaL_Reg context_functions[] = {
    {"_context_get", l_core_context_get},
    {"_context_set", l_core_context_set},
    {"_context_owner", l_core_context_owner},
    {NULL, NULL},
};

/* Adds the functions to the core table on top. */
void context_open(lua_State *L) { luaL_setfuncs(L, context_functions, 0); }

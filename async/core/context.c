/* context.c — task-local context, what asyncio.ContextVar reads (Python's contextvars):
   an immutable table {var = value} per task, shared with the tasks it creates until one
   of them sets a variable (stdlib/asyncio/contextvars.lua copies it then). The contexts
   live in a registry table keyed by the task's address (an entry removed by task_gc),
   so a task made while no variable was ever set costs one test and no memory; the
   context outside every task (a script's top level) is the entry under this file's
   key. A callback handle (call_soon, call_later, call_at, a done callback, a signal
   handler) captures the context current when it was scheduled and runs in its own copy
   of it, in place of the top-level context for the time of the call (Python's Handle). */
#include "core.h"

static char contexts_key; /* registry: {[task address or &top_context_key] = context} */
static char top_context_key;

static void push_contexts(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &contexts_key) == LUA_TTABLE) return;
  lua_pop(L, 1);
  lua_newtable(L);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &contexts_key);
}

/* The task whose context the running code sees, or NULL for the top-level context. */
static task *context_owner(lua_State *L, loop_state *loop) {
  task *t = task_of(L);
  if (t == NULL) t = loop->current;
  return t && t->ref != LUA_NOREF ? t : NULL;
}

static const void *context_key(task *owner) {
  return owner ? (const void *)owner : (const void *)&top_context_key;
}

/* Pushes the context of `owner` (NULL: the top level), or nil if it has none. */
static void context_push(lua_State *L, task *owner) {
  if (owner != NULL && !owner->has_context) {
    lua_pushnil(L);
    return;
  }
  push_contexts(L);
  lua_rawgetp(L, -1, context_key(owner));
  lua_remove(L, -2);
}

/* Sets the context of `owner` to the value on top (popped). */
static void context_store(lua_State *L, task *owner) {
  push_contexts(L);
  lua_insert(L, -2);
  lua_rawsetp(L, -2, context_key(owner));
  lua_pop(L, 1);
}

/* task_create: the new task `t` (on top of the stack) starts with its creator's context. */
void context_inherit(lua_State *L, loop_state *loop, task *t) {
  context_push(L, context_owner(L, loop));
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  context_store(L, t);
  t->has_context = 1;
}

/* handle_new: pushes the context a callback scheduled now runs in (the running code's)
   and returns 1, or returns 0 when there is none. */
int context_capture(lua_State *L, loop_state *loop) {
  task *owner = context_owner(L, loop);
  if (!(owner ? owner->has_context : loop->top_has_context)) return 0;
  context_push(L, owner);
  return 1;
}

/* handle_run: the context on top (popped; nil: none) replaces the top-level context while
   a callback runs. Pushes the top-level context, which context_leave takes back, and
   returns whether it had one. */
int context_enter(lua_State *L, loop_state *loop) {
  int outer = loop->top_has_context;
  loop->top_has_context = !lua_isnil(L, -1);
  push_contexts(L);                     /* ctx contexts */
  lua_rawgetp(L, -1, &top_context_key); /* ctx contexts outer */
  lua_rotate(L, -3, 1);                 /* outer ctx contexts */
  lua_insert(L, -2);                    /* outer contexts ctx */
  lua_rawsetp(L, -2, &top_context_key);
  lua_pop(L, 1);
  return outer;
}

/* After the callback, with what context_enter pushed on top: puts the top-level context
   back and pushes the callback's context as it left it (nil: none), which a handle that
   runs again (a signal handler) keeps, as Python's Handle keeps its context. */
void context_leave(lua_State *L, loop_state *loop, int outer) {
  loop->top_has_context = outer;
  push_contexts(L);                     /* outer contexts */
  lua_rawgetp(L, -1, &top_context_key); /* outer contexts inner */
  lua_pushvalue(L, -3);
  lua_rawsetp(L, -3, &top_context_key);
  lua_replace(L, -3); /* inner contexts */
  lua_pop(L, 1);
}

void context_forget(lua_State *L, task *t) {
  lua_pushnil(L);
  context_store(L, t);
  t->has_context = 0;
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
  context_store(L, owner);
  loop->any_context = 1;
  if (owner == NULL)
    loop->top_has_context = 1;
  else {
    owner->has_context = 1;
    finalize_watch_task(L, owner, 0); /* to forget it (task_finalize) */
  }
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

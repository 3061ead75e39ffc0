/* module.c — the core table (module_open) and the embedded Lua standard library run on it. */
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "stdlib_files.h"

static const stdlib_file *stdlib_find(const char *name) {
  for (const stdlib_file *f = stdlib_files; f->name; f++)
    if (strcmp(f->name, name) == 0) return f;
  return NULL;
}

/* Every state of the process loads the same stdlib: the first one parses each file, the
   others (workers, to_thread threads, more embedded states) load the bytecode it left
   here. Parsing was most of a worker's start-up. Kept until the code is unloaded. */
typedef struct compiled_part {
  char *code;
  size_t len, cap;
} compiled_part;

static compiled_part *compiled;
static uv_once_t compiled_once = UV_ONCE_INIT;
static uv_mutex_t compiled_lock;

static void compiled_init(void) {
  size_t n = 0;
  while (stdlib_files[n].name) n++;
  compiled = calloc(n, sizeof *compiled);
  uv_mutex_init(&compiled_lock);
}

/* Freed when the code is unloaded: stock lua5.4 dlcloses asyncio.so at lua_close, after
   which nothing could reach the parts (LeakSanitizer reports them under make check). */
__attribute__((destructor)) static void compiled_free(void) {
  if (compiled == NULL) return;
  for (size_t i = 0; stdlib_files[i].name; i++) free(compiled[i].code);
  free(compiled);
  compiled = NULL;
}

static int compiled_writer(lua_State *L, const void *p, size_t sz, void *ud) {
  (void)L;
  compiled_part *c = ud;
  if (c->len + sz > c->cap) {
    /* lua_dump writes in pieces of a few bytes: growing by each piece was quadratic,
       0.7 s of every start under AddressSanitizer */
    size_t cap = c->cap ? c->cap : 4096;
    while (cap < c->len + sz) cap *= 2;
    char *code = realloc(c->code, cap);
    if (code == NULL) return 1;
    c->code = code;
    c->cap = cap;
  }
  memcpy(c->code + c->len, p, sz);
  c->len += sz;
  return 0;
}

/* Pushes the function of stdlib file f, from its bytecode when another state made it. */
static int stdlib_load(lua_State *L, const stdlib_file *f) {
  uv_once(&compiled_once, compiled_init);
  compiled_part *slot = compiled ? &compiled[f - stdlib_files] : NULL;
  compiled_part c = {NULL, 0, 0};
  if (slot) {
    uv_mutex_lock(&compiled_lock);
    c = *slot;
    uv_mutex_unlock(&compiled_lock);
  }
  if (c.code) return luaL_loadbufferx(L, c.code, c.len, f->chunkname, "b");
  int status = luaL_loadbufferx(L, f->data, f->len, f->chunkname, "t");
  if (status != LUA_OK || slot == NULL) return status;
  if (lua_dump(L, compiled_writer, &c, 0) != 0) {
    free(c.code);
    return status;
  }
  uv_mutex_lock(&compiled_lock);
  if (slot->code == NULL) {
    *slot = c;
    c.code = NULL;
  }
  uv_mutex_unlock(&compiled_lock);
  free(c.code); /* another state was first */
  return status;
}

/* core.load_part(name, ...): runs an embedded stdlib file with the given arguments. */
static int l_core_load_part(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  const stdlib_file *f = stdlib_find(name);
  if (f == NULL) return luaL_error(L, "asyncio: no embedded module '%s'", name);
  if (stdlib_load(L, f) != LUA_OK) return lua_error(L);
  lua_replace(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

/* core.get_running_loop(): the loop object (one per state). */
static int l_core_get_running_loop(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, "asyncio.loopobject");
  return 1;
}

/* core._transfer(dst, src): completes the pending Future dst as src (done) ended. */
static int l_core_transfer(lua_State *L) {
  future *dst = future_check(L, 1);
  future *src = future_check(L, 2);
  if (dst->state != FUT_PENDING || src->state == FUT_PENDING) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lua_getiuservalue(L, 2, FUV_VALUE);
  lua_setiuservalue(L, 1, FUV_VALUE);
  if (future_get_extra(L, 2, FEXTRA_TRACEBACK) != LUA_TNIL)
    future_set_extra(L, 1, FEXTRA_TRACEBACK);
  else
    lua_pop(L, 1);
  if (src->state == FUT_ERROR) src->retrieved = 1;
  if (src->state == FUT_CANCELLED && src->msg_ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, src->msg_ref);
    dst->msg_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  dst->nresults = src->nresults;
  future_complete(dst, src->state);
  lua_pushboolean(L, 1);
  return 1;
}

/* core._report(what, err [, traceback]): a report on stderr for errors nobody can catch. */
static int l_core_report(lua_State *L) {
  const char *what = luaL_checkstring(L, 1);
  luaL_checkany(L, 2);
  loop_report(L, what, 2, luaL_optstring(L, 3, NULL));
  return 0;
}

/* core._traceback(err, level) -> "stack traceback:..." from `level` frames above this call
   (2 in a Lua message handler: the function that raised), as the interpreter's reports
   show it: alua's own frames folded into "(asyncio internals)" unless in debug mode, and
   the traceback of the task err came from when await relayed it. For the handlers that
   report errors nobody can catch (a connection's callback, an HTTP handler). */
static int l_core_traceback(lua_State *L) {
  luaL_checkany(L, 1);
  int level = (int)luaL_checkinteger(L, 2);
  lua_settop(L, 1);
  error_traceback(L, L, 1, level);
  return 1;
}

static const luaL_Reg core_functions[] = {
    {"load_part", l_core_load_part},  {"get_running_loop", l_core_get_running_loop},
    {"_transfer", l_core_transfer},   {"_report", l_core_report},
    {"_traceback", l_core_traceback}, {NULL, NULL},
};

/* Pushes the core table with the core layer's functions; the loop object is made here
   too, so the other layers can add its methods. */
void module_open(lua_State *L) {
  /* task_of reads a thread's extra space, which new threads copy from the main one and
     which nobody has set yet when asyncio is first opened: no task runs anywhere */
  int first_open = luaL_getmetatable(L, LOOP_MT) == LUA_TNIL;
  lua_pop(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  task_set_thread_owner(lua_tothread(L, -1), NULL);
  lua_pop(L, 1);
  if (first_open) task_set_thread_owner(L, NULL);
  loop_open(L);
  owner_open(L);
  lua_newtable(L); /* core */
  future_open(L);
  lua_setfield(L, -2, "Future");
  task_open(L);
  context_open(L);
  toplevel_open(L);
  handle_open(L);
  op_open(L);
  lua54_probe(L);
  coro_open(L);
  await_open(L);
  gather_open(L);
  error_open(L);
  debug_open(L);
  argcheck_open(L);
  luaL_setfuncs(L, core_functions, 0);
  lcorolib_patch(L);

  luaL_getmetatable(L, LOOP_MT);
  lua_newuserdatauv(L, 0, 0);
  lua_insert(L, -2);
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, "asyncio.loopobject");
}

/* Replaces the core table on top with the module stdlib/asyncio.lua builds from it. */
void module_load_stdlib(lua_State *L) {
  lua_pushcfunction(L, l_core_load_part);
  lua_pushliteral(L, "asyncio");
  lua_pushvalue(L, -3);
  lua_call(L, 2, 1);
  lua_replace(L, -2);
}

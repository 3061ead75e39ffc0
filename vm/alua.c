/* alua.c — the embedding API: states with asyncio and keyword syntax, running chunks. */
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "alua.h"
#include "core/core.h"
#include "os/os.h"
#include "loader.h"
#include "vm.h"

int alua_msgh(lua_State *L) {
  int t = lua_type(L, 1);
  if (t == LUA_TSTRING || t == LUA_TNUMBER) {
    lua_pushstring(L, lua_tostring(L, 1));
  } else if (!luaL_callmeta(L, 1, "__tostring") || lua_type(L, -1) != LUA_TSTRING) {
    lua_settop(L, 1);
    lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  lua_pushliteral(L, "\n");
  error_traceback(L, L, 1, 1);
  lua_concat(L, 3);
  return 1;
}

/* The error vm_pcall's handler saw last, and its "message\nstack traceback:..." text. */
static char last_error_key, last_text_key;

/* vm_pcall's message handler. A message handler runs before the <close> variables the
   error leaves are closed, so alua_msgh's string would be the error they see: a timeout
   or TaskGroup scope at a script's top level (or the REPL's) could not tell its own
   cancellation in it and let a CancelledError out in place of TimeoutError. This one
   saves alua_msgh's text (the traceback exists only here) and lets the value go on as
   raised; vm_pcall puts the text in its place at the end. */
static int keeping_msgh(lua_State *L) {
  lua_settop(L, 1);
  alua_msgh(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &last_text_key);
  lua_pushvalue(L, 1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &last_error_key);
  return 1;
}

/* Replaces the error on top by its text: the saved one if the handler saw this value
   (a <close> handler may have raised another, which went through the handler too), else
   alua_msgh's words without a traceback (a memory error, which runs no handler). */
static void error_to_text(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &last_error_key);
  int seen = lua_rawequal(L, -1, -2);
  lua_pop(L, 1);
  if (seen) {
    lua_pop(L, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &last_text_key);
  } else if (lua_type(L, -1) != LUA_TSTRING) {
    int t = lua_type(L, -1);
    if (t == LUA_TNUMBER) {
      lua_pushstring(L, lua_tostring(L, -1));
    } else if (!luaL_callmeta(L, -1, "__tostring") || lua_type(L, -1) != LUA_TSTRING) {
      lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, -1));
    }
    lua_replace(L, -2);
  }
  lua_pushnil(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &last_error_key);
  lua_pushnil(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &last_text_key);
}

int vm_pcall(lua_State *L, int nargs, int nresults) {
  int base = lua_gettop(L) - nargs;
  lua_pushcfunction(L, keeping_msgh);
  lua_insert(L, base);
  int status = lua_pcall(L, nargs, nresults, base);
  lua_remove(L, base);
  if (status != LUA_OK) error_to_text(L);
  return status;
}

int vm_loadfile(lua_State *L, const char *path) { return loader_loadfile(L, path, NULL); }

int vm_loadstring(lua_State *L, const char *src, size_t len, const char *chunkname) {
  return loader_loadbuffer(L, src, len, chunkname, NULL);
}

static int run_loop_to_end(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_getfield(L, -1, "asyncio");
  lua_getfield(L, -1, "_run_loop");
  lua_call(L, 0, 0);
  lua_getfield(L, -1, "_shutdown");
  lua_call(L, 0, 0);
  return 0;
}

int vm_run_loop_to_end(lua_State *L) {
  lua_pushcfunction(L, run_loop_to_end);
  return vm_pcall(L, 0, 0);
}

static int cancel_leftovers(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_getfield(L, -1, "asyncio");
  lua_getfield(L, -1, "_shutdown");
  lua_call(L, 0, 0);
  return 0;
}

int vm_cancel_leftovers(lua_State *L) {
  lua_pushcfunction(L, cancel_leftovers);
  return vm_pcall(L, 0, 0);
}

/* ---- embedding API -------------------------------------------------------------- */

/* Workers and to_thread threads get the full alua environment, as this state has. */
static const worker_vm alua_worker_vm = {alua_newstate, vm_loadfile};

void alua_openlibs(lua_State *L) {
  worker_set_vm(&alua_worker_vm);
  loader_install(L);
  unpack_install(L);
  luaL_requiref(L, "asyncio", luaopen_asyncio, 1);
  lua_getfield(L, -1, "async");
  lua_setglobal(L, "async");
  lua_getfield(L, -1, "await");
  lua_setglobal(L, "await");
  lua_pop(L, 1);
}

lua_State *alua_newstate(void) {
  lua_State *L = luaL_newstate();
  if (L == NULL) return NULL;
  luaL_openlibs(L);
  alua_openlibs(L);
  return L;
}

typedef struct chunk_source {
  const char *path, *src; /* a file, or a string */
  int status;             /* the load's */
} chunk_source;

static int load_chunk(lua_State *L) {
  chunk_source *c = lua_touserdata(L, 1);
  c->status = c->path ? vm_loadfile(L, c->path) : vm_loadstring(L, c->src, strlen(c->src), c->src);
  return 1;
}

/* Loads under a pcall: the keyword transform and Lua's parser raise a memory error where
   they stand, which unprotected (the host's own call) is Lua's panic, an abort. */
static int do_chunk(lua_State *L, chunk_source *c) {
  lua_pushcfunction(L, load_chunk);
  lua_pushlightuserdata(L, c);
  int status = lua_pcall(L, 1, 1, 0);
  if (status != LUA_OK) return status;
  if (c->status != LUA_OK) return c->status;
  return vm_pcall(L, 0, LUA_MULTRET);
}

int alua_dofile(lua_State *L, const char *path) {
  chunk_source c = {.path = path};
  return do_chunk(L, &c);
}

int alua_dostring(lua_State *L, const char *src) {
  chunk_source c = {.src = src};
  return do_chunk(L, &c);
}

uv_loop_t *alua_loop(lua_State *L) { return loop_get(L)->uv; }

int alua_run(lua_State *L, uv_run_mode mode) { return loop_run(L, loop_get(L), mode); }

void alua_close(lua_State *L) { lua_close(L); }

int alua_setloop(lua_State *L, uv_loop_t *loop) { return loop_switch(L, loop); }

int alua_backend_fd(lua_State *L) { return uv_backend_fd(loop_get(L)->uv); }

int alua_backend_timeout(lua_State *L) {
  loop_state *loop = loop_get(L);
  if (loop->ready_count > 0) return 0;
  uv_update_time(
      loop->uv); /* the host is about to wait: measure from now, not the last iteration */
  return uv_backend_timeout(loop->uv);
}

/* ---- host events as futures ------------------------------------------------------- */

int alua_future_new(lua_State *L) {
  if (!lua_checkstack(L, 2)) return -1;
  future_new(L, loop_get(L));
  lua_pushvalue(L, -1);
  return luaL_ref(L, LUA_REGISTRYINDEX);
}

typedef struct settle_args {
  int key, reject, result;
} settle_args;

/* [args, values...]: completes the future behind args->key with the values. */
static int future_settle(lua_State *L) {
  settle_args *a = lua_touserdata(L, 1);
  int n = lua_gettop(L) - 1;
  lua_rawgeti(L, LUA_REGISTRYINDEX, a->key);
  luaL_unref(L, LUA_REGISTRYINDEX, a->key);
  future *f = luaL_testudata(L, -1, FUTURE_MT);
  if (f == NULL || f->state != FUT_PENDING) return 0;
  int fidx = lua_gettop(L);
  if (a->reject) {
    lua_pushvalue(L, 2);
    lua_setiuservalue(L, fidx, FUV_VALUE);
    future_complete(f, FUT_ERROR);
  } else {
    future_store_results(L, fidx, 2, n);
    future_complete(f, FUT_RESULT);
  }
  a->result = 0;
  return 0;
}

static int future_settle_with(lua_State *L, int key, int nvalues, int reject) {
  settle_args a = {key, reject, -1};
  if (key < 0 || !lua_checkstack(L, 3)) return -1;
  lua_pushcfunction(L, future_settle);
  lua_pushlightuserdata(L, &a);
  lua_rotate(L, -(nvalues + 2), 2);
  if (lua_pcall(L, nvalues + 1, 0, 0) != LUA_OK) {
    lua_pop(L, 1);
    return -1;
  }
  return a.result;
}

int alua_future_resolve(lua_State *L, int key, int nresults) {
  return future_settle_with(L, key, nresults, 0);
}

int alua_future_reject(lua_State *L, int key) { return future_settle_with(L, key, 1, 1); }

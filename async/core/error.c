/* error.c — asyncio's error classes, OS errors from libuv codes, and tracebacks kept
   across task boundaries. */
#include <stdarg.h>
#include <string.h>

#include "core.h"

static char classes_key;    /* registry: name -> class table */
static char failure_mt_key; /* registry: metatable of gather's wrapped user errors */
static char relay_key;      /* registry: {error, traceback} of the last error await relayed */

/* clang-format off */
static const char *const class_names[] = {
    "CancelledError", "TimeoutError",    "InvalidStateError", "QueueEmpty",
    "QueueFull",      "QueueShutDown",   "IncompleteReadError", "LimitOverrunError",
    "OSError",        "ConnectionError", "BrokenPipeError",   "SSLError",
    "ExceptionGroup", "ProtocolError", NULL,
};
/* clang-format on */

/* A class is a table {name=, is=} that is callable to make instances; its instances
   share one metatable (the class's field `__instance`), whose `class` is the class. */

static void push_instance_mt(lua_State *L, const char *type) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &classes_key);
  if (lua_getfield(L, -1, type) != LUA_TTABLE)
    luaL_error(L, "asyncio: unknown error class %s", type);
  lua_getfield(L, -1, "__instance");
  lua_replace(L, -3);
  lua_pop(L, 1);
}

/* ---- tracebacks ------------------------------------------------------------------- */

/* The text of luaL_traceback without its costly part: for every frame, luaL_traceback
   first looks for a global name of the function by walking package.loaded (every field
   of every loaded module, ~500,000 instructions per traceback), and every error instance
   and failing task takes one (a cancelled task makes two). Here a frame is named only from
   its call site (lua_getinfo "n": "local 'f'", "method 'read'", "field 'run'"), a global
   reading as "function 'f'", which is what the search found for those. Levels shown: the
   first TRACEBACK_TOP and the last TRACEBACK_BOTTOM of a deeper stack, as lauxlib does. */
enum { TRACEBACK_TOP = 10, TRACEBACK_BOTTOM = 11 };

/* The level of the outermost frame of co (lauxlib's lastlevel): O(depth log depth), so
   asked only of stacks too deep to show whole. */
static int last_level(lua_State *co) {
  lua_Debug ar;
  int known = 1, beyond = 1;
  while (lua_getstack(co, beyond, &ar)) {
    known = beyond;
    beyond *= 2;
  }
  while (known < beyond) {
    int mid = (known + beyond) / 2;
    if (lua_getstack(co, mid, &ar))
      known = mid + 1;
    else
      beyond = mid;
  }
  return beyond - 1;
}

/* Appends without strlen for literals nor snprintf for numbers: a traceback is made for
   every error, so its few hundred bytes are put together piece by piece, cheaply. */
#define add_literal(b, s) luaL_addlstring((b), "" s, sizeof(s) - 1)

static void add_int(luaL_Buffer *b, int n) {
  char digits[12];
  char *p = digits + sizeof digits;
  unsigned u = n < 0 ? 0u - (unsigned)n : (unsigned)n;
  do *--p = (char)('0' + u % 10);
  while (u /= 10);
  if (n < 0) *--p = '-';
  luaL_addlstring(b, p, (size_t)(digits + sizeof digits - p));
}

static void add_quoted(luaL_Buffer *b, const char *what, const char *name) {
  luaL_addstring(b, what);
  add_literal(b, " '");
  luaL_addstring(b, name);
  luaL_addchar(b, '\'');
}

static void add_function_name(luaL_Buffer *b, const lua_Debug *ar) {
  if (strcmp(ar->namewhat, "global") == 0) {
    add_quoted(b, "function", ar->name);
  } else if (*ar->namewhat != '\0') {
    add_quoted(b, ar->namewhat, ar->name);
  } else if (*ar->what == 'm') {
    add_literal(b, "main chunk");
  } else if (*ar->what != 'C') {
    add_literal(b, "function <");
    luaL_addstring(b, ar->short_src);
    luaL_addchar(b, ':');
    add_int(b, ar->linedefined);
    luaL_addchar(b, '>');
  } else {
    luaL_addchar(b, '?');
  }
}

/* "\n\tsrc:line: in name", as luaL_traceback writes a frame. */
static void add_frame(luaL_Buffer *b, const lua_Debug *ar) {
  add_literal(b, "\n\t");
  luaL_addstring(b, ar->short_src);
  luaL_addchar(b, ':');
  if (ar->currentline > 0) {
    add_int(b, ar->currentline);
    luaL_addchar(b, ':');
  }
  add_literal(b, " in ");
  add_function_name(b, ar);
  if (ar->istailcall) add_literal(b, "\n\t(...tail calls...)");
}

/* Frames inside alua itself (its embedded stdlib, C functions called among them) are
   folded into one "(asyncio internals)" line: a run of C and stdlib frames with at least
   one stdlib frame in it. A run of C frames alone (pcall, error) is shown. Not in debug
   mode, which shows everything. */
#define STDLIB_SOURCE "@stdlib/"
static int frame_is_stdlib(const lua_Debug *ar) {
  return strncmp(ar->source, STDLIB_SOURCE, sizeof STDLIB_SOURCE - 1) == 0;
}

/* await is C (await.c), but as much alua's as the stdlib: the frame of a coroutine object
   awaited in place, between two of the user's, folds as the stdlib's would. */
static int frame_is_await(lua_State *co, lua_Debug *ar) {
  if (*ar->what != 'C' || !lua_checkstack(co, 1)) return 0;
  lua_getinfo(co, "f", ar);
  int yes = await_is_await(lua_tocfunction(co, -1));
  lua_pop(co, 1);
  return yes;
}

/* Adds the frames of levels [from, to) of co, or the fold line if they hold stdlib ones. */
static void add_run(luaL_Buffer *b, lua_State *co, int from, int to, int has_stdlib) {
  if (from < 0) return;
  if (has_stdlib) {
    add_literal(b, "\n\t(asyncio internals)");
    return;
  }
  lua_Debug ar;
  for (int level = from; level < to && lua_getstack(co, level, &ar); level++) {
    lua_getinfo(co, "Slnt", &ar);
    add_frame(b, &ar);
  }
}

/* Pushes "stack traceback:" and the frames of co from `level` on (co may be L); with
   `top_only`, only the innermost TRACEBACK_TOP + TRACEBACK_BOTTOM frames, then "...":
   finding the outermost frames walks the whole stack (O(depth log depth)). */
static void push_stack(lua_State *L, lua_State *co, int level, int top_only) {
  lua_Debug ar;
  int skip_at = -1; /* frames shown before the "skipping" line, or -1: all */
  int last = 0;
  int fold = !debug_states;
  int run_from = -1, run_stdlib = 0; /* a run of internal frames not added yet */
  if (lua_getstack(co, level + TRACEBACK_TOP + TRACEBACK_BOTTOM + 1, &ar)) { /* more than both */
    last = top_only ? -1 : last_level(co);
    skip_at = top_only ? TRACEBACK_TOP + TRACEBACK_BOTTOM : TRACEBACK_TOP;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  add_literal(&b, "stack traceback:");
  for (int shown = 0; lua_getstack(co, level, &ar); shown++, level++) {
    if (shown == skip_at && last < 0) {
      add_run(&b, co, run_from, level, run_stdlib);
      run_from = -1;
      add_literal(&b, "\n\t...");
      break;
    }
    if (shown == skip_at) {
      add_run(&b, co, run_from, level, run_stdlib);
      run_from = -1;
      int skipped = last - level - TRACEBACK_BOTTOM + 1;
      add_literal(&b, "\n\t...\t(skipping ");
      add_int(&b, skipped);
      add_literal(&b, " levels)");
      level += skipped - 1;
      continue;
    }
    lua_getinfo(co, "Slnt", &ar);
    int stdlib = frame_is_stdlib(&ar) || (fold && frame_is_await(co, &ar));
    if (fold && (stdlib || *ar.what == 'C')) {
      if (run_from < 0) run_from = level, run_stdlib = 0;
      run_stdlib |= stdlib;
      continue;
    }
    add_run(&b, co, run_from, level, run_stdlib);
    run_from = -1;
    add_frame(&b, &ar);
  }
  add_run(&b, co, run_from, level, run_stdlib);
  luaL_pushresult(&b);
}

void error_push_stack(lua_State *L, lua_State *co, int level) { push_stack(L, co, level, 0); }

void error_push_stack_top(lua_State *L, lua_State *co, int level) { push_stack(L, co, level, 1); }

/* Pushes what push_stack wrote for a task's thread at an error its tail await raised
   (tail.c), whose thread is gone: await's frame (folded), the function at the await's
   line, task_main's ([C]: in ?). The function is on top (popped). Folded form only: a
   tail await of a future is not made while a state of this thread is in debug mode. */
void error_push_tail_stack(lua_State *L, int line, int tailcalled) {
  lua_Debug ar;
  lua_getinfo(L, ">S", &ar);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  add_literal(&b, "stack traceback:\n\t(asyncio internals)");
  if (!frame_is_stdlib(&ar)) { /* else folded with await's and task_main's */
    ar.currentline = line;
    ar.istailcall = (char)tailcalled;
    ar.name = NULL;
    ar.namewhat = "";
    add_frame(&b, &ar);
    add_literal(&b, "\n\t[C]: in ?");
  }
  luaL_pushresult(&b);
}

/* Does the traceback text show a frame of the user's code (not only folded internals
   and C functions)? */
static int shows_user_frames(const char *tb) {
  for (const char *p = strstr(tb, "\n\t"); p; p = strstr(p + 2, "\n\t")) {
    const char *f = p + 2;
    if (strncmp(f, "[C]", 3) != 0 && strncmp(f, "(asyncio internals)", 19) != 0 &&
        strncmp(f, "(...tail calls...)", 18) != 0 && strncmp(f, "...", 3) != 0)
      return 1;
  }
  return 0;
}

/* ---- instances -------------------------------------------------------------------- */

/* Pushes a new instance of class `type`, its traceback taken where it is made. */
void error_push(lua_State *L, const char *type, const char *message) {
  lua_createtable(L, 0, 4);
  lua_pushstring(L, type);
  lua_setfield(L, -2, "type");
  lua_pushstring(L, message ? message : "");
  lua_setfield(L, -2, "message");
  error_push_stack(L, L, 1);
  lua_setfield(L, -2, "traceback");
  push_instance_mt(L, type);
  lua_setmetatable(L, -2);
}

int error_raise(lua_State *L, const char *type, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  const char *msg = lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  error_push(L, type, msg);
  return lua_error(L);
}

/* Is the value at idx an instance of `type` (or, for OSError, of one of its kinds)? */
int error_is(lua_State *L, int idx, const char *type) {
  if (!lua_istable(L, idx) || !lua_getmetatable(L, idx)) return 0;
  int yes = 0;
  if (lua_getfield(L, -1, "class") == LUA_TTABLE) {
    lua_getfield(L, -1, "name");
    const char *name = lua_tostring(L, -1);
    lua_getfield(L, -2, "base");
    const char *base = lua_tostring(L, -1);
    yes = (name && strcmp(name, type) == 0) || (base && strcmp(base, type) == 0);
    lua_pop(L, 2);
  }
  lua_pop(L, 2);
  return yes;
}

/* The class name of the asyncio error instance at idx, or NULL for any other value (the
   name lives in the class table, which the registry keeps). */
const char *error_instance_type(lua_State *L, int idx) {
  if (!lua_istable(L, idx) || !lua_getmetatable(L, idx)) return NULL;
  int top = lua_gettop(L);
  const char *name = NULL;
  if (lua_getfield(L, top, "class") == LUA_TTABLE &&
      lua_getfield(L, top + 1, "name") == LUA_TSTRING) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &classes_key);
    lua_pushvalue(L, top + 2);
    if (lua_rawget(L, -2) == LUA_TTABLE && lua_getfield(L, -1, "__instance") == LUA_TTABLE &&
        lua_rawequal(L, -1, top))
      name = lua_tostring(L, top + 2);
  }
  lua_settop(L, top - 1);
  return name;
}

/* Gives the table at idx the instances' metatable of class `type` (an error copied from
   another state), if asyncio has that class. */
void error_set_instance_class(lua_State *L, int idx, const char *type) {
  idx = lua_absindex(L, idx);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &classes_key);
  if (lua_getfield(L, -1, type) == LUA_TTABLE) {
    lua_getfield(L, -1, "__instance");
    lua_setmetatable(L, idx);
  }
  lua_pop(L, 2);
}

static const char *uv_error_class(int uverr) {
  switch (uverr) {
    case UV_ECONNREFUSED:
    case UV_ECONNRESET:
    case UV_ECONNABORTED:
    case UV_ETIMEDOUT:
    case UV_EADDRINUSE:
    case UV_EADDRNOTAVAIL:
    case UV_ENETUNREACH:
    case UV_EHOSTUNREACH:
    case UV_ENOTCONN: return "ConnectionError";
    case UV_EPIPE:
    case UV_ESHUTDOWN: return "BrokenPipeError";
    default: return "OSError";
  }
}

/* Pushes the error for a failed libuv call: `errno` is the name (ENOENT), the message
   says which call failed and why. */
void error_push_uv(lua_State *L, const char *syscall, int uverr) {
  const char *name = uv_err_name(uverr);
  lua_pushfstring(L, "%s: %s (%s)", syscall, name, uv_strerror(uverr));
  error_push(L, uv_error_class(uverr), lua_tostring(L, -1));
  lua_remove(L, -2);
  lua_pushstring(L, name);
  lua_setfield(L, -2, "errno");
  lua_pushstring(L, syscall);
  lua_setfield(L, -2, "syscall");
}

/* The OSError of uverr from syscall, with its own message (fmt and its arguments, as
   lua_pushfstring takes them) instead of "syscall: NAME (text)": errno and syscall are
   set as always. The one way to say more than the error's name, e.g. which path. */
static void push_uv_vmsg(lua_State *L, const char *syscall, int uverr, const char *fmt,
                         va_list ap) {
  error_push_uv(L, syscall, uverr);
  lua_pushvfstring(L, fmt, ap);
  lua_setfield(L, -2, "message");
}

void error_push_uv_msg(lua_State *L, const char *syscall, int uverr, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  push_uv_vmsg(L, syscall, uverr, fmt, ap);
  va_end(ap);
}

int error_raise_uv_msg(lua_State *L, const char *syscall, int uverr, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  push_uv_vmsg(L, syscall, uverr, fmt, ap);
  va_end(ap);
  return lua_error(L);
}

int error_raise_uv(lua_State *L, const char *syscall, int uverr) {
  error_push_uv(L, syscall, uverr);
  return lua_error(L);
}

/* ---- tracebacks across tasks ---------------------------------------------------- */

/* Remembers the traceback of a failed task whose error await is about to raise in
   another: whoever reports that same error value appends it. */
void error_relay_set(lua_State *L, int erridx, int tbidx) {
  erridx = lua_absindex(L, erridx);
  tbidx = lua_absindex(L, tbidx);
  if (lua_isnil(L, tbidx)) return;
  lua_createtable(L, 2, 0);
  lua_pushvalue(L, erridx);
  lua_rawseti(L, -2, 1);
  lua_pushvalue(L, tbidx);
  lua_rawseti(L, -2, 2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &relay_key);
}

/* Pushes the traceback of co from `level` for the error at erridx, followed by the
   traceback of the task it came from when await relayed it. */
void error_traceback(lua_State *L, lua_State *co, int erridx, int level) {
  erridx = lua_absindex(L, erridx);
  error_push_stack(L, co, level);
  error_relay_append(L, erridx);
}

/* The traceback on top (a stack's, for the error at erridx) gets the traceback of the task
   the error came from appended, when await relayed it. */
void error_relay_append(lua_State *L, int erridx) {
  erridx = lua_absindex(L, erridx);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &relay_key) == LUA_TTABLE) {
    lua_rawgeti(L, -1, 1);
    int same = lua_rawequal(L, -1, erridx);
    lua_pop(L, 1);
    lua_rawgeti(L, -1, 2);
    const char *relayed = lua_tostring(L, -1);
    lua_pop(L, 1); /* the relay table keeps it */
    if (same && relayed && (debug_states || shows_user_frames(relayed))) {
      lua_pushliteral(L, "\nraised in an awaited task:\n");
      lua_rawgeti(L, -2, 2);
      lua_remove(L, -3);
      lua_concat(L, 3);
      return;
    }
  }
  lua_pop(L, 1);
}

/* ---- Lua side ----------------------------------------------------------------------- */

/* Class(message [, fields]) */
static int class_call(lua_State *L) {
  lua_settop(L, 3); /* the name pushed below must not land in the message's slot */
  const char *msg = luaL_optstring(L, 2, NULL);
  lua_getfield(L, 1, "name");
  const char *name = lua_tostring(L, -1);
  error_push(L, name, msg);
  if (lua_istable(L, 3)) {
    lua_pushnil(L);
    while (lua_next(L, 3)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, -4);
    }
  }
  return 1;
}

/* Class:is(v) */
static int class_is(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "name");
  lua_pushboolean(L, error_is(L, 2, lua_tostring(L, -1)));
  return 1;
}

static int class_tostring(lua_State *L) {
  lua_getfield(L, 1, "name");
  lua_pushfstring(L, "<class asyncio.%s>", lua_tostring(L, -1));
  return 1;
}

static int instance_tostring(lua_State *L) {
  lua_getfield(L, 1, "type");
  lua_getfield(L, 1, "message");
  const char *msg = lua_tostring(L, -1);
  if (msg && *msg)
    lua_pushfstring(L, "%s: %s", lua_tostring(L, -2), msg);
  else
    lua_pushvalue(L, -2);
  return 1;
}

static void class_new(lua_State *L, const char *name, const char *base) {
  lua_createtable(L, 0, 4); /* the class */
  lua_pushstring(L, name);
  lua_setfield(L, -2, "name");
  if (base) {
    lua_pushstring(L, base);
    lua_setfield(L, -2, "base");
  }
  lua_pushcfunction(L, class_is);
  lua_setfield(L, -2, "is");
  lua_createtable(L, 0, 4); /* the instances' metatable */
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, "class");
  lua_pushcfunction(L, instance_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushstring(L, name);
  lua_setfield(L, -2, "__name");
  lua_setfield(L, -2, "__instance");
  lua_createtable(L, 0, 2); /* the class's own metatable */
  lua_pushcfunction(L, class_call);
  lua_setfield(L, -2, "__call");
  lua_pushcfunction(L, class_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_setmetatable(L, -2);
}

/* ---- failures among gather's results -------------------------------------------- */

/* Is the value at idx an instance of one of asyncio's error classes? */
int error_is_any(lua_State *L, int idx) {
  if (!lua_istable(L, idx) || !lua_getmetatable(L, idx)) return 0;
  int yes = 0;
  if (lua_getfield(L, -1, "class") == LUA_TTABLE) {
    lua_getfield(L, -1, "__instance");
    yes = lua_rawequal(L, -1, -3);
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
  return yes;
}

/* With return_exceptions, gather puts a failed child's error among the results: a user
   error (a string, any value) is wrapped as {error = value, traceback = tb} so that
   asyncio.is_error tells it from a result; asyncio's own errors are already told. */
void error_wrap_failure(lua_State *L, int tbidx) {
  tbidx = lua_absindex(L, tbidx);
  if (error_is_any(L, -1)) return;
  lua_createtable(L, 0, 2);
  lua_insert(L, -2);
  lua_setfield(L, -2, "error");
  lua_pushvalue(L, tbidx);
  lua_setfield(L, -2, "traceback");
  lua_rawgetp(L, LUA_REGISTRYINDEX, &failure_mt_key);
  lua_setmetatable(L, -2);
}

static int failure_tostring(lua_State *L) {
  lua_getfield(L, 1, "error");
  luaL_tolstring(L, -1, NULL);
  return 1;
}

/* asyncio.is_error(v): an asyncio error, or a user error gather wrapped */
static int is_error_lua(lua_State *L) {
  int yes = error_is_any(L, 1);
  if (!yes && lua_getmetatable(L, 1)) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &failure_mt_key);
    yes = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
  }
  lua_pushboolean(L, yes);
  return 1;
}

/* Adds the error classes to the table on top. */
void error_open(lua_State *L) {
  lua_newtable(L);
  for (int i = 0; class_names[i]; i++) {
    const char *base = NULL;
    if (strcmp(class_names[i], "ConnectionError") == 0 ||
        strcmp(class_names[i], "BrokenPipeError") == 0)
      base = "OSError";
    class_new(L, class_names[i], base);
    lua_pushvalue(L, -1);
    lua_setfield(L, -4, class_names[i]);
    lua_setfield(L, -2, class_names[i]);
  }
  lua_rawsetp(L, LUA_REGISTRYINDEX, &classes_key);
  loop_state *loop = loop_get(L);
  push_instance_mt(L, "CancelledError");
  loop->cancelled_mt = lua_topointer(L, -1);
  lua_pop(L, 1);
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, failure_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "asyncio.failure");
  lua_setfield(L, -2, "__name");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &failure_mt_key);
  lua_pushcfunction(L, is_error_lua);
  lua_setfield(L, -2, "is_error");
}

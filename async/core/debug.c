/* debug.c — seeing inside a running program: debug mode (slow steps, where coroutines,
   futures and resources were made, unclosed resources) and what a task is doing, for
   asyncio.print_tasks and task:get_stack (stdlib/asyncio/debug.lua formats). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core.h"

/* States on this OS thread with debug mode on: l_core_creation sites are recorded only when
   this is not 0, so with debug off the cost is one test of a thread-local counter. */
_Thread_local int debug_states;

static char creation_key; /* registry: object -> traceback where it was made (weak keys) */

/* ---- slow steps ----------------------------------------------------------------------- */

/* A count hook samples the running step every so many VM instructions: the first sample
   past the limit names the line that holds the loop (a step blocked in one C call is
   named by its suspension line instead). */
enum { SLOW_HOOK_COUNT = 1000 };

typedef struct slow_step {
  uint64_t start, limit; /* coarse clock, ns */
  int active, seen;
  char where[LUA_IDSIZE + 64];
} slow_step;
static _Thread_local slow_step step;

/* A millisecond-grained clock that costs a few nanoseconds: enough against a limit of
   0.1 s, and cheap enough to read twice per step. */
static uint64_t coarse_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* stdlib/ files and C functions: what a report folds away to show the user's lines. */
static int internal_frame(const lua_Debug *ar) {
  return *ar->what == 'C' || strncmp(ar->source, "@stdlib/", 8) == 0;
}

static void frame_text(char *out, size_t size, const lua_Debug *ar) {
  if (ar->name)
    snprintf(out, size, "%s:%d in %s '%s'", ar->short_src, ar->currentline,
             *ar->namewhat ? ar->namewhat : "function", ar->name);
  else if (*ar->what == 'm')
    snprintf(out, size, "%s:%d in the main chunk", ar->short_src, ar->currentline);
  else
    snprintf(out, size, "%s:%d", ar->short_src, ar->currentline);
}

static void slow_hook(lua_State *L, lua_Debug *ar) {
  if (!step.active) { /* left on a thread after its step: take it off */
    lua_sethook(L, NULL, 0, 0);
    return;
  }
  if (step.seen || coarse_ns() - step.start <= step.limit) return;
  step.seen = 1;
  if (lua_getinfo(L, "Sln", ar)) frame_text(step.where, sizeof step.where, ar);
}

/* A hook someone else set (the program's own, a worker's interrupt) is left alone: only
   the busy line is then not sampled on that thread. */
void debug_hook_thread(lua_State *co) {
  lua_Hook h = lua_gethook(co);
  if (h == NULL || h == slow_hook) lua_sethook(co, slow_hook, LUA_MASKCOUNT, SLOW_HOOK_COUNT);
}

/* Whether co carries a hook: a leftover sampler (debug mode's, on a thread that ran a
   step while it was on, which would take itself off when it next fires) is taken off and
   does not count (tail.c). */
int debug_hooked(lua_State *co) {
  lua_Hook h = lua_gethook(co);
  if (h == NULL) return 0;
  if (h != slow_hook || step.active) return 1;
  lua_sethook(co, NULL, 0, 0);
  return 0;
}

static void debug_unhook_thread(lua_State *co) {
  if (lua_gethook(co) == slow_hook) lua_sethook(co, NULL, 0, 0);
}

/* The innermost frame of a suspended thread that is the user's, as text; 0 if none. */
static int user_frame(lua_State *co, char *out, size_t size) {
  lua_Debug ar;
  for (int level = 0; lua_getstack(co, level, &ar); level++) {
    lua_getinfo(co, "Sln", &ar);
    if (!internal_frame(&ar) && ar.currentline > 0) {
      frame_text(out, size, &ar);
      return 1;
    }
  }
  return 0;
}

static void report_slow(loop_state *loop, const char *who, lua_State *co, uint64_t elapsed) {
  char then[LUA_IDSIZE + 64];
  fprintf(stderr, "Executing %s took %.3f s (loop.slow_callback_duration is %g s)", who,
          (double)elapsed / 1e9, (double)loop->slow_ns / 1e9);
  if (step.seen) fprintf(stderr, ": running at %s", step.where);
  if (co && lua_status(co) == LUA_YIELD && user_frame(co, then, sizeof then))
    fprintf(stderr, "%s suspended at %s", step.seen ? ", then" : ":", then);
  fputc('\n', stderr);
  fflush(stderr);
}

static void push_task_name(lua_State *L, int idx, task *t) {
  if (future_get_extra(L, idx, FEXTRA_NAME) != LUA_TSTRING) {
    lua_pop(L, 1);
    lua_pushfstring(L, "Task-%I", (lua_Integer)t->id);
  }
}

/* Runs one entry of the ready queue as drain does, timed: what held the loop longer
   than loop.slow_callback_duration is reported on stderr. */
void debug_run(lua_State *L, loop_state *loop, runnable *r) {
  int top = lua_gettop(L);
  uint64_t elapsed;
  step.limit = loop->slow_ns;
  step.seen = 0;
  step.active = 1;
  if (r->kind == RUN_TASK) {
    task *t = container_of(r, task, run);
    if (t->ref == LUA_NOREF) { /* done already: the step does nothing */
      step.active = 0;
      task_step(L, loop, t);
      return;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->ref); /* kept alive for the report */
    step.start = coarse_ns();
    task_step(L, loop, t); /* which hooks the task's thread */
    elapsed = coarse_ns() - step.start;
    step.active = 0;
    if (elapsed > loop->slow_ns) {
      push_task_name(L, top + 1, t);
      lua_pushfstring(L, "Task '%s'", lua_tostring(L, -1));
      report_slow(loop, lua_tostring(L, -1), t->co, elapsed);
    }
  } else if (r->kind == RUN_HANDLE) {
    handle *h = container_of(r, handle, run);
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->ref);
    lua_getiuservalue(L, -1, 1); /* the callback */
    debug_hook_thread(L);
    step.start = coarse_ns();
    handle_run(L, h);
    elapsed = coarse_ns() - step.start;
    step.active = 0;
    debug_unhook_thread(L);
    if (elapsed > loop->slow_ns) {
      lua_Debug ar;
      if (lua_isfunction(L, top + 2) && (lua_pushvalue(L, top + 2), lua_getinfo(L, ">S", &ar)))
        lua_pushfstring(L, "callback function <%s:%d>", ar.short_src, ar.linedefined);
      else
        lua_pushliteral(L, "a callback");
      report_slow(loop, lua_tostring(L, -1), NULL, elapsed);
    }
  } else {
    step.active = 0;
    gather_run(L, r);
  }
  lua_settop(L, top);
}

/* ---- where things were made ------------------------------------------------------------ */

/* A creation traceback with the chain of the tasks it was made in stays under this size
   (a chain of 10,000 tasks each made by the previous one would hold 10,000 levels). */
enum { CREATION_MAX = 4096 };

/* Debug mode: remembers the traceback where the object at idx is being made. Inside a
   task it goes on with where that task was made, so that a stream opened by a task a
   top-level await started still leads to the user's line. */
void debug_record_creation(lua_State *L, int idx) {
  task *t = task_of(L);
  loop_state *loop = t ? t->base.loop : loop_get(L);
  if (!loop->debug) return;
  idx = lua_absindex(L, idx);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &creation_key) != LUA_TTABLE) {
    lua_pop(L, 1);
    return;
  }
  int tab = lua_gettop(L);
  lua_pushvalue(L, idx);
  error_push_stack_top(L, L, 1); /* as Python's origin tracking depth: deep chains stay linear */
  if (t && t->ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->ref);
    lua_rawget(L, tab);
    const char *outer = lua_tostring(L, -1);
    const char *frames = outer ? strchr(outer, '\n') : NULL;
    size_t have = lua_rawlen(L, -2);
    if (frames && have < CREATION_MAX) {
      size_t room = CREATION_MAX - have, len = strlen(frames);
      lua_pushliteral(L, "\n\t(in a task made at:)");
      if (len <= room) {
        lua_pushstring(L, frames);
      } else {
        const char *cut = frames + room;
        while (cut > frames && *cut != '\n') cut--; /* whole lines only */
        lua_pushlstring(L, frames, (size_t)(cut - frames));
        lua_pushliteral(L, "\n\t...");
        lua_concat(L, 2);
      }
      lua_remove(L, -3);
      lua_concat(L, 3);
    } else {
      lua_pop(L, 1);
    }
  }
  lua_rawset(L, tab);
  lua_pop(L, 1);
}

/* Prints "<what> was made at:" and the traceback recorded for the object at idx, if any
   (only objects made in debug mode have one). Returns whether it printed. */
int debug_report_creation(lua_State *L, int idx, const char *what) {
  idx = lua_absindex(L, idx);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &creation_key) != LUA_TTABLE) {
    lua_pop(L, 1);
    return 0;
  }
  lua_pushvalue(L, idx);
  lua_rawget(L, -2);
  const char *tb = lua_tostring(L, -1);
  if (tb) {
    const char *frames = strchr(tb, '\n'); /* past "stack traceback:" */
    fprintf(stderr, "%s was made at:%s\n", what, frames ? frames : "");
    fflush(stderr);
  }
  lua_pop(L, 2);
  return tb != NULL;
}

/* A stream, server or process collected while still open: in debug mode, said so with
   where it was made (Python's ResourceWarning). */
void debug_report_unclosed(lua_State *L, int idx, const char *what) {
  idx = lua_absindex(L, idx);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &creation_key) != LUA_TTABLE) {
    lua_pop(L, 1);
    return;
  }
  lua_pushvalue(L, idx);
  int made_in_debug = lua_rawget(L, -2) != LUA_TNIL;
  lua_pop(L, 2);
  if (!made_in_debug) return;
  fprintf(stderr, "ResourceWarning: unclosed %s, collected while still open\n", what);
  debug_report_creation(L, idx, "It");
}

/* ---- what a task is doing, for print_tasks ------------------------------------------ */

/* Who can say what a waiter Future is (the net layer: a read on a stream...). */
enum { DESCRIBERS_MAX = 4 };
static debug_wait_describer describers[DESCRIBERS_MAX];
static int ndescribers;

void debug_add_wait_describer(debug_wait_describer fn) {
  for (int i = 0; i < ndescribers; i++)
    if (describers[i] == fn) return;
  if (ndescribers < DESCRIBERS_MAX) describers[ndescribers++] = fn;
}

/* Pushes the Lua object of future f, which the suspended task holds on its stack (await
   keeps what it awaits there); nil if it is not found. */
static void push_awaited(lua_State *L, task *t, future *f) {
  if (f->kind == KIND_TASK && ((task *)f)->ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, ((task *)f)->ref);
    return;
  }
  if (t->tail) { /* its record keeps it (tail.c), the task at 1 */
    if (lua_getiuservalue(L, 1, TUV_BODY) == LUA_TTABLE) {
      lua_rawgeti(L, -1, 2);
      lua_remove(L, -2);
    }
    if (lua_touserdata(L, -1) != f) {
      lua_pop(L, 1);
      lua_pushnil(L);
    }
    return;
  }
  lua_State *co = t->co;
  /* (room for the copy first: the yielded frame may be full) */
  if (co && lua_status(co) == LUA_YIELD && lua_checkstack(co, 1))
    for (int i = lua_gettop(co); i >= 1; i--)
      if (lua_touserdata(co, i) == f) {
        lua_pushvalue(co, i);
        lua_xmove(co, L, 1);
        return;
      }
  lua_pushnil(L);
}

static const char *task_state(loop_state *loop, lua_State *L, task *t) {
  if (t->base.state != FUT_PENDING) return "done";
  if (t == loop->current || task_of(L) == t) return "running";
  if (t->scheduled) return t->started ? "ready" : "not started";
  if (task_in_sleep(loop, t)) return "sleeping";
  return t->awaiting ? "waiting" : "suspended";
}

/* core.task_info(task) -> {state =, sleep_left =, awaiting =, awaiting_kind =,
   waits_on =, children = (of an awaited gather), cancelling =, body =} */
static int l_core_task_info(lua_State *L) {
  task *t = task_check(L, 1);
  loop_state *loop = t->base.loop;
  lua_createtable(L, 0, 6);
  lua_pushstring(L, task_state(loop, L, t));
  lua_setfield(L, -2, "state");
  lua_pushinteger(L, t->num_cancels);
  lua_setfield(L, -2, "cancelling");
  if (t->base.state != FUT_PENDING) return 1;
  if (task_in_sleep(loop, t)) {
    uint64_t now = uv_hrtime(), when = timer_when(loop, &t->base.timer);
    lua_pushnumber(L, when > now ? (double)(when - now) / 1e9 : 0.0);
    lua_setfield(L, -2, "sleep_left");
  }
  future *f = t->scheduled ? NULL : t->awaiting;
  if (f && f->state == FUT_PENDING) {
    push_awaited(L, t, f);
    lua_setfield(L, -2, "awaiting");
    lua_pushstring(L, f->kind == KIND_TASK ? "task" : f->kind == KIND_GATHER ? "gather" : "future");
    lua_setfield(L, -2, "awaiting_kind");
    if (f->kind == KIND_GATHER) {
      gather_push_description(L, f);
      lua_setfield(L, -2, "waits_on");
      gather_push_children(L, f);
      lua_setfield(L, -2, "children");
    }
    if (f->sleeping && f->timer.index != TIMER_NOT_QUEUED) { /* a sleep made a Future */
      uint64_t now = uv_hrtime(), when = timer_when(loop, &f->timer);
      char text[48];
      snprintf(text, sizeof text, "sleep (%.1f s left)",
               when > now ? (double)(when - now) / 1e9 : 0.0);
      lua_pushstring(L, text);
      lua_setfield(L, -2, "waits_on");
    }
    for (int i = 0; i < ndescribers; i++)
      if (describers[i](L, f)) {
        lua_setfield(L, -2, "waits_on");
        break;
      }
  }
  if (!t->started) {
    lua_Debug ar;
    if (lua_getiuservalue(L, 1, TUV_BODY) != LUA_TFUNCTION) {
      lua_pop(L, 1);
    } else if (lua_getinfo(L, ">S", &ar) && *ar.what != 'C') { /* ">": pops the body */
      lua_pushfstring(L, "%s:%d", ar.short_src, ar.linedefined);
      lua_setfield(L, -2, "body");
    }
  }
  return 1;
}

/* The frame of a task in a tail await (tail.c), as its thread showed it: the function
   that awaits (which the task keeps), at the await's line (kept in t->nargs); called by
   task_main, it has no name. Table to fill on top, the task at 1. */
static int tail_frame(lua_State *L, task *t, lua_Integer limit) {
  lua_Debug ar;
  if (limit == 0) return 1;
  if (lua_getiuservalue(L, 1, TUV_BODY) == LUA_TTABLE) { /* a future's record: {function, ...} */
    lua_rawgeti(L, -1, 1);
    lua_remove(L, -2);
  }
  if (!lua_isfunction(L, -1)) {
    lua_pop(L, 1);
    return 1;
  }
  if (!lua_getinfo(L, ">S", &ar)) return 1; /* ">": pops the function */
  lua_createtable(L, 0, 4);
  lua_pushstring(L, ar.short_src);
  lua_setfield(L, -2, "source");
  lua_pushinteger(L, (lua_Integer)t->nargs);
  lua_setfield(L, -2, "line");
  if (*ar.what == 'm')
    lua_pushliteral(L, "main chunk");
  else
    lua_pushfstring(L, "function <%s:%d>", ar.short_src, ar.linedefined);
  lua_setfield(L, -2, "name");
  lua_pushboolean(L, internal_frame(&ar));
  lua_setfield(L, -2, "internal");
  lua_rawseti(L, -2, 1);
  return 1;
}

/* core.task_stack(task [, limit]) -> the frames of its thread, oldest first, each
   {source =, line =, name =, internal =}; empty for a task not running Lua code. */
static int l_core_task_stack(lua_State *L) {
  task *t = task_check(L, 1);
  lua_Integer limit = luaL_optinteger(L, 2, -1);
  lua_State *co = t->co;
  lua_newtable(L);
  if (t->tail && t->base.state == FUT_PENDING) return tail_frame(L, t, limit);
  if (co == NULL || co == L || lua_status(co) != LUA_YIELD) return 1;
  lua_Debug ar;
  int depth = 0;
  while (lua_getstack(co, depth, &ar)) depth++;
  /* the frames between await (level 0) and task_main (the last), both C; a limit keeps
     the newest */
  int newest = 1, oldest = depth - 2;
  if (limit >= 0 && oldest - newest + 1 > limit) oldest = newest + (int)limit - 1;
  lua_Integer n = 0;
  for (int level = oldest; level >= newest; level--) { /* oldest first, as Python */
    lua_getstack(co, level, &ar);
    lua_getinfo(co, "Sln", &ar);
    lua_createtable(L, 0, 4);
    lua_pushstring(L, ar.short_src);
    lua_setfield(L, -2, "source");
    if (ar.currentline > 0) {
      lua_pushinteger(L, ar.currentline);
      lua_setfield(L, -2, "line");
    }
    if (ar.name) {
      lua_pushfstring(L, "%s '%s'", *ar.namewhat ? ar.namewhat : "function", ar.name);
      lua_setfield(L, -2, "name");
    } else if (*ar.what == 'm') {
      lua_pushliteral(L, "main chunk");
      lua_setfield(L, -2, "name");
    } else if (*ar.what != 'C') {
      lua_pushfstring(L, "function <%s:%d>", ar.short_src, ar.linedefined);
      lua_setfield(L, -2, "name");
    }
    lua_pushboolean(L, internal_frame(&ar));
    lua_setfield(L, -2, "internal");
    lua_rawseti(L, -2, ++n);
  }
  return 1;
}

/* core.creation(obj) -> the traceback where obj was made in debug mode, or nil */
static int l_core_creation(lua_State *L) {
  luaL_checkany(L, 1);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &creation_key) != LUA_TTABLE) return 0;
  lua_pushvalue(L, 1);
  lua_rawget(L, -2);
  return 1;
}

/* ---- switching it on ------------------------------------------------------------------ */

/* core.set_debug(on): the loop's flag; l_core_creation sites are recorded from now on. */
static int l_core_set_debug(lua_State *L) {
  loop_state *loop = loop_get(L);
  int on = lua_toboolean(L, 1);
  if (on && !loop->debug) debug_states++;
  if (!on && loop->debug) debug_states--;
  loop->debug = (uint8_t)on;
  return 0;
}

static int l_core_get_debug(lua_State *L) {
  lua_pushboolean(L, loop_get(L)->debug);
  return 1;
}

/* core.slow_callback_duration([seconds]) -> the limit in seconds (after setting it) */
static int l_core_slow_callback_duration(lua_State *L) {
  loop_state *loop = loop_get(L);
  if (!lua_isnoneornil(L, 1)) {
    lua_Number s = luaL_checknumber(L, 1);
    luaL_argcheck(L, s >= 0 && s < 1e9, 1,
                  "slow_callback_duration must be a number of seconds >= 0");
    loop->slow_ns = (uint64_t)(s * 1e9);
  }
  lua_pushnumber(L, (lua_Number)loop->slow_ns / 1e9);
  return 1;
}

/* core.debug_env() -> whether ALUA_DEBUG asks for debug mode (not under lua -E / alua -E) */
static int l_core_debug_env(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
  int noenv = lua_toboolean(L, -1);
  const char *v = getenv("ALUA_DEBUG");
  lua_pushboolean(L, !noenv && v && *v && strcmp(v, "0") != 0);
  return 1;
}

/* `alua --debug`: what loop:set_debug(true) does (stdlib/asyncio/debug.lua), from C. */
void debug_enable(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, "asyncio.loopobject");
  lua_getfield(L, -1, "set_debug");
  lua_insert(L, -2);
  lua_pushboolean(L, 1);
  lua_call(L, 2, 0);
}

static const luaL_Reg debug_functions[] = {
    {"task_info", l_core_task_info}, {"task_stack", l_core_task_stack},
    {"creation", l_core_creation},   {"set_debug", l_core_set_debug},
    {"get_debug", l_core_get_debug}, {"slow_callback_duration", l_core_slow_callback_duration},
    {"debug_env", l_core_debug_env}, {NULL, NULL},
};

/* Adds the functions above to the core table on top; the table of l_core_creation sites. */
void debug_open(lua_State *L) {
  loop_state *loop = loop_get(L);
  if (loop->slow_ns == 0) loop->slow_ns = 100000000u; /* 0.1 s, as Python */
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &creation_key) != LUA_TTABLE) {
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &creation_key);
  }
  lua_pop(L, 1);
  luaL_setfuncs(L, debug_functions, 0);
}

/* c_resume_test.c — a coroutine resumed by a C library's own lua_resume (not by alua's
   coroutine.resume/wrap, which pass awaits through to their task): such a resume does not
   say which task it runs for, so the coroutine must not keep naming the task that resumed
   it last through alua's coroutine.resume. Prints "ok - name" / "not ok - name"; run
   under ASan (make check) and valgrind (make valgrind) as part of tests/cli/embed.sh. */
#include <stdio.h>
#include <string.h>

#include <alua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "tap.h"

/* c_resume(co, ...): what a C library that drives coroutines itself does (a C scheduler, a
   C iterator over a Lua generator): lua_resume, then "yield"/"ok" and the values, or
   "error" and the message. */
static int c_resume(lua_State *L) {
  lua_State *co = lua_tothread(L, 1);
  luaL_argexpected(L, co != NULL, 1, "thread");
  int narg = lua_gettop(L) - 1;
  lua_xmove(L, co, narg);
  int nres = 0;
  int status = lua_resume(co, L, narg, &nres);
  if (status == LUA_OK || status == LUA_YIELD) {
    lua_pushstring(L, status == LUA_OK ? "ok" : "yield");
    luaL_checkstack(L, nres, "results");
    lua_xmove(co, L, nres);
    return nres + 1;
  }
  lua_pushliteral(L, "error");
  lua_xmove(co, L, 1);
  return 2;
}

static lua_State *state(void) {
  lua_State *L = alua_newstate();
  lua_pushcfunction(L, c_resume);
  lua_setglobal(L, "c_resume");
  return L;
}

/* Runs src in a new state; its global `result` (a string) must equal expected. */
static void expect(const char *name, const char *src, const char *expected) {
  lua_State *L = state();
  int status = alua_dostring(L, src);
  if (status != LUA_OK) {
    printf("  error: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  lua_getglobal(L, "result");
  const char *got = lua_tostring(L, -1);
  int same = status == LUA_OK && got != NULL && strcmp(got, expected) == 0;
  if (!same) printf("  expected: %s\n  got: %s\n", expected, got ? got : "(nil)");
  check(same, name);
  lua_pop(L, 1);
  alua_close(L);
}

/* A task resumed the coroutine through coroutine.resume, then finished; another task
   hands it to the C library. current_task() inside is the task running it now. */
static const char *names_the_running_task =
    "local co = coroutine.create(function()\n"
    "  while true do coroutine.yield(asyncio.current_task():get_name()) end\n"
    "end)\n"
    "local a = asyncio.create_task(function() return select(2, coroutine.resume(co)) end)\n"
    "a:set_name('A')\n"
    "local first = await(a)\n"
    "local b = asyncio.create_task(function() return select(2, c_resume(co)) end)\n"
    "b:set_name('B')\n"
    "result = first .. ' ' .. await(b)\n";

/* The same once the task that resumed it last is gone (collected): its Task must not be
   read (ASan: heap-use-after-free), and current_task() is the running task. */
static const char *after_the_task_is_collected =
    "local co = coroutine.create(function()\n"
    "  while true do\n"
    "    local t = asyncio.current_task()\n"
    "    coroutine.yield(t and t:get_name() or 'no task')\n"
    "  end\n"
    "end)\n"
    "for i = 1, 3 do\n"
    "  await(asyncio.create_task(function() coroutine.resume(co) end))\n"
    "end\n"
    "collectgarbage() collectgarbage()\n"
    "for i = 1, 200 do asyncio.create_task(function() end) end\n" /* reuse the freed blocks */
    "await(asyncio.sleep(0))\n"
    "local outside = select(2, c_resume(co))\n"
    "local b = asyncio.create_task(function() return select(2, c_resume(co)) end)\n"
    "b:set_name('B')\n"
    "result = outside .. ', ' .. await(b)\n";

/* An await inside the C library's resume cannot reach a task (the C library would get
   alua's await yield as one of its own): a clear error, in the coroutine, at the await. The
   task that resumed it last, now awaiting something else, is not disturbed. */
static const char *await_inside_is_an_error =
    "local f = asyncio.Future()\n"
    "local co = coroutine.create(function()\n"
    "  coroutine.yield('first')\n"
    "  await(asyncio.ensure_future(asyncio.sleep(0.001)))\n"
    "  return 'slept'\n"
    "end)\n"
    "local a = asyncio.create_task(function()\n"
    "  local _, v = coroutine.resume(co)\n"
    "  return v .. ' ' .. await(f)\n"
    "end)\n"
    "await(asyncio.sleep(0))\n" /* a resumed co and now awaits f */
    "local b = asyncio.create_task(function() return c_resume(co) end)\n"
    "local status, err = await(b)\n"
    "await(asyncio.sleep(0.02))\n" /* past the sleep's deadline: a still waits for f */
    "local waiting = a:done() and 'a done early' or 'a waits'\n"
    "f:set_result('then f')\n"
    "local got = await(asyncio.wait_for(a, 5))\n"
    "result = status .. ': ' .. (tostring(err):gsub('^[^:]*:%d+: ', '')) .. ' | ' .. waiting\n"
    "  .. ' | ' .. got\n";

/* The coroutine is suspended in an await its task passed up (through coroutine.resume):
   the C library's lua_resume wakes it before what it awaits is done. Its await raises a
   clear error (not the await's outcome read early: a pending Future's InvalidStateError,
   or a sleep ending before its time); the task that passed the await up finds the
   coroutine dead when its awaitable is done. %s: what co awaits. */
#define RESUMED_IN_AN_AWAIT(awaited)                                                  \
  "local f = asyncio.Future()\n"                                                     \
  "local co = coroutine.create(function() return 'co got ' .. await(" awaited ") end)\n" \
  "local a = asyncio.create_task(function() return select(2, coroutine.resume(co)) end)\n" \
  "await(asyncio.sleep(0))\n" /* a resumed co, which awaits through a */              \
  "local b = asyncio.create_task(function() return c_resume(co) end)\n"              \
  "local status, err = await(b)\n"                                                   \
  "f:set_result('F')\n"                                                              \
  "local got = await(asyncio.wait_for(a, 5))\n"                                      \
  "result = status .. ': ' .. tostring(err) .. ' | ' .. tostring(got)\n"

#define RESUMED_IN_AN_AWAIT_ERROR                                                      \
  "error: await: this coroutine was resumed by a C function (lua_resume) while suspended " \
  "in an await its task passed up, before what it awaits was done: only that task "     \
  "resumes it (through coroutine.resume or coroutine.wrap) | cannot resume dead coroutine"

int main(void) {
  expect(
      "a coroutine a finished task resumed, resumed by a C library in another task, runs "
      "for that task",
      names_the_running_task, "A B");
  expect(
      "the same after the first task was collected: no stale Task read; outside any task "
      "none",
      after_the_task_is_collected, "no task, B");
  expect(
      "await inside a coroutine a C library resumes raises a clear error and leaves the "
      "task that resumed it last alone",
      await_inside_is_an_error,
      "error: await: cannot suspend here: this coroutine was resumed by a C function "
      "(lua_resume), not by coroutine.resume or coroutine.wrap, so its await cannot reach "
      "a task | a waits | first then f");
  expect("a C library's lua_resume of a coroutine suspended in an await of a Future its "
         "task passed up: a clear error",
         RESUMED_IN_AN_AWAIT("f"), RESUMED_IN_AN_AWAIT_ERROR);
  expect("the same in an await of a sleep: a clear error, not the sleep ended early",
         RESUMED_IN_AN_AWAIT("asyncio.sleep(0.05, 'slept')"), RESUMED_IN_AN_AWAIT_ERROR);
  return failures != 0;
}

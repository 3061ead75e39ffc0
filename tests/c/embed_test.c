/* embed_test.c — the embedding API (include/alua.h): prints "ok - name" / "not ok - name".
   Run under valgrind by `make valgrind`: closing states with work pending must not leak. */
#include <stdio.h>
#include <string.h>

#include <alua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "tap.h"

static const char *global_string(lua_State *L, const char *name, char *buf, size_t size) {
  lua_getglobal(L, name);
  snprintf(buf, size, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "(nil)");
  lua_pop(L, 1);
  return buf;
}

static void test_close_with_work_pending(void) {
  lua_State *L = alua_newstate();
  int status = run(L,
                   "for i = 1, 50 do asyncio.create_task(function() await(asyncio.sleep(100)) end) end\n"
                   "asyncio.get_running_loop():call_later(100, print, 'never')\n"
                   "local f = asyncio.Future()\n"
                   "asyncio.create_task(function() await(f) end)\n"
                   "await(asyncio.sleep(0.001))\n");
  check(status == LUA_OK, "tasks sleeping, a timer and a task on a Future are set up");
  alua_close(L); /* valgrind: nothing leaks */
  check(1, "closing a state with tasks, timers and futures pending");
}

static void test_close_with_sockets_pending(void) {
  lua_State *L = alua_newstate();
  int status = run(L,
                   "server = await asyncio.start_server(async function(r, w) await r:read() end, '127.0.0.1', 0)\n"
                   "local host, port = server:sockname()\n"
                   "reader, writer = await asyncio.open_connection(host, port)\n"
                   "writer:write(string.rep('x', 1 << 20))\n" /* more than the socket takes at once */
                   "reading = asyncio.create_task(function() return await(reader:read(10)) end)\n"
                   "await(asyncio.sleep(0.01))\n");
  check(status == LUA_OK, "a server, a connection with a pending read and queued writes are set up");
  alua_close(L); /* valgrind: every socket closed, nothing leaks */
  check(1, "closing a state with sockets, a pending read and unsent data");
}

static void test_close_unstarted(void) {
  lua_State *L = alua_newstate();
  run(L, "t = asyncio.create_task(function() error('never runs') end)");
  alua_close(L);
  check(1, "closing a state whose task never started");
}

static void test_setloop_busy(void) {
  lua_State *L = alua_newstate();
  uv_loop_t loop;
  uv_loop_init(&loop);
  run(L, "asyncio.create_task(function() end)");
  check(alua_setloop(L, &loop) == UV_EBUSY, "alua_setloop refuses once a task exists (UV_EBUSY)");
  check(alua_loop(L) != &loop, "and the state keeps its loop");
  alua_close(L);
  check(uv_loop_close(&loop) == 0, "the host loop is untouched");
}

static void test_setloop(void) {
  lua_State *L = alua_newstate();
  uv_loop_t loop;
  uv_loop_init(&loop);
  check(alua_setloop(L, &loop) == 0, "alua_setloop on a fresh state");
  check(alua_loop(L) == &loop, "alua_loop returns the host's loop");
  run(L, "x = await(asyncio.sleep(0.001, 'slept on the host loop'))");
  char buf[64];
  check(strcmp(global_string(L, "x", buf, sizeof buf), "slept on the host loop") == 0,
        "top-level await runs on the host's loop");
  alua_close(L);
  uv_run(&loop, UV_RUN_NOWAIT);
  check(uv_loop_close(&loop) == 0, "the host closes its loop after alua_close");
}

static void test_futures(void) {
  lua_State *L = alua_newstate();
  int key = alua_future_new(L);
  lua_setglobal(L, "hf");
  run(L, "t = asyncio.create_task(function() return await(hf) end)");
  lua_pushinteger(L, 7);
  lua_pushstring(L, "seven");
  check(alua_future_resolve(L, key, 2) == 0, "alua_future_resolve completes a pending future");
  lua_pushinteger(L, 8);
  check(alua_future_resolve(L, key, 1) == -1, "resolving twice is refused (-1)");
  check(lua_gettop(L) == 0, "the values are popped either way");
  run(L, "a, b = await(t)");
  char buf[64];
  check(strcmp(global_string(L, "b", buf, sizeof buf), "seven") == 0, "Lua awaits the host's results");

  key = alua_future_new(L);
  lua_setglobal(L, "hf2");
  lua_pushstring(L, "host failure");
  check(alua_future_reject(L, key) == 0, "alua_future_reject completes with an error");
  run(L, "ok, err = pcall(await, hf2)");
  check(strcmp(global_string(L, "err", buf, sizeof buf), "host failure") == 0, "Lua sees the host's error");

  key = alua_future_new(L);
  lua_setglobal(L, "hf3");
  run(L, "hf3:cancel()");
  lua_pushnil(L);
  check(alua_future_resolve(L, key, 1) == -1, "resolving a future Lua cancelled is refused");
  check(alua_future_resolve(L, 123456, 0) == -1, "an unknown key is refused");
  alua_close(L);
}

static void test_backend(void) {
  lua_State *L = alua_newstate();
  check(alua_backend_fd(L) >= 0, "alua_backend_fd is a file descriptor");
  check(alua_run(L, UV_RUN_NOWAIT) == 0, "alua_run reports nothing left on an idle state");
  run(L, "asyncio.get_running_loop():call_later(5, print)");
  alua_run(L, UV_RUN_NOWAIT); /* a fresh libuv loop reports 0 until its first iteration */
  int timeout = alua_backend_timeout(L);
  check(timeout > 4000 && timeout <= 5002, "alua_backend_timeout follows the next timer");
  run(L, "asyncio.create_task(function() end)");
  check(alua_backend_timeout(L) == 0, "alua_backend_timeout is 0 while tasks are ready");
  alua_close(L);
}

static void test_errors(void) {
  lua_State *L = alua_newstate();
  int status = alua_dostring(L, "local function inner() error('deep') end\ninner()");
  const char *msg = lua_tostring(L, -1);
  check(status == LUA_ERRRUN, "alua_dostring returns the error status");
  check(msg && strstr(msg, "deep") && strstr(msg, "stack traceback:"), "the message carries a traceback");
  lua_pop(L, 1);
  status = alua_dostring(L, "local t = asyncio.create_task(function()\n  error('in a task')\nend)\nawait(t)");
  msg = lua_tostring(L, -1);
  check(status == LUA_ERRRUN && msg && strstr(msg, "raised in an awaited task"),
        "an error from an awaited task keeps that task's traceback");
  lua_pop(L, 1);
  check(alua_dofile(L, "/nonexistent/file.lua") == LUA_ERRFILE, "alua_dofile on a missing file: LUA_ERRFILE");
  lua_pop(L, 1);
  alua_close(L);
}

/* alua_translate, the keyword transform alone (API.md section 1: the C API exposes it) */
static void test_translate(void) {
  lua_State *L = alua_newstate();
  const char *src = "local x = await f()\nasync function g()\n  return 1\nend\n";
  int status = alua_translate(L, src, strlen(src), "=t");
  const char *out = lua_tostring(L, -1);
  check(status == LUA_OK && out && strstr(out, "async(function()") && !strstr(out, "await f()"),
        "alua_translate pushes the plain-Lua translation");
  int lines = 0;
  for (const char *p = out; p && *p; p++) lines += *p == '\n';
  check(lines == 4, "alua_translate keeps the lines");
  lua_pop(L, 1);
  const char *bad = "x = 1\nlocal async function 5\n";
  status = alua_translate(L, bad, strlen(bad), "=t");
  out = lua_tostring(L, -1);
  check(status == LUA_ERRSYNTAX && out && strncmp(out, "t:2:", 4) == 0,
        "alua_translate of a syntax error: LUA_ERRSYNTAX and \"chunkname:line: ...\"");
  lua_pop(L, 1);
  check(lua_gettop(L) == 0, "alua_translate pushes one value");
  /* a chunk's error reaches alua_dostring's message handler before its <close> variables
     are closed: a timeout scope must still turn its cancellation into TimeoutError */
  status = alua_dostring(L, "local t <close> = asyncio.timeout(0.01)\nawait(asyncio.sleep(10))");
  out = lua_tostring(L, -1);
  check(status == LUA_ERRRUN && out && strstr(out, "TimeoutError") && !strstr(out, "CancelledError"),
        "alua_dostring: a top-level timeout scope that fires gives TimeoutError");
  lua_pop(L, 1);
  alua_close(L);
}

static void test_openlibs_into_host_state(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  alua_openlibs(L);
  run(L, "v = await(asyncio.sleep(0, 'ok'))");
  char buf[16];
  check(strcmp(global_string(L, "v", buf, sizeof buf), "ok") == 0, "alua_openlibs into a state the host made");
  alua_close(L);
}

int main(void) {
  test_close_with_work_pending();
  test_close_with_sockets_pending();
  test_close_unstarted();
  test_setloop_busy();
  test_setloop();
  test_futures();
  test_backend();
  test_errors();
  test_openlibs_into_host_state();
  test_translate();
  return failures != 0;
}

/* workers_close_test.c — alua_close in a host terminates and joins the threads a state
   started: a worker spinning in `while true do end`, one idle in a recv, a to_thread call
   that never returns. Prints "ok - name" / "not ok - name". */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <alua.h>
#include <lauxlib.h>

#include "tap.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(void) {
  char path[] = "/tmp/alua_worker_XXXXXX";
  int fd = mkstemp(path);
  static const char script[] = "asyncio.parent:send('up')\nwhile true do end\n";
  check(fd >= 0 && write(fd, script, sizeof script - 1) == (ssize_t)(sizeof script - 1), "a worker script");
  close(fd);

  lua_State *L = alua_newstate();
  lua_pushstring(L, path);
  lua_setglobal(L, "path");
  int status = alua_dostring(L,
    "spinning = await asyncio.start_worker(path)\n"
    "assert(await spinning:recv() == 'up')\n"
    "asyncio.create_task(asyncio.to_thread(function() while true do end end))\n"
    "await asyncio.sleep(0.05)\n");
  if (status != LUA_OK) printf("  error: %s\n", lua_tostring(L, -1));
  check(status == LUA_OK, "a spinning worker and a spinning to_thread call are running");
  double t0 = now();
  alua_close(L);
  check(now() - t0 < 10, "alua_close terminates and joins them");
  unlink(path);
  return failures ? 1 : 0;
}

/* foreign_poll.c — host (c): the host's own poll() loop drives alua through
   alua_backend_fd / alua_backend_timeout / alua_run(UV_RUN_NOWAIT). */
#include <poll.h>
#include <stdio.h>

#include <alua.h>
#include <lauxlib.h>

int main(void) {
  lua_State *L = alua_newstate();
  if (L == NULL) return 1;
  const char *chunk =
      "done = false\n"
      "asyncio.create_task(async(function()\n"
      "  local results = {await(asyncio.gather(asyncio.sleep(0.02, 'a'), asyncio.sleep(0.01, 'b')))}\n"
      "  print('gathered', table.concat(results, ' '))\n"
      "  done = true\n"
      "end)())\n";
  if (alua_dostring(L, chunk) != LUA_OK) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    return 1;
  }
  int iterations = 0;
  for (;;) {
    lua_getglobal(L, "done");
    int done = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (done) break;
    struct pollfd p = {alua_backend_fd(L), POLLIN, 0};
    poll(&p, 1, alua_backend_timeout(L));
    alua_run(L, UV_RUN_NOWAIT);
    iterations++;
  }
  printf("poll loop finished (%s)\n", iterations < 1000 ? "without spinning" : "spinning");
  alua_close(L);
  return 0;
}

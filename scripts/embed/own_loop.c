/* own_loop.c — host (a): alua owns its loop. Runs a chunk that starts tasks, then runs
   the loop until they are done. */
#include <stdio.h>

#include <alua.h>
#include <lauxlib.h>

int main(void) {
  lua_State *L = alua_newstate();
  if (L == NULL) return 1;
  const char *chunk =
      "local t = asyncio.create_task(async(function(n)\n"
      "  for i = 1, n do await(asyncio.sleep(0.001)) end\n"
      "  print('task done after ' .. n .. ' sleeps')\n"
      "  return n\n"
      "end)(3))\n"
      "print('top-level await got', await(asyncio.sleep(0.002, 'value')))\n"
      "result_task = t\n";
  if (alua_dostring(L, chunk) != LUA_OK) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    return 1;
  }
  while (alua_run(L, UV_RUN_DEFAULT)) {}
  if (alua_dostring(L, "print('result', result_task:result())") != LUA_OK) return 1;
  alua_close(L);
  return 0;
}

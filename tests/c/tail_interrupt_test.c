/* tail_interrupt_test.c — an error raised right after a tail await began (tail.c), as an
   interrupt's hook raises one (Ctrl-C, worker:terminate): the task fails with it, and
   nothing of that await is kept afterwards. The hook is set here by the state's allocator
   at the allocation of the await's record (the first table made once `arm` was called),
   so it fires at the body's next instruction: the return after the await. Prints
   "ok - name" / "not ok - name"; run by tests/cli/embed.sh (ASan, valgrind too). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <alua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "tap.h"

static lua_State *armed; /* the thread to interrupt at the next new table */

static void interrupt(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted");
}

static void *hooking_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  if (armed && ptr == NULL && osize == LUA_TTABLE) {
    lua_sethook(armed, interrupt, LUA_MASKCOUNT, 1); /* as an interrupt's signal handler */
    armed = NULL;
  }
  return realloc(ptr, nsize);
}

/* arm(): interrupt the calling thread at its next new table */
static int arm(lua_State *L) {
  armed = L;
  return 0;
}

int main(void) {
  lua_State *L = lua_newstate(hooking_alloc, NULL);
  luaL_openlibs(L);
  alua_openlibs(L);
  lua_pushcfunction(L, arm);
  lua_setglobal(L, "arm");
  int status = alua_dostring(
      L, "local weak = setmetatable({}, {__mode = 'v'})\n"
         "local t = asyncio.create_task(function()\n"
         "  local f = asyncio.Future()\n"
         "  weak.future = f\n"
         "  arm()\n"
         "  asyncio.await(f)\n"
         "end)\n"
         "local ok, e = pcall(asyncio.await, t)\n"
         "failed = not ok and tostring(e):match('interrupted') or tostring(e)\n"
         "collectgarbage()\n"
         "collectgarbage()\n"
         "kept = tostring(weak.future)\n");
  if (status != LUA_OK) printf("  error: %s\n", lua_tostring(L, -1));
  lua_getglobal(L, "failed");
  lua_getglobal(L, "kept");
  const char *failed = lua_tostring(L, -2), *kept = lua_tostring(L, -1);
  check(status == LUA_OK && failed && strcmp(failed, "interrupted") == 0,
        "an error right after a tail await began fails the task with it");
  if (failed && strcmp(failed, "interrupted")) printf("  failed with: %s\n", failed);
  check(status == LUA_OK && kept && strcmp(kept, "nil") == 0,
        "the future it awaited is not kept once the task failed");
  if (kept && strcmp(kept, "nil")) printf("  kept: %s\n", kept);
  lua_close(L);
  return failures != 0;
}

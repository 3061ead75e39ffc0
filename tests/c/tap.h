/* tap.h — what every program of tests/c prints, a line a check ("ok - name" or
   "not ok - name": tests/cli/embed.sh passes them on), and the chunk runner several
   use. Each test is a program of its own (embed.sh builds every *_test.c alone), so the
   definitions are static here. */
#ifndef ALUA_TESTS_TAP_H
#define ALUA_TESTS_TAP_H

#include <stdio.h>

#include <alua.h>

static int failures; /* checks that failed: main returns failures != 0 */

static inline void check(int cond, const char *name) {
  printf("%s - %s\n", cond ? "ok" : "not ok", name);
  failures += !cond;
}

/* Runs src in L (alua_dostring); its error, if any, is printed and popped. */
static inline int run(lua_State *L, const char *src) {
  int status = alua_dostring(L, src);
  if (status != LUA_OK) {
    printf("  error: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  return status;
}

#endif

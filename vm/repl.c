/* repl.c — the interactive prompt: expressions print their values, incomplete chunks
   continue on the next line, await works at the prompt. */
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#include "vm.h"

#define PROMPT "> "
#define PROMPT2 ">> "

/* Is the syntax error in the message on top "the chunk ended too early"? */
static int repl_incomplete(lua_State *L, int status) {
  if (status != LUA_ERRSYNTAX) return 0;
  size_t len;
  const char *msg = lua_tolstring(L, -1, &len);
  return len >= 5 && strcmp(msg + len - 5, "<eof>") == 0;
}

static int repl_readline(char *buf, size_t size, const char *prompt) {
  fputs(prompt, stdout);
  fflush(stdout);
  return fgets(buf, (int)size, stdin) != NULL;
}

/* Compiles `return SRC` (an expression) or else SRC itself (statements). */
static int repl_compile(lua_State *L, const char *src, size_t len) {
  lua_pushfstring(L, "return %s;", src);
  int status = vm_loadstring(L, lua_tostring(L, -1), lua_rawlen(L, -1), "=stdin");
  lua_remove(L, -2);
  if (status == LUA_OK) return LUA_OK;
  lua_pop(L, 1);
  return vm_loadstring(L, src, len, "=stdin");
}

static void repl_print(lua_State *L, int base) {
  int n = lua_gettop(L) - base;
  if (n == 0) return;
  lua_getglobal(L, "print");
  lua_insert(L, base + 1);
  if (vm_pcall(L, n, 0) != LUA_OK) {
    fprintf(stderr, "error calling 'print' (%s)\n", lua_tostring(L, -1));
    lua_pop(L, 1);
  }
}

int vm_repl(lua_State *L) {
  char line[4096];
  for (;;) {
    int base = lua_gettop(L);
    if (!repl_readline(line, sizeof line, PROMPT)) break;
    lua_pushstring(L, line); /* the chunk's text so far, at base + 1 */
    int status;
    for (;;) {
      size_t len;
      const char *src = lua_tolstring(L, base + 1, &len);
      status = repl_compile(L, src, len);
      if (!repl_incomplete(L, status)) break;
      if (!repl_readline(line, sizeof line, PROMPT2)) break;
      lua_pop(L, 1);
      lua_pushstring(L, line);
      lua_concat(L, 2);
    }
    lua_remove(L, base + 1);
    if (status == LUA_OK) status = vm_pcall(L, 0, LUA_MULTRET);
    if (status == LUA_OK) {
      repl_print(L, base);
    } else {
      fprintf(stderr, "%s\n", lua_tostring(L, -1));
      fflush(stderr);
    }
    lua_settop(L, base);
  }
  fputs("\n", stdout);
  return LUA_OK;
}

/* syntax_fuzz.c — libFuzzer target for the keyword transform: no crash or hang, line breaks kept, plain Lua unchanged. */
#define _GNU_SOURCE  /* memmem */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "syntax.h"

static int is_word(int c) { return c == '_' || (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z'); }
static int is_break(int c) { return c == '\n' || c == '\r'; }

/* Length of the line break at s (as Lua counts them: \r\n and \n\r are one), or 0. */
static size_t break_len(const char *s, size_t n)
{
  if (n == 0 || !is_break(s[0]))
    return 0;
  return n > 1 && is_break(s[1]) && s[1] != s[0] ? 2 : 1;
}

/* Could the text use async/await as keywords: one of the words followed on its line by
   a name, a keyword or a comment (which might hide one)? Looks inside strings too. */
static int may_use_keywords(const char *s, size_t n)
{
  size_t p;
  for (p = 0; p + 5 <= n; p++) {
    size_t q = p + 5;
    if ((memcmp(s + p, "async", 5) && memcmp(s + p, "await", 5)) || (p > 0 && is_word(s[p - 1])) ||
        (q < n && is_word(s[q])))
      continue;
    while (q < n && (s[q] == ' ' || s[q] == '\t' || s[q] == '\v' || s[q] == '\f'))
      q++;
    if (q < n && (is_word(s[q]) || s[q] == '-'))
      return 1;
  }
  return 0;
}

/* Is a (blanks dropped) a subsequence of b? */
static int within(const char *a, size_t an, const char *b, size_t bn)
{
  size_t i, j = 0;
  for (i = 0; i < an; i++) {
    if (a[i] == ' ' || a[i] == '\t')
      continue;
    while (j < bn && b[j] != a[i])
      j++;
    if (j++ >= bn)
      return 0;
  }
  return 1;
}

/* The same line breaks in the same order; with `tokens`, each input line's text found
   in order on the same output line (true when only awaits were rewritten). */
static void check_lines(const char *in, size_t in_n, const char *out, size_t out_n, int tokens)
{
  size_t i = 0, o = 0;
  for (;;) {
    size_t i0 = i, o0 = o, ib, ob;
    while (i < in_n && !is_break(in[i]))
      i++;
    while (o < out_n && !is_break(out[o]))
      o++;
    if (tokens && !within(in + i0, i - i0, out + o0, o - o0))
      abort();
    ib = break_len(in + i, in_n - i);
    ob = break_len(out + o, out_n - o);
    if (ib != ob || memcmp(in + i, out + o, ib) != 0)
      abort();
    if (ib == 0)
      break;
    i += ib;
    o += ob;
  }
  if (i != in_n || o != out_n)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static lua_State *L;
  const char *src = (const char *)data;
  struct syntax_output out;
  int st = syntax_translate(src, size, &out);
  if (!L)
    L = luaL_newstate();
  if (st == SYNTAX_OK) {
    check_lines(src, size, out.text, out.len, !memmem(src, size, "async", 5));
    if (!may_use_keywords(src, size) && luaL_loadbufferx(L, src, size, "=fuzz", "t") == LUA_OK &&
        (out.len != size || memcmp(out.text, src, size) != 0))
      abort();
    lua_settop(L, 0);
  } else if (st == SYNTAX_ERROR) {
    if (out.line < 1 || (out.near && (out.near < src || out.near + out.near_len > src + size)))
      abort();
  }
  syntax_output_free(&out);
  return 0;
}

/* argcheck.c — errors for bad arguments, options and misuse (a coroutine awaited twice,
   await outside a task), reported at the user's line: the
   first frame outside alua's own stdlib and C glue, however deep inside asyncio the
   check runs (through await's helpers, a part calling another). Options tables are
   checked key by key: an unknown key names the nearest known one. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define STDLIB_SOURCE "@stdlib/"

/* Pushes "src:line: " for the innermost Lua frame of co that is not alua's stdlib;
   returns 0 (pushing nothing) if there is none. */
static int push_where(lua_State *L, lua_State *co, int level) {
  lua_Debug ar;
  for (; lua_getstack(co, level, &ar); level++) {
    lua_getinfo(co, "Sl", &ar);
    if (ar.currentline <= 0) continue; /* C */
    if (strncmp(ar.source, STDLIB_SOURCE, sizeof STDLIB_SOURCE - 1) == 0) continue;
    lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.currentline);
    return 1;
  }
  return 0;
}

/* Pushes "src:line: " for the user's code that called into asyncio, or "". The main
   task of a top-level await (`await asyncio.open_connection(...)` at a script's top
   level) runs only stdlib frames: the user's line is then the await's, on the thread
   that drives the loop. */
static void push_user_where(lua_State *L) {
  if (push_where(L, L, 1)) return;
  task *t = task_of(L);
  if (t && t->is_main && t->base.loop->L != L && push_where(L, t->base.loop->L, 0)) return;
  lua_pushliteral(L, "");
}

int argcheck_error(lua_State *L, const char *fmt, ...) {
  push_user_where(L);
  va_list ap;
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  lua_concat(L, 2);
  return lua_error(L);
}

/* Edit distance of two short names (options are under 32 characters). */
static size_t distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 31 || lb > 31) return (size_t)-1;
  size_t row[32];
  for (size_t j = 0; j <= lb; j++) row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j];
      size_t best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best) best = up + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb];
}

/* Does a value of Lua type `type` match a spec such as "number|string" ("any": all)? */
static int type_matches(const char *spec, const char *type) {
  if (strcmp(spec, "any") == 0) return 1;
  size_t n = strlen(type);
  for (const char *p = spec; (p = strstr(p, type)) != NULL; p += n)
    if ((p == spec || p[-1] == '|') && (p[n] == '\0' || p[n] == '|')) return 1;
  return 0;
}

/* "a number", "a boolean or a table" */
static void push_type_words(lua_State *L, const char *spec) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (const char *p = spec; *p;) {
    const char *bar = strchr(p, '|');
    size_t n = bar ? (size_t)(bar - p) : strlen(p);
    if (p != spec) luaL_addstring(&b, " or ");
    luaL_addstring(&b, strchr("aeiou", *p) ? "an " : "a ");
    luaL_addlstring(&b, p, n);
    p += n + (bar != NULL);
  }
  luaL_pushresult(&b);
}

/* The known options, as a pair list {name, type, ..., NULL} or a Lua table at spec_idx. */
typedef struct known_options {
  const char *const *pairs;
  int spec_idx;
} known_options;

/* The type spec of `key`, or NULL if it is not an option. */
static const char *known_type(lua_State *L, const known_options *k, const char *key) {
  if (k->pairs) {
    for (const char *const *p = k->pairs; *p; p += 2)
      if (strcmp(*p, key) == 0) return p[1];
    return NULL;
  }
  lua_getfield(L, k->spec_idx, key);
  const char *t = lua_tostring(L, -1); /* kept alive by the spec table */
  lua_pop(L, 1);
  return t;
}

static int compare_names(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Pushes " (did you mean 'x'?)" or " (known options: a, b)" for an unknown key. */
static void push_suggestion(lua_State *L, const known_options *k, const char *key) {
  const char *names[64]; /* kept alive by the pair list or the spec table */
  size_t n = 0;
  if (k->pairs) {
    for (const char *const *p = k->pairs; *p && n < 64; p += 2) names[n++] = *p;
  } else {
    lua_pushnil(L);
    while (lua_next(L, k->spec_idx)) {
      lua_pop(L, 1);
      if (lua_type(L, -1) == LUA_TSTRING && n < 64) names[n++] = lua_tostring(L, -1);
    }
  }
  qsort(names, n, sizeof *names, compare_names);
  const char *best = NULL;
  size_t best_d = (size_t)-1;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (size_t i = 0; i < n; i++) {
    size_t d = distance(key, names[i]);
    if (d < best_d) best_d = d, best = names[i];
    luaL_addstring(&b, i ? ", " : " (known options: ");
    luaL_addstring(&b, names[i]);
  }
  luaL_addchar(&b, ')');
  luaL_pushresult(&b);
  if (best && (best_d <= 2 || best_d * 3 <= strlen(key))) {
    lua_pop(L, 1);
    lua_pushfstring(L, " (did you mean '%s'?)", best);
  }
}

/* Checks the options table at idx (nil or absent: nothing to check). */
static void check_options(lua_State *L, int idx, const char *fname, const known_options *k) {
  idx = lua_absindex(L, idx);
  if (lua_isnoneornil(L, idx)) return;
  if (!lua_istable(L, idx))
    argcheck_error(L, "%s: the options must be a table, got %s", fname, luaL_typename(L, idx));
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      argcheck_error(L, "%s: options are named (key = value), got a %s key", fname,
                     luaL_typename(L, -2));
    const char *key = lua_tostring(L, -2);
    const char *spec = known_type(L, k, key);
    if (spec == NULL) {
      push_suggestion(L, k, key);
      argcheck_error(L, "%s: unknown option '%s'%s", fname, key, lua_tostring(L, -1));
    }
    const char *type = luaL_typename(L, -1);
    if (!type_matches(spec, type)) {
      push_type_words(L, spec);
      argcheck_error(L, "%s: option '%s' must be %s, got %s", fname, key, lua_tostring(L, -1),
                     type);
    }
    lua_pop(L, 1);
  }
}

void argcheck_options(lua_State *L, int idx, const char *fname, const char *const *pairs) {
  known_options k = {pairs, 0};
  check_options(L, idx, fname, &k);
}

/* core._check_options(fname, opts, {name = "type|type", ...}) -> opts */
static int l_core_check_options(lua_State *L) {
  const char *fname = luaL_checkstring(L, 1);
  luaL_checktype(L, 3, LUA_TTABLE);
  known_options k = {NULL, 3};
  check_options(L, 2, fname, &k);
  lua_settop(L, 2);
  return 1;
}

/* Pushes (and returns) what the value at idx is, for "got ...": a string quoted after its
   type (a "1" must not read as the number 1), a number as itself, else the type. */
const char *argcheck_describe(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TSTRING) {
    size_t len;
    const char *str = lua_tolstring(L, idx, &len);
    lua_pushlstring(L, str, len > 40 ? 40 : len);
    lua_pushfstring(L, "string \"%s%s\"", lua_tostring(L, -1), len > 40 ? "..." : "");
    lua_remove(L, -2);
  } else if (lua_type(L, idx) == LUA_TNUMBER) {
    luaL_tolstring(L, idx, NULL);
  } else {
    lua_pushstring(L, luaL_typename(L, idx));
  }
  return lua_tostring(L, -1);
}

/* core._describe(v) -> argcheck_describe's words for v */
static int l_core_describe(lua_State *L) {
  luaL_checkany(L, 1);
  argcheck_describe(L, 1);
  return 1;
}

/* core._arg_error(message): raises it at the user's line */
static int l_core_arg_error(lua_State *L) {
  return argcheck_error(L, "%s", luaL_checkstring(L, 1));
}

/* A method called with '.' instead of ':' (or on the wrong object): "Lock:acquire: call
   it as lock:acquire()", at the user's line. */
int argcheck_self_error(lua_State *L, const char *cls, const char *var, const char *method) {
  return argcheck_error(L, "%s:%s: call it as %s:%s() (with ':', not '.')", cls, method, var,
                        method);
}

/* core._self_error(class, var, method) */
static int l_core_self_error(lua_State *L) {
  const char *cls = luaL_checkstring(L, 1), *var = luaL_checkstring(L, 2);
  const char *method = luaL_checkstring(L, 3);
  lua_remove(L, 1); /* the self the user passed is what the message describes */
  lua_remove(L, 1);
  lua_remove(L, 1);
  lua_pushnil(L);
  lua_insert(L, 1);
  return argcheck_self_error(L, cls, var, method);
}

/* The closure core._checked_methods puts in place of a Lua method. Upvalues: the
   method, the instances' metatable, the class name, the variable name, the method name. */
static int checked_method_k(lua_State *L, int status, lua_KContext base) {
  (void)status;
  return lua_gettop(L) - (int)base;
}

static int checked_method(lua_State *L) {
  int ok = lua_getmetatable(L, 1) && lua_rawequal(L, -1, lua_upvalueindex(2));
  if (!ok)
    return argcheck_self_error(L, lua_tostring(L, lua_upvalueindex(3)),
                               lua_tostring(L, lua_upvalueindex(4)),
                               lua_tostring(L, lua_upvalueindex(5)));
  lua_pop(L, 1);
  int n = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_callk(L, n, LUA_MULTRET, 0, checked_method_k);
  return checked_method_k(L, LUA_OK, 0);
}

/* core._checked_methods(methods, instance_mt, class, var): each Lua function of
   `methods` (not the metamethods, nor C functions, which check for themselves) first
   checks that it was called with ':' on an instance; an async method stays async, its
   body checks when it runs. For classes whose methods are not on a hot path. */
static int l_core_checked_methods(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checkany(L, 2);
  luaL_checkstring(L, 3);
  luaL_checkstring(L, 4);
  lua_settop(L, 4);
  lua_newtable(L); /* the names first: no table changes while lua_next walks */
  int names = 5, n = 0;
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING && strncmp(lua_tostring(L, -1), "__", 2) != 0) {
      lua_pushvalue(L, -1);
      lua_rawseti(L, names, ++n);
    }
  }
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, names, i);
    lua_pushvalue(L, -1);
    lua_rawget(L, 1);
    int is_async = await_async_parts(L, -1);
    if (is_async) {
      lua_remove(L, -3); /* the async function: its body and name stay */
      lua_insert(L, -2); /* name under body */
    } else if (!lua_isfunction(L, -1) || lua_iscfunction(L, -1)) {
      lua_pop(L, 2);
      continue;
    }
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    lua_pushvalue(L, 4);
    lua_rawgeti(L, names, i); /* the method's name */
    lua_pushcclosure(L, checked_method, 5);
    if (is_async) { /* name, checked body -> async(checked body, name) */
      lua_insert(L, -2);
      await_async_push(L);
    }
    lua_rawset(L, 1);
  }
  return 0;
}

static const luaL_Reg argcheck_functions[] = {
    {"_check_options", l_core_check_options},
    {"_arg_error", l_core_arg_error},
    {"_describe", l_core_describe},
    {"_self_error", l_core_self_error},
    {"_checked_methods", l_core_checked_methods},
    {NULL, NULL},
};

void argcheck_open(lua_State *L) { luaL_setfuncs(L, argcheck_functions, 0); }

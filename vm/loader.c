/* loader.c — load, loadfile, dofile and require with the keyword transform; alua.syntax. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "alua.h"
#include "loader.h"
#include "syntax.h"

/* Registry key: false once --no-keywords turned the transform off. */
static const char keywords_key = 'k';

/* A malloc'd buffer owned by a userdata, so that a Lua error (out of memory while
   pushing, say) between its allocation and its release cannot leak it. */
#define OWNED_BUFFER "alua.owned_buffer"

static int owned_gc(lua_State *L) {
  char **p = luaL_checkudata(L, 1, OWNED_BUFFER);
  free(*p);
  *p = NULL;
  return 0;
}

/* Pushes an owner holding nothing yet. */
static char **owned_new(lua_State *L) {
  char **p = lua_newuserdatauv(L, sizeof *p, 0);
  *p = NULL;
  if (luaL_newmetatable(L, OWNED_BUFFER)) {
    lua_pushcfunction(L, owned_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return p;
}

void loader_set_keywords(lua_State *L, int enabled) {
  lua_pushboolean(L, enabled);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &keywords_key);
}

static int keywords_enabled(lua_State *L) {
  int off;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &keywords_key);
  off = lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1);
  lua_pop(L, 1);
  return !off;
}

/* The chunk name as Lua's messages show it: "@file" → "file" (long ones keep their end),
   "=name" → "name", anything else → [string "first line..."]. */
static void chunk_id(char out[LUA_IDSIZE], const char *source) {
  size_t len = strlen(source), room = LUA_IDSIZE - 1;
  if (*source == '=' || *source == '@') {
    const char *name = source + 1;
    len--;
    if (len > room && *source == '@') {
      memcpy(out, "...", 3);
      memcpy(out + 3, name + len - (room - 3), room - 3);
    } else {
      memcpy(out, name, len < room ? len : room);
    }
    out[len < room ? len : room] = '\0';
  } else {
    static const char pre[] = "[string \"", post[] = "\"]", dots[] = "...";
    const char *nl = strchr(source, '\n');
    size_t keep = room - (sizeof pre - 1) - (sizeof dots - 1) - (sizeof post - 1);
    size_t n = nl ? (size_t)(nl - source) : len;
    int cut = nl != NULL || len >= keep;
    if (n > keep) n = keep;
    memcpy(out, pre, sizeof pre - 1);
    memcpy(out + sizeof pre - 1, source, n);
    n += sizeof pre - 1;
    if (cut) {
      memcpy(out + n, dots, sizeof dots - 1);
      n += sizeof dots - 1;
    }
    memcpy(out + n, post, sizeof post);
  }
}

int alua_translate(lua_State *L, const char *src, size_t len, const char *chunkname) {
  struct syntax_output out;
  char id[LUA_IDSIZE];
  char **owner = owned_new(L);
  int st = syntax_translate(src, len, &out);
  *owner = out.buffer;
  if (st == SYNTAX_OK) {
    lua_pushlstring(L, out.text, out.len);
  } else if (st == SYNTAX_ERROR) {
    chunk_id(id, chunkname ? chunkname : "?");
    if (out.near) {
      lua_pushlstring(L, out.near, out.near_len);
      lua_pushfstring(L, "%s:%d: %s near '%s'", id, out.line, out.msg, lua_tostring(L, -1));
      lua_remove(L, -2);
    } else {
      lua_pushfstring(L, "%s:%d: %s near <eof>", id, out.line, out.msg);
    }
  } else {
    lua_pushliteral(L, "not enough memory");
  }
  syntax_output_free(&out);
  *owner = NULL;
  lua_remove(L, -2);
  return st == SYNTAX_OK ? LUA_OK : st == SYNTAX_ERROR ? LUA_ERRSYNTAX : LUA_ERRMEM;
}

int loader_loadbuffer(lua_State *L, const char *buf, size_t len, const char *chunkname,
                      const char *mode) {
  const char *text;
  size_t tlen;
  int st;
  if (!keywords_enabled(L) || (len > 0 && buf[0] == LUA_SIGNATURE[0]) ||
      (mode && !strchr(mode, 't')))
    return luaL_loadbufferx(L, buf, len, chunkname, mode);
  if ((st = alua_translate(L, buf, len, chunkname)) != LUA_OK) return st;
  text = lua_tolstring(L, -1, &tlen);
  st = luaL_loadbufferx(L, text, tlen, chunkname, mode);
  lua_remove(L, -2);
  return st;
}

/* "cannot open/read NAME: reason" for the file whose chunk name is at `name`. */
static int file_error(lua_State *L, const char *what, int name, int err) {
  lua_pushfstring(L, "cannot %s %s: %s", what, lua_tostring(L, name) + 1, strerror(err));
  lua_remove(L, name);
  return LUA_ERRFILE;
}

/* The whole stream into *buf (malloc'd); 0, or an errno value. */
static int stream_read(FILE *f, char **buf, size_t *len) {
  size_t cap = 0, n = 0, got;
  do {
    if (cap - n < BUFSIZ) {
      char *p = realloc(*buf, cap = cap ? cap * 2 : 4 * BUFSIZ);
      if (!p) return ENOMEM;
      *buf = p;
    }
    got = fread(*buf + n, 1, cap - n, f);
    n += got;
  } while (got > 0);
  *len = n;
  return ferror(f) ? (errno ? errno : EIO) : 0;
}

/* Reads the file (NULL: stdin) whole into *owner and pushes its chunk name ("@file",
   "=stdin"), or pushes "cannot open/read ..." and returns LUA_ERRFILE. *start is where
   the chunk begins: as luaL_loadfilex, past a UTF-8 BOM and a first line starting with
   '#', whose line break stays so that line numbers hold (a binary chunk may follow
   either). */
static int source_read(lua_State *L, const char *filename, char **owner, size_t *len,
                       size_t *start) {
  int name = lua_gettop(L) + 1, err;
  const char *text, *nl;
  FILE *f;
  *len = *start = 0;
  if (filename) {
    lua_pushfstring(L, "@%s", filename);
    errno = 0;
    if (!(f = fopen(filename, "rb"))) return file_error(L, "open", name, errno);
  } else {
    lua_pushliteral(L, "=stdin");
    f = stdin;
  }
  errno = 0;
  err = stream_read(f, owner, len);
  if (filename) fclose(f);
  if (err) return file_error(L, "read", name, err);
  text = *owner;
  if (*len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) *start = 3;
  if (*start < *len && text[*start] == '#') {
    if (!(nl = memchr(text + *start, '\n', *len - *start)))
      *start = *len;
    else if ((size_t)(nl - text) + 1 < *len && nl[1] == LUA_SIGNATURE[0])
      *start = (size_t)(nl - text) + 1;
    else
      *start = (size_t)(nl - text);
  }
  return LUA_OK;
}

int loader_loadfile(lua_State *L, const char *filename, const char *mode) {
  int base = lua_gettop(L) + 1, st;
  char **owner = owned_new(L);
  size_t len, start;
  if ((st = source_read(L, filename, owner, &len, &start)) == LUA_OK)
    st = loader_loadbuffer(L, *owner + start, len - start, lua_tostring(L, -1), mode);
  free(*owner);
  *owner = NULL;
  lua_replace(L, base); /* the chunk, or the message */
  lua_settop(L, base);
  return st;
}

int loader_translatefile(lua_State *L, const char *filename) {
  int base = lua_gettop(L) + 1, st;
  char **owner = owned_new(L);
  const char *text;
  size_t len, start, tlen;
  lua_pushnil(L); /* base + 1: the translation */
  lua_pushnil(L); /* base + 2: the message */
  if ((st = source_read(L, filename, owner, &len, &start)) == LUA_OK &&
      (st = alua_translate(L, *owner + start, len - start, lua_tostring(L, base + 3))) == LUA_OK) {
    text = lua_tolstring(L, base + 4, &tlen);
    st = luaL_loadbufferx(L, text, tlen, lua_tostring(L, base + 3), "t");
    if (st == LUA_OK)
      lua_pop(L, 1);
    else
      lua_replace(L, base + 2);
    /* what the loaders skip (BOM, '#' line) stays in the text */
    lua_pushlstring(L, *owner, start);
    lua_pushvalue(L, base + 4);
    lua_concat(L, 2);
    lua_replace(L, base + 1);
  } else {
    lua_replace(L, base + 2);
  }
  free(*owner);
  *owner = NULL;
  lua_settop(L, base + 2);
  lua_remove(L, base);
  return st;
}

/* ---- the Lua functions ---- */

/* load's and loadfile's ending: the function (with env as its first upvalue), or fail
   and the message. */
static int load_result(lua_State *L, int st, int env) {
  if (st != LUA_OK) {
    luaL_pushfail(L);
    lua_insert(L, -2);
    return 2;
  }
  if (env) {
    lua_pushvalue(L, env);
    if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);
  }
  return 1;
}

/* Calls the reader function at 1 until it returns nil or "": the pieces, joined. */
static int reader_drain(lua_State *L) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (;;) {
    size_t n = 0;
    lua_pushvalue(L, 1);
    lua_call(L, 0, 1);
    if (!lua_isnil(L, -1) && !lua_isstring(L, -1))
      return luaL_error(L, "reader function must return a string");
    if (lua_isnil(L, -1) || (lua_tolstring(L, -1, &n), n == 0)) {
      lua_pop(L, 1);
      break;
    }
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  return 1;
}

static int l_load(lua_State *L) {
  size_t len;
  const char *s = lua_tolstring(L, 1, &len);
  const char *mode = luaL_optstring(L, 3, "bt");
  int env = lua_isnone(L, 4) ? 0 : 4, st;
  if (s) {
    const char *chunkname = luaL_optstring(L, 2, s);
    st = loader_loadbuffer(L, s, len, chunkname, mode);
  } else {
    const char *chunkname = luaL_optstring(L, 2, "=(load)");
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_pushcfunction(L, reader_drain);
    lua_pushvalue(L, 1);
    st = lua_pcall(L, 1, 1, 0);
    if (st == LUA_OK) {
      s = lua_tolstring(L, -1, &len);
      st = loader_loadbuffer(L, s, len, chunkname, mode);
      lua_remove(L, -2);
    }
  }
  return load_result(L, st, env);
}

static int l_loadfile(lua_State *L) {
  const char *filename = luaL_optstring(L, 1, NULL);
  const char *mode = luaL_optstring(L, 2, NULL);
  int env = lua_isnone(L, 3) ? 0 : 3;
  return load_result(L, loader_loadfile(L, filename, mode), env);
}

static int dofile_results(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  return lua_gettop(L) - 1;
}

static int l_dofile(lua_State *L) {
  const char *filename = luaL_optstring(L, 1, NULL);
  lua_settop(L, 1);
  if (loader_loadfile(L, filename, NULL) != LUA_OK) return lua_error(L);
  lua_callk(L, 0, LUA_MULTRET, 0, dofile_results);
  return dofile_results(L, LUA_OK, 0);
}

/* package.searchers[2]: a Lua file on package.path, loaded translated. Upvalues: the
   package table and the stock package.searchpath. */
static int searcher_lua(lua_State *L) {
  const char *name = luaL_checkstring(L, 1), *filename;
  lua_getfield(L, lua_upvalueindex(1), "path");
  if (!lua_isstring(L, -1)) return luaL_error(L, "'package.path' must be a string");
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_pushvalue(L, 1);
  lua_pushvalue(L, -3);
  lua_call(L, 2, 2);
  if (lua_isnil(L, -2)) return 1; /* the "no file '...'" lines */
  lua_pop(L, 1);
  filename = lua_tostring(L, -1);
  if (loader_loadfile(L, filename, NULL) != LUA_OK)
    return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s", name, filename,
                      lua_tostring(L, -1));
  lua_insert(L, -2);
  return 2; /* the chunk, and the file name as its second argument */
}

static int l_translate(lua_State *L) {
  size_t len;
  const char *src = luaL_checklstring(L, 1, &len);
  const char *chunkname = luaL_optstring(L, 2, src);
  if (alua_translate(L, src, len, chunkname) == LUA_OK) return 1;
  luaL_pushfail(L);
  lua_insert(L, -2);
  return 2;
}

void loader_install(lua_State *L) {
  static const luaL_Reg globals[] = {
      {"load", l_load}, {"loadfile", l_loadfile}, {"dofile", l_dofile}, {NULL, NULL}};
  lua_pushglobaltable(L);
  luaL_setfuncs(L, globals, 0);
  lua_pop(L, 1);

  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_getfield(L, -1, "package") == LUA_TTABLE) {
    if (lua_getfield(L, -1, "searchers") == LUA_TTABLE) {
      lua_pushvalue(L, -2);
      lua_getfield(L, -3, "searchpath");
      lua_pushcclosure(L, searcher_lua, 2);
      lua_rawseti(L, -2, 2);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);

  luaL_getsubtable(L, -1, "alua");
  lua_pushvalue(L, -1);
  lua_setglobal(L, "alua");
  luaL_getsubtable(L, -1, "syntax");
  lua_pushcfunction(L, l_translate);
  lua_setfield(L, -2, "translate");
  lua_pop(L, 3);
}

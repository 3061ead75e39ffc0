/* loader.h — chunk loading with the keyword transform: load, loadfile, dofile, require. */
#ifndef ALUA_LOADER_H
#define ALUA_LOADER_H

#include <stddef.h>

#include <lua.h>

/* Replaces the globals load, loadfile and dofile with versions that translate text
   chunks, puts a translating Lua-file searcher at package.searchers[2], and creates
   the `alua` table (global and package.loaded.alua) with alua.syntax.translate. */
void loader_install(lua_State *L);

/* Turns the transform on or off for every loader of this state (`alua --no-keywords`). */
void loader_set_keywords(lua_State *L, int enabled);

/* luaL_loadbufferx and luaL_loadfilex (filename NULL: stdin), with the transform
   applied to text chunks. */
int loader_loadbuffer(lua_State *L, const char *buf, size_t len, const char *chunkname,
                      const char *mode);
int loader_loadfile(lua_State *L, const char *filename, const char *mode);

/* Pushes the plain-Lua translation of a file (NULL: stdin) with the same lines (a first
   '#' line kept as it is), then Lua's error message, or nil if Lua accepts the text.
   When the file cannot be read or transformed the translation is nil. Returns the status. */
int loader_translatefile(lua_State *L, const char *filename);

#endif

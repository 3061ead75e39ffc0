/* alua.h — embedding alua (Lua 5.4 with asyncio on libuv) into a host program. */
#ifndef ALUA_H
#define ALUA_H

#include <lua.h>
#include <uv.h>

#define ALUA_VERSION "alua 0.1"

/* A new state with the standard libraries, asyncio (also the globals `asyncio`,
   `async`, `await`) and the keyword syntax for chunks it loads. NULL on failure.
   Free it with alua_close. */
lua_State *alua_newstate(void);

/* The same into a state the host made (after luaL_openlibs). */
void alua_openlibs(lua_State *L);

/* The asyncio module alone, for any Lua 5.4 state (require "asyncio" in stock lua5.4). */
int luaopen_asyncio(lua_State *L);

/* Run a file / a string (keyword syntax applied). LUA_OK, or an error code with the
   message and traceback as a string on the stack. */
int alua_dofile(lua_State *L, const char *path);
int alua_dostring(lua_State *L, const char *src);

/* The message handler alua uses: turns the error at index 1 into
   "message\nstack traceback:...", including the traceback of the task it came from. */
int alua_msgh(lua_State *L);

/* The libuv loop this state's tasks run on. */
uv_loop_t *alua_loop(lua_State *L);

/* Runs the loop (UV_RUN_DEFAULT: until nothing is left; ONCE; NOWAIT). Returns non-zero
   while tasks, timers or handles are left. Never call from inside the loop. */
int alua_run(lua_State *L, uv_run_mode mode);

/* Closes the state: alua's own handles are closed and everything is freed. */
void alua_close(lua_State *L);

#endif

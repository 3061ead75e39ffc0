/* alua.h — embedding alua (Lua 5.4 with asyncio on libuv) into a host program.

   Ownership: a state made by alua_newstate (or given alua_openlibs) owns one loop_state
   on one libuv loop: its own (created with the state, closed and freed by alua_close) or
   the host's (alua_setloop: the host creates it, runs it if it wants, and closes it after
   alua_close). alua never closes or runs a loop it does not own, except through
   alua_run. Each state belongs to one thread at a time; several states in several
   threads are independent (no global mutable state). */
#ifndef ALUA_H
#define ALUA_H

#include <lua.h>
#include <uv.h>

#define ALUA_VERSION "alua 0.1"

/* A new state with the standard libraries, asyncio (also the globals `asyncio`,
   `async`, `await`) and the keyword syntax for chunks it loads; on its own libuv loop.
   NULL on failure. Free it with alua_close. */
lua_State *alua_newstate(void);

/* The same into a state the host made (after luaL_openlibs). */
void alua_openlibs(lua_State *L);

/* The asyncio module alone, for any Lua 5.4 state (require "asyncio" in stock lua5.4). */
int luaopen_asyncio(lua_State *L);

/* Run a file / a string, keyword syntax applied. Returns LUA_OK, or an error code with
   "message\nstack traceback..." on the stack. A top-level `await` in the chunk runs the
   loop until what it awaits is done; tasks the chunk creates run whenever the loop runs
   (alua_run, or the host running its own loop). */
int alua_dofile(lua_State *L, const char *path);
int alua_dostring(lua_State *L, const char *src);

/* The keyword transform alone: pushes the plain-Lua translation of src[0..len) and
   returns LUA_OK, or pushes "chunkname:line: message" and returns LUA_ERRSYNTAX. */
int alua_translate(lua_State *L, const char *src, size_t len, const char *chunkname);

/* The message handler alua uses for lua_pcall: turns the error at index 1 into
   "message\nstack traceback:...", with the traceback of the task it came from. */
int alua_msgh(lua_State *L);

/* The libuv loop this state's tasks run on. */
uv_loop_t *alua_loop(lua_State *L);

/* Moves the state onto the host's loop. Only before any task, timer or handle exists;
   returns 0, or UV_EBUSY and changes nothing. alua's own loop is closed; the host keeps
   ownership of `loop` and must close it only after alua_close. */
int alua_setloop(lua_State *L, uv_loop_t *loop);

/* Runs the loop: UV_RUN_DEFAULT until no task, timer or handle is left, UV_RUN_ONCE,
   or UV_RUN_NOWAIT (for a host polling alua_backend_fd). Returns non-zero while
   something is left. Never call it from inside the loop (from a callback or a task). */
int alua_run(lua_State *L, uv_run_mode mode);

/* For a foreign poll/epoll/select loop: wait for alua_backend_fd to be readable, for at
   most alua_backend_timeout milliseconds (-1: no timeout; 0: tasks are ready now), then
   call alua_run(L, UV_RUN_NOWAIT). */
int alua_backend_fd(lua_State *L);
int alua_backend_timeout(lua_State *L);

/* Host events as awaitables. alua_future_new pushes a pending asyncio Future and returns
   a key for it (negative on failure); Lua code awaits the Future. Later, outside any
   Lua call on this state, the host completes it exactly once: alua_future_resolve with
   the nresults values on top of the stack (popped) as its results, or
   alua_future_reject with the error value on top (popped). Both return 0, or -1 if the
   key is unknown or the future was already done (e.g. cancelled by Lua); the key is
   released either way. The tasks awaiting it run when the loop next runs. */
int alua_future_new(lua_State *L);
int alua_future_resolve(lua_State *L, int key, int nresults);
int alua_future_reject(lua_State *L, int key);

/* Closes the state and frees everything alua allocated: tasks still pending are
   dropped, alua's handles closed. On the host's loop (alua_setloop) those handles are
   released by the loop's next iteration: run uv_run(loop, UV_RUN_NOWAIT) once before
   uv_loop_close. */
void alua_close(lua_State *L);

#endif

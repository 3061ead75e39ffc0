/* os.h — the process and the machine (async/os/): subprocesses, signals and Ctrl-C,
   files on libuv's thread pool, on the core (core.h); a child's pipes are net/ streams
   (net.h). Not public. */
#ifndef ALUA_ASYNC_OS_H
#define ALUA_ASYNC_OS_H

#include "core/core.h"

int signal_check(lua_State *L, int idx, const char *fname); /* a name or number -> signum */
const char *signal_name(int signum);
void signal_catch_interrupt(lua_State *L);   /* Ctrl-C in the alua command */
int signal_interrupted(void);
void signal_interrupt_at_prompt(void (*fn)(void));
void signal_interrupt_reset(void);
/* Each adds its own functions to the core table on top. */
void signal_open(lua_State *L);
void fs_open(lua_State *L); /* core.fs: the primitives of asyncio.fs */
void process_open(lua_State *L);

/* The layer: signal_open, fs_open and process_open, on the core table on top. */
void os_open(lua_State *L);

#endif

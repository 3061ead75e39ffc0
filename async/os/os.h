/* os.h — the process and the machine (async/os/): subprocesses, signals and Ctrl-C,
   files on libuv's thread pool, workers and to_thread on threads of their own (and the
   copy of values between their states), on the core (core.h); a child's pipes are net/ streams
   (net.h). Not public. */
#ifndef ALUA_ASYNC_OS_H
#define ALUA_ASYNC_OS_H

#include "core/core.h"

int signal_check(lua_State *L, int idx, const char *fname); /* a name or number -> signum */
const char *signal_name(int signum);
void signal_catch_interrupt(lua_State *L); /* Ctrl-C in the alua command */
int signal_interrupted(void);
void signal_interrupt_at_prompt(void (*fn)(void));
void signal_interrupt_reset(void);
/* Each adds its own functions to the core table on top. */
void signal_open(lua_State *L);
void fs_open(lua_State *L); /* core.fs: the primitives of asyncio.fs */
void process_open(lua_State *L);

/* ---- values between states (copy.c) ------------------------------------------- */

typedef struct copy_msg {
  struct copy_msg *next;
  size_t len;
  char data[];
} copy_msg;

/* Encodes the n values from index first; raises "fname: root.path is a function" (root[i]
   when indexed) for anything that cannot cross. The scratch form is valid until the
   state's next copy. */
const char *copy_encode_scratch(lua_State *L, int first, int n, const char *fname, const char *root,
                                int indexed, size_t *len);
copy_msg *copy_encode(lua_State *L, int first, int n, const char *fname, const char *root,
                      int indexed);
copy_msg *copy_encode_string(const char *s);
int copy_decode_data(lua_State *L, const char *data, size_t len); /* pushes the values */
int copy_decode(lua_State *L, const copy_msg *m);

/* ---- workers and to_thread (worker.c, thread_pool.c) -------------------------- */

/* How a thread makes its state and loads a script: vm/ installs alua's (keyword syntax,
   the loaders); asyncio.so in stock lua5.4 uses plain Lua's. */
typedef struct worker_vm {
  lua_State *(*newstate)(void);
  int (*loadfile)(lua_State *L, const char *path);
} worker_vm;
void worker_set_vm(const worker_vm *vm);
lua_State *worker_newstate(void);
int worker_loadfile(lua_State *L, const char *path);
int worker_msgh(lua_State *L); /* {error, traceback} for a failure that crosses threads */
copy_msg *worker_encode_error(lua_State *L, int idx);
void worker_open(lua_State *L);
void thread_pool_open(lua_State *L);

/* The layer: signal_open, fs_open, process_open, worker_open and thread_pool_open, on
   the core table on top. */
void os_open(lua_State *L);

#endif

/* os.c — the process-and-machine layer's entry: each of its files adds its functions. */
#include "os.h"

void os_open(lua_State *L) {
  signal_open(L);
  fs_open(L);
  process_open(L);
  worker_open(L);
  thread_pool_open(L);
}

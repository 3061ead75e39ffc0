/* asyncio.c — luaopen_asyncio: the three layers of async/ (each registers its own
   functions in the core table), then the Lua standard library built on them. */
#include "core/core.h"
#include "net/net.h"
#include "os/os.h"

int luaopen_asyncio(lua_State *L) {
  luaL_checkversion(L);
  module_open(L);
  net_open(L);
  os_open(L);
  module_load_stdlib(L);
  return 1;
}

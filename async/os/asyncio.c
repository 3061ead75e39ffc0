/* asyncio.c — luaopen_asyncio: the three layers of async/ (each registers its own
   functions in the core table), then the Lua standard library built on them. It lives in
   os/, the top layer, the one that may already see the other two (core.h, net.h). */
#include "os.h"
#include "net/net.h"

int luaopen_asyncio(lua_State *L) {
  luaL_checkversion(L);
  module_open(L);
  net_open(L);
  os_open(L);
  module_load_stdlib(L);
  return 1;
}

/* read_handoff_test.c — a read that takes a whole stream buffer hands its block to Lua as
   the string (streamlib.c's push_taken), shrinking the block to the string's size. A
   string needs one byte past its data (Lua's terminating zero): a buffer the socket filled
   to its capacity must already have that byte, or the hand-off grows a large block by one
   byte, which the allocator may answer by moving (copying) it — the copy the hand-off
   exists to avoid. A host state with an allocator that watches every resize of a block of
   16 KiB or more; real sockets on loopback. Prints "ok - name" / "not ok - name". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <alua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "tap.h"

enum { LARGE = 16 * 1024 };

static struct {
  int large_grown;     /* resizes that made a large block larger */
  int grown_by_a_byte; /* ... by one byte: a full buffer made room for the zero */
  size_t largest_kept; /* largest block resized to no larger: the hand-off's, to a string's size */
} seen;

static void *watching_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  if (ptr != NULL && osize >= LARGE) {
    if (nsize > osize) {
      seen.large_grown++;
      if (nsize == osize + 1) seen.grown_by_a_byte++;
    } else if (osize > seen.largest_kept) {
      seen.largest_kept = osize;
    }
  }
  return realloc(ptr, nsize);
}

/* A server that sends `size` distinct bytes once the client asks, and a client that waits
   for all of them before reading them with one readexactly: its buffer holds exactly the
   read then, the pool's 128 KiB buffer for 131,072, a buffer grown to the read's size for
   larger ones. `result`: "ok" or what differed. */
static const char *reads =
    "local function message(size)\n"
    "  local words = {}\n"
    "  for k = 1, size // 4 do words[k] = string.pack('<I4', k * 7919) end\n"
    "  return table.concat(words) .. string.rep('z', size % 4)\n"
    "end\n"
    "result = 'ok'\n"
    "for _, size in ipairs({131072, 200000, 1048576}) do\n"
    "  local msg = message(size)\n"
    "  local server = await(asyncio.start_server(function(r, w)\n"
    "    await(r:readexactly(1))\n"
    "    w:write(msg)\n"
    "    await(w:drain())\n"
    "    await(r:read())\n"
    "    w:close()\n"
    "  end, '127.0.0.1', 0))\n"
    "  local _, port = server:sockname()\n"
    "  local r, w = await(asyncio.open_connection('127.0.0.1', port))\n"
    "  w:write('!')\n"
    "  local got = await(asyncio.wait_for(r:readexactly(size), 10))\n"
    "  if got ~= msg then result = 'readexactly(' .. size .. ') differs' end\n"
    "  w:close()\n"
    "  server:close()\n"
    "  await(server:wait_closed())\n"
    "end\n";

int main(void) {
  lua_State *L = lua_newstate(watching_alloc, NULL);
  luaL_openlibs(L);
  alua_openlibs(L);
  if (alua_dostring(L, reads) != LUA_OK) {
    printf("  error: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  lua_getglobal(L, "result");
  const char *result = lua_tostring(L, -1);
  check(result && strcmp(result, "ok") == 0,
        "readexactly of 131,072, 200,000 and 1 MiB gets what was sent");
  if (result && strcmp(result, "ok") != 0) printf("  %s\n", result);
  lua_pop(L, 1);
  check(seen.largest_kept >= 1048576,
        "the 1 MiB read's buffer became its string (the hand-off ran)");
  check(seen.grown_by_a_byte == 0, "no full buffer grew by a byte to become a string");
  if (seen.grown_by_a_byte)
    printf("  %d of %d growths of large blocks were by one byte\n", seen.grown_by_a_byte,
           seen.large_grown);
  alua_close(L);
  return failures != 0;
}

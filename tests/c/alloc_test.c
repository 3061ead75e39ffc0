/* alloc_test.c — states of a host's own allocators (lua_newstate with a per-state ud, then
   alua_openlibs): alua calls a state's allocator only while that state is open. A host
   frees what its allocator's ud points to after lua_close (a memory limit per sandbox). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <alua.h>
#include <lauxlib.h>
#include <lualib.h>

static int failures;

static void check(int cond, const char *name) {
  printf("%s - %s\n", cond ? "ok" : "not ok", name);
  failures += !cond;
}

typedef struct arena {
  int closed;       /* its state was closed: no call may come any more */
  int late_calls;   /* calls after that */
  size_t in_use;
} arena;

static void *arena_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  arena *a = ud;
  if (a->closed) a->late_calls++;
  if (ptr) a->in_use -= osize;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  void *p = realloc(ptr, nsize);
  if (p) a->in_use += nsize;
  else if (ptr) a->in_use += osize;
  return p;
}

static lua_State *arena_state(arena *a) {
  lua_State *L = lua_newstate(arena_alloc, a);
  luaL_openlibs(L);
  alua_openlibs(L);
  return L;
}

static int run(lua_State *L, const char *src) {
  int status = alua_dostring(L, src);
  if (status != LUA_OK) {
    printf("  error: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  return status;
}

/* State B keeps two streams open on the thread while state A reads through its own
   streams, closes them and is closed: the read buffers A's streams gave back to the
   thread's pool of buffers are A's allocator's, and must not outlive A. */
static void test_two_states_one_thread(void) {
  arena a = {0}, b = {0};
  lua_State *B = arena_state(&b);
  int status = run(B, "server = await asyncio.start_server(function(r, w) held = {r, w} end, '127.0.0.1', 0)\n"
                      "reader, writer = await asyncio.open_connection(server:sockname())\n"
                      "await asyncio.sleep(0.01)\n");
  check(status == LUA_OK, "state B: a server and a connection, left open");
  lua_State *A = arena_state(&a);
  status = run(A, "local got\n"
                  "local server = await asyncio.start_server(function(r, w)\n"
                  "  w:write(string.rep('a', 10000)); await w:drain(); w:close()\n"
                  "end, '127.0.0.1', 0)\n"
                  "local r, w = await asyncio.open_connection(server:sockname())\n"
                  "got = await r:read()\n"
                  "w:close(); server:close(); await server:wait_closed()\n"
                  "await asyncio.sleep(0.01)\n"
                  "assert(#got == 10000, #got)\n");
  check(status == LUA_OK, "state A: a read through its own streams, then every stream closed");
  lua_close(A);
  a.closed = 1;
  status = run(B, "writer:close(); held[2]:close(); server:close(); await server:wait_closed()\n"
                  "await asyncio.sleep(0.01)\n");
  check(status == LUA_OK, "state B closes its streams after A is closed");
  lua_close(B);
  check(a.late_calls == 0, "no call of A's allocator after lua_close(A)");
  if (a.late_calls) printf("  %d late calls\n", a.late_calls);
}

int main(void) {
  test_two_states_one_thread();
  return failures != 0;
}

/* alloc_test.c — states of a host's own allocators (lua_newstate with a per-state ud, then
   alua_openlibs): alua calls a state's allocator only while that state is open. A host
   frees what its allocator's ud points to after lua_close (a memory limit per sandbox). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <alua.h>
#include <lauxlib.h>
#include <lualib.h>

static int failures;

static void check(int cond, const char *name) {
  printf("%s - %s\n", cond ? "ok" : "not ok", name);
  failures += !cond;
}

typedef struct arena {
  int closed;     /* its state was closed: no call may come any more */
  int late_calls; /* calls after that */
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
  if (p)
    a->in_use += nsize;
  else if (ptr)
    a->in_use += osize;
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
  int status =
      run(B,
          "server = await asyncio.start_server(function(r, w) held = {r, w} end, '127.0.0.1', 0)\n"
          "reader, writer = await asyncio.open_connection(server:sockname())\n"
          "await asyncio.sleep(0.01)\n");
  check(status == LUA_OK, "state B: a server and a connection, left open");
  lua_State *A = arena_state(&a);
  status = run(A,
               "local got\n"
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
  status = run(B,
               "writer:close(); held[2]:close(); server:close(); await server:wait_closed()\n"
               "await asyncio.sleep(0.01)\n");
  check(status == LUA_OK, "state B closes its streams after A is closed");
  lua_close(B);
  check(a.late_calls == 0, "no call of A's allocator after lua_close(A)");
  if (a.late_calls) printf("  %d late calls\n", a.late_calls);
}

/* An allocator that fails every allocation from the fail_at-th new block on, while armed;
   it notes the new blocks of strings of 101 to 165 bytes. */
typedef struct failing {
  long n, fail_at, strings[64];
  int nstrings, armed, failed;
} failing;

static void *failing_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  failing *f = ud;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  if (ptr == NULL && f->armed) {
    f->n++;
    if (osize == LUA_TSTRING && nsize > 101 && nsize <= 165 && f->nstrings < 64)
      f->strings[f->nstrings++] = f->n;
    if (f->n == f->fail_at) f->failed = 1;
    if (f->failed) return NULL;
  }
  return realloc(ptr, nsize);
}

static int open_asyncio(lua_State *L) {
  luaL_requiref(L, "asyncio", luaopen_asyncio, 0);
  return 0;
}

/* In a new process (what asyncio learns about Lua's strings it learns once a process):
   opens asyncio in a state whose allocator fails from the fail_at-th block on. Exits 0 if
   the state's allocator is its own afterwards, 1 if not; the blocks noted go to fd. */
static int open_failing(long fail_at, failing *noted) {
  int fds[2];
  if (pipe(fds)) return -1;
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    failing f = {.fail_at = fail_at};
    lua_State *L = lua_newstate(failing_alloc, &f);
    luaL_openlibs(L);
    f.armed = 1;
    lua_pushcfunction(L, open_asyncio);
    lua_pcall(L, 0, 0, 0);
    f.failed = 0;
    void *ud;
    int own = lua_getallocf(L, &ud) == failing_alloc && ud == &f;
    if (!own) lua_setallocf(L, failing_alloc, &f);
    lua_close(L);
    _exit(write(fds[1], &f, sizeof f) != sizeof f ? 2 : !own);
  }
  close(fds[1]);
  if (read(fds[0], noted, sizeof *noted) != sizeof *noted) memset(noted, 0, sizeof *noted);
  close(fds[0]);
  int status;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Memory running out while asyncio learns where a string's bytes start in its block (it
   watches the allocation of one string through an allocator of its own, fad18e3): the
   state keeps its own allocator. Every allocation from each string's of that size on
   fails in turn. */
static void test_memory_error_while_learning(void) {
  failing noted;
  check(open_failing(-1, &noted) == 0 && noted.nstrings > 0,
        "opening asyncio makes strings of 101 to 165 bytes");
  int kept = 1;
  for (int i = 0; i < noted.nstrings; i++) {
    failing f;
    int status = open_failing(noted.strings[i], &f);
    if (status != 0) printf("  failing from block %ld on: status %d\n", noted.strings[i], status);
    kept &= status == 0;
  }
  check(kept, "memory running out while asyncio opens leaves the state's allocator its own");
}

/* ---- memory failing twice in a row: a chunk's load, tasks finishing, futures completing */

/* An allocator that fails two requests for memory in a row (a new block, or a block
   grown) from the fail_at-th on: Lua retries a failed one once after an emergency
   collection, so the second failure is the memory error the program sees. It counts
   the bytes in use, which lua_close must bring back to zero. */
typedef struct burst {
  long n, fail_at;
  size_t in_use;
  int armed;
} burst;

static void *burst_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  burst *b = ud;
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    free(ptr);
    b->in_use -= old;
    return NULL;
  }
  if (b->armed && nsize > old) {
    b->n++;
    if (b->n == b->fail_at || b->n == b->fail_at + 1) return NULL;
  }
  void *p = realloc(ptr, nsize);
  if (p == NULL) return NULL;
  b->in_use += nsize - old; /* wraps as unsigned when shrinking: still exact */
  return p;
}

/* alua_dostring with memory failing at each allocation of the chunk's load (the keyword
   transform, Lua's parser): LUA_ERRMEM with Lua's message, never Lua's panic (an abort:
   the load ran unprotected in the host's own call). */
static void test_memory_error_while_loading(void) {
  int right = 1;
  long k;
  for (k = 1; k < 10000; k++) {
    burst b = {.fail_at = k};
    lua_State *L = lua_newstate(burst_alloc, &b);
    luaL_openlibs(L);
    alua_openlibs(L);
    b.armed = 1;
    int status = alua_dostring(L, "local f = async function(x) return await x end\nreturn 1");
    int ok = status == LUA_OK || (status == LUA_ERRMEM && lua_isstring(L, -1) &&
                                  strstr(lua_tostring(L, -1), "not enough memory"));
    if (!ok) printf("  failing from %ld: status %d\n", k, status);
    right &= ok;
    lua_close(L);
    if (status == LUA_OK && b.n < k) break; /* past every allocation the load makes */
  }
  check(right && k < 10000, "memory running out while alua_dostring loads: LUA_ERRMEM");
}

int main(void) {
  test_memory_error_while_learning(); /* first: before this process learns anything */
  test_two_states_one_thread();
  test_memory_error_while_loading();
  return failures != 0;
}

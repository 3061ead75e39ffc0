/* threads.c — host (d): independent alua states, one per thread, each on its own loop. */
#include <pthread.h>
#include <stdio.h>

#include <alua.h>
#include <lauxlib.h>

enum { NTHREADS = 4 };

static void *worker(void *arg) {
  long id = (long)arg;
  lua_State *L = alua_newstate();
  if (L == NULL) return (void *)1;
  lua_pushinteger(L, id);
  lua_setglobal(L, "ID");
  const char *chunk =
      "local sum = 0\n"
      "local add = async(function(i) await(asyncio.sleep(0.001 * (i % 3))); return i end)\n"
      "local tasks = {}\n"
      "for i = 1, 100 do tasks[i] = add(i) end\n"
      "for _, v in ipairs({await(asyncio.gather(table.unpack(tasks)))}) do sum = sum + v end\n"
      "RESULT = sum * ID\n";
  long ok = alua_dostring(L, chunk) == LUA_OK;
  if (!ok) fprintf(stderr, "thread %ld: %s\n", id, lua_tostring(L, -1));
  lua_getglobal(L, "RESULT");
  long result = ok ? (long)lua_tointeger(L, -1) : -1;
  alua_close(L);
  return (void *)result;
}

int main(void) {
  pthread_t threads[NTHREADS];
  for (long i = 0; i < NTHREADS; i++) pthread_create(&threads[i], NULL, worker, (void *)(i + 1));
  int failures = 0;
  for (long i = 0; i < NTHREADS; i++) {
    void *r;
    pthread_join(threads[i], &r);
    long want = 5050 * (i + 1);
    printf("state %ld: %ld (%s)\n", i + 1, (long)r, (long)r == want ? "ok" : "WRONG");
    failures += (long)r != want;
  }
  return failures != 0;
}

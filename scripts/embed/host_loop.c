/* host_loop.c — host (b): the host owns the libuv loop, keeps its own timer on it, and
   alua's tasks share it. A host event (the timer) resolves a Future Lua awaits. */
#include <stdio.h>

#include <alua.h>
#include <lauxlib.h>

static lua_State *L;
static int pending_key = -1;
static uv_timer_t timer;

static void host_timer_cb(uv_timer_t *t) {
  /* a host event: hand its data to the Lua code awaiting it */
  lua_pushstring(L, "reading from the host");
  lua_pushinteger(L, 42);
  if (alua_future_resolve(L, pending_key, 2) != 0) fprintf(stderr, "resolve failed\n");
  pending_key = -1;
  uv_close((uv_handle_t *)t, NULL);
}

/* Lua: host_event() -> a Future the host resolves when its timer fires */
static int host_event(lua_State *L) {
  pending_key = alua_future_new(L);
  uv_timer_init(alua_loop(L), &timer);
  uv_timer_start(&timer, host_timer_cb, 10, 0);
  return 1;
}

int main(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  L = alua_newstate();
  if (L == NULL || alua_setloop(L, &loop) != 0) return 1;
  lua_register(L, "host_event", host_event);
  const char *chunk =
      "asyncio.create_task(async(function()\n"
      "  local what, n = await(host_event())\n"
      "  print('lua got', what, n)\n"
      "end)())\n";
  if (alua_dostring(L, chunk) != LUA_OK) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    return 1;
  }
  uv_run(&loop, UV_RUN_DEFAULT); /* the host runs its loop; alua's tasks run inside it */
  alua_close(L);
  uv_run(&loop, UV_RUN_NOWAIT); /* releases alua's closed handles */
  int rc = uv_loop_close(&loop);
  printf("host loop closed: %s\n", rc == 0 ? "yes" : uv_err_name(rc));
  return rc == 0 ? 0 : 1;
}

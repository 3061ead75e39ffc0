/* waitset.c — sets of futures an I/O callback completes in pure C (a stream's readers,
   a listener's acceptors, a to_thread call's waiter), anchored in user values of
   their owner's userdata; a reader's future is reused while one task reads steadily. */
#include <stdlib.h>

#include "core.h"

static void waitset_reserve(lua_State *L, waitset *ws, int n) {
  if (n <= ws->cap) return;
  int cap = ws->cap ? ws->cap * 2 : 2;
  if (cap < n) cap = n;
  future **v = realloc(ws->v, cap * sizeof *v);
  if (v == NULL) luaL_error(L, "asyncio: out of memory");
  ws->v = v;
  ws->cap = cap;
}

/* Pushes a new pending future that waitset_wake completes. Futures already done (woken,
   or cancelled with the task that awaited them) are dropped from the set first. User
   value `uv` of the userdata at `owner` anchors them: the future itself when it is the
   only one, else a table mirroring the array. */
future *waitset_add(lua_State *L, waitset *ws, int owner, int uv) {
  owner = lua_absindex(L, owner);
  int kept = 0;
  for (int i = 0; i < ws->n; i++) kept += ws->v[i]->state == FUT_PENDING;
  waitset_reserve(L, ws, kept + 1);
  future *f;
  if (kept == 0) {
    f = future_new(L, loop_get(L));
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, owner, uv);
    ws->v[0] = f;
    ws->n = 1;
  } else {
    lua_getiuservalue(L, owner, uv); /* the single future, or the table */
    int old = lua_gettop(L), j = 0;
    lua_createtable(L, kept + 1, 0);
    for (int i = 0; i < ws->n; i++) {
      if (ws->v[i]->state != FUT_PENDING) continue;
      if (lua_istable(L, old))
        lua_rawgeti(L, old, i + 1);
      else
        lua_pushvalue(L, old);
      lua_rawseti(L, old + 1, j + 1);
      ws->v[j++] = ws->v[i];
    }
    f = future_new(L, loop_get(L));
    lua_pushvalue(L, -1);
    lua_rawseti(L, old + 1, j + 1);
    ws->v[j] = f;
    ws->n = j + 1;
    lua_pushvalue(L, old + 1);
    lua_setiuservalue(L, owner, uv);
    lua_replace(L, old);
    lua_settop(L, old);
  }
  ws->last = f;
  ws->by = task_of(L);
  return f;
}

/* For a set with one waiter at a time (a reader): when the task that awaited the last
   future asks again, that future (done, so already consumed by the task now running)
   is made pending again, so steady reading allocates no future. Else waitset_add. */
future *waitset_add_one(lua_State *L, waitset *ws, int owner, int uv) {
  future *f = ws->last;
  if (f && f->state == FUT_RESULT && f->first == NULL && ws->by == task_of(L) &&
      !waitset_pending(ws)) {
    if (lua_getiuservalue(L, owner, uv) == LUA_TUSERDATA && lua_touserdata(L, -1) == f) {
      future_rearm(f);
      ws->v[0] = f;
      ws->n = 1;
      return f;
    }
    lua_pop(L, 1);
  }
  return waitset_add(L, ws, owner, uv);
}

int waitset_pending(const waitset *ws) {
  for (int i = 0; i < ws->n; i++)
    if (ws->v[i]->state == FUT_PENDING) return 1;
  return 0;
}

/* Is a future of the set awaited: pending, and someone waits on it? A pending one nobody
   awaits was handed to an await that could not suspend (in a finalizer, where a read that
   finds nothing has to wait): it holds no waiter's place, or a set of one waiter at a time
   (a stream's reader, a UDP socket's) would refuse every wait after it. */
int waitset_awaited(const waitset *ws) {
  for (int i = 0; i < ws->n; i++)
    if (ws->v[i]->state == FUT_PENDING && ws->v[i]->first != NULL) return 1;
  return 0;
}

/* Completes every pending future of the set. Pure C: runs inside libuv callbacks. */
void waitset_wake(waitset *ws) {
  int n = ws->n;
  ws->n = 0;
  for (int i = 0; i < n; i++) {
    future *f = ws->v[i];
    if (f->state != FUT_PENDING) continue;
    f->nresults = 0;
    future_complete(f, FUT_RESULT);
  }
}

/* Is f one of the set's futures? (print_tasks: what a task waits on) */
int waitset_holds(const waitset *ws, const future *f) {
  for (int i = 0; i < ws->n; i++)
    if (ws->v[i] == f) return 1;
  return 0;
}

void waitset_free(waitset *ws) {
  free(ws->v);
  ws->v = NULL;
  ws->n = ws->cap = 0;
}

/* request.c — a request on a thread pool whose end completes a future (getaddrinfo,
   getnameinfo, a file call), kept as luv's lreq.c keeps its requests: while pending the C
   part owns itself and is on the loop's owner list (lua_close cancels it); it is freed
   only by its completion, which hands the outcome over to its Lua object or, when nobody
   can take it any more, tells the caller to dispose of it there. The links between the C
   part and the Lua object are cut in one place: request_unlink. */
#include <string.h>

#include "core.h"

static void request_cancel_owned(owned *o) {
  request *r = container_of(o, request, own);
  r->cancel(r);
}

future *request_push(lua_State *L, size_t size, int nuv, const char *mt) {
  sigmask_start_uv_pool(); /* the request that follows may be libuv's first */
  request **obj = lua_newuserdatauv(L, size, nuv);
  memset(obj, 0, size);
  luaL_setmetatable(L, mt);
  future *f = future_new(L, loop_get(L));
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, -3, 1);
  return f;
}

void request_start(lua_State *L, request *r, int objidx, void (*cancel)(request *r)) {
  request **link = lua_touserdata(L, objidx);
  lua_getiuservalue(L, objidx, 1);
  r->fut = lua_touserdata(L, -1);
  lua_pop(L, 1);
  r->link = link;
  r->cancel = cancel;
  *link = r;
  owner_track(owner_list_get(L), &r->own, request_cancel_owned);
}

void request_refuse(lua_State *L, int objidx) {
  lua_getiuservalue(L, objidx, 1);
  future *f = lua_touserdata(L, -1);
  lua_pop(L, 1);
  f->nresults = 0;
  future_complete(f, FUT_RESULT);
}

/* The one place the C part and the Lua object let go of each other. */
static void request_unlink(request *r) {
  *r->link = NULL;
  r->link = NULL;
  r->fut = NULL;
}

request_fate request_end(request *r, void **obj) {
  int closed = owner_list_closed(r->own.list);
  owner_untrack(&r->own); /* may free the list: nothing of the loop is touched after a close */
  *obj = NULL;
  if (r->link == NULL) return closed ? REQUEST_CLOSED : REQUEST_ABANDONED;
  future *f = r->fut;
  void *o = r->link;
  request_unlink(r);
  if (f->state != FUT_PENDING) return REQUEST_ABANDONED; /* its awaiter was cancelled */
  f->nresults = 0;
  future_complete(f, FUT_RESULT);
  *obj = o;
  return REQUEST_TAKEN;
}

void request_detach(void *obj) {
  request *r = *(request **)obj;
  if (r == NULL) return;
  request_unlink(r);
  r->cancel(r);
}

void request_cancel(void *obj) {
  request *r = *(request **)obj;
  if (r) r->cancel(r);
}

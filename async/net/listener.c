/* listener.c — a listening TCP or Unix socket: accepts in C into a bounded queue of
   streams the Lua side takes (net.accept), backs off while descriptors run out, and is
   freed once closed and its last connection is gone. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "net.h"

enum { PENDING_MAX = 128 };
/* User values of a listener's userdata. */
enum { LUV_ACCEPTORS = 1, LUV_CLOSERS, LUV_COUNT = LUV_CLOSERS };

static void listener_shutdown_obj(owned *o);

listener *listener_new(lua_State *L, int kind) {
  owner_list *list = owner_list_get(L);
  listener **box = lua_newuserdatauv(L, sizeof *box, LUV_COUNT);
  *box = NULL;
  luaL_setmetatable(L, LISTENER_MT);
  listener *l = calloc(1, sizeof *l);
  if (l == NULL) luaL_error(L, "asyncio: out of memory");
  l->kind = (uint8_t)kind;
  l->limit = READ_CHUNK;
  l->alloc = lua_getallocf(L, &l->alloc_ud);
  l->nodelay = 1;
  l->serving = 1;
  l->u.handle.data = l;
  l->box = box;
  *box = l;
  owner_track(list, &l->obj, listener_shutdown_obj);
  debug_record(L, -1);
  return l;
}

static listener *listener_check(lua_State *L, int idx) {
  return *(listener **)luaL_checkudata(L, idx, LISTENER_MT);
}

/* Frees the listener once its handle is closed and its last connection is gone. */
static void listener_maybe_free(listener *l) {
  if (!l->closed || l->nconns > 0) return;
  waitset_wake(&l->acceptors);
  waitset_wake(&l->closers);
  if (l->box) *l->box = NULL;
  owner_untrack(&l->obj);
  waitset_free(&l->acceptors);
  waitset_free(&l->closers);
  free(l->unlink_path);
  free(l);
}

void listener_conn_gone(listener *l) {
  l->nconns--;
  listener_maybe_free(l);
}

static int listener_accept_one(listener *l) {
  stream *s = stream_alloc(l->u.handle.loop, l->kind, l->obj.list, l->alloc, l->alloc_ud);
  if (s == NULL) return UV_ENOMEM;
  int err = uv_accept(&l->u.stream, &s->u.stream);
  if (err) {
    stream_close(s, STREAM_CLOSE_NOW);
    return err;
  }
  s->limit = l->limit;
  if (l->kind == STREAM_TCP) {
    uv_tcp_nodelay(&s->u.tcp, l->nodelay);
    if (l->keepalive) uv_tcp_keepalive(&s->u.tcp, 1, l->keepalive);
  }
  s->server = l;
  l->nconns++;
  if (l->pending_last)
    l->pending_last->next_pending = s;
  else
    l->pending_first = s;
  l->pending_last = s;
  l->npending++;
  s->open = 1;
  /* a listener that does not keep the program running (a LuaSocket server nobody waits
     on) lets its queued connections not keep it running either, as the backlog would */
  if (!uv_has_ref(&l->u.handle)) uv_unref(&s->u.handle);
  stream_resume(s);
  return 0;
}

/* Is a descriptor left for the next connection? When accept fails with EMFILE, libuv
   closes every connection waiting in the backlog, and nobody hears of it. So the
   listener takes a connection only while one is left: else it leaves it with libuv,
   which then stops accepting, the others wait in the backlog (as in Python), and
   net.accept says why until descriptors are free again. */
static int fd_left(listener *l) {
  uv_os_fd_t fd;
  if (uv_fileno(&l->u.handle, &fd) != 0) return 1;
  int probe = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (probe < 0) return errno != EMFILE && errno != ENFILE;
  close(probe);
  return 1;
}

static void listener_connection_cb(uv_stream_t *server, int status) {
  listener *l = server->data;
  if (l->closing) return;
  if (status < 0) {
    l->accept_err = status;
  } else if (!l->serving || l->npending >= PENDING_MAX || !fd_left(l)) {
    l->deferred = 1; /* libuv stops polling until uv_accept: the backlog holds the rest */
  } else {
    int err = listener_accept_one(l);
    if (err == UV_ENOMEM)
      l->deferred = 1;
    else if (err)
      l->accept_err = err;
  }
  waitset_wake(&l->acceptors);
}

int listener_start(listener *l, int backlog) {
  return uv_listen(&l->u.stream, backlog, listener_connection_cb);
}

static void listener_close_cb(uv_handle_t *h) {
  listener *l = h->data;
  l->closed = 1;
  listener_maybe_free(l);
}

void listener_close(listener *l) {
  if (l->closing) return;
  l->closing = 1;
  while (l->pending_first) { /* accepted, never handed to Lua */
    stream *s = l->pending_first;
    l->pending_first = s->next_pending;
    stream_close(s, STREAM_CLOSE_NOW);
  }
  l->pending_last = NULL;
  l->npending = 0;
  if (l->unlink_path) unlink(l->unlink_path);
  waitset_wake(&l->acceptors);
  if (l->u.handle.type != UV_UNKNOWN_HANDLE) {
    uv_close(&l->u.handle, listener_close_cb);
  } else { /* its handle was never initialised */
    l->closed = 1;
    listener_maybe_free(l);
  }
}

static void listener_shutdown_obj(owned *o) { listener_close(container_of(o, listener, obj)); }

/* What f is to the listener that owns o, for print_tasks: "accept",
   "Server.wait_closed", or NULL when o is no listener or f none of its waits. */
const char *listener_wait_name(owned *o, const future *f) {
  if (o->shutdown != listener_shutdown_obj) return NULL;
  listener *l = container_of(o, listener, obj);
  return waitset_holds(&l->acceptors, f) ? "accept"
         : waitset_holds(&l->closers, f) ? "Server.wait_closed"
                                         : NULL;
}

/* What listener_take found. */
enum accept_status {
  ACCEPT_OK,      /* *out: a connection */
  ACCEPT_WAIT,    /* none yet: wait for the listener's next event */
  ACCEPT_CLOSED,  /* the listener is closed */
  ACCEPT_ERROR,   /* *err: accepting failed; the listener goes on */
  ACCEPT_STARVED, /* out of descriptors (EMFILE): call again later */
};
static const char *const accept_status_names[] = {"ok", "wait", "closed", "error", "starved"};

/* Takes the next connection the listener accepted, accepting one the backlog holds when
   descriptors are free again. *first: ACCEPT_STARVED for the first time since there
   were some (the one time it is worth a report). */
static enum accept_status listener_take(listener *l, stream **out, int *err, int *first) {
  if (l == NULL || l->closing) return ACCEPT_CLOSED;
  if (l->pending_first == NULL && l->deferred && l->serving) {
    if (!fd_left(l)) {
      *first = !l->starved;
      l->starved = 1;
      return ACCEPT_STARVED;
    }
    l->starved = 0;
    l->deferred = 0;
    int e = listener_accept_one(l);
    if (e) l->accept_err = e;
  }
  if (l->accept_err) {
    *err = l->accept_err;
    l->accept_err = 0;
    return ACCEPT_ERROR;
  }
  if (l->pending_first == NULL) return ACCEPT_WAIT;
  *out = l->pending_first;
  return ACCEPT_OK;
}

/* net.accept(l) -> status, ...: "ok", stream | "wait" | "closed" | "error", err |
   "starved", err, first (out of descriptors; first: the first time since there were). */
static int l_net_accept(lua_State *L) {
  listener *l = listener_check(L, 1);
  stream *s = NULL;
  int err = 0, first = 0;
  enum accept_status st = listener_take(l, &s, &err, &first);
  luaL_checkstack(L, 3, NULL);
  lua_pushstring(L, accept_status_names[st]);
  switch (st) {
    case ACCEPT_OK:
      stream_wrap(L, s); /* before unqueuing: if memory runs out, s is closed with l */
      l->pending_first = s->next_pending;
      if (l->pending_first == NULL) l->pending_last = NULL;
      l->npending--;
      s->next_pending = NULL;
      return 2;
    case ACCEPT_ERROR: error_push_uv(L, "accept", err); return 2;
    case ACCEPT_STARVED:
      error_push_uv(L, "accept", UV_EMFILE);
      lua_pushboolean(L, first);
      return 3;
    default: return 1;
  }
}

static int l_net_wait_accept(lua_State *L) {
  listener *l = listener_check(L, 1);
  if (l == NULL || l->closing) return 0;
  waitset_add(L, &l->acceptors, 1, LUV_ACCEPTORS);
  return 1;
}

static int l_net_listener_close(lua_State *L) {
  listener *l = listener_check(L, 1);
  if (l) listener_close(l);
  return 0;
}

/* net.listener_wait_closed(l) -> a future completed once the listener is closed and its
   connections are all closed (Python 3.12's Server.wait_closed), or nothing. */
static int l_net_listener_wait_closed(lua_State *L) {
  listener *l = listener_check(L, 1);
  if (l == NULL) return 0;
  waitset_add(L, &l->closers, 1, LUV_CLOSERS);
  return 1;
}

static int l_net_listener_is_serving(lua_State *L) {
  listener *l = listener_check(L, 1);
  lua_pushboolean(L, l != NULL && !l->closing && l->serving);
  return 1;
}

/* net.listener_serve(l): starts accepting (start_serving = false made it wait). */
static int l_net_listener_serve(lua_State *L) {
  listener *l = listener_check(L, 1);
  if (l == NULL || l->closing || l->serving) return 0;
  l->serving = 1;
  uv_ref((uv_handle_t *)&l->u.stream);
  waitset_wake(&l->acceptors);
  return 0;
}

static int l_net_listener_sockname(lua_State *L) {
  listener *l = listener_check(L, 1);
  if (l == NULL || l->closing) return 0;
  return l->kind == STREAM_TCP ? tcp_push_name(L, &l->u.tcp, 0) : pipe_push_name(L, &l->u.pipe, 0);
}

/* net.listener_options(l, limit, nodelay, keepalive, start_serving): the options of the
   connections it accepts; whether it accepts them yet. */
static int l_net_listener_options(lua_State *L) {
  listener *l = listener_check(L, 1);
  if (l == NULL) return 0;
  lua_Integer limit = luaL_optinteger(L, 2, READ_CHUNK);
  luaL_argcheck(L, limit > 0, 2, "limit must be positive");
  l->limit = (size_t)limit;
  l->nodelay = lua_isnoneornil(L, 3) ? 1 : (uint8_t)lua_toboolean(L, 3);
  l->keepalive = (unsigned)luaL_optinteger(L, 4, 0);
  l->serving = lua_isnoneornil(L, 5) ? 1 : (uint8_t)lua_toboolean(L, 5);
  /* a server that does not accept yet keeps nobody waiting: the program may end (as in
     Node, and as Python's asyncio.run ends with a server never started) */
  if (l->serving)
    uv_ref((uv_handle_t *)&l->u.stream);
  else
    uv_unref((uv_handle_t *)&l->u.stream);
  return 0;
}

/* The collected listener closes; it is freed once its connections are gone too. */
static int listener_gc(lua_State *L) {
  listener **box = lua_touserdata(L, 1);
  listener *l = *box;
  if (l == NULL) return 0;
  *box = NULL;
  l->box = NULL;
  waitset_wake(&l->acceptors);
  waitset_wake(&l->closers);
  if (!l->closing) debug_report_unclosed(L, 1, "server");
  listener_close(l);
  return 0;
}

static int listener_tostring(lua_State *L) {
  listener *l = listener_check(L, 1);
  lua_pushfstring(L, "<listener%s>", l == NULL || l->closing ? " closed" : "");
  return 1;
}

/* ---- module ----------------------------------------------------------------------- */

static const luaL_Reg listener_functions[] = {
    {"accept", l_net_accept},
    {"wait_accept", l_net_wait_accept},
    {"listener_close", l_net_listener_close},
    {"listener_wait_closed", l_net_listener_wait_closed},
    {"listener_is_serving", l_net_listener_is_serving},
    {"listener_serve", l_net_listener_serve},
    {"listener_sockname", l_net_listener_sockname},
    {"listener_options", l_net_listener_options},
    {NULL, NULL},
};

/* Adds the listener primitives to the table on top (core.net). */
void listener_open(lua_State *L) {
  luaL_newmetatable(L, LISTENER_MT);
  lua_pushcfunction(L, listener_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, listener_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  luaL_setfuncs(L, listener_functions, 0);
}

/* luasocket.c — what asyncio.socket (LuaSocket's API, stdlib/asyncio/socket.lua) needs
   beyond the streams' primitives: the wall clock with its fraction, reverse lookups
   (getnameinfo on libuv's thread pool, never blocking the loop), the host name, and
   LuaSocket's error helpers (newtry, protect, skip) in C, as LuaSocket has them: every
   socket.http call goes through them a dozen times, and in Lua their varargs cost about
   5,000 instructions per request. */
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"

#define GNI_MT "asyncio.getnameinfo"

/* net.wallclock() -> seconds since the epoch, with microseconds (LuaSocket's gettime) */
static int l_net_wallclock(lua_State *L) {
  uv_timeval64_t tv;
  int err = uv_gettimeofday(&tv);
  if (err) return error_raise_uv(L, "gettimeofday", err);
  lua_pushnumber(L, (lua_Number)tv.tv_sec + (lua_Number)tv.tv_usec / 1e6);
  return 1;
}

/* net.gethostname() -> this machine's name */
static int l_net_gethostname(lua_State *L) {
  char name[UV_MAXHOSTNAMESIZE];
  size_t size = sizeof name;
  int err = uv_os_gethostname(name, &size);
  if (err) return error_raise_uv(L, "gethostname", err);
  lua_pushlstring(L, name, size);
  return 1;
}

/* net.strerror(name) -> the C library's text for the system error named by libuv
   ("EADDRNOTAVAIL": "Cannot assign requested address"), as LuaSocket reports the errors
   it has no word of its own for; nil for a name that is not a system error. */
static int l_net_strerror(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  int code = 0;
#define XX(c, _) \
  if (code == 0 && strcmp(name, #c) == 0) code = UV_##c;
  UV_ERRNO_MAP(XX)
#undef XX
  /* libuv's codes are negated errno values, except its own (EOF, the EAI_ family) */
  if (code >= 0 || code < -4095 || strncmp(name, "EAI_", 4) == 0 || code == UV_EOF) return 0;
  lua_pushstring(L, strerror(-code));
  return 1;
}

/* ---- getnameinfo ------------------------------------------------------------------- */

/* As getaddrinfo's request (dns.c, request.c): the request in flight owns itself and is
   freed by gni_cb; the Lua object keeps the outcome. */
typedef struct gni_req {
  request base;
  uv_getnameinfo_t req;
} gni_req;

typedef struct gni_obj {
  request *pending;
  int status;
  uint8_t done;
  char host[NI_MAXHOST];
} gni_obj;

static void gni_req_cancel(request *r) { uv_cancel((uv_req_t *)&((gni_req *)r)->req); }

static void gni_cb(uv_getnameinfo_t *req, int status, const char *host, const char *service) {
  (void)service;
  gni_req *r = container_of(req, gni_req, req);
  gni_obj *o;
  if (request_end(&r->base, (void **)&o) == REQUEST_TAKEN) {
    o->status = status;
    if (status == 0 && host) snprintf(o->host, sizeof o->host, "%s", host);
    o->done = 1;
  }
  free(r);
}

/* net.getnameinfo(ip) -> request, future: the name of an IP address (NI_NAMEREQD: an
   address without a name is an error, not its own text) */
static int l_net_getnameinfo(lua_State *L) {
  const char *ip = luaL_checkstring(L, 1);
  struct sockaddr_storage ss;
  if (addr_from_ip(ip, 0, &ss) != 0)
    return luaL_error(L, "getnameinfo: '%s' is not an IP address", ip);
  lua_settop(L, 1);
  request_push(L, sizeof(gni_obj), 1, GNI_MT);
  gni_req *r = malloc(sizeof *r);
  if (r == NULL) return luaL_error(L, "asyncio: out of memory");
  int err = uv_getnameinfo(loop_get(L)->uv, &r->req, gni_cb, (struct sockaddr *)&ss, NI_NAMEREQD);
  if (err == 0) {
    request_start(L, &r->base, 2, gni_req_cancel);
  } else {
    free(r);
    gni_obj *o = lua_touserdata(L, 2);
    o->status = err;
    o->done = 1;
    request_refuse(L, 2);
  }
  return 2;
}

/* net.getnameinfo_result(request) -> name, or raises the OSError of the lookup */
static int l_net_getnameinfo_result(lua_State *L) {
  gni_obj *o = luaL_checkudata(L, 1, GNI_MT);
  if (!o->done) return luaL_error(L, "getnameinfo: no result yet");
  if (o->status < 0) return error_raise_uv(L, "getnameinfo", o->status);
  lua_pushstring(L, o->host);
  return 1;
}

/* net.getnameinfo_cancel(request): the awaiting task was cancelled. */
static int l_net_getnameinfo_cancel(lua_State *L) {
  request_cancel(luaL_checkudata(L, 1, GNI_MT));
  return 0;
}

static int gni_gc(lua_State *L) {
  request_detach(lua_touserdata(L, 1));
  return 0;
}

/* Replaces the string on top with a copy without its "\r" bytes (LuaSocket's "*l"). It
   reads the string itself, not the stream's buffer: the luaL_Buffer may run the collector,
   and a finalizer the buffer. */
static void push_without_cr(lua_State *L) {
  size_t n;
  const char *p = lua_tolstring(L, -1, &n);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (size_t i = 0; i < n; i++)
    if (p[i] != '\r') luaL_addchar(&b, p[i]);
  luaL_pushresult(&b);
  lua_remove(L, -2);
}

/* ---- receive's fast path ------------------------------------------------------------

   net.socket_take(h [, n]) -> what LuaSocket's receive returns when the stream's buffer
   already holds it, taken out of that buffer, and the bytes it used: with n nil a line
   ("*l": without its "\n", every "\r" dropped), else n bytes. nil, "wait" when it is not
   there yet and more may come; nil, "other" when it cannot be there (the end of the
   stream, an error, a count or a line beyond the buffer's bound): the Lua path, which
   keeps its own buffer, makes the partial result then. socket/tcp.lua uses it only while
   its own buffer is empty, so the bytes stay in order. */
static int l_net_socket_take(lua_State *L) {
  stream *s = stream_check(L, 1);
  int is_line = lua_isnoneornil(L, 2);
  lua_Integer n = is_line ? 0 : luaL_checkinteger(L, 2);
  if (s == NULL) { /* closed and freed (by another task, while this one waited): the Lua
                      path answers "closed" */
    lua_pushnil(L);
    lua_pushliteral(L, "other");
    return 2;
  }
  int more = s->rerr == 0 && !s->eof && !s->close_wanted;
  if (!is_line && (n < 0 || (size_t)n > s->limit)) more = 0;
  size_t len = s->rb.len;
  const char *p = s->rb.buf + s->rb.pos;
  size_t used = 0;
  int found = 0;
  if (is_line) {
    const char *nl = len ? memchr(p, '\n', len) : NULL;
    if (nl) {
      used = (size_t)(nl - p) + 1;
      found = 1;
    } else if (len >= s->limit) {
      more = 0; /* a line longer than the buffer's bound */
    }
  } else if (len >= (size_t)n && len > 0) { /* receive(0) too waits for data, as LuaSocket's */
    used = (size_t)n;
    found = 1;
  }
  if (!found) {
    lua_pushnil(L);
    if (more)
      lua_pushliteral(L, "wait");
    else
      lua_pushliteral(L, "other");
    return 2;
  }
  /* out of the buffer before anything can run a finalizer that reads it (stream_take);
     one push copies them, and only then may Lua collect */
  p = stream_take(s, used);
  if (!is_line) {
    lua_pushlstring(L, p, used);
  } else {
    size_t line = used - 1;
    const char *cr = memchr(p, '\r', line);
    if (cr != NULL && cr == p + line - 1) { /* the usual "\r\n": the only "\r" is the last byte */
      lua_pushlstring(L, p, line - 1);
    } else {
      lua_pushlstring(L, p, line);
      if (cr != NULL) push_without_cr(L);
    }
  }
  stream_consume(s, 0);
  lua_pushinteger(L, (lua_Integer)used);
  return 2;
}

/* ---- newtry, protect, skip (LuaSocket's except.c) ----------------------------------

   A try function's failure is raised boxed, {message} with a metatable of its own, so
   that protect returns it as nil, message and lets every other error (a cancellation, a
   bug) through. Both may yield (a finalizer or a protected function that awaits): they
   continue in their k functions. */
static char box_key; /* the registry holds the boxes' metatable under its address */

static int raise_boxed(lua_State *L) {
  lua_settop(L, 2); /* the message: try's second value */
  lua_createtable(L, 1, 0);
  lua_pushvalue(L, 2);
  lua_rawseti(L, -2, 1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &box_key);
  lua_setmetatable(L, -2);
  return lua_error(L);
}

static int try_finalized(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  return raise_boxed(L);
}

/* try(ok, ...) -> ok, ... when ok is true; else calls the finalizer and raises the box */
static int try_call(lua_State *L) {
  if (lua_toboolean(L, 1)) return lua_gettop(L);
  if (lua_isnil(L, lua_upvalueindex(1))) return raise_boxed(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_callk(L, 0, 0, 0, try_finalized);
  return raise_boxed(L);
}

/* net.newtry([finalizer]) -> a try function */
static int l_net_newtry(lua_State *L) {
  lua_settop(L, 1);
  lua_pushcclosure(L, try_call, 1);
  return 1;
}

/* What the protected call gave: its results, or nil and a boxed message; other errors
   go on up. */
static int protect_finish(lua_State *L, int status, lua_KContext ctx) {
  (void)ctx;
  if (status == LUA_OK || status == LUA_YIELD) return lua_gettop(L);
  if (lua_getmetatable(L, -1)) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &box_key);
    if (lua_rawequal(L, -1, -2)) {
      lua_pop(L, 2);
      lua_pushnil(L);
      lua_rawgeti(L, -2, 1);
      return 2;
    }
    lua_pop(L, 2);
  }
  return lua_error(L);
}

static int protected_call(lua_State *L) {
  int nargs = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  return protect_finish(L, lua_pcallk(L, nargs, LUA_MULTRET, 0, 0, protect_finish), 0);
}

/* net.protect(f) -> f called so that a try's failure is returned as nil, message */
static int l_net_protect(lua_State *L) {
  /* named as LuaSocket's users know it (luaL_argerror would find 'socket.core.protect') */
  if (lua_type(L, 1) != LUA_TFUNCTION)
    return luaL_error(L, "bad argument #1 to 'protect' (function expected, got %s)",
                      luaL_typename(L, 1));
  lua_settop(L, 1);
  lua_pushcclosure(L, protected_call, 1);
  return 1;
}

/* net.skip(d, ...) -> the values after the first d. A negative d is refused: returning
   more values than were passed hands out the caller's stack slots below them (LuaSocket's
   own skip does; the Lua select this replaced raised "index out of range"). */
static int l_net_skip(lua_State *L) {
  int isnum;
  lua_Integer amount = lua_tointegerx(L, 1, &isnum);
  if (!isnum)
    return luaL_error(L, "bad argument #1 to 'skip' (number expected, got %s)",
                      luaL_typename(L, 1));
  if (amount < 0)
    return luaL_error(L, "bad argument #1 to 'skip' (count must not be negative, got %I)", amount);
  lua_Integer rest = lua_gettop(L) - 1;
  return amount < rest ? (int)(rest - amount) : 0;
}

/* ---- what keeps the program running ----------------------------------------------- */

/* net.socket_idle(h): a LuaSocket object's stream or listener does not keep the program
   running by itself (a listener is referenced while it accepts, a stream while it
   reads: always, here): LuaSocket's sockets block only while a call waits on one, which
   net.socket_wait counts instead. So a script that leaves one open ends, as with LuaSocket. */
static int l_net_socket_idle(lua_State *L) {
  uv_handle_t *h = NULL;
  if (luaL_testudata(L, 1, LISTENER_MT)) {
    listener *l = *(listener **)lua_touserdata(L, 1);
    if (l != NULL && !l->closing) h = &l->u.handle;
  } else {
    stream *s = stream_check(L, 1);
    if (s != NULL) h = &s->u.handle;
  }
  if (h != NULL && !uv_is_closing(h)) uv_unref(h);
  return 0;
}

/* net.socket_wait(delta): a LuaSocket call starts (1) or stops (-1) waiting: while one
   waits the loop keeps running, as the blocking call it stands for would. */
static int l_net_socket_wait(lua_State *L) {
  loop_keep_alive(loop_get(L), (int)luaL_checkinteger(L, 1));
  return 0;
}

static const luaL_Reg luasocket_functions[] = {
    {"wallclock", l_net_wallclock},
    {"gethostname", l_net_gethostname},
    {"strerror", l_net_strerror},
    {"getnameinfo", l_net_getnameinfo},
    {"getnameinfo_result", l_net_getnameinfo_result},
    {"getnameinfo_cancel", l_net_getnameinfo_cancel},
    {"socket_take", l_net_socket_take},
    {"newtry", l_net_newtry},
    {"protect", l_net_protect},
    {"skip", l_net_skip},
    {"socket_idle", l_net_socket_idle},
    {"socket_wait", l_net_socket_wait},
    {NULL, NULL},
};

void luasocket_open(lua_State *L) {
  luaL_newmetatable(L, GNI_MT);
  lua_pushcfunction(L, gni_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  lua_newtable(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &box_key);
  luaL_setfuncs(L, luasocket_functions, 0);
}

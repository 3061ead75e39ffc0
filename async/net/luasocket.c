/* luasocket.c — what asyncio.socket (LuaSocket's API, stdlib/asyncio/socket.lua) needs
   beyond the streams' primitives: the wall clock with its fraction, reverse lookups
   (getnameinfo on libuv's thread pool, never blocking the loop) and the host name. */
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

/* As getaddrinfo's request (dns.c): it outlives its Lua object when that is collected
   while the thread pool still runs it; the callback then frees it. */
typedef struct gni_req {
  uv_getnameinfo_t req;
  struct gni_req **box; /* NULL once the Lua object is collected */
  waitset waiters;
  char host[NI_MAXHOST];
  int status;
  uint8_t done;
} gni_req;

static void gni_free(gni_req *r) {
  waitset_free(&r->waiters);
  free(r);
}

static void gni_cb(uv_getnameinfo_t *req, int status, const char *host, const char *service) {
  (void)service;
  gni_req *r = req->data;
  r->status = status;
  if (status == 0 && host) snprintf(r->host, sizeof r->host, "%s", host);
  r->done = 1;
  if (r->box == NULL) {
    gni_free(r);
    return;
  }
  waitset_wake(&r->waiters);
}

static gni_req *gni_check(lua_State *L) { return *(gni_req **)luaL_checkudata(L, 1, GNI_MT); }

/* net.getnameinfo(ip) -> request, future: the name of an IP address (NI_NAMEREQD: an
   address without a name is an error, not its own text) */
static int l_net_getnameinfo(lua_State *L) {
  const char *ip = luaL_checkstring(L, 1);
  struct sockaddr_storage ss;
  if (addr_from_ip(ip, 0, &ss) != 0)
    return luaL_error(L, "getnameinfo: '%s' is not an IP address", ip);
  lua_settop(L, 1);
  gni_req **box = lua_newuserdatauv(L, sizeof *box, 1);
  *box = NULL;
  luaL_setmetatable(L, GNI_MT);
  gni_req *r = calloc(1, sizeof *r);
  if (r == NULL) return luaL_error(L, "asyncio: out of memory");
  r->req.data = r;
  r->box = box;
  *box = r;
  waitset_add(L, &r->waiters, 2, 1);
  int err = uv_getnameinfo(loop_get(L)->uv, &r->req, gni_cb, (struct sockaddr *)&ss, NI_NAMEREQD);
  if (err) {
    r->done = 1;
    r->status = err;
    waitset_wake(&r->waiters);
  }
  return 2;
}

/* net.getnameinfo_result(request) -> name, or raises the OSError of the lookup */
static int l_net_getnameinfo_result(lua_State *L) {
  gni_req *r = gni_check(L);
  if (r == NULL || !r->done) return luaL_error(L, "getnameinfo: no result yet");
  if (r->status < 0) return error_raise_uv(L, "getnameinfo", r->status);
  lua_pushstring(L, r->host);
  return 1;
}

/* net.getnameinfo_cancel(request): the awaiting task was cancelled. */
static int l_net_getnameinfo_cancel(lua_State *L) {
  gni_req *r = gni_check(L);
  if (r && !r->done) uv_cancel((uv_req_t *)&r->req);
  return 0;
}

static int gni_gc(lua_State *L) {
  gni_req **box = lua_touserdata(L, 1);
  gni_req *r = *box;
  if (r == NULL) return 0;
  *box = NULL;
  if (r->done) {
    gni_free(r);
  } else {
    r->box = NULL;
    waitset_wake(&r->waiters);
    uv_cancel((uv_req_t *)&r->req);
  }
  return 0;
}

static const luaL_Reg luasocket_functions[] = {
    {"wallclock", l_net_wallclock},
    {"gethostname", l_net_gethostname},
    {"strerror", l_net_strerror},
    {"getnameinfo", l_net_getnameinfo},
    {"getnameinfo_result", l_net_getnameinfo_result},
    {"getnameinfo_cancel", l_net_getnameinfo_cancel},
    {NULL, NULL},
};

void luasocket_open(lua_State *L) {
  luaL_newmetatable(L, GNI_MT);
  lua_pushcfunction(L, gni_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_setfuncs(L, luasocket_functions, 0);
}

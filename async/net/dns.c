/* dns.c — names and addresses: getaddrinfo on libuv's thread pool (never blocking the
   loop), IP text to sockaddr and back. */
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"

static const char *family_name(int family) {
  return family == AF_INET ? "inet" : family == AF_INET6 ? "inet6" : "unix";
}

/* net.parse_ip(text) -> "inet" | "inet6" | nil */
static int l_net_parse_ip(lua_State *L) {
  struct sockaddr_storage ss;
  const char *ip = luaL_checkstring(L, 1);
  if (addr_from_ip(ip, 0, &ss) != 0) return 0;
  lua_pushstring(L, family_name(ss.ss_family));
  return 1;
}

/* ---- getaddrinfo -------------------------------------------------------------------- */

/* The request in flight (request.c: owns itself, freed by gai_cb); the Lua object keeps
   the outcome. */
typedef struct gai_req {
  request base;
  uv_getaddrinfo_t req;
} gai_req;

typedef struct gai_obj {
  request *pending;
  struct addrinfo *res; /* the object's until the result is read */
  int status;
  uint8_t done;
} gai_obj;

static void gai_req_cancel(request *r) { uv_cancel((uv_req_t *)&((gai_req *)r)->req); }

static void gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  gai_req *r = container_of(req, gai_req, req);
  gai_obj *o;
  if (request_end(&r->base, (void **)&o) == REQUEST_TAKEN) {
    o->status = status;
    o->res = res;
    o->done = 1;
  } else if (res) {
    uv_freeaddrinfo(res);
  }
  free(r);
}

/* net.getaddrinfo(host, service, family, socktype, passive) -> request, future */
static int l_net_getaddrinfo(lua_State *L) {
  const char *host = luaL_optstring(L, 1, NULL);
  const char *service = luaL_optstring(L, 2, NULL);
  const char *family = luaL_optstring(L, 3, NULL);
  const char *socktype = luaL_optstring(L, 4, "stream");
  int passive = lua_toboolean(L, 5);
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  if (family == NULL || *family == '\0')
    hints.ai_family = AF_UNSPEC;
  else if (strcmp(family, "inet") == 0)
    hints.ai_family = AF_INET;
  else if (strcmp(family, "inet6") == 0)
    hints.ai_family = AF_INET6;
  else
    return argcheck_error(L, "getaddrinfo: unknown family '%s' (expected \"inet\" or \"inet6\")",
                          family);
  if (strcmp(socktype, "stream") == 0)
    hints.ai_socktype = SOCK_STREAM;
  else if (strcmp(socktype, "dgram") == 0)
    hints.ai_socktype = SOCK_DGRAM;
  else
    return argcheck_error(L, "getaddrinfo: unknown type '%s' (expected \"stream\" or \"dgram\")",
                          socktype);
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  lua_settop(L, 5);
  request_push(L, sizeof(gai_obj), 1, GAI_MT);
  gai_req *r = malloc(sizeof *r);
  if (r == NULL) return luaL_error(L, "asyncio: out of memory");
  int err = uv_getaddrinfo(loop_get(L)->uv, &r->req, gai_cb, host, service, &hints);
  if (err == 0) {
    request_start(L, &r->base, 6, gai_req_cancel);
  } else {
    free(r);
    gai_obj *o = lua_touserdata(L, 6);
    o->status = err;
    o->done = 1;
    request_refuse(L, 6);
  }
  return 2;
}

/* net.getaddrinfo_result(request, host) -> list of {family=, address=, port=}, or raises
   an OSError naming the host. */
static int l_net_getaddrinfo_result(lua_State *L) {
  gai_obj *o = luaL_checkudata(L, 1, GAI_MT);
  const char *host = luaL_optstring(L, 2, "(any)");
  if (!o->done) return luaL_error(L, "getaddrinfo: no result yet");
  if (o->status < 0) {
    int unknown = o->status == UV_EAI_NONAME || o->status == UV_EAI_NODATA ||
                  o->status == UV_EAI_AGAIN || o->status == UV_EAI_FAIL;
    error_push_uv_msg(L, "getaddrinfo", o->status, "getaddrinfo: %s '%s': %s (%s)",
                      unknown ? "cannot resolve host" : "host", host, uv_err_name(o->status),
                      uv_strerror(o->status));
    lua_pushstring(L, host);
    lua_setfield(L, -2, "host");
    return lua_error(L);
  }
  lua_newtable(L);
  int n = 0;
  for (struct addrinfo *ai = o->res; ai; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    lua_createtable(L, 0, 3);
    lua_pushstring(L, family_name(ai->ai_family));
    lua_setfield(L, -2, "family");
    addr_push(L, ai->ai_addr);
    lua_setfield(L, -3, "port");
    lua_setfield(L, -2, "address");
    lua_rawseti(L, -2, ++n);
  }
  uv_freeaddrinfo(o->res);
  o->res = NULL;
  return 1;
}

/* net.getaddrinfo_cancel(request): the awaiting task was cancelled. */
static int l_net_getaddrinfo_cancel(lua_State *L) {
  request_cancel(luaL_checkudata(L, 1, GAI_MT));
  return 0;
}

static int gai_gc(lua_State *L) {
  gai_obj *o = lua_touserdata(L, 1);
  request_detach(o);
  if (o->res) uv_freeaddrinfo(o->res);
  o->res = NULL;
  return 0;
}

static const luaL_Reg dns_functions[] = {
    {"parse_ip", l_net_parse_ip},
    {"getaddrinfo", l_net_getaddrinfo},
    {"getaddrinfo_result", l_net_getaddrinfo_result},
    {"getaddrinfo_cancel", l_net_getaddrinfo_cancel},
    {NULL, NULL},
};

void dns_open(lua_State *L) {
  luaL_newmetatable(L, GAI_MT);
  lua_pushcfunction(L, gai_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_setfuncs(L, dns_functions, 0);
}

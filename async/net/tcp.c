/* tcp.c — TCP sockets: connecting, listening (with SO_REUSEPORT set by hand: libuv 1.44
   has no UV_TCP_REUSEPORT), socket options and addresses. */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net.h"

/* Pushes the local (peer = 0) or remote address of a TCP handle as host, port; nothing
   when there is none (a peer that reset the connection), as Python's None. */
int tcp_push_name(lua_State *L, uv_tcp_t *t, int peer) {
  struct sockaddr_storage ss;
  int len = sizeof ss;
  int err = peer ? uv_tcp_getpeername(t, (struct sockaddr *)&ss, &len)
                 : uv_tcp_getsockname(t, (struct sockaddr *)&ss, &len);
  if (err) return 0;
  return addr_push(L, (struct sockaddr *)&ss);
}

static void parse_addr(lua_State *L, int idx, struct sockaddr_storage *ss, const char *op) {
  const char *ip = luaL_checkstring(L, idx);
  lua_Integer port = luaL_checkinteger(L, idx + 1);
  luaL_argcheck(L, port >= 0 && port <= 65535, idx + 1, "port out of range");
  if (addr_from_ip(ip, (int)port, ss) != 0) luaL_error(L, "%s: '%s' is not an IP address", op, ip);
}

/* keepalive option: false/nil off, true 60 s, a number: seconds of idle before probes */
static unsigned keepalive_delay(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx) || (lua_isboolean(L, idx) && !lua_toboolean(L, idx))) return 0;
  if (lua_isboolean(L, idx)) return 60;
  lua_Integer d = luaL_checkinteger(L, idx);
  luaL_argcheck(L, d > 0, idx, "keepalive delay must be positive");
  return (unsigned)d;
}

/* net.tcp_connect(ip, port, nodelay, keepalive [, local_ip, local_port]) -> stream;
   net.wait_read's future completes when the connection is made or failed
   (net.connect_finish raises the error). With local_ip the socket is bound to that
   address and port (0: any) before it connects (LuaSocket's connect with locaddr). */
static int l_net_tcp_connect(lua_State *L) {
  struct sockaddr_storage ss, local;
  parse_addr(L, 1, &ss, "connect");
  int nodelay = lua_isnoneornil(L, 3) ? 1 : lua_toboolean(L, 3);
  unsigned keepalive = keepalive_delay(L, 4);
  int bind_local = !lua_isnoneornil(L, 5);
  if (bind_local) {
    if (lua_isnoneornil(L, 6)) {
      lua_settop(L, 5);
      lua_pushinteger(L, 0);
    }
    parse_addr(L, 5, &local, "bind");
  }
  lua_settop(L, 6);
  stream *s = stream_new(L, STREAM_TCP);
  if (bind_local) {
    /* bound by hand, not by uv_tcp_bind: that sets SO_REUSEADDR, so a port in use by
       another connection would fail only at connect (as EADDRNOTAVAIL); LuaSocket binds
       without it and a port in use is the bind's EADDRINUSE */
    int err = 0;
    int fd = socket(local.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      err = uv_translate_sys_error(errno);
    } else if (bind(fd, (struct sockaddr *)&local,
                    local.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                : sizeof(struct sockaddr_in)) != 0) {
      err = uv_translate_sys_error(errno);
      close(fd);
    } else if ((err = uv_tcp_open(&s->u.tcp, fd)) != 0) {
      close(fd);
    }
    if (err) {
      stream_close(s, STREAM_CLOSE_FLUSH);
      return error_raise_uv_msg(L, "bind", err, "bind: cannot bind %s port %d: %s (%s)",
                                lua_tostring(L, 5), (int)lua_tointeger(L, 6), uv_err_name(err),
                                uv_strerror(err));
    }
  }
  int err = uv_tcp_connect(&s->connect_req, &s->u.tcp, (struct sockaddr *)&ss, stream_connect_cb);
  if (err) {
    stream_close(s, STREAM_CLOSE_FLUSH);
    return error_raise_uv(L, "connect", err);
  }
  /* options after connect: libuv creates the socket there */
  uv_tcp_nodelay(&s->u.tcp, nodelay);
  if (keepalive) uv_tcp_keepalive(&s->u.tcp, 1, keepalive);
  return 1;
}

/* net.tcp_listen(ip, port, backlog, reuse_port, ipv6only) -> listener */
static int l_net_tcp_listen(lua_State *L) {
  struct sockaddr_storage ss;
  parse_addr(L, 1, &ss, "bind");
  int backlog = (int)luaL_optinteger(L, 3, 511);
  int reuse_port = lua_toboolean(L, 4);
  int v6only = lua_toboolean(L, 5);
  listener *l = listener_new(L, STREAM_TCP);
  int err = uv_tcp_init_ex(loop_get(L)->uv, &l->u.tcp, ss.ss_family);
  if (err) {
    listener_close(l);
    return error_raise_uv(L, "socket", err);
  }
  if (reuse_port) {
    uv_os_fd_t fd;
    int one = 1;
    err = uv_fileno(&l->u.handle, &fd);
    if (err == 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
      err = uv_translate_sys_error(errno);
    if (err) {
      listener_close(l);
      return error_raise_uv(L, "setsockopt", err);
    }
  }
  err = uv_tcp_bind(&l->u.tcp, (struct sockaddr *)&ss,
                    ss.ss_family == AF_INET6 && v6only ? UV_TCP_IPV6ONLY : 0);
  if (err == 0) err = listener_start(l, backlog);
  if (err) {
    listener_close(l);
    return error_raise_uv_msg(L, "bind", err, "bind: cannot listen on %s port %d: %s (%s)",
                              lua_tostring(L, 1), (int)lua_tointeger(L, 2), uv_err_name(err),
                              uv_strerror(err));
  }
  return 1;
}

/* net.tcp_options(h, nodelay, keepalive): TCP_NODELAY and keepalive (false, true: 60 s, or
   seconds of idle before probes) on a connected stream (LuaSocket's setoption) */
static int l_net_tcp_options(lua_State *L) {
  stream *s = stream_check(L, 1);
  if (s == NULL || s->close_wanted || s->kind != STREAM_TCP)
    return luaL_error(L, "setoption: not a connected TCP socket");
  int err = 0;
  if (!lua_isnoneornil(L, 2)) err = uv_tcp_nodelay(&s->u.tcp, lua_toboolean(L, 2));
  if (err == 0 && !lua_isnone(L, 3)) {
    unsigned delay = keepalive_delay(L, 3);
    err = uv_tcp_keepalive(&s->u.tcp, delay > 0, delay);
  }
  if (err) return error_raise_uv(L, "setsockopt", err);
  return 0;
}

static const luaL_Reg tcp_functions[] = {
    {"tcp_options", l_net_tcp_options},
    {"tcp_connect", l_net_tcp_connect},
    {"tcp_listen", l_net_tcp_listen},
    {NULL, NULL},
};

void tcp_open(lua_State *L) { luaL_setfuncs(L, tcp_functions, 0); }

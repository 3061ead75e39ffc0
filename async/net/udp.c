/* udp.c — UDP sockets: sendto tried at once (queued with a copy when the socket is
   busy), datagrams received into a bounded queue that recvfrom drains. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "net.h"

enum { DGRAM_MAX = 64 * 1024, QUEUE_COUNT_MAX = 1024, QUEUE_BYTES_MAX = 4 << 20 };
enum { SEND_QUEUE_MAX = 4 << 20 };
enum { UUV_READERS = 1, UUV_CLOSERS, UUV_COUNT = UUV_CLOSERS };

typedef struct dgram {
  struct dgram *next;
  struct sockaddr_storage from;
  size_t len;
  char data[];
} dgram;

typedef struct udp_sock {
  owned obj;
  uv_udp_t h;
  struct udp_sock **box;
  char *scratch; /* what libuv receives into: one datagram at most */
  dgram *first, *last;
  size_t count, bytes;
  waitset readers, closers;
  int rerr, serr;
  uint8_t receiving, connected, closing;
} udp_sock;

typedef struct send_req {
  uv_udp_send_t req;
  char data[];
} send_req;

static udp_sock *udp_check(lua_State *L) { return *(udp_sock **)luaL_checkudata(L, 1, UDP_MT); }

static int raise_closed(lua_State *L, const char *op) {
  return error_raise_uv_msg(L, op, UV_EBADF, "%s: the socket is closed", op);
}

/* ---- receiving ---------------------------------------------------------------------- */

static void udp_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  udp_sock *u = h->data;
  if (u->scratch == NULL) u->scratch = malloc(DGRAM_MAX);
  *buf = uv_buf_init(u->scratch, u->scratch ? DGRAM_MAX : 0);
}

static void udp_recv_stop(udp_sock *u) {
  if (!u->receiving) return;
  uv_udp_recv_stop(&u->h);
  u->receiving = 0;
}

static void udp_recv_cb(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                        const struct sockaddr *addr, unsigned flags) {
  (void)flags;
  udp_sock *u = h->data;
  if (nread < 0) {
    u->rerr = (int)nread;
  } else if (addr == NULL) {
    return; /* nothing more to read now */
  } else {
    dgram *d = malloc(sizeof *d + (size_t)nread);
    if (d == NULL) {
      u->rerr = UV_ENOMEM;
    } else {
      d->next = NULL;
      d->len = (size_t)nread;
      memcpy(d->data, buf->base, (size_t)nread);
      memset(&d->from, 0, sizeof d->from);
      memcpy(
          &d->from, addr,
          addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
      if (u->last)
        u->last->next = d;
      else
        u->first = d;
      u->last = d;
      u->count++;
      u->bytes += d->len;
      /* a reader that does not keep up: let the kernel drop, not our memory grow */
      if (u->count >= QUEUE_COUNT_MAX || u->bytes >= QUEUE_BYTES_MAX) udp_recv_stop(u);
    }
  }
  waitset_wake(&u->readers);
}

static void udp_recv_resume(udp_sock *u) {
  if (u->receiving || u->closing) return;
  if (u->count >= QUEUE_COUNT_MAX || u->bytes >= QUEUE_BYTES_MAX) return;
  int err = uv_udp_recv_start(&u->h, udp_alloc_cb, udp_recv_cb);
  if (err)
    u->rerr = err;
  else
    u->receiving = 1;
}

/* Pushes the datagram (light userdata 1): data, host, port. */
static int dgram_push(lua_State *L) {
  dgram *d = lua_touserdata(L, 1);
  lua_pushlstring(L, d->data, d->len);
  addr_push(L, (struct sockaddr *)&d->from);
  return 3;
}

/* net.udp_recv(u) -> data, host, port; nothing: wait. An error (an ICMP report on a
   connected socket) is raised once. */
static int l_net_udp_recv(lua_State *L) {
  udp_sock *u = udp_check(L);
  if (u == NULL || u->closing) return raise_closed(L, "recvfrom");
  dgram *d = u->first;
  if (d) {
    luaL_checkstack(L, 4, NULL);
    /* off the queue before the pushes: the collection they may run can call a finalizer
       that receives on this socket, which took this same datagram and freed it (a double
       free, then a use of freed memory, once this call went on). The pushes run in a
       protected call, so that the datagram is freed whatever they raise (a memory error
       leaked it), then raised on: the datagram is lost, as the kernel drops one. */
    u->first = d->next;
    if (u->first == NULL) u->last = NULL;
    u->count--;
    u->bytes -= d->len;
    udp_recv_resume(u);
    lua_pushcfunction(L, dgram_push);
    lua_pushlightuserdata(L, d);
    int status = lua_pcall(L, 1, 3, 0);
    free(d);
    if (status != LUA_OK) return lua_error(L);
    return 3;
  }
  if (u->rerr) {
    int err = u->rerr;
    u->rerr = 0;
    return error_raise_uv(L, "recvfrom", err);
  }
  udp_recv_resume(u);
  return 0;
}

/* net.udp_wait(u) -> a future completed by the next datagram or error. */
static int l_net_udp_wait(lua_State *L) {
  udp_sock *u = udp_check(L);
  if (u == NULL || u->closing) return raise_closed(L, "recvfrom");
  /* a misuse: at the user's line, as for a stream; a future a recvfrom in a finalizer
     could not await holds no place (waitset_awaited) */
  if (waitset_awaited(&u->readers))
    return argcheck_error(L, "recvfrom: another task is already waiting on this socket");
  udp_recv_resume(u);
  waitset_add_one(L, &u->readers, 1, UUV_READERS);
  return 1;
}

/* ---- sending ------------------------------------------------------------------------ */

static void udp_send_cb(uv_udp_send_t *req, int status) {
  udp_sock *u = req->handle->data;
  if (status < 0 && status != UV_ECANCELED && !u->serr) u->serr = status;
  free(req);
}

static int same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b) {
  if (a->ss_family != b->ss_family) return 0;
  if (a->ss_family == AF_INET) {
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
  return x->sin6_port == y->sin6_port &&
         memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
}

/* net.udp_send(u, data [, ip, port]) */
static int l_net_udp_send(lua_State *L) {
  udp_sock *u = udp_check(L);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  if (u == NULL || u->closing) return raise_closed(L, "sendto");
  if (u->serr) {
    int err = u->serr;
    u->serr = 0;
    return error_raise_uv(L, "sendto", err);
  }
  struct sockaddr_storage ss;
  const struct sockaddr *to = NULL;
  if (!lua_isnoneornil(L, 3)) {
    const char *ip = luaL_checkstring(L, 3);
    lua_Integer port = luaL_checkinteger(L, 4);
    luaL_argcheck(L, port > 0 && port <= 65535, 4, "port out of range");
    if (strcmp(ip, "localhost") == 0) { /* the one name sendto resolves: it cannot wait */
      struct sockaddr_storage me;
      int mlen = sizeof me;
      int v6 =
          uv_udp_getsockname(&u->h, (struct sockaddr *)&me, &mlen) == 0 && me.ss_family == AF_INET6;
      ip = v6 ? "::1" : "127.0.0.1";
    }
    if (addr_from_ip(ip, (int)port, &ss) != 0)
      return argcheck_error(L, "sendto: '%s' is not an IP address (resolve names with getaddrinfo)",
                            ip);
    if (u->connected) {
      struct sockaddr_storage peer;
      int plen = sizeof peer;
      if (uv_udp_getpeername(&u->h, (struct sockaddr *)&peer, &plen) == 0 && !same_addr(&peer, &ss))
        return argcheck_error(
            L, "sendto: the socket is connected to another address (its remote_addr)");
    } else {
      to = (struct sockaddr *)&ss;
    }
  } else if (!u->connected) {
    return argcheck_error(L, "sendto: no address: give host and port, or open with remote_addr");
  }
  uv_buf_t buf = uv_buf_init((char *)data, (unsigned)len);
  int n = uv_udp_try_send(&u->h, &buf, 1, to);
  if (n >= 0) return 0;
  if (n != UV_EAGAIN) return error_raise_uv(L, "sendto", n);
  if (uv_udp_get_send_queue_size(&u->h) > SEND_QUEUE_MAX)
    return error_raise_uv(L, "sendto", UV_ENOBUFS);
  send_req *r = malloc(sizeof *r + len);
  if (r == NULL) return luaL_error(L, "asyncio: out of memory");
  memcpy(r->data, data, len);
  buf = uv_buf_init(r->data, (unsigned)len);
  int err = uv_udp_send(&r->req, &u->h, &buf, 1, to, udp_send_cb);
  if (err) {
    free(r);
    return error_raise_uv(L, "sendto", err);
  }
  return 0;
}

/* ---- opening and closing ------------------------------------------------------------ */

static void udp_close_cb(uv_handle_t *h) {
  udp_sock *u = h->data;
  waitset_wake(&u->readers);
  waitset_wake(&u->closers);
  if (u->box) *u->box = NULL;
  owner_untrack(&u->obj);
  while (u->first) {
    dgram *d = u->first;
    u->first = d->next;
    free(d);
  }
  waitset_free(&u->readers);
  waitset_free(&u->closers);
  free(u->scratch);
  free(u);
}

static void udp_close(udp_sock *u) {
  if (u->closing) return;
  u->closing = 1;
  udp_recv_stop(u);
  waitset_wake(&u->readers);
  uv_close((uv_handle_t *)&u->h, udp_close_cb);
}

static void udp_shutdown_obj(owned *o) { udp_close(container_of(o, udp_sock, obj)); }

static int l_net_udp_close(lua_State *L) {
  udp_sock *u = udp_check(L);
  if (u) udp_close(u);
  return 0;
}

static int l_net_udp_is_closing(lua_State *L) {
  udp_sock *u = udp_check(L);
  lua_pushboolean(L, u == NULL || u->closing);
  return 1;
}

static int l_net_udp_wait_closed(lua_State *L) {
  udp_sock *u = udp_check(L);
  if (u == NULL) return 0;
  waitset_add(L, &u->closers, 1, UUV_CLOSERS);
  return 1;
}

static int udp_gc(lua_State *L) {
  udp_sock **box = lua_touserdata(L, 1);
  udp_sock *u = *box;
  if (u == NULL) return 0;
  *box = NULL;
  u->box = NULL;
  waitset_wake(&u->readers);
  waitset_wake(&u->closers);
  if (!u->closing) debug_report_unclosed(L, 1, "UDP socket");
  udp_close(u);
  return 0;
}

static int udp_name(lua_State *L, int peer) {
  udp_sock *u = udp_check(L);
  if (u == NULL || u->closing) return 0;
  struct sockaddr_storage ss;
  int len = sizeof ss;
  int err = peer ? uv_udp_getpeername(&u->h, (struct sockaddr *)&ss, &len)
                 : uv_udp_getsockname(&u->h, (struct sockaddr *)&ss, &len);
  if (err == UV_ENOTCONN) return 0;
  if (err) return error_raise_uv(L, peer ? "getpeername" : "getsockname", err);
  return addr_push(L, (struct sockaddr *)&ss);
}
static int l_net_udp_sockname(lua_State *L) { return udp_name(L, 0); }
static int l_net_udp_peername(lua_State *L) { return udp_name(L, 1); }

/* net.udp_fileno(u) -> the socket's descriptor, -1 once closed (LuaSocket's getfd) */
static int l_net_udp_fileno(lua_State *L) {
  udp_sock *u = udp_check(L);
  uv_os_fd_t fd = -1;
  if (u == NULL || u->closing || uv_fileno((uv_handle_t *)&u->h, &fd) != 0) fd = -1;
  lua_pushinteger(L, fd);
  return 1;
}

static int fail(lua_State *L, udp_sock *u, const char *op, int err) {
  udp_close(u);
  return error_raise_uv(L, op, err);
}

/* net.udp_open(local_ip, local_port, remote_ip, remote_port, reuse_port, broadcast) -> u.
   Without a local address it binds the wildcard address of the remote's family. */
static int l_net_udp_open(lua_State *L) {
  struct sockaddr_storage local, remote;
  int has_local = !lua_isnoneornil(L, 1), has_remote = !lua_isnoneornil(L, 3);
  int reuse_port = lua_toboolean(L, 5), broadcast = lua_toboolean(L, 6);
  if (has_remote &&
      addr_from_ip(luaL_checkstring(L, 3), (int)luaL_checkinteger(L, 4), &remote) != 0)
    return luaL_error(L, "open_udp: remote address '%s' is not an IP address", lua_tostring(L, 3));
  if (has_local) {
    if (addr_from_ip(luaL_checkstring(L, 1), (int)luaL_optinteger(L, 2, 0), &local) != 0)
      return luaL_error(L, "open_udp: local address '%s' is not an IP address", lua_tostring(L, 1));
  } else {
    int v6 = has_remote && remote.ss_family == AF_INET6;
    addr_from_ip(v6 ? "::" : "0.0.0.0", 0, &local);
  }
  if (has_remote && remote.ss_family != local.ss_family)
    return luaL_error(L, "open_udp: local and remote addresses are of different families");
  lua_settop(L, 6);
  owner_list *list = owner_list_get(L);
  udp_sock **box = lua_newuserdatauv(L, sizeof *box, UUV_COUNT);
  *box = NULL;
  luaL_setmetatable(L, UDP_MT);
  udp_sock *u = calloc(1, sizeof *u);
  if (u == NULL) return luaL_error(L, "asyncio: out of memory");
  int err = uv_udp_init_ex(loop_get(L)->uv, &u->h, local.ss_family);
  if (err) {
    free(u);
    return error_raise_uv(L, "socket", err);
  }
  u->h.data = u;
  u->box = box;
  *box = u;
  owner_track(list, &u->obj, udp_shutdown_obj);
  debug_record(L, -1);
  if (reuse_port) {
    uv_os_fd_t fd;
    int one = 1;
    err = uv_fileno((uv_handle_t *)&u->h, &fd);
    if (err == 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
      err = uv_translate_sys_error(errno);
    if (err) return fail(L, u, "setsockopt", err);
  }
  err = uv_udp_bind(&u->h, (struct sockaddr *)&local, 0);
  if (err) return fail(L, u, "bind", err);
  if (broadcast && (err = uv_udp_set_broadcast(&u->h, 1)) != 0)
    return fail(L, u, "setsockopt", err);
  if (has_remote) {
    err = uv_udp_connect(&u->h, (struct sockaddr *)&remote);
    if (err) return fail(L, u, "connect", err);
    u->connected = 1;
  }
  return 1;
}

static int udp_tostring(lua_State *L) {
  udp_sock *u = udp_check(L);
  lua_pushfstring(L, "<udp socket%s>", u == NULL || u->closing ? " closed" : "");
  return 1;
}

/* net.udp_idle(u): the socket does not keep the program running by itself (a LuaSocket
   UDP object's: see luasocket.c's net.socket_idle). */
static int l_net_udp_idle(lua_State *L) {
  udp_sock *u = udp_check(L);
  if (u != NULL && !u->closing) uv_unref((uv_handle_t *)&u->h);
  return 0;
}

static const luaL_Reg udp_functions[] = {
    {"udp_open", l_net_udp_open},
    {"udp_idle", l_net_udp_idle},
    {"udp_send", l_net_udp_send},
    {"udp_recv", l_net_udp_recv},
    {"udp_wait", l_net_udp_wait},
    {"udp_close", l_net_udp_close},
    {"udp_is_closing", l_net_udp_is_closing},
    {"udp_wait_closed", l_net_udp_wait_closed},
    {"udp_sockname", l_net_udp_sockname},
    {"udp_peername", l_net_udp_peername},
    {"udp_fileno", l_net_udp_fileno},
    {NULL, NULL},
};

/* print_tasks: a task waiting in recvfrom or wait_closed (see debug.c) */
static int describe_wait(lua_State *L, future *f) {
  for (owned *o = owner_list_first(owner_list_get(L)); o; o = o->next) {
    if (o->shutdown != udp_shutdown_obj) continue;
    udp_sock *u = container_of(o, udp_sock, obj);
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (waitset_holds(&u->readers, f) &&
        uv_udp_getsockname(&u->h, (struct sockaddr *)&ss, &len) == 0 &&
        addr_push(L, (struct sockaddr *)&ss) == 2 && lua_isstring(L, -2)) {
      lua_pushfstring(
          L, strchr(lua_tostring(L, -2), ':') ? "recvfrom on [%s]:%d" : "recvfrom on %s:%d",
          lua_tostring(L, -2), (int)lua_tointeger(L, -1));
      lua_replace(L, -3);
      lua_pop(L, 1);
      return 1;
    }
    if (waitset_holds(&u->readers, f) || waitset_holds(&u->closers, f)) {
      lua_pushstring(L, waitset_holds(&u->readers, f) ? "recvfrom on a UDP socket"
                                                      : "wait_closed on a UDP socket");
      return 1;
    }
  }
  return 0;
}

void udp_open(lua_State *L) {
  debug_add_wait_describer(describe_wait);
  luaL_newmetatable(L, UDP_MT);
  lua_pushcfunction(L, udp_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, udp_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  luaL_setfuncs(L, udp_functions, 0);
}

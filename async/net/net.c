/* net.c — the network layer's entry: core.net, filled by each of its files, and what
   a task waiting on a socket waits for, in words (print_tasks, core/debug.c). */
#include <signal.h>
#include <string.h>

#include "net.h"

/* Pushes "WHAT on ADDRESS": the peer of a connection, the address a server listens on. */
static void push_wait_text(lua_State *L, const char *what, net_handle *u, int kind, int peer) {
  char path[1024];
  size_t len = sizeof path;
  if (kind == STREAM_TCP && tcp_push_name(L, &u->tcp, peer) == 2 && lua_isstring(L, -2)) {
    lua_pushfstring(L, strchr(lua_tostring(L, -2), ':') ? "%s on [%s]:%d" : "%s on %s:%d", what,
                    lua_tostring(L, -2), (int)lua_tointeger(L, -1));
    lua_replace(L, -3);
    lua_pop(L, 1);
    return;
  }
  int err =
      peer ? uv_pipe_getpeername(&u->pipe, path, &len) : uv_pipe_getsockname(&u->pipe, path, &len);
  if (kind == STREAM_PIPE && err == 0 && len > 0)
    lua_pushfstring(L, "%s on %s", what, path);
  else
    lua_pushfstring(L, "%s on a %s", what, kind == STREAM_TCP ? "TCP stream" : "pipe");
}

/* debug.c's describer for the futures of this layer's wait sets. */
static int describe_wait(lua_State *L, future *f) {
  for (owned *o = owner_list_first(owner_list_get(L)); o; o = o->next) {
    const char *what = stream_wait_name(o, f);
    if (what) {
      stream *s = container_of(o, stream, obj);
      push_wait_text(L, what, &s->u, s->kind, 1);
      return 1;
    }
    if ((what = listener_wait_name(o, f))) {
      listener *l = container_of(o, listener, obj);
      push_wait_text(L, what, &l->u, l->kind, 0);
      return 1;
    }
  }
  return 0;
}

void net_open(lua_State *L) {
  debug_add_wait_describer(describe_wait);
  /* a write to a socket the peer closed must fail with EPIPE, not kill the process
     (libuv writes with write(2)); a host's own SIGPIPE handler is left alone */
  struct sigaction sa;
  if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) signal(SIGPIPE, SIG_IGN);

  lua_newtable(L);
  streamlib_open(L);
  listener_open(L);
  tcp_open(L);
  tls_open(L);
  x509_open(L);
  pipe_open(L);
  udp_open(L);
  dns_open(L);
  luasocket_open(L);
  http_open(L);
  http_server_open(L);
  lua_setfield(L, -2, "net");
}

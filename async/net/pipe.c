/* pipe.c — Unix domain sockets: connecting to a path, listening on one (a stale socket
   file left by a dead server is replaced; the file is removed when the server closes). */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "net.h"

/* Pushes the path of a Unix socket's local (peer = 0) or remote end ("" if unnamed). */
int pipe_push_name(lua_State *L, uv_pipe_t *p, int peer) {
  char buf[1024];
  size_t len = sizeof buf;
  buf[0] = '\0'; /* libuv 1.44 reads it for an unnamed end, having copied nothing into it */
  int err = peer ? uv_pipe_getpeername(p, buf, &len) : uv_pipe_getsockname(p, buf, &len);
  if (err == UV_ENOBUFS) return luaL_error(L, "socket path too long");
  if (err) return error_raise_uv(L, peer ? "getpeername" : "getsockname", err);
  lua_pushlstring(L, buf, len);
  return 1;
}

/* libuv 1.44 cuts a path longer than sun_path silently: refuse it instead. */
static const char *check_path(lua_State *L, const char *op) {
  size_t len;
  const char *path = luaL_checklstring(L, 1, &len);
  if (len >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
    error_raise_uv_msg(L, op, UV_ENAMETOOLONG,
                       "%s: socket path too long (%d bytes, at most %d): %s", op, (int)len,
                       (int)sizeof(((struct sockaddr_un *)0)->sun_path) - 1, path);
  }
  return path;
}

/* net.pipe_connect(path) -> stream; net.wait_read's future completes when connected. */
static int l_net_pipe_connect(lua_State *L) {
  const char *path = check_path(L, "connect");
  stream *s = stream_new(L, STREAM_PIPE);
  uv_pipe_connect(&s->connect_req, &s->u.pipe, path, stream_connect_cb);
  return 1;
}

/* net.pipe_listen(path, backlog) -> listener */
static int l_net_pipe_listen(lua_State *L) {
  const char *path = check_path(L, "bind");
  int backlog = (int)luaL_optinteger(L, 2, 511);
  listener *l = listener_new(L, STREAM_PIPE);
  int err = uv_pipe_init(loop_get(L)->uv, &l->u.pipe, 0);
  if (err) {
    listener_close(l);
    return error_raise_uv(L, "socket", err);
  }
  struct stat st;
  if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path);
  err = uv_pipe_bind(&l->u.pipe, path);
  if (err == 0) {
    l->unlink_path = strdup(path);
    err = listener_start(l, backlog);
  }
  if (err) {
    listener_close(l);
    return error_raise_uv_msg(L, "bind", err, "bind: cannot listen on %s: %s (%s)", path,
                              uv_err_name(err), uv_strerror(err));
  }
  return 1;
}

static const luaL_Reg pipe_functions[] = {
    {"pipe_connect", l_net_pipe_connect},
    {"pipe_listen", l_net_pipe_listen},
    {NULL, NULL},
};

void pipe_open(lua_State *L) { luaL_setfuncs(L, pipe_functions, 0); }

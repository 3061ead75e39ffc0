/* process.c — child processes on uv_spawn: stdio as stream pipes, exit status, signals. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define PROCESS_MT "asyncio.Process"

/* What opts.stdin/stdout/stderr may say (the values of asyncio.PIPE, STDOUT, DEVNULL, as
   Python's); a number >= 0 is a descriptor of ours for the child to inherit; nil inherits. */
enum { STDIO_PIPE = -1, STDIO_STDOUT = -2, STDIO_DEVNULL = -3, STDIO_INHERIT = -4 };

typedef struct proc_box proc_box;

/* The libuv side: lives until the handle's close callback, which comes after the exit
   (or at lua_close, through the net list). */
typedef struct proc {
  net_obj obj;
  uv_process_t h;
  proc_box *box; /* NULL once the Lua object is gone */
  uint8_t exited, closing;
} proc;

/* The Lua side: its user value is the Future the exit completes. */
struct proc_box {
  proc *p;
  future *exit;
  int pid;
  int returncode;
  uint8_t exited;
};

static void proc_close_cb(uv_handle_t *h) {
  proc *p = container_of((uv_process_t *)h, proc, h);
  if (p->box) p->box->p = NULL;
  net_untrack(&p->obj);
  free(p);
}

static void proc_close(proc *p) {
  if (p->closing) return;
  p->closing = 1;
  uv_close((uv_handle_t *)&p->h, proc_close_cb);
}

/* Python's returncode: the exit status, or minus the signal that killed the child. */
static void proc_exit_cb(uv_process_t *h, int64_t status, int term_signal) {
  proc *p = container_of(h, proc, h);
  p->exited = 1;
  proc_box *box = p->box;
  if (box) {
    box->exited = 1;
    box->returncode = term_signal ? -term_signal : (int)status;
    future *f = box->exit;
    if (f->state == FUT_PENDING) {
      f->nresults = 0;
      f->state = FUT_RESULT;
      future_wake_all(f->loop, f);
    }
  }
  proc_close(p);
}

/* At lua_close (net list): a child still running is killed, as Python does when its
   transport goes away; its handle closes now. */
static void proc_shutdown_obj(net_obj *o) {
  proc *p = container_of(o, proc, obj);
  if (!p->exited && !p->closing) uv_process_kill(&p->h, SIGKILL);
  proc_close(p);
}

static int proc_gc(lua_State *L) {
  proc_box *box = lua_touserdata(L, 1);
  if (box->p) box->p->box = NULL; /* the child runs on; its exit closes the handle */
  box->p = NULL;
  return 0;
}

static proc_box *box_check(lua_State *L, int idx) { return luaL_checkudata(L, idx, PROCESS_MT); }

/* ---- spawning ------------------------------------------------------------------- */

static int stdio_mode(lua_State *L, int opts, const char *name, int fd) {
  if (lua_getfield(L, opts, name) == LUA_TNIL) {
    lua_pop(L, 1);
    return STDIO_INHERIT;
  }
  int isnum;
  lua_Integer v = lua_tointegerx(L, -1, &isnum);
  lua_pop(L, 1);
  if (!isnum || v < STDIO_DEVNULL || (v == STDIO_STDOUT && fd != 2))
    luaL_error(L, "subprocess: %s must be asyncio.PIPE, asyncio.DEVNULL%s, a file descriptor "
               "or nil (inherit)", name, fd == 2 ? ", asyncio.STDOUT" : "");
  return (int)v;
}

/* NULL-terminated array of the strings of the list at idx (anchored by it). */
static char **string_array(lua_State *L, int idx, const char *what) {
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  char **v = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *v, 0);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, i);
    if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
      luaL_error(L, "subprocess: %s must be strings, got %s", what, luaL_typename(L, -1));
    lua_pushvalue(L, -1);
    lua_tostring(L, -1); /* numbers become strings in the copy the list now holds */
    lua_rawseti(L, idx, i);
    lua_rawgeti(L, idx, i);
    v[i - 1] = (char *)lua_tostring(L, -1);
    lua_pop(L, 2);
  }
  v[n] = NULL;
  return v;
}

/* The environment table {NAME = value} as "NAME=value" strings, anchored in a new list
   at the top of the stack (below the returned array's userdata). */
static char **env_array(lua_State *L, int envidx) {
  lua_newtable(L);
  int list = lua_gettop(L);
  lua_Integer n = 0;
  lua_pushnil(L);
  while (lua_next(L, envidx)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_error(L, "subprocess: env keys must be strings, got %s", luaL_typename(L, -2));
    if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
      luaL_error(L, "subprocess: env value of %s must be a string, got %s", lua_tostring(L, -2),
                 luaL_typename(L, -1));
    lua_pushfstring(L, "%s=%s", lua_tostring(L, -2), lua_tostring(L, -1));
    lua_rawseti(L, list, ++n);
    lua_pop(L, 1);
  }
  return string_array(L, list, "env values");
}

/* process_spawn(file, args, opts) -> process, pid, stdin, stdout, stderr (stream userdata
   or nil). args[1] is the program's name as it sees it. Raises OSError (errno ENOENT for a
   program that does not exist). */
static int process_spawn(lua_State *L) {
  const char *file = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  loop_state *loop = loop_get(L);
  net_list *list = net_list_get(L);
  int mode[3] = {stdio_mode(L, 3, "stdin", 0), stdio_mode(L, 3, "stdout", 1),
                 stdio_mode(L, 3, "stderr", 2)};

  uv_process_options_t o;
  memset(&o, 0, sizeof o);
  o.file = file;
  o.args = string_array(L, 2, "arguments");
  o.exit_cb = proc_exit_cb;
  if (lua_getfield(L, 3, "cwd") != LUA_TNIL) o.cwd = luaL_checkstring(L, -1);
  if (lua_getfield(L, 3, "env") != LUA_TNIL) {
    luaL_checktype(L, -1, LUA_TTABLE);
    o.env = env_array(L, lua_gettop(L));
  }

  /* the process userdata and its exit future, then a slot per standard stream */
  proc_box *box = lua_newuserdatauv(L, sizeof *box, 1);
  memset(box, 0, sizeof *box);
  luaL_setmetatable(L, PROCESS_MT);
  int boxidx = lua_gettop(L);
  box->exit = future_new(L, loop);
  lua_setiuservalue(L, boxidx, 1);

  uv_stdio_container_t stdio[3];
  stream *pipes[3] = {NULL, NULL, NULL};
  int merged_fd = -1; /* stderr = STDOUT into a pipe: the child's end, shared */
  for (int i = 0; i < 3; i++) {
    int m = mode[i];
    if (i == 2 && m == STDIO_STDOUT && mode[1] != STDIO_PIPE) /* where stdout goes */
      m = mode[1] == STDIO_INHERIT ? 1 : mode[1];
    if (m == STDIO_PIPE || (i == 2 && m == STDIO_STDOUT)) {
      if (m == STDIO_STDOUT) {
        stdio[2].flags = UV_INHERIT_FD;
        stdio[2].data.fd = merged_fd;
        lua_pushnil(L);
        continue;
      }
      pipes[i] = stream_new(L, STREAM_PIPE);
      if (i == 1 && mode[2] == STDIO_STDOUT) {
        uv_os_sock_t fds[2];
        int err = uv_socketpair(SOCK_STREAM, 0, fds, 0, 0);
        if (err == 0 && (err = uv_pipe_open(&pipes[1]->u.pipe, fds[0])) != 0) {
          close(fds[0]);
          close(fds[1]);
        }
        if (err) {
          for (int j = 0; j <= i; j++)
            if (pipes[j]) stream_close(pipes[j]);
          return error_raise_uv(L, "socketpair", err);
        }
        merged_fd = fds[1];
        stdio[1].flags = UV_INHERIT_FD;
        stdio[1].data.fd = merged_fd;
        continue;
      }
      stdio[i].flags = UV_CREATE_PIPE | (i == 0 ? UV_READABLE_PIPE : UV_WRITABLE_PIPE);
      stdio[i].data.stream = &pipes[i]->u.stream;
    } else {
      if (m == STDIO_DEVNULL) {
        stdio[i].flags = UV_IGNORE;
      } else {
        stdio[i].flags = UV_INHERIT_FD;
        stdio[i].data.fd = m == STDIO_INHERIT ? i : m;
      }
      lua_pushnil(L);
    }
  }
  o.stdio = stdio;
  o.stdio_count = 3;

  proc *p = calloc(1, sizeof *p);
  if (p == NULL) {
    if (merged_fd >= 0) close(merged_fd);
    for (int i = 0; i < 3; i++)
      if (pipes[i]) stream_close(pipes[i]);
    return luaL_error(L, "subprocess: out of memory");
  }
  net_track(list, &p->obj, proc_shutdown_obj);
  int err = uv_spawn(loop->uv, &p->h, &o);
  if (merged_fd >= 0) close(merged_fd); /* the child has its copy */
  if (err) {
    p->exited = 1;
    proc_close(p);
    for (int i = 0; i < 3; i++)
      if (pipes[i]) stream_close(pipes[i]);
    error_push_uv(L, "spawn", err);
    lua_pushfstring(L, "spawn '%s': %s (%s)", file, uv_err_name(err), uv_strerror(err));
    lua_setfield(L, -2, "message");
    lua_pushstring(L, file);
    lua_setfield(L, -2, "filename");
    return lua_error(L);
  }
  p->box = box;
  box->p = p;
  box->pid = p->h.pid;
  for (int i = 0; i < 3; i++) {
    if (pipes[i] == NULL) continue;
    pipes[i]->open = 1;
    if (i > 0) stream_resume(pipes[i]); /* read eagerly, as Python does, up to the limit */
  }
  lua_pushinteger(L, box->pid);
  lua_insert(L, boxidx + 1);
  return 5;
}

/* ---- the process object ---------------------------------------------------------- */

/* process_returncode(p) -> the return code, or nil while the child runs */
static int process_returncode(lua_State *L) {
  proc_box *box = box_check(L, 1);
  if (!box->exited) return 0;
  lua_pushinteger(L, box->returncode);
  return 1;
}

/* process_exit_future(p) -> the Future its exit completes */
static int process_exit_future(lua_State *L) {
  box_check(L, 1);
  lua_getiuservalue(L, 1, 1);
  return 1;
}

/* process_send_signal(p, sig): nothing once the child has exited (its pid may be reused). */
static int process_send_signal(lua_State *L) {
  proc_box *box = box_check(L, 1);
  int signum = signal_check(L, 2, "send_signal");
  if (box->exited || box->p == NULL || box->p->exited) return 0;
  int err = uv_process_kill(&box->p->h, signum);
  if (err && err != UV_ESRCH) return error_raise_uv(L, "kill", err);
  return 0;
}

/* process_pipe_settled(h) -> true when nothing more will come into the reader's buffer
   without someone reading: end of stream, an error, closed, or the buffer full. Second
   result: another task is waiting to read from it (it drains the pipe). */
static int process_pipe_settled(lua_State *L) {
  stream *s = stream_check(L, 1);
  lua_pushboolean(L, s == NULL || s->eof || s->rerr || s->close_wanted || s->rb.len >= s->limit);
  lua_pushboolean(L, s != NULL && waitset_pending(&s->readers));
  return 2;
}

static int process_tostring(lua_State *L) {
  proc_box *box = box_check(L, 1);
  if (box->exited)
    lua_pushfstring(L, "<Process %d returncode=%d>", box->pid, box->returncode);
  else
    lua_pushfstring(L, "<Process %d running>", box->pid);
  return 1;
}

static const luaL_Reg process_functions[] = {
    {"process_spawn", process_spawn},
    {"process_returncode", process_returncode},
    {"process_exit_future", process_exit_future},
    {"process_send_signal", process_send_signal},
    {"process_pipe_settled", process_pipe_settled},
    {NULL, NULL},
};

/* Adds the process primitives to the table on top (the core). */
void process_open(lua_State *L) {
  luaL_newmetatable(L, PROCESS_MT);
  lua_pushcfunction(L, proc_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, process_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  luaL_setfuncs(L, process_functions, 0);
}

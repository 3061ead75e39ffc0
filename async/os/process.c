/* process.c — child processes on uv_spawn: stdio as stream pipes, exit status, signals,
   and only the descriptors the child is given (Python's close_fds, pass_fds). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "os.h"
#include "net/net.h"

#define PROCESS_MT "asyncio.Process"

/* What opts.stdin/stdout/stderr may say (the values of asyncio.PIPE, STDOUT, DEVNULL, as
   Python's); a number >= 0 is a descriptor of ours for the child to inherit; nil inherits. */
enum { STDIO_PIPE = -1, STDIO_STDOUT = -2, STDIO_DEVNULL = -3, STDIO_INHERIT = -4 };

typedef struct proc_box proc_box;

/* The libuv side: lives until the handle's close callback, which comes after the exit
   (or at lua_close, through the net list). */
typedef struct proc {
  owned obj;
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
  owner_untrack(&p->obj);
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
      future_complete(f, FUT_RESULT);
    }
  }
  proc_close(p);
}

/* At lua_close (net list): a child still running is killed, as Python does when its
   transport goes away; its handle closes now. */
static void proc_shutdown_obj(owned *o) {
  proc *p = container_of(o, proc, obj);
  if (!p->exited && !p->closing) uv_process_kill(&p->h, SIGKILL);
  proc_close(p);
}

static int proc_gc(lua_State *L) {
  proc_box *box = lua_touserdata(L, 1);
  if (!box->exited) {
    lua_pushfstring(L, "process %d (still running)", box->pid);
    debug_report_unclosed(L, 1, lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  if (box->p) box->p->box = NULL; /* the child runs on; its exit closes the handle */
  box->p = NULL;
  return 0;
}

static proc_box *box_check(lua_State *L, int idx) { return luaL_checkudata(L, idx, PROCESS_MT); }

/* ---- descriptors the child inherits --------------------------------------------- */

/* libuv has no close_fds and runs none of our code in the child, so the parent does it:
   for the length of uv_spawn, every descriptor >= 3 that the child is not given is marked
   close-on-exec, the pass_fds are made inheritable, and afterwards exactly the flags that
   were changed are put back. The child gets its stdio by libuv's dup2, which does not
   carry FD_CLOEXEC, so the descriptors given as opts.stdin/stdout/stderr are marked too:
   the child has them at 0-2 only, as in Python. */

typedef struct fd_change {
  int fd;
  int was_cloexec;
} fd_change;

typedef struct fd_marks {
  const int *keep; /* pass_fds, sorted */
  size_t nkeep;
  fd_change *changed;
  size_t n, cap;
  int failed; /* errno of a change that could not be made or recorded */
} fd_marks;

/* Another Lua state on another thread could spawn at the same time: its marks and ours
   must not interleave (one would restore what the other is relying on). */
static pthread_mutex_t spawn_lock = PTHREAD_MUTEX_INITIALIZER;

static int fd_compare(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

static int fd_kept(const fd_marks *m, int fd) {
  return m->nkeep && bsearch(&fd, m->keep, m->nkeep, sizeof *m->keep, fd_compare) != NULL;
}

/* Sets fd's FD_CLOEXEC to `cloexec`, remembering its previous value if that changed it.
   A descriptor that is not open (closed meanwhile, or one valgrind keeps for itself) is
   nothing to hide. */
static void fd_set_cloexec(fd_marks *m, int fd, int cloexec) {
  int flags = fcntl(fd, F_GETFD);
  if (flags < 0 || !(flags & FD_CLOEXEC) == !cloexec) return;
  if (m->n == m->cap) {
    size_t cap = m->cap ? 2 * m->cap : 64;
    fd_change *c = realloc(m->changed, cap * sizeof *c);
    if (c == NULL) {
      m->failed = ENOMEM;
      return;
    }
    m->changed = c;
    m->cap = cap;
  }
  if (fcntl(fd, F_SETFD, cloexec ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC) < 0) {
    if (errno != EBADF) m->failed = errno;
    return;
  }
  m->changed[m->n++] = (fd_change){fd, !cloexec};
}

static void fd_hide(fd_marks *m, int fd, int skip) {
  if (fd >= 3 && fd != skip && !fd_kept(m, fd)) fd_set_cloexec(m, fd, 1);
}

/* Marks close-on-exec every open descriptor >= 3 but the kept ones: those listed in
   /proc/self/fd (except the listing's own), else every number below the soft
   RLIMIT_NOFILE (what can be open unless the limit was lowered after opening). */
static void fd_hide_all(fd_marks *m) {
  DIR *dir = opendir("/proc/self/fd");
  if (dir) {
    int own = dirfd(dir);
    struct dirent *e;
    while (!m->failed && (e = readdir(dir)) != NULL) {
      char *end;
      long fd = strtol(e->d_name, &end, 10);
      if (end != e->d_name && *end == '\0' && fd <= INT_MAX) fd_hide(m, (int)fd, own);
    }
    closedir(dir);
    return;
  }
  struct rlimit rl;
  int max = 1024;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
    max = rl.rlim_cur > INT_MAX ? INT_MAX : (int)rl.rlim_cur;
  for (int fd = 3; fd < max && !m->failed; fd++) fd_hide(m, fd, -1);
}

/* Puts back the flags that were changed, newest first. */
static void fd_restore(fd_marks *m) {
  while (m->n > 0) {
    fd_change c = m->changed[--m->n];
    int flags = fcntl(c.fd, F_GETFD);
    if (flags >= 0) fcntl(c.fd, F_SETFD, c.was_cloexec ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC);
  }
  free(m->changed);
  m->changed = NULL;
  m->cap = 0;
}

/* Prepares the descriptors for uv_spawn: the kept ones inheritable (0 or EBADF naming a
   kept descriptor that is not open, in *bad), the others hidden unless close_fds is off.
   Returns 0 or an errno; on failure nothing is left changed. */
static int fd_prepare(fd_marks *m, int close_fds, int *bad) {
  for (size_t i = 0; i < m->nkeep; i++) {
    int fd = m->keep[i];
    if (fcntl(fd, F_GETFD) < 0) {
      *bad = fd;
      fd_restore(m);
      return EBADF;
    }
    if (fd >= 3) fd_set_cloexec(m, fd, 0);
  }
  if (close_fds && !m->failed) fd_hide_all(m);
  int err = m->failed;
  if (err) fd_restore(m);
  return err;
}

/* opts.pass_fds as a sorted array (anchored on the stack as a userdata), *n its length.
   subprocess.lua has checked it; this only refuses what would make no descriptor. */
static int *pass_fds_array(lua_State *L, int opts, size_t *n) {
  *n = 0;
  if (lua_getfield(L, opts, "pass_fds") == LUA_TNIL) return NULL;
  int list = lua_gettop(L);
  luaL_checktype(L, list, LUA_TTABLE);
  size_t len = (size_t)lua_rawlen(L, list);
  int *fds = lua_newuserdatauv(L, (len ? len : 1) * sizeof *fds, 0);
  for (size_t i = 0; i < len; i++) {
    int isnum;
    lua_rawgeti(L, list, (lua_Integer)i + 1);
    lua_Integer fd = lua_tointegerx(L, -1, &isnum);
    lua_pop(L, 1);
    if (!isnum || fd < 0 || fd > INT_MAX)
      luaL_error(L, "subprocess: pass_fds[%d] must be a file descriptor (an integer >= 0)",
                 (int)i + 1);
    fds[i] = (int)fd;
  }
  qsort(fds, len, sizeof *fds, fd_compare);
  *n = len;
  return fds;
}

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
    luaL_error(L,
               "subprocess: %s must be asyncio.PIPE, asyncio.DEVNULL%s, a file descriptor "
               "or nil (inherit)",
               name, fd == 2 ? ", asyncio.STDOUT" : "");
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

/* Raises the OSError of a spawn that failed, naming the program (and what else is known). */
static int spawn_error(lua_State *L, const char *file, int uverr, const char *detail) {
  error_push_uv_msg(L, "spawn", uverr, "spawn '%s': %s%s (%s)", file, detail, uv_err_name(uverr),
                    uv_strerror(uverr));
  lua_pushstring(L, file);
  lua_setfield(L, -2, "filename");
  return lua_error(L);
}

/* l_core_process_spawn(file, args, opts) -> process, pid, stdin, stdout, stderr (stream userdata
   or nil). args[1] is the program's name as it sees it. Raises OSError (errno ENOENT for a
   program that does not exist, EBADF for a pass_fds descriptor that is not open). */
static int l_core_process_spawn(lua_State *L) {
  const char *file = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  loop_state *loop = loop_get(L);
  owner_list *list = owner_list_get(L);
  int mode[3] = {stdio_mode(L, 3, "stdin", 0), stdio_mode(L, 3, "stdout", 1),
                 stdio_mode(L, 3, "stderr", 2)};
  fd_marks marks = {0};
  marks.keep = pass_fds_array(L, 3, &marks.nkeep);
  int close_fds = lua_getfield(L, 3, "close_fds") == LUA_TNIL || lua_toboolean(L, -1);

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
  debug_record(L, boxidx);
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
            if (pipes[j]) stream_close(pipes[j], STREAM_CLOSE_FLUSH);
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
      if (pipes[i]) stream_close(pipes[i], STREAM_CLOSE_FLUSH);
    return luaL_error(L, "subprocess: out of memory");
  }
  /* no Lua error may be raised from here until the flags are restored */
  pthread_mutex_lock(&spawn_lock);
  int bad_fd = -1;
  int err = fd_prepare(&marks, close_fds, &bad_fd);
  if (err == 0) {
    owner_track(list, &p->obj, proc_shutdown_obj);
    err = uv_spawn(loop->uv, &p->h, &o);
    fd_restore(&marks);
  } else {
    free(p);
    p = NULL;
    err = -err; /* libuv's errors are minus errno */
  }
  pthread_mutex_unlock(&spawn_lock);
  if (merged_fd >= 0) close(merged_fd); /* the child has its copy */
  if (err) {
    if (p) {
      p->exited = 1;
      proc_close(p);
    }
    for (int i = 0; i < 3; i++)
      if (pipes[i]) stream_close(pipes[i], STREAM_CLOSE_FLUSH);
    if (bad_fd < 0) return spawn_error(L, file, err, p ? "" : "marking descriptors: ");
    char detail[64];
    snprintf(detail, sizeof detail, "pass_fds: descriptor %d is not open: ", bad_fd);
    return spawn_error(L, file, err, detail);
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

/* l_core_process_returncode(p) -> the return code, or nil while the child runs */
static int l_core_process_returncode(lua_State *L) {
  proc_box *box = box_check(L, 1);
  if (!box->exited) return 0;
  lua_pushinteger(L, box->returncode);
  return 1;
}

/* l_core_process_exit_future(p) -> the Future its exit completes */
static int l_core_process_exit_future(lua_State *L) {
  box_check(L, 1);
  lua_getiuservalue(L, 1, 1);
  return 1;
}

/* l_core_process_send_signal(p, sig): nothing once the child has exited (its pid may be reused). */
static int l_core_process_send_signal(lua_State *L) {
  proc_box *box = box_check(L, 1);
  int signum = signal_check(L, 2, "send_signal");
  if (box->exited || box->p == NULL || box->p->exited) return 0;
  int err = uv_process_kill(&box->p->h, signum);
  if (err && err != UV_ESRCH) return error_raise_uv(L, "kill", err);
  return 0;
}

/* l_core_process_pipe_settled(h) -> true when nothing more will come into the reader's buffer
   without someone reading: end of stream, an error, closed, or the buffer full. Second
   result: another task is waiting to read from it (it drains the pipe). */
static int l_core_process_pipe_settled(lua_State *L) {
  stream *s = stream_check(L, 1);
  lua_pushboolean(L, s == NULL || s->eof || s->rerr || s->close_wanted || s->rb.len >= s->limit);
  lua_pushboolean(L, s != NULL && waitset_pending(&s->readers));
  return 2;
}

/* process_pipe_handover(h) -> the descriptor of the stream h for another child's stdin,
   its reading stopped, or nil when the data must be copied through the loop instead:
   some is already buffered, it has ended, or it is TLS. The caller closes the stream
   once the child has its copy. */
static int l_core_process_pipe_handover(lua_State *L) {
  stream *s = stream_check(L, 1);
  uv_os_fd_t fd;
  if (s == NULL || s->close_wanted) return luaL_error(L, "the stream is closed");
  if (waitset_pending(&s->readers)) return luaL_error(L, "another task is reading from it");
  if (s->rb.len > 0 || s->eof || s->rerr || s->tls || uv_fileno(&s->u.handle, &fd) != 0) {
    lua_pushnil(L);
    return 1;
  }
  stream_pause(s);
  lua_pushinteger(L, fd);
  return 1;
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
    {"process_spawn", l_core_process_spawn},
    {"process_returncode", l_core_process_returncode},
    {"process_exit_future", l_core_process_exit_future},
    {"process_send_signal", l_core_process_send_signal},
    {"process_pipe_settled", l_core_process_pipe_settled},
    {"process_pipe_handover", l_core_process_pipe_handover},
    {NULL, NULL},
};

/* Adds the process primitives to the table on top (the core). */
/* print_tasks: a task waiting for a process to exit (see debug.c) */
static int describe_wait(lua_State *L, future *f) {
  for (owned *o = owner_list_first(owner_list_get(L)); o; o = o->next) {
    if (o->shutdown != proc_shutdown_obj) continue;
    proc *p = container_of(o, proc, obj);
    if (p->box && p->box->exit == f) {
      lua_pushfstring(L, "process %d to exit", p->box->pid);
      return 1;
    }
  }
  return 0;
}

void process_open(lua_State *L) {
  debug_add_wait_describer(describe_wait);
  luaL_newmetatable(L, PROCESS_MT);
  lua_pushcfunction(L, proc_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, process_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  luaL_setfuncs(L, process_functions, 0);
}

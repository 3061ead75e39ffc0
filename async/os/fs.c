/* fs.c — asyncio.fs on libuv's thread pool: file requests and file objects. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "os.h"

#define FSREQ_MT "asyncio.fs.request"
#define FILE_MT "asyncio.fs.File"

/* Largest single read or write: longer ones are split by the Lua side. */
#define FS_READ_MAX ((size_t)1 << 26)

/* A file call in flight (request.c): it owns itself and is freed by req_cb, which hands
   the outcome to the Lua object (fs_obj) or, when nobody will take it (the object was
   collected, the awaiting task cancelled, the state closed), closes a file it opened. */
typedef struct fs_req {
  request base;
  uv_fs_t req;
  loop_state *loop; /* not touched once the state is closed (REQUEST_CLOSED) */
  char *buf;        /* read buffer, or a copy of the data being written */
  uv_file closing;  /* what a close closes: done here if the close was cancelled */
} fs_req;

/* The Lua object of a call: its outcome, read by l_fs_result. User value RUV_FUTURE is
   completed without values when the outcome is there. */
typedef struct fs_obj {
  request *pending;
  loop_state *loop;
  ssize_t result; /* bytes, a descriptor, a count of entries, or -errno */
  uv_fs_type type;
  int flags;      /* open's flags */
  int64_t offset; /* where a read or write started, -1 for "at the end" */
  char *buf;      /* what a read read */
  char *names;    /* scandir: per entry a type byte and the name with its NUL */
  uv_stat_t stat;
  uint8_t done;  /* the outcome is here */
  uint8_t taken; /* l_fs_result handed it to Lua (an opened descriptor to a File) */
} fs_obj;

enum { RUV_FUTURE = 1, RUV_FILE, RUV_PATH, RUV_PATH2, RUV_COUNT = RUV_PATH2 };

typedef struct fs_file {
  uv_file fd;  /* -1 once closed */
  int64_t pos; /* reads and writes happen here (pread/pwrite): the kernel's offset is unused */
  loop_state *loop;
  uint8_t append;
} fs_file;

/* ---- closing descriptors nobody will close ------------------------------------- */

static void close_done_cb(uv_fs_t *req) {
  uv_fs_req_cleanup(req);
  free(req);
}

/* On the thread pool while the loop runs (close may block, on NFS for instance);
   directly when nothing is running, as at lua_close, or with no loop (its state is gone). */
static void fd_close_quietly(loop_state *loop, uv_file fd) {
  if (loop && loop_is_running(loop) && !loop->closed) {
    uv_fs_t *req = malloc(sizeof *req);
    if (req && uv_fs_close(loop->uv, req, fd, close_done_cb) == 0) return;
    free(req);
  }
  close(fd);
}

/* ---- requests ------------------------------------------------------------------- */

/* scandir's entries, packed for the Lua object: the request's list is freed with it. */
static char *names_pack(uv_fs_t *req) {
  size_t len = 0, cap = 256;
  char *names = malloc(cap);
  uv_dirent_t ent;
  while (names && uv_fs_scandir_next(req, &ent) != UV_EOF) {
    size_t n = strlen(ent.name) + 2;
    if (cap - len < n) {
      while (cap - len < n) cap *= 2;
      char *more = realloc(names, cap);
      if (more == NULL) free(names);
      names = more;
      if (names == NULL) break;
    }
    names[len] = (char)ent.type;
    memcpy(names + len + 1, ent.name, n - 1);
    len += n;
  }
  return names;
}

static void req_cb(uv_fs_t *req) {
  fs_req *r = container_of(req, fs_req, req);
  fs_obj *o;
  request_fate fate = request_end(&r->base, (void **)&o);
  if (fate == REQUEST_TAKEN) {
    o->result = req->result;
    o->done = 1;
    if (req->result >= 0) {
      if (req->fs_type == UV_FS_READ) {
        o->buf = r->buf;
        r->buf = NULL;
      } else if (req->fs_type == UV_FS_STAT || req->fs_type == UV_FS_LSTAT ||
                 req->fs_type == UV_FS_FSTAT) {
        o->stat = req->statbuf;
      } else if (req->fs_type == UV_FS_SCANDIR && (o->names = names_pack(req)) == NULL) {
        o->result = UV_ENOMEM;
      }
    }
  } else if (req->fs_type == UV_FS_OPEN && req->result >= 0) {
    /* nobody will make a File of it */
    fd_close_quietly(fate == REQUEST_CLOSED ? NULL : r->loop, (uv_file)req->result);
  }
  if (req->fs_type == UV_FS_CLOSE && req->result == UV_ECANCELED) /* the File let go of it */
    fd_close_quietly(fate == REQUEST_CLOSED ? NULL : r->loop, r->closing);
  uv_fs_req_cleanup(req);
  free(r->buf);
  free(r);
}

static void req_cancel(request *base) {
  uv_cancel((uv_req_t *)&container_of(base, fs_req, base)->req);
}

static int req_gc(lua_State *L) {
  fs_obj *o = lua_touserdata(L, 1);
  request_detach(o);
  if (o->done && !o->taken && o->type == UV_FS_OPEN && o->result >= 0)
    fd_close_quietly(o->loop, (uv_file)o->result);
  o->taken = 1;
  free(o->buf);
  free(o->names);
  o->buf = o->names = NULL;
  return 0;
}

/* Pushes a request object and its Future; fileidx: the File it works on, pathidx: its
   path (for errors and the File's name), or 0. */
static fs_req *req_new(lua_State *L, int fileidx, int pathidx) {
  loop_state *loop = loop_get(L);
  request_push(L, sizeof(fs_obj), RUV_COUNT, FSREQ_MT);
  fs_obj *o = lua_touserdata(L, -2);
  o->loop = loop;
  o->offset = -1;
  if (fileidx) {
    lua_pushvalue(L, fileidx);
    lua_setiuservalue(L, -3, RUV_FILE);
  }
  if (pathidx) {
    lua_pushvalue(L, pathidx);
    lua_setiuservalue(L, -3, RUV_PATH);
  }
  fs_req *r = calloc(1, sizeof *r);
  if (r == NULL) luaL_error(L, "asyncio.fs: out of memory");
  r->loop = loop;
  return r;
}

/* The object req_new pushed. */
static fs_obj *req_obj(lua_State *L) { return lua_touserdata(L, -2); }

/* After a uv_fs_* call: a request that failed before starting is done already. */
static int req_started(lua_State *L, fs_req *r, int rc) {
  int obj = lua_gettop(L) - 1;
  fs_obj *o = lua_touserdata(L, obj);
  o->type = r->req.fs_type;
  if (rc == 0) {
    request_start(L, &r->base, obj, req_cancel);
    return 2;
  }
  o->result = rc;
  o->done = 1;
  uv_fs_req_cleanup(&r->req);
  free(r->buf);
  free(r);
  request_refuse(L, obj);
  return 2;
}

static fs_obj *req_check(lua_State *L, int idx) {
  fs_obj *o = luaL_checkudata(L, idx, FSREQ_MT);
  if (!o->done) luaL_error(L, "asyncio.fs: request not finished");
  if (o->taken) luaL_error(L, "asyncio.fs: the request's result was taken");
  return o;
}

/* ---- results -------------------------------------------------------------------- */

static const char *req_syscall(uv_fs_type t) {
  switch (t) {
    case UV_FS_OPEN: return "open";
    case UV_FS_CLOSE: return "close";
    case UV_FS_READ: return "read";
    case UV_FS_WRITE: return "write";
    case UV_FS_STAT: return "stat";
    case UV_FS_LSTAT: return "lstat";
    case UV_FS_FSTAT: return "fstat";
    case UV_FS_FSYNC: return "fsync";
    case UV_FS_MKDIR: return "mkdir";
    case UV_FS_RMDIR: return "rmdir";
    case UV_FS_UNLINK: return "unlink";
    case UV_FS_RENAME: return "rename";
    case UV_FS_SCANDIR: return "scandir";
    default: return "fs";
  }
}

/* OSError naming the call, errno and the path(s). */
static int req_raise(lua_State *L, fs_obj *o) {
  int err = (int)o->result;
  error_push_uv(L, req_syscall(o->type), err);
  lua_getiuservalue(L, 1, RUV_PATH);
  const char *path = lua_tostring(L, -1);
  lua_pop(L, 1); /* the object's user value keeps it */
  if (path) {
    lua_getiuservalue(L, 1, RUV_PATH2);
    const char *path2 = lua_tostring(L, -1);
    lua_getfield(L, -2, "message");
    if (path2)
      lua_pushfstring(L, "%s: '%s' -> '%s'", lua_tostring(L, -1), path, path2);
    else
      lua_pushfstring(L, "%s: '%s'", lua_tostring(L, -1), path);
    lua_setfield(L, -4, "message");
    lua_pop(L, 1);
    lua_setfield(L, -2, "filename2");
    lua_pushstring(L, path);
    lua_setfield(L, -2, "filename");
  } else if (lua_getiuservalue(L, 1, RUV_FILE) == LUA_TUSERDATA) {
    lua_getiuservalue(L, -1, 1);
    lua_setfield(L, -3, "filename");
    lua_pop(L, 1);
  } else {
    lua_pop(L, 1);
  }
  return lua_error(L);
}

static const char *mode_type(uint64_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG: return "file";
    case S_IFDIR: return "directory";
    case S_IFLNK: return "link";
    case S_IFIFO: return "fifo";
    case S_IFSOCK: return "socket";
    case S_IFCHR: return "char";
    case S_IFBLK: return "block";
    default: return "unknown";
  }
}

static const char *dirent_type(uv_dirent_type_t t) {
  switch (t) {
    case UV_DIRENT_FILE: return "file";
    case UV_DIRENT_DIR: return "directory";
    case UV_DIRENT_LINK: return "link";
    case UV_DIRENT_FIFO: return "fifo";
    case UV_DIRENT_SOCKET: return "socket";
    case UV_DIRENT_CHAR: return "char";
    case UV_DIRENT_BLOCK: return "block";
    default: return "unknown";
  }
}

static void set_time(lua_State *L, const char *k, uv_timespec_t t) {
  lua_pushnumber(L, (lua_Number)t.tv_sec + (lua_Number)t.tv_nsec / 1e9);
  lua_setfield(L, -2, k);
}

static void set_int(lua_State *L, const char *k, uint64_t v) {
  lua_pushinteger(L, (lua_Integer)v);
  lua_setfield(L, -2, k);
}

static void push_stat(lua_State *L, const uv_stat_t *s) {
  lua_createtable(L, 0, 12);
  set_int(L, "size", s->st_size);
  set_int(L, "mode", s->st_mode);
  lua_pushstring(L, mode_type(s->st_mode));
  lua_setfield(L, -2, "type");
  set_time(L, "mtime", s->st_mtim);
  set_time(L, "atime", s->st_atim);
  set_time(L, "ctime", s->st_ctim);
  set_int(L, "ino", s->st_ino);
  set_int(L, "dev", s->st_dev);
  set_int(L, "nlink", s->st_nlink);
  set_int(L, "uid", s->st_uid);
  set_int(L, "gid", s->st_gid);
}

static int file_push_new(lua_State *L, loop_state *loop, uv_file fd, const char *path, int flags);

/* l_fs_result(req): the outcome of a finished request, or its OSError. */
static int l_fs_result(lua_State *L) {
  fs_obj *o = req_check(L, 1);
  if (o->result < 0) return req_raise(L, o);
  ssize_t n = o->result;
  switch (o->type) {
    case UV_FS_OPEN:
      lua_getiuservalue(L, 1, RUV_PATH);
      file_push_new(L, o->loop, (uv_file)n, lua_tostring(L, -1), o->flags);
      o->taken = 1;
      return 1;
    case UV_FS_READ:
    case UV_FS_WRITE:
      if (o->type == UV_FS_READ) {
        lua_pushlstring(L, o->buf, (size_t)n);
        free(o->buf);
        o->buf = NULL;
        o->taken = 1;
      } else {
        lua_pushinteger(L, (lua_Integer)n);
      }
      if (o->offset >= 0) { /* the file's position moves on; not in append mode */
        lua_getiuservalue(L, 1, RUV_FILE);
        ((fs_file *)lua_touserdata(L, -1))->pos = o->offset + n;
        lua_pop(L, 1);
      }
      return 1;
    case UV_FS_STAT:
    case UV_FS_LSTAT:
    case UV_FS_FSTAT: push_stat(L, &o->stat); return 1;
    case UV_FS_SCANDIR: {
      lua_createtable(L, (int)n, 0);
      const char *p = o->names;
      for (lua_Integer i = 1; i <= n; i++) {
        size_t len = strlen(p + 1);
        lua_createtable(L, 0, 2);
        lua_pushlstring(L, p + 1, len);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, dirent_type((uv_dirent_type_t)(unsigned char)p[0]));
        lua_setfield(L, -2, "type");
        lua_rawseti(L, -2, i);
        p += len + 2;
      }
      return 1;
    }
    default: return 0;
  }
}

/* ---- starting requests ---------------------------------------------------------- */

static int mode_flags(lua_State *L, const char *mode, int *append) {
  int flags;
  const char *m = mode;
  switch (*m++) {
    case 'r': flags = 0; break;
    case 'w': flags = O_CREAT | O_TRUNC; break;
    case 'a': flags = O_CREAT | O_APPEND; break;
    case 'x': flags = O_CREAT | O_EXCL; break;
    default: goto bad;
  }
  int plus = 0;
  for (; *m; m++) {
    if (*m == '+' && !plus)
      plus = 1;
    else if (*m != 'b')
      goto bad;
  }
  *append = (flags & O_APPEND) != 0;
  if (plus) return flags | O_RDWR;
  return flags | (mode[0] == 'r' ? O_RDONLY : O_WRONLY);
bad:
  return argcheck_error(
      L,
      "fs.open: invalid mode '%s' (expected \"r\", \"w\", \"a\", \"x\", optionally "
      "with \"+\" and \"b\")",
      mode);
}

/* open(path, mode) -> req, future */
static int l_fs_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int append;
  int flags = mode_flags(L, luaL_optstring(L, 2, "r"), &append) | O_CLOEXEC;
  fs_req *r = req_new(L, 0, 1);
  req_obj(L)->flags = flags;
  return req_started(L, r, uv_fs_open(r->loop->uv, &r->req, path, flags, 0666, req_cb));
}

static int fs_path_op(lua_State *L, uv_fs_type op) {
  const char *path = luaL_checkstring(L, 1);
  int mode = op == UV_FS_MKDIR ? (int)luaL_optinteger(L, 2, 0777) : 0;
  lua_settop(L, 2);
  fs_req *r = req_new(L, 0, 1);
  uv_loop_t *uv = r->loop->uv;
  int rc;
  switch (op) {
    case UV_FS_STAT: rc = uv_fs_stat(uv, &r->req, path, req_cb); break;
    case UV_FS_LSTAT: rc = uv_fs_lstat(uv, &r->req, path, req_cb); break;
    case UV_FS_RMDIR: rc = uv_fs_rmdir(uv, &r->req, path, req_cb); break;
    case UV_FS_UNLINK: rc = uv_fs_unlink(uv, &r->req, path, req_cb); break;
    case UV_FS_SCANDIR: rc = uv_fs_scandir(uv, &r->req, path, 0, req_cb); break;
    case UV_FS_MKDIR: rc = uv_fs_mkdir(uv, &r->req, path, mode, req_cb); break;
    default:
      lua_pushvalue(L, 2);
      lua_setiuservalue(L, -3, RUV_PATH2);
      rc = uv_fs_rename(uv, &r->req, path, lua_tostring(L, 2), req_cb);
      break;
  }
  return req_started(L, r, rc);
}

static int l_fs_stat(lua_State *L) { return fs_path_op(L, UV_FS_STAT); }
static int l_fs_lstat(lua_State *L) { return fs_path_op(L, UV_FS_LSTAT); }
static int l_fs_rmdir(lua_State *L) { return fs_path_op(L, UV_FS_RMDIR); }
static int l_fs_unlink(lua_State *L) { return fs_path_op(L, UV_FS_UNLINK); }
static int l_fs_scandir(lua_State *L) { return fs_path_op(L, UV_FS_SCANDIR); }
static int l_fs_mkdir(lua_State *L) { return fs_path_op(L, UV_FS_MKDIR); }

/* l_fs_rename(old, new): the new path is checked before anything starts */
static int l_fs_rename(lua_State *L) {
  luaL_checkstring(L, 2);
  return fs_path_op(L, UV_FS_RENAME);
}

/* ---- files ---------------------------------------------------------------------- */

static int file_push_new(lua_State *L, loop_state *loop, uv_file fd, const char *path, int flags) {
  fs_file *f = lua_newuserdatauv(L, sizeof *f, 1);
  f->fd = fd;
  f->pos = 0;
  f->loop = loop;
  f->append = (flags & O_APPEND) != 0;
  luaL_setmetatable(L, FILE_MT);
  lua_pushstring(L, path ? path : "?");
  lua_setiuservalue(L, -2, 1);
  return 1;
}

static fs_file *file_check_open(lua_State *L, int idx) {
  fs_file *f = luaL_checkudata(L, idx, FILE_MT);
  if (f->fd < 0) argcheck_error(L, "attempt to use a closed file");
  return f;
}

/* l_fs_read(file, n) -> req, future: up to n bytes at the file's position */
static int l_fs_read(lua_State *L) {
  fs_file *f = file_check_open(L, 1);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n >= 0, 2, "negative size");
  size_t len = (size_t)n > FS_READ_MAX ? FS_READ_MAX : (size_t)n;
  fs_req *r = req_new(L, 1, 0);
  r->buf = malloc(len ? len : 1);
  if (r->buf == NULL) {
    free(r);
    return luaL_error(L, "read: out of memory");
  }
  req_obj(L)->offset = f->pos;
  uv_buf_t b = uv_buf_init(r->buf, (unsigned)len);
  return req_started(L, r, uv_fs_read(r->loop->uv, &r->req, f->fd, &b, 1, f->pos, req_cb));
}

/* l_fs_write(file, data [, i]) -> req, future: data from byte i on, at the file's position
   (at its end in append mode). The bytes are copied: the request may outlive the string. */
static int l_fs_write(lua_State *L) {
  fs_file *f = file_check_open(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  lua_Integer from = luaL_optinteger(L, 3, 1);
  luaL_argcheck(L, from >= 1 && (size_t)from <= len + 1, 3, "out of range");
  data += from - 1;
  len -= (size_t)from - 1;
  if (len > FS_READ_MAX) len = FS_READ_MAX; /* the Lua side writes the rest */
  fs_req *r = req_new(L, 1, 0);
  r->buf = malloc(len ? len : 1);
  if (r->buf == NULL) {
    free(r);
    return luaL_error(L, "write: out of memory");
  }
  memcpy(r->buf, data, len);
  int64_t offset = f->append ? -1 : f->pos;
  req_obj(L)->offset = offset;
  uv_buf_t b = uv_buf_init(r->buf, (unsigned)len);
  return req_started(L, r, uv_fs_write(r->loop->uv, &r->req, f->fd, &b, 1, offset, req_cb));
}

static int l_fs_fstat(lua_State *L) {
  fs_file *f = file_check_open(L, 1);
  fs_req *r = req_new(L, 1, 0);
  return req_started(L, r, uv_fs_fstat(r->loop->uv, &r->req, f->fd, req_cb));
}

static int l_fs_fsync(lua_State *L) {
  fs_file *f = file_check_open(L, 1);
  fs_req *r = req_new(L, 1, 0);
  return req_started(L, r, uv_fs_fsync(r->loop->uv, &r->req, f->fd, req_cb));
}

/* l_fs_close(file) -> req, future; nothing if it was closed already */
static int l_fs_close(lua_State *L) {
  fs_file *f = luaL_checkudata(L, 1, FILE_MT);
  if (f->fd < 0) return 0;
  uv_file fd = f->fd;
  f->fd = -1;
  fs_req *r = req_new(L, 1, 0);
  r->closing = fd;
  return req_started(L, r, uv_fs_close(r->loop->uv, &r->req, fd, req_cb));
}

/* l_fs_close_nowait(file): closes in the background (for __close outside a task) */
static int l_fs_close_nowait(lua_State *L) {
  fs_file *f = luaL_checkudata(L, 1, FILE_MT);
  if (f->fd >= 0) fd_close_quietly(f->loop, f->fd);
  f->fd = -1;
  return 0;
}

/* l_fs_pos(file [, pos]) -> the position (after setting it) */
static int l_fs_pos(lua_State *L) {
  fs_file *f = luaL_checkudata(L, 1, FILE_MT);
  if (!lua_isnoneornil(L, 2)) {
    lua_Integer pos = luaL_checkinteger(L, 2);
    if (pos < 0) {
      error_push_uv(L, "seek", UV_EINVAL);
      return lua_error(L);
    }
    f->pos = pos;
  }
  lua_pushinteger(L, f->pos);
  return 1;
}

static int l_fs_closed(lua_State *L) {
  lua_pushboolean(L, ((fs_file *)luaL_checkudata(L, 1, FILE_MT))->fd < 0);
  return 1;
}

static int file_gc(lua_State *L) {
  fs_file *f = lua_touserdata(L, 1);
  if (f->fd >= 0) fd_close_quietly(f->loop, f->fd);
  f->fd = -1;
  return 0;
}

static int file_tostring(lua_State *L) {
  fs_file *f = luaL_checkudata(L, 1, FILE_MT);
  lua_getiuservalue(L, 1, 1);
  lua_pushfstring(L, "<asyncio.fs.File '%s'%s>", lua_tostring(L, -1), f->fd < 0 ? " (closed)" : "");
  return 1;
}

static const luaL_Reg fs_functions[] = {
    {"open", l_fs_open},     {"stat", l_fs_stat},
    {"lstat", l_fs_lstat},   {"rmdir", l_fs_rmdir},
    {"unlink", l_fs_unlink}, {"scandir", l_fs_scandir},
    {"mkdir", l_fs_mkdir},   {"rename", l_fs_rename},
    {"read", l_fs_read},     {"write", l_fs_write},
    {"fstat", l_fs_fstat},   {"fsync", l_fs_fsync},
    {"close", l_fs_close},   {"close_nowait", l_fs_close_nowait},
    {"pos", l_fs_pos},       {"closed", l_fs_closed},
    {"result", l_fs_result}, {NULL, NULL},
};

/* Sets core.fs (the primitives stdlib/asyncio/fs.lua builds on) in the table on top;
   core.fs.File is the file metatable, for the Lua side to add methods. */
void fs_open(lua_State *L) {
  luaL_newmetatable(L, FSREQ_MT);
  lua_pushcfunction(L, req_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_newlib(L, fs_functions);
  luaL_newmetatable(L, FILE_MT);
  lua_pushcfunction(L, file_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, file_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "asyncio.fs.File");
  lua_setfield(L, -2, "__name");
  lua_setfield(L, -2, "File");
  lua_setfield(L, -2, "fs");
}

/* stream.c — buffered TCP and Unix socket streams: a read buffer bounded by `limit`
   with lines and exact reads sliced in C, writes tried at once and queued behind,
   listeners that accept in C, and the net list that lua_close empties. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net.h"

enum { PENDING_MAX = 128 };
enum { HIGH_WATER = 64 * 1024, LOW_WATER = 16 * 1024 };
#define BUF_MAX ((size_t)1 << 30)
#define WRITE_MAX ((size_t)16 << 30) /* bytes queued on one stream at most */
enum {
  SUV_READERS = 1,
  SUV_DRAINERS,
  SUV_CLOSERS,
  SUV_COUNT = SUV_CLOSERS
};                                                                /* stream user values */
enum { LUV_ACCEPTORS = 1, LUV_CLOSERS, LUV_COUNT = LUV_CLOSERS }; /* listener's */

static char type_stream; /* the key of STREAM_MT (types.c) */

/* ---- wait sets -------------------------------------------------------------------- */

static void waitset_reserve(lua_State *L, waitset *ws, int n) {
  if (n <= ws->cap) return;
  int cap = ws->cap ? ws->cap * 2 : 2;
  if (cap < n) cap = n;
  future **v = realloc(ws->v, cap * sizeof *v);
  if (v == NULL) luaL_error(L, "asyncio: out of memory");
  ws->v = v;
  ws->cap = cap;
}

/* Pushes a new pending future that waitset_wake completes. Futures already done (woken,
   or cancelled with the task that awaited them) are dropped from the set first. User
   value `uv` of the userdata at `owner` anchors them: the future itself when it is the
   only one, else a table mirroring the array. */
future *waitset_add(lua_State *L, waitset *ws, int owner, int uv) {
  owner = lua_absindex(L, owner);
  int kept = 0;
  for (int i = 0; i < ws->n; i++) kept += ws->v[i]->state == FUT_PENDING;
  waitset_reserve(L, ws, kept + 1);
  future *f;
  if (kept == 0) {
    f = future_new(L, loop_get(L));
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, owner, uv);
    ws->v[0] = f;
    ws->n = 1;
  } else {
    lua_getiuservalue(L, owner, uv); /* the single future, or the table */
    int old = lua_gettop(L), j = 0;
    lua_createtable(L, kept + 1, 0);
    for (int i = 0; i < ws->n; i++) {
      if (ws->v[i]->state != FUT_PENDING) continue;
      if (lua_istable(L, old))
        lua_rawgeti(L, old, i + 1);
      else
        lua_pushvalue(L, old);
      lua_rawseti(L, old + 1, j + 1);
      ws->v[j++] = ws->v[i];
    }
    f = future_new(L, loop_get(L));
    lua_pushvalue(L, -1);
    lua_rawseti(L, old + 1, j + 1);
    ws->v[j] = f;
    ws->n = j + 1;
    lua_pushvalue(L, old + 1);
    lua_setiuservalue(L, owner, uv);
    lua_replace(L, old);
    lua_settop(L, old);
  }
  ws->last = f;
  ws->by = task_of(L);
  return f;
}

/* For a set with one waiter at a time (a reader): when the task that awaited the last
   future asks again, that future (done, so already consumed by the task now running)
   is made pending again, so steady reading allocates no future. Else waitset_add. */
future *waitset_add_one(lua_State *L, waitset *ws, int owner, int uv) {
  future *f = ws->last;
  if (f && f->state == FUT_RESULT && f->first == NULL && ws->by == task_of(L) &&
      !waitset_pending(ws)) {
    if (lua_getiuservalue(L, owner, uv) == LUA_TUSERDATA && lua_touserdata(L, -1) == f) {
      f->state = FUT_PENDING;
      f->nresults = 0;
      ws->v[0] = f;
      ws->n = 1;
      return f;
    }
    lua_pop(L, 1);
  }
  return waitset_add(L, ws, owner, uv);
}

int waitset_pending(const waitset *ws) {
  for (int i = 0; i < ws->n; i++)
    if (ws->v[i]->state == FUT_PENDING) return 1;
  return 0;
}

/* Completes every pending future of the set. Pure C: runs inside libuv callbacks. */
void waitset_wake(waitset *ws) {
  int n = ws->n;
  ws->n = 0;
  for (int i = 0; i < n; i++) {
    future *f = ws->v[i];
    if (f->state != FUT_PENDING) continue;
    f->nresults = 0;
    f->state = FUT_RESULT;
    future_wake_all(f->loop, f);
  }
}

void waitset_free(waitset *ws) {
  free(ws->v);
  ws->v = NULL;
  ws->n = ws->cap = 0;
}

/* ---- the net list ----------------------------------------------------------------- */

struct net_list {
  net_obj *first;
  int dead; /* its Lua owner is gone: the last net_untrack frees it */
};

static char net_key; /* registry: userdata holding the loop's net_list pointer */

net_list *net_list_get(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &net_key);
  net_list **box = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (box == NULL || *box == NULL) luaL_error(L, "asyncio: the event loop is closed");
  return *box;
}

void net_track(net_list *list, net_obj *o, void (*shutdown)(net_obj *)) {
  o->list = list;
  o->shutdown = shutdown;
  o->prev = NULL;
  o->next = list->first;
  if (list->first) list->first->prev = o;
  list->first = o;
}

void net_untrack(net_obj *o) {
  net_list *list = o->list;
  if (o->prev)
    o->prev->next = o->next;
  else
    list->first = o->next;
  if (o->next) o->next->prev = o->prev;
  o->prev = o->next = NULL;
  if (list->dead && list->first == NULL) free(list);
}

/* At lua_close, before the loop closes (this userdata was made after the loop's, so it
   is finalized first): closes every socket still open; their close callbacks run when
   the loop closes, and the last one frees the list. */
static int net_list_gc(lua_State *L) {
  net_list **box = lua_touserdata(L, 1);
  net_list *list = *box;
  *box = NULL;
  if (list == NULL) return 0;
  list->dead = 1;
  if (list->first == NULL) {
    free(list);
    return 0;
  }
  for (net_obj *o = list->first, *next; o; o = next) {
    next = o->next; /* shutdown may free o (a listener whose handle never opened) */
    o->shutdown(o);
  }
  return 0;
}

/* ---- errors ----------------------------------------------------------------------- */

static int raise_closed(lua_State *L, const char *op) {
  error_push_uv(L, op, UV_EBADF);
  lua_pushfstring(L, "%s: the stream is closed", op);
  lua_setfield(L, -2, "message");
  return lua_error(L);
}

/* The stream's error: an SSLError once TLS failed, else the OSError of a uv code. */
static int raise_error(lua_State *L, stream *s, const char *op, int err) {
  if (s->tls && err == UV_EPROTO) return tls_raise(L, s, op);
  return error_raise_uv(L, op, err);
}

static int raise_limit(lua_State *L, const char *op, stream *s, size_t consumed) {
  error_push(L, "LimitOverrunError", NULL);
  lua_pushfstring(L, "%s: no separator found within the limit of %d bytes", op, (int)s->limit);
  lua_setfield(L, -2, "message");
  lua_pushinteger(L, (lua_Integer)consumed);
  lua_setfield(L, -2, "consumed");
  return lua_error(L);
}

/* IncompleteReadError with the partial data at the top of the stack. */
static int raise_incomplete(lua_State *L, const char *op, lua_Integer expected) {
  size_t got = lua_rawlen(L, -1);
  if (expected >= 0)
    lua_pushfstring(L, "%s: %d bytes read on a total of %d expected", op, (int)got, (int)expected);
  else
    lua_pushfstring(L, "%s: end of stream after %d bytes, separator not found", op, (int)got);
  error_push(L, "IncompleteReadError", lua_tostring(L, -1));
  lua_pushvalue(L, -3);
  lua_setfield(L, -2, "partial");
  if (expected >= 0) {
    lua_pushinteger(L, expected);
    lua_setfield(L, -2, "expected");
  }
  return lua_error(L);
}

/* ---- the stream object ------------------------------------------------------------ */

static void stream_close_cb(uv_handle_t *h);
static void stream_shutdown_obj(net_obj *o);

static size_t read_target(const stream *s) { return s->want > s->limit ? s->want : s->limit; }

/* A stream struct with its handle initialised, not yet tied to a Lua object. NULL if
   memory or libuv refuses. */
static stream *stream_alloc(uv_loop_t *uv, int kind, net_list *list) {
  stream *s = calloc(1, sizeof *s);
  if (s == NULL) return NULL;
  int err = kind == STREAM_TCP ? uv_tcp_init(uv, &s->u.tcp) : uv_pipe_init(uv, &s->u.pipe, 0);
  if (err) {
    free(s);
    return NULL;
  }
  s->kind = (uint8_t)kind;
  s->u.handle.data = s;
  s->limit = READ_CHUNK;
  s->high_water = HIGH_WATER;
  s->low_water = LOW_WATER;
  net_track(list, &s->obj, stream_shutdown_obj);
  return s;
}

stream *stream_new(lua_State *L, int kind) {
  net_list *list = net_list_get(L);
  stream **box = lua_newuserdatauv(L, sizeof *box, SUV_COUNT);
  *box = NULL;
  type_setmetatable(L, &type_stream);
  stream *s = stream_alloc(loop_get(L)->uv, kind, list);
  if (s == NULL) luaL_error(L, "asyncio: cannot create a socket handle");
  *box = s;
  s->box = box;
  debug_record(L, -1);
  return s;
}

stream *stream_check(lua_State *L, int idx) {
  return *(stream **)type_check(L, idx, &type_stream, STREAM_MT);
}

/* ---- reading ---------------------------------------------------------------------- */

/* Makes room at the end of the read buffer (compacting it, growing it towards the read
   target) and returns it: what the socket, or TLS decryption, may fill next. */
size_t stream_read_space(stream *s, char **space) {
  return readbuf_space(&s->rb, read_target(s), space);
}

/* A TLS stream reads its ciphertext into the same room: tls_read moves it into OpenSSL's
   memory BIO at once, then decrypts into the buffer. */
static void stream_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  stream *s = h->data;
  char *space;
  size_t room = stream_read_space(s, &space);
  if (s->tls && room > READ_CHUNK) room = READ_CHUNK; /* what OpenSSL's BIO copies and keeps */
  *buf = uv_buf_init(space, (unsigned)room);
}

void stream_pause(stream *s) {
  if (!s->reading) return;
  uv_read_stop(&s->u.stream);
  s->reading = 0;
}

static void stream_read_cb(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  stream *s = h->data;
  if (s->tls) {
    tls_read(s, nread);
    return;
  }
  if (nread > 0) {
    s->rb.len += (size_t)nread;
    if (s->rb.len >= read_target(s)) stream_pause(s);
    if (s->want && s->rb.len < s->want && s->reading) return; /* readexactly: not yet */
  } else if (nread == UV_EOF) {
    s->eof = 1;
    stream_pause(s);
  } else if (nread == UV_ENOBUFS && s->rb.len > 0) {
    stream_pause(s); /* no room: the reader must consume first */
  } else if (nread < 0) {
    s->rerr = (int)nread;
    stream_pause(s);
  } else {
    return;
  }
  waitset_wake(&s->readers);
}

void stream_resume(stream *s) {
  if (s->reading || !s->open || s->eof || s->rerr || s->close_wanted) return;
  if (s->tls && !tls_resume(s)) return;
  if (s->rb.len >= read_target(s)) return;
  int err = uv_read_start(&s->u.stream, stream_alloc_cb, stream_read_cb);
  if (err)
    s->rerr = err;
  else
    s->reading = 1;
}

static void consume(stream *s, size_t n) {
  readbuf_consume(&s->rb, n, s->limit);
  stream_resume(s);
}

/* Once the buffer cannot satisfy a request: raises the stream's error, or returns 1 at
   the end of the stream, 0 if more may come (the caller waits). */
static int read_blocked(lua_State *L, stream *s, const char *op) {
  if (s == NULL || s->close_wanted) return raise_closed(L, op);
  if (s->rerr) return raise_error(L, s, op, s->rerr);
  return s->eof;
}

static int readable(const stream *s) { return s && !s->close_wanted && s->rb.len > 0; }

/* Pushes n bytes of the buffer, without the end of line if strip. */
static void push_line(lua_State *L, const char *p, size_t n, int strip) {
  if (strip && n > 0 && p[n - 1] == '\n') n--;
  if (strip && n > 0 && p[n - 1] == '\r') n--;
  lua_pushlstring(L, p, n);
}

/* The reads below push what they read and return 1, or return -1 when the buffer
   cannot satisfy them yet (the caller waits for the next read event and tries again). */

/* A line; at the end of the stream the partial line, then "" (strip: false). */
static int read_line(lua_State *L, stream *s, int strip) {
  if (s) s->want = 0; /* (left by a cancelled readexactly) */
  size_t n;
  int found = readable(s) ? readbuf_line(&s->rb, s->limit, &n) : READBUF_MORE;
  if (found == READBUF_FOUND) {
    push_line(L, s->rb.buf + s->rb.pos, n, strip);
    consume(s, n);
    return 1;
  }
  if (found == READBUF_OVER) { /* as Python's readline: drop the line, then raise */
    consume(s, n);
    return raise_limit(L, "readline", s, n);
  }
  if (!read_blocked(L, s, "readline")) return -1;
  if (s->rb.len > 0) {
    push_line(L, s->rb.buf + s->rb.pos, s->rb.len, strip);
    consume(s, s->rb.len);
  } else if (strip) {
    lua_pushboolean(L, 0);
  } else {
    lua_pushliteral(L, "");
  }
  return 1;
}

/* net.read_line(h, strip) -> line, or nothing: wait and retry. */
static int net_read_line(lua_State *L) {
  int n = read_line(L, stream_check(L, 1), lua_toboolean(L, 2));
  return n < 0 ? 0 : n;
}

/* The data up to and including sep. */
static int read_until(lua_State *L, stream *s, const char *sep, size_t seplen) {
  if (s) s->want = 0;
  size_t n;
  int found = readable(s) ? readbuf_until(&s->rb, sep, seplen, s->limit, &n) : READBUF_MORE;
  if (found == READBUF_FOUND) {
    lua_pushlstring(L, s->rb.buf + s->rb.pos, n);
    consume(s, n);
    return 1;
  }
  if (found == READBUF_OVER) return raise_limit(L, "readuntil", s, n);
  if (!read_blocked(L, s, "readuntil")) return -1;
  lua_pushlstring(L, s->rb.buf + s->rb.pos, s->rb.len);
  consume(s, s->rb.len);
  return raise_incomplete(L, "readuntil", -1);
}

/* Exactly n bytes, or IncompleteReadError at the end of the stream. */
static int read_exactly(lua_State *L, stream *s, lua_Integer n) {
  if (n == 0) {
    lua_pushliteral(L, "");
    return 1;
  }
  if (readable(s) && s->rb.len >= (size_t)n) {
    s->want = 0;
    lua_pushlstring(L, s->rb.buf + s->rb.pos, (size_t)n);
    consume(s, (size_t)n);
    return 1;
  }
  if (!read_blocked(L, s, "readexactly")) {
    s->want = (size_t)n; /* the buffer may grow to n for this read */
    stream_resume(s);
    return -1;
  }
  s->want = 0;
  lua_pushlstring(L, s->rb.buf + s->rb.pos, s->rb.len);
  consume(s, s->rb.len);
  return raise_incomplete(L, "readexactly", n);
}

/* Up to n bytes (n < 0: all that is buffered); "" at the end of the stream. */
static int read_some(lua_State *L, stream *s, lua_Integer n) {
  if (n == 0) {
    lua_pushliteral(L, "");
    return 1;
  }
  if (s) s->want = 0;
  if (readable(s)) {
    size_t k = n < 0 || (size_t)n > s->rb.len ? s->rb.len : (size_t)n;
    lua_pushlstring(L, s->rb.buf + s->rb.pos, k);
    consume(s, k);
    return 1;
  }
  if (!read_blocked(L, s, "read")) return -1;
  lua_pushliteral(L, "");
  return 1;
}

/* net.read_some(h [, n]) -> up to n bytes, "" at the end, or nothing: wait. */
static int net_read_some(lua_State *L) {
  int n = read_some(L, stream_check(L, 1), luaL_optinteger(L, 2, -1));
  return n < 0 ? 0 : n;
}

/* net.at_eof(h): the buffer is empty and the peer sent its end (or the stream is closed). */
static int net_at_eof(lua_State *L) {
  stream *s = stream_check(L, 1);
  lua_pushboolean(L, s == NULL || s->close_wanted || (s->eof && s->rb.len == 0));
  return 1;
}

/* Pushes a future completed by the next read event of the stream at hidx. */
static void wait_read(lua_State *L, int hidx, const char *op) {
  stream *s = *(stream **)lua_touserdata(L, hidx);
  if (s == NULL || s->close_wanted) raise_closed(L, op);
  if (waitset_pending(&s->readers))
    luaL_error(L, "%s: another task is already waiting to read from this stream", op);
  waitset_add_one(L, &s->readers, hidx, SUV_READERS);
  stream_resume(s); /* TLS: may decrypt what OpenSSL holds, completing the future at once */
}

/* net.wait_read(h) -> a future completed by the next read event. */
static int net_wait_read(lua_State *L) {
  stream_check(L, 1);
  wait_read(L, 1, "read");
  return 1;
}

/* ---- writing ---------------------------------------------------------------------- */

static void stream_write_cb(uv_write_t *req, int status);
static void close_now(stream *s);

static void start_shutdown(stream *s);

static size_t write_pending(const stream *s) { return s->wfly_len + s->wq_len; }

/* Hands the queue to libuv: it becomes the buffer in flight, the old one the queue. */
static int flush_queue(stream *s) {
  char *b = s->wfly;
  size_t cap = s->wfly_cap;
  s->wfly = s->wq;
  s->wfly_cap = s->wq_cap;
  s->wfly_len = s->wq_len;
  s->wq = b;
  s->wq_cap = cap;
  s->wq_len = 0;
  uv_buf_t bufs[WRITE_MAX / BUF_MAX]; /* a uv_buf_t holds less than 4 GiB */
  unsigned n = 0;
  for (size_t off = 0; off < s->wfly_len; off += BUF_MAX) {
    size_t len = s->wfly_len - off < BUF_MAX ? s->wfly_len - off : BUF_MAX;
    bufs[n++] = uv_buf_init(s->wfly + off, (unsigned)len);
  }
  int err = uv_write(&s->write_req, &s->u.stream, bufs, n, stream_write_cb);
  if (err) {
    s->werr = err;
    s->wfly_len = 0;
  }
  return err;
}

/* What comes once the writes in flight are done: more writes, the shutdown write_eof
   asked for, the close close() asked for. */
static void write_progress(stream *s) {
  if (s->closing) return;
  if (s->wfly_len == 0 && s->wq_len > 0 && !s->werr) flush_queue(s);
  if (s->paused && (write_pending(s) <= s->low_water || s->werr)) {
    s->paused = 0;
    waitset_wake(&s->drainers);
  }
  if (s->wfly_len > 0) return;
  if (s->eof_wanted && !s->shutting && !s->werr && !s->close_wanted) start_shutdown(s);
  if (s->close_wanted && !s->shutting) close_now(s);
}

static void stream_write_cb(uv_write_t *req, int status) {
  stream *s = req->handle->data;
  s->wfly_len = 0;
  if (s->wfly_cap > 4 * HIGH_WATER) { /* do not keep a large write's buffer around */
    free(s->wfly);
    s->wfly = NULL;
    s->wfly_cap = 0;
  }
  if (status < 0 && status != UV_ECANCELED && !s->werr) s->werr = status;
  if (status < 0) s->wq_len = 0;
  write_progress(s);
}

static int queue_append(stream *s, const char *data, size_t len) {
  if (len > WRITE_MAX - write_pending(s)) return UV_ENOBUFS;
  if (s->wq_len + len > s->wq_cap) {
    size_t cap = s->wq_cap ? s->wq_cap : 4096;
    while (cap < s->wq_len + len) cap *= 2;
    char *b = realloc(s->wq, cap);
    if (b == NULL) return UV_ENOMEM;
    s->wq = b;
    s->wq_cap = cap;
  }
  memcpy(s->wq + s->wq_len, data, len);
  s->wq_len += len;
  return 0;
}

/* Writes what the socket takes now, queues the rest (copied). 0 or a uv error. TLS
   hands its ciphertext here. */
int stream_write_raw(stream *s, const char *data, size_t len) {
  if (write_pending(s) == 0) {
    while (len > 0) {
      uv_buf_t buf = uv_buf_init((char *)data, (unsigned)(len > BUF_MAX ? BUF_MAX : len));
      int n = uv_try_write(&s->u.stream, &buf, 1);
      if (n == UV_EAGAIN || n == 0) break;
      if (n < 0) {
        s->werr = n;
        return n;
      }
      data += n;
      len -= (size_t)n;
      if ((unsigned)n < buf.len) break;
    }
    if (len == 0) return 0;
  }
  int err = queue_append(s, data, len);
  if (err) return err;
  if (s->wfly_len == 0) {
    err = flush_queue(s);
    if (err) return err;
  }
  if (write_pending(s) > s->high_water) s->paused = 1;
  return 0;
}

/* Writes data[len] to s: at once if the socket takes it, else queued. */
static int write_data(lua_State *L, stream *s, const char *data, size_t len) {
  if (s == NULL || s->close_wanted) return raise_closed(L, "write");
  if (s->eof_wanted) {
    error_push_uv(L, "write", UV_ESHUTDOWN);
    lua_pushliteral(L, "write: called after write_eof");
    lua_setfield(L, -2, "message");
    return lua_error(L);
  }
  if (s->werr) return error_raise_uv(L, "write", s->werr);
  if (len == 0) return 0;
  int err = s->tls ? tls_write(s, data, len) : stream_write_raw(s, data, len);
  if (err) return raise_error(L, s, "write", err);
  return 0;
}

/* net.write(h, data) */
static int net_write(lua_State *L) {
  stream *s = stream_check(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  return write_data(L, s, data, len);
}

/* Raises the stream's error; true while above the high-water mark. */
static int drain_needed(lua_State *L, stream *s) {
  if (s == NULL) return 0;
  if (s->werr) return error_raise_uv(L, "write", s->werr);
  if (s->rerr) return raise_error(L, s, "read", s->rerr);
  return s->paused && !s->close_wanted;
}

/* net.drain_needed(h) */
static int net_drain_needed(lua_State *L) {
  lua_pushboolean(L, drain_needed(L, stream_check(L, 1)));
  return 1;
}

/* Pushes a future completed when the buffer of the stream at hidx falls to the
   low-water mark. */
static void wait_drain(lua_State *L, int hidx) {
  stream *s = *(stream **)lua_touserdata(L, hidx);
  if (s == NULL) raise_closed(L, "drain");
  waitset_add(L, &s->drainers, hidx, SUV_DRAINERS);
}

/* net.wait_drain(h) */
static int net_wait_drain(lua_State *L) {
  stream_check(L, 1);
  wait_drain(L, 1);
  return 1;
}

/* net.set_write_limits(h, high, low) */
static int net_set_write_limits(lua_State *L) {
  stream *s = stream_check(L, 1);
  lua_Integer high = luaL_optinteger(L, 2, HIGH_WATER);
  lua_Integer low = luaL_optinteger(L, 3, high / 4);
  luaL_argcheck(L, high >= 0 && low >= 0 && low <= high, 2, "need high >= low >= 0");
  if (s == NULL) return 0;
  s->high_water = (size_t)high;
  s->low_water = (size_t)low;
  if (write_pending(s) > s->high_water)
    s->paused = 1;
  else
    write_progress(s);
  return 0;
}

/* net.write_buffer_size(h) */
static int net_write_buffer_size(lua_State *L) {
  stream *s = stream_check(L, 1);
  lua_pushinteger(L, s ? (lua_Integer)write_pending(s) : 0);
  return 1;
}

static void shutdown_cb(uv_shutdown_t *req, int status) {
  stream *s = req->handle->data;
  s->shutting = 0;
  if (status < 0 && status != UV_ECANCELED && status != UV_ENOTCONN && !s->werr) s->werr = status;
  if (s->close_wanted) close_now(s);
}

static void start_shutdown(stream *s) {
  int err = uv_shutdown(&s->shutdown_req, &s->u.stream, shutdown_cb);
  if (err)
    s->werr = err;
  else
    s->shutting = 1;
}

/* net.write_eof(h): half-closes once the queued data is written. */
static int net_write_eof(lua_State *L) {
  stream *s = stream_check(L, 1);
  if (s == NULL || s->close_wanted) return raise_closed(L, "write_eof");
  if (s->eof_wanted) return 0;
  s->eof_wanted = 1;
  if (s->tls) tls_shutdown(s); /* close_notify goes out before the TCP half-close */
  write_progress(s);
  return 0;
}

/* ---- closing ---------------------------------------------------------------------- */

static void close_now(stream *s) {
  if (s->closing) return;
  s->closing = 1;
  s->close_wanted = 1;
  uv_close(&s->u.handle, stream_close_cb);
}

static void listener_conn_gone(listener *l);

static void stream_close_cb(uv_handle_t *h) {
  stream *s = h->data;
  waitset_wake(&s->readers);
  waitset_wake(&s->drainers);
  waitset_wake(&s->closers);
  if (s->box) *s->box = NULL;
  if (s->server) listener_conn_gone(s->server);
  if (s->tls) tls_free(s);
  net_untrack(&s->obj);
  waitset_free(&s->readers);
  waitset_free(&s->drainers);
  waitset_free(&s->closers);
  readbuf_free(&s->rb);
  free(s->wfly);
  free(s->wq);
  free(s);
}

/* Stops reading, wakes the reader (it then raises "closed"), and closes once the queued
   writes are out (at once if there are none, or they failed). Pure C. */
void stream_close(stream *s) {
  if (s->close_wanted) return;
  if (s->tls) tls_shutdown(s);
  s->close_wanted = 1;
  stream_pause(s);
  waitset_wake(&s->readers);
  if (s->paused) {
    s->paused = 0;
    waitset_wake(&s->drainers);
  }
  if ((s->wfly_len == 0 && !s->shutting) || s->werr) close_now(s);
}

static void stream_shutdown_obj(net_obj *o) {
  stream *s = container_of(o, stream, obj);
  s->close_wanted = 1;
  stream_pause(s);
  close_now(s);
}

static int net_close(lua_State *L) {
  stream *s = stream_check(L, 1);
  if (s) stream_close(s);
  return 0;
}

static int net_is_closing(lua_State *L) {
  stream *s = stream_check(L, 1);
  lua_pushboolean(L, s == NULL || s->close_wanted);
  return 1;
}

/* net.wait_closed(h) -> a future completed when the handle is closed, or nothing. */
static int net_wait_closed(lua_State *L) {
  stream *s = stream_check(L, 1);
  if (s == NULL) return 0;
  waitset_add(L, &s->closers, 1, SUV_CLOSERS);
  return 1;
}

/* The Lua object is collected: the stream finishes its writes and closes on its own. */
static int stream_gc(lua_State *L) {
  stream **box = lua_touserdata(L, 1);
  stream *s = *box;
  if (s == NULL) return 0;
  *box = NULL;
  s->box = NULL;
  waitset_wake(&s->readers);
  waitset_wake(&s->drainers);
  waitset_wake(&s->closers);
  if (!s->close_wanted)
    debug_report_unclosed(L, 1, s->kind == STREAM_TCP ? "TCP stream" : "Unix stream");
  stream_close(s);
  return 0;
}

static int stream_tostring(lua_State *L) {
  stream *s = stream_check(L, 1);
  lua_pushfstring(L, "<%s stream%s>", s && s->kind == STREAM_PIPE ? "unix" : "tcp",
                  s == NULL         ? " closed"
                  : s->close_wanted ? " closing"
                                    : "");
  return 1;
}

/* ---- connecting and names --------------------------------------------------------- */

void stream_connect_cb(uv_connect_t *req, int status) {
  stream *s = req->handle->data;
  s->connect_status = status;
  if (status == 0 && !s->close_wanted) {
    s->open = 1;
    stream_resume(s);
  }
  waitset_wake(&s->readers);
}

/* net.connect_finish(h): raises the connect error; the stream is then open. */
static int net_connect_finish(lua_State *L) {
  stream *s = stream_check(L, 1);
  if (s == NULL || s->close_wanted) return raise_closed(L, "connect");
  if (s->connect_status < 0) return error_raise_uv(L, "connect", s->connect_status);
  if (!s->open) return luaL_error(L, "connect: not connected yet");
  return 0;
}

/* net.set_limit(h, limit) */
static int net_set_limit(lua_State *L) {
  stream *s = stream_check(L, 1);
  lua_Integer limit = luaL_checkinteger(L, 2);
  luaL_argcheck(L, limit > 0, 2, "limit must be positive");
  if (s) {
    s->limit = (size_t)limit;
    stream_resume(s);
  }
  return 0;
}

/* net.sockname(h) / net.peername(h): host, port (TCP) or the path (Unix). */
static int push_name(lua_State *L, int peer) {
  stream *s = stream_check(L, 1);
  if (s == NULL || s->closing) return 0;
  return s->kind == STREAM_TCP ? tcp_push_name(L, &s->u.tcp, peer)
                               : pipe_push_name(L, &s->u.pipe, peer);
}
static int net_sockname(lua_State *L) { return push_name(L, 0); }
static int net_peername(lua_State *L) { return push_name(L, 1); }

static int net_stream_kind(lua_State *L) {
  stream *s = stream_check(L, 1);
  if (s == NULL) return 0;
  lua_pushstring(L, s->kind == STREAM_TCP ? "tcp" : "unix");
  return 1;
}

/* ---- listeners -------------------------------------------------------------------- */

static void listener_shutdown_obj(net_obj *o);

listener *listener_new(lua_State *L, int kind) {
  net_list *list = net_list_get(L);
  listener **box = lua_newuserdatauv(L, sizeof *box, LUV_COUNT);
  *box = NULL;
  luaL_setmetatable(L, LISTENER_MT);
  listener *l = calloc(1, sizeof *l);
  if (l == NULL) luaL_error(L, "asyncio: out of memory");
  l->kind = (uint8_t)kind;
  l->limit = READ_CHUNK;
  l->nodelay = 1;
  l->serving = 1;
  l->u.handle.data = l;
  l->box = box;
  *box = l;
  net_track(list, &l->obj, listener_shutdown_obj);
  debug_record(L, -1);
  return l;
}

static listener *listener_check(lua_State *L, int idx) {
  return *(listener **)luaL_checkudata(L, idx, LISTENER_MT);
}

/* Frees the listener once its handle is closed and its last connection is gone. */
static void listener_maybe_free(listener *l) {
  if (!l->closed || l->nconns > 0) return;
  waitset_wake(&l->acceptors);
  waitset_wake(&l->closers);
  if (l->box) *l->box = NULL;
  net_untrack(&l->obj);
  waitset_free(&l->acceptors);
  waitset_free(&l->closers);
  free(l->unlink_path);
  free(l);
}

static void listener_conn_gone(listener *l) {
  l->nconns--;
  listener_maybe_free(l);
}

static int listener_accept_one(listener *l) {
  stream *s = stream_alloc(l->u.handle.loop, l->kind, l->obj.list);
  if (s == NULL) return UV_ENOMEM;
  int err = uv_accept(&l->u.stream, &s->u.stream);
  if (err) {
    close_now(s);
    return err;
  }
  s->limit = l->limit;
  if (l->kind == STREAM_TCP) {
    uv_tcp_nodelay(&s->u.tcp, l->nodelay);
    if (l->keepalive) uv_tcp_keepalive(&s->u.tcp, 1, l->keepalive);
  }
  s->server = l;
  l->nconns++;
  if (l->pending_last)
    l->pending_last->next_pending = s;
  else
    l->pending_first = s;
  l->pending_last = s;
  l->npending++;
  s->open = 1;
  stream_resume(s);
  return 0;
}

/* Is a descriptor left for the next connection? When accept fails with EMFILE, libuv
   closes every connection waiting in the backlog, and nobody hears of it. So the
   listener takes a connection only while one is left: else it leaves it with libuv,
   which then stops accepting, the others wait in the backlog (as in Python), and
   net.accept says why until descriptors are free again. */
static int fd_left(listener *l) {
  uv_os_fd_t fd;
  if (uv_fileno(&l->u.handle, &fd) != 0) return 1;
  int probe = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (probe < 0) return errno != EMFILE && errno != ENFILE;
  close(probe);
  return 1;
}

static void listener_connection_cb(uv_stream_t *server, int status) {
  listener *l = server->data;
  if (l->closing) return;
  if (status < 0) {
    l->accept_err = status;
  } else if (!l->serving || l->npending >= PENDING_MAX || !fd_left(l)) {
    l->deferred = 1; /* libuv stops polling until uv_accept: the backlog holds the rest */
  } else {
    int err = listener_accept_one(l);
    if (err == UV_ENOMEM)
      l->deferred = 1;
    else if (err)
      l->accept_err = err;
  }
  waitset_wake(&l->acceptors);
}

int listener_start(listener *l, int backlog) {
  return uv_listen(&l->u.stream, backlog, listener_connection_cb);
}

static void listener_close_cb(uv_handle_t *h) {
  listener *l = h->data;
  l->closed = 1;
  listener_maybe_free(l);
}

void listener_close(listener *l) {
  if (l->closing) return;
  l->closing = 1;
  while (l->pending_first) { /* accepted, never handed to Lua */
    stream *s = l->pending_first;
    l->pending_first = s->next_pending;
    s->close_wanted = 1;
    stream_pause(s);
    close_now(s);
  }
  l->pending_last = NULL;
  l->npending = 0;
  if (l->unlink_path) unlink(l->unlink_path);
  waitset_wake(&l->acceptors);
  if (l->u.handle.type != UV_UNKNOWN_HANDLE) {
    uv_close(&l->u.handle, listener_close_cb);
  } else { /* its handle was never initialised */
    l->closed = 1;
    listener_maybe_free(l);
  }
}

static void listener_shutdown_obj(net_obj *o) { listener_close(container_of(o, listener, obj)); }

/* net.accept(l) -> a stream; nothing: wait; false: the listener is closed;
   nil, err: accepting failed (the listener goes on); nil, err, first: out of
   descriptors, call again later (first: the first time since there were some). */
static int net_accept(lua_State *L) {
  listener *l = listener_check(L, 1);
  if (l == NULL || l->closing) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (l->pending_first == NULL && l->deferred && l->serving) {
    if (!fd_left(l)) {
      lua_pushnil(L);
      error_push_uv(L, "accept", UV_EMFILE);
      lua_pushboolean(L, !l->starved);
      l->starved = 1;
      return 3;
    }
    l->starved = 0;
    l->deferred = 0;
    int err = listener_accept_one(l);
    if (err) l->accept_err = err;
  }
  if (l->accept_err) {
    int err = l->accept_err;
    l->accept_err = 0;
    lua_pushnil(L);
    error_push_uv(L, "accept", err);
    return 2;
  }
  stream *s = l->pending_first;
  if (s == NULL) return 0;
  luaL_checkstack(L, 2, NULL);
  stream **box = lua_newuserdatauv(L, sizeof *box, SUV_COUNT);
  *box = NULL;
  luaL_setmetatable(L, STREAM_MT);
  l->pending_first = s->next_pending;
  if (l->pending_first == NULL) l->pending_last = NULL;
  l->npending--;
  s->next_pending = NULL;
  *box = s;
  s->box = box;
  return 1;
}

static int net_wait_accept(lua_State *L) {
  listener *l = listener_check(L, 1);
  if (l == NULL || l->closing) return 0;
  waitset_add(L, &l->acceptors, 1, LUV_ACCEPTORS);
  return 1;
}

static int net_listener_close(lua_State *L) {
  listener *l = listener_check(L, 1);
  if (l) listener_close(l);
  return 0;
}

/* net.listener_wait_closed(l) -> a future completed once the listener is closed and its
   connections are all closed (Python 3.12's Server.wait_closed), or nothing. */
static int net_listener_wait_closed(lua_State *L) {
  listener *l = listener_check(L, 1);
  if (l == NULL) return 0;
  waitset_add(L, &l->closers, 1, LUV_CLOSERS);
  return 1;
}

static int net_listener_is_serving(lua_State *L) {
  listener *l = listener_check(L, 1);
  lua_pushboolean(L, l != NULL && !l->closing && l->serving);
  return 1;
}

/* net.listener_serve(l): starts accepting (start_serving = false made it wait). */
static int net_listener_serve(lua_State *L) {
  listener *l = listener_check(L, 1);
  if (l == NULL || l->closing || l->serving) return 0;
  l->serving = 1;
  waitset_wake(&l->acceptors);
  return 0;
}

static int net_listener_sockname(lua_State *L) {
  listener *l = listener_check(L, 1);
  if (l == NULL || l->closing) return 0;
  return l->kind == STREAM_TCP ? tcp_push_name(L, &l->u.tcp, 0) : pipe_push_name(L, &l->u.pipe, 0);
}

/* net.listener_options(l, limit, nodelay, keepalive, start_serving): the options of the
   connections it accepts; whether it accepts them yet. */
static int net_listener_options(lua_State *L) {
  listener *l = listener_check(L, 1);
  if (l == NULL) return 0;
  lua_Integer limit = luaL_optinteger(L, 2, READ_CHUNK);
  luaL_argcheck(L, limit > 0, 2, "limit must be positive");
  l->limit = (size_t)limit;
  l->nodelay = lua_isnoneornil(L, 3) ? 1 : (uint8_t)lua_toboolean(L, 3);
  l->keepalive = (unsigned)luaL_optinteger(L, 4, 0);
  l->serving = lua_isnoneornil(L, 5) ? 1 : (uint8_t)lua_toboolean(L, 5);
  return 0;
}

/* The collected listener closes; it is freed once its connections are gone too. */
static int listener_gc(lua_State *L) {
  listener **box = lua_touserdata(L, 1);
  listener *l = *box;
  if (l == NULL) return 0;
  *box = NULL;
  l->box = NULL;
  waitset_wake(&l->acceptors);
  waitset_wake(&l->closers);
  if (!l->closing) debug_report_unclosed(L, 1, "server");
  listener_close(l);
  return 0;
}

static int listener_tostring(lua_State *L) {
  listener *l = listener_check(L, 1);
  lua_pushfstring(L, "<listener%s>", l == NULL || l->closing ? " closed" : "");
  return 1;
}

/* ---- reader and writer methods that may wait: operations (op.c) -------------------- */

/* An operation's arguments: base = the stream userdata (checked when the operation was
   made), base + 1 = its own argument. */
static stream *op_stream(lua_State *L, int base) { return *(stream **)lua_touserdata(L, base); }

static int read_attempt(lua_State *L, int base) {
  return read_some(L, op_stream(L, base), lua_tointeger(L, base + 1));
}
static int readline_attempt(lua_State *L, int base) { return read_line(L, op_stream(L, base), 0); }
static int readuntil_attempt(lua_State *L, int base) {
  size_t seplen;
  const char *sep = lua_tolstring(L, base + 1, &seplen);
  return read_until(L, op_stream(L, base), sep, seplen);
}
static int readexactly_attempt(lua_State *L, int base) {
  return read_exactly(L, op_stream(L, base), lua_tointeger(L, base + 1));
}
static void read_arm(lua_State *L, int base) { wait_read(L, base, "read"); }

static int drain_attempt(lua_State *L, int base) {
  return drain_needed(L, op_stream(L, base)) ? -1 : 0;
}
static void drain_arm(lua_State *L, int base) { wait_drain(L, base); }

static const op_spec read_op = {"StreamReader.read", read_attempt, read_arm};
static const op_spec readline_op = {"StreamReader.readline", readline_attempt, read_arm};
static const op_spec readuntil_op = {"StreamReader.readuntil", readuntil_attempt, read_arm};
static const op_spec readexactly_op = {"StreamReader.readexactly", readexactly_attempt, read_arm};
static const op_spec drain_op = {"StreamWriter.drain", drain_attempt, drain_arm};

/* Upvalues of the reader and writer methods (net.stream_methods). */
enum { MUP_STREAM_MT = 1, MUP_READ_TO_EOF, MUP_DONE, MUP_HANDLE_KEY, MUP_COUNT = MUP_HANDLE_KEY };

/* Pushes the stream userdata of the reader or writer table `self` at index 1; returns
   its stream (NULL once closed). Its type is tested against the metatable in an upvalue,
   the cheapest test there is: these methods run on every request of a busy server. */
static stream *push_handle(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_pushvalue(L, lua_upvalueindex(MUP_HANDLE_KEY)); /* "_h", interned once */
  lua_rawget(L, 1);
  if (!lua_getmetatable(L, -1) || !lua_rawequal(L, -1, lua_upvalueindex(MUP_STREAM_MT)))
    luaL_argerror(L, 1, "not a StreamReader or StreamWriter (its _h is not a stream)");
  lua_pop(L, 1);
  return *(stream **)lua_touserdata(L, -1);
}

/* reader:read(n): up to n bytes, at least one unless at the end ("" there). n omitted
   or negative: everything up to the end, by the async function in upvalue 1. */
static int reader_read(lua_State *L) {
  lua_Integer n = luaL_optinteger(L, 2, -1);
  push_handle(L);
  if (n < 0) {
    lua_pushvalue(L, lua_upvalueindex(MUP_READ_TO_EOF));
    lua_insert(L, -2);
    lua_call(L, 1, 1);
    return 1;
  }
  lua_pushinteger(L, n);
  op_push(L, &read_op, 2);
  return 1;
}

/* reader:readline(): a line with its "\n"; at the end the partial last line, then "". */
static int reader_readline(lua_State *L) {
  push_handle(L);
  op_push(L, &readline_op, 1);
  return 1;
}

/* reader:readuntil(sep): the data up to and including sep (default "\n"). */
static int reader_readuntil(lua_State *L) {
  size_t seplen;
  luaL_optlstring(L, 2, "\n", &seplen);
  luaL_argcheck(L, seplen > 0, 2, "the separator must not be empty");
  if (lua_isnoneornil(L, 2)) {
    lua_settop(L, 1);
    lua_pushliteral(L, "\n");
  }
  push_handle(L);
  lua_pushvalue(L, 2);
  op_push(L, &readuntil_op, 2);
  return 1;
}

/* reader:readexactly(n): n bytes, or IncompleteReadError (partial, expected). */
static int reader_readexactly(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n >= 0, 2, "readexactly size can not be less than zero");
  push_handle(L);
  lua_pushinteger(L, n);
  op_push(L, &readexactly_op, 2);
  return 1;
}

/* writer:write(data): plain call; sends at once what the socket takes, queues the rest. */
static int writer_write(lua_State *L) {
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  return write_data(L, push_handle(L), data, len);
}

/* writer:drain(): waits while the write buffer is above its high-water mark; raises the
   connection's error (BrokenPipeError, ConnectionError ECONNRESET, ...). Below the mark
   and without error, as after most writes, it returns a Future already done (upvalue):
   nothing to wait for, nothing allocated. */
static int writer_drain(lua_State *L) {
  stream *s = push_handle(L);
  if (s == NULL || (!s->werr && !s->rerr && !(s->paused && !s->close_wanted))) {
    lua_pushvalue(L, lua_upvalueindex(MUP_DONE));
    return 1;
  }
  op_push(L, &drain_op, 1);
  return 1;
}

static const luaL_Reg stream_methods[] = {
    {"read", reader_read},
    {"readline", reader_readline},
    {"readuntil", reader_readuntil},
    {"readexactly", reader_readexactly},
    {"write", writer_write},
    {"drain", writer_drain},
    {NULL, NULL},
};

/* net.stream_methods(read_to_eof, done) -> the methods above: read uses the async
   function read_to_eof for reads to the end of the stream, drain returns `done`, a
   Future already done, when there is nothing to wait for. */
static int net_stream_methods(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  future_check(L, 2);
  lua_settop(L, 2);
  lua_newtable(L);
  luaL_getmetatable(L, STREAM_MT);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_pushliteral(L, "_h");
  luaL_setfuncs(L, stream_methods, MUP_COUNT);
  return 1;
}

/* ---- module ----------------------------------------------------------------------- */

/* net.fileno(h) -> the descriptor of a stream or a listener, -1 once closed (LuaSocket's
   getfd) */
static int net_fileno(lua_State *L) {
  uv_os_fd_t fd = -1;
  if (luaL_testudata(L, 1, LISTENER_MT)) {
    listener *l = listener_check(L, 1);
    if (l == NULL || l->closing || uv_fileno(&l->u.handle, &fd) != 0) fd = -1;
  } else {
    stream *s = stream_check(L, 1);
    if (s == NULL || s->close_wanted || uv_fileno(&s->u.handle, &fd) != 0) fd = -1;
  }
  lua_pushinteger(L, fd);
  return 1;
}

static const luaL_Reg stream_functions[] = {
    {"fileno", net_fileno},
    {"read_line", net_read_line},
    {"stream_methods", net_stream_methods},
    {"read_some", net_read_some},
    {"at_eof", net_at_eof},
    {"wait_read", net_wait_read},
    {"write", net_write},
    {"drain_needed", net_drain_needed},
    {"wait_drain", net_wait_drain},
    {"set_write_limits", net_set_write_limits},
    {"write_buffer_size", net_write_buffer_size},
    {"write_eof", net_write_eof},
    {"close", net_close},
    {"is_closing", net_is_closing},
    {"wait_closed", net_wait_closed},
    {"connect_finish", net_connect_finish},
    {"set_limit", net_set_limit},
    {"sockname", net_sockname},
    {"peername", net_peername},
    {"stream_kind", net_stream_kind},
    {"accept", net_accept},
    {"wait_accept", net_wait_accept},
    {"listener_close", net_listener_close},
    {"listener_wait_closed", net_listener_wait_closed},
    {"listener_is_serving", net_listener_is_serving},
    {"listener_serve", net_listener_serve},
    {"listener_sockname", net_listener_sockname},
    {"listener_options", net_listener_options},
    {NULL, NULL},
};

static void new_metatable(lua_State *L, const char *name, lua_CFunction gc,
                          lua_CFunction tostring) {
  luaL_newmetatable(L, name);
  lua_pushcfunction(L, gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
}

/* ---- what a task waits on, for print_tasks (debug.c) ----------------------------- */

int waitset_holds(const waitset *ws, const future *f) {
  for (int i = 0; i < ws->n; i++)
    if (ws->v[i] == f) return 1;
  return 0;
}

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

net_obj *net_list_first(lua_State *L) {
  net_list *list = net_list_get(L);
  return list ? list->first : NULL;
}

static int describe_wait(lua_State *L, future *f) {
  for (net_obj *o = net_list_first(L); o; o = o->next) {
    if (o->shutdown == stream_shutdown_obj) {
      stream *s = container_of(o, stream, obj);
      const char *what = waitset_holds(&s->readers, f)    ? (s->open ? "read" : "connect")
                         : waitset_holds(&s->drainers, f) ? "drain"
                         : waitset_holds(&s->closers, f)  ? "wait_closed"
                                                          : NULL;
      if (what) {
        push_wait_text(L, what, &s->u, s->kind, 1);
        return 1;
      }
    } else if (o->shutdown == listener_shutdown_obj) {
      listener *l = container_of(o, listener, obj);
      const char *what = waitset_holds(&l->acceptors, f) ? "accept"
                         : waitset_holds(&l->closers, f) ? "Server.wait_closed"
                                                         : NULL;
      if (what) {
        push_wait_text(L, what, &l->u, l->kind, 0);
        return 1;
      }
    }
  }
  return 0;
}

/* Adds the stream and listener primitives streams.lua builds on to the table on top
   (core.net). */
void stream_open(lua_State *L) {
  debug_add_wait_describer(describe_wait);
  /* a write to a socket the peer closed must fail with EPIPE, not kill the process
     (libuv writes with write(2)); a host's own SIGPIPE handler is left alone */
  struct sigaction sa;
  if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) signal(SIGPIPE, SIG_IGN);

  lua_rawgetp(L, LUA_REGISTRYINDEX, &net_key);
  int exists = !lua_isnil(L, -1);
  lua_pop(L, 1);
  if (!exists) {
    net_list **box = lua_newuserdatauv(L, sizeof *box, 0);
    *box = NULL;
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, net_list_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    *box = calloc(1, sizeof **box);
    if (*box == NULL) luaL_error(L, "asyncio: out of memory");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &net_key);
  }
  new_metatable(L, STREAM_MT, stream_gc, stream_tostring);
  luaL_getmetatable(L, STREAM_MT);
  type_register(L, -1, &type_stream);
  lua_pop(L, 1);
  new_metatable(L, LISTENER_MT, listener_gc, listener_tostring);

  luaL_setfuncs(L, stream_functions, 0);
}

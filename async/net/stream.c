/* stream.c — a buffered TCP or Unix socket stream in C: the read buffer (readbuf.c; taken
   from a pool of the thread's while it holds data) filled by libuv up to twice `limit`,
   writes tried at once and queued behind, half-close and close; no Lua here but for
   creating and checking the userdata (streamlib.c binds it). */
#include <stdlib.h>
#include <string.h>

#include "net.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h> /* a buffer in the pool is off limits, as if freed */
#else
#define ASAN_POISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
#define ASAN_UNPOISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
#endif

#define BUF_MAX ((size_t)1 << 30)
#define WRITE_MAX ((size_t)16 << 30) /* bytes queued on one stream at most */

char stream_type; /* the key of STREAM_MT (type.c) */

/* ---- read buffers no stream holds ---------------------------------------------------

   A stream whose buffer empties gives it back here, and the next stream to read on this
   thread (a loop runs on one thread) takes the one given back last: reads land in memory
   the cache still holds. With a buffer per connection, ten connections of 64 KiB
   messages cycle through ten buffers, each one cold again when its turn comes, and the
   kernel's copy into it costs more than the copy into a hot one (raw C's echo server:
   4 us of its 32 us per request, bench/RESULTS.md). A stream without pending data holds
   no buffer. Only buffers of the default read target's size are kept, never more than
   there are streams on the thread (so never more memory than one per stream, as before);
   the last stream to close frees them. */
enum { POOL_BUF = 2 * READ_CHUNK };

static _Thread_local struct {
  char **free; /* a stack: the last given back is taken first */
  size_t n, cap;
  size_t streams;         /* streams alive on this thread */
  readbuf_alloc_fn alloc; /* the allocator of the buffers it holds */
  void *ud;
} pool;

/* The pool's buffers as a readbuf's, to free them. */
static readbuf pool_owner(void) {
  readbuf b = {
      .alloc = pool.alloc, .ud = pool.ud, .front = pool.alloc ? streamlib_string_front() : 0};
  return b;
}

/* Frees the pool's buffers down to `keep`. */
static void pool_drop(size_t keep) {
  readbuf owner = pool_owner();
  while (pool.n > keep) {
    char *p = pool.free[--pool.n];
    ASAN_UNPOISON_MEMORY_REGION(p, POOL_BUF);
    readbuf_block_free(&owner, p, POOL_BUF);
  }
}

static void pool_trim(void) {
  pool_drop(pool.streams);
  if (pool.streams == 0) {
    free(pool.free);
    pool.free = NULL;
    pool.cap = 0;
  }
}

/* Makes room in the pool's stack for one more buffer: 0 if memory is short. */
static int pool_grow(void) {
  size_t cap = pool.cap ? 2 * pool.cap : 16;
  char **v = realloc(pool.free, cap * sizeof *v);
  if (v == NULL) return 0;
  pool.free = v;
  pool.cap = cap;
  return 1;
}

/* Is the pool for buffers of b's allocator? It takes the first allocator it meets, and
   another once it is empty (states on one thread with different allocators). */
static int pool_serves(const readbuf *b) {
  if (pool.n == 0) {
    pool.alloc = b->alloc;
    pool.ud = b->ud;
  }
  return pool.alloc == b->alloc && pool.ud == b->ud;
}

/* lua_close of a state: if the pool's buffers are its allocator's, they go now (a host
   may free what its allocator uses once the state is closed), also when none of the
   state's streams is left to do it (stream_shutdown_obj): streams of other states on the
   thread keep the pool from emptying when the state's own streams close. */
void stream_pool_release(lua_Alloc alloc, void *ud) {
  if (pool.n > 0 && pool.alloc == alloc && pool.ud == ud) pool_drop(0);
}

/* Gives an emptied buffer back (or frees it). */
static void pool_put(readbuf *b) {
  if (b->buf == NULL) return;
  if (b->cap == POOL_BUF && pool.n < pool.streams && pool_serves(b) &&
      (pool.n < pool.cap || pool_grow())) {
    ASAN_POISON_MEMORY_REGION(b->buf, POOL_BUF);
    pool.free[pool.n++] = b->buf;
    b->buf = NULL;
    b->pos = b->len = b->cap = 0;
    return;
  }
  readbuf_free(b);
}

/* ---- where a buffer may lie ---------------------------------------------------------

   On this project's machines (AMD EPYC) the kernel copies a message between a socket's
   pages and user memory far more slowly when the user buffer starts 8 to 24 bytes after
   or before a page boundary: the copy's loads and stores then alias at 4 KiB strides
   with the socket buffer's page-aligned data. An echo of 64 KiB through a buffer there
   costs 51 us a round trip instead of 30 (bench/RESULTS.md: every other offset measured
   costs the same). glibc puts blocks at any 16-byte position, so about one in 40 lands
   there, and a block reused message after message made whole runs several us per
   request dearer (Python's bytes objects sit 48 bytes into fresh pages, never there). So
   a new buffer is never taken there: a block that malloc puts there is held while
   another is asked for, then freed (it may be handed out again, and passed over again:
   a few hundred instructions, against ~20 us a message). */
enum { PAGE_EDGE = 64, EDGE_TRIES = 4 };

static int near_page_edge(const char *p) {
  size_t off = (uintptr_t)p & 4095;
  return off != 0 && (off < PAGE_EDGE || off > 4096 - PAGE_EDGE);
}

/* A new block for b of cap bytes, away from a page's edge if a few tries find one: the
   blocks found there are held while the next is taken (so that it lies elsewhere), then
   freed. */
static char *block_new(readbuf *b, size_t cap) {
  char *p = readbuf_block_new(b, cap);
  char *held[EDGE_TRIES];
  int n = 0;
  while (p && near_page_edge(p) && n < EDGE_TRIES) {
    held[n++] = p;
    p = readbuf_block_new(b, cap);
  }
  while (n > 0) readbuf_block_free(b, held[--n], cap);
  return p;
}

/* An empty stream without a buffer, reading with the default target or more, takes one
   of the pool's (or a new one of that size). */
static void pool_take(readbuf *b, size_t target) {
  if (b->buf != NULL || target < POOL_BUF) return;
  char *p = pool.n > 0 && pool_serves(b) ? pool.free[--pool.n] : block_new(b, POOL_BUF);
  if (p == NULL) return; /* readbuf_space tries again, smaller */
  ASAN_UNPOISON_MEMORY_REGION(p, POOL_BUF);
  b->buf = p;
  b->cap = POOL_BUF;
  b->pos = b->len = 0;
}

static void stream_close_cb(uv_handle_t *h);
static void stream_shutdown_obj(owned *o);
static void stream_write_cb(uv_write_t *req, int status);

/* How much the buffer may hold before the socket stops being read: twice the limit, as
   Python's StreamReader pauses its transport above 2 x limit (or a larger readexactly's
   n). A message of `limit` bytes then fits with room to spare: libuv's read comes back
   short of the room and reading goes on, where a buffer bounded at the limit was full
   after each such message and reading stopped and restarted (two epoll_ctl calls, one
   failing with EEXIST) once per message of the 64 KiB echo. */
static size_t read_target(const stream *s) {
  size_t held = s->limit > BUF_MAX ? 2 * BUF_MAX : 2 * s->limit;
  return s->want > held ? s->want : held;
}

/* A stream struct with its handle initialised, not yet tied to a Lua object. NULL if
   memory or libuv refuses. */
stream *stream_alloc(uv_loop_t *uv, int kind, owner_list *list, lua_Alloc alloc, void *ud) {
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
  s->rb.front = streamlib_string_front();
  if (s->rb.front > 0) { /* else plain malloc: no buffer can become a string */
    s->rb.alloc = alloc;
    s->rb.ud = ud;
  }
  pool.streams++;
  s->high_water = HIGH_WATER;
  s->low_water = LOW_WATER;
  owner_track(list, &s->obj, stream_shutdown_obj);
  return s;
}

/* Pushes an empty stream userdata: its __gc finds NULL until a struct is tied to it. */
static stream **stream_box_new(lua_State *L) {
  stream **box = lua_newuserdatauv(L, sizeof *box, SUV_COUNT);
  *box = NULL;
  type_setmetatable(L, &stream_type);
  return box;
}

stream *stream_new(lua_State *L, int kind) {
  owner_list *list = owner_list_get(L);
  stream **box = stream_box_new(L);
  void *ud;
  lua_Alloc alloc = lua_getallocf(L, &ud);
  stream *s = stream_alloc(loop_get(L)->uv, kind, list, alloc, ud);
  if (s == NULL) luaL_error(L, "asyncio: cannot create a socket handle");
  *box = s;
  s->box = box;
  debug_record(L, -1);
  return s;
}

void stream_wrap(lua_State *L, stream *s) {
  stream **box = stream_box_new(L);
  *box = s;
  s->box = box;
}

stream *stream_check(lua_State *L, int idx) {
  return *(stream **)type_check(L, idx, &stream_type, STREAM_MT);
}

/* ---- reading ---------------------------------------------------------------------- */

/* A stream without a buffer whose last read became a string (streamlib.c) reads next
   into a buffer of that size plus one byte: the next message is likely as long, and with
   a byte to spare the read comes back short, which tells libuv the socket is drained (no
   second read). The strings of those reads free blocks of that size (a byte less than
   such a buffer's block: the same chunk to malloc, which rounds to 16 bytes, 15 times
   in 16), which malloc then hands back, still in the cache: reads then cost the kernel
   less than into a larger block (D64K: 1.3 us per request, paired rounds,
   bench/RESULTS.md). */
static void take_last_size(stream *s, size_t target) {
  if (s->rb.buf != NULL || s->handed_off < MIN_READ || s->handed_off >= target) return;
  char *p = block_new(&s->rb, s->handed_off + 1);
  if (p == NULL) return;
  s->rb.buf = p;
  s->rb.cap = s->handed_off + 1;
  s->rb.pos = s->rb.len = 0;
}

/* Makes room at the end of the read buffer (compacting it, growing it towards the read
   target) and returns it: what the socket, or TLS decryption, may fill next. */
size_t stream_read_space(stream *s, char **space) {
  size_t target = read_target(s);
  take_last_size(s, target);
  pool_take(&s->rb, target);
  return readbuf_space(&s->rb, target, space);
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
    if (s->rb.len == 0) pool_put(&s->rb); /* nothing read after all */
    return;
  }
  if (s->rb.len == 0) pool_put(&s->rb);
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

void stream_consume(stream *s, size_t n) {
  readbuf_consume(&s->rb, n, read_target(s));
  if (s->rb.len == 0) pool_put(&s->rb);
  stream_resume(s);
}

/* A read that makes a string of the buffer's first n bytes takes them out of the buffer
   first: the collection lua_pushlstring runs once it has copied them may call a
   finalizer that reads this same stream (a LuaSocket object's receive), which must find
   the bytes after them. Counted as buffered until the read's consume, they were read
   again there, and that consume then dropped as many bytes that came after (or, past the
   end, wrapped the buffer's length: a crash in the next search). They stay where they
   are, unchanged, until stream_consume(s, 0), which may free or pool the block. */
const char *stream_take(stream *s, size_t n) {
  const char *p = s->rb.buf + s->rb.pos;
  s->rb.pos += n;
  s->rb.len -= n;
  return p;
}

/* ---- writing ---------------------------------------------------------------------- */

static void start_shutdown(stream *s);

size_t stream_write_pending(const stream *s) { return s->wfly_len + s->wq_len; }

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
void stream_write_progress(stream *s) {
  if (s->closing) return;
  if (s->wfly_len == 0 && s->wq_len > 0 && !s->werr) flush_queue(s);
  if (s->paused && (stream_write_pending(s) <= s->low_water || s->werr)) {
    s->paused = 0;
    waitset_wake(&s->drainers);
  }
  if (s->wfly_len > 0) return;
  if (s->eof_wanted && !s->shutting && !s->werr && !s->close_wanted) start_shutdown(s);
  if (s->close_wanted && !s->shutting) stream_close(s, STREAM_CLOSE_NOW);
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
  stream_write_progress(s);
}

static int queue_append(stream *s, const char *data, size_t len) {
  if (len > WRITE_MAX - stream_write_pending(s)) return UV_ENOBUFS;
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
  if (stream_write_pending(s) == 0) {
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
  if (stream_write_pending(s) > s->high_water) s->paused = 1;
  return 0;
}

static void shutdown_cb(uv_shutdown_t *req, int status) {
  stream *s = req->handle->data;
  s->shutting = 0;
  if (status < 0 && status != UV_ECANCELED && status != UV_ENOTCONN && !s->werr) s->werr = status;
  if (s->close_wanted) stream_close(s, STREAM_CLOSE_NOW);
}

static void start_shutdown(stream *s) {
  int err = uv_shutdown(&s->shutdown_req, &s->u.stream, shutdown_cb);
  if (err)
    s->werr = err;
  else
    s->shutting = 1;
}

/* ---- closing ---------------------------------------------------------------------- */

static void stream_close_cb(uv_handle_t *h) {
  stream *s = h->data;
  waitset_wake(&s->readers);
  waitset_wake(&s->drainers);
  waitset_wake(&s->closers);
  if (s->box) *s->box = NULL;
  if (s->server) listener_conn_gone(s->server);
  if (s->tls) tls_free(s);
  owner_untrack(&s->obj);
  waitset_free(&s->readers);
  waitset_free(&s->drainers);
  waitset_free(&s->closers);
  pool.streams--;
  pool_put(&s->rb);
  pool_trim();
  free(s->wfly);
  free(s->wq);
  free(s);
}

/* The one way a stream starts closing. STREAM_CLOSE_FLUSH (close(), a collected stream):
   stops reading, wakes the reader (it then raises "closed"), and closes once the queued
   writes are out (at once if there are none, or they failed). STREAM_CLOSE_NOW (the
   owner list at lua_close, a listener's connections nobody took, the end of a flush):
   closes the handle at once, dropping what is queued. Pure C; the struct is freed in
   the close callback. */
void stream_close(stream *s, enum stream_close_how how) {
  if (how == STREAM_CLOSE_RESET) { /* STREAM_CLOSE_NOW, waking the reader, as a reset */
    if (s->closing) return;
    s->close_wanted = 1;
    s->wq_len = 0;
    stream_pause(s);
    waitset_wake(&s->readers);
    if (s->paused) {
      s->paused = 0;
      waitset_wake(&s->drainers);
    }
    if (s->kind == STREAM_TCP && !s->shutting &&
        uv_tcp_close_reset(&s->u.tcp, stream_close_cb) == 0) {
      s->closing = 1;
      return;
    }
    how = STREAM_CLOSE_NOW;
  }
  if (how == STREAM_CLOSE_NOW) {
    s->close_wanted = 1;
    stream_pause(s);
    if (s->closing) return;
    s->closing = 1;
    uv_close(&s->u.handle, stream_close_cb);
    return;
  }
  if (s->close_wanted) return;
  if (s->tls) tls_shutdown(s);
  s->close_wanted = 1;
  stream_pause(s);
  waitset_wake(&s->readers);
  if (s->paused) {
    s->paused = 0;
    waitset_wake(&s->drainers);
  }
  if ((s->wfly_len == 0 && !s->shutting) || s->werr) stream_close(s, STREAM_CLOSE_NOW);
}

/* What f is to the stream that owns o, for print_tasks: "read", "drain", "wait_closed",
   or NULL when o is no stream or f none of its waits. */
const char *stream_wait_name(owned *o, const future *f) {
  if (o->shutdown != stream_shutdown_obj) return NULL;
  stream *s = container_of(o, stream, obj);
  return waitset_holds(&s->readers, f)    ? (s->open ? "read" : "connect")
         : waitset_holds(&s->drainers, f) ? "drain"
         : waitset_holds(&s->closers, f)  ? "wait_closed"
                                          : NULL;
}

/* lua_close: the buffers go now, while the state's allocator surely exists (a host's
   loop may call the close callback after lua_close). */
static void stream_shutdown_obj(owned *o) {
  stream *s = container_of(o, stream, obj);
  stream_close(s, STREAM_CLOSE_NOW);
  if (s->rb.alloc && pool.alloc == s->rb.alloc && pool.ud == s->rb.ud) pool_drop(0);
  readbuf_free(&s->rb);
}

/* ---- connecting ------------------------------------------------------------------- */

void stream_connect_cb(uv_connect_t *req, int status) {
  stream *s = req->handle->data;
  s->connect_status = status;
  if (status == 0 && !s->close_wanted) {
    s->open = 1;
    stream_resume(s);
  }
  waitset_wake(&s->readers);
}

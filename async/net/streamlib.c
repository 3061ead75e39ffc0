/* streamlib.c — the Lua bindings of streams (core.net): reads sliced from the buffer
   (lines, separators, exact counts), writes, drain, close, names, the errors they raise,
   and the reader and writer methods that return operations (op.c). */
#include <string.h>

#include "net.h"

/* ---- errors ----------------------------------------------------------------------- */

static int raise_closed(lua_State *L, const char *op) {
  return error_raise_uv_msg(L, op, UV_EBADF, "%s: the stream is closed", op);
}

/* The stream's error: an SSLError once TLS failed, else the OSError of a uv code. */
int streamlib_raise(lua_State *L, stream *s, const char *op, int err) {
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

/* ---- a read buffer becoming the string itself -------------------------------------

   `read` returns a Lua string, and Lua 5.4's API makes one only by copying from memory
   the caller supplies (lua_pushlstring: an allocation, then a memcpy into it). Python's
   recv fills the bytes object it returns, no copy; for a 64 KiB message the copy was
   the largest user-space cost of alua's echo (bench/RESULTS.md, issue 22). So a stream's
   read buffer is a block of its Lua state's allocator with room in front for a string's
   header, and a read that takes the whole buffer hands the block itself to Lua:
   lua_pushlstring's allocation of the string is answered with that block (an allocator
   installed for that one call), and its memcpy then has the same source and destination,
   which glibc's memcpy returns from at once (GCC and Clang rely on memcpy(p, p, n) being
   harmless for struct self-assignment; ASan and valgrind accept it). The header's size
   is learnt at start-up from Lua itself, not from its headers; if what is learnt looks
   wrong, buffers are plain malloc and every read copies, as before. */

/* Below this a read copies: cheap, and the buffer stays for the next read. */
enum { HANDOFF_MIN = 16 * 1024 };

static _Atomic size_t string_front; /* a long string's contents after its block's start */

size_t streamlib_string_front(void) { return string_front; }

/* The first long string's block and size while the probe is installed. */
typedef struct probe {
  lua_Alloc f;
  void *ud;
  void *block;
  size_t size;
} probe;

static void *probe_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  probe *p = ud;
  void *r = p->f(p->ud, ptr, osize, nsize);
  if (ptr == NULL && osize == LUA_TSTRING && p->block == NULL) { /* osize: the new object's type */
    p->block = r;
    p->size = nsize;
  }
  return r;
}

enum { PROBE_LEN = 100 };

static int probe_string(lua_State *L) {
  char text[PROBE_LEN];
  memset(text, 'x', sizeof text);
  lua_pushlstring(L, text, sizeof text);
  return 1;
}

/* Learns string_front from a 100-byte string's allocation: its contents must lie inside
   its block, with the size Lua asks for being front + 100 + 1 (its terminating 0). The
   string is made under a pcall: a memory error must not leave the probe, and `p` on a
   stack unwound, as the state's allocator. */
static void learn_string_front(lua_State *L) {
  probe p = {.block = NULL};
  p.f = lua_getallocf(L, &p.ud);
  lua_pushcfunction(L, probe_string);
  lua_setallocf(L, probe_alloc, &p);
  int status = lua_pcall(L, 0, 1, 0);
  lua_setallocf(L, p.f, p.ud);
  if (status != LUA_OK) lua_error(L);
  const char *contents = lua_tostring(L, -1);
  size_t front = p.block ? (size_t)(contents - (const char *)p.block) : 0;
  if (p.block && contents > (const char *)p.block && front < 256 && p.size == front + PROBE_LEN + 1)
    string_front = front;
  lua_pop(L, 1);
}

/* The one allocation lua_pushlstring makes for the string, answered with a block. */
typedef struct handoff {
  lua_State *L;
  lua_Alloc f;
  void *ud;
  char *block; /* NULL once given */
  size_t size;
} handoff;

static void *handoff_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  handoff *h = ud;
  if (ptr == NULL && nsize == h->size && h->block) {
    void *block = h->block;
    h->block = NULL;
    lua_setallocf(h->L, h->f, h->ud); /* before anything else runs, a collection included */
    return block;
  }
  return h->f(h->ud, ptr, osize, nsize);
}

/* Pushes the first n bytes of the buffer and drops them from it: the buffer's own block
   when they are all it holds, at its start, and many enough to be worth a new buffer for
   the next read; else a copy. */
static void push_taken(lua_State *L, stream *s, size_t n) {
  readbuf *b = &s->rb;
  handoff h = {.L = L};
  if (n < HANDOFF_MIN || n != b->len || b->pos != 0 || b->alloc == NULL ||
      (h.f = lua_getallocf(L, &h.ud)) != b->alloc || h.ud != b->ud) {
    s->handed_off = 0; /* the next buffer: the pool's */
    lua_pushlstring(L, stream_take(s, n), n);
    stream_consume(s, 0);
    return;
  }
  /* the stream lets go of the buffer first: Lua code that runs in the collection
     lua_pushlstring may make (a finalizer) finds it empty, not the same data again */
  h.size = readbuf_block_size(b, n); /* a string's: header, the n bytes, the zero */
  /* down to the string's size, never up (n <= cap): an allocator does not fail to shrink
     (Lua's contract) */
  h.block = b->alloc(b->ud, b->buf - b->front, readbuf_block_size(b, b->cap), h.size);
  if (h.block == NULL) {
    lua_pushlstring(L, stream_take(s, n), n);
    stream_consume(s, 0);
    return;
  }
  char *data = h.block + b->front;
  s->handed_off = n;
  b->buf = NULL;
  b->pos = b->len = b->cap = 0;
  lua_setallocf(L, handoff_alloc, &h);
  lua_pushlstring(L, data, n);
  if (h.block) { /* not taken after all: copied; the block is freed */
    lua_setallocf(L, h.f, h.ud);
    readbuf_block_free(b, data, n);
  }
  stream_resume(s);
}

/* ---- reading ---------------------------------------------------------------------- */

/* Once the buffer cannot satisfy a request: raises the stream's error, or returns 1 at
   the end of the stream, 0 if more may come (the caller waits). A stream closed by this
   side (writer:close(), abort()) has ended too, as in Python, where close ends a read
   waiting on the same stream with what was buffered, then b"". */
int streamlib_read_blocked(lua_State *L, stream *s, const char *op) {
  if (s == NULL) return 1;
  if (s->rerr) return streamlib_raise(L, s, op, s->rerr);
  return s->eof || s->close_wanted;
}

static int readable(const stream *s) { return s && s->rb.len > 0; }

/* At the end: pushes and takes what is left in the buffer ("" once the stream is freed). */
static void push_rest(lua_State *L, stream *s) {
  if (!readable(s)) {
    lua_pushliteral(L, "");
    return;
  }
  push_taken(L, s, s->rb.len);
}

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
    push_line(L, stream_take(s, n), n, strip);
    stream_consume(s, 0);
    return 1;
  }
  if (found == READBUF_OVER) { /* as Python's readline: drop the line, then raise */
    stream_consume(s, n);
    return raise_limit(L, "readline", s, n);
  }
  if (!streamlib_read_blocked(L, s, "readline")) return -1;
  if (readable(s)) {
    size_t len = s->rb.len;
    push_line(L, stream_take(s, len), len, strip);
    stream_consume(s, 0);
  } else if (strip) {
    lua_pushboolean(L, 0);
  } else {
    lua_pushliteral(L, "");
  }
  return 1;
}

/* Turns what a read pushed (n values, or n < 0: nothing yet) into the explicit status
   the net.read_* primitives return: "ok", data | "eof" | "wait". */
static int read_status(lua_State *L, int n, int eof) {
  if (n < 0) {
    lua_pushliteral(L, "wait");
    return 1;
  }
  if (eof) {
    lua_pop(L, n);
    lua_pushliteral(L, "eof");
    return 1;
  }
  lua_pushliteral(L, "ok");
  lua_insert(L, -(n + 1));
  return n + 1;
}

/* net.read_line(h, strip) -> "ok", line | "eof" | "wait" (await net.wait_read, retry). */
static int l_net_read_line(lua_State *L) {
  int strip = lua_toboolean(L, 2);
  int n = read_line(L, stream_check(L, 1), strip);
  /* at the end read_line gives the partial line, then "" (false when strip) */
  int eof = n > 0 && (strip ? lua_isboolean(L, -1) : lua_rawlen(L, -1) == 0);
  return read_status(L, n, eof);
}

/* The data up to and including sep. */
static int read_until(lua_State *L, stream *s, const char *sep, size_t seplen) {
  if (s) s->want = 0;
  size_t n;
  int found = readable(s) ? readbuf_until(&s->rb, sep, seplen, s->limit, &n) : READBUF_MORE;
  if (found == READBUF_FOUND) {
    lua_pushlstring(L, stream_take(s, n), n);
    stream_consume(s, 0);
    return 1;
  }
  if (found == READBUF_OVER) return raise_limit(L, "readuntil", s, n);
  if (!streamlib_read_blocked(L, s, "readuntil")) return -1;
  push_rest(L, s);
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
    push_taken(L, s, (size_t)n);
    return 1;
  }
  if (!streamlib_read_blocked(L, s, "readexactly")) {
    s->want = (size_t)n; /* the buffer may grow to n for this read */
    stream_resume(s);
    return -1;
  }
  if (s) s->want = 0;
  push_rest(L, s);
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
    push_taken(L, s, n < 0 || (size_t)n > s->rb.len ? s->rb.len : (size_t)n);
    return 1;
  }
  if (!streamlib_read_blocked(L, s, "read")) return -1;
  lua_pushliteral(L, "");
  return 1;
}

/* net.read_some(h [, n]) -> "ok", up to n bytes | "eof" | "wait". */
static int l_net_read_some(lua_State *L) {
  lua_Integer max = luaL_optinteger(L, 2, -1);
  int n = read_some(L, stream_check(L, 1), max);
  return read_status(L, n, n > 0 && max != 0 && lua_rawlen(L, -1) == 0);
}

/* net.at_eof(h): the buffer is empty and the peer sent its end (or the stream is closed). */
static int l_net_at_eof(lua_State *L) {
  stream *s = stream_check(L, 1);
  lua_pushboolean(L, s == NULL || ((s->eof || s->close_wanted) && s->rb.len == 0));
  return 1;
}

/* Pushes a future completed by the next read event of the stream at hidx. One reader
   waits at a time, as in Python (whose streams raise RuntimeError): a second is a misuse,
   raised as such at the user's line and naming the call (op), the first left waiting. */
void streamlib_wait_read(lua_State *L, int hidx, const char *op) {
  stream *s = *(stream **)lua_touserdata(L, hidx);
  if (s == NULL || s->close_wanted) raise_closed(L, op);
  if (waitset_awaited(&s->readers)) /* (not one a read in a finalizer could not await) */
    argcheck_error(L,
                   "%s: another task is already waiting to read from this stream (one reader "
                   "at a time)",
                   op);
  waitset_add_one(L, &s->readers, hidx, SUV_READERS);
  stream_resume(s); /* TLS: may decrypt what OpenSSL holds, completing the future at once */
}

/* net.wait_read(h [, call]) -> a future completed by the next read event; call names the
   reader's method for errors ("read" by default). */
static int l_net_wait_read(lua_State *L) {
  stream_check(L, 1);
  streamlib_wait_read(L, 1, luaL_optstring(L, 2, "read"));
  return 1;
}

/* ---- writing ---------------------------------------------------------------------- */

/* Writes data[len] to s: at once if the socket takes it, else queued. */
int streamlib_write(lua_State *L, stream *s, const char *data, size_t len) {
  if (s == NULL || s->close_wanted) return raise_closed(L, "write");
  if (s->eof_wanted)
    return error_raise_uv_msg(L, "write", UV_ESHUTDOWN, "write: called after write_eof");
  if (s->werr) return error_raise_uv(L, "write", s->werr);
  if (len == 0) return 0;
  int err = s->tls ? tls_write(s, data, len) : stream_write_raw(s, data, len);
  if (err) return streamlib_raise(L, s, "write", err);
  return 0;
}

/* net.write(h, data) */
static int l_net_write(lua_State *L) {
  stream *s = stream_check(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  return streamlib_write(L, s, data, len);
}

/* Raises the stream's error; true while above the high-water mark. */
int streamlib_drain_needed(lua_State *L, stream *s) {
  if (s == NULL) return 0;
  if (s->werr) return error_raise_uv(L, "write", s->werr);
  if (s->rerr) return streamlib_raise(L, s, "read", s->rerr);
  return s->paused && !s->close_wanted;
}

/* net.drain_needed(h) */
static int l_net_drain_needed(lua_State *L) {
  lua_pushboolean(L, streamlib_drain_needed(L, stream_check(L, 1)));
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
static int l_net_wait_drain(lua_State *L) {
  stream_check(L, 1);
  wait_drain(L, 1);
  return 1;
}

/* net.set_write_limits(h, high, low) */
static int l_net_set_write_limits(lua_State *L) {
  stream *s = stream_check(L, 1);
  lua_Integer high = luaL_optinteger(L, 2, HIGH_WATER);
  lua_Integer low = luaL_optinteger(L, 3, high / 4);
  luaL_argcheck(L, high >= 0 && low >= 0 && low <= high, 2, "need high >= low >= 0");
  if (s == NULL) return 0;
  s->high_water = (size_t)high;
  s->low_water = (size_t)low;
  if (stream_write_pending(s) > s->high_water)
    s->paused = 1;
  else
    stream_write_progress(s);
  return 0;
}

/* net.write_buffer_size(h) */
static int l_net_write_buffer_size(lua_State *L) {
  stream *s = stream_check(L, 1);
  lua_pushinteger(L, s ? (lua_Integer)stream_write_pending(s) : 0);
  return 1;
}

/* net.write_eof(h): half-closes once the queued data is written. */
static int l_net_write_eof(lua_State *L) {
  stream *s = stream_check(L, 1);
  if (s == NULL || s->close_wanted) return raise_closed(L, "write_eof");
  if (s->eof_wanted) return 0;
  s->eof_wanted = 1;
  if (s->tls) tls_shutdown(s); /* close_notify goes out before the TCP half-close */
  stream_write_progress(s);
  return 0;
}

/* ---- closing ---------------------------------------------------------------------- */

static int l_net_close(lua_State *L) {
  stream *s = stream_check(L, 1);
  if (s) stream_close(s, STREAM_CLOSE_FLUSH);
  return 0;
}

/* net.abort(h): closes at once, dropping what is queued; a TCP connection is reset
   (RST), so the peer sees ECONNRESET rather than an orderly end. */
static int l_net_abort(lua_State *L) {
  stream *s = stream_check(L, 1);
  if (s) stream_close(s, STREAM_CLOSE_RESET);
  return 0;
}

static int l_net_is_closing(lua_State *L) {
  stream *s = stream_check(L, 1);
  lua_pushboolean(L, s == NULL || s->close_wanted);
  return 1;
}

/* net.wait_closed(h) -> a future completed when the handle is closed, or nothing. */
static int l_net_wait_closed(lua_State *L) {
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
  stream_close(s, STREAM_CLOSE_FLUSH);
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

/* net.connect_finish(h): raises the connect error; the stream is then open. */
static int l_net_connect_finish(lua_State *L) {
  stream *s = stream_check(L, 1);
  if (s == NULL || s->close_wanted) return raise_closed(L, "connect");
  if (s->connect_status < 0) return error_raise_uv(L, "connect", s->connect_status);
  if (!s->open) return luaL_error(L, "connect: not connected yet");
  return 0;
}

/* net.set_limit(h, limit) */
static int l_net_set_limit(lua_State *L) {
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
static int l_net_sockname(lua_State *L) { return push_name(L, 0); }
static int l_net_peername(lua_State *L) { return push_name(L, 1); }

static int l_net_stream_kind(lua_State *L) {
  stream *s = stream_check(L, 1);
  if (s == NULL) return 0;
  lua_pushstring(L, s->kind == STREAM_TCP ? "tcp" : "unix");
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
static void read_arm(lua_State *L, int base) { streamlib_wait_read(L, base, "read"); }
static void readline_arm(lua_State *L, int base) { streamlib_wait_read(L, base, "readline"); }
static void readuntil_arm(lua_State *L, int base) { streamlib_wait_read(L, base, "readuntil"); }
static void readexactly_arm(lua_State *L, int base) { streamlib_wait_read(L, base, "readexactly"); }

static int drain_attempt(lua_State *L, int base) {
  return streamlib_drain_needed(L, op_stream(L, base)) ? -1 : 0;
}
static void drain_arm(lua_State *L, int base) { wait_drain(L, base); }

static const op_spec read_op = {"StreamReader.read", read_attempt, read_arm};
static const op_spec readline_op = {"StreamReader.readline", readline_attempt, readline_arm};
static const op_spec readuntil_op = {"StreamReader.readuntil", readuntil_attempt, readuntil_arm};
static const op_spec readexactly_op = {"StreamReader.readexactly", readexactly_attempt,
                                       readexactly_arm};
static const op_spec drain_op = {"StreamWriter.drain", drain_attempt, drain_arm};

/* Upvalues of the reader and writer methods (net.stream_methods). */
enum { MUP_STREAM_MT = 1, MUP_READ_TO_EOF, MUP_DONE, MUP_HANDLE_KEY, MUP_COUNT = MUP_HANDLE_KEY };

/* Pushes the stream userdata of the reader or writer table `self` at index 1; returns
   its stream (NULL once closed). Its type is tested against the metatable in an upvalue,
   the cheapest test there is: these methods run on every request of a busy server. */
static stream *push_handle(lua_State *L, const char *cls, const char *var, const char *method) {
  if (lua_type(L, 1) != LUA_TTABLE) argcheck_self_error(L, cls, var, method);
  lua_pushvalue(L, lua_upvalueindex(MUP_HANDLE_KEY)); /* "_h", interned once */
  lua_rawget(L, 1);
  if (!lua_getmetatable(L, -1) || !lua_rawequal(L, -1, lua_upvalueindex(MUP_STREAM_MT)))
    argcheck_self_error(L, cls, var, method);
  lua_pop(L, 1);
  return *(stream **)lua_touserdata(L, -1);
}

/* Before the other arguments are checked: a method called with '.' has no table as self
   (`reader.readline()`), and says so rather than "bad argument #2". */
#define READER(method) \
  if (lua_type(L, 1) != LUA_TTABLE) argcheck_self_error(L, "StreamReader", "reader", method)
#define WRITER(method) \
  if (lua_type(L, 1) != LUA_TTABLE) argcheck_self_error(L, "StreamWriter", "writer", method)

/* reader:read(n): up to n bytes, at least one unless at the end ("" there). n omitted
   or negative: everything up to the end, by the async function in upvalue 1. */
static int l_reader_read(lua_State *L) {
  READER("read");
  lua_Integer n = luaL_optinteger(L, 2, -1);
  push_handle(L, "StreamReader", "reader", "read");
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
static int l_reader_readline(lua_State *L) {
  push_handle(L, "StreamReader", "reader", "readline");
  op_push(L, &readline_op, 1);
  return 1;
}

/* reader:readuntil(sep): the data up to and including sep (default "\n"). */
static int l_reader_readuntil(lua_State *L) {
  READER("readuntil");
  size_t seplen;
  luaL_optlstring(L, 2, "\n", &seplen);
  luaL_argcheck(L, seplen > 0, 2, "the separator must not be empty");
  if (lua_isnoneornil(L, 2)) {
    lua_settop(L, 1);
    lua_pushliteral(L, "\n");
  }
  push_handle(L, "StreamReader", "reader", "readuntil");
  lua_pushvalue(L, 2);
  op_push(L, &readuntil_op, 2);
  return 1;
}

/* reader:readexactly(n): n bytes, or IncompleteReadError (partial, expected). */
static int l_reader_readexactly(lua_State *L) {
  READER("readexactly");
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n >= 0, 2, "readexactly size can not be less than zero");
  push_handle(L, "StreamReader", "reader", "readexactly");
  lua_pushinteger(L, n);
  op_push(L, &readexactly_op, 2);
  return 1;
}

/* writer:write(data): plain call; sends at once what the socket takes, queues the rest. */
static int l_writer_write(lua_State *L) {
  WRITER("write");
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  return streamlib_write(L, push_handle(L, "StreamWriter", "writer", "write"), data, len);
}

/* writer:drain(): waits while the write buffer is above its high-water mark; raises the
   connection's error (BrokenPipeError, ConnectionError ECONNRESET, ...). Below the mark
   and without error, as after most writes, it returns a Future already done (upvalue):
   nothing to wait for, nothing allocated. */
static int l_writer_drain(lua_State *L) {
  stream *s = push_handle(L, "StreamWriter", "writer", "drain");
  if (s == NULL || (!s->werr && !s->rerr && !(s->paused && !s->close_wanted))) {
    lua_pushvalue(L, lua_upvalueindex(MUP_DONE));
    return 1;
  }
  op_push(L, &drain_op, 1);
  return 1;
}

static const luaL_Reg stream_methods[] = {
    {"read", l_reader_read},
    {"readline", l_reader_readline},
    {"readuntil", l_reader_readuntil},
    {"readexactly", l_reader_readexactly},
    {"write", l_writer_write},
    {"drain", l_writer_drain},
    {NULL, NULL},
};

/* net.stream_methods(read_to_eof, done) -> the methods above: read uses the async
   function read_to_eof for reads to the end of the stream, drain returns `done`, a
   Future already done, when there is nothing to wait for. */
static int l_net_stream_methods(lua_State *L) {
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
static int l_net_fileno(lua_State *L) {
  uv_os_fd_t fd = -1;
  if (luaL_testudata(L, 1, LISTENER_MT)) {
    listener *l = *(listener **)lua_touserdata(L, 1);
    if (l == NULL || l->closing || uv_fileno(&l->u.handle, &fd) != 0) fd = -1;
  } else {
    stream *s = stream_check(L, 1);
    if (s == NULL || s->close_wanted || uv_fileno(&s->u.handle, &fd) != 0) fd = -1;
  }
  lua_pushinteger(L, fd);
  return 1;
}

static const luaL_Reg stream_functions[] = {
    {"fileno", l_net_fileno},
    {"read_line", l_net_read_line},
    {"stream_methods", l_net_stream_methods},
    {"read_some", l_net_read_some},
    {"at_eof", l_net_at_eof},
    {"wait_read", l_net_wait_read},
    {"write", l_net_write},
    {"drain_needed", l_net_drain_needed},
    {"wait_drain", l_net_wait_drain},
    {"set_write_limits", l_net_set_write_limits},
    {"write_buffer_size", l_net_write_buffer_size},
    {"write_eof", l_net_write_eof},
    {"close", l_net_close},
    {"abort", l_net_abort},
    {"is_closing", l_net_is_closing},
    {"wait_closed", l_net_wait_closed},
    {"connect_finish", l_net_connect_finish},
    {"set_limit", l_net_set_limit},
    {"sockname", l_net_sockname},
    {"peername", l_net_peername},
    {"stream_kind", l_net_stream_kind},
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

/* Adds the stream primitives streams.lua builds on to the table on top (core.net). */
static char pool_guard_key;

/* At lua_close: the thread's pool of read buffers lets go of this state's (stream.c). */
static int pool_guard_gc(lua_State *L) {
  void *ud;
  lua_Alloc alloc = lua_getallocf(L, &ud);
  stream_pool_release(alloc, ud);
  return 0;
}

void streamlib_open(lua_State *L) {
  if (string_front == 0) learn_string_front(L);
  lua_newuserdatauv(L, 0, 0);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, pool_guard_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &pool_guard_key); /* finalized at lua_close */
  new_metatable(L, STREAM_MT, stream_gc, stream_tostring);
  luaL_getmetatable(L, STREAM_MT);
  type_register(L, -1, &stream_type);
  lua_pop(L, 1);
  luaL_setfuncs(L, stream_functions, 0);
}

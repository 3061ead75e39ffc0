/* http_server.c — the hot path of asyncio.http's server (stdlib/asyncio/http/server.lua)
   in C: a request parsed straight out of its stream's read buffer (no Lua string per
   read) into a Request table, and a response's head built, with the body, into one
   buffer and written at once. What is rare (bodies read in pieces, streamed or JSON
   bodies, errors) stays in Lua. The client (http/client.lua) reads its responses the
   same way (net.http_response). */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http_parse.h"
#include "net.h"

/* The reason phrases of the status codes a server commonly sends, and their status lines. */
#define STATUS_LINE(code, reason) "HTTP/1.1 " #code " " reason "\r\n"
#define STATUS(code, reason) \
  { code, reason, STATUS_LINE(code, reason), sizeof STATUS_LINE(code, reason) - 1 }
static const struct {
  int status;
  const char *reason, *line;
  size_t line_len;
} REASONS[] = {
    STATUS(100, "Continue"),
    STATUS(101, "Switching Protocols"),
    STATUS(200, "OK"),
    STATUS(201, "Created"),
    STATUS(202, "Accepted"),
    STATUS(203, "Non-Authoritative Information"),
    STATUS(204, "No Content"),
    STATUS(205, "Reset Content"),
    STATUS(206, "Partial Content"),
    STATUS(300, "Multiple Choices"),
    STATUS(301, "Moved Permanently"),
    STATUS(302, "Found"),
    STATUS(303, "See Other"),
    STATUS(304, "Not Modified"),
    STATUS(307, "Temporary Redirect"),
    STATUS(308, "Permanent Redirect"),
    STATUS(400, "Bad Request"),
    STATUS(401, "Unauthorized"),
    STATUS(403, "Forbidden"),
    STATUS(404, "Not Found"),
    STATUS(405, "Method Not Allowed"),
    STATUS(406, "Not Acceptable"),
    STATUS(408, "Request Timeout"),
    STATUS(409, "Conflict"),
    STATUS(410, "Gone"),
    STATUS(411, "Length Required"),
    STATUS(412, "Precondition Failed"),
    STATUS(413, "Content Too Large"),
    STATUS(414, "URI Too Long"),
    STATUS(415, "Unsupported Media Type"),
    STATUS(416, "Range Not Satisfiable"),
    STATUS(417, "Expectation Failed"),
    STATUS(418, "I'm a teapot"),
    STATUS(422, "Unprocessable Content"),
    STATUS(426, "Upgrade Required"),
    STATUS(429, "Too Many Requests"),
    STATUS(431, "Request Header Fields Too Large"),
    STATUS(500, "Internal Server Error"),
    STATUS(501, "Not Implemented"),
    STATUS(502, "Bad Gateway"),
    STATUS(503, "Service Unavailable"),
    STATUS(504, "Gateway Timeout"),
    STATUS(505, "HTTP Version Not Supported"),
};
#define NREASONS (sizeof REASONS / sizeof REASONS[0])

/* The entry of a status, or -1. */
static int reason_index(lua_Integer status) {
  for (size_t i = 0; i < NREASONS; i++)
    if (REASONS[i].status == status) return (int)i;
  return -1;
}

/* The functions below share five upvalues: the metatables of a parser, a stream, a
   server's connection and a head's copy (a type test by identity is the cheapest there
   is), and http_respond's buffer. */
enum { UP_PARSER_MT = 1, UP_STREAM_MT, UP_CONN_MT, UP_COPY_MT, UP_BUFFER };

/* The userdata at idx if its metatable is the one at upvalue `up`, else NULL. */
static void *test_type(lua_State *L, int idx, int up) {
  void *u = lua_touserdata(L, idx);
  if (u == NULL || !lua_getmetatable(L, idx)) return NULL;
  int same = lua_rawequal(L, -1, lua_upvalueindex(up));
  lua_pop(L, 1);
  return same ? u : NULL;
}

static http_parse *check_parser(lua_State *L, int idx) {
  http_parse *p = test_type(L, idx, UP_PARSER_MT);
  if (p == NULL) luaL_typeerror(L, idx, "HTTP parser");
  return p;
}

/* A stream (NULL once it was closed and freed). */
static stream *check_stream(lua_State *L, int idx) {
  stream **box = test_type(L, idx, UP_STREAM_MT);
  if (box == NULL) luaL_typeerror(L, idx, "stream");
  return *box;
}

/* A server's connection: its request parser (first: a pointer to it is one to its parser)
   and its stream (user value 1 anchors the stream's userdata, so the box stays valid;
   *box is NULL once the stream is freed). */
typedef struct hconn {
  http_parse p;
  stream **box;
} hconn;

static hconn *check_conn(lua_State *L, int idx) {
  hconn *c = test_type(L, idx, UP_CONN_MT);
  if (c == NULL) luaL_typeerror(L, idx, "HTTP connection");
  return c;
}

/* net.http_conn(h, max_head, max_url): a server's connection on stream h, its requests'
   heads limited to max_head bytes, their targets to max_url. */
static int l_net_http_conn(lua_State *L) {
  stream **box = test_type(L, 1, UP_STREAM_MT);
  if (box == NULL) luaL_typeerror(L, 1, "stream");
  lua_Integer max_head = luaL_checkinteger(L, 2), max_url = luaL_checkinteger(L, 3);
  luaL_argcheck(L, max_head > 0 && max_url > 0, 2, "limits must be positive");
  hconn *c = lua_newuserdatauv(L, sizeof *c, 1);
  http_parse_init(&c->p, HTTP_REQUEST, (size_t)max_head, (size_t)max_url);
  c->box = box;
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  lua_pushvalue(L, lua_upvalueindex(UP_CONN_MT));
  lua_setmetatable(L, -2);
  return 1;
}

static int conn_gc(lua_State *L) {
  http_parse_free(&((hconn *)lua_touserdata(L, 1))->p);
  return 0;
}

/* ---- requests ------------------------------------------------------------------------ */

/* Drops from the stream's buffer what the parser took of it. */
static void take_parsed(http_parse *p, stream *s) {
  size_t used = http_parse_unfeed(p);
  if (used && s) stream_consume(s, used);
}

/* Pushes keep (the head's keep-alive, final once the message is done), length (the
   content-length, or false) and chunked. */
static void push_framing(lua_State *L, const http_parse *p, int done) {
  lua_pushboolean(L, done ? p->keep_alive : p->head_keep_alive);
  if (p->has_length)
    lua_pushinteger(L, (lua_Integer)p->content_length);
  else
    lua_pushboolean(L, 0);
  lua_pushboolean(L, p->chunked);
}

/* A copy of a request's header spans and head bytes, from which net.http_headers makes
   the headers table when a handler first reads it: most never do, and a table with a
   string per name and value costs more than this one allocation. */
typedef struct head_copy {
  size_t n;
  hp_header headers[]; /* then the head's bytes */
} head_copy;

static void push_head_copy(lua_State *L, const http_parse *p) {
  size_t spans = p->nheaders * sizeof(hp_header);
  head_copy *c = lua_newuserdatauv(L, sizeof *c + spans + p->head_len, 0);
  c->n = p->nheaders;
  if (spans) memcpy(c->headers, p->headers, spans);
  if (p->head_len) memcpy((char *)c->headers + spans, p->head, p->head_len);
  lua_pushvalue(L, lua_upvalueindex(UP_COPY_MT));
  lua_setmetatable(L, -2);
}

/* net.http_headers(copy) -> the headers table of a head's copy */
static int l_net_http_headers(lua_State *L) {
  head_copy *c = test_type(L, 1, UP_COPY_MT);
  if (c == NULL) return luaL_typeerror(L, 1, "head copy");
  http_push_header_table(L, (const char *)(c->headers + c->n), c->headers, c->n);
  return 1;
}

/* Pushes the value of header `name` (names are kept in lower case), repeated ones joined
   with ", ", or nil. */
static void push_header(lua_State *L, const http_parse *p, const char *name, size_t len) {
  int found = 0;
  for (size_t i = 0; i < p->nheaders; i++) {
    const hp_header *h = &p->headers[i];
    if (h->name.len != len || memcmp(p->head + h->name.off, name, len) != 0) continue;
    if (found++) lua_pushliteral(L, ", ");
    lua_pushlstring(L, p->head + h->value.off, h->value.len);
  }
  if (found == 0)
    lua_pushnil(L);
  else if (found > 1)
    lua_concat(L, 2 * found - 1);
}

/* Pushes what a Request is made of, of the head just parsed: method, target, path,
   query (nil without "?"), version, the head's copy, keep (the head's keep-alive),
   length (the content-length, or false), chunked, done (the request has no body: its
   end was taken from the parser at once, and keep is final), and the values of the
   headers the server reads itself, transfer-encoding and expect (or nil). */
static int push_request(lua_State *L, http_parse *p) {
  lua_pushstring(L, llhttp_method_name((llhttp_method_t)p->ll.method));
  const char *url = p->head + p->url.off;
  lua_pushlstring(L, url, p->url.len);
  const char *q = p->url.len ? memchr(url, '?', p->url.len) : NULL;
  if (q) {
    lua_pushlstring(L, url, (size_t)(q - url));
    lua_pushlstring(L, q + 1, p->url.len - (size_t)(q - url) - 1);
  } else {
    lua_pushvalue(L, -1);
    lua_pushnil(L);
  }
  http_push_version(L, p);
  push_head_copy(L, p);
  int done = p->ready_done && p->body_len == 0 && http_parse_next(p) == HP_DONE;
  push_framing(L, p, done);
  lua_pushboolean(L, done);
  push_header(L, p, "transfer-encoding", 17);
  push_header(L, p, "expect", 6);
  return 12;
}

/* Pushes what a Response is made of, of the head just parsed: status, reason, version,
   headers, keep, length, chunked (as push_request), then body and done: when the whole
   message was parsed already (a small response read at once), its body ("" for none)
   and true, both taken from the parser, and keep is final; else nil, false. */
static int push_response(lua_State *L, http_parse *p) {
  lua_pushinteger(L, p->ll.status_code);
  lua_pushlstring(L, p->head + p->reason.off, p->reason.len);
  http_push_version(L, p);
  http_push_headers(L, p);
  int done = p->ready_done;
  if (done && p->body_len > 0) {
    http_parse_next(p); /* HP_BODY: p->body holds all of it */
    lua_pushlstring(L, p->body, p->body_len);
  } else {
    lua_pushnil(L);
  }
  if (done) done = http_parse_next(p) == HP_DONE;
  push_framing(L, p, done);
  lua_rotate(L, -4, -1); /* the body after chunked */
  if (done && lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushliteral(L, "");
  }
  lua_pushboolean(L, done);
  return 9;
}

static int message_attempt(lua_State *L, task *t);

static int message_resume_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  await_check_resumer(L);
  task *t = task_of(L);
  await_deliver_cancel(L, t);
  future_push_outcome(L, lua_touserdata(L, 5), 5); /* raises if it was cancelled */
  lua_settop(L, 4);
  return message_attempt(L, t);
}

/* Parses what the stream's buffer holds until an event comes; else suspends task t
   until the next read event (message_resume_k tries again). At 1..4: the parser (or a
   connection, which starts with one), the state for on_bytes, on_bytes and the stream's
   userdata. */
static int message_attempt(lua_State *L, task *t) {
  http_parse *p = lua_touserdata(L, 1);
  int fed = 0;
  for (;;) {
    stream *s = *(stream **)lua_touserdata(L, 4); /* NULL once closed and freed */
    int ev = http_parse_next(p);
    if (ev == HP_HEAD) {
      lua_pushliteral(L, "head");
      int n = p->ll.type == HTTP_REQUEST ? push_request(L, p) : push_response(L, p);
      take_parsed(p, s);
      return n + 1;
    }
    take_parsed(p, s);
    if (ev != HP_MORE) return http_push_event(L, p, ev);
    if (s && s->rb.len > 0) {
      http_parse_feed(p, s->rb.buf + s->rb.pos, s->rb.len);
      fed = 1;
      continue;
    }
    if (streamlib_read_blocked(L, s, "read")) {
      ev = http_parse_finish(p);
      if (ev == HP_MORE) {
        lua_pushliteral(L, "eof");
        return 1;
      }
      if (ev == HP_DONE) p->keep_alive = 0;
      return http_push_event(L, p, ev);
    }
    if (fed && !lua_isnil(L, 3)) { /* on_bytes(state): bytes came, no event yet */
      lua_pushvalue(L, 3);
      lua_pushvalue(L, 2);
      lua_call(L, 1, 0);
      fed = 0;
    }
    streamlib_wait_read(L, 4, "read");
    future *f = lua_touserdata(L, 5);
    if (f->state != FUT_PENDING) { /* completed at once: TLS decrypted what it held */
      lua_settop(L, 4);
      continue;
    }
    return await_suspend(L, t, f, message_resume_k);
  }
}

/* The first attempt, inside a task, once the arguments are at 1..4 as message_attempt
   takes them. */
static int message_start(lua_State *L, const char *fname) {
  task *t = task_of(L);
  if (t == NULL) return luaL_error(L, "%s: not inside a task", fname);
  return message_attempt(L, t);
}

/* net.http_request(conn, state, on_bytes), inside a task: the next event of a server's
   connection, parsed straight out of its stream's read buffer, suspending the task until
   bytes come as needed:
     "head", method, target, path, query, version, head copy, keep, length, chunked,
             done, transfer-encoding, expect     (see push_request)
     "body", data | "done", keep | "error", name, reason    as net.http_next
     "eof"                 the stream ended between requests
   on_bytes(state) (nil: none) is called when bytes came that made no event yet (a head
   begun). Raises the stream's read error, and CancelledError when the task is
   cancelled while it waits. */
static int l_net_http_request(lua_State *L) {
  check_conn(L, 1);
  lua_settop(L, 3);
  lua_getiuservalue(L, 1, 1);
  return message_start(L, "http_request");
}

/* net.http_response(p, h, conn, on_bytes), inside a task: net.http_request for the
   client, with response parser p on stream h; its head event is
     "head", status, reason, version, headers, keep, length, chunked, body, done
   (see push_response: a response read whole comes with its body and end). */
static int l_net_http_response(lua_State *L) {
  http_parse *p = check_parser(L, 1);
  check_stream(L, 2);
  luaL_argcheck(L, p->ll.type == HTTP_RESPONSE, 1, "a response parser expected");
  lua_settop(L, 4);
  lua_rotate(L, 2, -1); /* the stream last, as message_attempt takes it */
  return message_start(L, "http_response");
}

/* ---- responses ----------------------------------------------------------------------- */

/* The Date header's value, made once a second (per thread: workers serve too). */
static const char *http_date(void) {
  static _Thread_local time_t second = -1;
  static _Thread_local char text[40];
  static const char days[] = "SunMonTueWedThuFriSat";
  static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  time_t now = time(NULL);
  if (now != second) {
    struct tm tm;
    gmtime_r(&now, &tm);
    snprintf(text, sizeof text, "%.3s, %02d %.3s %04d %02d:%02d:%02d GMT", days + 3 * tm.tm_wday,
             tm.tm_mday, months + 3 * tm.tm_mon, tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
             tm.tm_sec);
    second = now;
  }
  return text;
}

/* Where a response is put together: the userdata upvalue UP_BUFFER of net.http_respond,
   kept and grown (replaced by a larger one) as needed, so building allocates nothing. */
typedef struct outbuf {
  lua_State *L;
  char *data;
  size_t len, cap;
} outbuf;

static void out_init(lua_State *L, outbuf *o) {
  o->L = L;
  o->data = lua_touserdata(L, lua_upvalueindex(UP_BUFFER));
  o->cap = lua_rawlen(L, lua_upvalueindex(UP_BUFFER));
  o->len = 0;
}

static void out_grow(outbuf *o, size_t n) {
  size_t cap = o->cap * 2;
  while (cap < o->len + n) cap *= 2;
  char *data = lua_newuserdatauv(o->L, cap, 0);
  memcpy(data, o->data, o->len);
  lua_replace(o->L, lua_upvalueindex(UP_BUFFER));
  o->data = data;
  o->cap = cap;
}

static inline void out_add(outbuf *o, const char *s, size_t n) {
  if (o->len + n > o->cap) out_grow(o, n);
  memcpy(o->data + o->len, s, n);
  o->len += n;
}

#define out_lit(o, s) out_add((o), (s), sizeof(s) - 1)

static void out_str(outbuf *o, const char *s) { out_add(o, s, strlen(s)); }

static void out_int(outbuf *o, lua_Integer v) {
  char digits[24], *end = digits + sizeof digits, *d = end;
  lua_Unsigned u = v < 0 ? 0 - (lua_Unsigned)v : (lua_Unsigned)v;
  do {
    *--d = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) *--d = '-';
  out_add(o, d, (size_t)(end - d));
}

/* The headers a response gets unless the handler gave them. */
enum { GIVEN_TYPE = 1, GIVEN_LENGTH = 2, GIVEN_TE = 4, GIVEN_DATE = 8 };

static int given_bit(const char *name, size_t len) {
  switch (len) {
    case 4: return strncasecmp(name, "date", 4) == 0 ? GIVEN_DATE : 0;
    case 12: return strncasecmp(name, "content-type", 12) == 0 ? GIVEN_TYPE : 0;
    case 14: return strncasecmp(name, "content-length", 14) == 0 ? GIVEN_LENGTH : 0;
    case 17: return strncasecmp(name, "transfer-encoding", 17) == 0 ? GIVEN_TE : 0;
    default: return 0;
  }
}

static int valid_name(const char *s, size_t n) {
  if (n == 0) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 32 || c == 127 || c == ' ' || c == ':') return 0;
  }
  return 1;
}

/* One header line from the name and the value on top of the stack (left there); 0 when
   the value is no string or number or holds a line break. */
static int add_line(outbuf *o, const char *name, size_t nlen) {
  lua_State *L = o->L;
  int t = lua_type(L, -1);
  if (t != LUA_TSTRING && t != LUA_TNUMBER) return 0;
  size_t vlen;
  const char *value = lua_tolstring(L, -1, &vlen); /* a number: its copy on the stack */
  if (memchr(value, '\r', vlen) || memchr(value, '\n', vlen)) return 0;
  out_add(o, name, nlen);
  out_lit(o, ": ");
  out_add(o, value, vlen);
  out_lit(o, "\r\n");
  return 1;
}

/* The lines of the handler's headers table at idx (a list value gives one line each);
   returns the GIVEN_* bits of the names, or -1 for a header that cannot be sent. */
static int add_headers(outbuf *o, int idx) {
  lua_State *L = o->L;
  int given = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING) return -1;
    size_t nlen;
    const char *name = lua_tolstring(L, -2, &nlen);
    if (!valid_name(name, nlen)) return -1;
    if (lua_type(L, -1) == LUA_TTABLE) {
      for (lua_Integer i = 1; lua_geti(L, -1, i) != LUA_TNIL; i++) {
        if (!add_line(o, name, nlen)) return -1;
        lua_pop(L, 1);
      }
      lua_pop(L, 1);
    } else if (!add_line(o, name, nlen)) {
      return -1;
    }
    given |= given_bit(name, nlen);
    lua_pop(L, 1);
  }
  return given;
}

/* A body this long at most is copied behind the head, both written at once. */
enum { COPY_BODY_MAX = 64 * 1024 };

/* net.http_respond(conn, status, headers, body, version, head, keep, json)
     -> keep, stream, drain, context
      | nil, "body" (a body other than nil, a string or a function: nothing written)
      | nil, "headers" (a header that cannot be sent: nothing written)
   Writes the response's head, and a string body, in one write to conn's stream: the status
   line, the handler's headers, then as needed content-type: application/json (json),
   content-length or transfer-encoding: chunked, date, connection (close when the
   connection ends after this response; keep-alive to an HTTP/1.0 client). body: nil, a
   string, or a function (an iterator the caller streams). head: the request was a HEAD
   (no body). keep: the connection may carry another request. Returns whether it still
   may (a body streamed to an HTTP/1.0 client without content-length ends it), how the
   caller streams an iterator body ("chunked", "raw", or nil: not at all), and whether
   the writer must await net.wait_drain(h), and whether the running task has a
   ContextVar context (one a handler may have set). */
static int l_net_http_respond(lua_State *L) {
  stream *s = *check_conn(L, 1)->box;
  lua_Integer status = luaL_checkinteger(L, 2);
  int btype = lua_type(L, 4);
  if (btype != LUA_TNIL && btype != LUA_TSTRING && btype != LUA_TFUNCTION) {
    lua_pushnil(L);
    lua_pushliteral(L, "body");
    return 2;
  }
  size_t vlen;
  const char *version = luaL_checklstring(L, 5, &vlen);
  int head = lua_toboolean(L, 6), keep = lua_toboolean(L, 7), json = lua_toboolean(L, 8);
  int v11 = vlen == 3 && memcmp(version, "1.1", 3) == 0;
  int v10 = vlen == 3 && memcmp(version, "1.0", 3) == 0;
  lua_settop(L, 8);

  outbuf o;
  out_init(L, &o);
  int r = reason_index(status);
  if (r >= 0) {
    out_add(&o, REASONS[r].line, REASONS[r].line_len);
  } else {
    out_lit(&o, "HTTP/1.1 ");
    out_int(&o, status);
    out_lit(&o, " Unknown\r\n");
  }
  int given = 0;
  if (lua_type(L, 3) == LUA_TTABLE) {
    given = add_headers(&o, 3);
    if (given < 0) {
      lua_pushnil(L);
      lua_pushliteral(L, "headers");
      return 2;
    }
  }
  if (json && !(given & GIVEN_TYPE)) out_lit(&o, "content-type: application/json\r\n");
  int bodiless = status < 200 || status == 204 || status == 304;
  int streamed = btype == LUA_TFUNCTION && !bodiless, chunked = 0;
  size_t blen = 0;
  const char *body = btype == LUA_TSTRING ? lua_tolstring(L, 4, &blen) : NULL;
  if (streamed && !(given & GIVEN_LENGTH)) {
    if (v11 && !(given & GIVEN_TE)) {
      chunked = 1;
      out_lit(&o, "transfer-encoding: chunked\r\n");
    } else if (!(given & GIVEN_TE)) {
      keep = 0; /* an HTTP/1.0 client reads such a body to the end of the connection */
    }
  } else if (!bodiless && !streamed && !(given & GIVEN_LENGTH)) {
    out_lit(&o, "content-length: ");
    out_int(&o, (lua_Integer)blen);
    out_lit(&o, "\r\n");
  }
  if (!(given & GIVEN_DATE)) {
    out_lit(&o, "date: ");
    out_str(&o, http_date());
    out_lit(&o, "\r\n");
  }
  if (!keep)
    out_lit(&o, "connection: close\r\n");
  else if (v10)
    out_lit(&o, "connection: keep-alive\r\n");
  out_lit(&o, "\r\n");
  int head_only = head || bodiless;
  if (body && !head_only && blen <= COPY_BODY_MAX) {
    out_add(&o, body, blen);
    body = NULL;
  }
  streamlib_write(L, s, o.data, o.len);
  if (body && !head_only) streamlib_write(L, s, body, blen);
  lua_pushboolean(L, keep);
  if (streamed && !head_only)
    lua_pushstring(L, chunked ? "chunked" : "raw");
  else
    lua_pushnil(L);
  lua_pushboolean(L, streamlib_drain_needed(L, s));
  task *t = task_of(L);
  lua_pushboolean(L, t != NULL && t->has_context);
  return 4;
}

/* net.http_reasons() -> {[status] = reason phrase} */
static int l_net_http_reasons(lua_State *L) {
  lua_createtable(L, 0, (int)NREASONS);
  for (size_t i = 0; i < NREASONS; i++) {
    lua_pushstring(L, REASONS[i].reason);
    lua_rawseti(L, -2, REASONS[i].status);
  }
  return 1;
}

/* net.http_date() -> the Date header's value now */
static int l_net_http_date(lua_State *L) {
  lua_pushstring(L, http_date());
  return 1;
}

static const luaL_Reg http_server_functions[] = {
    {"http_conn", l_net_http_conn},       {"http_headers", l_net_http_headers},
    {"http_request", l_net_http_request}, {"http_response", l_net_http_response},
    {"http_respond", l_net_http_respond}, {"http_reasons", l_net_http_reasons},
    {"http_date", l_net_http_date},       {NULL, NULL},
};

/* Adds the functions to the net table on top (after http.c's and streamlib.c's, whose
   metatables they take). */
void http_server_open(lua_State *L) {
  luaL_getmetatable(L, HTTP_PARSER_MT);
  luaL_getmetatable(L, STREAM_MT);
  lua_createtable(L, 0, 2); /* a server connection's */
  lua_pushcfunction(L, conn_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushliteral(L, "asyncio.HttpConnection");
  lua_setfield(L, -2, "__name");
  lua_createtable(L, 0, 1); /* a head copy's */
  lua_pushliteral(L, "asyncio.HttpHead");
  lua_setfield(L, -2, "__name");
  lua_newuserdatauv(L, 4096, 0); /* http_respond's buffer */
  luaL_setfuncs(L, http_server_functions, 5);
}

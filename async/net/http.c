/* http.c — the HTTP parser (http_parse.c, on llhttp) and gzip/deflate decoding
   (inflate.c) as Lua objects for stdlib/asyncio/http.lua: bytes in, one message's head,
   body pieces and end out. No I/O here: http.lua reads the stream and feeds them. */
#include <string.h>

#include "http_parse.h"
#include "inflate.h"
#include "net.h"

#define INFLATER_MT "asyncio.Inflater"

static http_parse *parser_check(lua_State *L) { return luaL_checkudata(L, 1, HTTP_PARSER_MT); }

/* net.http_parser(kind, max_head, max_url): kind "request" or "response". The user
   value anchors the string being parsed. */
static int l_net_http_parser(lua_State *L) {
  static const char *const kinds[] = {"request", "response", NULL};
  int kind = luaL_checkoption(L, 1, NULL, kinds);
  lua_Integer max_head = luaL_checkinteger(L, 2), max_url = luaL_checkinteger(L, 3);
  luaL_argcheck(L, max_head > 0 && max_url > 0, 2, "limits must be positive");
  http_parse *p = lua_newuserdatauv(L, sizeof *p, 1);
  http_parse_init(p, kind == 0 ? HTTP_REQUEST : HTTP_RESPONSE, (size_t)max_head, (size_t)max_url);
  luaL_setmetatable(L, HTTP_PARSER_MT);
  return 1;
}

static int parser_gc(lua_State *L) {
  http_parse_free(parser_check(L));
  return 0;
}

/* net.http_feed(p, data): the next bytes, once http_next has asked for more. */
static int l_net_http_feed(lua_State *L) {
  http_parse *p = parser_check(L);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  if (p->pos < p->in_len)
    return luaL_error(L, "http_feed: the bytes fed before are not all parsed");
  lua_settop(L, 2);
  lua_setiuservalue(L, 1, 1);
  http_parse_feed(p, data, len);
  return 0;
}

static void push_span(lua_State *L, const http_parse *p, hp_span s) {
  lua_pushlstring(L, p->head + s.off, s.len);
}

void http_push_version(lua_State *L, const http_parse *p) {
  const llhttp_t *ll = &p->ll;
  if (ll->http_major == 1 && ll->http_minor == 1)
    lua_pushliteral(L, "1.1");
  else if (ll->http_major == 1 && ll->http_minor == 0)
    lua_pushliteral(L, "1.0");
  else
    lua_pushfstring(L, "%d.%d", ll->http_major, ll->http_minor);
}

/* The headers as a table: names in lower case (as the parser keeps them), a repeated
   header's values joined with ", " in the order they came. */
void http_push_header_table(lua_State *L, const char *head, const hp_header *headers, size_t n) {
  lua_createtable(L, 0, (int)n);
  for (size_t i = 0; i < n; i++) {
    const hp_header *h = &headers[i];
    lua_pushlstring(L, head + h->name.off, h->name.len);
    lua_pushvalue(L, -1);
    if (lua_rawget(L, -3) == LUA_TNIL) {
      lua_pop(L, 1);
      lua_pushlstring(L, head + h->value.off, h->value.len);
    } else {
      lua_pushliteral(L, ", ");
      lua_pushlstring(L, head + h->value.off, h->value.len);
      lua_concat(L, 3);
    }
    lua_rawset(L, -3);
  }
}

void http_push_headers(lua_State *L, const http_parse *p) {
  http_push_header_table(L, p->head, p->headers, p->nheaders);
}

/* net.http_next(p): the next event, as
     "head", method | status, target | reason, version, headers, keep_alive, length, chunked
     "body", data
     "done", keep_alive
     "error", name, reason        (for good)
   or nothing: feed more. */
static int l_net_http_next(lua_State *L) {
  http_parse *p = parser_check(L);
  int ev = http_parse_next(p);
  switch (ev) {
    case HP_HEAD:
      lua_pushliteral(L, "head");
      if (p->ll.type == HTTP_REQUEST) {
        lua_pushstring(L, llhttp_method_name((llhttp_method_t)p->ll.method));
        push_span(L, p, p->url);
      } else {
        lua_pushinteger(L, p->ll.status_code);
        push_span(L, p, p->reason);
      }
      http_push_version(L, p);
      http_push_headers(L, p);
      lua_pushboolean(L, p->head_keep_alive);
      if (p->has_length)
        lua_pushinteger(L, (lua_Integer)p->content_length);
      else
        lua_pushnil(L);
      lua_pushboolean(L, p->chunked);
      return 8;
    default: return http_push_event(L, p, ev);
  }
}

int http_push_event(lua_State *L, const http_parse *p, int ev) {
  switch (ev) {
    case HP_BODY:
      lua_pushliteral(L, "body");
      lua_pushlstring(L, p->body, p->body_len);
      return 2;
    case HP_DONE:
      lua_pushliteral(L, "done");
      lua_pushboolean(L, p->keep_alive);
      return 2;
    case HP_ERROR:
      lua_pushliteral(L, "error");
      lua_pushstring(L, http_parse_error_name(p));
      lua_pushstring(L, p->error_reason);
      return 3;
    default: return 0;
  }
}

/* net.http_finish(p): the stream ended; the events as http_next's ("done" for a
   message that ran to the end, "error" for one cut short), or nothing. */
static int l_net_http_finish(lua_State *L) {
  http_parse *p = parser_check(L);
  int ev = http_parse_finish(p);
  if (ev == HP_DONE) p->keep_alive = 0;
  return http_push_event(L, p, ev);
}

/* net.http_skip_body(p, on): the next response answers a HEAD request (no body). */
static int l_net_http_skip_body(lua_State *L) {
  parser_check(L)->skip_body = lua_toboolean(L, 2);
  return 0;
}

/* ---- inflater -------------------------------------------------------------------- */

static inflater *inflater_check(lua_State *L) { return luaL_checkudata(L, 1, INFLATER_MT); }

/* net.inflater(coding [, max_total]): "gzip" (also "x-gzip") or "deflate"; max_total:
   the most bytes the body may decompress to (none, or math.huge: no limit). */
static int l_net_inflater(lua_State *L) {
  static const char *const codings[] = {"gzip", "x-gzip", "deflate", NULL};
  int coding = luaL_checkoption(L, 1, NULL, codings);
  lua_Number max = luaL_optnumber(L, 2, 0);
  luaL_argcheck(L, max >= 0, 2, "the limit must not be negative");
  size_t max_total = max >= 9007199254740992.0 ? 0 : (size_t)max; /* 2^53 and up: none */
  inflater *f = lua_newuserdatauv(L, sizeof *f, 0);
  inflate_init(f, coding < 2, max_total);
  luaL_setmetatable(L, INFLATER_MT);
  return 1;
}

static int inflater_gc(lua_State *L) {
  inflate_free(inflater_check(L));
  return 0;
}

/* net.inflate(f, data) -> the decompressed bytes, or nil, reason, too_large (the body
   went over the inflater's limit). */
static int l_net_inflate(lua_State *L) {
  inflater *f = inflater_check(L);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  if (inflate_feed(f, data, len) != 0) {
    lua_pushnil(L);
    lua_pushstring(L, f->error);
    lua_pushboolean(L, f->too_large);
    return 3;
  }
  lua_pushlstring(L, f->out, f->out_len);
  return 1;
}

/* net.inflate_ended(f): the compressed stream came to its proper end. */
static int l_net_inflate_ended(lua_State *L) {
  lua_pushboolean(L, inflater_check(L)->ended);
  return 1;
}

/* ---- pooled connections ------------------------------------------------------------ */

/* net.http_idle(h, idle): a client's connection waiting in its pool does not keep the
   program running (as Node's Agent unrefs its free sockets). */
static int l_net_http_idle(lua_State *L) {
  stream *s = stream_check(L, 1);
  if (s != NULL && !uv_is_closing(&s->u.handle)) {
    if (lua_toboolean(L, 2))
      uv_unref(&s->u.handle);
    else
      uv_ref(&s->u.handle);
  }
  return 0;
}

static const luaL_Reg http_functions[] = {
    {"http_parser", l_net_http_parser},
    {"http_feed", l_net_http_feed},
    {"http_next", l_net_http_next},
    {"http_finish", l_net_http_finish},
    {"http_skip_body", l_net_http_skip_body},
    {"inflater", l_net_inflater},
    {"inflate", l_net_inflate},
    {"inflate_ended", l_net_inflate_ended},
    {"http_idle", l_net_http_idle},
    {NULL, NULL},
};

/* Adds the functions to the net table on top. */
void http_open(lua_State *L) {
  luaL_newmetatable(L, HTTP_PARSER_MT);
  lua_pushcfunction(L, parser_gc);
  lua_setfield(L, -2, "__gc");
  luaL_newmetatable(L, INFLATER_MT);
  lua_pushcfunction(L, inflater_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 2);
  luaL_setfuncs(L, http_functions, 0);
}

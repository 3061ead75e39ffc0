/* copy.c — values copied between Lua states (workers, to_thread): a flat encoding that
   any thread can hold, decoded in the receiving state. */
#include <stdlib.h>
#include <string.h>

#include "os.h"

/* The encoding: one header byte (COPY_HAS_REFS when a table is referenced twice, so the
   decoder needs its table of ids), the number of values, then each value as a tag and
   its payload. A table is TABLE, its array size, key/value pairs, END; it gets the next
   id (from 1) when it starts, and a later occurrence is REF and that id: cycles and
   shared subtables arrive as they left. An asyncio error instance is ERROR instead of
   TABLE and gets its class back. Integers and floats are 8 bytes each, kept apart. */
enum { T_NIL, T_FALSE, T_TRUE, T_INT, T_FLOAT, T_STR, T_TABLE, T_ERROR, T_REF, T_END };
enum { COPY_HAS_REFS = 1 };
enum { COPY_MAX_DEPTH = 1000 };

static char scratch_key; /* registry: this state's copy_scratch */

/* The encoder's growing buffer, kept by the state between copies (so a failed copy,
   which raises, leaks nothing). */
typedef struct copy_scratch {
  char *data;
  size_t len, cap;
} copy_scratch;

static int scratch_gc(lua_State *L) {
  copy_scratch *s = lua_touserdata(L, 1);
  free(s->data);
  s->data = NULL;
  return 0;
}

static copy_scratch *scratch_get(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &scratch_key) == LUA_TUSERDATA) {
    copy_scratch *s = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return s;
  }
  lua_pop(L, 1);
  copy_scratch *s = lua_newuserdatauv(L, sizeof *s, 0);
  memset(s, 0, sizeof *s);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, scratch_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &scratch_key);
  return s;
}

/* ---- encoding ------------------------------------------------------------------------ */

typedef struct encoder {
  lua_State *L;
  copy_scratch *s;
  const char *fname; /* "send" */
  const char *root;  /* "value", "arg", "result" */
  int indexed;       /* the values are named root[i] */
  int root_i;
  int ids; /* stack index of the table -> id map, 0 until a table is seen */
  int next_id;
  int has_refs;
  int depth;
  int keys[COPY_MAX_DEPTH + 1]; /* stack index of the key at each level, for messages */
} encoder;

static void put(encoder *e, const void *p, size_t n) {
  copy_scratch *s = e->s;
  if (s->cap - s->len < n) {
    size_t cap = s->cap ? s->cap : 256;
    while (cap - s->len < n) cap *= 2;
    char *d = realloc(s->data, cap);
    if (d == NULL) argcheck_error(e->L, "%s: out of memory", e->fname);
    s->data = d;
    s->cap = cap;
  }
  memcpy(s->data + s->len, p, n);
  s->len += n;
}

static void put_byte(encoder *e, int b) {
  unsigned char c = (unsigned char)b;
  put(e, &c, 1);
}

static void put_size(encoder *e, size_t n) {
  unsigned char b[10];
  int i = 0;
  do {
    b[i] = (unsigned char)(n & 0x7f);
    n >>= 7;
    if (n) b[i] |= 0x80;
    i++;
  } while (n);
  put(e, b, (size_t)i);
}

static int is_identifier(const char *s, size_t len) {
  if (len == 0 || !(s[0] == '_' || ((s[0] | 0x20) >= 'a' && (s[0] | 0x20) <= 'z'))) return 0;
  for (size_t i = 1; i < len; i++) {
    char c = s[i];
    if (!(c == '_' || (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z'))) return 0;
  }
  return 1;
}

/* Pushes where the encoder stands: value.handlers[2], arg[1]["a key"]. */
static void push_path(encoder *e) {
  lua_State *L = e->L;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, e->root);
  if (e->indexed) {
    lua_pushfstring(L, "[%d]", e->root_i);
    luaL_addvalue(&b);
  }
  for (int d = 1; d <= e->depth; d++) {
    int k = e->keys[d];
    size_t len;
    switch (lua_type(L, k)) {
      case LUA_TSTRING: {
        const char *s = lua_tolstring(L, k, &len);
        if (is_identifier(s, len))
          lua_pushfstring(L, ".%s", s);
        else
          lua_pushfstring(L, "[\"%s\"]", len > 40 ? "..." : s);
        break;
      }
      case LUA_TNUMBER:
        if (lua_isinteger(L, k))
          lua_pushfstring(L, "[%I]", lua_tointeger(L, k));
        else
          lua_pushfstring(L, "[%f]", lua_tonumber(L, k));
        break;
      case LUA_TBOOLEAN: lua_pushstring(L, lua_toboolean(L, k) ? "[true]" : "[false]"); break;
      default: lua_pushfstring(L, "[<%s>]", luaL_typename(L, k));
    }
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
}

static void encode_value(encoder *e, int idx);

static void encode_table(encoder *e, int idx) {
  lua_State *L = e->L;
  if (e->ids == 0) {
    lua_newtable(L);
    e->ids = lua_gettop(L);
  }
  lua_pushvalue(L, idx);
  if (lua_rawget(L, e->ids) == LUA_TNUMBER) { /* seen: a cycle or a shared subtable */
    put_byte(e, T_REF);
    put_size(e, (size_t)lua_tointeger(L, -1));
    lua_pop(L, 1);
    e->has_refs = 1;
    return;
  }
  lua_pop(L, 1);
  if (e->depth >= COPY_MAX_DEPTH) {
    push_path(e);
    argcheck_error(L, "%s: %s is nested more than %d tables deep", e->fname, lua_tostring(L, -1),
                   COPY_MAX_DEPTH);
  }
  luaL_checkstack(L, 6, "copying a value");
  lua_pushvalue(L, idx);
  lua_pushinteger(L, ++e->next_id);
  lua_rawset(L, e->ids);
  const char *error_type = error_instance_type(L, idx);
  if (error_type) {
    put_byte(e, T_ERROR);
    size_t n = strlen(error_type);
    put_size(e, n);
    put(e, error_type, n);
  } else {
    put_byte(e, T_TABLE);
  }
  put_size(e, lua_rawlen(L, idx));
  e->depth++;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int top = lua_gettop(L);
    e->keys[e->depth] = top - 1;
    int kt = lua_type(L, top - 1);
    if (kt == LUA_TFUNCTION || kt == LUA_TUSERDATA || kt == LUA_TTHREAD ||
        kt == LUA_TLIGHTUSERDATA) {
      e->depth--;
      push_path(e);
      argcheck_error(L, "%s: a key of %s is a %s", e->fname, lua_tostring(L, -1),
                     luaL_typename(L, top - 1));
    }
    encode_value(e, top - 1);
    encode_value(e, top);
    lua_pop(L, 1);
  }
  e->depth--;
  put_byte(e, T_END);
}

static void encode_value(encoder *e, int idx) {
  lua_State *L = e->L;
  switch (lua_type(L, idx)) {
    case LUA_TNIL: put_byte(e, T_NIL); break;
    case LUA_TBOOLEAN: put_byte(e, lua_toboolean(L, idx) ? T_TRUE : T_FALSE); break;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) {
        lua_Integer i = lua_tointeger(L, idx);
        put_byte(e, T_INT);
        put(e, &i, sizeof i);
      } else {
        lua_Number n = lua_tonumber(L, idx);
        put_byte(e, T_FLOAT);
        put(e, &n, sizeof n);
      }
      break;
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      put_byte(e, T_STR);
      put_size(e, len);
      put(e, s, len);
      break;
    }
    case LUA_TTABLE: encode_table(e, idx); break;
    default:
      push_path(e);
      argcheck_error(L,
                     "%s: %s is a %s (only nil, booleans, numbers, strings and tables of them "
                     "can be copied to another thread)",
                     e->fname, lua_tostring(L, -1), luaL_typename(L, idx));
  }
}

/* Encodes the n values from stack index first into the state's scratch buffer, valid
   until the next copy; returns it and sets *len. Raises an error naming the path of
   anything that cannot cross: "send: value.handlers[2] is a function". */
const char *copy_encode_scratch(lua_State *L, int first, int n, const char *fname, const char *root,
                                int indexed, size_t *len) {
  first = lua_absindex(L, first);
  int top = lua_gettop(L);
  encoder enc, *e = &enc;
  e->L = L;
  e->s = scratch_get(L);
  e->s->len = 0;
  e->fname = fname;
  e->root = root;
  e->indexed = indexed;
  e->ids = 0;
  e->next_id = 0;
  e->has_refs = 0;
  e->depth = 0;
  put_byte(e, 0);
  put_size(e, (size_t)n);
  for (int i = 0; i < n; i++) {
    e->root_i = i + 1;
    encode_value(e, first + i);
  }
  e->s->data[0] = (char)(e->has_refs ? COPY_HAS_REFS : 0);
  lua_settop(L, top);
  *len = e->s->len;
  return e->s->data;
}

/* The same into a message of its own. */
copy_msg *copy_encode(lua_State *L, int first, int n, const char *fname, const char *root,
                      int indexed) {
  size_t len;
  const char *data = copy_encode_scratch(L, first, n, fname, root, indexed, &len);
  copy_msg *m = malloc(sizeof *m + len);
  if (m == NULL) argcheck_error(L, "%s: out of memory", fname);
  m->next = NULL;
  m->len = len;
  memcpy(m->data, data, len);
  return m;
}

/* A message of one string, for errors that could not be copied as they were. */
copy_msg *copy_encode_string(const char *s) {
  size_t len = strlen(s), n = 3 + 10 + len;
  copy_msg *m = malloc(sizeof *m + n);
  if (m == NULL) return NULL;
  unsigned char *p = (unsigned char *)m->data;
  *p++ = 0;
  *p++ = 1; /* one value */
  *p++ = T_STR;
  size_t l = len;
  do {
    *p = (unsigned char)(l & 0x7f);
    l >>= 7;
    if (l) *p |= 0x80;
    p++;
  } while (l);
  memcpy(p, s, len);
  m->next = NULL;
  m->len = (size_t)((char *)p + len - m->data);
  return m;
}

/* ---- decoding ------------------------------------------------------------------------ */

typedef struct decoder {
  lua_State *L;
  const unsigned char *p, *end;
  int ids; /* stack index of id -> table, 0 if the message has no references */
  int next_id;
} decoder;

static size_t get_size(decoder *d) {
  size_t n = 0;
  int shift = 0;
  unsigned char c;
  do {
    c = *d->p++;
    n |= (size_t)(c & 0x7f) << shift;
    shift += 7;
  } while (c & 0x80);
  return n;
}

static void decode_value(decoder *d);

static void decode_table(decoder *d, int tag) {
  lua_State *L = d->L;
  const char *error_type = NULL;
  size_t tlen = 0;
  if (tag == T_ERROR) {
    tlen = get_size(d);
    error_type = (const char *)d->p;
    d->p += tlen;
  }
  size_t narr = get_size(d);
  luaL_checkstack(L, 4, "copying a value");
  lua_createtable(L, narr > 1 << 20 ? 1 << 20 : (int)narr, 0);
  int id = ++d->next_id;
  if (d->ids) {
    lua_pushvalue(L, -1);
    lua_rawseti(L, d->ids, id);
  }
  while (*d->p != T_END) {
    decode_value(d);
    decode_value(d);
    lua_rawset(L, -3);
  }
  d->p++;
  if (error_type) {
    lua_pushlstring(L, error_type, tlen);
    error_set_instance_class(L, -2, lua_tostring(L, -1));
    lua_pop(L, 1);
  }
}

static void decode_value(decoder *d) {
  lua_State *L = d->L;
  int tag = *d->p++;
  switch (tag) {
    case T_NIL: lua_pushnil(L); break;
    case T_FALSE:
    case T_TRUE: lua_pushboolean(L, tag == T_TRUE); break;
    case T_INT: {
      lua_Integer i;
      memcpy(&i, d->p, sizeof i);
      d->p += sizeof i;
      lua_pushinteger(L, i);
      break;
    }
    case T_FLOAT: {
      lua_Number n;
      memcpy(&n, d->p, sizeof n);
      d->p += sizeof n;
      lua_pushnumber(L, n);
      break;
    }
    case T_STR: {
      size_t len = get_size(d);
      lua_pushlstring(L, (const char *)d->p, len);
      d->p += len;
      break;
    }
    case T_REF: lua_rawgeti(L, d->ids, (lua_Integer)get_size(d)); break;
    default: decode_table(d, tag);
  }
}

/* Pushes the values encoded in data[0..len) and returns how many. */
int copy_decode_data(lua_State *L, const char *data, size_t len) {
  decoder d = {L, (const unsigned char *)data, (const unsigned char *)data + len, 0, 0};
  int flags = *d.p++;
  int n = (int)get_size(&d);
  luaL_checkstack(L, n + 2, "too many values to copy");
  if (flags & COPY_HAS_REFS) {
    lua_newtable(L);
    d.ids = lua_gettop(L);
  }
  for (int i = 0; i < n; i++) decode_value(&d);
  if (d.ids) lua_remove(L, d.ids);
  return n;
}

/* The values of m, which stays the caller's (a worker's results, read by each wait()). */
int copy_decode(lua_State *L, const copy_msg *m) { return copy_decode_data(L, m->data, m->len); }

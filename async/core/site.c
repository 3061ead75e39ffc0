/* site.c — where a coroutine object was made ("file:line"), for the never-awaited
   report, cheaply enough to run for every coroutine object (workload A makes 200,000).
   lua_getinfo costs ~250 instructions a call, so call sites are cached: the key is the
   caller's saved program counter, which lua_getstack hands out in the lua_Debug's
   CallInfo (Lua 5.4 keeps it after four pointers: func, top, previous, next; a probe at
   start-up checks that on the Lua actually linked, else every site is looked up one by
   one). A coroutine object keeps only a 32-bit id: a slot of a direct-mapped table and
   the slot's generation, so a slot taken over by another call site never names the
   wrong line. The caller function is not kept alive (that would keep its upvalues, a
   socket for instance): if it is freed and other code later lands at the same address,
   a coroutine object made at that very offset could be reported with the old line, in
   a warning only. */
#include <stdint.h>
#include <string.h>

#include "core.h"

#define SITE_SLOTS 1024 /* a power of two */

typedef struct site_table {
  const void *pc[SITE_SLOTS];
  uint16_t gen[SITE_SLOTS];
  uint8_t stdlib[SITE_SLOTS]; /* the pc is in alua's stdlib: the site is a caller's */
  unsigned next;              /* without the probe: the next slot to reuse */
} site_table;

static char site_table_key;
static int pc_layout_ok = -1; /* unknown until the probe ran */

#define LUA_CLOSURE_TAG 0x46 /* ctb(LUA_VLCL): a Lua closure's collectable type tag */

/* The saved pc of the frame ar stands for, or NULL when it is not a Lua function's (a C
   function's CallInfo holds other fields there, maybe never set). The frame's function
   is the value ci->func points to: a TValue, its type tag after the 8-byte Value. */
static const void *frame_pc(const void *frame) {
  const void *const *ci = frame;
  const unsigned char *func = ci[0];
  if (func[8] != LUA_CLOSURE_TAG) return NULL;
  return ci[4];
}

static const void *caller_pc(const lua_Debug *ar) { return frame_pc(ar->i_ci); }

static unsigned slot_of(const void *pc) {
  uintptr_t p = (uintptr_t)pc;
  return (unsigned)((p >> 2) ^ (p >> 12)) & (SITE_SLOTS - 1);
}

#define STDLIB_SOURCE "@stdlib/"
#define SITE_MAX_DEPTH 16 /* frames looked at for the first one outside the stdlib */

static int in_stdlib(const lua_Debug *ar) {
  return strncmp(ar->source, STDLIB_SOURCE, sizeof STDLIB_SOURCE - 1) == 0;
}

static uint32_t slot_id(const site_table *st, unsigned slot) {
  return ((uint32_t)st->gen[slot] << 16 | (slot + 1));
}

/* Fills slot `slot` with the text of frame ar, cached under pc (NULL: not cached). */
static uint32_t site_store(lua_State *L, site_table *st, int sites_idx, unsigned slot,
                           const void *pc, const lua_Debug *ar) {
  st->pc[slot] = pc;
  st->stdlib[slot] = 0;
  st->gen[slot]++;
  lua_getiuservalue(L, sites_idx, 1); /* {[slot] = text} */
  lua_pushfstring(L, "%s:%d", ar->short_src, ar->currentline);
  lua_rawseti(L, -2, (lua_Integer)slot + 1);
  lua_pop(L, 1);
  return slot_id(st, slot);
}

/* Looks the site up without the cache, into a slot taken in turn: the first Lua frame
   outside alua's stdlib (the innermost Lua frame if there is none). 0: no Lua frame. */
static uint32_t site_lookup(lua_State *L, site_table *st, int sites_idx) {
  lua_Debug ar, first;
  int found = 0;
  for (int level = 1; level <= SITE_MAX_DEPTH && lua_getstack(L, level, &ar); level++) {
    lua_getinfo(L, "Sl", &ar);
    if (ar.currentline <= 0) continue; /* C */
    if (!found || !in_stdlib(&ar)) first = ar;
    found = 1;
    if (!in_stdlib(&ar)) break;
  }
  if (!found) return 0;
  return site_store(L, st, sites_idx, st->next++ & (SITE_SLOTS - 1), NULL, &first);
}

/* The slow path of site_id: walks up from the direct caller, caching each pc met; a
   caller in alua's stdlib (asyncio.to_thread and wait_for make their coroutine objects
   there, as a user's call of them) is cached as such, and the site is then its own
   caller's, found the same way. Kept out of site_id (noinline), whose cached case it
   would otherwise slow by saving registers it needs. */
__attribute__((noinline)) static uint32_t site_walk(lua_State *L, site_table *st, int sites_idx) {
  lua_Debug ar;
  for (int level = 1; level <= SITE_MAX_DEPTH && lua_getstack(L, level, &ar); level++) {
    const void *pc = caller_pc(&ar);
    if (pc == NULL) break; /* a C frame: looked up, not cached */
    unsigned slot = slot_of(pc);
    if (st->pc[slot] == pc) {
      if (!st->stdlib[slot]) return slot_id(st, slot);
      continue;
    }
    lua_getinfo(L, "Sl", &ar);
    if (!in_stdlib(&ar)) return site_store(L, st, sites_idx, slot, pc, &ar);
    st->pc[slot] = pc;    /* a stdlib frame: the site is further up */
    st->stdlib[slot] = 1; /* its text stays, and so does its generation: the ids handed
                             out for it still name that text (a bump lost the line of a
                             coroutine object made just before, when the stdlib frame's
                             pc fell in its slot) */
  }
  return site_lookup(L, st, sites_idx);
}

/* The id of the site calling into asyncio, the user's line, never one of alua's stdlib
   (0: no Lua caller). sites_idx: the table. */
uint32_t site_id(lua_State *L, int sites_idx) {
  site_table *st = lua_touserdata(L, sites_idx);
  if (pc_layout_ok != 1) return site_lookup(L, st, sites_idx);
  lua_Debug ar;
  if (!lua_getstack(L, 1, &ar)) return 0;
  const void *pc = caller_pc(&ar);
  if (pc != NULL) { /* the common case: a user's line, cached */
    unsigned slot = slot_of(pc);
    if (st->pc[slot] == pc && !st->stdlib[slot]) return slot_id(st, slot);
  }
  return site_walk(L, st, sites_idx);
}

/* site_id for a C function that holds its own frame (lua_getstack's level 0: self_ci)
   and the site table (its block, `table`): the caller's frame is the one before, no
   lua_getstack nor lua_touserdata needed in the cached case. The base frame has no
   previous one (a body resumed by C: no Lua caller), as lua_getstack's level 1 sees. */
uint32_t site_id_at(lua_State *L, int sites_idx, void *table, const void *self_ci) {
  const lua54_callinfo *caller = ((const lua54_callinfo *)self_ci)->previous;
  if (pc_layout_ok == 1 && caller != NULL && caller->previous != NULL) {
    const void *pc = frame_pc(caller);
    const site_table *st = table;
    if (pc != NULL) {
      unsigned slot = slot_of(pc);
      if (st->pc[slot] == pc && !st->stdlib[slot]) return slot_id(st, slot);
    }
  }
  return site_id(L, sites_idx);
}

/* Pushes the text of site `id`, or returns 0 if it is unknown or was replaced since. */
int site_push_text(lua_State *L, uint32_t id) {
  unsigned slot = (id & 0xffff) - 1;
  if (id == 0 || slot >= SITE_SLOTS) return 0;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &site_table_key);
  site_table *st = lua_touserdata(L, -1);
  if (st == NULL || st->gen[slot] != (uint16_t)(id >> 16)) {
    lua_pop(L, 1);
    return 0;
  }
  lua_getiuservalue(L, -1, 1);
  lua_rawgeti(L, -1, (lua_Integer)slot + 1);
  lua_replace(L, -3);
  lua_pop(L, 1);
  return 1;
}

static int probe_pc(lua_State *L) {
  lua_Debug ar;
  if (!lua_getstack(L, 1, &ar)) return 0;
  const void *pc = caller_pc(&ar);
  if (pc == NULL) return 0;
  lua_pushlightuserdata(L, (void *)pc);
  return 1;
}

/* Calls from two lines must see different pcs, two calls from one line (a loop) the
   same one, and a call from a C function (pcall) none. */
static const char probe_src[] =
    "local probe = ...\n"
    "local a = probe()\n"
    "local b = probe()\n"
    "local same = {}\n"
    "for i = 1, 2 do same[i] = probe() end\n"
    "local _, from_c = pcall(probe)\n"
    "return a ~= nil and a ~= b and b ~= same[1] and same[1] == same[2] and from_c == nil\n";

/* Pushes the site table (an upvalue of the functions that make coroutine objects). */
void site_table_push(lua_State *L) {
  if (pc_layout_ok < 0) {
    pc_layout_ok = 0;
    if (luaL_loadbuffer(L, probe_src, sizeof probe_src - 1, "=site probe") == LUA_OK) {
      lua_pushcfunction(L, probe_pc);
      if (lua_pcall(L, 1, 1, 0) == LUA_OK) pc_layout_ok = lua_toboolean(L, -1);
    }
    lua_pop(L, 1);
  }
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &site_table_key) == LUA_TUSERDATA) return;
  lua_pop(L, 1);
  site_table *st = lua_newuserdatauv(L, sizeof *st, 1);
  memset(st, 0, sizeof *st);
  lua_newtable(L);
  lua_setiuservalue(L, -2, 1);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &site_table_key);
}

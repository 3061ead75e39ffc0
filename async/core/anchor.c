/* anchor.c — registry slots that keep what the loop must not lose alive (a pending task,
   a scheduled handle, a gather with children left), handed out and taken back in C.

   luaL_ref and luaL_unref keep their free list in the registry itself: a ref reads the
   list's head, the registry's length and writes twice; an unref writes twice more (~520
   instructions a task between them, bench/RESULTS.md). Here the free slots are a stack
   in C: a slot comes back with one write and goes out again with one. A free slot holds
   false, never nil, so the registry's border (where luaL_ref's new refs start, as ours
   do) stays past every slot this hands out; nobody else ever sees one of ours free.

   A Task's anchor, the usual one, is stored raw (lua54.c) into the registry's array part
   when its slot is there: the registry is not black (Lua's rule for a store without a
   barrier: lua54.c), and nothing allocates between that test and the store. A slot given
   back takes its false raw at any time: a value the collector does not follow needs no
   barrier. Fresh slots are counted here (anchor_next) instead of asking the registry's
   length each time (luaH_getn: ~46 instructions, the store through the API ~110; bench/
   RESULTS.md, issue 22, session 9, wt-create); a slot someone else's luaL_ref took
   meanwhile holds a value, and then the length decides as before. */
#include <stdlib.h>

#include "core.h"

/* Pops the value on top into a registry slot of its own; returns the slot. */
int anchor_take(lua_State *L, loop_state *loop) {
  int ref;
  if (loop->anchor_free_n > 0)
    ref = loop->anchor_free[--loop->anchor_free_n];
  else if ((ref = (int)lua_rawlen(L, LUA_REGISTRYINDEX) + 1) <= LUA_RIDX_LAST + 1)
    return luaL_ref(L, LUA_REGISTRYINDEX); /* the slot after the predefined ones is
                                              luaL_ref's list head: let it set that up */
  else
    loop->anchor_next = ref + 1;
  lua_rawseti(L, LUA_REGISTRYINDEX, ref);
  return ref;
}

/* The registry's slot ref, if it is in the registry's array part and raw stores are on. */
static lua54_value *anchor_slot(loop_state *loop, int ref) {
  return lua54_usable() ? lua54_array_slot(loop->registry, ref) : NULL;
}

/* anchor_take of the full userdata on top, whose header is u: leaves it there. */
int anchor_take_udata(lua_State *L, loop_state *loop, const lua54_udata *u) {
  int fresh = loop->anchor_free_n == 0;
  int ref = fresh ? loop->anchor_next : loop->anchor_free[loop->anchor_free_n - 1];
  lua54_value *slot = ref > 0 ? anchor_slot(loop, ref) : NULL;
  if (slot != NULL && (!fresh || (slot->tt & 0x0f) == LUA_TNIL) && lua54_storable(loop->registry)) {
    slot->value = u;
    slot->tt = LUA54_TYPE_UDATA | LUA54_COLLECTABLE;
    if (fresh)
      loop->anchor_next = ref + 1;
    else
      loop->anchor_free_n--;
    return ref;
  }
  lua_pushvalue(L, -1);
  return anchor_take(L, loop);
}

/* Lets go of what slot ref holds (LUA_NOREF: nothing); the slot is ours to hand out again. */
void anchor_drop(lua_State *L, loop_state *loop, int ref) {
  if (ref == LUA_NOREF) return;
  if (loop->anchor_free_n == loop->anchor_free_cap) {
    int cap = loop->anchor_free_cap ? loop->anchor_free_cap * 2 : 64;
    int *grown = realloc(loop->anchor_free, (size_t)cap * sizeof *grown);
    if (grown == NULL) { /* the slot stays taken: nothing lost but 16 bytes */
      luaL_unref(L, LUA_REGISTRYINDEX, ref);
      return;
    }
    loop->anchor_free = grown;
    loop->anchor_free_cap = cap;
  }
  lua54_value *slot = anchor_slot(loop, ref);
  if (slot != NULL) {
    slot->value = NULL;
    slot->tt = LUA54_TT_FALSE;
  } else {
    lua_pushboolean(L, 0);
    lua_rawseti(L, LUA_REGISTRYINDEX, ref);
  }
  loop->anchor_free[loop->anchor_free_n++] = ref;
}

void anchor_close(loop_state *loop) {
  free(loop->anchor_free);
  loop->anchor_free = NULL;
  loop->anchor_free_n = loop->anchor_free_cap = 0;
}

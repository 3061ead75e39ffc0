/* anchor.c — registry slots that keep what the loop must not lose alive (a pending task,
   a scheduled handle, a gather with children left), handed out and taken back in C.

   luaL_ref and luaL_unref keep their free list in the registry itself: a ref reads the
   list's head, the registry's length and writes twice; an unref writes twice more (~520
   instructions a task between them, bench/RESULTS.md). Here the free slots are a stack
   in C: a slot comes back with one write and goes out again with one. A free slot holds
   false, never nil, so the registry's border (where luaL_ref's new refs start, as ours
   do) stays past every slot this hands out; nobody else ever sees one of ours free. */
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
  lua_rawseti(L, LUA_REGISTRYINDEX, ref);
  return ref;
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
  lua_pushboolean(L, 0);
  lua_rawseti(L, LUA_REGISTRYINDEX, ref);
  loop->anchor_free[loop->anchor_free_n++] = ref;
}

void anchor_close(loop_state *loop) {
  free(loop->anchor_free);
  loop->anchor_free = NULL;
  loop->anchor_free_n = loop->anchor_free_cap = 0;
}

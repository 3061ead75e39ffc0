/* owner.c — the owner list: every libuv object Lua owns (a stream, a listener, a UDP
   socket, a process, a request on a thread pool) is on its loop's list, so lua_close
   closes (or cancels) what user code left open, and what still flushes after its Lua
   object was collected. */
#include <stdlib.h>

#include "core.h"

struct owner_list {
  owned *first;
  int dead; /* its Lua owner is gone: the last owner_untrack frees it */
};

static char owner_key; /* registry: userdata holding the loop's owner_list pointer */

owner_list *owner_list_get(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &owner_key);
  owner_list **box = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (box == NULL || *box == NULL) luaL_error(L, "asyncio: the event loop is closed");
  return *box;
}

void owner_track(owner_list *list, owned *o, void (*shutdown)(owned *)) {
  o->list = list;
  o->shutdown = shutdown;
  o->prev = NULL;
  o->next = list->first;
  if (list->first) list->first->prev = o;
  list->first = o;
}

owned *owner_list_first(owner_list *list) { return list->first; }

int owner_list_closed(owner_list *list) { return list->dead; }

void owner_untrack(owned *o) {
  owner_list *list = o->list;
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
static int owner_list_gc(lua_State *L) {
  owner_list **box = lua_touserdata(L, 1);
  owner_list *list = *box;
  *box = NULL;
  if (list == NULL) return 0;
  list->dead = 1;
  if (list->first == NULL) {
    free(list);
    return 0;
  }
  for (owned *o = list->first, *next; o; o = next) {
    next = o->next; /* shutdown may free o (a listener whose handle never opened) */
    o->shutdown(o);
  }
  return 0;
}

/* Makes the loop's owner list (once per state). After loop_open: this userdata, made
   after the loop's, is finalized first at lua_close. */
void owner_open(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &owner_key);
  int exists = !lua_isnil(L, -1);
  lua_pop(L, 1);
  if (exists) return;
  owner_list **box = lua_newuserdatauv(L, sizeof *box, 0);
  *box = NULL;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, owner_list_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  *box = calloc(1, sizeof **box);
  if (*box == NULL) luaL_error(L, "asyncio: out of memory");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &owner_key);
}

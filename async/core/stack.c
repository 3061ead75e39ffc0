/* stack.c — a task's Lua thread keeps only the stack it uses once it has suspended.

   Lua gives every new thread 40 + 5 slots of 16 bytes (BASIC_STACK_SIZE + EXTRA_STACK:
   720 bytes), the biggest piece of a sleeping task (bench/RESULTS.md, issue 22). A task
   suspended in an await uses ~28 of them: task_main's C frame, the body's frame, and the
   yielding C function's (Lua gives each C call LUA_MINSTACK = 20 free slots). No public
   API sizes a stack, and Lua's collector shrinks stacks only in incremental mode and
   never below 2 × 20 slots. So when a task's first step ends in an await (task_step), its
   thread's stack is cut by Lua's own luaD_reallocstack (ldo.c: a new block, the live
   slots copied, every pointer into the stack fixed: CallInfos, open upvalues, the
   to-be-closed list, top; the old block freed).

   The cut costs an allocation, a copy and a free, once per task (~560 instructions a
   sleeper of workload C, +7%; tasks that end in their first step pay nothing), and a
   stack that must grow again after it doubles from the cut size. So (bench/RESULTS.md,
   issue 22, session 7, wt-stack, from the suite's ~45,000 cuts):
   - only the 40 slots of a new thread are cut, to what the frames use + STACK_MARGIN,
     and at least STACK_CUT_SLOTS (vm/heap.c's slab class; a sleeper uses 28). A task
     that later needs more than that but at most 40 grows to 68-78 slots where it had
     40: 0.4% of the cuts grew again with a margin of 6, 2.4% with none; each slot of
     margin costs 16 bytes a sleeper.
   - a stack that grew before the first await (most server connections: their first
     step goes through the stream machinery; an echo server's uses 46 of 80) is left
     alone. Halving such a stack while it holds what is used (an idle queue worker: 80
     → 40) made threads from the pool churn: cut at a task's first await, grown again by
     its next step, for every task (+211 instructions a task that awaits once).
   So a thread is cut at most once in its life: a cut stack never is 40 slots again.
   It goes back to the loop's pool as it is, and the next task on it grows it only if
   it needs more (giving the 40 slots back on each return cost ~350 instructions).

   luaD_reallocstack is internal to Lua: the alua command links Debian's static
   liblua5.4.a, where a program's own objects can reference it; liblua5.4.so does not
   export it. The reference is weak and hidden, so asyncio.so under stock lua5.4 and
   libalua.so (on the shared library) see NULL and leave stacks as they are, as does a Lua
   whose internals this file does not know (before 5.4.3 newsize counted EXTRA_STACK).
   What the thread uses is read from the CallInfos lua_getstack hands out (lua54_callinfo)
   and the stack's bounds from the lua_State's fields before its base CallInfo; where
   anything read disagrees with what Lua 5.4 keeps there, nothing is cut. */
#include <stdatomic.h>
#include <stdint.h>

#include "core.h"

#if LUA_VERSION_NUM == 504 && LUA_VERSION_RELEASE_NUM >= 50403
extern int luaD_reallocstack(lua_State *L, int newsize, int raiseerror)
    __attribute__((weak, visibility("hidden")));
#define STACK_REALLOC luaD_reallocstack
#else
#define STACK_REALLOC ((int (*)(lua_State *, int, int))NULL)
#endif

#define SLOT 16         /* sizeof(StackValue) in Lua 5.4 on 64 bits */
#define FIRST_STACK 40  /* BASIC_STACK_SIZE: what lua_newthread gives */
#define MAX_FRAMES 1000 /* a deeper suspended thread is left as it is */

#define STACK_MARGIN 6 /* free slots kept above what the frames use (see above) */

/* Where a lua_State keeps its stack's base (the `stack` field) and its base CallInfo,
   in words: stack's index | base_ci's index << 8, learnt from the first thread cut (by
   whichever worker's loop gets there first: all learn the same); 0: not yet, -1: the
   layout is not Lua 5.4's, nothing is ever cut. Lua 5.4 keeps top, l_G, ci, stack_last,
   stack in that order after its 16-byte header, and base_ci further on (its func the
   stack's first slot; the only CallInfo without a previous one). */
static atomic_int stack_layout;

static int learn_layout(void *const *w, const lua54_callinfo *ci) {
  const lua54_callinfo *base = ci;
  for (int frames = 0; base->previous != NULL; base = base->previous)
    if (++frames > MAX_FRAMES) return 0; /* not this thread: the next one may tell */
  int layout = -1;
  ptrdiff_t off = (const char *)base - (const char *)w, words = off / (ptrdiff_t)sizeof(void *);
  if (off > 0 && off <= 512 && off % (ptrdiff_t)sizeof(void *) == 0)
    for (int i = 4; i < words; i++)
      if (w[i] == base->func) {
        if (w[i - 2] == ci) layout = i | (int)words << 8; /* L->ci: the innermost frame */
        break;
      }
  atomic_store_explicit(&stack_layout, layout, memory_order_relaxed);
  return layout;
}

/* Cuts co's stack if it is still a new thread's (see above). co: a task's thread, just
   suspended by an await in its first step (its innermost frame the C function that
   yielded). */
void stack_fit(lua_State *co) {
  int layout = atomic_load_explicit(&stack_layout, memory_order_relaxed);
  if (STACK_REALLOC == NULL || layout < 0 || lua_status(co) != LUA_YIELD) return;
  void *const *w = (void *const *)co;
  if (layout > 0 && /* only a new thread's stack is cut: any other is found cheaply */
      (char *)w[(layout & 0xff) - 1] - (char *)w[layout & 0xff] != FIRST_STACK * SLOT)
    return;
  lua_Debug ar;
  if (!lua_getstack(co, 0, &ar)) return;
  const lua54_callinfo *ci = (const void *)ar.i_ci;
  if (layout == 0 && (layout = learn_layout(w, ci)) <= 0) return;
  int stack_word = layout & 0xff, base_word = layout >> 8;
  char *stack = w[stack_word], *last = w[stack_word - 1], *used = w[stack_word - 4];
  if (w[stack_word - 2] != ci || last <= stack || (last - stack) % SLOT || used <= stack ||
      used > last)
    return;
  /* every frame, down to the base one, inside the stack on slot boundaries, as Lua 5.4
     keeps them; the highest top of any is what the thread uses */
  const lua54_callinfo *base = (const void *)(w + base_word);
  for (int frames = 0;; ci = ci->previous) {
    char *func = ci->func, *top = ci->top;
    if (func < stack || top <= func || top > last || (func - stack) % SLOT ||
        (top - stack) % SLOT || ++frames > MAX_FRAMES)
      return;
    if (top > used) used = top;
    if (ci == base) break;
    if (ci->previous == NULL) return;
  }
  if (base->func != stack) return;
  int need = (int)((used - stack) / SLOT) + 1 + STACK_MARGIN; /* +1: as Lua counts */
  int newsize = need < STACK_CUT_SLOTS ? STACK_CUT_SLOTS : need;
  if (last - stack == FIRST_STACK * SLOT && newsize < FIRST_STACK)
    STACK_REALLOC(co, newsize, 0); /* failed: the old one stays */
}

/* tail.c — a tail await: a task whose Lua body ends in `await asyncio.sleep(d)` gives its
   thread back while it sleeps.

   A task suspended in an await keeps its Lua thread (a lua_State, a stack of 34-45 slots,
   four CallInfos: ~1,000 bytes), which the collector rescans on every cycle, and its first
   step takes a new thread from Lua whenever the loop's pool is empty (workload C: 100,000
   of them, each cut by stack.c afterwards). Yet when the await is the last thing the body
   does, nothing of the thread is needed any more: the body would return the await's
   results (none for a bare last `await x`, all of them for `return await x`) and the task
   would end with them. So when the sleep is awaited directly by the body, the function
   under the task's entry frame (task_main), and the body's next instruction returns
   nothing but what the await returns, the await does not yield: it records the task as
   tail-awaiting and returns nothing, and the body returns through Lua's own OP_RETURN,
   which closes its open upvalues as any return does (closures over the body's locals go
   on working). task.c then keeps the function and the await's line in the task (for task
   dumps) and gives the thread to the next task to start, or back to the pool; when the
   sleep's timer fires, the task ends with no results, in C, without a thread; cancelled
   first, it ends cancelled with the cancel message, as the sleep's CancelledError would
   have ended the body.

   Only where nothing else can run between the await and the return (conservative):
   - the task's own thread (not a coroutine inside the task), no hook on it (a debugger's,
     a worker's interrupt; debug mode's sampler, which a thread keeps after debug mode is
     off until it fires, is taken off), debug mode off, no cancellation pending;
   - the frames are [task_main (C), the function (Lua), the await (C)], nothing else:
     no pcall, metamethod or inline await between;
   - the function's instruction is the call of that await (OP_CALL wanting no results,
     or OP_TAILCALL with the sleep giving no results), and the next one returns nothing:
     OP_RETURN0, or OP_RETURN of no values which, when it must close (k), finds no
     to-be-closed variable (a <close> variable must close after the sleep, not before),
     or the OP_RETURN after OP_TAILCALL (Lua compiles no tail call in a <close> scope).
   The instruction is read from Lua 5.4's CallInfo (lua54_callinfo, core.h) and decoded
   as 5.4 lays it out, the await's line from the function's prototype (lua54_line);
   opcodes and fields are learnt once per process by a probe on a state of its own,
   which also finds the lua_State's word holding its list of to-be-closed variables
   (tbclist) and checks lua54_line against lua_getinfo. Where the probe disagrees with what it expects, no
   await is a tail await and everything runs as before. Public API and layout reads only:
   asyncio.so under stock lua5.4 gets it too. Why and what it saves: bench/RESULTS.md
   (issue 22, session 8, wt-tail). */
#include <stdint.h>

#include <lualib.h>

#include "core.h"

#define SLOT 16 /* sizeof(StackValue) in Lua 5.4 on 64 bits */

/* Lua 5.4's iABC instruction: op 7 bits, A 8, k 1, B 8, C 8 */
#define OP_OF(i) ((int)((i)&0x7f))
#define A_OF(i) ((int)(((i) >> 7) & 0xff))
#define K_OF(i) ((int)(((i) >> 15) & 1))
#define B_OF(i) ((int)(((i) >> 16) & 0xff))
#define C_OF(i) ((int)(((i) >> 24) & 0xff))

/* What the probe learnt; usable only once `ok` is set (under uv_once). */
static struct {
  int ok; /* and lua54_line agrees with lua_getinfo */
  int op_call, op_tailcall, op_return, op_return0;
  int tbclist_word; /* the lua_State's tbclist, in words */
} learnt;
static uv_once_t probe_once = UV_ONCE_INIT;

/* ---- the probe ------------------------------------------------------------------------ */

enum { PROBES = 5 };
typedef struct probe_seen {
  uint32_t call, next; /* the caller's instruction and the next one */
  int func_at_ra;      /* the C frame's function is in the call's register A */
  int seen;
} probe_seen;

/* Called by the probe chunk's functions with their index: records their instructions. */
static int probe_record(lua_State *L) {
  probe_seen *seen = lua_touserdata(L, lua_upvalueindex(1));
  lua_Integer x = lua_tointeger(L, 1);
  lua_Debug self, caller;
  if (x < 1 || x > PROBES || !lua_getstack(L, 0, &self) || !lua_getstack(L, 1, &caller)) return 0;
  const lua54_callinfo *c0 = (const void *)self.i_ci, *c1 = (const void *)caller.i_ci;
  if (c0->previous != c1 || c1->next != c0 || !(c0->callstatus & LUA54_CIST_C) ||
      (c1->callstatus & LUA54_CIST_C) || c1->u.l.savedpc == NULL)
    return 0;
  probe_seen *s = &seen[x - 1];
  s->call = c1->u.l.savedpc[-1];
  s->next = c1->u.l.savedpc[0];
  s->func_at_ra = (const char *)c0->func == (const char *)c1->func + SLOT * (1 + A_OF(s->call));
  s->seen = 1;
  return 0;
}

/* A C function that yields: the probe of tbclist suspends with a <close> variable open. */
static int probe_yield(lua_State *L) { return lua_yield(L, 0); }

static const char probe_calls[] =
    "local p = ...\n"
    "local function bare(x) p(x) end\n"
    "local function vbare(...) p(...) end\n"
    "local function up(x) local f = function() return x end p(x) end\n"
    "local function tail(x) return p(x) end\n"
    "local function call(x) local r = p(x) return r end\n"
    "bare(1) vbare(2) up(3) tail(4) call(5)";

static const char probe_tbc[] =
    "local y = ...\n"
    "local v <close> = setmetatable({}, {__close = function() end})\n"
    "y()";

/* Learns the opcodes: each function's call and next instruction must show what Lua 5.4
   compiles them to, consistently. */
static int probe_opcodes(lua_State *L) {
  probe_seen seen[PROBES] = {{0}};
  if (luaL_loadbuffer(L, probe_calls, sizeof probe_calls - 1, "=tail_probe") != LUA_OK) return 0;
  lua_pushlightuserdata(L, seen);
  lua_pushcclosure(L, probe_record, 1);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) return 0;
  for (int i = 0; i < PROBES; i++)
    if (!seen[i].seen || !seen[i].func_at_ra) return 0;
  const probe_seen *bare = &seen[0], *vbare = &seen[1], *up = &seen[2], *tail = &seen[3],
                   *call = &seen[4];
  int op_call = OP_OF(bare->call), op_tailcall = OP_OF(tail->call);
  int op_return0 = OP_OF(bare->next), op_return = OP_OF(vbare->next);
  if (OP_OF(vbare->call) != op_call || OP_OF(up->call) != op_call || OP_OF(call->call) != op_call)
    return 0;
  if (C_OF(bare->call) != 1 || C_OF(vbare->call) != 1 || C_OF(up->call) != 1 ||
      C_OF(call->call) != 2 || B_OF(bare->call) != 2 || B_OF(vbare->call) != 0)
    return 0;
  if (OP_OF(up->next) != op_return || OP_OF(tail->next) != op_return || B_OF(vbare->next) != 1 ||
      K_OF(vbare->next) != 0 || B_OF(up->next) != 1 || K_OF(up->next) != 1 ||
      B_OF(tail->next) != 0 || K_OF(bare->next) != 0)
    return 0;
  /* a return's (or tail call's) C: a vararg function's fixed parameters + 1, else 0 */
  if (C_OF(vbare->next) != 1 || C_OF(up->next) != 0 || C_OF(tail->call) != 0 ||
      C_OF(tail->next) != 0)
    return 0;
  int ops[4] = {op_call, op_tailcall, op_return, op_return0};
  for (int i = 0; i < 4; i++)
    for (int j = i + 1; j < 4; j++)
      if (ops[i] == ops[j]) return 0;
  learnt.op_call = op_call;
  learnt.op_tailcall = op_tailcall;
  learnt.op_return = op_return;
  learnt.op_return0 = op_return0;
  return 1;
}

/* Finds the lua_State's tbclist: the word after `stack` and openupval (as Lua 5.4.3+ lays
   them out, `stack` found as the base CallInfo's function, L->ci two words before it)
   that points at the open <close> variable of a suspended thread, and at `stack` itself
   in a thread with none. */
static int probe_tbclist(lua_State *L) {
  lua_State *co = lua_newthread(L);
  int nres;
  if (luaL_loadbuffer(co, probe_tbc, sizeof probe_tbc - 1, "=tail_probe") != LUA_OK) return 0;
  lua_pushcfunction(co, probe_yield);
  if (lua_resume(co, L, 1, &nres) != LUA_YIELD) return 0;
  lua_Debug a0, a1;
  if (!lua_getstack(co, 0, &a0) || !lua_getstack(co, 1, &a1)) return 0;
  const lua54_callinfo *c0 = (const void *)a0.i_ci, *c1 = (const void *)a1.i_ci, *base = c1;
  for (int n = 0; base->previous != NULL; base = base->previous)
    if (++n > 8) return 0;
  void *const *w = (void *const *)co;
  ptrdiff_t words = ((const char *)base - (const char *)w) / (ptrdiff_t)sizeof(void *);
  if (words <= 0 || words > 64) return 0;
  /* the chunk's locals: y (its register 0), then v */
  const char *open = (const char *)c1->func + SLOT * 2;
  for (int s = 4; s + 2 < words; s++)
    if (w[s] == base->func && w[s - 2] == c0) {
      if (w[s + 2] != open) return 0;
      void *const *fresh = (void *const *)lua_newthread(L);
      if (fresh[s + 2] != fresh[s]) return 0;
      learnt.tbclist_word = s + 2;
      return 1;
    }
  return 0;
}

/* Called by the probe chunk below: whether lua54_line reads its caller's line (and the
   prototype's other fields) as lua_getinfo does; a disagreement clears the upvalue's flag. */
static int probe_line(lua_State *L) {
  int *agrees = lua_touserdata(L, lua_upvalueindex(1));
  lua_Debug caller;
  if (!lua_getstack(L, 1, &caller) || !lua_getinfo(L, "Sl", &caller) ||
      (caller.what[0] != 'L' && caller.what[0] != 'm') ||
      ((const lua54_callinfo *)caller.i_ci)->callstatus & LUA54_CIST_C ||
      lua54_line((const void *)caller.i_ci) != caller.currentline ||
      caller.currentline != lua_tointeger(L, 1))
    *agrees = 0;
  else
    ++*agrees;
  return 0;
}

/* Lines the probe chunk reaches a call at: a main chunk, a function, one long enough (over
   128 instructions) for absolute entries, and one after a jump of over 127 lines. */
static int probe_lines(lua_State *L) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b,
                 "local p = ...\np(2)\nlocal function f(x)\n  p(4) p(4)\n  return x\nend\n"
                 "f(1)\nlocal function g(a)\n");
  int line = 9;
  for (int i = 0; i < 150; i++, line++) luaL_addstring(&b, "  a = a * 3 + 1\n");
  lua_pushfstring(L, "  p(%d)\n", line++);
  luaL_addvalue(&b);
  for (int i = 0; i < 300; i++, line++) luaL_addchar(&b, '\n');
  lua_pushfstring(L, "  p(%d) return a\nend\ng(1)\n", line);
  luaL_addvalue(&b);
  luaL_pushresult(&b);
  size_t len;
  const char *chunk = lua_tolstring(L, -1, &len);
  int agrees = 1;
  if (luaL_loadbuffer(L, chunk, len, "=tail_probe") != LUA_OK) return 0;
  lua_pushlightuserdata(L, &agrees);
  lua_pushcclosure(L, probe_line, 1);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) return 0;
  return agrees == 1 + 5; /* each call seen, none disagreeing */
}

static void probe(void) {
  lua_State *L = luaL_newstate();
  if (L == NULL) return;
  luaL_requiref(L, LUA_GNAME, luaopen_base, 1); /* setmetatable */
  lua_pop(L, 1);
  learnt.ok = lua_version(L) == 504 && probe_opcodes(L) && probe_tbclist(L) && probe_lines(L);
  lua_close(L);
}

/* ---- the tail await ------------------------------------------------------------------ */

/* Whether the thread has no open <close> variable above the function whose frame is c. */
static int no_tbc_above(lua_State *L, const lua54_callinfo *c) {
  const char *tbc = ((char *const *)L)[learnt.tbclist_word];
  return tbc <= (const char *)c->func;
}

/* Whether the await running on L for task t can be a tail await (above): *keep tells
   `return await x` (the await's results are the body's) from a bare last `await x`.
   Returns the await's line (0: not a tail await); *c1 is then the frame of the function
   that awaits. The line is read from the function's prototype (lua54_line: ~30
   instructions, where lua_getinfo("fl") took ~300 a first step); each task keeps its own
   function (task.c): a cache of the last site's function and line kept that site's first
   closure, and its upvalues, alive after its task ended, and gave the other tasks of the
   site that closure instead of theirs (found by review). */
static inline __attribute__((always_inline)) int tail_site(lua_State *L, task *t,
                                                           const lua54_callinfo **c1p, int *keep) {
  loop_state *loop = t->base.loop;
  if (!learnt.ok || !lua54_usable() || t->co != L || t->must_cancel || loop->debug ||
      (lua_gethook(L) != NULL && debug_hooked(L)))
    return 0;
  /* the await's own frame is the running one; Lua keeps ci->previous->next == ci */
  const lua54_callinfo *c0 = lua54_ci(L), *c1 = c0->previous, *c2;
  if (c1 == NULL || (c2 = c1->previous) == NULL || c1->next != c0 ||
      !(c0->callstatus & LUA54_CIST_C) || (c1->callstatus & LUA54_CIST_C) || c2 == NULL ||
      !(c2->callstatus & LUA54_CIST_C) || c2->previous == NULL || c2->previous->previous != NULL)
    return 0;
  const uint32_t *pc = c1->u.l.savedpc;
  uint32_t call = pc[-1], next = pc[0];
  if ((const char *)c0->func != (const char *)c1->func + SLOT * (1 + A_OF(call))) return 0;
  if (OP_OF(call) == learnt.op_call) {
    if (C_OF(call) != 1) return 0;
    if (OP_OF(next) != learnt.op_return0 && (OP_OF(next) != learnt.op_return || B_OF(next) != 1 ||
                                             (K_OF(next) && !no_tbc_above(L, c1))))
      return 0;
    *keep = 0;
  } else if (OP_OF(call) != learnt.op_tailcall || OP_OF(next) != learnt.op_return ||
             !no_tbc_above(L, c1)) {
    return 0;
  } else {
    *keep = 1;
  }
  /* the function task_main's pcall called, in its slot 2 ([task_msgh, body, args...]), or
     above its arguments there if it takes varargs (Lua moved it up; the return's C is its
     fixed parameters + 1, as OP_RETURN moves it back): not a __close handler that the
     unwinding of a failed body runs from task_main's frame, above the error (found by
     review: its last await must hold the failure back) */
  int params1 = *keep ? C_OF(call) : OP_OF(next) == learnt.op_return ? C_OF(next) : 0;
  ptrdiff_t moved = params1 ? (ptrdiff_t)c1->u.l.nextraargs + params1 : 0;
  if ((const char *)c1->func - SLOT * moved != (const char *)c2->func + SLOT * 2 ||
      ((const lua54_value *)c1->func)->tt != LUA54_TT_LCLOSURE)
    return 0;
  int line = lua54_line(c1);
  if (line < 1 || line > 0xffff) return 0;
  *c1p = c1;
  return line;
}

/* In an await of a sleep by task t, running on L, about to suspend (its timer armed),
   with nres values for the sleep to return: if this await can be a tail await, records it
   (t->tail, the line in t->nargs, the function in loop->tail_fn for task.c to take) and
   returns 1: the await then returns nothing instead of yielding. The task ends with no
   values: a sleep of values is a tail await only as a bare last `await`. The function
   is not anchored by tail_fn (a registry slot cost ~190 instructions a first step, in
   and out): until the body returns it is in its frame's slot, and from the return, in
   Lua's return path and task_main, nothing allocates (no hook runs: a hook set from
   another thread after this check, an interrupt's, fires in the body's frame, and its
   error leaves tail_fn untaken, task_step) until task.c pushes it. */
int tail_await(lua_State *L, task *t, int nres) {
  const lua54_callinfo *c1;
  int keep, line = tail_site(L, t, &c1, &keep);
  if (line == 0 || (keep && nres != 0)) return 0;
  t->base.loop->tail_fn = ((const lua54_value *)c1->func)->value;
  t->tail = 1;
  t->nargs = (unsigned)line;
  return 1;
}

/* In an await by task t, running on L, of the pending Future or Task at fidx: if this can
   be a tail await, makes t wait for it without its thread and returns 1 (the await
   returns nothing). task.c takes the record {function, future, keep, tail-called}: the
   future anchored by the task, its outcome the task's when it completes (its values only
   for `return await`), and what an error needs to show the traceback the thread would
   have (error_push_tail_stack). Not while a state of this thread is in debug mode, whose
   tracebacks show every frame. */
int tail_await_future(lua_State *L, task *t, int fidx) {
  loop_state *loop = t->base.loop;
  const lua54_callinfo *c1;
  lua_Debug a1;
  int keep, line;
  fidx = lua_absindex(L, fidx);
  if (debug_states || !lua_isyieldable(L) || (owner_flags(L) & OWNER_NO_SUSPEND) ||
      (line = tail_site(L, t, &c1, &keep)) == 0 || !lua_checkstack(L, 2) ||
      !lua_getstack(L, 1, &a1) || !lua_getinfo(L, "ft", &a1))
    return 0;
  lua_createtable(L, 4, 0);
  lua_rotate(L, -2, 1); /* the function, above the record */
  lua_rawseti(L, -2, 1);
  lua_pushvalue(L, fidx);
  lua_rawseti(L, -2, 2);
  lua_pushboolean(L, keep);
  lua_rawseti(L, -2, 3);
  lua_pushboolean(L, a1.istailcall);
  lua_rawseti(L, -2, 4);
  lua_rawseti(L, LUA_REGISTRYINDEX, loop->tail_record_ref);
  future *f = lua_touserdata(L, fidx);
  t->awaiting = f;
  future_add_waiter(f, &t->wait);
  loop->tail_record = 1;
  t->tail = 1;
  t->nargs = (unsigned)line;
  return 1;
}

/* Learns the layout (once per process) and gives the loop its registry slot. */
void tail_open(lua_State *L, loop_state *loop) {
  uv_once(&probe_once, probe);
  if (loop->tail_record_ref == 0) {
    lua_pushboolean(L, 0);
    loop->tail_record_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
}

/* await.c — async functions (the coroutine objects they make are coro.c's), await's C
   half, sleep, l_core_create_task and top-level await. */
#include <limits.h>

#include "core.h"

char await_tag; /* yielded by await: the task waits for the scheduler */

/* Upvalues shared by asyncio.await, sleep, l_core_ensure_future and l_core_create_task. */
enum {
  UP_FUTURE_MT = 1,
  UP_TASK_MT,
  UP_CORO_MT,
  UP_OP_MT,
  UP_YIELD_ONCE,
  UP_SITES, /* site.c's table: where coroutine objects are made */
  UP_COUNT = UP_SITES,
  /* asyncio.await only: */
  UP_SLEEP_AWAIT, /* sleep_await over the upvalues above */
  UP_CALLING,     /* the factory of `await f(args)`'s closure for an f other than these */
  UP_AWAIT_COUNT = UP_CALLING
};

/* A coroutine object's user values (its function, name, arguments) must be fewer than
   Lua's USHRT_MAX: past that the count wrapped, and the arguments or the body itself
   were lost without a word. */
enum { CORO_MAX_ARGS = USHRT_MAX - 1 - 2 };

static int coro_too_many(lua_State *L, const char *what, int n, int slots) {
  return argcheck_error(L, "%s (%d; at most %d)", what, n, USHRT_MAX - 1 - slots);
}

/* The closure `async(fn)` returns. Upvalues: fn, name, the coroutine metatable, the
   creation-site table (site.c). */
static int async_call(lua_State *L) {
  int n = lua_gettop(L);
  if (n > CORO_MAX_ARGS) return coro_too_many(L, "async function: too many arguments", n, 2);
  coro *c = lua_newuserdatauv(L, coro_size(n + 2), n + 2);
  c->nargs = n;
  c->taken = 0;
  c->sleep = 0;
  c->reported = 0;
  c->nursery_slot = 0;
  loop_state *loop = loop_get(L);
  lua_Debug self;
  int raw = loop->coro_nursery_ref != 0 && lua54_usable() && lua_getstack(L, 0, &self);
  /* before the metatable: an error after that (no memory for the nursery or a user value)
     leaves an object whose report reads its site; and before the raw stores below, as
     it may allocate */
  c->site = raw ? site_id_at(L, lua_upvalueindex(4),
                             lua54_block(lua54_udata_in(&lua54_upvalues(self.i_ci)[3])), self.i_ci)
                : site_id(L, lua_upvalueindex(4));
  lua54_udata *u;
  if (raw && lua54_storable(u = lua54_udata_of(c, n + 2))) {
    /* the usual case, stored raw (lua54.c): its metatable, whose __gc the lazy scheme
       hides (coro_set_metatable), then the function and name (upvalues 1 and 2) and the
       arguments, read where the call left them */
    const lua54_value *up = lua54_upvalues(self.i_ci), *args = lua54_args(self.i_ci);
    u->metatable = loop->coro_mt;
    u->uv[0] = up[0];
    u->uv[1] = up[1];
    for (int i = 0; i < n; i++) u->uv[2 + i] = args[i];
    coro_nurse(L, loop, c);
  } else {
    coro_set_metatable(L, lua_upvalueindex(3), c);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_setiuservalue(L, -2, 1);
    if (!lua_isnil(L, lua_upvalueindex(2))) { /* the name: a new user value is nil already */
      lua_pushvalue(L, lua_upvalueindex(2));
      lua_setiuservalue(L, -2, 2);
    }
    for (int i = 1; i <= n; i++) {
      lua_pushvalue(L, i);
      lua_setiuservalue(L, -2, i + 2);
    }
  }
  debug_record(L, -1);
  return 1;
}

static int l_core_sleep(lua_State *L);

/* async functions, and asyncio.sleep: a coroutine function in Python too */
static int is_async_function(lua_State *L, int idx) {
  lua_CFunction f = lua_tocfunction(L, idx);
  return f == async_call || f == l_core_sleep;
}

/* async(fn [, name]) */
static int l_core_async(lua_State *L) {
  if (is_async_function(L, 1)) {
    lua_settop(L, 1);
    return 1;
  }
  if (!lua_isfunction(L, 1)) {
    if (!luaL_getmetafield(L, 1, "__call"))
      return luaL_error(L, "async: expected a function, got %s", luaL_typename(L, 1));
    lua_pop(L, 1);
  }
  lua_settop(L, 2);
  if (!lua_isnil(L, 2)) luaL_checktype(L, 2, LUA_TSTRING);
  luaL_getmetatable(L, CORO_MT);
  site_table_push(L);
  lua_pushcclosure(L, async_call, 4);
  return 1;
}

/* For argcheck.c: if the value at idx is an async function (made by async), pushes its
   body and its name and returns 1; else returns 0. */
int await_async_parts(lua_State *L, int idx) {
  if (lua_tocfunction(L, idx) != async_call) return 0;
  idx = lua_absindex(L, idx);
  lua_getupvalue(L, idx, 1);
  lua_getupvalue(L, idx, 2);
  return 1;
}

/* Pops a body and a name, pushes the async function of them (as async(body, name)). */
void await_async_push(lua_State *L) {
  luaL_getmetatable(L, CORO_MT);
  site_table_push(L);
  lua_pushcclosure(L, async_call, 4);
}

/* asyncio.iscoroutinefunction(f), asyncio.iscoroutine(x) */
static int l_core_iscoroutinefunction(lua_State *L) {
  lua_pushboolean(L, is_async_function(L, 1));
  return 1;
}

static int l_core_iscoroutine(lua_State *L) {
  lua_pushboolean(L, coro_test(L, 1));
  return 1;
}

/* ---- making tasks ----------------------------------------------------------------- */

/* A sleep future, made where its sleep is awaited or wrapped: its delay counts from
   here, as Python's sleep (a coroutine) counts from its first step. */
static future *sleep_future_new(lua_State *L, loop_state *loop, uint64_t delay, int first, int n) {
  future *f = future_new(L, loop);
  f->sleeping = 1;
  future_store_results(L, -1, first, n);
  timer_schedule(loop, &f->timer, uv_hrtime() + delay);
  return f;
}

/* Replaces the coroutine object at idx by a new Task running it. With name_idx 0 (an
   awaitable given to gather, wait_for, l_core_ensure_future or top-level await) a sleep's
   becomes a started sleep Future instead: a timer, no task and no thread. */
static future *task_from_coro(lua_State *L, loop_state *loop, int idx, int name_idx,
                              const char *fname) {
  idx = lua_absindex(L, idx);
  coro_claim(L, idx, fname);
  if (name_idx == 0 && coro_is_sleep(L, idx)) {
    int top = lua_gettop(L);
    int n = coro_unpack(L, idx); /* sleep_body, its delay in ns, the results */
    future *f = sleep_future_new(L, loop, (uint64_t)lua_tointeger(L, top + 2), top + 3, n - 1);
    lua_replace(L, idx);
    lua_settop(L, top);
    return f;
  }
  task_create(L, loop, idx, TASK_BODY_CORO, name_idx);
  lua_replace(L, idx);
  return lua_touserdata(L, idx);
}

static int l_core_await(lua_State *L);

/* Replaces the awaitable at idx (a Future, an operation, anything with __await) by a new
   Task whose body awaits it. Must run in a function with await's upvalues. */
static future *task_awaiting(lua_State *L, loop_state *loop, int idx, int name_idx) {
  idx = lua_absindex(L, idx);
  for (int i = 1; i <= UP_COUNT; i++) lua_pushvalue(L, lua_upvalueindex(i));
  /* asyncio.await's own upvalues too, nil: l_core_await's raw path reads UP_SLEEP_AWAIT
     of whichever closure of it runs, and this one is a Task's body a program can reach
     (debug.getinfo in an __await): with UP_COUNT upvalues that read went past its end */
  for (int i = UP_COUNT + 1; i <= UP_AWAIT_COUNT; i++) lua_pushnil(L);
  lua_pushcclosure(L, l_core_await, UP_AWAIT_COUNT);
  lua_pushvalue(L, idx);
  task_create(L, loop, -2, 1, name_idx);
  lua_replace(L, idx);
  lua_pop(L, 2);
  return lua_touserdata(L, idx);
}

/* "fname: expected a coroutine object, Task or Future, got TYPE", at the user's line; a
   plain value most likely came from calling a function declared without `async`. */
static int not_awaitable_error(lua_State *L, int idx, const char *fname, const char *expected) {
  int t = lua_type(L, idx);
  int plain = t != LUA_TTABLE && t != LUA_TUSERDATA && t != LUA_TFUNCTION && t != LUA_TTHREAD;
  return argcheck_error(L, "%s: expected %s, got %s%s", fname, expected, luaL_typename(L, idx),
                        plain ? " (the result of a function declared without 'async'? calling "
                                "one runs it at once)"
                              : "");
}

/* Turns the awaitable at idx into the Future or Task it stands for, in place: a
   coroutine object becomes a Task (asyncio.sleep's, a sleep future that starts now). */
future *await_to_future(lua_State *L, loop_state *loop, int idx, const char *fname) {
  idx = lua_absindex(L, idx);
  for (int depth = 0; depth < 8; depth++) {
    if (lua_getmetatable(L, idx)) {
      int is_future = lua_rawequal(L, -1, lua_upvalueindex(UP_TASK_MT)) ||
                      lua_rawequal(L, -1, lua_upvalueindex(UP_FUTURE_MT));
      int is_coro = !is_future && lua_rawequal(L, -1, lua_upvalueindex(UP_CORO_MT));
      lua_pop(L, 1);
      if (is_future) {
        return lua_touserdata(L, idx);
      }
      if (is_coro) return task_from_coro(L, loop, idx, 0, fname);
      if (op_test(L, idx)) return task_awaiting(L, loop, idx, 0);
      if (luaL_getmetafield(L, idx, "__await") != LUA_TNIL) {
        lua_pushvalue(L, idx);
        lua_call(L, 1, 1);
        lua_replace(L, idx);
        continue;
      }
    } else if (lua_rawequal(L, idx, lua_upvalueindex(UP_YIELD_ONCE))) {
      future *f = sleep_future_new(L, loop, 0, 0, 0);
      lua_replace(L, idx);
      return f;
    }
    break;
  }
  not_awaitable_error(L, idx, fname, "a coroutine object, Task or Future");
  return NULL;
}

/* asyncio.ensure_future(aw) */
static int l_core_ensure_future(lua_State *L) {
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  await_to_future(L, loop_get(L), 1, "ensure_future");
  return 1;
}

static int sleep_task_body(lua_State *L);

/* Is the first argument of the running C function (there is one) the full userdata whose
   block is `block`? Read where the call left it (lua54.c) where the probe allows. */
static int first_arg_is(lua_State *L, const void *block) {
  lua_Debug self;
  if (!lua54_usable() || !lua_getstack(L, 0, &self))
    return lua_type(L, 1) == LUA_TUSERDATA && lua_touserdata(L, 1) == block;
  lua54_udata *u = lua54_udata_in(lua54_args(self.i_ci));
  return u != NULL && lua54_block(u) == block;
}

/* asyncio.create_task(coro [, name]) or asyncio.create_task(fn, ...) */
static int l_core_create_task(lua_State *L) {
  loop_state *loop = loop_get(L);
  int top = lua_gettop(L);
  /* create_task(work(i)), the usual call: the coroutine object made last, untaken (coro.c
     knows its address), needs no metatable test; its argument is read where the call
     left it (lua54.c), and the Task takes the object from here */
  if (loop->coro_last != NULL && top >= 1 && top <= 2 && first_arg_is(L, loop->coro_last)) {
    coro *c = loop->coro_last;
    coro_claim_last(L, loop);
    return task_create_coro(L, loop, 1, c, top == 2 ? 2 : 0);
  }
  if (lua_isfunction(L, 1)) {
    if (is_async_function(L, 1)) { /* run the body itself, not the coroutine it returns */
      if (lua_tocfunction(L, 1) == l_core_sleep)
        lua_pushcfunction(L, sleep_task_body);
      else
        lua_getupvalue(L, 1, 1);
      lua_replace(L, 1);
    }
    task_create(L, loop, 1, lua_gettop(L) - 1, 0);
    return 1;
  }
  if (top <= 2 && lua_getmetatable(L, 1)) { /* create_task(work(i)), the usual call */
    int is_coro = lua_topointer(L, -1) == loop->coro_mt;
    lua_pop(L, 1);
    if (is_coro) {
      coro_claim(L, 1, "create_task");
      return task_create(L, loop, 1, TASK_BODY_CORO, top == 2 ? 2 : 0);
    }
  }
  lua_settop(L, 2);
  int is_coro = lua_getmetatable(L, 1) && lua_rawequal(L, -1, lua_upvalueindex(UP_CORO_MT));
  lua_settop(L, 2);
  if (!is_coro) {
    /* Any other awaitable (a Future, an operation, __await) runs as a task awaiting it. */
    if (future_test(L, 1) || op_test(L, 1) || lua_rawequal(L, 1, lua_upvalueindex(UP_YIELD_ONCE)) ||
        luaL_getmetafield(L, 1, "__await") != LUA_TNIL) {
      lua_settop(L, 2);
      task_awaiting(L, loop, 1, 2);
      lua_settop(L, 1);
      return 1;
    }
    return not_awaitable_error(L, 1, "create_task",
                               "a coroutine object, a function or an awaitable");
  }
  task_from_coro(L, loop, 1, 2, "create_task");
  lua_settop(L, 1);
  return 1;
}

static int sleep_body(lua_State *L);

/* asyncio.sleep(delay, ...): resolves to `...` after delay seconds. As in Python it is a
   coroutine: a coroutine object whose body (sleep_body) suspends the task that awaits
   it on the task's own timer node, so `await(asyncio.sleep(d))` allocates no Future. */
static int l_core_sleep(lua_State *L) {
  if (lua_gettop(L) == 1 && lua_type(L, 1) == LUA_TNUMBER) { /* sleep(0), the yield of
                                                                busy loops, quickly */
    int isint;
    if (lua_tointegerx(L, 1, &isint) == 0 && isint) {
      lua_pushvalue(L, lua_upvalueindex(UP_YIELD_ONCE));
      return 1;
    }
  }
  uint64_t delay = timer_delay_to_ns(L, 1, "sleep");
  int n = lua_gettop(L) - 1;
  if (delay == 0 && n == 0) { /* the hot "yield once": one shared object, no allocation */
    lua_pushvalue(L, lua_upvalueindex(UP_YIELD_ONCE));
    return 1;
  }
  if (n > CORO_MAX_ARGS - 1) return coro_too_many(L, "sleep: too many results", n, 3);
  coro *c = lua_newuserdatauv(L, coro_size(n + 3), n + 3);
  c->nargs = n + 1;
  c->taken = 0;
  c->sleep = 1;
  c->reported = 0;
  c->nursery_slot = 0;
  c->site = site_id(L, lua_upvalueindex(UP_SITES)); /* before the metatable, as async_call's */
  coro_set_metatable(L, lua_upvalueindex(UP_CORO_MT), c);
  lua_pushcfunction(L, sleep_body);
  lua_setiuservalue(L, -2, 1); /* user value 2, the name, stays nil: c->sleep names it */
  lua_pushinteger(L, (lua_Integer)delay);
  lua_setiuservalue(L, -2, 3);
  for (int i = 0; i < n; i++) {
    lua_pushvalue(L, 2 + i);
    lua_setiuservalue(L, -2, 4 + i);
  }
  debug_record(L, -1);
  return 1;
}

static void check_can_suspend(lua_State *L);

static int sleep_body_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  await_check_resumer(L);
  await_deliver_cancel(L, task_of(L));
  return lua_gettop(L) - 1;
}

/* Suspends task t, running L, in a sleep of delay ns: [delay, results...] on L's stack,
   the results what the sleep returns. The last thing its body does (tail.c), the sleep
   returns nothing at once instead, and the task sleeps without its thread. */
static int sleep_suspend(lua_State *L, task *t, uint64_t delay) {
  check_can_suspend(L);
  task_sleep(t, delay);
  if (tail_await(L, t, lua_gettop(L) - 1)) return 0;
  lua_pushlightuserdata(L, &await_tag);
  return lua_yieldk(L, 1, 0, sleep_body_k);
}

/* The body of sleep's coroutine object, inside the awaiting task: [delay ns, results...]. */
static int sleep_body(lua_State *L) {
  task *t = task_of(L);
  if (t == NULL) return luaL_error(L, "sleep: not inside a task");
  return sleep_suspend(L, t, (uint64_t)lua_tointeger(L, 1));
}

/* l_core_create_task(asyncio.sleep, delay, ...): [delay in seconds, results...]. */
static int sleep_task_body(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)timer_delay_to_ns(L, 1, "sleep"));
  lua_replace(L, 1);
  return sleep_body(L);
}

static int yield_once(lua_State *L, task *t);
static int await_top_level(lua_State *L, loop_state *loop);

/* `await asyncio.sleep(delay, ...)` in keyword syntax: what asyncio.await returns for
   await(await, asyncio.sleep), called by the awaiting code itself with [delay in seconds,
   results...]. Inside a task it sleeps (sleep(0) yields once, as the object sleep(0)
   returns does); outside, it is the top-level await of sleep(...)'s coroutine object. */
static int sleep_await(lua_State *L) {
  task *t = task_of(L);
  if (t == NULL) {
    l_core_sleep(L);
    lua_replace(L, 1);
    lua_settop(L, 1);
    return await_top_level(L, loop_get(L));
  }
  /* sleep(0) or sleep(0.0) yields once; lua_tonumber, not lua_tointegerx, which tries
     (and fails) to make an integer of every other delay (~100 instructions a sleep).
     Any other number is armed from here, read once (not through sleep_task_body's
     integer in slot 1 and sleep_body: workload C's first step, ~80 instructions) */
  int isnum, nargs;
  lua_Number d;
  if (lua54_usable()) { /* read raw (lua54.c): lua_type and lua_tonumber were ~42 */
    const lua54_value *args = lua54_args(lua54_ci(L));
    nargs = lua54_nargs(L, args);
    d = nargs > 0 ? lua54_number(args, &isnum) : (isnum = 0);
  } else {
    nargs = lua_gettop(L);
    isnum = lua_type(L, 1) == LUA_TNUMBER;
    d = lua_tonumber(L, 1);
  }
  if (isnum) {
    if (d == 0 && nargs == 1) return yield_once(L, t);
    if (d == d) return sleep_suspend(L, t, timer_seconds_to_ns(d));
  }
  return sleep_suspend(L, t, timer_delay_to_ns(L, 1, "sleep")); /* raises the error */
}

/* ---- await ------------------------------------------------------------------------ */

void await_resumed_by_c(lua_State *L) {
  lua_pushliteral(L,
                  "await: this coroutine was resumed by a C function (lua_resume) while "
                  "suspended in an await its task passed up, before what it awaits was "
                  "done: only that task resumes it (through coroutine.resume or "
                  "coroutine.wrap)");
  lua_error(L);
}

void await_deliver_cancel(lua_State *L, task *t) {
  if (t == NULL || !t->deliver_cancel) return;
  t->deliver_cancel = 0;
  if (t->awaiting) {
    future_remove_waiter(t->awaiting, &t->wait);
    t->awaiting = NULL;
  }
  int ref = t->base.msg_ref;
  t->base.msg_ref = LUA_NOREF;
  task_push_cancelled_error(L, ref);
  luaL_unref(L, LUA_REGISTRYINDEX, ref);
  lua_error(L);
}

static int await_future_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  await_check_resumer(L);
  await_deliver_cancel(L, task_of(L));
  return future_push_outcome(L, lua_touserdata(L, 1), 1);
}

static int await_yield_once_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  await_check_resumer(L);
  await_deliver_cancel(L, task_of(L));
  return 0;
}

/* Suspends task t until the next loop iteration: await of sleep(0). */
static int yield_once(lua_State *L, task *t) {
  check_can_suspend(L);
  t->awaiting = NULL;
  task_schedule(t->base.loop, t);
  lua_pushlightuserdata(L, &await_tag);
  return lua_yieldk(L, 1, 0, await_yield_once_k);
}

static void check_can_suspend(lua_State *L) {
  if (!lua_isyieldable(L) || (owner_flags(L) & OWNER_NO_SUSPEND))
    argcheck_error(L,
                   "await: cannot suspend here: a C function stands between this await and "
                   "its task (table.sort or string.gsub callbacks, require, load readers, "
                   "__tostring, __gc, or a C library's callback cannot yield); move the await out");
}

int await_suspend(lua_State *L, task *t, future *f, lua_KFunction k) {
  check_can_suspend(L);
  t->awaiting = f;
  future_add_waiter(f, &t->wait);
  if (t->must_cancel) { /* cancelled while running: cancel what it now awaits, with the
                           message cancel(msg) gave */
    int done;
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->base.msg_ref);
    if (f->kind == KIND_TASK) {
      done = task_cancel(L, (task *)f, lua_isnil(L, -1) ? 0 : lua_gettop(L));
      lua_pop(L, 1);
    } else {
      done = future_cancel(
          L, f, lua_isnil(L, -1) ? (lua_pop(L, 1), LUA_NOREF) : luaL_ref(L, LUA_REGISTRYINDEX));
    }
    if (done) {
      t->must_cancel = 0;
      luaL_unref(L, LUA_REGISTRYINDEX, t->base.msg_ref);
      t->base.msg_ref = LUA_NOREF;
    }
  }
  lua_pushlightuserdata(L, &await_tag);
  return lua_yieldk(L, 1, 0, k);
}

/* Outside any task: top-level await runs the loop until `f` (at index 1) is done. */
static int await_top_level(lua_State *L, loop_state *loop) {
  /* inside a task's step on a thread that runs for no task: a coroutine resumed by a C
     library's own lua_resume, which would take the await's yield for one of its own */
  if (loop->current != NULL)
    return argcheck_error(L,
                          "await: cannot suspend here: this coroutine was resumed by a C "
                          "function (lua_resume), not by coroutine.resume or coroutine.wrap, "
                          "so its await cannot reach a task");
  if (loop_is_running(loop))
    return argcheck_error(L,
                          "await: not inside a task: this is a plain callback the running loop "
                          "called (call_soon, call_later, a done callback); wrap the code in "
                          "asyncio.create_task to await there");
  future *f = await_to_future(L, loop, 1, "await");
  int suspends = f->state == FUT_PENDING;
  if (f->kind == KIND_TASK && suspends) ((task *)f)->is_main = 1;
  if (loop_run_until(L, loop, f) < 0)
    return argcheck_error(L,
                          "await: the awaited %s can never complete: no task is ready and no "
                          "timer, I/O or other handle is left on the loop",
                          f->kind == KIND_TASK ? "task" : "future");
  /* a cancel of the top level that f could not take (toplevel.c): raised here, in place
     of f's outcome, as a task's own must_cancel is when it resumes */
  if (suspends && toplevel_take_cancel(loop)) {
    task_push_cancelled_error(L, LUA_NOREF);
    return lua_error(L);
  }
  return future_push_outcome(L, f, 1);
}

/* ---- a coroutine object, run inline ------------------------------------------------ */

char await_restack_tag; /* yielded by an inline await deep in the C stack: resume at once */

/* How much C stack a thread's inline awaits may use between two resumes before one
   yields to unwind it. Each inline await is a C call (lua_callk, and Lua's fresh
   luaV_execute below it), and Lua allows LUAI_MAXCCALLS (200) nested C calls: at ~350
   bytes a level (measured; more under ASan) this unwinds a chain of awaits every ~70,
   leaving the rest for the user's own pcalls, metamethods and iterators. */
#define AWAIT_INLINE_C_STACK (24 * 1024)

int await_resume(loop_state *loop, lua_State *co, lua_State *from, int narg, int *nres) {
  uintptr_t outer = 0;
  if (loop) {
    outer = loop->resume_frame;
    loop->resume_frame = (uintptr_t)__builtin_frame_address(0);
  }
  int status = lua_resume(co, from, narg, nres);
  while (status == LUA_YIELD && *nres == 1 && lua_touserdata(co, -1) == &await_restack_tag) {
    lua_pop(co, 1);
    status = lua_resume(co, from, 0, nres);
  }
  if (loop) loop->resume_frame = outer;
  return status;
}

/* ---- a tail await, handed down to the inline await that runs its caller ------------ */

/* `return await(f(n - 1))`, the call form: await is C, and Lua keeps the frame of a Lua
   function that tail-calls a C function until that returns, so a chain of such awaits,
   each running the next coroutine object inline, would keep two frames a level (Lua's
   stack overflows near 200,000 levels, where `return await f()` runs in constant stack).
   So an await of a coroutine object made by a Lua function in a tail call, when that
   function is itself a body an inline await is running, does not run the object: it
   returns the object's function, its arguments and await_tail_tag, which the Lua
   function returns as they are (a tail call's results are the caller's) to the inline
   await below, and that one calls the function in its place: a trampoline, with the
   frames of a proper tail call. Whether the caller tail-called await is in its current
   instruction, which the API does not show: it is read from Lua 5.4's CallInfo (which
   lua_Debug's i_ci points at), whose layout and OP_TAILCALL's number a probe checks
   once per process (tail_probe); where it disagrees the chain nests as before. */
static char await_tail_tag;    /* returned in place of a tail await's results */
static char await_inline_mark; /* slot 2 of an inline await running a body */

enum { LUA54_OPCODE_MASK = 0x7f };

static atomic_int tail_opcode; /* OP_TAILCALL's number; 0: not probed yet, -1: off */

/* The probe's C function: the opcode its Lua caller is running, or -1 if the frames do
   not look as expected. */
static int tail_probe_opcode(lua_State *L) {
  lua_Debug self, caller;
  int op = -1;
  if (lua_getstack(L, 0, &self) && lua_getstack(L, 1, &caller)) {
    const lua54_callinfo *c0 = (const void *)self.i_ci, *c1 = (const void *)caller.i_ci;
    if (c0->previous == c1 && c1->next == c0 && (c0->callstatus & LUA54_CIST_C) &&
        !(c1->callstatus & LUA54_CIST_C) && c1->u.l.savedpc != NULL)
      op = (int)(c1->u.l.savedpc[-1] & LUA54_OPCODE_MASK);
  }
  lua_pushinteger(L, op);
  return 1;
}

/* Finds OP_TAILCALL's number: a tail call of a C function from a plain and from a vararg
   Lua function must show the same opcode, and a plain call another one. */
static void tail_probe(lua_State *L) {
  static const char probe[] =
      "local p = ...\n"
      "local function tail(x) return p(x) end\n"
      "local function vtail(...) return p(...) end\n"
      "local function call(x) local r = p(x) return r end\n"
      "return tail(1), vtail(2), call(3)";
  int op = -1, top = lua_gettop(L);
  if (lua_version(L) == 504 &&
      luaL_loadbuffer(L, probe, sizeof probe - 1, "=tail_probe") == LUA_OK) {
    lua_pushcfunction(L, tail_probe_opcode);
    if (lua_pcall(L, 1, 3, 0) == LUA_OK) {
      lua_Integer tail = lua_tointeger(L, -3), vtail = lua_tointeger(L, -2);
      lua_Integer call = lua_tointeger(L, -1);
      if (tail > 0 && tail == vtail && call >= 0 && call != tail) op = (int)tail;
    }
  }
  lua_settop(L, top);
  atomic_store(&tail_opcode, op);
}

/* Whether this await (of a coroutine object) was tail-called by a Lua function that an
   inline await (its await_inline_mark in slot 2) is running: that await can run the
   object in this one's place. */
static int await_is_inline_tail(lua_State *L) {
  int op = atomic_load_explicit(&tail_opcode, memory_order_relaxed);
  lua_Debug ar;
  if (op <= 0 || !lua_getstack(L, 1, &ar)) return 0;
  const lua54_callinfo *caller = (const void *)ar.i_ci;
  if ((caller->callstatus & LUA54_CIST_C) ||
      (int)(caller->u.l.savedpc[-1] & LUA54_OPCODE_MASK) != op)
    return 0;
  const lua54_callinfo *below = caller->previous;
  if (below == NULL || !(below->callstatus & LUA54_CIST_C)) return 0;
  ar.i_ci = (void *)below;
  if (lua_getlocal(L, &ar, 2) == NULL) return 0;
  int marked = lua_touserdata(L, -1) == &await_inline_mark;
  lua_pop(L, 1);
  return marked;
}

/* The coroutine object's function returned: its results are await's; or a tail await
   in it handed over the next object's function and arguments, followed by
   await_tail_tag: they run here. Stack: [x, await_inline_mark, results...]. */
static int await_inline_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  while (lua_touserdata(L, -1) == &await_tail_tag && lua_gettop(L) > 3) {
    lua_pop(L, 1);
    lua_callk(L, lua_gettop(L) - 3, LUA_MULTRET, 0, await_inline_k);
  }
  return lua_gettop(L) - 2;
}

/* Runs the function and arguments above index 2 ([x, await_inline_mark, fn, args...])
   and returns its results. */
static int await_inline_call(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  lua_callk(L, lua_gettop(L) - 3, LUA_MULTRET, 0, await_inline_k);
  return await_inline_k(L, LUA_OK, 0);
}

/* A chain of inline awaits deep in the C stack where nothing can yield (a table.sort
   comparator, a string.gsub callback, __tostring, require): the restack yield cannot
   unwind it, and Lua's limit of 200 nested C calls would stop it. The function (stack:
   [x, await_inline_mark, fn, args...]) runs on a new Lua thread instead, resumed from
   here through await_resume: there the chain restacks as in a task's body. The thread
   runs for task t, marked OWNER_NO_SUSPEND: an await that would suspend raises the
   "cannot suspend here" error where it stands, and coroutine.yield Lua's error for a
   yield across a C call, as they would in the callback itself. */
static int await_inline_unyieldable(lua_State *L, task *t) {
  loop_state *loop = t->base.loop;
  int n = lua_gettop(L) - 2;
  lua_State *co = lua_newthread(L);
  lua_insert(L, 3); /* [x, mark, co, fn, args...]: the stack anchors the thread */
  lua_xmove(L, co, n);
  task_set_thread_owner(co, t);
  owner_set_flags(co, OWNER_NO_SUSPEND);
  if (loop->debug) debug_hook_thread(co);
  int nres = 0;
  lua_State *published = loop_enter(loop, co);
  int status = await_resume(loop, co, L, n - 1, &nres);
  loop_leave(loop, published);
  if (status == LUA_OK) {
    luaL_checkstack(L, nres, "too many results");
    lua_xmove(co, L, nres);
    return nres;
  }
  if (status == LUA_YIELD) { /* a C library's own lua_yield: the callback cannot yield */
    lua_pop(co, nres);
    lua_pushliteral(co, "attempt to yield across a C-call boundary");
    lua_pushvalue(co, -1);
  }
  /* an error: close the thread's to-be-closed variables with it, then raise what the
     closing ended with, as coroutine.wrap does (the error is on co's stack twice) */
  lua_xmove(co, L, 1);
#if LUA_VERSION_RELEASE_NUM >= 50406
  lua_closethread(co, L);
#else
  lua_resetthread(co);
#endif
  lua_xmove(co, L, 1);
  return lua_error(L);
}

/* await(x) for a coroutine object x inside task t: its function runs here, in the
   awaiting task, as a call from this C function (with a continuation, so that it can
   suspend). A chain of such awaits nests C calls, which Lua bounds: once this resume of
   the thread has used AWAIT_INLINE_C_STACK, the thread yields await_restack_tag, which
   its resumer (task_step, or coroutine.resume/wrap) answers by resuming it at once:
   Lua then continues from the continuations, on an empty C stack. Nothing else runs in
   between, so async recursion is as deep as Lua's stack allows, as awaiting a coroutine
   object in Python runs it without the loop. A tail await hands its object down
   (above). A sleep's object sleeps from here. */
static int await_coro(lua_State *L, task *t) {
  if (coro_is_sleep(L, 1)) {
    coro_take(L, 1, "await"); /* [x, sleep_body, delay ns, results...] */
    lua_rotate(L, 1, -2);
    lua_pop(L, 2);
    return sleep_body(L);
  }
  if (await_is_inline_tail(L)) {
    coro_take(L, 1, "await");
    lua_pushlightuserdata(L, &await_tail_tag);
    return lua_gettop(L) - 1; /* [fn, args..., await_tail_tag] */
  }
  lua_pushlightuserdata(L, &await_inline_mark);
  coro_take(L, 1, "await"); /* [x, await_inline_mark, fn, args...] */
  uintptr_t here = (uintptr_t)__builtin_frame_address(0);
  uintptr_t base = t->base.loop->resume_frame;
  if (base > here && base - here > AWAIT_INLINE_C_STACK) {
    if (!lua_isyieldable(L)) return await_inline_unyieldable(L, t);
    lua_pushlightuserdata(L, &await_restack_tag);
    return lua_yieldk(L, 1, 0, await_inline_call);
  }
  return await_inline_call(L, LUA_OK, 0);
}

/* ---- asyncio.await ----------------------------------------------------------------- */

/* await(await, f): the keyword transform's `await f(args)` (f a name or a dotted chain),
   as `await(await, f)(args)`; await given itself (never an awaitable) returns what to
   call with the arguments. Inside a task, for an async function its body, which thus
   runs inline as awaiting the coroutine object f(args) would run it, without making that
   object; for asyncio.sleep a C function that sleeps, called by the awaiting body
   itself: a sleeping task's deepest call is one below its body. Else (another callable,
   or top-level await) `function(...) return await(f(...)) end`, from the factory in
   upvalue UP_CALLING. */
static int await_keyword(lua_State *L, task *t) {
  lua_CFunction fn = lua_tocfunction(L, 2);
  if (fn == async_call && t != NULL) {
    lua_getupvalue(L, 2, 1);
    return 1;
  }
  if (fn == l_core_sleep) {
    lua_pushvalue(L, lua_upvalueindex(UP_SLEEP_AWAIT));
    return 1;
  }
  if (!lua_isfunction(L, 2) && luaL_getmetafield(L, 2, "__call") == LUA_TNIL)
    return argcheck_error(L, "attempt to call a %s value", luaL_typename(L, 2));
  lua_settop(L, 2);
  lua_pushvalue(L, lua_upvalueindex(UP_CALLING));
  lua_insert(L, 2);
  lua_call(L, 1, 1);
  return 1;
}

/* asyncio.await(x): inside a task, x's results at once if it is done (a coroutine object
   runs inline), else the task suspends until it is; outside, top-level await. The whole
   dispatch is C, called by the awaiting code itself: a task suspended in await (or in
   sleep_await) keeps one C frame below its body. The most frequent kinds first. */
static int l_core_await(lua_State *L) {
  task *t = task_of(L);
  if (lua54_usable()) { /* the keyword's await(await, f) told and, for sleep or an async
                           function, answered from the frame (lua54.c): lua_tocfunction
                           twice and a push were ~85 instructions of its ~110 */
    const lua54_callinfo *ci = lua54_ci(L);
    const lua54_value *args = lua54_args(ci);
    int n = lua54_nargs(L, args);
    if (n >= 1 && lua54_cclosure_f(&args[0]) == l_core_await) {
      lua_CFunction fn = n == 2 ? lua54_cclosure_f(&args[1]) : NULL;
      if (fn == l_core_sleep) {
        lua54_push(L, lua54_upvalues(ci)[UP_SLEEP_AWAIT - 1]);
        return 1;
      }
      if (fn == async_call && t != NULL) {
        lua54_push(L, lua54_cclosure_upvalues(&args[1])[0]);
        return 1;
      }
      return await_keyword(L, t);
    }
  } else if (lua_tocfunction(L, 1) == l_core_await) {
    return await_keyword(L, t);
  }
  lua_settop(L, 1);
  for (int depth = 0; depth < 8; depth++) {
    if (lua_getmetatable(L, 1)) {
      if (lua_rawequal(L, -1, lua_upvalueindex(UP_FUTURE_MT)) ||
          lua_rawequal(L, -1, lua_upvalueindex(UP_TASK_MT))) {
        lua_pop(L, 1);
        future *f = lua_touserdata(L, 1);
        if (t == NULL) break;
        if (f->state != FUT_PENDING) return future_push_outcome(L, f, 1);
        if (f == &t->base) return argcheck_error(L, "await: a task cannot await itself");
        if (tail_await_future(L, t, 1)) return 0; /* the body's last act (tail.c) */
        return await_suspend(L, t, f, await_future_k);
      }
      if (lua_rawequal(L, -1, lua_upvalueindex(UP_CORO_MT))) {
        lua_pop(L, 1);
        if (t == NULL) break; /* top level: runs as the main task */
        return await_coro(L, t);
      }
      if (lua_rawequal(L, -1, lua_upvalueindex(UP_OP_MT))) {
        lua_pop(L, 1);
        if (t == NULL) break; /* top level: runs as the main task */
        return op_await(L, t);
      }
      lua_pop(L, 1);
      if (luaL_getmetafield(L, 1, "__await") != LUA_TNIL) {
        lua_pushvalue(L, 1);
        lua_call(L, 1, 1);
        lua_replace(L, 1);
        continue;
      }
      return not_awaitable_error(L, 1, "await", "a coroutine object, Task or Future");
    }
    if (lua_rawequal(L, 1, lua_upvalueindex(UP_YIELD_ONCE))) {
      if (t == NULL) break;
      return yield_once(L, t);
    }
    return not_awaitable_error(L, 1, "await", "a coroutine object, Task or Future");
  }
  return await_top_level(L, loop_get(L));
}

int await_is_await(lua_CFunction f) { return f == l_core_await; }

/* core.make_await(factory) -> asyncio.await, with the factory of await(await, f)'s
   closure for callables other than async functions and sleep. */
static int l_core_make_await(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  for (int i = 1; i <= UP_COUNT; i++) lua_pushvalue(L, lua_upvalueindex(i));
  for (int i = 1; i <= UP_COUNT; i++) lua_pushvalue(L, lua_upvalueindex(i));
  lua_pushcclosure(L, sleep_await, UP_COUNT);
  lua_pushvalue(L, 1);
  lua_pushcclosure(L, l_core_await, UP_AWAIT_COUNT);
  return 1;
}

/* asyncio.run_until_complete(aw): top-level await as a function, for asyncio.run. */
static int l_core_run_until_complete(lua_State *L) {
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  return await_top_level(L, loop_get(L));
}

/* asyncio._loop_is_running() */
static int l_core_loop_is_running(lua_State *L) {
  lua_pushboolean(L, loop_is_running(loop_get(L)));
  return 1;
}

/* asyncio._run_loop(mode): runs the loop ("default" until idle, "once", "nowait");
   returns whether anything is left that could run. */
static int l_core_run_loop(lua_State *L) {
  static const char *const modes[] = {"default", "once", "nowait", NULL};
  static const uv_run_mode uv_modes[] = {UV_RUN_DEFAULT, UV_RUN_ONCE, UV_RUN_NOWAIT};
  int mode = luaL_checkoption(L, 1, "default", modes);
  loop_state *loop = loop_get(L);
  if (loop_is_running(loop)) return luaL_error(L, "the event loop is already running");
  lua_pushboolean(L, loop_run(L, loop, uv_modes[mode]));
  return 1;
}

static const luaL_Reg await_functions[] = {
    {"make_await", l_core_make_await},
    {"sleep", l_core_sleep},
    {"ensure_future", l_core_ensure_future},
    {"create_task", l_core_create_task},
    {"run_until_complete", l_core_run_until_complete},
    {NULL, NULL},
};

static const luaL_Reg plain_functions[] = {
    {"async", l_core_async},
    {"iscoroutinefunction", l_core_iscoroutinefunction},
    {"iscoroutine", l_core_iscoroutine},
    {"_loop_is_running", l_core_loop_is_running},
    {"_run_loop", l_core_run_loop},
    {NULL, NULL},
};

/* Adds fns to the table on top (core, after await_open) as closures over await's
   upvalues, which await_to_future reads: gather.c's gather turns its arguments into
   futures so. */
void await_setfuncs(lua_State *L, const luaL_Reg *fns) {
  lua_getfield(L, -1, "make_await");
  for (int i = 1; i <= UP_COUNT; i++) lua_getupvalue(L, -i, i);
  lua_remove(L, -(UP_COUNT + 1));
  luaL_setfuncs(L, fns, UP_COUNT);
}

/* Adds async, await's maker and the task makers to the table on top; the Future, Task
   and coroutine metatables must exist. */
void await_open(lua_State *L) {
  if (atomic_load(&tail_opcode) == 0) tail_probe(L); /* once per process */
  luaL_getmetatable(L, FUTURE_MT);
  luaL_getmetatable(L, TASK_MT);
  luaL_getmetatable(L, CORO_MT);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &type_op);
  lua_newuserdatauv(L, 1, 0); /* the yield-once awaitable sleep(0) returns */
  site_table_push(L);
  luaL_setfuncs(L, await_functions, UP_COUNT);
  luaL_setfuncs(L, plain_functions, 0);
}

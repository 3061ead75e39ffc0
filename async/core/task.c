/* task.c — Task: a Lua thread running a body, resumed by the scheduler, and its cancellation. */
#include <stdio.h>
#include <stdlib.h>

#include "core.h"

/* The slot's low bits are flags (OWNER_*); the rest is the task the thread runs for. */
task *task_of(lua_State *L) {
  return (task *)(*(uintptr_t *)lua_getextraspace(L) & ~(uintptr_t)OWNER_FLAGS);
}

/* Marks a thread as running on behalf of a task (NULL: none): O(1) lookup in await. */
void task_set_thread_owner(lua_State *co, task *t) { *(task **)lua_getextraspace(co) = t; }

task *task_check(lua_State *L, int idx) { return type_check(L, idx, &type_task, "Task"); }

static int is_cancelled_error(lua_State *L, loop_state *loop, int idx) {
  if (!lua_istable(L, idx) || !lua_getmetatable(L, idx)) return 0;
  int yes = lua_topointer(L, -1) == loop->cancelled_mt;
  lua_pop(L, 1);
  return yes;
}

/* ---- the body: runs under a pcall inside the task's own thread --------------------- */

/* Keeps the traceback of the failing task with the task, where the error was raised. */
static int task_msgh(lua_State *L) {
  task *t = task_of(L);
  if (t && t->ref != LUA_NOREF && !is_cancelled_error(L, t->base.loop, 1)) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->ref);
    error_traceback(L, L, 1, 1);
    future_set_extra(L, -2, FEXTRA_TRACEBACK);
    lua_pop(L, 1);
  }
  lua_settop(L, 1);
  return 1;
}

/* Leaves [true, results...] or [false, error] as the thread's return values. */
static int task_main_k(lua_State *L, int status, lua_KContext ctx) {
  (void)ctx;
  lua_pushboolean(L, status == LUA_OK || status == LUA_YIELD);
  lua_replace(L, 1);
  return lua_gettop(L);
}

static int task_start_next_here(lua_State *L, task *t);

/* A Lua-level pcall inside the thread, not lua_resume's own error exit, so that __close
   handlers that await (timeouts, task groups, cleanup) can run while errors unwind.
   task_start_thread hands it [task_msgh, body, args...]. A body that returns without
   ever suspending may be followed, in the same resume, by the next tasks to start
   (task_start_next_here). */
static int task_main(lua_State *L) {
  int status;
  do {
    status = lua_pcallk(L, lua_gettop(L) - 2, LUA_MULTRET, 1, 0, task_main_k);
  } while (status == LUA_OK && task_start_next_here(L, task_of(L)));
  return task_main_k(L, status, 0);
}

/* ---- creation --------------------------------------------------------------------- */

void task_wake(loop_state *loop, waiter *w, future *f) {
  (void)f;
  task *t = container_of(w, task, wait);
  t->awaiting = NULL;
  task_schedule(loop, t);
}

void task_schedule(loop_state *loop, task *t) {
  if (t->scheduled) return;
  t->scheduled = 1;
  loop_push_ready(loop, &t->run);
}

/* Creates a Task running fn (at fidx) with the nargs values after it, scheduled for the
   next loop iteration. name_idx: its name, or 0. Pushes the task. The task gets its Lua
   thread only when it first runs: thousands of tasks created at once then share a few
   pooled threads, and the garbage collector (which rescans every live thread on each
   cycle) does not see a thread per task that has not started. */
static int task_new(lua_State *L, loop_state *loop, int fidx, int nargs, int name_idx,
                    const coro *body_coro) {
  fidx = lua_absindex(L, fidx);
  if (name_idx) name_idx = lua_absindex(L, name_idx);
  if (nargs > 0xffff - 2) luaL_error(L, "create_task: too many arguments for a task (%d)", nargs);
  if (body_coro) nargs = body_coro->nargs;
  int nbody = nargs + 1;
  task *t = lua_newuserdatauv(L, sizeof *t, TUV_ARGS - 2 + nbody);
  future_init(&t->base, loop, KIND_TASK);
  t->base.task_nuv = (uint16_t)nbody;
  t->base.timer.kind = TIMER_TASK;
  t->run.kind = RUN_TASK;
  waiter_init(&t->wait, WAITER_TASK);
  t->co = NULL;
  t->awaiting = NULL;
  t->ref = LUA_NOREF;
  t->num_cancels = 0;
  t->nargs = (unsigned)nargs;
  t->started = t->scheduled = t->must_cancel = t->deliver_cancel = t->is_main = t->tail = 0;
  t->has_context = t->has_extra = 0;
  t->id = ++loop->task_ids;
  task *creator = task_of(L);
  if (creator == NULL) creator = loop->current;
  int inherits = creator ? creator->has_context : loop->top_has_context;
  int named = name_idx && !lua_isnil(L, name_idx);
  /* registered for finalization only if it will need it (finalize.c): a Task made with a
     context or a name; one that needs it later gets a watcher then */
  int finalizable = inherits || named || !loop->task_lazy_gc;
  t->has_finalizer = (unsigned)finalizable;
  lua54_udata *u;
  if (body_coro && !finalizable && lua54_usable() && lua54_storable(u = lua54_udata_of(t, nbody))) {
    /* the usual case, stored raw (lua54.c): the metatable, which registers nothing for
       finalization, and the coroutine object's function and arguments (its user values
       1 and 3...; the object itself is garbage now) */
    const lua54_udata *from = lua54_udata_of(body_coro, nargs + 2);
    u->metatable = loop->task_mt;
    u->uv[TUV_BODY - 1] = from->uv[0];
    if (nargs == 1) /* the usual count: a copy, where the loop below is a call of memcpy */
      u->uv[TUV_ARGS - 1] = from->uv[2];
    else
      for (int i = 0; i < nargs; i++) u->uv[TUV_ARGS - 1 + i] = from->uv[2 + i];
  } else {
    lua_rawgeti(L, LUA_REGISTRYINDEX, loop->task_mt_ref);
    if (loop->task_lazy_gc) finalize_flag_hide(loop->task_mt, !finalizable);
    lua_setmetatable(L, -2);
    if (inherits) context_inherit(L, loop, t);
    if (named) {
      luaL_tolstring(L, name_idx, NULL);
      future_set_extra(L, -2, FEXTRA_NAME);
    }
    if (body_coro) { /* its function and arguments: the object itself is garbage now */
      coro_copy_into(L, fidx, body_coro, TUV_BODY, TUV_ARGS);
    } else {
      lua_pushvalue(L, fidx);
      lua_setiuservalue(L, -2, TUV_BODY);
      for (int i = 1; i < nbody; i++) {
        lua_pushvalue(L, fidx + i);
        lua_setiuservalue(L, -2, TUV_ARGS - 1 + i);
      }
    }
  }
  t->ref = anchor_take_udata(L, loop, lua54_udata_of(t, nbody));
  loop->live_count++;
  task_schedule(loop, t);
  debug_record(L, -1);
  return 1;
}

int task_create(lua_State *L, loop_state *loop, int fidx, int nargs, int name_idx) {
  return task_new(L, loop, fidx, nargs, name_idx,
                  nargs == TASK_BODY_CORO ? lua_touserdata(L, fidx) : NULL);
}

int task_create_coro(lua_State *L, loop_state *loop, int fidx, const coro *c, int name_idx) {
  return task_new(L, loop, fidx, TASK_BODY_CORO, name_idx, c);
}

/* Below this many values, the pushes of a task's first step and end need no
   lua_checkstack: a C function (the drain) and a thread not running (a new or pooled
   one) each have LUA_MINSTACK (20) free slots, a few of which the step itself uses. */
#define TASK_FEW_VALUES 8

/* Pushes the arguments of task t (at tidx), clearing the slots of those the collector
   sees (a number or a boolean keeps nothing alive) so that the task no longer keeps them
   alive. Returns how many. */
static int task_push_args(lua_State *L, int tidx, task *t) {
  int nargs = t->nargs;
  t->nargs = 0;
  if (nargs > TASK_FEW_VALUES) luaL_checkstack(L, nargs + 1, "too many arguments for a task");
  for (int i = 1; i <= nargs; i++) {
    if (lua_getiuservalue(L, tidx, TUV_ARGS - 1 + i) <= LUA_TNUMBER) continue;
    lua_pushnil(L);
    lua_setiuservalue(L, tidx, TUV_ARGS - 1 + i);
  }
  return nargs;
}

/* First step: gives the task a thread holding [task_main, task_msgh, body, args...];
   returns the number of values to resume it with. The thread takes the body's slot. */
static int task_start_thread(lua_State *L, loop_state *loop, task *t) {
  int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->ref);
  lua_getiuservalue(L, top + 1, TUV_BODY); /* top + 2: the thread takes its slot */
  lua_State *co = loop_pool_take(L, loop);
  lua_setiuservalue(L, top + 1, TUV_THREAD);
  t->co = co;
  task_set_thread_owner(co, t);
  owner_set_flags(co, OWNER_TASK_THREAD);
  lua_pushvalue(L, top + 2);
  int nargs = task_push_args(L, top + 1, t);
  if (nargs > TASK_FEW_VALUES) luaL_checkstack(co, nargs + 3, "too many arguments for a task");
  lua_pushcfunction(co, task_main);
  lua_pushcfunction(co, task_msgh);
  lua_xmove(L, co, nargs + 1);
  lua_settop(L, top);
  return nargs + 2;
}

static void task_complete(lua_State *L, loop_state *loop, task *t, int state);
static void task_drop_cancel_message(lua_State *L, task *t);

/* Pushes what the task whose tail await (tail.c) just returned keeps: the function that
   awaited a sleep (loop->tail_fn, a Lua closure), or the record of an awaited future, in
   a registry slot of the loop's, cleared (it would keep it alive once the task is done). */
static void task_take_tail_function(lua_State *L, loop_state *loop) {
  if (!loop->tail_record) {
    lua54_push(L, (lua54_value){loop->tail_fn, LUA54_TT_LCLOSURE});
    loop->tail_fn = NULL;
    return;
  }
  loop->tail_record = 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, loop->tail_record_ref);
  lua_pushboolean(L, 0);
  lua_rawseti(L, LUA_REGISTRYINDEX, loop->tail_record_ref);
}

/* Stores v into user value i of the userdata whose header is u as lua_setiuservalue
   would: raw where Lua's barrier would do nothing (lua54.c), else through the API, which
   runs it (the userdata pushed raw: L has room for two more values). */
static void task_store_uv(lua_State *L, lua54_udata *u, int i, lua54_value v) {
  if (!lua54_needs_barrier(u, &v)) {
    u->uv[i - 1] = v;
    return;
  }
  lua54_push(L, (lua54_value){u, LUA54_TT_UDATA});
  lua54_push(L, v);
  lua_setiuservalue(L, -2, i);
  lua_pop(L, 1);
}

/* task_start_next_here's hand-over without the registry and the API for each value (~380
   instructions a first step less: bench/RESULTS.md, session 9, wt-first): with L's stack
   [task_main, task_msgh, t's outcome], t's outcome takes its slot, this thread next's,
   and the stack becomes [task_main, task_msgh, next's body, its arguments...], the slots
   of the arguments the collector would follow cleared in next (task_push_args). Both
   tasks' headers are found from their blocks (lua54_udata_of) and checked against what
   they must hold; returns 0, having done nothing, if either disagrees or next has many
   arguments (then the API's path runs). Nothing here allocates: between t's slot
   losing the thread and next's taking it, no collection can run. */
static int task_hand_over_raw(lua_State *L, task *t, task *next) {
  int nargs = (int)next->nargs;
  lua54_udata *tu = lua54_udata_of(t, t->base.task_nuv);
  lua54_udata *nu = lua54_udata_of(next, nargs + 1);
  if (nargs > TASK_FEW_VALUES || lua_gettop(L) != 2 || tu->nuvalue != t->base.task_nuv ||
      tu->len != sizeof *t || nu->nuvalue != nargs + 1 || nu->len != sizeof *next ||
      next->base.task_nuv != nargs + 1)
    return 0;
  lua54_value *slot = (lua54_value *)lua54_ci(L)->func; /* slot[i]: stack index i */
  task_store_uv(L, tu, TUV_THREAD, slot[2]);
  lua54_value body = nu->uv[TUV_BODY - 1];
  task_store_uv(L, nu, TUV_THREAD, (lua54_value){L, LUA54_TT_THREAD});
  for (int i = 0; i < nargs; i++) lua_pushnil(L); /* from [task_msgh, t's outcome] */
  slot[2] = body;
  for (int i = 0; i < nargs; i++) {
    lua54_value *arg = &nu->uv[TUV_ARGS - 1 + i];
    slot[3 + i] = *arg;
    if ((arg->tt & 0x0f) > LUA_TNUMBER) arg->tt = 0; /* nil: no barrier for that */
  }
  next->nargs = 0;
  return 1;
}

/* In task_main: the body of t, the task this thread runs, returned at most one value
   without ever suspending ([task_msgh, results...] on the stack), or returned from a tail
   await (tail.c: no values). If the next entry of the running drain's batch is a task to
   start, ends t here (or leaves it in its tail await, without a thread) and leaves that
   task's [task_msgh, body, args...] in t's place, returning 1: one resume then runs a run
   of tasks that each end (or tail-await) in their first step (create_task(work(i)) for
   many i), where each would take a resume of its own, a thread from the pool and back and
   its values moved from stack to stack. Else returns 0: t ends as usual (task_finish), or
   task_step takes its thread back (task_tail_park). */
static int task_start_next_here(lua_State *L, task *t) {
  int n = lua_gettop(L) - 1;
  if (t == NULL || n > 1) return 0;
  loop_state *loop = t->base.loop;
  task *next = loop_take_first_step(loop);
  if (next == NULL) return 0;
  if (t->tail) /* 2: what t's slot holds from now on (its outcome, or its tail function) */
    task_take_tail_function(L, loop);
  else if (n == 0)
    lua_pushnil(L);
  int raw = lua54_usable() && task_hand_over_raw(L, t, next);
  if (!raw) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->ref);
    lua_insert(L, 2);                   /* 2: t, 3: its outcome */
    lua_setiuservalue(L, 2, FUV_VALUE); /* t's outcome takes the thread's slot: until next's
                                           below anchors it, nothing allocates (no collection) */
    lua_rawgeti(L, LUA_REGISTRYINDEX, next->ref); /* 3 */
    lua_getiuservalue(L, 3, TUV_BODY);
    lua_replace(L, 2); /* 2: next's body, in t's place */
    lua_pushthread(L);
    lua_setiuservalue(L, 3, TUV_THREAD); /* this thread is next's now (and anchored) */
  }
  t->co = NULL;
  if (!t->tail) {
    t->base.nresults = n;
    task_drop_cancel_message(L, t);
    task_complete(L, loop, t, FUT_RESULT);
  }
  next->scheduled = 0;
  next->started = 1;
  next->co = L;
  task_set_thread_owner(L, next);
  owner_set_flags(L, OWNER_TASK_THREAD);
  loop->current = next;
  loop->settling = &next->run; /* for loop_drain: the task whose end an error may cut short */
  if (!raw) {
    if (task_push_args(L, 3, next) == 1)
      lua_replace(L, 3); /* the usual case: one argument, in next's place */
    else
      lua_remove(L, 3);
  }
  return 1;
}

/* ---- finishing -------------------------------------------------------------------- */

/* Gives a finished task's thread back to the pool (or lets a dead one go); the task's
   slot that anchored it (TUV_THREAD) is the outcome's, which task_finish sets next. */
static void task_release_thread(lua_State *L, loop_state *loop, task *t, int reusable) {
  lua_State *co = t->co;
  if (co == NULL) return;
  t->co = NULL;
  task_set_thread_owner(co, NULL); /* also a thread the pool does not keep: t may go */
  if (reusable) loop_pool_give(L, loop, co);
}

static void task_complete(lua_State *L, loop_state *loop, task *t, int state) {
  loop->live_count--;
  timer_remove(loop, &t->base.timer); /* left armed by a sleep an error cut short */
  future_complete(&t->base, state);
  anchor_drop(L, loop, t->ref);
  t->ref = LUA_NOREF;
}

/* Frees the message of a cancellation not delivered (the task ended otherwise). */
static void task_drop_cancel_message(lua_State *L, task *t) {
  luaL_unref(L, LUA_REGISTRYINDEX, t->base.msg_ref);
  t->base.msg_ref = LUA_NOREF;
}

/* Keeps the message of the CancelledError a task ended with (in place of a cancellation's
   message not delivered). */
static void task_keep_cancel_message(lua_State *L, task *t, int msgidx) {
  luaL_unref(L, LUA_REGISTRYINDEX, t->base.msg_ref);
  t->base.msg_ref = LUA_NOREF;
  if (lua_isnil(L, msgidx)) return;
  finalize_watch_task(L, t, 0); /* to free the message */
  lua_pushvalue(L, msgidx);
  t->base.msg_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

/* Records how the body ended: the thread returned [ok, values...] (status LUA_OK), or
   died with an error outside the body's pcall (memory, a bad yield). */
static void task_finish(lua_State *L, loop_state *loop, task *t, int status) {
  lua_State *co = t->co;
  int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->ref);
  int tidx = top + 1, state;
  int ok = status == LUA_OK && lua_toboolean(co, 1);
  int n = ok ? lua_gettop(co) - 1 : 1;
  if (n > TASK_FEW_VALUES) luaL_checkstack(L, n + 2, "too many results");
  lua_xmove(co, L, n);
  /* the thread's slot is the result's: give the thread back first */
  task_release_thread(L, loop, t, status == LUA_OK);
  if (ok && n == 1) { /* the usual case: the value takes the slot at once */
    lua_setiuservalue(L, tidx, FUV_VALUE);
    t->base.nresults = 1;
    state = FUT_RESULT;
    task_drop_cancel_message(L, t);
  } else if (ok) {
    future_store_results(L, tidx, tidx + 1, n);
    state = FUT_RESULT;
    task_drop_cancel_message(L, t);
  } else if (is_cancelled_error(L, loop, -1)) {
    lua_pushnil(L);
    lua_setiuservalue(L, tidx, TUV_THREAD); /* no outcome value: let the thread go */
    lua_getfield(L, -1, "message");
    task_keep_cancel_message(L, t, lua_gettop(L));
    state = FUT_CANCELLED;
  } else {
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, tidx, FUV_VALUE);
    state = FUT_ERROR;
    task_drop_cancel_message(L, t);
    finalize_watch_task(L, t, tidx);             /* to report the error if nobody retrieves it */
    if (t->base.first == NULL) lost_watch(loop); /* nobody waits: maybe nobody ever will */
  }
  task_complete(L, loop, t, state);
  lua_settop(L, top);
}

static int task_watch_protected(lua_State *L) {
  finalize_watch_task(L, lua_touserdata(L, 1), 0);
  return 0;
}

/* loop_drain: an error (on top of L, popped) cut short the run of t while it started or
   finished, in the scheduler's own calls (its thread taken from the pool, its results
   stored, its error kept): t completes with that error, so that its awaiters wake and
   raise it. All of this allocates nothing: memory may be short. A task left whole (not
   started, done, or suspended in an await or a sleep) is left as it is. */
void task_settle_failed(lua_State *L, loop_state *loop, task *t) {
  lua_State *co = t->co;
  if (t->base.state != FUT_PENDING || t->ref == LUA_NOREF || !t->started || t->awaiting ||
      (co && lua_status(co) == LUA_YIELD)) {
    lua_pop(L, 1);
    return;
  }
  if (co) { /* not back to the pool: its stack may hold anything */
    t->co = NULL;
    task_set_thread_owner(co, NULL);
  }
  t->tail = 0; /* cut short as its tail await's thread went back to the pool, or it ended */
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->ref);
  lua_insert(L, -2);
  lua_setiuservalue(L, -2, FUV_VALUE); /* the thread's slot: it may go */
  lua_pop(L, 1);
  t->base.nresults = 0;
  task_drop_cancel_message(L, t);
  if (t->base.first == NULL) { /* reported if nobody retrieves it, if memory allows */
    lua_pushcfunction(L, task_watch_protected);
    lua_pushlightuserdata(L, t);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) lua_pop(L, 1);
    lost_watch(loop);
  }
  task_complete(L, loop, t, FUT_ERROR);
}

/* A yield that is not await's: the body called coroutine.yield from C or through a
   path we do not see (a C function's lua_yield). The task cannot continue; its __close
   handlers run unyieldable. The message is made on L, inside the drain's protected call
   (a memory error there settles t: loop_drain), and moved over: made on t's thread, which
   runs no protected call now, a memory error jumped to the main thread's handler, past
   the loop and whatever resumes lay between (tests/c/alloc_test.c). */
static void task_fail_bad_yield(lua_State *L, loop_state *loop, task *t, int nres) {
  lua_pop(t->co, nres);
#if LUA_VERSION_RELEASE_NUM >= 50406
  lua_closethread(t->co, L);
#else
  lua_resetthread(t->co);
#endif
  lua_settop(t->co, 0);
  lua_pushliteral(L, "task yielded a value that is not an await (coroutine.yield in a task body?)");
  lua_xmove(L, t->co, 1);
  task_finish(L, loop, t, LUA_ERRRUN);
}

/* Ends a task cancelled before its first step: the body never runs. */
static void task_cancel_unstarted(lua_State *L, loop_state *loop, task *t) {
  int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->ref);
  lua_pushnil(L);
  lua_setiuservalue(L, top + 1, TUV_BODY);
  for (int i = 1; i <= (int)t->nargs; i++) {
    lua_pushnil(L);
    lua_setiuservalue(L, top + 1, TUV_ARGS - 1 + i);
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->base.msg_ref); /* task_keep_cancel_message frees it */
  t->deliver_cancel = 0;
  task_keep_cancel_message(L, t, top + 2);
  task_complete(L, loop, t, FUT_CANCELLED);
  lua_settop(L, top);
}

/* ---- a tail await (tail.c): the task waits without its thread ------------------------ */

/* The body of t returned from its tail await, the last task this resume ran: its thread
   goes back to the pool, the function that awaited takes the thread's slot. */
static void task_tail_park(lua_State *L, loop_state *loop, task *t) {
  int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->ref);
  lua_pushthread(t->co); /* the thread, anchored here until the pool anchors it */
  lua_xmove(t->co, L, 1);
  task_take_tail_function(L, loop);
  lua_setiuservalue(L, top + 1, TUV_THREAD); /* t is parked: what follows only moves the thread */
  task_release_thread(L, loop, t, 1);        /* (no memory for the pool's table: it is dropped) */
  lua_settop(L, top);
}

/* Ends t (at tidx) cancelled by a CancelledError carrying the message in msg_ref (owned
   by the caller), as task_finish would for that error out of the body: its text, or "". */
static void task_tail_cancelled(lua_State *L, loop_state *loop, task *t, int msg_ref) {
  const char *msg = NULL;
  if (msg_ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, msg_ref);
    msg = lua_tostring(L, -1);
  }
  lua_pushstring(L, msg ? msg : "");
  task_keep_cancel_message(L, t, lua_gettop(L));
  task_complete(L, loop, t, FUT_CANCELLED);
}

/* The future t's tail await waited for (record at rec: {function, future, keep,
   tail-called}) is done: t (at tidx) ends as the body would have with the await's outcome
   (await_future_k's): its values for `return await`, none for a bare `await`; its error,
   with the traceback task_msgh would have taken on the thread (error_push_tail_stack) and
   the awaited task's relayed; a CancelledError's message. */
static void task_tail_end_future(lua_State *L, loop_state *loop, task *t, int tidx, int rec,
                                 int line) {
  lua_rawgeti(L, rec, 2);
  int fidx = lua_gettop(L);
  future *f = lua_touserdata(L, fidx);
  if (f->state == FUT_RESULT) {
    lua_rawgeti(L, rec, 3);
    int keep = lua_toboolean(L, -1), first = lua_gettop(L);
    int n = keep ? future_push_outcome(L, f, fidx) : 0; /* above the flag, at first + 1.. */
    first++;
    future_store_results(L, tidx, first, n);
    task_drop_cancel_message(L, t);
    task_complete(L, loop, t, FUT_RESULT);
    return;
  }
  if (f->state == FUT_CANCELLED) {
    task_tail_cancelled(L, loop, t, f->msg_ref);
    return;
  }
  f->retrieved = 1; /* FUT_ERROR: as future_push_outcome raises it */
  lua_getiuservalue(L, fidx, FUV_VALUE);
  int err = lua_gettop(L);
  future_get_extra(L, fidx, FEXTRA_TRACEBACK);
  error_relay_set(L, err, -1);
  lua_pop(L, 1);
  if (is_cancelled_error(L, loop, err)) {
    lua_getfield(L, err, "message");
    task_keep_cancel_message(L, t, lua_gettop(L));
    task_complete(L, loop, t, FUT_CANCELLED);
    return;
  }
  lua_rawgeti(L, rec, 1);
  lua_rawgeti(L, rec, 4);
  int tailcalled = lua_toboolean(L, -1);
  lua_pop(L, 1);
  error_push_tail_stack(L, line, tailcalled); /* as task_msgh */
  error_relay_append(L, err);
  future_set_extra(L, tidx, FEXTRA_TRACEBACK);
  lua_pushvalue(L, err);
  lua_setiuservalue(L, tidx, FUV_VALUE);
  task_drop_cancel_message(L, t);
  finalize_watch_task(L, t, tidx);             /* to report the error if nobody retrieves it */
  if (t->base.first == NULL) lost_watch(loop); /* nobody waits: maybe nobody ever will */
  task_complete(L, loop, t, FUT_ERROR);
}

/* What t's tail await waited for is over: a sleep, and t ends with no results, as its
   body would have returned; or a future (task_tail_end_future). A cancellation that came
   first ends it cancelled with the message the CancelledError raised in the await would
   have carried out of the body. */
static void task_tail_end(lua_State *L, loop_state *loop, task *t) {
  int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->ref);
  int line = (int)t->nargs;
  t->tail = 0;
  t->nargs = 0;
  int record = lua_getiuservalue(L, top + 1, FUV_VALUE) == LUA_TTABLE;
  lua_pushnil(L);
  lua_setiuservalue(L, top + 1, FUV_VALUE); /* no outcome value yet: the function goes */
  if (t->deliver_cancel) {
    t->deliver_cancel = 0;
    if (t->awaiting) {
      future_remove_waiter(t->awaiting, &t->wait);
      t->awaiting = NULL;
    }
    task_tail_cancelled(L, loop, t, t->base.msg_ref);
  } else if (record) {
    task_tail_end_future(L, loop, t, top + 1, top + 2, line);
  } else {
    t->base.nresults = 0;
    task_drop_cancel_message(L, t);
    task_complete(L, loop, t, FUT_RESULT);
  }
  lua_settop(L, top);
}

/* Resumes a ready task until its next await or its end. */
void task_step(lua_State *L, loop_state *loop, task *t) {
  t->scheduled = 0;
  if (t->base.state != FUT_PENDING) return;
  if (t->must_cancel) {
    t->must_cancel = 0;
    t->deliver_cancel = 1;
  }
  if (t->tail) {
    task_tail_end(L, loop, t);
    return;
  }
  int narg = 0;
  if (!t->started) {
    t->started = 1;
    if (t->deliver_cancel) {
      task_cancel_unstarted(L, loop, t);
      return;
    }
    narg = task_start_thread(L, loop, t);
  }
  task *outer = loop->current;
  loop->current = t;
  if (loop->debug) debug_hook_thread(t->co);
  int nres = 0;
  lua_State *co = t->co;
  lua_State *published = loop_enter(loop, co);
  int status = await_resume(loop, co, L, narg, &nres);
  loop_leave(loop, published);
  loop->current = outer;
  t = task_of(co); /* a first step may have ended other tasks and run this one last */
  if (status == LUA_YIELD) {
    if (nres == 1 && lua_touserdata(t->co, -1) == &await_tag) {
      lua_pop(t->co, 1);
      if (narg) stack_fit(t->co); /* a first step: the thread's stack to its use */
      return;
    }
    task_fail_bad_yield(L, loop, t, nres);
    return;
  }
  if (t->tail) {
    if (status == LUA_OK && lua_toboolean(t->co, 1)) {
      task_tail_park(L, loop, t);
      return;
    }
    /* an error after its tail await began (an interrupt's hook): it ends as usual, having
       awaited nothing; what the await left in the loop's slot goes (it kept the function
       or the record, with the future, alive until the next tail await) */
    t->tail = 0;
    if (loop->tail_record) { /* the record, and its future, go */
      task_take_tail_function(L, loop);
      lua_pop(L, 1);
    }
    loop->tail_fn = NULL; /* a sleep's: a bare pointer, never pushed here (the error's own
                             allocations may have collected the function) */
    if (t->awaiting) {
      future_remove_waiter(t->awaiting, &t->wait);
      t->awaiting = NULL;
    }
  }
  task_finish(L, loop, t, status);
}

/* ---- asyncio.sleep on the task's own timer node ------------------------------------ */

/* Arms the timer of a task about to suspend in asyncio.sleep: no Future, no waiter. A
   task cancelled while running is resumed at once instead, to raise CancelledError. */
void task_sleep(task *t, uint64_t delay) {
  loop_state *loop = t->base.loop;
  t->awaiting = NULL;
  if (t->must_cancel) {
    task_schedule(loop, t);
    return;
  }
  timer_remove(loop, &t->base.timer);
  timer_schedule(loop, &t->base.timer, uv_hrtime() + delay);
}

int task_in_sleep(loop_state *loop, task *t) {
  return t->base.timer.index != TIMER_NOT_QUEUED && t->awaiting == NULL && !t->scheduled &&
         t != loop->current;
}

/* The timer of a sleeping task is due. It wakes only a task still suspended in that
   sleep: a sleep whose yield failed (a C boundary in between) leaves the timer armed
   while the task goes on to await something else. */
void task_timer_fired(loop_state *loop, task *t) {
  if (t->base.state == FUT_PENDING && t->awaiting == NULL) task_schedule(loop, t);
}

/* ---- cancellation ----------------------------------------------------------------- */

/* Pushes a CancelledError carrying the message in msg_ref (LUA_NOREF: none). */
int task_push_cancelled_error(lua_State *L, int msg_ref) {
  const char *msg = NULL;
  if (msg_ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, msg_ref);
    msg = lua_tostring(L, -1);
  } else {
    lua_pushnil(L);
  }
  error_push(L, "CancelledError", msg);
  lua_remove(L, -2);
  return 1;
}

static void task_set_cancel_message(lua_State *L, task *t, int msg_idx) {
  task_drop_cancel_message(L, t);
  if (msg_idx && !lua_isnoneornil(L, msg_idx)) {
    finalize_watch_task(L, t, 0); /* to free the message */
    lua_pushvalue(L, msg_idx);
    t->base.msg_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
}

/* Requests cancellation (Python's Task.cancel). What the task awaits is cancelled in its
   place; down a chain of tasks awaiting tasks this walks iteratively, not recursively. */
int task_cancel(lua_State *L, task *t, int msg_idx) {
  if (t->base.state != FUT_PENDING) return 0;
  loop_state *loop = t->base.loop;
  task *cur = t;
  for (;;) {
    if (cur->num_cancels < UINT16_MAX) cur->num_cancels++;
    if (task_in_sleep(loop, cur)) { /* wake it: the sleep raises CancelledError */
      timer_remove(loop, &cur->base.timer);
      cur->must_cancel = 1;
      task_set_cancel_message(L, cur, msg_idx);
      task_schedule(loop, cur);
      return 1;
    }
    future *w = cur->scheduled || cur == loop->current ? NULL : cur->awaiting;
    if (w && w->state == FUT_PENDING) {
      if (w->kind == KIND_TASK) {
        cur = (task *)w;
        continue;
      }
      int ref = LUA_NOREF;
      if (msg_idx && !lua_isnoneornil(L, msg_idx)) {
        lua_pushvalue(L, msg_idx);
        ref = luaL_ref(L, LUA_REGISTRYINDEX);
      }
      if (future_cancel(L, w, ref)) return 1;
    }
    cur->must_cancel = 1;
    task_set_cancel_message(L, cur, msg_idx);
    return 1;
  }
}

/* ---- Lua methods ------------------------------------------------------------------ */

static int l_task_cancel(lua_State *L) {
  task *t = task_check(L, 1);
  lua_pushboolean(L, task_cancel(L, t, lua_isnoneornil(L, 2) ? 0 : 2));
  return 1;
}

static int l_task_cancelling(lua_State *L) {
  lua_pushinteger(L, task_check(L, 1)->num_cancels);
  return 1;
}

static int l_task_uncancel(lua_State *L) {
  task *t = task_check(L, 1);
  if (t->num_cancels > 0) {
    t->num_cancels--;
    if (t->num_cancels == 0) t->must_cancel = 0;
  }
  lua_pushinteger(L, t->num_cancels);
  return 1;
}

static int l_task_get_name(lua_State *L) {
  task *t = task_check(L, 1);
  if (future_get_extra(L, 1, FEXTRA_NAME) == LUA_TNIL)
    lua_pushfstring(L, "Task-%I", (lua_Integer)t->id);
  return 1;
}

/* What a dead Task's finalizer does: the Task's own (a Task registered at creation), its
   watcher's, or at lua_close the closer's for a pending Task (finalize.c). */
void task_finalize(lua_State *L, int idx) {
  task *t = lua_touserdata(L, idx);
  task_drop_cancel_message(L, t);
  /* pending: at lua_close, or a Task half made (its name's __tostring failed): counted
     and anchored only once it has a ref */
  if (t->base.state == FUT_PENDING && t->ref != LUA_NOREF) {
    t->base.loop->live_count--;
    timer_remove(t->base.loop, &t->base.timer);
  }
  if (t->co) task_set_thread_owner(t->co, NULL);
  if (t->has_context) context_forget(L, t);
  future_report_unretrieved(L, idx, "Task exception was never retrieved");
  future_forget_extra(L, &t->base);
}

static int task_gc(lua_State *L) {
  task_finalize(L, 1);
  return 0;
}

/* asyncio.current_task() */
static int l_core_current_task(lua_State *L) {
  loop_state *loop = loop_get(L);
  task *t = task_of(L);
  if (t == NULL) t = loop->current;
  if (t == NULL || t->ref == LUA_NOREF)
    lua_pushnil(L);
  else
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->ref);
  return 1;
}

/* ---- the pending tasks ------------------------------------------------------------ */

static int by_id(const void *a, const void *b) {
  uint64_t x = (*(task *const *)a)->id, y = (*(task *const *)b)->id;
  return x < y ? -1 : x > y;
}

/* The loop's pending tasks, oldest first, in a malloc'd array (NULL when none). Each is
   anchored in a registry slot of its own (anchor.c), which is how they are found: a list
   through every task would cost 16 bytes in each, sleeping ones included. */
task **task_pending_list(lua_State *L, loop_state *loop, size_t *count) {
  size_t n = 0, cap = loop->live_count;
  task **all = cap ? malloc(cap * sizeof *all) : NULL;
  if (all == NULL) {
    *count = 0;
    return NULL;
  }
  lua_pushnil(L);
  while (lua_next(L, LUA_REGISTRYINDEX)) { /* [key, value] */
    if (lua_type(L, -1) == LUA_TUSERDATA && lua_getmetatable(L, -1)) {
      task *t = lua_topointer(L, -1) == loop->task_mt ? lua_touserdata(L, -2) : NULL;
      if (t && t->base.state == FUT_PENDING && n < cap && lua_isinteger(L, -3) &&
          lua_tointeger(L, -3) == t->ref)
        all[n++] = t;
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  qsort(all, n, sizeof *all, by_id);
  *count = n;
  return all;
}

/* Cancels every pending task, newest first (Ctrl-C, a worker told to stop). */
void task_cancel_all(lua_State *L, loop_state *loop) {
  size_t n;
  task **all = task_pending_list(L, loop, &n);
  while (n > 0) task_cancel(L, all[--n], 0);
  free(all);
}

/* asyncio.all_tasks(): the pending tasks, oldest first */
static int l_core_all_tasks(lua_State *L) {
  loop_state *loop = loop_get(L);
  size_t n;
  task **all = task_pending_list(L, loop, &n);
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, all[i]->ref);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  free(all);
  return 1;
}

extern void future_shared_methods_add(lua_State *L);
extern int future_tostring_lua(lua_State *L);

static const luaL_Reg task_methods[] = {
    {"cancel", l_task_cancel},
    {"cancelling", l_task_cancelling},
    {"uncancel", l_task_uncancel},
    {"get_name", l_task_get_name},
    {NULL, NULL},
};

static const luaL_Reg task_functions[] = {
    {"current_task", l_core_current_task},
    {"all_tasks", l_core_all_tasks},
    {NULL, NULL},
};

/* Creates the Task metatable; adds current_task and all_tasks to the table on top. */
void task_open(lua_State *L) {
  luaL_newmetatable(L, TASK_MT);
  type_register(L, -1, &type_task);
  type_inherit(L, -1, &type_future);
  lua_newtable(L);
  future_shared_methods_add(L);
  luaL_setfuncs(L, task_methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, future_tostring_lua);
  lua_setfield(L, -2, "__tostring");
  lua_pushcfunction(L, task_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushliteral(L, "Task");
  lua_setfield(L, -2, "__name");
  /* task_create pushes the metatable from an array slot of the registry, not by a hash
     look-up of its key; gather tests a child's by address */
  loop_state *loop = loop_get(L);
  loop->task_mt = lua_topointer(L, -1);
  if (loop->task_mt_ref == 0)
    loop->task_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  else
    lua_rawseti(L, LUA_REGISTRYINDEX, loop->task_mt_ref);
  luaL_setfuncs(L, task_functions, 0);
  loop->task_lazy_gc = finalize_open(L);
  tail_open(L, loop);
}

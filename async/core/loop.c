/* loop.c — the per-state libuv loop, its ready queue drained in batches, and driving uv_run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

static char loop_key; /* registry: the loop's userdata */

/* The userdata holds a pointer: the struct (and the uv handles in it) must outlive the
   userdata until libuv has run their close callbacks. */
typedef struct loop_box {
  loop_state *loop;
} loop_box;

loop_state *loop_get(lua_State *L) {
  task *t = task_of(L); /* inside a task (most calls): no registry look-up */
  if (t) return t->base.loop;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &loop_key);
  loop_box *box = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (box == NULL || box->loop == NULL) luaL_error(L, "asyncio: the event loop is closed");
  return box->loop;
}

int loop_is_running(loop_state *loop) { return loop->driving > 0 || loop->in_callback > 0; }

/* ---- ready queue ---------------------------------------------------------- */

static void idle_cb(uv_idle_t *h);

enum { READY_KEEP = 4096 }; /* entries a ring keeps however empty (32 KiB) */

/* Moves the ring into a new buffer of cap entries; returns 0 if malloc fails. */
static int ready_resize(loop_state *loop, size_t cap) {
  runnable **buf = malloc(cap * sizeof *buf);
  if (buf == NULL) return 0;
  for (size_t i = 0; i < loop->ready_count; i++)
    buf[i] = loop->ready[(loop->ready_head + i) % loop->ready_cap];
  free(loop->ready);
  loop->ready = buf;
  loop->ready_head = 0;
  loop->ready_cap = cap;
  return 1;
}

static void ready_grow(loop_state *loop) {
  /* cannot report through Lua here: we may be inside a uv callback */
  if (!ready_resize(loop, loop->ready_cap ? loop->ready_cap * 2 : 256)) abort();
}

void loop_push_ready(loop_state *loop, runnable *r) {
  if (loop->ready_count == loop->ready_cap) ready_grow(loop);
  size_t tail = loop->ready_head + loop->ready_count;
  if (tail >= loop->ready_cap) tail -= loop->ready_cap;
  loop->ready[tail] = r;
  if (loop->ready_count++ == 0 && !loop->closed) uv_idle_start(loop->idle, idle_cb);
}

/* Halves a big ring a quarter full: the ring of a burst (100,000 tasks made at once)
   goes back to malloc while the burst's first steps run, and their threads take its
   memory instead of new pages (workload C's peak: bench/RESULTS.md). */
static void ready_shrink(loop_state *loop) {
  ready_resize(loop, loop->ready_cap / 2); /* on failure the big one stays */
}

static runnable *ready_pop(loop_state *loop) {
  runnable *r = loop->ready[loop->ready_head];
  if (++loop->ready_head == loop->ready_cap) loop->ready_head = 0;
  if (--loop->ready_count < loop->ready_cap / 4 && loop->ready_cap > READY_KEEP) ready_shrink(loop);
  return r;
}

/* If the next entry of the running drain's batch is a task to start (not started, not
   cancelled), takes it off the queue for task.c, which starts it on the thread of the
   task that just ended there (task_main); else NULL. Never in debug mode. */
task *loop_take_first_step(loop_state *loop) {
  if (loop->drain_left == NULL || *loop->drain_left == 0 || loop->ready_count == 0 || loop->debug)
    return NULL;
  runnable *r = loop->ready[loop->ready_head];
  if (r->kind != RUN_TASK) return NULL;
  task *t = container_of(r, task, run);
  if (t->started || t->must_cancel || t->deliver_cancel || t->base.state != FUT_PENDING)
    return NULL;
  ready_pop(loop);
  (*loop->drain_left)--;
  return t;
}

/* Runs what was ready when the batch began (*left entries of it are left); what becomes
   ready meanwhile waits for the next iteration, so a task that yields in a loop cannot
   starve I/O. */
static int drain_protected(lua_State *L) {
  loop_state *loop = lua_touserdata(L, 1);
  size_t *left = lua_touserdata(L, 2);
  loop->drain_left = left; /* drains never nest: uv_run is never re-entered */
  while (*left > 0 && loop->ready_count > 0) {
    --*left;
    runnable *r = ready_pop(loop);
    loop->settling = r;
    if (loop->debug) { /* timed as one step: no other task may start inside it, even if
                          the step turns debug mode off */
      loop->drain_left = NULL;
      debug_run(L, loop, r);
      loop->drain_left = left;
      continue;
    }
    switch (r->kind) {
      case RUN_TASK: task_step(L, loop, container_of(r, task, run)); break;
      case RUN_HANDLE: handle_run(L, container_of(r, handle, run)); break;
      default: gather_run(L, r);
    }
  }
  loop->drain_left = NULL;
  return 0;
}

/* An error that got out of an entry's run: a memory error (or a stack overflow) in the
   scheduler's own Lua calls around a task's body or a callback, as a task starts or
   finishes or a gather builds its results (the bodies' and callbacks' errors are caught
   inside). Left there, the task or gather would stay pending with its awaiters never
   woken: it completes with that error instead (top of L, popped), which its awaiters
   raise. A task or gather that was not cut short in the middle is left as it is. */
static void drain_settle(lua_State *L, loop_state *loop, runnable *r) {
  switch (r->kind) {
    case RUN_TASK: task_settle_failed(L, loop, container_of(r, task, run)); break;
    case RUN_HANDLE: /* the callback's error, or its report, is what the error cut */
      fprintf(stderr, "alua: a callback was cut short or its error not reported: %s\n",
              lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : luaL_typename(L, -1));
      lua_pop(L, 1);
      break;
    default: gather_settle_failed(L, r);
  }
}

static void loop_drain(loop_state *loop) {
  lua_State *L = loop->L;
  if (loop->ready_count == 0) return;
  loop->in_callback++;
  size_t batch = loop->ready_count;
  for (;;) { /* once, unless an error cuts an entry's run short: then for the rest */
    loop->settling = NULL;
    lua_pushcfunction(L, drain_protected);
    lua_pushlightuserdata(L, loop);
    lua_pushlightuserdata(L, &batch);
    if (lua_pcall(L, 2, 0, 0) == LUA_OK) break;
    loop->drain_left = NULL;
    if (loop->settling == NULL) { /* no memory to start the drain itself: nothing was
                                     taken off the queue, the next iteration runs it */
      lua_pop(L, 1);
      break;
    }
    drain_settle(L, loop, loop->settling);
  }
  loop->settling = NULL;
  loop->in_callback--;
  if (loop->ready_count == 0) uv_idle_stop(loop->idle);
}

static void idle_cb(uv_idle_t *h) { loop_drain(h->data); }
static void check_cb(uv_check_t *h) { loop_drain(h->data); }

/* ---- driving the loop ----------------------------------------------------- */

/* Sets whether the handles behind the hold hook keep the loop alive; returns the
   previous setting. */
static int loop_hold(loop_state *loop, int hold) {
  int was = loop->held;
  loop->held = hold;
  if (loop->hold_hook && was != hold) loop->hold_hook(loop);
  return was;
}

/* Runs the loop until `f` is done. Returns -1 if it can never be: nothing is ready and
   no timer, I/O or other handle is left that could complete it, even after a full
   collection (garbage may hold what f waits for: a stream its handler dropped unclosed
   closes when collected, as Python's closes when its last reference goes). */
int loop_run_until(lua_State *L, loop_state *loop, future *f) {
  lua_State *saved = loop->L;
  int stuck = 0, collected = 0;
  loop->L = L;
  loop->driving++;
  int held = loop_hold(loop, 1); /* a signal handler may be what completes f */
  future *outer = loop->running_until;
  loop->running_until = f;
  toplevel_deliver_cancel(L, loop, f);
  while (f->state == FUT_PENDING) {
    int alive = uv_run(loop->uv, UV_RUN_ONCE);
    if (f->state != FUT_PENDING) break;
    if (alive || loop->ready_count > 0) {
      collected = 0;
    } else if (!collected) {
      collected = 1;
      lua_gc(L, LUA_GCCOLLECT);
    } else {
      stuck = 1;
      break;
    }
  }
  loop->running_until = outer;
  /* UV_RUN_ONCE runs due timers again after the check phase: what fell due there with f
     (a call_later(0) handle before the awaited sleep) is queued but not yet run. Run that
     batch now, as it would have run had f completed in the first timer pass: as in
     Python, what was due before the awaited future completed runs before the await returns */
  if (!stuck) loop_drain(loop);
  loop_hold(loop, held);
  loop->driving--;
  loop->L = saved;
  return stuck ? -1 : 0;
}

/* The check handle, always active, is referenced while such waits are counted. */
void loop_keep_alive(loop_state *loop, int delta) {
  unsigned was = loop->keep_alive;
  loop->keep_alive = (unsigned)((int)was + delta);
  if (was == 0 && loop->keep_alive > 0)
    uv_ref((uv_handle_t *)loop->check);
  else if (was > 0 && loop->keep_alive == 0)
    uv_unref((uv_handle_t *)loop->check);
}

int loop_run(lua_State *L, loop_state *loop, uv_run_mode mode) {
  lua_State *saved = loop->L;
  int alive;
  loop->L = L;
  loop->driving++;
  alive = uv_run(loop->uv, mode);
  loop->driving--;
  loop->L = saved;
  return alive || loop->ready_count > 0;
}

/* ---- interrupts from other threads ----------------------------------------------- */

/* The hook only ever runs on the loop's own thread. A hook left on a thread after the
   interrupt was delivered another way (the worker's wake callback cancelled its tasks,
   the to_thread function returned) finds nothing pending and removes itself. */
static void interrupt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  loop_state *loop = loop_get(L);
  /* the main thread inside the running loop runs the scheduler's own Lua (callbacks,
     the drain): an error there is no task's; the wake-up that came with the interrupt
     cancels the tasks instead */
  if (L == loop->main_thread && loop_is_running(loop)) return;
  if (!atomic_exchange(&loop->interrupt_pending, 0)) return;
  error_push(L, "CancelledError", loop->interrupt_message);
  lua_error(L);
}

void loop_interrupt(loop_state *loop, const char *message) {
  loop->interrupt_message = message;
  atomic_store(&loop->interrupt_pending, 1);
  atomic_store(&loop->interrupting, 1);
  lua_State *co = atomic_load(&loop->running);
  lua_sethook(co ? co : loop->main_thread, interrupt_hook,
              LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
  atomic_store(&loop->interrupting, 0);
}

/* After a resume: a thread published before may be collected from now on, so wait for an
   interrupter that may have read it to be done with it (it holds interrupt_lock). The
   exchange and the load are sequentially consistent: either the interrupter reads the
   new value, or this reads its flag. */
void loop_leave_slow(loop_state *loop, lua_State *prev) {
  atomic_store(&loop->running, prev);
  if (atomic_load(&loop->interrupting)) {
    uv_mutex_lock(loop->interrupt_lock);
    uv_mutex_unlock(loop->interrupt_lock);
  }
}

/* ---- thread pool ---------------------------------------------------------- */

/* Pushes a Lua thread ready to run a task body: a finished task's, or a new one. Taking
   one is pure C: its slot in the pool table keeps anchoring it (harmless: the task
   anchors it too), and giving it back to that same slot then needs no table write. */
lua_State *loop_pool_take(lua_State *L, loop_state *loop) {
  if (loop->pool_count == 0) return lua_newthread(L);
  lua_State *co = loop->pool[--loop->pool_count];
  lua_pushthread(co);
  lua_xmove(co, L, 1);
  return co;
}

/* Keeps a finished task's thread for reuse; `co` must have returned normally. */
void loop_pool_give(lua_State *L, loop_state *loop, lua_State *co) {
  if (lua_status(co) != LUA_OK) return;
  lua_settop(co, 0); /* kept or not, a dead coroutine to whoever still holds it */
  task_set_thread_owner(co, NULL);
  if (loop->pool_count >= LOOP_POOL_MAX) return;
  int slot = loop->pool_count;
  if (loop->pool_anchor[slot] != co) {
    /* anchored before it is counted: the table's write may raise a memory error, which
       must not leave in the pool a thread nothing anchors (collected, then taken) */
    lua_rawgeti(L, LUA_REGISTRYINDEX, loop->pool_ref);
    lua_pushthread(co);
    lua_xmove(co, L, 1);
    lua_rawseti(L, -2, slot + 1);
    lua_pop(L, 1);
    loop->pool_anchor[slot] = co;
  }
  loop->pool[slot] = co;
  loop->pool_count = slot + 1;
}

/* ---- reports on stderr ---------------------------------------------------- */

/* Prints what went wrong where nobody can catch it (a callback, an unretrieved error):
   never silently lost, never fatal. */
/* The text of the error value at 1 for a report: what its __tostring returns if that is a
   string, the value itself if a string or a number, else its type's name. */
static int report_text(lua_State *L) {
  if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
  lua_pushstring(L, lua_isstring(L, 1) ? lua_tostring(L, 1) : luaL_typename(L, 1));
  return 1;
}

void loop_report(lua_State *L, const char *what, int erridx, const char *traceback) {
  erridx = lua_absindex(L, erridx);
  /* protected: a report often runs inside a finalizer, where an error of the value's
     __tostring would end the finalizer with nothing printed (Lua only warns, and its
     warnings are off by default): the report then says what went wrong instead */
  lua_pushcfunction(L, report_text);
  lua_pushvalue(L, erridx);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    const char *why = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : luaL_typename(L, -1);
    lua_pushfstring(L, "(a %s error value whose __tostring raised: %s)", luaL_typename(L, erridx),
                    why);
    lua_replace(L, -2);
  }
  fprintf(stderr, "%s\n%s\n", what, lua_tostring(L, -1));
  if (traceback && *traceback) fprintf(stderr, "%s\n", traceback);
  fflush(stderr);
  lua_pop(L, 1);
}

/* ---- creation and shutdown ------------------------------------------------ */

static void handle_free_cb(uv_handle_t *h) { free(h); }

void loop_close(lua_State *L, loop_state *loop) {
  (void)L;
  if (loop->closed) return;
  loop->closed = 1;
  if (loop->debug) debug_states--;
  uv_close((uv_handle_t *)loop->idle, handle_free_cb);
  uv_close((uv_handle_t *)loop->check, handle_free_cb);
  timer_close(loop);
  lost_close(loop);
  if (loop->owns_uv) {
    /* let libuv run the close callbacks (and those of the requests the owner list
       cancelled) before the loop or our memory goes away */
    uv_run(loop->uv, UV_RUN_NOWAIT);
    /* a request already running on the thread pool cannot be cancelled: wait for its
       callback (request.c: it sees the state closed and disposes of its outcome), as the
       end of a program does; else libuv's loop could never close and would leak */
    while (loop->uv->active_reqs.count > 0) uv_run(loop->uv, UV_RUN_ONCE);
    if (uv_loop_close(loop->uv) == 0) free(loop->uv);
    /* a handle someone else left open keeps the loop: leaking it beats freeing in-use memory */
  }
  /* on a host's loop we never run it: our closed handles are freed by its next iteration */
  free(loop->ready);
  free(loop->heap);
  anchor_close(loop);
}

static int loop_gc(lua_State *L) {
  loop_box *box = lua_touserdata(L, 1);
  if (box->loop) {
    loop_close(L, box->loop);
    free(box->loop);
    box->loop = NULL;
  }
  return 0;
}

static int l_loop_time(lua_State *L) {
  lua_pushnumber(L, (lua_Number)uv_hrtime() / 1e9);
  return 1;
}

static int l_loop_is_running(lua_State *L) {
  lua_pushboolean(L, loop_is_running(loop_get(L)));
  return 1;
}

static int loop_tostring(lua_State *L) {
  loop_state *loop = loop_get(L);
  lua_pushfstring(L, "<asyncio loop running=%s ready=%d>", loop_is_running(loop) ? "true" : "false",
                  (int)loop->ready_count);
  return 1;
}

static void loop_init_handles(lua_State *L, loop_state *loop) {
  loop->idle = malloc(sizeof *loop->idle);
  loop->check = malloc(sizeof *loop->check);
  if (!loop->idle || !loop->check) luaL_error(L, "asyncio: out of memory");
  uv_idle_init(loop->uv, loop->idle);
  uv_check_init(loop->uv, loop->check);
  loop->idle->data = loop->check->data = loop;
  /* the check handle runs on every iteration but must not keep the loop alive */
  uv_check_start(loop->check, check_cb);
  uv_unref((uv_handle_t *)loop->check);
  uv_idle_start(loop->idle, idle_cb);
  uv_idle_stop(loop->idle);
  if (timer_init(loop) != 0 || lost_init(loop) != 0)
    luaL_error(L, "asyncio: cannot create the loop's timers");
}

/* Creates the loop for this state on `uv` (NULL: a loop of its own). Pushes nothing. */
static loop_state *loop_create(lua_State *L, uv_loop_t *uv) {
  loop_box *box = lua_newuserdatauv(L, sizeof *box, 0);
  box->loop = NULL;
  luaL_newmetatable(L, "asyncio.loopbox");
  lua_pushcfunction(L, loop_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  loop_state *loop = calloc(1, sizeof *loop);
  if (loop == NULL) luaL_error(L, "asyncio: out of memory");
  box->loop = loop;
  if (uv == NULL) {
    uv = malloc(sizeof *uv);
    if (uv == NULL || uv_loop_init(uv) != 0) {
      free(uv);
      box->loop = NULL;
      free(loop);
      luaL_error(L, "asyncio: cannot create a libuv loop");
    }
    loop->owns_uv = 1;
  }
  loop->uv = uv;
  loop->registry = lua_topointer(L, LUA_REGISTRYINDEX);
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  loop->L = loop->main_thread = lua_tothread(L, -1);
  lua_pop(L, 1);
  lua_newtable(L);
  loop->pool_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  loop_init_handles(L, loop);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &loop_key);
  return loop;
}

/* Moves the state's loop onto `uv` (the embedding API's alua_setloop). Only before any
   task, timer or handle exists: nothing may be left behind on the old loop. Returns 0,
   or a negative uv error code (UV_EBUSY) and changes nothing. */
int loop_switch(lua_State *L, uv_loop_t *uv) {
  loop_state *loop = loop_get(L);
  if (loop->uv == uv) return 0;
  if (loop->live_count > 0 || loop->heap_count > 0 || loop->ready_count > 0 ||
      loop_is_running(loop) || uv_loop_alive(loop->uv))
    return UV_EBUSY;
  uv_loop_t *old = loop->uv;
  int owned = loop->owns_uv;
  uv_close((uv_handle_t *)loop->idle, handle_free_cb);
  uv_close((uv_handle_t *)loop->check, handle_free_cb);
  timer_close(loop);
  lost_close(loop);
  uv_run(old, UV_RUN_NOWAIT); /* our own loop, idle: only our close callbacks run */
  if (owned && uv_loop_close(old) == 0) free(old);
  loop->uv = uv;
  loop->owns_uv = 0;
  loop_init_handles(L, loop);
  return 0;
}

static const luaL_Reg loop_methods[] = {
    {"time", l_loop_time},
    {"is_running", l_loop_is_running},
    {NULL, NULL},
};

/* Creates the loop if this state has none, and the loop object's metatable. */
void loop_open(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &loop_key);
  int exists = !lua_isnil(L, -1);
  lua_pop(L, 1);
  if (!exists) loop_create(L, NULL);
  if (luaL_newmetatable(L, LOOP_MT)) {
    type_register(L, -1, &type_loop);
    luaL_newlib(L, loop_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, loop_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
}

/* thread_pool.c — asyncio.to_thread: functions run on a pool of up to cpu_count threads,
   each with a state of its own that keeps what it required; a cancelled call is
   interrupted where it runs. */
#include <stdlib.h>
#include <string.h>

#include "net/net.h"
#include "os.h"

#define JOB_MT "asyncio.ThreadJob"

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE };
enum job_outcome { JOB_RESULTS, JOB_ERROR, JOB_CANCELLED };

typedef struct pool_thread pool_thread;

/* One call: shared by the creator's thread and the pool thread that runs it. */
typedef struct job {
  struct job *next; /* in the pool's queue, then its done list */
  int refs;         /* pool lock: the Job object, the pool until the creator saw it done */
  char *code;       /* fn's bytecode, or "module:function" */
  size_t code_len;
  uint8_t by_name;
  copy_msg *args;
  /* pool lock */
  int state;
  int outcome;
  pool_thread *runner;
  copy_msg *results, *error;
  char *traceback;
  /* the creator's thread */
  waitset waiters; /* anchored in the Job object's user value */
  int has_box;
} job;

typedef struct thread_pool thread_pool;

struct pool_thread {
  uv_thread_t tid;
  thread_pool *pool;
  loop_state *loop; /* its state's loop, for interrupts (set before its first job) */
  pool_thread *next;
};

struct thread_pool {
  uv_mutex_t lock;
  uv_cond_t cond;
  job *queue_head, *queue_tail;
  job *done; /* finished, for the creator's wake callback */
  pool_thread *threads;
  int nqueued, nthreads, nidle, max;
  uv_async_t *wake; /* on the creator's loop; ref'd while calls are outstanding */
  int outstanding;  /* the creator's thread: submitted, not yet seen done */
  uint8_t closing;
};

static char pool_key;       /* registry: this state's thread_pool */
static char code_cache_key; /* registry, in pool threads: bytecode -> loaded function */
static char dump_cache_key; /* registry, in the creator: fn -> bytecode (weak keys) */

static void job_release(job *j, thread_pool *p) {
  uv_mutex_lock(&p->lock);
  int left = --j->refs;
  uv_mutex_unlock(&p->lock);
  if (left > 0) return;
  free(j->code);
  free(j->args);
  free(j->results);
  free(j->error);
  free(j->traceback);
  free(j);
}

/* ---- a pool thread ------------------------------------------------------------------- */

enum { CODE_CACHE_MAX = 256 };

/* Pushes the function of job j: module.function after require, or fn loaded once per
   thread from its bytecode (globals are the thread's own). */
static void push_job_function(lua_State *L, job *j) {
  if (j->by_name) {
    const char *colon = memchr(j->code, ':', j->code_len);
    lua_getglobal(L, "require");
    lua_pushlstring(L, j->code, (size_t)(colon - j->code));
    lua_call(L, 1, 1);
    lua_getfield(L, -1, colon + 1);
    if (!lua_isfunction(L, -1) && luaL_getmetafield(L, -1, "__call") == LUA_TNIL) {
      lua_pushlstring(L, j->code, (size_t)(colon - j->code));
      luaL_error(L, "to_thread: module '%s' has no function '%s'", lua_tostring(L, -1), colon + 1);
    }
    lua_remove(L, -2);
    return;
  }
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &code_cache_key) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 8);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &code_cache_key);
  }
  lua_pushlstring(L, j->code, j->code_len);
  lua_pushvalue(L, -1);
  if (lua_rawget(L, -3) == LUA_TFUNCTION) {
    lua_replace(L, -3);
    lua_pop(L, 1);
    return;
  }
  lua_pop(L, 1);
  if (luaL_loadbufferx(L, j->code, j->code_len, "=to_thread", "b") != LUA_OK) lua_error(L);
  lua_pushinteger(
      L, 0); /* count the entries: a program making functions on the fly must not grow it forever */
  if (lua_rawget(L, -4) == LUA_TNUMBER && lua_tointeger(L, -1) >= CODE_CACHE_MAX) {
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &code_cache_key);
    lua_replace(L, -5);
  }
  lua_Integer n = lua_tointeger(L, -1) + 1;
  lua_pop(L, 1);
  lua_pushinteger(L, n);
  lua_rawseti(L, -4, 0);
  lua_pushvalue(L, -2);
  lua_pushvalue(L, -2);
  lua_rawset(L, -5);
  lua_replace(L, -3);
  lua_pop(L, 1);
}

static int encode_job_results(lua_State *L) {
  job *j = lua_touserdata(L, 1);
  j->results = copy_encode(L, 2, lua_gettop(L) - 1, "to_thread", "result", 1);
  return 0;
}

static int job_run(lua_State *L) {
  job *j = lua_touserdata(L, 1);
  lua_pushcfunction(L, worker_msgh); /* 2 */
  lua_pushcfunction(L, encode_job_results);
  lua_pushvalue(L, 1);
  push_job_function(L, j);
  int n = copy_decode(L, j->args);
  if (lua_pcall(L, n, LUA_MULTRET, 2) != LUA_OK ||
      lua_pcall(L, lua_gettop(L) - 3, 0, 2) != LUA_OK) {
    lua_rawgeti(L, -1, 2);
    const char *tb = lua_tostring(L, -1);
    j->traceback = tb ? strdup(tb) : NULL;
    lua_pop(L, 1);
    lua_rawgeti(L, -1, 1);
    j->error = copy_encode_string("to_thread: the error could not be copied");
    copy_msg *e = worker_encode_error(L, -1);
    if (e) {
      free(j->error);
      j->error = e;
    }
    j->outcome = JOB_ERROR;
    return 0;
  }
  j->outcome = JOB_RESULTS;
  return 0;
}

static void pool_thread_main(void *arg) {
  pool_thread *pt = arg;
  thread_pool *p = pt->pool; /* the process's signals are blocked here (sigmask.c) */
  lua_State *L = worker_newstate();
  if (L) {
    loop_state *loop = loop_get(L);
    loop_set_interruptible(loop, &p->lock);
    uv_mutex_lock(&p->lock);
    pt->loop = loop;
    uv_mutex_unlock(&p->lock);
  }
  for (;;) {
    uv_mutex_lock(&p->lock);
    while (p->queue_head == NULL && !p->closing) {
      p->nidle++;
      uv_cond_wait(&p->cond, &p->lock);
      p->nidle--;
    }
    if (p->closing) {
      uv_mutex_unlock(&p->lock);
      break;
    }
    job *j = p->queue_head;
    p->nqueued--;
    p->queue_head = j->next;
    if (p->queue_head == NULL) p->queue_tail = NULL;
    j->state = JOB_RUNNING;
    j->runner = pt;
    uv_mutex_unlock(&p->lock);

    if (L == NULL) {
      j->error = copy_encode_string("to_thread: cannot create a Lua state (out of memory)");
      j->outcome = JOB_ERROR;
    } else {
      lua_settop(L, 0);
      lua_pushcfunction(L, job_run);
      lua_pushlightuserdata(L, j);
      if (lua_pcall(L, 1, 0, 0) != LUA_OK) { /* loading fn failed, or memory */
        j->error = worker_encode_error(L, -1);
        j->outcome = JOB_ERROR;
      }
      lua_settop(L, 0);
    }

    uv_mutex_lock(&p->lock);
    j->state = JOB_DONE;
    j->runner = NULL;
    if (pt->loop) loop_interrupt_clear(pt->loop); /* a cancel that came too late */
    j->next = p->done;
    p->done = j;
    if (p->wake) uv_async_send(p->wake);
    uv_mutex_unlock(&p->lock);
    if (L) lua_sethook(L, NULL, 0, 0);
  }
  if (L) lua_close(L);
}

/* ---- the creator's side -------------------------------------------------------------- */

static void handle_free_cb(uv_handle_t *h) { free(h); }

static void pool_wake_cb(uv_async_t *a) {
  thread_pool *p = a->data;
  uv_mutex_lock(&p->lock);
  job *done = p->done;
  p->done = NULL;
  uv_mutex_unlock(&p->lock);
  while (done) {
    job *j = done;
    done = j->next;
    if (j->has_box) waitset_wake(&j->waiters);
    p->outstanding--;
    job_release(j, p);
  }
  if (p->outstanding == 0) uv_unref((uv_handle_t *)p->wake);
}

/* At the creator's lua_close: calls still queued are dropped, running ones interrupted,
   and every thread joined. */
static int pool_gc(lua_State *L) {
  thread_pool *p = *(thread_pool **)lua_touserdata(L, 1);
  if (p == NULL) return 0;
  uv_mutex_lock(&p->lock);
  p->closing = 1;
  for (pool_thread *pt = p->threads; pt; pt = pt->next)
    if (pt->loop) loop_interrupt(pt->loop, "to_thread: the program is ending");
  uv_cond_broadcast(&p->cond);
  job *queued = p->queue_head;
  p->queue_head = p->queue_tail = NULL;
  p->nqueued = 0;
  uv_async_t *wake = p->wake;
  p->wake = NULL;
  uv_mutex_unlock(&p->lock);
  while (p->threads) {
    pool_thread *pt = p->threads;
    p->threads = pt->next;
    uv_thread_join(&pt->tid);
    free(pt);
  }
  while (queued) {
    job *j = queued;
    queued = j->next;
    job_release(j, p);
  }
  while (p->done) {
    job *j = p->done;
    p->done = j->next;
    job_release(j, p);
  }
  uv_close((uv_handle_t *)wake, handle_free_cb);
  uv_cond_destroy(&p->cond);
  uv_mutex_destroy(&p->lock);
  free(p);
  *(thread_pool **)lua_touserdata(L, 1) = NULL;
  return 0;
}

static thread_pool *pool_get(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &pool_key) == LUA_TUSERDATA) {
    thread_pool *p = *(thread_pool **)lua_touserdata(L, -1);
    lua_pop(L, 1);
    return p;
  }
  lua_pop(L, 1);
  thread_pool **box = lua_newuserdatauv(L, sizeof *box, 0);
  *box = NULL;
  thread_pool *p = calloc(1, sizeof *p);
  uv_async_t *a = malloc(sizeof *a);
  if (p == NULL || a == NULL || uv_mutex_init(&p->lock) != 0) {
    free(p);
    free(a);
    argcheck_error(L, "to_thread: out of memory");
  }
  if (uv_cond_init(&p->cond) != 0 || uv_async_init(loop_get(L)->uv, a, pool_wake_cb) != 0) {
    uv_mutex_destroy(&p->lock);
    free(p);
    free(a);
    argcheck_error(L, "to_thread: cannot create the pool's wake-up handle");
  }
  a->data = p;
  uv_unref((uv_handle_t *)a);
  p->wake = a;
  p->max = (int)uv_available_parallelism();
  *box = p;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, pool_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &pool_key);
  return p;
}

typedef struct dump_buf {
  char *data;
  size_t len, cap;
} dump_buf;

static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud) {
  (void)L;
  dump_buf *b = ud;
  if (b->cap - b->len < sz) {
    size_t cap = b->cap ? b->cap * 2 : 1024;
    while (cap - b->len < sz) cap *= 2;
    char *d = realloc(b->data, cap);
    if (d == NULL) return 1;
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, sz);
  b->len += sz;
  return 0;
}

/* Pushes fn's bytecode (made once per function), after checking it can run elsewhere. */
static void push_bytecode(lua_State *L, int fn) {
  if (lua_iscfunction(L, fn))
    argcheck_error(L,
                   "to_thread: fn is a C function (give a Lua function, or \"module:function\")");
  const char *up = lua_getupvalue(L, fn, 1);
  if (up) {
    int is_env = strcmp(up, "_ENV") == 0;
    lua_pop(L, 1);
    const char *second = lua_getupvalue(L, fn, 2);
    if (second) lua_pop(L, 1);
    if (!is_env || second)
      argcheck_error(
          L,
          "to_thread: fn uses '%s', a local variable of an enclosing function; it runs in "
          "another thread, where only its arguments and globals exist (pass '%s' as an argument)",
          is_env ? second : up, is_env ? second : up);
  }
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &dump_cache_key) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &dump_cache_key);
  }
  lua_pushvalue(L, fn);
  if (lua_rawget(L, -2) == LUA_TSTRING) {
    lua_remove(L, -2);
    return;
  }
  lua_pop(L, 1);
  dump_buf b = {NULL, 0, 0};
  lua_pushvalue(L, fn);
  int failed = lua_dump(L, dump_writer, &b, 0);
  lua_pop(L, 1);
  if (failed) {
    free(b.data);
    argcheck_error(L, "to_thread: out of memory");
  }
  lua_pushlstring(L, b.data, b.len);
  free(b.data);
  lua_pushvalue(L, fn);
  lua_pushvalue(L, -2);
  lua_rawset(L, -4);
  lua_remove(L, -2);
}

typedef struct job_box {
  job *j;
  thread_pool *p;
} job_box;

/* core.to_thread_submit(fn, ...) -> job: queues the call for the pool. */
static int l_core_to_thread_submit(lua_State *L) {
  int nargs = lua_gettop(L) - 1;
  size_t len = 0;
  const char *code = NULL;
  int by_name = 0;
  if (lua_type(L, 1) == LUA_TSTRING) {
    code = lua_tolstring(L, 1, &len);
    const char *colon = memchr(code, ':', len);
    if (colon == NULL || colon == code || colon == code + len - 1)
      return argcheck_error(L, "to_thread: expected \"module:function\", got \"%s\"", code);
    by_name = 1;
  } else if (lua_type(L, 1) == LUA_TFUNCTION) {
    push_bytecode(L, 1);
    code = lua_tolstring(L, -1, &len);
    lua_replace(L, 1);
  } else {
    return argcheck_error(L, "to_thread: expected a function or \"module:function\", got %s",
                          luaL_typename(L, 1));
  }
  copy_msg *args = copy_encode(L, 2, nargs < 0 ? 0 : nargs, "to_thread", "arg", 1);
  thread_pool *p = pool_get(L);
  job_box *box = lua_newuserdatauv(L, sizeof *box, 1);
  box->j = NULL;
  job *j = calloc(1, sizeof *j);
  char *copy = malloc(len + 1);
  pool_thread *pt = NULL;
  if (j == NULL || copy == NULL) {
    free(j);
    free(copy);
    free(args);
    return argcheck_error(L, "to_thread: out of memory");
  }
  memcpy(copy, code, len);
  copy[len] = '\0';
  j->code = copy;
  j->code_len = len;
  j->by_name = (uint8_t)by_name;
  j->args = args;
  j->refs = 2;
  j->has_box = 1;
  box->j = j;
  box->p = p;
  luaL_setmetatable(L, JOB_MT);

  uv_mutex_lock(&p->lock);
  if (p->queue_tail)
    p->queue_tail->next = j;
  else
    p->queue_head = j;
  p->queue_tail = j;
  if (++p->nqueued > p->nidle && p->nthreads < p->max) {
    pt = calloc(1, sizeof *pt);
    if (pt) {
      pt->pool = p;
      if (sigmask_thread_create(&pt->tid, pool_thread_main, pt) == 0) {
        pt->next = p->threads;
        p->threads = pt;
        p->nthreads++;
      } else {
        free(pt);
      }
    }
  } else {
    uv_cond_signal(&p->cond);
  }
  int started = p->nthreads > 0;
  uv_mutex_unlock(&p->lock);
  if (!started) {
    /* no thread could be made: the call fails here rather than waiting forever */
    uv_mutex_lock(&p->lock);
    p->queue_head = p->queue_tail = NULL;
    p->nqueued = 0;
    uv_mutex_unlock(&p->lock);
    j->refs = 1;
    return argcheck_error(L, "to_thread: cannot start a thread");
  }
  if (p->outstanding++ == 0) uv_ref((uv_handle_t *)p->wake);
  return 1;
}

static job *job_check(lua_State *L, int idx) {
  return ((job_box *)luaL_checkudata(L, idx, JOB_MT))->j;
}

static int job_wait_attempt(lua_State *L, int base) {
  job_box *box = lua_touserdata(L, base);
  job *j = box->j;
  uv_mutex_lock(&box->p->lock);
  int state = j->state;
  uv_mutex_unlock(&box->p->lock);
  if (state != JOB_DONE) return -1;
  if (j->outcome == JOB_RESULTS) return j->results ? copy_decode(L, j->results) : 0;
  if (j->outcome == JOB_CANCELLED) {
    error_push(L, "CancelledError", "to_thread cancelled before it started");
    return lua_error(L);
  }
  copy_decode(L, j->error);
  if (j->traceback) {
    lua_pushfstring(L, "(in to_thread)\n%s", j->traceback);
    error_relay_set(L, -2, -1);
    lua_pop(L, 1);
  }
  return lua_error(L);
}

static void job_wait_arm(lua_State *L, int base) {
  job_box *box = lua_touserdata(L, base);
  waitset_add_one(L, &box->j->waiters, base, 1);
}

static const op_spec job_wait_op = {"to_thread", job_wait_attempt, job_wait_arm};

/* core.to_thread_wait(job): an operation completing with the call's results. */
static int l_core_to_thread_wait(lua_State *L) {
  job_check(L, 1);
  lua_settop(L, 1);
  op_push(L, &job_wait_op, 1);
  return 1;
}

static void job_cancel(job_box *box) {
  job *j = box->j;
  thread_pool *p = box->p;
  uv_mutex_lock(&p->lock);
  if (j->state == JOB_QUEUED) {
    job **link = &p->queue_head, *prev = NULL;
    while (*link != j) {
      prev = *link;
      link = &(*link)->next;
    }
    *link = j->next;
    if (p->queue_tail == j) p->queue_tail = prev;
    p->nqueued--;
    j->state = JOB_DONE;
    j->outcome = JOB_CANCELLED;
    j->next = p->done;
    p->done = j;
    if (p->wake) uv_async_send(p->wake);
  } else if (j->state == JOB_RUNNING && j->runner->loop) {
    loop_interrupt(j->runner->loop, "to_thread cancelled");
  }
  uv_mutex_unlock(&p->lock);
}

/* core.to_thread_cancel(job): a queued call is dropped, a running one interrupted. */
static int l_core_to_thread_cancel(lua_State *L) {
  job_check(L, 1);
  job_cancel(lua_touserdata(L, 1));
  return 0;
}

/* core.to_thread_done(job) -> whether the call has stopped */
static int l_core_to_thread_done(lua_State *L) {
  job_box *box = luaL_checkudata(L, 1, JOB_MT);
  uv_mutex_lock(&box->p->lock);
  lua_pushboolean(L, box->j->state == JOB_DONE);
  uv_mutex_unlock(&box->p->lock);
  return 1;
}

static int job_gc(lua_State *L) {
  job_box *box = lua_touserdata(L, 1);
  job *j = box->j;
  if (j == NULL) return 0;
  job_cancel(box); /* nobody can await it any more: free its thread */
  box->j = NULL;
  waitset_free(&j->waiters);
  j->has_box = 0;
  job_release(j, box->p);
  return 0;
}

static const luaL_Reg pool_functions[] = {
    {"to_thread_submit", l_core_to_thread_submit},
    {"to_thread_wait", l_core_to_thread_wait},
    {"to_thread_cancel", l_core_to_thread_cancel},
    {"to_thread_done", l_core_to_thread_done},
    {NULL, NULL},
};

/* Adds the functions to the table on top (core). */
void thread_pool_open(lua_State *L) {
  luaL_newmetatable(L, JOB_MT);
  lua_pushcfunction(L, job_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_setfuncs(L, pool_functions, 0);
}

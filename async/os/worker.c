/* worker.c — asyncio.start_worker: a script on its own thread with its own state and loop,
   the two queues between it and its creator, asyncio.parent, cpu_count. */
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <lualib.h>

#include "net/net.h"
#include "os.h"

#define WORKER_MT "asyncio.Worker"
#define CHANNEL_MT "asyncio.Channel"

int luaopen_asyncio(lua_State *L);

/* ---- how threads make their states ----------------------------------------------------- */

static lua_State *plain_newstate(void) {
  lua_State *L = luaL_newstate();
  if (L == NULL) return NULL;
  luaL_openlibs(L);
  luaL_requiref(L, "asyncio", luaopen_asyncio, 1);
  lua_pop(L, 1);
  return L;
}

static int plain_loadfile(lua_State *L, const char *path) { return luaL_loadfilex(L, path, NULL); }

static const worker_vm plain_vm = {plain_newstate, plain_loadfile};
static _Atomic(const worker_vm *) vm_in_use = &plain_vm;

void worker_set_vm(const worker_vm *vm) { atomic_store(&vm_in_use, vm); }
lua_State *worker_newstate(void) { return atomic_load(&vm_in_use)->newstate(); }
int worker_loadfile(lua_State *L, const char *path) {
  return atomic_load(&vm_in_use)->loadfile(L, path);
}

/* Message handler: {error, traceback}, so both can cross to the creator. */
int worker_msgh(lua_State *L) {
  lua_createtable(L, 2, 0);
  lua_pushvalue(L, 1);
  lua_rawseti(L, -2, 1);
  error_traceback(L, L, 1, 1);
  lua_rawseti(L, -2, 2);
  return 1;
}

static int encode_error_protected(lua_State *L) {
  copy_msg **out = lua_touserdata(L, 1);
  *out = copy_encode(L, 2, 1, "error", "error", 0);
  return 0;
}

/* The error at idx as a message: copied if it can be, else its text. NULL: no memory. */
copy_msg *worker_encode_error(lua_State *L, int idx) {
  copy_msg *m = NULL;
  idx = lua_absindex(L, idx);
  lua_pushcfunction(L, encode_error_protected);
  lua_pushlightuserdata(L, &m);
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 2, 0, 0) == LUA_OK) return m;
  lua_pop(L, 1);
  if (lua_type(L, idx) == LUA_TSTRING || lua_type(L, idx) == LUA_TNUMBER)
    return copy_encode_string(lua_tostring(L, idx));
  lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, idx));
  m = copy_encode_string(lua_tostring(L, -1));
  lua_pop(L, 1);
  return m;
}

/* ---- message queues ----------------------------------------------------------------- */

/* Messages are appended to blocks of many, so a stream of small messages costs one
   allocation per block rather than one per message, and the receiver takes a whole chain
   of blocks at once: the sender then starts a new block, never touching one the
   receiver reads. Each message is its length (a size_t) and its encoding. In a round
   trip each block holds one message: the receiver keeps the block it has read out as
   its queue's `spare` and hands it back under the lock at its next take, and the sender
   fills that one rather than allocating: a 16 KiB malloc in one thread and its free in
   the other per message (each taking that arena's lock) cost ~950 instructions a round
   trip (callgrind: 61.3 M -> 58.4 M for 3,000 round trips). */
typedef struct msg_block {
  struct msg_block *next;
  size_t used, read, cap;
  char data[];
} msg_block;

typedef struct msgq {
  msg_block *head, *tail;
  msg_block *spare; /* a read-out block of BLOCK_SIZE: the receiver's, then the sender's */
} msgq;

enum { BLOCK_SIZE = 16384 - sizeof(msg_block) };

/* Appends a message (under the queue's lock). Returns 0, or -1 without memory. */
static int msgq_push(msgq *q, const char *data, size_t len) {
  size_t need = sizeof(size_t) + len;
  msg_block *b = q->tail;
  if (b == NULL || b->cap - b->used < need) {
    size_t cap = need > BLOCK_SIZE ? need : BLOCK_SIZE;
    if (cap == BLOCK_SIZE && q->spare) {
      b = q->spare;
      q->spare = NULL;
    } else {
      b = malloc(sizeof *b + cap);
      if (b == NULL) return -1;
    }
    b->next = NULL;
    b->used = b->read = 0;
    b->cap = cap;
    if (q->tail)
      q->tail->next = b;
    else
      q->head = b;
    q->tail = b;
  }
  memcpy(b->data + b->used, &len, sizeof len);
  memcpy(b->data + b->used + sizeof len, data, len);
  b->used += need;
  return 0;
}

/* The receiver's side: the next message, or NULL. */
static const char *msgq_peek(msgq *q, size_t *len) {
  msg_block *b = q->head;
  if (b == NULL || b->read == b->used) return NULL;
  memcpy(len, b->data + b->read, sizeof *len);
  return b->data + b->read + sizeof *len;
}

/* Drops the message msgq_peek returned. */
static void msgq_advance(msgq *q, size_t len) {
  msg_block *b = q->head;
  b->read += sizeof len + len;
  if (b->read == b->used) {
    q->head = b->next;
    if (q->head == NULL) q->tail = NULL;
    if (q->spare == NULL && b->cap == BLOCK_SIZE)
      q->spare = b;
    else
      free(b);
  }
}

static void msgq_free(msgq *q) {
  while (q->head) {
    msg_block *b = q->head;
    q->head = b->next;
    free(b);
  }
  q->tail = NULL;
  free(q->spare);
  q->spare = NULL;
}

/* Moves everything from `from` (shared, under its lock) to the end of `to` (one thread's),
   and hands the receiver's spare block to the sender. */
static void msgq_take_all(msgq *to, msgq *from) {
  if (to->spare && from->spare == NULL) {
    from->spare = to->spare;
    to->spare = NULL;
  }
  if (from->head == NULL) return;
  if (to->tail)
    to->tail->next = from->head;
  else
    to->head = from->head;
  to->tail = from->tail;
  from->head = from->tail = NULL;
}

/* Pushes the next message of q (a receiver's own queue) and returns 1, or returns 0. */
static int msgq_receive(lua_State *L, msgq *q) {
  size_t len;
  const char *data = msgq_peek(q, &len);
  if (data == NULL) return 0;
  copy_decode_data(L, data, len);
  msgq_advance(q, len);
  return 1;
}

/* ---- the worker ----------------------------------------------------------------------- */

enum outcome { OUT_RUNNING, OUT_RESULTS, OUT_ERROR, OUT_LOAD_ERROR, OUT_TERMINATED };

typedef struct worker_list worker_list;
typedef struct worker worker;

/* A loop woken from another thread: an eventfd the loop polls. uv_async_send would do,
   but its receiving loop spins until the sender has come back from its write: on a busy
   machine the sender is often descheduled right after waking the other thread, and that
   spin was most of a round trip. Writes are coalesced: `pending` (under the worker's
   lock) says one is on its way. */
typedef struct wakeup {
  uv_poll_t poll;
  int fd;
  uint8_t pending;
  worker *w;
  void (*cb)(worker *w); /* on the polling loop, once per wake-up */
} wakeup;

/* A receiver about to block with a recv waiting first watches its queue for a while:
   a reply often comes within microseconds (a round trip), and seeing it there costs no
   eventfd write, no wake-up from poll and no read, where sleeping costs a wake-up on
   each side, each waiting for the scheduler to run the other thread. The watch yields
   the CPU between looks: on a machine with more runnable threads than CPUs a pure spin
   took the CPU the sender needed (round trips 4x slower than blocking, measured), while
   sched_yield hands it over and costs little when nothing else wants it. No PAUSE
   loop either: on a virtual machine the hypervisor deschedules a vCPU that spins on
   PAUSE (pause-loop exiting): 32 pauses before the first yield made round trips 48 µs
   instead of 32, 1,000 made them 527 µs (load 11, medians of 5). It is bounded (SPIN_NS) and adaptive: after a watch that saw nothing,
   the next `skip` waits block at once, `skip` doubling up to SPIN_BACKOFF_MAX, so a
   channel whose messages come seldom watches a negligible share of its waits. */
typedef struct spin {
  atomic_uint posted;     /* messages pushed to this queue so far */
  uint8_t spinning;       /* lock: the receiver watches `posted`: senders skip the wake */
  uint16_t skip, backoff; /* the receiver's thread */
} spin;

enum { SPIN_NS = 50000, SPIN_BACKOFF_MAX = 256 };

/* Shared by the creator's thread and the worker's; fields marked "lock" only under it. */
struct worker {
  uv_mutex_t lock;
  int refs; /* lock: the creator's list, the Worker object, the thread */
  uv_thread_t thread;
  char *path;
  copy_msg *args; /* the script's ..., taken by the thread */
  /* lock */
  msgq to_child, to_parent;
  spin child_spin, parent_spin; /* of to_child, to_parent */
  wakeup *child_wake;           /* on the worker's loop while asyncio.parent can receive */
  wakeup *parent_wake;          /* on the creator's loop until it is closed */
  loop_state *child_loop;       /* while the worker's state is open: what terminate interrupts */
  uint8_t loaded, ended, terminated;
  uint8_t parent_gone;    /* no more messages for the worker: its recv returns nil */
  uint8_t parent_dropped; /* nobody reads the worker's messages: its send fails */
  int outcome;
  copy_msg *results, *error;
  char *traceback;
  /* the creator's thread */
  msgq received;                /* taken from to_parent, not yet returned by recv */
  waitset receivers, waiters;   /* anchored in the Worker object's user values */
  uv_prepare_t *parent_prepare; /* spins while a recv waits, until the worker is reaped */
  int has_box;
  uint8_t seen_loaded, reaped;
  struct worker *prev, *next;
  worker_list *list;
  /* the worker's thread */
  msgq child_received;
  waitset child_receivers; /* anchored in asyncio.parent's user value */
  int has_channel;
  uv_prepare_t *child_prepare;
  uint8_t stop_requested;
};

struct worker_list {
  worker *first;
};

enum { WUV_RECEIVERS = 1, WUV_WAITERS, WUV_COUNT = 2 };

static void worker_release(worker *w) {
  uv_mutex_lock(&w->lock);
  int left = --w->refs;
  uv_mutex_unlock(&w->lock);
  if (left > 0) return;
  msgq_free(&w->to_child);
  msgq_free(&w->to_parent);
  msgq_free(&w->received);
  msgq_free(&w->child_received);
  free(w->args);
  free(w->results);
  free(w->error);
  free(w->traceback);
  free(w->path);
  uv_mutex_destroy(&w->lock);
  free(w);
}

static void handle_free_cb(uv_handle_t *h) { free(h); }

/* Under the worker's lock; k may be NULL (the other side is gone). */
static void wakeup_send(wakeup *k) {
  if (k == NULL || k->pending) return;
  k->pending = 1;
  uint64_t one = 1;
  ssize_t n = write(k->fd, &one, sizeof one);
  (void)n; /* EAGAIN only if the counter is full: it is then readable anyway */
}

static void wakeup_poll_cb(uv_poll_t *p, int status, int events) {
  (void)status;
  (void)events;
  wakeup *k = container_of(p, wakeup, poll);
  uv_mutex_lock(&k->w->lock);
  uint64_t count;
  ssize_t n = read(k->fd, &count, sizeof count);
  (void)n;
  k->pending = 0;
  uv_mutex_unlock(&k->w->lock);
  k->cb(k->w);
}

static wakeup *wakeup_new(uv_loop_t *loop, worker *w, void (*cb)(worker *)) {
  wakeup *k = calloc(1, sizeof *k);
  if (k == NULL) return NULL;
  k->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (k->fd < 0 || uv_poll_init(loop, &k->poll, k->fd) != 0) {
    if (k->fd >= 0) close(k->fd);
    free(k);
    return NULL;
  }
  k->w = w;
  k->cb = cb;
  uv_poll_start(&k->poll, UV_READABLE, wakeup_poll_cb);
  return k;
}

static void wakeup_free_cb(uv_handle_t *h) {
  wakeup *k = container_of((uv_poll_t *)h, wakeup, poll);
  close(k->fd);
  free(k);
}

/* Once nobody can send to it any more (its pointer cleared under the lock). */
static void wakeup_close(wakeup *k) { uv_close((uv_handle_t *)&k->poll, wakeup_free_cb); }

/* Under the worker's lock, after pushing a message to the queue sp watches: wakes its
   receiver's loop unless the receiver is spinning and will see it. */
static void message_posted(spin *sp, wakeup *k) {
  atomic_fetch_add_explicit(&sp->posted, 1, memory_order_release);
  if (!sp->spinning) wakeup_send(k);
}

/* From a prepare callback (the loop is about to poll) while a recv waits on queue q of
   w: returns 1 once a message is there (the caller wakes its receivers, so the loop
   does not block), 0 to block. */
static int spin_for_message(worker *w, spin *sp, msgq *q, uv_loop_t *uv) {
  if (sp->skip > 0) {
    sp->skip--;
    return 0;
  }
  if (uv_backend_timeout(uv) == 0) return 0; /* something else is due: no block to avoid */
  uv_mutex_lock(&w->lock);
  int has = q->head != NULL;
  unsigned seen = atomic_load_explicit(&sp->posted, memory_order_relaxed);
  sp->spinning = !has;
  uv_mutex_unlock(&w->lock);
  if (has) return 1;
  uint64_t start = uv_hrtime();
  while (atomic_load_explicit(&sp->posted, memory_order_acquire) == seen) {
    sched_yield();
    if (uv_hrtime() - start > SPIN_NS) break;
  }
  uv_mutex_lock(&w->lock);
  sp->spinning = 0;
  has = q->head != NULL;
  uv_mutex_unlock(&w->lock);
  if (has) {
    sp->backoff = 0;
  } else {
    sp->backoff =
        sp->backoff ? (sp->backoff * 2 > SPIN_BACKOFF_MAX ? SPIN_BACKOFF_MAX : sp->backoff * 2) : 1;
    sp->skip = sp->backoff;
  }
  return has;
}

/* ---- the worker's thread -------------------------------------------------------------- */

static void parent_notify(worker *w) { wakeup_send(w->parent_wake); }

/* Cancels every task of the worker's loop, as Ctrl-C does in alua, and stops the loop.
   The script's own top-level await is cancelled too (or its next one, if the script runs
   between two): the interrupt's hook leaves Lua the loop runs alone, and a script awaiting
   in a loop (`while true do await asyncio.sleep(1) end`) never ended, nor did the join
   of the program that started it. */
static int cancel_all_tasks(lua_State *L) {
  loop_state *loop = lua_touserdata(L, 1);
  task_cancel_all(L, loop);
  toplevel_cancel(L, loop);
  uv_stop(loop->uv);
  return 0;
}

static void child_woken(worker *w) {
  uv_mutex_lock(&w->lock);
  int terminate = w->terminated && !w->stop_requested;
  int wake = w->to_child.head != NULL || w->parent_gone;
  loop_state *loop = w->child_loop;
  uv_mutex_unlock(&w->lock);
  if (wake && w->has_channel) waitset_wake(&w->child_receivers);
  if (terminate && loop) {
    w->stop_requested = 1;
    loop_interrupt_clear(loop); /* delivered here: no hook raises it again */
    lua_State *L = loop->L;
    lua_pushcfunction(L, cancel_all_tasks);
    lua_pushlightuserdata(L, loop);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) lua_pop(L, 1);
  }
}

/* The wake handle keeps the worker's loop alive only while a recv waits (a cancelled
   recv stops counting at the next iteration). */
static void child_prepare_cb(uv_prepare_t *p) {
  worker *w = p->data;
  if (w->has_channel && waitset_pending(&w->child_receivers)) {
    uv_ref((uv_handle_t *)&w->child_wake->poll);
    if (spin_for_message(w, &w->child_spin, &w->to_child, p->loop))
      waitset_wake(&w->child_receivers);
  } else {
    uv_unref((uv_handle_t *)&w->child_wake->poll);
  }
}

typedef struct channel_box {
  worker *w;
} channel_box;

static void channel_close(worker *w) {
  uv_mutex_lock(&w->lock);
  wakeup *k = w->child_wake;
  w->child_wake = NULL;
  uv_mutex_unlock(&w->lock);
  if (k) wakeup_close(k);
  if (w->child_prepare) uv_close((uv_handle_t *)w->child_prepare, handle_free_cb);
  w->child_prepare = NULL;
  if (w->has_channel) waitset_free(&w->child_receivers);
  w->has_channel = 0;
}

static int channel_gc(lua_State *L) {
  channel_box *box = lua_touserdata(L, 1);
  if (box->w) channel_close(box->w);
  box->w = NULL;
  return 0;
}

/* Pushes asyncio.parent for w into the worker's state and opens the way to it. */
static void channel_open(lua_State *L, worker *w, loop_state *loop) {
  channel_box *box = lua_newuserdatauv(L, sizeof *box, 1);
  box->w = NULL;
  luaL_setmetatable(L, CHANNEL_MT);
  uv_prepare_t *p = malloc(sizeof *p);
  wakeup *k = p ? wakeup_new(loop->uv, w, child_woken) : NULL;
  if (k == NULL) {
    free(p);
    argcheck_error(L, "start_worker: cannot create the worker's wake-up handle");
  }
  uv_unref((uv_handle_t *)&k->poll);
  uv_prepare_init(loop->uv, p);
  p->data = w;
  uv_prepare_start(p, child_prepare_cb);
  uv_unref((uv_handle_t *)p);
  box->w = w;
  w->has_channel = 1;
  w->child_prepare = p;
  uv_mutex_lock(&w->lock);
  w->child_wake = k;
  w->child_loop = loop;
  loop_set_interruptible(loop, &w->lock);
  uv_mutex_unlock(&w->lock);
}

static void record_failure(worker *w, lua_State *L, int idx, int outcome) {
  copy_msg *err = NULL;
  char *tb = NULL;
  if (lua_istable(L, idx) && !error_instance_type(L, idx)) { /* worker_msgh's {error, traceback} */
    lua_rawgeti(L, idx, 2);
    const char *s = lua_tostring(L, -1);
    if (s) tb = strdup(s);
    lua_pop(L, 1);
    lua_rawgeti(L, idx, 1);
    err = worker_encode_error(L, -1);
    lua_pop(L, 1);
  } else {
    err = worker_encode_error(L, idx);
  }
  uv_mutex_lock(&w->lock);
  w->outcome = w->terminated ? OUT_TERMINATED : outcome;
  w->error = err;
  w->traceback = tb;
  uv_mutex_unlock(&w->lock);
}

static int run_loop_to_end(lua_State *L) {
  worker *w = lua_touserdata(L, 1);
  loop_state *loop = loop_get(L);
  while (!w->stop_requested && loop_run(L, loop, UV_RUN_DEFAULT)) {
  }
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_getfield(L, -1, "asyncio");
  lua_getfield(L, -1, "_shutdown"); /* cancels what is left and lets it clean up */
  lua_call(L, 0, 0);
  return 0;
}

static int encode_results(lua_State *L) {
  worker *w = lua_touserdata(L, 1);
  copy_msg *m = copy_encode(L, 2, lua_gettop(L) - 1, "wait", "result", 1);
  uv_mutex_lock(&w->lock);
  w->results = m;
  uv_mutex_unlock(&w->lock);
  return 0;
}

/* The worker's life inside its state: asyncio.parent, the script, its loop. */
static int worker_run(lua_State *L) {
  worker *w = lua_touserdata(L, 1);
  loop_state *loop = loop_get(L);
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_getfield(L, -1, "asyncio");
  channel_open(L, w, loop);
  lua_setfield(L, -2, "parent");
  lua_settop(L, 1);

  uv_mutex_lock(&w->lock);
  int terminated = w->terminated;
  uv_mutex_unlock(&w->lock);
  if (terminated) return 0;
  if (worker_loadfile(L, w->path) != LUA_OK) {
    record_failure(w, L, -1, OUT_LOAD_ERROR);
    return 0;
  }
  uv_mutex_lock(&w->lock);
  w->loaded = 1;
  parent_notify(w);
  uv_mutex_unlock(&w->lock);
  int n = copy_decode(L, w->args);
  lua_pushcfunction(L, worker_msgh);
  lua_insert(L, 2);
  if (lua_pcall(L, n, LUA_MULTRET, 2) != LUA_OK) {
    record_failure(w, L, -1, OUT_ERROR);
    return 0;
  }
  lua_pushcfunction(L, encode_results);
  lua_pushvalue(L, 1);
  lua_rotate(L, 3, 2);
  if (lua_pcall(L, lua_gettop(L) - 3, 0, 2) != LUA_OK) {
    record_failure(w, L, -1, OUT_ERROR);
    return 0;
  }
  lua_pushcfunction(L, run_loop_to_end);
  lua_pushvalue(L, 1);
  if (lua_pcall(L, 1, 0, 2) != LUA_OK) {
    record_failure(w, L, -1, OUT_ERROR);
    return 0;
  }
  uv_mutex_lock(&w->lock);
  w->outcome = w->terminated ? OUT_TERMINATED : OUT_RESULTS;
  uv_mutex_unlock(&w->lock);
  return 0;
}

static void worker_thread(void *arg) {
  worker *w = arg; /* the process's signals are blocked here (sigmask_thread_create) */
  lua_State *L = worker_newstate();
  if (L == NULL) {
    uv_mutex_lock(&w->lock);
    w->error = copy_encode_string("start_worker: cannot create a Lua state (out of memory)");
    w->outcome = OUT_LOAD_ERROR;
    uv_mutex_unlock(&w->lock);
  } else {
    lua_pushcfunction(L, worker_run);
    lua_pushlightuserdata(L, w);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) record_failure(w, L, -1, OUT_ERROR);
    uv_mutex_lock(&w->lock);
    w->child_loop = NULL; /* from here on nothing interrupts this state */
    uv_mutex_unlock(&w->lock);
    lua_close(L);
  }
  uv_mutex_lock(&w->lock);
  if (w->outcome == OUT_RUNNING) w->outcome = w->terminated ? OUT_TERMINATED : OUT_RESULTS;
  w->loaded = 1;
  w->ended = 1;
  parent_notify(w);
  uv_mutex_unlock(&w->lock);
  worker_release(w);
}

/* ---- the creator's side ------------------------------------------------------------- */

typedef struct worker_box {
  worker *w;
} worker_box;

static char list_key; /* registry: this state's worker_list */

static void list_unlink(worker *w) {
  if (w->prev)
    w->prev->next = w->next;
  else if (w->list)
    w->list->first = w->next;
  if (w->next) w->next->prev = w->prev;
  w->prev = w->next = NULL;
  w->list = NULL;
}

/* The worker has ended: its thread is joined, its wake handle closed. */
static void worker_reap(worker *w) {
  if (w->reaped) return;
  w->reaped = 1;
  uv_thread_join(&w->thread);
  uv_mutex_lock(&w->lock);
  wakeup *k = w->parent_wake;
  w->parent_wake = NULL;
  uv_mutex_unlock(&w->lock);
  if (k) wakeup_close(k);
  if (w->parent_prepare) uv_close((uv_handle_t *)w->parent_prepare, handle_free_cb);
  w->parent_prepare = NULL;
  list_unlink(w);
  worker_release(w); /* the list's reference */
}

static void parent_woken(worker *w) {
  uv_mutex_lock(&w->lock);
  int ended = w->ended, loaded = w->loaded;
  int has = w->to_parent.head != NULL;
  uv_mutex_unlock(&w->lock);
  if (w->has_box) {
    if (has || ended) waitset_wake(&w->receivers);
    if ((loaded && !w->seen_loaded) || ended) waitset_wake(&w->waiters);
  }
  w->seen_loaded = (uint8_t)loaded;
  if (ended) worker_reap(w);
}

/* The creator's loop is about to poll: while a recv waits, spin for the worker's next
   message; stopped when none waits (recv_arm starts it again). */
static void parent_prepare_cb(uv_prepare_t *p) {
  worker *w = p->data;
  if (!w->has_box || !waitset_pending(&w->receivers)) {
    uv_prepare_stop(p);
    return;
  }
  if (spin_for_message(w, &w->parent_spin, &w->to_parent, p->loop)) waitset_wake(&w->receivers);
}

/* Asks the worker to stop: its tasks are cancelled, Lua running there is interrupted. */
static void worker_terminate(worker *w) {
  uv_mutex_lock(&w->lock);
  if (!w->ended) {
    w->terminated = 1;
    w->parent_gone = 1;
    if (w->child_loop) loop_interrupt(w->child_loop, "worker terminated");
    wakeup_send(w->child_wake);
  }
  uv_mutex_unlock(&w->lock);
}

/* At the creator's lua_close (alua_close, the end of alua): every worker still running
   is terminated and joined. */
static int list_gc(lua_State *L) {
  worker_list *list = lua_touserdata(L, 1);
  for (worker *w = list->first; w; w = w->next) {
    worker_terminate(w);
    uv_mutex_lock(&w->lock);
    w->parent_dropped = 1;
    uv_mutex_unlock(&w->lock);
  }
  while (list->first) worker_reap(list->first);
  return 0;
}

static worker_list *list_get(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &list_key) == LUA_TUSERDATA) {
    worker_list *list = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return list;
  }
  lua_pop(L, 1);
  worker_list *list = lua_newuserdatauv(L, sizeof *list, 0);
  list->first = NULL;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, list_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &list_key);
  return list;
}

static worker *worker_check(lua_State *L, int idx, const char *fname) {
  worker_box *box = luaL_testudata(L, idx, WORKER_MT);
  if (box == NULL)
    luaL_error(L, "%s: call it as worker:%s() on a Worker (got %s)", fname, fname,
               luaL_typename(L, idx));
  return box->w;
}

/* core.worker_start(path, ...) -> Worker (its thread started; worker_started waits for
   its script to load) */
static int l_core_worker_start(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  loop_state *loop = loop_get(L);
  copy_msg *args = copy_encode(L, 2, lua_gettop(L) - 1, "start_worker", "arg", 1);
  worker_list *list = list_get(L);
  worker_box *box = lua_newuserdatauv(L, sizeof *box, WUV_COUNT);
  box->w = NULL;
  worker *w = calloc(1, sizeof *w);
  char *p = strdup(path);
  if (w == NULL || p == NULL || uv_mutex_init(&w->lock) != 0) {
    free(w);
    free(p);
    free(args);
    return argcheck_error(L, "start_worker: out of memory");
  }
  w->path = p;
  w->args = args;
  w->refs = 3;
  int rc = UV_EMFILE;
  w->parent_prepare = malloc(sizeof *w->parent_prepare);
  w->parent_wake = w->parent_prepare ? wakeup_new(loop->uv, w, parent_woken) : NULL;
  if (w->parent_wake == NULL) {
    free(w->parent_prepare);
    w->parent_prepare = NULL;
  } else {
    uv_prepare_init(loop->uv, w->parent_prepare);
    w->parent_prepare->data = w;
    uv_unref((uv_handle_t *)w->parent_prepare);
    rc = sigmask_thread_create(&w->thread, worker_thread, w);
    if (rc != 0) {
      wakeup_close(w->parent_wake);
      w->parent_wake = NULL;
      uv_close((uv_handle_t *)w->parent_prepare, handle_free_cb);
      w->parent_prepare = NULL;
    }
  }
  if (rc != 0) {
    w->refs = 1;
    worker_release(w);
    return error_raise_uv(L, "start_worker", rc);
  }
  box->w = w;
  w->has_box = 1;
  luaL_setmetatable(L, WORKER_MT);
  w->list = list;
  w->next = list->first;
  if (w->next) w->next->prev = w;
  list->first = w;
  return 1;
}

/* Raises the worker's failure at the creator: its error (class kept) with its traceback
   appended, or CancelledError for a terminated worker. */
static int worker_raise(lua_State *L, worker *w, int outcome) {
  if (outcome == OUT_TERMINATED) {
    error_push(L, "CancelledError", "worker terminated");
    return lua_error(L);
  }
  copy_decode(L, w->error);
  if (w->traceback) {
    lua_pushfstring(L, "(in worker %s)\n%s", w->path, w->traceback);
    error_relay_set(L, -2, -1);
    lua_pop(L, 1);
  }
  return lua_error(L);
}

static int started_attempt(lua_State *L, int base) {
  worker *w = ((worker_box *)lua_touserdata(L, base))->w;
  uv_mutex_lock(&w->lock);
  int loaded = w->loaded, outcome = w->outcome;
  uv_mutex_unlock(&w->lock);
  if (!loaded) return -1;
  if (outcome == OUT_LOAD_ERROR) {
    /* a script that cannot be loaded (missing, unreadable, a syntax error) is a bad
       argument of this call: Lua's words, named for it, at the user's line */
    copy_decode(L, w->error);
    const char *msg = lua_tostring(L, -1);
    if (msg && strncmp(msg, "start_worker: ", 14) != 0)
      return argcheck_error(L, "start_worker: %s", msg);
    return lua_error(L);
  }
  lua_pushvalue(L, base);
  return 1;
}

static void waiters_arm(lua_State *L, int base) {
  worker *w = ((worker_box *)lua_touserdata(L, base))->w;
  waitset_add(L, &w->waiters, base, WUV_WAITERS);
}

static const op_spec started_op = {"start_worker", started_attempt, waiters_arm};

/* core.worker_started(w): an operation that completes with w once its script has loaded. */
static int l_core_worker_started(lua_State *L) {
  worker_check(L, 1, "start_worker");
  lua_settop(L, 1);
  op_push(L, &started_op, 1);
  return 1;
}

/* worker:send(v): queues a copy of v for asyncio.parent:recv() in the worker. */
static int l_worker_send(lua_State *L) {
  worker *w = worker_check(L, 1, "send");
  luaL_checkany(L, 2);
  size_t len;
  const char *m = copy_encode_scratch(L, 2, 1, "send", "value", 0, &len);
  uv_mutex_lock(&w->lock);
  int ended = w->ended, terminated = w->terminated, failed = 0;
  if (!ended && !terminated) {
    failed = msgq_push(&w->to_child, m, len);
    if (!failed) message_posted(&w->child_spin, w->child_wake);
  }
  uv_mutex_unlock(&w->lock);
  if (failed) return luaL_error(L, "send: out of memory");
  if (ended || terminated) {
    return luaL_error(L, "send: the worker %s (%s)", terminated ? "was terminated" : "has ended",
                      w->path);
  }
  return 0;
}

static int recv_attempt(lua_State *L, int base) {
  worker *w = ((worker_box *)lua_touserdata(L, base))->w;
  int ended = 0;
  if (w->received.head == NULL) {
    uv_mutex_lock(&w->lock);
    msgq_take_all(&w->received, &w->to_parent);
    ended = w->ended;
    uv_mutex_unlock(&w->lock);
  }
  if (msgq_receive(L, &w->received)) return 1;
  if (!ended) return -1;
  lua_pushnil(L);
  return 1;
}

static void recv_arm(lua_State *L, int base) {
  worker *w = ((worker_box *)lua_touserdata(L, base))->w;
  waitset_add_one(L, &w->receivers, base, WUV_RECEIVERS);
  if (w->parent_prepare) uv_prepare_start(w->parent_prepare, parent_prepare_cb);
}

static const op_spec recv_op = {"Worker.recv", recv_attempt, recv_arm};

/* worker:recv() -> awaitable: the next message, nil once the worker ended and all were read */
static int l_worker_recv(lua_State *L) {
  worker_check(L, 1, "recv");
  lua_settop(L, 1);
  op_push(L, &recv_op, 1);
  return 1;
}

static int wait_attempt(lua_State *L, int base) {
  worker *w = ((worker_box *)lua_touserdata(L, base))->w;
  uv_mutex_lock(&w->lock);
  int ended = w->ended, outcome = w->outcome;
  uv_mutex_unlock(&w->lock);
  if (!ended) return -1;
  if (outcome != OUT_RESULTS) return worker_raise(L, w, outcome);
  return w->results ? copy_decode(L, w->results) : 0;
}

static const op_spec wait_op = {"Worker.wait", wait_attempt, waiters_arm};

/* worker:wait() -> awaitable: the results of the worker's main chunk once it has ended */
static int l_worker_wait(lua_State *L) {
  worker_check(L, 1, "wait");
  lua_settop(L, 1);
  op_push(L, &wait_op, 1);
  return 1;
}

/* worker:terminate(): cancels the worker's tasks and interrupts its running Lua. */
static int l_worker_terminate(lua_State *L) {
  worker_terminate(worker_check(L, 1, "terminate"));
  return 0;
}

/* The Worker object was collected: the worker runs on (until it ends, or the creator's
   state closes), but asyncio.parent:recv() there returns nil once it has read the rest. */
static int worker_gc(lua_State *L) {
  worker_box *box = lua_touserdata(L, 1);
  worker *w = box->w;
  if (w == NULL) return 0;
  box->w = NULL;
  uv_mutex_lock(&w->lock);
  w->parent_gone = w->parent_dropped = 1;
  wakeup_send(w->child_wake);
  uv_mutex_unlock(&w->lock);
  waitset_free(&w->receivers);
  waitset_free(&w->waiters);
  w->has_box = 0;
  worker_release(w);
  return 0;
}

static int worker_tostring(lua_State *L) {
  worker *w = worker_check(L, 1, "tostring");
  uv_mutex_lock(&w->lock);
  int ended = w->ended, terminated = w->terminated;
  uv_mutex_unlock(&w->lock);
  lua_pushfstring(L, "<Worker %s %s>", w->path,
                  ended        ? "ended"
                  : terminated ? "terminating"
                               : "running");
  return 1;
}

/* ---- asyncio.parent (inside a worker) ----------------------------------------------- */

static worker *channel_check(lua_State *L, int idx, const char *fname) {
  channel_box *box = luaL_testudata(L, idx, CHANNEL_MT);
  if (box == NULL)
    luaL_error(L, "%s: call it as asyncio.parent:%s() (got %s)", fname, fname,
               luaL_typename(L, idx));
  if (box->w == NULL) luaL_error(L, "%s: the channel is closed", fname);
  return box->w;
}

/* asyncio.parent:send(v): queues a copy of v for worker:recv() in the creator. */
static int l_channel_send(lua_State *L) {
  worker *w = channel_check(L, 1, "send");
  luaL_checkany(L, 2);
  size_t len;
  const char *m = copy_encode_scratch(L, 2, 1, "send", "value", 0, &len);
  uv_mutex_lock(&w->lock);
  int gone = w->parent_dropped, failed = 0;
  if (!gone) {
    failed = msgq_push(&w->to_parent, m, len);
    if (!failed) message_posted(&w->parent_spin, w->parent_wake);
  }
  uv_mutex_unlock(&w->lock);
  if (failed) return luaL_error(L, "send: out of memory");
  if (gone) {
    return luaL_error(L, "send: the creator no longer listens (it dropped this worker)");
  }
  return 0;
}

static int channel_recv_attempt(lua_State *L, int base) {
  worker *w = ((channel_box *)lua_touserdata(L, base))->w;
  int gone = 0;
  if (w->child_received.head == NULL) {
    uv_mutex_lock(&w->lock);
    msgq_take_all(&w->child_received, &w->to_child);
    gone = w->parent_gone;
    uv_mutex_unlock(&w->lock);
  }
  if (msgq_receive(L, &w->child_received)) return 1;
  if (!gone) return -1;
  lua_pushnil(L);
  return 1;
}

static void channel_recv_arm(lua_State *L, int base) {
  worker *w = ((channel_box *)lua_touserdata(L, base))->w;
  waitset_add_one(L, &w->child_receivers, base, 1);
  uv_ref((uv_handle_t *)&w->child_wake->poll);
}

static const op_spec channel_recv_op = {"parent.recv", channel_recv_attempt, channel_recv_arm};

static int l_channel_recv(lua_State *L) {
  channel_check(L, 1, "recv");
  lua_settop(L, 1);
  op_push(L, &channel_recv_op, 1);
  return 1;
}

static int channel_tostring(lua_State *L) {
  lua_pushliteral(L, "<asyncio.parent>");
  return 1;
}

/* asyncio.cpu_count(): the CPUs this process may run on (its affinity mask). */
static int l_core_cpu_count(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)uv_available_parallelism());
  return 1;
}

static const luaL_Reg worker_methods[] = {
    {"send", l_worker_send},
    {"recv", l_worker_recv},
    {"wait", l_worker_wait},
    {"terminate", l_worker_terminate},
    {NULL, NULL},
};

static const luaL_Reg channel_methods[] = {
    {"send", l_channel_send},
    {"recv", l_channel_recv},
    {NULL, NULL},
};

static const luaL_Reg worker_functions[] = {
    {"worker_start", l_core_worker_start},
    {"worker_started", l_core_worker_started},
    {"cpu_count", l_core_cpu_count},
    {NULL, NULL},
};

/* Adds the functions to the table on top (core); core.Worker is the metatable, for the
   Lua half to add __close. */
void worker_open(lua_State *L) {
  luaL_newmetatable(L, WORKER_MT);
  luaL_newlib(L, worker_methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, worker_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, worker_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "Worker");
  lua_setfield(L, -2, "__name");
  lua_setfield(L, -2, "Worker");
  luaL_newmetatable(L, CHANNEL_MT);
  luaL_newlib(L, channel_methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, channel_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, channel_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  luaL_setfuncs(L, worker_functions, 0);
}

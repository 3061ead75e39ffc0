/* core.h — the core layer (async/core/): the loop and what waits (futures, tasks, timers,
   callback handles, await, coroutine objects, operations, errors). The only header the
   other layers (async/net/, async/os/) and vm/ include from here; not public. */
#ifndef ALUA_ASYNC_CORE_H
#define ALUA_ASYNC_CORE_H

#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <lua.h>
#include <lauxlib.h>
#include <uv.h>

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

typedef struct loop_state loop_state;
typedef struct future future;
typedef struct task task;
typedef struct waiter waiter;
typedef struct handle handle;

/* Names of the metatables in the registry. */
#define FUTURE_MT "asyncio.Future"
#define TASK_MT "asyncio.Task"
#define CORO_MT "asyncio.coroutine"
#define HANDLE_MT "asyncio.Handle"
#define LOOP_MT "asyncio.Loop"

/* ---- types (type.c): metatables by address ------------------------------ */

extern char type_future, type_task, type_coro, type_handle, type_loop, type_op;
void type_register(lua_State *L, int mtidx, const void *key);
void type_inherit(lua_State *L, int mtidx, const void *key);
void type_setmetatable(lua_State *L, const void *key);
void *type_test(lua_State *L, int idx, const void *key);
void *type_check(lua_State *L, int idx, const void *key, const char *tname);

/* ---- ready queue entries ------------------------------------------------ */

/* Anything the ready queue runs: a task to resume or a callback handle. */
enum runnable_kind { RUN_TASK, RUN_HANDLE, RUN_GATHER };
typedef struct runnable {
  uint8_t kind;
} runnable;

/* ---- timer heap --------------------------------------------------------- */

#define TIMER_NOT_QUEUED ((1u << 30) - 1)
enum timer_kind { TIMER_FUTURE, TIMER_HANDLE, TIMER_TASK };

/* A node of the loop's single timer heap, embedded in sleeping futures, call_later
   handles and tasks (a task in asyncio.sleep): one uv_timer serves every deadline.
   8 bytes, in every future, task and handle: the deadline is kept only in the heap's
   array (timer_entry, timer_when), the insertion order wraps (compared as a
   difference), the heap position and the kind share a word. */
typedef struct timer_node {
  uint32_t seq;        /* insertion order, so equal deadlines fire FIFO */
  uint32_t index : 30; /* position in the heap, TIMER_NOT_QUEUED when absent */
  uint32_t kind : 2;   /* enum timer_kind */
} timer_node;

/* An entry of the heap's array: the deadline beside its node, so that ordering the heap
   reads only the array (timer.c). */
typedef struct timer_entry {
  uint64_t when;
  timer_node *node;
} timer_entry;

void timer_schedule(loop_state *loop, timer_node *node, uint64_t when);
uint64_t timer_when(loop_state *loop, const timer_node *node); /* its deadline, while queued */
void timer_remove(loop_state *loop, timer_node *node);
int timer_init(loop_state *loop);
void timer_close(loop_state *loop);
uint64_t timer_delay_to_ns(lua_State *L, int arg, const char *fname);
uint64_t timer_seconds_to_ns(lua_Number d);

/* ---- futures ------------------------------------------------------------ */

/* Something waiting for a future: a suspended task, a done callback or a gather's child
   entry, linked in the future's list. Woken (without calling into Lua) when the future
   completes: future.c calls the wake function of its kind, handing it the future (so a
   gather's child entry need not keep it). 16 bytes, in every task, handle and child of a
   gather: the kind is in the low bits of the link to the previous waiter. The list runs
   newest first, so a future needs no pointer to its last waiter (future.c). */
enum waiter_kind { WAITER_TASK, WAITER_HANDLE, WAITER_GATHER };
struct waiter {
  uintptr_t prev_kind; /* the waiter after it, newer (8-aligned) | enum waiter_kind; a
                          gather's child entry: its offset in the gather's array instead */
  waiter *next;
};
static inline void waiter_init(waiter *w, enum waiter_kind kind) {
  w->prev_kind = (uintptr_t)kind;
  w->next = NULL;
}
static inline enum waiter_kind waiter_kind_of(const waiter *w) {
  return (enum waiter_kind)(w->prev_kind & 3);
}
void task_wake(loop_state *loop, waiter *w, future *f);
void handle_wake(loop_state *loop, waiter *w, future *f);
void gather_child_done(loop_state *loop, waiter *w, future *f);

enum future_state { FUT_PENDING, FUT_RESULT, FUT_ERROR, FUT_CANCELLED };
enum future_kind { KIND_FUTURE, KIND_TASK, KIND_GATHER };

/* User values of a future's userdata. */
enum {
  FUV_VALUE = 1, /* the result (one), a table of results (several), or the error */
  FUV_EXTRA,     /* the name and an error's traceback: future_get_extra/future_set_extra */
  FUV_COUNT
};
/* What FUV_EXTRA holds: few futures have a name or a failure's traceback, so both share
   one user value (16 bytes less per future and task than one each): nil, the name alone
   (a string), or once a traceback is kept a table {traceback, name}. */
enum { FEXTRA_TRACEBACK = 1, FEXTRA_NAME = 2 };
int future_get_extra(lua_State *L, int idx, int which);  /* pushes it (or nil), its type */
void future_set_extra(lua_State *L, int idx, int which); /* pops the value into it */
void future_forget_extra(lua_State *L, future *f);       /* a Task's, when collected */

struct future {
  uint8_t kind;      /* enum future_kind */
  uint8_t state;     /* enum future_state */
  uint8_t retrieved; /* the error was looked at: no "never retrieved" report */
  uint8_t sleeping;  /* a sleep future: resolves from the timer heap */
  int nresults;      /* FUT_RESULT: 1 means FUV_VALUE is the value itself */
  int msg_ref;       /* FUT_CANCELLED: registry ref of the cancel message, or LUA_NOREF */
  uint16_t task_nuv; /* a Task's: its userdata's user values, where task.c's raw hand-over
                        finds its header (lua54_udata_of); in what was padding */
  loop_state *loop;
  waiter *first;    /* the newest waiter (future.c wakes them oldest first) */
  timer_node timer; /* a sleep future's, a Task's in asyncio.sleep */
};

future *future_check(lua_State *L, int idx); /* a Future or a Task */
future *future_test(lua_State *L, int idx);
future *future_new(lua_State *L, loop_state *loop); /* pushes a pending Future */
void future_init(future *f, loop_state *loop, uint8_t kind);
void future_add_waiter(future *f, waiter *w);
void future_remove_waiter(future *f, waiter *w);
void future_complete(future *f, int state); /* every completion: sets state, wakes waiters */
void future_rearm(future *f);
int future_cancel(lua_State *L, future *f, int msg_ref);
int future_cancel_any(lua_State *L, future *f);
int future_push_outcome(lua_State *L, future *f, int fidx);
void future_report_unretrieved(lua_State *L, int idx, const char *what);
void future_store_results(lua_State *L, int fidx, int first, int n);
void future_open(lua_State *L);

/* ---- tasks -------------------------------------------------------------- */

struct task {
  future base;      /* a Task is a Future: must stay first */
  waiter wait;      /* entry in the waiter list of what it awaits */
  lua_State *co;    /* its Lua thread (user value TUV_THREAD anchors it) */
  future *awaiting; /* the future it is suspended on; NULL while yielding once */
  int ref;          /* registry ref anchoring the task while pending */
  runnable run;     /* entry in the ready queue (one byte) */
  uint8_t started : 1;
  uint8_t scheduled : 1;      /* in the ready queue */
  uint8_t must_cancel : 1;    /* deliver CancelledError at the next resume */
  uint8_t deliver_cancel : 1; /* the resumed await raises CancelledError */
  uint8_t is_main : 1;
  uint8_t has_context : 1;   /* context.c keeps a ContextVar context for it */
  uint8_t has_extra : 1;     /* a name or traceback, out of line (future.c) */
  uint8_t has_finalizer : 1; /* task_finalize will run for it: registered, or watched */
  uint16_t num_cancels;      /* cancel() requests not undone by uncancel() (saturates) */
  uint64_t id : 47;          /* its default name is Task-<id> */
  uint64_t tail : 1;         /* in a tail await (tail.c): no thread, its function in TUV_BODY */
  uint64_t nargs : 16;       /* arguments of the body, kept after it until the first step;
                                in a tail await, the line of that await */
  /* base.msg_ref holds, while the task is pending, the message of a cancellation not yet
     delivered (88 bytes in all: with 1 user value and Lua's header, a 144-byte block;
     160 with a body's argument) */
};
/* User values of a task: the future's value, then the body's arguments (its name and
   traceback, a future's FUV_EXTRA, are kept out of line: future.c). The body, then the
   thread the first step moves it into, take the result's slot: a task holds a body
   before it starts, a thread while it runs and a result once done, never two at once
   (16 bytes less per task than a slot each). A task in a tail await (tail.c) holds the
   function that awaits there instead of a thread. */
enum { TUV_BODY = FUV_VALUE, TUV_ARGS };
#define TUV_THREAD TUV_BODY

task *task_check(lua_State *L, int idx);
/* A thread's owner slot (its extra space): the task it runs for, and flags in the low
   bits (a task is 8-byte aligned). task_set_thread_owner clears them. */
enum {
  OWNER_AWAITING = 1,    /* a user coroutine suspended in an await it passed up (lcorolib.c) */
  OWNER_NO_SUSPEND = 2,  /* runs for its task where nothing can yield: no await may suspend */
  OWNER_TASK_THREAD = 4, /* the task's own thread, which only the loop resumes */
  OWNER_FLAGS = 7
};
task *task_of(lua_State *L);
void task_set_thread_owner(lua_State *co, task *t);
static inline uintptr_t owner_flags(lua_State *L) {
  return *(uintptr_t *)lua_getextraspace(L) & OWNER_FLAGS;
}
static inline void owner_set_flags(lua_State *L, uintptr_t flags) {
  *(uintptr_t *)lua_getextraspace(L) |= flags;
}
/* task_create's nargs: fidx holds a claimed coroutine object, whose function and
   arguments the task takes */
#define TASK_BODY_CORO (-1)
int task_create(lua_State *L, loop_state *loop, int fidx, int nargs, int name_idx);
/* task_create(L, loop, fidx, TASK_BODY_CORO, name_idx) of the coroutine object c at fidx */
struct coro;
int task_create_coro(lua_State *L, loop_state *loop, int fidx, const struct coro *c, int name_idx);
void task_step(lua_State *L, loop_state *loop, task *t);
void task_settle_failed(lua_State *L, loop_state *loop, task *t); /* loop_drain */
void task_schedule(loop_state *loop, task *t);
int task_cancel(lua_State *L, task *t, int msg_idx);
void task_cancel_all(lua_State *L, loop_state *loop); /* every pending task, newest first */
int task_push_cancelled_error(lua_State *L, int msg_ref);
void task_sleep(task *t, uint64_t delay); /* arms t's own timer: its caller then yields */
void task_timer_fired(loop_state *loop, task *t);
int task_in_sleep(loop_state *loop, task *t); /* suspended in asyncio.sleep */
void task_open(lua_State *L);

/* ---- task-local context (context.c) -------------------------------------- */

void context_inherit(lua_State *L, loop_state *loop, task *t); /* t on top */
void context_forget(lua_State *L, task *t);          /* task_gc of a task with a context */
int context_capture(lua_State *L, loop_state *loop); /* handle_new: pushes it */
int context_enter(lua_State *L, loop_state *loop);   /* handle_run: a callback's */
void context_leave(lua_State *L, loop_state *loop, int outer); /* context around its call */
void context_open(lua_State *L);

/* ---- gather ------------------------------------------------------------- */

struct gather;
void gather_open(lua_State *L);                          /* after await_open */
void gather_run(lua_State *L, runnable *r);              /* the finisher, from the ready queue */
void gather_settle_failed(lua_State *L, runnable *r);    /* loop_drain */
int gather_cancel(lua_State *L, future *f, int msg_ref); /* future_cancel of a gather */
void gather_push_description(lua_State *L, future *f);   /* for print_tasks */
void gather_push_children(lua_State *L, future *f);
future *await_to_future(lua_State *L, loop_state *loop, int idx, const char *fname);

/* ---- callback handles (call_soon, call_later, done callbacks) ------------ */

struct handle {
  runnable run;
  waiter wait;      /* as a done callback, entry in the future's waiter list */
  timer_node timer; /* as call_later/call_at, entry in the timer heap */
  uint64_t when;    /* call_later/call_at: the deadline (ns, uv_hrtime's clock), or 0 */
  loop_state *loop;
  future *target; /* done callback: the future it waits on */
  int ref;        /* registry ref anchoring the handle while scheduled */
  int nargs;
  uint8_t cancelled;
  uint8_t has_context; /* user value nargs + 2 holds the context it runs in (context.c) */
  uint8_t deadline;    /* core._cancel_at's: cancels user value 1 (nil: the top level) */
  uint8_t fired;       /* a deadline handle that ran */
};

int handle_new(lua_State *L, loop_state *loop, int fidx, int nargs); /* pushes it */
handle *handle_check(lua_State *L, int idx);
void handle_anchor(lua_State *L, handle *h, int idx);
void handle_release(lua_State *L, handle *h);
void handle_run(lua_State *L, handle *h);
void handle_open(lua_State *L);

/* ---- the loop ----------------------------------------------------------- */

enum { LOOP_POOL_MAX = 1024 }; /* threads kept for reuse, at most */

struct loop_state {
  uv_loop_t *uv;
  int owns_uv;
  uv_idle_t *idle;    /* active while tasks are ready: keeps poll from blocking */
  uv_check_t *check;  /* drains the ready queue right after I/O callbacks */
  uv_timer_t *timer;  /* fires the earliest deadline of the heap */
  lua_State *L;       /* thread that callbacks run on: the one driving uv_run */
  int driving;        /* depth of uv_run calls made by alua */
  int in_callback;    /* depth of alua callbacks in progress */
  size_t *drain_left; /* while a drain runs: how many entries of its batch are left */
  runnable *settling; /* while a drain runs: the entry being run (loop_drain) */
  /* ready queue: a ring buffer */
  runnable **ready;
  size_t ready_head, ready_count, ready_cap;
  /* timer heap */
  timer_entry *heap;
  size_t heap_count, heap_cap;
  uint64_t timer_seq;
  /* tasks */
  task *current; /* the task being resumed, or NULL */
  /* the C frame that resumed the running Lua thread (task_step, coroutine.resume):
     how much C stack its inline awaits have used (await.c) */
  uintptr_t resume_frame;
  size_t live_count; /* pending tasks (task_cancel_all and all_tasks find them) */
  uint64_t task_ids;
  /* pool of finished tasks' threads: a stack in C, each anchored in a registry table
     (pool_ref) at the slot it occupies; pool_anchor[i] is what that table holds at
     slot i + 1, possibly a thread taken since (see loop_pool_take) */
  int pool_ref;
  int pool_count;
  /* registry slots anchor.c handed out and took back (free, holding false) */
  int *anchor_free;
  int anchor_free_n, anchor_free_cap;
  int anchor_next;      /* the slot after the last fresh one handed out (0: unknown) */
  const void *registry; /* the registry table (lua_topointer), for raw stores there */
  /* coro.c: the nursery of new coroutine objects not yet registered for finalization
     (registry slot, 0 when that scheme is off) and how many it holds; the one made last,
     untaken, waits alone on a thread's stack before it (coro_last: NULL if none) */
  int coro_nursery_ref, coro_nursery_n;
  struct lua54_udata *coro_last_holder; /* its header (lua54.c: read only where usable) */
  struct coro *coro_last;
  const void *coro_mt; /* the coroutine objects' metatable, for fast tests */
  /* the Task metatable: its registry slot (creation) and address (type tests) */
  int task_mt_ref;
  int task_lazy_gc; /* Tasks registered for finalization only when needed (finalize.c) */
  const void *task_mt;
  lua_State *pool[LOOP_POOL_MAX];
  lua_State *pool_anchor[LOOP_POOL_MAX];
  const void *cancelled_mt; /* CancelledError instances' metatable, for fast tests */
  /* tail.c: the function (a Lua closure) of the task whose tail await of a sleep returns
     now, for task.c to take; a tail await of a future: its record (a registry slot), to
     take instead. The closure is not anchored here: from the await until task.c takes
     it, it is on the thread's stack, and after the body's return nothing allocates
     before task_main takes it (tail.c) */
  const void *tail_fn;
  int tail_record_ref;
  int tail_record;
  /* Handles that keep the loop alive only while loop_run_until waits (a top-level await):
     a layer above sets the hook (os/signal.c, for its handlers' uv_signal handles, kept
     in hold_data), so the loop reaches them without knowing what they are. */
  int held; /* loop_run_until is waiting: hooked handles are referenced */
  void (*hold_hook)(loop_state *loop); /* applies `held` to them */
  void *hold_data;
  unsigned keep_alive;    /* waits no referenced handle stands for (loop_keep_alive) */
  future *running_until;  /* what loop_run_until runs the loop for: Ctrl-C cancels it */
  int top_has_context;    /* a ContextVar was set outside every task (context.c) */
  int any_context;        /* one was set anywhere: callback handles capture contexts */
  uint64_t slow_ns;       /* debug mode: a step longer than this is reported */
  uint8_t debug;          /* debug mode (debug.c) */
  uv_timer_t *lost_timer; /* lost.c: a collection soon after an unobserved task failure */
  int top_cancels;        /* toplevel.c: cancel requests to the top level not undone */
  int top_cancel_pending; /* one came while no top-level await ran, or one the awaited
                             future could not take (toplevel.c) */
  int closed;
  /* interrupting this loop's Lua from another thread (a worker's terminate, a to_thread
     cancelled): set by worker.c, NULL in a state nobody interrupts */
  uv_mutex_t *interrupt_lock;   /* held by the interrupting thread */
  lua_State *main_thread;       /* what runs when no task does */
  _Atomic(lua_State *) running; /* the Lua thread being resumed; NULL: the main one */
  atomic_int interrupting;      /* another thread is hooking `running` */
  atomic_int interrupt_pending; /* the hook raises CancelledError(interrupt_message) */
  const char *interrupt_message;
};

loop_state *loop_get(lua_State *L);
void loop_push_ready(loop_state *loop, runnable *r);
task *loop_take_first_step(loop_state *loop); /* task.c's batches of first steps */
int loop_run_until(lua_State *L, loop_state *loop, future *f);
int loop_run(lua_State *L, loop_state *loop, uv_run_mode mode);
int loop_is_running(loop_state *loop);
void loop_open(lua_State *L);
void loop_close(lua_State *L, loop_state *loop);
void toplevel_deliver_cancel(lua_State *L, loop_state *loop, future *f);
void toplevel_cancel(lua_State *L, loop_state *loop);
int toplevel_take_cancel(loop_state *loop);
void toplevel_open(lua_State *L);
int lost_init(loop_state *loop);
void lost_close(loop_state *loop);
void lost_watch(loop_state *loop); /* a task failed with nothing waiting on it */
lua_State *loop_pool_take(lua_State *L, loop_state *loop);
int anchor_take(lua_State *L, loop_state *loop); /* pops a value into a slot: its ref */
struct lua54_udata;
int anchor_take_udata(lua_State *L, loop_state *loop, const struct lua54_udata *u);
void anchor_drop(lua_State *L, loop_state *loop, int ref);
void anchor_close(loop_state *loop);
void loop_pool_give(lua_State *L, loop_state *loop, lua_State *co);
void loop_report(lua_State *L, const char *what, int erridx, const char *traceback);
int loop_switch(lua_State *L, uv_loop_t *uv);

/* ---- debug mode and task dumps (debug.c) --------------------------------- */

/* States on this OS thread with debug mode on: with none, recording where objects
   are made costs one test. */
extern _Thread_local int debug_states;
#define debug_record(L, idx)                             \
  do {                                                   \
    if (debug_states) debug_record_creation((L), (idx)); \
  } while (0)
void debug_record_creation(lua_State *L, int idx);
int debug_report_creation(lua_State *L, int idx, const char *what);
void debug_report_unclosed(lua_State *L, int idx, const char *what);
void debug_run(lua_State *L, loop_state *loop, runnable *r); /* a ready entry, timed */
void debug_hook_thread(lua_State *co);
int debug_hooked(lua_State *co); /* a hook other than a leftover sampler (taken off) */
/* Pushes what future f is in a user's words ("read on 127.0.0.1:5000") and returns 1,
   or returns 0 when it does not know f. */
typedef int (*debug_wait_describer)(lua_State *L, future *f);
void debug_add_wait_describer(debug_wait_describer fn);
void debug_enable(lua_State *L); /* alua --debug */
void debug_open(lua_State *L);

/* Makes this loop's Lua interruptible from another thread (loop_interrupt, called
   holding *lock): from now on task.c and lcorolib.c publish each thread they resume. */
static inline void loop_set_interruptible(loop_state *loop, uv_mutex_t *lock) {
  loop->interrupt_lock = lock;
}
/* The interrupt was delivered another way, or came too late: a hook still set on a
   thread finds nothing pending and removes itself. */
static inline void loop_interrupt_clear(loop_state *loop) {
  atomic_store(&loop->interrupt_pending, 0);
}
/* Publishes co as the Lua thread this loop's thread runs, for loop_interrupt; returns
   what to give loop_leave when the resume returns. */
static inline lua_State *loop_enter(loop_state *loop, lua_State *co) {
  if (loop->interrupt_lock == NULL) return NULL;
  return atomic_exchange(&loop->running, co);
}
/* delta more (or fewer) waits that must keep the loop running though no referenced
   handle stands for them (a LuaSocket call: its sockets alone do not keep it running). */
void loop_keep_alive(loop_state *loop, int delta);
void loop_leave_slow(loop_state *loop, lua_State *prev);
static inline void loop_leave(loop_state *loop, lua_State *prev) {
  if (loop->interrupt_lock != NULL) loop_leave_slow(loop, prev);
}
/* From another thread, holding *loop->interrupt_lock: raises CancelledError(message) at
   the next instruction of the Lua code running in loop's thread (lua_sethook, the one
   call Lua allows from outside). */
void loop_interrupt(loop_state *loop, const char *message);

/* ---- await, async and coroutine objects -------------------------------- */

extern char await_tag; /* address yielded by await: "suspended for the scheduler" */
/* lua_resume for the resumers of code that may await (task_step, coroutine.resume and
   wrap inside a task; loop NULL outside one): the C stack inline awaits use is counted
   from here, and a thread that yields to unwind it is resumed again at once (await.c). */
int await_resume(loop_state *loop, lua_State *co, lua_State *from, int narg, int *nres);
/* What calling an async function returns (coro.c): its function and arguments, not yet
   run. User values: 1 = the function, 2 = the async function's name (or nil), 3.. = args. */
typedef struct coro {
  int nargs;
  uint8_t taken;         /* awaited or wrapped in a task */
  uint8_t sleep;         /* made by asyncio.sleep: user value 3 is the delay */
  uint8_t reported;      /* "never awaited" said already */
  uint32_t nursery_slot; /* its index in coro.c's nursery, 0 when not there */
  uint32_t site;         /* where it was made: site.c's id, 0 if unknown */
} coro;

/* The payload of a new coroutine object with nuv (2..4) user values: sizeof(coro), or more
   on a thread whose allocator keeps their blocks at one size (vm/heap.c: two CallInfos,
   which a dead coroutine object's block then serves whole). Per OS thread: only the alua
   command's main state has that allocator (its workers' states are glibc's). */
extern _Thread_local uint16_t coro_payload[3];
static inline size_t coro_size(int nuv) {
  return nuv >= 2 && nuv <= 4 ? coro_payload[nuv - 2] : sizeof(coro);
}
void coro_open(lua_State *L); /* the metatable, before await_open */
void coro_set_metatable(lua_State *L, int mtidx, struct coro *c); /* a new one's (on top) */
/* the rest of coro_set_metatable, the lazy scheme on: into the nursery */
void coro_nurse(lua_State *L, loop_state *loop, struct coro *c);
int coro_test(lua_State *L, int idx);
int coro_is_sleep(lua_State *L, int idx);
int coro_take(lua_State *L, int idx, const char *fname); /* pushes fn and args; returns nargs */
void coro_claim(lua_State *L, int idx, const char *fname);
void coro_claim_last(lua_State *L, loop_state *loop); /* the object made last, untaken */
int coro_unpack(lua_State *L, int idx);
void coro_copy_into(lua_State *L, int idx, const coro *c, int fn_slot, int first_arg_slot);

/* ---- finalizers only where needed (finalize.c) ----------------------------- */
/* Lua 5.4's Table begins with CommonHeader (next, tt, marked), then `flags`, whose bit
   1 << TM_GC says "no __gc" to luaC_checkfinalizer: set, lua_setmetatable with that table
   registers nothing; clear, Lua looks __gc up. finalize_flag_usable checks this layout. */
enum { GC_FLAGS_OFFSET = sizeof(void *) + 2, GC_FLAG_TM_GC = 1u << 2, GC_FLAGS_TM_FAST = 0x3f };
int finalize_flag_usable(lua_State *L);
void finalize_push_mt(lua_State *L, lua_CFunction gc); /* pushes {__gc = gc} */
void finalize_push_ephemeron(lua_State *L);            /* pushes a table with weak keys */
static inline void finalize_flag_hide(const void *mt, int hide) {
  unsigned char *flags = (unsigned char *)mt + GC_FLAGS_OFFSET;
  *flags = (unsigned char)(hide ? *flags | GC_FLAG_TM_GC : *flags & ~GC_FLAG_TM_GC);
}
int finalize_open(lua_State *L); /* the watchers and closer; 0: scheme off */
/* t, at idx (0: pending, found by its anchor), is to get its finalizer's work done when
   it dies: a watcher, unless it has that already */
void finalize_watch_task(lua_State *L, task *t, int idx);
void task_finalize(lua_State *L, int idx); /* what a dead Task's finalizer does (task.c) */
task **task_pending_list(lua_State *L, loop_state *loop, size_t *count); /* malloc'd */
void await_open(lua_State *L);
int await_is_await(lua_CFunction f);                    /* is f asyncio.await's C function? */
void await_setfuncs(lua_State *L, const luaL_Reg *fns); /* closures over await's upvalues */
/* site.c: where the Lua code calling into asyncio is ("file:line"), cached per call site */
uint32_t site_id(lua_State *L, int sites_idx); /* 0: none */
uint32_t site_id_at(lua_State *L, int sites_idx, void *table, const void *self_ci);
int site_push_text(lua_State *L, uint32_t id);
void site_table_push(lua_State *L); /* pushes the site table */
void lcorolib_patch(lua_State *L);
/* The head of Lua 5.4's CallInfo (lstate.h), the same in every 5.4 release: what
   lua_Debug's i_ci points at. await.c reads a Lua frame's instruction from it, stack.c
   the extent of every frame. Each reader checks it against the Lua actually linked. */
typedef struct lua54_callinfo {
  void *func, *top; /* slots of the thread's stack */
  struct lua54_callinfo *previous, *next;
  union {
    struct {
      const uint32_t *savedpc; /* the instruction after the one running */
      volatile sig_atomic_t trap;
      int nextraargs;
    } l;
    struct {
      lua_KFunction k;
      ptrdiff_t old_errfunc;
      lua_KContext ctx;
    } c;
  } u;
  int u2;
  short nresults;
  unsigned short callstatus;
} lua54_callinfo;
enum { LUA54_CIST_C = 1 << 1 }; /* callstatus: a C function's frame */
/* A lua_State's top (the first free slot) and ci (the running frame): lstate.h's
   CommonHeader, status, allowhook and nci, then top, l_G, ci (words 2 and 4); the probe
   checks both (lua54.c). */
static inline void *lua54_top(lua_State *L) { return ((void *const *)L)[2]; }
static inline lua54_callinfo *lua54_ci(lua_State *L) { return ((lua54_callinfo *const *)L)[4]; }

/* lua54.c: raw stores into a userdata or table Lua has just made and reads of a C
   function's arguments and upvalues, where a probe found Lua 5.4's layouts (below). A
   store is raw only into an object not black (lua54_storable), with nothing allocated
   between that test and the store: see lua54.c. */
typedef struct lua54_value { /* a TValue */
  const void *value;
  uint8_t tt;
} lua54_value;
typedef struct lua54_udata { /* a full userdata with user values */
  void *next;
  uint8_t tt, marked;
  uint16_t nuvalue;
  size_t len;
  const void *metatable;
  void *gclist;
  lua54_value uv[]; /* then the block lua_touserdata returns */
} lua54_udata;
_Static_assert(sizeof(lua54_value) == 16 && offsetof(lua54_udata, uv) == 40,
               "Lua 5.4's TValue and Udata on a 64-bit machine");
/* A value's tag (lobject.h's LUA_V..., with ctb() if collectable), an object's own type
   byte (its header's tt: no ctb) and the colour bits (lgc.h). */
enum {
  LUA54_TT_FALSE = 0x01,
  LUA54_TT_INTEGER = 0x03,
  LUA54_TT_FLOAT = 0x13,
  LUA54_TT_LIGHT = 0x02,
  LUA54_TT_CCLOSURE = 0x66,
  LUA54_TT_LCLOSURE = 0x46,
  LUA54_TT_THREAD = 0x48,
  LUA54_TT_UDATA = 0x47,
  LUA54_TYPE_TABLE = 0x05,
  LUA54_TYPE_UDATA = 0x07,
  LUA54_COLLECTABLE = 0x40, /* in a value's tag */
  LUA54_WHITE_BITS_0 = 1 << 3,
  LUA54_WHITE_BITS_1 = 1 << 4,
  LUA54_WHITE_BITS = LUA54_WHITE_BITS_0 | LUA54_WHITE_BITS_1,
  LUA54_BLACK_BIT = 1 << 5
};
extern atomic_int lua54_raw; /* the probe's verdict: 1 = the layouts are Lua 5.4's */
void lua54_probe(lua_State *L);
static inline int lua54_usable(void) {
  return atomic_load_explicit(&lua54_raw, memory_order_relaxed) == 1;
}
/* The header of the userdata whose block (lua_touserdata) is `block`, with nuv user values. */
static inline lua54_udata *lua54_udata_of(const void *block, int nuv) {
  return (lua54_udata *)((char *)block - offsetof(lua54_udata, uv) -
                         (size_t)nuv * sizeof(lua54_value));
}
/* Whether the object whose header is at o (a lua54_udata, a table) takes raw stores:
   not black (lua54.c). Every object's header has its colour where a userdata's has. */
static inline int lua54_storable(const void *o) {
  return !(((const lua54_udata *)o)->marked & LUA54_BLACK_BIT);
}
/* Whether storing v into the object whose header is at o needs Lua's barrier (lgc.h's
   luaC_barrierback and luaC_objbarrier: "isblack(o) && iswhite(v)"); where it does not,
   a raw store is all lua_setiuservalue would do. */
static inline int lua54_needs_barrier(const void *o, const lua54_value *v) {
  return (v->tt & LUA54_COLLECTABLE) && !lua54_storable(o) &&
         (((const lua54_udata *)v->value)->marked & LUA54_WHITE_BITS);
}
/* Pushes v onto L's stack as lua_pushvalue would push it (a stack takes any value: Lua
   traverses threads again in the atomic phase, so no barrier). */
static inline void lua54_push(lua_State *L, lua54_value v) {
  lua_pushnil(L);
  ((lua54_value *)lua54_top(L))[-1] = v;
}
/* The current line of the Lua function whose frame is ci (lua_getinfo's "l"), read from
   its prototype's line information; -1 if it has none (stripped). Its only user, tail.c,
   first checks it against lua_getinfo on a state of its own (its probe). */
int lua54_line(const lua54_callinfo *ci);
/* The full userdata a value holds, or NULL. */
static inline lua54_udata *lua54_udata_in(const lua54_value *v) {
  return v->tt == (LUA54_TYPE_UDATA | LUA54_COLLECTABLE) ? (lua54_udata *)v->value : NULL;
}
/* The block of userdata u (lua_touserdata's). */
static inline void *lua54_block(lua54_udata *u) { return &u->uv[u->nuvalue]; }
/* The arguments of the C function whose frame lua_getstack described as ci (its func
   slot's successors) and, if it is a C closure, its upvalues. */
static inline const lua54_value *lua54_args(const void *ci) {
  return (const lua54_value *)((const lua54_callinfo *)ci)->func + 1;
}
static inline const lua54_value *lua54_upvalues(const void *ci) {
  const char *closure = ((const lua54_value *)((const lua54_callinfo *)ci)->func)->value;
  return (const lua54_value *)(closure + 4 * sizeof(void *));
}
/* The slot of key k in the array part of the table at t (lua_topointer) if k is at most
   the table's limit (its alimit: where Lua's luaH_getint looks first, in the array, for
   every key up to it); else NULL. */
static inline unsigned lua54_array_limit(const void *t) {
  return *(const unsigned *)((const unsigned char *)t + 12);
}
static inline lua54_value *lua54_array_slot(const void *t, lua_Integer k) {
  if ((lua_Unsigned)k - 1u >= lua54_array_limit(t)) return NULL;
  return *(lua54_value *const *)((const unsigned char *)t + 16) + (k - 1);
}
/* The C function of the C closure value v holds (a C closure: CommonHeader, nupvalues,
   gclist, f, then its upvalues), or NULL if v holds none. */
static inline lua_CFunction lua54_cclosure_f(const lua54_value *v) {
  return v->tt == LUA54_TT_CCLOSURE
             ? *(const lua_CFunction *)((const char *)v->value + 3 * sizeof(void *))
             : NULL;
}
static inline const lua54_value *lua54_cclosure_upvalues(const lua54_value *v) {
  return (const lua54_value *)((const char *)v->value + 4 * sizeof(void *));
}
/* How many arguments the running C function has (lua_gettop, read from the frame). */
static inline int lua54_nargs(lua_State *L, const lua54_value *args) {
  return (int)((const lua54_value *)lua54_top(L) - args);
}
/* A number value's lua_Number (lua_tonumber of a number), or 0 with *isnum 0. */
static inline lua_Number lua54_number(const lua54_value *v, int *isnum) {
  union {
    const void *p;
    lua_Number n;
    lua_Integer i;
  } u = {v->value};
  *isnum = v->tt == LUA54_TT_FLOAT || v->tt == LUA54_TT_INTEGER;
  return v->tt == LUA54_TT_FLOAT ? u.n : v->tt == LUA54_TT_INTEGER ? (lua_Number)u.i : 0;
}
/* The array of the table at t (lua_topointer) if its size is n, as lua_createtable(L, n,
   0) makes it; else NULL. */
static inline lua54_value *lua54_array(const void *t, unsigned n) {
  const unsigned char *h = t;
  if (h[sizeof(void *)] != LUA54_TYPE_TABLE || *(const unsigned *)(h + 12) != n) return NULL;
  return *(lua54_value *const *)(h + 16);
}
/* stack.c: a task whose first step ends in an await keeps only the stack it uses, cut
   to STACK_CUT_SLOTS slots when that is enough (the alua command's allocator keeps
   blocks of that size in a slab, vm/heap.c), else to what it uses plus a margin */
enum { STACK_CUT_SLOTS = 34 };
void stack_fit(lua_State *co);
/* tail.c: an await of a sleep that is the last thing a task's body does returns at once,
   the task sleeping without its thread (task.c keeps the rest) */
int tail_await(lua_State *L, task *t, int nres);
int tail_await_future(lua_State *L, task *t, int fidx);
void tail_open(lua_State *L, loop_state *loop);
/* Suspends task t (running L) until f is done; k runs when it resumes. */
int await_suspend(lua_State *L, task *t, future *f, lua_KFunction k);
/* Raises the CancelledError a cancel() left for t to see when it resumes, if any. */
void await_deliver_cancel(lua_State *L, task *t);
/* First in every continuation of an await's yield: a coroutine suspended in an await its
   task passed up (lcorolib.c) is resumed by that task, which clears OWNER_AWAITING first;
   still set, a C library's own lua_resume woke it before what it awaits was done. */
void await_resumed_by_c(lua_State *L); /* raises */
static inline void await_check_resumer(lua_State *L) {
  if (owner_flags(L) & OWNER_AWAITING) await_resumed_by_c(L);
}

/* ---- awaitable operations (op.c) ---------------------------------------- */

/* What an operation does: `attempt` with its arguments at stack indices base.. pushes
   the results and returns how many, or returns -1 when it cannot complete yet; `arm`
   (same arguments) then pushes a future that completes when trying again is worth it. */
typedef struct op_spec {
  const char *name; /* for messages: "StreamReader.read" */
  int (*attempt)(lua_State *L, int base);
  void (*arm)(lua_State *L, int base);
} op_spec;

void op_push(lua_State *L, const op_spec *spec, int nargs); /* pops the arguments */
int op_test(lua_State *L, int idx);
void op_claim(lua_State *L, int idx, const char *fname);
int op_await(lua_State *L, task *t); /* the operation at index 1 */
void op_open(lua_State *L);

/* ---- wait sets (waitset.c) ------------------------------------------------ */

/* Futures an I/O callback completes (with no value) in pure C. A user value of the
   owner's userdata anchors them; the waiting Lua code re-checks the state on waking. */
typedef struct waitset {
  future **v;
  int n, cap;
  future *last;   /* the future handed out last */
  const void *by; /* the task it was handed to */
} waitset;

future *waitset_add(lua_State *L, waitset *ws, int owner, int uv);     /* pushes it */
future *waitset_add_one(lua_State *L, waitset *ws, int owner, int uv); /* one waiter at a time */
int waitset_pending(const waitset *ws);
int waitset_awaited(const waitset *ws); /* pending and someone awaits it */
void waitset_wake(waitset *ws);
int waitset_holds(const waitset *ws, const future *f);
void waitset_free(waitset *ws);

/* ---- the owner list (owner.c) -------------------------------------------- */

/* Every libuv object Lua owns (a socket, a process, a request) is on its loop's owner
   list, so lua_close closes what user code left open, and what still flushes after its
   Lua object was collected (owner.c). */
typedef struct owner_list owner_list;
typedef struct owned owned;
struct owned {
  owned *prev, *next;
  owner_list *list;
  void (*shutdown)(owned *o); /* closes the handle (cancels the request) at once, without Lua */
};
owner_list *owner_list_get(lua_State *L);
void owner_track(owner_list *list, owned *o, void (*shutdown)(owned *));
void owner_untrack(owned *o);
owned *owner_list_first(owner_list *list); /* then o->next: every object on the list */
int owner_list_closed(owner_list *list);   /* its state is closed or closing */
void owner_open(lua_State *L);             /* the loop's list, after loop_open */

/* ---- requests on a thread pool (request.c) ---------------------------------- */

/* A request whose end completes a future (getaddrinfo, getnameinfo, a file call), as
   luv's lreq.c keeps them. The kind's C struct embeds a `request` and is malloc'd; its Lua
   object is a userdata that begins with a `request *` (NULL once the request ended) and
   holds the outcome, user value 1 its future. While pending the C struct owns itself: it
   is on the owner list (lua_close cancels it) and is freed only by its completion, which
   calls request_end first: REQUEST_TAKEN, the future is completed and the outcome goes
   into *obj; otherwise nobody will take the outcome (the object was collected, or its
   awaiter was cancelled) and the completion disposes of it, without touching the loop
   or Lua if REQUEST_CLOSED (the state is gone). */
typedef struct request request;
struct request {
  owned own;
  request **link; /* the Lua object's pointer to this, NULL once unlinked */
  future *fut;    /* the object's future, valid while linked */
  void (*cancel)(request *r);
};
typedef enum { REQUEST_TAKEN, REQUEST_ABANDONED, REQUEST_CLOSED } request_fate;
/* Pushes a new Lua object (size bytes, zeroed; nuv >= 1 user values; metatable mt) and
   its pending future; returns the future. */
future *request_push(lua_State *L, size_t size, int nuv, const char *mt);
/* After the libuv call that started r: links it with the object at objidx and tracks it. */
void request_start(lua_State *L, request *r, int objidx, void (*cancel)(request *r));
/* The call failed before starting: completes the object's future (the caller has put the
   error in the object and frees its struct). */
void request_refuse(lua_State *L, int objidx);
request_fate request_end(request *r, void **obj); /* in the completion, first */
void request_detach(void *obj); /* the object's __gc: a pending request goes on alone, cancelled */
void request_cancel(void *obj); /* its awaiter was cancelled: cancels a pending request */

/* ---- the process's signals go to the main thread (sigmask.c) ------------------ */

/* Blocks the signals sent to the process (SIGINT, SIGTERM, SIGCHLD...) in the calling
   thread; *saved gets the mask to put back with sigmask_restore. */
void sigmask_block_process(sigset_t *saved);
void sigmask_restore(const sigset_t *saved);
/* uv_thread_create, the new thread starting with the process's signals blocked. */
int sigmask_thread_create(uv_thread_t *tid, void (*entry)(void *), void *arg);
/* Before a request on libuv's thread pool: the first call makes that pool (libuv makes
   it at its first request) with the process's signals blocked; later calls return. */
void sigmask_start_uv_pool(void);

/* ---- the module (module.c) ------------------------------------------------ */

void module_open(lua_State *L);        /* pushes the core table, with core's functions */
void module_load_stdlib(lua_State *L); /* core table on top -> the asyncio module */

/* ---- errors ------------------------------------------------------------- */

void error_open(lua_State *L);
int error_is_any(lua_State *L, int idx);          /* an instance of any asyncio error class */
void error_wrap_failure(lua_State *L, int tbidx); /* the user error on top -> is_error's wrapper */

/* ---- bad arguments, at the user's line (argcheck.c) -------------------------- */

/* Raises "file:line: message" at the user's line that called into asyncio (the first
   frame outside the stdlib; for a top-level await's main task, the await's line). */
int argcheck_error(lua_State *L, const char *fmt, ...);
const char *argcheck_describe(lua_State *L, int idx); /* pushes it: string "1", 1.5, table */
/* pairs: {"name", "type|type", ..., NULL}; idx nil or absent: nothing to check */
void argcheck_options(lua_State *L, int idx, const char *fname, const char *const *pairs);
int await_async_parts(lua_State *L, int idx); /* an async function's body and name */
void await_async_push(lua_State *L);          /* body, name -> async function */
int argcheck_self_error(lua_State *L, const char *cls, const char *var, const char *method);
void argcheck_open(lua_State *L);
void error_push(lua_State *L, const char *type, const char *message);
int error_raise(lua_State *L, const char *type, const char *fmt, ...);
int error_is(lua_State *L, int idx, const char *type);
void error_push_uv(lua_State *L, const char *syscall, int uverr);
int error_raise_uv(lua_State *L, const char *syscall, int uverr);
/* The same with a message of its own (fmt as lua_pushfstring's): "bind: cannot listen..." */
void error_push_uv_msg(lua_State *L, const char *syscall, int uverr, const char *fmt, ...);
int error_raise_uv_msg(lua_State *L, const char *syscall, int uverr, const char *fmt, ...);
void error_relay_set(lua_State *L, int erridx, int tbidx);
void error_traceback(lua_State *L, lua_State *co, int erridx, int level);
void error_relay_append(lua_State *L, int erridx);
void error_push_tail_stack(lua_State *L, int line, int tailcalled); /* pops the function */
void error_push_stack(lua_State *L, lua_State *co, int level);      /* "stack traceback:..." */
/* The same bounded to the innermost 21 frames, in constant time however deep the stack */
void error_push_stack_top(lua_State *L, lua_State *co, int level);
const char *error_instance_type(lua_State *L, int idx);
void error_set_instance_class(lua_State *L, int idx, const char *type);

#endif

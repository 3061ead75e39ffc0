/* signal.c — signal names, add/remove_signal_handler on uv_signal, and Ctrl-C for alua. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "os.h"

#define SIGWATCH_MT "asyncio.SignalWatcher"

typedef struct sigwatch sigwatch;

static char watchers_key; /* registry: signal number -> watcher userdata */

/* ---- names ---------------------------------------------------------------------- */

/* clang-format off */
static const struct {
  const char *name;
  int num;
} signal_names[] = {
    {"SIGHUP", SIGHUP},   {"SIGINT", SIGINT},       {"SIGQUIT", SIGQUIT},   {"SIGILL", SIGILL},
    {"SIGTRAP", SIGTRAP}, {"SIGABRT", SIGABRT},     {"SIGBUS", SIGBUS},     {"SIGFPE", SIGFPE},
    {"SIGKILL", SIGKILL}, {"SIGUSR1", SIGUSR1},     {"SIGSEGV", SIGSEGV},   {"SIGUSR2", SIGUSR2},
    {"SIGPIPE", SIGPIPE}, {"SIGALRM", SIGALRM},     {"SIGTERM", SIGTERM},   {"SIGCHLD", SIGCHLD},
    {"SIGCONT", SIGCONT}, {"SIGSTOP", SIGSTOP},     {"SIGTSTP", SIGTSTP},   {"SIGTTIN", SIGTTIN},
    {"SIGTTOU", SIGTTOU}, {"SIGURG", SIGURG},       {"SIGXCPU", SIGXCPU},   {"SIGXFSZ", SIGXFSZ},
    {"SIGVTALRM", SIGVTALRM}, {"SIGPROF", SIGPROF}, {"SIGWINCH", SIGWINCH}, {"SIGSYS", SIGSYS},
#ifdef SIGIO
    {"SIGIO", SIGIO},
#endif
#ifdef SIGPWR
    {"SIGPWR", SIGPWR},
#endif
    {NULL, 0},
};
/* clang-format on */

const char *signal_name(int signum) {
  for (int i = 0; signal_names[i].name; i++)
    if (signal_names[i].num == signum) return signal_names[i].name;
  return NULL;
}

/* The signal at idx: a name ("SIGTERM", or "TERM") or a number. Raises a clear error for
   anything else. */
int signal_check(lua_State *L, int idx, const char *fname) {
  if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_Integer n = luaL_checkinteger(L, idx);
    if (n <= 0 || n >= 65) argcheck_error(L, "%s: invalid signal number %d", fname, (int)n);
    return (int)n;
  }
  const char *name = lua_tostring(L, idx);
  if (name == NULL)
    argcheck_error(L, "%s: expected a signal name such as \"SIGINT\", got %s", fname,
                   luaL_typename(L, idx));
  for (int i = 0; signal_names[i].name; i++)
    if (strcmp(signal_names[i].name, name) == 0 || strcmp(signal_names[i].name + 3, name) == 0)
      return signal_names[i].num;
  argcheck_error(L,
                 "%s: unknown signal '%s' (expected a name such as \"SIGINT\", \"SIGTERM\", "
                 "\"SIGHUP\", \"SIGUSR1\")",
                 fname, name);
  return 0;
}

/* ---- watchers ------------------------------------------------------------------- */

/* One uv_signal per handled signal. Its callback handle (a user value of the Lua object)
   holds [dispatch, fn, args...]: between deliveries it stays "armed" (h->ref set), so the
   uv callback only has to queue it, without calling into Lua; the dispatch re-arms it. */
struct sigwatch {
  uv_signal_t h;
  loop_state *loop;
  handle *cb;
  struct sigwatch *prev, *next; /* the loop's watchers, for signal_hold */
  int signum;
  uint8_t queued;
};

typedef struct sigbox {
  sigwatch *w;
} sigbox;

static void watch_free_cb(uv_handle_t *h) { free(container_of((uv_signal_t *)h, sigwatch, h)); }

static void watch_cb(uv_signal_t *h, int signum) {
  (void)signum;
  sigwatch *w = container_of(h, sigwatch, h);
  if (w->queued || w->cb == NULL) return;
  w->queued = 1;
  loop_push_ready(w->loop, &w->cb->run);
}

/* Watchers do not keep the loop alive after the main chunk (a script that handles SIGTERM
   still ends), but a top-level await keeps waiting while a signal could complete it: the
   loop's hold hook, with the loop's watchers in its hold_data. */
static void signal_hold(loop_state *loop) {
  for (sigwatch *w = loop->hold_data; w; w = w->next) {
    if (loop->held)
      uv_ref((uv_handle_t *)&w->h);
    else
      uv_unref((uv_handle_t *)&w->h);
  }
}

static void interrupt_restore(void);

static void watch_close(lua_State *L, sigbox *box) {
  sigwatch *w = box->w;
  if (w == NULL) return;
  box->w = NULL;
  if (w->cb) {
    w->cb->cancelled = 1;
    if (!w->queued) handle_release(L, w->cb); /* queued: the ready queue skips and releases it */
    w->cb = NULL;
  }
  if (w->prev)
    w->prev->next = w->next;
  else
    w->loop->hold_data = w->next;
  if (w->next) w->next->prev = w->prev;
  int signum = w->signum;
  uv_close((uv_handle_t *)&w->h, watch_free_cb);
  if (signum == SIGINT) interrupt_restore(); /* libuv put back SIG_DFL */
}

static int watch_gc(lua_State *L) {
  watch_close(L, lua_touserdata(L, 1));
  return 0;
}

/* The callback handle's function: re-arms, then calls the user's fn(...). */
static int watch_dispatch(lua_State *L) {
  sigbox *box = lua_touserdata(L, lua_upvalueindex(1));
  sigwatch *w = box->w;
  if (w && w->cb) {
    w->queued = 0;
    lua_getiuservalue(L, lua_upvalueindex(1), 1);
    w->cb->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_call(L, lua_gettop(L) - 1, 0);
  return 0;
}

static void push_watchers(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &watchers_key) == LUA_TTABLE) return;
  lua_pop(L, 1);
  lua_newtable(L);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &watchers_key);
}

static int remove_watcher(lua_State *L, int signum) {
  push_watchers(L);
  int found = lua_rawgeti(L, -1, signum) == LUA_TUSERDATA;
  if (found) {
    watch_close(L, lua_touserdata(L, -1));
    lua_pushnil(L);
    lua_rawseti(L, -3, signum);
  }
  lua_pop(L, 2);
  return found;
}

/* Called as a function or as a loop method: the loop object first is skipped. */
static int first_arg(lua_State *L) { return luaL_testudata(L, 1, LOOP_MT) ? 2 : 1; }

/* add_signal_handler(sig, fn, ...): fn(...) runs from the loop (not in signal context)
   each time sig arrives; replaces an earlier handler of sig. */
static int l_core_add_signal_handler(lua_State *L) {
  int a = first_arg(L);
  int signum = signal_check(L, a, "add_signal_handler");
  if (signum == SIGKILL || signum == SIGSTOP)
    return luaL_error(L, "add_signal_handler: %s cannot be caught", signal_name(signum));
  if (!lua_isfunction(L, a + 1) && luaL_getmetafield(L, a + 1, "__call") == LUA_TNIL)
    return luaL_error(L, "add_signal_handler: expected a function, got %s",
                      luaL_typename(L, a + 1));
  lua_pushvalue(L, lua_upvalueindex(1)); /* iscoroutinefunction */
  lua_pushvalue(L, a + 1);
  lua_call(L, 1, 1);
  if (lua_toboolean(L, -1))
    return luaL_error(L,
                      "add_signal_handler: fn is an async function; a handler is a plain "
                      "callback (start a task from it with asyncio.create_task)");
  lua_pop(L, 1);
  int nargs = lua_gettop(L) - a; /* fn and its arguments */
  loop_state *loop = loop_get(L);
  remove_watcher(L, signum);

  sigbox *box = lua_newuserdatauv(L, sizeof *box, 1);
  box->w = NULL;
  luaL_setmetatable(L, SIGWATCH_MT);
  int boxidx = lua_gettop(L);
  sigwatch *w = calloc(1, sizeof *w);
  if (w == NULL) return luaL_error(L, "add_signal_handler: out of memory");
  uv_signal_init(loop->uv, &w->h);
  int rc = uv_signal_start(&w->h, watch_cb, signum);
  if (rc < 0) {
    uv_close((uv_handle_t *)&w->h, watch_free_cb);
    return error_raise_uv(L, "add_signal_handler", rc);
  }
  w->loop = loop;
  w->signum = signum;
  box->w = w;
  w->next = loop->hold_data;
  if (w->next) w->next->prev = w;
  loop->hold_data = w;
  loop->hold_hook = signal_hold;
  if (!loop->held) uv_unref((uv_handle_t *)&w->h);

  luaL_checkstack(L, nargs + 2, "too many arguments");
  lua_pushvalue(L, boxidx);
  lua_pushcclosure(L, watch_dispatch, 1);
  for (int i = 0; i < nargs; i++) lua_pushvalue(L, a + 1 + i);
  handle_new(L, loop, boxidx + 1, nargs);
  w->cb = lua_touserdata(L, -1);
  handle_anchor(L, w->cb, -1);
  lua_setiuservalue(L, boxidx, 1);

  push_watchers(L);
  lua_pushvalue(L, boxidx);
  lua_rawseti(L, -2, signum);
  return 0;
}

/* remove_signal_handler(sig) -> true if a handler was removed */
static int l_core_remove_signal_handler(lua_State *L) {
  int signum = signal_check(L, first_arg(L), "remove_signal_handler");
  lua_pushboolean(L, remove_watcher(L, signum));
  return 1;
}

/* ---- Ctrl-C in the alua command ---------------------------------------------------
   SIGINT cancels the main task (what asyncio.run or a top-level await runs) so that its
   cleanup runs; after the main chunk every task is cancelled and the loop stops. Plain Lua
   code running outside the loop gets a CancelledError("KeyboardInterrupt") from a hook,
   as the stock lua command does. A second Ctrl-C exits at once. */

static volatile sig_atomic_t interrupt_count;
static volatile sig_atomic_t interrupt_delivered; /* the hook raised it: nothing more to do */
static void (*interrupt_at_prompt)(void);         /* the REPL's, while its prompt waits */
static lua_State *interrupt_L;
static loop_state *interrupt_loop;
static uv_async_t *interrupt_async;
static pthread_t interrupt_thread; /* the thread that runs interrupt_L and its loop */

static void interrupt_exit_now(void) {
  static const char msg[] = "KeyboardInterrupt\n";
  ssize_t n = write(STDERR_FILENO, msg, sizeof msg - 1);
  (void)n;
  _exit(130);
}

/* Raises the interrupt in plain Lua code on the main thread. While the loop runs it stays
   set and does nothing: the async, in the loop's next poll, cancels what the loop runs for
   and removes it. Removing it here instead lost the interrupt when the loop stopped before
   that poll, or had nothing left to cancel (the task a top-level await waits for finished
   busy code, which only the async's turn ends): the main chunk went on as if no Ctrl-C. */
static void interrupt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  if (interrupt_loop != NULL && loop_is_running(interrupt_loop)) return;
  lua_sethook(L, NULL, 0, 0);
  if (interrupt_loop == NULL) return;
  interrupt_delivered = 1;
  error_push(L, "CancelledError", "KeyboardInterrupt");
  lua_error(L);
}

/* The kernel gives a signal sent to the process to any thread that does not block it:
   alua's threads do (core/sigmask.c), but a host's or a C module's may not. Hooking
   interrupt_L from there would race with the thread running it, so a SIGINT taken on
   another thread is sent on to the loop's (pthread_kill is async-signal-safe), where
   this handler runs again and does the work. */
static void interrupt_signal(int signum) {
  if (interrupt_L != NULL && !pthread_equal(pthread_self(), interrupt_thread)) {
    int saved = errno;
    pthread_kill(interrupt_thread, signum);
    errno = saved;
    return;
  }
  if (interrupt_count++ > 0 || interrupt_L == NULL) interrupt_exit_now();
  lua_sethook(interrupt_L, interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
  uv_async_send(interrupt_async);
}

static void interrupt_restore(void) {
  if (interrupt_L == NULL) return;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = interrupt_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, NULL);
}

/* Cancels what the loop runs for: the main task, or the future a top-level await waits
   for. After the main chunk (no such thing) every task is cancelled and the loop stops. */
static int interrupt_cancel(lua_State *L) {
  loop_state *loop = lua_touserdata(L, 1);
  future *f = loop->running_until;
  if (f && f->state == FUT_PENDING) {
    /* a future that refuses (a gather whose children have all finished, its completion
       queued) keeps the cancel pending: the top-level await raises it when it returns
       (toplevel.c), where the Ctrl-C was lost and the await returned the results */
    if (!future_cancel_any(L, f)) loop->top_cancel_pending = 1;
    return 0;
  }
  task_cancel_all(L, loop);
  uv_stop(loop->uv);
  return 0;
}

static void interrupt_async_cb(uv_async_t *a) {
  loop_state *loop = a->data;
  /* interrupt_count 0: the interrupt was handled already (the hook raised it in busy code
     and the REPL reset the count) and this wake-up came late; it is no new Ctrl-C */
  if (interrupt_delivered || interrupt_L == NULL || interrupt_count == 0) return;
  future *f = loop->running_until;
  /* what a top-level await waits for is done already: too late to cancel it, and the loop
     stops after this turn; the hook, still set, interrupts the main chunk when it goes on */
  if (f && f->state != FUT_PENDING) return;
  lua_sethook(interrupt_L, NULL, 0, 0);
  if (interrupt_at_prompt) { /* the REPL is waiting for a line: Ctrl-C clears it */
    interrupt_count = 0;
    interrupt_at_prompt();
    return;
  }
  lua_State *L = loop->L;
  lua_pushcfunction(L, interrupt_cancel);
  lua_pushlightuserdata(L, loop);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) lua_pop(L, 1);
}

static void async_free_cb(uv_handle_t *h) { free(h); }

/* At lua_close: back to the default action, the handle closed. */
static int interrupt_gc(lua_State *L) {
  (void)L;
  if (interrupt_L == NULL) return 0;
  signal(SIGINT, SIG_DFL);
  interrupt_L = NULL;
  interrupt_loop = NULL;
  uv_close((uv_handle_t *)interrupt_async, async_free_cb);
  interrupt_async = NULL;
  return 0;
}

/* Installs alua's Ctrl-C handling (once per process). Also when SIGINT arrives ignored,
   as for a job sh starts in the background: lua.c installs its handler anyway, and
   scripts that run interpreters that way (Lua's own test suite) interrupt them. */
void signal_catch_interrupt(lua_State *L) {
  if (interrupt_L != NULL) return;
  loop_state *loop = loop_get(L);
  uv_async_t *a = malloc(sizeof *a);
  if (a == NULL || uv_async_init(loop->uv, a, interrupt_async_cb) != 0) {
    free(a);
    return;
  }
  a->data = loop;
  uv_unref((uv_handle_t *)a);
  lua_newuserdatauv(L, 0, 0);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, interrupt_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, "asyncio.interrupt");
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  interrupt_L = lua_tothread(L, -1);
  lua_pop(L, 1);
  interrupt_loop = loop;
  interrupt_async = a;
  interrupt_thread = pthread_self();
  interrupt_restore();
}

int signal_interrupted(void) { return interrupt_count > 0; }

/* The REPL: fn handles Ctrl-C while the prompt waits (NULL: it does not wait). */
void signal_interrupt_at_prompt(void (*fn)(void)) { interrupt_at_prompt = fn; }

/* The REPL handled an interrupt: the next Ctrl-C is a first one again. */
void signal_interrupt_reset(void) {
  interrupt_count = 0;
  interrupt_delivered = 0;
}

/* ---- module ---------------------------------------------------------------------- */

/* Adds the functions to the table on top (the core, which already has
   iscoroutinefunction) and to the loop object's methods. */
void signal_open(lua_State *L) {
  int core = lua_gettop(L);
  luaL_newmetatable(L, SIGWATCH_MT);
  lua_pushcfunction(L, watch_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_getmetatable(L, LOOP_MT);
  lua_getfield(L, -1, "__index");
  int methods = lua_gettop(L);
  lua_getfield(L, core, "iscoroutinefunction");
  lua_pushcclosure(L, l_core_add_signal_handler, 1);
  lua_pushvalue(L, -1);
  lua_setfield(L, core, "add_signal_handler");
  lua_setfield(L, methods, "add_signal_handler");
  lua_pushcfunction(L, l_core_remove_signal_handler);
  lua_pushvalue(L, -1);
  lua_setfield(L, core, "remove_signal_handler");
  lua_setfield(L, methods, "remove_signal_handler");
  lua_settop(L, core);
}

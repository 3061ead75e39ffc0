/* sigmask.c — the process's signals reach its main thread only. The kernel hands a
   signal sent to the process to any thread that does not block it, and alua's Ctrl-C
   handler (os/signal.c) hooks the main lua_State, which must not happen from another
   thread. So every thread alua makes starts with those signals blocked (they are
   blocked in the creator around the creation: a thread that blocked them itself would
   take one in its first instructions), and so does libuv's thread pool: libuv 1.44 makes
   all its threads at the first request (a file call, a name lookup), each with the
   signal mask of the thread that asked, so the first request goes through
   sigmask_start_uv_pool, which makes them from a thread with the signals blocked. */
#include <pthread.h>
#include <signal.h>

#include "core.h"

/* The signals sent to the process (Ctrl-C, kill, a terminal, a child's end); not the
   ones a thread's own fault raises (SIGSEGV, SIGPIPE...), which go to that thread. */
static const int process_signals[] = {SIGINT,  SIGTERM, SIGHUP,   SIGQUIT, SIGUSR1,
                                      SIGUSR2, SIGCHLD, SIGWINCH, SIGALRM};

void sigmask_block_process(sigset_t *saved) {
  sigset_t set;
  sigemptyset(&set);
  for (size_t i = 0; i < sizeof process_signals / sizeof process_signals[0]; i++)
    sigaddset(&set, process_signals[i]);
  pthread_sigmask(SIG_BLOCK, &set, saved);
}

void sigmask_restore(const sigset_t *saved) { pthread_sigmask(SIG_SETMASK, saved, NULL); }

int sigmask_thread_create(uv_thread_t *tid, void (*entry)(void *), void *arg) {
  sigset_t saved;
  sigmask_block_process(&saved);
  int rc = uv_thread_create(tid, entry, arg);
  sigmask_restore(&saved);
  return rc;
}

static void pool_noop(uv_work_t *req) { (void)req; }

/* One piece of work on a loop of its own, queued with the signals blocked: libuv makes its
   pool's threads then (or made them already, for a host that used it first). */
static void pool_start(void) {
  sigset_t saved;
  sigmask_block_process(&saved);
  uv_loop_t loop;
  uv_work_t req;
  if (uv_loop_init(&loop) == 0) {
    if (uv_queue_work(&loop, &req, pool_noop, NULL) == 0) uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
  }
  sigmask_restore(&saved);
}

void sigmask_start_uv_pool(void) {
  static uv_once_t once = UV_ONCE_INIT;
  uv_once(&once, pool_start);
}

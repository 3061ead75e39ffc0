/* heap.c — the alua command's Lua allocator: glibc's malloc, with the heap it grows faulted
   in a step at a time. A program that creates 100,000 tasks touches about 150 MB of fresh
   heap, and with 4 KiB pages each first touch is a page fault: ~36,000 for workload C, a
   trap and a return each. The heap's growth is populated instead (MADV_POPULATE_WRITE:
   the same pages, allocated and zeroed by one system call a step), by a thread of its own
   while the program goes on (below).

   Why not huge pages (MADV_HUGEPAGE, which this file asked for until session 7): where
   the machine backs its memory, 2 MiB pages cost fewer faults (C's system time ~0.05 s
   against ~0.07 s populated). On a virtual machine whose balloon reports free memory to
   its host (Firecracker's virtio_balloon with free page reporting, as where bench/ runs),
   every free block of 2 MiB or more is handed back to the host after a few seconds, and a
   huge page is exactly such a block: touching it again costs the host's faults, ~3 ms a
   huge page, while 4 KiB pages come first from smaller free blocks, which are never
   reported. Under bench/run's conditions (other runtimes' runs in between) huge pages made
   A and C bimodal, C's system time 0.05-0.48 s against 0.06-0.13 populated
   (bench/RESULTS.md, issue 22, session 7). Where THP is "always", the kernel still gives
   huge pages; the population then takes them at once. */
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/core.h"
#include "vm.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14; older kernels refuse it (EINVAL): plain faults */
#endif

/* The heap grows in steps of at least this much (glibc's default is 128 KiB), each
   populated: what a step holds beyond the program's use is resident, so it stays small
   (C's bytes per sleeper +6 against unpopulated 8 MiB steps). */
#define HEAP_GROWTH_PAD (2 << 20)
/* Blocks below this come from the heap too, not from mmap (glibc's threshold starts at
   128 KiB): a large table (a list of 200,000 tasks, the registry) would otherwise grow in
   mappings of 4 KiB pages, a fault each. */
#define HEAP_MMAP_THRESHOLD (32 << 20)

/* ---- the population, on a thread of its own ----------------------------------------

   Populating costs what the faults it saves would have cost but the traps: the pages are
   still allocated and zeroed, ~55 ms of the main thread's CPU in workload C's creation and
   first steps (measured by populating 200 MiB before the program starts: creation's CPU
   51.8 -> 35.1 ms, the first steps' 100.8 -> 62.9). So a thread of the allocator's
   ("alua-heap") does it beside the program: told the new break at each growth, it
   populates the new part while the program goes on into it (C's first steps 124 -> 83 ms
   with a core free, bench/RESULTS.md). A page the program touches before the thread got
   to it simply faults in, as without this; the thread never reads or writes the memory (it
   asks the kernel for the pages), and shares only the two addresses below, under a mutex.
   It blocks the process's signals (sigmask.c). If it cannot be made, or in a child forked
   without exec, each growth is populated inline. */
static struct {
  pthread_mutex_t lock;
  pthread_cond_t wake;
  uintptr_t want; /* the break to populate up to */
  uintptr_t done; /* populated (or being populated) up to here */
  int state;      /* 0: no thread yet, 1: running, -1: none (populate inline) */
} filler = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};

static uintptr_t seen_top; /* the break at the last growth heap_realloc saw */

static void populate(uintptr_t from, uintptr_t to) {
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  from &= ~(page - 1);
  /* errors change nothing: a range the heap no longer has (a trim meanwhile) is left,
     and pages not populated fault in when touched */
  if (to > from) madvise((void *)from, to - from, MADV_POPULATE_WRITE);
}

static void *filler_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&filler.lock);
  for (;;) {
    while (filler.want <= filler.done) pthread_cond_wait(&filler.wake, &filler.lock);
    uintptr_t from = filler.done, to = filler.want;
    filler.done = to;
    pthread_mutex_unlock(&filler.lock);
    populate(from, to);
    pthread_mutex_lock(&filler.lock);
  }
  return NULL;
}

/* fork: the mutex is held across it, so that a child (which has no filler thread) starts
   with it free, and populates inline */
static void filler_before_fork(void) { pthread_mutex_lock(&filler.lock); }
static void filler_after_fork(void) { pthread_mutex_unlock(&filler.lock); }
static void filler_in_child(void) {
  filler.state = -1;
  pthread_mutex_unlock(&filler.lock);
}

static int filler_start(void) {
  pthread_attr_t attr;
  pthread_t tid;
  sigset_t saved;
  if (pthread_attr_init(&attr) != 0) return -1;
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 64 << 10); /* it calls madvise, nothing deeper */
  sigmask_block_process(&saved);
  int rc = pthread_create(&tid, &attr, filler_main, NULL);
  sigmask_restore(&saved);
  pthread_attr_destroy(&attr);
  if (rc != 0) return -1;
  pthread_setname_np(tid, "alua-heap");
  pthread_atfork(filler_before_fork, filler_after_fork, filler_in_child);
  return 1;
}

/* brk moved the heap's top (main thread): have the new part populated. */
static void heap_grown(uintptr_t top) {
  uintptr_t old = seen_top;
  seen_top = top;
  if (filler.state == 0) filler.state = filler_start();
  if (filler.state < 0) {
    if (top > old) populate(old, top);
    return;
  }
  pthread_mutex_lock(&filler.lock);
  if (top < filler.done) filler.done = top; /* trimmed: a later growth populates again */
  filler.want = top;
  if (top > filler.done) pthread_cond_signal(&filler.wake);
  pthread_mutex_unlock(&filler.lock);
}

/* ---- slabs for the blocks every Lua thread is made of ----------------------------

   A sleeping task's thread is four or five blocks of fixed sizes: the lua_State, its
   first stack (45 slots of 16 bytes, BASIC_STACK_SIZE + EXTRA_STACK in Debian's
   liblua5.4; once the task has suspended, async/core/stack.c's cut one of
   STACK_CUT_SLOTS + 5) and its CallInfos (64 bytes each). glibc adds 16 bytes to each
   of these (an 8-byte header, rounded up to 16): 80 bytes per sleeping task of
   workload C, and 8 to its Task (a userdata of 200 bytes). Blocks of exactly those sizes come from slabs
   instead: carved in address order from 256 KiB
   chunks of the heap, no header, freed to a list per size. Lua tells the allocator the
   size of every block it frees or resizes (osize), which is how a block is known to be a
   slab's; a glibc block of such a size (made before this allocator was installed) freed
   here joins the list. A class whose chunk runs out first takes a block another class
   freed, up to twice its size, before malloc gives it a new chunk (the block then stays
   in the smaller class). Nothing else is kept this way: a size-class allocator for every
   small size was slower (RESULTS.md: its free lists scattered the objects the collector
   walks). Under AddressSanitizer the slabs are off, so that it still sees every block;
   valgrind sees them (its checks then cover the slabs' own code, and callgrind counts
   what a normal run does). */
#define SLAB_CHUNK (256 << 10)
#define SLAB_CLASSES 8
#define SLAB_MAX_SIZE 1024 /* the largest size a class may have (the first stack: 720) */

typedef struct slab {
  size_t size;                  /* block size (the lua_State's is learnt from Lua) */
  void *free;                   /* freed blocks, each holding the next */
  char *next, *end;             /* the rest of the chunk being carved */
  uint8_t donors[SLAB_CLASSES]; /* classes (+ 1) whose freed blocks may serve this one,
                                   smallest first, 0-terminated */
} slab;

/* CallInfo, first stack, lua_State, Task (of 0 and 1 arguments), and coroutine objects
   of 0, 1 and 2 arguments: made for nearly every task (create_task(work(i))) and garbage soon after,
   they were the one glibc block of task creation (~300 instructions to malloc, ~100 to
   free), and a free list reuses the block freed last, still in the cache. The block of
   a coroutine object of one or two arguments is two CallInfos (await.c pads it:
   coro_payload): dead by the ten thousand when the first steps of their tasks begin,
   each then serves two CallInfos whole, where one of 104 bytes served one and left 40
   idle (bench/RESULTS.md, issue 22 session 7: the price is 24 bytes more while one is
   held, 8 for two arguments; of no argument, 40 would be, and they keep their 88). */
static slab slabs[SLAB_CLASSES];
static uint8_t slab_index[SLAB_MAX_SIZE / 8 + 1]; /* size / 8 -> its class + 1, or 0 */
static int slabs_on;

static inline slab *slab_of(size_t size) {
  if (size > SLAB_MAX_SIZE || (size & 7)) return NULL;
  int i = slab_index[size >> 3];
  return i ? &slabs[i - 1] : NULL;
}

/* Fills slab_index from the classes' sizes (two classes of one size share the first),
   and each class's donors: the classes of larger blocks up to twice its size. */
static void slab_index_build(void) {
  memset(slab_index, 0, sizeof slab_index);
  for (int i = SLAB_CLASSES - 1; i >= 0; i--) {
    size_t size = slabs[i].size;
    if (size <= SLAB_MAX_SIZE && (size & 7) == 0) slab_index[size >> 3] = (uint8_t)(i + 1);
  }
  for (int i = 0; i < SLAB_CLASSES; i++) {
    slab *s = &slabs[i];
    int n = 0;
    memset(s->donors, 0, sizeof s->donors);
    for (size_t size = s->size + 8; size <= 2 * s->size && size <= SLAB_MAX_SIZE; size += 8)
      if (slab_index[size >> 3] && n < SLAB_CLASSES - 1) s->donors[n++] = slab_index[size >> 3];
  }
}

/* Every growth of the heap goes through here, so that the new part is populated. */
static void *heap_realloc(void *ptr, size_t nsize) {
  void *p = realloc(ptr, nsize);
  uintptr_t top = (uintptr_t)sbrk(0); /* no system call: glibc's cached break */
  if (top != seen_top) heap_grown(top);
  return p;
}

static void slab_free(slab *s, void *p);

static void *slab_alloc(slab *s) {
  void *p = s->free;
  if (p != NULL) {
    s->free = *(void **)p;
    return p;
  }
  if (s->end - s->next < (ptrdiff_t)s->size) {
    /* before new memory, a block another class freed, at most twice the size: coroutine
       objects die young in bursts, and their blocks would otherwise wait for the next
       burst while the threads made meanwhile take new chunks for their CallInfos */
    for (const uint8_t *d = s->donors; *d; d++) {
      slab *o = &slabs[*d - 1];
      if ((p = o->free) != NULL) {
        o->free = *(void **)p;
        /* a block of two of this class's (a coroutine object's): the second joins the list */
        if (o->size >= 2 * s->size) slab_free(s, (char *)p + s->size);
        return p;
      }
    }
    /* never freed: its blocks serve the next threads; through heap_realloc, as the
       heap's growth for it is populated too (spawn's page faults doubled when coroutine
       objects took slabs from plain malloc's growth, then advised for huge pages) */
    char *chunk = heap_realloc(NULL, SLAB_CHUNK);
    if (chunk == NULL) return NULL;
    s->next = chunk;
    s->end = chunk + SLAB_CHUNK;
  }
  p = s->next;
  s->next += s->size;
  return p;
}

static void slab_free(slab *s, void *p) {
  *(void **)p = s->free;
  s->free = p;
}

/* Every case: a new block, a block freed or resized, slabs on or off. */
__attribute__((noinline)) static void *heap_alloc_any(void *ptr, size_t osize, size_t nsize) {
  if (!slabs_on) {
    if (nsize == 0) {
      free(ptr);
      return NULL;
    }
    return heap_realloc(ptr, nsize);
  }
  slab *from = ptr ? slab_of(osize) : NULL; /* for a new block, osize is its Lua type */
  slab *to = nsize ? slab_of(nsize) : NULL;
  if (from == NULL && to == NULL) {
    if (nsize == 0) {
      free(ptr);
      return NULL;
    }
    return heap_realloc(ptr, nsize);
  }
  if (from == to) return ptr; /* the same size */
  void *p = NULL;
  if (nsize) {
    p = to ? slab_alloc(to) : heap_realloc(NULL, nsize);
    if (p == NULL) return NULL; /* Lua keeps the old block */
    if (ptr) memcpy(p, ptr, osize < nsize ? osize : nsize);
  }
  if (ptr) {
    if (from)
      slab_free(from, ptr);
    else
      free(ptr);
  }
  return p;
}

/* Lua's allocator. A new block of a slab's size and a slab's block freed, most of what a
   task's creation and first step ask (the Task, the coroutine object, the thread, its
   stack and CallInfos), are served here without a call: a function that also calls
   malloc, memcpy and free saves and restores registers on every call (~95 of a sleeper's
   ~320 instructions in heap_alloc, workload C's first steps). */
static void *heap_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  if (slabs_on) {
    if (ptr == NULL) { /* osize is the new object's Lua type */
      slab *s = slab_of(nsize);
      if (s != NULL) {
        void *p = s->free;
        if (p != NULL) {
          s->free = *(void **)p;
          return p;
        }
        if (s->end - s->next >= (ptrdiff_t)s->size) {
          p = s->next;
          s->next += s->size;
          return p;
        }
      }
    } else if (nsize == 0) {
      slab *s = slab_of(osize);
      if (s != NULL) {
        slab_free(s, ptr);
        return NULL;
      }
    }
  }
  return heap_alloc_any(ptr, osize, nsize);
}

/* Learns the size of a new object's block from Lua's allocation of it: Lua asks for
   it with osize = the object's type (LUA_TTHREAD for a lua_State with its extra space,
   LUA_TUSERDATA for a userdata: Lua's header and its user values). */
static int learn_type;
static size_t learnt;

static void *heap_learn(void *ud, void *ptr, size_t osize, size_t nsize) {
  if (ptr == NULL && osize == (size_t)learn_type && learnt == 0) learnt = nsize;
  return heap_alloc(ud, ptr, osize, nsize);
}

/* The size of the block of a userdata of `size` bytes with nuv user values. */
static size_t learn_userdata(lua_State *L, int nuv) {
  learn_type = LUA_TUSERDATA;
  learnt = 0;
  lua_newuserdatauv(L, 0, nuv);
  lua_pop(L, 1);
  return learnt;
}

/* AddressSanitizer watches every block: the slabs would hide theirs (make check). */
static int running_checked(void) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return 1;
#else
  return 0;
#endif
}

/* Gives L's allocations (from now on) to heap_alloc. Memory already allocated came from
   the same malloc, so either may free it. */
void vm_heap_install(lua_State *L) {
  mallopt(M_TOP_PAD, HEAP_GROWTH_PAD);
  mallopt(M_MMAP_THRESHOLD, HEAP_MMAP_THRESHOLD);
  seen_top = (uintptr_t)sbrk(0); /* what glibc has is touched already */
  filler.done = filler.want = seen_top;
  slabs_on = !running_checked();
  for (int i = 0; i < SLAB_CLASSES; i++) slabs[i].size = SIZE_MAX; /* none until learnt */
  lua_setallocf(L, heap_learn, NULL);
  learn_type = LUA_TTHREAD;
  learnt = 0;
  lua_newthread(L);
  lua_pop(L, 1);
  slabs[0].size = 64;            /* sizeof(CallInfo) in Lua 5.4 on 64 bits */
  slabs[1].size = (40 + 5) * 16; /* BASIC_STACK_SIZE + EXTRA_STACK slots */
  slabs[2].size = learnt;        /* the lua_State */
  slabs[3].size = learn_userdata(L, TUV_ARGS - 1) + sizeof(task);
  /* coroutine objects (await.c: fn, name, then the arguments or a sleep's delay): of no
     argument as they are (88 bytes), of one or two padded to two CallInfos */
  slabs[4].size = learn_userdata(L, 2) + sizeof(coro);
  slabs[5].size = 2 * slabs[0].size;
  slabs[6].size = learn_userdata(L, TUV_ARGS) + sizeof(task); /* a Task with an argument */
  slabs[7].size = (STACK_CUT_SLOTS + 5) * 16; /* a suspended task's stack (async/core/stack.c) */
  slab_index_build();
  for (int nuv = 3; nuv <= 4; nuv++) {
    size_t header = learn_userdata(L, nuv);
    if (slabs_on && header + sizeof(coro) <= slabs[5].size)
      coro_payload[nuv - 2] = (uint16_t)(slabs[5].size - header);
  }
  lua_setallocf(L, heap_alloc, NULL);
}

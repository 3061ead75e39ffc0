/* heap.c — the alua command's Lua allocator: glibc's malloc, with the heap it grows
   backed by transparent huge pages. A program that creates 100,000 tasks touches about
   200 MB of fresh heap, and with 4 KiB pages each first touch is a page fault: ~30,000
   per 200,000 tasks, a fifth of task creation's time (bench/RESULTS.md). With 2 MiB
   pages that is one fault per 2 MiB. glibc does the same with
   GLIBC_TUNABLES=glibc.malloc.hugetlb=1, but only the environment of a starting process
   can set that. Where THP is "madvise" (Debian's default) this asks for it; under
   "always" or "never" the advice changes nothing. */
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vm.h"

/* The heap grows in steps of at least this much (glibc's default is 128 KiB): a huge
   page needs a whole aligned 2 MiB inside the advised range when first touched. Only
   what is touched counts in RSS. */
#define HEAP_GROWTH_PAD (8 << 20)
/* Blocks below this come from the heap too, not from mmap (glibc's threshold starts at
   128 KiB): a large table (a list of 200,000 tasks, the registry) would otherwise grow in
   mappings of 4 KiB pages, a fault each. */
#define HEAP_MMAP_THRESHOLD (32 << 20)

static uintptr_t advised_top; /* the heap is advised up to here (the program break) */

/* brk extends the heap with a new mapping that has not had the advice: give it. */
static void heap_advise(uintptr_t top) {
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  uintptr_t from = advised_top & ~(page - 1);
  if (top > from) madvise((void *)from, top - from, MADV_HUGEPAGE);
  advised_top = top;
}

static void *heap_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  (void)osize;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  void *p = realloc(ptr, nsize);
  uintptr_t top = (uintptr_t)sbrk(0); /* no system call: glibc's cached break */
  if (top != advised_top) heap_advise(top);
  return p;
}

/* Gives L's allocations (from now on) to heap_alloc. Memory already allocated came from
   the same malloc, so either may free it. */
void vm_heap_install(lua_State *L) {
  mallopt(M_TOP_PAD, HEAP_GROWTH_PAD);
  mallopt(M_MMAP_THRESHOLD, HEAP_MMAP_THRESHOLD);
  advised_top = (uintptr_t)sbrk(0);
  heap_advise(advised_top);
  lua_setallocf(L, heap_alloc, NULL);
}

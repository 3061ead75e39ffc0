/* stream_fuzz.c — libFuzzer target for a stream's read buffer (async/readbuf.c): the input
   is a script of arrivals (the bytes a socket delivers, in the pieces the buffer makes
   room for) and reads (lines, records up to a separator, exact counts, any bytes), with
   limits changing on the way. A model holds what the buffer must hold: every read must
   take exactly the model's next bytes, every search must agree with a plain scan, and
   the buffer may never hold more than its target. ASan and UBSan watch the rest. */
/* (built with -D_GNU_SOURCE: memmem) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "readbuf.h"

enum { MAX_DELIVERED = 2 << 20 }; /* per input: keeps each run fast */

typedef struct {
  const uint8_t *p, *end; /* the script */
  const uint8_t *all;     /* the whole input: content for bulk arrivals */
  size_t all_len, cursor;
} script;

static int more(const script *s) { return s->p < s->end; }
static unsigned byte(script *s) { return s->p < s->end ? *s->p++ : 0; }
static unsigned word(script *s) { return byte(s) << 8 | byte(s); }

static readbuf b;
static char *model; /* what b must hold */
static size_t model_len, model_cap, limit, want, delivered;

#define CHECK(cond)                                                                           \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      fprintf(stderr, "stream_fuzz: %s (line %d): len %zu pos %zu cap %zu limit %zu want %zu\n", \
              #cond, __LINE__, b.len, b.pos, b.cap, limit, want);                             \
      abort();                                                                                \
    }                                                                                         \
  } while (0)

static size_t target(void) { return want > limit ? want : limit; }
static const char *held(void) { return b.buf ? b.buf + b.pos : ""; } /* (NULL + 0 is UB) */

static void model_append(const char *data, size_t n) {
  if (model_len + n > model_cap) {
    model_cap = (model_len + n) * 2;
    model = realloc(model, model_cap);
    CHECK(model != NULL);
  }
  memcpy(model + model_len, data, n);
  model_len += n;
}

/* What a reader takes: the model's next n bytes, then the buffer drops them. */
static void take(size_t n) {
  CHECK(n <= b.len && n <= model_len);
  if (n == 0) return;
  CHECK(memcmp(held(), model, n) == 0);
  readbuf_consume(&b, n, limit);
  memmove(model, model + n, model_len - n);
  model_len -= n;
  CHECK(b.len == model_len);
}

/* The socket delivers n bytes from src, in as many pieces as the buffer has room for
   (libuv asks for room before each read); it stops when the buffer is at its target. */
static void arrive(const char *src, size_t n) {
  size_t before = b.len;
  while (n > 0 && delivered < MAX_DELIVERED) {
    char *space;
    size_t room = readbuf_space(&b, target(), &space);
    CHECK(b.pos + b.len + room <= b.cap);
    if (room == 0) {
      CHECK(b.len >= target()); /* no room only when full (memory does not run out here) */
      return;
    }
    size_t k = n < room ? n : room;
    memcpy(space, src, k);
    b.len += k;
    /* an allocator's block has a byte past the capacity, where a buffer read full
       becomes a string in place puts its terminating zero (ASan: in the block) */
    if (b.alloc) b.buf[b.cap] = '\0';
    model_append(src, k);
    delivered += k;
    src += k;
    n -= k;
  }
  /* never past the target, unless it held more before (the limit was lowered) */
  CHECK(b.len <= (before > target() ? before : target()));
}

static void read_line(void) {
  size_t n = 0;
  const char *data = held();
  const char *nl = b.len ? memchr(data, '\n', b.len) : NULL;
  switch (readbuf_line(&b, limit, &n)) {
    case READBUF_FOUND:
      CHECK(nl != NULL && n == (size_t)(nl - data) + 1 && n <= limit);
      take(n);
      break;
    case READBUF_OVER:
      CHECK(nl ? n == (size_t)(nl - data) + 1 && n > limit : n == b.len && b.len >= limit);
      take(n);
      break;
    default:
      CHECK(nl == NULL && b.len < limit);
  }
}

static void read_until(script *s) {
  char sep[4];
  size_t seplen = 1 + byte(s) % 4, n = 0;
  for (size_t i = 0; i < seplen; i++) sep[i] = (char)byte(s);
  const char *data = held();
  const char *at = b.len ? memmem(data, b.len, sep, seplen) : NULL;
  switch (readbuf_until(&b, sep, seplen, limit, &n)) {
    case READBUF_FOUND:
      CHECK(at != NULL && n == (size_t)(at - data) + seplen && n <= limit);
      CHECK(memcmp(data + n - seplen, sep, seplen) == 0);
      take(n);
      break;
    case READBUF_OVER: /* LimitOverrunError: nothing is taken */
      CHECK(at ? n == (size_t)(at - data) && n + seplen > limit : n == b.len && b.len >= limit);
      break;
    default:
      CHECK(at == NULL && b.len < limit);
  }
}

/* A stream's buffers come from its Lua state's allocator, each block with room in front
   (streamlib.c makes a whole buffer a Lua string): this one keeps each block's size in
   that room and checks that every resize and free names it, as Lua's allocators may
   rely on. */
enum { FRONT = 24 };
static void *sized_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  if (ptr) CHECK(*(size_t *)ptr == osize);
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  CHECK(nsize > FRONT);
  size_t *p = realloc(ptr, nsize);
  if (p) *p = nsize;
  return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  script s = {data, data + size, data, size, 0};
  b.alloc = size % 2 ? sized_alloc : NULL; /* half the inputs: malloc's buffers */
  b.front = b.alloc ? FRONT : 0;
  limit = 1 + word(&s) % 2048;
  want = 0;
  delivered = 0;
  model_len = 0;
  while (more(&s)) {
    switch (byte(&s) % 9) {
      case 0: { /* a small piece, its bytes from the script */
        size_t n = 1 + byte(&s) % 64;
        if (n > (size_t)(s.end - s.p)) n = (size_t)(s.end - s.p);
        arrive((const char *)s.p, n);
        s.p += n;
        break;
      }
      case 1: { /* a bulk arrival: the input itself, over and over */
        size_t n = (size_t)word(&s) * 8;
        while (n > 0 && s.all_len > 0 && delivered < MAX_DELIVERED) {
          size_t k = s.all_len - s.cursor;
          if (k > n) k = n;
          size_t before = delivered;
          arrive((const char *)s.all + s.cursor, k);
          size_t got = delivered - before;
          s.cursor = (s.cursor + got) % s.all_len;
          n -= got;
          if (got < k) break; /* the buffer is full */
        }
        break;
      }
      case 2:
        want = 0;
        read_line();
        break;
      case 3:
        want = 0;
        read_until(&s);
        break;
      case 4: { /* readexactly: takes n once held; until then the buffer may grow to n */
        size_t n = 1 + (size_t)word(&s) * 4;
        if (b.len >= n) {
          want = 0;
          take(n);
        } else {
          want = n;
        }
        break;
      }
      case 5: { /* read(n) */
        size_t n = 1 + byte(&s);
        want = 0;
        take(n < b.len ? n : b.len);
        break;
      }
      case 6: /* set_limit */
        limit = 1 + (size_t)word(&s) * (byte(&s) % 4 ? 1 : 64);
        break;
      case 7: /* the end of the stream: the rest is taken whole */
        want = 0;
        take(b.len);
        break;
      default: /* a cancelled read: nothing taken, the target back to the limit */
        want = 0;
        break;
    }
  }
  take(b.len);
  readbuf_free(&b);
  return 0;
}

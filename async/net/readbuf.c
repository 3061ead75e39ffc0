/* readbuf.c — a stream's read buffer: compaction and growth bounded by the read
   target, lines and separated records found in place, consumption. */
#include <stdlib.h>
#include <string.h>

#include "readbuf.h"

/* An allocator's block for cap bytes of data: front bytes before them (a long string's
   header), and one after, the terminating zero the data needs to become a string. With
   front + cap only, a buffer the socket filled to its capacity grew by that byte as it
   became a string (streamlib.c's push_taken), a large block resized larger, which the
   allocator may answer by moving it: the copy the hand-off avoids
   (tests/c/read_handoff_test.c). */
size_t readbuf_block_size(const readbuf *b, size_t cap) { return b->front + cap + 1; }

/* Resizes buf (NULL: a new block) from cap to ncap bytes (0: frees it). */
static char *resize(const readbuf *b, char *buf, size_t cap, size_t ncap) {
  if (b->alloc == NULL) {
    if (ncap > 0) return realloc(buf, ncap);
    free(buf);
    return NULL;
  }
  char *block = buf ? buf - b->front : NULL;
  if (block == NULL && ncap == 0) return NULL;
  char *p = b->alloc(b->ud, block, block ? readbuf_block_size(b, cap) : 0,
                     ncap ? readbuf_block_size(b, ncap) : 0);
  return p ? p + b->front : NULL;
}

char *readbuf_block_new(const readbuf *b, size_t cap) { return resize(b, NULL, 0, cap); }

void readbuf_block_free(const readbuf *b, char *buf, size_t cap) { resize(b, buf, cap, 0); }

size_t readbuf_space(readbuf *b, size_t target, char **space) {
  size_t min_read = target < MIN_READ ? target : MIN_READ;
  if (b->len == 0) b->pos = 0;
  if (b->cap - b->pos - b->len < min_read && b->pos > 0) {
    memmove(b->buf, b->buf + b->pos, b->len);
    b->pos = 0;
  }
  if (b->cap - b->len < min_read && b->cap < target) {
    size_t cap = b->cap * 2 > b->len + READ_CHUNK ? b->cap * 2 : b->len + READ_CHUNK;
    if (cap > target) cap = target;
    char *p = resize(b, b->buf, b->cap, cap);
    if (p) {
      b->buf = p;
      b->cap = cap;
    }
  }
  size_t room = b->cap - b->pos - b->len;
  if (b->len + room > target) room = target > b->len ? target - b->len : 0;
  *space = b->buf ? b->buf + b->pos + b->len : NULL;
  return room;
}

void readbuf_consume(readbuf *b, size_t n, size_t limit) {
  b->pos += n;
  b->len -= n;
  if (b->len == 0) {
    b->pos = 0;
    if (b->cap > limit && b->cap > READ_CHUNK) { /* grown for a large exact read */
      resize(b, b->buf, b->cap, 0);
      b->buf = NULL;
      b->cap = 0;
    }
  }
}

int readbuf_line(const readbuf *b, size_t limit, size_t *n) {
  if (b->len == 0) return READBUF_MORE;
  const char *p = b->buf + b->pos;
  const char *nl = memchr(p, '\n', b->len);
  if (nl) {
    *n = (size_t)(nl - p) + 1;
    return *n > limit ? READBUF_OVER : READBUF_FOUND;
  }
  if (b->len >= limit) {
    *n = b->len;
    return READBUF_OVER;
  }
  return READBUF_MORE;
}

int readbuf_until(const readbuf *b, const char *sep, size_t seplen, size_t limit, size_t *n) {
  if (b->len == 0) return READBUF_MORE;
  const char *p = b->buf + b->pos;
  const char *at = memmem(p, b->len, sep, seplen);
  if (at) {
    *n = (size_t)(at - p) + seplen;
    if (*n <= limit) return READBUF_FOUND;
    *n = (size_t)(at - p);
    return READBUF_OVER;
  }
  if (b->len >= limit) {
    *n = b->len;
    return READBUF_OVER;
  }
  return READBUF_MORE;
}

void readbuf_free(readbuf *b) {
  resize(b, b->buf, b->cap, 0);
  b->buf = NULL;
  b->pos = b->len = b->cap = 0;
}

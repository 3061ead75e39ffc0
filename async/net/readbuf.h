/* readbuf.h — a stream's read buffer on its own: room for the socket to fill, lines,
   separated records and consumption. Plain C (no Lua, no libuv): the fuzz target
   tests/fuzz/stream_fuzz.c drives it alone. */
#ifndef ALUA_ASYNC_READBUF_H
#define ALUA_ASYNC_READBUF_H

#include <stddef.h>

enum { READ_CHUNK = 64 * 1024, MIN_READ = 16 * 1024 };

/* Where a buffer's memory comes from: an allocator with lua_Alloc's contract (a stream's
   is its Lua state's, so that a buffer can become a Lua string without a copy,
   streamlib.c), each block starting `front` bytes before buf and ending a byte after its
   capacity. alloc NULL: malloc, front 0, the capacity alone. */
typedef void *(*readbuf_alloc_fn)(void *ud, void *ptr, size_t osize, size_t nsize);

typedef struct readbuf {
  char *buf; /* the data is buf[pos, pos + len) */
  size_t pos, len, cap;
  readbuf_alloc_fn alloc;
  void *ud;
  size_t front;
} readbuf;

/* A block for cap bytes from b's allocator (of readbuf_block_size bytes: front + cap + 1,
   room for a string's terminating zero), returned as its buf part (NULL if memory is
   short), and the freeing of one. */
size_t readbuf_block_size(const readbuf *b, size_t cap);
char *readbuf_block_new(const readbuf *b, size_t cap);
void readbuf_block_free(const readbuf *b, char *buf, size_t cap);

/* Outcomes of a search in the buffer. */
enum { READBUF_MORE, READBUF_FOUND, READBUF_OVER };

/* Makes room after the data, compacting the buffer and growing it towards `target`
   bytes held in all, and points *space at it: returns how much may be filled there
   (0 if target bytes are held already, or memory is short). */
size_t readbuf_space(readbuf *b, size_t target, char **space);

/* Drops the first n bytes; an emptied buffer grown past `limit` for a large exact read
   is freed. */
void readbuf_consume(readbuf *b, size_t n, size_t limit);

/* A line ending with "\n": FOUND with *n its length (the "\n" included) if it is at
   most `limit` long; OVER with *n the bytes to drop (that longer line, or everything
   held once `limit` bytes hold no "\n"); MORE: wait for more. */
int readbuf_line(const readbuf *b, size_t limit, size_t *n);

/* Data up to and including the first `sep` (seplen > 0): FOUND with *n its length if it
   is at most `limit` long; OVER with *n the bytes before the separator (or everything
   held once `limit` bytes hold none), to drop nothing; MORE: wait for more. */
int readbuf_until(const readbuf *b, const char *sep, size_t seplen, size_t limit, size_t *n);

void readbuf_free(readbuf *b);

#endif

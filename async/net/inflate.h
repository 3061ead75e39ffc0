/* inflate.h — gzip and deflate content codings undone piece by piece with zlib. Plain C
   (no Lua, no libuv): tests/fuzz/http_response_fuzz.c drives it with the parser. */
#ifndef ALUA_ASYNC_INFLATE_H
#define ALUA_ASYNC_INFLATE_H

#include <stddef.h>
#include <zlib.h>

typedef struct inflater {
  z_stream z;
  int gzip;               /* else deflate: zlib-wrapped, or raw as some servers send it */
  int started;            /* zlib's state exists */
  int ended;              /* the compressed stream is complete */
  unsigned char first[2]; /* deflate: its first bytes, until both came */
  int nfirst;
  char *out; /* what the last inflate_feed produced */
  size_t out_len, out_cap;
  size_t max_total; /* the most bytes the whole body may decompress to; 0: no limit */
  size_t total;     /* bytes produced so far */
  int too_large;    /* failed because the body went over max_total */
  const char *error;
} inflater;

/* max_total: the most bytes the body may decompress to (a compression bomb cannot make
   more than that, nor use more memory than about that); 0 for no limit. */
void inflate_init(inflater *f, int gzip, size_t max_total);

/* Decompresses the next piece into f->out (replacing what was there): 0, or -1 with
   f->error set (corrupt data, memory, too_large; f->out then holds what came before the
   fault: for too_large, the body's first max_total bytes in all). */
int inflate_feed(inflater *f, const char *data, size_t len);

void inflate_free(inflater *f);

#endif

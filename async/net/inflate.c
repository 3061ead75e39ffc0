/* inflate.c — gzip/deflate bodies undone as they arrive (see inflate.h). The outcome
   never depends on how the body was split into pieces: "deflate" is told from raw
   deflate by its first two bytes, held until both came, and a gzip member that ends
   is followed by another only if more bytes come. */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inflate.h"

enum { OUT_STEP = 16 * 1024 };

void inflate_init(inflater *f, int gzip, size_t max_total) {
  memset(f, 0, sizeof *f);
  f->gzip = gzip;
  f->max_total = max_total;
}

static int start(inflater *f, int window_bits) {
  memset(&f->z, 0, sizeof f->z);
  f->started = inflateInit2(&f->z, window_bits) == Z_OK;
  if (!f->started) f->error = "zlib could not start (out of memory)";
  return f->started;
}

/* Runs zlib over data, appending to f->out; Z_OK, Z_STREAM_END or an error code. */
static int run(inflater *f, const char *data, size_t len) {
  f->z.next_in = (Bytef *)data;
  f->z.avail_in = (uInt)len;
  for (;;) {
    if (f->ended) {
      if (f->z.avail_in == 0) return Z_STREAM_END;
      if (!f->gzip) return Z_STREAM_END; /* bytes after a deflate stream are ignored */
      /* gzip allows several members one after the other */
      if (inflateReset(&f->z) != Z_OK) return Z_STREAM_ERROR;
      f->ended = 0;
    }
    /* with a limit, at most one byte past it is made: enough to know the body is over */
    size_t left = f->max_total ? f->max_total + 1 - f->total : SIZE_MAX;
    if (f->out_cap - f->out_len < OUT_STEP && f->out_cap - f->out_len < left) {
      size_t ncap = f->out_cap ? f->out_cap * 2 : 4 * OUT_STEP;
      if (ncap - f->out_len > left) ncap = f->out_len + left;
      if (ncap > f->out_cap) {
        char *nout = realloc(f->out, ncap);
        if (nout == NULL) return Z_MEM_ERROR;
        f->out = nout;
        f->out_cap = ncap;
      }
    }
    size_t room = f->out_cap - f->out_len;
    if (room > left) room = left;
    if (room > UINT_MAX) room = UINT_MAX;
    f->z.next_out = (Bytef *)f->out + f->out_len;
    f->z.avail_out = (uInt)room;
    int rc = inflate(&f->z, Z_NO_FLUSH);
    size_t made = room - f->z.avail_out;
    f->out_len += made;
    f->total += made;
    if (f->max_total && f->total > f->max_total) {
      /* what is handed out stops at the limit, however the body was split */
      f->out_len -= f->total - f->max_total;
      f->total = f->max_total;
      f->too_large = 1;
      return Z_DATA_ERROR;
    }
    if (rc == Z_STREAM_END) {
      f->ended = 1;
      continue;
    }
    if (rc == Z_BUF_ERROR) return Z_OK; /* all input taken, no progress left to make */
    if (rc != Z_OK) return rc;
    if (f->z.avail_in == 0 && f->z.avail_out > 0) return Z_OK;
  }
}

/* A zlib header: compression method 8 and a check value making it a multiple of 31. */
static int zlib_header(const unsigned char *b) {
  return (b[0] & 0x0f) == 8 && ((b[0] << 8) | b[1]) % 31 == 0;
}

int inflate_feed(inflater *f, const char *data, size_t len) {
  f->out_len = 0;
  if (f->error) return -1;
  if (len == 0) return 0;
  if (!f->started && f->gzip && !start(f, 16 + MAX_WBITS)) return -1;
  int rc = Z_OK;
  if (!f->started) {
    /* "deflate" is meant to be zlib-wrapped; some servers send it raw */
    while (f->nfirst < 2 && len > 0) {
      f->first[f->nfirst++] = (unsigned char)*data++;
      len--;
    }
    if (f->nfirst < 2) return 0;
    if (!start(f, zlib_header(f->first) ? MAX_WBITS : -MAX_WBITS)) return -1;
    rc = run(f, (const char *)f->first, 2);
  }
  /* run() appends: the first bytes' output stays in front of the rest's */
  if (rc == Z_OK || rc == Z_STREAM_END) rc = run(f, data, len);
  if (rc == Z_OK || rc == Z_STREAM_END) return 0;
  f->error = f->too_large        ? "the body decompresses to more than the limit"
             : rc == Z_MEM_ERROR ? "out of memory"
             : f->z.msg          ? f->z.msg
                                 : "corrupt compressed data";
  return -1;
}

void inflate_free(inflater *f) {
  if (f->started) inflateEnd(&f->z);
  f->started = 0;
  free(f->out);
  f->out = NULL;
  f->out_cap = f->out_len = 0;
}

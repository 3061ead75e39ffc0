/* http_fuzz.c — libFuzzer targets for the HTTP parser (async/net/http_parse.c on llhttp),
   built twice: http_request_fuzz (a server's request path: pipelined requests) and, with
   -DFUZZ_RESPONSE, http_response_fuzz (a client's response path: HEAD responses without
   body, bodies to the end of the stream, gzip/deflate decoding with async/net/inflate.c).
   The input is a few control bytes, then the bytes a peer sends. They are parsed twice:
   in one piece, in random pieces (as reads split them), and in random pieces gathered in
   a buffer the parser reads straight out of, as the server does (after each event
   http_parse_unfeed gives what it took, the rest is fed again with what follows); the
   transcripts (each
   message's head and body, in order, and how parsing ended) must be identical, so a
   split can never move bytes from one message's body to another's. Events must come in
   order (head, body pieces, end), a body must match its content-length, and every
   header span must lie inside the head. ASan and UBSan watch the rest. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_parse.h"
#include "inflate.h"

/* the inflater's limit on a decompressed body */
#define FUZZ_INFLATE_MAX (64 * 1024)

#define CHECK(cond)                                                               \
  do {                                                                            \
    if (!(cond)) {                                                                \
      fprintf(stderr, "http_fuzz: %s (line %d)\n", #cond, __LINE__);              \
      abort();                                                                    \
    }                                                                             \
  } while (0)

typedef struct transcript {
  char *buf;
  size_t len, cap;
} transcript;

static void put(transcript *t, const void *data, size_t n) {
  if (n == 0) return;
  if (t->len + n > t->cap) {
    size_t ncap = t->cap ? t->cap * 2 : 4096;
    while (ncap < t->len + n) ncap *= 2;
    t->buf = realloc(t->buf, ncap);
    CHECK(t->buf != NULL);
    t->cap = ncap;
  }
  memcpy(t->buf + t->len, data, n);
  t->len += n;
}

static int has_header(const http_parse *p, const char *name, const char *value) {
  for (size_t i = 0; i < p->nheaders; i++) {
    const hp_header *h = &p->headers[i];
    if (h->name.len == strlen(name) && strncasecmp(p->head + h->name.off, name, h->name.len) == 0 &&
        h->value.len == strlen(value) && strncasecmp(p->head + h->value.off, value, h->value.len) == 0)
      return 1;
  }
  return 0;
}

typedef struct run_state {
  transcript body, inflated; /* the current message's, as pieces came */
  int in_message; /* a head was given, its end not yet */
  uint64_t body_bytes;
  unsigned messages;
  inflater inf;
  int inflating, inflate_failed;
} run_state;

/* The body of the message that ended (and what it decompressed to), however split. */
static void flush_body(run_state *st, transcript *t) {
  put(t, &st->body.len, sizeof st->body.len);
  put(t, st->body.buf, st->body.len);
  put(t, &st->inflated.len, sizeof st->inflated.len);
  put(t, st->inflated.buf, st->inflated.len);
  st->body.len = st->inflated.len = 0;
}

/* Records one event; returns 0 once parsing is over (an error). */
static int record(http_parse *p, int ev, run_state *st, transcript *t, uint8_t flags) {
  switch (ev) {
    case HP_HEAD: {
      CHECK(!st->in_message);
      st->in_message = 1;
      st->body_bytes = 0;
      put(t, "H", 1);
      CHECK(p->url.off + p->url.len <= p->head_len || p->url.len == 0);
      CHECK(p->reason.off + p->reason.len <= p->head_len || p->reason.len == 0);
      put(t, p->head, p->head_len);
      for (size_t i = 0; i < p->nheaders; i++) {
        const hp_header *h = &p->headers[i];
        CHECK(h->name.len == 0 || h->name.off + h->name.len <= p->head_len);
        CHECK(h->value.len == 0 || h->value.off + h->value.len <= p->head_len);
        put(t, &h->name, sizeof h->name);
        put(t, &h->value, sizeof h->value);
      }
      CHECK(p->head_len <= p->max_head);
      put(t, &p->head_keep_alive, sizeof p->head_keep_alive);
      if (p->upgrade) CHECK(!p->head_keep_alive);
      (void)flags;
#ifdef FUZZ_RESPONSE
      st->inflating = (flags & 4) && !p->skip_body &&
                      (has_header(p, "content-encoding", "gzip") || has_header(p, "content-encoding", "deflate"));
      /* a limit small enough that a random body goes over it now and then */
      if (st->inflating) inflate_init(&st->inf, has_header(p, "content-encoding", "gzip"), FUZZ_INFLATE_MAX);
      st->inflate_failed = 0;
#else
      (void)has_header;
#endif
      return 1;
    }
    case HP_BODY:
      CHECK(st->in_message);
      CHECK(p->body_len > 0);
      st->body_bytes += p->body_len;
      put(&st->body, p->body, p->body_len);
      if (st->inflating) {
        inflate_feed(&st->inf, p->body, p->body_len);
        put(&st->inflated, st->inf.out, st->inf.out_len);
        if (st->inf.error && !st->inflate_failed) put(&st->inflated, "!", 1);
        st->inflate_failed = st->inf.error != NULL;
      }
      return 1;
    case HP_DONE:
      CHECK(st->in_message);
      /* CONNECT and upgrades have no body whatever their length says */
      if (p->has_length && !p->skip_body && !p->upgrade) CHECK(st->body_bytes == p->content_length);
      if (p->skip_body) CHECK(st->body_bytes == 0);
      st->in_message = 0;
      st->messages++;
      put(t, "D", 1);
      put(t, &p->keep_alive, sizeof p->keep_alive);
      flush_body(st, t);
      if (st->inflating) {
        inflate_free(&st->inf);
        st->inflating = 0;
      }
      return 1;
    case HP_ERROR:
      CHECK(p->error != 0);
      /* which error may depend on the split: a limit is checked as pieces of a field
         arrive, a bad byte later in the same field when llhttp scans it */
      CHECK(http_parse_error_name(p)[0] != 0);
      put(t, "E", 1);
      flush_body(st, t);
      return 0;
    default:
      return 1;
  }
}

/* Parses data fed in pieces (ends[] are the pieces' ends); the transcript in t.
   buffered: the pieces are appended to a buffer the parser reads straight out of. */
static void parse(const uint8_t *data, size_t len, const size_t *ends, size_t nends, uint8_t flags,
                  size_t max_head, transcript *t, int buffered) {
  http_parse p;
  run_state st;
  memset(&st, 0, sizeof st);
#ifdef FUZZ_RESPONSE
  http_parse_init(&p, HTTP_RESPONSE, max_head, max_head);
#else
  http_parse_init(&p, HTTP_REQUEST, max_head, max_head / 2 + 1);
#endif
  size_t start = 0;
  int going = 1;
  transcript buf = {NULL, 0, 0};
  size_t taken = 0; /* buffered: buf.buf[taken, buf.len) is not parsed yet */
  for (size_t k = 0; k <= nends && going; k++) {
    size_t end = k < nends ? ends[k] : len;
    if (end < start) continue;
    if (buffered)
      put(&buf, data + start, end - start);
    else
      http_parse_feed(&p, (const char *)data + start, end - start);
    for (;;) {
      /* a response answers HEAD when the message's number has its bit set in flags */
      p.skip_body = (flags & 1) && (st.messages % 2 == 1);
      int ev = http_parse_next(&p);
      if (buffered) {
        size_t used = http_parse_unfeed(&p);
        CHECK(used <= buf.len - taken);
        taken += used;
        if (ev == HP_MORE && taken < buf.len) {
          http_parse_feed(&p, buf.buf + taken, buf.len - taken);
          continue;
        }
      }
      if (ev == HP_MORE) break;
      if (!record(&p, ev, &st, t, flags)) {
        going = 0;
        break;
      }
    }
    start = end;
  }
  free(buf.buf);
  if (going && (flags & 2)) {
    /* the peer closes: a body read to the end ends, one cut short fails */
    int ev = http_parse_finish(&p);
    while (going && ev != HP_MORE) {
      going = record(&p, ev, &st, t, flags);
      ev = going ? http_parse_next(&p) : HP_MORE;
    }
  }
  if (st.inflating) inflate_free(&st.inf);
  free(st.body.buf);
  free(st.inflated.buf);
  http_parse_free(&p);
}

static transcript whole, split;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3) return 0;
  uint8_t flags = data[0];
  size_t max_head = 64 + (size_t)data[1] * 64;
  unsigned seed = data[2];
  data += 3;
  size -= 3;

  size_t ends[64], nends = 0;
  size_t pos = 0;
  while (nends < 64 && size > 0) {
    seed = seed * 1103515245u + 12345u;
    pos += 1 + (seed >> 16) % 97;
    if (pos >= size) break;
    ends[nends++] = pos;
  }
  whole.len = split.len = 0;
  parse(data, size, NULL, 0, flags, max_head, &whole, 0);
  parse(data, size, ends, nends, flags, max_head, &split, 0);
  CHECK(whole.len == split.len);
  CHECK(whole.len == 0 || memcmp(whole.buf, split.buf, whole.len) == 0);
  split.len = 0;
  parse(data, size, ends, nends, flags, max_head, &split, 1);
  CHECK(whole.len == split.len);
  CHECK(whole.len == 0 || memcmp(whole.buf, split.buf, whole.len) == 0);
  return 0;
}

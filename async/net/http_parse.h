/* http_parse.h — HTTP/1.x messages out of a byte stream, on llhttp (Debian's node-llhttp):
   one message at a time (pipelined messages wait until the previous one is taken), its
   head collected under a size limit, its body handed out in pieces. Plain C (no Lua, no
   libuv): the fuzz targets tests/fuzz/http_*_fuzz.c drive it alone. */
#ifndef ALUA_ASYNC_HTTP_PARSE_H
#define ALUA_ASYNC_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include <llhttp.h>

/* What http_parse_next found. */
enum { HP_MORE, HP_HEAD, HP_BODY, HP_DONE, HP_ERROR };

/* Why a message was refused, beyond llhttp's own errors. */
enum { HP_OK, HP_HEAD_TOO_LARGE, HP_URL_TOO_LONG, HP_NO_MEMORY };

typedef struct hp_span {
  size_t off, len; /* in head */
} hp_span;

typedef struct hp_header {
  hp_span name, value; /* the name in lower case */
} hp_header;

typedef struct http_parse {
  llhttp_t ll;
  size_t max_head, max_url; /* bytes of head (target, reason, names, values); of target */

  const char *in; /* the bytes fed: in[pos, len) are still to parse */
  size_t in_len, pos;

  /* the current message's head */
  char *head;
  size_t head_len, head_cap;
  hp_span url, reason;
  hp_header *headers;
  size_t nheaders, headers_cap;
  int in_value;        /* the last header piece was a value: a name piece starts a header */
  int head_complete;   /* header pieces after it are trailers, dropped */
  int head_keep_alive; /* as the head says (HP_HEAD) */
  int keep_alive;      /* once the message ended (HP_DONE): trailers may change it */
  int chunked, has_length, upgrade;
  uint64_t content_length;

  char *body; /* body bytes parsed since the last HP_BODY */
  size_t body_len, body_cap;

  int skip_body; /* a response to HEAD: no body whatever its head says */
  int ready_head, ready_done, body_given;
  int limit; /* HP_HEAD_TOO_LARGE, ... once refused */
  int error; /* llhttp's errno once failed (HPE_USER for `limit`) */
  const char *error_reason;
} http_parse;

/* kind: HTTP_REQUEST or HTTP_RESPONSE. */
void http_parse_init(http_parse *p, llhttp_type_t kind, size_t max_head, size_t max_url);
void http_parse_free(http_parse *p);

/* Hands over the next bytes (kept by the caller until http_parse_next returns HP_MORE again);
   only when http_parse_next has returned HP_MORE. */
void http_parse_feed(http_parse *p, const char *data, size_t len);

/* The next event: HP_HEAD (the head is in p), HP_BODY (p->body, p->body_len), HP_DONE
   (the message ended; the next one may follow), HP_ERROR (for good: p->error,
   p->limit, p->error_reason) or HP_MORE (feed more). */
int http_parse_next(http_parse *p);

/* For a caller parsing straight out of a buffer that may move or grow between calls
   (a stream's): returns how many of the bytes fed were parsed (to drop from the buffer)
   and forgets the rest, which the caller feeds again with what follows. Any time after
   http_parse_next. */
size_t http_parse_unfeed(http_parse *p);

/* The end of the stream: HP_DONE if it ended a message that runs to the end of the
   stream, HP_MORE if no message was begun, HP_ERROR if one was cut short. */
int http_parse_finish(http_parse *p);

/* "HEADER_TOO_LARGE", "URL_TOO_LONG", or llhttp's errno name without "HPE_". */
const char *http_parse_error_name(const http_parse *p);

#endif

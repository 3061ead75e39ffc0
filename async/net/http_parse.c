/* http_parse.c — HTTP/1.x messages on llhttp, one at a time (see http_parse.h). llhttp
   calls back with pieces of the head and body as it scans; the pieces are copied (a
   piece may end a read before its field does), the head under its limit. Parsing pauses
   at each message's end, so a pipelined next message stays unparsed until this one has
   been taken. */
#include <stdlib.h>
#include <string.h>

#include "http_parse.h"

static http_parse *of(llhttp_t *ll) { return (http_parse *)ll->data; }

static int refuse(http_parse *p, int why) {
  p->limit = why;
  return -1;
}

/* Appends to a growing buffer; 0 when memory is short. */
static int append(char **buf, size_t *len, size_t *cap, const char *at, size_t n) {
  if (n == 0) return 1;
  if (*len + n > *cap) {
    size_t ncap = *cap ? *cap : 256;
    while (ncap < *len + n) ncap *= 2;
    char *nbuf = realloc(*buf, ncap);
    if (nbuf == NULL) return 0;
    *buf = nbuf;
    *cap = ncap;
  }
  memcpy(*buf + *len, at, n);
  *len += n;
  return 1;
}

static int head_append(http_parse *p, hp_span *span, const char *at, size_t n) {
  if (p->head_len + n > p->max_head) return refuse(p, HP_HEAD_TOO_LARGE);
  if (span->len == 0) span->off = p->head_len;
  if (!append(&p->head, &p->head_len, &p->head_cap, at, n)) return refuse(p, HP_NO_MEMORY);
  span->len += n;
  return 0;
}

static int on_message_begin(llhttp_t *ll) {
  http_parse *p = of(ll);
  p->head_len = 0;
  p->url.len = p->reason.len = 0;
  p->nheaders = 0;
  p->in_value = 1;
  p->head_complete = 0;
  p->head_keep_alive = p->keep_alive = p->chunked = p->has_length = p->upgrade = 0;
  p->content_length = 0;
  return 0;
}

static int on_url(llhttp_t *ll, const char *at, size_t n) {
  http_parse *p = of(ll);
  if (p->url.len + n > p->max_url) return refuse(p, HP_URL_TOO_LONG);
  return head_append(p, &p->url, at, n);
}

static int on_status(llhttp_t *ll, const char *at, size_t n) {
  return head_append(of(ll), &of(ll)->reason, at, n);
}

static int on_header_field(llhttp_t *ll, const char *at, size_t n) {
  http_parse *p = of(ll);
  if (p->head_complete) return 0; /* a trailer */
  if (p->in_value) {
    if (p->nheaders == p->headers_cap) {
      size_t ncap = p->headers_cap ? p->headers_cap * 2 : 16;
      hp_header *nh = realloc(p->headers, ncap * sizeof *nh);
      if (nh == NULL) return refuse(p, HP_NO_MEMORY);
      p->headers = nh;
      p->headers_cap = ncap;
    }
    memset(&p->headers[p->nheaders++], 0, sizeof(hp_header));
    p->in_value = 0;
  }
  hp_span *name = &p->headers[p->nheaders - 1].name;
  if (head_append(p, name, at, n) != 0) return -1;
  if (n == 0) return 0;
  /* names are case-insensitive: kept in lower case, as Lua sees them */
  for (char *c = p->head + name->off + name->len - n, *end = c + n; c < end; c++)
    if (*c >= 'A' && *c <= 'Z') *c = (char)(*c + 32);
  return 0;
}

static int on_header_value(llhttp_t *ll, const char *at, size_t n) {
  http_parse *p = of(ll);
  if (p->head_complete) return 0;
  p->in_value = 1;
  return head_append(p, &p->headers[p->nheaders - 1].value, at, n);
}

static int on_headers_complete(llhttp_t *ll) {
  http_parse *p = of(ll);
  p->head_complete = 1;
  p->ready_head = 1;
  p->keep_alive = llhttp_should_keep_alive(ll);
  p->chunked = (ll->flags & F_CHUNKED) != 0;
  p->has_length = (ll->flags & F_CONTENT_LENGTH) != 0;
  p->content_length = ll->content_length;
  p->upgrade = ll->upgrade;
  /* CONNECT or an Upgrade: alua does not speak what follows, so after this message the
     connection ends (and its bytes are never read as another request) */
  if (p->upgrade) p->keep_alive = 0;
  p->head_keep_alive = p->keep_alive;
  /* a value's trailing blanks are not part of it (RFC 9110 5.5); llhttp keeps them */
  for (size_t i = 0; i < p->nheaders; i++) {
    hp_span *v = &p->headers[i].value;
    while (v->len && (p->head[v->off + v->len - 1] == ' ' || p->head[v->off + v->len - 1] == '\t'))
      v->len--;
  }
  return p->skip_body ? 1 : 0;
}

static int on_body(llhttp_t *ll, const char *at, size_t n) {
  http_parse *p = of(ll);
  return append(&p->body, &p->body_len, &p->body_cap, at, n) ? 0 : refuse(p, HP_NO_MEMORY);
}

static int on_message_complete(llhttp_t *ll) {
  http_parse *p = of(ll);
  p->ready_done = 1;
  /* should_keep_alive is final only now (a response read to the end of the stream) */
  p->keep_alive = p->keep_alive && !p->upgrade && llhttp_should_keep_alive(ll);
  return HPE_PAUSED;
}

static const llhttp_settings_t settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_status = on_status,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void http_parse_init(http_parse *p, llhttp_type_t kind, size_t max_head, size_t max_url) {
  memset(p, 0, sizeof *p);
  llhttp_init(&p->ll, kind, &settings);
  p->ll.data = p;
  p->max_head = max_head;
  p->max_url = max_url;
}

void http_parse_free(http_parse *p) {
  free(p->head);
  free(p->headers);
  free(p->body);
  p->head = p->body = NULL;
  p->headers = NULL;
  p->head_cap = p->headers_cap = p->body_cap = 0;
}

void http_parse_feed(http_parse *p, const char *data, size_t len) {
  p->in = data;
  p->in_len = len;
  p->pos = 0;
}

static int fail(http_parse *p, llhttp_errno_t err) {
  p->error = err;
  p->error_reason = p->limit == HP_HEAD_TOO_LARGE ? "header block too large"
                    : p->limit == HP_URL_TOO_LONG ? "request target too long"
                    : p->limit == HP_NO_MEMORY    ? "out of memory"
                                                  : llhttp_get_error_reason(&p->ll);
  if (p->error_reason == NULL) p->error_reason = llhttp_errno_name(err);
  return HP_ERROR;
}

int http_parse_next(http_parse *p) {
  if (p->body_given) {
    p->body_len = 0;
    p->body_given = 0;
  }
  for (;;) {
    if (p->ready_head) {
      p->ready_head = 0;
      return HP_HEAD;
    }
    if (p->body_len) {
      p->body_given = 1;
      return HP_BODY;
    }
    if (p->ready_done) {
      p->ready_done = 0;
      return HP_DONE;
    }
    if (p->error) return HP_ERROR;
    if (p->pos >= p->in_len) return HP_MORE;
    const char *start = p->in + p->pos;
    llhttp_errno_t err = llhttp_execute(&p->ll, start, p->in_len - p->pos);
    if (err == HPE_OK) {
      p->pos = p->in_len;
    } else if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
      /* at a message's end: what follows is the next message (an upgrade alua does
         not speak is answered as a plain request) */
      p->pos = (size_t)(llhttp_get_error_pos(&p->ll) - p->in);
      if (err == HPE_PAUSED)
        llhttp_resume(&p->ll);
      else
        llhttp_resume_after_upgrade(&p->ll);
    } else {
      p->pos = p->in_len;
      fail(p, err);
    }
  }
}

size_t http_parse_unfeed(http_parse *p) {
  size_t used = p->pos;
  p->in = NULL;
  p->in_len = p->pos = 0;
  return used;
}

int http_parse_finish(http_parse *p) {
  if (p->error) return HP_ERROR;
  llhttp_errno_t err = llhttp_finish(&p->ll);
  if (err != HPE_OK && err != HPE_PAUSED) return fail(p, err);
  if (p->ready_done) {
    p->ready_done = 0;
    return HP_DONE;
  }
  return HP_MORE;
}

const char *http_parse_error_name(const http_parse *p) {
  if (p->limit == HP_HEAD_TOO_LARGE) return "HEADER_TOO_LARGE";
  if (p->limit == HP_URL_TOO_LONG) return "URL_TOO_LONG";
  if (p->limit == HP_NO_MEMORY) return "NO_MEMORY";
  const char *name = llhttp_errno_name((llhttp_errno_t)p->error);
  return strncmp(name, "HPE_", 4) == 0 ? name + 4 : name;
}

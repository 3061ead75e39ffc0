/* http_server.c — workload E's reference: a keep-alive HTTP/1.1 "hello" server in raw C
   on libuv. Requests are delimited by the blank line that ends their head (wrk sends no
   body); every complete request in a read gets the fixed response, written with
   uv_try_write and queued only for what the socket does not take at once.
   usage: http_server PORT [HOST] */
#include "common.h"

enum { BUF_SIZE = 65536 };

static const char RESPONSE[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";
#define RESPONSE_LEN (sizeof RESPONSE - 1)

typedef struct conn {
  uv_tcp_t tcp;
  size_t len;    /* bytes of an incomplete request head kept at the start of buf */
  char buf[BUF_SIZE];
  char out[BUF_SIZE];
} conn;

typedef struct wreq {
  uv_write_t req;
  char data[];
} wreq;

static void close_cb(uv_handle_t *h) { free(h); }

static void close_conn(uv_stream_t *s) {
  if (!uv_is_closing((uv_handle_t *)s)) uv_close((uv_handle_t *)s, close_cb);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  conn *c = (conn *)h;
  *buf = uv_buf_init(c->buf + c->len, BUF_SIZE - c->len);
}

static void write_cb(uv_write_t *req, int status) {
  (void)status;
  free(req);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  conn *c = (conn *)s;
  (void)buf;
  if (nread < 0) {
    close_conn(s);
    return;
  }
  size_t end = c->len + nread, start = 0, nout = 0;
  /* the head ends at the first "\r\n\r\n"; scan only where a new one can end */
  for (size_t i = c->len >= 3 ? c->len - 3 : 0; i + 4 <= end; i++) {
    if (c->buf[i] == '\r' && memcmp(c->buf + i, "\r\n\r\n", 4) == 0) {
      if (nout + RESPONSE_LEN > sizeof c->out) break;
      memcpy(c->out + nout, RESPONSE, RESPONSE_LEN);
      nout += RESPONSE_LEN;
      start = i + 4;
      i += 3;
    }
  }
  c->len = end - start;
  if (c->len == BUF_SIZE) { /* a head larger than the buffer: not ours to serve */
    close_conn(s);
    return;
  }
  if (c->len > 0 && start > 0) memmove(c->buf, c->buf + start, c->len);
  if (nout == 0) return;
  size_t off = 0;
  if (s->write_queue_size == 0) {
    uv_buf_t b = uv_buf_init(c->out, nout);
    int n = uv_try_write(s, &b, 1);
    if (n > 0) off = n;
  }
  if (off < nout) {
    wreq *w = malloc(sizeof *w + (nout - off));
    memcpy(w->data, c->out + off, nout - off);
    uv_buf_t b = uv_buf_init(w->data, nout - off);
    if (uv_write(&w->req, s, &b, 1, write_cb) < 0) {
      free(w);
      close_conn(s);
    }
  }
}

static void on_connection(uv_stream_t *server, int status) {
  if (status < 0) return;
  conn *c = malloc(sizeof *c);
  c->len = 0;
  uv_tcp_init(server->loop, &c->tcp);
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    close_conn((uv_stream_t *)&c->tcp);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read);
}

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 8080;
  const char *host = argc > 2 ? argv[2] : "127.0.0.1";
  uv_loop_t *loop = uv_default_loop();
  uv_tcp_t server;
  struct sockaddr_in addr;
  CHECK(uv_ip4_addr(host, port, &addr));
  CHECK(uv_tcp_init(loop, &server));
  CHECK(uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0));
  CHECK(uv_listen((uv_stream_t *)&server, 1024, on_connection));
  return uv_run(loop, UV_RUN_DEFAULT);
}

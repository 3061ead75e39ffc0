/* echo_server.c — workload D's reference: a TCP echo server in raw C on libuv. Each
   connection reads into its own 64 KiB buffer and writes back with uv_try_write; only
   what the socket does not take at once is copied into a queued write. Reading pauses
   while more than 1 MiB waits to be written.
   usage: echo_server PORT [HOST] */
#include "common.h"

enum { BUF_SIZE = 65536, HIGH_WATER = 1 << 20 };

typedef struct conn {
  uv_tcp_t tcp;
  int reading;
  char buf[BUF_SIZE];
} conn;

typedef struct wreq {
  uv_write_t req;
  char data[];
} wreq;

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void close_cb(uv_handle_t *h) { free(h); }

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  conn *c = (conn *)h;
  *buf = uv_buf_init(c->buf, BUF_SIZE);
}

static void write_cb(uv_write_t *req, int status) {
  conn *c = (conn *)req->handle;
  free(req);
  if (status < 0) return;
  if (!c->reading && c->tcp.write_queue_size < HIGH_WATER / 2) {
    c->reading = 1;
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read);
  }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  conn *c = (conn *)s;
  if (nread < 0) {
    if (!uv_is_closing((uv_handle_t *)s)) uv_close((uv_handle_t *)s, close_cb);
    return;
  }
  if (nread == 0) return;
  size_t off = 0;
  if (s->write_queue_size == 0) {
    uv_buf_t b = uv_buf_init(buf->base, nread);
    int n = uv_try_write(s, &b, 1);
    if (n > 0) off = n;
  }
  if (off < (size_t)nread) {
    size_t rest = nread - off;
    wreq *w = malloc(sizeof *w + rest);
    memcpy(w->data, buf->base + off, rest);
    uv_buf_t b = uv_buf_init(w->data, rest);
    if (uv_write(&w->req, s, &b, 1, write_cb) < 0) {
      free(w);
      if (!uv_is_closing((uv_handle_t *)s)) uv_close((uv_handle_t *)s, close_cb);
      return;
    }
    if (s->write_queue_size > HIGH_WATER) {
      uv_read_stop(s);
      c->reading = 0;
    }
  }
}

static void on_connection(uv_stream_t *server, int status) {
  if (status < 0) return;
  conn *c = malloc(sizeof *c);
  uv_tcp_init(server->loop, &c->tcp);
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    uv_close((uv_handle_t *)&c->tcp, close_cb);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  c->reading = 1;
  uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read);
}

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 8000;
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

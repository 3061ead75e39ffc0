/* http_close_client.c — workload L's floor: what a LuaSocket client's system calls cost
   with no Lua at all. C connections at once, N GETs in all, each on a new connection, as
   socket.http makes them: connect, the request line and the headers in two writes (as
   socket.http sends them), read until the head's Content-Length is complete, close. Its
   CPU per request (user + system) is what the kernel's connect, writes, reads and close
   cost on loopback plus libuv's minimum, the part any client pays.
     prints: requests=N failed=0 seconds=S req_per_s=R
   usage: http_close_client PORT [N [C]] */
#include "common.h"

#include <strings.h>

static const char LINE[] = "GET / HTTP/1.1\r\n";
static const char HEADERS[] =
    "user-agent: LuaSocket 3.1.0\r\nhost: 127.0.0.1\r\nconnection: close, TE\r\nte: trailers\r\n\r\n";

typedef struct conn {
  uv_tcp_t tcp;
  uv_connect_t creq;
  size_t got;
  char buf[4096];
} conn;

static struct sockaddr_in addr;
static long n_total, started, finished;
static uint64_t t0;

static void start(conn *c);

static void fail(const char *what, int err) {
  fprintf(stderr, "http_close_client: %s: %s\n", what, uv_strerror(err));
  exit(1);
}

static void close_cb(uv_handle_t *h) {
  conn *c = (conn *)h;
  if (++finished == n_total) {
    double s = (uv_hrtime() - t0) / 1e9;
    printf("requests=%ld failed=0 seconds=%.3f req_per_s=%.0f\n", finished, s, finished / s);
    fflush(stdout);
    exit(0);
  }
  if (started < n_total) start(c);
}

static void send_all(conn *c, const char *data, size_t len) {
  uv_buf_t b = uv_buf_init((char *)data, len);
  int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  if (n != (int)len) fail("write (short: the request is tiny)", n < 0 ? n : UV_EAGAIN);
}

/* Complete when the head has ended and Content-Length bytes of body followed it. */
static int complete(conn *c) {
  c->buf[c->got] = '\0';
  char *end = strstr(c->buf, "\r\n\r\n");
  if (!end) return 0;
  char *cl = strcasestr(c->buf, "\r\ncontent-length:");
  size_t body = cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
  return c->got >= (size_t)(end + 4 - c->buf) + body;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  conn *c = (conn *)h;
  *buf = uv_buf_init(c->buf + c->got, sizeof c->buf - 1 - c->got);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  conn *c = (conn *)s;
  if (nread == 0) return;
  if (nread < 0) fail("read (the server closed before the whole response)", (int)nread);
  c->got += nread;
  if (!complete(c)) {
    if (c->got == sizeof c->buf - 1) fail("read (response larger than 4 KiB)", UV_E2BIG);
    return;
  }
  uv_close((uv_handle_t *)&c->tcp, close_cb);
}

static void connect_cb(uv_connect_t *req, int status) {
  conn *c = req->data;
  if (status < 0) fail("connect", status);
  send_all(c, LINE, sizeof LINE - 1);
  send_all(c, HEADERS, sizeof HEADERS - 1);
  int rc = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
  if (rc < 0) fail("read_start", rc);
}

static void start(conn *c) {
  started++;
  c->got = 0;
  CHECK(uv_tcp_init(uv_default_loop(), &c->tcp));
  CHECK(uv_tcp_nodelay(&c->tcp, 1)); /* as alua's streams, socket.http's peers either way */
  c->creq.data = c;
  int rc = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&addr, connect_cb);
  if (rc < 0) fail("connect", rc);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: http_close_client PORT [N [C]]\n");
    return 2;
  }
  n_total = argc > 2 ? atol(argv[2]) : 1000;
  long nconns = argc > 3 ? atol(argv[3]) : 50;
  if (n_total < 1 || nconns < 1) {
    fprintf(stderr, "http_close_client: N and C must be positive\n");
    return 2;
  }
  CHECK(uv_ip4_addr("127.0.0.1", atoi(argv[1]), &addr));
  conn *all = calloc(nconns, sizeof *all);
  if (!all) return 1;
  t0 = uv_hrtime();
  for (long i = 0; i < nconns && started < n_total; i++) start(&all[i]);
  uv_run(uv_default_loop(), UV_RUN_DEFAULT);
  return 1;
}

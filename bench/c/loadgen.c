/* loadgen.c — workload D's load generator on libuv: CONNS connections to an echo server,
   each sending a SIZE-byte message and waiting for all of it to come back before sending
   the next (ping-pong, one message in flight per connection). Every echoed byte is
   checked. After WARMUP seconds the counters start; after SECONDS more it prints
     req_per_s=... mb_per_s=... p50_us=... p99_us=...
   (MB = 10^6 bytes of messages echoed; latency from the send to the last byte back).
   Given the server's pid it also prints cpu_us_per_req: the server's CPU time (user +
   system, all its threads, from /proc/PID/stat) over the same measured window, divided
   by the requests echoed in it, and user_us_per_req, its user part (the rest is the
   kernel's: the copies in and out of the socket, TCP, epoll).
   usage: loadgen HOST PORT CONNS SIZE SECONDS [WARMUP [SERVER_PID]] */
#include <unistd.h>

#include "common.h"

typedef struct conn {
  uv_tcp_t tcp;
  uv_connect_t creq;
  uv_write_t wreq;
  size_t got;       /* bytes of the current message received */
  uint64_t sent_at; /* uv_hrtime of the current message's send */
  int writing;      /* the write request is in use */
  int echoed;       /* the whole message came back while still writing */
} conn;

static size_t size;
static char *msg;
static char rbuf[1 << 17];
static int nconns, connected;
static int measuring;
static uint64_t t_start, t_end;
static uint64_t requests;
static uint32_t *lat; /* latencies in ns while measuring */
static size_t nlat, cap_lat;
static uv_timer_t phase;
static double warmup, seconds;
static long server_pid; /* 0: not given */
static double server_cpu_start, server_user_start;

/* utime + stime of a process in seconds (every thread), or -1; its user part in *user. */
static double cpu_seconds(long pid, double *user) {
  char path[64], text[1024];
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = 0;
  char *p = strrchr(text, ')'); /* the command name may hold spaces */
  unsigned long utime, stime;
  if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime,
                   &stime) != 2)
    return -1;
  double tick = (double)sysconf(_SC_CLK_TCK);
  if (user) *user = (double)utime / tick;
  return (double)(utime + stime) / tick;
}

static void fail(const char *what, int err) {
  fprintf(stderr, "loadgen: %s: %s\n", what, uv_strerror(err));
  exit(1);
}

static void send_msg(conn *c);

static void write_cb(uv_write_t *req, int status) {
  conn *c = req->data;
  if (status < 0) fail("write", status);
  c->writing = 0;
  if (c->echoed) {
    c->echoed = 0;
    send_msg(c);
  }
}

static void send_msg(conn *c) {
  uv_buf_t b = uv_buf_init(msg, size);
  c->got = 0;
  c->sent_at = uv_hrtime();
  int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  if (n == (int)size) return;
  if (n < 0 && n != UV_EAGAIN) fail("write", n);
  if (n > 0) b = uv_buf_init(msg + n, size - n);
  c->writing = 1;
  c->wreq.data = c;
  int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, write_cb);
  if (rc < 0) fail("write", rc);
}

static void record(uint64_t ns) {
  if (nlat == cap_lat) {
    cap_lat = cap_lat ? cap_lat * 2 : 1 << 16;
    lat = realloc(lat, cap_lat * sizeof *lat);
    if (!lat) { fprintf(stderr, "loadgen: out of memory\n"); exit(1); }
  }
  lat[nlat++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  *buf = uv_buf_init(rbuf, sizeof rbuf);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  conn *c = (conn *)s;
  if (nread == 0) return;
  if (nread < 0) fail("read (the server closed the connection?)", (int)nread);
  if (c->got + nread > size) {
    fprintf(stderr, "loadgen: the server sent more than was sent to it\n");
    exit(1);
  }
  if (memcmp(buf->base, msg + c->got, nread) != 0) {
    fprintf(stderr, "loadgen: the echo differs from what was sent\n");
    exit(1);
  }
  c->got += nread;
  if (c->got < size) return;
  if (measuring) {
    requests++;
    record(uv_hrtime() - c->sent_at);
  }
  if (c->writing) c->echoed = 1; /* send the next one when the write completes */
  else send_msg(c);
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static double pct(double p) {
  if (nlat == 0) return 0;
  size_t i = (size_t)(p * (nlat - 1) + 0.5);
  return lat[i] / 1e3;
}

static void stop_cb(uv_timer_t *t) {
  (void)t;
  t_end = uv_hrtime();
  double secs = (t_end - t_start) / 1e9;
  qsort(lat, nlat, sizeof *lat, cmp_u32);
  printf("req_per_s=%.0f mb_per_s=%.1f p50_us=%.1f p99_us=%.1f", requests / secs,
         requests * (double)size / secs / 1e6, pct(0.50), pct(0.99));
  double user = 0, cpu = server_pid ? cpu_seconds(server_pid, &user) : -1;
  if (cpu >= 0 && server_cpu_start >= 0 && requests > 0)
    printf(" cpu_us_per_req=%.2f user_us_per_req=%.2f", (cpu - server_cpu_start) * 1e6 / (double)requests,
           (user - server_user_start) * 1e6 / (double)requests);
  printf("\n");
  fflush(stdout);
  exit(0);
}

static void start_cb(uv_timer_t *t) {
  measuring = 1;
  if (server_pid) server_cpu_start = cpu_seconds(server_pid, &server_user_start);
  t_start = uv_hrtime();
  uv_timer_start(t, stop_cb, (uint64_t)(seconds * 1000), 0);
}

static void connect_cb(uv_connect_t *req, int status) {
  conn *c = req->data;
  if (status < 0) fail("connect", status);
  uv_tcp_nodelay(&c->tcp, 1);
  int rc = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
  if (rc < 0) fail("read_start", rc);
  if (++connected == nconns) {
    /* everyone starts at once, when all are connected */
    uv_timer_start(&phase, start_cb, (uint64_t)(warmup * 1000), 0);
    conn *all = (conn *)req->handle->loop->data;
    for (int i = 0; i < nconns; i++) send_msg(&all[i]);
  }
}

int main(int argc, char **argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: loadgen HOST PORT CONNS SIZE SECONDS [WARMUP [SERVER_PID]]\n");
    return 2;
  }
  const char *host = argv[1];
  int port = atoi(argv[2]);
  nconns = atoi(argv[3]);
  size = (size_t)atol(argv[4]);
  seconds = atof(argv[5]);
  warmup = argc > 6 ? atof(argv[6]) : 0.5;
  server_pid = argc > 7 ? atol(argv[7]) : 0;
  if (server_pid && cpu_seconds(server_pid, NULL) < 0) {
    fprintf(stderr, "loadgen: cannot read /proc/%ld/stat\n", server_pid);
    return 2;
  }
  if (nconns <= 0 || size == 0 || seconds <= 0) return 2;
  msg = malloc(size);
  for (size_t i = 0; i < size; i++) msg[i] = (char)('a' + (i * 7 + i / 251) % 26);
  uv_loop_t *loop = uv_default_loop();
  conn *conns = calloc(nconns, sizeof *conns);
  loop->data = conns;
  struct sockaddr_in addr;
  CHECK(uv_ip4_addr(host, port, &addr));
  CHECK(uv_timer_init(loop, &phase));
  for (int i = 0; i < nconns; i++) {
    CHECK(uv_tcp_init(loop, &conns[i].tcp));
    conns[i].creq.data = &conns[i];
    CHECK(uv_tcp_connect(&conns[i].creq, &conns[i].tcp, (const struct sockaddr *)&addr, connect_cb));
  }
  return uv_run(loop, UV_RUN_DEFAULT);
}

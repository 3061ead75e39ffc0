/* echo_offsets.c — what the kernel's copies of a 64 KiB echo cost against where the
   server's buffer lies in its page (issue 22, D64K). One process, one TCP connection on
   loopback, blocking sockets: the client sends 64 KiB from a page-aligned buffer, the
   server receives them into its buffer at OFFSET bytes into a page and sends them back
   from there, the client receives them; best of 3 x 2,000 round trips per offset.
   Prints one line per offset: offset=... ns_per_round_trip=...
   On AMD EPYC (this project's machines) offsets 8-24 bytes from a page boundary, either
   side, cost ~1.7x (rep movsb's loads and stores aliasing at 4 KiB strides with the
   socket's page-aligned data); stream.c keeps its read buffers away from them.
   usage: echo_offsets [OFFSET...]  (default: a spread of offsets) */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { SIZE = 65536, ROUNDS = 2000 };

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

/* Both sockets' buffers hold a whole message (main), so a blocking send of it returns
   before anyone reads. */
static void transfer(int from, int to, const char *src, char *dst) {
  size_t sent = 0, got = 0;
  while (sent < SIZE) {
    ssize_t n = send(from, src + sent, SIZE - sent, 0);
    if (n <= 0) perror("send"), exit(1);
    sent += (size_t)n;
  }
  while (got < SIZE) {
    ssize_t n = recv(to, dst + got, SIZE - got, 0);
    if (n <= 0) perror("recv"), exit(1);
    got += (size_t)n;
  }
}

int main(int argc, char **argv) {
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof a;
  if (bind(listener, (struct sockaddr *)&a, sizeof a) || listen(listener, 1) ||
      getsockname(listener, (struct sockaddr *)&a, &alen))
    perror("listen"), exit(1);
  int client = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(client, (struct sockaddr *)&a, sizeof a)) perror("connect"), exit(1);
  int server = accept(listener, NULL, NULL);
  int one = 1, room = 4 * SIZE;
  int socks[2] = {client, server};
  for (int i = 0; i < 2; i++) {
    setsockopt(socks[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(socks[i], SOL_SOCKET, SO_SNDBUF, &room, sizeof room);
    setsockopt(socks[i], SOL_SOCKET, SO_RCVBUF, &room, sizeof room);
  }
  char *out = aligned_alloc(4096, SIZE), *in = aligned_alloc(4096, SIZE);
  char *buf = aligned_alloc(4096, SIZE + 8192);
  memset(out, 'x', SIZE);
  memset(in, 0, SIZE);
  memset(buf, 0, SIZE + 8192);
  static const int spread[] = {0, 8, 16, 24, 32, 40, 48, 64, 128, 2048, 2088, 4000, 4072, 4088};
  int n = argc > 1 ? argc - 1 : (int)(sizeof spread / sizeof *spread);
  for (int i = 0; i < n; i++) {
    int offset = argc > 1 ? atoi(argv[i + 1]) % 8192 : spread[i];
    char *at = buf + offset;
    double best = 1e300;
    for (int rep = 0; rep < 3; rep++) {
      double t0 = now_ns();
      for (int k = 0; k < ROUNDS; k++) {
        transfer(client, server, out, at);
        transfer(server, client, at, in);
      }
      double t = (now_ns() - t0) / ROUNDS;
      if (t < best) best = t;
    }
    printf("offset=%d ns_per_round_trip=%.0f\n", offset, best);
  }
  return 0;
}

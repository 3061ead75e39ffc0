/* net.h — the network layer (async/net/): streams over TCP and Unix sockets, listeners,
   UDP, getaddrinfo, TLS, on the core (core.h). The one header of this layer that another
   (os/process.c, for a child's pipes) may include; not public. */
#ifndef ALUA_ASYNC_NET_H
#define ALUA_ASYNC_NET_H

#include "core/core.h"
#include "readbuf.h"

#define STREAM_MT "asyncio.stream"
#define LISTENER_MT "asyncio.listener"
#define UDP_MT "asyncio.udp"
#define GAI_MT "asyncio.getaddrinfo"

/* Futures an I/O callback completes (with no value) in pure C. A user value of the
   owner's userdata anchors them; the waiting Lua code re-checks the state on waking. */
typedef struct waitset {
  future **v;
  int n, cap;
  future *last;   /* the future handed out last */
  const void *by; /* the task it was handed to */
} waitset;

future *waitset_add(lua_State *L, waitset *ws, int owner, int uv);     /* pushes it */
future *waitset_add_one(lua_State *L, waitset *ws, int owner, int uv); /* one waiter at a time */
int waitset_pending(const waitset *ws);
int waitset_holds(const waitset *ws, const future *f); /* for print_tasks */
void waitset_wake(waitset *ws);
void waitset_free(waitset *ws);

/* Every socket alua owns is on its loop's net list, so lua_close closes what user code
   left open, and what still flushes after its Lua object was collected. */
typedef struct net_list net_list;
typedef struct net_obj net_obj;
struct net_obj {
  net_obj *prev, *next;
  net_list *list;
  void (*shutdown)(net_obj *o); /* closes the handle at once, without Lua */
};
net_list *net_list_get(lua_State *L);
net_obj *net_list_first(lua_State *L); /* what the list holds (for print_tasks), or NULL */
void net_track(net_list *list, net_obj *o, void (*shutdown)(net_obj *));
void net_untrack(net_obj *o);

enum { STREAM_TCP, STREAM_PIPE };
typedef struct listener listener;

/* The libuv handle of a stream or a listener: TCP or a Unix socket (pipe). */
typedef union net_handle {
  uv_handle_t handle;
  uv_stream_t stream;
  uv_tcp_t tcp;
  uv_pipe_t pipe;
} net_handle;

/* A connected TCP or Unix socket: the read buffer and the write queue. The userdata
   holds a pointer (`box`); the struct is freed in the handle's close callback. */
typedef struct stream {
  net_obj obj;
  net_handle u;
  uv_connect_t connect_req;
  uv_write_t write_req;
  uv_shutdown_t shutdown_req;
  struct stream **box;         /* the userdata's pointer to this, NULL once collected */
  struct tls_conn *tls;        /* TLS state (tls.c) once net.tls_start made it secure */
  listener *server;            /* accepted by it: counted among its connections */
  struct stream *next_pending; /* in the listener's queue until Lua takes it */
  readbuf rb;                  /* what was read, not yet taken (readbuf.c) */
  size_t limit;                /* line limit and bound of the read buffer */
  size_t want;                 /* a readexactly waiting for this many bytes, or 0 */
  char *wfly, *wq;             /* the buffer being written; the one queued behind it */
  size_t wfly_len, wfly_cap, wq_len, wq_cap;
  size_t high_water, low_water;
  int rerr, werr, connect_status;
  waitset readers, drainers, closers;
  uint8_t kind, open, reading, eof, paused, eof_wanted, shutting, close_wanted, closing;
} stream;

stream *stream_new(lua_State *L, int kind);  /* pushes the userdata; handle initialised */
stream *stream_check(lua_State *L, int idx); /* NULL once the stream is closed and freed */
void stream_resume(stream *s);               /* (re)starts reading if there is room */
void stream_pause(stream *s);
size_t stream_read_space(stream *s, char **space); /* room at the end of the read buffer */
int stream_write_raw(stream *s, const char *data, size_t len); /* 0 or a uv error */
void stream_close(stream *s); /* flushes queued writes, then closes */
void stream_connect_cb(uv_connect_t *req, int status);
int tcp_push_name(lua_State *L, uv_tcp_t *t, int peer);   /* pushes host, port */
int pipe_push_name(lua_State *L, uv_pipe_t *p, int peer); /* pushes the path */

/* A listening socket: accepts in C into a bounded queue the Lua side drains. */
struct listener {
  net_obj obj;
  net_handle u;
  struct listener **box;
  stream *pending_first, *pending_last;
  int npending, nconns, accept_err;
  size_t limit;
  unsigned keepalive; /* seconds, 0: off */
  char *unlink_path;  /* a Unix socket's path, removed at close */
  waitset acceptors, closers;
  uint8_t kind, nodelay, serving, deferred, closing, closed;
  uint8_t starved; /* out of descriptors: reported, retried */
};

listener *listener_new(lua_State *L, int kind); /* pushes the userdata; handle not initialised */
int listener_start(listener *l, int backlog);
void listener_close(listener *l);

/* Addresses: IP text to sockaddr (0 or a uv error) and back (pushes host, port). */
int net_sockaddr(const char *ip, int port, struct sockaddr_storage *ss);
int net_push_addr(lua_State *L, const struct sockaddr *sa);

/* TLS inside a stream (tls.c): ciphertext in and out of OpenSSL's memory BIOs, the
   plaintext in the stream's own read buffer and write queue. A failure sets the stream's
   rerr to UV_EPROTO; tls_raise raises it as an SSLError with OpenSSL's reason. */
void tls_read(stream *s, ssize_t nread); /* the stream's read callback, for TLS */
int tls_resume(stream *s);               /* decrypts what is held; 0: do not read the socket */
int tls_write(stream *s, const char *data, size_t len); /* 0 or a uv error */
void tls_shutdown(stream *s); /* sends close_notify (once, after the handshake) */
void tls_free(stream *s);
int tls_raise(lua_State *L, stream *s, const char *op);
void tls_open(lua_State *L);

/* Each fills the table on top (core.net) with its own functions. */
void stream_open(lua_State *L);
void tcp_open(lua_State *L);
void pipe_open(lua_State *L);
void udp_open(lua_State *L);
void dns_open(lua_State *L);
void luasocket_open(lua_State *L); /* luasocket.c: what asyncio.socket needs besides */

/* The layer: adds core.net, each file's functions in it, to the core table on top. */
void net_open(lua_State *L);

#endif

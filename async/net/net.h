/* net.h — the network layer (async/net/): streams over TCP and Unix sockets, listeners,
   UDP, getaddrinfo, TLS, HTTP parsing, on the core (core.h). The one header of this layer that another
   (os/process.c, for a child's pipes) may include; not public. */
#ifndef ALUA_ASYNC_NET_H
#define ALUA_ASYNC_NET_H

#include "core/core.h"
#include "readbuf.h"

#define STREAM_MT "asyncio.stream"
#define LISTENER_MT "asyncio.listener"
#define UDP_MT "asyncio.udp"
#define GAI_MT "asyncio.getaddrinfo"

/* A stream's write queue pauses writers (drain) above high water until it falls to low
   water; set_write_limits changes both per stream. */
enum { HIGH_WATER = 64 * 1024, LOW_WATER = 16 * 1024 };
/* User values of a stream's userdata. */
enum { SUV_READERS = 1, SUV_DRAINERS, SUV_CLOSERS, SUV_COUNT = SUV_CLOSERS };

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
  owned obj;
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
  size_t handed_off;           /* the size of the last read that became a string, or 0 */
  char *wfly, *wq;             /* the buffer being written; the one queued behind it */
  size_t wfly_len, wfly_cap, wq_len, wq_cap;
  size_t high_water, low_water;
  int rerr, werr, connect_status;
  waitset readers, drainers, closers;
  uint8_t kind, open, reading, eof, paused, eof_wanted, shutting, close_wanted, closing;
} stream;

extern char stream_type; /* the key of STREAM_MT (type.c) */
/* No userdata yet; its read buffers come from `alloc` (its Lua state's allocator). */
stream *stream_alloc(uv_loop_t *uv, int kind, owner_list *list, lua_Alloc alloc, void *ud);
stream *stream_new(lua_State *L, int kind);  /* pushes the userdata; handle initialised */
void stream_wrap(lua_State *L, stream *s);   /* pushes a userdata for s (an accepted one) */
stream *stream_check(lua_State *L, int idx); /* NULL once the stream is closed and freed */
void stream_resume(stream *s);               /* (re)starts reading if there is room */
void stream_pause(stream *s);
size_t stream_read_space(stream *s, char **space); /* room at the end of the read buffer */
int stream_write_raw(stream *s, const char *data, size_t len); /* 0 or a uv error */
enum stream_close_how {
  STREAM_CLOSE_FLUSH, /* after the queued writes: close(), a collected stream */
  STREAM_CLOSE_NOW,   /* at once, dropping them: lua_close, connections nobody took */
  STREAM_CLOSE_RESET  /* writer:abort(): at once, dropping them; TCP sends a reset */
};
void stream_close(stream *s, enum stream_close_how how); /* every close starts here */
void stream_consume(stream *s, size_t n); /* drops n bytes read, reads on if there is room */
/* takes the first n bytes out of the buffer before a push; stream_consume(s, 0) after it */
const char *stream_take(stream *s, size_t n);
void stream_pool_release(lua_Alloc alloc, void *ud); /* lua_close: its buffers in the pool */
size_t stream_write_pending(const stream *s);
void stream_write_progress(stream *s); /* what follows the writes in flight */
void stream_connect_cb(uv_connect_t *req, int status);
int tcp_push_name(lua_State *L, uv_tcp_t *t, int peer);   /* pushes host, port */
int pipe_push_name(lua_State *L, uv_pipe_t *p, int peer); /* pushes the path */

/* A listening socket: accepts in C into a bounded queue the Lua side drains. */
struct listener {
  owned obj;
  net_handle u;
  struct listener **box;
  stream *pending_first, *pending_last;
  int npending, nconns, accept_err;
  size_t limit;
  lua_Alloc alloc; /* its state's allocator, for its connections' read buffers */
  void *alloc_ud;
  unsigned keepalive; /* seconds, 0: off */
  char *unlink_path;  /* a Unix socket's path, removed at close */
  waitset acceptors, closers;
  uint8_t kind, nodelay, serving, deferred, closing, closed;
  uint8_t starved; /* out of descriptors: reported, retried */
};

listener *listener_new(lua_State *L, int kind); /* pushes the userdata; handle not initialised */
int listener_start(listener *l, int backlog);
void listener_close(listener *l);
void listener_conn_gone(listener *l); /* one of its connections is closed */

/* For print_tasks: what f is to the stream or listener that owns o, or NULL. */
const char *stream_wait_name(owned *o, const future *f);
const char *listener_wait_name(owned *o, const future *f);

/* Addresses (addr.c): IP text to sockaddr (0 or a uv error) and back (pushes host, port). */
int addr_from_ip(const char *ip, int port, struct sockaddr_storage *ss);
int addr_push(lua_State *L, const struct sockaddr *sa);

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
/* x509.c: certificates as Lua objects (lua-sec's shape) */
struct x509_st;                                     /* OpenSSL's X509 */
void x509_push(lua_State *L, struct x509_st *cert); /* the object takes its own reference */
void x509_open(lua_State *L);

/* What streamlib.c's bindings do, for other bindings of this layer (http_server.c):
   raise a stream's error (an SSLError once TLS failed, else the OSError of err); once
   the buffer cannot satisfy a read, raise the stream's error or return 1 at its end, 0
   if more may come; push a future completed by the next read event of the stream at
   hidx; write (at once, or queued); raise a write or read error, else
   return whether a writer must wait for the queue to drain. */
int streamlib_raise(lua_State *L, stream *s, const char *op, int err);
int streamlib_read_blocked(lua_State *L, stream *s, const char *op);
void streamlib_wait_read(lua_State *L, int hidx, const char *op);
int streamlib_write(lua_State *L, stream *s, const char *data, size_t len);
int streamlib_drain_needed(lua_State *L, stream *s);

/* Each fills the table on top (core.net) with its own functions. */
void streamlib_open(lua_State *L);
size_t streamlib_string_front(void); /* 0 until learnt: read buffers are then plain malloc */
void listener_open(lua_State *L);
void tcp_open(lua_State *L);
void pipe_open(lua_State *L);
void udp_open(lua_State *L);
void dns_open(lua_State *L);
void luasocket_open(lua_State *L); /* luasocket.c: what asyncio.socket needs besides */
void http_open(lua_State *L);      /* http.c: the HTTP parser and the inflater */
/* http.c, for http_server.c: a parsed message's version ("1.1"), its headers as a
   table (lower-case names, a repeated header's values joined with ", "), and an event
   other than a head as net.http_next gives it ("body", data | "done", keep | "error",
   name, reason; returns how many values it pushed, 0 for HP_MORE). */
#define HTTP_PARSER_MT "asyncio.HttpParser"
struct http_parse;
struct hp_header;
void http_push_version(lua_State *L, const struct http_parse *p);
void http_push_headers(lua_State *L, const struct http_parse *p);
/* the same of n headers whose spans are in head (a copy of a parsed message's) */
void http_push_header_table(lua_State *L, const char *head, const struct hp_header *headers,
                            size_t n);
int http_push_event(lua_State *L, const struct http_parse *p, int ev);
void http_server_open(lua_State *L); /* http_server.c: the server's requests and responses */

/* The layer: adds core.net, each file's functions in it, to the core table on top. */
void net_open(lua_State *L);

#endif

/* tls.c — TLS inside a stream, on OpenSSL 3 with memory BIOs: the ciphertext the socket
   reads goes into one BIO and is decrypted into the stream's own read buffer; plaintext
   written is encrypted into the other, whose bytes leave through the stream's write path.
   The socket stays libuv's; readers, drain and the high-water mark work unchanged. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "net.h"

#define TLS_CTX_MT "asyncio.tls_context"

/* Plaintext encrypted per pass: bounds what the write BIO holds before it is handed on. */
enum { WRITE_CHUNK = 64 * 1024 };

struct tls_conn {
  SSL *ssl;
  BIO *rbio, *wbio;   /* owned by ssl: ciphertext in, ciphertext out */
  char *message;      /* the failure, as raised: OpenSSL's reason (and the verify error) */
  const char *reason; /* OpenSSL's reason and library of the failure (static strings) */
  const char *library;
  long verify_code; /* the certificate check's result, if the failure was that */
  uint8_t done;     /* the handshake is complete */
  uint8_t failed;
  uint8_t net_eof; /* the socket reached its end: the read BIO reports it to OpenSSL */
  uint8_t sent_shutdown;
  uint8_t ragged_ok; /* a TCP end without close_notify ends the stream like one */
};

typedef struct tls_conn tls_conn;

/* ---- failures --------------------------------------------------------------------- */

/* Records the failure OpenSSL's error queue (or `code`, SSL_get_error's) describes; the
   stream's readers and writers then raise it. */
static void tls_fail(stream *s, int code) {
  tls_conn *t = s->tls;
  unsigned long e = ERR_get_error(); /* the earliest: the cause, not the callers' echoes */
  char buf[512];
  t->reason = e ? ERR_reason_error_string(e) : NULL;
  t->library = e ? ERR_lib_error_string(e) : NULL;
  long v = SSL_get_verify_result(t->ssl);
  if (e && ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED &&
      v != X509_V_OK) {
    t->verify_code = v;
    snprintf(buf, sizeof buf, "%s: %s", t->reason, X509_verify_cert_error_string(v));
  } else if (t->reason) {
    snprintf(buf, sizeof buf, "%s", t->reason);
  } else {
    snprintf(buf, sizeof buf, "TLS failure (SSL_get_error %d)", code);
  }
  ERR_clear_error();
  free(t->message);
  t->message = strdup(buf);
  t->failed = 1;
  if (!s->rerr) s->rerr = UV_EPROTO;
  stream_pause(s);
}

int tls_raise(lua_State *L, stream *s, const char *op) {
  tls_conn *t = s->tls;
  if (!t->failed) return error_raise_uv(L, op, UV_EPROTO);
  lua_pushfstring(L, "%s: %s", op, t->message ? t->message : "TLS failure");
  error_push(L, "SSLError", lua_tostring(L, -1));
  lua_remove(L, -2);
  if (t->reason) {
    lua_pushstring(L, t->reason);
    lua_setfield(L, -2, "reason");
  }
  if (t->library) {
    lua_pushstring(L, t->library);
    lua_setfield(L, -2, "library");
  }
  if (t->verify_code != X509_V_OK) {
    lua_pushinteger(L, t->verify_code);
    lua_setfield(L, -2, "verify_code");
    lua_pushstring(L, X509_verify_cert_error_string(t->verify_code));
    lua_setfield(L, -2, "verify_message");
  }
  return lua_error(L);
}

/* ---- the data path ---------------------------------------------------------------- */

/* Hands what OpenSSL wrote (records, alerts, close_notify) to the stream's write path. */
static int tls_flush(stream *s) {
  tls_conn *t = s->tls;
  char *p;
  long n = BIO_get_mem_data(t->wbio, &p);
  if (n <= 0) return 0;
  int err = s->werr;
  if (!err && !s->closing && !t->sent_shutdown) err = stream_write_raw(s, p, (size_t)n);
  (void)BIO_reset(t->wbio);
  return err;
}

/* Advances the handshake, then decrypts what the read BIO holds into the read buffer as
   far as its room allows. Returns 1 when readers have something new: data, the end,
   a failure, or the completed handshake. */
static int tls_pump(stream *s) {
  tls_conn *t = s->tls;
  int changed = 0;
  if (t->failed || s->eof) return 0;
  ERR_clear_error();
  if (!t->done) {
    int r = SSL_do_handshake(t->ssl);
    if (r != 1) {
      int code = SSL_get_error(t->ssl, r);
      if (code != SSL_ERROR_WANT_READ) tls_fail(s, code);
      tls_flush(s); /* our part of the handshake, or the alert that ends it */
      return t->failed;
    }
    t->done = 1;
    changed = 1;
    /* from now on (not during the handshake, where an end is always a failure) a TCP end
       without close_notify reads as one, leaving the connection usable for writing */
    if (t->ragged_ok) SSL_set_options(t->ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
  }
  for (;;) {
    char *space;
    size_t room = stream_read_space(s, &space);
    if (room == 0) break;
    int n = SSL_read(t->ssl, space, room > INT_MAX ? INT_MAX : (int)room);
    if (n > 0) {
      s->rb.len += (size_t)n;
      changed = 1;
      continue;
    }
    int code = SSL_get_error(t->ssl, n);
    if (code == SSL_ERROR_WANT_READ) break;
    changed = 1;
    if (code == SSL_ERROR_ZERO_RETURN) {
      s->eof = 1; /* the peer's close_notify (or a ragged end, if that is allowed) */
      stream_pause(s);
    } else {
      tls_fail(s, code);
    }
    break;
  }
  tls_flush(s);
  return changed;
}

/* The read callback of a TLS stream. libuv read the ciphertext into the read buffer's
   room (stream_alloc_cb): it moves into the read BIO, and the room gets the plaintext. */
void tls_read(stream *s, ssize_t nread) {
  tls_conn *t = s->tls;
  if (nread > 0) {
    if (BIO_write(t->rbio, s->rb.buf + s->rb.pos + s->rb.len, (int)nread) != (int)nread) {
      s->rerr = UV_ENOMEM;
      stream_pause(s);
      waitset_wake(&s->readers);
      return;
    }
  } else if (nread == UV_EOF) {
    t->net_eof = 1;
    BIO_set_mem_eof_return(t->rbio, 0); /* OpenSSL sees the end once the BIO is empty */
    stream_pause(s);
  } else if (nread == UV_ENOBUFS) {
    stream_pause(s); /* no room: the reader must consume first */
    waitset_wake(&s->readers);
    return;
  } else if (nread < 0) {
    s->rerr = (int)nread;
    stream_pause(s);
    waitset_wake(&s->readers);
    return;
  } else {
    return;
  }
  int changed = tls_pump(s);
  char *space;
  if (s->reading && stream_read_space(s, &space) == 0) stream_pause(s);
  if (!changed) return;
  if (s->want && s->rb.len < s->want && s->reading) return; /* readexactly: not yet */
  waitset_wake(&s->readers);
}

/* From stream_resume, before the socket is read again: what OpenSSL already holds comes
   first. Returns whether the socket may be read. */
int tls_resume(stream *s) {
  tls_conn *t = s->tls;
  if (tls_pump(s)) waitset_wake(&s->readers);
  return !t->net_eof && !t->failed && !s->eof && !s->rerr;
}

int tls_write(stream *s, const char *data, size_t len) {
  tls_conn *t = s->tls;
  if (t->failed) return UV_EPROTO;
  if (!t->done) return UV_ENOTCONN;
  if (t->sent_shutdown) return UV_EPIPE;
  ERR_clear_error();
  while (len > 0) {
    int chunk = len > WRITE_CHUNK ? WRITE_CHUNK : (int)len;
    int n = SSL_write(t->ssl, data, chunk);
    if (n <= 0) {
      tls_fail(s, SSL_get_error(t->ssl, n));
      tls_flush(s);
      waitset_wake(&s->readers);
      return UV_EPROTO;
    }
    data += n;
    len -= (size_t)n;
    int err = tls_flush(s);
    if (err) return err;
  }
  return 0;
}

void tls_shutdown(stream *s) {
  tls_conn *t = s->tls;
  if (!t->done || t->failed || t->sent_shutdown || s->werr || s->closing) return;
  ERR_clear_error();
  SSL_shutdown(t->ssl); /* writes close_notify; the peer's is not waited for */
  tls_flush(s);
  ERR_clear_error();
  t->sent_shutdown = 1;
}

void tls_free(stream *s) {
  tls_conn *t = s->tls;
  s->tls = NULL;
  SSL_free(t->ssl);
  free(t->message);
  free(t);
}

/* ---- contexts --------------------------------------------------------------------- */

static SSL_CTX *ctx_check(lua_State *L, int idx) {
  SSL_CTX **box = luaL_checkudata(L, idx, TLS_CTX_MT);
  if (*box == NULL) luaL_argerror(L, idx, "TLS context is freed");
  return *box;
}

static int ctx_gc(lua_State *L) {
  SSL_CTX **box = luaL_checkudata(L, 1, TLS_CTX_MT);
  SSL_CTX_free(*box); /* each connection holds its own reference */
  *box = NULL;
  return 0;
}

static int ctx_tostring(lua_State *L) {
  SSL_CTX *ctx = ctx_check(L, 1);
  lua_pushfstring(L, "<TLS context %s>",
                  SSL_CTX_get_ssl_method(ctx) == TLS_server_method() ? "server" : "client");
  return 1;
}

/* An encrypted key without a password fails instead of prompting on the terminal. */
static int password_cb(char *buf, int size, int rwflag, void *u) {
  (void)rwflag;
  if (u == NULL) return 0;
  size_t n = strlen(u);
  if (n > (size_t)size) return -1;
  memcpy(buf, u, n);
  return (int)n;
}

/* Raises the failure to load `path` (the `what` option): an OSError if the file cannot
   be opened, else an SSLError with OpenSSL's reason. `no_password`: an encrypted key was
   tried with none. */
static int raise_load_error(lua_State *L, const char *what, const char *path, int no_password) {
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    int err = uv_translate_sys_error(errno);
    ERR_clear_error();
    return error_raise_uv_msg(L, "open", err, "%s '%s': %s (%s)", what, path, uv_err_name(err),
                              uv_strerror(err));
  }
  fclose(f);
  unsigned long e = ERR_get_error();
  const char *reason = e ? ERR_reason_error_string(e) : NULL;
  ERR_clear_error();
  lua_pushfstring(L, "%s '%s': %s%s", what, path, reason ? reason : "cannot be loaded",
                  no_password && reason && strcmp(reason, "bad decrypt") == 0
                      ? " (an encrypted key needs ssl.password)"
                      : "");
  error_push(L, "SSLError", lua_tostring(L, -1));
  if (reason) {
    lua_pushstring(L, reason);
    lua_setfield(L, -2, "reason");
  }
  return lua_error(L);
}

/* ---- ALPN --------------------------------------------------------------------------- */

/* A server's protocols in its order of preference (the wire format: length-prefixed
   names), kept with its SSL_CTX (ex data, freed with it: connections hold the context) */
typedef struct {
  unsigned len;
  unsigned char wire[];
} alpn_list;

static int alpn_index = -1;
static pthread_once_t alpn_once = PTHREAD_ONCE_INIT;

static void alpn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp) {
  (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
  free(ptr);
}

static void alpn_index_new(void) {
  alpn_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, alpn_free);
}

/* The server picks the first of its protocols the client offers; with none in common
   the handshake goes on without ALPN (as lua-sec's server does). */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg) {
  (void)ssl;
  const alpn_list *a = arg;
  unsigned char *selected;
  if (inlen == 0 || SSL_select_next_proto(&selected, outlen, a->wire, a->len, in, inlen) !=
                        OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

/* Sets the protocols (wire format) a client offers or a server accepts; 0 on failure. */
static int alpn_set(SSL_CTX *ctx, int server, const char *wire, size_t len) {
  if (!server) return SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)wire, (unsigned)len) == 0;
  pthread_once(&alpn_once, alpn_index_new);
  alpn_list *a = malloc(sizeof *a + len);
  if (alpn_index < 0 || a == NULL) {
    free(a);
    return 0;
  }
  a->len = (unsigned)len;
  memcpy(a->wire, wire, len);
  if (SSL_CTX_set_ex_data(ctx, alpn_index, a) != 1) {
    free(a);
    return 0;
  }
  SSL_CTX_set_alpn_select_cb(ctx, alpn_select, a);
  return 1;
}

/* net.tls_context(server, verify, cafile, certfile, keyfile, password [, alpn]) ->
   context. A client with no cafile trusts the system's CA store. A server verifies
   client certificates only when asked to (verify), against cafile. alpn: the protocols
   in ALPN's wire format (length-prefixed names), which a client offers and a server
   chooses from, in its order. */
static int l_net_tls_context(lua_State *L) {
  int server = lua_toboolean(L, 1);
  int verify = lua_toboolean(L, 2);
  const char *cafile = luaL_optstring(L, 3, NULL);
  const char *certfile = luaL_optstring(L, 4, NULL);
  const char *keyfile = luaL_optstring(L, 5, certfile);
  const char *password = luaL_optstring(L, 6, NULL);
  size_t alpn_len = 0;
  const char *alpn = luaL_optlstring(L, 7, NULL, &alpn_len);
  if (alpn && (alpn_len == 0 || alpn_len > 65535))
    return luaL_argerror(L, 7, "ALPN list must have 1 to 65535 bytes");
  SSL_CTX **box = lua_newuserdatauv(L, sizeof *box, 0);
  *box = NULL;
  luaL_setmetatable(L, TLS_CTX_MT);
  ERR_clear_error();
  SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (ctx == NULL) return error_raise(L, "SSLError", "cannot create a TLS context");
  *box = ctx; /* from here the userdata's __gc frees it, on error too */
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_default_passwd_cb(ctx, password_cb);
  SSL_CTX_set_default_passwd_cb_userdata(ctx, (void *)password);
  if (certfile) {
    if (SSL_CTX_use_certificate_chain_file(ctx, certfile) != 1)
      return raise_load_error(L, "certfile", certfile, 0);
    if (SSL_CTX_use_PrivateKey_file(ctx, keyfile, SSL_FILETYPE_PEM) != 1)
      return raise_load_error(L, "keyfile", keyfile, password == NULL);
    if (SSL_CTX_check_private_key(ctx) != 1)
      return error_raise(L, "SSLError", "keyfile '%s' does not match certfile '%s'", keyfile,
                         certfile);
  }
  SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL); /* the Lua string may go */
  if (cafile) {
    struct stat st;
    int dir = stat(cafile, &st) == 0 && S_ISDIR(st.st_mode);
    if (SSL_CTX_load_verify_locations(ctx, dir ? NULL : cafile, dir ? cafile : NULL) != 1)
      return raise_load_error(L, "cafile", cafile, 0);
    if (server && !dir) {
      STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cafile);
      if (names) SSL_CTX_set_client_CA_list(ctx, names);
    }
  } else if (verify && !server && SSL_CTX_set_default_verify_paths(ctx) != 1) {
    return error_raise(L, "SSLError", "cannot load the system's CA certificates");
  }
  if (alpn && !alpn_set(ctx, server, alpn, alpn_len))
    return error_raise(L, "SSLError", "cannot set the ALPN protocols");
  if (server) {
    static const unsigned char sid[] = "alua";
    SSL_CTX_set_session_id_context(ctx, sid, sizeof sid - 1);
    SSL_CTX_set_verify(
        ctx, verify ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT : SSL_VERIFY_NONE, NULL);
  } else {
    SSL_CTX_set_verify(ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
  }
  ERR_clear_error();
  return 1;
}

/* ---- connections ------------------------------------------------------------------ */

static int raise_closed(lua_State *L, const char *op) {
  return error_raise_uv_msg(L, op, UV_EBADF, "%s: the stream is closed", op);
}

/* net.tls_start(h, ctx, server, hostname, check_hostname, ragged_ok): the stream speaks
   TLS from now on; a client sends its hello at once. `hostname` is the SNI name (not for
   an IP address) and, with check_hostname, the name or address the certificate must
   match. Then net.tls_handshake tells how the handshake goes. */
static int l_net_tls_start(lua_State *L) {
  stream *s = stream_check(L, 1);
  SSL_CTX *ctx = ctx_check(L, 2);
  int server = lua_toboolean(L, 3);
  const char *host = luaL_optstring(L, 4, NULL);
  int check_host = lua_toboolean(L, 5);
  if (s == NULL || s->close_wanted || !s->open) return raise_closed(L, "handshake");
  if (s->tls) return luaL_error(L, "handshake: the stream already uses TLS");
  ERR_clear_error();
  tls_conn *t = calloc(1, sizeof *t);
  if (t == NULL) return luaL_error(L, "asyncio: out of memory");
  t->ssl = SSL_new(ctx);
  t->rbio = BIO_new(BIO_s_mem());
  t->wbio = BIO_new(BIO_s_mem());
  if (t->ssl == NULL || t->rbio == NULL || t->wbio == NULL) {
    BIO_free(t->rbio);
    BIO_free(t->wbio);
    SSL_free(t->ssl);
    free(t);
    ERR_clear_error();
    return error_raise(L, "SSLError", "handshake: cannot create a TLS connection");
  }
  SSL_set_bio(t->ssl, t->rbio, t->wbio);
  t->ragged_ok = (uint8_t)lua_toboolean(L, 6);
  t->verify_code = X509_V_OK;
  s->tls = t; /* freed with the stream from here */
  if (server) {
    SSL_set_accept_state(t->ssl);
  } else {
    SSL_set_connect_state(t->ssl);
  }
  if (host && *host) {
    struct sockaddr_storage ss;
    int is_ip = addr_from_ip(host, 0, &ss) == 0;
    int ok = 1;
    if (!server && !is_ip) ok = SSL_set_tlsext_host_name(t->ssl, host) == 1;
    if (ok && check_host) {
      if (is_ip) {
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), host) == 1;
      } else {
        SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = SSL_set1_host(t->ssl, host) == 1;
      }
    }
    if (!ok) {
      ERR_clear_error();
      return error_raise(L, "SSLError", "handshake: '%s' is not a valid server name", host);
    }
  }
  /* what the peer sent before TLS began (an accepted socket reads at once) is ciphertext */
  if (s->rb.len > 0) {
    if (BIO_write(t->rbio, s->rb.buf + s->rb.pos, (int)s->rb.len) != (int)s->rb.len)
      return luaL_error(L, "asyncio: out of memory");
    s->rb.pos = s->rb.len = 0;
  }
  if (s->eof) {
    s->eof = 0;
    t->net_eof = 1;
    BIO_set_mem_eof_return(t->rbio, 0);
  }
  if (tls_pump(s)) waitset_wake(&s->readers);
  return 0;
}

/* net.tls_handshake(h) -> true once complete; nothing while it goes on (await
   net.wait_read and ask again); raises its failure. */
static int l_net_tls_handshake(lua_State *L) {
  stream *s = stream_check(L, 1);
  if (s == NULL || s->close_wanted) return raise_closed(L, "handshake");
  tls_conn *t = s->tls;
  if (t == NULL) return luaL_error(L, "handshake: the stream does not use TLS");
  if (t->failed) return tls_raise(L, s, "handshake");
  if (t->done) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if (s->rerr) return error_raise_uv(L, "handshake", s->rerr);
  return 0;
}

/* Pushes an X509 name as RFC 2253 text ("CN=localhost,O=alua"). */
static void push_name(lua_State *L, const X509_NAME *name) {
  BIO *b = BIO_new(BIO_s_mem());
  char *p;
  long n;
  if (b == NULL || X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) < 0 ||
      (n = BIO_get_mem_data(b, &p)) < 0) {
    lua_pushnil(L);
  } else {
    lua_pushlstring(L, p, (size_t)n);
  }
  BIO_free(b);
}

/* net.tls_info(h) -> {version=, cipher=, bits=, alg_bits=, description= (OpenSSL's
   line on the cipher), peer_subject=, peer_issuer=, verified=, verify_error= (the
   certificate check's failure, also when it was not enforced), server_name=}, or nothing
   for a plain stream or before the handshake completes. */
static int l_net_tls_info(lua_State *L) {
  stream *s = stream_check(L, 1);
  if (s == NULL || s->tls == NULL || !s->tls->done) return 0;
  SSL *ssl = s->tls->ssl;
  lua_createtable(L, 0, 8);
  lua_pushstring(L, SSL_get_version(ssl));
  lua_setfield(L, -2, "version");
  lua_pushstring(L, SSL_get_cipher_name(ssl));
  lua_setfield(L, -2, "cipher");
  int alg_bits = 0;
  lua_pushinteger(L, SSL_get_cipher_bits(ssl, &alg_bits));
  lua_setfield(L, -2, "bits");
  lua_pushinteger(L, alg_bits);
  lua_setfield(L, -2, "alg_bits");
  char description[256];
  const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);
  if (cipher && SSL_CIPHER_description(cipher, description, sizeof description)) {
    lua_pushstring(L, description);
    lua_setfield(L, -2, "description");
  }
  long result = SSL_get_verify_result(ssl);
  if (result != X509_V_OK) { /* what the check found, even when it was not enforced */
    lua_pushstring(L, X509_verify_cert_error_string(result));
    lua_setfield(L, -2, "verify_error");
  }
  X509 *peer = SSL_get0_peer_certificate(ssl);
  if (peer) {
    push_name(L, X509_get_subject_name(peer));
    lua_setfield(L, -2, "peer_subject");
    push_name(L, X509_get_issuer_name(peer));
    lua_setfield(L, -2, "peer_issuer");
  }
  lua_pushboolean(L, peer && SSL_get_verify_mode(ssl) != SSL_VERIFY_NONE &&
                         SSL_get_verify_result(ssl) == X509_V_OK);
  lua_setfield(L, -2, "verified");
  const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (sni) {
    lua_pushstring(L, sni);
    lua_setfield(L, -2, "server_name");
  }
  return 1;
}

/* net.tls_peercert(h) -> the peer's certificate in PEM, or nothing. */
static int l_net_tls_peercert(lua_State *L) {
  stream *s = stream_check(L, 1);
  if (s == NULL || s->tls == NULL || !s->tls->done) return 0;
  X509 *peer = SSL_get0_peer_certificate(s->tls->ssl);
  if (peer == NULL) return 0;
  BIO *b = BIO_new(BIO_s_mem());
  char *p;
  long n;
  if (b == NULL || PEM_write_bio_X509(b, peer) != 1 || (n = BIO_get_mem_data(b, &p)) < 0) {
    BIO_free(b);
    ERR_clear_error();
    return 0;
  }
  lua_pushlstring(L, p, (size_t)n);
  BIO_free(b);
  return 1;
}

/* net.tls_alpn(h) -> the protocol ALPN agreed on, or nothing */
static int l_net_tls_alpn(lua_State *L) {
  stream *s = stream_check(L, 1);
  if (s == NULL || s->tls == NULL || !s->tls->done) return 0;
  const unsigned char *p;
  unsigned len;
  SSL_get0_alpn_selected(s->tls->ssl, &p, &len);
  if (p == NULL || len == 0) return 0;
  lua_pushlstring(L, (const char *)p, len);
  return 1;
}

/* net.tls_peer_certificate(h [, n]) -> the peer's certificate object (n = 1, the
   default) or the nth of the chain it sent (the peer's own first), or nothing */
static int l_net_tls_peer_certificate(lua_State *L) {
  stream *s = stream_check(L, 1);
  lua_Integer n = luaL_optinteger(L, 2, 1);
  if (s == NULL || s->tls == NULL || !s->tls->done || n < 1) return 0;
  SSL *ssl = s->tls->ssl;
  X509 *cert = SSL_get0_peer_certificate(ssl);
  if (n > 1) {
    /* a server's copy of the chain lacks the client's own certificate: count it */
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
    int i = (int)(n - 1) - (SSL_is_server(ssl) ? 1 : 0);
    cert = chain && i < sk_X509_num(chain) && n <= INT_MAX ? sk_X509_value(chain, i) : NULL;
  }
  if (cert == NULL) return 0;
  x509_push(L, cert);
  return 1;
}

/* net.tls_version() -> the OpenSSL version text */
static int l_net_tls_version(lua_State *L) {
  lua_pushstring(L, OpenSSL_version(OPENSSL_VERSION));
  return 1;
}

static const luaL_Reg tls_functions[] = {
    {"tls_context", l_net_tls_context},
    {"tls_start", l_net_tls_start},
    {"tls_handshake", l_net_tls_handshake},
    {"tls_info", l_net_tls_info},
    {"tls_peercert", l_net_tls_peercert},
    {"tls_alpn", l_net_tls_alpn},
    {"tls_peer_certificate", l_net_tls_peer_certificate},
    {"tls_version", l_net_tls_version},
    {NULL, NULL},
};

/* Adds the TLS primitives to the net table on top. */
void tls_open(lua_State *L) {
  if (luaL_newmetatable(L, TLS_CTX_MT)) {
    lua_pushcfunction(L, ctx_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, ctx_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  luaL_setfuncs(L, tls_functions, 0);
}

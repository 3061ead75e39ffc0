/* x509.c — certificates as Lua objects, for the lua-sec compatible ssl layer
   (stdlib/asyncio/socket/ssl.lua): what lua-sec's x509 objects give (pem, subject,
   issuer, notbefore/notafter, digest, serial, pubkey, extensions' alternative names,
   validat, issued, getsignaturename, setencode), in the same shapes and texts, so that
   code written against lua-sec reads alua's certificates unchanged. */
#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "net.h"

#define X509_MT "asyncio.x509"

typedef struct {
  X509 *cert; /* one reference, dropped by __gc */
  int utf8;   /* setencode("utf8"): strings converted to UTF-8, else their raw bytes */
} x509_box;

/* Pushes a certificate object holding its own reference to cert. */
void x509_push(lua_State *L, X509 *cert) {
  x509_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->cert = NULL;
  b->utf8 = 0;
  luaL_setmetatable(L, X509_MT);
  X509_up_ref(cert);
  b->cert = cert;
}

static x509_box *check(lua_State *L, int idx) {
  x509_box *b = luaL_checkudata(L, idx, X509_MT);
  if (b->cert == NULL) luaL_argerror(L, idx, "certificate is freed");
  return b;
}

/* Pushes what a BIO holds and frees it; nil if it could not be written. */
static void push_bio(lua_State *L, BIO *bio, int ok) {
  char *p;
  long n;
  if (bio != NULL && ok && (n = BIO_get_mem_data(bio, &p)) > 0) {
    lua_pushlstring(L, p, (size_t)n);
  } else {
    lua_pushnil(L);
  }
  BIO_free(bio);
  ERR_clear_error();
}

/* An object's dotted OID (numeric) or its long name, as lua-sec names them. */
static void push_oid(lua_State *L, const ASN1_OBJECT *obj, int numeric) {
  char buf[256];
  int n = OBJ_obj2txt(buf, sizeof buf, obj, numeric);
  if (n < 0) n = 0;
  lua_pushlstring(L, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

static void push_asn1_string(lua_State *L, const ASN1_STRING *s, int utf8) {
  if (s == NULL) {
    lua_pushnil(L);
  } else if (!utf8) {
    lua_pushlstring(L, (const char *)ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s));
  } else {
    unsigned char *out;
    int n = ASN1_STRING_to_UTF8(&out, s);
    if (n < 0) {
      lua_pushnil(L);
    } else {
      lua_pushlstring(L, (const char *)out, (size_t)n);
      OPENSSL_free(out);
    }
  }
}

/* A name as a list of {oid=, name=, value=}, in the certificate's order. */
static int push_name(lua_State *L, const X509_NAME *name, int utf8) {
  int n = X509_NAME_entry_count(name);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
    const ASN1_OBJECT *obj = X509_NAME_ENTRY_get_object(e);
    lua_createtable(L, 0, 3);
    push_oid(L, obj, 1);
    lua_setfield(L, -2, "oid");
    push_oid(L, obj, 0);
    lua_setfield(L, -2, "name");
    push_asn1_string(L, X509_NAME_ENTRY_get_data(e), utf8);
    lua_setfield(L, -2, "value");
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int l_subject(lua_State *L) {
  x509_box *b = check(L, 1);
  return push_name(L, X509_get_subject_name(b->cert), b->utf8);
}

static int l_issuer(lua_State *L) {
  x509_box *b = check(L, 1);
  return push_name(L, X509_get_issuer_name(b->cert), b->utf8);
}

/* "Dec  7 04:01:35 2026 GMT" (ASN1_TIME_print's text, as lua-sec gives it) */
static int push_time(lua_State *L, const ASN1_TIME *t) {
  BIO *bio = BIO_new(BIO_s_mem());
  push_bio(L, bio, bio != NULL && ASN1_TIME_print(bio, t) == 1);
  return 1;
}

static int l_notbefore(lua_State *L) {
  return push_time(L, X509_get0_notBefore(check(L, 1)->cert));
}
static int l_notafter(lua_State *L) { return push_time(L, X509_get0_notAfter(check(L, 1)->cert)); }

static int l_pem(lua_State *L) {
  x509_box *b = check(L, 1);
  BIO *bio = BIO_new(BIO_s_mem());
  push_bio(L, bio, bio != NULL && PEM_write_bio_X509(bio, b->cert) == 1);
  return 1;
}

/* digest([alg]) -> lower-case hex of the certificate's hash: "sha1" (the default),
   "sha256" or "sha512", the ones lua-sec offers; else nil, message */
static int l_digest(lua_State *L) {
  x509_box *b = check(L, 1);
  const char *alg = luaL_optstring(L, 2, NULL);
  const EVP_MD *md = NULL;
  if (alg == NULL || strcmp(alg, "sha1") == 0) {
    md = EVP_sha1();
  } else if (strcmp(alg, "sha256") == 0) {
    md = EVP_sha256();
  } else if (strcmp(alg, "sha512") == 0) {
    md = EVP_sha512();
  }
  if (md == NULL) {
    lua_pushnil(L);
    lua_pushfstring(L, "digest algorithm not supported (%s)", alg);
    return 2;
  }
  unsigned char buf[EVP_MAX_MD_SIZE];
  unsigned int n;
  if (X509_digest(b->cert, md, buf, &n) != 1) {
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    lua_pushnil(L);
    lua_pushfstring(L, "error processing the certificate (%s)", ERR_reason_error_string(e));
    return 2;
  }
  static const char hex[] = "0123456789abcdef";
  char out[EVP_MAX_MD_SIZE * 2];
  for (unsigned int i = 0; i < n; i++) {
    out[2 * i] = hex[buf[i] >> 4];
    out[2 * i + 1] = hex[buf[i] & 15];
  }
  lua_pushlstring(L, out, 2 * (size_t)n);
  return 1;
}

/* serial() -> upper-case hex */
static int l_serial(lua_State *L) {
  x509_box *b = check(L, 1);
  BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(b->cert), NULL);
  char *hex = bn ? BN_bn2hex(bn) : NULL;
  if (hex) {
    lua_pushstring(L, hex);
  } else {
    lua_pushnil(L);
  }
  OPENSSL_free(hex);
  BN_free(bn);
  ERR_clear_error();
  return 1;
}

/* pubkey() -> PEM, type ("RSA", "DSA", "DH", "EC" or "Unknown"), bits */
static int l_pubkey(lua_State *L) {
  x509_box *b = check(L, 1);
  EVP_PKEY *key = X509_get0_pubkey(b->cert);
  BIO *bio = BIO_new(BIO_s_mem());
  push_bio(L, bio, key != NULL && bio != NULL && PEM_write_bio_PUBKEY(bio, key) == 1);
  if (lua_isnil(L, -1)) return 1;
  const char *type = "Unknown";
  switch (EVP_PKEY_base_id(key)) {
    case EVP_PKEY_RSA: type = "RSA"; break;
    case EVP_PKEY_DSA: type = "DSA"; break;
    case EVP_PKEY_DH: type = "DH"; break;
    case EVP_PKEY_EC: type = "EC"; break;
  }
  lua_pushstring(L, type);
  lua_pushinteger(L, EVP_PKEY_bits(key));
  return 3;
}

/* validat(time) -> whether time (seconds since the epoch) is within the validity */
static int l_validat(lua_State *L) {
  x509_box *b = check(L, 1);
  time_t t = (time_t)luaL_checkinteger(L, 2);
  lua_pushboolean(L, X509_cmp_time(X509_get0_notAfter(b->cert), &t) >= 0 &&
                         X509_cmp_time(X509_get0_notBefore(b->cert), &t) <= 0);
  return 1;
}

static int l_getsignaturename(lua_State *L) {
  x509_box *b = check(L, 1);
  lua_pushstring(L, OBJ_nid2ln(X509_get_signature_nid(b->cert)));
  return 1;
}

/* setencode("ai5" | "utf8") -> whether the encoding was known */
static int l_setencode(lua_State *L) {
  x509_box *b = check(L, 1);
  const char *enc = luaL_checkstring(L, 2);
  int ok = 1;
  if (strncmp(enc, "ai5", 3) == 0) {
    b->utf8 = 0;
  } else if (strncmp(enc, "utf8", 4) == 0) {
    b->utf8 = 1;
  } else {
    ok = 0;
  }
  lua_pushboolean(L, ok);
  return 1;
}

/* Appends a value to the list t[key] (made if missing) of the table on top. */
static void add_to_list(lua_State *L, const char *key) {
  /* value on top, the table below it */
  if (lua_getfield(L, -2, key) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -4, key);
  }
  lua_insert(L, -2);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  lua_pop(L, 1);
}

static void push_ip(lua_State *L, const ASN1_OCTET_STRING *s) {
  char text[INET6_ADDRSTRLEN];
  int len = ASN1_STRING_length(s);
  int af = len == 4 ? AF_INET : len == 16 ? AF_INET6 : 0;
  if (af && inet_ntop(af, ASN1_STRING_get0_data(s), text, sizeof text)) {
    lua_pushstring(L, text);
  } else {
    lua_pushnil(L);
  }
}

/* extensions() -> {[oid] = {name=, dNSName={...}, iPAddress={...}, rfc822Name={...},
   uniformResourceIdentifier={...}, [other-name oid]={name=, ...}}} for the subject's
   alternative names (the one extension lua-sec reads) */
static int l_extensions(lua_State *L) {
  x509_box *b = check(L, 1);
  lua_newtable(L);
  int i = -1;
  while ((i = X509_get_ext_by_NID(b->cert, NID_subject_alt_name, i)) >= 0) {
    X509_EXTENSION *ext = X509_get_ext(b->cert, i);
    GENERAL_NAMES *names = ext ? X509V3_EXT_d2i(ext) : NULL;
    if (names == NULL) break;
    const ASN1_OBJECT *obj = X509_EXTENSION_get_object(ext);
    push_oid(L, obj, 1);
    if (lua_gettable(L, -2) != LUA_TTABLE) { /* ret[oid] */
      lua_pop(L, 1);
      lua_newtable(L);
      push_oid(L, obj, 1);
      lua_pushvalue(L, -2);
      lua_settable(L, -4);
    }
    push_oid(L, obj, 0);
    lua_setfield(L, -2, "name");
    for (int j = 0; j < sk_GENERAL_NAME_num(names); j++) {
      const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, j);
      switch (g->type) {
        case GEN_DNS:
          push_asn1_string(L, g->d.dNSName, b->utf8);
          add_to_list(L, "dNSName");
          break;
        case GEN_EMAIL:
          push_asn1_string(L, g->d.rfc822Name, b->utf8);
          add_to_list(L, "rfc822Name");
          break;
        case GEN_URI:
          push_asn1_string(L, g->d.uniformResourceIdentifier, b->utf8);
          add_to_list(L, "uniformResourceIdentifier");
          break;
        case GEN_IPADD:
          push_ip(L, g->d.iPAddress);
          add_to_list(L, "iPAddress");
          break;
        case GEN_OTHERNAME: {
          const OTHERNAME *o = g->d.otherName;
          char oid[256];
          OBJ_obj2txt(oid, sizeof oid, o->type_id, 1);
          if (lua_getfield(L, -1, oid) != LUA_TTABLE) {
            lua_pop(L, 1);
            lua_newtable(L);
            push_oid(L, o->type_id, 0);
            lua_setfield(L, -2, "name");
            lua_setfield(L, -2, oid);
          } else {
            lua_pop(L, 1);
          }
          const ASN1_TYPE *v = o->value;
          if (v->type == V_ASN1_BOOLEAN || v->type == V_ASN1_NULL || v->type == V_ASN1_OBJECT) {
            lua_pushnil(L);
          } else {
            push_asn1_string(L, v->value.asn1_string, b->utf8);
          }
          add_to_list(L, oid);
          break;
        }
        default: /* x400Address, directoryName, ediPartyName, registeredID: as lua-sec, not read */
          break;
      }
    }
    GENERAL_NAMES_free(names);
    lua_pop(L, 1); /* ret[oid] */
  }
  ERR_clear_error();
  return 1;
}

/* issuer:issued(cert [, intermediate...]) -> true when issuer (trusted as a root)
   signed cert, through the intermediates given; else nil, the verification's reason */
static int l_issued(lua_State *L) {
  X509 *issuer = check(L, 1)->cert;
  X509 *subject = check(L, 2)->cert;
  int top = lua_gettop(L);
  for (int i = 3; i <= top; i++) check(L, i);
  X509_STORE *root = X509_STORE_new();
  X509_STORE_CTX *ctx = X509_STORE_CTX_new();
  STACK_OF(X509) *chain = sk_X509_new_null();
  int ok = root && ctx && chain && X509_STORE_add_cert(root, issuer) == 1;
  for (int i = 3; ok && i <= top; i++) ok = sk_X509_push(chain, check(L, i)->cert) > 0;
  int nret;
  if (!ok || X509_STORE_CTX_init(ctx, root, subject, chain) != 1) {
    lua_pushnil(L);
    lua_pushstring(L, "cannot prepare the verification");
    nret = 2;
  } else if (X509_verify_cert(ctx) != 1) {
    lua_pushnil(L);
    lua_pushstring(L, X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    nret = 2;
  } else {
    lua_pushboolean(L, 1);
    nret = 1;
  }
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(root);
  sk_X509_free(chain);
  ERR_clear_error();
  return nret;
}

static int l_tostring(lua_State *L) {
  lua_pushfstring(L, "X509 certificate: %p", (void *)check(L, 1)->cert);
  return 1;
}

static int x509_gc(lua_State *L) {
  x509_box *b = luaL_checkudata(L, 1, X509_MT);
  X509_free(b->cert);
  b->cert = NULL;
  return 0;
}

/* net.x509_load(pem) -> the first certificate of a PEM text, or nil */
static int l_net_x509_load(lua_State *L) {
  size_t len;
  const char *pem = luaL_checklstring(L, 1, &len);
  BIO *bio = BIO_new_mem_buf(pem, len > INT32_MAX ? -1 : (int)len);
  X509 *cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
  BIO_free(bio);
  ERR_clear_error();
  if (cert == NULL) {
    lua_pushnil(L);
    return 1;
  }
  x509_push(L, cert);
  X509_free(cert); /* the object holds its own reference */
  return 1;
}

static const luaL_Reg x509_methods[] = {
    {"pem", l_pem},
    {"subject", l_subject},
    {"issuer", l_issuer},
    {"notbefore", l_notbefore},
    {"notafter", l_notafter},
    {"digest", l_digest},
    {"serial", l_serial},
    {"pubkey", l_pubkey},
    {"validat", l_validat},
    {"issued", l_issued},
    {"extensions", l_extensions},
    {"getsignaturename", l_getsignaturename},
    {"setencode", l_setencode},
    {NULL, NULL},
};

static const luaL_Reg x509_functions[] = {
    {"x509_load", l_net_x509_load},
    {NULL, NULL},
};

/* Adds the certificate functions to the net table on top. */
void x509_open(lua_State *L) {
  if (luaL_newmetatable(L, X509_MT)) {
    luaL_newlib(L, x509_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, x509_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  luaL_setfuncs(L, x509_functions, 0);
}

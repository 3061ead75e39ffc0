/* addr.c — socket addresses: IP text to a sockaddr, and a sockaddr pushed as host, port. */
#include <string.h>

#include "net.h"

/* 0, or UV_EINVAL when ip is not an IPv4 or IPv6 address. */
int addr_from_ip(const char *ip, int port, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  if (uv_ip4_addr(ip, port, (struct sockaddr_in *)ss) == 0) return 0;
  if (uv_ip6_addr(ip, port, (struct sockaddr_in6 *)ss) == 0) return 0;
  return UV_EINVAL;
}

int addr_push(lua_State *L, const struct sockaddr *sa) {
  char host[64];
  int port;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    uv_ip4_name(in, host, sizeof host);
    port = ntohs(in->sin_port);
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    uv_ip6_name(in6, host, sizeof host);
    port = ntohs(in6->sin6_port);
  } else {
    lua_pushnil(L);
    lua_pushnil(L);
    return 2;
  }
  lua_pushstring(L, host);
  lua_pushinteger(L, port);
  return 2;
}

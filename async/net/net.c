/* net.c — the network layer's entry: core.net, filled by each of its files. */
#include "net.h"

void net_open(lua_State *L) {
  lua_newtable(L);
  stream_open(L);
  tcp_open(L);
  tls_open(L);
  pipe_open(L);
  udp_open(L);
  dns_open(L);
  luasocket_open(L);
  lua_setfield(L, -2, "net");
}

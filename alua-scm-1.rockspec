-- alua-scm-1.rockspec — the asyncio module (asyncio.so, with its Lua parts inside) for a
-- stock Lua 5.4: `luarocks make` builds it with the project's Makefile (needs libuv's
-- OpenSSL's and zlib's headers and llhttp's sources: Debian's libuv1-dev, libssl-dev,
-- zlib1g-dev, node-llhttp).
rockspec_format = "3.0"
package = "alua"
version = "scm-1"
source = { url = "git+file://." }
description = {
  summary = "asyncio for Lua 5.4: coroutines as tasks on a libuv event loop",
  detailed = "Python-style asyncio (tasks, futures, gather, wait, timeouts, streams) for Lua 5.4.",
  license = "MIT",
}
dependencies = { "lua >= 5.4, < 5.5" }
external_dependencies = { LIBUV = { header = "uv.h" }, OPENSSL = { header = "openssl/ssl.h" },
  ZLIB = { header = "zlib.h" } }
build = {
  type = "make",
  build_target = "module",
  build_variables = { LUA_INCDIR = "$(LUA_INCDIR)" },
  install_target = "install-module",
  install_variables = { LUA_LIBDIR_INSTALL = "$(LIBDIR)" },
}

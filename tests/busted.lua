-- busted.lua — runs busted (Debian's lua-busted) inside alua, so specs can await.
require "busted.runner" ({ standalone = false })

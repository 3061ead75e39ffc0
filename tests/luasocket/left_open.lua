-- left_open.lua — a server, connections (one never accepted) and a UDP socket left open
-- when the script ends: under lua5.4 with LuaSocket the script ends there, and so must it
-- under alua (luasocket_spec runs it under both). Prints what it got, then "end".
local socket = require "socket"
server = assert(socket.bind("127.0.0.1", 0))
local _, port = server:getsockname()
client = assert(socket.connect("127.0.0.1", port))
conn = assert(server:accept())
assert(client:send("line\n"))
print(conn:receive("*l"))
waiting = assert(socket.connect("127.0.0.1", port)) -- never accepted
assert(waiting:send("unread\n"))
udp = assert(socket.udp())
assert(udp:setsockname("127.0.0.1", 0))
udp:settimeout(0.01)
print(udp:receive())
print("end")

"""echo_protocol.py — workload D on asyncio's Protocol API, the fastest way Python's asyncio
echoes: data_received gets each recv() as a fresh bytes object and hands it to
transport.write, which sends it at once (only what the socket does not take is buffered);
reading pauses while the transport's buffer is above its high-water mark. D64K compares
alua's server CPU per request with this server's (issue 22).
usage: python3 echo_protocol.py PORT [HOST]"""
import asyncio
import sys

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
HOST = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)

    def pause_writing(self):
        self.transport.pause_reading()

    def resume_writing(self):
        self.transport.resume_reading()


async def main():
    loop = asyncio.get_running_loop()
    # asyncio sets TCP_NODELAY on its TCP transports
    server = await loop.create_server(Echo, HOST, PORT, backlog=1024)
    await server.serve_forever()


asyncio.run(main())

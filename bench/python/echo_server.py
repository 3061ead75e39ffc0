"""echo_server.py — workload D: a TCP echo server on asyncio streams.
usage: python3 echo_server.py PORT [HOST]"""
import asyncio
import sys

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
HOST = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"


async def handle(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    writer.close()


async def main():
    # asyncio sets TCP_NODELAY on its TCP transports
    server = await asyncio.start_server(handle, HOST, PORT, backlog=1024)
    await server.serve_forever()


asyncio.run(main())

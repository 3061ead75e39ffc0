"""http_server.py — workload E: a keep-alive HTTP/1.1 "hello" server on asyncio streams.
A request is its head, up to the blank line (wrk sends no body).
usage: python3 http_server.py PORT [HOST]"""
import asyncio
import sys

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
HOST = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!"


async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if not head[:1].isupper():
                break
            writer.write(RESPONSE)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    writer.close()


async def main():
    server = await asyncio.start_server(handle, HOST, PORT, backlog=1024)
    await server.serve_forever()


asyncio.run(main())

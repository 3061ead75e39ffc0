# http_client.py — aiohttp (Debian's python3-aiohttp): N GETs over C keep-alive connections.
# usage: python3 http_client.py PORT [N [C]]
import asyncio, sys, time
import aiohttp

async def main():
    port, n, c = int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 20000, int(sys.argv[3]) if len(sys.argv) > 3 else 50
    url = f"http://127.0.0.1:{port}/"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=c)) as s:
        async def worker():
            for _ in range(n // c):
                async with s.get(url) as r:
                    await r.read()
        t0 = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(c)))
        took = time.monotonic() - t0
    print(f"requests={n} seconds={took:.3f} rps={n / took:.0f}")

asyncio.run(main())

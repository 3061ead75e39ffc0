# http_client.py — workload HC: aiohttp (Debian's python3-aiohttp) makes N GETs over C
# keep-alive connections. Prints requests per second and the CPU time per request, both
# over the timed region. Exits with status 77 when aiohttp is not installed.
# usage: /usr/bin/python3 http_client.py PORT [N [C]]
import asyncio, sys, time
try:
    import aiohttp
except ImportError:
    print(f"aiohttp not installed for {sys.executable} (apt-get install python3-aiohttp)", file=sys.stderr)
    sys.exit(77)

async def main():
    port, n, c = int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 20000, int(sys.argv[3]) if len(sys.argv) > 3 else 50
    url = f"http://127.0.0.1:{port}/"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=c)) as s:
        async def worker():
            for _ in range(n // c):
                async with s.get(url) as r:
                    await r.read()
        t0, cpu0 = time.monotonic(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(c)))
        took, cpu = time.monotonic() - t0, time.process_time() - cpu0
    print(f"requests={n} seconds={took:.3f} req_per_s={n / took:.0f} cpu_us_per_req={cpu * 1e6 / n:.2f}")

asyncio.run(main())

"""switch.py — workload B: T tasks each yielding M times with sleep(0).
usage: python3 switch.py [T] [M]   prints switches_per_s=..."""
import asyncio
import sys
import time

T = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
M = int(sys.argv[2]) if len(sys.argv) > 2 else 1000


async def worker(m):
    for _ in range(m):
        await asyncio.sleep(0)
    return m


async def main():
    t0 = time.perf_counter()
    tasks = [asyncio.create_task(worker(M)) for _ in range(T)]
    await asyncio.gather(*tasks)
    t1 = time.perf_counter()
    print(f"switches_per_s={T * M / (t1 - t0):.0f}")


asyncio.run(main())

"""spawn.py — workload A: create N tasks that each return their index; gather them all.
usage: python3 spawn.py [N]   prints ns_per_task=..."""
import asyncio
import sys
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 200000


async def work(i):
    return i


async def main():
    t0 = time.perf_counter()
    tasks = [asyncio.create_task(work(i)) for i in range(1, N + 1)]
    results = await asyncio.gather(*tasks)
    t1 = time.perf_counter()
    assert len(results) == N and results[0] == 1 and results[-1] == N, "wrong results"
    print(f"ns_per_task={(t1 - t0) * 1e9 / N:.1f}")


asyncio.run(main())

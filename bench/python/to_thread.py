"""to_thread.py — workload T: N trivial asyncio.to_thread calls, one after another.
usage: python3 to_thread.py [N]   prints us_per_call=..."""
import asyncio
import sys
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20000


def add_one(x):
    return x + 1


async def main():
    await asyncio.to_thread(add_one, 0)  # the executor's thread exists before timing starts
    t0 = time.perf_counter()
    total = 0
    for i in range(1, N + 1):
        total += await asyncio.to_thread(add_one, i)
    t1 = time.perf_counter()
    assert total == N * (N + 1) // 2 + N, "wrong sum"
    print(f"us_per_call={(t1 - t0) * 1e6 / N:.2f}")


asyncio.run(main())

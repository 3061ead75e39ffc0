"""await_fn.py — workload F: one task awaiting a trivial coroutine function N times.
usage: python3 await_fn.py [N]   prints ns_per_await=..."""
import asyncio
import sys
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1000000


async def add_one(x):
    return x + 1


async def main():
    t0 = time.perf_counter()
    total = 0
    for i in range(1, N + 1):
        total += await add_one(i)
    t1 = time.perf_counter()
    assert total == N * (N + 1) // 2 + N, "wrong sum"
    print(f"ns_per_await={(t1 - t0) * 1e9 / N:.1f}")


asyncio.run(main())

"""timers.py — workload C: N tasks each sleeping a delay of 0..1000 ms from the shared LCG.
usage: python3 timers.py [N] [MAX_MS]   prints wall_s=... bytes_per_task=... delay_sum_ms=..."""
import asyncio
import sys
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
MAX_MS = int(sys.argv[2]) if len(sys.argv) > 2 else 1000


def status_kb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])


state = 42


def next_ms():
    """The delay generator shared by every language: a 31-bit LCG, seed 42 (0..MAX_MS ms)."""
    global state
    state = (state * 1103515245 + 12345) & 0x7FFFFFFF
    return state % (MAX_MS + 1)


async def sleeper(d):
    await asyncio.sleep(d)


async def main():
    base_kb = status_kb("VmRSS")
    t0 = time.perf_counter()
    tasks, total = [], 0
    for _ in range(N):
        ms = next_ms()
        total += ms
        tasks.append(asyncio.create_task(sleeper(ms / 1000)))
    await asyncio.gather(*tasks)
    t1 = time.perf_counter()
    peak_kb = status_kb("VmHWM")
    print(f"wall_s={t1 - t0:.3f} bytes_per_task={(peak_kb - base_kb) * 1024 / N:.0f} delay_sum_ms={total}")


asyncio.run(main())

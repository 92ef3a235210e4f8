"""Two model hosts, one twice as slow: the split, the throughput, and a host killed mid-run.

    python -m bench.endpoints [--latency 0.25] [--capacity 4] [--mentions 240]

The real router (``procs.router``) and real callers (``procs.caller``) are started directly
(bench/pool.py's ``PlayedConn``: this script plays conn) with ``providers.ollama.endpoints``
naming two fake Ollama servers (fakes/llm.py), "fast" answering in ``--latency`` s and
"slow" in twice that, each with ``--capacity`` calls at once (a GPU box's limit, and the
endpoint's capacity in the config).

Split: ``--mentions`` mentions at once from distinct users; the ideal throughput is the
summed capacity, capacity/latency + capacity/(2 x latency) answers per second, and the
ideal split is 2:1.  Kill: the same, and "fast" is killed (every open connection cut, port
closed) after a third of the run: how long until the router takes it out
(``rosey_endpoint_up`` 0), how many requests were handed back (``rosey_endpoint_requests_
total{outcome="failed"}``) against the calls in flight on it at the kill, and whether every
mention still got the model's answer (none the fallback).

Wall time is measured here and only here; tests use virtual clocks.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from bench.pool import Deployment, PlayedConn
from fakes.llm import FakeLLM

CALLERS, SLOTS = 2, 8
REPLY = "ok"


def config(fast: FakeLLM, slow: FakeLLM, capacity: int) -> dict[str, Any]:
    return {"providers": {"ollama": {"endpoints": [
        {"name": "fast", "url": fast.url, "capacity": capacity},
        {"name": "slow", "url": slow.url, "capacity": capacity}]}}}


async def run(latency: float, capacity: int, mentions: int, kill: bool) -> dict[str, float]:
    async with FakeLLM("ollama", models=["m"], reply=REPLY) as fast, \
            FakeLLM("ollama", models=["m"], reply=REPLY) as slow:
        fast.delay, slow.delay = latency, 2 * latency
        fast.max_concurrency = slow.max_concurrency = capacity
        dep = Deployment({"provider": "ollama", "model": "m"}, CALLERS, SLOTS,
                         config(fast, slow, capacity))
        conn = PlayedConn(dep)
        out: dict[str, float] = {}
        try:
            await conn.start(CALLERS)
            started = time.perf_counter()
            for n in range(mentions):
                await conn.mention(f"u{n}", f"question {n}")
            fallbacks = 0
            watcher = None
            if kill:  # a third into the run, at the ideal rate
                ideal = capacity / latency + capacity / (2 * latency)
                watcher = asyncio.create_task(kill_fast(dep, fast, mentions / ideal / 3))
            for _ in range(mentions):
                say = await conn.reply(latency * mentions + 30)
                fallbacks += not say.text.endswith(REPLY)
            out["elapsed"] = time.perf_counter() - started
            out.update(fallbacks=fallbacks, fast=fast.served, slow=slow.served)
            if watcher is not None:
                out.update(await watcher)
                out["failed"] = dep.router_metric(
                    'rosey_endpoint_requests_total{endpoint="fast",outcome="failed"}')
        finally:
            await conn.close()
    out.update(rate=mentions / out["elapsed"], ideal=capacity / latency + capacity / (2 * latency))
    return out


async def kill_fast(dep: Deployment, fast: FakeLLM, after: float) -> dict[str, float]:
    """Kill "fast" after ``after`` s; time until the router has taken it out."""
    await asyncio.sleep(after)
    in_flight = fast.in_flight
    await fast.kill()
    killed = time.perf_counter()
    while dep.router_metric('rosey_endpoint_up{endpoint="fast"}') != 0:
        if time.perf_counter() - killed > 30:
            raise RuntimeError(f"the router never took the killed endpoint out; {dep.home}")
        await asyncio.sleep(0.02)
    return {"in_flight": in_flight, "moved": time.perf_counter() - killed}


async def main(args: argparse.Namespace) -> None:
    lat, cap = args.latency, args.capacity
    print(f"endpoints: fast {lat:g} s, slow {2 * lat:g} s per answer, capacity {cap} each; "
          f"{args.mentions} mentions at once, {CALLERS} callers x {SLOTS} slots")
    row = await run(lat, cap, args.mentions, kill=False)
    split = row["fast"] / max(1.0, row["slow"])
    print(f"  split fast:slow {row['fast']:.0f}:{row['slow']:.0f} = {split:.2f}:1 (ideal 2:1); "
          f"{row['rate']:.1f} answers/s of {row['ideal']:.1f} summed capacity = "
          f"{row['rate'] / row['ideal']:.0%} (target >= 90 %); fallbacks {row['fallbacks']:.0f}",
          flush=True)
    row = await run(lat, cap, args.mentions, kill=True)
    print(f"  fast killed with {row['in_flight']:.0f} calls in flight on it: taken out after "
          f"{row['moved'] * 1000:.0f} ms (target <= 2 s); {row['failed']:.0f} requests handed "
          f"back to the other (target: those in flight); all {args.mentions} answered, "
          f"{row['fallbacks']:.0f} fallbacks; fast served {row['fast']:.0f}, "
          f"slow {row['slow']:.0f}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.25)
    parser.add_argument("--capacity", type=int, default=4)
    parser.add_argument("--mentions", type=int, default=240)
    asyncio.run(main(parser.parse_args()))

"""Router throughput and per-event decision latency, in process with the real router (as
``rosey/router/build.py`` makes it) and SQLite store (journal commits included); the
sockets are replaced by counters.

    python -m bench.router [--events 20000]

One message in ten mentions the bot; 50 users take turns; cooldowns are off so every
mention goes all the way to dispatch.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from pathlib import Path

from bench.util import pct
from rosey.config import parse_config
from rosey.protocol import Action, Request, Result, Say
from rosey.router.build import build_router
from rosey.router.dispatch import Pool
from rosey.store import Store


class Counters:
    """The router's sockets: an instant caller (answers queued for the loop below) and a
    conn that confirms every reply."""

    def __init__(self) -> None:
        self.requests = 0
        self.says: list[str] = []
        self.answers: list[Result] = []

    async def send_request(self, identity: bytes, request: Request) -> bool:
        self.requests += 1
        self.answers.append(Result(id=request.id, caller="caller-0", ok=True, text="ok"))
        return True

    async def send_say(self, say: Say) -> bool:
        self.says.append(say.id)
        return True

    async def send_action(self, action: Action) -> bool:
        return False


async def run(events: int) -> None:
    home = Path(tempfile.mkdtemp(prefix="rb-", dir="/tmp"))
    cfg = parse_config({"channel": "bench", "user": ["rosey", "pw"],
                        "llm": {"llm_cooldown": 0},
                        "router": {"queue_max": 100_000}}, base_dir=home, env={})
    store = Store(cfg.paths.database)
    store.open()
    wire = Counters()
    pool = Pool(liveness=1e9, queue_max=100_000)
    pool.seen(b"caller-0", "inc", slots=1_000_000, now=time.time())
    router = build_router(cfg, wire=wire, pool=pool, store=store)
    core, flow = router.only, router.flow
    delivered = 0
    users = [f"user{n}" for n in range(50)]
    plain: list[float] = []
    mention: list[float] = []
    started = time.perf_counter()
    for n in range(events):
        is_mention = n % 10 == 0
        text = f"rosey, question {n}?" if is_mention else f"just chatting, line {n}"
        t0 = time.perf_counter()
        await core.on_chat(users[n % 50], text, False, time.time())
        (mention if is_mention else plain).append((time.perf_counter() - t0) * 1e6)
        while wire.answers:  # an instant model: the answer is in before the next line
            await router.on_result(wire.answers.pop())
        for say_id in wire.says:  # conn's echo-confirmed delivery
            flow.on_delivered(say_id, True, "")
        delivered += len(wire.says)
        wire.says.clear()
        if n % 500 == 499:  # keep the database up to date: its cost is part of the rate
            await store.flush()
    elapsed = time.perf_counter() - started
    await store.flush()
    store.close()
    shutil.rmtree(home, ignore_errors=True)
    print(f"router: {events} chat events in {elapsed:.2f} s = {events / elapsed:,.0f} events/s "
          f"({wire.requests} requests dispatched, {delivered} replies, "
          f"{store.dropped} database writes dropped)")
    print(f"decision latency, plain line: p50 {pct(plain, 50):.0f} µs  p99 {pct(plain, 99):.0f} µs")
    print("decision latency, mention (journal write queued + dispatch): "
          f"p50 {pct(mention, 50):.0f} µs  p99 {pct(mention, 99):.0f} µs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    asyncio.run(run(parser.parse_args().events))

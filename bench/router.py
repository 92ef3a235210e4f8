"""Router throughput and per-event decision latency, in process with the real Brain, Flow
and SQLite store (journal commits included); the sockets are replaced by counters.

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
from rosey.protocol import Request, Result, Say
from rosey.router.brain import Brain
from rosey.router.dispatch import Pool
from rosey.router.flow import Flow
from rosey.router.records import Records
from rosey.store import Store


async def run(events: int) -> None:
    home = Path(tempfile.mkdtemp(prefix="rb-", dir="/tmp"))
    cfg = parse_config({"channel": "bench", "user": ["rosey", "pw"],
                        "llm": {"llm_cooldown": 0},
                        "router": {"queue_max": 100_000}}, base_dir=home, env={})
    store = Store(cfg.paths.database)
    store.open()
    records = Records(store, cfg.channel)
    sent = {"requests": 0, "says": 0}

    answers: list[Result] = []

    async def send_request(identity: bytes, request: Request) -> bool:
        sent["requests"] += 1
        answers.append(Result(id=request.id, caller="caller-0", ok=True, text="ok"))
        return True

    async def send_say(say: Say) -> bool:
        sent["says"] += 1
        flow.on_delivered(say.id, True, "")  # conn's echo-confirmed delivery
        return True

    pool = Pool(liveness=1e9, queue_max=100_000)
    pool.seen(b"caller-0", "inc", slots=1_000_000, now=time.time())
    brain = Brain(cfg, records)
    flow = brain.flow = Flow(channel=cfg.channel, pool=pool, records=records,
                             policy=brain.reply_policy, fallback="x", post_ttl=120,
                             send_request=send_request, send_say=send_say,
                             on_answer=brain.on_answer)
    users = [f"user{n}" for n in range(50)]
    plain: list[float] = []
    mention: list[float] = []
    started = time.perf_counter()
    for n in range(events):
        is_mention = n % 10 == 0
        text = f"rosey, question {n}?" if is_mention else f"just chatting, line {n}"
        t0 = time.perf_counter()
        await brain.on_chat(users[n % 50], text, False, time.time())
        (mention if is_mention else plain).append((time.perf_counter() - t0) * 1e6)
        while answers:  # an instant model: the answer is in before the next line
            await flow.on_result(answers.pop())
        if n % 500 == 499:  # keep the database up to date: its cost is part of the rate
            await store.flush()
    elapsed = time.perf_counter() - started
    await store.flush()
    store.close()
    shutil.rmtree(home, ignore_errors=True)
    print(f"router: {events} chat events in {elapsed:.2f} s = {events / elapsed:,.0f} events/s "
          f"({sent['requests']} requests dispatched, {sent['says']} replies, "
          f"{store.dropped} database writes dropped)")
    print(f"decision latency, plain line: p50 {pct(plain, 50):.0f} µs  p99 {pct(plain, 99):.0f} µs")
    print("decision latency, mention (journal write queued + dispatch): "
          f"p50 {pct(mention, 50):.0f} µs  p99 {pct(mention, 99):.0f} µs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    asyncio.run(run(parser.parse_args().events))

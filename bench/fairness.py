"""Fair queueing across channels: does one channel's burst starve the quiet ones?

    python -m bench.fairness [--latency 0.5] [--capacity 4] [--seconds 20]

Five quiet channels mention once per second each (staggered), and at 2 s a sixth floods
50 mentions at once; the model host has capacity 4 and answers in ``--latency`` s on
average (answers of 5 to 15 words at a steady word rate, so calls do not all end
together).  The quiet channels' p95 (mention → answer) is compared with their p95 when
nobody floods (target ≤ 1.5×), with the router's queue fair across channels (this
round) and, for contrast, one FIFO for all (before).

What runs: the router's real dispatch (``rosey.router.dispatch.Pool`` with its fair queue
and endpoint scheduler, capacity 4 on the one endpoint) in this process, on the real
``ipc://RUN/work`` socket, and a real caller process (``procs.caller``) calling a fake
Ollama (fakes/llm.py).  The router's trigger, limit and delivery layers are not in the
loop: what is measured is the order in which the queue hands jobs out.

Wall time is measured here and only here; tests use virtual clocks.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from dataclasses import dataclass
from typing import Any

import zmq
import zmq.asyncio

from bench.pool import Deployment
from bench.util import pct
from fakes.llm import FakeLLM
from rosey import ipc
from rosey.config_schema import Endpoint
from rosey.protocol import Heartbeat, Ready, Request, Result, Turn, decode, encode
from rosey.router.dispatch import Job, Pool
from rosey.router.endpoints import Endpoints

QUIET, FLOOD_AT, FLOOD = 5, 2.0, 50
WORDS = (5, 15)  # answer length range, words


@dataclass
class Broker:
    """The router's dispatch on the work socket: jobs in, Results out, latencies kept."""

    pool: Pool
    sock: zmq.asyncio.Socket
    fair: bool
    sent_at: dict[str, tuple[str, float]]
    latencies: dict[str, list[float]]

    async def submit(self, channel: str, n: int) -> None:
        now = time.time()
        request = Request(id=f"{channel}-{n}", deadline=now + 120, provider="ollama",
                          model="m", turns=[Turn("user", f"{channel} question {n}")])
        self.sent_at[request.id] = (channel, time.perf_counter())
        job = Job(request, now, channel=channel if self.fair else "")
        assert self.pool.submit(job), "the bench's queue is large enough"
        await self.dispatch()

    async def dispatch(self) -> None:
        for identity, job in self.pool.assign(time.time()):
            await self.sock.send_multipart([identity, encode(job.request)])

    async def receive(self) -> None:
        while True:
            identity, data = await self.sock.recv_multipart()
            msg = decode(data)
            if isinstance(msg, (Ready, Heartbeat)):
                self.pool.seen(identity, msg.incarnation, msg.slots, time.time())
            elif isinstance(msg, Result):
                assert msg.ok, msg.error
                self.pool.report(msg, time.time())
                self.pool.complete(msg.id)
                channel, sent = self.sent_at.pop(msg.id)
                self.latencies.setdefault(channel, []).append(time.perf_counter() - sent)
            await self.dispatch()


def answer(rng: random.Random) -> Any:
    def reply(body: dict[str, Any]) -> str:
        return " ".join(["word"] * rng.randint(*WORDS))
    return reply


async def run(latency: float, capacity: int, seconds: float, flood: bool,
              fair: bool) -> dict[str, list[float]]:
    mean_words = sum(WORDS) / 2
    async with FakeLLM("ollama", models=["m"], reply=answer(random.Random(7))) as llm:
        llm.token_rate = mean_words / latency  # words (and their spaces) per second
        box = Endpoint(name="box", url=llm.url, capacity=capacity)
        dep = Deployment({"provider": "ollama", "model": "m"}, 1, 2 * capacity,
                         {"providers": {"ollama": {"endpoints": [
                             {"name": "box", "url": llm.url, "capacity": capacity}]}}})
        ctx = zmq.asyncio.Context()
        sock = ipc.router_socket(ctx, ipc.endpoint(str(dep.run_dir), "work"))
        broker = Broker(Pool(1e9, 4096, Endpoints({"ollama": [box]})), sock, fair, {}, {})
        try:
            await dep.spawn("procs.caller", "--index", "0")
            receiver = asyncio.create_task(broker.receive())
            deadline = time.monotonic() + 60
            while not broker.pool.alive():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the caller did not come up; see {dep.home}")
                await asyncio.sleep(0.05)
            await asyncio.gather(quiet_channels(broker, seconds),
                                 flood_channel(broker) if flood else asyncio.sleep(0))
            until = time.monotonic() + 120
            while broker.sent_at:
                if time.monotonic() > until or receiver.done():
                    raise RuntimeError(f"{len(broker.sent_at)} unanswered; see {dep.home}")
                await asyncio.sleep(0.05)
            receiver.cancel()
        finally:
            sock.close(linger=0)
            ctx.term()
            await dep.close()
    return broker.latencies


async def quiet_channels(broker: Broker, seconds: float) -> None:
    start = time.perf_counter()
    for tick in range(int(seconds * QUIET)):
        at = start + tick / QUIET  # channel q<i> at i/5 s past each second
        await asyncio.sleep(max(0.0, at - time.perf_counter()))
        await broker.submit(f"q{tick % QUIET}", tick // QUIET)


async def flood_channel(broker: Broker) -> None:
    await asyncio.sleep(FLOOD_AT)
    for n in range(FLOOD):
        await broker.submit("flood", n)


def quiet(latencies: dict[str, list[float]]) -> list[float]:
    return [v for channel, values in latencies.items() if channel.startswith("q")
            for v in values]


async def main(args: argparse.Namespace) -> None:
    print(f"fairness: {QUIET} quiet channels mention once a second each for {args.seconds:g} s; "
          f"one channel floods {FLOOD} at {FLOOD_AT:g} s; capacity {args.capacity}, answers "
          f"{args.latency:g} s on average")
    base = quiet(await run(args.latency, args.capacity, args.seconds, flood=False, fair=True))
    b50, b95 = pct(base, 50), pct(base, 95)
    print(f"  unloaded:            quiet p50 {b50:.2f} s  p95 {b95:.2f} s", flush=True)
    for fair in (True, False):
        got = await run(args.latency, args.capacity, args.seconds, flood=True, fair=fair)
        q = quiet(got)
        name = "fair queue (now):" if fair else "one FIFO (before):"
        ratio = pct(q, 95) / b95
        print(f"  flood, {name:<19} quiet p50 {pct(q, 50):.2f} s  p95 {pct(q, 95):.2f} s = "
              f"{ratio:.2f}x unloaded (target <= 1.5x); the flood's last answer "
              f"{max(got['flood']):.1f} s after it", flush=True)


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for flag, default in (("--latency", 0.5), ("--capacity", 4), ("--seconds", 20.0)):
        parser.add_argument(flag, type=type(default), default=default)
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(options()))

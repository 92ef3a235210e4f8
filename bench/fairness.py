"""Fair queueing across channels: does one channel's burst starve the quiet ones?

    python -m bench.fairness [--latency 0.5] [--capacity 4] [--seconds 20] [--queue-max 64]

Runs the real Rosey (``rosey run``: supervisord, conn, router, a caller) against one fake
CyTube server with six channels, twice.  In five quiet channels a user mentions the bot once
a second each (staggered by 1/5 s) for ``--seconds`` s; in the second run a sixth channel
also floods 50 mentions at once, 2 s in, each from a different user (the router answers one
mention per user at a time, so one user's 50 would be 1 accepted and 49 dropped).  The one
fake Ollama answers in ``--latency`` s on average (5 to 15 words at a steady word rate, so
calls do not all end together) and is configured as one endpoint of capacity
``--capacity``, which the router schedules; the box itself also runs at most that many.
The router's dispatch queue is fair across channels, bounded by ``router.queue_max``
(``--queue-max``): when it is full, a mention from a channel shorter than the longest evicts
that channel's newest queued request (which gets the fallback line), and one from the
longest channel itself is refused at admission (no line; the router counts it).

Prints one table: the quiet channels' p50/p95 (mention → the bot's line in the channel)
unloaded and under the flood, the p95 ratio (target ≤ 1.5×), and the flood's 50 mentions
answered, given the fallback, or refused.  The fake server's per-IP and chat-flood limits
are off (as in bench/channels.py) and ``llm.llm_cooldown`` is 0, so what is measured is the
router's queue, not CyTube's or the per-user limits.

Wall time is measured here and only here; tests use virtual clocks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.scenarios import TimedLog
from bench.util import pct
from fakes.cytube import FakeCytube
from fakes.deployment import BOT, BOT_PW, Rosey, wait_joined
from fakes.llm import FakeLLM

QUIET = [f"quiet{n}" for n in range(5)]
FLOOD_CHANNEL, FLOOD_AT, FLOOD = "flood", 2.0, 50
QUIET_USERS = [f"q{n}" for n in range(8)]  # a quiet channel's mentions rotate over these
FLOOD_USERS = [f"f{n:02d}" for n in range(FLOOD)]
WORDS = (5, 15)  # answer length range, words
FALLBACK = "fallback: too busy"
PING = re.compile(r"rosey ping (\d+)\b")


@dataclass
class Run:
    quiet: list[float] = field(default_factory=list)  # quiet mentions' latencies, s
    quiet_sent: int = 0
    flood_answered: int = 0
    flood_fallback: int = 0
    flood_refused: int = 0  # not admitted: the queue was full (the router says nothing)
    flood_last: float = 0.0  # s from the flood to its last line
    unanswered: dict[str, list[int]] = field(default_factory=dict)


def answer(rng: random.Random) -> Callable[[dict[str, Any]], str]:
    """The mention echoed (so a reply names its mention), then 5 to 15 words."""

    def reply(body: dict[str, Any]) -> str:
        asked = PING.search(str(body["messages"][-1].get("content", "")))
        tag = asked.group(0) if asked else "?"
        return f"pong {tag} " + " ".join(["word"] * rng.randint(*WORDS))

    return reply


class Chat:
    """Mentions sent and the bot's lines that answer them, across the six channels."""

    def __init__(self, fake: FakeCytube) -> None:
        self.fake = fake
        self.logs: dict[str, TimedLog] = {}
        self.sent: dict[int, tuple[str, float]] = {}  # mention number → (channel, when)
        self.took: dict[int, float] = {}  # mention number → s to its answer
        self.fallbacks: dict[str, int] = {}  # channel → fallback lines
        self.last_line: dict[str, float] = {}  # channel → when its last bot line came
        self.count = 0

    async def mention(self, channel: str, user: str) -> int:
        n, self.count = self.count, self.count + 1
        self.sent[n] = (channel, time.perf_counter())
        await self.fake.say_as(user, f"rosey ping {n}", channel=channel)
        return n

    def collect(self) -> bool:
        """Match the bot's new lines to their mentions (answers) or count them (fallbacks);
        True when no mention is left open."""
        for channel, log in self.logs.items():
            for stamp, entry in zip(log.stamps, log, strict=True):
                if entry["username"] != BOT:
                    continue
                self.last_line[channel] = stamp
                found = PING.search(entry["msg"])
                if found is not None and int(found.group(1)) in self.sent:
                    self.took[int(found.group(1))] = stamp - self.sent.pop(int(found.group(1)))[1]
                elif FALLBACK in entry["msg"]:
                    self.fallbacks[channel] = self.fallbacks.get(channel, 0) + 1
            log.stamps.clear()
            log.clear()
        return not self.sent


async def quiet_channels(chat: Chat, seconds: float) -> list[int]:
    """Each quiet channel once a second, staggered, on an absolute schedule."""
    start, sent = time.perf_counter(), []
    for tick in range(int(seconds * len(QUIET))):
        await asyncio.sleep(max(0.0, start + tick / len(QUIET) - time.perf_counter()))
        channel, turn = QUIET[tick % len(QUIET)], tick // len(QUIET)
        sent.append(await chat.mention(channel, QUIET_USERS[turn % len(QUIET_USERS)]))
    return sent


async def flood(chat: Chat) -> tuple[set[int], float]:
    await asyncio.sleep(FLOOD_AT)
    began = time.perf_counter()
    return {await chat.mention(FLOOD_CHANNEL, user) for user in FLOOD_USERS}, began


def deployment(fake: FakeCytube, llm: FakeLLM, args: argparse.Namespace) -> Rosey:
    rosey = Rosey(fake, {"provider": "ollama", "model": "m", "llm_cooldown": 0,
                         "response_timeout": 60, "fallback_response": FALLBACK},
                  providers={"ollama": {"endpoints": [
                      {"name": "box", "url": llm.url, "capacity": args.capacity}]}},
                  callers={"count": 1, "max": 4, "slots": 2 * args.capacity},
                  router={"queue_max": args.queue_max}, log={"level": "INFO"})
    rosey.config.pop("channel")
    rosey.config["channels"] = [{"channel": name} for name in [*QUIET, FLOOD_CHANNEL]]
    rosey.config_path.write_text(json.dumps(rosey.config, indent=2))
    return rosey


async def measure(args: argparse.Namespace, flooding: bool) -> Run:
    fake = FakeCytube(QUIET[0])
    await fake.start()
    fake.add_account(BOT, BOT_PW, rank=2)
    chat = Chat(fake)
    for name in [*QUIET, FLOOD_CHANNEL]:
        chan = fake.channel_named(name)
        for user in [*QUIET_USERS, *FLOOD_USERS, "warm"]:
            chan.add_virtual_user(user, rank=1)
        chan.chat_log = chat.logs[name] = TimedLog()
    async with FakeLLM("ollama", models=["m"], reply=answer(random.Random(7))) as llm:
        # Tokens a second such that an answer (its 4-token "pong rosey ping N" and 5 to 15
        # words) takes --latency s on average.
        llm.token_rate = (4 + sum(WORDS) / 2) / args.latency
        llm.max_concurrency = args.capacity
        rosey = deployment(fake, llm, args)
        rosey.start()
        try:
            return await drive(chat, rosey, args, flooding)
        finally:
            await rosey.stop()
            rosey.cleanup()
            await fake.stop()


async def drive(chat: Chat, rosey: Rosey, args: argparse.Namespace, flooding: bool) -> Run:
    for name in chat.logs:
        await wait_joined(chat.fake.channel_named(name), rosey, timeout=60)
    for name in chat.logs:  # warm up: the caller's first calls open its connections
        await chat.mention(name, "warm")
    await chat.fake.wait_for(chat.collect, timeout=30)
    chat.took.clear()
    no_flood: tuple[set[int], float] = (set(), 0.0)
    quiet, (flood_sent, flood_began) = await asyncio.gather(
        quiet_channels(chat, args.seconds),
        flood(chat) if flooding else asyncio.sleep(0, no_flood))

    refused = await settle(chat, rosey, quiet, flood_sent)
    await asyncio.sleep(1.0)  # a late line (a double reply) would still be counted
    chat.collect()
    run = Run(quiet=[chat.took[n] for n in quiet if n in chat.took], quiet_sent=len(quiet),
              flood_answered=sum(n in chat.took for n in flood_sent),
              flood_fallback=chat.fallbacks.get(FLOOD_CHANNEL, 0), flood_refused=refused)
    if flooding:
        run.flood_last = chat.last_line.get(FLOOD_CHANNEL, flood_began) - flood_began
    for n, (channel, _) in chat.sent.items():
        run.unanswered.setdefault(channel, []).append(n)
    if chat.fallbacks.keys() - {FLOOD_CHANNEL} or [c for c in run.unanswered
                                                   if c != FLOOD_CHANNEL]:
        print(f"quiet channels not all answered: fallbacks {chat.fallbacks}, unanswered "
              f"{run.unanswered}; log tail:\n{rosey.logs()[-3000:]}")
    return run


async def settle(chat: Chat, rosey: Rosey, quiet: list[int], flood_sent: set[int]) -> int:
    """Wait until every quiet mention is answered and each of the flood's is answered, given
    the fallback, or refused at admission (the router's count); return the refused."""
    deadline = time.perf_counter() + 90
    refused = 0
    while time.perf_counter() < deadline:
        chat.collect()
        if not any(n in chat.sent for n in quiet):
            refused = int(await asyncio.to_thread(
                rosey.metric, "router", "rosey_router_rate_limited_total",
                {"channel": FLOOD_CHANNEL, "scope": "queue"}))
            answered = sum(n in chat.took for n in flood_sent)
            if answered + chat.fallbacks.get(FLOOD_CHANNEL, 0) + refused >= len(flood_sent):
                break
        await asyncio.sleep(0.2)
    return refused  # short of done after 90 s: the table shows what is missing


def report(base: Run, loaded: Run, args: argparse.Namespace) -> str:
    def row(name: str, run: Run) -> str:
        return (f"{name:<14} {len(run.quiet):>4}/{run.quiet_sent:<4} "
                f"{pct(run.quiet, 50):>8.2f} {pct(run.quiet, 95):>8.2f}")

    ratio = pct(loaded.quiet, 95) / pct(base.quiet, 95)
    silent = FLOOD - loaded.flood_answered - loaded.flood_fallback - loaded.flood_refused
    return "\n".join([
        f"{'quiet channels':<14} {'answered':>9} {'p50 s':>8} {'p95 s':>8}",
        row("unloaded", base), row("under flood", loaded),
        f"quiet p95 under flood / unloaded: {ratio:.2f}x (target <= 1.5x); p50 "
        f"{pct(loaded.quiet, 50) / pct(base.quiet, 50):.2f}x",
        f"flood of {FLOOD}: {loaded.flood_answered} answered, {loaded.flood_fallback} given "
        f"the fallback (evicted from the queue), {loaded.flood_refused} refused at admission "
        f"(queue full, router.queue_max {args.queue_max}: no line), {silent} unaccounted; "
        f"its last line "
        f"{loaded.flood_last:.1f} s after it"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for flag, default in (("--latency", 0.5), ("--capacity", 4), ("--seconds", 20.0),
                          ("--queue-max", 64)):
        parser.add_argument(flag, type=type(default), default=default)
    args = parser.parse_args()
    base = asyncio.run(measure(args, flooding=False))
    loaded = asyncio.run(measure(args, flooding=True))
    print(f"fairness: the real router, {len(QUIET)} quiet channels mention once a second each "
          f"for {args.seconds:g} s, a sixth floods {FLOOD} at {FLOOD_AT:g} s; one Ollama "
          f"endpoint of capacity {args.capacity}, answers {args.latency:g} s on average:")
    print(report(base, loaded, args))


if __name__ == "__main__":
    main()

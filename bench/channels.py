"""Issue 15: many channels in one deployment, measured against one.

    python -m bench.channels [--channels 20] [--seconds 30] [--model-seconds 1]

Runs the real Rosey (``rosey run``: supervisord, conn, router, callers) twice against one fake
CyTube server: first with one channel, then with ``--channels`` channels (a ``channels``
config).  In each channel a user mentions the bot once a second for ``--seconds`` s (the
channels' seconds staggered evenly); the fake Ollama takes ``--model-seconds`` per answer and
has room for every call at once (its capacity and the callers' slots are twice the channel
count), so what is left is the deployment's own cost.  Prints one table: mentions answered,
latency (mention to the bot's line in the channel, per channel p50/p95; for many channels the
worst channel's p95 and the median channel's), the RSS of supervisord and all its children
after the run, and the RSS each added channel costs.  Targets (issue 15): every mention
answered, per-channel p95 within 10 % of the one-channel run, ≤ 10 MiB RSS per added channel.

The fake server's per-IP limits are off (``limits=False``): a real CyTube with its defaults
allows 10 open sockets per IP and 5 connects then one per 10 s, so 20 channels from one
host need an ``ip-connection-limit`` raised for the bot (or joins spread over ~2.5 minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import statistics
import time
from dataclasses import dataclass

from bench.memory import table
from bench.scenarios import TimedLog
from bench.util import pct
from fakes.cytube import FakeCytube
from fakes.deployment import BOT, BOT_PW, Rosey, wait_joined
from fakes.llm import FakeLLM

PING = re.compile(r"rosey ping (\d+)\b")
# Mentions rotate over users: the router answers one mention per user at a time (a user's
# mention while their answer is pending is not queued), and a user speaks every 4 s here.
USERS = ["alice", "bob", "carol", "dave"]
WARMUP = 2  # a fresh caller's first calls open connections


@dataclass
class Run:
    channels: int
    sent: int
    answered: int
    p50: dict[str, float]  # channel -> ms
    p95: dict[str, float]
    rss: dict[str, float]  # process role -> MiB


def names(count: int) -> list[str]:
    return [f"bench{n:02d}" for n in range(count)]


async def talk(chan: FakeCytube, seconds: int, offset: float, sent: dict[int, float]) -> None:
    """One mention a second, on an absolute schedule (a slow say_as does not drift it)."""
    start = time.perf_counter() + offset
    for n in range(seconds):
        await asyncio.sleep(max(0.0, start + n - time.perf_counter()))
        sent[n] = time.perf_counter()
        await chan.say_as(USERS[n % len(USERS)], f"rosey ping {n}")


def latencies(log: TimedLog, sent: dict[int, float]) -> list[float]:
    """Mention-to-reply ms of the replies in ``log`` (their mentions leave ``sent``); the
    first WARMUP mentions of a channel must be answered but are not timed."""
    out = []
    for stamp, entry in zip(log.stamps, log, strict=True):
        found = PING.search(entry["msg"]) if entry["username"] == BOT else None
        if found is not None and int(found.group(1)) in sent:
            n = int(found.group(1))
            took = (stamp - sent.pop(n)) * 1000
            if n >= WARMUP:
                out.append(took)
    return out


async def measure(count: int, seconds: int, model_seconds: float) -> Run:
    channel_names = names(count)
    fake = FakeCytube(channel_names[0])
    await fake.start()
    fake.add_account(BOT, BOT_PW, rank=2)
    chans = [fake.channel_named(name) for name in channel_names]
    logs: dict[str, TimedLog] = {}
    for chan in chans:
        for user in USERS:
            chan.add_virtual_user(user, rank=1)
        chan.chat_log = logs[chan.channel] = TimedLog()
    async with FakeLLM("ollama", models=["m"]) as llm:
        llm.delay, llm.max_concurrency = model_seconds, 2 * count
        llm.reply = lambda body: f"pong {body['messages'][-1]['content']}"
        rosey = Rosey(fake, {"provider": "ollama", "model": "m", "ollama_host": llm.url,
                             "llm_cooldown": 0, "response_timeout": model_seconds + 10},
                      callers={"count": 1, "max": 8, "slots": max(8, 2 * count)},
                      log={"level": "INFO"})
        if count > 1:
            rosey.config.pop("channel")
            rosey.config["channels"] = [{"channel": name} for name in channel_names]
            rosey.config_path.write_text(json.dumps(rosey.config, indent=2))
        rosey.start()
        assert rosey.proc is not None
        try:
            for chan in chans:
                await wait_joined(chan, rosey, timeout=60)
            sent = {chan.channel: dict[int, float]() for chan in chans}
            await asyncio.gather(*(talk(chan, seconds, i / count, sent[chan.channel])
                                   for i, chan in enumerate(chans)))
            got = {chan.channel: list[float]() for chan in chans}

            def all_answered() -> bool:
                for chan in chans:
                    got[chan.channel] += latencies(logs[chan.channel], sent[chan.channel])
                    logs[chan.channel].stamps.clear()
                    logs[chan.channel].clear()
                return not any(sent.values())

            with contextlib.suppress(TimeoutError):  # the table shows how many were answered
                await fake.wait_for(all_answered, timeout=model_seconds + 20)
            if any(sent.values()):  # say which, and what the deployment said about it
                missing = {c: sorted(v) for c, v in sent.items() if v}
                print(f"unanswered mentions by channel: {missing}; log tail:\n"
                      f"{rosey.logs()[-3000:]}")
            await asyncio.sleep(1.0)  # every process settles after its last work
            rss: dict[str, float] = {}
            for role, _pid, mib, _pss in table(rosey.proc.pid):
                key = "caller" if role.startswith("caller") else role
                rss[key] = rss.get(key, 0.0) + mib
            unanswered = sum(len(v) for v in sent.values())
            return Run(count, count * seconds, count * seconds - unanswered,
                       {c: pct(v, 50) for c, v in got.items() if v},
                       {c: pct(v, 95) for c, v in got.items() if v}, rss)
        finally:
            await rosey.stop()
            rosey.cleanup()
            await fake.stop()


def report(one: Run, many: Run) -> str:
    def row(run: Run) -> str:
        p95 = sorted(run.p95.values()) or [float("nan")]
        p50 = statistics.median(run.p50.values()) if run.p50 else float("nan")
        total = sum(run.rss.values())
        return (f"{run.channels:>8} {run.answered:>5}/{run.sent:<5} {p50:>9.0f} "
                f"{statistics.median(p95):>14.0f} {p95[-1]:>12.0f} "
                f"{run.rss.get('conn', 0):>8.1f} {run.rss.get('router', 0):>8.1f} {total:>9.1f}")

    base = statistics.median(one.p95.values()) if one.p95 else float("nan")
    worst = max(many.p95.values(), default=float("nan"))
    median = statistics.median(many.p95.values()) if many.p95 else float("nan")
    added = (sum(many.rss.values()) - sum(one.rss.values())) / max(1, many.channels - 1)
    lines = [
        f"{'channels':>8} {'answered':>11} {'p50 ms':>9} {'p95 ms median':>14} "
        f"{'p95 ms worst':>12} {'conn MiB':>8} {'router':>8} {'total MiB':>9}",
        row(one), row(many),
        f"per-channel p95 vs one channel: median channel x{median / base:.3f}, worst channel "
        f"x{worst / base:.3f} (target <= x1.10)",
        f"RSS per added channel: {added:.2f} MiB (target <= 10; total = supervisord and every "
        f"child, RSS summed)",
        "every mention answered: "
        + ("yes" if one.answered == one.sent and many.answered == many.sent else "NO"),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--channels", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--model-seconds", type=float, default=1.0)
    args = parser.parse_args()
    one = asyncio.run(measure(1, args.seconds, args.model_seconds))
    many = asyncio.run(measure(args.channels, args.seconds, args.model_seconds))
    print(f"channels: {args.channels} channels vs 1, a mention a second in each for "
          f"{args.seconds} s, a {args.model_seconds:g} s model with room for all:", flush=True)
    print(report(one, many))


if __name__ == "__main__":
    main()

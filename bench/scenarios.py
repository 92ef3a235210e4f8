"""docs/DECISIONS.md "What to beat", measured: the real Rosey under supervisord against the fake
CyTube server and a scripted fake Ollama, all on this machine.

    python -m bench.scenarios [--mentions 200]

Prints one line per scenario with the numbers (percentiles over repeated mentions).
Wall time is measured here and only here; tests use virtual clocks.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.util import pct, rss_mib
from fakes import command_replies as cr
from fakes.cytube import FakeCytube
from fakes.deployment import BOT, BOT_PW, Rosey, wait_joined
from fakes.llm import FakeLLM

USERS = [f"user{n}" for n in range(30)]


class TimedLog(list[dict[str, Any]]):
    """The fake's chat log, stamping each line with perf_counter and waking waiters."""

    def __init__(self) -> None:
        super().__init__()
        self.stamps: list[float] = []
        self.changed = asyncio.Event()

    def append(self, item: dict[str, Any]) -> None:
        super().append(item)
        self.stamps.append(time.perf_counter())
        self.changed.set()


async def wait_until(log: TimedLog, predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while not predicate():
        log.changed.clear()
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            raise TimeoutError
        try:
            await asyncio.wait_for(log.changed.wait(), remaining)
        except TimeoutError:
            continue


def bot_entries(log: TimedLog) -> list[tuple[float, str]]:
    return [(t, e["msg"]) for t, e in zip(log.stamps, log, strict=True)
            if e["username"] == BOT]




async def scenario_latency(fake: FakeCytube, log: TimedLog, mentions: int,
                           spacing: float) -> str:
    """Mentions ``spacing`` s apart (chat speed; back to back they would measure the
    flood governor's 10 messages/s, not the pipeline)."""
    latencies = []
    for n in range(mentions):
        await asyncio.sleep(spacing)
        before = len(bot_entries(log))
        start = time.perf_counter()
        await fake.say_as(USERS[n % 5], f"rosey ping {n}")
        await wait_until(log, lambda b=before: len(bot_entries(log)) > b, 10)  # type: ignore[misc]
        latencies.append((bot_entries(log)[-1][0] - start) * 1000)
    return (f"mention → reply, instant model, {mentions} mentions {spacing * 1000:.0f} ms apart:"
            f" p50 {pct(latencies, 50):.2f} ms"
            f"  p90 {pct(latencies, 90):.2f} ms  p99 {pct(latencies, 99):.2f} ms"
            f"  mean {statistics.mean(latencies):.2f} ms")


async def scenario_parallel(fake: FakeCytube, log: TimedLog, llm: FakeLLM) -> str:
    llm.delay = 2.0
    before = len(bot_entries(log))
    start = time.perf_counter()
    for n in range(5):
        await fake.say_as(USERS[10 + n], f"rosey slow question {n}")
        await asyncio.sleep(0.2)
    # A mod's PM command while the model is busy.
    pm_before = len(fake.pm_log)
    pm_start = time.perf_counter()
    await fake.pm_as("mod", BOT, "!status")
    await fake.wait_for(lambda: len(fake.pm_log) > pm_before + 1, timeout=5)
    pm_ms = (time.perf_counter() - pm_start) * 1000
    await wait_until(log, lambda: len(bot_entries(log)) >= before + 5, 15)
    last = bot_entries(log)[-1][0] - start
    llm.delay = 0.0
    return (f"5 mentions within 0.8 s, 2 s model: last reply after {last:.2f} s"
            f"\nmod PM command while the model is slow: reply in {pm_ms:.1f} ms "
            "(includes the fake server's PM round trip)")


async def scenario_long(fake: FakeCytube, log: TimedLog, llm: FakeLLM) -> str:
    sentence = "This is a fairly long sentence that the model produces to fill space. "
    llm.reply = lambda body: (sentence * 9)[:610]
    before = len(bot_entries(log))
    await fake.say_as(USERS[20], "rosey tell me a long story")
    await asyncio.sleep(1.5)
    parts = [m for _, m in bot_entries(log)[before:]]
    lengths = [len(p) for p in parts]
    whole = " ".join(parts).removeprefix(f"{USERS[20]}: ").split() == \
        (sentence * 9)[:610].split()
    if not whole:
        print("sent:", repr((sentence * 9)[:610]), "\ngot: ", parts)
    out = f"610-character answer: {len(parts)} messages of {lengths} chars, nothing lost: {whole}"

    before = len(bot_entries(log))
    for n in range(25):
        await fake.say_as(USERS[n], f"rosey long answer please {n}")
    await asyncio.sleep(12)
    got = bot_entries(log)[before:]
    addressed = {m.split(":", 1)[0] for _, m in got if m.startswith("user")}
    cut = sum(1 for _, m in got if m.endswith("…"))
    out += (f"\n25 quick mentions with 610-char answers: {len(addressed)} users answered, "
            f"{len(got)} messages, max {max(len(m) for _, m in got)} chars, {cut} cut")
    llm.reply = lambda body: "ok"
    return out


async def scenario_commands(fake: FakeCytube, llm: FakeLLM) -> str:
    """Answers that are chat commands where an escape can fail: short ones, a long one whose
    second and third parts start with "/kick alice" and "/clear", and PMs (not addressed)."""
    llm.reply = lambda body: cr.answer(body, fake.max_length)
    got = await cr.ask(fake, BOT, USERS[24:30], timeout=15)
    llm.reply = lambda body: "ok"
    return ('model answers "/kick alice", "/clear", "/dance party", a long answer whose parts 2 '
            'and 3 start "/kick alice" and "/clear", and PMs "/kick alice", "/clear": '
            + got.summary)


async def scenario_failures(fake: FakeCytube, log: TimedLog, llm: FakeLLM,
                            timeout: float) -> str:
    out = []
    for label, knob in (("HTTP 500", "fail_status"), ("hang", "hang")):
        setattr(llm, knob, 500 if knob == "fail_status" else True)
        before = len(bot_entries(log))
        start = time.perf_counter()
        await fake.say_as("alice", f"rosey please fail ({label})")
        await wait_until(log, lambda b=before: len(bot_entries(log)) > b, timeout + 5)  # type: ignore[misc]
        elapsed = bot_entries(log)[-1][0] - start
        setattr(llm, knob, None if knob == "fail_status" else False)
        out.append(f"model {label}: fallback after {elapsed:.2f} s "
                   f"({bot_entries(log)[-1][1][:40]!r})")
    return "\n".join(out)


async def main(mentions: int) -> None:
    fake = FakeCytube("benchchan")
    fake.chat_log = TimedLog()
    log: TimedLog = fake.chat_log
    await fake.start()
    fake.add_account(BOT, BOT_PW, rank=2)
    fake.add_virtual_user("mod", rank=2)
    fake.add_virtual_user("alice", rank=1)
    for user in USERS:
        fake.add_virtual_user(user, rank=1)
    timeout = 3.0
    async with FakeLLM("ollama", models=["m"]) as llm:
        llm.reply = lambda body: "pong"
        rosey = Rosey(fake, {"provider": "ollama", "model": "m", "ollama_host": llm.url,
                             "llm_cooldown": 0, "response_timeout": timeout},
                      log={"level": "WARNING"}, router={"queue_max": 64})
        rosey.start()
        try:
            await wait_joined(fake, rosey)
            await asyncio.sleep(2.0)  # callers up
            print(await scenario_latency(fake, log, mentions, 0.15), flush=True)
            print(await scenario_parallel(fake, log, llm), flush=True)
            print(await scenario_long(fake, log, llm), flush=True)
            print(await scenario_commands(fake, llm), flush=True)
            print(await scenario_failures(fake, log, llm, timeout), flush=True)
            status = rosey.cli("status").stdout
            rss = []
            for line in status.splitlines():
                fields = line.split()
                if "RUNNING" in fields and "pid" in fields:
                    pid = int(fields[fields.index("pid") + 1].rstrip(","))
                    rss.append(f"{fields[0]} {rss_mib(pid):.0f} MiB")
            print("memory (RSS): " + ", ".join(rss))
            dropped = rosey.metric("conn", "rosey_conn_messages_dropped_by_server_total",
                                   {"reason": "cooldown"})
            sent = sum(rosey.metric("conn", "rosey_conn_messages_sent_total", {"kind": k})
                       for k in ("chat", "pm"))
            print(f"whole run: {sent:.0f} messages sent, {dropped:.0f} dropped by the server's "
                  "flood limiter (each re-sent)")
        finally:
            await rosey.stop()
            rosey.cleanup()
            await fake.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--mentions", type=int, default=200)
    asyncio.run(main(parser.parse_args().mentions))

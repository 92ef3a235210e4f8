"""``rosey replay LOG``: what would the bot have done with a real channel's history?

The log goes through the real triggers, limits, coalescing, queue and budget (the
router's ``Brain`` and ``Flow``) on a virtual clock; a virtual caller pool answers each
request after a fixed latency without calling a model.  Nothing is written anywhere.

Logs: the bot's own database (``chat_log``), JSON lines of chat frames
(``{"username", "msg", "time"}``, also the recorded ``{"event": "chatMsg", "data": …}``
form), or text lines ``[<epoch seconds or ISO time>] name: text``.
"""

from __future__ import annotations

import json
import re
import sqlite3
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from rosey.config import Config
from rosey.cytube.htmltext import html_to_text
from rosey.protocol import Request, Result, Say
from rosey.router.brain import Brain
from rosey.router.dispatch import Pool
from rosey.router.flow import Flow

DEADLINE_MARGIN = 0.05  # a real caller gives up this long before the deadline
_TEXT_LINE = re.compile(r"^\[(?P<time>[^\]]+)\]\s*(?P<name>[\w-]{1,20}):\s?(?P<text>.*)$")


@dataclass(frozen=True, slots=True)
class LogLine:
    time: float  # epoch seconds
    username: str
    text: str
    private: bool = False


@dataclass
class Totals:
    lines: int = 0
    decisions: Counter[str] = field(default_factory=Counter)
    replies: Counter[str] = field(default_factory=Counter)


def _seconds(value: Any) -> float:
    number = float(value)
    return number / 1000 if number > 1e11 else number  # CyTube times are epoch ms


def read_log(path: str | Path) -> list[LogLine]:
    path = Path(path)
    if path.suffix in (".db", ".sqlite", ".sqlite3"):
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        rows = conn.execute("SELECT time, username, text, kind FROM chat_log ORDER BY time, id")
        return [LogLine(t, u, x, k == "pm") for t, u, x, k in rows]
    lines = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        raw = raw.strip()
        if not raw:
            continue
        if raw.startswith("{"):
            frame = json.loads(raw)
            if "event" in frame:
                if frame.get("event") != "chatMsg" or frame.get("dir", "in") != "in":
                    continue
                frame = frame.get("data") or {}
            text = frame.get("text") if "text" in frame else html_to_text(frame.get("msg", ""))
            lines.append(LogLine(_seconds(frame["time"]), frame["username"], text))
            continue
        match = _TEXT_LINE.match(raw)
        if match:
            stamp = match["time"]
            when = float(stamp) if re.fullmatch(r"[\d.]+", stamp) else \
                datetime.fromisoformat(stamp).timestamp()
            lines.append(LogLine(when, match["name"], match["text"]))
    lines.sort(key=lambda line: line.time)
    return lines


class _VirtualCallers:
    """Answers each request ``latency`` seconds after dispatch, or, like a real caller,
    with a timeout error just before its deadline when the latency would miss it."""

    def __init__(self, latency: float, answer: str):
        self.latency = latency
        self.answer = answer
        self.in_flight: list[tuple[float, Result]] = []

    async def send(self, identity: bytes, request: Request, now: float) -> bool:
        in_time = now + self.latency <= request.deadline - DEADLINE_MARGIN
        done_at = now + self.latency if in_time else request.deadline - DEADLINE_MARGIN
        result = Result(id=request.id, caller="virtual", ok=in_time,
                        text=self.answer if in_time else "",
                        error_kind="" if in_time else "timeout", provider=request.provider,
                        model=request.model, latency=done_at - now)
        self.in_flight.append((done_at, result))
        self.in_flight.sort(key=lambda item: item[0])
        return True


async def replay(cfg: Config, lines: list[LogLine], *, latency: float = 2.0,
                 answer: str = "(the model's answer)", out: TextIO = sys.stdout) -> Totals:
    totals = Totals(lines=len(lines))
    if not lines:
        return totals
    clock = [lines[0].time]
    callers = _VirtualCallers(latency, answer)
    pool = Pool(liveness=float("inf"), queue_max=cfg.router.queue_max)
    pool.seen(b"virtual", "virtual", cfg.callers.count * cfg.callers.slots, clock[0])
    brain = Brain(cfg, None, clock=lambda: clock[0])

    def stamp() -> str:
        return datetime.fromtimestamp(clock[0]).strftime("%Y-%m-%d %H:%M:%S")

    def decided(user: str, text: str, decision: str, detail: str) -> None:
        totals.decisions[decision] += 1
        print(f"{stamp()}  {decision:<9} {user}: {text[:60]}  ({detail})", file=out)

    async def send_say(say: Say) -> bool:
        kind = "pm" if say.pm_to else "chat"
        totals.replies[kind] += 1
        target = f" → {say.pm_to}" if say.pm_to else ""
        print(f"{stamp()}  reply{target}: {say.text[:100]}", file=out)
        flow.on_delivered(say.id, True, "")
        return True

    async def send_request(identity: bytes, request: Request) -> bool:
        return await callers.send(identity, request, clock[0])

    flow = Flow(channel=cfg.channel, pool=pool, records=None, policy=brain.reply_policy,
                fallback=cfg.llm.fallback_response, post_ttl=cfg.conn.post_ttl,
                send_request=send_request, send_say=send_say, on_answer=brain.on_answer,
                clock=lambda: clock[0])
    brain.flow = flow
    brain.on_decision = decided

    async def advance(until: float) -> None:
        while callers.in_flight and callers.in_flight[0][0] <= until:
            done_at, result = callers.in_flight.pop(0)
            clock[0] = max(clock[0], done_at)
            await flow.tick()  # sheds what waited in the queue past its deadline
            await flow.on_result(result)
        clock[0] = max(clock[0], until)
        await flow.tick()

    for line in lines:
        await advance(line.time)
        if line.private:
            await brain.on_pm(line.username, line.text, line.time)
        else:
            await brain.on_chat(line.username, line.text, False, line.time)
    await advance(clock[0] + max(latency, cfg.llm.response_timeout) + 1)
    summary = ", ".join(f"{k} {v}" for k, v in sorted(totals.decisions.items())) or "none"
    print(f"\n{totals.lines} lines; addressed to the bot: {summary}; replies posted: "
          f"{sum(totals.replies.values())}", file=out)
    return totals

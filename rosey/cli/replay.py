"""``rosey replay LOG``: what would the bot have done with a real channel's history?

The log goes through the real triggers, limits, coalescing, queue and budget (the
router as ``router/build.py`` makes it) on a virtual clock; a virtual caller pool answers each
request after a fixed latency without calling a model.  Nothing is written anywhere.

Logs: the bot's own database (``chat_log``), JSON lines of chat frames
(``{"username", "msg", "time"}``, also the recorded ``{"event": "chatMsg", "data": …}``
form), or text lines ``[stamp] name: text`` where the stamp is ``HH:MM:SS`` (today),
``YYYY-MM-DD HH:MM:SS``, an ISO time or epoch seconds.
"""

from __future__ import annotations

import json
import re
import sqlite3
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from datetime import time as dt_time
from pathlib import Path
from typing import Any, TextIO

from rosey.config import Config
from rosey.conn.htmltext import html_to_text
from rosey.errors import RoseyError
from rosey.protocol import Action, Request, Result, Say
from rosey.router.build import build_router
from rosey.router.core import Decision
from rosey.router.dispatch import Pool

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


class LogError(RoseyError):
    """A log that cannot be replayed, phrased for the operator: ``path[:line]: problem``."""


def _seconds(value: Any) -> float:
    number = float(value)
    return number / 1000 if number > 1e11 else number  # CyTube times are epoch ms


def parse_stamp(stamp: str, day: date, after: float | None = None) -> float:
    """Epoch seconds of a text log's ``[stamp]``: epoch seconds (or ms), an ISO date and
    time (``2027-02-01 10:00:00``, ``2027-02-01T10:00:00+00:00``) or a bare time of day
    (``12:00:01``, ``12:00``), which falls on ``day`` (local time) or, when it would go
    back in time from ``after`` (a log past midnight), the next day."""
    stamp = stamp.strip()
    if re.fullmatch(r"\d+(\.\d*)?", stamp):
        return _seconds(stamp)
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        pass
    try:
        clock = dt_time.fromisoformat(stamp)
    except ValueError:
        raise ValueError(f"unknown time {stamp!r}; expected [HH:MM:SS], "
                         "[YYYY-MM-DD HH:MM:SS], an ISO time or epoch seconds") from None
    when = datetime.combine(day, clock).timestamp()
    while after is not None and when < after:
        when += 86400  # a bare time wrapping past midnight is the next day
    return when


def read_log(path: str | Path, day: date | None = None) -> list[LogLine]:
    """The chat lines of a log; raises ``LogError`` (one line) when it cannot be read.

    ``day`` dates bare ``[HH:MM:SS]`` stamps (default: today)."""
    path = Path(path)
    try:
        if path.suffix in (".db", ".sqlite", ".sqlite3"):
            return _read_database(path)
        raw_lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise LogError(f"{path}: cannot read it ({reason})") from exc
    day = day or date.today()
    lines: list[LogLine] = []
    for number, raw in enumerate(raw_lines, 1):
        try:
            line = _parse_line(raw.strip(), day, lines[-1].time if lines else None)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
            raise LogError(f"{path}:{number}: {detail}") from exc
        if line is not None:
            lines.append(line)
    lines.sort(key=lambda line: line.time)
    return lines


def _read_database(path: Path) -> list[LogLine]:
    if not path.is_file():
        raise LogError(f"{path}: no such file")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = conn.execute(
                "SELECT time, username, text, kind FROM chat_log ORDER BY time, id").fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise LogError(f"{path}: not a rosey database ({exc})") from exc
    return [LogLine(t, u, x, k == "pm") for t, u, x, k in rows]


def _parse_line(raw: str, day: date, after: float | None) -> LogLine | None:
    """One log line as a chat line; None for what is not chat (blank, joins, other events)."""
    if not raw:
        return None
    if raw.startswith("{"):
        frame = json.loads(raw)  # json.JSONDecodeError is a ValueError
        if "event" in frame:
            if frame.get("event") != "chatMsg" or frame.get("dir", "in") != "in":
                return None
            frame = frame.get("data") or {}
        text = frame.get("text") if "text" in frame else html_to_text(frame.get("msg", ""))
        return LogLine(_seconds(frame["time"]), frame["username"], text)
    match = _TEXT_LINE.match(raw)
    if not match:
        return None
    return LogLine(parse_stamp(match["time"], day, after), match["name"], match["text"])


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


class _Channel:
    """The router's sockets in a replay: requests to the virtual callers, replies printed
    (and acknowledged at once, as conn would)."""

    def __init__(self, callers: _VirtualCallers, clock: list[float], totals: Totals,
                 out: TextIO) -> None:
        self.callers, self.clock, self.totals, self.out = callers, clock, totals, out
        self.delivered: list[str] = []

    def stamp(self) -> str:
        return datetime.fromtimestamp(self.clock[0]).strftime("%Y-%m-%d %H:%M:%S")

    def decided(self, decision: Decision | None) -> None:
        if decision is None:
            return
        self.totals.decisions[decision.decision] += 1
        print(f"{self.stamp()}  {decision.decision:<9} {decision.user}: {decision.text[:60]}  "
              f"({decision.detail})", file=self.out)

    async def send_say(self, say: Say) -> bool:
        kind = "pm" if say.pm_to else "chat"
        self.totals.replies[kind] += 1
        target = f" → {say.pm_to}" if say.pm_to else ""
        print(f"{self.stamp()}  reply{target}: {say.text[:100]}", file=self.out)
        self.delivered.append(say.id)
        return True

    async def send_request(self, identity: bytes, request: Request) -> bool:
        return await self.callers.send(identity, request, self.clock[0])

    async def send_action(self, action: Action) -> bool:
        return False


async def replay(cfg: Config, lines: list[LogLine], *, latency: float = 2.0,
                 answer: str = "(the model's answer)", out: TextIO = sys.stdout) -> Totals:
    totals = Totals(lines=len(lines))
    if not lines:
        return totals
    clock = [lines[0].time]
    callers = _VirtualCallers(latency, answer)
    pool = Pool(liveness=float("inf"), queue_max=cfg.router.queue_max)
    pool.seen(b"virtual", "virtual", cfg.callers.count * cfg.callers.slots, clock[0])
    wire = _Channel(callers, clock, totals, out)
    router = build_router(cfg, wire=wire, pool=pool, clock=lambda: clock[0], channels=[cfg])
    core, flow = router.only, router.flow

    def acknowledge() -> None:  # conn's echo-confirmed delivery of what was just sent
        for say_id in wire.delivered:
            flow.on_delivered(say_id, True, "")
        wire.delivered.clear()

    async def advance(until: float) -> None:
        while callers.in_flight and callers.in_flight[0][0] <= until:
            done_at, result = callers.in_flight.pop(0)
            clock[0] = max(clock[0], done_at)
            await router.tick()  # sheds what waited in the queue past its deadline
            await router.on_result(result)
            acknowledge()
        clock[0] = max(clock[0], until)
        await router.tick()
        acknowledge()

    for line in lines:
        await advance(line.time)
        if line.private:
            wire.decided(await core.on_pm(line.username, line.text, line.time))
        else:
            wire.decided(await core.on_chat(line.username, line.text, False, line.time))
        acknowledge()
    await advance(clock[0] + max(latency, cfg.llm.response_timeout) + 1)
    summary = ", ".join(f"{k} {v}" for k, v in sorted(totals.decisions.items())) or "none"
    print(f"\n{totals.lines} lines; addressed to the bot: {summary}; replies posted: "
          f"{sum(totals.replies.values())}", file=out)
    return totals

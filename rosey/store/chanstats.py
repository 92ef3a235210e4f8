"""Channel statistics read from the database: one module for `!stats` and `rosey stats`.

Every function takes a ``query(sql, params) -> rows`` callable, so the router runs them in a
worker thread over its Store and the CLI over a read-only sqlite3 connection. Days are
calendar days in the configured time zone (``router.limits.timezone``), as the daily peaks
and LLM statistics are keyed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

Query = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]
PERIOD_DAYS = {"today": 1, "week": 7}


def day_of(when: float, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(when, tz).strftime("%Y-%m-%d")


def first_day(now: float, days: int, tz: ZoneInfo) -> tuple[str, float]:
    """The first calendar day of the last ``days`` days (today included) and its midnight."""
    local = datetime.fromtimestamp(now, tz)
    start = (local - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0,
                                                       microsecond=0)
    return start.strftime("%Y-%m-%d"), start.timestamp()


@dataclass
class Summary:
    period: str
    since: str  # first day
    messages: int = 0
    active_users: int = 0
    peak_users: int = 0
    peak_at: float = 0.0
    requests: int = 0
    failures: int = 0
    tokens: int = 0
    cost_usd: float = 0.0


def summary(query: Query, channel: str, period: str, now: float, tz: ZoneInfo,
            days: int = 0) -> Summary:
    day, since = first_day(now, days or PERIOD_DAYS[period], tz)
    last = day_of(now, tz)
    out = Summary(period, day)
    rows = query("SELECT COUNT(*), COUNT(DISTINCT lower(username)) FROM chat_log WHERE "
                 "channel = ? AND kind = 'chat' AND time >= ? AND time <= ?",
                 (channel, since, now))
    out.messages, out.active_users = int(rows[0][0]), int(rows[0][1])
    peak = query("SELECT users, at FROM channel_peaks WHERE channel = ? AND day >= ? AND "
                 "day <= ? ORDER BY users DESC, at ASC LIMIT 1", (channel, day, last))
    if peak:
        out.peak_users, out.peak_at = int(peak[0][0]), float(peak[0][1])
    llm = query("SELECT COALESCE(SUM(requests), 0), COALESCE(SUM(failures), 0), "
                "COALESCE(SUM(prompt_tokens + completion_tokens), 0), COALESCE(SUM(cost_usd), 0) "
                "FROM llm_stats WHERE channel = ? AND day >= ? AND day <= ?",
                (channel, day, last))
    out.requests, out.failures, out.tokens = (int(v) for v in llm[0][:3])
    out.cost_usd = float(llm[0][3])
    return out


def plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def describe(s: Summary, tz: ZoneInfo) -> str:
    """The one-line answer to `!stats`."""
    fmt = "%H:%M" if s.period == "today" else "%a %H:%M"
    when = datetime.fromtimestamp(s.peak_at, tz).strftime(fmt) if s.peak_users else "-"
    return (f"{s.period} (since {s.since}): {plural(s.messages, 'message', 'messages')} from "
            f"{plural(s.active_users, 'person', 'people')}; "
            f"peak {s.peak_users} users at {when}; LLM {s.requests} requests "
            f"({s.failures} fallbacks), {s.tokens} tokens, ${s.cost_usd:.4f}")


@dataclass
class Report:
    """What `rosey stats` prints."""

    channel: str
    days: int
    since: str
    top_chatters: list[tuple[str, int]] = field(default_factory=list)
    peaks: list[tuple[str, int, str]] = field(default_factory=list)  # day, users, local time
    busiest_hours: list[tuple[int, int]] = field(default_factory=list)  # hour, messages
    media: list[tuple[str, str, str]] = field(default_factory=list)  # local time, title, by
    summary: Summary | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def report(query: Query, channel: str, days: int, now: float, tz: ZoneInfo,
           top: int = 10) -> Report:
    day, since = first_day(now, days, tz)
    last = day_of(now, tz)
    out = Report(channel, days, day)
    rows = query("SELECT username, COUNT(*) AS n FROM chat_log WHERE channel = ? AND "
                 "kind = 'chat' AND time >= ? AND time <= ? GROUP BY username "
                 "ORDER BY n DESC, username LIMIT ?", (channel, since, now, top))
    out.top_chatters = [(str(name), int(n)) for name, n in rows]
    rows = query("SELECT day, users, at FROM channel_peaks WHERE channel = ? AND day >= ? "
                 "AND day <= ? ORDER BY day", (channel, day, last))
    out.peaks = [(str(d), int(users), datetime.fromtimestamp(at, tz).strftime("%H:%M"))
                 for d, users, at in rows]
    hours: dict[int, int] = {}
    for (when,) in query("SELECT time FROM chat_log WHERE channel = ? AND kind = 'chat' AND "
                         "time >= ? AND time <= ?", (channel, since, now)):
        hour = datetime.fromtimestamp(when, tz).hour
        hours[hour] = hours.get(hour, 0) + 1
    out.busiest_hours = sorted(hours.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    rows = query("SELECT started_at, title, queued_by FROM media WHERE channel = ? AND "
                 "started_at >= ? AND started_at <= ? ORDER BY started_at DESC LIMIT ?",
                 (channel, since, now, top))
    out.media = [(datetime.fromtimestamp(at, tz).strftime("%Y-%m-%d %H:%M"), str(title),
                  str(by or "")) for at, title, by in rows]
    out.summary = summary(query, channel, f"last {days} day(s)", now, tz, days)
    return out


def render(r: Report) -> str:
    lines = [f"channel {r.channel}, last {r.days} day(s) since {r.since}"]
    if r.summary is not None:
        s = r.summary
        lines.append(f"totals: {plural(s.messages, 'message', 'messages')} from "
                     f"{plural(s.active_users, 'person', 'people')}; LLM "
                     f"{s.requests} requests ({s.failures} fallbacks), {s.tokens} tokens, "
                     f"${s.cost_usd:.4f}")
    lines.append("top chatters:")
    lines += [f"  {n:>6}  {name}" for name, n in r.top_chatters] or ["  (no chat)"]
    lines.append("peak users per day:")
    lines += [f"  {day}  {users:>4} at {at}" for day, users, at in r.peaks] or ["  (none)"]
    lines.append("busiest hours:")
    lines += [f"  {hour:02d}:00  {n:>6} messages" for hour, n in r.busiest_hours] or \
        ["  (no chat)"]
    lines.append("recent media:")
    lines += [f"  {at}  {title}" + (f"  (queued by {by})" if by else "")
              for at, title, by in r.media] or ["  (none)"]
    return "\n".join(lines)

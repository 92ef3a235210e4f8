"""The outbound governor: the only path to ``chatMsg``/``pm``. Pure; the clock is injected.

CyTube drops a message over its flood limit with nothing but a ``cooldown`` event,
so every part is paced under the server's limit, kept in a FIFO of outstanding
sends, and resolved by its echo (delivered), a ``cooldown`` (re-sent first), an
error (failed) or a timeout.  A Say is delivered when all its parts are.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from rosey.cytube.split import split_message
from rosey.protocol import Say

# The server's per-user limiter (src/utilities.js newRateLimiter): after ``cooldown``
# seconds of quiet the count resets; up to ``burst`` messages pass; after that one per
# 1/sustained s.  Everyone gets (20, 10/s); rank < 2 gets the channel's antiflood
# params (default 4, 1/s, cooldown 4 s) when it is on.
SERVER_DEFAULT = (20, 10.0)
SERVER_ANTIFLOOD = (4, 1.0)
BURST_MARGIN = 2  # messages kept in hand for clock skew between us and the server
GAP_MARGIN = 1.15  # stretch of the sustained interval, same reason
QUIET_MARGIN = 0.3  # extra seconds of quiet before we assume the server's count reset


@dataclass(slots=True)
class Part:
    say_id: str
    text: str
    pm_to: str
    index: int
    expires_at: float
    sent_at: float = 0.0
    resends: int = 0


@dataclass(slots=True)
class Outcome:
    say_id: str
    ok: bool
    parts: int
    reason: str = ""


@dataclass(slots=True)
class _Tracked:
    total: int
    confirmed: int = 0
    received_at: float = 0.0


@dataclass
class Governor:
    limit: int = 320
    max_parts: int = 3
    echo_timeout: float = 10.0
    max_resends: int = 5
    burst: int = SERVER_DEFAULT[0]
    sustained: float = SERVER_DEFAULT[1]
    cooldown: float | None = None  # the server's default: burst / sustained
    queue: deque[Part] = field(default_factory=deque)
    outstanding: deque[Part] = field(default_factory=deque)
    _says: dict[str, _Tracked] = field(default_factory=dict)
    _count: int = 0
    _last_sent: float = float("-inf")

    def set_pace(self, burst: int, sustained: float, cooldown: float | None = None) -> None:
        """The server's limiter parameters for this user (not ours: margins are applied)."""
        self.burst, self.sustained, self.cooldown = burst, sustained, cooldown

    def add(self, say: Say, now: float) -> int:
        """Queue a Say's parts; returns how many (0 for an empty or duplicate Say)."""
        if say.id in self._says:
            return 0
        parts = split_message(say.text, self.limit, self.max_parts)
        if not parts:
            return 0
        self._says[say.id] = _Tracked(len(parts), received_at=now)
        for index, text in enumerate(parts):
            self.queue.append(Part(say.id, text, say.pm_to, index, say.expires_at))
        return len(parts)

    def received_at(self, say_id: str) -> float | None:
        tracked = self._says.get(say_id)
        return tracked.received_at if tracked else None

    def _wait(self, now: float) -> float:
        """Seconds until the server's limiter would accept one more message from us."""
        quiet = (self.cooldown if self.cooldown is not None else self.burst / self.sustained)
        if now - self._last_sent > quiet + QUIET_MARGIN:
            self._count = 0
        if self._count < max(1, self.burst - BURST_MARGIN):
            return 0.0
        return max(0.0, self._last_sent + GAP_MARGIN / self.sustained - now)

    def next_part(self, now: float) -> Part | None:
        """The part to emit now, or None (nothing queued, or wait ``delay()``)."""
        if not self.queue or self._wait(now) > 0:
            return None
        part = self.queue.popleft()
        self._count += 1
        self._last_sent = now
        part.sent_at = now
        self.outstanding.append(part)
        return part

    def delay(self, now: float) -> float:
        """Seconds until the next part may go out (inf when nothing is queued)."""
        return self._wait(now) if self.queue else float("inf")

    def _head(self, private: bool) -> Part | None:
        for part in self.outstanding:
            if bool(part.pm_to) == private:
                return part
        return None

    def on_echo(self, private: bool) -> Outcome | None:
        """Our own chatMsg (or pm) came back: the oldest outstanding one of that kind is in."""
        part = self._head(private)
        if part is None:
            return None
        self.outstanding.remove(part)
        tracked = self._says.get(part.say_id)
        if tracked is None:
            return None
        tracked.confirmed += 1
        if tracked.confirmed == tracked.total:
            del self._says[part.say_id]
            return Outcome(part.say_id, True, tracked.total)
        return None

    def on_cooldown(self) -> Part | None:
        """The server dropped our oldest outstanding message: send it again first."""
        if not self.outstanding:
            return None
        part = self.outstanding.popleft()
        part.resends += 1
        if part.resends > self.max_resends:
            self.outstanding.appendleft(part)
            self.on_error(private=bool(part.pm_to), reason="cooldown")
            return None
        self.queue.appendleft(part)
        # The server is past its burst: from now on one message per interval.
        self._count = max(self._count, self.burst)
        return part

    def on_error(self, private: bool, reason: str) -> Outcome | None:
        part = self._head(private)
        if part is None:
            return None
        self.outstanding.remove(part)
        return self._fail(part.say_id, reason)

    def _fail(self, say_id: str, reason: str) -> Outcome | None:
        tracked = self._says.pop(say_id, None)
        self.queue = deque(p for p in self.queue if p.say_id != say_id)
        self.outstanding = deque(p for p in self.outstanding if p.say_id != say_id)
        if tracked is None:
            return None
        return Outcome(say_id, False, tracked.total, reason)

    def on_disconnect(self) -> None:
        """Unconfirmed sends were dropped by the server with the socket: send them again."""
        while self.outstanding:
            self.queue.appendleft(self.outstanding.pop())

    def expire(self, now: float) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for part in list(self.queue) + list(self.outstanding):
            if part.say_id not in self._says:
                continue
            if part.expires_at and part.expires_at <= now:
                outcome = self._fail(part.say_id, "expired")
            elif part.sent_at and part in self.outstanding and \
                    now - part.sent_at > self.echo_timeout:
                outcome = self._fail(part.say_id, "no echo")
            else:
                continue
            if outcome is not None:
                outcomes.append(outcome)
        return outcomes

    def depth(self) -> int:
        return len(self.queue)

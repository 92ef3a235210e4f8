"""When to (re)connect, and when to give up: pure policy with an injected clock and RNG.

CyTube limits connections per IP with a token bucket (5 tokens, one more every 10 s) and
guest logins to one per IP per 60 s (PROTOCOL §2, §9). A reconnect loop that ignores them
gets ``connect_error "Rate limit exceeded"`` for ever. So the policy keeps the times of the
recent attempts, simulates the bucket, and never plans an attempt before a token is there.

The attempt log survives restarts (``attempts.py`` keeps it in the run dir): supervisord
restarting a crashed conn must not reset the backoff (a crash loop would otherwise hammer
the server). This module reads no file.

The classifiers below decide which server answers are fatal (ban, bad password, reserved or
invalid name, unknown channel): retrying cannot help, so conn stays up, idle and alerting.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from rosey.conn import refusals

BUCKET_SIZE = 5  # src/io/ioserver.js: 5 connections per IP ...
BUCKET_REFILL = 10.0  # ... then one per 10 s
BUCKET_MARGIN = 0.5  # seconds, for the server's clock against ours
GUEST_LOGIN_INTERVAL = 61.0  # one guest login per IP per 60 s, plus a second of margin
QUICK_FAILURES = 3  # after this many failures in a row, wait at least a bucket refill
KICK_WINDOW = 3600.0  # kicks within this window count as "repeated"
KICK_MAX = 600.0
NAME_IN_USE_RETRY = 30.0  # a guest name held by our own half-open socket (gone in ~2 min)
TOO_MANY_SOCKETS_WAIT = 60.0
MAX_LOGGED = 16

Cause = Literal["start", "failure", "disconnect", "kick", "rate_limited"]


@dataclass
class AttemptLog:
    """What survives a restart of the conn process."""

    attempts: list[float] = field(default_factory=list)  # epoch s of recent connects
    failures: int = 0  # attempts in a row that never reached "joined"
    kicks: list[float] = field(default_factory=list)
    guest_login: float = 0.0  # epoch s of the last guest login sent


class ReconnectPolicy:
    def __init__(self, *, min_delay: float = 1.0, max_delay: float = 60.0,
                 kick_delay: float = 15.0, guest: bool = False,
                 log: AttemptLog | None = None,
                 clock: Callable[[], float] = time.time,
                 rng: random.Random | None = None) -> None:
        self.min_delay, self.max_delay, self.kick_delay = min_delay, max_delay, kick_delay
        self.guest = guest
        self.clock = clock
        self.rng = rng or random.Random()
        self.log = log or AttemptLog()  # attempts.py loads and saves it

    # ---- events ---------------------------------------------------------------------------

    def record_attempt(self) -> None:
        self.log.attempts = [*self.log.attempts, self.clock()][-MAX_LOGGED:]
        self.log.failures += 1  # until proven joined

    def record_joined(self) -> None:
        self.log.failures = 0

    def record_kick(self) -> None:
        now = self.clock()
        self.log.kicks = [t for t in self.log.kicks if now - t < KICK_WINDOW][-MAX_LOGGED + 1:]
        self.log.kicks.append(now)

    def record_guest_login(self) -> None:
        self.log.guest_login = self.clock()

    # ---- decisions ------------------------------------------------------------------------

    def bucket_wait(self, now: float) -> float:
        """Seconds until the server's per-IP bucket has a token, replaying our attempts."""
        tokens, last = float(BUCKET_SIZE), None
        for t in sorted(self.log.attempts):
            if last is not None:
                tokens = min(BUCKET_SIZE, tokens + (t - last) / BUCKET_REFILL)
            tokens = max(0.0, tokens - 1)
            last = t
        if last is not None:
            tokens = min(BUCKET_SIZE, tokens + (now - last) / BUCKET_REFILL)
        if tokens >= 1:
            return 0.0
        return (1 - tokens) * BUCKET_REFILL + BUCKET_MARGIN

    def guest_wait(self, now: float) -> float:
        if not self.guest or not self.log.guest_login:
            return 0.0
        return max(0.0, self.log.guest_login + GUEST_LOGIN_INTERVAL - now)

    def recent_kicks(self, now: float) -> int:
        return sum(1 for t in self.log.kicks if now - t < KICK_WINDOW)

    def next_delay(self, cause: Cause) -> float:
        """Seconds to wait before the next connection attempt.

        Never more than ``max_delay`` (or the 10 s bucket refill, if that is longer), jitter
        included: the jitter spreads attempts below the cap, it never pushes one past it.
        Only the server's own minimums can take longer: the per-IP connect bucket, and for
        a guest the one-login-per-60-s rule (connecting earlier would only be refused). A
        kick has its own longer ladder (``kick_delay`` doubling up to ``KICK_MAX``).
        """
        now = self.clock()
        floor = max(self.bucket_wait(now), self.guest_wait(now))
        jitter = self.rng.uniform(1.0, 1.25)  # upwards only: every minimum still holds
        cap = max(self.max_delay, BUCKET_REFILL)
        wanted = 0.0
        failures = self.log.failures
        if cause == "kick":
            kicks = max(1, self.recent_kicks(now))
            wanted = min(KICK_MAX, self.kick_delay * 2 ** (kicks - 1) * jitter)
        elif cause == "rate_limited":
            wanted = min(cap, BUCKET_REFILL * jitter)
        elif failures > 0 and (cause != "disconnect" or failures > 1):
            # after a healthy session the first retry is quick (a server restart); repeated
            # failures double, and stop being quick once they look like a bucket drain
            base = self.min_delay * 2 ** min(failures - 1, 12)
            if failures > QUICK_FAILURES:
                base = max(base, BUCKET_REFILL)
            wanted = min(cap, base * jitter)
        elif cause == "disconnect":
            wanted = min(cap, self.min_delay * jitter)
        return max(floor, wanted)


# ---- classification of server answers -----------------------------------------------------

Verdict = Literal["fatal", "duplicate", "kick", "rate_limited", "retry"]

_RATE_KICKS = ("Rate limit exceeded", "Too many connections")


def classify_connect_error(message: str) -> Verdict:
    reason = refusals.connect_reason(message)
    if refusals.is_fatal(reason):
        return "fatal"  # "You are banned from the server"
    return "rate_limited" if reason == "rate_limited" else "retry"


def classify_kick(reason: str) -> Verdict:
    """Channel bans ("You're banned!", "Your IP address is banned from this channel.", …)
    and a bad channel name are fatal; a duplicate login or a moderator's kick is not."""
    if refusals.kick_reason(reason) is not None:
        return "fatal"
    if reason == "Duplicate login":
        return "duplicate"
    if any(marker in reason for marker in _RATE_KICKS):
        return "rate_limited"
    return "kick"


def classify_login_error(error: str) -> tuple[Verdict, float]:
    """(verdict, seconds before retrying the login on the same socket)."""
    reason = refusals.login_reason(error)
    if reason == "guest_rate":
        return "retry", GUEST_LOGIN_INTERVAL
    if refusals.is_fatal(reason):
        return "fatal", 0.0
    return "retry", NAME_IN_USE_RETRY

"""Rate limits: cooldowns, token buckets and a daily quota. Pure; the clock is injected.

A trigger is accepted only if every layer allows it; cooldowns and buckets are charged
at the accepted trigger.  State per key is small and restorable, so the router persists
it (``llm_rate_limits``) and a restart is no way around the limits.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class Refusal:
    scope: str  # "user", "global", "user_bucket", "global_bucket", "daily"
    retry_in: float


@dataclass(slots=True)
class KeyState:
    last_accept: float = float("-inf")
    day: str = ""
    day_count: int = 0
    tokens: float = -1.0  # -1: a full bucket, not yet used
    tokens_at: float = 0.0


@dataclass
class LimitConfig:
    user_cooldown: float = 10.0
    global_cooldown: float = 0.0
    user_burst: int = 0  # 0: no per-user bucket
    user_per_hour: float = 0.0
    global_burst: int = 0
    global_per_hour: float = 0.0
    daily_quota: int = 0  # per user; 0: none
    exempt_rank: float | None = 2.0
    timezone: str = "UTC"


GLOBAL = "*"


@dataclass
class Limiter:
    config: LimitConfig
    max_keys: int = 10_000
    _keys: OrderedDict[str, KeyState] = field(default_factory=OrderedDict)

    def __post_init__(self) -> None:
        self._tz = ZoneInfo(self.config.timezone)

    def day(self, now: float) -> str:
        return datetime.fromtimestamp(now, self._tz).strftime("%Y-%m-%d")

    def state(self, key: str) -> KeyState:
        state = self._keys.get(key)
        if state is None:
            state = self._keys[key] = KeyState()
            while len(self._keys) > self.max_keys:
                oldest = next(iter(self._keys))
                if oldest == GLOBAL:
                    self._keys.move_to_end(GLOBAL)
                    continue
                del self._keys[oldest]
        return state

    def restore(self, key: str, state: KeyState) -> None:
        self._keys[key] = state

    def adopt(self, old: Limiter) -> None:
        """Take over ``old``'s per-key state (a reload changes the rules, not who spoke when)."""
        for key, state in old._keys.items():
            self._keys[key] = state

    def check(self, key: str, now: float, rank: float = 0) -> Refusal | None:
        cfg = self.config
        if cfg.exempt_rank is not None and rank >= cfg.exempt_rank:
            return None
        user, glob = self.state(key), self.state(GLOBAL)
        if now - user.last_accept < cfg.user_cooldown:
            return Refusal("user", cfg.user_cooldown - (now - user.last_accept))
        if now - glob.last_accept < cfg.global_cooldown:
            return Refusal("global", cfg.global_cooldown - (now - glob.last_accept))
        if cfg.daily_quota and user.day == self.day(now) and user.day_count >= cfg.daily_quota:
            return Refusal("daily", self._seconds_to_midnight(now))
        wait = self._bucket_wait(user, cfg.user_burst, cfg.user_per_hour, now)
        if wait > 0:
            return Refusal("user_bucket", wait)
        wait = self._bucket_wait(glob, cfg.global_burst, cfg.global_per_hour, now)
        if wait > 0:
            return Refusal("global_bucket", wait)
        return None

    def accept(self, key: str, now: float) -> KeyState:
        """Charge every layer; returns the key's new state (to persist)."""
        cfg = self.config
        user, glob = self.state(key), self.state(GLOBAL)
        for state, burst, per_hour in ((user, cfg.user_burst, cfg.user_per_hour),
                                       (glob, cfg.global_burst, cfg.global_per_hour)):
            state.last_accept = now
            if burst:
                state.tokens = self._refill(state, burst, per_hour, now) - 1
                state.tokens_at = now
        today = self.day(now)
        if user.day != today:
            user.day, user.day_count = today, 0
        user.day_count += 1
        self._keys.move_to_end(key)
        return user

    @staticmethod
    def _refill(state: KeyState, burst: int, per_hour: float, now: float) -> float:
        if state.tokens < 0:
            return float(burst)
        return min(float(burst), state.tokens + (now - state.tokens_at) * per_hour / 3600)

    def _bucket_wait(self, state: KeyState, burst: int, per_hour: float, now: float) -> float:
        if not burst:
            return 0.0
        tokens = self._refill(state, burst, per_hour, now)
        if tokens >= 1:
            return 0.0
        return (1 - tokens) * 3600 / per_hour if per_hour > 0 else float("inf")

    def _seconds_to_midnight(self, now: float) -> float:
        local = datetime.fromtimestamp(now, self._tz)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return 86400 - (local - midnight).total_seconds()

    def global_state(self) -> KeyState:
        return self.state(GLOBAL)

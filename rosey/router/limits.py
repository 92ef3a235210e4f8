"""Cooldowns: per user and global, with rank exemption. Pure; the clock is injected."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Refusal:
    scope: str  # "user" or "global"
    retry_in: float


class Cooldowns:
    """A trigger is accepted only if the user's and the channel's cooldowns have run out.

    Cooldowns start at the accepted trigger.  ``max_users`` bounds memory: the
    least recently seen users are forgotten first (their cooldown has long run out
    in any channel where that matters).
    """

    def __init__(self, user_cooldown: float, global_cooldown: float = 0.0,
                 exempt_rank: float | None = None, max_users: int = 10_000):
        self.user_cooldown = user_cooldown
        self.global_cooldown = global_cooldown
        self.exempt_rank = exempt_rank
        self._max_users = max_users
        self._last_user: OrderedDict[str, float] = OrderedDict()
        self._last_global = float("-inf")

    def check(self, user: str, now: float, rank: float = 0) -> Refusal | None:
        if self.exempt_rank is not None and rank >= self.exempt_rank:
            return None
        key = user.lower()
        last = self._last_user.get(key)
        if last is not None and now - last < self.user_cooldown:
            return Refusal("user", self.user_cooldown - (now - last))
        if now - self._last_global < self.global_cooldown:
            return Refusal("global", self.global_cooldown - (now - self._last_global))
        return None

    def accept(self, user: str, now: float) -> None:
        key = user.lower()
        self._last_user[key] = now
        self._last_user.move_to_end(key)
        while len(self._last_user) > self._max_users:
            self._last_user.popitem(last=False)
        self._last_global = now

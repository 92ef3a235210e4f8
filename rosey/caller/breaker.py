"""A circuit breaker per provider entry (provider + model).  Pure: ``now`` is an argument.

closed -> open     after ``failures`` consecutive failed calls: requests skip the entry
                   (fail over, or fail fast into the router's fallback reply) instead of each
                   waiting for a provider that is known to be down.
open -> half_open  once ``cooloff`` seconds have passed: one probe call is let through.
half_open -> closed  when the probe (or any call) succeeds;
half_open -> open    when it fails (the cool-off starts again).

Each caller process keeps its own breakers: a provider that is down is noticed by every
caller within its first ``failures`` calls, which is cheaper than sharing state.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum


class State(IntEnum):
    """Values of the ``rosey_llm_breaker_state`` gauge."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class Breaker:
    def __init__(self, failures: int = 5, cooloff: float = 30.0,
                 on_change: Callable[[State], None] | None = None) -> None:
        self.threshold = failures  # 0 disables the breaker (it never opens)
        self.cooloff = cooloff
        self.state = State.CLOSED
        self.consecutive = 0
        self.opened_at = 0.0
        self.last_error = ""  # the kind of the failure that opened it, for the error reply
        self._probe_at: float | None = None
        self._on_change = on_change

    def peek(self, now: float) -> State:
        """The state a call made ``now`` would find, without claiming the probe."""
        if self.state == State.OPEN and now - self.opened_at >= self.cooloff:
            return State.HALF_OPEN
        return self.state

    def would_allow(self, now: float) -> bool:
        state = self.peek(now)
        return state == State.CLOSED or (state == State.HALF_OPEN and self._probe_free(now))

    def allow(self, now: float) -> bool:
        """May a call start now?  In half-open, claims the single probe."""
        if self.state == State.CLOSED:
            return True
        if self.state == State.OPEN:
            if now - self.opened_at < self.cooloff:
                return False
            self._set(State.HALF_OPEN)
            self._probe_at = None
        if not self._probe_free(now):
            return False
        self._probe_at = now
        return True

    def success(self, now: float) -> None:
        self.consecutive = 0
        self._probe_at = None
        self._set(State.CLOSED)

    def failure(self, now: float, kind: str = "") -> None:
        self.consecutive += 1
        self._probe_at = None
        if self.threshold <= 0:
            return
        if self.state != State.CLOSED or self.consecutive >= self.threshold:
            self.opened_at = now
            self.last_error = kind or self.last_error
            self._set(State.OPEN)

    def retry_in(self, now: float) -> float:
        """Seconds until an open breaker lets a probe through (0 when it would now)."""
        return max(0.0, self.opened_at + self.cooloff - now) if self.state == State.OPEN else 0.0

    def _probe_free(self, now: float) -> bool:
        # A probe that never reported (its task was cancelled) frees the slot after a cool-off.
        return self._probe_at is None or now - self._probe_at >= self.cooloff

    def _set(self, state: State) -> None:
        if state != self.state:
            self.state = state
            if self._on_change is not None:
                self._on_change(state)

"""Retry and failover decisions for one request.  Pure: time and randomness are arguments.

The caller (``rosey.caller.providers``) asks two questions of this module and nothing else:

* ``attempt_timeout``: how long may the next provider call take?  The whole remaining
  deadline, except that an entry with a fallback behind it gets only a share of it (so a
  hanging local Ollama still leaves the fallback time to answer), or its configured cap.
* ``decide``: after a failure, retry the same provider (after how long), fail over to the
  next one, or give up?

Rules (docs/ARCHITECTURE.md, docs/DECISIONS.md):

* auth (401/403), not_found (404), empty and internal (400, ...) are never retried on the
  same provider: the same request would fail the same way.  They do fail over.
* A timeout fails over when there is somewhere to go: the provider just used its share of
  the deadline, another try at it would eat the fallback's.
* At most ``max_attempts`` calls per provider entry.
* A retry waits a jittered exponential backoff (0.2 s, 0.4 s, ... capped), or exactly the
  server's ``Retry-After`` on a 429; it happens only if the wait plus a useful attempt
  (``min_attempt``) still fits before the deadline.  So an instant HTTP 500 costs about
  0.6 s before the fallback reply, never the whole 30 s deadline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Action = Literal["retry", "failover", "give_up"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 3  # calls per provider entry
    base_delay: float = 0.2  # first backoff; doubles per attempt
    max_delay: float = 2.0  # backoff cap (a server's Retry-After is not capped, only fitted)
    jitter: float = 0.2  # backoff is scaled by a uniform factor in [1 - jitter, 1 + jitter]
    margin: float = 0.05  # kept back so the result reaches the router before the deadline
    min_attempt: float = 0.5  # a retry or failover with less time than this is not started
    failover_share: float = 0.5  # share of the remaining time an entry with a fallback gets


@dataclass(frozen=True, slots=True)
class Failure:
    """What the policy needs to know of a failed call (an ``LLMError`` has these)."""

    kind: str
    retryable: bool
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    delay: float = 0.0
    reason: str = ""


def backoff(policy: RetryPolicy, attempt: int, rng: Callable[[], float]) -> float:
    """The wait after failed attempt number ``attempt`` (1-based); ``rng()`` is in [0, 1)."""
    raw = min(policy.max_delay, policy.base_delay * 2.0 ** (attempt - 1))
    # Jitter spreads the retries of the slots and callers that failed together.
    return raw * (1.0 - policy.jitter + 2.0 * policy.jitter * rng())


def attempt_timeout(policy: RetryPolicy, now: float, deadline: float, *, has_next: bool,
                    cap: float = 0.0, first: bool = False) -> float:
    """Seconds the next call may take; 0 means there is no time to start one.

    ``first`` (the request's first call) is made with any time left at all: the router
    only dispatches what can still be answered.  Later calls need ``min_attempt``.
    """
    remaining = deadline - policy.margin - now
    if remaining <= 0 or (not first and remaining < policy.min_attempt):
        return 0.0
    budget = remaining
    if cap > 0:
        budget = min(budget, cap)
    elif has_next:
        budget = max(min(remaining, policy.min_attempt), remaining * policy.failover_share)
    return budget


def decide(policy: RetryPolicy, failure: Failure, attempt: int, now: float, deadline: float,
           *, has_next: bool, rng: Callable[[], float]) -> Decision:
    """What to do after failed call number ``attempt`` (1-based) on the current entry."""

    def move_on(reason: str) -> Decision:
        return Decision("failover" if has_next else "give_up", 0.0, reason)

    if not failure.retryable:
        return move_on(f"{failure.kind} is not retried")
    if failure.kind == "timeout" and has_next:
        return move_on("timed out with a fallback waiting")
    if attempt >= policy.max_attempts:
        return move_on(f"{attempt} attempts made")
    if failure.kind == "rate_limited" and failure.retry_after is not None:
        # The server said when; earlier would only be refused again.
        delay = failure.retry_after
    else:
        delay = backoff(policy, attempt, rng)
    if now + delay + policy.min_attempt > deadline - policy.margin:
        return move_on(f"a retry in {delay:.2f} s would not fit before the deadline")
    return Decision("retry", delay, f"retry {attempt + 1} in {delay:.2f} s")

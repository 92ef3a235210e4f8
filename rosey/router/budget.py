"""Daily and monthly spend against ``budget.daily_usd`` / ``budget.monthly_usd``.  Pure.

The router owns the budget (callers report ``Result.cost_usd``; all callers then agree and
a restart changes nothing): it ``add``s each result's cost, asks ``state`` before
dispatching, persists ``snapshot()`` and ``restore``s it at start-up.  Days and months
are calendar days and months in the injected time zone (UTC by default), so the daily
budget resets at local midnight, not 24 h after the first call.

    state ``ok``        below ``warn_ratio`` (80 %) of every limit
          ``warning``   at or above 80 % of a limit (alert on it)
          ``exhausted`` at or above 100 % of a limit: apply ``budget.action``

A limit of 0 means none.  ``now`` is epoch seconds, always passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Literal

BudgetState = Literal["ok", "warning", "exhausted"]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What to persist: the totals and the day / month they belong to."""

    day: str  # YYYY-MM-DD in the tracker's time zone
    day_usd: float
    month: str  # YYYY-MM
    month_usd: float


class BudgetTracker:
    def __init__(self, daily_usd: float = 0.0, monthly_usd: float = 0.0, *,
                 tz: tzinfo = UTC, warn_ratio: float = 0.8) -> None:
        if daily_usd < 0 or monthly_usd < 0:
            raise ValueError("budget limits must be >= 0 (0: no limit)")
        self.daily_usd = daily_usd
        self.monthly_usd = monthly_usd
        self.tz = tz
        self.warn_ratio = warn_ratio
        self._day = ""
        self._month = ""
        self._day_usd = 0.0
        self._month_usd = 0.0

    def _roll(self, now: float) -> None:
        local = datetime.fromtimestamp(now, self.tz)
        day, month = local.strftime("%Y-%m-%d"), local.strftime("%Y-%m")
        if day != self._day:
            self._day, self._day_usd = day, 0.0
        if month != self._month:
            self._month, self._month_usd = month, 0.0

    def add(self, cost_usd: float, now: float) -> BudgetState:
        """Count a call's cost; returns the state after it."""
        self._roll(now)
        if cost_usd > 0:
            self._day_usd += cost_usd
            self._month_usd += cost_usd
        return self.state(now)

    def spent(self, now: float) -> tuple[float, float]:
        """``(today, this month)`` in USD."""
        self._roll(now)
        return self._day_usd, self._month_usd

    def ratio(self, now: float) -> float:
        """The largest spent/limit over the limits set (0 when none is)."""
        day, month = self.spent(now)
        ratios = [spent / limit for spent, limit in ((day, self.daily_usd),
                                                     (month, self.monthly_usd)) if limit > 0]
        return max(ratios, default=0.0)

    def state(self, now: float) -> BudgetState:
        ratio = self.ratio(now)
        if ratio >= 1.0:
            return "exhausted"
        if ratio >= self.warn_ratio:
            return "warning"
        return "ok"

    def snapshot(self, now: float) -> Snapshot:
        self._roll(now)
        return Snapshot(self._day, self._day_usd, self._month, self._month_usd)

    def restore(self, snap: Snapshot, now: float) -> None:
        """Load persisted totals; those of a day or month that has passed are dropped."""
        self._roll(now)
        if snap.day == self._day:
            self._day_usd = snap.day_usd
        if snap.month == self._month:
            self._month_usd = snap.month_usd

"""What one channel's conversation keeps: the operator's toggles, each user's history, the
day's statistics, in memory and through ``Records``; and it adds each answer's cost to the
deployment's budget (one ``BudgetTracker`` for every channel: ``budget`` is a top-level
setting, money is not per channel).

It decides nothing (``judge.py`` does) and sends nothing (``flow.py`` does): it is told
what was said and what was answered, and remembers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from zoneinfo import ZoneInfo

from rosey import metrics
from rosey.config import Config
from rosey.protocol import Result, Turn
from rosey.router.budget import BudgetTracker, Snapshot
from rosey.router.cmdbase import Toggles
from rosey.router.history import History
from rosey.router.records import Records

log = logging.getLogger("rosey.router")
LOADED_USERS_MAX = 5000
CONFIG_MARK = ".config"  # "<toggle>.config": the config value a saved toggle overrode


def configured_toggles(cfg: Config) -> dict[str, str]:
    """The toggles the config sets, in their stored form."""
    return {"llm_enabled": "1" if cfg.llm.enabled else "0",
            "cooldown": repr(float(cfg.llm.llm_cooldown))}


class Conversation:
    def __init__(self, cfg: Config, records: Records, clock: Callable[[], float],
                 budget: BudgetTracker) -> None:
        self.records = records
        self.clock = clock
        self.persist_guest_history = cfg.router.persist_guest_history
        self.toggles = Toggles(llm_enabled=cfg.llm.enabled, cooldown=cfg.llm.llm_cooldown)
        self.configured = configured_toggles(cfg)  # what the config says, as stored
        self.history = History(cfg.llm.max_history_messages, cfg.router.history_chars)
        self._history_loaded: set[str] = set()
        self.stats_day = ""
        self.stats: dict[str, float] = {}
        self.budget = budget

    def restore(self, day: str, personas: dict[str, str]) -> None:
        """Toggles and today's statistics from the database (before the first event); the
        limiter's state is the judge's (``ChannelCore.restore``), the spend the router's
        (``restore_budget``).  A saved ``llm``/``cooldown`` toggle counts only while the
        config still says what it said when the toggle was saved (see ``adopt``)."""
        saved = self.records.load_toggles()
        for key, configured in self.configured.items():
            if key in saved and saved.get(f"{key}{CONFIG_MARK}", configured) == configured:
                self._set(key, saved[key])
        self.toggles.quiet_until = float(saved.get("quiet_until", 0) or 0)
        persona = saved.get("persona", "")
        self.toggles.persona = persona if persona in personas else ""
        self.toggles.optouts = set(json.loads(saved.get("optouts", "[]")))
        self.stats_day, self.stats = day, self.records.load_stats(day)

    def _set(self, key: str, value: str) -> None:
        if key == "llm_enabled":
            self.toggles.llm_enabled = value == "1"
        else:
            self.toggles.cooldown = float(value)

    def toggle_values(self) -> dict[str, str]:
        """The toggles as stored (compare two of these to see what a command changed)."""
        t = self.toggles
        return {"llm_enabled": "1" if t.llm_enabled else "0", "quiet_until": repr(t.quiet_until),
                "cooldown": repr(t.cooldown), "persona": t.persona,
                "optouts": json.dumps(sorted(t.optouts))}

    def save_toggles(self, before: dict[str, str], force: tuple[str, ...] = ()) -> None:
        """Store the toggles that differ from ``before`` (and ``force``), each config-backed
        one with the config value it overrides: what nobody changed stays the config's."""
        for key, value in self.toggle_values().items():
            if before.get(key) != value or key in force:
                self.records.toggle(key, value)
                if key in self.configured:
                    self.records.toggle(f"{key}{CONFIG_MARK}", self.configured[key])

    def adopt(self, cfg: Config) -> None:
        """A reloaded config: where it changed ``llm.enabled`` or ``llm.llm_cooldown``, the
        operator's edit beats an older runtime toggle (``!llm``, ``!cooldown``)."""
        before, old = self.toggle_values(), self.configured
        self.configured = configured_toggles(cfg)
        changed = tuple(key for key in old if old[key] != self.configured[key])
        for key in changed:
            self._set(key, self.configured[key])
        self.save_toggles(before, changed)

    # ---- history -----------------------------------------------------------------

    def opted_out(self, user: str) -> bool:
        return user.lower() in self.toggles.optouts

    def keeps_history(self, user: str, guest: bool) -> bool:
        return not self.opted_out(user) and (self.persist_guest_history or not guest)

    async def history_of(self, user: str) -> list[Turn]:
        """The user's turns, loaded from the database the first time they are asked for."""
        key = user.lower()
        if key not in self._history_loaded:
            self._history_loaded.add(key)
            if len(self._history_loaded) > LOADED_USERS_MAX:
                self._history_loaded.clear()
            if not self.history.turns(user):
                for turn in await self.records.history(user, self.history.max_messages):
                    self.history.append(user, turn.role, turn.content)
        return self.history.turns(user)

    def remember(self, user: str, role: str, content: str, guest: bool, model: str = "",
                 tokens: int = 0) -> None:
        self.history.append(user, role, content)
        if self.keeps_history(user, guest):
            self.records.turn(user, role, content, self.clock(), model, tokens)

    def forget(self, user: str) -> None:
        self.history.forget(user)
        self._history_loaded.add(user.lower())
        self.records.forget(user)

    # ---- answers -----------------------------------------------------------------

    def answered(self, user: str, text: str, result: Result, guest: bool, day: str) -> None:
        """Every result: the posted answer joins history; daily statistics; the spend."""
        if text:
            self.remember(user, "assistant", text, guest, result.model, result.completion_tokens)
        if day != self.stats_day:  # a new day has no rows yet: no query on the loop
            self.stats_day, self.stats = day, {}
        stats = self.stats
        stats["requests"] = stats.get("requests", 0) + 1
        outcome = "successes" if result.ok else "failures"
        stats[outcome] = stats.get(outcome, 0) + 1
        stats["prompt_tokens"] = stats.get("prompt_tokens", 0) + result.prompt_tokens
        stats["completion_tokens"] = stats.get("completion_tokens", 0) + result.completion_tokens
        cost = result.cost_usd
        stats["cost_usd"] = stats.get("cost_usd", 0) + cost
        now = self.clock()
        if self.budget.add(cost, now) != "ok":
            log.warning("budget at %.0f %%", 100 * self.budget.ratio(now))
        export_budget(self.budget, now)
        self.records.stats(day, user, result.ok, result.prompt_tokens,
                           result.completion_tokens, cost)



def new_budget(cfg: Config) -> BudgetTracker:
    return BudgetTracker(cfg.budget.daily_usd, cfg.budget.monthly_usd,
                         tz=ZoneInfo(cfg.router.limits.timezone))


def restore_budget(budget: BudgetTracker, records: Records, now: float) -> None:
    """Today's and this month's spend (in the budget's own time zone), summed over every
    channel in the database (before the first event)."""
    day = budget.snapshot(now).day
    budget.restore(Snapshot(day, records.spend_since(day), day[:7],
                            records.spend_since(day[:7] + "-01")), now)
    export_budget(budget, now)


def export_budget(budget: BudgetTracker, now: float) -> None:
    day, month = budget.spent(now)
    for period, spent, limit in (("day", day, budget.daily_usd),
                                 ("month", month, budget.monthly_usd)):
        metrics.BUDGET_RATIO.labels(period).set(spent / limit if limit else 0.0)

"""The router's judgement: whether to answer, with what prompt, and operator commands.

It owns the triggers, limits, history, personas and toggles, persists them through
``Records``, and hands accepted triggers to the ``Flow``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from rosey import metrics
from rosey.config import DEFAULT_SYSTEM_PROMPT, Config
from rosey.protocol import (
    PRIORITY_OTHER,
    MediaChanged,
    Message,
    Profile,
    Result,
    Turn,
    UserCount,
    UserMeta,
)
from rosey.router import commands
from rosey.router.brain_commands import CommandsMixin
from rosey.router.budget import BudgetTracker, Snapshot
from rosey.router.channel import ChannelState
from rosey.router.history import History
from rosey.router.limits import GLOBAL, LimitConfig, Limiter
from rosey.router.modctx import ModContext
from rosey.router.prompts import (
    address,
    build_turns,
    load_system_prompt,
    render_system_prompt,
)
from rosey.router.records import Records
from rosey.router.replies import ReplyPolicy
from rosey.router.statskeeper import StatsKeeper
from rosey.router.triggers import TriggerMatcher

if TYPE_CHECKING:
    from rosey.router.flow import Flow

log = logging.getLogger("rosey.router")


def limit_config(cfg: Config, cooldown: float | None = None) -> LimitConfig:
    lim = cfg.router.limits
    return LimitConfig(
        user_cooldown=cfg.llm.llm_cooldown if cooldown is None else cooldown,
        global_cooldown=lim.global_cooldown, user_burst=lim.user_burst,
        user_per_hour=lim.user_per_hour, global_burst=lim.global_burst,
        global_per_hour=lim.global_per_hour, daily_quota=lim.daily_quota,
        exempt_rank=lim.exempt_rank, timezone=lim.timezone)


class Brain(CommandsMixin):
    def __init__(self, cfg: Config, records: Records | None,
                 clock: Callable[[], float] = time.time):
        self.records = records
        self.clock = clock
        self.flow: Flow | None = None
        self.reload_hook: Callable[[], str] = lambda: "reload is not available here"
        # (user, text, decision, detail) for every message addressed to the bot: the
        # replay tool prints these.
        self.on_decision: Callable[[str, str, str, str], None] = lambda *args: None
        self.toggles = commands.Toggles(llm_enabled=cfg.llm.enabled,
                                        cooldown=cfg.llm.llm_cooldown)
        self.history = History(cfg.llm.max_history_messages, cfg.router.history_chars)
        self._history_loaded: set[str] = set()
        self._refused_notice: dict[str, float] = {}
        self.channel = ChannelState(cfg.router.channel_context, bot_name=cfg.bot_name)
        self.mod: ModContext | None = None  # set by the service: the live channel's actions
        self._commands: set[asyncio.Task[None]] = set()  # PM commands waiting for the server
        self.stats_day = ""
        self.stats: dict[str, float] = {}
        self.budget = BudgetTracker(cfg.budget.daily_usd, cfg.budget.monthly_usd,
                                    tz=ZoneInfo(cfg.router.limits.timezone))
        self.reload(cfg)
        self.statskeeper = StatsKeeper(records, self.limiter.day, cfg.channel)

    def reload(self, cfg: Config) -> None:
        """Everything `!reload` may change at run time."""
        self.cfg = cfg
        llm = cfg.llm
        self.bot_name = cfg.bot_name
        self.matcher = TriggerMatcher(cfg.bot_name, llm.llm_triggers, cfg.router.bot_name_trigger)
        old = getattr(self, "limiter", None)
        self.limiter = Limiter(limit_config(cfg, self.toggles.cooldown if old else None))
        if old is not None:
            for key, state in old._keys.items():
                self.limiter.restore(key, state)
        self.system_template = load_system_prompt(llm.system_prompt, llm.system_prompt_file,
                                                  DEFAULT_SYSTEM_PROMPT)
        # Persona files are read here, once, not on every trigger.
        self.personas = {name: Path(value).read_text(encoding="utf-8").strip()
                         if value.endswith((".md", ".txt")) else value
                         for name, value in cfg.router.personas.items()}
        self.ignored = {name.lower() for name in cfg.router.ignore_users}
        self.reply_policy = ReplyPolicy.build(cfg.bot_name, cfg.router.max_reply_chars,
                                              cfg.router.blocklist, cfg.router.blocklist_reply)
        if self.flow is not None:
            self.flow.policy = self.reply_policy
            self.flow.fallback = llm.fallback_response

    # ---- persistence ---------------------------------------------------------

    def restore(self) -> None:
        """Toggles and limits from the database (before the first event)."""
        if self.records is None:
            return
        saved = self.records.load_toggles()
        if "llm_enabled" in saved:
            self.toggles.llm_enabled = saved["llm_enabled"] == "1"
        self.toggles.quiet_until = float(saved.get("quiet_until", 0) or 0)
        if "cooldown" in saved:
            self.toggles.cooldown = float(saved["cooldown"])
            self.limiter.config.user_cooldown = self.toggles.cooldown
        persona = saved.get("persona", "")
        self.toggles.persona = persona if persona in self.personas else ""
        self.toggles.optouts = set(json.loads(saved.get("optouts", "[]")))
        for key, state in self.records.load_rate_limits().items():
            self.limiter.restore(key, state)
        now = self.clock()
        day = self.limiter.day(now)
        self._load_stats(day)
        self.statskeeper.restore(now)
        self.budget.restore(Snapshot(day, self.records.spend_since(day), day[:7],
                                     self.records.spend_since(day[:7] + "-01")), now)
        self._export_budget(now)

    def _export_budget(self, now: float) -> None:
        day, month = self.budget.spent(now)
        for period, spent, limit in (("day", day, self.budget.daily_usd),
                                     ("month", month, self.budget.monthly_usd)):
            metrics.BUDGET_RATIO.labels(period).set(spent / limit if limit else 0.0)

    def _save_toggles(self) -> None:
        if self.records is None:
            return
        t = self.toggles
        for key, value in (("llm_enabled", "1" if t.llm_enabled else "0"),
                           ("quiet_until", repr(t.quiet_until)), ("cooldown", repr(t.cooldown)),
                           ("persona", t.persona),
                           ("optouts", json.dumps(sorted(t.optouts)))):
            self.records.toggle(key, value)

    def _load_stats(self, day: str) -> None:
        self.stats_day = day
        self.stats = self.records.load_stats(day) if self.records is not None else {}

    # ---- chat ------------------------------------------------------------------

    def keeps_history(self, user: str) -> bool:
        return user.lower() not in self.toggles.optouts and (
            self.cfg.router.persist_guest_history or not self.channel.is_guest(user))

    async def _ensure_history(self, user: str) -> None:
        key = user.lower()
        if key in self._history_loaded or self.records is None:
            return
        self._history_loaded.add(key)
        if len(self._history_loaded) > 5000:
            self._history_loaded.clear()
        if not self.history.turns(user):
            for turn in await self.records.history(user, self.history.max_messages):
                self.history.append(user, turn.role, turn.content)

    def remember(self, user: str, role: str, content: str, model: str = "",
                 tokens: int = 0) -> None:
        self.history.append(user, role, content)
        if self.records is not None and self.keeps_history(user):
            self.records.turn(user, role, content, self.clock(), model, tokens)

    async def on_chat(self, user: str, text: str, private: bool, received_at: float) -> None:
        now = self.clock()
        lowered = user.lower()
        if lowered == self.bot_name.lower() or lowered in self.ignored or user == "[server]":
            return
        opted_out = lowered in self.toggles.optouts
        if self.records is not None and not opted_out:  # !optout: keep nothing of theirs
            self.records.chat(user, "pm" if private else "chat", text, now)
            self.records.user_seen(user, self.channel.rank_of(user), now, True)
        if not private and not opted_out:
            self.channel.heard(user, text)
        if not private and self.matcher.match(text) is None:
            return
        if not self.toggles.llm_enabled or now < self.toggles.quiet_until:
            self.on_decision(user, text, "off", "llm off" if not self.toggles.llm_enabled
                             else "quiet")
            return
        if opted_out:
            self.on_decision(user, text, "ignored", "opted out")
            return
        hit = None if private else self.matcher.match(text)
        kind = "pm" if hit is None else hit.kind
        metrics.TRIGGERS.labels(self.cfg.channel, kind).inc()
        await self.answer(self.channel.exact_name(user), text, private, received_at or now)

    async def answer(self, user: str, text: str, private: bool, received_at: float) -> None:
        """Everything after the trigger: coalescing, limits, budget, prompt, dispatch."""
        flow = self.flow
        assert flow is not None
        line = f"{user}: {text}"
        open_request = flow.open_for(user, private)
        if open_request is not None:
            where, job = open_request
            self.remember(user, "user", line)
            if where == "queued":  # not yet dispatched: one answer for both
                job.request.turns.append(Turn("user", line))
                flow.rejournal(job)
                metrics.REQUESTS.labels(self.cfg.channel, "coalesced").inc()
                self.on_decision(user, text, "coalesced", job.request.id[:8])
            else:  # the model is already on it: the line only joins history
                metrics.REQUESTS.labels(self.cfg.channel, "joined_history").inc()
                self.on_decision(user, text, "history", f"{job.request.id[:8]} in flight")
            return
        now = self.clock()
        key = self.channel.limit_key(user)
        refusal = self.limiter.check(key, now, self.channel.rank_of(user))
        if refusal is not None:
            metrics.RATE_LIMITED.labels(self.cfg.channel, refusal.scope).inc()
            log.info("refused %s: %s limit, %.0f s left", user, refusal.scope, refusal.retry_in)
            await self._notify_refused(user, refusal.scope, refusal.retry_in, now)
            self.on_decision(user, text, "refused",
                             f"{refusal.scope} limit, {refusal.retry_in:.0f} s left")
            return
        if flow.full():
            metrics.RATE_LIMITED.labels(self.cfg.channel, "queue").inc()
            self.on_decision(user, text, "refused", "queue full")
            return
        provider, model = self.cfg.llm.provider, self.cfg.llm.model
        budget = self.cfg.budget
        if self.budget.state(now) == "exhausted" and budget.action == "switch":
            provider, model = budget.switch_provider, budget.switch_model
        elif self.budget.state(now) == "exhausted":
            metrics.RATE_LIMITED.labels(self.cfg.channel, "budget").inc()
            log.warning("budget exhausted: %s for %s", budget.action, user)
            if budget.action != "silent":
                fallback = self.cfg.llm.fallback_response
                await flow.say(fallback if private else address(user, fallback),
                               pm_to=user if private else "")
            self.on_decision(user, text, "refused", f"budget exhausted ({self.cfg.budget.action})")
            return
        state = self.limiter.accept(key, now)
        if self.records is not None:
            self.records.rate_limit(key, state)
            self.records.rate_limit(GLOBAL, self.limiter.global_state())
        await self._ensure_history(user)
        turns = build_turns(self.system_prompt(user, now), self.history.turns(user), text, user)
        if self.channel.context_size and not private:
            background = "; ".join(f"{n}: {t}" for n, t in self.channel.context())
            if background:
                turns.insert(1, Turn("system", f"Recent channel chat: {background}"))
        self.remember(user, "user", line)
        request_id = await flow.accept(user, private, received_at,
                                       received_at + self.cfg.llm.response_timeout,
                                       provider, model, turns)
        self.on_decision(user, text, "accepted", request_id[:8])

    async def _notify_refused(self, user: str, scope: str, retry_in: float, now: float) -> None:
        if not self.cfg.router.limits.notify_refused or self.flow is None:
            return
        if self._refused_notice.get(user.lower(), 0) > now:
            return  # once per window
        self._refused_notice[user.lower()] = now + retry_in
        if len(self._refused_notice) > 5000:
            self._refused_notice.clear()
        await self.flow.say(f"Please wait {retry_in:.0f} s before asking me again.", pm_to=user,
                            priority=PRIORITY_OTHER)

    def system_prompt(self, user: str, now: float) -> str:
        template = self.personas.get(self.toggles.persona) or self.system_template
        stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M UTC")
        return render_system_prompt(template, bot_name=self.bot_name, channel=self.cfg.channel,
                                    user=user, now_playing=self.channel.now_playing or "nothing",
                                    time=stamp)

    def on_answer(self, user: str, text: str, result: Result) -> None:
        """Every result: the posted answer joins history; daily statistics."""
        if text:
            self.remember(user, "assistant", text, result.model, result.completion_tokens)
        day = self.limiter.day(self.clock())
        if day != self.stats_day:  # a new day has no rows yet: no query on the loop
            self.stats_day, self.stats = day, {}
        stats = self.stats
        stats["requests"] = stats.get("requests", 0) + 1
        stats["successes" if result.ok else "failures"] = \
            stats.get("successes" if result.ok else "failures", 0) + 1
        stats["prompt_tokens"] = stats.get("prompt_tokens", 0) + result.prompt_tokens
        stats["completion_tokens"] = stats.get("completion_tokens", 0) + result.completion_tokens
        cost = result.cost_usd
        stats["cost_usd"] = stats.get("cost_usd", 0) + cost
        now = self.clock()
        if self.budget.add(cost, now) != "ok":
            log.warning("budget at %.0f %%", 100 * self.budget.ratio(now))
        self._export_budget(now)
        if self.records is not None:
            self.records.stats(day, user, result.ok, result.prompt_tokens,
                               result.completion_tokens, cost)

    async def on_pm(self, user: str, text: str, received_at: float) -> None:
        prefix = self.cfg.router.command_prefix
        if user.lower() == self.bot_name.lower():
            return
        if text.startswith(prefix) and self.flow is not None:
            # The rank comes from the live userlist, never from the text.
            actor = commands.Actor(user, self.channel.rank_of(user), self.cfg.router.command_rank)
            await self.pm_command(actor, text[len(prefix):])
            return
        await self.on_chat(user, text, True, received_at)

    def on_leave(self, name: str) -> None:
        self.channel.left(name)
        if self.cfg.router.reset_on_leave:
            self.history.forget(name)

    def on_other(self, msg: Message) -> None:
        """Channel events that only update state (and the media history)."""
        if self.channel.apply(msg):  # playlist and permissions
            metrics.CHANNEL_PLAYLIST_ITEMS.set(len(self.channel.playlist.items))
            return
        if isinstance(msg, MediaChanged):
            self.channel.now_playing = msg.title
            self.statskeeper.media(self.channel, msg, self.clock())
        elif isinstance(msg, UserMeta):
            self.channel.meta(msg.name, afk=msg.afk, muted=msg.muted)
        elif isinstance(msg, Profile):
            self.channel.profiles[msg.name.lower()] = msg.text
        elif isinstance(msg, UserCount):
            self.channel.user_count = msg.count
            metrics.CHANNEL_CONNECTIONS.labels(self.cfg.channel).set(msg.count)

    # ---- commands ----------------------------------------------------------------

    def forget(self, user: str) -> None:
        self.history.forget(user)
        self._history_loaded.add(user.lower())
        if self.records is not None:
            self.records.forget(user)

    def status_line(self) -> str:
        flow = self.flow
        p95 = flow.p95() if flow else None
        pool = flow.pool if flow else None
        stats = self.stats
        return (f"llm {'on' if self.toggles.llm_enabled else 'off'}"
                f"{' (quiet)' if self.clock() < self.toggles.quiet_until else ''}, "
                f"persona {self.toggles.persona or 'default'}, "
                f"callers {pool.alive() if pool else 0}, queue {len(pool.queue) if pool else 0}, "
                f"in flight {len(pool.in_flight) if pool else 0}, "
                f"p95 {'-' if p95 is None else f'{p95:.2f} s'}, "
                f"today {stats.get('requests', 0):.0f} requests "
                f"({stats.get('failures', 0):.0f} failed), "
                f"{stats.get('prompt_tokens', 0) + stats.get('completion_tokens', 0):.0f} tokens, "
                f"cooldown {self.limiter.config.user_cooldown:g} s")

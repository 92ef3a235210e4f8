"""The router's judgement for one channel: should we answer this line, and with what prompt.

Who is ignored, the trigger (matched once per line), the switches (`llm off`, `quiet`), the
opt-outs, the limits (``limits.py``), the queue and the budget, and the prompt (system
prompt or persona, history, channel context, the line).  It reads the channel's toggles
and budget, charges the limiter, and decides; it sends nothing, stores nothing and calls
nothing back: each step returns a ``Verdict``.  A reload builds a new Judge from the new
config (``Judge.build``) that adopts the old limiter's state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rosey.config import DEFAULT_SYSTEM_PROMPT, Config
from rosey.protocol import Turn
from rosey.router.budget import BudgetTracker
from rosey.router.cmdbase import Toggles
from rosey.router.limits import GLOBAL, KeyState, LimitConfig, Limiter
from rosey.router.prompts import build_turns, load_system_prompt, render_system_prompt
from rosey.router.triggers import TriggerMatcher


def limit_config(cfg: Config, cooldown: float | None = None) -> LimitConfig:
    lim = cfg.router.limits
    return LimitConfig(
        user_cooldown=cfg.llm.llm_cooldown if cooldown is None else cooldown,
        global_cooldown=lim.global_cooldown, user_burst=lim.user_burst,
        user_per_hour=lim.user_per_hour, global_burst=lim.global_burst,
        global_per_hour=lim.global_per_hour, daily_quota=lim.daily_quota,
        exempt_rank=lim.exempt_rank, timezone=lim.timezone)


@dataclass(frozen=True, slots=True)
class Verdict:
    """``decision``: "accepted" (go on), "off", "ignored", "refused" or "budget" (answer
    with the fallback unless the budget action is silent).  ``scope`` names the limit that
    refused (a metric label); ``retry_in`` its seconds left; ``kind`` the trigger kind."""

    decision: str
    detail: str = ""
    scope: str = ""
    retry_in: float = 0.0
    kind: str = ""
    provider: str = ""
    model: str = ""
    charged: tuple[tuple[str, KeyState], ...] = ()  # limiter states to persist


ACCEPTED = "accepted"


class Judge:
    def __init__(self, cfg: Config, toggles: Toggles, budget: BudgetTracker,
                 cooldown: float | None = None) -> None:
        self.cfg = cfg
        self.toggles = toggles
        self.budget = budget
        llm = cfg.llm
        self.bot_name = cfg.bot_name
        self.matcher = TriggerMatcher(cfg.bot_name, llm.llm_triggers, cfg.router.bot_name_trigger)
        self.limiter = Limiter(limit_config(cfg, cooldown))
        self.system_template = load_system_prompt(llm.system_prompt, llm.system_prompt_file,
                                                  DEFAULT_SYSTEM_PROMPT)
        # Persona files are read here, once, not on every trigger.
        self.personas = {name: Path(value).read_text(encoding="utf-8").strip()
                         if value.endswith((".md", ".txt")) else value
                         for name, value in cfg.router.personas.items()}
        self.ignored = {name.lower() for name in cfg.router.ignore_users}

    @classmethod
    def build(cls, cfg: Config, old: Judge) -> Judge:
        """The judge for a reloaded config: new rules, the old limiter's state, the
        operator's cooldown kept."""
        judge = cls(cfg, old.toggles, old.budget, cooldown=old.toggles.cooldown)
        judge.limiter.adopt(old.limiter)
        return judge

    def ignores(self, user: str) -> bool:
        """Lines the bot never looks at: its own, ``router.ignore_users``, server notices."""
        lowered = user.lower()
        return lowered == self.bot_name.lower() or lowered in self.ignored or user == "[server]"

    def hears(self, text: str, private: bool, opted_out: bool, now: float) -> Verdict | None:
        """None when the line is not for the bot; else whether the switches let it through."""
        hit = None if private else self.matcher.match(text)
        if not private and hit is None:
            return None
        if not self.toggles.llm_enabled or now < self.toggles.quiet_until:
            return Verdict("off", "llm off" if not self.toggles.llm_enabled else "quiet")
        if opted_out:
            return Verdict("ignored", "opted out")
        return Verdict(ACCEPTED, kind="pm" if hit is None else hit.kind)

    def admit(self, key: str, rank: float, now: float, queue_full: bool) -> Verdict:
        """Limits, queue and budget; an accepted one is charged to the limiter."""
        refusal = self.limiter.check(key, now, rank)
        if refusal is not None:
            return Verdict("refused", f"{refusal.scope} limit, {refusal.retry_in:.0f} s left",
                           scope=refusal.scope, retry_in=refusal.retry_in)
        if queue_full:
            return Verdict("refused", "queue full", scope="queue")
        provider, model = self.cfg.llm.provider, self.cfg.llm.model
        budget = self.cfg.budget
        if self.budget.state(now) == "exhausted":
            if budget.action != "switch":
                return Verdict("budget", f"budget exhausted ({budget.action})", scope="budget")
            provider, model = budget.switch_provider, budget.switch_model
        state = self.limiter.accept(key, now)
        return Verdict(ACCEPTED, provider=provider, model=model,
                       charged=((key, state), (GLOBAL, self.limiter.global_state())))

    def prompt(self, user: str, text: str, private: bool, history: list[Turn],
               now_playing: str, background: list[tuple[str, str]], now: float) -> list[Turn]:
        """The turns for the model: system prompt, the user's history, the channel's recent
        chat (``router.channel_context``, not for PMs) and the line."""
        turns = build_turns(self.system_prompt(user, now_playing, now), history, text, user)
        if background and not private:
            recent = "; ".join(f"{n}: {t}" for n, t in background)
            turns.insert(1, Turn("system", f"Recent channel chat: {recent}"))
        return turns

    def system_prompt(self, user: str, now_playing: str, now: float) -> str:
        template = self.personas.get(self.toggles.persona) or self.system_template
        stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M UTC")
        return render_system_prompt(template, bot_name=self.bot_name, channel=self.cfg.channel,
                                    user=user, now_playing=now_playing or "nothing",
                                    time=stamp)

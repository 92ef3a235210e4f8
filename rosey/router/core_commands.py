"""A channel core's command running: the one table for PM `!cmd` and `rosey ctl`, audited,
and the status line."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from rosey import metrics
from rosey.router import commands

if TYPE_CHECKING:
    from rosey.config import Config
    from rosey.router.channel import ChannelState
    from rosey.router.conversation import Conversation
    from rosey.router.flow import Flow
    from rosey.router.judge import Judge
    from rosey.router.modctx import ModContext
    from rosey.router.records import Records

log = logging.getLogger("rosey.router")
WAITING_COMMANDS_MAX = 64


class CommandsMixin:
    name: str
    cfg: Config
    clock: Callable[[], float]
    flow: Flow
    records: Records
    mod: ModContext | None
    channel: ChannelState
    conversation: Conversation
    judge: Judge
    reload_config: Callable[[], str]
    _commands: set[asyncio.Task[None]]

    async def say(self, text: str, pm_to: str = "", priority: int = 0) -> None:
        raise NotImplementedError

    def actor(self, user: str) -> commands.Actor:
        """A CyTube user: the rank comes from the live userlist, never from the text."""
        return commands.Actor(user, self.channel.rank_of(user), self.cfg.router.command_rank)

    async def pm_command(self, actor: commands.Actor, line: str) -> None:
        """A moderator's `!cmd`; the answer goes back by PM."""
        if not commands.waits(line):  # the switches answer at once, in order
            await self.say(self.run_command(actor, line)[1], pm_to=actor.name)
            return
        if len(self._commands) >= WAITING_COMMANDS_MAX:
            await self.say("busy; try again soon", pm_to=actor.name)
            return
        # This one may wait for the server's answer: never on the conn receive loop.
        task = asyncio.create_task(self._pm_command(actor, line))
        self._commands.add(task)
        task.add_done_callback(self._commands.discard)

    async def _pm_command(self, actor: commands.Actor, line: str) -> None:
        _ok, reply = await self.command(actor, line)
        await self.say(reply, pm_to=actor.name)

    def _context(self) -> commands.CommandContext:
        return commands.CommandContext(
            toggles=self.conversation.toggles, now=self.clock(), status=self.status_line,
            forget=self.conversation.forget, set_cooldown=self._set_cooldown,
            personas=lambda: sorted(self.judge.personas), reload=self.reload_config,
            ranks=self.cfg.router.command_ranks, mod=self.mod)

    def run_command(self, actor: commands.Actor, line: str) -> tuple[bool, str]:  # no server
        before = self.conversation.toggle_values()
        ok, text = commands.execute(self._context(), actor, line)
        self._after_command(actor, line, ok, before)
        return ok, text

    async def command(self, actor: commands.Actor, line: str) -> tuple[bool, str]:
        """Any command; playlist and kick commands wait for the server's answer."""
        before = self.conversation.toggle_values()
        ok, text = await commands.run(self._context(), actor, line)
        self._after_command(actor, line, ok, before)
        return ok, text

    def _after_command(self, actor: commands.Actor, line: str, ok: bool,
                       before: dict[str, str]) -> None:
        name = (line.split() or [""])[0].lower()
        metrics.MOD_COMMANDS.labels(name if name in commands.COMMANDS else "unknown",
                                    "ok" if ok else "refused").inc()
        self.conversation.save_toggles(before)  # only what the command changed
        # Every command is audited, with the server's verdict.
        self.records.audit(actor.name, name, line, ok, self.clock())
        log.info("%s: command by %s: %r -> %s", self.name, actor.name, line,
                 "ok" if ok else "refused")

    def _set_cooldown(self, seconds: float) -> None:
        self.judge.limiter.config.user_cooldown = seconds

    def status_line(self) -> str:
        flow, pool, toggles = self.flow, self.flow.pool, self.conversation.toggles
        p95 = flow.p95()
        stats = self.conversation.stats
        return (f"llm {'on' if toggles.llm_enabled else 'off'}"
                f"{' (quiet)' if self.clock() < toggles.quiet_until else ''}, "
                f"persona {toggles.persona or 'default'}, "
                f"callers {pool.alive()}, queue {len(pool.queue)}, "
                f"in flight {len(pool.in_flight)}, "
                f"p95 {'-' if p95 is None else f'{p95:.2f} s'}, "
                f"today {stats.get('requests', 0):.0f} requests "
                f"({stats.get('failures', 0):.0f} failed), "
                f"{stats.get('prompt_tokens', 0) + stats.get('completion_tokens', 0):.0f} tokens, "
                f"cooldown {self.judge.limiter.config.user_cooldown:g} s")

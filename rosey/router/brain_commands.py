"""Brain's command running: the one table for PM `!cmd` and `rosey ctl`, audited."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from rosey import metrics
from rosey.protocol import PRIORITY_OTHER
from rosey.router import commands

if TYPE_CHECKING:
    from rosey.config import Config
    from rosey.router.flow import Flow
    from rosey.router.limits import Limiter
    from rosey.router.modctx import ModContext
    from rosey.router.records import Records

log = logging.getLogger("rosey.router")
WAITING_COMMANDS_MAX = 64


class CommandsMixin:
    cfg: Config
    clock: Callable[[], float]
    flow: Flow | None
    records: Records | None
    mod: ModContext | None
    toggles: commands.Toggles
    personas: dict[str, str]
    limiter: Limiter
    reload_hook: Callable[[], str]
    forget: Callable[[str], None]
    status_line: Callable[[], str]
    _save_toggles: Callable[[], None]
    _commands: set[asyncio.Task[None]]

    async def pm_command(self, actor: commands.Actor, line: str) -> None:
        """A moderator's `!cmd`; the answer goes back by PM."""
        assert self.flow is not None
        if not commands.waits(line):  # the switches answer at once, in order
            await self.flow.say(self.run_command(actor, line)[1], pm_to=actor.name,
                                priority=PRIORITY_OTHER)
            return
        if len(self._commands) >= WAITING_COMMANDS_MAX:
            await self.flow.say("busy; try again soon", pm_to=actor.name, priority=PRIORITY_OTHER)
            return
        # This one may wait for the server's answer: never on the conn receive loop.
        task = asyncio.create_task(self._pm_command(actor, line))
        self._commands.add(task)
        task.add_done_callback(self._commands.discard)

    async def _pm_command(self, actor: commands.Actor, line: str) -> None:
        _ok, reply = await self.command(actor, line)
        if self.flow is not None:
            await self.flow.say(reply, pm_to=actor.name, priority=PRIORITY_OTHER)

    def _context(self) -> commands.CommandContext:
        return commands.CommandContext(
            toggles=self.toggles, now=self.clock(), status=self.status_line, forget=self.forget,
            set_cooldown=self._set_cooldown, personas=lambda: sorted(self.personas),
            reload=lambda: self.reload_hook(), ranks=self.cfg.router.command_ranks, mod=self.mod)

    def run_command(self, actor: commands.Actor, line: str) -> tuple[bool, str]:  # no server
        ok, text = commands.execute(self._context(), actor, line)
        self._after_command(actor, line, ok)
        return ok, text

    async def command(self, actor: commands.Actor, line: str) -> tuple[bool, str]:
        """Any command; playlist and kick commands wait for the server's answer."""
        ok, text = await commands.run(self._context(), actor, line)
        self._after_command(actor, line, ok)
        return ok, text

    def _after_command(self, actor: commands.Actor, line: str, ok: bool) -> None:
        name = (line.split() or [""])[0].lower()
        metrics.MOD_COMMANDS.labels(name if name in commands.COMMANDS else "unknown",
                                    "ok" if ok else "refused").inc()
        self._save_toggles()
        if self.records is not None:  # every command is audited, with the server's verdict
            self.records.audit(actor.name, name, line, ok, self.clock())
        log.info("command by %s: %r -> %s", actor.name, line, "ok" if ok else "refused")

    def _set_cooldown(self, seconds: float) -> None:
        self.limiter.config.user_cooldown = seconds

"""What the moderator commands may see and do: the live channel and typed actions only."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from rosey.protocol import Action, ActionResult
from rosey.router import perms
from rosey.router.channel import ChannelState
from rosey.router.cmdbase import CommandError


@dataclass
class ModContext:
    channel: ChannelState
    channel_name: str
    bot_name: str
    tz: ZoneInfo
    run_action: Callable[[Action, float], Awaitable[ActionResult | None]]
    say: Callable[[str, str], Awaitable[Any]]  # (text, pm_to): the ordinary governed path
    seen: Callable[[str], Awaitable[tuple[float, float, int] | None]]  # first, last, messages
    stats: Callable[[str], Awaitable[str]]  # "today" | "week" -> the answer
    wait: float = 15.0  # how long a command waits for the server's answer
    new_id: Callable[[], str] = field(default=lambda: uuid.uuid4().hex)

    def require(self, nodes: list[str], doing: str) -> None:
        """A clear answer when the bot's own rank is below what CyTube needs."""
        rank = self.channel.bot_rank
        for node in nodes:
            if not perms.allowed(node, rank, self.channel.permissions, self.channel.locked):
                need = perms.needed(node, self.channel.permissions, self.channel.locked)
                raise CommandError(f"I can't {doing}: the channel needs rank {need:g} for "
                                   f"{node} and mine is {rank:g}")

    async def act(self, action: Action, done: Callable[[ActionResult], str]) -> str:
        result = await self.run_action(action, self.wait)
        if result is None:  # not a success: the audit row must not say it was
            raise CommandError(f"sent; the server has not answered within {self.wait:g} s "
                               "(a late answer is only in the router log)")
        if not result.ok:
            raise CommandError(f"the server refused: {result.detail}" if result.answered
                               else result.detail)
        return done(result)

"""Every channel the router serves: one ``ChannelCore`` each, and the one ``Flow`` (delivery:
journal, caller queue, outbox) they share.

conn's messages go to the core of their ``channel``; callers' messages go to the flow, and
what the flow concluded goes back to the core of its channel (``_settle``).  ``apply``
takes a new list of channel configs (SIGHUP): new channels get a core, removed ones stop
taking mentions and are dropped once nothing of theirs is left to deliver, unchanged ones
keep their state and take the new prompt, triggers and limits (``!reload``: only that).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from rosey import metrics
from rosey.config import Config
from rosey.protocol import (
    Chat,
    ConnState,
    Delivered,
    Heartbeat,
    Message,
    Partial,
    Pm,
    Ready,
    Result,
)
from rosey.router.budget import BudgetTracker
from rosey.router.commands import Actor
from rosey.router.conversation import restore_budget
from rosey.router.core import ChannelCore, Decision
from rosey.router.flow import Flow
from rosey.router.resume import resume

log = logging.getLogger("rosey.router")


class Router:
    def __init__(self, flow: Flow, make_core: Callable[[Config], ChannelCore],
                 cfgs: list[Config], budget: BudgetTracker) -> None:
        self.flow = flow
        self.budget = budget  # the deployment's: every core adds its costs to it
        self.make_core = make_core
        self.cores: dict[str, ChannelCore] = {cfg.channel: make_core(cfg) for cfg in cfgs}
        self.leaving: dict[str, ChannelCore] = {}  # removed, still delivering

    @property
    def only(self) -> ChannelCore:
        """The core of a one-channel router (the tools, the tests)."""
        (core,) = self.cores.values()
        return core

    def core(self, channel: str) -> ChannelCore | None:
        return self.cores.get(channel) or self.leaving.get(channel)

    # ---- start ---------------------------------------------------------------------

    def restore(self) -> None:
        """Each channel's toggles, limits and statistics; the deployment's spend."""
        for core in self.cores.values():
            core.restore()
        if self.cores:  # every channel's spend, also of channels no longer served
            restore_budget(self.budget, next(iter(self.cores.values())).records,
                           self.flow.clock())

    async def resume(self) -> None:
        """Take back what the previous router accepted, channel by channel (its journal)."""
        for core in self.cores.values():
            await resume(self.flow, core.lane)
        self._settle()

    # ---- conn ----------------------------------------------------------------------

    async def on_conn(self, msg: Message) -> Decision | None:
        """One message from conn; the decision on a chat line or PM, if it was one."""
        if not isinstance(msg, ConnState):
            await self.flow.on_peer()  # conn is there: what it refused before goes now
        decision = None
        core = self.cores.get(getattr(msg, "channel", ""))
        if isinstance(msg, Delivered):
            self.flow.on_delivered(msg.say_id, msg.ok, msg.reason, msg.seq, msg.parts)
        elif core is None:  # a channel no longer (or not yet) served: only delivery counts
            if (leaving := self.leaving.get(getattr(msg, "channel", ""))) is not None:
                leaving.on_event(msg)
            else:
                log.debug("%s for unknown channel %r dropped", type(msg).__name__,
                          getattr(msg, "channel", ""))
        elif isinstance(msg, Chat):
            metrics.CHAT_EVENTS.labels("chat").inc()
            decision = await core.on_chat(msg.username, msg.text, False, msg.received_at)
        elif isinstance(msg, Pm):
            metrics.CHAT_EVENTS.labels("pm").inc()
            decision = await core.on_pm(msg.username, msg.text, msg.received_at)
        else:
            core.on_event(msg)
        if isinstance(msg, ConnState):
            log.info("conn %s: %s %s", msg.channel, msg.state, msg.detail)
            if msg.state in ("connecting", "joined"):
                await self.flow.flush_outbox()
        self._settle()
        return decision

    # ---- callers -------------------------------------------------------------------

    async def on_work(self, identity: bytes, msg: Message, now: float) -> None:
        if isinstance(msg, (Ready, Heartbeat)):
            requeued = self.flow.pool.seen(identity, msg.incarnation, msg.slots, now)
            if requeued:
                self.flow.count_requeued(requeued)
                log.warning("caller %s restarted: requeued %d requests", msg.caller,
                            len(requeued))
                await self.flow.requeued(requeued)
            await self.flow.dispatch()
        elif isinstance(msg, Partial):
            await self.flow.on_partial(msg)
        elif isinstance(msg, Result):
            await self.flow.on_result(msg)
        self._settle()

    async def on_result(self, result: Result) -> None:
        await self.on_work(result.caller.encode(), result, self.flow.clock())

    async def on_partial(self, partial: Partial) -> None:
        await self.on_work(partial.caller.encode(), partial, self.flow.clock())

    async def tick(self) -> None:
        await self.flow.tick()
        self._settle()
        for name, core in list(self.leaving.items()):
            if core.idle():
                del self.leaving[name]
                log.info("channel %s dropped: nothing left to deliver", name)

    def _settle(self) -> None:
        """Concluded requests go to their channel's conversation (history, stats, spend)."""
        for outcome in self.flow.concluded():
            core = self.core(outcome.channel)
            if core is not None:
                core.answered(outcome)

    # ---- control -------------------------------------------------------------------

    async def command(self, channel: str, line: str) -> tuple[bool, str]:
        """``rosey ctl [--channel X] <line>``: on channel X; without one, on the only one."""
        if not channel and len(self.cores) == 1:
            channel = next(iter(self.cores))
        # channel names are compared without case, as the config does
        core = self.cores.get(channel) or next(
            (c for name, c in self.cores.items() if name.lower() == channel.lower()), None)
        if core is None:
            names = ", ".join(sorted(self.cores))
            why = f"no channel {channel!r}" if channel else "several channels"
            return False, f"{why}; this router serves: {names} (rosey ctl --channel NAME ...)"
        return await core.command(Actor("cli", 255, core.cfg.router.command_rank, cli=True),
                                  line)

    async def apply(self, cfgs: list[Config], channels: bool = True) -> str:
        """A re-read config: the channel diff (unless ``channels`` is False: ``!reload``
        leaves joining and leaving to ``rosey apply``), and each kept channel's new
        settings.  An added channel's spend today is in the budget already (``restore``
        sums every channel in the database)."""
        wanted = {cfg.channel: cfg for cfg in cfgs}
        if not channels:  # the served channels only, with their new config if they have one
            wanted = {name: wanted.get(name, core.cfg) for name, core in self.cores.items()}
        added = [name for name in wanted if name not in self.cores]
        removed = [name for name in self.cores if name not in wanted]
        for name in removed:
            self.leaving[name] = self.cores.pop(name)
        for name, cfg in wanted.items():
            core = self.cores.get(name) or self.leaving.pop(name, None)
            if core is not None:  # kept (or back before it was dropped): state stays
                core.reload(cfg)
                self.cores[name] = core
                continue
            core = self.cores[name] = self.make_core(cfg)
            core.restore()
            await resume(self.flow, core.lane)
        self._settle()
        if added or removed:
            log.info("channels: %s joined, %s left", ", ".join(added) or "none",
                     ", ".join(removed) or "none")
        return ", ".join(f"{verb} {', '.join(names)}" for verb, names in
                         (("added", added), ("removed", removed)) if names)

"""The moderator commands' view of the running router: its channel, store and action desk."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from zoneinfo import ZoneInfo

from rosey.config import Config
from rosey.protocol import PRIORITY_OTHER
from rosey.router.actions import ActionDesk
from rosey.router.brain import Brain
from rosey.router.modctx import ModContext
from rosey.store import Store, chanstats


def mod_context(cfg: Config, brain: Brain, store: Store, desk: ActionDesk,
                clock: Callable[[], float]) -> ModContext:
    channel = cfg.channel
    tz = ZoneInfo(cfg.router.limits.timezone)

    async def say(text: str, pm_to: str) -> None:
        assert brain.flow is not None
        await brain.flow.say(text, pm_to=pm_to, priority=PRIORITY_OTHER)

    async def seen(name: str) -> tuple[float, float, int] | None:
        rows = await store.query("SELECT first_seen, last_seen, messages FROM users WHERE "
                                 "channel = ? AND lower(name) = lower(?)", (channel, name))
        return (float(rows[0][0]), float(rows[0][1]), int(rows[0][2])) if rows else None

    async def stats(period: str) -> str:
        summary = await asyncio.to_thread(chanstats.summary, store.query_sync, channel, period,
                                          clock(), tz)
        return chanstats.describe(summary, tz)

    return ModContext(channel=brain.channel, channel_name=channel, bot_name=cfg.bot_name, tz=tz,
                      run_action=desk.run, say=say, seen=seen, stats=stats)

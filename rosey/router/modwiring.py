"""The moderator commands' view of the running router: its channel, store and action desk."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from zoneinfo import ZoneInfo

from rosey.config import Config
from rosey.router.actions import ActionDesk
from rosey.router.channel import ChannelState
from rosey.router.modctx import ModContext
from rosey.store import Store, chanstats


def mod_context(cfg: Config, state: ChannelState, store: Store, desk: ActionDesk,
                say: Callable[[str, str], Awaitable[Any]],
                clock: Callable[[], float]) -> ModContext:
    channel = cfg.channel
    tz = ZoneInfo(cfg.router.limits.timezone)

    async def seen(name: str) -> tuple[float, float, int] | None:
        rows = await store.query("SELECT first_seen, last_seen, messages FROM users WHERE "
                                 "channel = ? AND lower(name) = lower(?)", (channel, name))
        return (float(rows[0][0]), float(rows[0][1]), int(rows[0][2])) if rows else None

    async def stats(period: str) -> str:
        summary = await asyncio.to_thread(chanstats.summary, store.query_sync, channel, period,
                                          clock(), tz)
        return chanstats.describe(summary, tz)

    return ModContext(channel=state, channel_name=channel, bot_name=cfg.bot_name, tz=tz,
                      run_action=desk.run, say=say, seen=seen, stats=stats)

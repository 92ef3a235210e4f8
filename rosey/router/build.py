"""The one place the router is put together: used by the service, ``rosey ask``,
``rosey replay``, the benchmarks and the tests.

Everything a part needs is handed to it here, at construction; nothing is wired in later.
Without a ``store`` the records are kept nowhere (``MemoryRecords``) and the moderator
commands that need the database say so.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from rosey.config import Config, channel_configs
from rosey.protocol import Action, Request, Say
from rosey.router.actions import ActionDesk
from rosey.router.budget import BudgetTracker
from rosey.router.channel import ChannelState
from rosey.router.channels import Router
from rosey.router.conversation import Conversation, new_budget
from rosey.router.core import ChannelCore
from rosey.router.dispatch import Pool
from rosey.router.flow import Flow
from rosey.router.judge import Judge
from rosey.router.lane import Wire
from rosey.router.memrecords import MemoryRecords
from rosey.router.records import Records
from rosey.store import Store


class RouterWire(Wire, Protocol):
    """The router's sockets: requests to callers, Says and moderator actions to the conn
    of their ``channel``."""

    async def send_action(self, action: Action) -> bool: ...


class ListWire:
    """The router's sockets as lists: what it would send to callers and to conn (``rosey
    ask``, the tests).  Every send is taken; moderator actions find no conn."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.says: list[Say] = []

    async def send_request(self, identity: bytes, request: Request) -> bool:
        self.requests.append(request)
        return True

    async def send_say(self, say: Say) -> bool:
        self.says.append(say)
        return True

    async def send_action(self, action: Action) -> bool:
        return False


def build_router(cfg: Config, *, wire: RouterWire, pool: Pool | None = None,
                 store: Store | None = None, clock: Callable[[], float] = time.time,
                 reload: Callable[[], str] = lambda: "reload is not available here",
                 channels: list[Config] | None = None) -> Router:
    """A router serving ``channels`` (default: every channel of ``cfg``)."""
    flow = Flow(pool=pool or Pool(cfg.callers.liveness, cfg.router.queue_max), wire=wire,
                clock=clock)
    budget = new_budget(cfg)  # one for the deployment

    def make_core(channel_cfg: Config) -> ChannelCore:
        return build_core(channel_cfg, flow=flow, send_action=wire.send_action, store=store,
                          clock=clock, reload=reload, budget=budget)

    return Router(flow, make_core, channel_configs(cfg) if channels is None else channels,
                  budget)


def build_core(cfg: Config, *, flow: Flow, send_action: Callable[[Action], Awaitable[bool]],
               store: Store | None, clock: Callable[[], float],
               reload: Callable[[], str], budget: BudgetTracker) -> ChannelCore:
    """One channel's core: its records, conversation, judge and channel state."""
    records = MemoryRecords(cfg.channel) if store is None else Records(store, cfg.channel)
    conversation = Conversation(cfg, records, clock, budget)
    judge = Judge(cfg, conversation.toggles, budget)
    return ChannelCore(cfg, records=records, flow=flow, desk=ActionDesk(send_action),
                       channel=ChannelState(cfg.router.channel_context, bot_name=cfg.bot_name),
                       conversation=conversation, judge=judge, store=store, reload=reload,
                       clock=clock)

"""The router's desk for typed moderator actions: send one to conn, wait for its result.

conn reports exactly one ``ActionResult`` per action (confirmed, refused with the server's
reason, or unanswered after its own timeout). A command waits for it up to its own deadline;
a result that comes later is only logged and counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from rosey import metrics
from rosey.protocol import Action, ActionResult

log = logging.getLogger("rosey.router")
WAITING_MAX = 256


def kind_of(action: Action) -> str:
    return type(action).__name__


class ActionDesk:
    def __init__(self, send: Callable[[Action], Awaitable[bool]]) -> None:
        self.send = send
        self.waiting: OrderedDict[str, tuple[str, asyncio.Future[ActionResult]]] = OrderedDict()

    async def run(self, action: Action, wait: float) -> ActionResult | None:
        """The server's answer, or None when it has not come within ``wait`` seconds."""
        future: asyncio.Future[ActionResult] = asyncio.get_running_loop().create_future()
        self.waiting[action.id] = (kind_of(action), future)
        while len(self.waiting) > WAITING_MAX:
            _, (_, old) = self.waiting.popitem(last=False)
            old.cancel()
        if not await self.send(action):
            self.waiting.pop(action.id, None)
            metrics.MOD_ACTIONS.labels(kind_of(action), "unsent").inc()
            return ActionResult(channel=action.channel, action_id=action.id, ok=False,
                                detail="conn is not reachable", answered=False)
        try:
            return await asyncio.wait_for(asyncio.shield(future), wait)
        except TimeoutError:
            return None

    def on_result(self, result: ActionResult) -> None:
        kind, future = self.waiting.pop(result.action_id, ("unknown", None))
        outcome = "ok" if result.ok else ("refused" if result.answered else "no_answer")
        metrics.MOD_ACTIONS.labels(kind, outcome).inc()
        log.info("action %s (%s): %s %s", result.action_id[:8], kind, outcome, result.detail)
        if future is not None and not future.done():
            future.set_result(result)

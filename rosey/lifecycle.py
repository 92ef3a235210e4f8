"""Run a service's main coroutine until SIGTERM/SIGINT, then let it shut down cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable


async def survive(name: str, log: logging.Logger, step: Callable[[], Awaitable[None]],
                  pause: float = 0.1) -> None:
    """Run ``step`` for ever; an exception is logged and the loop goes on (one bad tick
    must not take a process down and cost a reconnect)."""
    while True:
        try:
            await step()
        except Exception:
            log.exception("%s failed; carrying on", name)
            await asyncio.sleep(pause)


def run_until_signalled(main: Callable[[], Awaitable[None]],
                        on_signal: Callable[[], Awaitable[None]] | None = None) -> None:
    """Run ``main()``; on SIGTERM/SIGINT await ``on_signal()`` (e.g. a drain), then cancel
    ``main`` so its ``finally`` blocks run and the process exits 0."""

    async def runner() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(main())
        stopping: list[asyncio.Task[None]] = []

        async def stop() -> None:
            if on_signal is not None:
                await on_signal()
            task.cancel()

        def request_stop() -> None:
            if not stopping:
                stopping.append(asyncio.ensure_future(stop()))

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, request_stop)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(runner())

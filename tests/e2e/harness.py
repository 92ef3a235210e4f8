"""What an end-to-end test needs around a deployment (fakes/deployment.py): ``deployed``,
which always stops it and fails loudly, and ``expect_lines``.  The deployment's names are
re-exported so the tests import from one place."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fakes.cytube import FakeCytube
from fakes.deployment import (
    BOT,
    BOT_PW,
    SCRUBBED_ENV,
    Rosey,
    bot_lines,
    free_port,
    free_port_range,
    merge,
    wait_joined,
)

__all__ = ["BOT", "BOT_PW", "SCRUBBED_ENV", "SETTLE", "Rosey", "bot_lines", "deployed",
           "expect_lines", "free_port", "free_port_range", "merge", "run_rosey", "wait_joined"]

SETTLE = 1.0  # keep watching this long after an expected reply


async def run_rosey(rosey: Rosey, cytube: FakeCytube) -> None:
    rosey.start()
    await wait_joined(cytube, rosey)


@contextlib.asynccontextmanager
async def deployed(rosey: Rosey, cytube: FakeCytube | None = None) -> AsyncIterator[Rosey]:
    """``async with deployed(rosey, cytube):`` the deployment is up (and joined, when a cytube
    is given) for the body, then always stopped and its folder removed, also when the body
    fails.  Started here unless the test started it itself (``rosey.proc`` set).

    Waits fail loudly: no join within the timeout is an AssertionError with the logs.  A
    clean stop is part of every test: when the body passed, an exit code other than 0 fails
    it with the log's tail.  The body may stop it early (``await rosey.stop()``) to look at
    what the stopped deployment left behind.
    """
    try:
        if rosey.proc is None:
            rosey.start()
        if cytube is not None:
            await wait_joined(cytube, rosey)
        yield rosey
    finally:
        code = await rosey.stop()
        tail = rosey.logs()[-4000:]
        rosey.cleanup()
    assert code == 0, f"rosey run exited {code} instead of stopping cleanly; logs:\n{tail}"


async def expect_lines(cytube: FakeCytube, rosey: Rosey, count: int, timeout: float = 10,
                       settle: float = SETTLE) -> None:
    """The bot has said ``count`` lines in this channel, and (after ``settle`` s) no more."""
    try:
        await cytube.wait_for(lambda: len(bot_lines(cytube)) >= count, timeout=timeout)
    except TimeoutError as exc:
        raise AssertionError(f"#{cytube.channel}: bot said {bot_lines(cytube)}, wanted {count} "
                             f"lines; logs:\n{rosey.logs()[-6000:]}") from exc
    await asyncio.sleep(settle)
    assert len(bot_lines(cytube)) == count, bot_lines(cytube)

"""A host that hangs (rather than refusing) must not eat the whole deadline when the router has
another endpoint for the request: the hand-back needs time left to be answered elsewhere."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import pytest

from rosey.caller.base import LLMError
from rosey.caller.providers import ProviderChain, Target
from rosey.protocol import Request, Turn

pytestmark = pytest.mark.unit


class HangingHost:
    """Answers nothing; gives up when its own timeout passes, as the SDK clients do."""

    async def complete(self, turns: Any, model: str, timeout: float) -> Any:
        await asyncio.sleep(timeout)
        raise LLMError("timeout", f"no answer within {timeout:.2f} s")

    async def aclose(self) -> None:
        pass


def request(hand_back: bool, deadline: float) -> Request:
    return Request(id="r1", deadline=deadline, provider="ollama", model="m",
                   turns=[Turn("user", "hi")], endpoint="gpu1",
                   endpoint_url="http://gpu1:11434", hand_back=hand_back)


@pytest.mark.parametrize(("hand_back", "left_at_least", "left_at_most"),
                         [(True, 0.4, 1.0), (False, -1.0, 0.1)])
async def test_a_hanging_host_leaves_half_the_time_for_the_other_endpoint(
        hand_back: bool, left_at_least: float, left_at_most: float) -> None:
    chain = ProviderChain([Target("ollama", "m", url="http://gpu1:11434")],
                          lambda provider, url: HangingHost(),  # type: ignore[arg-type,return-value]
                          clock=time.time, rng=random.random)
    deadline = time.time() + 1.0
    out = await chain.call(request(hand_back, deadline))
    left = deadline - time.time()
    assert out.error is not None and out.error.kind == "timeout"
    assert out.handed_back is hand_back
    # with a hand-back: about half the time is left; without one, the host had all of it
    assert left_at_least < left < left_at_most, left

"""Two model hosts under real supervisord: a host killed mid-call loses no mention.

The router gives each mention the endpoint with free capacity (capacity 1 each here, so
alice's and bob's calls run one on each host); the host running one of them is killed
mid-call; that call, and only that one, is handed back and answered by the other host;
the dead host is marked down and shown so by ``rosey status``.
"""

from __future__ import annotations

import pytest

from fakes.cytube import FakeCytube
from fakes.llm import FakeLLM
from tests.e2e.harness import Rosey, bot_lines, deployed, expect_lines


@pytest.mark.timeout(90)
async def test_a_killed_host_hands_its_call_to_the_other_and_is_shown_down(
        cytube: FakeCytube) -> None:
    async with FakeLLM("ollama", models=["m"]) as gpu1, FakeLLM("ollama", models=["m"]) as gpu2:
        gpu1.delay = gpu2.delay = 1.5
        rosey = Rosey(cytube, {"provider": "ollama", "model": "m", "llm_cooldown": 0,
                               "response_timeout": 15},
                      providers={"ollama": {"endpoints": [
                          {"name": "gpu1", "url": gpu1.url, "capacity": 1},
                          {"name": "gpu2", "url": gpu2.url, "capacity": 1}]}})
        async with deployed(rosey, cytube):
            await cytube.say_as("alice", "rosey, first question")
            await cytube.say_as("bob", "rosey, second question")
            await cytube.wait_for(lambda: gpu1.in_flight == 1 and gpu2.in_flight == 1,
                                  timeout=15)
            await gpu1.kill()
            await expect_lines(cytube, rosey, 2, timeout=15)
            lines = sorted(bot_lines(cytube))
            assert lines == ["alice: reply to: alice: rosey, first question",
                             "bob: reply to: bob: rosey, second question"], lines
            # Both answered by the host left; the dead one got its one call and no retry.
            assert (gpu1.calls, gpu1.served, gpu2.served) == (1, 0, 2)
            router = rosey.ports["router"]
            assert rosey.metric_at(router, "rosey_endpoint_up", {"endpoint": "gpu1"}) == 0
            assert rosey.metric_at(router, "rosey_endpoint_up", {"endpoint": "gpu2"}) == 1
            assert rosey.metric_at(router, "rosey_endpoint_requests_total",
                                   {"endpoint": "gpu1", "outcome": "failed"}) == 1
            assert rosey.metric_at(router, "rosey_endpoint_requests_total",
                                   {"endpoint": "gpu2", "outcome": "ok"}) == 2
            status = rosey.cli("status").stdout
            assert "endpoint gpu1: DOWN · in flight 0/1" in status, status
            assert "endpoint gpu2: up · in flight 0/1" in status, status

"""A crash of any one process loses no accepted mention and never doubles a reply."""

from __future__ import annotations

import asyncio
import os
import re
import signal

import pytest

from fakes.cytube import FakeCytube
from fakes.llm import FakeLLM
from tests.e2e.harness import Rosey, bot_lines, deployed, expect_lines


def pids(rosey: Rosey, program: str) -> list[int]:
    status = rosey.cli("status").stdout
    return [int(m) for m in re.findall(rf"^{re.escape(program)}\S*\s+RUNNING\s+pid (\d+)",
                                       status, re.MULTILINE)]


@pytest.mark.timeout(90)
async def test_killed_callers_mid_call_requeue_and_reply_once(cytube: FakeCytube) -> None:
    async with FakeLLM("ollama", models=["m"]) as llm:
        llm.delay = 1.5
        rosey = Rosey(cytube, {"provider": "ollama", "model": "m", "ollama_host": llm.url,
                               "llm_cooldown": 0, "response_timeout": 15})
        async with deployed(rosey, cytube):
            await cytube.wait_for(lambda: len(pids(rosey, "caller:")) == 2, timeout=10)
            await cytube.say_as("alice", "rosey, tell me something slow")
            await cytube.wait_for(lambda: llm.calls == 1, timeout=10)
            for pid in pids(rosey, "caller:"):
                os.kill(pid, signal.SIGKILL)
            # supervisord restarts them; the new incarnation makes the router requeue.
            await expect_lines(cytube, rosey, 1, timeout=15)
            assert bot_lines(cytube) == [
                "alice: reply to: alice: rosey, tell me something slow"]
            assert llm.calls == 2
            assert rosey.metric("router", "rosey_router_requests_total",
                                {"outcome": "requeued"}) >= 1


@pytest.mark.timeout(90)
async def test_killed_conn_comes_back_and_answers(cytube: FakeCytube) -> None:
    async with FakeLLM("ollama", models=["m"]) as llm:
        rosey = Rosey(cytube, {"provider": "ollama", "model": "m", "ollama_host": llm.url,
                               "llm_cooldown": 0})
        async with deployed(rosey, cytube):
            await cytube.say_as("alice", "rosey, first")
            await expect_lines(cytube, rosey, 1)
            await cytube.wait_for(lambda: len(pids(rosey, "conn")) == 1, timeout=10)
            (conn_pid,) = pids(rosey, "conn")
            os.kill(conn_pid, signal.SIGKILL)
            await cytube.wait_for(lambda: pids(rosey, "conn") not in ([], [conn_pid]),
                                  timeout=15)
            await cytube.wait_for(lambda: "roseybot" in cytube.usernames, timeout=20)
            await asyncio.sleep(0.5)  # the rejoin's replay must not be answered again
            assert len(bot_lines(cytube)) == 1
            await cytube.say_as("alice", "rosey, second")
            await expect_lines(cytube, rosey, 2)
            assert bot_lines(cytube)[-1] == "alice: reply to: alice: rosey, second"
            assert llm.calls == 2

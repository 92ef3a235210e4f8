"""The CyTube server restarts under a running Rosey (real processes, real supervisord).

The server goes away the instant it has received the bot's reply and before it echoes
it back, keeping its chat buffer (as a restarted CyTube does).  conn must rejoin, answer
nothing from the replayed history, recognise its own pre-restart reply in the replay
instead of posting it again, and post the reply still pending exactly once.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from fakes.cytube import FakeCytube
from fakes.llm import FakeLLM
from tests.e2e.harness import BOT, Rosey, bot_lines, deployed, expect_lines


@pytest.mark.timeout(90)
async def test_server_restart_mid_post_rejoins_and_delivers_pending_replies_once(
        cytube: FakeCytube) -> None:
    cytube.preload_buffer([("alice", "rosey, an old question nobody answered",
                            int(time.time() * 1000) - 60_000)])
    restarts = 0
    serve_chat = cytube._chat

    async def chat(user: Any, raw: str, meta: dict[str, Any], sock: Any) -> None:
        nonlocal restarts
        if user.name == BOT and restarts == 0:  # the server takes the line, then dies
            restarts += 1
            await cytube.drop_all_connections()
            await serve_chat(user, raw, meta, None)
            return
        await serve_chat(user, raw, meta, sock)

    cytube._chat = chat  # type: ignore[method-assign,assignment]
    async with FakeLLM("ollama", models=["m"]) as llm:
        llm.delay = 0.3
        rosey = Rosey(cytube, {"provider": "ollama", "model": "m", "ollama_host": llm.url,
                               "llm_cooldown": 0})
        async with deployed(rosey, cytube):
            await cytube.say_as("alice", "rosey, first")
            await asyncio.sleep(0.15)  # bob's answer is still with the model at the restart
            await cytube.say_as("bob", "rosey, second")
            await expect_lines(cytube, rosey, 2, timeout=20)
            await asyncio.sleep(1.5)  # a re-post after the rejoin would show up here
            assert restarts == 1
            assert sorted(bot_lines(cytube)) == ["alice: reply to: alice: rosey, first",
                                                 "bob: reply to: bob: rosey, second"]
            assert llm.calls == 2  # nothing replayed was answered
            assert BOT in cytube.usernames  # it rejoined
            assert rosey.metric("conn", "rosey_conn_replayed_chat_dropped_total") >= 3
            await cytube.say_as("alice", "rosey, third")  # and it still answers
            await expect_lines(cytube, rosey, 3)

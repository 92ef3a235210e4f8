"""The operator tools agree with the live bot: ``rosey ask`` prints the parts the channel
gets, and ``rosey replay`` of the bot's own chat log makes the live router's decisions."""

from __future__ import annotations

import asyncio
import io

import pytest

from fakes.cytube import FakeCytube
from fakes.llm import FakeLLM
from rosey.cli.ask import ask
from rosey.cli.replay import read_log, replay
from rosey.config import load_config
from tests.e2e.harness import Rosey, bot_lines, deployed, expect_lines

STORY = ("Once upon a time a **very** long answer rolled into the channel. " * 8).strip()


@pytest.mark.timeout(90)
async def test_ask_and_replay_match_the_live_bot(cytube: FakeCytube) -> None:
    async with FakeLLM("ollama", models=["m"]) as llm:
        llm.reply = lambda body: STORY
        rosey = Rosey(cytube, {"provider": "ollama", "model": "m", "ollama_host": llm.url,
                               "llm_cooldown": 2})
        async with deployed(rosey, cytube):
            await cytube.say_as("alice", "rosey, tell me a story")
            await expect_lines(cytube, rosey, 3)  # streamed: the first sentence, 2 full parts
            live = bot_lines(cytube)
            assert live[0] == "alice: Once upon a time a very long answer rolled into the channel."
            await asyncio.sleep(0.2)
            await cytube.say_as("alice", "rosey, another one?")  # inside the cooldown
            await cytube.say_as("bob", "just chatting")
            await asyncio.sleep(2.2)
            await cytube.say_as("alice", "rosey, now?")
            await expect_lines(cytube, rosey, 6)
            await rosey.stop()  # the tools read the database the stopped bot left
            cfg = load_config(rosey.config_path, env={})
            asked = await ask(cfg, "rosey, tell me a story", as_user="alice", out=io.StringIO())
            # the same split, post-processing and addressing
            assert asked.ok and asked.parts == live
            out = io.StringIO()
            totals = await replay(cfg, read_log(cfg.paths.database), latency=0.01, out=out)
            assert totals.decisions == {"accepted": 2, "refused": 1}, out.getvalue()
            assert totals.replies == {"chat": 2}

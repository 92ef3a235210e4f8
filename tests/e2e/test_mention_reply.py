"""End to end under real supervisord: fake CyTube ↔ conn ↔ router ↔ callers ↔ fake LLM.

Every "did not happen" check is paired with a "did happen" one, and counting goes
on for a while after the expected reply so a double reply is caught.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from fakes.cytube import FakeCytube
from fakes.llm import FakeLLM
from tests.e2e.harness import BOT, Rosey, bot_lines, deployed, expect_lines


@pytest.mark.timeout(90)
async def test_ollama_mention_replay_history_and_cooldown(cytube: FakeCytube) -> None:
    old = int(time.time() * 1000) - 60_000
    cytube.preload_buffer([("alice", "rosey, are you there? (an old message)", old)])
    async with FakeLLM("ollama", models=["llama3.2:3b"]) as llm:
        rosey = Rosey(cytube, {"provider": "ollama", "model": "llama3.2:3b",
                               "ollama_host": llm.url, "llm_cooldown": 2})
        async with deployed(rosey, cytube):
            # The replayed mention is not answered; a live one right after the join is.
            await cytube.say_as("alice", "hey rosey, what's up?")
            accepted_at = time.monotonic()
            await expect_lines(cytube, rosey, 1)
            assert bot_lines(cytube) == ["alice: reply to: alice: hey rosey, what's up?"]
            assert llm.calls == 1
            body = llm.requests[0]
            assert body["model"] == "llama3.2:3b"
            assert body["messages"][0]["role"] == "system"
            assert BOT in body["messages"][0]["content"]
            assert body["messages"][-1] == {"role": "user",
                                            "content": "alice: hey rosey, what's up?"}

            # Inside the cooldown: no model call.  After it: a call that carries history.
            await cytube.say_as("alice", "rosey, again?")
            await asyncio.sleep(0.5)
            assert llm.calls == 1
            await asyncio.sleep(max(0.0, 2.1 - (time.monotonic() - accepted_at)))
            await cytube.say_as("alice", "rosey, third time")
            await expect_lines(cytube, rosey, 2)
            assert llm.calls == 2
            roles = [(m["role"], m["content"]) for m in llm.requests[1]["messages"][1:]]
            assert roles == [
                ("user", "alice: hey rosey, what's up?"),
                ("assistant", "reply to: alice: hey rosey, what's up?"),
                ("user", "alice: rosey, third time"),
            ]
            # Not a mention: nothing happens; bob's mention is his own conversation.
            await cytube.say_as("bob", "roseybud is a flower")
            await cytube.say_as("bob", "ROSEY!")
            await expect_lines(cytube, rosey, 3)
            assert bot_lines(cytube)[-1] == "bob: reply to: bob: ROSEY!"
            assert len(llm.requests[2]["messages"]) == 2  # system + bob's message only

            status = rosey.cli("status").stdout
            for name in ("conn", "router", "caller:caller-0", "caller:caller-1"):
                assert any(line.startswith(name) and "RUNNING" in line
                           for line in status.splitlines()), status
            assert any(line.startswith("caller:caller-2") and "STOPPED" in line
                       for line in status.splitlines()), status
            assert rosey.metric("router", "rosey_router_rate_limited_total",
                                {"scope": "user"}) == 1
            assert rosey.metric("router", "rosey_router_triggers_total",
                                {"kind": "keyword"}) == 4
            assert rosey.metric("conn", "rosey_conn_replayed_chat_dropped_total") >= 1


@pytest.mark.timeout(90)
async def test_openai_reply_and_fallback_on_timeout(cytube: FakeCytube) -> None:
    async with FakeLLM("openai", models=["gpt-4o-mini"]) as llm:
        rosey = Rosey(cytube, {"provider": "openai", "model": "gpt-4o-mini",
                               "openai_api_key": "sk-test", "llm_cooldown": 0,
                               "response_timeout": 1.5,
                               "fallback_response": "Sorry, brain freeze."},
                      providers={"openai": {"base_url": llm.url}})
        async with deployed(rosey, cytube):
            # The 1.5 s deadline must not race the callers' start (the OpenAI SDK import).
            await cytube.wait_for(lambda: rosey.metric(
                "router", "rosey_router_callers_alive") == 2, timeout=15)
            await cytube.say_as("alice", "rosey: hello there")
            await expect_lines(cytube, rosey, 1)
            assert bot_lines(cytube) == ["alice: reply to: alice: rosey: hello there"]
            assert llm.requests[0]["model"] == "gpt-4o-mini"
            assert llm.request_headers[0]["authorization"] == "Bearer sk-test"

            llm.hang = True
            started = time.monotonic()
            await cytube.say_as("bob", "@rosey are you stuck?")
            await expect_lines(cytube, rosey, 2)
            elapsed = time.monotonic() - started - 1.0  # expect_lines settles 1 s
            assert bot_lines(cytube)[-1] == "bob: Sorry, brain freeze."
            assert 1.4 <= elapsed <= 3.5, elapsed
            assert rosey.metric("caller-0", "rosey_llm_requests_total",
                                {"provider": "openai", "model": "gpt-4o-mini",
                                 "outcome": "timeout"}) + \
                rosey.metric("caller-1", "rosey_llm_requests_total",
                             {"provider": "openai", "model": "gpt-4o-mini",
                              "outcome": "timeout"}) == 1
            llm.hang = False  # (the deadline already ended the hung call; the stop waits for none)

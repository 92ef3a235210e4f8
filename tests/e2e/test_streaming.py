"""Streamed answers through the real processes: the first sentence is in the channel before
the model has finished, and when the answer breaks off after it, or its caller is killed
mid-stream, the channel sees a clean end and no line twice."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from fakes.cytube import FakeCytube
from fakes.llm import FakeLLM, tokens_of
from tests.e2e.chaos import Supervisor
from tests.e2e.harness import BOT, Rosey, bot_lines, deployed, expect_lines
from tests.e2e.test_resilience import pids

FIRST = "It is a 1968 science fiction film by Stanley Kubrick, about a voyage to Jupiter."
ANSWER = (FIRST + " HAL, the ship's computer, is the part everyone remembers. The effects "
          "still hold up today, and the music is Strauss. Watch it on the biggest screen "
          "you can find.")


def first_line_at(cytube: FakeCytube) -> float:
    return float(next(e["time"] for e in cytube.chat_log if e["username"] == BOT)) / 1000.0


@pytest.mark.timeout(120)
async def test_streamed_reply_pm_and_clean_ends(cytube: FakeCytube) -> None:
    async with FakeLLM("ollama", models=["m"], reply=ANSWER) as llm:
        llm.token_rate, llm.first_token_delay = 25.0, 0.2  # ~40 tokens: 1.8 s
        rosey = Rosey(cytube, {"provider": "ollama", "model": "m", "ollama_host": llm.url,
                               "llm_cooldown": 0, "response_timeout": 4})
        async with deployed(rosey, cytube):
            # 1. A streamed answer: the first sentence is posted while the model writes.
            await cytube.say_as("alice", "rosey, what is 2001?")
            await expect_lines(cytube, rosey, 2, timeout=15)
            lines = bot_lines(cytube)
            assert lines[0] == f"alice: {FIRST}"
            assert " ".join(lines).split() == f"alice: {ANSWER}".split()
            last_token = llm.token_log[-1][0]
            assert first_line_at(cytube) < last_token - 0.5, "first part came only at the end"
            assert rosey.metric("router", "rosey_router_first_part_seconds_count") >= 1
            assert rosey.metric("caller-0", "rosey_llm_tokens_per_second_count",
                                {"provider": "ollama", "model": "m"}) + \
                rosey.metric("caller-1", "rosey_llm_tokens_per_second_count",
                             {"provider": "ollama", "model": "m"}) == 1
            # 2. PMs stream the same way, unaddressed.
            await cytube.pm_as("bob", BOT, "what is 2001?")
            await cytube.wait_for(lambda: len([p for p in cytube.pm_log
                                               if p["username"] == BOT]) >= 2, timeout=15)
            pms = [p["msg"] for p in cytube.pm_log if p["username"] == BOT]
            assert pms[0] == FIRST and " ".join(pms).split() == ANSWER.split()
            # 3. The provider dies after the first sentence: it stays, alone, no fallback.
            llm.break_after = len(tokens_of(FIRST)) + 3
            await cytube.say_as("alice", "rosey, again?")
            await expect_lines(cytube, rosey, 3, timeout=15)
            assert bot_lines(cytube)[2] == f"alice: {FIRST}"
            # 4. The deadline fires mid-stream (hang after the first sentence): a clean end.
            llm.break_mode = "hang"
            await cytube.say_as("bob", "rosey, once more?")
            await expect_lines(cytube, rosey, 4, timeout=15)
            assert bot_lines(cytube)[3] == f"bob: {FIRST}"
            await asyncio.sleep(4.5)  # past the deadline: nothing more comes
            assert len(bot_lines(cytube)) == 4
            assert not any("trouble thinking" in line for line in bot_lines(cytube))
            assert llm.calls == 4  # no retry once a sentence was out


@pytest.mark.timeout(90)
async def test_caller_killed_mid_stream_posts_nothing_twice(cytube: FakeCytube) -> None:
    async with FakeLLM("ollama", models=["m"], reply=ANSWER) as llm:
        llm.token_rate = 10.0  # ~4.5 s of tokens
        rosey = Rosey(cytube, {"provider": "ollama", "model": "m", "ollama_host": llm.url,
                               "llm_cooldown": 0, "response_timeout": 15})
        async with deployed(rosey, cytube):
            await cytube.wait_for(lambda: len(pids(rosey, "caller:")) == 2, timeout=10)
            await cytube.say_as("alice", "rosey, what is 2001?")
            await cytube.wait_for(lambda: len(bot_lines(cytube)) >= 1, timeout=15)
            for pid in pids(rosey, "caller:"):
                os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(4.0)  # restarted callers; the router ended the reply
            lines = bot_lines(cytube)
            assert lines[0] == f"alice: {FIRST}"
            assert len(lines) == len(set(lines)) == 1, lines
            assert llm.calls == 1  # not asked again: a second answer would not join up
            assert rosey.metric("router", "rosey_router_replies_total",
                                {"kind": "cut_short"}) == 1
            # The bot still answers afterwards.
            llm.token_rate = 0.0
            await cytube.say_as("bob", "rosey, and now?")
            await expect_lines(cytube, rosey, 3, timeout=15)
            assert bot_lines(cytube)[1] == f"bob: {FIRST}"


def journal_states(rosey: Rosey) -> list[str]:
    database = Path(rosey.config_path).parent / "data" / "rosey.db"
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=2)
    try:
        return [row[0] for row in db.execute("SELECT state FROM journal")]
    finally:
        db.close()


@pytest.mark.timeout(90)
async def test_conn_killed_as_the_server_gets_a_carrier_part_posts_each_sentence_once(
        cytube: FakeCytube) -> None:
    """The first sentence goes alone; the next three ride on the part the final segment
    carries.  conn is SIGKILLed the instant the server receives that part, before its
    echo: the next conn must neither post the riders' sentences again (on a new packer)
    nor leave any segment unacknowledged."""
    async with FakeLLM("ollama", models=["m"], reply=ANSWER) as llm:
        llm.token_rate = 25.0
        rosey = Rosey(cytube, {"provider": "ollama", "model": "m", "ollama_host": llm.url,
                               "llm_cooldown": 0, "response_timeout": 15})
        sup = Supervisor(rosey)
        killed: list[int] = []
        serve_chat = cytube._chat

        async def chat(user: Any, raw: str, meta: dict[str, Any], sock: Any) -> None:
            if user.name == BOT and not killed and not raw.startswith("alice: "):
                killed.extend(sup.kill(["conn"]))
            await serve_chat(user, raw, meta, sock)

        cytube._chat = chat  # type: ignore[method-assign,assignment]
        async with deployed(rosey, cytube):
            await cytube.wait_for(lambda: "conn" in sup.running(), timeout=10)  # startsecs
            conn = sup.running()["conn"]
            await cytube.say_as("alice", "rosey, what is 2001?")
            await expect_lines(cytube, rosey, 2, timeout=20)
            assert killed == [conn]  # it did happen: conn died holding the carrier part
            await cytube.wait_for(lambda: sup.running().get("conn", conn) != conn, timeout=10)
            await asyncio.sleep(3.0)  # the new conn joined; re-offers would post by now
            lines = bot_lines(cytube)
            assert lines[0] == f"alice: {FIRST}"
            assert len(lines) == 2 and " ".join(lines).split() == f"alice: {ANSWER}".split()
            await cytube.wait_for(lambda: journal_states(rosey) == ["delivered"], timeout=10)


def journal_replies(rosey: Rosey) -> list[str]:
    database = Path(rosey.config_path).parent / "data" / "rosey.db"
    if not database.exists():
        return []
    try:
        db = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=2)
        try:
            return [row[0] for row in db.execute("SELECT reply FROM journal")]
        finally:
            db.close()
    except sqlite3.Error:
        return []


@pytest.mark.timeout(90)
async def test_router_killed_mid_stream_the_held_text_is_posted_once(cytube: FakeCytube) -> None:
    """The router dies once it has shown the second sentence, which conn holds (the part is
    not full): the restarted router re-offers the shown text whole, and conn ends its
    stream with what it held, posting nothing twice; the reply is then delivered."""
    async with FakeLLM("ollama", models=["m"], reply=ANSWER) as llm:
        llm.token_rate = 8.0
        rosey = Rosey(cytube, {"provider": "ollama", "model": "m", "ollama_host": llm.url,
                               "llm_cooldown": 0, "response_timeout": 15})
        sup = Supervisor(rosey)
        async with deployed(rosey, cytube):
            await cytube.wait_for(lambda: "router" in sup.running(), timeout=10)
            await cytube.say_as("alice", "rosey, what is 2001?")
            await cytube.wait_for(lambda: any("remembers." in r for r in journal_replies(rosey)),
                                  timeout=20)
            assert sup.kill(["router"])  # it did happen: killed with the sentence held
            await expect_lines(cytube, rosey, 2, timeout=20)
            lines = bot_lines(cytube)
            assert lines[0] == f"alice: {FIRST}"
            assert lines[1].startswith("HAL, the ship's computer, is the part everyone "
                                       "remembers."), lines
            words = " ".join(lines).split()
            assert words == f"alice: {ANSWER}".split()[:len(words)], lines  # once, in order
            await cytube.wait_for(lambda: journal_states(rosey) == ["delivered"], timeout=10)

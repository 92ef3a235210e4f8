"""Issue 15, end to end under real supervisord: one deployment, several channels on one
CyTube server.  Each channel is answered in itself with its own persona (its own system
prompt); a cooldown in one does not touch another; a ban from one leaves the others
answering; a channel added to the config and applied with ``rosey apply`` is joined while the
others stay connected (no second joinChannel for them at the server)."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest

from fakes.cytube import FakeCytube
from fakes.llm import FakeLLM
from tests.e2e.harness import BOT, Rosey, bot_lines, deployed, expect_lines, wait_joined

PERSONA = re.compile(r"PERSONA=(\w+)")
COOLDOWN = 60  # s, per user: long enough that no answer below comes from its expiry


def persona_reply(body: dict[str, Any]) -> str:
    """The model echoes the persona marker of its system prompt and the last user line."""
    messages = body.get("messages") or []
    system = next((m["content"] for m in messages if m.get("role") == "system"), "")
    found = PERSONA.search(system)
    return f"[{found.group(1) if found else 'none'}] {messages[-1]['content']}"


def prompt(persona: str) -> str:
    return f"You are Rosey, a chat bot. PERSONA={persona}"


def write_channels(rosey: Rosey, channels: list[dict[str, Any]]) -> None:
    rosey.config.pop("channel", None)  # `channels` replaces the single key
    rosey.config["channels"] = channels
    rosey.config_path.write_text(json.dumps(rosey.config, indent=2))


@pytest.mark.timeout(180)
async def test_two_channels_then_a_third_applied_without_touching_them(
        cytube: FakeCytube) -> None:
    movies = cytube  # "testchan"
    anime, music = cytube.channel_named("anime"), cytube.channel_named("music")
    for user in ("alice", "bob"):
        anime.add_virtual_user(user, rank=1)
    for user in ("dave", "erin"):
        music.add_virtual_user(user, rank=1)
    async with FakeLLM("ollama", models=["llama3.2:3b"], reply=persona_reply) as llm:
        rosey = Rosey(cytube, {"provider": "ollama", "model": "llama3.2:3b",
                               "ollama_host": llm.url, "llm_cooldown": COOLDOWN,
                               "system_prompt": prompt("movies")})
        two: list[dict[str, Any]] = [
            {"channel": movies.channel},
            {"channel": "anime", "llm": {"system_prompt": prompt("anime")}}]
        write_channels(rosey, two)
        async with deployed(rosey, movies):
            await wait_joined(anime, rosey)

            # A mention in each is answered in its own channel, with its own persona.
            await movies.say_as("alice", "rosey, which film?")
            await anime.say_as("bob", "rosey, which show?")
            await expect_lines(movies, rosey, 1, timeout=15, settle=0)
            await expect_lines(anime, rosey, 1, timeout=15, settle=0)
            assert bot_lines(movies) == ["alice: [movies] alice: rosey, which film?"]
            assert bot_lines(anime) == ["bob: [anime] bob: rosey, which show?"]

            # alice's cooldown in movies holds there and does not reach her in anime.
            await movies.say_as("alice", "rosey, and another?")
            await anime.say_as("alice", "rosey, hello from anime")
            await expect_lines(anime, rosey, 2, timeout=15, settle=0)
            assert bot_lines(anime)[-1] == "alice: [anime] alice: rosey, hello from anime"
            await asyncio.sleep(1.0)
            assert bot_lines(movies) == ["alice: [movies] alice: rosey, which film?"]
            assert llm.calls == 3

            # A third channel by config and one command; the first two stay connected.
            write_channels(rosey, [*two, {"channel": "music",
                                          "llm": {"system_prompt": prompt("music")}}])
            applied = rosey.cli("apply")
            assert applied.returncode == 0, applied.stdout + applied.stderr
            await wait_joined(music, rosey)
            await music.say_as("dave", "rosey, a song?")
            await expect_lines(music, rosey, 1, timeout=15, settle=0)
            assert bot_lines(music) == ["dave: [music] dave: rosey, a song?"]
            assert (movies.join_count(), anime.join_count(), music.join_count()) == (1, 1, 1)
            joins = re.findall(r"joining (\w+) as", rosey.logs())  # conn's one line per join
            assert sorted(joins) == ["anime", "music", movies.channel], joins
            assert BOT in movies.usernames and BOT in anime.usernames

            # Banned from anime: kicked there; movies and music keep answering.
            await cytube.ban(BOT, channel="anime")
            await anime.wait_for(lambda: BOT not in anime.usernames, timeout=5)
            await movies.say_as("bob", "rosey, still with us?")
            await music.say_as("erin", "rosey, and here?")
            await expect_lines(movies, rosey, 2, timeout=15, settle=0)
            await expect_lines(music, rosey, 2, timeout=15, settle=0)
            assert bot_lines(movies)[-1] == "bob: [movies] bob: rosey, still with us?"
            assert bot_lines(music)[-1] == "erin: [music] erin: rosey, and here?"
            await anime.say_as("bob", "rosey, are you gone?")
            await asyncio.sleep(1.0)
            assert len(bot_lines(anime)) == 2 and BOT not in anime.usernames
            assert movies.join_count() == 1 and music.join_count() == 1

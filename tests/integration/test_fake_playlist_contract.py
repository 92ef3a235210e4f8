"""The fake CyTube's playlist and /kick against the recording (tests/data/cytube-transcript.jsonl).

Every client frame of the recorded scenarios is sent again, from a socket of the same account
and rank, in the recorded order; what the bot's socket receives must be what it received from
the real server, frame for frame (payloads included).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from fakes.cytube import FakeCytube
from tests.integration.test_fake_cytube import Client, new_client
from tests.transcript import frames

PLAYLIST_EVENTS = ("queue", "queueFail", "delete", "moveVideo", "setTemp", "setCurrent",
                   "changeMedia", "setPlaylistMeta", "voteskip", "drinkCount")
SCENARIOS = ("playlist-queue", "playlist-move-delete-jump")
ACCOUNT = {"roseybot#2": "roseybot", "testowner#2": "testowner", "alice#3": "alice"}


@pytest.fixture
async def fake() -> AsyncIterator[FakeCytube]:
    server = FakeCytube("testchan")
    server.add_account("roseybot", "roseybot-test-pw", rank=2)
    server.add_account("testowner", "testowner-test-pw", rank=5)
    server.add_account("alice", "alice-test-pw", rank=1)
    async with server:
        yield server


async def logged_in(fake: FakeCytube, clients: list[Client], name: str) -> Client:
    c = await new_client(fake, clients)
    await c.join()
    await c.login(name, f"{name}-test-pw")
    await c.wait(lambda: c.count("setUserRank") >= 1)
    return c


def relevant(rows: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    return [(e, d) for e, d in rows if e in PLAYLIST_EVENTS]


async def test_playlist_frames_match_the_recording(fake: FakeCytube,
                                                   clients: list[Client]) -> None:
    rows = [f for s in SCENARIOS for f in frames(scenario=s)]
    for f in rows:  # what the server's lookups found when recorded
        if f["dir"] == "in" and f["event"] == "queue" and f["data"]["item"]["media"]["type"] \
                != "cu":
            m = f["data"]["item"]["media"]
            fake.add_media(m["type"], m["id"], m["title"], m["seconds"], m["meta"])
    socks = {client: await logged_in(fake, clients, name) for client, name in ACCOUNT.items()}
    bot = socks["roseybot#2"]
    start = len(bot.frames)
    expected: list[tuple[str, Any]] = []
    for index, f in enumerate(rows):
        if f["dir"] == "in" and f["client"] == "roseybot#2" and f["event"] in PLAYLIST_EVENTS:
            expected.append((f["event"], f["data"]))
        if f["dir"] != "out" or f["client"] not in socks:
            continue
        # the bot's frames the real server sent before the next client frame
        upcoming = rows[index + 1:]
        following = next((i for i, g in enumerate(upcoming) if g["dir"] == "out"), len(upcoming))
        want = len(expected) + sum(1 for g in upcoming[:following] if g["dir"] == "in" and
                                   g["client"] == "roseybot#2" and g["event"] in PLAYLIST_EVENTS)
        await socks[f["client"]].sio.emit(f["event"], f["data"])
        await bot.wait(lambda w=want: len(relevant(bot.frames[start:])) >= w)
        await asyncio.sleep(0.02)  # room for a frame the real server did not send
    got = relevant(bot.frames[start:])
    assert [e for e, _ in got] == [e for e, _ in expected]
    assert got == expected
    assert len(expected) == 35  # queues, 4 refusals, moves, temp, jump, delete, next
    assert fake.playlist_titles == ["Test clip B", "Livestream"]  # after the last playNext
    assert expected and any(e == "queueFail" for e, _ in expected)  # the refusals were there


async def test_kick_matches_the_recording(fake: FakeCytube, clients: list[Client]) -> None:
    bot = await logged_in(fake, clients, "roseybot")
    owner = await logged_in(fake, clients, "testowner")
    alice = await logged_in(fake, clients, "alice")
    for f in frames(scenario="kick", client="roseybot#2", direction="out"):
        await bot.sio.emit(f["event"], f["data"])
    await alice.wait(lambda: alice.count("disconnect") == 1)
    for client in (bot, owner):  # each socket gets the notice in its own time
        await client.wait(lambda c=client: any(d["username"] == "[server]" and "kicked" in d["msg"]
                                               for d in c.data("chatMsg")))
    recorded = {(f["client"], f["event"]): f["data"] for f in frames(scenario="kick")
                if f["dir"] == "in"}
    assert bot.data("errorMsg") == [recorded[("roseybot#2", "errorMsg")]]
    assert alice.data("kick") == [recorded[("alice#2", "kick")]]
    assert owner.data("userLeave")[-1] == recorded[("testowner", "userLeave")]
    assert bot.data("userLeave")[-1] == recorded[("roseybot#2", "userLeave")]
    notice = [d for d in owner.data("chatMsg") if d["username"] == "[server]"][-1]
    assert notice["msg"] == recorded[("testowner", "chatMsg")]["msg"]
    assert "alice" not in fake.usernames and "testowner" in fake.usernames
    # A rank-1 user's /kick is ignored in silence (no errorMsg, nobody leaves).
    await fake.say_as("testowner", "hi")  # a frame to wait for
    guest = await logged_in(fake, clients, "alice")
    await guest.chat("/kick roseybot")
    await guest.chat("after the kick attempt")
    await bot.wait(lambda: "after the kick attempt" in bot.chat_texts())
    assert "roseybot" in fake.usernames and guest.count("errorMsg") == 0


async def test_usercount_goes_to_everyone_throttled_like_channel_js(
        fake: FakeCytube, clients: list[Client]) -> None:
    """Recorded: one join sent ``usercount`` to every socket in the channel (channel.js
    broadcastUsercount: leading and trailing within USERCOUNT_THROTTLE)."""
    joins = [f for f in frames() if f["event"] == "usercount" and f["dir"] == "in"]
    assert len({f["client"] for f in joins if f["data"] == 4}) >= 3  # one change, many sockets
    fake.usercount_throttle = 0.5
    bot = await logged_in(fake, clients, "roseybot")
    await bot.wait(lambda: bot.data("usercount") == [1])  # leading edge: at once
    owner = await logged_in(fake, clients, "testowner")
    alice = await logged_in(fake, clients, "alice")
    assert bot.data("usercount") == [1]  # inside the window: held back
    for c in (bot, owner, alice):  # one trailing broadcast with the count of its moment
        await c.wait(lambda c=c: c.data("usercount")[-1:] == [3], timeout=3)
    assert bot.data("usercount") == [1, 3]
    await alice.close()
    await bot.wait(lambda: bot.data("usercount")[-1] == 2, timeout=3)

"""The fake CyTube serves many channels on one server, as calzoneman/sync does: per-channel
users, chat, buffer and bans; per-server sockets, IP limits and accounts."""

from __future__ import annotations

import socketio

from fakes.cytube import FakeCytube
from fakes.cytube_server import ERR_TOO_MANY, IP_CONNECTION_LIMIT
from tests.integration.test_fake_cytube import Client, fake, new_client

__all__ = ["fake"]  # the fixture, imported for these tests
PW = "roseybot-test-pw"


async def bot_in(fake: FakeCytube, clients: list[Client], channel: str) -> Client:
    bot = await new_client(fake, clients)
    await bot.join(channel)
    await bot.login("roseybot", PW)
    await bot.wait(lambda: bot.count("setUserRank") >= 1)
    return bot


async def test_one_account_in_two_channels_hears_each_channel_only(
        fake: FakeCytube, clients: list[Client]) -> None:
    anime = fake.channel_named("anime")
    anime.add_virtual_user("carol")
    fake.add_virtual_user("alice")
    movies, other = await bot_in(fake, clients, "testchan"), await bot_in(fake, clients, "anime")
    assert movies.count("kick") == other.count("kick") == 0  # no "Duplicate login" across
    assert fake.usernames == ["alice", "roseybot"]
    assert anime.usernames == ["carol", "roseybot"]
    await fake.say_as("alice", "hello movies")
    await fake.say_as("carol", "hello anime", channel="anime")
    await movies.chat("bot in movies")
    await other.wait(lambda: "hello anime" in other.chat_texts())
    await movies.wait(lambda: "bot in movies" in movies.chat_texts())
    assert movies.chat_texts() == ["hello movies", "bot in movies"]
    assert other.chat_texts() == ["hello anime"]
    assert [m["msg"] for m in anime.chat_log] == ["hello anime"]
    assert list(anime.buffer) == anime.chat_log  # each channel replays its own buffer
    assert fake.join_count() == anime.join_count() == 1


async def test_a_ban_in_one_channel_kicks_there_and_leaves_the_other(
        fake: FakeCytube, clients: list[Client]) -> None:
    movies, anime = await bot_in(fake, clients, "testchan"), await bot_in(fake, clients, "anime")
    await fake.ban("roseybot", channel="anime")
    await anime.wait(lambda: anime.count("disconnect") == 1)
    assert anime.frames[-2:] == [("kick", {"reason": "You are banned from this channel."}),
                                 ("disconnect", "server disconnect")]
    assert fake.channel_named("anime").usernames == []
    again = await new_client(fake, clients)  # the ban holds on the next join
    await again.join("anime")
    await again.sio.emit("login", {"name": "roseybot", "pw": PW})  # kicked before a reply
    await again.wait(lambda: again.count("disconnect") == 1)
    assert ("kick", {"reason": "You are banned from this channel."}) in again.frames
    await movies.chat("still here")
    await movies.wait(lambda: "still here" in movies.chat_texts())
    assert movies.count("kick") == 0 and fake.usernames == ["roseybot"]


async def test_channel_ranks_are_per_channel(fake: FakeCytube, clients: list[Client]) -> None:
    fake.set_rank("roseybot", 1, channel="anime")  # a mod in testchan only
    movies, anime = await bot_in(fake, clients, "testchan"), await bot_in(fake, clients, "anime")
    assert movies.data("rank")[-1] == 2
    assert anime.data("rank")[-1] == 1


async def test_open_sockets_per_ip_are_counted_over_the_whole_server(
        fake: FakeCytube, clients: list[Client]) -> None:
    fake.limits = True
    fake.server.buckets.clear()
    fake.server.take_token = lambda ip: True  # type: ignore[method-assign]  # bucket: elsewhere
    opened = []
    for n in range(IP_CONNECTION_LIMIT + 1):  # one per channel, as one conn process would
        c = await new_client(fake, clients)
        if n < IP_CONNECTION_LIMIT:
            await c.join(f"chan{n}")
        opened.append(c)
    last = opened[-1]
    await last.wait(lambda: last.count("disconnect") == 1)
    assert last.frames[-2:] == [("kick", {"reason": ERR_TOO_MANY}), ("disconnect",
                                                                     "server disconnect")]
    assert all(c.count("kick") == 0 for c in opened[:-1])


async def test_kill_and_restart_keep_every_channel(
        fake: FakeCytube, clients: list[Client]) -> None:
    anime = fake.channel_named("anime")
    anime.add_virtual_user("carol")
    await anime.say_as("carol", "before the restart")
    bot = await bot_in(fake, clients, "anime")
    port = fake.port
    await fake.kill()
    await bot.wait(lambda: bot.count("disconnect") == 1)
    refused = Client(fake)
    clients.append(refused)
    try:
        await refused.sio.connect(fake.url, transports=["websocket"], wait_timeout=2)
        raise AssertionError("a killed server accepted a connection")
    except socketio.exceptions.ConnectionError:
        pass
    await fake.restart()
    assert fake.port == port
    back = await bot_in(fake, clients, "anime")
    assert back.chat_texts() == ["before the restart"]  # the buffer survived
    assert anime.join_count() == 2

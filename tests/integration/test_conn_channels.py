"""One conn process, many channels, against the fake CyTube serving them on one server.

Each channel has its own session (DEALER ``conn:<channel>``, backoff, governor, ledger); a
crash, a ban or a wrong channel password stays in its channel; ``apply`` (what SIGHUP runs)
joins new channels, lets removed ones leave, restarts a channel whose connection settings
changed, and does not touch the others (no second ``joinChannel`` at the server).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import zmq
import zmq.asyncio

from fakes.cytube import FakeCytube
from rosey import ipc, metrics
from rosey.config import Config, load_config
from rosey.conn.service import ConnService
from rosey.protocol import Chat, ConnState, Delivered, Message, Say, decode, encode
from tests.integration.test_conn_service import until

BOT, PW = "roseybot", "roseybot-test-pw"


class Router:
    """The router's end of ipc://RUN/conn, keeping what each channel's DEALER sent."""

    def __init__(self, run_dir: str) -> None:
        self.ctx = zmq.asyncio.Context()
        self.sock = ipc.router_socket(self.ctx, ipc.endpoint(run_dir, "conn"))
        self.got: list[tuple[str, Message]] = []
        self.task = asyncio.create_task(self._recv())

    async def _recv(self) -> None:
        while True:
            identity, data = await self.sock.recv_multipart()
            self.got.append((identity.decode(), decode(data)))

    def identity(self, channel: str) -> bytes:
        """The DEALER that last spoke for ``channel`` (one identity per session), as the
        real router learns it."""
        return next(who for who, m in reversed(self.got)
                    if who.startswith(f"conn:{channel}:")).encode()

    async def say(self, channel: str, text: str, say_id: str, to: str = "") -> None:
        say = Say(id=say_id, channel=channel, text=text)
        await self.sock.send_multipart([self.identity(to or channel), encode(say)])

    def of(self, channel: str, kind: type) -> list[Any]:
        return [m for who, m in self.got
                if who.startswith(f"conn:{channel}:") and isinstance(m, kind)]

    def states(self, channel: str) -> list[str]:
        return [m.state for m in self.of(channel, ConnState)]

    def close(self) -> None:
        self.task.cancel()
        self.sock.close(0)
        self.ctx.term()


class Deployment:
    def __init__(self, fake: FakeCytube, channels: list[dict[str, Any]]) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="rcc-", dir="/tmp"))
        self.path = self.home / "config.json"
        self.raw: dict[str, Any] = {
            "domain": fake.url, "user": [BOT, PW], "channels": channels,
            "conn": {"reconnect_min": 0.05, "kick_backoff": 1, "connect_timeout": 5},
            "metrics": {"enabled": False}, "paths": {"run_dir": str(self.home / "run")}}
        (self.home / "run").mkdir()
        self.cfg = self.write(channels)
        self.router = Router(str(self.home / "run"))
        self.service = ConnService(self.cfg, str(self.path), fatal_reminder=0.2)
        self.task = asyncio.create_task(self.service.run())

    def write(self, channels: list[dict[str, Any]]) -> Config:
        self.raw["channels"] = channels
        self.path.write_text(json.dumps(self.raw))
        return load_config(self.path, env={})

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        self.router.close()
        shutil.rmtree(self.home, ignore_errors=True)


@pytest.fixture
async def fake() -> AsyncIterator[FakeCytube]:
    async with FakeCytube("movies") as server:
        server.add_account(BOT, PW, rank=2)
        for name in ("movies", "anime", "music"):
            server.channel_named(name).add_virtual_user("alice", rank=1)
        yield server


@pytest.fixture
async def deploy(fake: FakeCytube) -> AsyncIterator[list[Deployment]]:
    made: list[Deployment] = []
    yield made
    for d in made:
        await d.close()


async def joined(fake: FakeCytube, *channels: str) -> None:
    for name in channels:
        await fake.channel_named(name).wait_for(
            lambda name=name: BOT in fake.channel_named(name).usernames, 10)  # type: ignore[misc]


@pytest.mark.timeout(60)
async def test_each_channel_has_its_own_session_and_a_failure_stays_in_it(
        fake: FakeCytube, deploy: list[Deployment], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "rosey.conn")
    d = Deployment(fake, [{"channel": "movies"}, {"channel": "anime"}, {"channel": "music"}])
    deploy.append(d)
    await joined(fake, "movies", "anime", "music")
    anime, music = fake.channel_named("anime"), fake.channel_named("music")
    await fake.say_as("alice", "hello movies")
    await anime.say_as("alice", "hello anime")
    await until(lambda: d.router.of("movies", Chat) and d.router.of("anime", Chat))
    assert [c.text for c in d.router.of("movies", Chat)] == ["hello movies"]
    assert [(c.channel, c.text) for c in d.router.of("anime", Chat)] == [("anime", "hello anime")]
    run_dir = Path(d.cfg.paths.run_dir)
    files = await asyncio.to_thread(lambda: {p.name for p in run_dir.glob("conn-*")})
    assert files >= {
        "conn-movies.json", "conn-anime.json", "conn-music.json", "conn-movies.posted",
        "conn-anime.posted", "conn-music.posted"}  # backoff state and ledger per channel

    # music's session crashes (a bug in its connection loop): it alone is restarted.
    def broken(cause: str) -> float:
        raise RuntimeError("a bug in music's session")

    d.service.client("music").policy.next_delay = broken  # type: ignore[method-assign]
    await music.kick(BOT, "testing a crash")
    await until(lambda: "the session crashed" in caplog.text, 5)
    await music.wait_for(lambda: music.join_count() == 2, 10)  # restarted after ~1 s
    await joined(fake, "music")

    # anime bans the bot: anime stops retrying, the others are not disturbed.
    await fake.ban(BOT, channel="anime")
    await until(lambda: "fatal" in d.router.states("anime"))
    await d.router.say("movies", "still here", "s1")
    await until(lambda: d.router.of("movies", Delivered))
    assert d.router.of("movies", Delivered)[0].ok
    await d.router.say("music", "for music", "s2", to="movies")  # a router bug: refused
    await until(lambda: len(d.router.of("movies", Delivered)) == 2)
    wrong = d.router.of("movies", Delivered)[1]
    assert (wrong.channel, wrong.say_id, wrong.ok, wrong.reason) == (
        "music", "s2", False, "wrong channel")
    assert [m["msg"] for m in fake.chat_log if m["username"] == BOT] == ["still here"]
    assert (fake.join_count(), anime.join_count()) == (1, 1)  # no rejoin, no retry
    assert d.router.states("movies") == ["connecting", "joined"]
    assert "conn stopped retrying in anime (channel_ban)" in caplog.text


@pytest.mark.timeout(60)
async def test_apply_adds_removes_restarts_only_what_changed(
        fake: FakeCytube, deploy: list[Deployment], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "rosey.conn")
    d = Deployment(fake, [{"channel": "movies"}, {"channel": "anime"}])
    deploy.append(d)
    await joined(fake, "movies", "anime")
    anime, music = fake.channel_named("anime"), fake.channel_named("music")

    d.write([{"channel": "movies"}, {"channel": "anime", "conn": {"channel_password": "x"}},
             {"channel": "music"}])
    changes = await d.service.reload()
    assert changes == ["channel music: added",
                       "channel anime: restarted: conn.channel_password changed"]
    await joined(fake, "music")
    await anime.wait_for(lambda: anime.join_count() == 2 and BOT in anime.usernames, 10)
    # the restarted session's DEALER is a new peer: this stand-in router sends a Say once
    # (the real one re-offers), so wait until the new session has announced itself
    try:
        await until(lambda: d.router.states("anime").count("joined") == 2)
    except TimeoutError:
        raise AssertionError(d.router.states("anime")) from None
    for line in changes:
        assert line in caplog.text
    assert "x" not in " ".join(changes).replace("changed", "")  # names, never values

    d.write([{"channel": "movies"}, {"channel": "music"}])
    await d.router.say("anime", "goodbye anime", "bye")  # drained before it leaves
    client = d.service.client("anime")
    await until(lambda: client.governor.depth() or d.router.of("anime", Delivered))
    assert await d.service.reload() == ["channel anime: removed"]
    await anime.wait_for(lambda: BOT not in anime.usernames, 10)
    assert [m["msg"] for m in anime.chat_log if m["username"] == BOT] == ["goodbye anime"]
    await until(lambda: d.router.states("anime")[-1] == "disconnected")  # the router hears
    assert d.router.of("anime", ConnState)[-1].detail == "removed from the config"
    connected = {s.labels["channel"]: s.value for f in metrics.registry_for("conn").collect()
                 for s in f.samples if s.name == "rosey_conn_connected"}
    assert connected.get("music") == 1 and "anime" not in connected  # no stale alert
    assert await d.service.reload() == []  # nothing changed: nothing touched
    assert "config applied: no channel changed" in caplog.text
    assert (fake.join_count(), music.join_count(), anime.join_count()) == (1, 1, 2)
    assert d.router.states("movies") == ["connecting", "joined"]
    assert BOT in fake.usernames and BOT in music.usernames

    (d.home / "config.json").write_text("{not json")  # a broken config changes nothing
    assert await d.service.reload() == []
    assert "config not applied (the channels run as before)" in caplog.text
    assert sorted(d.service.channels) == ["movies", "music"]

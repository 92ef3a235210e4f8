"""Contract: the fake CyTube answers like the recorded CyTube 3.86.

For each scenario, the sockets that were open when it started are rebuilt (their connect,
``joinChannel``, ``login``, ``channelPassword`` and ``setOptions`` frames are replayed; chat is
not, it would only change the flood limiters), the server's chat buffer is preloaded with what
the real one held, and then the scenario's ``out`` frames are replayed in their recorded order
and rhythm. Every client's ``in`` events must equal the recording: same events, same order,
same chat lines, the same ``cooldown`` values, logins and kicks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import socketio

from fakes.cytube import FakeCytube
from tests.transcript import frames

SCENARIOS = ["guest-join", "chat-basic", "flood-default-rank1", "flood-antiflood-on",
             "duplicate-login", "reconnect-rejoin", "pm", "duplicate-login-bot",
             "server-restart-rejoin"]
SETUP_EVENTS = {"joinChannel", "login", "channelPassword", "setOptions", "(client disconnect)"}
# Not part of the contract: usercount is throttled by the server's wall clock, and mediaUpdate
# needs a playing item (the fake has no playlist clock).
UNTIMED = {"usercount", "mediaUpdate", "connect", "connect_error"}
MAX_GAP = 1.2  # recorded pauses are kept up to this (the 1.1 s paced chat needs them)


class Client:
    def __init__(self, fake: FakeCytube, name: str) -> None:
        self.fake, self.name = fake, name
        self.got: list[tuple[str, Any]] = []
        self.sio = socketio.AsyncClient(reconnection=False)
        self.sio.on("*", self._any)
        self.sio.on("disconnect", self._gone)

    async def _any(self, event: str, *args: Any) -> None:
        self.got.append((event, args[0] if args else None))

    async def _gone(self, *reason: Any) -> None:
        self.got.append(("disconnect", None))

    async def connect(self) -> None:
        await self.sio.connect(self.fake.url, transports=["websocket"], wait_timeout=10)


def key(event: str, data: Any) -> tuple[Any, ...]:
    """What must match between the recording and the fake for one incoming frame."""
    if event in ("chatMsg", "pm"):
        return (event, data["username"], data["msg"], tuple(sorted(data["meta"])),
                data.get("to"))
    if event in ("cooldown", "login", "kick", "errorMsg", "rank", "needPassword"):
        return (event, repr(data))
    if event in ("userLeave", "addUser", "setUserRank"):
        return (event, data["name"])
    if event == "userlist":
        return (event, tuple(sorted(u["name"] for u in data)))
    return (event,)


def recorded(scenario: str) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {}
    for f in frames(scenario=scenario, direction="in"):
        if f["event"] not in UNTIMED:
            out.setdefault(f["client"], []).append(key(f["event"], f["data"]))
    return out


def open_sockets(scenario: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(setup frames of the sockets open at the scenario's start, the scenario's frames)."""
    rows = frames()
    start = next(i for i, f in enumerate(rows) if f["scenario"] == scenario)
    opened: dict[str, int] = {}
    for i, f in enumerate(rows[:start]):
        if f["dir"] == "in" and f["event"] == "connect":
            opened[f["client"]] = i
        elif f["event"] in ("disconnect", "(client disconnect)"):
            opened.pop(f["client"], None)
    setup = [f for i, f in enumerate(rows[:start]) if f["client"] in opened
             and i >= opened[f["client"]]
             and ((f["event"] == "connect" and f["dir"] == "in")
                  or (f["dir"] == "out" and f["event"] in SETUP_EVENTS))]
    chat = [f["data"] for f in rows[:start] if f["dir"] == "in" and f["event"] == "chatMsg"
            and f["data"]["username"] != "[server]"]
    buffer: dict[int, dict[str, Any]] = {}
    for d in chat:  # every client saw each line: keep one per (time, text)
        buffer[hash((d["time"], d["msg"], d["username"]))] = d
    tail = sorted(buffer.values(), key=lambda d: d["time"])[-15:]
    media = [f["data"] for f in rows[:start] if f["event"] == "changeMedia"]
    playing = {"media": media[-1]} if media and not any(
        f["event"] == "playlist" and f["data"] == [] for f in rows[:start]
        if f["t"] > next(g["t"] for g in reversed(rows[:start]) if g["event"] == "changeMedia")
    ) else {}
    return [*setup, {"buffer": tail, **playing}], [f for f in rows if f["scenario"] == scenario]


@pytest.fixture
async def fake() -> AsyncIterator[FakeCytube]:
    server = FakeCytube("testchan")
    server.add_account("testowner", "testowner-test-pw", rank=5)
    server.add_account("roseybot", "roseybot-test-pw", rank=2)
    server.add_account("alice", "alice-test-pw", rank=1)
    async with server:
        yield server


async def play(fake: FakeCytube, clients: dict[str, Client], rows: list[dict[str, Any]],
               paced: bool) -> None:
    last_t: float | None = None
    for f in rows:
        if "buffer" in f:
            fake.buffer.clear()
            fake.preload_buffer([(d["username"], d["msg"], d["time"]) for d in f["buffer"]])
            if "media" in f:  # something was playing: the join burst announces it
                m = f["media"]
                await fake.set_media(m["title"], m["id"], m["type"], m["seconds"])
            continue
        gap = f["t"] - last_t if last_t is not None else 0.0
        if paced and gap > 0.05:
            await asyncio.sleep(min(gap, MAX_GAP))
        elif gap > 0.002 or not paced:
            await asyncio.sleep(0.02)  # let the server answer the previous frame first
        last_t = f["t"]
        name = f["client"]
        if f["dir"] == "in" and f["event"] == "connect":
            clients[name] = Client(fake, name)
            await clients[name].connect()
        elif f["dir"] == "out" and name in clients:
            if f["event"] == "(client disconnect)":
                await clients[name].sio.disconnect()
            else:
                await clients[name].sio.emit(f["event"], f["data"])


@pytest.mark.timeout(60)
@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_the_fake_answers_the_recorded_out_frames_as_cytube_did(
        fake: FakeCytube, scenario: str) -> None:
    setup, rows = open_sockets(scenario)
    clients: dict[str, Client] = {}
    try:
        await play(fake, clients, setup, paced=False)
        await asyncio.sleep(0.3)  # the setup's answers are not part of the comparison
        marks = {name: len(c.got) for name, c in clients.items()}
        await play(fake, clients, rows, paced=True)
        await asyncio.sleep(0.3)
        want = recorded(scenario)
        for name, client in clients.items():
            got = [key(e, d) for e, d in client.got[marks.get(name, 0):] if e not in UNTIMED]
            assert got == want.get(name, []), name
        assert set(want) <= set(clients)
    finally:
        for c in clients.values():
            if c.sio.connected:
                await c.sio.disconnect()


async def test_flood_default_rank1_gives_20_echoes_and_10_cooldowns(fake: FakeCytube) -> None:
    setup, rows = open_sockets("flood-default-rank1")
    clients: dict[str, Client] = {}
    try:
        await play(fake, clients, setup, paced=False)
        await asyncio.sleep(0.3)
        mark = len(clients["alice"].got)
        await play(fake, clients, rows, paced=True)
        await fake.wait_for(lambda: len(clients["alice"].got) - mark >= 30)
        got = clients["alice"].got[mark:]
        assert sum(1 for e, d in got if e == "chatMsg" and d["username"] == "alice") == 20
        assert [d for e, d in got if e == "cooldown"] == [100] * 10
    finally:
        for c in clients.values():
            if c.sio.connected:
                await c.sio.disconnect()

"""The fake CyTube server reproduces the facts recorded in tests/data/cytube-transcript.jsonl.

Driven by a real python-socketio AsyncClient over websocket, as the bot's conn process is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import socketio

from fakes.cytube import FakeCytube
from tests.transcript import LIFECYCLE_EVENTS, frames


class Client:
    """A recording socket.io client: ``frames`` holds every (event, data) received."""

    def __init__(self, fake: FakeCytube, *, reconnection: bool = False) -> None:
        self.fake = fake
        self.frames: list[tuple[str, Any]] = []
        self.connects = 0
        self.sio = socketio.AsyncClient(
            reconnection=reconnection, reconnection_delay=0.05, randomization_factor=0
        )
        self.sio.on("*", self._any)
        self.sio.on("connect", self._connected)
        self.sio.on("disconnect", self._disconnected)

    async def _any(self, event: str, *args: Any) -> None:
        self.frames.append((event, args[0] if args else None))

    async def _connected(self) -> None:
        self.connects += 1

    async def _disconnected(self, *reason: Any) -> None:
        self.frames.append(("disconnect", reason[0] if reason else None))

    async def connect(self) -> Client:
        await self.sio.connect(self.fake.url, transports=["websocket"], wait_timeout=10)
        await self.wait(lambda: self.count("rank") >= 1)
        return self

    async def join(self, channel: str = "testchan") -> None:
        await self.sio.emit("joinChannel", {"name": channel})
        await self.wait(lambda: self.count("userlist") >= 1)

    async def login(self, name: str, pw: str | None = None) -> dict[str, Any]:
        before = self.count("login")
        await self.sio.emit("login", {"name": name, **({"pw": pw} if pw else {})})
        await self.wait(lambda: self.count("login") > before)
        reply: dict[str, Any] = self.data("login")[-1]
        return reply

    async def chat(self, msg: str) -> None:
        await self.sio.emit("chatMsg", {"msg": msg, "meta": {}})

    def events(self) -> list[str]:
        return [e for e, _ in self.frames]

    def count(self, event: str) -> int:
        return sum(1 for e, _ in self.frames if e == event)

    def data(self, event: str) -> list[Any]:
        return [d for e, d in self.frames if e == event]

    def chat_texts(self) -> list[str]:
        return [d["msg"] for d in self.data("chatMsg") if d["username"] != "[server]"]

    async def wait(self, predicate: Any, timeout: float = 5.0) -> None:
        await self.fake.wait_for(predicate, timeout)

    async def close(self) -> None:
        await self.sio.disconnect()


@pytest.fixture
async def fake() -> AsyncIterator[FakeCytube]:
    server = FakeCytube("testchan")
    server.add_account("roseybot", "roseybot-test-pw", rank=2)
    server.add_account("alice", "alice-test-pw")
    async with server:
        yield server


async def new_client(fake: FakeCytube, clients: list[Client], **kw: Any) -> Client:
    c = Client(fake, **kw)
    clients.append(c)
    return await c.connect()


def collapse(events: list[str]) -> list[str]:
    """Runs of chatMsg collapse into one, so bursts with different replay sizes compare."""
    out: list[str] = []
    for e in events:
        if not (e == "chatMsg" and out and out[-1] == "chatMsg"):
            out.append(e)
    return out


def recorded_events(scenario: str, client: str, start_after: str | None = None) -> list[str]:
    rows = frames(scenario=scenario, client=client)
    if start_after is not None:
        idx = next(i for i, f in enumerate(rows) if f["dir"] == "out" and f["event"] == start_after)
        rows = rows[idx + 1 :]
    return [f["event"] for f in rows if f["dir"] == "in" and f["event"] not in LIFECYCLE_EVENTS]


def recorded_data(scenario: str, client: str, event: str) -> list[Any]:
    return [f["data"] for f in frames(scenario, client, "in") if f["event"] == event]


async def test_socketconfig(fake: FakeCytube) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{fake.url}/socketconfig/testchan.json") as resp:
            assert resp.status == 200
            assert await resp.json() == {"servers": [{"url": fake.url, "secure": False}]}
        async with http.get(f"{fake.url}/socketconfig/bad name.json") as resp:
            assert resp.status == 404
            assert await resp.json() == {"error": 'Channel "bad name" does not exist.'}


async def test_join_burst_matches_transcript_and_replays_old_times(
    fake: FakeCytube, clients: list[Client]
) -> None:
    old = [("alice", "alice paced 0", 1795572656018), ("roseybot", "hi &amp; bye", 1795572657119)]
    fake.preload_buffer(old)
    guest = await new_client(fake, clients)
    await guest.join()
    want = recorded_events("guest-join", "guest")  # ends with userlist (usercount throttled)
    got = guest.events()
    assert collapse(got)[: len(collapse(want))] == collapse(want)
    replay = guest.data("chatMsg")
    assert replay == [{"username": u, "msg": m, "meta": {}, "time": t} for u, m, t in old]
    assert guest.data("userlist") == [[]]  # anonymous sockets are never listed
    assert guest.data("channelOpts") == recorded_data("guest-join", "guest", "channelOpts")


async def test_registered_login_after_join_matches_transcript(
    fake: FakeCytube, clients: list[Client]
) -> None:
    bot = await new_client(fake, clients)
    await bot.join()
    await bot.wait(lambda: bot.count("usercount") == 1)  # the burst's last (throttled) frame
    n = len(bot.frames)
    assert await bot.login("roseybot", "roseybot-test-pw") == {"success": True, "name": "roseybot"}
    await bot.wait(lambda: bot.count("setUserRank") >= 1)
    want = recorded_events("bot-join-then-login", "roseybot", start_after="login")
    assert [e for e, _ in bot.frames[n:]] == want
    assert bot.data("rank") == [-1, 1, 2]
    assert bot.data("addUser") == recorded_data("bot-join-then-login", "roseybot", "addUser")
    assert bot.data("login") == recorded_data("bot-join-then-login", "roseybot", "login")
    mod_list = bot.data("userlist")[-1]
    assert mod_list[0]["name"] == "roseybot" and mod_list[0]["meta"]["aliases"] == ["roseybot"]


async def test_login_before_join_and_others_see_add_user(
    fake: FakeCytube, clients: list[Client]
) -> None:
    watcher = await new_client(fake, clients)
    await watcher.join()
    assert await watcher.login("guest_viewer") == {
        "success": True,
        "name": "guest_viewer",
        "guest": True,
    }
    alice = await new_client(fake, clients)
    assert await alice.login("alice", "alice-test-pw") == {"success": True, "name": "alice"}
    await alice.join()
    assert "addUser" not in alice.events()  # own entry only inside userlist
    assert [u["name"] for u in alice.data("userlist")[0]] == ["guest_viewer", "alice"]
    await watcher.wait(lambda: watcher.count("addUser") >= 2)
    seen = [e for e in watcher.events() if e in ("setUserRank", "addUser")]
    assert seen[-2:] == ["setUserRank", "addUser"]  # rank before addUser, as recorded


async def test_login_errors_and_ignored_second_login(
    fake: FakeCytube, clients: list[Client]
) -> None:
    c = await new_client(fake, clients)
    await c.join()
    cases = {
        ("alice", "definitely-wrong"): "Invalid username/password combination",
        ("nosuchuser", "whatever"): "User does not exist",
        ("alice", None): "That username is registered.",
        ("bad name!", None): (
            "Invalid username.  Usernames must be 1-20 characters long and consist only of "
            "characters a-z, A-Z, 0-9, -, or _."
        ),
        ("x-admin", None): "That username is reserved.",
    }
    for (name, pw), error in cases.items():
        assert await c.login(name, pw) == {"success": False, "error": error}
    transcript_errors = {
        f["data"]["error"]
        for f in frames(direction="in")
        if f["event"] == "login" and not f["data"]["success"]
    }
    assert set(cases.values()) <= transcript_errors
    fake.add_virtual_user("guest_viewer", rank=0)
    assert (await c.login("GUEST_VIEWER"))[
        "error"
    ] == "That name is already in use on this channel."
    assert (await c.login("roseybot", "roseybot-test-pw"))["success"] is True
    logins = c.count("login")
    await c.sio.emit("login", {"name": "alice", "pw": "alice-test-pw"})  # ignored
    await c.chat("still me")
    await c.wait(lambda: "still me" in c.chat_texts())
    assert c.count("login") == logins
    assert fake.chat_log[-1]["username"] == "roseybot"


async def test_echo_escaping_and_length(fake: FakeCytube, clients: list[Client]) -> None:
    bot = await new_client(fake, clients)
    await bot.join()
    await bot.login("roseybot", "roseybot-test-pw")
    alice = await new_client(fake, clients)
    await alice.join()
    await alice.login("alice", "alice-test-pw")
    table = {  # PROTOCOL.md §6.2, observed
        "<b>bold tag</b> & \"double\" 'single' (parens)": (
            "&lt;b&gt;bold tag&lt;/b&gt; &amp; \"double\" 'single' (parens)"
        ),
        "<script>alert(1)</script>": "&lt;script&gt;alert(1)&lt;/script&gt;",
        "already &amp; escaped &lt;x&gt;": "already &amp;amp; escaped &amp;lt;x&amp;gt;",
        "link https://example.com/path?a=1&b=2 end": (
            'link <a href="https://example.com/path?a=1&amp;b=2" target="_blank" '
            'rel="noopener noreferrer">https://example.com/path?a=1&amp;b=2</a> end'
        ),
        "*bold* _italic_ `code` ~~strike~~ [sp]spoiler[/sp]": (
            "<strong>bold</strong> <em>italic</em> <code>code</code> <s>strike</s> "
            '<span class="spoiler">spoiler</span>'
        ),
        "snake_case_word and file_name_here": "snake<em>case</em>word and file<em>name</em>here",
        "**double star** and __dunder__ here": (
            "<strong>*double star</strong>* and <em>_dunder</em>_ here"
        ),
        "a*b*c and 1 * 2 * 3": "a<strong>b</strong>c and 1 <strong> 2 </strong> 3",
        "`inline` and ```triple```": "<code>inline</code> and <code>`</code>triple<code>`</code>",
        "control\tchars\nnewline\x07bell": "control chars newline bell",
        "unicode: éè 中文 🎉 emoji": "unicode: éè 中文 🎉 emoji",
        "<a href='https://example.com'>link</a>": (
            '&lt;a href=\'<a href="https://example.com\'&gt;link&lt;/a&gt;" target="_blank" '
            'rel="noopener noreferrer">https://example.com\'&gt;link&lt;/a&gt;</a>'
        ),
        "0123456789" * 40: ("0123456789" * 40)[:320],
        "&" * 320: "&amp;" * 320,
        "🎉" * 200: "🎉" * 160,  # 320 UTF-16 code units
        "   ": None,  # blank: never broadcast
        ">greentext line": "&gt;greentext line",
    }
    for sent in table:
        await bot.chat(sent)
    expected = [v for v in table.values() if v is not None]
    for c in (bot, alice):  # echo to the sender too
        await c.wait(lambda c=c: len(c.chat_texts()) >= len(expected))
        assert c.chat_texts() == expected
    assert bot.data("chatMsg")[-1]["meta"] == {"addClass": "greentext"}
    assert all(isinstance(d["time"], int) for d in bot.data("chatMsg"))


async def test_commands_are_not_broadcast(fake: FakeCytube, clients: list[Client]) -> None:
    bot = await new_client(fake, clients)
    await bot.join()
    await bot.login("roseybot", "roseybot-test-pw")
    await bot.chat("before")
    sent = [
        "/kick alice",
        "/dance party",
        "/d",
        " /clear (leading space)",
        "//clear double slash",
        "/unknowncmd hello",
        "/ME upper-case me",
        "/clear",
    ]
    for msg in sent:
        await bot.chat(msg)
    # clearchat and the "[server] … cleared chat." notice are two frames: wait for both.
    await bot.wait(lambda: bot.count("clearchat") == 1
                   and bot.data("chatMsg")[-1]["msg"] == "roseybot cleared chat.")
    assert bot.chat_texts() == [
        "before",
        " /clear (leading space)",
        "//clear double slash",
        "/unknowncmd hello",
        "/ME upper-case me",
    ]
    assert fake.commands_run == [
        ("roseybot", "/kick alice"),
        ("roseybot", "/dance party"),
        ("roseybot", "/d"),
        ("roseybot", "/clear"),
    ]
    assert bot.data("clearchat") == [{"clearedBy": "roseybot"}]
    assert bot.data("chatMsg")[-1]["msg"] == "roseybot cleared chat."
    assert list(fake.buffer) == []


async def test_flood_limit_20_then_cooldown(fake: FakeCytube, clients: list[Client]) -> None:
    alice = await new_client(fake, clients)
    await alice.join()
    await alice.login("alice", "alice-test-pw")
    for i in range(30):
        await alice.chat(f"alice flood {i}")
    await alice.wait(lambda: alice.count("cooldown") + len(alice.chat_texts()) >= 30)
    assert alice.chat_texts() == [f"alice flood {i}" for i in range(20)]
    assert alice.data("cooldown") == [100] * 10
    recorded = frames("flood-default-rank1", "alice", "in")
    assert [f["data"] for f in recorded if f["event"] == "cooldown"] == [100] * 10


async def test_antiflood_applies_below_rank_2(fake: FakeCytube, clients: list[Client]) -> None:
    fake.antiflood = True
    alice = await new_client(fake, clients)
    await alice.join()
    await alice.login("alice", "alice-test-pw")
    bot = await new_client(fake, clients)
    await bot.join()
    await bot.login("roseybot", "roseybot-test-pw")
    assert alice.data("channelOpts")[0]["chat_antiflood"] is True
    for i in range(10):
        await alice.chat(f"alice antiflood {i}")
        await bot.chat(f"bot antiflood {i}")
    await alice.wait(lambda: alice.count("cooldown") == 6 and len(alice.chat_texts()) == 14)
    assert alice.data("cooldown") == [1000] * 6
    assert [t for t in alice.chat_texts() if t.startswith("alice")] == [
        f"alice antiflood {i}" for i in range(4)
    ]
    assert [t for t in alice.chat_texts() if t.startswith("bot")] == [
        f"bot antiflood {i}" for i in range(10)
    ]
    assert bot.count("cooldown") == 0


async def test_pm_to_and_from_virtual_user(fake: FakeCytube, clients: list[Client]) -> None:
    fake.add_virtual_user("alice")
    bot = await new_client(fake, clients)
    await bot.join()
    await bot.login("RoseyBot", "roseybot-test-pw")
    await bot.wait(lambda: bot.count("setUserRank") >= 1)  # the mod userlist came before it
    assert [u["name"] for u in bot.data("userlist")[-1]] == ["alice", "roseybot"]
    await bot.sio.emit("pm", {"to": "ALICE", "msg": "private <b>x</b>", "meta": {}})
    await bot.sio.emit("pm", {"to": "roseybot", "msg": "pm to myself"})
    await bot.sio.emit("pm", {"to": "nobody_here", "msg": "x"})
    await bot.sio.emit("pm", {"to": "bad name!", "msg": "x"})
    await bot.wait(lambda: bot.count("pm") == 1 and bot.count("errorMsg") == 3)
    await fake.pm_as("alice", "RoseyBot", ">reply")
    await bot.wait(lambda: bot.count("pm") == 2)
    first, second = bot.data("pm")
    assert first["msg"] == "private &lt;b&gt;x&lt;/b&gt;" and first["to"] == "alice"
    assert first["username"] == "roseybot" and set(first) == {
        "username", "msg", "meta", "time", "to",
    }  # fmt: skip
    assert second["to"] == "roseybot" and second["meta"] == {"addClass": "greentext"}
    assert [d["msg"] for d in bot.data("errorMsg")] == [
        "You can't PM yourself!",
        "PM failed: nobody_here isn't connected to this channel.",
        "PM failed: bad name! isn't a valid username.",
    ]
    assert len(fake.pm_log) == 2


async def test_virtual_user_chat_and_kick(fake: FakeCytube, clients: list[Client]) -> None:
    bot = await new_client(fake, clients)
    await bot.join()
    await bot.login("roseybot", "roseybot-test-pw")
    alice = await new_client(fake, clients)
    await alice.join()
    await alice.login("alice", "alice-test-pw")
    fake.add_virtual_user("carol", rank=0)
    await fake.say_as("carol", "hey rosey, snake_case_word (ok)?")
    await bot.wait(lambda: "hey rosey, snake<em>case</em>word (ok)?" in bot.chat_texts())
    assert bot.data("addUser")[-1]["name"] == "carol"
    await fake.kick("alice", "testing the kick")
    await alice.wait(lambda: alice.count("disconnect") == 1)
    assert alice.frames[-2:] == [
        ("kick", {"reason": "testing the kick"}),
        ("disconnect", "server disconnect"),
    ]
    await bot.wait(lambda: {"name": "alice"} in bot.data("userLeave"))
    assert fake.usernames == ["roseybot", "carol"]


async def test_reconnect_requires_rejoin_and_login(fake: FakeCytube, clients: list[Client]) -> None:
    fake.add_virtual_user("alice")
    bot = await new_client(fake, clients, reconnection=True)
    await bot.join()
    await bot.login("roseybot", "roseybot-test-pw")
    await bot.chat("before restart")
    await bot.wait(lambda: bot.chat_texts() == ["before restart"])
    await fake.drop_all_connections()
    await bot.wait(lambda: bot.connects == 2)  # python-socketio reconnected by itself
    await bot.wait(lambda: bot.data("rank")[-1] == -1)
    mark = len(bot.frames)
    await bot.chat("after reconnect, before rejoin")  # silently dropped: not in the channel
    dropped = ("after reconnect, before rejoin", False)
    await fake.wait_for(
        lambda: any(
            e == "chatMsg" and (d["msg"], who == "roseybot") == dropped
            for who, e, d in fake.frames_from_clients
        )
    )  # received from the (anonymous, unjoined) socket, recorded by sid
    await fake.say_as("alice", "alice talks meanwhile")
    await bot.join()
    await bot.login("roseybot", "roseybot-test-pw")
    await bot.chat("after rejoin")
    await bot.wait(lambda: "after rejoin" in bot.chat_texts())
    replayed = [d for e, d in bot.frames[mark:] if e == "chatMsg"]
    assert [d["msg"] for d in replayed] == [
        "before restart",
        "alice talks meanwhile",
        "after rejoin",
    ]
    assert replayed[0]["time"] == fake.chat_log[0]["time"]  # replay keeps the original time
    assert [d["msg"] for d in fake.chat_log] == [
        "before restart",
        "alice talks meanwhile",
        "after rejoin",
    ]


async def test_duplicate_login_kicks_the_old_socket(
    fake: FakeCytube, clients: list[Client]
) -> None:
    old = await new_client(fake, clients)
    await old.join()
    await old.login("roseybot", "roseybot-test-pw")
    new = await new_client(fake, clients)
    await new.join()
    await new.login("roseybot", "roseybot-test-pw")
    await old.wait(lambda: old.count("disconnect") == 1)
    assert old.frames[-2:] == [
        ("kick", {"reason": "Duplicate login"}),
        ("disconnect", "server disconnect"),
    ]
    await new.wait(lambda: new.count("setUserRank") == 1)
    mine = [(e, d["name"]) for e, d in new.frames if e in ("userLeave", "addUser")]
    assert mine == [("userLeave", "roseybot"), ("addUser", "roseybot")]  # own name leaves first
    recorded = recorded_events("duplicate-login-bot", "roseybot#2", start_after="login")
    assert [e for e in recorded if e in ("userLeave", "addUser")] == ["userLeave", "addUser"]
    assert fake.usernames == ["roseybot"]


async def test_per_ip_connect_bucket_and_guest_limit_like_the_recording(
        fake: FakeCytube, clients: list[Client]) -> None:
    fake.limits = True
    recorded = [f["event"] for f in frames("conn-rate-limit", direction="in")
                if f["event"] in ("connect", "connect_error")]
    assert recorded == ["connect"] * 5 + ["connect_error"] * 2
    got = []
    for _n in range(7):  # one IP (X-Forwarded-For, as the recorder presented distinct IPs)
        c = Client(fake)
        clients.append(c)
        try:
            await c.sio.connect(fake.url, transports=["websocket"], wait_timeout=5,
                                headers={"X-Forwarded-For": "10.0.0.7"})
            got.append("connect")
        except socketio.exceptions.ConnectionError:
            got.append("connect_error")
    assert got == recorded
    assert fake.connect_log[-2:] == [("10.0.0.7", False)] * 2
    other = Client(fake)  # another IP has its own bucket
    clients.append(other)
    await other.sio.connect(fake.url, transports=["websocket"], wait_timeout=5,
                            headers={"X-Forwarded-For": "10.0.0.8"})
    await other.join()
    assert (await other.login("guest_one"))["success"] is True
    again = Client(fake)
    clients.append(again)
    await again.sio.connect(fake.url, transports=["websocket"], wait_timeout=5,
                            headers={"X-Forwarded-For": "10.0.0.8"})
    await again.join()
    assert await again.login("guest_two") == {
        "success": False,
        "error": "Guest logins are restricted to one per IP address per 60 seconds."}


async def test_password_mute_afk_and_media(fake: FakeCytube, clients: list[Client]) -> None:
    fake.password = "letmein"
    guest = await new_client(fake, clients)
    await guest.sio.emit("joinChannel", {"name": "testchan"})
    await guest.wait(lambda: guest.count("needPassword") == 1)
    await guest.sio.emit("channelPassword", "wrong")
    await guest.wait(lambda: guest.count("needPassword") == 2)
    await guest.sio.emit("channelPassword", "letmein")
    await guest.wait(lambda: guest.count("userlist") == 1)
    assert guest.data("needPassword") == [False, True]
    assert "cancelNeedPassword" in guest.events()
    assert await guest.login("guest_viewer") == {"success": True, "name": "guest_viewer",
                                                 "guest": True}
    await fake.mute("guest_viewer")
    await guest.chat("am I muted?")
    await guest.wait(lambda: guest.count("noflood") == 1)
    assert guest.data("noflood") == [{"action": "chat",
                                      "msg": "You have been muted on this channel."}]
    assert guest.data("setUserMeta")[-1] == {"name": "guest_viewer",
                                             "meta": {"afk": False, "muted": True}}
    await fake.mute("guest_viewer", False)
    await fake.set_afk("guest_viewer", True)
    await guest.chat("/afk")  # toggles back, never broadcast
    await guest.wait(lambda: guest.count("setAFK") == 2)
    assert [d["afk"] for d in guest.data("setAFK")] == [True, False]
    assert guest.chat_texts() == []
    await fake.set_media("Clip <i>x</i>")
    await guest.wait(lambda: guest.count("changeMedia") == 1)
    assert guest.data("changeMedia")[0]["title"] == "Clip <i>x</i>"

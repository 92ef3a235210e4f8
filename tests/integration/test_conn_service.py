"""The real conn service (socket.io + ZeroMQ) against the fake CyTube, with a stand-in router."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import zmq
import zmq.asyncio

from fakes.cytube import FakeCytube
from rosey import ipc, metrics
from rosey.config_schema import Config, Conn, Metrics, Paths
from rosey.conn import refusals
from rosey.conn.service import ConnService
from rosey.conn.site import chat_maxlength
from rosey.conn.transport import redact
from rosey.protocol import (
    Chat,
    ConnState,
    Delivered,
    MediaChanged,
    Message,
    Say,
    UserLeft,
    decode,
    encode,
)

BOT, PW = "roseybot", "roseybot-test-pw"


class Router:
    """The router's end of ipc://RUN/conn: records what conn sends, sends it Says."""

    def __init__(self, run_dir: str) -> None:
        self.ctx = zmq.asyncio.Context()
        self.sock = ipc.router_socket(self.ctx, ipc.endpoint(run_dir, "conn"))
        self.got: list[Message] = []
        self.identity = b""
        self.task = asyncio.create_task(self._recv())

    async def _recv(self) -> None:
        while True:
            identity, data = await self.sock.recv_multipart()
            self.identity = identity
            self.got.append(decode(data))

    async def say(self, say: Say) -> None:
        await self.sock.send_multipart([self.identity, encode(say)])

    def of(self, kind: type) -> list[Any]:
        return [m for m in self.got if isinstance(m, kind)]

    def states(self) -> list[str]:
        return [m.state for m in self.of(ConnState)]

    def close(self) -> None:
        self.task.cancel()
        self.sock.close(0)
        self.ctx.term()


def metric(name: str, **labels: str) -> float:
    """The sum over the samples carrying ``labels`` (whatever their ``channel``)."""
    return sum(sample.value for family in metrics.registry_for("conn").collect()
               for sample in family.samples
               if sample.name == name and labels.items() <= sample.labels.items())


async def until(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.01)


class Harness:
    def __init__(self, fake: FakeCytube, channel: str = "", user: tuple[str, ...] = (BOT, PW),
                 fatal_reminder: float = 60.0, **conn: Any) -> None:
        self.home = tempfile.mkdtemp(prefix="rc-", dir="/tmp")
        options: dict[str, Any] = {"reconnect_min": 0.05, "kick_backoff": 0.2,
                                   "connect_timeout": 5.0, **conn}
        self.cfg = Config(domain=fake.url, channel=channel or fake.channel, user=list(user),
                          conn=Conn(**options), paths=Paths(run_dir=self.home),
                          metrics=Metrics(enabled=False))
        self.router = Router(self.home)
        self.service = ConnService(self.cfg, fatal_reminder=fatal_reminder)
        self.task = asyncio.create_task(self.service.run())

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        self.router.close()
        shutil.rmtree(self.home, ignore_errors=True)


@pytest.fixture
async def fake() -> AsyncIterator[FakeCytube]:
    async with FakeCytube("testchan", max_length=100) as server:
        server.add_account(BOT, PW, rank=2)
        server.add_virtual_user("alice", rank=1)
        yield server


@pytest.fixture
async def make(fake: FakeCytube) -> AsyncIterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def factory(**kw: Any) -> Harness:
        made.append(Harness(fake, **kw))
        return made[-1]

    yield factory
    for h in made:
        await h.close()


@pytest.mark.timeout(60)
async def test_server_restart_rejoins_and_answers_no_replayed_history(
        fake: FakeCytube, make: Callable[..., Harness]) -> None:
    fake.preload_buffer([("alice", "roseybot, old question", 1_000)])
    h = make()
    await fake.wait_for(lambda: BOT in fake.usernames, 10)
    await fake.say_as("alice", "roseybot, live question")
    await until(lambda: h.router.of(Chat))
    await fake.drop_all_connections()  # a server restart: no goodbye frame
    await fake.wait_for(lambda: BOT in fake.usernames, 10)
    await until(lambda: h.router.states().count("joined") == 2)
    await fake.say_as("alice", "roseybot, after the restart")
    await until(lambda: len(h.router.of(Chat)) == 2)
    await asyncio.sleep(0.2)
    assert [c.text for c in h.router.of(Chat)] == ["roseybot, live question",
                                                   "roseybot, after the restart"]
    assert h.router.states() == ["connecting", "joined", "disconnected", "joined"]
    logins = [d for who, e, d in fake.frames_from_clients if e == "login"]
    assert logins == [{"name": BOT, "pw": PW}] * 2  # joined and logged in again
    assert metric("rosey_conn_connected", channel=h.cfg.channel) == 1


@pytest.mark.timeout(60)
async def test_says_are_split_at_the_channel_length_and_confirmed(
        fake: FakeCytube, make: Callable[..., Harness]) -> None:
    h = make()  # message_length 0: read from the channel page (100 here)
    await until(lambda: "joined" in h.router.states())
    await fake.set_media("Some <b>clip</b>")
    text = "alice: " + "word " * 45 + "/kick alice"
    await h.router.say(Say(id="r1", channel="testchan", text=text, expires_at=9e9))
    await until(lambda: h.router.of(Delivered))
    (done,) = h.router.of(Delivered)
    assert (done.say_id, done.ok, done.parts) == ("r1", True, 3)
    sent = [d["msg"] for d in fake.chat_log if d["username"] == BOT]
    assert len(sent) == 3 and all(len(m) <= 100 for m in sent)
    assert fake.commands_run == []  # the trailing "/kick alice" never ran
    assert " ".join(sent).split() == text.split()
    assert [m.title for m in h.router.of(MediaChanged)] == ["Some <b>clip</b>"]
    await h.router.say(Say(id="r1", channel="testchan", text=text, expires_at=9e9))
    await until(lambda: len(h.router.of(Delivered)) == 2)  # a re-sent Say is not re-posted
    assert len([d for d in fake.chat_log if d["username"] == BOT]) == 3


@pytest.mark.timeout(60)
async def test_duplicate_login_and_moderator_kicks_back_off_then_rejoin(
        fake: FakeCytube, make: Callable[..., Harness]) -> None:
    h = make()
    await until(lambda: "joined" in h.router.states())
    await fake.kick(BOT, "behave")
    await until(lambda: h.router.states().count("joined") == 2)
    assert metric("rosey_conn_kicks_total", channel=h.cfg.channel, kind="kick") >= 1
    # our own old socket logs in again (a half-open connection): conn is kicked, rejoins, and
    # the userLeave for its own name is not reported as "the bot left"
    intruder = FakeSocket(fake)
    await intruder.login()
    await until(lambda: h.router.states().count("joined") == 3)
    assert not any(m.name == BOT for m in h.router.of(UserLeft))
    assert "Duplicate login" in h.router.of(ConnState)[-2].detail
    await intruder.close()


@pytest.mark.timeout(60)
async def test_a_say_during_the_kick_backoff_waits_for_the_rejoin(
        fake: FakeCytube, make: Callable[..., Harness]) -> None:
    # The backoff outlasts the echo timeout: parts "sent" on the dead socket would expire.
    h = make(kick_backoff=1.5, echo_timeout=0.5)
    await until(lambda: "joined" in h.router.states())
    await fake.kick(BOT, "behave")
    await until(lambda: "disconnected" in h.router.states())
    await h.router.say(Say(id="k1", channel="testchan", text="alice: still here",
                           expires_at=9e9))
    await asyncio.sleep(1.0)
    assert h.router.of(Delivered) == []  # held, not failed
    await until(lambda: h.router.states().count("joined") == 2)
    await until(lambda: h.router.of(Delivered))
    (done,) = h.router.of(Delivered)
    assert (done.say_id, done.ok) == ("k1", True)
    await asyncio.sleep(0.3)
    assert [d["msg"] for d in fake.chat_log if d["username"] == BOT] == ["alice: still here"]


class FakeSocket:
    def __init__(self, fake: FakeCytube) -> None:
        import socketio
        self.fake = fake
        self.sio = socketio.AsyncClient(reconnection=False)

    async def login(self) -> None:
        await self.sio.connect(self.fake.url, transports=["websocket"], wait_timeout=5)
        await self.sio.emit("joinChannel", {"name": self.fake.channel})
        await self.sio.emit("login", {"name": BOT, "pw": PW})

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("case", "reason"), [
    ("server ban", "server_ban"), ("channel ban", "channel_ban"),
    ("wrong password", "bad_password"), ("registered guest name", "registered_name"),
    ("unknown channel", "no_channel"), ("channel password", "channel_password")])
async def test_fatal_cases_stop_retrying_stay_idle_and_say_the_fix(
        fake: FakeCytube, case: str, reason: str, caplog: pytest.LogCaptureFixture) -> None:
    conn: dict[str, Any] = {"channel_password": "wrong"} if case == "channel password" else {}
    user: tuple[str, ...] = (BOT, PW)
    if case == "server ban":
        fake.ban_ip("127.0.0.1")
    elif case == "channel ban":
        fake.ban_name(BOT)
    elif case == "wrong password":
        fake.add_account(BOT, "another-password", rank=2)
    elif case == "registered guest name":
        user = (BOT.capitalize(),)  # a guest login with an account's name, in another case
    elif case == "channel password":
        fake.password = "letmein"
        fake.accounts[BOT] = (BOT, PW, 1)  # rank 1 cannot skip the password
    for each in refusals.FATAL_REASONS:  # the registry outlives each case
        metrics.FATAL.labels(channel=fake.channel, reason=each).set(0)
    caplog.set_level(logging.INFO, "rosey.conn")
    h = Harness(fake, channel="bad channel!" if case == "unknown channel" else "", user=user,
                fatal_reminder=0.2, **conn)
    try:
        await until(lambda: "fatal" in h.router.states())
        attempts = len(fake.connect_log)
        await asyncio.sleep(0.5)  # idle: no more attempts, the process stays up
        assert len(fake.connect_log) == attempts
        assert not h.task.done()
        assert metric("rosey_conn_fatal", channel=h.cfg.channel, reason=reason) == 1
        assert sum(metric("rosey_conn_fatal", channel=h.cfg.channel, reason=r)
                   for r in refusals.FATAL_REASONS) == 1
        assert metric("rosey_conn_connected", channel=h.cfg.channel) == 0
        (fatal,) = [m for m in h.router.of(ConnState) if m.state == "fatal"]
        names = refusals.Names(name=user[0], domain=fake.url, channel=h.cfg.channel)
        fix = refusals.fix(reason, names)  # type: ignore[arg-type]
        assert f"— fix: {fix}" in fatal.detail
        stopped = [r for r in caplog.records if r.getMessage().startswith("conn stopped")]
        assert len(stopped) >= 2, caplog.text  # said, then said again while idle
        assert {(r.levelno, r.getMessage()) for r in stopped} == {(logging.ERROR, fatal.detail)}
        assert fatal.detail.startswith(f"conn stopped retrying in {h.cfg.channel} ({reason}): ")
    finally:
        await h.close()


@pytest.mark.timeout(60)
async def test_guest_login_waits_out_the_per_ip_limit(make: Callable[..., Harness],
                                                      fake: FakeCytube) -> None:
    fake.limits = True
    h = make(user=("rosey_guest",))
    await until(lambda: "joined" in h.router.states())
    assert fake.usernames[-1] == "rosey_guest"
    policy = h.service.client().policy
    assert policy.log.guest_login > 0  # a reconnect now waits for the 60 s rule
    assert policy.guest_wait(policy.clock()) > 55


def test_frame_logging_redacts_passwords_and_the_page_parser() -> None:
    assert redact("login", {"name": BOT, "pw": PW}) == {"name": BOT, "pw": "***"}
    assert redact("login", {"name": "guest"}) == {"name": "guest"}
    assert redact("joinChannel", {"name": "c", "pw": "x"}) == {"name": "c", "pw": "***"}
    assert redact("channelPassword", "letmein") == "***"
    assert redact("channelOpts", {"password": "letmein", "afk_timeout": 600}) == {
        "password": "***", "afk_timeout": 600}
    assert redact("chatMsg", {"msg": "hi"}) == {"msg": "hi"}
    page = '<input class="form-control" id="chatline" type="text" maxlength="240">'
    assert chat_maxlength(page) == 240
    assert chat_maxlength('<input id="other" maxlength="9">') is None
    assert chat_maxlength(Path(__file__).read_text()[:10]) is None

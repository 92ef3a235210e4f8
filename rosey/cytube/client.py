"""The conn process: one socket.io connection to CyTube and the outbound governor.

It turns frames into typed events for the router, and the router's ``Say`` actions
into paced, split, echo-confirmed chat messages.  Triggers, LLM calls and SQL live
elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import aiohttp
import socketio
import zmq
import zmq.asyncio

from rosey import ipc, metrics
from rosey.config import Config
from rosey.cytube import events as ev
from rosey.cytube.governor import SERVER_DEFAULT, Governor
from rosey.lifecycle import run_until_signalled
from rosey.protocol import (
    Chat,
    ConnState,
    ConnStateName,
    Delivered,
    Message,
    Pm,
    RankChanged,
    Say,
    User,
    UserJoined,
    UserLeft,
    UserList,
    encode,
)

log = logging.getLogger("rosey.conn")

FATAL_LOGIN_ERRORS = ("Invalid username/password", "User does not exist", "is registered",
                      "Invalid username", "is reserved")
GUEST_LOGIN_WAIT = 61.0
KNOWN_EVENTS = frozenset({
    "chatMsg", "pm", "userlist", "addUser", "userLeave", "setUserRank", "setUserMeta",
    "setAFK", "rank", "login", "kick", "errorMsg", "noflood", "spamFiltered", "cooldown",
    "needPassword", "cancelNeedPassword", "clearchat", "changeMedia", "setUserProfile",
    "channelOpts", "usercount", "mediaUpdate", "playlist", "queue", "delete",
    "setPlaylistMeta", "setCurrent",
})


class FatalConnError(Exception):
    """Retrying cannot help (ban, bad password, unknown channel): stay up, idle, alerting."""


def to_user(entry: ev.UserEntry) -> User:
    return User(name=entry.name, rank=entry.rank, afk=entry.afk, muted=entry.muted,
                aliases=list(entry.aliases))


class ConnService:
    def __init__(self, cfg: Config, clock: Callable[[], float] = time.time):
        self.cfg = cfg
        self.clock = clock
        self.channel = cfg.channel
        self.name = cfg.bot_name
        self.governor = Governor(limit=cfg.conn.message_length, max_parts=cfg.conn.max_parts,
                                 echo_timeout=cfg.conn.echo_timeout)
        self.replay = ev.JoinReplayFilter()
        self.rank = -1.0
        self.antiflood = False
        self.antiflood_params = (4.0, 1.0, 4.0)
        self.logged_in = False
        self.userlist_seen = False
        self.attempts = 0
        self.last_kick = ""
        self._wake = asyncio.Event()
        self._delivered: OrderedDict[str, bool] = OrderedDict()
        self.sio: socketio.AsyncClient | None = None
        self._fatal: FatalConnError | None = None

    @property
    def joined(self) -> bool:
        return self.logged_in and self.userlist_seen

    # ---- router link -----------------------------------------------------

    async def run(self) -> None:
        ctx = zmq.asyncio.Context()
        self.sock = ipc.dealer_socket(ctx, ipc.endpoint(self.cfg.paths.run_dir, "conn"),
                                      f"conn:{self.channel}")
        await self.state("connecting")
        tasks = [asyncio.create_task(self._router_loop()),
                 asyncio.create_task(self._send_loop()),
                 asyncio.create_task(self._connection_loop()),
                 asyncio.create_task(metrics.watch_loop_lag("conn"))]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            if self.sio is not None:
                with contextlib.suppress(Exception):
                    await self.sio.disconnect()
            self.sock.close(linger=200)
            ctx.term()

    async def to_router(self, msg: Message) -> None:
        await self.sock.send(encode(msg))

    async def state(self, state: ConnStateName, detail: str = "") -> None:
        await self.to_router(ConnState(channel=self.channel, state=state, bot_name=self.name,
                                       bot_rank=self.rank, detail=detail))

    async def _router_loop(self) -> None:
        while True:
            msg = ipc.decode_or_count(await self.sock.recv(), "conn", log)
            if isinstance(msg, Say):
                await self.accept_say(msg)

    async def accept_say(self, say: Say) -> None:
        log.debug("say %s received", say.id)
        if say.id in self._delivered:  # the router re-sent one we already posted
            await self.to_router(Delivered(channel=self.channel, say_id=say.id,
                                           ok=self._delivered[say.id]))
            return
        parts = self.governor.add(say, self.clock())
        metrics.SPLITS.inc(parts)
        metrics.GOVERNOR_DEPTH.set(self.governor.depth())
        self._wake.set()

    async def finish(self, say_id: str, ok: bool, parts: int, reason: str = "") -> None:
        self._delivered[say_id] = ok
        while len(self._delivered) > 1024:
            self._delivered.popitem(last=False)
        received = self.governor.received_at(say_id)
        metrics.SAY_OUTCOMES.labels("delivered" if ok else reason or "failed").inc()
        if ok and received is not None:
            metrics.GOVERNOR_WAIT.observe(self.clock() - received)
        await self.to_router(Delivered(channel=self.channel, say_id=say_id, ok=ok, parts=parts,
                                       reason=reason))

    # ---- outbound --------------------------------------------------------

    async def _send_loop(self) -> None:
        while True:
            self._wake.clear()  # before looking, so a Say arriving meanwhile is not missed
            now = self.clock()
            for outcome in self.governor.expire(now):
                await self.finish(outcome.say_id, outcome.ok, outcome.parts, outcome.reason)
            delay = 1.0
            if self.joined and self.sio is not None:
                part = self.governor.next_part(now)
                while part is not None:
                    await self._emit_part(part.text, part.pm_to)
                    part = self.governor.next_part(now)
                delay = min(1.0, self.governor.delay(now))
            metrics.GOVERNOR_DEPTH.set(self.governor.depth())
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(delay, 0.005))

    async def _emit_part(self, text: str, pm_to: str) -> None:
        assert self.sio is not None
        log.debug("emit part (%d chars)", len(text))
        if pm_to:
            await self.sio.emit("pm", {"to": pm_to, "msg": text, "meta": {}})
        else:
            await self.sio.emit("chatMsg", {"msg": text, "meta": {}})
        metrics.SENT.labels("pm" if pm_to else "chat").inc()

    # ---- connection lifecycle -------------------------------------------

    async def _connection_loop(self) -> None:
        while True:
            try:
                await self._connect_once()
            except FatalConnError as exc:
                metrics.FATAL.set(1)
                metrics.CONNECTED.set(0)
                log.error("conn stopped retrying: %s", exc)
                await self.state("fatal", str(exc))
                await asyncio.Event().wait()  # idle: supervisord must not restart-loop us
            except Exception as exc:
                log.warning("connection failed: %s: %s", type(exc).__name__, exc)
            metrics.CONNECTED.set(0)
            self.governor.on_disconnect()
            await self.state("disconnected", self.last_kick)
            self.attempts += 1
            cause = "kick" if self.last_kick else "disconnect"
            metrics.RECONNECTS.labels(cause).inc()
            await asyncio.sleep(self.backoff())
            self.last_kick = ""

    def backoff(self) -> float:
        """Jittered exponential backoff; >= 10 s after a few tries (5-token IP bucket)."""
        base = self.cfg.conn.reconnect_min * 2 ** min(self.attempts - 1, 8)
        if self.attempts > 3:
            base = max(base, 10.0)
        if self.last_kick == "Duplicate login":
            base = max(base, 15.0)
        if not self.cfg.password:
            base = max(base, GUEST_LOGIN_WAIT if self.attempts > 1 else base)
        return min(base, self.cfg.conn.reconnect_max) * random.uniform(0.8, 1.2)

    async def socket_url(self) -> str:
        url = f"{self.cfg.domain.rstrip('/')}/socketconfig/{self.channel}.json"
        timeout = aiohttp.ClientTimeout(total=self.cfg.conn.connect_timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session, \
                session.get(url) as resp:
            if resp.status == 404:
                raise FatalConnError(f"channel {self.channel!r} does not exist at "
                                     f"{self.cfg.domain} (socketconfig 404)")
            resp.raise_for_status()
            body = await resp.json(content_type=None)
        servers = body.get("servers") or []
        if not servers:
            raise ConnectionError(f"{url} lists no socket servers")
        secure = [s for s in servers if s.get("secure")]
        return str((secure or servers)[0]["url"])

    async def _connect_once(self) -> None:
        url = await self.socket_url()
        sio = socketio.AsyncClient(reconnection=False)
        self.sio = sio
        closed = asyncio.Event()
        sio.on("connect", self._on_connect)
        sio.on("disconnect", lambda *args: closed.set())
        sio.on("*", self.on_frame)
        self.logged_in = self.userlist_seen = False
        try:
            await sio.connect(url, transports=["websocket"],
                              wait_timeout=self.cfg.conn.connect_timeout)
        except socketio.exceptions.ConnectionError as exc:
            if "banned" in str(exc).lower():
                raise FatalConnError(f"banned from the server: {exc}") from exc
            raise
        await closed.wait()
        if self._fatal is not None:
            raise self._fatal
        log.warning("disconnected from %s%s", url,
                    f" (kicked: {self.last_kick})" if self.last_kick else "")

    async def _on_connect(self) -> None:
        assert self.sio is not None
        log.info("connected; joining %s as %s", self.channel, self.name)
        self.replay.on_join_sent()
        join: dict[str, Any] = {"name": self.channel}
        if self.cfg.conn.channel_password:
            join["pw"] = self.cfg.conn.channel_password
        await self.sio.emit("joinChannel", join)
        login: dict[str, Any] = {"name": self.name}
        if self.cfg.password:
            login["pw"] = self.cfg.password
        await self.sio.emit("login", login)

    # ---- inbound ---------------------------------------------------------

    async def on_frame(self, event: str, data: Any = None) -> None:
        metrics.FRAMES_IN.labels(event if event in KNOWN_EVENTS else "other").inc()
        metrics.LAST_EVENT.set(self.clock())
        try:
            frame = ev.parse_frame(event, data)
        except ev.FrameError as exc:
            metrics.FRAME_ERRORS.labels(event if event in KNOWN_EVENTS else "other").inc()
            log.warning("dropped malformed %s frame: %s", event, exc)
            return
        try:
            await self.handle(frame)
        except FatalConnError as exc:
            self.last_kick = str(exc)
            self._fatal = exc
            metrics.FATAL.set(1)
            log.error("%s", exc)
            await self.state("fatal", str(exc))
            if self.sio is not None:
                await self.sio.disconnect()

    async def handle(self, frame: object) -> None:
        me = self.name.lower()
        if isinstance(frame, ev.ChatFrame):
            if self.replay.is_replay(frame.time):
                metrics.REPLAYS_DROPPED.inc()
            elif frame.username.lower() == me:
                await self._confirm(self.governor.on_echo(private=False))
            elif not frame.shadow and not frame.is_server_notice:
                log.debug("chat from %s forwarded", frame.username)
                await self.to_router(Chat(channel=self.channel, username=frame.username,
                                          text=frame.text, time=frame.time,
                                          received_at=self.clock()))
        elif isinstance(frame, ev.PmFrame):
            if frame.username.lower() == me:
                await self._confirm(self.governor.on_echo(private=True))
            else:
                await self.to_router(Pm(channel=self.channel, username=frame.username,
                                        text=frame.text, time=frame.time,
                                        received_at=self.clock()))
        elif isinstance(frame, ev.UserlistFrame):
            self.replay.on_userlist()
            await self.to_router(UserList(channel=self.channel,
                                          users=[to_user(u) for u in frame.users]))
            was_joined = self.joined
            self.userlist_seen = True
            if not was_joined and self.joined:
                await self._maybe_joined()
        elif isinstance(frame, ev.AddUserFrame):
            await self.to_router(UserJoined(channel=self.channel, user=to_user(frame.user)))
        elif isinstance(frame, ev.UserLeaveFrame):
            if frame.name.lower() != me:  # our own old socket after a duplicate login
                await self.to_router(UserLeft(channel=self.channel, name=frame.name))
        elif isinstance(frame, ev.SetUserRankFrame):
            await self.to_router(RankChanged(channel=self.channel, name=frame.name,
                                             rank=frame.rank))
        elif isinstance(frame, ev.RankFrame):
            self.rank = frame.rank
            self._update_pace()
        elif isinstance(frame, ev.LoginFrame):
            await self._on_login(frame)
        elif isinstance(frame, ev.KickFrame):
            self.last_kick = frame.reason or "kicked"
            log.warning("kicked: %s", self.last_kick)
        elif isinstance(frame, ev.CooldownFrame):
            metrics.SERVER_DROPPED.labels("cooldown").inc()
            if self.governor.on_cooldown() is not None:
                metrics.RESENT.inc()
            self._wake.set()
        elif isinstance(frame, ev.ErrorMsgFrame):
            log.warning("server error: %s", frame.msg)
            if "PM" in frame.msg:
                await self._confirm(self.governor.on_error(True, "pm failed"))
        elif isinstance(frame, (ev.NoFloodFrame, ev.SpamFilteredFrame)):
            metrics.SERVER_DROPPED.labels(type(frame).__name__.removesuffix("Frame")).inc()
            await self._confirm(self.governor.on_error(False, "refused by server"))
        elif isinstance(frame, ev.NeedPasswordFrame):
            await self._on_need_password(frame)
        elif isinstance(frame, ev.ChannelOptsFrame):
            self.antiflood = frame.chat_antiflood
            self.antiflood_params = (frame.antiflood_burst, frame.antiflood_sustained,
                                     frame.antiflood_burst / max(frame.antiflood_sustained, 0.1))
            self._update_pace()

    async def _confirm(self, outcome: Any) -> None:
        if outcome is not None:
            await self.finish(outcome.say_id, outcome.ok, outcome.parts, outcome.reason)
        self._wake.set()

    async def _maybe_joined(self) -> None:
        if self.joined:
            self.attempts = 0
            metrics.CONNECTED.set(1)
            metrics.FATAL.set(0)
            log.info("joined %s as %s (rank %g)", self.channel, self.name, self.rank)
            await self.state("joined")
            self._wake.set()

    async def _on_login(self, frame: ev.LoginFrame) -> None:
        if frame.success:
            self.name = frame.name or self.name
            was_joined = self.joined
            self.logged_in = True
            if not was_joined and self.joined:
                await self._maybe_joined()
            return
        log.error("login as %s failed: %s", self.name, frame.error)
        if any(marker in frame.error for marker in FATAL_LOGIN_ERRORS):
            raise FatalConnError(f"login as {self.name!r} refused: {frame.error}")
        if "Guest logins are restricted" in frame.error or "already in use" in frame.error:
            await asyncio.sleep(GUEST_LOGIN_WAIT if "Guest" in frame.error else 10.0)
            if self.sio is not None and self.sio.connected:
                await self.sio.emit("login", {"name": self.name})

    async def _on_need_password(self, frame: ev.NeedPasswordFrame) -> None:
        if frame.wrong or not self.cfg.conn.channel_password:
            raise FatalConnError("the channel needs a password: set conn.channel_password "
                                 "(or ROSEY_CHANNEL_PASSWORD)" if not frame.wrong else
                                 "the channel password was refused")
        assert self.sio is not None
        await self.sio.emit("channelPassword", self.cfg.conn.channel_password)

    def _update_pace(self) -> None:
        if self.antiflood and self.rank < 2:
            # setOptions caps the channel's params at the server minimum (20, 10/s).
            burst, sustained, cooldown = self.antiflood_params
            self.governor.set_pace(int(min(burst, 20)), min(sustained, 10.0), cooldown)
        else:
            self.governor.set_pace(*SERVER_DEFAULT)


def main_loop(cfg: Config) -> None:
    metrics.serve("conn", cfg.metrics.host, cfg.metrics.conn_port, cfg.metrics.enabled)
    run_until_signalled(ConnService(cfg).run)

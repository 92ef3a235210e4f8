"""The fake CyTube's state, test-control API and HTTP side (see fakes/cytube.py)."""


from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Self

import socketio

from fakes import cytube_filters as cf
from fakes.cytube_server import CytubeServer

log = logging.getLogger(__name__)
_BUFFER_SIZE = 15
BANNED = "You are banned from this channel."


@dataclass
class _User:
    """A logged-in user present in the channel (``sid`` None for a virtual user)."""

    name: str
    rank: float
    sid: str | None = None
    guest: bool = False


@dataclass
class _Sock:
    sid: str
    join_seen: bool = False
    joined: bool = False
    name: str | None = None
    rank: float = -1
    guest: bool = False
    ip: str = "127.0.0.1"
    need_password: bool = False
    channel: str = ""  # lower-cased name of the channel joined ("" before joinChannel)
    limiter: cf.RateLimiter = field(default_factory=cf.RateLimiter)
    af_limiter: cf.RateLimiter = field(default_factory=cf.RateLimiter)


class FakeCytubeBase:
    """State, test-control API, helpers and HTTP of the fake; the socket.io dialogue is in
    :class:`fakes.cytube.FakeCytube`."""

    def __init__(
        self, channel: str = "testchan", *, max_length: int = 320, antiflood: bool = False,
        limits: bool = False, server: CytubeServer | None = None,
    ) -> None:
        self.server = server or CytubeServer(max_length=max_length, limits=limits)
        self.channel = channel
        self.antiflood = antiflood  # chat_antiflood channel option (rank < 2 only)
        self.password = ""  # channel password ("" = none)
        self.afk_timeout = 600
        self.banned_names: set[str] = set()  # channel bans: kicked on join
        self.ranks: dict[str, float] = {}  # lower name -> channel rank (else the account's)
        self.muted: set[str] = set()  # lower names
        self.afk: set[str] = set()
        self.media: dict[str, Any] | None = None
        self.antiflood_params: dict[str, float] = {"burst": 4, "sustained": 1, "cooldown": 4}
        self.chat_log: list[dict[str, Any]] = []  # broadcast user chatMsg payloads
        self.pm_log: list[dict[str, Any]] = []  # delivered pm payloads
        self.commands_run: list[tuple[str, str]] = []  # (username, text) never broadcast
        self.frames_from_clients: list[tuple[str, str, Any]] = []
        self.buffer: deque[dict[str, Any]] = deque(maxlen=_BUFFER_SIZE)
        self._socks: dict[str, _Sock] = {}  # sockets that joined this channel
        self._members: dict[str, _User] = {}  # lower name -> user, in join order
        self._last_time = 0
        self._tasks: set[asyncio.Task[None]] = set()
        # CyTube broadcasts ``usercount`` to the whole channel on every join and part,
        # throttled (lodash debounce, leading and trailing, maxWait 10 s: channel.js
        # USERCOUNT_THROTTLE): the first change goes out at once, later ones within 10 s
        # as one trailing broadcast.
        self.usercount_throttle = 10.0
        self._usercount_last = -1e9
        self._usercount_trailing: asyncio.TimerHandle | None = None
        self.server.channels[channel.lower()] = self
        if server is None:  # the channel the fake was built with: frames before a join
            self.server.default = self
            self.server.make_channel = self._sibling

    def _sibling(self, name: str) -> Self:
        return type(self)(name, server=self.server)

    # ---------------------------------------------------------------- server-wide state
    # (the channel keeps the names the single-channel fake had, so tests read them here)
    @property
    def sio(self) -> socketio.AsyncServer:
        return self.server.sio

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def max_length(self) -> int:
        return self.server.max_length

    @max_length.setter
    def max_length(self, value: int) -> None:
        self.server.max_length = value

    @property
    def limits(self) -> bool:
        return self.server.limits

    @limits.setter
    def limits(self, value: bool) -> None:
        self.server.limits = value

    @property
    def accounts(self) -> dict[str, tuple[str, str, float]]:
        return self.server.accounts

    @property
    def banned_ips(self) -> set[str]:
        return self.server.banned_ips

    @property
    def connect_log(self) -> list[tuple[str, bool]]:
        return self.server.connect_log

    @property
    def channels(self) -> dict[str, Any]:
        return self.server.channels

    def channel_named(self, name: str) -> Self:
        """Another channel on the same server (created if new): its own users, bans, chat."""
        chan = self.server.channel_named(name)
        assert isinstance(chan, type(self))
        return chan

    def _in(self, channel: str | None) -> Self:
        return self if channel is None else self.channel_named(channel)

    def join_count(self) -> int:
        """How many ``joinChannel`` frames this channel has handled (one per session)."""
        return self.server.join_counts()[self.channel.lower()]

    # ---------------------------------------------------------------- lifecycle
    @property
    def url(self) -> str:
        return self.server.url

    async def start(self, port: int = 0) -> Self:
        await self.server.start(port)
        return self

    async def stop(self) -> None:
        await self.server.stop()

    async def kill(self) -> None:
        """The whole server goes away (every channel's sockets drop, nothing listens)."""
        await self.server.stop()

    async def restart(self) -> None:
        """Listen again on the same port; channels keep their state, as a real restart does."""
        if self.server.listening:
            await self.server.stop()
        await self.server.start(self.server.port)

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---------------------------------------------------------------- test control API
    def add_account(self, name: str, pw: str, rank: float = 1) -> None:
        self.accounts[name.lower()] = (name, pw, rank)

    def add_virtual_user(self, name: str, rank: float = 1) -> None:
        """A logged-in user without a socket: in ``userlist``; ``addUser`` is broadcast."""
        user = _User(name, rank)
        self._members[name.lower()] = user
        self._spawn(self._broadcast("addUser", lambda s: self._entry(user, s.rank)))

    async def remove_virtual_user(self, name: str) -> None:
        await self._settle()
        if self._members.pop(name.lower(), None) is not None:
            await self._broadcast("userLeave", {"name": name})

    def preload_buffer(self, messages: list[tuple[str, str, int]]) -> None:
        """Old chat (username, msg_html, time_ms) replayed to every joining socket."""
        for username, msg_html, time_ms in messages:
            self.buffer.append({"username": username, "msg": msg_html, "meta": {}, "time": time_ms})
            self._last_time = max(self._last_time, time_ms)

    async def set_antiflood(self, on: bool, burst: float = 4, sustained: float = 1) -> None:
        self.antiflood = on
        self.antiflood_params = {
            "burst": burst,
            "sustained": sustained,
            "cooldown": burst / sustained,
        }
        await self._broadcast("channelOpts", self._opts())

    async def wait_for(self, predicate: Callable[[], object], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout}s")
            await asyncio.sleep(0.005)

    async def _kick_sock(self, s: _Sock, reason: str) -> None:
        await self._emit(s.sid, "kick", {"reason": reason})
        user = self._members.get(s.name.lower()) if s.name else None
        if user is not None and user.sid == s.sid:
            await self._leave(user)
        if self._socks.pop(s.sid, None) is not None and s.joined:
            self._usercount_changed()
        await self.sio.disconnect(s.sid)

    async def kick(self, username: str, reason: str = "") -> None:
        await self._settle()
        user = self._members.get(username.lower())
        if user is None:
            return
        if user.sid is not None:
            await self._emit(user.sid, "kick", {"reason": reason})
        await self._leave(user)
        if user.sid is not None:
            if self._socks.pop(user.sid, None) is not None:
                self._usercount_changed()
            await self.sio.disconnect(user.sid)

    async def drop_all_connections(self) -> None:
        """Like a server restart: every socket closes without a goodbye; chat buffer kept."""
        await self.server.drop_all_connections()

    async def _forget_sockets(self) -> None:
        await self._settle()
        self._socks.clear()
        self._members = {k: u for k, u in self._members.items() if u.sid is None}

    async def _on_event(self, event: str, s: _Sock, data: Any) -> None:
        raise NotImplementedError  # the dialogue: fakes/cytube.py

    async def _on_disconnect(self, s: _Sock) -> None:
        raise NotImplementedError

    def _record(self, who: str, event: str, data: Any) -> None:
        self.frames_from_clients.append((who, event, data))

    async def send_raw(self, name: str, event: str, data: Any) -> None:
        """Emit any frame, well-formed or not, to a member's socket (fuzzing conn)."""
        sid = self._member(name).sid
        if sid is None:
            raise LookupError(f"{name} has no socket")
        await self._emit(sid, event, data)

    async def mute(self, name: str, muted: bool = True) -> None:
        await self._settle()
        (self.muted.add if muted else self.muted.discard)(name.lower())
        await self._send_meta(name)

    async def set_afk(self, name: str, afk: bool) -> None:
        """What ``autoAFK`` does after ``afk_timeout`` s of silence (or ``/afk``)."""
        await self._settle()
        if (name.lower() in self.afk) == afk:
            return
        (self.afk.add if afk else self.afk.discard)(name.lower())
        await self._send_meta(name)
        await self._broadcast("setAFK", {"name": self._member(name).name, "afk": afk})

    async def set_media(self, title: str, media_id: str = "http://127.0.0.1:8099/clip.json",
                        media_type: str = "cm", seconds: float = 30) -> None:
        self.media = {"id": media_id, "title": title, "seconds": seconds,
                      "duration": f"{int(seconds) // 60:02d}:{int(seconds) % 60:02d}",
                      "type": media_type, "meta": {}, "currentTime": -3, "paused": True}
        await self._broadcast("changeMedia", self.media)

    def ban_ip(self, ip: str) -> None:
        self.banned_ips.add(ip)

    def ban_name(self, name: str, channel: str | None = None) -> None:
        """A channel ban (of ``channel``, default this one): kicked on its next join."""
        self._in(channel).banned_names.add(name.lower())

    async def ban(self, name: str, channel: str | None = None) -> None:
        """``/ban name`` by a moderator: the ban, and the user's sockets in that channel are
        kicked at once (kickban.js banName) with the reason a banned join gets."""
        chan = self._in(channel)
        chan.ban_name(name)
        await chan._settle()
        for s in [x for x in chan._socks.values() if x.name and x.name.lower() == name.lower()]:
            await chan._kick_sock(s, BANNED)

    def set_rank(self, name: str, rank: float, channel: str | None = None) -> None:
        """The channel rank ``name`` gets on its next login there (else the account's)."""
        self._in(channel).ranks[name.lower()] = rank

    @property
    def usernames(self) -> list[str]:
        return [u.name for u in self._members.values()]

    # ---------------------------------------------------------------- helpers
    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:
            coro.close()  # not started yet: nobody to tell
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _settle(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    def _member(self, name: str) -> _User:
        user = self._members.get(name.lower())
        if user is None:
            raise LookupError(f"{name} is not in the channel")
        return user

    def _now(self) -> int:
        now = int(time.time() * 1000)
        self._last_time = now if now >= self._last_time else self._last_time + 1
        return self._last_time

    def _opts(self) -> dict[str, Any]:
        opts = cf.channel_opts(self.channel, self.antiflood, self.antiflood_params)
        opts.update(afk_timeout=self.afk_timeout, password=self.password or False)
        return opts

    async def _send_meta(self, name: str) -> None:
        user = self._members.get(name.lower())
        if user is None:
            return
        meta = {"afk": name.lower() in self.afk, "muted": name.lower() in self.muted}
        await self._broadcast("setUserMeta", {"name": user.name, "meta": meta})

    def _take_token(self, ip: str) -> bool:
        return self.server.take_token(ip)

    def _channel_rank(self, name: str, account_rank: float) -> float:
        return self.ranks.get(name.lower(), account_rank)

    def _entry(self, user: _User, viewer_rank: float) -> dict[str, Any]:
        entry = cf.user_entry(user.name, user.rank, viewer_rank)
        entry["meta"].update(afk=user.name.lower() in self.afk,
                             muted=user.name.lower() in self.muted)
        return entry

    async def _bad_frame(self, s: _Sock, event: str, data: Any, key: str) -> bool:
        """CyTube's typecheck errors (scenario chat-bad-frames); True when the frame is bad."""
        err = cf.typecheck_error(data, key)
        if err is None:
            return False
        await self._emit(s.sid, "errorMsg", {"msg": f"Unexpected error for message {event}: {err}"})
        return True

    async def _emit(self, sid: str, event: str, data: Any = None) -> None:
        await self.sio.emit(event, data, to=sid)

    async def _broadcast(
        self, event: str, data: Any, exclude: str | None = None, min_rank: float = -1
    ) -> None:
        for s in list(self._socks.values()):
            if s.joined and s.sid != exclude and s.rank >= min_rank:
                await self._emit(s.sid, event, data(s) if callable(data) else data)

    async def _notice(self, text: str, min_rank: float = 2, exclude: str | None = None) -> None:
        payload = cf.server_notice(text, self._now())
        await self._broadcast("chatMsg", payload, exclude=exclude, min_rank=min_rank)

    def _usercount_changed(self) -> None:
        loop = asyncio.get_running_loop()
        if self._usercount_trailing is not None:
            return  # the trailing broadcast will carry the count of its moment
        wait = self._usercount_last + self.usercount_throttle - loop.time()
        if wait <= 0:
            self._usercount_last = loop.time()
            self._spawn(self._broadcast_usercount())
            return

        def trailing() -> None:
            self._usercount_trailing = None
            self._usercount_last = loop.time()
            self._spawn(self._broadcast_usercount())

        self._usercount_trailing = loop.call_later(wait, trailing)

    async def _broadcast_usercount(self) -> None:
        await self._broadcast("usercount", sum(1 for x in self._socks.values() if x.joined))

    async def _leave(self, user: _User) -> None:
        if self._members.get(user.name.lower()) is user:
            del self._members[user.name.lower()]
            await self._broadcast("userLeave", {"name": user.name}, exclude=user.sid)

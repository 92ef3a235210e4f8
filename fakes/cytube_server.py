"""The server side of the fake CyTube: one socket.io server serving many channels.

As in calzoneman/sync, one server holds every socket; a socket joins one channel
(``joinChannel`` is handled once per socket) and its channel events go to that channel only.
What is per server here is what is per server there: the listening port and HTTP routes, the
per-IP connection bucket and open-socket limit, the guest-login limit, server (IP) bans and the
accounts.  Everything else (userlist, ranks, bans, chat buffer, playlist, options, password,
antiflood, mutes) belongs to a channel (:class:`fakes.cytube.FakeCytube`).

Before its ``joinChannel`` a socket's frames go to the default channel (the one the fake was
built with), whose handlers drop everything but ``login``, as CyTube does.  A channel joined by
a name the fake has not seen is created on the fly, as CyTube creates unregistered channels
(but treated as registered: no ``channelNotRegistered`` ends its join burst).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import Counter
from typing import TYPE_CHECKING, Any, Protocol

import socketio
from aiohttp import web
from socketio.exceptions import ConnectionRefusedError as Refused

from fakes import cytube_filters as cf

if TYPE_CHECKING:
    from fakes.cytube_base import _Sock

log = logging.getLogger(__name__)

IP_CONNECTION_LIMIT = 10  # io.ip-connection-limit on the recorded server (PROTOCOL §2)
ERR_TOO_MANY = "Too many connections from your IP address"


class Channel(Protocol):
    """What the server needs of a channel (implemented by :class:`fakes.cytube.FakeCytube`)."""

    channel: str
    _socks: dict[str, _Sock]

    async def _on_event(self, event: str, s: _Sock, data: Any) -> None: ...
    async def _on_disconnect(self, s: _Sock) -> None: ...
    async def _forget_sockets(self) -> None: ...
    def _record(self, who: str, event: str, data: Any) -> None: ...


class CytubeServer:
    def __init__(self, *, max_length: int = 320, limits: bool = False) -> None:
        self.max_length = max_length
        self.limits = limits  # per-IP connect bucket, open-socket and guest-login limits
        self.channels: dict[str, Channel] = {}  # lower-cased name -> channel
        self.default: Channel | None = None
        self.accounts: dict[str, tuple[str, str, float]] = {}  # lower -> (name, pw, rank)
        self.banned_ips: set[str] = set()  # server-wide: connect_error
        self.connect_log: list[tuple[str, bool]] = []  # (ip, accepted) per connect attempt
        self.socks: dict[str, _Sock] = {}  # every open socket, joined or not
        self.buckets: dict[str, tuple[float, float]] = {}  # ip -> (tokens, at)
        self.guest_logins: dict[str, float] = {}  # ip -> monotonic time
        self._joins: list[str] = []  # channel name of every joinChannel handled
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0
        self._runner: web.AppRunner | None = None
        self.sio = socketio.AsyncServer(async_mode="aiohttp", async_handlers=False)
        self.app = web.Application()
        self.sio.attach(self.app)
        self.app.router.add_get("/socketconfig/{file}", self._socketconfig)
        self.app.router.add_get("/r/{channel}", self._channel_page)
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        self.sio.on("*", self._on_event)
        self.make_channel: Any = None  # set by the default channel: name -> new channel

    # ---------------------------------------------------------------- lifecycle
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def listening(self) -> bool:
        return self._runner is not None

    async def start(self, port: int = 0) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        self.port = sock.getsockname()[1]
        self._runner = web.AppRunner(self.app, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        await self.drop_all_connections()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def drop_all_connections(self) -> None:
        """Like a server restart: every socket closes without a goodbye; channels are kept."""
        for chan in list(self.channels.values()):
            await chan._forget_sockets()
        sids = list(self.socks)
        self.socks.clear()
        for sid in sids:
            eio = self.sio.eio.sockets.get(self.sio.manager.eio_sid_from_sid(sid, "/"))
            if eio is not None:
                await eio.close(wait=False, abort=True)
                await eio.queue.put(None)  # ends the websocket writer, which closes the socket

    # ---------------------------------------------------------------- channels
    def channel_named(self, name: str) -> Channel:
        """The channel ``name`` (channel names are lower-cased on join), created if new."""
        chan = self.channels.get(name.lower())
        if chan is None:
            chan = self.make_channel(name.lower())
        return chan

    def join_counts(self) -> Counter[str]:
        """joinChannel frames received per channel name, over the server's whole life."""
        return Counter(self._joins)

    # ---------------------------------------------------------------- socket.io
    def take_token(self, ip: str) -> bool:
        """src/io/ioserver.js: a token bucket per IP, 5 tokens, one more every 10 s."""
        now = time.monotonic()
        tokens, at = self.buckets.get(ip, (5.0, now))
        tokens = min(5.0, tokens + (now - at) / 10.0)
        if tokens < 1:
            self.buckets[ip] = (tokens, now)
            return False
        self.buckets[ip] = (tokens - 1, now)
        return True

    async def _on_connect(self, sid: str, environ: Any, auth: Any = None) -> None:
        from fakes.cytube_base import _Sock

        ip = str(environ.get("HTTP_X_FORWARDED_FOR") or environ.get("REMOTE_ADDR") or "")
        ip = ip.split(",")[0].strip() or "127.0.0.1"
        if ip in self.banned_ips:
            self.connect_log.append((ip, False))
            raise Refused("You are banned from the server")
        if self.limits and not self.take_token(ip):
            self.connect_log.append((ip, False))
            raise Refused("Rate limit exceeded")
        self.connect_log.append((ip, True))
        self.socks[sid] = _Sock(sid, ip=ip)
        await self.sio.emit("rank", -1, to=sid)
        if self.limits and sum(1 for s in self.socks.values() if s.ip == ip) > \
                IP_CONNECTION_LIMIT:  # counted once connected: kick, then disconnect
            task = asyncio.get_running_loop().create_task(self._kick_new(sid))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _kick_new(self, sid: str) -> None:
        await asyncio.sleep(0)  # the connect completes first, as on the real server
        await self.sio.emit("kick", {"reason": ERR_TOO_MANY}, to=sid)
        self.socks.pop(sid, None)
        await self.sio.disconnect(sid)

    async def _on_disconnect(self, sid: str, *reason: Any) -> None:
        s = self.socks.pop(sid, None)
        chan = self.channels.get(s.channel) if s is not None and s.channel else None
        if s is not None and chan is not None:
            await chan._on_disconnect(s)

    async def _on_event(self, event: str, sid: str, *args: Any) -> None:
        data = args[0] if args else None
        s = self.socks.get(sid)
        if s is None:
            return
        chan = self.channels.get(s.channel) if s.channel else None
        if chan is None and event == "joinChannel" and not s.join_seen:
            name = data.get("name") if isinstance(data, dict) else None
            if isinstance(name, str) and cf.CHANNEL_NAME_RE.match(name):
                chan = self.channel_named(name)
                self._joins.append(name.lower())
                s.channel = chan.channel.lower()
                chan._socks[sid] = s
        chan = chan or self.default
        assert chan is not None
        chan._record(s.name or sid, event, data)
        try:
            await chan._on_event(event, s, data)
        except Exception:  # keep the fake alive; the test sees the log
            log.exception("fake cytube: %s handler failed", event)

    # ---------------------------------------------------------------- HTTP
    async def _socketconfig(self, request: web.Request) -> web.Response:
        name = request.match_info["file"].removesuffix(".json")
        if not cf.CHANNEL_NAME_RE.match(name):
            return web.json_response({"error": f'Channel "{name}" does not exist.'}, status=404)
        return web.json_response({"servers": [{"url": self.url, "secure": False}]})

    async def _channel_page(self, request: web.Request) -> web.Response:
        """Only what conn reads: the chat input's maxlength (max-chat-message-length)."""
        page = ('<form><input id="chatline" class="form-control" type="text" '
                f'maxlength="{self.max_length}" style="display: none"></form>')
        return web.Response(text=f"<html><body>{page}</body></html>", content_type="text/html")
